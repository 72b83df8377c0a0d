//! Encryption's cost (issue 3 §7): durable appends of ~300-byte person events with
//! 64 concurrent appenders, sealed with AES-256-SIV under a person's DEK at append
//! time versus the same events in plaintext; and replay (read + decrypt) versus
//! read alone. Not a test: prints numbers for BENCHMARKS.md.
//!
//! cargo bench -p mebyo-platform --bench sealed -- [--seconds S]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mebyo_crypto::IdentityRecord;
use mebyo_domain::Actor;
use mebyo_platform::{Options, Platform, Settings, codec};
use mebyo_store::{EventStore, ExpectedRevision, NewEvent};

const PAYLOAD_BYTES: usize = 180;

async fn run(p: Arc<Platform>, sealed: bool, key_ref: String, seconds: f64) -> (f64, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64u32 {
        let (p, key_ref) = (p.clone(), key_ref.clone());
        tasks.push(tokio::spawn(async move {
            let stream = if sealed {
                format!("records-bench{t}")
            } else {
                format!("bench-plain-{t}")
            };
            let mut n = 0u64;
            while Instant::now() < deadline {
                let payload = vec![b'x'; PAYLOAD_BYTES];
                let id = [t as u8; 16];
                let ev = if sealed {
                    NewEvent::to_seal(
                        "record.added",
                        mebyo_store::Actor::system(),
                        id,
                        key_ref.clone(),
                        payload,
                    )
                } else {
                    NewEvent::plain("bench.plain", mebyo_store::Actor::system(), id, payload)
                };
                p.store()
                    .append(&stream, ExpectedRevision::Any, vec![ev])
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .map_or(5.0, |i| args[i + 1].parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("mebyo-bench-sealed-")
        .tempdir_in(".")
        .unwrap();
    rt.block_on(async {
        Platform::init(tmp.path(), Settings::default(), Options { seed: Some(1), ..Default::default() }).await.unwrap();
        let p = Arc::new(Platform::open(tmp.path(), Options { seed: Some(2), ..Default::default() }).await.unwrap());
        let person = p
            .register_person(&Actor::Applicant, &IdentityRecord {
                name: "bench".into(),
                address: "bench".into(),
                birth_date: "1980-01-01".into(),
                phone: None,
                email: None,
            })
            .await
            .unwrap()
            .unwrap();
        let key_ref = p.keys().key_ref_for_stream(&format!("records-{person}")).unwrap();
        let (plain_rate, plain_n) = run(p.clone(), false, key_ref.clone(), seconds).await;
        let (sealed_rate, sealed_n) = run(p.clone(), true, key_ref, seconds).await;
        println!("append, 64 appenders, {PAYLOAD_BYTES}-byte payloads: plaintext {plain_rate:.0} events/s ({plain_n}), sealed {sealed_rate:.0} events/s ({sealed_n}); encryption costs {:.1}% of throughput", 100.0 * (1.0 - sealed_rate / plain_rate));

        // Replay: read everything; then read and decrypt everything.
        let head = p.head().count;
        let t0 = Instant::now();
        let mut from = 0;
        while from < head {
            from += p.store().read_all(from, 4096).await.unwrap().len() as u64;
        }
        let read_rate = head as f64 / t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let mut from = 0;
        let mut opened = 0u64;
        while from < head {
            let page = p.store().read_all(from, 4096).await.unwrap();
            for env in &page {
                if codec::plaintext(env, p.keys()).unwrap().is_some() {
                    opened += 1;
                }
            }
            from += page.len() as u64;
        }
        let replay_rate = head as f64 / t0.elapsed().as_secs_f64();
        println!("replay of {head} events: read {read_rate:.0} events/s; read + decrypt {replay_rate:.0} events/s ({opened} payloads opened)");
    });
}
