//! Replacing a small file durably: the one way the platform rewrites its own files
//! (clean-close record, projection snapshot, password file, probe record).

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `path` through `fill` into `path.tmp` (mode 0600), fsyncs it, renames it
/// over `path` and fsyncs the directory: after a crash the file is the old one or
/// the whole new one, never a mix, and the new one survives once this returns
/// (principle 4). The directory is created if missing.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_atomic_mode_with(path, 0o600, fill)
}

/// [`write_atomic`] with the new file's mode (a certificate others may read).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    write_atomic_mode_with(path, mode, |w| w.write_all(bytes))
}

fn write_atomic_mode_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().ok_or(std::io::ErrorKind::InvalidInput)?;
    std::fs::create_dir_all(dir)?;
    let tmp = tmp_path(path);
    // A temporary left by a cut write goes first: reopened, it would keep its
    // own mode, and a key would be written into a file others may read.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    fill(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// [`write_atomic_with`] for bytes already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// `name.ext` → `name.ext.tmp`, beside it (same file system, so rename is atomic).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_leaves_no_temporary_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("f.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert!(!tmp_path(&p).exists());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A temporary left by a cut write, readable by others, is not reused.
        std::fs::write(tmp_path(&p), b"cut").unwrap();
        std::fs::set_permissions(tmp_path(&p), std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&p, b"new").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a leftover temporary's mode is not kept");
        // A failing writer leaves the old file as it was.
        let e = write_atomic_with(&p, |_| Err(std::io::Error::other("no")));
        assert!(e.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }
}
