//! Crash test (issue 2 §4): a child process appends under concurrency and is
//! killed with SIGKILL at random moments. After every kill, the ledger reopens to
//! a prefix of what was written that holds every acknowledged event, and the chain
//! verifies.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use mebyo_store::verify::{self, Outcome};
use mebyo_store::{EmbeddedStore, EventStore, OpenOptions};
use mebyo_tests::{mebyo, mebyo_bin, path_str, seed};
use rand::{Rng, SeedableRng};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_keeps_every_acknowledged_event() {
    let seed = seed("crash");
    let iterations: u32 = std::env::var("MEBYO_CRASH_ITERATIONS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(200);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(mebyo(&["init", "--data", path_str(&data)]).status.success());
    let ledger = data.join("ledger");

    // position -> hash of every acknowledged append's last event.
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut torn_repairs = 0u32;
    for i in 0..iterations {
        let mut child = Command::new(mebyo_bin())
            .args([
                "debug",
                "load",
                "--data",
                path_str(&data),
                "--appenders",
                "16",
            ])
            .args(["--seed", &(seed ^ i as u64).to_string()])
            .env("MEBYO_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Mostly kill during appends; sometimes during start-up and recovery.
        if rng.random_bool(0.9) {
            let mut first = String::new();
            out.read_line(&mut first).unwrap();
            if let Some(rest) = first.strip_prefix("open ") {
                let mut it = rest.split_whitespace();
                let count: u64 = it.next().unwrap().parse().unwrap();
                let torn: u64 = it.next().unwrap().parse().unwrap();
                torn_repairs += (torn > 0) as u32;
                let need = acked.keys().next_back().map_or(0, |p| p + 1);
                assert!(
                    count >= need,
                    "iteration {i}: reopened with {count} events, but {need} were acknowledged"
                );
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
        } else {
            std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        for line in rest.lines() {
            // A line without its newline was cut by the kill: not counted.
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 5 && f[0] == "ack" && f[4].len() == 64 {
                acked.insert(f[2].parse().unwrap(), f[4].to_string());
            }
        }
        // Verify needs no key and no write access: an auditor's view of the crash.
        let outcome = verify::verify_file(
            &EmbeddedStore::log_path(&ledger),
            verify::Options {
                progress: &mut |_, _| {},
                person_related: None,
            },
        )
        .unwrap();
        match outcome {
            Outcome::Intact(v) => {
                let need = acked.keys().next_back().map_or(0, |p| p + 1);
                assert!(
                    v.count >= need,
                    "iteration {i}: verify sees {} events, {need} acknowledged",
                    v.count
                );
            }
            Outcome::Broken(b) => {
                panic!("iteration {i} (seed {seed}): chain broken after SIGKILL: {b}")
            }
        }
    }

    // Finally reopen through the store and check every acknowledged event by hash.
    let opened = EmbeddedStore::open(&ledger, OpenOptions::default()).unwrap();
    let store = opened.store;
    for (pos, hash) in &acked {
        let e = store.read_all(*pos, 1).await.unwrap();
        assert_eq!(
            &hex::encode(e[0].hash),
            hash,
            "acknowledged event at {pos} changed (seed {seed})"
        );
    }
    eprintln!(
        "crash: {iterations} kills, {} acknowledged appends, {} events, {torn_repairs} torn tails repaired",
        acked.len(),
        store.head().count
    );
    assert!(
        acked.len() > iterations as usize,
        "the load made too little progress to test anything"
    );
}
