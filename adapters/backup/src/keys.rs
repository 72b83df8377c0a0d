//! Backup keys: the long-lived **log key** and the erasable **epoch key**
//! (docs/backups.md, "Keys").
//!
//! Key file (90 bytes): `"MEBYOBKK"` ‖ version `1` ‖ purpose (`'L'` log, `'E'`
//! epoch) ‖ 16-byte key id (first 16 bytes of `blake3::derive_key(KEY_ID_CONTEXT,
//! key)`) ‖ 64-byte AES-256-SIV key. Mode 0600, refused otherwise. The stored id is
//! recomputed on load, so a damaged key file is caught before it fails to decrypt.

use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use mebyo_crypto::Zeroizing;
use rand::CryptoRng;

use crate::error::{BackupError, Result};
use crate::fsio;

/// File name of the log key in `DATA/keys/`.
pub const LOG_KEY_FILE: &str = "backup-log.key";
/// File name of the current epoch key in `DATA/keys/`.
pub const EPOCH_KEY_FILE: &str = "backup.key";
/// Where a rotation stages the next epoch key before it replaces the current one.
pub(crate) const EPOCH_KEY_NEXT_FILE: &str = "backup.key.next";

const MAGIC: &[u8; 8] = b"MEBYOBKK";
const VERSION: u8 = 1;
const KEY_LEN: usize = 64;
const FILE_LEN: usize = 8 + 1 + 1 + 16 + KEY_LEN;
const KEY_ID_CONTEXT: &str = "mebyo backup 2026-11 key id v1";

/// What a key encrypts. Stored in the file so a log key can never be loaded as
/// an epoch key (which would survive erasure) or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Log backup files and manifest MACs. Never rotated by erasure: log backups
    /// hold no keys, only ciphertext under DEKs.
    Log,
    /// Key-store and identity-vault backups. Replaced and destroyed at every
    /// erasure, which crypto-shreds every older key-store backup.
    Epoch,
}

impl KeyPurpose {
    fn code(self) -> u8 {
        match self {
            KeyPurpose::Log => b'L',
            KeyPurpose::Epoch => b'E',
        }
    }
}

/// A 64-byte AES-256-SIV backup key. Zeroized on drop, never printed.
pub struct BackupKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    id: [u8; 16],
    purpose: KeyPurpose,
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupKey")
            .field("id", &self.id_hex())
            .field("purpose", &self.purpose)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl BackupKey {
    fn from_bytes(key: &[u8; KEY_LEN], purpose: KeyPurpose) -> Self {
        let full = Zeroizing::new(blake3::derive_key(KEY_ID_CONTEXT, key));
        let mut id = [0u8; 16];
        id.copy_from_slice(&full[..16]);
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(key);
        Self {
            key: k,
            id,
            purpose,
        }
    }

    /// A fresh key from the injected rng (not persisted).
    pub fn generate(purpose: KeyPurpose, rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut key[..]);
        Self::from_bytes(&key, purpose)
    }

    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// Fingerprint, safe to log and to store in manifests.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub fn purpose(&self) -> KeyPurpose {
        self.purpose
    }

    pub(crate) fn siv(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(&self.key[..]).expect("64-byte key fits AES-256-SIV")
    }

    /// A subkey for manifest MACs, so the MAC and the file encryption never share
    /// a key.
    pub(crate) fn mac_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(
            "mebyo backup 2026-11 manifest mac v1",
            &self.key[..],
        ))
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut b = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(self.purpose.code());
        b.extend_from_slice(&self.id);
        b.extend_from_slice(&self.key[..]);
        b
    }

    /// Writes this key to a new file (refuses to overwrite: overwriting a backup
    /// key silently makes every backup under it unreadable).
    pub(crate) fn write_new(&self, path: &Path) -> Result<()> {
        fsio::write_new_durable(path, &self.encode())
    }

    /// Loads a key file, refusing a readable-by-others, damaged or wrong-purpose one.
    pub fn load(path: &Path, purpose: KeyPurpose) -> Result<Self> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::MissingKey {
                    path: path.to_path_buf(),
                    hint: match purpose {
                        KeyPurpose::Log => {
                            "the log backup key is created by `mebyo backup run` or the platform's init; restore needs the operator's offline copy"
                        }
                        KeyPurpose::Epoch => {
                            "the backup epoch key is created with the log key; restore needs the current one (the offline copy kept with the KEK)"
                        }
                    },
                });
            }
            Err(e) => return Err(BackupError::io("open", path, e)),
        };
        let meta = f.metadata().map_err(|e| BackupError::io("stat", path, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(BackupError::KeyPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let bad = |reason| BackupError::KeyFormat {
            path: path.to_path_buf(),
            reason,
        };
        if !meta.is_file() {
            return Err(bad("not a regular file"));
        }
        if meta.len() != FILE_LEN as u64 {
            return Err(bad("wrong length"));
        }
        let mut buf = Zeroizing::new([0u8; FILE_LEN]);
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf[..], 0)
            .map_err(|e| BackupError::io("read", path, e))?;
        if &buf[..8] != MAGIC {
            return Err(bad("bad magic (destroyed or not a backup key)"));
        }
        if buf[8] != VERSION {
            return Err(bad("unsupported version"));
        }
        if buf[9] != purpose.code() {
            return Err(bad(
                "key of another purpose (log key and epoch key swapped?)",
            ));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&buf[26..]);
        let k = Self::from_bytes(&key, purpose);
        if k.id[..] != buf[10..26] {
            return Err(bad("key id does not match key bytes (corrupt file)"));
        }
        Ok(k)
    }
}

/// The backup keys of a data directory's `keys/` folder.
#[derive(Debug, Clone)]
pub struct KeyPaths {
    pub dir: PathBuf,
}

impl KeyPaths {
    pub fn new(keys_dir: impl AsRef<Path>) -> Self {
        Self {
            dir: keys_dir.as_ref().to_path_buf(),
        }
    }
    pub fn log_key(&self) -> PathBuf {
        self.dir.join(LOG_KEY_FILE)
    }
    pub fn epoch_key(&self) -> PathBuf {
        self.dir.join(EPOCH_KEY_FILE)
    }
    pub(crate) fn epoch_key_next(&self) -> PathBuf {
        self.dir.join(EPOCH_KEY_NEXT_FILE)
    }
    pub fn load_log(&self) -> Result<BackupKey> {
        BackupKey::load(&self.log_key(), KeyPurpose::Log)
    }
    pub fn load_epoch(&self) -> Result<BackupKey> {
        BackupKey::load(&self.epoch_key(), KeyPurpose::Epoch)
    }
}

/// What [`ensure_backup_keys`] did.
#[derive(Debug, Clone, Default)]
pub struct EnsuredKeys {
    pub log_key_id: String,
    pub epoch_key_id: String,
    /// Key files created by this call: the operator must copy them offline (with
    /// the KEK), since restore cannot work without them.
    pub created: Vec<PathBuf>,
}

/// Creates the log key and the epoch key in `keys_dir` if they are missing, and
/// loads (so checks) both. The platform's init calls this; `mebyo backup run`
/// too, so a ledger made by `mebyo init` alone can be backed up.
pub fn ensure_backup_keys(
    keys_dir: &Path,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<EnsuredKeys> {
    let paths = KeyPaths::new(keys_dir);
    fsio::create_dir_all_private(keys_dir)?;
    let mut created = Vec::new();
    for (path, purpose) in [
        (paths.log_key(), KeyPurpose::Log),
        (paths.epoch_key(), KeyPurpose::Epoch),
    ] {
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                BackupKey::generate(purpose, rng).write_new(&path)?;
                tracing::info!(path = %path.display(), "created backup key");
                created.push(path);
            }
            Err(e) => return Err(BackupError::io("stat", &path, e)),
        }
    }
    Ok(EnsuredKeys {
        log_key_id: paths.load_log()?.id_hex(),
        epoch_key_id: paths.load_epoch()?.id_hex(),
        created,
    })
}
