//! Transport (P4.5(3), P4.6(1)) and exactly once across a broker failure: a
//! TLS-only nats-server with client certificates, started by the test with its
//! own configuration and PKI; the services run through it; and the server is
//! killed and restarted twice in the middle of a provider's submissions, which
//! the client retries with the same idempotency keys — nothing acknowledged is
//! lost and nothing is written twice.

use crate::bus_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_support::*;
use mebyo_bus::testkit::{NatsServer, async_nats};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_provider::{blood_pressure, fhir_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_6_1_services_run_over_tls_only() {
    let w = World::new("p4_6_1_services_run_over_tls_only").await;
    let nats = NatsServer::start_tls();
    let pki = nats.tls.clone().unwrap();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let hanako = w.person(1).await;
    w.consent(&hanako, &clinic, &[Category::Vitals], 30).await;
    let bus = w.serve(&nats).await;
    let c = w.client(&nats, &clinic, &key).await;
    let person = hanako.id.as_str();
    let when = w.at(1);
    let a = c
        .submit(
            vec![fhir_item(
                person,
                "vitals",
                &when,
                "x-1",
                blood_pressure(person, 118, 76, &when),
            )],
            "k-1",
            1,
        )
        .await
        .unwrap();
    assert!(a.is_ok(), "{:?}", a.body);
    let q = c
        .query(person, &["vitals"], "care", "2026-01-01", "2026-11-27")
        .await
        .unwrap();
    assert_eq!(q.result().unwrap()["records"].as_array().unwrap().len(), 1);

    // The server speaks TLS only, and only to holders of a certificate of its CA.
    let plain = async_nats::ConnectOptions::new()
        .connect(format!("nats://127.0.0.1:{}", nats.port))
        .await;
    assert!(plain.is_err(), "a client without TLS settings got in");
    let no_cert = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.ca.clone())
        .connect(nats.url())
        .await;
    let no_cert_works = match no_cert {
        Err(_) => false,
        // The handshake may complete before the server checks; then the first
        // round trip fails.
        Ok(c) => tokio::time::timeout(Duration::from_secs(2), c.flush())
            .await
            .is_ok_and(|r| r.is_ok()),
    };
    assert!(!no_cert_works, "a client without a certificate got in");
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_lose_nothing_acknowledged_and_write_nothing_twice() {
    const TASKS: usize = 4;
    const EACH: usize = 15;
    let w = World::new("broker_restarts_lose_nothing_acknowledged_and_write_nothing_twice").await;
    let nats = NatsServer::start_tls();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let people = [w.person(1).await, w.person(2).await];
    for p in &people {
        w.consent(p, &clinic, &[Category::Vitals], 30).await;
    }
    let bus = w.serve(&nats).await;
    let client = Arc::new(w.client(&nats, &clinic, &key).await);
    let nats = Arc::new(Mutex::new(nats));
    let done = Arc::new(AtomicUsize::new(0));

    // The broker dies (SIGKILL) twice while submissions are in flight.
    let killer = {
        let (nats, done) = (nats.clone(), done.clone());
        tokio::spawn(async move {
            for at in [TASKS * EACH / 3, 2 * TASKS * EACH / 3] {
                while done.load(Ordering::SeqCst) < at {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let n = nats.clone();
                tokio::task::spawn_blocking(move || {
                    let mut s = n.lock().unwrap();
                    s.kill();
                    std::thread::sleep(Duration::from_millis(300));
                    s.restart();
                })
                .await
                .unwrap();
            }
        })
    };
    let when = w.at(1);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (client, done, when) = (client.clone(), done.clone(), when.clone());
        let person = people[t % 2].id.to_string();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..EACH {
                let item = fhir_item(
                    &person,
                    "vitals",
                    &when,
                    &format!("m-{t}-{i}"),
                    blood_pressure(&person, 100 + i as u32, 70, &when),
                );
                // Retried with the same key until answered.
                let a = client
                    .submit(vec![item], &format!("k-{t}-{i}"), 60)
                    .await
                    .unwrap();
                assert!(a.is_ok(), "{:?}", a.body);
                answers.push(a);
                done.fetch_add(1, Ordering::SeqCst);
            }
            answers
        }));
    }
    let mut records = std::collections::BTreeSet::new();
    for t in tasks {
        for a in t.await.unwrap() {
            let item = &a.result().unwrap()["items"][0];
            assert_eq!(item["status"], "added");
            records.insert(item["records"][0]["record"].as_str().unwrap().to_string());
        }
    }
    killer.await.unwrap();
    assert_eq!(
        records.len(),
        TASKS * EACH,
        "every acknowledged submission has its own record"
    );
    assert_eq!(
        w.count("record.added").await,
        TASKS * EACH,
        "nothing written twice, nothing lost"
    );
    assert_eq!(w.count("bus.request_completed").await, TASKS * EACH);
    // Every acknowledged record is in the ledger.
    for p in &people {
        let state = w.platform.records_state(&p.id).await.unwrap();
        for r in state.records.keys() {
            assert!(records.contains(r.as_str()));
        }
    }
    assert!(nats.lock().unwrap().log().contains("Server is ready"));
    bus.shutdown().await;
}
