//! Consent-gated reads in process (issue 4 §9): 64 concurrent readers, each read
//! = decide + write the access event durably + return the records. Not a test: it
//! prints throughput and latency for BENCHMARKS.md.
//!
//! cargo bench -p mebyo-platform --bench reads -- [--seconds S] [--readers N] [--people P]

// The allocator the `mebyo` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_domain::{Channel, Duration, Timestamp};
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .map_or(default, |i| args[i + 1].parse().unwrap())
    };
    let seconds = arg("--seconds", 5.0);
    let readers = arg("--readers", 64.0) as usize;
    let people = arg("--people", 200.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("mebyo-bench-reads-")
        .tempdir_in(".")
        .unwrap();
    rt.block_on(async {
        Platform::init(tmp.path(), Settings::default(), Options { seed: Some(1), ..Default::default() }).await.unwrap();
        let p = Arc::new(Platform::open(tmp.path(), Options { seed: Some(2), ..Default::default() }).await.unwrap());
        let org = world::bootstrap_org(&p).await.unwrap();
        let clinic = world::onboard_provider(&p, &org, "clinic-bench", ConnectionClass::ClosedIpVpn).await.unwrap();
        let mut persons = Vec::new();
        for n in 0..people {
            let me = world::enroll_individual(&p, &org, &IdentityRecord {
                name: format!("bench {n}"),
                address: "横浜市".into(),
                birth_date: "1980-01-01".into(),
                phone: None,
                email: None,
            })
            .await
            .unwrap();
            let now = p.now();
            for d in 0..5 {
                world::record_blood_pressure(&p, &me, 120 + d, 80, Timestamp(now.0 - Duration::days(d as i64 + 1).0)).await.unwrap();
            }
            world::grant_consent(&p, &me, &clinic.id, &[Category::Vitals], Purpose::Care, 90).await.unwrap();
            persons.push(me.id);
        }
        let persons = Arc::new(persons);
        let now = p.now();
        let deadline = Instant::now() + StdDuration::from_secs_f64(seconds);
        let started = Instant::now();
        let before = p.head().count;
        let mut tasks = Vec::new();
        for r in 0..readers {
            let (p, persons, actor) = (p.clone(), persons.clone(), clinic.actor());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(1 << 18);
                let mut i = r;
                while Instant::now() < deadline {
                    let req = AccessRequest {
                        actor: actor.clone(),
                        person: persons[i % persons.len()].clone(),
                        categories: [Category::Vitals].into_iter().collect(),
                        purpose: Purpose::Care,
                        channel: Channel::ProviderGateway,
                        period: Period { from: Timestamp(now.0 - Duration::days(30).0), to: now },
                    };
                    let t0 = Instant::now();
                    let got = p.read_records_shared(&req).await.unwrap().unwrap();
                    lat.push(t0.elapsed().as_micros() as u32);
                    assert_eq!(got.len(), 5);
                    i += readers;
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort_unstable();
        let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        println!(
            "consent-gated reads, {readers} readers, {people} people: {:.0} reads/s; latency p50 {:.3} ms, p99 {:.3} ms ({} reads, {} access events durable)",
            lat.len() as f64 / secs,
            pct(0.5),
            pct(0.99),
            lat.len(),
            p.head().count - before
        );
    });
}
