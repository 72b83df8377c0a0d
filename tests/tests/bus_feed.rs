//! The feed (P4.3, P4.6(2), P4.13): two providers on one server, each told about
//! its own consents (granted before and after the bus started, revoked, expired),
//! its credential's revocation and maintenance — and never about the other's.
//! A restarted bus resumes after what the stream holds, without republishing.

use crate::bus_support;

use std::collections::BTreeSet;
use std::time::Duration;

use bus_support::*;
use mebyo_bus::MaintenanceNotice;
use mebyo_bus::testkit::NatsServer;
use mebyo_domain::Timestamp;
use mebyo_domain::credential::{CredentialCommand, RevocationReason};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_platform::world::Org;
use mebyo_provider::ProviderClient;
use serde_json::Value;

/// Reads the provider's feed until `n` messages came or 10 s passed.
async fn read_feed(c: &ProviderClient, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < n && std::time::Instant::now() < deadline {
        got.extend(
            c.feed("MEBYO_FEED", 100, Duration::from_millis(300))
                .await
                .unwrap(),
        );
    }
    // Anything more that would arrive?
    got.extend(
        c.feed("MEBYO_FEED", 100, Duration::from_millis(300))
            .await
            .unwrap(),
    );
    got
}

fn types(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_gets_its_own_feed_and_nothing_else() {
    let w = World::new("each_provider_gets_its_own_feed_and_nothing_else").await;
    let nats = NatsServer::start();
    let (a, key_a) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let (b, key_b) = w.provider("app-b", ConnectionClass::TlsInternet).await;
    let p1 = w.person(1).await;
    let p2 = w.person(2).await;
    // Granted before the bus starts: published from the ledger at start.
    let c1 = w.consent(&p1, &a, &[Category::Vitals], 30).await;
    let bus = w.serve(&nats).await;
    // ...and after: published as it happens.
    w.consent(&p2, &a, &[Category::Vitals], 30).await;
    w.consent(&p2, &b, &[Category::DailyLifeLog], 1).await;
    w.platform
        .person(
            &p1.actor(),
            &p1.id,
            PersonCommand::RevokeConsent {
                consent: c1.clone(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    // B's consent expires on the (simulated) clock: told once.
    w.advance_days(2);
    let notice = MaintenanceNotice {
        id: "2026-12-01-db".into(),
        starts_at: Timestamp(w.clock_now() + 7 * 86_400_000_000),
        ends_at: Timestamp(w.clock_now() + 7 * 86_400_000_000 + 7_200_000_000),
        message: "データベース保守のため停止します".into(),
        providers: None,
    };
    assert_eq!(bus.publish_maintenance_notice(&notice).await.unwrap(), 2);
    w.platform
        .credential(
            &Org::actor(&w.org.prefecture),
            &b.credential,
            CredentialCommand::Revoke {
                reason: RevocationReason::BreachOfLaw,
            },
        )
        .await
        .unwrap()
        .unwrap();

    let ca = w.client(&nats, &a, &key_a).await;
    let cb = w.client(&nats, &b, &key_b).await;
    let fa = read_feed(&ca, 4).await;
    let fb = read_feed(&cb, 4).await;
    let ta: BTreeSet<_> = types(&fa).into_iter().collect();
    assert_eq!(fa.len(), 4, "{fa:#?}");
    assert_eq!(
        ta,
        ["consent.granted", "consent.revoked", "maintenance.notice"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    // Expiries are found by a timer, so B's order is not fixed; its content is.
    let mut tb = types(&fb);
    tb.sort();
    assert_eq!(
        tb,
        [
            "consent.expired",
            "consent.granted",
            "credential.revoked",
            "maintenance.notice"
        ],
        "{fb:#?}"
    );
    assert!(
        fa.iter().all(|m| m["provider"] == "clinic-a"),
        "A saw another provider's message"
    );
    assert!(
        fb.iter().all(|m| m["provider"] == "app-b"),
        "B saw another provider's message"
    );
    let of = |t: &str| fb.iter().find(|m| m["type"] == t).unwrap();
    assert_eq!(of("credential.revoked")["data"]["clause"], "P4.13(1)");
    assert_eq!(of("consent.expired")["data"]["person"], p2.id.as_str());
    // Each message has a stable id; ids are unique per provider.
    let ids: BTreeSet<_> = fa.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), fa.len());

    // Acknowledging is a signed write, recorded once per key.
    let ids: Vec<String> = fa
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let ack = ca.acknowledge(&ids, "ack-1").await.unwrap();
    assert_eq!(
        ack.result().unwrap()["acknowledged"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(ca.acknowledge(&ids, "ack-1").await.unwrap().replayed);

    // A restarted bus publishes nothing twice, and tells no expiry again.
    bus.shutdown().await;
    let js = mebyo_bus::testkit::async_nats::jetstream::new(ca.nats.clone());
    let before = js
        .get_stream("MEBYO_FEED")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    let bus = w.serve(&nats).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = js
        .get_stream("MEBYO_FEED")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(before, after);
    assert_eq!(w.count("bus.feed_expiry_published").await, 1);
    assert!(read_feed(&ca, 0).await.is_empty());
    bus.shutdown().await;
}
