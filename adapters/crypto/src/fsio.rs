//! The only file IO in the crate: create-new, atomic rewrite, read, and the small
//! binary codec shared by the KEK file, the key store and the identity vault.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{CryptoError, Result};

/// Owner read/write only: these files hold (wrapped) key material or encrypted
/// personal data, and group/other access is what P4.8(1) forbids.
pub(crate) const PRIVATE_MODE: u32 = 0o600;

/// Directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory so a create or rename inside it survives a crash; without it
/// the new directory entry can be lost even though the file data was synced.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| CryptoError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| CryptoError::io("fsync directory", dir, e))
}

/// Write a brand-new file (fails if it exists), mode 0600, fsync file and parent.
pub(crate) fn create_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(path)
        .map_err(|e| CryptoError::io("create", path, e))?;
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CryptoError::io("write", path, e));
    if res.is_err() {
        // Do not leave a half-written key file behind for a later load to trip over.
        drop(f);
        let _ = fs::remove_file(path);
        return res;
    }
    sync_dir(&parent_dir(path))
}

/// Path of the temp file used by [`atomic_replace`].
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replace `path` with `bytes` atomically.
///
/// Why this dance: a reader (or a restart after a crash) must see either the whole
/// old file or the whole new one, never a torn mix. So we write a temp file in the
/// same directory, fsync it (data durable before it becomes visible), `rename` it
/// over the old file (atomic on POSIX within one filesystem), then fsync the
/// directory (the rename itself durable). For erasure (P4.9) this also means the
/// old file's directory entry is gone once this returns; the freed blocks only ever
/// held KEK-wrapped keys or DEK-encrypted data (see docs/keys.md, KEK rotation).
pub(crate) fn atomic_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_MODE)
        .open(&tmp)
        .map_err(|e| CryptoError::io("create temp file", &tmp, e))?;
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CryptoError::io("write temp file", &tmp, e));
    drop(f);
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(CryptoError::io("rename temp file over", path, e));
    }
    sync_dir(&parent_dir(path))
}

pub(crate) fn read_all(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| CryptoError::io("read", path, e))
}

/// A leftover temp file means a crash between write and rename; the real file is
/// still the last complete state, so the temp is just removed.
pub(crate) fn remove_stale_temp(path: &Path) {
    let _ = fs::remove_file(temp_path(path));
}

/// Big-endian, length-prefixed writer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// Append a blake3 checksum of everything written so far and return the bytes.
    pub(crate) fn finish_with_checksum(mut self) -> Vec<u8> {
        let sum = blake3::hash(&self.buf);
        self.buf.extend_from_slice(sum.as_bytes());
        self.buf
    }
}

/// Checked reader over a byte slice; every short read is a format error, never a panic.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|s| s.try_into().expect("length checked"))
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|a| a[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }
}

/// Split `data` into body and trailing 32-byte blake3 checksum, verifying it.
pub(crate) fn verify_checksum<'a>(
    what: &'static str,
    path: &Path,
    data: &'a [u8],
) -> Result<&'a [u8]> {
    if data.len() < 32 {
        return Err(CryptoError::FileFormat {
            what,
            path: path.to_path_buf(),
            reason: "file too short".into(),
        });
    }
    let (body, sum) = data.split_at(data.len() - 32);
    // Not secret, so a plain comparison is fine; this detects corruption, while
    // authenticity of keys and records comes from AES-SIV.
    if blake3::hash(body).as_bytes() != sum {
        return Err(CryptoError::ChecksumMismatch {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(body)
}
