//! When to sign, and the one rule a log must never break: "A log MUST NOT sign
//! any checkpoint which is inconsistent with any checkpoint it previously
//! signed" (c2sp.org/tlog-checkpoint). Two inconsistent signed heads are a
//! provable fork, i.e. proof the log lied to someone.
//!
//! Time is always passed in (unix seconds) so the policy is deterministic and
//! testable; nothing here reads a clock.

use crate::checkpoint::{
    Checkpoint, CheckpointError, SignedCheckpoint, parse_and_verify_checkpoint_for_origin,
    sign_checkpoint,
};
use crate::note::NoteSigner;
use crate::tree::{MerkleTree, TreeError};
use crate::verify::{VerifyError, verify_consistency};
use thiserror::Error;

/// When a new checkpoint is due. Either trigger suffices; only growth is
/// ever signed (re-signing an unchanged head adds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPolicy {
    /// Sign once at least this many leaves were added since the last checkpoint
    /// (0 disables the leaf trigger).
    pub every_leaves: u64,
    /// Sign once at least this many seconds passed since the last checkpoint,
    /// provided the tree grew (0 disables the time trigger).
    pub every_secs: u64,
}

/// Errors from the checkpointer. `Inconsistent*` are refusals to sign.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum CheckpointerError {
    #[error("refusing to sign size {new} smaller than the last signed size {last}")]
    ShrinkingTree { last: u64, new: u64 },
    #[error("refusing to sign: tree is not an extension of the last signed checkpoint ({0})")]
    Inconsistent(VerifyError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Signs checkpoints for one log (origin = signer key name), remembering the
/// last one so it can refuse to fork.
#[derive(Debug)]
pub struct Checkpointer {
    signer: NoteSigner,
    policy: SigningPolicy,
    last: Option<SignedCheckpoint>,
    last_signed_at: Option<u64>,
}

impl Checkpointer {
    /// A checkpointer that has never signed. The origin line is the key name,
    /// as the spec recommends, so a verifier key pins the log identity.
    pub fn new(signer: NoteSigner, policy: SigningPolicy) -> Self {
        Self {
            signer,
            policy,
            last: None,
            last_signed_at: None,
        }
    }

    /// Resume after a restart from the last checkpoint note this log signed
    /// (persisted by the caller). The note is re-verified with our own key so
    /// a corrupted store cannot silently reset the fork protection.
    pub fn resume(
        signer: NoteSigner,
        policy: SigningPolicy,
        last_note: &str,
        last_signed_at: u64,
    ) -> Result<Self, CheckpointerError> {
        let checkpoint =
            parse_and_verify_checkpoint_for_origin(last_note, &signer.verifier(), signer.name())?;
        Ok(Self {
            signer,
            policy,
            last: Some(SignedCheckpoint {
                checkpoint,
                note: last_note.to_owned(),
            }),
            last_signed_at: Some(last_signed_at),
        })
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    pub fn last(&self) -> Option<&SignedCheckpoint> {
        self.last.as_ref()
    }

    /// Whether the policy calls for a checkpoint at `tree_size` at time `now`.
    pub fn is_due(&self, tree_size: u64, now: u64) -> bool {
        let (Some(last), Some(at)) = (&self.last, self.last_signed_at) else {
            return true; // first checkpoint: always due, even for an empty log
        };
        let last_size = last.checkpoint.size;
        if tree_size <= last_size {
            return false;
        }
        let by_leaves =
            self.policy.every_leaves > 0 && tree_size - last_size >= self.policy.every_leaves;
        // saturating: a clock that went backwards means "not yet", not a panic.
        let by_time =
            self.policy.every_secs > 0 && now.saturating_sub(at) >= self.policy.every_secs;
        by_leaves || by_time
    }

    /// Sign the tree's current head if the policy says it is due.
    pub fn maybe_sign(
        &mut self,
        tree: &MerkleTree,
        now: u64,
    ) -> Result<Option<SignedCheckpoint>, CheckpointerError> {
        if !self.is_due(tree.size(), now) {
            return Ok(None);
        }
        self.sign_at(tree, tree.size(), now).map(Some)
    }

    /// Sign the head of `tree` at `size` now, regardless of the schedule, but
    /// never if it is inconsistent with the last signed checkpoint. Signing the
    /// same head again is allowed (it is trivially consistent).
    pub fn sign_at(
        &mut self,
        tree: &MerkleTree,
        size: u64,
        now: u64,
    ) -> Result<SignedCheckpoint, CheckpointerError> {
        let root = tree.root(size)?;
        if let Some(last) = &self.last {
            let last = &last.checkpoint;
            if size < last.size {
                return Err(CheckpointerError::ShrinkingTree {
                    last: last.size,
                    new: size,
                });
            }
            // Prove, with the independent verifier, that what we are about to
            // sign extends what we signed before. This catches a tree rebuilt
            // from a tampered or reordered store, not just a shrinking one.
            let proof = tree.consistency_proof(last.size, size)?;
            verify_consistency(last.size, size, &last.root, &root, &proof)
                .map_err(CheckpointerError::Inconsistent)?;
        }
        let cp = Checkpoint::new(self.signer.name(), size, root);
        let signed = sign_checkpoint(&cp, &self.signer)?;
        self.last = Some(signed.clone());
        self.last_signed_at = Some(now);
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::parse_and_verify_checkpoint;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn signer(seed: u64) -> NoteSigner {
        NoteSigner::generate("mebyo.example/log", &mut ChaCha20Rng::seed_from_u64(seed)).unwrap()
    }

    fn tree(n: u32, salt: u8) -> MerkleTree {
        let mut t = MerkleTree::new();
        for i in 0..n {
            let mut e = [salt; 32];
            e[..4].copy_from_slice(&i.to_be_bytes());
            t.append_event(&e);
        }
        t
    }

    #[test]
    fn policy_triggers() {
        let policy = SigningPolicy {
            every_leaves: 10,
            every_secs: 60,
        };
        let mut c = Checkpointer::new(signer(1), policy);
        let t = tree(25, 0);
        assert!(c.is_due(0, 0));
        let first = c.sign_at(&t, 5, 100).unwrap();
        assert_eq!(first.checkpoint.size, 5);
        assert!(!c.is_due(5, 10_000), "no growth, no signature");
        assert!(!c.is_due(14, 159));
        assert!(c.is_due(15, 159), "leaf trigger");
        assert!(c.is_due(6, 160), "time trigger");
        assert!(!c.is_due(6, 50), "clock went backwards");
        let s = c.maybe_sign(&t, 101).unwrap().unwrap();
        assert_eq!(s.checkpoint.size, 25);
        assert!(c.maybe_sign(&t, 10_000).unwrap().is_none());
        let v = c.signer.verifier();
        assert_eq!(
            parse_and_verify_checkpoint(&s.note, &v).unwrap(),
            s.checkpoint
        );
    }

    #[test]
    fn refuses_to_shrink() {
        let mut c = Checkpointer::new(
            signer(2),
            SigningPolicy {
                every_leaves: 1,
                every_secs: 0,
            },
        );
        let t = tree(10, 0);
        c.sign_at(&t, 10, 0).unwrap();
        assert_eq!(
            c.sign_at(&t, 9, 1),
            Err(CheckpointerError::ShrinkingTree { last: 10, new: 9 })
        );
        // Same head again is fine.
        c.sign_at(&t, 10, 2).unwrap();
    }

    #[test]
    fn refuses_fork_after_history_rewrite() {
        let mut c = Checkpointer::new(
            signer(3),
            SigningPolicy {
                every_leaves: 1,
                every_secs: 0,
            },
        );
        c.sign_at(&tree(10, 0), 10, 0).unwrap();
        // A tree whose first 10 leaves differ (e.g. rebuilt from a tampered store).
        let forked = tree(20, 1);
        assert!(matches!(
            c.sign_at(&forked, 20, 1),
            Err(CheckpointerError::Inconsistent(_))
        ));
        assert!(matches!(
            c.sign_at(&forked, 10, 1),
            Err(CheckpointerError::Inconsistent(_))
        ));
        assert_eq!(c.last().unwrap().checkpoint.size, 10);
        // The honest extension still signs.
        c.sign_at(&tree(20, 0), 20, 2).unwrap();
    }

    #[test]
    fn resume_keeps_fork_protection() {
        let mut c = Checkpointer::new(
            signer(4),
            SigningPolicy {
                every_leaves: 1,
                every_secs: 0,
            },
        );
        let note = c.sign_at(&tree(8, 0), 8, 5).unwrap().note;
        let mut r = Checkpointer::resume(signer(4), c.policy, &note, 5).unwrap();
        assert!(matches!(
            r.sign_at(&tree(9, 1), 9, 6),
            Err(CheckpointerError::Inconsistent(_))
        ));
        r.sign_at(&tree(9, 0), 9, 6).unwrap();
        // A note signed by another key is not accepted as our own history.
        assert!(Checkpointer::resume(signer(5), c.policy, &note, 5).is_err());
    }
}
