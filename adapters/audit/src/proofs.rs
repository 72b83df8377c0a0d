//! Proof bundles from a scanned log, signed by checkpoints found in it.

use mebyo_tlog::bundle::BundleError;
use mebyo_tlog::{ConsistencyBundle, InclusionBundle};

use crate::scan::{LedgerCheckpoint, TreeScan};

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the log holds no checkpoint yet (run `mebyo audit checkpoint`)")]
    NoCheckpoint,
    #[error("no checkpoint in the log has tree size {size}; sizes signed: {available}")]
    NoCheckpointOfSize { size: u64, available: String },
    #[error("position {position} is not covered by the checkpoint of size {size}")]
    NotCovered { position: u64, size: u64 },
    #[error("the log has no event at position {0}")]
    NoSuchEvent(u64),
    #[error("--from {from} is larger than --to {to}")]
    SizesOutOfOrder { from: u64, to: u64 },
    #[error("the log does not match its own checkpoint at position {0}; run `mebyo audit verify`")]
    Damaged(u64),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Signed sizes, for messages (bounded: a long log has many checkpoints).
fn available(cps: &[LedgerCheckpoint]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = cps
        .iter()
        .rev()
        .take(SHOWN)
        .rev()
        .map(|c| c.signed.checkpoint.size.to_string())
        .collect();
    if cps.len() > SHOWN {
        s.insert(0, format!("({} more) ...", cps.len() - SHOWN));
    }
    if s.is_empty() {
        "none".into()
    } else {
        s.join(", ")
    }
}

fn usable(scan: &TreeScan) -> Result<(), ProofError> {
    match &scan.problem {
        Some(p) => Err(ProofError::Damaged(p.position)),
        None => Ok(()),
    }
}

fn of_size(scan: &TreeScan, size: u64) -> Result<&LedgerCheckpoint, ProofError> {
    scan.checkpoints
        .iter()
        .find(|c| c.signed.checkpoint.size == size)
        .ok_or_else(|| ProofError::NoCheckpointOfSize {
            size,
            available: available(&scan.checkpoints),
        })
}

/// Inclusion of the event at `position` (its hash captured by the scan) in the
/// checkpoint of size `at`, or in the newest checkpoint.
pub fn inclusion(
    scan: &TreeScan,
    position: u64,
    at: Option<u64>,
) -> Result<InclusionBundle, ProofError> {
    usable(scan)?;
    let event_hash = scan.captured.ok_or(ProofError::NoSuchEvent(position))?;
    let cp = match at {
        Some(size) => of_size(scan, size)?,
        None => scan.checkpoints.last().ok_or(ProofError::NoCheckpoint)?,
    };
    let size = cp.signed.checkpoint.size;
    if position >= size {
        return Err(ProofError::NotCovered { position, size });
    }
    Ok(InclusionBundle::build(
        &scan.tree,
        position,
        &event_hash,
        &cp.signed,
    )?)
}

/// Consistency between the checkpoints of sizes `from` and `to`.
pub fn consistency(scan: &TreeScan, from: u64, to: u64) -> Result<ConsistencyBundle, ProofError> {
    usable(scan)?;
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    let old = of_size(scan, from)?;
    let new = of_size(scan, to)?;
    Ok(ConsistencyBundle::build(
        &scan.tree,
        &old.signed,
        &new.signed,
    )?)
}
