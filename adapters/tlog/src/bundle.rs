//! Self-contained proof files for third parties (format in `docs/proofs.md`).
//!
//! A bundle carries everything needed except the log's verifier key, which the
//! auditor must obtain out of band: trusting a key shipped inside the proof
//! would prove nothing.

use crate::checkpoint::{
    Checkpoint, CheckpointError, SignedCheckpoint, parse_and_verify_checkpoint,
};
use crate::hash::{EventHash, Hash, event_leaf_hash};
use crate::note::{MAX_NOTE_BYTES, NoteVerifier};
use crate::tree::{MerkleTree, TreeError};
use crate::verify::{
    MAX_CONSISTENCY_PROOF_HASHES, MAX_INCLUSION_PROOF_HASHES, VerifyError, verify_consistency,
    verify_inclusion,
};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Version tag of the inclusion bundle format.
pub const INCLUSION_FORMAT: &str = "mebyo-tlog-inclusion-v1";
/// Version tag of the consistency bundle format.
pub const CONSISTENCY_FORMAT: &str = "mebyo-tlog-consistency-v1";
/// Upper bound on a bundle's JSON size: two notes plus 65 hex hashes fit easily.
pub const MAX_BUNDLE_BYTES: usize = 2 * MAX_NOTE_BYTES + 16 * 1024;

/// Errors from building, parsing or verifying bundles.
#[derive(Debug, Error)]
pub enum BundleError {
    #[error("bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    #[error("bundle JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bundle file: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported bundle format {0:?}")]
    UnsupportedFormat(String),
    #[error("bad hex hash in field {0}")]
    BadHash(&'static str),
    #[error("{0}")]
    Mismatch(&'static str),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Proof(#[from] VerifyError),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Proof that one event is leaf `leaf_index` of the signed tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// Always [`INCLUSION_FORMAT`].
    pub format: String,
    /// Position of the event in the hash chain (= leaf index).
    pub leaf_index: u64,
    /// The event's 32-byte blake3 hash, lowercase hex (the leaf data).
    pub event_hash: String,
    /// Tree size the proof is for; must equal the checkpoint's size.
    pub tree_size: u64,
    /// RFC 9162 inclusion path, leaf to root, lowercase hex.
    pub proof: Vec<String>,
    /// The signed checkpoint note (C2SP signed-note text).
    pub checkpoint: String,
}

/// Proof that a newer signed tree extends an older one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyBundle {
    /// Always [`CONSISTENCY_FORMAT`].
    pub format: String,
    /// Signed checkpoint note of the older tree.
    pub old_checkpoint: String,
    /// Signed checkpoint note of the newer tree.
    pub new_checkpoint: String,
    /// RFC 9162 consistency path, lowercase hex.
    pub proof: Vec<String>,
}

/// Either bundle, as found in a proof file (distinguished by `format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofBundle {
    Inclusion(InclusionBundle),
    Consistency(ConsistencyBundle),
}

/// What a successful inclusion verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInclusion {
    pub checkpoint: Checkpoint,
    pub leaf_index: u64,
    pub event_hash: EventHash,
}

/// What a successful consistency verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedConsistency {
    pub old: Checkpoint,
    pub new: Checkpoint,
}

/// Outcome of [`verify_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Inclusion(VerifiedInclusion),
    Consistency(VerifiedConsistency),
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Strict lowercase hex of exactly 32 bytes (one spelling per hash).
fn parse_hash(s: &str, field: &'static str) -> Result<Hash, BundleError> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(BundleError::BadHash(field));
    }
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).map_err(|_| BundleError::BadHash(field))?;
    Ok(h)
}

fn parse_path(p: &[String], max: usize) -> Result<Vec<Hash>, BundleError> {
    if p.len() > max {
        return Err(VerifyError::ProofTooLong { len: p.len(), max }.into());
    }
    p.iter().map(|s| parse_hash(s, "proof")).collect()
}

fn check_json_size(json: &str) -> Result<(), BundleError> {
    if json.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge);
    }
    Ok(())
}

/// A bundle accepted must also be one this crate can write and read back: its
/// pretty JSON (what `to_json` and `write_file` make) within the limit too. A
/// compact file just under the limit would otherwise be read, and its copy
/// written out refused (found by the `tlog_bundle` fuzz target, a 49 KB input).
fn fits(pretty: &str) -> Result<(), BundleError> {
    check_json_size(pretty)
}

impl InclusionBundle {
    /// Build a bundle for leaf `index` against an already signed checkpoint
    /// whose head is a size this tree has reached.
    pub fn build(
        tree: &MerkleTree,
        index: u64,
        event_hash: &EventHash,
        signed: &SignedCheckpoint,
    ) -> Result<Self, BundleError> {
        let size = signed.checkpoint.size;
        if tree.root(size)? != signed.checkpoint.root {
            return Err(BundleError::Mismatch("tree does not match the checkpoint"));
        }
        if tree.leaf_hash(index) != Some(event_leaf_hash(event_hash)) {
            return Err(BundleError::Mismatch(
                "event hash is not the leaf at that index",
            ));
        }
        Ok(Self {
            format: INCLUSION_FORMAT.to_owned(),
            leaf_index: index,
            event_hash: hex::encode(event_hash),
            tree_size: size,
            proof: hexes(&tree.inclusion_proof(index, size)?),
            checkpoint: signed.note.clone(),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("bundle serialises")
    }

    pub fn from_json(json: &str) -> Result<Self, BundleError> {
        check_json_size(json)?;
        let b: Self = serde_json::from_str(json)?;
        fits(&b.to_json())?;
        Ok(b)
    }

    /// Verify against the log's verifier key (obtained out of band).
    pub fn verify(&self, vkey: &NoteVerifier) -> Result<VerifiedInclusion, BundleError> {
        if self.format != INCLUSION_FORMAT {
            return Err(BundleError::UnsupportedFormat(self.format.clone()));
        }
        let checkpoint = parse_and_verify_checkpoint(&self.checkpoint, vkey)?;
        // The RFC path algorithm binds the path shape, not the size, so the
        // size must be the one the log signed.
        if checkpoint.size != self.tree_size {
            return Err(BundleError::Mismatch(
                "tree_size differs from checkpoint size",
            ));
        }
        let event_hash = parse_hash(&self.event_hash, "event_hash")?;
        let path = parse_path(&self.proof, MAX_INCLUSION_PROOF_HASHES)?;
        verify_inclusion(
            &event_leaf_hash(&event_hash),
            self.leaf_index,
            self.tree_size,
            &path,
            &checkpoint.root,
        )?;
        Ok(VerifiedInclusion {
            checkpoint,
            leaf_index: self.leaf_index,
            event_hash,
        })
    }
}

impl ConsistencyBundle {
    /// Build a bundle proving `new` extends `old`, both signed by this log.
    pub fn build(
        tree: &MerkleTree,
        old: &SignedCheckpoint,
        new: &SignedCheckpoint,
    ) -> Result<Self, BundleError> {
        let (o, n) = (&old.checkpoint, &new.checkpoint);
        if tree.root(o.size)? != o.root || tree.root(n.size)? != n.root {
            return Err(BundleError::Mismatch("tree does not match the checkpoints"));
        }
        Ok(Self {
            format: CONSISTENCY_FORMAT.to_owned(),
            old_checkpoint: old.note.clone(),
            new_checkpoint: new.note.clone(),
            proof: hexes(&tree.consistency_proof(o.size, n.size)?),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("bundle serialises")
    }

    pub fn from_json(json: &str) -> Result<Self, BundleError> {
        check_json_size(json)?;
        let b: Self = serde_json::from_str(json)?;
        fits(&b.to_json())?;
        Ok(b)
    }

    pub fn verify(&self, vkey: &NoteVerifier) -> Result<VerifiedConsistency, BundleError> {
        if self.format != CONSISTENCY_FORMAT {
            return Err(BundleError::UnsupportedFormat(self.format.clone()));
        }
        let old = parse_and_verify_checkpoint(&self.old_checkpoint, vkey)?;
        let new = parse_and_verify_checkpoint(&self.new_checkpoint, vkey)?;
        if old.origin != new.origin {
            return Err(BundleError::Mismatch("checkpoints are from different logs"));
        }
        let path = parse_path(&self.proof, MAX_CONSISTENCY_PROOF_HASHES)?;
        verify_consistency(old.size, new.size, &old.root, &new.root, &path)?;
        Ok(VerifiedConsistency { old, new })
    }
}

impl ProofBundle {
    /// Parse either bundle kind, dispatching on the `format` field.
    pub fn from_json(json: &str) -> Result<Self, BundleError> {
        check_json_size(json)?;
        #[derive(Deserialize)]
        struct Probe {
            format: String,
        }
        let probe: Probe = serde_json::from_str(json)?;
        match probe.format.as_str() {
            INCLUSION_FORMAT => Ok(Self::Inclusion(InclusionBundle::from_json(json)?)),
            CONSISTENCY_FORMAT => Ok(Self::Consistency(ConsistencyBundle::from_json(json)?)),
            other => Err(BundleError::UnsupportedFormat(other.to_owned())),
        }
    }

    pub fn to_json(&self) -> String {
        match self {
            Self::Inclusion(b) => b.to_json(),
            Self::Consistency(b) => b.to_json(),
        }
    }

    /// Read a proof file, refusing anything larger than [`MAX_BUNDLE_BYTES`].
    pub fn read_file(path: &Path) -> Result<Self, BundleError> {
        let mut buf = String::new();
        std::fs::File::open(path)?
            .take(MAX_BUNDLE_BYTES as u64 + 1)
            .read_to_string(&mut buf)?;
        Self::from_json(&buf)
    }

    /// Write a proof file (pretty JSON).
    pub fn write_file(&self, path: &Path) -> Result<(), BundleError> {
        std::fs::write(path, self.to_json())?;
        Ok(())
    }
}

/// Verify any bundle with the log's verifier key.
pub fn verify_bundle(bundle: &ProofBundle, vkey: &NoteVerifier) -> Result<Verified, BundleError> {
    match bundle {
        ProofBundle::Inclusion(b) => b.verify(vkey).map(Verified::Inclusion),
        ProofBundle::Consistency(b) => b.verify(vkey).map(Verified::Consistency),
    }
}
