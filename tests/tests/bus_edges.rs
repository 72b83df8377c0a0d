//! The bus's edges (issue 22 §2, §6): messages that do not authenticate are
//! counted, not written, whatever text they carry; a signed request's refusal
//! is written from validated fields only; a captured request stays refused after
//! the bus restarts, and cannot have its answer redirected.

use crate::bus_support;

use std::path::Path;
use std::time::Duration;

use bus_support::*;
use mebyo_bus::testkit::{NatsServer, async_nats, bytes::Bytes};
use mebyo_provider::sign_headers;
use serde_json::json;

/// Made-up personal data (never a real person), as a prober put it in subjects.
const NAME: &str = "Yamada_Taro_1980-04-01_tel-0452101111";

/// Whether any file under `dir` (the ledger's events.log among them) holds
/// `needle`.
fn anywhere_on_disk(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(anywhere_on_disk(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_noise_is_counted_not_written() {
    let w = World::new("unauthenticated_noise_is_counted_not_written").await;
    let nats = NatsServer::start();
    let Scene {
        clinic,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let head = w.head();
    let raw = async_nats::connect(nats.url()).await.unwrap();

    // 500 unsigned messages to a subject made of personal data, no reply asked.
    let subject = format!("mebyo.v1.svc.{NAME}.records.query");
    for _ in 0..500 {
        raw.publish(subject.clone(), Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }
    // 50 signed with a stranger's key for the clinic's own subject, answers
    // asked to an inbox named after the person, the name in the body too.
    let stranger = mebyo_provider::generate_key();
    let own = c.subject("records.query");
    let body = format!("{{\"person\":\"{NAME}\"}}").into_bytes();
    let inbox = format!("_INBOX.{NAME}");
    for _ in 0..50 {
        let h = sign_headers(
            &stranger,
            &own,
            &inbox,
            clinic.id.as_str(),
            clinic.credential.as_str(),
            c.now_ms(),
            &mebyo_provider::fresh_nonce(),
            None,
            &body,
        );
        raw.publish_with_reply_and_headers(own.clone(), inbox.clone(), h, body.clone().into())
            .await
            .unwrap();
    }
    raw.flush().await.unwrap();

    // Counted, per code (waiting, bounded, for the bus to get through them).
    let mut stats = bus.stats();
    for _ in 0..1000 {
        if stats.unauthenticated_total() >= 550 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = bus.stats();
    }
    let count = |code: &str| {
        stats
            .unauthenticated
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| *n)
    };
    assert_eq!(count("request.unsigned"), Some(500), "{stats:?}");
    assert_eq!(count("request.signature_invalid"), Some(50), "{stats:?}");
    // Answered at a bounded rate only: the clock stands still in this test, so
    // at most one second's worth of answers went out.
    assert!(
        stats.unanswered >= 550 - mebyo_bus::stats::NOISE_ANSWERS_PER_SECOND,
        "{stats:?}"
    );

    // A signed request of the clinic with the name in its body is the
    // clinic's: its refusal is written, without the name.
    let q = c
        .request("records.query", &json!({"person": NAME, "categories": ["vitals"], "purpose": "care", "period": {"from": "2026-01-01", "to": "2026-11-27"}}), None)
        .await
        .unwrap();
    assert_eq!(q.error().unwrap().0, "request.malformed");
    assert_eq!(w.head(), head + 1, "only the signed request's refusal");
    assert_eq!(w.count("bus.request_refused").await, 1);

    // Nothing of the noise, nor of the name, is on disk.
    let hits = anywhere_on_disk(w.tmp.path(), b"Yamada");
    assert!(hits.is_empty(), "the name is at rest in {hits:?}");
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_11_4_a_captured_request_stays_refused_across_a_restart() {
    let w = World::new("p4_11_4_a_captured_request_stays_refused_across_a_restart").await;
    let nats = NatsServer::start();
    let Scene {
        clinic,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let subject = c.subject("consents.list");
    let body = br#"{"status":"active"}"#.to_vec();
    let reply = c.inbox();
    let headers = sign_headers(
        c.signing_key(),
        &subject,
        &reply,
        clinic.id.as_str(),
        clinic.credential.as_str(),
        c.now_ms(),
        &mebyo_provider::fresh_nonce(),
        None,
        &body,
    );
    let send = |reply: String| c.send(subject.clone(), reply, headers.clone(), body.clone());

    // Its answer cannot be redirected: the reply subject is signed.
    let a = send(c.inbox()).await.unwrap();
    assert_eq!(a.error().unwrap().0, "request.signature_invalid");
    let first = send(reply.clone()).await.unwrap();
    assert!(first.is_ok(), "{:?}", first.body);
    assert_eq!(
        send(reply.clone()).await.unwrap().error().unwrap().0,
        "request.replayed"
    );

    // The bus restarts a second later; the captured request is sent again,
    // within its freshness window.
    bus.shutdown().await;
    w.clock.advance(1_000_000);
    let bus = w.serve(&nats).await;
    let again = send(reply.clone()).await.unwrap();
    assert_eq!(
        again.error().map(|e| e.0),
        Some("request.replayed"),
        "{:?}",
        again.body
    );
    // A fresh request goes through as ever.
    assert!(c.consents("active").await.unwrap().is_ok());
    // Past the window it is stale.
    w.clock.advance(61_000_000);
    assert_eq!(
        send(reply).await.unwrap().error().unwrap().0,
        "request.stale"
    );
    bus.shutdown().await;
}
