//! Backup jobs as the server and the CLI run them: each run, drill, rotation and
//! each failure is appended to the ledger as a plaintext operational event on
//! stream `ops-backups` (P4.10: a record of each backup job). Payloads hold ids,
//! ranges, digests and key fingerprints only, no personal data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mebyo_store::{Clock, EventStore, ExpectedRevision, NewEvent};
use serde_json::json;

use crate::backup::{self, BackupJob, BackupOptions, DataPaths, EpochRotation, StartedBy};
use crate::error::{BackupError, Result};
use crate::ledger::LogFile;
use crate::manifest::{self, Kind, Manifest};
use crate::restore::{self, RestoreReport, RestoreRequest};
use crate::schedule::{BackupSchedule, Flag, last_runs};

pub const STREAM: &str = "ops-backups";
pub const EVENT_COMPLETED: &str = "backup.completed";
pub const EVENT_FAILED: &str = "backup.failed";
pub const EVENT_VERIFIED: &str = "backup.verified";
pub const EVENT_EPOCH_ROTATED: &str = "backup.epoch_rotated";
/// Error texts in events are cut to this many bytes.
const ERROR_BYTES_MAX: usize = 1024;

/// What a job is, in `backup.failed` events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Backup(Kind),
    Drill,
    EpochRotation,
}

impl Operation {
    fn fields(self) -> (&'static str, Option<&'static str>) {
        match self {
            Operation::Backup(k) => ("backup", Some(k.as_str())),
            Operation::Drill => ("drill", None),
            Operation::EpochRotation => ("epoch_rotation", None),
        }
    }
}

async fn append(
    store: &dyn EventStore,
    event_type: &str,
    by: &StartedBy,
    payload: serde_json::Value,
) -> Result<u64> {
    let id: [u8; 16] = rand::random();
    let ev = NewEvent::plain(
        event_type,
        by.actor(),
        id,
        serde_json::to_vec(&payload).expect("json values serialise"),
    );
    store
        .append(STREAM, ExpectedRevision::Any, vec![ev])
        .await
        .map(|o| o.first_position)
        .map_err(|e| BackupError::Record(e.to_string()))
}

fn set_digest(dest: &Path, m: &Manifest) -> Option<String> {
    crate::chunked::digest_file(&dest.join(&m.backup_id).join(manifest::MANIFEST_FILE))
        .ok()
        .map(|(_, d)| d)
}

/// Appends `backup.completed` for a set; returns the event's position.
pub async fn record_completed(
    store: &dyn EventStore,
    dest: &Path,
    m: &Manifest,
    by: &StartedBy,
) -> Result<u64> {
    let payload = json!({
        "operation": "backup",
        "kind": m.kind.as_str(),
        "backup_id": m.backup_id,
        "ledger_id": m.ledger_id,
        "range": m.log.as_ref().map(|l| json!({
            "from": l.from, "to": l.to, "byte_from": l.byte_from, "byte_to": l.byte_to,
            "head_hash": l.head_hash,
            "base": l.base.as_ref().map(|b| json!({"backup_id": b.backup_id, "head_hash": b.head_hash})),
        })),
        "files": m.files.iter().map(|f| json!({
            "name": f.name, "bytes": f.bytes, "blake3": f.blake3, "key_id": f.key_id,
        })).collect::<Vec<_>>(),
        "manifest_blake3": set_digest(dest, m),
        "epoch_key_id": m.epoch_key_id,
        "started_by": m.started_by,
        "started_at": m.started_at,
        "finished_at": m.finished_at,
    });
    append(store, EVENT_COMPLETED, by, payload).await
}

/// Appends `backup.failed`.
pub async fn record_failed(
    store: &dyn EventStore,
    op: Operation,
    by: &StartedBy,
    at_us: i64,
    error: &BackupError,
) -> Result<u64> {
    let (operation, kind) = op.fields();
    let mut text = error.to_string();
    if text.len() > ERROR_BYTES_MAX {
        let mut cut = ERROR_BYTES_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    let payload = json!({
        "operation": operation,
        "kind": kind,
        "started_by": by.label(),
        "at": backup::rfc3339(at_us),
        "error": text,
    });
    append(store, EVENT_FAILED, by, payload).await
}

/// Outcome of a job: the result, and the ledger position of its event (if the
/// event could be recorded; a failure to record is logged and reported here).
#[derive(Debug)]
pub struct Recorded<T> {
    pub result: Result<T>,
    pub event_position: Result<u64>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    // Backups are seconds of file IO and hashing: off the async workers.
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BackupError::Record(format!("backup task failed: {e}"))))
}

/// Runs a full or differential backup up to the store's durable head and
/// records `backup.completed` or `backup.failed`.
pub async fn run_backup(
    store: &dyn EventStore,
    data_dir: PathBuf,
    dest: PathBuf,
    kind: Kind,
    by: StartedBy,
    clock: Arc<dyn Clock>,
    opts: BackupOptions,
) -> Recorded<Manifest> {
    let head = store.head();
    let (d, b, c, dd) = (data_dir.clone(), by.clone(), clock.clone(), dest.clone());
    let result = blocking(move || {
        let job = BackupJob {
            data_dir: &d,
            dest: &dd,
            started_by: &b,
            clock: &*c,
            opts: &opts,
        };
        backup::create_backup(&job, kind, head, &mut rand::rng())
    })
    .await;
    let event_position = match &result {
        Ok(m) => record_completed(store, &dest, m, &by).await,
        Err(e) => record_failed(store, Operation::Backup(kind), &by, clock.now_us(), e).await,
    };
    if let Err(e) = &event_position {
        tracing::error!(error = %e, "could not record the backup job in the ledger");
    }
    Recorded {
        result,
        event_position,
    }
}

/// What a drill proved.
#[derive(Debug, Clone)]
pub struct DrillReport {
    pub restore: RestoreReport,
    /// The live ledger's hash at the restored head position: equal to the
    /// restored head, or the drill fails.
    pub live_hash: String,
}

/// Restores the latest sets into a scratch directory (removed afterwards),
/// verifies them, checks the restored head against the live ledger's event at
/// the same position, and records `backup.verified` (or `backup.failed`).
pub async fn drill(
    store: &dyn EventStore,
    data_dir: PathBuf,
    backups: PathBuf,
    by: StartedBy,
    clock: Arc<dyn Clock>,
) -> Recorded<DrillReport> {
    let keys_dir = DataPaths::new(&data_dir).keys();
    let restored = blocking(move || {
        let scratch = tempfile::Builder::new()
            .prefix("mebyo-drill-")
            .tempdir()
            .map_err(|e| BackupError::io("create scratch directory", std::env::temp_dir(), e))?;
        restore::restore(&RestoreRequest {
            from: backups,
            set: None,
            to: scratch.path().join("data"),
            keys_dir,
        })
        // `scratch` drops here: the restored copy (wrapped keys included) is removed.
    })
    .await;
    let result = match restored {
        Ok(r) => compare_live(store, r).await,
        Err(e) => Err(e),
    };
    let event_position = match &result {
        Ok(d) => {
            let r = &d.restore;
            let payload = json!({
                "operation": "drill",
                "full": r.full,
                "differential": r.differential,
                "ledger_id": r.ledger_id,
                "events": r.events,
                "head_hash": r.head_hash,
                "live_hash_at_head": d.live_hash,
                "keystore_set": r.keystore.as_ref().map(|k| k.set.clone()),
                "epoch_key_id": r.keystore.as_ref().map(|k| k.epoch_key_id.clone()),
                "started_by": by.label(),
                "at": backup::rfc3339(clock.now_us()),
            });
            append(store, EVENT_VERIFIED, &by, payload).await
        }
        Err(e) => record_failed(store, Operation::Drill, &by, clock.now_us(), e).await,
    };
    Recorded {
        result,
        event_position,
    }
}

async fn compare_live(store: &dyn EventStore, r: RestoreReport) -> Result<DrillReport> {
    let live_hash = if r.events == 0 {
        r.head_hash.clone() // both are the genesis value of the same ledger id
    } else {
        let evs = store
            .read_all(r.events - 1, 1)
            .await
            .map_err(|e| BackupError::Verify {
                reason: format!("reading the live ledger: {e}"),
            })?;
        let e = evs.first().ok_or_else(|| BackupError::Verify {
            reason: format!("the live ledger has fewer than {} events", r.events),
        })?;
        hex::encode(e.hash)
    };
    if live_hash != r.head_hash {
        return Err(BackupError::Verify {
            reason: format!(
                "the backup's head {} is not the live ledger's event {} at that position: the histories differ",
                r.head_hash, live_hash
            ),
        });
    }
    Ok(DrillReport {
        restore: r,
        live_hash,
    })
}

/// Rotates the backup epoch after an erasure and records `backup.epoch_rotated`
/// (the disposal record of the old epoch key, P4.9) or `backup.failed`.
pub async fn rotate_epoch(
    store: &dyn EventStore,
    data_dir: PathBuf,
    dest: PathBuf,
    by: StartedBy,
    clock: Arc<dyn Clock>,
    opts: BackupOptions,
) -> Recorded<EpochRotation> {
    let (d, dd, b, c) = (data_dir, dest.clone(), by.clone(), clock.clone());
    let result = blocking(move || {
        let job = BackupJob {
            data_dir: &d,
            dest: &dd,
            started_by: &b,
            clock: &*c,
            opts: &opts,
        };
        backup::rotate_backup_epoch(&job, &mut rand::rng())
    })
    .await;
    let event_position = match &result {
        Ok(r) => {
            let payload = json!({
                "operation": "epoch_rotation",
                "old_epoch_key_id": r.old_epoch_key_id,
                "new_epoch_key_id": r.new_epoch_key_id,
                "keystore_set": r.keystore_set.backup_id,
                "manifest_blake3": set_digest(&dest, &r.keystore_set),
                "method": "cryptographic erase: old epoch key overwritten, fsynced and unlinked; the offline copy must be destroyed too",
                "started_by": by.label(),
                "at": backup::rfc3339(clock.now_us()),
            });
            append(store, EVENT_EPOCH_ROTATED, &by, payload).await
        }
        Err(e) => record_failed(store, Operation::EpochRotation, &by, clock.now_us(), e).await,
    };
    Recorded {
        result,
        event_position,
    }
}

/// What [`run_due`] did.
#[derive(Debug)]
pub struct DueOutcome {
    pub ran: Option<Recorded<Manifest>>,
    /// Flags after the run (a run that just succeeded clears its flag).
    pub flags: Vec<Flag>,
}

/// The server's scheduler tick: takes the backup the schedule says is due (if
/// any, recorded like any run) and returns the overdue flags. Call it every few
/// minutes; a failing backup is retried at each call, so keep the interval long
/// enough that repeated `backup.failed` events stay few.
pub async fn run_due(
    store: &dyn EventStore,
    data_dir: PathBuf,
    dest: PathBuf,
    schedule: &BackupSchedule,
    clock: Arc<dyn Clock>,
    opts: BackupOptions,
) -> Result<DueOutcome> {
    let ledger_id = hex::encode(
        LogFile::open(&DataPaths::new(&data_dir).ledger())?
            .header
            .ledger_id,
    );
    let (full, diff) = last_runs(&manifest::list(&dest)?, &ledger_id);
    let ran = match schedule.due(clock.now_us(), full, diff) {
        Some(kind) => Some(
            run_backup(
                store,
                data_dir,
                dest.clone(),
                kind,
                StartedBy::Scheduler,
                clock.clone(),
                opts,
            )
            .await,
        ),
        None => None,
    };
    let (full, diff) = last_runs(&manifest::list(&dest)?, &ledger_id);
    Ok(DueOutcome {
        ran,
        flags: schedule.overdue(clock.now_us(), full, diff),
    })
}
