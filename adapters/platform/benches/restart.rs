//! Restart time with and without the projection snapshot (issue 4 §9: "a restart
//! is serving again in ≤ 10 s"). Not a test: it prints timings for BENCHMARKS.md.
//!
//! Builds (once, kept in `--dir`) a real platform whose ledger holds `--events`
//! events: people enrolled with a record and a consent, then consent-gated reads,
//! each of which appends a sealed access event. Then, timed:
//! 1. open + replay every event into the read models (no snapshot);
//! 2. save the sealed snapshot;
//! 3. open + restore from the snapshot + follow the tail: "serving again".
//!
//! cargo bench -p mebyo-platform --bench restart -- [--events N] [--people P] [--dir DIR]
//!     [--restart-only]   (time only the restart of an existing DIR with its snapshot)

use std::sync::Arc;
use std::time::Instant;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_domain::{Channel, Duration, Timestamp};
use mebyo_platform::views::SnapshotPolicy;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let events: u64 = arg("--events").map_or(1_000_000, |v| v.parse().unwrap());
    let people: usize = arg("--people").map_or(2_000, |v| v.parse().unwrap());
    let dir =
        std::path::PathBuf::from(arg("--dir").unwrap_or_else(|| "mebyo-bench-restart".into()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let manual = || SnapshotPolicy {
        every_events: u64::MAX,
        every_secs: u64::MAX,
        check_secs: 3600,
    };
    rt.block_on(async {
        if !dir.join("ledger").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let t = Instant::now();
            Platform::init(&dir, Settings::default(), Options { seed: Some(1), ..Default::default() }).await.unwrap();
            let p = Arc::new(Platform::open(&dir, Options { seed: Some(2), ..Default::default() }).await.unwrap());
            let org = world::bootstrap_org(&p).await.unwrap();
            let clinic = world::onboard_provider(&p, &org, "clinic-bench", ConnectionClass::ClosedIpVpn).await.unwrap();
            // Enrolment in parallel: each person is independent.
            let org = Arc::new(org);
            let mut tasks = Vec::new();
            let per = people.div_ceil(32);
            for w in 0..32 {
                let (p, org, clinic) = (p.clone(), org.clone(), clinic.id.clone());
                tasks.push(tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for n in w * per..((w + 1) * per).min(people) {
                        let me = world::enroll_individual(&p, &org, &IdentityRecord {
                            name: format!("bench {n}"),
                            address: "横浜市".into(),
                            birth_date: "1980-01-01".into(),
                            phone: None,
                            email: None,
                        }).await.unwrap();
                        let now = p.now();
                        world::record_blood_pressure(&p, &me, 120, 80, Timestamp(now.0 - Duration::days(1).0)).await.unwrap();
                        world::grant_consent(&p, &me, &clinic, &[Category::Vitals], Purpose::Care, 90).await.unwrap();
                        ids.push(me.id);
                    }
                    ids
                }));
            }
            let mut persons = Vec::new();
            for t in tasks {
                persons.extend(t.await.unwrap());
            }
            let persons = Arc::new(persons);
            eprintln!("enrolled {} people, {} events, {:.1} s", persons.len(), p.head().count, t.elapsed().as_secs_f64());
            let mut tasks = Vec::new();
            for r in 0..64 {
                let (p, persons, actor) = (p.clone(), persons.clone(), clinic.actor());
                tasks.push(tokio::spawn(async move {
                    let mut i = r;
                    while p.head().count < events {
                        let now = p.now();
                        let req = AccessRequest {
                            actor: actor.clone(),
                            person: persons[i % persons.len()].clone(),
                            categories: [Category::Vitals].into_iter().collect(),
                            purpose: Purpose::Care,
                            channel: Channel::ProviderGateway,
                            period: Period { from: Timestamp(now.0 - Duration::days(30).0), to: now },
                        };
                        p.read_records(&req).await.unwrap().unwrap();
                        i += 64;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            eprintln!("built {} events in {:.1} s", p.head().count, t.elapsed().as_secs_f64());
        }
        if args.iter().any(|a| a == "--restart-only") {
            // A ledger and snapshot from an earlier run: one untimed open and clean
            // close (which leaves the store's clean-close record), then the timed
            // restart, as a server that was stopped and started again.
            let t = Instant::now();
            let p = Platform::open(&dir, Options::default()).await.unwrap();
            let o = t.elapsed().as_secs_f64();
            drop(p);
            eprintln!("untimed open {o:.2} s");
            let t = Instant::now();
            let p = Platform::open(&dir, Options::default()).await.unwrap();
            let open_s = t.elapsed().as_secs_f64();
            let head = p.head().count;
            let v = p.start_views_with(Some(manual()));
            let views_s = t.elapsed().as_secs_f64() - open_s;
            v.caught_up_to(head).await;
            let restart_s = t.elapsed().as_secs_f64();
            println!("events                         {head}");
            println!("open (ledger, keys, vault)     {open_s:.2} s");
            println!("restore snapshot into views    {views_s:.2} s");
            println!("open + restore from snapshot   {restart_s:.2} s ({:?})", v.started_from());
            println!("peak RSS                       {} MiB", rss_mib());
            // Where the restore's time goes.
            let snap = mebyo_platform::snapshot::path(&dir);
            let t = Instant::now();
            let raw = std::fs::read(&snap).unwrap();
            println!("  read the file                {:.2} s ({} MiB)", t.elapsed().as_secs_f64(), raw.len() >> 20);
            drop(raw);
            let dek = p.keys().audit_dek().unwrap();
            let t = Instant::now();
            let (covers, bytes) = mebyo_platform::snapshot::read(&snap, &dek).unwrap();
            println!("  read + open the seal         {:.2} s", t.elapsed().as_secs_f64());
            let t = Instant::now();
            let m = mebyo_projections::ReadModels::restore(&bytes, covers.position, covers.last_hash).unwrap();
            println!("  ReadModels::restore          {:.2} s", t.elapsed().as_secs_f64());
            drop(m);
            return;
        }
        let _ = std::fs::remove_file(mebyo_platform::snapshot::path(&dir));

        // 1. Replay.
        let t = Instant::now();
        let p = Platform::open(&dir, Options::default()).await.unwrap();
        let open_s = t.elapsed().as_secs_f64();
        let head = p.head().count;
        let v = p.start_views_with(Some(manual()));
        v.caught_up_to(head).await;
        assert_eq!(v.failed(), None);
        let replay_s = t.elapsed().as_secs_f64();
        // 2. Save.
        let t = Instant::now();
        let saved = p.save_views_snapshot().unwrap().unwrap();
        let save_s = t.elapsed().as_secs_f64();
        drop(v);
        drop(p);
        // 3. Restart from the snapshot.
        let t = Instant::now();
        let p = Platform::open(&dir, Options::default()).await.unwrap();
        let v = p.start_views_with(Some(manual()));
        v.caught_up_to(head).await;
        let restart_s = t.elapsed().as_secs_f64();
        println!("events                         {head}");
        println!("people                         {people}");
        println!("open (ledger, keys, vault)     {open_s:.2} s");
        println!("open + replay everything       {replay_s:.2} s");
        println!("snapshot save                  {save_s:.2} s ({} MiB, serialise {} ms, seal+write+fsync {} ms)",
            saved.bytes >> 20, saved.serialise_ms, saved.write_ms);
        println!("open + restore from snapshot   {restart_s:.2} s ({:?})", v.started_from());
        println!("peak RSS                       {} MiB", rss_mib());
    });
}
