//! `manifest.json`: what a backup set holds, written last and atomically, so a
//! set directory without one is an interrupted run and is never restored.
//!
//! The manifest carries a MAC (keyed blake3 under a subkey of the log key) over
//! its compact JSON with `mac` empty: someone who can edit backup files but has no
//! key cannot rewrite the digests to match an edited file, nor change a range, a
//! head hash or which full backup a differential builds on.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};
use crate::fsio;
use crate::keys::BackupKey;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT_VERSION: u32 = 1;
/// A manifest is a few KiB; this bounds what a damaged or hostile one can cost.
pub const MANIFEST_BYTES_MAX: u64 = 1 << 20;
/// At most this many files in a set.
pub const FILES_MAX: usize = 8;
/// At most this many entries are looked at in a backups directory.
pub const SETS_MAX: usize = 100_000;
pub const BACKUP_ID_BYTES_MAX: usize = 64;

/// File names inside a set.
pub const LOG_FILE: &str = "events.log.enc";
pub const KEYSTORE_FILE: &str = "keystore.enc";
pub const VAULT_FILE: &str = "vault.enc";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The whole log up to the head.
    Full,
    /// The frames after the last full backup's end, up to the head.
    Differential,
    /// Only the key store (and identity vault) under a new epoch key, written by
    /// an epoch rotation after an erasure.
    Keystore,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Differential => "differential",
            Kind::Keystore => "keystore",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The full backup a differential builds on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseRef {
    pub backup_id: String,
    /// Head hash at the full backup's `to`: the first frame of the differential
    /// must link to it.
    pub head_hash: String,
    pub to: u64,
    pub byte_to: u64,
}

/// The part of the log a set holds: positions `[from, to)`, file bytes
/// `[byte_from, byte_to)` (a full set starts at 0 and includes the file header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRange {
    pub from: u64,
    pub to: u64,
    pub byte_from: u64,
    pub byte_to: u64,
    /// Hash of the event before `from` (the genesis value for 0).
    pub prev_hash: String,
    /// Hash of the event at `to - 1` (the chain head when the set was taken).
    pub head_hash: String,
    pub base: Option<BaseRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Log,
    Keystore,
    Vault,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub role: Role,
    /// Fingerprint of the backup key it is encrypted under (log or epoch key).
    pub key_id: String,
    /// Size and blake3 of the file as stored (ciphertext).
    pub bytes: u64,
    pub blake3: String,
    pub plain_bytes: u64,
    pub chunk_bytes: u64,
    pub chunks: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub backup_id: String,
    pub kind: Kind,
    pub ledger_id: String,
    /// `scheduler` or `operator:<id>`.
    pub started_by: String,
    pub started_at: String,
    pub started_at_us: i64,
    pub finished_at: String,
    pub finished_at_us: i64,
    pub log: Option<LogRange>,
    /// Fingerprint of the epoch key the key-store and vault files are under, if
    /// the set holds them.
    pub epoch_key_id: Option<String>,
    pub files: Vec<FileEntry>,
    /// Hex keyed blake3 over the compact JSON of this manifest with `mac` empty.
    pub mac: String,
}

impl Manifest {
    fn mac_over(&self, key: &BackupKey) -> String {
        let mut m = self.clone();
        m.mac = String::new();
        let bytes = serde_json::to_vec(&m).expect("a manifest always serialises");
        blake3::keyed_hash(&key.mac_key(), &bytes)
            .to_hex()
            .to_string()
    }

    pub(crate) fn seal(&mut self, log_key: &BackupKey) {
        self.mac = self.mac_over(log_key);
    }

    /// Checks the MAC under the log key.
    pub fn verify_mac(&self, log_key: &BackupKey, path: &Path) -> Result<()> {
        let want = blake3::Hash::from_hex(self.mac_over(log_key)).expect("hex we made");
        let ok = blake3::Hash::from_hex(&self.mac)
            .map(|found| found == want) // blake3::Hash equality is constant-time
            .unwrap_or(false);
        if !ok {
            return Err(BackupError::Manifest {
                path: path.to_path_buf(),
                reason: "its MAC does not verify under the log backup key (edited, or another key)"
                    .into(),
            });
        }
        Ok(())
    }

    pub fn file(&self, role: Role) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Structural checks after reading (assert after reading): ids, names,
    /// ranges and limits. Nothing here needs a key.
    fn check(&self, path: &Path, dir_name: &str) -> Result<()> {
        let bad = |reason: String| BackupError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        if self.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
        }
        check_backup_id(&self.backup_id).map_err(|e| bad(e.to_string()))?;
        if self.backup_id != dir_name {
            return Err(bad(format!(
                "it names backup {}, but lies in directory {dir_name}",
                self.backup_id
            )));
        }
        if self.files.len() > FILES_MAX {
            return Err(bad(format!("more than {FILES_MAX} files")));
        }
        for f in &self.files {
            if ![LOG_FILE, KEYSTORE_FILE, VAULT_FILE].contains(&f.name.as_str()) {
                return Err(bad(format!("unexpected file name {:?}", f.name)));
            }
        }
        match (&self.kind, &self.log) {
            (Kind::Full, Some(l)) if l.from == 0 && l.byte_from == 0 && l.base.is_none() => {}
            (Kind::Differential, Some(l)) if l.base.is_some() => {}
            (Kind::Keystore, None) => {}
            _ => return Err(bad("kind and log range disagree".into())),
        }
        if let Some(l) = &self.log {
            if l.to < l.from || l.byte_to < l.byte_from {
                return Err(bad("range ends before it starts".into()));
            }
            if self.file(Role::Log).is_none() {
                return Err(bad("a log set without its log file".into()));
            }
        }
        Ok(())
    }
}

/// Backup ids become directory names and associated data: a small alphabet
/// keeps `--set ../x` and friends out.
pub fn check_backup_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= BACKUP_ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(BackupError::InvalidInput {
            what: "backup id",
            reason: format!("{id:?} is not 1..={BACKUP_ID_BYTES_MAX} characters of [a-z0-9-]"),
        });
    }
    Ok(())
}

/// Writes the manifest last, atomically, then fsyncs the set directory and the
/// backups directory (so the set's own entry survives a crash too).
pub(crate) fn write(set_dir: &Path, m: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(m).expect("a manifest always serialises");
    fsio::atomic_write(&set_dir.join(MANIFEST_FILE), &bytes)?;
    fsio::sync_dir(&fsio::parent_dir(set_dir))
}

pub fn read(set_dir: &Path) -> Result<Manifest> {
    let path = set_dir.join(MANIFEST_FILE);
    let bytes = fsio::read_bounded(&path, "manifest", MANIFEST_BYTES_MAX)?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| BackupError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let dir_name = set_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    m.check(&path, dir_name)?;
    Ok(m)
}

/// The sets found in a backups directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// Sets with a readable manifest, oldest first (by finish time, then id).
    pub sets: Vec<Manifest>,
    /// Directories without a manifest: interrupted runs, never restored.
    pub incomplete: Vec<PathBuf>,
    /// Directories whose manifest does not parse or check, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Listing {
    pub fn get(&self, id: &str) -> Option<&Manifest> {
        self.sets.iter().find(|m| m.backup_id == id)
    }
}

/// Lists the backup sets in `dir` (a missing directory is an empty listing).
pub fn list(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(BackupError::io("list", dir, e)),
    };
    for (n, entry) in entries.enumerate() {
        if n >= SETS_MAX {
            return Err(BackupError::InvalidInput {
                what: "backups directory",
                reason: format!("{} holds more than {SETS_MAX} entries", dir.display()),
            });
        }
        let entry = entry.map_err(|e| BackupError::io("list", dir, e))?;
        let path = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if check_backup_id(name).is_err() {
            continue; // not ours (lost+found, an operator's notes...)
        }
        if !path.join(MANIFEST_FILE).exists() {
            listing.incomplete.push(path);
            continue;
        }
        match read(&path) {
            Ok(m) => listing.sets.push(m),
            Err(e) => listing.unreadable.push((path, e.to_string())),
        }
    }
    listing
        .sets
        .sort_by(|a, b| (a.finished_at_us, &a.backup_id).cmp(&(b.finished_at_us, &b.backup_id)));
    Ok(listing)
}
