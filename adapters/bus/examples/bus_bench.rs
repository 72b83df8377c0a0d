//! Submission round trip through the bus: p50/p99 latency and throughput with 1
//! and 32 concurrent providers, each submission durable in the ledger (record and
//! idempotency outcome) before its reply.
//!
//! ```text
//! cargo run --release -p mebyo-bus --features testkit --example bus_bench -- \
//!     [--url nats://127.0.0.1:4222] [--per-provider 300] [--batch 1]
//! ```
//! Each request's body is JSON text before the clock starts, as a provider's
//! system holds its FHIR resources (their data exists before it is submitted,
//! and the clients share the machine's cores with the platform, which in a
//! deployment they would not); signing, sending and reading each answer are
//! timed. Uses its own subject prefix and an in-memory feed stream (deleted at
//! the end), so it can share a server with other users. Clients run in the same
//! process and sign every request; nothing is skipped on either side.

// The allocator the `mebyo` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mebyo_bus::BusConfig;
use mebyo_bus::testkit::identity;
use mebyo_domain::consent::Purpose;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_platform::world::{self, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_provider::{ProviderClient, blood_pressure, fhir_item};

const PEOPLE_PER_PROVIDER: usize = 16;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

struct Fixture {
    client: ProviderClient,
    people: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("--url", "nats://127.0.0.1:4222");
    let per_provider: usize = arg("--per-provider", "300").parse()?;
    let batch: usize = arg("--batch", "1").parse()?;
    // Requests each provider keeps in flight (a provider's system submitting
    // from several workers at once).
    let in_flight: usize = arg("--in-flight", "1").parse()?;
    let providers_max = 32;
    let tmp = tempfile::tempdir()?;
    let opts = || Options {
        seed: Some(42),
        ..Default::default()
    };
    Platform::init(tmp.path(), Settings::default(), opts()).await?;
    let platform = Arc::new(Platform::open(tmp.path(), opts()).await?);
    let org = world::bootstrap_org(&platform).await?;
    eprintln!("setting up {providers_max} providers x {PEOPLE_PER_PROVIDER} people...");
    let prefix = format!("bench{}.v1", std::process::id());
    let mut fixtures = Vec::new();
    let mut n = 0;
    let nats = async_nats_client(&url).await?;
    for i in 0..providers_max {
        let p = world::onboard_provider(
            &platform,
            &org,
            &format!("bench-{i}"),
            ConnectionClass::ClosedIpVpn,
        )
        .await?;
        let key = mebyo_provider::generate_key();
        mebyo_bus::register_provider_key(
            &platform,
            &Org::actor(&org.office),
            &p.credential,
            &key.verifying_key(),
        )
        .await?
        .map_err(|r| anyhow::anyhow!("{r}"))?;
        let mut people = Vec::new();
        for _ in 0..PEOPLE_PER_PROVIDER {
            n += 1;
            let who = world::enroll_individual(&platform, &org, &identity(n)).await?;
            world::grant_consent(
                &platform,
                &who,
                &p.id,
                &[Category::Vitals],
                Purpose::Care,
                30,
            )
            .await?;
            people.push(who.id.to_string());
        }
        let client =
            ProviderClient::with_client(nats.clone(), p.id.as_str(), p.credential.as_str(), key)
                .with_prefix(&prefix);
        fixtures.push(Arc::new(Fixture { client, people }));
    }
    let mut cfg = BusConfig::new(&url);
    cfg.prefix = prefix.clone();
    cfg.feed.stream = format!("BENCH_{}", std::process::id());
    cfg.feed.memory = true;
    cfg.max_in_flight = 512;
    let bus = mebyo_bus::serve(platform.clone(), cfg.clone()).await?;

    println!(
        "machine: {} cores; batch {batch} record(s) per request; {in_flight} request(s) in flight per provider",
        std::thread::available_parallelism()?.get()
    );
    for providers in [1, 32] {
        let run = run(
            &fixtures[..providers],
            per_provider,
            batch,
            in_flight,
            providers,
        )
        .await;
        println!(
            "{providers:>2} provider(s): {} requests ({} records) in {:.2} s: {:.0} submissions/s, {:.0} records/s; round trip p50 {:.2} ms, p99 {:.2} ms",
            run.requests,
            run.requests * batch,
            run.elapsed.as_secs_f64(),
            run.requests as f64 / run.elapsed.as_secs_f64(),
            (run.requests * batch) as f64 / run.elapsed.as_secs_f64(),
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
        );
    }
    bus.shutdown().await;
    let js = mebyo_bus::testkit::async_nats::jetstream::new(nats);
    let _ = js.delete_stream(&cfg.feed.stream).await;
    Ok(())
}

async fn async_nats_client(url: &str) -> anyhow::Result<mebyo_bus::testkit::async_nats::Client> {
    Ok(mebyo_bus::testkit::async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .connect(url)
        .await?)
}

struct Run {
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

async fn run(
    fixtures: &[Arc<Fixture>],
    per_provider: usize,
    batch: usize,
    in_flight: usize,
    tag: usize,
) -> Run {
    // The request bodies, made before the clock starts (see the module doc).
    let when = mebyo_bus::wire::rfc3339(mebyo_domain::Timestamp(
        (mebyo_provider::now_ms() as i64 - 3_600_000) * 1000,
    ));
    let work: Vec<_> = fixtures
        .iter()
        .flat_map(|f| (0..in_flight).map(move |w| (f.clone(), w)))
        .map(|(f, w)| {
            let requests: Vec<(usize, Vec<u8>)> = (w..per_provider)
                .step_by(in_flight)
                .map(|i| {
                    let items: Vec<_> = (0..batch)
                        .map(|b| {
                            let person = &f.people[(i * batch + b) % f.people.len()];
                            fhir_item(
                                person,
                                "vitals",
                                &when,
                                &format!("m-{tag}-{i}-{b}"),
                                blood_pressure(person, 120, 80, &when),
                            )
                        })
                        .collect();
                    let body = serde_json::json!({ "items": items });
                    (i, serde_json::to_vec(&body).expect("json"))
                })
                .collect();
            (f, requests)
        })
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(f, requests)| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(requests.len());
                for (i, body) in requests {
                    let t = Instant::now();
                    let a = f
                        .client
                        .submit_json(&body, &format!("run{tag}-{i}"), 3)
                        .await
                        .expect("answer");
                    assert!(a.is_ok(), "{:?}", a.body);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Run {
        requests: lat.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
