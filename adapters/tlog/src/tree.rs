//! Incremental RFC 9162 Merkle tree over event hashes, with proof generation.
//!
//! Storage layout (why): proofs for *any* past tree size need the hashes of
//! arbitrary complete ("perfect", aligned) subtrees. Storing every level costs
//! ~64 bytes per leaf; instead we keep every leaf hash (needed anyway to serve
//! the leaf) plus complete nodes of height >= [`CACHE_MIN_HEIGHT`] only, and
//! recompute the few low nodes a proof needs from the leaves. With a minimum
//! height of 4 this costs 32 + 32/8 = 36 bytes per leaf (360 MB at 10M leaves)
//! and at most ~2^4 extra SHA-256 calls per proof.
//!
//! Appends use a "right border" stack (the compact range of the whole tree): a
//! new leaf is merged with equal-height border nodes like a binary counter, so
//! each append costs one leaf hash plus amortised one node hash, O(log n)
//! worst case.

use crate::hash::{Hash, empty_root, event_leaf_hash, node_hash, split_point};
use thiserror::Error;

/// Nodes of height >= this are cached; lower ones are recomputed on demand.
pub const CACHE_MIN_HEIGHT: u32 = 4;

/// Errors from proof generation and root queries on a [`MerkleTree`].
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum TreeError {
    #[error("tree size {requested} exceeds the current tree size {current}")]
    SizeTooLarge { requested: u64, current: u64 },
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("consistency proof needs old size {old} <= new size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
}

/// An append-only RFC 9162 Merkle tree. Leaf `i` is the event at chain position `i`.
#[derive(Clone, Default)]
pub struct MerkleTree {
    /// `SHA-256(0x00 || event hash)` for every leaf, in order.
    leaves: Vec<Hash>,
    /// `cache[j][i]` = complete node of height `CACHE_MIN_HEIGHT + j` covering
    /// leaves `[i << h, (i + 1) << h)`.
    cache: Vec<Vec<Hash>>,
    /// Right border of the tree: perfect subtrees (height, hash), strictly
    /// decreasing heights, left to right. Its fold is the current root.
    border: Vec<(u32, Hash)>,
}

impl std::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree with room for `leaves` leaves, so that large rebuilds do
    /// not transiently double memory while the leaf vector grows.
    pub fn with_capacity(leaves: usize) -> Self {
        let mut t = Self::new();
        t.leaves.reserve_exact(leaves);
        t
    }

    /// Rebuild from the event hashes in chain order.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a [u8; 32]>) -> Self {
        let mut t = Self::new();
        for e in events {
            t.append_event(e);
        }
        t
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Approximate heap bytes held by the tree (for capacity planning).
    pub fn memory_bytes(&self) -> usize {
        let hashes = self.leaves.capacity() + self.cache.iter().map(Vec::capacity).sum::<usize>();
        hashes * 32 + self.border.capacity() * std::mem::size_of::<(u32, Hash)>()
    }

    /// Append the event with this 32-byte blake3 hash; returns its leaf index.
    pub fn append_event(&mut self, event_hash: &[u8; 32]) -> u64 {
        self.append_leaf_hash(event_leaf_hash(event_hash))
    }

    /// Append an already computed leaf hash (`SHA-256(0x00 || data)`); returns
    /// its index. Exposed so arbitrary leaf data (e.g. RFC test vectors) can be used.
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        self.leaves.push(leaf);
        let mut height = 0u32;
        let mut hash = leaf;
        // Binary-counter merge: while the border ends in a subtree of the same
        // height as the one we carry, they are siblings and form a parent.
        while let Some(&(h, left)) = self.border.last() {
            if h != height {
                break;
            }
            self.border.pop();
            hash = node_hash(&left, &hash);
            height += 1;
            if height >= CACHE_MIN_HEIGHT {
                let level = (height - CACHE_MIN_HEIGHT) as usize;
                if self.cache.len() <= level {
                    self.cache.push(Vec::new());
                }
                self.cache[level].push(hash);
            }
        }
        self.border.push((height, hash));
        index
    }

    /// Leaf hash at `index`, if present.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .copied()
    }

    /// Root of the current tree (O(log n), from the border).
    pub fn current_root(&self) -> Hash {
        let mut it = self.border.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }

    /// Root of the tree as it was when it had `size` leaves (`MTH(D[0:size])`).
    pub fn root(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        if size == self.size() {
            return Ok(self.current_root());
        }
        Ok(self.mth(0, size))
    }

    /// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])`, ordered leaf to root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        // Walk down from the root; each step records the sibling subtree hash.
        let mut path = Vec::with_capacity(64);
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                path.push(self.mth(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.mth(lo, lo + k));
                lo += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// RFC 9162 §2.1.4.1 `PROOF(old_size, D[0:new_size])`. Empty when
    /// `old_size == 0` or `old_size == new_size` (nothing to prove).
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(TreeError::SizesOutOfOrder {
                old: old_size,
                new: new_size,
            });
        }
        let mut path = Vec::with_capacity(65);
        if old_size == 0 || old_size == new_size {
            return Ok(path);
        }
        // SUBPROOF(m, D[lo:hi], b), unrolled: `m` is relative to `lo`, `b` says
        // whether D[lo:lo+m] is the whole old tree (whose root the verifier has).
        let (mut lo, mut hi, mut m, mut b) = (0u64, new_size, old_size, true);
        loop {
            let n = hi - lo;
            if m == n {
                if !b {
                    path.push(self.mth(lo, hi));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                path.push(self.mth(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.mth(lo, lo + k));
                lo += k;
                m -= k;
                b = false;
            }
        }
        path.reverse();
        Ok(path)
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.size() {
            return Err(TreeError::SizeTooLarge {
                requested: size,
                current: self.size(),
            });
        }
        Ok(())
    }

    /// `MTH(D[lo:hi])` for `hi <= size`. Every range the RFC recursion produces
    /// starts at a multiple of its largest power-of-two chunk, so the range
    /// decomposes into aligned perfect subtrees combined right to left.
    fn mth(&self, lo: u64, hi: u64) -> Hash {
        if lo == hi {
            return empty_root();
        }
        let mut pos = lo;
        let mut chunks: [Hash; 64] = [[0; 32]; 64];
        let mut count = 0;
        let mut rem = hi - lo;
        while rem > 0 {
            let height = 63 - rem.leading_zeros();
            debug_assert_eq!(pos % (1u64 << height), 0, "unaligned subtree");
            chunks[count] = self.node(height, pos >> height);
            count += 1;
            pos += 1u64 << height;
            rem -= 1u64 << height;
        }
        let mut acc = chunks[count - 1];
        for left in chunks[..count - 1].iter().rev() {
            acc = node_hash(left, &acc);
        }
        acc
    }

    /// Hash of the complete node of `height` at `index` (covers leaves
    /// `[index << height, (index + 1) << height)`, which must all exist).
    fn node(&self, height: u32, index: u64) -> Hash {
        if height == 0 {
            return self.leaves[index as usize];
        }
        if height >= CACHE_MIN_HEIGHT {
            return self.cache[(height - CACHE_MIN_HEIGHT) as usize][index as usize];
        }
        let left = self.node(height - 1, index * 2);
        let right = self.node(height - 1, index * 2 + 1);
        node_hash(&left, &right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// Reference MTH straight from the RFC 9162 §2.1.1 recursive definition.
    fn reference_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_recursive_definition_for_all_small_sizes() {
        let mut t = MerkleTree::new();
        let mut leaves = Vec::new();
        for i in 0u32..300 {
            let l = leaf_hash(&i.to_be_bytes());
            leaves.push(l);
            t.append_leaf_hash(l);
            assert_eq!(t.current_root(), reference_mth(&leaves), "size {}", i + 1);
        }
        for size in 0..=300u64 {
            assert_eq!(
                t.root(size).unwrap(),
                reference_mth(&leaves[..size as usize])
            );
        }
    }

    #[test]
    fn preconditions_are_typed_errors() {
        let mut t = MerkleTree::new();
        t.append_event(&[7; 32]);
        assert!(matches!(t.root(2), Err(TreeError::SizeTooLarge { .. })));
        assert!(matches!(
            t.inclusion_proof(1, 1),
            Err(TreeError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            t.inclusion_proof(0, 0),
            Err(TreeError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            t.consistency_proof(1, 0),
            Err(TreeError::SizesOutOfOrder { .. })
        ));
        assert!(matches!(
            t.consistency_proof(0, 5),
            Err(TreeError::SizeTooLarge { .. })
        ));
        assert_eq!(t.leaf_hash(1), None);
        assert_eq!(t.leaf_hash(u64::MAX), None);
    }
}
