//! A simulated disk with seeded faults, for the store's simulation test
//! (`tests/simulation.rs`) and anyone who wants to see the store fail.
//!
//! Model. Each file has what the page cache shows (`data`) and what the platter
//! holds (`durable`), and the list of changes made since the last sync. A sync
//! moves the changes to `durable`. A crash ([`SimDisk::crash`]) keeps `durable`
//! and, for each unsynced change independently, keeps it, keeps a torn part of it
//! (whole 512-byte sectors, each written or not), or loses it — in any order, as a
//! kernel's write-back would. Directory entries (create, rename, unlink) become
//! durable only when their directory is synced; a crash forgets the others.
//! Directories made by `create_dir_all` are durable at once (the store's
//! directories exist before it runs).
//!
//! Faults ([`Faults`], each a probability per call, drawn from the seed):
//! - `fsync_eio`: a sync fails with EIO. Part of its changes reached the disk,
//!   chosen at random, and the rest never will, while reads still show them (what
//!   Linux does after a failed write-back: the pages are marked clean).
//! - `write_enospc`: a write stores a random prefix of its bytes, then fails with
//!   ENOSPC (a full disk; 1.0 keeps it full until faults change).
//!
//! A rolled-back file is made with [`SimDisk::durable_copy`] and
//! [`SimDisk::put_back`]. Every handle opened before a crash fails afterwards
//! (EIO), like the file descriptors of a process that is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::disk::{Disk, DiskFile, FileIdentity, Open};

/// Sector size: the unit a torn write keeps or loses.
pub const SECTOR_BYTES: usize = 512;

/// Probabilities of each fault, per call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub fsync_eio: f64,
    pub write_enospc: f64,
}

/// What the disk did to its callers so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub crashes: u64,
    pub fsync_failures: u64,
    pub enospc_writes: u64,
    /// Unsynced changes a crash kept in part.
    pub torn_changes: u64,
    /// Unsynced changes a crash or failed sync lost whole.
    pub lost_changes: u64,
}

#[derive(Clone)]
enum Change {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Default)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Change>,
    /// Bumped by every change: the file's mtime and ctime.
    version: i64,
}

struct State {
    rng: ChaCha8Rng,
    faults: Faults,
    stats: Stats,
    files: HashMap<u64, FileData>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    /// Bumped by a crash: handles of an older epoch are dead.
    epoch: u64,
    /// File id → the handle holding its lock.
    locks: HashMap<u64, u64>,
    next_id: u64,
    /// Changing calls left before the power goes ([`SimDisk::crash_after`]).
    crash_in: Option<u64>,
}

/// The simulated disk. Cheap to clone; clones share the disk. A clone made by
/// [`SimDisk::process`] is one process's view: it dies at the next crash.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
    epoch: Option<u64>,
}

fn eio(why: &str) -> io::Error {
    io::Error::other(format!("simulated EIO: {why}"))
}

fn apply(data: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, bytes } => {
            let (at, end) = (*offset as usize, *offset as usize + bytes.len());
            if data.len() < end {
                data.resize(end, 0);
            }
            data[at..end].copy_from_slice(bytes);
        }
        Change::SetLen(len) => data.resize(*len as usize, 0),
    }
}

/// A random part of a write, in whole sectors of the file, each kept or not.
fn torn(rng: &mut ChaCha8Rng, offset: u64, bytes: &[u8]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        // Up to the next sector boundary of the file.
        let file_at = offset as usize + at;
        let n = (SECTOR_BYTES - file_at % SECTOR_BYTES).min(bytes.len() - at);
        if rng.random_bool(0.5) {
            out.push(Change::Write {
                offset: file_at as u64,
                bytes: bytes[at..at + n].to_vec(),
            });
        }
        at += n;
    }
    out
}

impl State {
    /// Counts a changing call; `Err` once the power has gone with it.
    fn tick(&mut self) -> io::Result<()> {
        match self.crash_in {
            Some(0) | None => Ok(()),
            Some(1) => {
                self.crash_in = None;
                self.crash();
                Err(eio("power lost"))
            }
            Some(n) => {
                self.crash_in = Some(n - 1);
                Ok(())
            }
        }
    }

    fn crash(&mut self) {
        self.stats.crashes += 1;
        self.epoch += 1;
        self.locks.clear();
        self.names = self.durable_names.clone();
        let ids: Vec<u64> = self.files.keys().copied().collect();
        for id in ids {
            self.settle(id, false);
            let f = self.files.get_mut(&id).expect("listed above");
            f.data = f.durable.clone();
            f.version += 1;
        }
        let named: BTreeSet<u64> = self.names.values().copied().collect();
        self.files.retain(|id, _| named.contains(id));
    }

    /// Moves the unsynced changes of `id` to the platter: all of them, or (after
    /// a failed write-back) a random part.
    fn settle(&mut self, id: u64, all: bool) {
        let Some(f) = self.files.get_mut(&id) else {
            return;
        };
        for c in std::mem::take(&mut f.unsynced) {
            if all {
                apply(&mut f.durable, &c);
                continue;
            }
            match (self.rng.random_range(0..3), &c) {
                (0, _) => apply(&mut f.durable, &c),
                (1, Change::Write { offset, bytes }) => {
                    self.stats.torn_changes += 1;
                    for part in torn(&mut self.rng, *offset, bytes) {
                        apply(&mut f.durable, &part);
                    }
                }
                _ => self.stats.lost_changes += 1,
            }
        }
    }

    fn change(&mut self, id: u64, c: Change) {
        let f = self.files.entry(id).or_default();
        apply(&mut f.data, &c);
        f.unsynced.push(c);
        f.version += 1;
    }

    fn new_file(&mut self, path: &Path) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.files.insert(id, FileData::default());
        self.names.insert(path.to_path_buf(), id);
        id
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

impl SimDisk {
    pub fn new(seed: u64) -> SimDisk {
        let mut dirs = BTreeSet::new();
        dirs.insert(PathBuf::from("/"));
        SimDisk {
            state: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                faults: Faults::default(),
                stats: Stats::default(),
                files: HashMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                dirs,
                epoch: 0,
                locks: HashMap::new(),
                next_id: 0,
                crash_in: None,
            })),
            epoch: None,
        }
    }

    /// A view for one process: its calls fail once the machine has crashed.
    pub fn process(&self) -> SimDisk {
        SimDisk {
            state: self.state.clone(),
            epoch: Some(self.state.lock().epoch),
        }
    }

    /// The power goes during the `n`th changing call from now (write, truncate,
    /// sync, create, rename, unlink), which fails; `0` disarms.
    pub fn crash_after(&self, n: u64) {
        self.state.lock().crash_in = (n > 0).then_some(n);
    }

    fn lock(&self) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let st = self.state.lock();
        match self.epoch {
            Some(e) if e != st.epoch => Err(eio("the machine restarted since this process began")),
            _ => Ok(st),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().stats
    }

    /// Power off and on: what is not on the platter is kept, torn or lost (see
    /// the module doc); every open handle dies; locks go.
    pub fn crash(&self) {
        self.state.lock().crash();
    }

    /// What the platter holds for `path` (durable name and content).
    pub fn durable_copy(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let id = st.durable_names.get(path)?;
        Some(st.files.get(id)?.durable.clone())
    }

    /// What the page cache shows for `path` (what a read sees now).
    pub fn cached_copy(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let id = st.names.get(path)?;
        Some(st.files.get(id)?.data.clone())
    }

    /// Replaces the content of `path` with `bytes`, durably, as a restore of an
    /// older copy would (a rolled-back file). Not for a file that is open.
    pub fn put_back(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state.lock();
        let id = match st.names.get(path) {
            Some(id) => *id,
            None => st.new_file(path),
        };
        st.durable_names.insert(path.to_path_buf(), id);
        let f = st.files.get_mut(&id).expect("named above");
        f.data = bytes.to_vec();
        f.durable = bytes.to_vec();
        f.unsynced.clear();
        f.version += 1;
    }

    pub fn exists(&self, path: &Path) -> bool {
        self.state.lock().names.contains_key(path)
    }
}

struct SimFile {
    disk: SimDisk,
    id: u64,
    handle: u64,
    epoch: u64,
    writable: bool,
}

impl SimFile {
    fn live<'a>(&self, st: &'a mut State) -> io::Result<&'a mut State> {
        if st.epoch != self.epoch {
            return Err(eio("the machine restarted since this file was opened"));
        }
        Ok(st)
    }

    fn data_len(&self) -> io::Result<u64> {
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        Ok(st.files.get(&self.id).map_or(0, |f| f.data.len() as u64))
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        st.tick()?;
        let p = st.faults.fsync_eio;
        if p > 0.0 && st.rng.random_bool(p) {
            st.stats.fsync_failures += 1;
            st.settle(self.id, false);
            return Err(eio("fsync"));
        }
        st.settle(self.id, true);
        Ok(())
    }
}

/// Closing the last handle releases its lock, as closing a descriptor does.
impl Drop for SimFile {
    fn drop(&mut self) {
        self.unlock();
    }
}

impl DiskFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        let data = st.files.get(&self.id).map_or(&[][..], |f| &f.data[..]);
        let at = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        st.tick()?;
        let p = st.faults.write_enospc;
        if p > 0.0 && st.rng.random_bool(p) {
            st.stats.enospc_writes += 1;
            let kept = st.rng.random_range(0..=buf.len());
            if kept > 0 {
                let bytes = buf[..kept].to_vec();
                st.change(self.id, Change::Write { offset, bytes });
            }
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        st.change(
            self.id,
            Change::Write {
                offset,
                bytes: buf.to_vec(),
            },
        );
        Ok(buf.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        st.tick()?;
        st.change(self.id, Change::SetLen(len));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.data_len()
    }

    fn identity(&self) -> io::Result<FileIdentity> {
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        let f = st.files.get(&self.id).ok_or_else(|| eio("file gone"))?;
        Ok(FileIdentity {
            dev: 1,
            ino: self.id,
            len: f.data.len() as u64,
            mtime: (f.version, 0),
            ctime: (f.version, 0),
        })
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut st = self.disk.state.lock();
        let st = self.live(&mut st)?;
        match st.locks.get(&self.id) {
            Some(h) => Ok(*h == self.handle),
            None => {
                st.locks.insert(self.id, self.handle);
                Ok(true)
            }
        }
    }

    fn unlock(&self) {
        let mut st = self.disk.state.lock();
        if st.epoch == self.epoch && st.locks.get(&self.id) == Some(&self.handle) {
            st.locks.remove(&self.id);
        }
    }

    fn write_out(&self, _offset: u64, _len: u64) -> io::Result<()> {
        // Write-back promises nothing about durability: the model ignores it.
        self.data_len().map(|_| ())
    }
}

impl Disk for SimDisk {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn DiskFile>> {
        let mut st = self.lock()?;
        st.parent_exists(path)?;
        if how != Open::Read && how != Open::ReadWrite {
            st.tick()?;
        }
        let existing = st.names.get(path).copied();
        let id = match (how, existing) {
            (Open::CreateNew, Some(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Open::Read | Open::ReadWrite, None) => return Err(io::ErrorKind::NotFound.into()),
            (Open::CreateTruncate, Some(id)) => {
                st.change(id, Change::SetLen(0));
                id
            }
            (_, Some(id)) => id,
            (_, None) => st.new_file(path),
        };
        st.next_id += 1;
        let handle = st.next_id;
        Ok(Arc::new(SimFile {
            disk: SimDisk {
                state: self.state.clone(),
                epoch: None,
            },
            id,
            handle,
            epoch: st.epoch,
            writable: how != Open::Read,
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        for d in dir.ancestors() {
            st.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        st.tick()?;
        let in_dir = |p: &Path| p.parent() == Some(dir);
        let live: Vec<(PathBuf, u64)> = st
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        st.durable_names.retain(|p, _| !in_dir(p));
        st.durable_names.extend(live);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.parent_exists(to)?;
        st.tick()?;
        let id = st.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        st.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn boot_id(&self) -> String {
        format!("sim-boot-{}", self.state.lock().epoch)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.tick()?;
        st.names
            .remove(path)
            .map(|_| ())
            .ok_or(io::ErrorKind::NotFound.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn synced_data_survives_a_crash_and_dead_handles_fail() {
        let d = SimDisk::new(1);
        d.create_dir_all(&p("/l")).unwrap();
        let f = d.open(&p("/l/a"), Open::CreateNew).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        d.sync_dir(&p("/l")).unwrap();
        f.write_all_at(b" world", 5).unwrap();
        d.crash();
        assert!(
            f.read_at(&mut [0u8; 4], 0).is_err(),
            "a handle from before the crash"
        );
        let g = d.open(&p("/l/a"), Open::Read).unwrap();
        let mut b = vec![0u8; g.len().unwrap() as usize];
        g.read_exact_at(&mut b, 0).unwrap();
        // The unsynced tail is kept, torn (sector-wise: here one sector) or lost.
        assert!(b == b"hello" || b == b"hello world", "{b:?}");
    }

    #[test]
    fn an_unsynced_directory_entry_is_forgotten() {
        let d = SimDisk::new(2);
        d.create_dir_all(&p("/l")).unwrap();
        let f = d.open(&p("/l/a"), Open::CreateNew).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_all().unwrap();
        d.crash();
        assert!(!d.exists(&p("/l/a")));
        // Atomic replace: old or new, never neither.
        d.write_atomic(&p("/l/b"), b"old").unwrap();
        d.write_atomic(&p("/l/b"), b"new").unwrap();
        d.crash();
        assert_eq!(d.read_bounded(&p("/l/b"), 10).unwrap().unwrap(), b"new");
    }

    #[test]
    fn a_failed_fsync_keeps_reads_but_not_necessarily_the_platter() {
        let d = SimDisk::new(3);
        d.create_dir_all(&p("/l")).unwrap();
        let f = d.open(&p("/l/a"), Open::CreateNew).unwrap();
        d.sync_dir(&p("/l")).unwrap();
        d.set_faults(Faults {
            fsync_eio: 1.0,
            write_enospc: 0.0,
        });
        f.write_all_at(&[7u8; 4096], 0).unwrap();
        assert!(f.sync_data().is_err());
        assert_eq!(f.len().unwrap(), 4096, "the cache still shows the write");
        d.set_faults(Faults::default());
        d.crash();
        let g = d.open(&p("/l/a"), Open::Read).unwrap();
        let n = g.len().unwrap() as usize;
        let mut b = vec![0u8; n];
        g.read_exact_at(&mut b, 0).unwrap();
        assert!(b.iter().all(|&x| x == 0 || x == 7));
        assert_eq!(d.stats().fsync_failures, 1);
    }

    #[test]
    fn the_power_goes_at_the_nth_change_and_a_process_view_dies_with_it() {
        let d = SimDisk::new(5);
        let proc1 = d.process();
        proc1.create_dir_all(&p("/l")).unwrap();
        let f = proc1.open(&p("/l/a"), Open::CreateNew).unwrap(); // 1
        proc1.sync_dir(&p("/l")).unwrap(); // 2
        d.crash_after(2);
        f.write_all_at(b"a", 0).unwrap(); // 1
        assert!(f.sync_data().is_err(), "the power went here");
        assert!(
            proc1.sync_dir(&p("/l")).is_err(),
            "a process from before the crash"
        );
        assert!(d.process().open(&p("/l/a"), Open::Read).is_ok());
        assert_eq!(d.stats().crashes, 1);
    }

    #[test]
    fn a_full_disk_refuses_writes_until_space_returns() {
        let d = SimDisk::new(4);
        d.create_dir_all(&p("/l")).unwrap();
        let f = d.open(&p("/l/a"), Open::CreateNew).unwrap();
        d.set_faults(Faults {
            fsync_eio: 0.0,
            write_enospc: 1.0,
        });
        let e = f.write_all_at(b"abc", 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        d.set_faults(Faults::default());
        f.write_all_at(b"abc", 0).unwrap();
    }
}
