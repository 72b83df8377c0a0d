//! Evidence that the log once went further than it does (issue 19 §3).
//!
//! A log cut back at a frame boundary — a restored older volume, write-back lost
//! by the disk — is still a valid chain, so the chain cannot tell. Files outside
//! the log can: the store's clean-close record (`events.clean`, checked by the
//! store itself: `OpenError::Shorter`), the read models' snapshot (it covers only
//! durable events), and the checkpoint published outside the log
//! (`DATA/checkpoints/latest.note`, written once its event is durable). Any of
//! them beyond the log's end stops [`crate::Platform::open`] with an error naming
//! every position. Only an operator's explicit decision ([`AcceptLoss`], `mebyo
//! store accept-loss`) opens such a log, and that decision is an event
//! (`ledger.loss_accepted` in `ledger-recovery`), durable before the stale
//! snapshot is removed and the published checkpoint set aside.

use std::path::Path;

use mebyo_domain::StaffId;
use serde::Serialize;

use crate::DataDir;

/// Stream and type of the operator's acceptance of a loss.
pub const LOSS_STREAM: &str = "ledger-recovery";
pub const LOSS_ACCEPTED: &str = "ledger.loss_accepted";

/// An operator's decision to open a log that lost its end (`to` = the number of
/// events it holds now, which the operator confirms).
#[derive(Debug, Clone)]
pub struct AcceptLoss {
    pub to: u64,
    pub by: StaffId,
}

/// One file that says the log went further.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The file, relative to the data directory.
    pub file: String,
    /// What it is.
    pub what: &'static str,
    /// How many events it says the log held.
    pub count: u64,
}

pub const CLEAN_CLOSE_FILE: &str = "ledger/events.clean";
pub const SNAPSHOT_FILE: &str = "projections/models.snap";
pub const CHECKPOINT_FILE: &str = "checkpoints/latest.note";

pub fn clean_close(count: u64) -> Evidence {
    Evidence {
        file: CLEAN_CLOSE_FILE.into(),
        what: "the clean-close record says it held",
        count,
    }
}

/// The platform's own evidence against a log of `head` events: the snapshot and
/// the published checkpoint, where they say more than `head`.
pub fn platform_evidence(dir: &DataDir, head: u64) -> Result<Vec<Evidence>, String> {
    let mut out = Vec::new();
    match crate::snapshot::covers(&crate::snapshot::path(&dir.root)) {
        Ok(c) if c.position > head => out.push(Evidence {
            file: SNAPSHOT_FILE.into(),
            what: "the read models' snapshot covers",
            count: c.position,
        }),
        // Missing, or unreadable (the views refuse it and replay): no evidence.
        _ => {}
    }
    if let Some(size) = published_checkpoint(&dir.root)?
        && size > head
    {
        out.push(Evidence {
            file: CHECKPOINT_FILE.into(),
            what: "the last signed checkpoint covers",
            count: size,
        });
    }
    Ok(out)
}

/// Size of the checkpoint published outside the log, when there is one; it
/// must verify with the ledger's own verifier key to count.
fn published_checkpoint(root: &Path) -> Result<Option<u64>, String> {
    let path = mebyo_audit::published_path(root);
    if !path.exists() {
        return Ok(None);
    }
    let vkey = mebyo_audit::load_vkey(&mebyo_audit::keys::vkey_path(root))
        .map_err(|e| format!("checking {}: {e}", path.display()))?;
    Ok(mebyo_audit::read_published(&path, &vkey)?.map(|c| c.size))
}

/// The message of a refused start: every position, and the two ways on.
pub fn describe(data: &Path, head: u64, evidence: &[Evidence]) -> String {
    let list = evidence
        .iter()
        .map(|e| format!("{} ({}) {} events", e.file, e.what, e.count))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "the ledger holds {head} events (its log ends at position {head}), but {list}: acknowledged events are missing (a restored older volume, or lost writes). \
         Restore them from a backup (`mebyo backup restore`), or accept the loss, which is recorded as an event: \
         `mebyo store accept-loss --data {} --to {head} --by <staff id>`",
        data.display()
    )
}

/// After the acceptance event is durable: the stale snapshot goes (it is
/// derived, and rebuilt from the log), and the published checkpoint is set
/// aside beside it (kept for auditors, no longer evidence against this log).
pub fn clear_evidence(dir: &DataDir, evidence: &[Evidence]) -> std::io::Result<()> {
    for e in evidence {
        let path = dir.root.join(&e.file);
        match e.file.as_str() {
            SNAPSHOT_FILE => std::fs::remove_file(&path)?,
            CHECKPOINT_FILE => {
                let aside = path.with_file_name(format!("lost-{}.note", e.count));
                std::fs::rename(&path, aside)?;
            }
            _ => continue, // the store removed the clean-close record itself
        }
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// Records the operator's acceptance (durable), then clears the evidence it
/// answers, so the next start opens the log as it now is.
pub async fn accept(
    store: &mebyo_store::EmbeddedStore,
    dir: &DataDir,
    a: &AcceptLoss,
    evidence: &[Evidence],
    now_us: i64,
) -> Result<(), crate::PlatformError> {
    use mebyo_store::{Actor, EventStore, ExpectedRevision, NewEvent};
    let body = serde_json::json!({
        "to": a.to,
        "by": a.by.as_str(),
        "at_us": now_us,
        "evidence": evidence,
    });
    let payload =
        serde_json::to_vec(&body).map_err(|e| crate::PlatformError::Settings(e.to_string()))?;
    // No randomness is needed: the decision's bytes name it.
    let mut id = [0u8; 16];
    id.copy_from_slice(&blake3::hash(&payload).as_bytes()[..16]);
    let event = NewEvent::plain(
        LOSS_ACCEPTED,
        Actor::new("staff", a.by.as_str()),
        id,
        payload,
    );
    store
        .append(LOSS_STREAM, ExpectedRevision::Any, vec![event])
        .await?;
    tracing::warn!(
        to = a.to,
        by = a.by.as_str(),
        "the operator accepted the loss of the log's end; recorded in {LOSS_STREAM}"
    );
    clear_evidence(dir, evidence)?;
    Ok(())
}
