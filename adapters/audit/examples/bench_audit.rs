//! Full offline verification (chain + tree + checkpoints) and proof generation
//! at 1M and 10M events.
//!
//! Run: `cargo run --release -p mebyo-audit --example bench_audit [sizes...]`
//! (default 1000000 10000000; `MEBYO_BENCH_DIR` picks where the ledgers go,
//! default the system temp dir; 10M events take ~3 GB and are deleted after).
//!
//! The ledger is built the fast way: `EmbeddedStore` appends of 1024 events
//! (64-byte payloads) from 16 tasks, while a `Checkpointing` follows
//! `subscribe_all` and signs every size/8 events, exactly as a server would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mebyo_audit::scan::ScanOptions;
use mebyo_audit::{Checkpointing, ExternalCheckpoint, VerifyOptions, proofs};
use mebyo_store::{Actor, EmbeddedStore, EventStore, ExpectedRevision, NewEvent, OpenOptions};
use mebyo_tlog::{NoteSigner, SigningPolicy};

const TASKS: u64 = 16;
const BATCH: u64 = 1024;

fn rate(n: u64, d: Duration) -> String {
    format!("{:.2} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

async fn build(dir: &std::path::Path, n: u64, signer: NoteSigner) -> (u64, Vec<String>) {
    EmbeddedStore::create(dir, [9; 16], 0).unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        EmbeddedStore::open(dir, OpenOptions::default())
            .unwrap()
            .store,
    );
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let policy = SigningPolicy {
                every_leaves: (n / 8).max(1),
                every_secs: 0,
            };
            let mut c = Checkpointing::new(store.clone(), signer, policy);
            let mut notes = Vec::new();
            let mut events = store.subscribe_all(0);
            // Follow until the appenders are done and every event (our own
            // checkpoints included) has come past.
            while !(done.load(Ordering::SeqCst) && c.tree().size() == store.head().count) {
                let Some(ev) = events.next().await else { break };
                c.observe(&ev.unwrap()).unwrap();
                if let Some(s) = c.tick(0).await.unwrap() {
                    notes.push(s.signed.note);
                }
            }
            // The head, once everything is in.
            if let mebyo_audit::checkpointing::Now::Signed(s) = c.checkpoint_now(1).await.unwrap() {
                notes.push(s.signed.note);
            }
            notes
        })
    };
    let per_task = n / TASKS / BATCH;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("bench-{t}");
            for b in 0..per_task {
                let evs = (0..BATCH)
                    .map(|i| {
                        let mut id = [0u8; 16];
                        id[..8].copy_from_slice(&(b * BATCH + i).to_le_bytes());
                        id[8..].copy_from_slice(&t.to_le_bytes());
                        NewEvent::plain("bench.event", Actor::system(), id, vec![7u8; 64])
                    })
                    .collect();
                store
                    .append(&stream, ExpectedRevision::Any, evs)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let appended = store.head().count;
    let build_time = t0.elapsed();
    let notes = follower.await.unwrap();
    println!(
        "built {appended} events in {:.1} s ({}), {} checkpoints signed on the way",
        build_time.as_secs_f64(),
        rate(appended, build_time),
        notes.len()
    );
    (store.head().count, notes)
}

const SEED: [u8; 32] = [5; 32];
fn origin() -> String {
    mebyo_audit::checkpoint_origin(&[9; 16])
}

fn bench(n: u64) {
    println!("== {n} events ==");
    let base = std::env::var_os("MEBYO_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base).unwrap();
    let dir = tmp.path().join("ledger");
    let signer = NoteSigner::from_seed(&origin(), &SEED).unwrap();
    let vkey = signer.verifier();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (count, notes) = rt.block_on(build(&dir, n, signer));
    drop(rt);
    let path = EmbeddedStore::log_path(&dir);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("log file: {:.2} GB", bytes as f64 / 1e9);

    // Chain alone (the store's verifier), for comparison.
    let t = Instant::now();
    let out = mebyo_store::verify::verify_file(
        &path,
        mebyo_store::verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    )
    .unwrap();
    let chain = t.elapsed();
    assert!(matches!(out, mebyo_store::verify::Outcome::Intact(_)));
    println!(
        "chain only:          {:.2} s ({})",
        chain.as_secs_f64(),
        rate(count, chain)
    );

    // Full verify: chain || tree + every checkpoint + an external checkpoint.
    let external = vec![ExternalCheckpoint {
        label: "first".into(),
        note: notes[0].clone(),
    }];
    for run in 1..=2 {
        let t = Instant::now();
        let r = mebyo_audit::verify_ledger(
            &path,
            VerifyOptions {
                vkey: Some(vkey.clone()),
                external: external.clone(),
                require_signed_head: true,
                progress: &mut |_, _| {},
                person_related: None,
            },
        )
        .unwrap();
        let full = t.elapsed();
        assert!(r.problem.is_none(), "{:?}", r.problem);
        assert_eq!(r.events, count);
        println!(
            "full verify (run {run}): {:.2} s ({}), {} checkpoints, tree {} MB",
            full.as_secs_f64(),
            rate(count, full),
            r.checkpoints.len(),
            r.tree.memory_bytes() / 1_000_000
        );
    }

    // Proofs: what `prove-inclusion` / `prove-consistency` do (scan, then prove).
    let position = count / 3;
    let t = Instant::now();
    let scan = mebyo_audit::scan_tree(
        &path,
        ScanOptions {
            vkey: Some(&vkey),
            capture: Some(position),
            chain: false,
            person_related: None,
        },
    )
    .unwrap();
    let scan_time = t.elapsed();
    let t = Instant::now();
    let inc = proofs::inclusion(&scan, position, None).unwrap();
    let inc_time = t.elapsed();
    let first = scan.checkpoints.first().unwrap().signed.checkpoint.size;
    let last = scan.checkpoints.last().unwrap().signed.checkpoint.size;
    let t = Instant::now();
    let con = proofs::consistency(&scan, first, last).unwrap();
    let con_time = t.elapsed();
    // Many proofs from one built tree (a server holding the tree serves these).
    let t = Instant::now();
    let k = 10_000u64;
    for i in 0..k {
        let p = (i * 7_919) % last;
        std::hint::black_box(scan.tree.inclusion_proof(p, last).unwrap());
    }
    let many = t.elapsed();
    println!(
        "proofs: tree scan {:.2} s ({}); inclusion bundle {:.1} µs ({} hashes); consistency bundle {:.1} µs ({} hashes); {:.2} µs per inclusion proof over {k}",
        scan_time.as_secs_f64(),
        rate(count, scan_time),
        inc_time.as_secs_f64() * 1e6,
        inc.proof.len(),
        con_time.as_secs_f64() * 1e6,
        con.proof.len(),
        many.as_secs_f64() * 1e6 / k as f64,
    );
    mebyo_tlog::verify_bundle(&mebyo_tlog::ProofBundle::Inclusion(inc), &vkey).unwrap();
    mebyo_tlog::verify_bundle(&mebyo_tlog::ProofBundle::Consistency(con), &vkey).unwrap();
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
        // Whole batches from every task.
        let unit = TASKS * BATCH;
        bench(n.div_ceil(unit) * unit);
    }
}
