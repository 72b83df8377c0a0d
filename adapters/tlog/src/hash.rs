//! RFC 9162 §2.1 hashing primitives (SHA-256, identical to RFC 6962).
//!
//! Leaves and interior nodes carry different one-byte prefixes so that a leaf can
//! never be reinterpreted as an interior node (second-preimage defence, RFC 9162
//! §2.1.1). These are the only hashing rules an outside verifier needs.

use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 tree hash (leaf hash, node hash or root).
pub type Hash = [u8; 32];

/// The 32-byte blake3 hash of a mebyo event: the leaf *data* of the log.
pub type EventHash = [u8; 32];

/// Domain separation prefix for leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix for interior nodes (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// Leaf hash of a mebyo event: the leaf data is the 32-byte blake3 event hash.
pub fn event_leaf_hash(event: &EventHash) -> Hash {
    leaf_hash(event)
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// SHA-256 of arbitrary bytes (used for signed-note key IDs).
pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Largest power of two strictly less than `n` (the RFC's split point `k`).
/// Precondition `n >= 2`; callers guarantee it, and for `n < 2` this returns 0
/// rather than panicking.
pub(crate) fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point(1), 0);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
