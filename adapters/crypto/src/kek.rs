//! Key-encryption key (KEK): the root of the key hierarchy (docs/keys.md).
//!
//! The KEK never encrypts data; it only wraps DEKs and the blind-index key in the
//! key store. It lives in its own file (or the environment), apart from the data it
//! protects, so that "keys are held apart from data" (P4.8(1)).
//!
//! KEK file format (89 bytes, all fixed width):
//!
//! | offset | len | field                                                   |
//! |-------:|----:|---------------------------------------------------------|
//! | 0      | 8   | magic `MEBYOKEK`                                        |
//! | 8      | 1   | version, `1`                                            |
//! | 9      | 16  | key id: first 16 bytes of `blake3::derive_key(KEY_ID_CONTEXT, key)` |
//! | 25     | 64  | key: AES-256-SIV key (two 256-bit halves: CMAC and CTR) |
//!
//! The stored key id is recomputed on load, so a corrupted key is caught before it
//! is used to (fail to) unwrap anything.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, Result};
use crate::fsio;

/// AES-256-SIV takes a 512-bit key (RFC 5297 §2.2: K1 for S2V/CMAC, K2 for CTR).
pub const KEY_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"MEBYOKEK";
const VERSION: u8 = 1;
const FILE_LEN: usize = 8 + 1 + 16 + KEY_LEN;
const KEY_ID_CONTEXT: &str = "mebyo-crypto 2025-01 KEK key id v1";

/// A 16-byte key fingerprint. Derived one-way from the key, so it is safe to log
/// and to store next to the data it identifies.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    pub(crate) fn of(context: &str, key: &[u8]) -> KeyId {
        let full = Zeroizing::new(blake3::derive_key(context, key));
        let mut id = [0u8; 16];
        id.copy_from_slice(&full[..16]);
        KeyId(id)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

/// The key-encryption key. Key bytes are zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Kek {
    key: [u8; KEY_LEN],
    #[zeroize(skip)]
    id: KeyId,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Kek {
    fn from_bytes(key: &[u8; KEY_LEN]) -> Kek {
        Kek {
            key: *key,
            id: KeyId::of(KEY_ID_CONTEXT, key),
        }
    }

    /// A fresh random KEK from the injected rng (not persisted).
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Kek {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut key[..]);
        Kek::from_bytes(&key)
    }

    /// Generate a KEK and write it to a new file at `path` with mode 0600
    /// (P4.8(1)). Refuses to overwrite an existing file: overwriting a KEK would
    /// silently make every wrapped DEK unrecoverable.
    pub fn create_file(path: impl AsRef<Path>, rng: &mut (impl CryptoRng + ?Sized)) -> Result<Kek> {
        let path = path.as_ref();
        let kek = Kek::generate(rng);
        let mut buf = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        buf.extend_from_slice(MAGIC);
        buf.push(VERSION);
        buf.extend_from_slice(&kek.id.0);
        buf.extend_from_slice(&kek.key);
        fsio::create_new_private(path, &buf)?;
        tracing::info!(kek_id = %kek.id, path = %path.display(), "created KEK file");
        Ok(kek)
    }

    /// Load a KEK file, refusing one that group or other users could read (P4.8(1)).
    pub fn load_file(path: impl AsRef<Path>) -> Result<Kek> {
        let path = path.as_ref();
        let mut f = File::open(path).map_err(|e| CryptoError::io("open", path, e))?;
        // Check the mode on the open handle, not the path, so the file we check is
        // the file we read.
        let meta = f.metadata().map_err(|e| CryptoError::io("stat", path, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::KekFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        if !meta.is_file() {
            return Err(CryptoError::KekFileFormat {
                path: path.to_path_buf(),
                reason: "not a regular file",
            });
        }
        let bad = |reason| CryptoError::KekFileFormat {
            path: path.to_path_buf(),
            reason,
        };
        if meta.len() != FILE_LEN as u64 {
            return Err(bad("wrong length"));
        }
        let mut buf = Zeroizing::new([0u8; FILE_LEN]);
        f.read_exact(&mut buf[..])
            .map_err(|e| CryptoError::io("read", path, e))?;
        if &buf[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        if buf[8] != VERSION {
            return Err(bad("unsupported version"));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&buf[25..]);
        let kek = Kek::from_bytes(&key);
        if kek.id.0[..] != buf[9..25] {
            return Err(bad("key id does not match key bytes (corrupt file)"));
        }
        Ok(kek)
    }

    /// A KEK given as 128 hex characters (e.g. from an environment variable set by
    /// a secret manager). The value is never echoed in errors.
    pub fn from_env_hex(value: &str) -> Result<Kek> {
        let value = value.trim();
        if value.len() != KEY_LEN * 2 {
            return Err(CryptoError::KekHex {
                reason: "expected 128 hex characters (64-byte AES-256-SIV key)",
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(value, &mut key[..]).map_err(|_| CryptoError::KekHex {
            reason: "not hexadecimal",
        })?;
        Ok(Kek::from_bytes(&key))
    }

    /// Fingerprint, safe to log.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// AES-256-SIV instance for key wrapping; zeroizes its key schedule on drop.
    pub(crate) fn siv(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(&self.key).expect("64-byte key fits AES-256-SIV")
    }

    #[cfg(test)]
    pub(crate) fn raw_key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
}
