//! Taking backups: full and differential log sets, key-store sets, and the epoch
//! rotation that makes erasure reach into old backups (P4.10, P4.9).

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mebyo_store::format::Hash;
use mebyo_store::log::HEADER_BYTES;
use mebyo_store::{Actor, Clock, Head};
use rand::CryptoRng;

use crate::chunked::{self, CHUNK_BYTES_DEFAULT};
use crate::error::{BackupError, Result};
use crate::fsio;
use crate::keys::{BackupKey, KeyPaths, KeyPurpose};
use crate::ledger::LogFile;
use crate::manifest::{
    self, BaseRef, FORMAT_VERSION, FileEntry, KEYSTORE_FILE, Kind, LOG_FILE, LogRange, Manifest,
    Role, VAULT_FILE,
};

/// Largest key store / identity vault file a backup reads into memory.
pub const KEYSTORE_BYTES_MAX: u64 = 256 << 20;
pub const VAULT_BYTES_MAX: u64 = 1 << 30;
const OPERATOR_ID_BYTES_MAX: usize = 48;

/// The data directory's areas, as the platform lays them out.
#[derive(Debug, Clone)]
pub struct DataPaths {
    pub root: PathBuf,
}

impl DataPaths {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
        }
    }
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn keystore(&self) -> PathBuf {
        self.keys().join("keystore")
    }
    pub fn vault_dir(&self) -> PathBuf {
        self.root.join("vault")
    }
    pub fn vault(&self) -> PathBuf {
        self.vault_dir().join("identity.vault")
    }
    pub fn key_paths(&self) -> KeyPaths {
        KeyPaths::new(self.keys())
    }
}

/// Who or what started a backup job (recorded in the manifest and the event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartedBy {
    Scheduler,
    Operator(String),
}

impl StartedBy {
    /// An operator id: a pseudonymous token, never a name (it goes into the ledger).
    pub fn operator(id: &str) -> Result<Self> {
        let ok = !id.is_empty()
            && id.len() <= OPERATOR_ID_BYTES_MAX
            && id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !ok {
            return Err(BackupError::InvalidInput {
                what: "operator id",
                reason: format!(
                    "must be 1..={OPERATOR_ID_BYTES_MAX} characters of [a-z0-9._-] (a staff id, not a name)"
                ),
            });
        }
        Ok(Self::Operator(id.to_string()))
    }

    pub fn label(&self) -> String {
        match self {
            Self::Scheduler => "scheduler".into(),
            Self::Operator(id) => format!("operator:{id}"),
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Self::Scheduler => Actor::new("system", "scheduler"),
            Self::Operator(id) => Actor::new("operator", id.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Plaintext bytes per encrypted chunk.
    pub chunk_bytes: usize,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            chunk_bytes: CHUNK_BYTES_DEFAULT,
        }
    }
}

pub(crate) fn rfc3339(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{us}us"))
}

fn new_backup_id(kind: Kind, now_us: i64, rng: &mut (impl CryptoRng + ?Sized)) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(now_us as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut r = [0u8; 4];
    rng.fill_bytes(&mut r);
    let prefix = match kind {
        Kind::Full => "full",
        Kind::Differential => "diff",
        Kind::Keystore => "keys",
    };
    format!(
        "{prefix}-{:04}{:02}{:02}t{:02}{:02}{:02}z-{}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        hex::encode(r)
    )
}

/// A set directory being written. Dropped without `commit`, it removes itself,
/// so a failed run leaves nothing behind (and it never had a manifest anyway).
struct SetDir {
    path: PathBuf,
    committed: bool,
}

impl SetDir {
    fn create(dest: &Path, id: &str) -> Result<Self> {
        fsio::create_dir_all_private(dest)?;
        let path = dest.join(id);
        fsio::create_dir_private(&path)?;
        Ok(Self {
            path,
            committed: false,
        })
    }
    fn commit(mut self, log_key: &BackupKey, m: &mut Manifest) -> Result<()> {
        // Files first (fsynced one by one as written), their directory entries
        // next, the manifest last and atomically: a manifest never names a file
        // that a crash could take away.
        fsio::sync_dir(&self.path)?;
        m.seal(log_key);
        manifest::write(&self.path, m)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for SetDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn entry(name: &str, role: Role, key: &BackupKey, w: chunked::Written, chunk: usize) -> FileEntry {
    FileEntry {
        name: name.into(),
        role,
        key_id: key.id_hex(),
        bytes: w.bytes,
        blake3: w.blake3,
        plain_bytes: w.plain_bytes,
        chunk_bytes: chunk as u64,
        chunks: w.chunks,
    }
}

/// Checks a key-store or vault file's own framing (magic and trailing blake3),
/// so a backup never preserves a torn or damaged copy. Needs no key.
fn check_framed(path: &Path, bytes: &[u8], magic: &[u8; 8]) -> Result<()> {
    let bad = |reason: &str| BackupError::Ledger {
        reason: format!("{} cannot be backed up: {reason}", path.display()),
    };
    if bytes.len() < 8 + 32 || &bytes[..8] != magic {
        return Err(bad("not the expected file format"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(bad("its checksum fails (damaged?)"));
    }
    Ok(())
}

/// Encrypts the key store (and the identity vault, if there is one) under the
/// epoch key into `set_dir`. Returns `None` when the data directory has no key
/// store yet (a ledger made by `mebyo init` alone).
fn write_epoch_files(
    data: &DataPaths,
    set_dir: &Path,
    backup_id: &str,
    epoch: &BackupKey,
    opts: &BackupOptions,
) -> Result<Vec<FileEntry>> {
    // The caller loaded the epoch key *before* this reads the key store: a rotation
    // always follows its erasure, so a store read after loading the newest epoch
    // key can no longer hold an erased person's DEKs (docs/backups.md, "Races").
    let ks_path = data.keystore();
    let ks = fsio::read_bounded(&ks_path, "key store", KEYSTORE_BYTES_MAX)?;
    check_framed(&ks_path, &ks, b"MEBYOKS\0")?;
    let mut files = Vec::new();
    let w = chunked::encrypt_to_file(
        epoch,
        backup_id,
        KEYSTORE_FILE,
        &mut &ks[..],
        ks.len() as u64,
        opts.chunk_bytes,
        &set_dir.join(KEYSTORE_FILE),
    )?;
    files.push(entry(
        KEYSTORE_FILE,
        Role::Keystore,
        epoch,
        w,
        opts.chunk_bytes,
    ));
    let vault_path = data.vault();
    if vault_path.exists() {
        // The vault holds blind-index tokens of a person until their erasure; under
        // the epoch key, old vault copies are crypto-shredded with the key store's.
        let v = fsio::read_bounded(&vault_path, "identity vault", VAULT_BYTES_MAX)?;
        check_framed(&vault_path, &v, b"MEBYOIV\0")?;
        let w = chunked::encrypt_to_file(
            epoch,
            backup_id,
            VAULT_FILE,
            &mut &v[..],
            v.len() as u64,
            opts.chunk_bytes,
            &set_dir.join(VAULT_FILE),
        )?;
        files.push(entry(VAULT_FILE, Role::Vault, epoch, w, opts.chunk_bytes));
    }
    Ok(files)
}

/// The latest full backup of `ledger_id` in `dest` whose manifest verifies.
pub(crate) fn last_full(
    dest: &Path,
    ledger_id: &str,
    log_key: &BackupKey,
) -> Result<Option<Manifest>> {
    let listing = manifest::list(dest)?;
    Ok(listing
        .sets
        .into_iter()
        .rev()
        .filter(|m| m.kind == Kind::Full && m.ledger_id == ledger_id)
        .find(|m| {
            let ok = m
                .verify_mac(log_key, &dest.join(&m.backup_id).join(manifest::MANIFEST_FILE))
                .is_ok();
            if !ok {
                tracing::warn!(set = %m.backup_id, "skipping a full backup whose manifest MAC fails");
            }
            ok
        }))
}

fn parse_hash(s: &str, what: &str) -> Result<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).map_err(|_| BackupError::InvalidInput {
        what: "hash",
        reason: format!("{what} is not 64 hex characters"),
    })?;
    Ok(h)
}

/// Where and by whom a backup job runs; shared by every job function.
#[derive(Clone, Copy)]
pub struct BackupJob<'a> {
    /// The data directory (`ledger/`, `keys/`, `vault/`).
    pub data_dir: &'a Path,
    /// The backups directory: one sub-directory per set.
    pub dest: &'a Path,
    pub started_by: &'a StartedBy,
    pub clock: &'a dyn Clock,
    pub opts: &'a BackupOptions,
}

/// Takes a full or differential backup of the ledger in `data_dir` into a new set
/// under `dest`, up to `head` (from the store: only durable events). Also backs up
/// the key store (and vault) under the current epoch key when the data directory
/// has one. Returns the manifest as written.
pub fn create_backup(
    job: &BackupJob<'_>,
    kind: Kind,
    head: Head,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Manifest> {
    let BackupJob {
        data_dir,
        dest,
        started_by,
        clock,
        opts,
    } = *job;
    if kind == Kind::Keystore {
        return Err(BackupError::InvalidInput {
            what: "kind",
            reason: "key-store sets are written by backup_keystore".into(),
        });
    }
    let started_at_us = clock.now_us();
    let data = DataPaths::new(data_dir);
    let keys = data.key_paths();
    let log_key = keys.load_log()?;
    let has_keystore = data.keystore().exists();
    // Load the epoch key before anything reads the key store (see write_epoch_files).
    let epoch = if has_keystore {
        Some(keys.load_epoch()?)
    } else {
        None
    };
    let log = LogFile::open(&data.ledger())?;
    let ledger_id = hex::encode(log.header.ledger_id);

    let (from, byte_from, prev, base) = match kind {
        Kind::Full => (0, HEADER_BYTES, log.genesis(), None),
        _ => {
            let base = last_full(dest, &ledger_id, &log_key)?.ok_or_else(|| {
                BackupError::NoFullBackup {
                    dir: dest.to_path_buf(),
                    ledger_id: ledger_id.clone(),
                }
            })?;
            let range = base.log.clone().expect("a full set has a log range");
            if range.to > head.count {
                return Err(BackupError::Ledger {
                    reason: format!(
                        "the ledger has {} events, fewer than its last full backup {} ({}): was it replaced?",
                        head.count, base.backup_id, range.to
                    ),
                });
            }
            let prev = parse_hash(&range.head_hash, "the base's head hash")?;
            let base_ref = BaseRef {
                backup_id: base.backup_id.clone(),
                head_hash: range.head_hash.clone(),
                to: range.to,
                byte_to: range.byte_to,
            };
            (range.to, range.byte_to, prev, Some(base_ref))
        }
    };
    // Prove the bytes we are about to copy are the chain the head names.
    let byte_to = log.walk(byte_from, from, prev, head)?;
    let copy_from = if kind == Kind::Full { 0 } else { byte_from };

    let backup_id = new_backup_id(kind, started_at_us, rng);
    let set = SetDir::create(dest, &backup_id)?;
    let mut src = RangeReader {
        file: &log.file,
        at: copy_from,
        end: byte_to,
    };
    let w = chunked::encrypt_to_file(
        &log_key,
        &backup_id,
        LOG_FILE,
        &mut src,
        byte_to - copy_from,
        opts.chunk_bytes,
        &set.path.join(LOG_FILE),
    )?;
    let mut files = vec![entry(LOG_FILE, Role::Log, &log_key, w, opts.chunk_bytes)];
    if let Some(epoch) = &epoch {
        files.extend(write_epoch_files(
            &data, &set.path, &backup_id, epoch, opts,
        )?);
    }
    let finished_at_us = clock.now_us();
    let mut m = Manifest {
        format_version: FORMAT_VERSION,
        backup_id,
        kind,
        ledger_id,
        started_by: started_by.label(),
        started_at: rfc3339(started_at_us),
        started_at_us,
        finished_at: rfc3339(finished_at_us),
        finished_at_us,
        log: Some(LogRange {
            from,
            to: head.count,
            byte_from: copy_from,
            byte_to,
            prev_hash: hex::encode(prev),
            head_hash: hex::encode(head.hash),
            base,
        }),
        epoch_key_id: epoch.as_ref().map(|k| k.id_hex()),
        files,
        mac: String::new(),
    };
    set.commit(&log_key, &mut m)?;
    tracing::info!(set = %m.backup_id, kind = %kind, to = head.count, "backup completed");
    Ok(m)
}

/// Reads `[at, end)` of the log with `pread`, never past the head.
struct RangeReader<'a> {
    file: &'a fs::File,
    at: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.end - self.at).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.at)?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.at += got as u64;
        Ok(got)
    }
}

/// Writes a key-store set: the key store (and vault) under `epoch`, nothing else.
fn write_keystore_set(
    job: &BackupJob<'_>,
    log_key: &BackupKey,
    epoch: &BackupKey,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Manifest> {
    let BackupJob {
        dest,
        started_by,
        clock,
        opts,
        ..
    } = *job;
    let data = &DataPaths::new(job.data_dir);
    let started_at_us = clock.now_us();
    let ledger_id = hex::encode(LogFile::open(&data.ledger())?.header.ledger_id);
    let backup_id = new_backup_id(Kind::Keystore, started_at_us, rng);
    let set = SetDir::create(dest, &backup_id)?;
    let files = write_epoch_files(data, &set.path, &backup_id, epoch, opts)?;
    let finished_at_us = clock.now_us();
    let mut m = Manifest {
        format_version: FORMAT_VERSION,
        backup_id,
        kind: Kind::Keystore,
        ledger_id,
        started_by: started_by.label(),
        started_at: rfc3339(started_at_us),
        started_at_us,
        finished_at: rfc3339(finished_at_us),
        finished_at_us,
        log: None,
        epoch_key_id: Some(epoch.id_hex()),
        files,
        mac: String::new(),
    };
    set.commit(log_key, &mut m)?;
    Ok(m)
}

/// Backs up the key store (and identity vault) alone, under the current epoch key.
pub fn backup_keystore(
    job: &BackupJob<'_>,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<Manifest> {
    let keys = DataPaths::new(job.data_dir).key_paths();
    let log_key = keys.load_log()?;
    let epoch = keys.load_epoch()?;
    write_keystore_set(job, &log_key, &epoch, rng)
}

/// What [`rotate_backup_epoch`] did: the disposal record of the old epoch key.
#[derive(Debug, Clone)]
pub struct EpochRotation {
    pub old_epoch_key_id: Option<String>,
    pub new_epoch_key_id: String,
    /// The fresh key-store set under the new epoch key.
    pub keystore_set: Manifest,
}

/// Called after every erasure (P4.9), once `KeyStore::erase_person` has returned:
/// a new epoch key, a fresh key-store backup under it (which no longer holds the
/// erased person's DEKs), then the old epoch key destroyed. Every older key-store
/// backup, wherever its copies are, can no longer be decrypted.
///
/// Crash safety: the new key is staged as `backup.key.next` and only renamed over
/// `backup.key` once the new key-store set is durable, so a crash at any point
/// leaves a usable epoch key and a readable key-store backup. A stale `.next` from
/// an interrupted rotation is destroyed first; the caller retries the rotation
/// (the erasure is not complete in backups until this returns Ok).
pub fn rotate_backup_epoch(
    job: &BackupJob<'_>,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<EpochRotation> {
    let data = DataPaths::new(job.data_dir);
    let keys = data.key_paths();
    let log_key = keys.load_log()?;
    fsio::shred_file(&keys.epoch_key_next())?;
    let old = match keys.load_epoch() {
        Ok(k) => Some(k),
        Err(BackupError::MissingKey { .. }) => None,
        Err(e) => return Err(e),
    };
    let new = BackupKey::generate(KeyPurpose::Epoch, rng);
    new.write_new(&keys.epoch_key_next())?;
    let set = match write_keystore_set(job, &log_key, &new, rng) {
        Ok(m) => m,
        Err(e) => {
            // The old key stays current; the staged one protects nothing durable.
            let _ = fsio::shred_file(&keys.epoch_key_next());
            return Err(e);
        }
    };
    // Keep a handle on the old key's inode, move the new key into place (atomic:
    // at every instant `backup.key` is a whole, valid key), then overwrite the old
    // inode through the handle, so the old bytes are gone even if the file had
    // another link.
    let old_handle = match fs::OpenOptions::new().write(true).open(keys.epoch_key()) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(BackupError::io("open for destruction", keys.epoch_key(), e)),
    };
    fs::rename(keys.epoch_key_next(), keys.epoch_key())
        .map_err(|e| BackupError::io("rename new epoch key over", keys.epoch_key(), e))?;
    fsio::sync_dir(&keys.dir)?;
    if let Some(f) = old_handle {
        fsio::shred_open(&f, &keys.epoch_key())?;
    }
    let rotation = EpochRotation {
        old_epoch_key_id: old.as_ref().map(|k| k.id_hex()),
        new_epoch_key_id: new.id_hex(),
        keystore_set: set,
    };
    tracing::info!(
        old = ?rotation.old_epoch_key_id,
        new = %rotation.new_epoch_key_id,
        "rotated the backup epoch key; the old one is destroyed"
    );
    Ok(rotation)
}
