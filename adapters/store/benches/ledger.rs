//! Ledger benchmarks (issue 2 §5). Not a test: it measures and prints, and the
//! numbers go to BENCHMARKS.md by hand with the machine, command and date.
//!
//! cargo bench -p mebyo-store --bench ledger -- [--seconds S] [--big N]
//!
//! - durable append throughput and p50/p99 latency with 1, 16 and 64 concurrent
//!   appenders, one ~300-byte event per append;
//! - read-all and verify throughput (verify on one core);
//! - resident memory while appending (must stay flat);
//! - with --big N: open time and peak memory of a ledger of N events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mebyo_store::verify::{self, Outcome};
use mebyo_store::{
    Actor, EmbeddedStore, EventStore, ExpectedRevision, NewEvent, OpenOptions, PayloadKind,
};

const PAYLOAD_BYTES: usize = 64;

fn event(i: u64) -> NewEvent {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&i.to_le_bytes());
    NewEvent {
        event_type: "health.recorded".into(),
        schema_version: 1,
        actor: Actor::new("individual", "p-0a1b2c3d"),
        event_id: id,
        correlation_id: id,
        causation_id: id,
        payload_kind: PayloadKind::AesSiv,
        key_ref: "dek:h:p-0a1b2c3d:1".into(),
        payload: vec![(i % 251) as u8; PAYLOAD_BYTES],
        seal: false,
    }
}

fn rss_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fresh(root: &std::path::Path, name: &str) -> EmbeddedStore {
    let dir = root.join(name);
    EmbeddedStore::create(&dir, [9; 16], 0).unwrap();
    EmbeddedStore::open(&dir, OpenOptions::default())
        .unwrap()
        .store
}

async fn appenders(store: Arc<EmbeddedStore>, n: usize, seconds: f64) -> (u64, f64, Vec<u32>) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("person-{t:04}");
            let mut lat = Vec::with_capacity(1 << 20);
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                store
                    .append(&stream, ExpectedRevision::Any, vec![event(i)])
                    .await
                    .unwrap();
                lat.push(t0.elapsed().as_micros() as u32);
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all.len() as u64, secs, all)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--open-only" {
        return open_only(&args[2]);
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let seconds: f64 = arg("--seconds").map_or(5.0, |s| s.parse().unwrap());
    let big: u64 = arg("--big").map_or(0, |s| s.parse().unwrap());
    let configs: Vec<usize> = arg("--appenders").map_or(vec![1, 16, 64], |s| {
        s.split(',').map(|x| x.parse().unwrap()).collect()
    });
    let append_only = args.iter().any(|a| a == "--append-only");
    let root = tempfile::Builder::new()
        .prefix("mebyo-bench-")
        .tempdir_in(".")
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let sample = {
        let mut e = mebyo_store::Envelope {
            position: 0,
            stream_id: "person-0000".into(),
            stream_revision: 0,
            event_type: "health.recorded".into(),
            schema_version: 1,
            recorded_at_us: 0,
            actor: Actor::new("individual", "p-0a1b2c3d"),
            event_id: [0; 16],
            correlation_id: [0; 16],
            causation_id: [0; 16],
            payload_kind: PayloadKind::AesSiv,
            key_ref: "dek:h:p-0a1b2c3d:1".into(),
            payload: vec![0; PAYLOAD_BYTES],
            prev_hash: [0; 32],
            hash: [0; 32],
        };
        e.hash = e.compute_hash();
        e.canonical_len() + 32 + 24
    };
    println!("event frame: {sample} bytes on disk ({PAYLOAD_BYTES}-byte payload)");

    let mut last = None;
    for &n in &configs {
        let store = Arc::new(fresh(root.path(), &format!("append-{n}")));
        let (count, secs, lat) = rt.block_on(appenders(store.clone(), n, seconds));
        println!(
            "append, {n:>2} appenders: {:>9.0} events/s durable; latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({count} events in {secs:.1} s)",
            count as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
        );
        last = Some(store);
    }

    if append_only {
        return;
    }
    // Read-all over the 64-appender ledger.
    let store = last.unwrap();
    let count = store.head().count;
    let t0 = Instant::now();
    let mut from = 0;
    rt.block_on(async {
        while from < count {
            let page = store.read_all(from, 4096).await.unwrap();
            from += page.len() as u64;
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "read-all: {:.0} events/s ({count} events in {secs:.2} s)",
        count as f64 / secs
    );

    // Verify, single-threaded, from a cold start of the verifier (file in page cache).
    let path = store.path().to_path_buf();
    drop(store);
    let t0 = Instant::now();
    let out = verify::verify_file(
        &path,
        verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    )
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    match out {
        Outcome::Intact(i) => println!(
            "verify: {:.0} events/s on one core ({} events in {secs:.2} s)",
            i.count as f64 / secs,
            i.count
        ),
        Outcome::Broken(b) => panic!("bench ledger broken: {b}"),
    }

    // Memory under sustained appends: RSS sampled as events accumulate.
    let store = Arc::new(fresh(root.path(), "memory"));
    let rss0 = rss_kib("VmRSS:");
    let mut samples = Vec::new();
    rt.block_on(async {
        for round in 0..5 {
            let mut tasks = Vec::new();
            for t in 0..64u64 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for k in 0..200u64 {
                        let evs = (0..64).map(|j| event(t * 1_000_000 + k * 64 + j)).collect();
                        store
                            .append(&format!("person-{t:04}"), ExpectedRevision::Any, evs)
                            .await
                            .unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            samples.push((round, store.head().count, rss_kib("VmRSS:")));
        }
    });
    println!("memory under sustained appends (RSS before: {rss0} KiB):");
    for (_, count, rss) in &samples {
        println!("  after {count:>9} events: RSS {rss} KiB");
    }
    drop(store);

    if big > 0 {
        let dir = root.path().join("big");
        EmbeddedStore::create(&dir, [5; 16], 0).unwrap();
        {
            let store = Arc::new(
                EmbeddedStore::open(&dir, OpenOptions::default())
                    .unwrap()
                    .store,
            );
            let t0 = Instant::now();
            rt.block_on(async {
                let per = big / 16;
                let mut tasks = Vec::new();
                for t in 0..16u64 {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut i = 0;
                        while i < per {
                            let k = 1024.min(per - i);
                            // 65,536 streams, like a population of people.
                            let stream = format!("person-{:05}", (t * 7919 + i / 1024) % 65_536);
                            let evs = (0..k).map(|j| event(t << 40 | (i + j))).collect();
                            store
                                .append(&stream, ExpectedRevision::Any, evs)
                                .await
                                .unwrap();
                            i += k;
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            });
            println!(
                "built a ledger of {} events in {:.1} s (batches of 1024)",
                store.head().count,
                t0.elapsed().as_secs_f64()
            );
        }
        // Measure open in a child process so peak RSS is the open's alone.
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--open-only", dir.to_str().unwrap()])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn open_only(dir: &str) {
    let t0 = Instant::now();
    let o = EmbeddedStore::open(std::path::Path::new(dir), OpenOptions::default()).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "open of {} events: {secs:.2} s, peak RSS {} MiB",
        o.store.head().count,
        rss_kib("VmHWM:") / 1024
    );
}
