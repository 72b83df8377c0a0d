//! The fuzz corpora in the ordinary suite: every seed and corpus file through its
//! target, then deterministic random mutations of them (seed printed; replay
//! with `MEBYO_TEST_SEED`). A panic names the target and writes the input to
//! `target/fuzz-failures/` so that `scripts/fuzz --replay FILE` reproduces it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand::{Rng, RngCore, SeedableRng};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed inputs of a target: `seeds/<target>/*` and `corpus/<target>/*`.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["seeds", "corpus"] {
        let Ok(rd) = std::fs::read_dir(root().join(dir).join(target)) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Runs one input; on a panic, saves it and fails with where it is.
fn run(target: &str, f: fn(&[u8]), what: &str, data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
        let dir = root().join("../target/fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{target}-{}", blake3_hex(data)));
        std::fs::write(&file, data).unwrap();
        panic!(
            "fuzz target {target} panicked on {what}; input saved as {} \
             (replay: scripts/fuzz --replay {target} {})",
            file.display(),
            file.display()
        );
    }
}

fn blake3_hex(data: &[u8]) -> String {
    // A short, stable name for a failing input (no extra dependency).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

#[test]
fn every_target_has_seeds() {
    for (target, _) in mebyo_fuzz::TARGETS {
        assert!(
            !inputs(target).is_empty(),
            "fuzz/seeds/{target}/ is empty: run cargo run -p mebyo-fuzz --bin fuzz-seeds"
        );
        assert!(
            root()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz_targets/{target}.rs missing"
        );
    }
}

/// The committed seeds are exactly what the real APIs make today: they are real
/// inputs, and a format change that makes them stale shows here. With
/// `MEBYO_WRITE_SEEDS=1` the test writes them instead (what `scripts/fuzz
/// --seeds` does through the `fuzz-seeds` binary).
#[test]
fn seeds_are_current() {
    if std::env::var_os("MEBYO_WRITE_SEEDS").is_some_and(|v| v == "1") {
        mebyo_fuzz::seeds::write_all(&root().join("seeds")).unwrap();
    }
    for (target, name, bytes) in mebyo_fuzz::seeds::all() {
        let p = root().join("seeds").join(target).join(&name);
        let found = std::fs::read(&p).unwrap_or_default();
        assert!(
            found == bytes,
            "{} differs from what the APIs make now: run \
             `cargo run -p mebyo-fuzz --bin fuzz-seeds` and commit fuzz/seeds",
            p.display()
        );
    }
}

#[test]
fn corpora_replay_without_panics() {
    for (target, f) in mebyo_fuzz::TARGETS {
        for (path, data) in inputs(target) {
            run(target, *f, &path.display().to_string(), &data);
        }
    }
}

/// One random edit of the kinds a mutating fuzzer makes.
fn mutate(rng: &mut impl Rng, data: &mut Vec<u8>, others: &[(PathBuf, Vec<u8>)]) {
    const INTERESTING: &[&[u8]] = &[
        b"-",
        b"0",
        b"\xff",
        b"\x00",
        b"\r\n",
        b",",
        b"\"",
        b"-0101",
        b"99999999",
        b"{}",
        b"[]",
        b"null",
        b"1e999",
        b"\xef\xbf\xbd",
    ];
    let at = |rng: &mut dyn RngCore, len: usize| (rng.next_u64() as usize) % (len + 1);
    match rng.random_range(0..6) {
        0 if !data.is_empty() => {
            let i = at(rng, data.len() - 1);
            data[i] ^= 1 << rng.random_range(0..8);
        }
        1 => {
            let i = at(rng, data.len());
            let s = INTERESTING[rng.random_range(0..INTERESTING.len())];
            data.splice(i..i, s.iter().copied());
        }
        2 if !data.is_empty() => {
            let i = at(rng, data.len() - 1);
            let n = rng.random_range(1..=16).min(data.len() - i);
            data.drain(i..i + n);
        }
        3 => {
            let n = at(rng, data.len());
            data.truncate(n);
        }
        4 if !others.is_empty() => {
            let (_, o) = &others[rng.random_range(0..others.len())];
            let i = at(rng, data.len());
            let j = at(rng, o.len());
            data.truncate(i);
            data.extend_from_slice(&o[j..]);
        }
        _ if !data.is_empty() => {
            let i = at(rng, data.len() - 1);
            data[i] = rng.random();
        }
        _ => data.push(rng.random()),
    }
}

#[test]
fn mutations_of_the_corpora_do_not_panic() {
    let seed = match std::env::var("MEBYO_TEST_SEED") {
        Ok(s) => s.parse().expect("MEBYO_TEST_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("mutations: seed {seed} (replay with MEBYO_TEST_SEED={seed})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (target, f) in mebyo_fuzz::TARGETS {
        let ins = inputs(target);
        // Targets that write files get fewer cases: each costs a directory.
        let cases = if target.starts_with("store_log") || target.starts_with("backup") {
            300
        } else {
            3000
        };
        for case in 0..cases {
            let (path, base) = &ins[case % ins.len()];
            let mut data = base.clone();
            for _ in 0..rng.random_range(1..=4) {
                mutate(&mut rng, &mut data, &ins);
            }
            let what = format!("mutation {case} of {} (seed {seed})", short(path));
            run(target, *f, &what, &data);
        }
    }
}

fn short(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}
