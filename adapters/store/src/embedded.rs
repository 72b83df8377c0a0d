//! The embedded default store: one append-only log file, group commit, no server.
//!
//! One writer thread owns all writes. Appenders hand it requests over a channel;
//! it takes every request waiting, encodes and chains them, writes them with one
//! `pwrite`, makes them durable with one `fdatasync`, and only then publishes them
//! to readers and answers the appenders. So throughput grows with the number of
//! concurrent appenders instead of paying one fsync each (group commit), and no
//! reader ever sees an event that is not on disk (principle 4, fail closed).
//!
//! See `docs/design.md` for the file format and the crash argument.

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, watch};

use crate::check::{Chain, Checks, StreamTip};
use crate::disk::{Disk, DiskFile, Open, OsDisk};
use crate::format::{self, Envelope, Hash, Id128, chain_hash, genesis_hash};
use crate::log::{self, Damage, FileHeader, FrameReader, HEADER_BYTES, NO_PREVIOUS};
use crate::{
    ActualRevision, AppendError, AppendOutcome, Clock, EventStore, EventStream, ExpectedRevision,
    Head, NewEvent, RecordedEvent, SealPlace, Sealer, StoreError, SystemClock,
};

/// The log file's name inside a ledger directory.
pub const LOG_FILE_NAME: &str = "events.log";

/// Limits of one append and of one group commit. Bounded so that a batch's
/// memory, its write and its latency are bounded too.
pub const APPEND_EVENTS_MAX: usize = 1024;
pub const BATCH_REQUESTS_MAX: usize = 4096;
/// One read returns at most this many bytes of frames.
pub const READ_BYTES_MAX: u64 = 16 << 20;

#[derive(Clone)]
pub struct OpenOptions {
    pub clock: Arc<dyn Clock>,
    /// Encrypts payloads marked `seal`; without one, such appends are refused.
    pub sealer: Option<Arc<dyn Sealer>>,
    /// Open even though the clean-close record says the log once held more
    /// events, if it now holds exactly this many: an operator's explicit
    /// decision to accept the loss (`mebyo store accept-loss`), which the caller
    /// records as an event. Anything else refuses ([`OpenError::Shorter`]).
    pub accept_loss_to: Option<u64>,
    /// Where the files live: the real file system, or a simulated disk in tests
    /// (`simdisk`).
    pub disk: Arc<dyn Disk>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            sealer: None,
            accept_loss_to: None,
            disk: Arc::new(OsDisk),
        }
    }
}

/// What readers need, published by the writer after each durable commit.
struct Index {
    /// Number of durable events; frame offsets live in the offsets file.
    count: u64,
    streams: HashMap<Box<str>, StreamTip>,
    head_hash: Hash,
    /// End of the last durable frame.
    end: u64,
    last_recorded_at_us: i64,
}

/// Frame offset of each position, 8 bytes each, in `events.idx`. Derived data:
/// rebuilt from the log at every open and never fsynced, so it cannot disagree
/// with the log for long and costs nothing on the commit path's critical fsync.
/// Keeping it on disk (read through the page cache) rather than in a Vec is what
/// keeps resident memory flat however many events are appended.
struct Offsets {
    file: Arc<dyn DiskFile>,
}

impl Offsets {
    fn get(&self, position: u64) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, position * 8)?;
        Ok(u64::from_le_bytes(b))
    }
    fn put(&self, first_position: u64, offsets: &[u64]) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(offsets.len() * 8);
        for o in offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
        self.file.write_all_at(&b, first_position * 8)
    }
}

/// Written (not fsynced) when an fsync of the log failed and the file could not
/// be cut back to what is durable: it holds the boot id, and until the machine
/// restarts the ledger does not open ([`OpenError::CacheSuspect`]).
pub const UNSYNCED_FILE_NAME: &str = "events.unsynced";

/// The offsets file's name inside a ledger directory.
pub const OFFSETS_FILE_NAME: &str = "events.idx";

struct Shared {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    file: Arc<dyn DiskFile>,
    offsets: Offsets,
    header: FileHeader,
    index: RwLock<Index>,
    /// Number of durable events; subscribers wait on it.
    committed: watch::Sender<u64>,
    poisoned: Mutex<Option<String>>,
    /// Held by the writer while it checks for poison and writes a batch, and by
    /// the syncer while it poisons the store and cuts the log back after a failed
    /// fsync: no batch lands after the cut (`cut_back_after_failed_sync`). Apart
    /// from `poisoned`, which the syncer reads every round, so that a round never
    /// waits for a write.
    write_gate: Mutex<()>,
}

struct Request {
    stream_id: String,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
    /// Appended right after `events`, each to its stream whatever it holds, all
    /// or nothing with them ([`EmbeddedStore::append_then`]).
    then: Vec<(String, Vec<NewEvent>)>,
    reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

struct Handle {
    shared: Arc<Shared>,
    /// Read-locked to send (a `Sender` is `Sync`), so appenders never contend;
    /// write-locked once, to close the channel.
    tx: RwLock<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has answered everything queued.
        self.tx.write().take();
        if let Some(w) = self.writer.lock().take() {
            let exited_cleanly = w.join().is_ok();
            // Every append is durable and no other writer exists: record what the
            // next open would otherwise rebuild by scanning (see `clean.rs`). Not
            // after a failure: the next open must look at the file itself.
            if exited_cleanly
                && self.shared.poisoned.lock().is_none()
                && let Err(e) = write_clean_close(&self.shared)
            {
                tracing::warn!(error = %e, "writing the clean-close record; the next open scans");
            }
        }
        // Subscribers may still hold the file to read; the write lock goes with the
        // last writer handle, so another process can open the ledger at once.
        self.shared.file.unlock();
    }
}

/// The embedded store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct EmbeddedStore {
    h: Arc<Handle>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0} already holds a ledger; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("creating the ledger in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no ledger at {0} (run `mebyo init` first)")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Header {
        path: PathBuf,
        source: log::ReadHeaderError,
    },
    #[error("the ledger at {0} is in use by another process")]
    Locked(PathBuf),
    /// The log ends before what its clean-close record says was written: frames
    /// cut off at a boundary (a restored older volume, lost writes). Nothing is
    /// changed and the record is kept, so every later open refuses too until an
    /// operator accepts the loss ([`OpenOptions::accept_loss_to`]).
    #[error(
        "the ledger at {dir} holds {count} events (the log ends at position {count}), but its clean-close record (events.clean) says {clean_close_count} were written: acknowledged events are missing"
    )]
    Shorter {
        dir: PathBuf,
        count: u64,
        clean_close_count: u64,
    },
    /// An fsync of the log failed earlier in this boot and what followed it
    /// could not be cut off: the page cache may show frames the disk never got
    /// (pages are marked clean after a failed write-back), so opening now could
    /// chain acknowledged events after a hole. A machine restart empties the
    /// cache; the open after it recovers from what is really on disk.
    #[error(
        "an fsync of the ledger at {0} failed since this machine started, so the page cache may show writes the disk does not hold (events.unsynced): restart the machine, then start again; the open after a restart recovers from what is on disk"
    )]
    CacheSuspect(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks the ledger's page cache as untrustworthy for the rest of this boot.
/// Not fsynced on purpose: a crash empties the cache, and with it the doubt.
fn mark_cache_suspect(disk: &dyn Disk, dir: &Path) {
    let path = dir.join(UNSYNCED_FILE_NAME);
    let written = disk
        .open(&path, Open::CreateTruncate)
        .and_then(|f| f.write_all_at(disk.boot_id().as_bytes(), 0));
    if let Err(e) = written {
        tracing::error!(error = %e, "marking the ledger's cache as unsynced");
    }
}

/// Refuses an open in the boot that marked the cache suspect; after a restart
/// the mark goes.
fn check_cache(disk: &dyn Disk, dir: &Path) -> Result<(), OpenError> {
    let path = dir.join(UNSYNCED_FILE_NAME);
    let Ok(Some(bytes)) = disk.read_bounded(&path, 256) else {
        return Ok(());
    };
    if bytes == disk.boot_id().as_bytes() {
        return Err(OpenError::CacheSuspect(dir.into()));
    }
    disk.remove_file(&path)
        .and_then(|()| disk.sync_dir(dir))
        .map_err(StoreError::Io)?;
    Ok(())
}

/// Result of opening: the store, and what recovery did.
pub struct Opened {
    pub store: EmbeddedStore,
    /// Bytes of a torn tail that recovery removed (0 after a clean shutdown).
    pub torn_tail_bytes: u64,
    /// True when the open trusted the clean-close record instead of scanning every
    /// frame (the log provably untouched since a clean close; see `clean.rs`).
    pub from_clean_close: bool,
    /// Events the clean-close record said the log held, when that was more than
    /// it holds and the loss was accepted ([`OpenOptions::accept_loss_to`]).
    pub accepted_loss_from: Option<u64>,
}

impl EmbeddedStore {
    pub fn log_path(dir: &Path) -> PathBuf {
        dir.join(LOG_FILE_NAME)
    }

    /// Whether `dir` already holds a ledger.
    pub fn exists(dir: &Path) -> bool {
        Self::log_path(dir).exists()
    }

    /// Creates a new, empty ledger in `dir` and makes it durable (file and directory).
    pub fn create(dir: &Path, ledger_id: Id128, created_at_us: i64) -> Result<(), CreateError> {
        Self::create_on(&OsDisk, dir, ledger_id, created_at_us)
    }

    /// [`EmbeddedStore::create`] on another disk.
    pub fn create_on(
        disk: &dyn Disk,
        dir: &Path,
        ledger_id: Id128,
        created_at_us: i64,
    ) -> Result<(), CreateError> {
        let path = Self::log_path(dir);
        let io = |source| CreateError::Io {
            path: path.clone(),
            source,
        };
        disk.create_dir_all(dir).map_err(io)?;
        let file = match disk.open(&path, Open::CreateNew) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CreateError::Exists(dir.into()));
            }
            Err(e) => return Err(io(e)),
        };
        let header = FileHeader {
            ledger_id,
            created_at_us,
        };
        file.write_all_at(&header.encode(), 0).map_err(io)?;
        file.sync_all().map_err(io)?;
        // The new directory entry must survive a crash too.
        disk.sync_dir(dir).map_err(io)?;
        Ok(())
    }

    /// Opens a ledger, repairing a torn tail and refusing any other damage.
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<Opened, OpenError> {
        let path = Self::log_path(dir);
        let disk = opts.disk.clone();
        let file = match disk.open(&path, Open::ReadWrite) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::Missing(dir.into()));
            }
            Err(e) => return Err(StoreError::Io(e).into()),
        };
        // One writer per ledger: a second process appending would fork the chain.
        if !file.try_lock().map_err(StoreError::Io)? {
            return Err(OpenError::Locked(dir.into()));
        }
        check_cache(&*disk, dir)?;
        let header = FileHeader::read_from(&*file).map_err(|source| OpenError::Header {
            path: path.clone(),
            source,
        })?;
        // Not truncated here: after a clean close its content is still good.
        let offsets = Offsets {
            file: disk
                .open(&dir.join(OFFSETS_FILE_NAME), Open::ReadWriteCreate)
                .map_err(StoreError::Io)?,
        };
        let clean = crate::clean::read(&*disk, dir).filter(|c| c.ledger_id == header.ledger_id);
        let said = clean.as_ref().map(|c| c.count);
        let fast = clean.and_then(|c| from_clean_close(c, &*file, &header, &offsets));
        let from_clean_close = fast.is_some();
        let (index, torn_tail_bytes) = match fast {
            Some(index) => (index, 0),
            None => {
                offsets.file.set_len(0).map_err(StoreError::Io)?;
                recover(&*file, &header, &offsets, &|| {
                    mark_cache_suspect(&*disk, dir)
                })?
            }
        };
        // Whatever an earlier process left unsynced (a cut after a failed write,
        // a truncation) is made durable before anything is written over it: new
        // frames over bytes of an older unsynced write could reach the disk mixed
        // with them, sector by sector, and read as a damaged frame after a crash.
        if let Err(e) = file.sync_all() {
            mark_cache_suspect(&*disk, dir);
            return Err(StoreError::Io(e).into());
        }
        // The record is evidence of how far the log went: a log that ends before
        // it lost acknowledged events, and is never served as if nothing happened
        // (issue 19 §3). Kept, so the next open refuses too.
        let accepted_loss_from = match said {
            Some(said) if said > index.count => {
                if opts.accept_loss_to != Some(index.count) {
                    return Err(OpenError::Shorter {
                        dir: dir.into(),
                        count: index.count,
                        clean_close_count: said,
                    });
                }
                tracing::warn!(
                    count = index.count,
                    clean_close_count = said,
                    "opening a ledger shorter than its clean-close record: the operator accepted the loss"
                );
                Some(said)
            }
            _ => None,
        };
        // The record describes the ledger as it was closed; before anything can
        // change it, it goes (a stale record is also refused by the log identity
        // check, this is belt and braces).
        crate::clean::remove(&*disk, dir).map_err(StoreError::Io)?;
        let count = index.count;
        let (committed, _) = watch::channel(count);
        let write_file = file.clone();
        let shared = Arc::new(Shared {
            disk,
            path,
            file,
            offsets,
            header,
            index: RwLock::new(index),
            committed,
            poisoned: Mutex::new(None),
            write_gate: Mutex::new(()),
        });
        let (tx, rx) = mpsc::channel();
        let writer = {
            let shared = shared.clone();
            let clock = opts.clock.clone();
            let sealer = opts.sealer.clone();
            std::thread::Builder::new()
                .name("mebyo-ledger-writer".into())
                .spawn(move || writer_loop(shared, rx, write_file, clock, sealer))
                .map_err(StoreError::Io)?
        };
        Ok(Opened {
            store: EmbeddedStore {
                h: Arc::new(Handle {
                    shared,
                    tx: RwLock::new(Some(tx)),
                    writer: Mutex::new(Some(writer)),
                }),
            },
            torn_tail_bytes,
            from_clean_close,
            accepted_loss_from,
        })
    }

    pub fn ledger_id(&self) -> Id128 {
        self.h.shared.header.ledger_id
    }

    pub fn path(&self) -> &Path {
        &self.h.shared.path
    }

    pub fn genesis(&self) -> Hash {
        genesis_hash(&self.h.shared.header.ledger_id)
    }

    fn read_all_now(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all(&self.h.shared, from, max)
    }
}

fn corrupt(position: u64, offset: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        offset,
        reason: reason.into(),
    }
}

/// The index from the clean-close record, if it may be trusted: it checks, names
/// this ledger, the log is untouched since (device, inode, length, mtime, ctime),
/// the offsets file matches its digest, and the head event's full hash is the
/// recorded head. Anything else: `None`, and the caller scans.
fn from_clean_close(
    c: crate::clean::Clean,
    file: &dyn DiskFile,
    header: &FileHeader,
    offsets: &Offsets,
) -> Option<Index> {
    let why_not = |reason: &str| {
        tracing::info!(reason, "clean-close record not used; scanning the log");
    };
    if c.ledger_id != header.ledger_id {
        why_not("another ledger");
        return None;
    }
    if file.identity().ok()? != c.log || c.end != c.log_len() {
        why_not("the log changed since the clean close");
        return None;
    }
    let idx_len = offsets.file.len().ok()?;
    if idx_len != c.count * 8 || crate::clean::digest_file(&*offsets.file).ok()? != c.offsets_blake3
    {
        why_not("the offsets file changed");
        return None;
    }
    // The head is what the next append chains to: its full hash, as in `recover`.
    let head_hash = if c.count == 0 {
        if c.end != HEADER_BYTES {
            return None;
        }
        genesis_hash(&header.ledger_id)
    } else {
        let at = offsets.get(c.count - 1).ok()?;
        let mut reader = FrameReader::new(file, at, c.end);
        let frame = reader.next_frame().ok()??.ok()?;
        if !frame.crc_ok
            || frame.position() != c.count - 1
            || at + frame.len() != c.end
            || chain_hash(frame.canonical()) != frame.stored_hash()
        {
            why_not("the head frame does not check");
            return None;
        }
        frame.stored_hash()
    };
    if head_hash != c.head_hash {
        why_not("the head hash differs");
        return None;
    }
    let mut streams = HashMap::default();
    streams.reserve(c.streams.len());
    for (sid, last_revision, last_position) in c.streams {
        streams.insert(
            sid,
            StreamTip {
                last_revision,
                last_position,
            },
        );
    }
    Some(Index {
        count: c.count,
        streams,
        head_hash,
        end: c.end,
        last_recorded_at_us: c.last_recorded_at_us,
    })
}

/// Writes the clean-close record of a store whose writer has exited.
fn write_clean_close(shared: &Shared) -> std::io::Result<()> {
    let idx = shared.index.read();
    let log = shared.file.identity()?;
    if log.len() != idx.end {
        // Bytes past the last durable frame (a failed write): let open deal with it.
        return Ok(());
    }
    shared.offsets.file.sync_all()?;
    let clean = crate::clean::Clean {
        ledger_id: shared.header.ledger_id,
        log,
        count: idx.count,
        end: idx.end,
        head_hash: idx.head_hash,
        last_recorded_at_us: idx.last_recorded_at_us,
        offsets_blake3: crate::clean::digest_file(&*shared.offsets.file)?,
        streams: idx
            .streams
            .iter()
            .map(|(sid, t)| (sid.clone(), t.last_revision, t.last_position))
            .collect(),
    };
    let dir = shared.path.parent().expect("the log lives in a directory");
    crate::clean::write(&*shared.disk, dir, &clean)
}

/// Scans the whole log, rebuilding the index, checking frame checksums and every
/// frame as `audit verify` does (`check.rs`; hashes: the head's only). Damage at
/// the end that a crash can leave is truncated; any other damage stops the open
/// with its position.
fn recover(
    file: &dyn DiskFile,
    header: &FileHeader,
    offsets: &Offsets,
    cut_failed: &dyn Fn(),
) -> Result<(Index, u64), StoreError> {
    let file_len = file.len()?;
    let mut pending: Vec<u64> = Vec::with_capacity(1 << 16);
    let mut last_offset = 0u64;
    let mut end = HEADER_BYTES;
    // The same checks as `audit verify` (check.rs), but the hash of the head only.
    let mut chain = Chain::new(&header.ledger_id);
    let mut reader = FrameReader::new(file, HEADER_BYTES, file_len);
    let damage_at = loop {
        let position = chain.count;
        if pending.len() == pending.capacity() {
            offsets.put(position - pending.len() as u64, &pending)?;
            pending.clear();
        }
        match reader.next_frame()? {
            None => break None,
            Some(Err(fault)) => break Some((reader.offset(), None, format!("{fault:?}"))),
            Some(Ok(frame)) if !frame.crc_ok => {
                let end = frame.offset + frame.len();
                break Some((frame.offset, Some(end), "frame checksum mismatch".into()));
            }
            Some(Ok(frame)) => {
                let offset = frame.offset;
                chain.check(&frame, Checks::default()).map_err(|f| {
                    corrupt(position, offset, format!("{:?}: {}", f.kind, f.detail))
                })?;
                pending.push(offset);
                last_offset = offset;
                end = offset + frame.len();
            }
        }
    };
    let index = Index {
        count: chain.count,
        streams: chain.streams,
        head_hash: chain.head_hash,
        end,
        last_recorded_at_us: chain.last_recorded_at_us,
    };
    // The head is what the next append chains to: check its full hash, not only its
    // checksum, so an edited last event cannot become the base of new history.
    offsets.put(index.count - pending.len() as u64, &pending)?;
    if index.count > 0 {
        let body = match log::read_frame_at(file, last_offset, end)? {
            Ok((_, body, true)) => body,
            _ => {
                return Err(corrupt(
                    index.count - 1,
                    last_offset,
                    "the head frame changed",
                ));
            }
        };
        let canonical = &body[..body.len() - 32];
        if chain_hash(canonical) != index.head_hash {
            let position = index.count - 1;
            return Err(corrupt(
                position,
                last_offset,
                "hash does not match the event",
            ));
        }
    }
    let mut torn = 0;
    if let Some((offset, complete_end, reason)) = damage_at {
        let position = index.count;
        match log::classify_damage(file, offset, file_len, complete_end, position)? {
            Damage::Corrupt => return Err(corrupt(position, offset, reason)),
            Damage::TornTail => {
                torn = file_len - offset;
                tracing::warn!(
                    offset,
                    bytes = torn,
                    "removing what follows the last intact frame (an interrupted write, or zeros written ahead of it)"
                );
                // A cut that is not durable leaves the disk and the cache apart.
                if let Err(e) = file.set_len(offset).and_then(|()| file.sync_all()) {
                    cut_failed();
                    return Err(e.into());
                }
            }
        }
    }
    Ok((index, torn))
}

type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

/// A batch that the writer has written (not yet durable).
struct Written {
    /// Events in the log once this batch is durable.
    count: u64,
    head_hash: Hash,
    end: u64,
    recorded_at_us: i64,
    first_position: u64,
    offsets: Vec<u64>,
    tips: Vec<(String, StreamTip)>,
    replies: Vec<(Reply, Result<AppendOutcome, AppendError>)>,
}

/// How long the writer waits for the appenders of the previous commit to come
/// back before committing without them. About one fsync here: waiting longer than
/// a commit takes would cost more than it saves.
const GATHER_WAIT_MAX: std::time::Duration = std::time::Duration::from_micros(150);

/// Group commit: take every waiting request, check expected revisions, chain and
/// encode the events and write them with one `pwrite`; the syncer thread then
/// makes them durable with one `fdatasync`, publishes and answers, while this
/// thread goes on with the next batch (docs/design.md, "Appending").
///
/// Appenders answered by one commit usually come straight back; if the writer
/// committed the moment the first of them returned, the rest would wait a whole
/// extra fsync, and throughput would halve. So it waits (briefly, bounded by
/// `GATHER_WAIT_MAX`) until as many requests as the previous commit carried have
/// arrived. A lone appender never waits: the previous commit carried one.
fn writer_loop(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    file: Arc<dyn DiskFile>,
    clock: Arc<dyn Clock>,
    sealer: Option<Arc<dyn Sealer>>,
) {
    let (mut count, mut head_hash, mut end, mut last_ts) = {
        let idx = shared.index.read();
        (idx.count, idx.head_hash, idx.end, idx.last_recorded_at_us)
    };
    // Tips of streams in the batch being committed; the durable map in the index
    // gets them once they are on disk.
    let mut pending_tips: HashMap<String, StreamTip> = HashMap::default();
    // Tips of streams in batches written but not yet published by the syncer
    // (pipelined commit): the next batch checks expectations against them.
    let mut unpublished_tips: HashMap<String, StreamTip> = HashMap::default();
    // The syncer makes written batches durable and publishes them, in order, while
    // this thread encodes and writes the next ones (see `syncer_loop`).
    let (sync_tx, sync_rx) = mpsc::channel::<Written>();
    let syncer = {
        let shared = shared.clone();
        let file = file.clone();
        std::thread::Builder::new()
            .name("mebyo-ledger-syncer".into())
            .spawn(move || syncer_loop(&shared, &*file, sync_rx))
    };
    let syncer = match syncer {
        Ok(t) => t,
        Err(e) => {
            // No syncer, no durability: refuse every append.
            let why = format!("starting the ledger syncer: {e}");
            *shared.poisoned.lock() = Some(why.clone());
            while let Ok(r) = rx.recv() {
                let _ = r.reply.send(Err(StoreError::Poisoned(why.clone()).into()));
            }
            return;
        }
    };
    let mut batch: Vec<Request> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut canonical: Vec<u8> = Vec::with_capacity(4096);
    let mut expected_requests = 1usize;
    // Zeros written ahead of the log's end, by a thread of their own (zeros.rs).
    let zeros =
        crate::zeros::ZerosAhead::start(file.clone(), file.len().map_or(end, |l| l).max(end));

    while let Ok(first) = rx.recv() {
        batch.push(first);
        let deadline = std::time::Instant::now() + GATHER_WAIT_MAX;
        while batch.len() < BATCH_REQUESTS_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) if batch.len() >= expected_requests => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
            }
        }
        expected_requests = batch.len();
        if let Some(why) = shared.poisoned.lock().clone() {
            for r in batch.drain(..) {
                let _ = r.reply.send(Err(StoreError::Poisoned(why.clone()).into()));
            }
            continue;
        }
        // Time never runs backwards inside the ledger, whatever the wall clock does.
        let now = clock.now_us().max(last_ts);
        let (count0, end0) = (count, end);
        buf.clear();
        let mut w = Written {
            count,
            head_hash,
            end,
            recorded_at_us: now,
            first_position: count0,
            offsets: Vec::new(),
            tips: Vec::new(),
            replies: Vec::with_capacity(batch.len()),
        };
        {
            // Tips the syncer has published are in the index; forget them here.
            let published = *shared.committed.borrow();
            // What each frame says was durable when it was written (`durable_lag`).
            let durable = published;
            unpublished_tips.retain(|_, t| t.last_position >= published);
            pending_tips.clear();
            for req in batch.drain(..) {
                let Request {
                    stream_id,
                    expected,
                    events,
                    then,
                    reply,
                } = req;
                // Where this request started, to undo all its parts if one fails.
                let mark = (count, head_hash, buf.len(), w.offsets.len(), w.tips.len());
                let mut replaced: Vec<(String, Option<StreamTip>)> = Vec::new();
                let mut outcome = None;
                let mut failure = None;
                let parts = std::iter::once((stream_id, expected, events))
                    .chain(then.into_iter().map(|(s, e)| (s, ExpectedRevision::Any, e)));
                for (stream_id, expected, mut events) in parts {
                    let tip = pending_tips
                        .get(&stream_id)
                        .or_else(|| unpublished_tips.get(&stream_id))
                        .copied()
                        .or_else(|| shared.index.read().streams.get(stream_id.as_str()).copied());
                    let actual = tip.map_or(ActualRevision::NoStream, |t| {
                        ActualRevision::Revision(t.last_revision)
                    });
                    let ok = match expected {
                        ExpectedRevision::Any => true,
                        ExpectedRevision::NoStream => tip.is_none(),
                        ExpectedRevision::Exact(n) => tip.is_some_and(|t| t.last_revision == n),
                    };
                    if !ok {
                        failure = Some(AppendError::WrongExpectedRevision {
                            stream: stream_id,
                            expected,
                            actual,
                        });
                        break;
                    }
                    let (mut revision, mut prev_in_stream) =
                        tip.map_or((0, NO_PREVIOUS), |t| (t.last_revision + 1, t.last_position));
                    // Seal every event of the part before encoding any, so a sealing
                    // failure refuses the whole append and leaves nothing half-written.
                    if let Err(why) =
                        seal_all(sealer.as_deref(), &stream_id, revision, count, &mut events)
                    {
                        failure = Some(AppendError::Seal(why));
                        break;
                    }
                    let first_position = count;
                    for ev in events {
                        canonical.clear();
                        encode_new(
                            &mut canonical,
                            count,
                            &stream_id,
                            revision,
                            now,
                            &ev,
                            &head_hash,
                        );
                        let hash = chain_hash(&canonical);
                        w.offsets.push(end + buf.len() as u64);
                        let lag = u32::try_from(count - durable).unwrap_or(u32::MAX);
                        log::encode_frame(&mut buf, prev_in_stream, lag, &canonical, &hash);
                        prev_in_stream = count;
                        head_hash = hash;
                        count += 1;
                        revision += 1;
                    }
                    let tip = StreamTip {
                        last_revision: revision - 1,
                        last_position: count - 1,
                    };
                    replaced.push((stream_id.clone(), pending_tips.get(&stream_id).copied()));
                    pending_tips.insert(stream_id.clone(), tip);
                    w.tips.push((stream_id, tip));
                    // The answer is about the first part, the one with an expectation.
                    outcome.get_or_insert(AppendOutcome {
                        first_position,
                        last_revision: revision - 1,
                        last_hash: head_hash,
                    });
                }
                match (failure, outcome) {
                    (None, Some(o)) => w.replies.push((reply, Ok(o))),
                    (failure, _) => {
                        // Undo the parts already encoded: nothing of this request is written.
                        (count, head_hash) = (mark.0, mark.1);
                        buf.truncate(mark.2);
                        w.offsets.truncate(mark.3);
                        w.tips.truncate(mark.4);
                        for (s, old) in replaced.into_iter().rev() {
                            match old {
                                Some(t) => pending_tips.insert(s, t),
                                None => pending_tips.remove(&s),
                            };
                        }
                        let err = failure.unwrap_or(AppendError::Empty);
                        w.replies.push((reply, Err(err)));
                    }
                }
            }
        }
        if !buf.is_empty() {
            zeros.before_write(end, end + buf.len() as u64);
            // Written through the write gate, so that no write lands after a failed
            // fsync has cut the file back (`syncer_loop`).
            let gate = shared.write_gate.lock();
            let poisoned = shared.poisoned.lock().clone();
            let failed = match poisoned {
                Some(why) => Some(why),
                None => file.write_all_at(&buf, end).err().map(|e| {
                    let why = format!("{e}");
                    tracing::error!(error = %why, "ledger write failed; the store refuses further appends");
                    *shared.poisoned.lock() = Some(why.clone());
                    let _ = file.set_len(end0);
                    why
                }),
            };
            drop(gate);
            if let Some(why) = failed {
                for (reply, res) in w.replies.drain(..) {
                    let _ = reply.send(res.and(Err(StoreError::Poisoned(why.clone()).into())));
                }
                (count, end) = (count0, end0);
                continue;
            }
            end += buf.len() as u64;
            last_ts = now;
        }
        w.count = count;
        w.head_hash = head_hash;
        w.end = end;
        for (s, t) in &w.tips {
            unpublished_tips.insert(s.clone(), *t);
        }
        if let Err(mpsc::SendError(w)) = sync_tx.send(w) {
            // The syncer is gone (it only stops when this thread does): refuse.
            let why = "the ledger syncer stopped".to_string();
            *shared.poisoned.lock() = Some(why.clone());
            fail_written(w, &why);
        }
    }
    // Every request is answered by the syncer; wait for it so that a clean close
    // happens only after the last commit is durable and published.
    drop(sync_tx);
    if syncer.join().is_err() {
        *shared.poisoned.lock() = Some("the ledger syncer panicked".into());
    }
    // A clean close leaves the file ending at its last frame (the clean-close
    // record requires it); after a failure the next open trims the zeros. The
    // zeros thread stops first, so nothing writes after the trim.
    drop(zeros);
    if shared.poisoned.lock().is_none()
        && file.len().is_ok_and(|l| l > end)
        && let Err(e) = file.set_len(end).and_then(|()| file.sync_all())
    {
        tracing::warn!(error = %e, "trimming the preallocated tail; the next open scans");
    }
}

/// Pipelined commit: the writer encodes and writes batch N+1 while this thread
/// makes batch N durable. Each round takes every batch written so far, makes them
/// all durable with one `fdatasync` (it covers every write that returned before it
/// started), then publishes and answers them in order. In order also for batches
/// that only carry refusals: a conflict is reported only once the write it
/// conflicted with is visible, so an appender that reloads and retries sees it.
fn syncer_loop(shared: &Shared, file: &dyn DiskFile, rx: mpsc::Receiver<Written>) {
    let mut group: Vec<Written> = Vec::new();
    while let Ok(first) = rx.recv() {
        group.push(first);
        group.extend(rx.try_iter());
        if let Some(why) = shared.poisoned.lock().clone() {
            for w in group.drain(..) {
                fail_written(w, &why);
            }
            continue;
        }
        if group.iter().any(|w| !w.offsets.is_empty())
            && let Err(e) = file.sync_data()
        {
            // After a failed fsync the kernel may have dropped the dirty pages, so a
            // retry could acknowledge data that is not on disk. Stop writing;
            // reopening rescans the file and keeps only what is really there.
            let why = format!("fdatasync failed: {e}");
            tracing::error!(error = %why, "the store refuses further appends");
            cut_back_after_failed_sync(shared, file, &why);
            for w in group.drain(..) {
                fail_written(w, &why);
            }
            continue;
        }
        for w in group.drain(..) {
            publish(shared, w);
        }
    }
}

/// After a failed fsync the kernel has marked the unwritten pages clean: reads
/// still show the frames, but they may never reach the disk, and a later fsync
/// will not retry them. Left in the file, a reopen (without a crash) would take
/// them as durable and chain acknowledged events after a hole (the "fsyncgate"
/// problem). So everything after the last published frame goes, through the
/// write gate, so the writer writes nothing after it. If even that fails, a
/// reopen sees the cut in the page cache; after a crash, what survives past the
/// last acknowledged frame is a torn tail like any other.
fn cut_back_after_failed_sync(shared: &Shared, file: &dyn DiskFile, why: &str) {
    let _gate = shared.write_gate.lock();
    *shared.poisoned.lock() = Some(why.to_string());
    let end = shared.index.read().end;
    if let Err(e) = file.set_len(end).and_then(|()| file.sync_data()) {
        tracing::error!(error = %e, "cutting the log back to its last durable frame");
        let dir = shared.path.parent().expect("the log lives in a directory");
        mark_cache_suspect(&*shared.disk, dir);
    }
}

fn fail_written(w: Written, why: &str) {
    for (reply, res) in w.replies {
        let _ = reply.send(res.and(Err(StoreError::Poisoned(why.to_string()).into())));
    }
}

/// Publishes a durable batch to readers (offsets file, stream tips, head) and
/// answers its appenders — in that order, so no reader or appender ever sees an
/// event that is not on disk.
fn publish(shared: &Shared, w: Written) {
    if w.offsets.is_empty() {
        // Only refusals: nothing to publish.
        for (reply, res) in w.replies {
            let _ = reply.send(res);
        }
        return;
    }
    if let Some(why) = shared.poisoned.lock().clone() {
        // An earlier batch of this round failed to publish: keep the order.
        return fail_written(w, &why);
    }
    // Readers look positions up in the offsets file, so it is written before the
    // commit is published. Not a durability matter (derived, rebuilt at open), but
    // readers would fail without it: stop, like any IO error.
    if let Err(e) = shared.offsets.put(w.first_position, &w.offsets) {
        let why = format!("writing the offsets index: {e}");
        tracing::error!(error = %why, "the store refuses further appends");
        *shared.poisoned.lock() = Some(why.clone());
        return fail_written(w, &why);
    }
    {
        let mut idx = shared.index.write();
        for (s, t) in &w.tips {
            match idx.streams.get_mut(s.as_str()) {
                Some(old) => *old = *t,
                None => {
                    idx.streams.insert(s.as_str().into(), *t);
                }
            }
        }
        idx.count = w.count;
        idx.head_hash = w.head_hash;
        idx.end = w.end;
        idx.last_recorded_at_us = idx.last_recorded_at_us.max(w.recorded_at_us);
    }
    shared.committed.send_replace(w.count);
    for (reply, res) in w.replies {
        let _ = reply.send(res);
    }
}

/// Replaces each `seal` payload with its ciphertext, bound to the place the event
/// will take (positions and revisions follow from the first ones).
fn seal_all(
    sealer: Option<&dyn Sealer>,
    stream_id: &str,
    first_revision: u64,
    first_position: u64,
    events: &mut [NewEvent],
) -> Result<(), String> {
    for (i, ev) in events.iter_mut().enumerate() {
        if !ev.seal {
            continue;
        }
        let sealer = sealer.ok_or("this store has no sealer configured")?;
        let place = SealPlace {
            stream_id,
            stream_revision: first_revision + i as u64,
            event_type: &ev.event_type,
            position: first_position + i as u64,
        };
        let sealed = sealer.seal(&ev.key_ref, &place, &ev.payload)?;
        // Do not leave plaintext lying in freed memory longer than needed.
        ev.payload.fill(0);
        ev.payload = sealed;
        ev.seal = false;
    }
    Ok(())
}

/// The canonical encoding of a new event, written straight from its parts (the
/// hot path of append; equal to `Envelope::encode_canonical`, which the tests check).
fn encode_new(
    out: &mut Vec<u8>,
    position: u64,
    stream_id: &str,
    revision: u64,
    now: i64,
    ev: &NewEvent,
    prev: &Hash,
) {
    let env = format::CanonicalParts {
        position,
        stream_id,
        stream_revision: revision,
        event_type: &ev.event_type,
        schema_version: ev.schema_version,
        recorded_at_us: now,
        actor_role: &ev.actor.role,
        actor_id: &ev.actor.id,
        event_id: &ev.event_id,
        correlation_id: &ev.correlation_id,
        causation_id: &ev.causation_id,
        payload_kind: ev.payload_kind,
        key_ref: &ev.key_ref,
        payload: &ev.payload,
        prev_hash: prev,
    };
    env.encode(out);
}

fn read_all(shared: &Shared, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
    let (start, end, n) = {
        let idx = shared.index.read();
        let (count, end) = (idx.count, idx.end);
        drop(idx);
        if from >= count || max == 0 {
            return Ok(Vec::new());
        }
        let start = shared.offsets.get(from)?;
        let mut n = (max as u64).min(count - from);
        let end_of = |n: u64| -> std::io::Result<u64> {
            if from + n < count {
                shared.offsets.get(from + n)
            } else {
                Ok(end)
            }
        };
        // Keep one read bounded in bytes; always return at least one event.
        if end_of(n)? - start > READ_BYTES_MAX {
            let (mut lo, mut hi) = (1, n);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if end_of(mid)? - start <= READ_BYTES_MAX {
                    lo = mid
                } else {
                    hi = mid - 1
                }
            }
            n = lo;
        }
        (start, end_of(n)?, n)
    };
    let mut bytes = vec![0u8; (end - start) as usize];
    shared.file.read_exact_at(&mut bytes, start)?;
    let mut out = Vec::with_capacity(n as usize);
    let mut at = 0usize;
    for i in 0..n {
        let position = from + i;
        let env = decode_frame_bytes(&bytes[at..], position, start + at as u64)?;
        at += log::FRAME_HEADER_BYTES + env.1;
        out.push(env.0);
    }
    Ok(out)
}

/// Decodes the frame at the start of `bytes`, checking its checksum and that it is
/// the expected position (assert after reading). Returns the envelope and body length.
fn decode_frame_bytes(
    bytes: &[u8],
    position: u64,
    offset: u64,
) -> Result<(Envelope, usize), StoreError> {
    let h = bytes
        .get(..log::FRAME_HEADER_BYTES)
        .ok_or_else(|| corrupt(position, offset, "frame cut short"))?;
    let body_len = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
    let body = bytes
        .get(log::FRAME_HEADER_BYTES..log::FRAME_HEADER_BYTES + body_len)
        .ok_or_else(|| corrupt(position, offset, "frame cut short"))?;
    let crc = u32::from_le_bytes(h[20..24].try_into().unwrap());
    if h[0..4] != log::FRAME_MAGIC || crc32c::crc32c_append(crc32c::crc32c(&h[4..20]), body) != crc
    {
        return Err(corrupt(position, offset, "frame checksum mismatch on read"));
    }
    let (env, _) =
        Envelope::decode_body(body).map_err(|e| corrupt(position, offset, e.to_string()))?;
    if env.position != position {
        return Err(corrupt(
            position,
            offset,
            format!("frame claims position {}", env.position),
        ));
    }
    Ok((env, body_len))
}

fn read_one(shared: &Shared, position: u64) -> Result<(Envelope, u64), StoreError> {
    let file_end = shared.index.read().end;
    let offset = shared.offsets.get(position)?;
    match log::read_frame_at(&*shared.file, offset, file_end)? {
        Ok((prev_in_stream, body, true)) => {
            let (env, _) = Envelope::decode_body(&body)
                .map_err(|e| corrupt(position, offset, e.to_string()))?;
            if env.position != position {
                return Err(corrupt(
                    position,
                    offset,
                    format!("frame claims position {}", env.position),
                ));
            }
            Ok((env, prev_in_stream))
        }
        Ok((_, _, false)) => Err(corrupt(position, offset, "frame checksum mismatch on read")),
        Err(fault) => Err(corrupt(position, offset, format!("{fault:?}"))),
    }
}

fn read_stream(
    shared: &Shared,
    stream_id: &str,
    from_revision: u64,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let tip = shared.index.read().streams.get(stream_id).copied();
    let Some(tip) = tip else {
        return Ok(Vec::new());
    };
    if from_revision > tip.last_revision || max == 0 {
        return Ok(Vec::new());
    }
    // Walk back from the tip along the per-stream links; the index keeps only the
    // tip of each stream, which is what keeps memory flat per event.
    let last_wanted = tip
        .last_revision
        .min(from_revision.saturating_add(max as u64 - 1));
    let mut out = Vec::with_capacity((last_wanted - from_revision + 1) as usize);
    let mut position = tip.last_position;
    let mut revision = tip.last_revision;
    loop {
        let (env, prev) = read_one(shared, position)?;
        if env.stream_id != stream_id || env.stream_revision != revision {
            return Err(corrupt(
                position,
                0,
                "stream link leads to another stream's event",
            ));
        }
        if revision <= last_wanted {
            out.push(env);
        }
        if revision == from_revision {
            break;
        }
        if prev == NO_PREVIOUS {
            return Err(corrupt(position, 0, "stream link ends before revision 0"));
        }
        position = prev;
        revision -= 1;
    }
    out.reverse();
    Ok(out)
}

impl EmbeddedStore {
    /// Why the store stopped taking writes, if it has: a failed write or
    /// `fdatasync` (after which the kernel may have dropped dirty pages, so no
    /// retry may be acknowledged) stops it until it is reopened, which rescans
    /// the file and keeps only what is there. Readiness reports it (issue 19 §5).
    pub fn stopped(&self) -> Option<String> {
        self.h.shared.poisoned.lock().clone()
    }

    /// The names of the streams that start with `prefix`, from the index kept in
    /// memory (no IO): what start-up checks files beside the log against.
    pub fn streams_with_prefix(&self, prefix: &str) -> Vec<String> {
        let idx = self.h.shared.index.read();
        idx.streams
            .keys()
            .filter(|s| s.starts_with(prefix))
            .map(|s| s.to_string())
            .collect()
    }

    /// [`EmbeddedStore::streams_with_prefix`], only those whose last event is at
    /// `position` or later: what changed since then.
    pub fn streams_changed_since(&self, prefix: &str, position: u64) -> Vec<String> {
        let idx = self.h.shared.index.read();
        idx.streams
            .iter()
            .filter(|(s, t)| s.starts_with(prefix) && t.last_position >= position)
            .map(|(s, _)| s.to_string())
            .collect()
    }

    /// Tests only: stop taking writes exactly as an IO failure does, without one
    /// (the simulated disk that would make a real one is not built yet).
    #[doc(hidden)]
    pub fn inject_io_failure(&self, why: &str) {
        *self.h.shared.poisoned.lock() = Some(why.to_string());
    }

    async fn send(
        &self,
        req: Request,
        rx: oneshot::Receiver<Result<AppendOutcome, AppendError>>,
    ) -> Result<AppendOutcome, AppendError> {
        {
            let tx = self.h.tx.read();
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(req).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Appends `events` to `stream_id` as [`EventStore::append`] does and, in the
    /// same commit, right after them, each `then` part to its own stream whatever
    /// it holds: all of it or (a conflict on `stream_id`, a sealing failure)
    /// nothing, made durable by one `fdatasync`. The outcome is that of `events`.
    ///
    /// For a fact and the record that it was acted on (a record and the answer
    /// that reports it), which would otherwise wait for two commits in sequence.
    /// After a crash before the acknowledgement, what survives is a prefix in this
    /// order (never a `then` part without `events`), like any unacknowledged batch.
    pub async fn append_then(
        &self,
        stream_id: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        then: Vec<(String, Vec<NewEvent>)>,
    ) -> Result<AppendOutcome, AppendError> {
        validate_new(stream_id, &events)?;
        let mut total = events.len();
        for (s, e) in &then {
            validate_new(s, e)?;
            total += e.len();
        }
        if total > APPEND_EVENTS_MAX {
            return Err(AppendError::TooManyEvents {
                count: total,
                max: APPEND_EVENTS_MAX,
            });
        }
        let (reply, rx) = oneshot::channel();
        let req = Request {
            stream_id: stream_id.to_string(),
            expected,
            events,
            then,
            reply,
        };
        self.send(req, rx).await
    }
}

fn validate_new(stream_id: &str, events: &[NewEvent]) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::Empty);
    }
    if events.len() > APPEND_EVENTS_MAX {
        return Err(AppendError::TooManyEvents {
            count: events.len(),
            max: APPEND_EVENTS_MAX,
        });
    }
    format::check_identifier("stream id", stream_id, format::STREAM_ID_BYTES_MAX)?;
    for ev in events {
        format::check_identifier("event type", &ev.event_type, format::EVENT_TYPE_BYTES_MAX)?;
        format::check_identifier("actor role", &ev.actor.role, format::ACTOR_ROLE_BYTES_MAX)?;
        format::check_identifier("actor id", &ev.actor.id, format::ACTOR_ID_BYTES_MAX)?;
        format::check_payload(ev.payload_kind, &ev.key_ref, ev.payload.len())?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl EventStore for EmbeddedStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        // Bad input is refused here, before it reaches the writer: it changes nothing.
        validate_new(stream_id, &events)?;
        let (reply, rx) = oneshot::channel();
        let req = Request {
            stream_id: stream_id.to_string(),
            expected,
            events,
            then: Vec::new(),
            reply,
        };
        self.send(req, rx).await
    }

    // Reads are `pread`s that the page cache usually serves in microseconds; they run
    // on the caller's task rather than paying a thread hop per read.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_revision: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream(&self.h.shared, stream_id, from_revision, max)
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_now(from, max)
    }

    fn subscribe_all(&self, from: u64) -> EventStream {
        struct Sub {
            shared: Arc<Shared>,
            committed: watch::Receiver<u64>,
            next: u64,
            buffer: std::collections::VecDeque<RecordedEvent>,
            failed: bool,
        }
        let shared = self.h.shared.clone();
        let committed = shared.committed.subscribe();
        let sub = Sub {
            shared,
            committed,
            next: from,
            buffer: Default::default(),
            failed: false,
        };
        futures::stream::unfold(sub, |mut s| async move {
            if s.failed {
                return None;
            }
            // Every item costs the consuming task budget, so a subscriber catching
            // up on millions of buffered events yields now and then instead of
            // holding a runtime worker for a minute (which starved the web server's
            // accept loop at a restart with ten million events).
            tokio::task::coop::consume_budget().await;
            loop {
                if let Some(e) = s.buffer.pop_front() {
                    return Some((Ok(e), s));
                }
                // Mark the current value seen *before* reading, so a commit that lands
                // between the read and the wait still wakes us: no gap at the switch.
                let durable = *s.committed.borrow_and_update();
                if s.next < durable {
                    match read_all(&s.shared, s.next, 4096) {
                        Ok(evs) => {
                            s.next += evs.len() as u64;
                            s.buffer.extend(evs);
                            continue;
                        }
                        Err(e) => {
                            s.failed = true;
                            return Some((Err(e), s));
                        }
                    }
                }
                if s.committed.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed()
    }

    fn head(&self) -> Head {
        let idx = self.h.shared.index.read();
        Head {
            count: idx.count,
            hash: idx.head_hash,
        }
    }
}
