//! The embedded store's view of the disk: every byte it reads or writes, every
//! fsync, rename and lock goes through [`Disk`] and [`DiskFile`], so that a
//! simulated disk ([`crate::simdisk`]) can stand in for the real one and drop,
//! tear or refuse writes the way a real disk does at a crash (issue 19, "a
//! simulated disk under the embedded store"). SIGKILL cannot show that: the
//! kernel keeps unsynced pages.
//!
//! [`OsDisk`] is the real file system: each method is one system call (`pread`,
//! `pwrite`, `fdatasync`, `fsync`, `ftruncate`, `fstat`, `flock`, `rename`,
//! `unlink`, `sync_file_range`), nothing is cached or reordered here.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// Identity of a file: if any of these changed, the file was written (the
/// clean-close record's test that the log is untouched, `clean.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileIdentity {
    // A file's length, not a collection's.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.len
    }
}

/// One open file. Positioned reads and writes only: no shared cursor, so one
/// handle serves every thread.
#[allow(clippy::len_without_is_empty)]
pub trait DiskFile: Send + Sync {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Makes the file's data (and its length) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes data and all metadata durable.
    fn sync_all(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn identity(&self) -> io::Result<FileIdentity>;
    /// An exclusive advisory lock; `false` if another holder has it.
    fn try_lock(&self) -> io::Result<bool>;
    fn unlock(&self);
    /// Starts and waits for write-back of a range (no metadata, no promise of
    /// durability): keeps a later fdatasync short.
    fn write_out(&self, offset: u64, len: u64) -> io::Result<()>;

    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// How [`Disk::open`] opens. Files it creates are private (mode 0600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Read,
    ReadWrite,
    /// Read and write, created if missing, never truncated.
    ReadWriteCreate,
    /// Fails with `AlreadyExists` if the file is there.
    CreateNew,
    /// Created or emptied.
    CreateTruncate,
}

/// The directory operations the store needs.
pub trait Disk: Send + Sync {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn DiskFile>>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Names this boot of the machine: it changes at every restart, when the
    /// page cache starts empty (`/proc/sys/kernel/random/boot_id`).
    fn boot_id(&self) -> String;

    /// Replaces `path` with `bytes` so that after a crash it is the old file or
    /// the whole new one: temporary file, fsync, rename, fsync of the directory.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().ok_or(io::ErrorKind::InvalidInput)?;
        self.create_dir_all(dir)?;
        let tmp = crate::fsio::tmp_path(path);
        // As `fsio::write_atomic`: a leftover temporary goes, the new one is
        // created private.
        match self.remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = self.open(&tmp, Open::CreateNew)?;
        file.write_all_at(bytes, 0)?;
        file.sync_all()?;
        drop(file);
        self.rename(&tmp, path)?;
        self.sync_dir(dir)
    }

    /// The whole file, if it is at most `max_bytes` long (`None` if longer).
    fn read_bounded(&self, path: &Path, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
        let file = self.open(path, Open::Read)?;
        let len = file.len()?;
        if len > max_bytes {
            return Ok(None);
        }
        let mut b = vec![0u8; len as usize];
        file.read_exact_at(&mut b, 0)?;
        Ok(Some(b))
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsDisk;

impl Disk for OsDisk {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn DiskFile>> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).mode(0o600);
        match how {
            Open::Read => &mut o,
            Open::ReadWrite => o.write(true),
            Open::ReadWriteCreate => o.write(true).create(true).truncate(false),
            Open::CreateNew => o.write(true).create_new(true),
            Open::CreateTruncate => o.write(true).create(true).truncate(true),
        };
        Ok(Arc::new(o.open(path)?))
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn boot_id(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
    }
}

impl DiskFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        FileExt::write_at(self, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn identity(&self) -> io::Result<FileIdentity> {
        let m = self.metadata()?;
        Ok(FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
    fn try_lock(&self) -> io::Result<bool> {
        match File::try_lock(self) {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn unlock(&self) {
        let _ = File::unlock(self);
    }
    fn write_out(&self, offset: u64, len: u64) -> io::Result<()> {
        sync_file_range(self, offset, len)
    }
}

// Neither std nor rustix nor nix wraps `sync_file_range`; the call takes no
// pointers, only the descriptor of an open file and two integers.
#[allow(unsafe_code)]
fn sync_file_range(file: &File, at: u64, n: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: no memory is passed; an invalid descriptor or range is an error return.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), at as i64, n as i64, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
