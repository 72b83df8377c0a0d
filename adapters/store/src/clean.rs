//! The clean-close record (`events.clean`): what `open` would rebuild by scanning
//! every frame, written once when the store closes cleanly, so that the next open
//! of an untouched ledger need not read gigabytes (issue 4 §9: restart in ≤ 10 s;
//! ten million events of ~680 bytes are 6.7 GB, and the scan alone took 25 s).
//!
//! Trust rule: the record is used only if it checks (its own blake3), names this
//! ledger, and `events.log` is *provably untouched since*: the same device, inode,
//! length, mtime and ctime as recorded right after the last fsync. ctime cannot be
//! set from user space, so any write to the log (an append by another tool, an
//! edit, a truncation, a restore) changes it, and the open falls back to the full
//! scan with its crc and chain checks. The offsets file must match its recorded
//! blake3. The head event's full hash is re-checked in both paths.
//!
//! Crash argument: the record is written after the writer thread has exited (every
//! append fsynced) and after `events.idx` is fsynced, to a temporary file that is
//! fsynced and renamed; a crash leaves no record or a whole one. `open` deletes the
//! record (and fsyncs the directory) before the first append, so a record never
//! outlives the state it describes; even if deletion were lost, the first append
//! changes the log's length and ctime and the record no longer matches.
//!
//! Format (little-endian): `"MEBYOCLN"` ‖ u8 version=1 ‖ ledger id (16) ‖ log
//! identity (dev, ino, len u64; mtime s, ns, ctime s, ns i64) ‖ count u64 ‖ end u64
//! ‖ head hash (32) ‖ last recorded at µs i64 ‖ blake3 of events.idx (32) ‖
//! u64 stream count ‖ per stream: u16 id length ‖ id ‖ last revision u64 ‖ last
//! position u64 ‖ blake3 of all the preceding bytes (32).

use crate::disk::{Disk, DiskFile};
use std::path::{Path, PathBuf};

use crate::format::{Hash, Id128};

pub const CLEAN_FILE_NAME: &str = "events.clean";
const MAGIC: &[u8; 8] = b"MEBYOCLN";
const VERSION: u8 = 1;
/// A record larger than this is damage (about 30 M streams).
const RECORD_BYTES_MAX: u64 = 2 << 30;

/// Identity of the log file: if any of its fields changed, the file was written.
pub use crate::disk::FileIdentity as LogIdentity;

/// What the scan would have found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clean {
    pub ledger_id: Id128,
    pub log: LogIdentity,
    pub count: u64,
    pub end: u64,
    pub head_hash: Hash,
    pub last_recorded_at_us: i64,
    pub offsets_blake3: [u8; 32],
    pub streams: Vec<(Box<str>, u64, u64)>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(CLEAN_FILE_NAME)
}

/// blake3 of a file's whole content, streamed with positioned reads (`pread`:
/// the file's shared cursor is neither used nor moved).
pub fn digest_file(file: &dyn DiskFile) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(*h.finalize().as_bytes())
}

impl Clean {
    pub fn log_len(&self) -> u64 {
        self.log.len
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256 + self.streams.len() * 48);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.extend_from_slice(&self.ledger_id);
        let l = &self.log;
        for v in [l.dev, l.ino, l.len] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [l.mtime.0, l.mtime.1, l.ctime.0, l.ctime.1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.count.to_le_bytes());
        b.extend_from_slice(&self.end.to_le_bytes());
        b.extend_from_slice(&self.head_hash);
        b.extend_from_slice(&self.last_recorded_at_us.to_le_bytes());
        b.extend_from_slice(&self.offsets_blake3);
        b.extend_from_slice(&(self.streams.len() as u64).to_le_bytes());
        for (sid, rev, pos) in &self.streams {
            let len = u16::try_from(sid.len()).expect("stream ids are bounded");
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(sid.as_bytes());
            b.extend_from_slice(&rev.to_le_bytes());
            b.extend_from_slice(&pos.to_le_bytes());
        }
        let sum = blake3::hash(&b);
        b.extend_from_slice(sum.as_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Clean> {
        let (body, sum) = b.split_at_checked(b.len().checked_sub(32)?)?;
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(8)? != MAGIC || r.take(1)? != [VERSION] {
            return None;
        }
        let ledger_id: Id128 = r.take(16)?.try_into().ok()?;
        let log = LogIdentity {
            dev: r.u64()?,
            ino: r.u64()?,
            len: r.u64()?,
            mtime: (r.i64()?, r.i64()?),
            ctime: (r.i64()?, r.i64()?),
        };
        let count = r.u64()?;
        let end = r.u64()?;
        let head_hash: Hash = r.take(32)?.try_into().ok()?;
        let last_recorded_at_us = r.i64()?;
        let offsets_blake3: [u8; 32] = r.take(32)?.try_into().ok()?;
        let n = r.u64()?;
        // Each stream takes at least 18 bytes: a count beyond that is damage.
        if n > (r.0.len() / 18) as u64 {
            return None;
        }
        let mut streams = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
            let sid = std::str::from_utf8(r.take(len)?).ok()?.into();
            streams.push((sid, r.u64()?, r.u64()?));
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Clean {
            ledger_id,
            log,
            count,
            end,
            head_hash,
            last_recorded_at_us,
            offsets_blake3,
            streams,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Writes the record durably (temporary file, fsync, rename, directory fsync).
pub fn write(disk: &dyn Disk, dir: &Path, clean: &Clean) -> std::io::Result<()> {
    disk.write_atomic(&path(dir), &clean.encode())
}

/// Reads the record if there is one and it checks; `None` means "scan".
pub fn read(disk: &dyn Disk, dir: &Path) -> Option<Clean> {
    let b = disk.read_bounded(&path(dir), RECORD_BYTES_MAX).ok()??;
    Clean::decode(&b)
}

/// Removes the record before the store changes anything (durably).
pub fn remove(disk: &dyn Disk, dir: &Path) -> std::io::Result<()> {
    match disk.remove_file(&path(dir)) {
        Ok(()) => disk.sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Clean {
        Clean {
            ledger_id: [3; 16],
            log: LogIdentity {
                dev: 1,
                ino: 2,
                len: 3,
                mtime: (4, 5),
                ctime: (6, 7),
            },
            count: 10,
            end: 1000,
            head_hash: [9; 32],
            last_recorded_at_us: -1,
            offsets_blake3: [8; 32],
            streams: vec![("person-a".into(), 1, 2), ("records-b".into(), 0, 5)],
        }
    }

    #[test]
    fn round_trips_and_any_flipped_byte_is_refused() {
        let c = sample();
        let b = c.encode();
        assert_eq!(Clean::decode(&b), Some(c));
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 1;
            assert_eq!(Clean::decode(&d), None, "byte {i}");
        }
        assert_eq!(Clean::decode(&b[..b.len() - 1]), None);
        assert_eq!(Clean::decode(b""), None);
    }

    #[test]
    fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let d = crate::disk::OsDisk;
        assert_eq!(read(&d, dir.path()), None);
        write(&d, dir.path(), &sample()).unwrap();
        assert_eq!(read(&d, dir.path()), Some(sample()));
        remove(&d, dir.path()).unwrap();
        assert_eq!(read(&d, dir.path()), None);
        remove(&d, dir.path()).unwrap();
    }
}
