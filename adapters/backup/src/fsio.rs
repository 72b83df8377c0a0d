//! File primitives with the durability rules of the crate: new files are 0600
//! and fsynced, directories are fsynced after entries change, the manifest is
//! replaced atomically, and key files are destroyed by overwrite + fsync + unlink.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{BackupError, Result};

/// Owner read/write only: backup files are ciphertext, but their names, sizes and
/// the key files are nobody else's business either.
pub(crate) const PRIVATE_MODE: u32 = 0o600;

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory: without it a new or renamed entry can vanish in a crash
/// even though the file's own data was synced.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io("fsync directory", dir, e))
}

pub(crate) fn create_dir_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| BackupError::io("create directory", dir, e))
}

pub(crate) fn create_dir_all_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
        .map_err(|e| BackupError::io("create directory", dir, e))
}

/// A new file (never an existing one), mode 0600.
pub(crate) fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(path)
        .map_err(|e| BackupError::io("create", path, e))
}

/// Writes a brand-new file and fsyncs it and its directory.
pub(crate) fn write_new_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create_new(path)?;
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| BackupError::io("write", path, e));
    if res.is_err() {
        drop(f);
        let _ = fs::remove_file(path);
        return res;
    }
    sync_dir(&parent_dir(path))
}

/// Replace `path` atomically: temp file, fsync, rename, fsync directory. A
/// reader sees the whole old file or the whole new one, never a torn mix.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    let mut f = create_new(&tmp)?;
    let res = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| BackupError::io("write", &tmp, e));
    drop(f);
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(BackupError::io("rename over", path, e));
    }
    sync_dir(&parent_dir(path))
}

/// Reads a whole file, refusing one larger than `max` before allocating.
pub(crate) fn read_bounded(path: &Path, what: &'static str, max: u64) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| BackupError::io("stat", path, e))?
        .len();
    if len > max {
        return Err(BackupError::TooLarge { what, len, max });
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, 0)
        .map_err(|e| BackupError::io("read", path, e))?;
    Ok(buf)
}

/// Destroys a key file: overwrite every byte in place, fsync, unlink, fsync the
/// directory. On a plain filesystem the key's blocks then hold zeros; copy-on-write
/// filesystems and SSD wear levelling may keep old blocks, which is why the key
/// also never leaves this host except as the operator's offline copy, and that copy
/// is destroyed at the same time (docs/backups.md).
pub(crate) fn shred_file(path: &Path) -> Result<()> {
    let f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackupError::io("open for destruction", path, e)),
    };
    shred_open(&f, path)?;
    drop(f);
    fs::remove_file(path).map_err(|e| BackupError::io("unlink", path, e))?;
    sync_dir(&parent_dir(path))
}

/// Overwrites an open file's bytes with zeros and fsyncs it.
pub(crate) fn shred_open(f: &File, path: &Path) -> Result<()> {
    let len = f
        .metadata()
        .map_err(|e| BackupError::io("stat", path, e))?
        .len();
    let zeros = vec![0u8; len.min(1 << 16) as usize];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at)
            .map_err(|e| BackupError::io("overwrite", path, e))?;
        at += n as u64;
    }
    f.sync_all()
        .map_err(|e| BackupError::io("fsync overwritten key", path, e))
}
