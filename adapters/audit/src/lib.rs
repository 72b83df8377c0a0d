//! mebyo-audit: what an auditor needs on top of the hash chain.
//!
//! - [`scan`]: a read-only pass over `events.log` that rebuilds the RFC 9162
//!   Merkle tree (leaf data = each event's blake3 hash, in position order) and
//!   checks every `ledger.checkpoint` event against it; [`scan::verify_ledger`]
//!   runs it in parallel with the store's chain verifier and adds checks against
//!   checkpoints kept outside the ledger.
//! - [`keys`]: the checkpoint signing key in `DATA/keys` ([`ensure_checkpoint_key`]).
//! - [`checkpointing`]: the signer a running server drives from `subscribe_all`.
//! - [`proofs`]: inclusion and consistency bundles for third parties.
//! - [`fhir`]: FHIR R4 `AuditEvent` export of access records (IHE BALP).
//!
//! Checkpoints live in the ledger itself, as plaintext operational events of
//! stream [`CHECKPOINT_STREAM`], type [`CHECKPOINT_EVENT_TYPE`], whose payload is
//! the C2SP signed note. A checkpoint event at position `p` covers a tree size
//! `s <= p` (exactly `p` when nothing was appended between signing and storing
//! it): it can never cover itself, since its own hash depends on its payload.
#![forbid(unsafe_code)]

pub mod checkpointing;
pub mod fhir;
pub mod keys;
pub mod proofs;
pub mod scan;

/// The transparency-log primitives, re-exported so the binary needs one dependency.
pub use mebyo_tlog as tlog;

pub use checkpointing::{
    Checkpointing, CheckpointingError, Signed, published_path, read_published, read_published_note,
};
pub use keys::{KeyError, checkpoint_origin, ensure_checkpoint_key, load_signer, load_vkey};
pub use scan::{
    ExternalCheckpoint, LedgerCheckpoint, Problem, ProblemKind, Report, ScanError, TreeScan,
    VerifyOptions, scan_tree, verify_ledger,
};

/// Stream that holds the checkpoints.
pub const CHECKPOINT_STREAM: &str = "ledger-checkpoints";
/// Event type of a checkpoint; its plaintext payload is the signed note.
pub const CHECKPOINT_EVENT_TYPE: &str = "ledger.checkpoint";
