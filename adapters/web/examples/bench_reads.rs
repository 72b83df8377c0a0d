//! Consent-gated record reads over HTTPS, measured with `wrk` on loopback (issue 6
//! §6). Every read goes through `Platform::read_records`, which appends the access
//! event and waits for it to be durable (group commit, fsync) before answering.
//!
//! ```text
//! cargo run --release -p mebyo-web --example bench_reads -- [people] [seconds] [connections]
//! ```
//!
//! Needs `wrk` (Debian package). Prints wrk's report, then checks that the log grew
//! by exactly one access event per answered read.

use std::io::Write;
use std::sync::Arc;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::Timestamp;
use mebyo_domain::consent::Purpose;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};
use mebyo_web::session::Principal;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let people: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let seconds: u64 = args.get(2).map_or(Ok(15), |s| s.parse())?;
    let connections: u32 = args.get(3).map_or(Ok(64), |s| s.parse())?;
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("wrk is not installed (apt-get install -y wrk)".into());
    }
    let dir = tempfile::tempdir()?;
    Platform::init(dir.path(), Settings::default(), Options::default()).await?;
    let p = Arc::new(Platform::open(dir.path(), Options::default()).await?);
    let org = world::bootstrap_org(&p).await?;
    let provider =
        world::onboard_provider(&p, &org, "clinic-bench", ConnectionClass::TlsInternet).await?;
    eprintln!("enrolling {people} people with 3 readings and a consent each…");
    let mut ids = Vec::with_capacity(people);
    let now = p.now();
    for i in 0..people {
        let who = world::enroll_individual(
            &p,
            &org,
            &IdentityRecord {
                name: format!("bench {i}"),
                address: "神奈川県横浜市".into(),
                birth_date: "1980-01-01".into(),
                phone: None,
                email: Some(format!("bench{i}@example.jp")),
            },
        )
        .await?;
        for d in 1..=3 {
            world::record_blood_pressure(
                &p,
                &who,
                120 + d,
                80,
                Timestamp(now.0 - d as i64 * 86_400_000_000),
            )
            .await?;
        }
        world::grant_consent(
            &p,
            &who,
            &provider.id,
            &[Category::Vitals],
            Purpose::Care,
            30,
        )
        .await?;
        ids.push(who.id.to_string());
    }
    let mut cfg = mebyo_web::WebConfig::new(dir.path());
    cfg.bind = "127.0.0.1:0".parse()?;
    let web = mebyo_web::serve(p.clone(), cfg).await?;
    // The bench measures reads, not sign-in: the provider's session is made in-process.
    let (token, _) = web
        .state()
        .sessions
        .create(
            Principal::Provider {
                provider: provider.id.clone(),
                credential: provider.credential.clone(),
            },
            p.now(),
        )
        .map_err(|e| format!("{:?}", e.body))?;
    let script = dir.path().join("reads.lua");
    let mut f = std::fs::File::create(&script)?;
    writeln!(f, "local ids = {{")?;
    for id in &ids {
        writeln!(f, "  \"{id}\",")?;
    }
    writeln!(
        f,
        "}}\nlocal n = 0\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
         request = function()\n  n = n + 1\n  local id = ids[(n % #ids) + 1]\n  \
         return wrk.format(\"GET\", \"/api/v1/persons/\" .. id .. \"/records?categories=vitals&purpose=care\")\nend\n\
         local codes = {{}}\nresponse = function(status, headers, body)\n  codes[status] = (codes[status] or 0) + 1\nend\n\
         done = function(summary, latency, requests)\n  io.write(\"non-2xx: \", summary.errors.status, \"\\n\")\nend"
    )?;
    drop(f);
    // Warm up the caches once per person.
    let before = p.head().count;
    let cmd = format!(
        "wrk -t2 -c{connections} -d{seconds}s --latency -s {} {}",
        script.display(),
        web.url()
    );
    eprintln!("running: {cmd}");
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
            script.to_str().unwrap(),
            &web.url(),
        ])
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    let after = p.head().count;
    let total: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .and_then(|(n, _)| n.parse().ok())
        })
        .unwrap_or(0);
    println!(
        "access events appended: {} for {} answered reads (each durable before its answer)",
        after - before,
        total
    );
    web.shutdown().await?;
    Ok(())
}
