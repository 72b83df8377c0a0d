//! The operations loop of `mebyo serve` through the real binary (issue 7 §3, §4):
//! a maintenance window scheduled with `mebyo ops` reaches every provider's feed
//! once the server ticks, and the publication is recorded in the ledger (P4.3);
//! the synthetic probe reads through the real path each tick, shows in `/readyz`
//! and `/metrics`, keeps its events in the log, and is the same synthetic person
//! after a restart (P4.4(2)).

use std::time::{Duration, Instant};

use mebyo_bus::testkit::NatsServer;
use mebyo_operations::maintenance::Audience;
use mebyo_operations::monitoring::{ProbeEvent, ProbeOutcome};
use mebyo_operations::{Reference, WindowId};
use mebyo_operations_service::{maintenance, monitoring};
use mebyo_platform::{Options, Platform};
use mebyo_provider::ProviderClient;
use mebyo_store::EventStore;
use mebyo_tests::{Served, in_days, mebyo, path_str, stop};
use serde_json::Value;

/// `mebyo serve` ticking every second, so the operations loop is seen soon.
fn start(data: &std::path::Path, extra: &[&str]) -> Served {
    let mut args = vec!["--tick-secs", "1"];
    args.extend_from_slice(extra);
    mebyo_tests::serve(data, &args)
}

fn ok(args: &[&str]) -> String {
    let out = mebyo(args);
    assert!(
        out.status.success(),
        "mebyo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The provider ids `mebyo demo` prints: "3 providers approved: A (…), B (…), C (…)".
fn demo_providers(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("3 providers approved: "))
        .unwrap_or_else(|| panic!("no provider line in: {stdout}"));
    line.split(", ")
        .map(|p| p.split(' ').next().unwrap().to_string())
        .collect()
}

/// The provider's feed messages until one of type `kind` came (or 60 s passed).
async fn wait_for(c: &ProviderClient, kind: &str) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // The consumer exists once the bus started; until then, keep asking.
        if let Ok(msgs) = c.feed("MEBYO_FEED", 100, Duration::from_millis(300)).await {
            got.extend(msgs);
            if got.iter().any(|m| m["type"] == kind) {
                return got;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    panic!("no {kind} on {}'s feed within 60 s: {got:?}", c.provider);
}

async fn open(data: &std::path::Path) -> Platform {
    Platform::open(data, Options::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_3_a_scheduled_window_reaches_every_providers_feed() {
    let nats = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    let providers = demo_providers(&ok(&["demo", "--data", d, "--people", "1"]));
    assert_eq!(providers.len(), 3);
    // Announced while the server is stopped (the CLI needs the ledger lock), a month
    // ahead: well past the week of lead time (P4.3).
    let (starts, ends) = (in_days(30), in_days(31));
    ok(&[
        "ops",
        "maintenance",
        "schedule",
        "--data",
        d,
        "--as",
        "om-0001",
        "--id",
        "w-storage",
        "--starts",
        &starts,
        "--ends",
        &ends,
        "--affects",
        "portal,provider-gateway",
        "--summary",
        "storage upgrade",
    ]);

    let server = start(&data, &["--nats", &nats.url()]);
    for provider in &providers {
        let nc = async_nats::connect(nats.url()).await.unwrap();
        let c = ProviderClient::with_client(
            nc,
            provider,
            "unused-for-the-feed",
            mebyo_provider::generate_key(),
        );
        let msgs = wait_for(&c, "maintenance.notice").await;
        let notices: Vec<&Value> = msgs
            .iter()
            .filter(|m| m["type"] == "maintenance.notice")
            .collect();
        assert_eq!(notices.len(), 1, "told once: {notices:?}");
        let n = notices[0];
        assert_eq!(n["provider"], provider.as_str(), "on its own feed only");
        assert_eq!(n["data"]["notice"], "w-storage");
        assert_eq!(n["data"]["starts_at"], starts.as_str());
        assert_eq!(n["data"]["ends_at"], ends.as_str());
        assert_eq!(
            n["data"]["message"],
            "storage upgrade (affects: portal, provider-gateway)"
        );
    }
    // Unauthenticated bus messages are counted in /metrics, not recorded
    // (issue 22 §2).
    let nc = async_nats::connect(nats.url()).await.unwrap();
    for _ in 0..3 {
        nc.publish("mebyo.v1.svc.someone.records.query", "{}".into())
            .await
            .unwrap();
    }
    nc.flush().await.unwrap();
    let http = mebyo_tests::served_client(&data);
    let line = "mebyo_bus_unauthenticated_messages_total{code=\"request.unsigned\"} 3\n";
    // `/metrics` needs the monitoring token `serve` made (issue 22 §7).
    let token = std::fs::read_to_string(data.join("auth/metrics-token")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = http
            .get(format!("{}/metrics", server.url))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(line) {
            assert!(metrics.ends_with("# EOF\n"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{line:?} not in /metrics:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(server);

    // Recorded once published, so a restart does not tell providers again.
    let p = open(&data).await;
    let windows = maintenance::windows(&p).await.unwrap();
    let w = &windows.windows[&WindowId::new("w-storage").unwrap()];
    assert!(
        w.published.contains_key(&Audience::Providers),
        "publication recorded: {w:?}"
    );
    let published = p
        .store()
        .read_stream("ops-maintenance", 0, 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "maintenance.notice_published")
        .count();
    assert_eq!(published, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_2_the_probe_runs_each_tick_and_shows_in_readyz_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A generous threshold: this test is about the wiring, not this machine's speed.
    std::fs::write(data.join("operations.json"), r#"{"probe_slow_ms": 600000}"#).unwrap();

    let server = start(&data, &[]);
    let http = mebyo_tests::served_client(&data);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        assert!(Instant::now() < deadline, "no probe result in /readyz");
        let r = http
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        if v["operations"]["probe"].is_object() {
            assert_eq!(status, 200, "{v}");
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ops = &ready["operations"];
    assert_eq!(ops["tick_ok"], true, "{ops}");
    assert_eq!(ops["probe"]["outcome"], "ok", "{ops}");
    assert_eq!(ops["probe"]["healthy"], true, "{ops}");
    assert!(ops["probe"]["latency_us"].as_i64().unwrap() >= 0);
    // Never reviewed: the firewall-log review is overdue at once (P4.4(3)).
    assert_eq!(ops["firewall_review_overdue"], true);
    // `serve` made the monitoring token on its first start (issue 22 §7).
    let token = std::fs::read_to_string(data.join("auth/metrics-token")).unwrap();
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "mebyo_ops_tick_ok 1",
        "mebyo_ops_probe_healthy 1",
        "mebyo_ops_firewall_review_overdue 1",
        "mebyo_ledger_events ",
    ] {
        assert!(metrics.contains(line), "{line:?} missing:\n{metrics}");
    }
    assert!(metrics.contains("mebyo_ops_probe_latency_microseconds"));
    assert_eq!(
        metrics.matches("# EOF").count(),
        1,
        "one OpenMetrics document"
    );
    assert!(metrics.ends_with("# EOF\n"));
    let probe_file = std::fs::read(data.join(monitoring::PROBE_FILE)).unwrap();
    stop(server);

    // Restarted: the same synthetic person, probed again; no second enrolment.
    let before = probes(&data).await;
    assert!(!before.is_empty());
    let server = start(&data, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no probe after the restart");
        let v: Value = http
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["operations"]["probe"]["outcome"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(server);
    assert_eq!(
        std::fs::read(data.join(monitoring::PROBE_FILE)).unwrap(),
        probe_file
    );
    let after = probes(&data).await;
    assert!(
        after.len() > before.len(),
        "{} then {}",
        before.len(),
        after.len()
    );
    for e in &after {
        let ProbeEvent::Recorded { probe, outcome, .. } = e;
        assert_eq!(probe, &Reference::new("probe-read-path").unwrap());
        assert!(matches!(outcome, ProbeOutcome::Ok { .. }), "{e:?}");
    }
    // One person registered in all: the synthetic one, enrolled at first start.
    let p = open(&data).await;
    let mut registered = 0;
    let mut from = 0;
    loop {
        let page = p.store().read_all(from, 1024).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        registered += page
            .iter()
            .filter(|e| e.event_type == "person.registered")
            .count();
    }
    assert_eq!(registered, 1);
}

/// The probe events in the log, in order.
async fn probes(data: &std::path::Path) -> Vec<ProbeEvent> {
    let p = open(data).await;
    let envs = p
        .store()
        .read_stream("ops-probes", 0, 100_000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for env in &envs {
        assert_eq!(env.event_type, "probe.recorded");
        out.push(serde_json::from_slice(&env.payload).unwrap());
    }
    assert_eq!(
        monitoring::last_probe(&p).await.unwrap().as_ref(),
        out.last()
    );
    out
}
