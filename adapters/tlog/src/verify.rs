//! Proof verifiers, written from the RFC 9162 text and deliberately sharing no
//! code with the tree/proof generator (only the two hash functions): a bug in
//! the generator must not be mirrored by the verifier.
//!
//! Step numbers in comments refer to RFC 9162 §2.1.3.2 and §2.1.4.2.

use crate::hash::{Hash, empty_root, node_hash};
use thiserror::Error;

/// An inclusion path has at most one hash per tree level; 64 levels cover any
/// u64 tree size.
pub const MAX_INCLUSION_PROOF_HASHES: usize = 64;
/// A consistency path has at most one hash per level plus the old subtree root.
pub const MAX_CONSISTENCY_PROOF_HASHES: usize = 65;

/// Why a proof did not verify. All variants mean "reject"; the detail is for logs.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum VerifyError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("proof has {len} hashes, more than the limit {max}")]
    ProofTooLong { len: usize, max: usize },
    #[error("proof has the wrong number of hashes for these sizes")]
    WrongProofLength,
    #[error("proof must be empty for these sizes")]
    ProofNotEmpty,
    #[error("empty proof where one is required")]
    EmptyProof,
    #[error("root of an empty tree must be SHA-256(\"\")")]
    BadEmptyRoot,
    #[error("computed root does not match the expected root")]
    RootMismatch,
}

fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// Verify that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
///
/// Note the algorithm binds the *shape* of the path, not `size` itself: the
/// size must come from the same signed checkpoint as `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if proof.len() > MAX_INCLUSION_PROOF_HASHES {
        return Err(VerifyError::ProofTooLong {
            len: proof.len(),
            max: MAX_INCLUSION_PROOF_HASHES,
        });
    }
    // 1. If leaf_index >= tree_size, fail.
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let mut fn_ = index;
    let mut sn = size - 1;
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for p in proof {
        // a. If sn is 0, stop the iteration and fail.
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn_) || fn_ == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);
            // ii. If LSB(fn) is not set, right-shift both fn and sn equally
            //     until either LSB(fn) is set or fn is 0.
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. Compare sn to 0. Compare r against the root hash. If sn is equal to 0
    //    and r and the root hash are equal, the log has proven the inclusion.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if r != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verify that the tree of `new_size` leaves with root `new_root` is an
/// append-only extension of the tree of `old_size` leaves with root `old_root`
/// (RFC 9162 §2.1.4.2).
///
/// The RFC algorithm covers `0 < old_size < new_size`; the degenerate cases are
/// settled here first: equal sizes need equal roots and an empty proof, and an
/// empty old tree (whose root must be `SHA-256("")`) is a prefix of every tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if proof.len() > MAX_CONSISTENCY_PROOF_HASHES {
        return Err(VerifyError::ProofTooLong {
            len: proof.len(),
            max: MAX_CONSISTENCY_PROOF_HASHES,
        });
    }
    if old_size > new_size {
        return Err(VerifyError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(VerifyError::ProofNotEmpty);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(VerifyError::RootMismatch)
        };
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(VerifyError::ProofNotEmpty);
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(VerifyError::BadEmptyRoot)
        };
    }
    // 1. If consistency_path is an empty array, stop and fail.
    if proof.is_empty() {
        return Err(VerifyError::EmptyProof);
    }
    // 2. If first is an exact power of 2, prepend first_hash to the path.
    //    (Done by iterating over a chained sequence instead of copying.)
    let prefix: &[Hash] = if old_size.is_power_of_two() {
        std::slice::from_ref(old_root)
    } else {
        &[]
    };
    let mut path = prefix.iter().chain(proof.iter());
    // 3. Set fn to first - 1 and sn to second - 1.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn)
    //    is not set.
    while lsb(fn_) {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let Some(first) = path.next() else {
        return Err(VerifyError::EmptyProof);
    };
    let mut fr = *first;
    let mut sr = *first;
    // 6. For each subsequent value c in the consistency_path array:
    for c in path {
        // a. If sn is 0, stop the iteration and fail.
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn_) || fn_ == sn {
            // i. Set fr to HASH(0x01 || c || fr); set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // ii. If LSB(fn) is not set, right-shift both fn and sn equally
            //     until either LSB(fn) is set or fn is 0.
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. Verify fr == first_hash, sr == second_hash and sn == 0.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}
