//! Live read models: a task follows the log (`subscribe_all` from the start, with
//! no gap and no duplicate), decrypts each event and folds it into the
//! projections. Pages and dashboards read these, never the log (issue 6 §3).

use std::sync::Arc;

use futures::StreamExt;
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use mebyo_store::{EmbeddedStore, EventStore};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use tokio::sync::watch;

use crate::codec;
use crate::keyring::KeyRing;

pub struct Views {
    models: RwLock<ReadModels>,
    /// Next position the models expect: how far they have caught up.
    position: watch::Sender<u64>,
    /// Why the models stopped following the log, if they did. A stopped projection
    /// is a readiness failure, never silently stale data.
    failed: Mutex<Option<String>>,
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

    /// Waits until the models include every event before `position`.
    pub async fn caught_up_to(&self, position: u64) {
        let mut rx = self.position.subscribe();
        let _ = rx.wait_for(|p| *p >= position).await;
    }
}

/// Starts following the log; must be called inside a tokio runtime.
pub(crate) fn start(store: EmbeddedStore, keys: Arc<KeyRing>) -> Arc<Views> {
    let views = Arc::new(Views {
        models: RwLock::new(ReadModels::new()),
        position: watch::channel(0).0,
        failed: Mutex::new(None),
    });
    let v = views.clone();
    // The task holds only the subscription, not the store's writer handle, so
    // dropping the platform releases the ledger.
    let mut sub = store.subscribe_all(0);
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
