//! Restoring: a full set and its latest differential into a fresh data
//! directory, every digest and chunk checked, the chain verified, the head hash
//! compared; the key store from the newest key-store backup that the *current*
//! epoch key opens (so never one from before an erasure, P4.9).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use mebyo_store::verify::{self, Outcome};

use crate::chunked::{self, Expect};
use crate::error::{BackupError, Result};
use crate::fsio;
use crate::keys::{BackupKey, KeyPaths};
use crate::manifest::{self, FileEntry, Kind, Listing, MANIFEST_FILE, Manifest, Role};

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backups directory.
    pub from: PathBuf,
    /// A full or differential set id; default: the latest full and its latest differential.
    pub set: Option<String>,
    /// The new data directory (must not exist, or be empty).
    pub to: PathBuf,
    /// A directory holding `backup-log.key` and `backup.key`: the live `DATA/keys`
    /// or the operator's offline copy.
    pub keys_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct KeystoreRestored {
    pub set: String,
    pub epoch_key_id: String,
    pub vault: bool,
    /// Key-store backups under older (destroyed) epoch keys, which were skipped.
    pub older_epochs_skipped: usize,
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub full: String,
    pub differential: Option<String>,
    pub ledger_id: String,
    pub events: u64,
    pub head_hash: String,
    pub keystore: Option<KeystoreRestored>,
    /// Things the operator should know (no key store found, sets skipped...).
    pub notes: Vec<String>,
}

fn manifest_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id).join(MANIFEST_FILE)
}

/// Picks the full set and its latest differential for a restore.
pub fn plan(
    listing: &Listing,
    dir: &Path,
    set: Option<&str>,
    log_key: &BackupKey,
) -> Result<(Manifest, Option<Manifest>)> {
    let verified = |m: &Manifest| m.verify_mac(log_key, &manifest_path(dir, &m.backup_id));
    let latest_diff_of = |full: &Manifest| -> Option<Manifest> {
        listing
            .sets
            .iter()
            .filter(|m| {
                m.kind == Kind::Differential
                    && m.log
                        .as_ref()
                        .and_then(|l| l.base.as_ref())
                        .map(|b| &b.backup_id)
                        == Some(&full.backup_id)
                    && verified(m).is_ok()
            })
            .max_by_key(|m| (m.log.as_ref().map(|l| l.to), m.finished_at_us))
            .cloned()
    };
    let find_base = |diff: &Manifest| -> Result<Manifest> {
        let base_id = &diff
            .log
            .as_ref()
            .and_then(|l| l.base.as_ref())
            .expect("checked when read")
            .backup_id;
        let base = listing
            .get(base_id)
            .filter(|b| b.kind == Kind::Full)
            .ok_or_else(|| BackupError::MissingBase {
                differential: diff.backup_id.clone(),
                base: base_id.clone(),
                dir: dir.to_path_buf(),
            })?;
        verified(base)?;
        Ok(base.clone())
    };
    match set {
        Some(id) => {
            manifest::check_backup_id(id)?;
            let Some(m) = listing.get(id) else {
                if let Some((p, why)) = listing.unreadable.iter().find(|(p, _)| p.ends_with(id)) {
                    return Err(BackupError::Manifest {
                        path: p.join(MANIFEST_FILE),
                        reason: why.clone(),
                    });
                }
                return Err(BackupError::UnknownSet {
                    id: id.into(),
                    dir: dir.to_path_buf(),
                });
            };
            verified(m)?;
            match m.kind {
                Kind::Full => Ok((m.clone(), latest_diff_of(m))),
                Kind::Differential => Ok((find_base(m)?, Some(m.clone()))),
                Kind::Keystore => Err(BackupError::InvalidInput {
                    what: "set",
                    reason: format!(
                        "{id} is a key-store set and holds no log; name a full or differential set \
                         (the newest readable key-store backup is restored with it automatically)"
                    ),
                }),
            }
        }
        None => {
            let full = listing
                .sets
                .iter()
                .rev()
                .find(|m| m.kind == Kind::Full && verified(m).is_ok());
            match full {
                Some(f) => Ok((f.clone(), latest_diff_of(f))),
                None => match listing
                    .sets
                    .iter()
                    .rev()
                    .find(|m| m.kind == Kind::Differential)
                {
                    Some(d) => Err(find_base(d).err().unwrap_or(BackupError::MissingBase {
                        differential: d.backup_id.clone(),
                        base: "?".into(),
                        dir: dir.to_path_buf(),
                    })),
                    None => Err(BackupError::NoFullBackup {
                        dir: dir.to_path_buf(),
                        ledger_id: "(any)".into(),
                    }),
                },
            }
        }
    }
}

/// Removes the staging directory (and the target, if this restore created it)
/// unless the restore completed: bad backups change nothing.
struct Staging {
    staging: PathBuf,
    created_target: Option<PathBuf>,
    done: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.staging);
            if let Some(t) = &self.created_target {
                let _ = fs::remove_dir(t);
            }
        }
    }
}

fn decrypt_into(
    key: &BackupKey,
    dir: &Path,
    m: &Manifest,
    f: &FileEntry,
    sink: &mut dyn Write,
) -> Result<u64> {
    let path = dir.join(&m.backup_id).join(&f.name);
    if f.key_id != key.id_hex() {
        return Err(BackupError::WrongKey {
            file: path,
            expected: f.key_id.clone(),
            given: key.id_hex(),
        });
    }
    chunked::decrypt_file(
        key,
        &m.backup_id,
        &f.name,
        &path,
        &Expect {
            bytes: f.bytes,
            blake3: &f.blake3,
            plain_bytes: f.plain_bytes,
        },
        sink,
    )
}

fn new_private_file(path: &Path) -> Result<fs::File> {
    fsio::create_dir_all_private(&fsio::parent_dir(path))?;
    fsio::create_new(path)
}

/// Restores into `req.to`. On any failure nothing is left in `req.to`.
pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    let keys = KeyPaths::new(&req.keys_dir);
    let log_key = keys.load_log()?;
    let listing = manifest::list(&req.from)?;
    let (full, diff) = plan(&listing, &req.from, req.set.as_deref(), &log_key)?;
    let mut notes = Vec::new();
    for (p, why) in &listing.unreadable {
        notes.push(format!("skipped {}: {why}", p.display()));
    }
    let fl = full.log.as_ref().expect("full sets have a range");
    if let Some(d) = &diff {
        let dl = d.log.as_ref().expect("differential sets have a range");
        let b = dl.base.as_ref().expect("checked when read");
        if d.ledger_id != full.ledger_id
            || b.head_hash != fl.head_hash
            || b.to != fl.to
            || b.byte_to != fl.byte_to
            || dl.from != fl.to
            || dl.byte_from != fl.byte_to
            || dl.prev_hash != fl.head_hash
        {
            return Err(BackupError::Manifest {
                path: manifest_path(&req.from, &d.backup_id),
                reason: format!("it does not continue full backup {}", full.backup_id),
            });
        }
    }

    // Target: new or empty, built in a staging directory and moved into place.
    let created_target = match fs::read_dir(&req.to) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(BackupError::TargetNotEmpty {
                    path: req.to.clone(),
                });
            }
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fsio::create_dir_all_private(&req.to)?;
            Some(req.to.clone())
        }
        Err(e) => return Err(BackupError::io("list", &req.to, e)),
    };
    let staging = req.to.join(".restore-staging");
    let mut guard = Staging {
        staging: staging.clone(),
        created_target,
        done: false,
    };
    fsio::create_dir_private(&staging)?;

    // The log: full, then differential, appended into one fresh file.
    let log_path = mebyo_store::EmbeddedStore::log_path(&staging.join("ledger"));
    let mut out = new_private_file(&log_path)?;
    for m in std::iter::once(&full).chain(diff.as_ref()) {
        let f = m.file(Role::Log).expect("checked when read");
        decrypt_into(&log_key, &req.from, m, f, &mut out)?;
    }
    out.sync_all()
        .map_err(|e| BackupError::io("fsync", &log_path, e))?;
    drop(out);
    fsio::sync_dir(&fsio::parent_dir(&log_path))?;

    let head = diff.as_ref().unwrap_or(&full).log.clone().expect("range");
    let outcome = verify::verify_file(
        &log_path,
        verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    )
    .map_err(|e| BackupError::Verify {
        reason: e.to_string(),
    })?;
    let intact = match outcome {
        Outcome::Intact(i) => i,
        Outcome::Broken(b) => {
            return Err(BackupError::Verify {
                reason: b.to_string(),
            });
        }
    };
    if intact.torn_tail_bytes != 0 {
        return Err(BackupError::Verify {
            reason: format!(
                "{} stray bytes after the last event",
                intact.torn_tail_bytes
            ),
        });
    }
    if hex::encode(intact.ledger_id) != full.ledger_id {
        return Err(BackupError::Verify {
            reason: "the restored log names another ledger id than its manifest".into(),
        });
    }
    let found = hex::encode(intact.head_hash);
    if found != head.head_hash || intact.count != head.to {
        return Err(BackupError::HeadMismatch {
            expected: format!("{} at {}", head.head_hash, head.to),
            found: format!("{found} at {}", intact.count),
        });
    }

    let keystore = restore_keystore(
        &req.from,
        &listing,
        &full.ledger_id,
        &keys,
        &log_key,
        &staging,
        &mut notes,
    )?;

    // Move the areas into place, then make the moves durable.
    for area in ["ledger", "keys", "vault"] {
        let src = staging.join(area);
        if src.exists() {
            fs::rename(&src, req.to.join(area))
                .map_err(|e| BackupError::io("move into place", req.to.join(area), e))?;
        }
    }
    fsio::sync_dir(&req.to)?;
    guard.done = true;
    let _ = fs::remove_dir_all(&staging);
    if let Some(parent) = req.to.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = fsio::sync_dir(parent);
    }
    notes.push(
        "the KEK and the backup keys are not part of any backup: copy them from the offline store into the restored keys/ before starting a server"
            .into(),
    );
    Ok(RestoreReport {
        full: full.backup_id.clone(),
        differential: diff.map(|d| d.backup_id),
        ledger_id: full.ledger_id.clone(),
        events: intact.count,
        head_hash: found,
        keystore,
        notes,
    })
}

/// The newest key-store backup of this ledger that the current epoch key opens.
/// Older ones were crypto-shredded by epoch rotations and are skipped; a corrupt
/// newest one is refused rather than silently replaced by an older store.
fn restore_keystore(
    dir: &Path,
    listing: &Listing,
    ledger_id: &str,
    keys: &KeyPaths,
    log_key: &BackupKey,
    staging: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<KeystoreRestored>> {
    let candidates: Vec<&Manifest> = listing
        .sets
        .iter()
        .rev()
        .filter(|m| m.ledger_id == ledger_id && m.file(Role::Keystore).is_some())
        .filter(|m| {
            m.verify_mac(log_key, &manifest_path(dir, &m.backup_id))
                .is_ok()
        })
        .collect();
    if candidates.is_empty() {
        notes.push(format!(
            "no key-store backup of this ledger in {}: the restored data directory has no key store",
            dir.display()
        ));
        return Ok(None);
    }
    let epoch = keys.load_epoch()?;
    let epoch_id = epoch.id_hex();
    let Some(pos) = candidates
        .iter()
        .position(|m| m.epoch_key_id.as_deref() == Some(epoch_id.as_str()))
    else {
        return Err(BackupError::NoReadableKeystore {
            dir: dir.to_path_buf(),
            epoch_key_id: epoch_id,
            tried: candidates.len(),
        });
    };
    let m = candidates[pos];
    let ks = m.file(Role::Keystore).expect("filtered");
    let ks_path = staging.join("keys").join("keystore");
    let mut out = new_private_file(&ks_path)?;
    decrypt_into(&epoch, dir, m, ks, &mut out)?;
    out.sync_all()
        .map_err(|e| BackupError::io("fsync", &ks_path, e))?;
    fsio::sync_dir(&fsio::parent_dir(&ks_path))?;
    let vault = match m.file(Role::Vault) {
        Some(v) => {
            let v_path = staging.join("vault").join("identity.vault");
            let mut out = new_private_file(&v_path)?;
            decrypt_into(&epoch, dir, m, v, &mut out)?;
            out.sync_all()
                .map_err(|e| BackupError::io("fsync", &v_path, e))?;
            fsio::sync_dir(&fsio::parent_dir(&v_path))?;
            true
        }
        None => false,
    };
    let older = candidates
        .iter()
        .filter(|c| c.epoch_key_id.as_deref() != Some(epoch_id.as_str()))
        .count();
    Ok(Some(KeystoreRestored {
        set: m.backup_id.clone(),
        epoch_key_id: epoch_id,
        vault,
        older_epochs_skipped: older,
    }))
}
