//! Property tests: every generated proof verifies with the independent
//! verifier, and any single corruption (bit flip, wrong index, wrong size,
//! truncation, extension) is rejected.

use mebyo_tlog::hash::{Hash, empty_root, node_hash};
use mebyo_tlog::tree::MerkleTree;
use mebyo_tlog::verify::{verify_consistency, verify_inclusion};
use proptest::prelude::*;
use std::sync::OnceLock;

const N: u64 = 1100;

/// One shared tree: roots and proofs at any size <= N come from it.
fn tree() -> &'static MerkleTree {
    static T: OnceLock<MerkleTree> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = MerkleTree::new();
        for i in 0..N {
            t.append_event(blake3::hash(&i.to_le_bytes()).as_bytes());
        }
        t
    })
}

fn flip(p: &[Hash], which: usize, bit: u8) -> Vec<Hash> {
    let mut p = p.to_vec();
    let n = p.len();
    p[which % n][(bit / 8) as usize % 32] ^= 1 << (bit % 8);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn inclusion_proofs_verify_and_corruptions_fail(
        size in 1..=N,
        idx_seed in any::<u64>(),
        other_seed in any::<u64>(),
        which in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let t = tree();
        let index = idx_seed % size;
        let root = t.root(size).unwrap();
        let leaf = t.leaf_hash(index).unwrap();
        let proof = t.inclusion_proof(index, size).unwrap();
        prop_assert!(proof.len() <= 64);
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());

        if !proof.is_empty() {
            let bad = flip(&proof, which, bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());

        // Flipped bit in the leaf or root.
        let mut bad_leaf = leaf;
        bad_leaf[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(&bad_leaf, index, size, &proof, &root).is_err());
        let mut bad_root = root;
        bad_root[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &bad_root).is_err());

        // Wrong index (same tree, same root).
        let wrong_index = other_seed % size;
        if wrong_index != index {
            prop_assert!(verify_inclusion(&leaf, wrong_index, size, &proof, &root).is_err());
            // And the leaf really at that index does not verify with this proof either.
            let other_leaf = t.leaf_hash(wrong_index).unwrap();
            prop_assert!(verify_inclusion(&other_leaf, wrong_index, size, &proof, &root).is_err());
        }
        // Wrong size: the proof must not verify against the tree of that size.
        // (Against the *original* root a different size can share the path
        // shape; the size is bound by the signed checkpoint, see docs.)
        let wrong_size = 1 + other_seed % N;
        if wrong_size != size && index < wrong_size {
            let wrong_root = t.root(wrong_size).unwrap();
            prop_assert!(verify_inclusion(&leaf, index, wrong_size, &proof, &wrong_root).is_err());
        }
        // A size that does not contain the index always fails.
        prop_assert!(verify_inclusion(&leaf, index, index, &proof, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_corruptions_fail(
        a in 0..=N,
        b in 0..=N,
        other_seed in any::<u64>(),
        which in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let t = tree();
        let (old, new) = if a <= b { (a, b) } else { (b, a) };
        let (r1, r2) = (t.root(old).unwrap(), t.root(new).unwrap());
        let proof = t.consistency_proof(old, new).unwrap();
        prop_assert!(proof.len() <= 65);
        prop_assert!(verify_consistency(old, new, &r1, &r2, &proof).is_ok());
        if old == new || old == 0 {
            prop_assert!(proof.is_empty());
            if old == 0 && new > 0 {
                prop_assert!(verify_consistency(0, new, &r2, &r2, &proof).is_err());
            }
            return Ok(());
        }

        let bad = flip(&proof, which, bit);
        prop_assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
        prop_assert!(verify_consistency(old, new, &r1, &r2, &proof[..proof.len() - 1]).is_err());
        let mut longer = proof.clone();
        longer.push(r2);
        prop_assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
        prop_assert!(verify_consistency(new, old, &r2, &r1, &proof).is_err());

        let mut bad_r1 = r1;
        bad_r1[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_consistency(old, new, &bad_r1, &r2, &proof).is_err());
        let mut bad_r2 = r2;
        bad_r2[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_consistency(old, new, &r1, &bad_r2, &proof).is_err());

        // Wrong sizes, checked against the true roots of those sizes.
        let wrong = 1 + other_seed % N;
        if wrong != old && wrong <= new {
            let wr = t.root(wrong).unwrap();
            prop_assert!(verify_consistency(wrong, new, &wr, &r2, &proof).is_err());
        }
        if wrong != new && wrong >= old {
            let wr = t.root(wrong).unwrap();
            prop_assert!(verify_consistency(old, wrong, &r1, &wr, &proof).is_err());
        }
    }

    /// Roots are prefix-stable: appending never changes the root of an older size,
    /// and an unrelated tree (different leaf) is never consistent with it.
    #[test]
    fn forks_are_never_consistent(old in 1..200u64, extra in 1..200u64, fork_at in any::<u64>()) {
        let t = tree();
        let fork_at = fork_at % old;
        let mut f = MerkleTree::new();
        for i in 0..old + extra {
            let mut l = t.leaf_hash(i).unwrap();
            if i == fork_at {
                l = node_hash(&l, &empty_root());
            }
            f.append_leaf_hash(l);
        }
        let new = old + extra;
        let proof = f.consistency_proof(old, new).unwrap();
        let honest_old = t.root(old).unwrap();
        prop_assert!(verify_consistency(old, new, &honest_old, &f.root(new).unwrap(), &proof).is_err());
    }
}

#[test]
fn all_pairs_small_sizes_exhaustive() {
    let t = tree();
    for new in 0..=70u64 {
        let r2 = t.root(new).unwrap();
        for old in 0..=new {
            let p = t.consistency_proof(old, new).unwrap();
            verify_consistency(old, new, &t.root(old).unwrap(), &r2, &p).unwrap();
        }
        for i in 0..new {
            let p = t.inclusion_proof(i, new).unwrap();
            verify_inclusion(&t.leaf_hash(i).unwrap(), i, new, &p, &r2).unwrap();
        }
    }
}
