//! Proof generation timings at 1M and 10M leaves.
//!
//! Run: `cargo run --release -p mebyo-tlog --example bench_tlog [sizes...]`
//! (default sizes: 1000000 10000000). Each size builds a fresh tree, so peak
//! memory is one tree (~36 bytes/leaf).

use mebyo_tlog::tree::MerkleTree;
use mebyo_tlog::verify::{verify_consistency, verify_inclusion};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PROOFS: u64 = 20_000;

/// Tiny deterministic PRNG (splitmix64) so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

fn per_op(d: Duration, n: u64) -> String {
    format!("{:.2} µs/op", d.as_secs_f64() * 1e6 / n as f64)
}

fn bench(n: u64) {
    println!("== {n} leaves ==");
    let t0 = Instant::now();
    let mut tree = MerkleTree::with_capacity(n as usize);
    let mut event = [0u8; 32];
    for i in 0..n {
        // Stand-in for blake3 event hashes: any 32 bytes will do for timing.
        event[..8].copy_from_slice(&i.to_le_bytes());
        tree.append_event(&event);
    }
    let build = t0.elapsed();
    println!(
        "build: {:.2} s ({}), memory ≈ {:.0} MiB ({:.1} B/leaf)",
        build.as_secs_f64(),
        per_op(build, n),
        tree.memory_bytes() as f64 / (1 << 20) as f64,
        tree.memory_bytes() as f64 / n as f64
    );

    let mut rng = Rng(n);
    let t = Instant::now();
    for _ in 0..PROOFS {
        black_box(tree.root(1 + rng.next() % n).unwrap());
    }
    println!(
        "root(random size):               {}",
        per_op(t.elapsed(), PROOFS)
    );

    let root = tree.current_root();
    let t = Instant::now();
    let mut total_len = 0;
    for _ in 0..PROOFS {
        let p = tree.inclusion_proof(rng.next() % n, n).unwrap();
        total_len += p.len();
        black_box(p);
    }
    println!(
        "inclusion_proof(i, full size):   {} (avg {} hashes)",
        per_op(t.elapsed(), PROOFS),
        total_len as u64 / PROOFS
    );

    let t = Instant::now();
    for _ in 0..PROOFS {
        let size = 1 + rng.next() % n;
        black_box(tree.inclusion_proof(rng.next() % size, size).unwrap());
    }
    println!(
        "inclusion_proof(i, random size): {}",
        per_op(t.elapsed(), PROOFS)
    );

    let t = Instant::now();
    for _ in 0..PROOFS {
        let old = 1 + rng.next() % n;
        black_box(tree.consistency_proof(old, n).unwrap());
    }
    println!(
        "consistency_proof(random, full): {}",
        per_op(t.elapsed(), PROOFS)
    );

    let t = Instant::now();
    for _ in 0..PROOFS {
        let a = 1 + rng.next() % n;
        let b = 1 + rng.next() % n;
        black_box(tree.consistency_proof(a.min(b), a.max(b)).unwrap());
    }
    println!(
        "consistency_proof(random pair):  {}",
        per_op(t.elapsed(), PROOFS)
    );

    // Verification cost, and a sanity check that the benchmarked proofs are valid.
    let idx: Vec<u64> = (0..PROOFS).map(|_| rng.next() % n).collect();
    let proofs: Vec<_> = idx
        .iter()
        .map(|&i| tree.inclusion_proof(i, n).unwrap())
        .collect();
    let t = Instant::now();
    for (&i, p) in idx.iter().zip(&proofs) {
        verify_inclusion(&tree.leaf_hash(i).unwrap(), i, n, p, &root).unwrap();
    }
    println!(
        "verify_inclusion:                {}",
        per_op(t.elapsed(), PROOFS)
    );
    let old = n / 3 + 1;
    let p = tree.consistency_proof(old, n).unwrap();
    let old_root = tree.root(old).unwrap();
    let t = Instant::now();
    for _ in 0..PROOFS {
        verify_consistency(old, n, &old_root, &root, &p).unwrap();
    }
    println!(
        "verify_consistency:              {}",
        per_op(t.elapsed(), PROOFS)
    );
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("sizes are integers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        sizes
    };
    for n in sizes {
        bench(n);
    }
}
