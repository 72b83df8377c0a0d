//! Where a command's events landed in the log: what a staff command of the
//! running server answers (issue 15 §1: "the event's position and hash"), so that
//! the dashboard can link to the event and a script can prove it with the chain.
//!
//! Commands keep returning their events (`Outcome<Vec<E>>`); the receipt travels
//! beside them in a task-local cell that only [`with_receipt`] sets, so the many
//! callers that do not need it are unchanged. A command may append more than once
//! (a credential rotation revokes, issues, then records): the receipt is the last.

use std::cell::Cell;
use std::future::Future;

use mebyo_store::{AppendOutcome, Hash};

/// The last event a command appended: its global position (0-based) and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub position: u64,
    pub hash: Hash,
}

tokio::task_local! {
    static RECEIPT: Cell<Option<Receipt>>;
}

/// Runs `work` and returns its output with the receipt of the last append it made
/// on this task through the platform (`None` if it appended nothing: a refusal,
/// or a command that decided no change).
pub async fn with_receipt<F: Future>(work: F) -> (F::Output, Option<Receipt>) {
    RECEIPT
        .scope(Cell::new(None), async {
            let out = work.await;
            (out, RECEIPT.with(Cell::get))
        })
        .await
}

/// Notes an append of `count` events (called by the platform after each one).
pub(crate) fn note(out: &AppendOutcome, count: usize) {
    debug_assert!(count > 0, "an append holds at least one event");
    let receipt = Receipt {
        position: out.first_position + count.saturating_sub(1) as u64,
        hash: out.last_hash,
    };
    // Outside `with_receipt` there is no cell, and nobody asked.
    let _ = RECEIPT.try_with(|c| c.set(Some(receipt)));
}

/// Notes an event appended outside the deciders (a backup job's record), whose
/// position and hash the caller read back.
pub fn note_at(position: u64, hash: Hash) {
    let _ = RECEIPT.try_with(|c| c.set(Some(Receipt { position, hash })));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_receipt_is_the_last_append_of_the_scope_only() {
        let out = |first_position, last_hash| AppendOutcome {
            first_position,
            last_revision: 0,
            last_hash,
        };
        note(&out(1, [1; 32]), 1); // outside any scope: dropped
        let ((), got) = with_receipt(async {
            note(&out(5, [5; 32]), 3);
            note(&out(9, [9; 32]), 2);
        })
        .await;
        assert_eq!(
            got,
            Some(Receipt {
                position: 10,
                hash: [9; 32]
            })
        );
        let ((), none) = with_receipt(async {}).await;
        assert_eq!(none, None);
    }
}
