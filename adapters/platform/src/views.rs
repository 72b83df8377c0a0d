//! Live read models: a task follows the log (`subscribe_all` from the start, with
//! no gap and no duplicate), decrypts each event and folds it into the
//! projections. Pages and dashboards read these, never the log (issue 6 §3).

use std::sync::Arc;

use futures::StreamExt;
use mebyo_domain::person::PersonEvent;
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use mebyo_store::{EmbeddedStore, EventStore};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use tokio::sync::watch;

use crate::codec;
use crate::keyring::KeyRing;
use crate::snapshot;

pub struct Views {
    models: RwLock<ReadModels>,
    /// Next position the models expect: how far they have caught up.
    position: watch::Sender<u64>,
    /// Why the models stopped following the log, if they did. A stopped projection
    /// is a readiness failure, never silently stale data.
    failed: Mutex<Option<String>>,
    /// Where and how often the models are saved (issue 4 §9: restart in seconds).
    snapshots: Option<Snapshots>,
    started_from: StartedFrom,
}

/// When the live models are written to their sealed snapshot file
/// ([`crate::snapshot`]). Saving takes a read lock for the serialisation (about a
/// second at ten million events, during which the follower waits but readers do
/// not), so it is not done on every event.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    /// Save after this many new events...
    pub every_events: u64,
    /// ...or after this long with at least one new event.
    pub every_secs: u64,
    /// How often the saver looks.
    pub check_secs: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every_events: 1_000_000,
            every_secs: 600,
            check_secs: 5,
        }
    }
}

struct Snapshots {
    path: std::path::PathBuf,
    keys: Arc<KeyRing>,
    policy: SnapshotPolicy,
    /// Position the file on disk covers.
    saved_position: AtomicU64,
    /// An erasure was applied since the last save: the file on disk still holds the
    /// erased person's rows, so the next look saves at once (P4.9).
    erasure_unsaved: AtomicBool,
    /// One save at a time.
    saving: Mutex<()>,
    last_save: Mutex<std::time::Instant>,
}

/// What a save wrote.
#[derive(Debug, Clone)]
pub struct SnapshotSaved {
    pub position: u64,
    pub bytes: u64,
    pub serialise_ms: u64,
    pub write_ms: u64,
}

/// How the models started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedFrom {
    /// No snapshot, or snapshots off: replaying from the first event.
    Replay,
    /// Restored from the snapshot covering this many events.
    Snapshot { position: u64 },
    /// A snapshot was there but refused (why), so replaying from the start.
    Refused(String),
}

impl Views {
    /// Read access to the models as they stand.
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModels> {
        self.models.read()
    }

    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    pub fn failed(&self) -> Option<String> {
        self.failed.lock().clone()
    }

    /// Whether the models came from a snapshot or a replay.
    pub fn started_from(&self) -> &StartedFrom {
        &self.started_from
    }

    /// Waits until the models include every event before `position`.
    pub async fn caught_up_to(&self, position: u64) {
        let mut rx = self.position.subscribe();
        let _ = rx.wait_for(|p| *p >= position).await;
    }

    /// Writes the models as they stand to the sealed snapshot file, unless it
    /// already covers them. Blocking (serialises and fsyncs): call it from a
    /// blocking thread. `None` when snapshots are off or nothing is new.
    pub fn save_snapshot(&self) -> Result<Option<SnapshotSaved>, String> {
        let Some(s) = &self.snapshots else {
            return Ok(None);
        };
        if self.failed().is_some() {
            return Ok(None);
        }
        let _one = s.saving.lock();
        let erasure = s.erasure_unsaved.swap(false, Ordering::AcqRel);
        let t0 = std::time::Instant::now();
        let (bytes, covers) = {
            let m = self.models.read();
            if m.position() == s.saved_position.load(Ordering::Acquire) && !erasure {
                return Ok(None);
            }
            (
                m.snapshot(),
                snapshot::Covers {
                    position: m.position(),
                    last_hash: m.last_hash(),
                },
            )
        };
        let serialise_ms = t0.elapsed().as_millis() as u64;
        let t1 = std::time::Instant::now();
        let written = s
            .keys
            .audit_dek()
            .map_err(|e| e.to_string())
            .and_then(|dek| {
                snapshot::write(&s.path, &dek, covers, &bytes).map_err(|e| e.to_string())
            });
        let size = match written {
            Ok(n) => n,
            Err(e) => {
                if erasure {
                    s.erasure_unsaved.store(true, Ordering::Release);
                }
                return Err(e);
            }
        };
        s.saved_position.store(covers.position, Ordering::Release);
        *s.last_save.lock() = std::time::Instant::now();
        Ok(Some(SnapshotSaved {
            position: covers.position,
            bytes: size,
            serialise_ms,
            write_ms: t1.elapsed().as_millis() as u64,
        }))
    }

    /// Whether the policy says to save now.
    fn snapshot_due(&self) -> bool {
        let Some(s) = &self.snapshots else {
            return false;
        };
        let new = self
            .position()
            .saturating_sub(s.saved_position.load(Ordering::Acquire));
        s.erasure_unsaved.load(Ordering::Acquire)
            || new >= s.policy.every_events
            || (new > 0 && s.last_save.lock().elapsed().as_secs() >= s.policy.every_secs)
    }
}

/// Loads the snapshot file if there is one and it matches the log: its position
/// is within the log and the event before it has the hash it names.
fn load_snapshot(
    path: &std::path::Path,
    store: &EmbeddedStore,
    keys: &KeyRing,
) -> Result<Option<ReadModels>, String> {
    let covers = match snapshot::covers(path) {
        Ok(c) => c,
        Err(snapshot::SnapshotFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e.to_string()),
    };
    let head = store.head();
    if covers.position > head.count {
        return Err(format!(
            "the snapshot covers {} events but the log holds {}",
            covers.position, head.count
        ));
    }
    if covers.position > 0 {
        let at = futures::executor::block_on(store.read_all(covers.position - 1, 1))
            .map_err(|e| e.to_string())?;
        let hash = at.first().map(|e| e.hash);
        if hash != covers.last_hash {
            return Err(format!(
                "the snapshot's hash at position {} is not the log's",
                covers.position - 1
            ));
        }
    }
    let dek = keys.audit_dek().map_err(|e| e.to_string())?;
    let (covers, bytes) = snapshot::read(path, &dek).map_err(|e| e.to_string())?;
    ReadModels::restore(&bytes, covers.position, covers.last_hash)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Starts following the log; must be called inside a tokio runtime.
///
/// With `snapshots` set, the models start from the snapshot file when it matches
/// the log (else from a replay, with the reason logged), a task saves them by the
/// policy, and an erasure makes the next look save at once.
pub(crate) fn start(
    store: EmbeddedStore,
    keys: Arc<KeyRing>,
    snapshots: Option<(std::path::PathBuf, SnapshotPolicy)>,
) -> Arc<Views> {
    let (models, started_from) = match &snapshots {
        None => (ReadModels::new(), StartedFrom::Replay),
        Some((path, _)) => match load_snapshot(path, &store, &keys) {
            Ok(Some(m)) => {
                let position = m.position();
                (m, StartedFrom::Snapshot { position })
            }
            Ok(None) => (ReadModels::new(), StartedFrom::Replay),
            Err(why) => {
                tracing::warn!(reason = %why, "projection snapshot refused; replaying the log");
                (ReadModels::new(), StartedFrom::Refused(why))
            }
        },
    };
    let from = models.position();
    let views = Arc::new(Views {
        models: RwLock::new(models),
        position: watch::channel(from).0,
        failed: Mutex::new(None),
        started_from,
        snapshots: snapshots.map(|(path, policy)| Snapshots {
            path,
            keys: keys.clone(),
            policy,
            saved_position: AtomicU64::new(from),
            erasure_unsaved: AtomicBool::new(false),
            saving: Mutex::new(()),
            last_save: Mutex::new(std::time::Instant::now()),
        }),
    });
    if let Some(s) = &views.snapshots {
        // The saver holds a weak reference: it ends when the views are dropped.
        let weak = Arc::downgrade(&views);
        let every = std::time::Duration::from_secs(s.policy.check_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(v) = weak.upgrade() else { return };
                if !v.snapshot_due() {
                    continue;
                }
                match tokio::task::spawn_blocking(move || v.save_snapshot()).await {
                    Ok(Ok(Some(saved))) => tracing::info!(
                        position = saved.position,
                        bytes = saved.bytes,
                        serialise_ms = saved.serialise_ms,
                        write_ms = saved.write_ms,
                        "saved the projection snapshot"
                    ),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "saving the projection snapshot"),
                    Err(e) => tracing::warn!(error = %e, "projection snapshot task"),
                }
            }
        });
    }
    let v = views.clone();
    // The task holds only the subscription, not the store's writer handle, so
    // dropping the platform releases the ledger.
    let mut sub = store.subscribe_all(from);
    drop(store);
    tokio::spawn(async move {
        while let Some(next) = sub.next().await {
            let result = next.map_err(|e| e.to_string()).and_then(|env| {
                // An event sealed under a destroyed key (an erased person) still
                // moves the position on: the models must see the log without gaps.
                let event = match codec::plaintext(&env, &keys) {
                    Ok(Some(plain)) => {
                        AnyEvent::decode(&env.event_type, &plain).map_err(|e| e.to_string())?
                    }
                    Ok(None) => AnyEvent::Other {
                        event_type: env.event_type.clone(),
                    },
                    Err(e) => return Err(e.to_string()),
                };
                let applied = Applied {
                    position: env.position,
                    recorded_at_us: env.recorded_at_us,
                    stream_id: &env.stream_id,
                    prev_hash: env.prev_hash,
                    hash: env.hash,
                    event: &event,
                };
                v.models
                    .write()
                    .apply(&applied)
                    .map_err(|e| e.to_string())?;
                // After the apply, so a save that sees the flag also holds the
                // erasure. The decoded event, whichever of the person's own event or
                // the platform's erasure record could be read (P4.9).
                if let AnyEvent::Person(PersonEvent::ErasureCompleted { .. }) = &event
                    && let Some(s) = &v.snapshots
                {
                    s.erasure_unsaved.store(true, Ordering::Release);
                }
                Ok(env.position + 1)
            });
            match result {
                Ok(p) => {
                    v.position.send_replace(p);
                }
                Err(why) => {
                    tracing::error!(error = %why, "projections stopped following the log");
                    *v.failed.lock() = Some(why);
                    return;
                }
            }
        }
    });
    views
}
