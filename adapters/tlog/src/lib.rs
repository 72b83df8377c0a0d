//! mebyo-tlog: a transparency log over mebyo's event hash chain.
//!
//! Every event's 32-byte blake3 hash is a leaf of an RFC 9162 (RFC 6962)
//! SHA-256 Merkle tree, leaf index = chain position. The log periodically
//! signs C2SP checkpoints (signed notes) of the tree head, and can hand third
//! parties inclusion and consistency proofs they can check without trusting
//! mebyo, in any language (see `docs/proofs.md`).
//!
//! Pure: no clocks, no randomness except an injected RNG, no IO except the
//! optional proof-file helpers.
//!
//! - [`hash`]: leaf/node hashing (RFC 9162 §2.1.1).
//! - [`tree`]: incremental [`MerkleTree`], roots at any size, proof generation.
//! - [`verify`]: independent verifiers (RFC 9162 §2.1.3.2, §2.1.4.2).
//! - [`note`], [`checkpoint`]: C2SP signed notes and checkpoints (Ed25519).
//! - [`checkpointer`]: signing schedule and the never-fork rule.
//! - [`bundle`]: JSON proof files for auditors.

pub mod bundle;
pub mod checkpoint;
pub mod checkpointer;
pub mod hash;
pub mod note;
pub mod tree;
pub mod verify;

pub use bundle::{ConsistencyBundle, InclusionBundle, ProofBundle, Verified, verify_bundle};
pub use checkpoint::{
    Checkpoint, SignedCheckpoint, parse_and_verify_checkpoint,
    parse_and_verify_checkpoint_for_origin, sign_checkpoint,
};
pub use checkpointer::{Checkpointer, SigningPolicy};
pub use hash::{EventHash, Hash, empty_root, event_leaf_hash, leaf_hash, node_hash};
pub use note::{NoteSigner, NoteVerifier, open_note};
pub use tree::MerkleTree;
pub use verify::{verify_consistency, verify_inclusion};
