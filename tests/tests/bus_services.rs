//! The bus's request-reply services end to end, through a private nats-server:
//! signed submissions (FHIR and JAHIS) with exactly-once idempotency, consent-
//! scoped queries recorded before data leaves, consent listing, and every kind of
//! bad input refused with a clear error and nothing but a refusal event
//! (P4.5(1)(2), P4.5(3), P4.6(2), P4.11(4), P4.12, P4.13, P5.1).

use crate::bus_support;

use bus_support::*;
use mebyo_bus::testkit::NatsServer;
use mebyo_domain::credential::{CredentialCommand, RevocationReason};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_platform::world::Org;
use mebyo_provider::{blood_pressure, fhir_item, jahis_item, sign_headers};
use mebyo_store::EventStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_query_and_list_consents_exactly_once() {
    let w = World::new("submit_query_and_list_consents_exactly_once").await;
    let nats = NatsServer::start();
    let Scene {
        clinic,
        hanako,
        bus,
        client: c,
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();

    // One FHIR observation.
    let when = w.at(2);
    let item = fhir_item(
        person,
        "vitals",
        &when,
        "lab-0001",
        blood_pressure(person, 128, 82, &when),
    );
    let first = c.submit(vec![item.clone()], "bp-0001", 1).await.unwrap();
    assert!(first.is_ok(), "{:?}", first.body);
    assert!(!first.replayed);
    let items = &first.result().unwrap()["items"];
    assert_eq!(items[0]["status"], "added");
    assert_eq!(w.count("record.added").await, 1);

    // The same key again, however much later: the first answer, nothing new (P2(1)).
    w.clock.advance(3_600_000_000);
    let head = w.head();
    let again = c.submit(vec![item.clone()], "bp-0001", 1).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    assert_eq!(w.head(), head, "a replay writes nothing");

    // The same key for another body is refused, not silently replayed.
    let other = fhir_item(
        person,
        "vitals",
        &when,
        "lab-0002",
        blood_pressure(person, 140, 90, &when),
    );
    let r = c.submit(vec![other], "bp-0001", 1).await.unwrap();
    assert_eq!(r.error().unwrap().0, "request.idempotency_key_reused");

    // A JAHIS file (Shift_JIS CSV): one MedicationStatement per medicine, with
    // provenance, and no identity data (P4.8(3), P5.1).
    let r = c
        .submit(vec![jahis_item(person, &jahis_sample())], "jahis-0001", 1)
        .await
        .unwrap();
    let item = &r.result().unwrap()["items"][0];
    assert_eq!(item["status"], "added", "{item}");
    assert_eq!(item["records"].as_array().unwrap().len(), 2);

    // Query: recorded before the data leaves (P4.6(2)).
    let access_before = w.count("access.recorded").await;
    let q = c
        .query(
            person,
            &["medication_notebook"],
            "care",
            "2026-01-01",
            "2026-11-27",
        )
        .await
        .unwrap();
    let records = q.result().unwrap()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 2);
    let med = &records[0];
    assert_eq!(med["resource"]["resourceType"], "MedicationStatement");
    assert_eq!(med["provenance"]["origin"], "MedicalInstitution");
    assert!(
        med["provenance"]["original_identifier"]
            .as_str()
            .unwrap()
            .starts_with("jahis:1441234567:20261125:")
    );
    assert!(!q.body.to_string().contains("花子"));
    assert_eq!(w.count("access.recorded").await, access_before + 1);
    assert!(
        w.count("bus.request_served").await >= 1,
        "the signed read is kept"
    );

    // A query the consent does not cover is refused, and that is recorded too.
    let q = c
        .query(person, &["allergy"], "care", "2026-01-01", "2026-11-27")
        .await
        .unwrap();
    assert_eq!(q.error().unwrap().1, "P4.6(2)");
    assert_eq!(w.count("access.recorded").await, access_before + 2);

    // Consents that concern the provider.
    let l = c.consents("active").await.unwrap();
    let consents = l.result().unwrap()["consents"].as_array().unwrap().clone();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0]["person"], person);

    // The signature is kept with the outcome (P4.12): provider cannot deny it.
    let stream = format!("bus-requests-{}", clinic.id);
    let evs = w
        .platform
        .store()
        .read_stream(&stream, 0, 100)
        .await
        .unwrap();
    let completed: Vec<serde_json::Value> = evs
        .iter()
        .filter(|e| e.event_type == "bus.request_completed")
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect();
    assert_eq!(completed.len(), 2, "bp-0001 and jahis-0001, once each");
    assert_eq!(
        completed[0]["evidence"]["signature"]
            .as_str()
            .unwrap()
            .len(),
        128
    );
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_writes_only_a_refusal() {
    // Unauthenticated input is counted, not written (issue 22 §2); a signed
    // request's refusal is written.
    let w = World::new("bad_input_gets_a_clear_error_and_writes_only_a_refusal").await;
    let nats = NatsServer::start();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let hanako = w.person(1).await;
    w.consent(&hanako, &clinic, &[Category::Vitals], 30).await;
    let bus = w.serve(&nats).await;
    let c = w.client(&nats, &clinic, &key).await;
    let person = hanako.id.as_str();
    let subject = c.subject("records.submit");
    let when = w.at(1);
    let body = serde_json::to_vec(&json!({"items": [fhir_item(person, "vitals", &when, "x-1", blood_pressure(person, 120, 80, &when))]})).unwrap();
    let now = c.now_ms();
    let nonce = || mebyo_provider::fresh_nonce();
    // Every case is signed for (and sent with) this reply subject.
    let reply = c.inbox();
    let signed = |ts: u64, n: &str, b: &[u8], k: &mebyo_provider::SigningKey| {
        sign_headers(
            k,
            &subject,
            &reply,
            clinic.id.as_str(),
            clinic.credential.as_str(),
            ts,
            n,
            Some("k-1"),
            b,
        )
    };
    let stranger = mebyo_provider::generate_key();
    let replayed_nonce = nonce();
    let cases: Vec<(
        &str,
        mebyo_bus::testkit::async_nats::HeaderMap,
        Vec<u8>,
        &str,
        &str,
    )> = vec![
        (
            "unsigned",
            mebyo_bus::testkit::async_nats::HeaderMap::new(),
            body.clone(),
            "request.unsigned",
            "P4.12(1)",
        ),
        (
            "wrong key",
            signed(now, &nonce(), &body, &stranger),
            body.clone(),
            "request.signature_invalid",
            "P4.11(4)",
        ),
        (
            "body changed after signing",
            signed(now, &nonce(), b"{}", &key),
            body.clone(),
            "request.signature_invalid",
            "P4.11(4)",
        ),
        (
            "stale",
            signed(now - 61_000, &nonce(), &body, &key),
            body.clone(),
            "request.stale",
            "P4.11(4)",
        ),
        (
            "from the future",
            signed(now + 61_000, &nonce(), &body, &key),
            body.clone(),
            "request.stale",
            "P4.11(4)",
        ),
        (
            "oversized",
            mebyo_bus::testkit::async_nats::HeaderMap::new(),
            vec![b' '; 600 * 1024],
            "request.too_large",
            "P4.4",
        ),
    ];
    let head = w.head();
    let mut n = 0;
    for (what, headers, b, code, clause) in cases {
        let a = c
            .send(subject.clone(), reply.clone(), headers, b)
            .await
            .unwrap();
        let (got_code, got_clause, message) =
            a.error().unwrap_or_else(|| panic!("{what}: {:?}", a.body));
        assert_eq!((got_code, got_clause), (code, clause), "{what}: {message}");
        assert!(!message.is_empty());
        n += 1;
    }
    // A nonce used once is refused the second time (replay).
    let h = signed(now, &replayed_nonce, &body, &key);
    let ok = c
        .send(subject.clone(), reply.clone(), h.clone(), body.clone())
        .await
        .unwrap();
    assert!(ok.is_ok(), "{:?}", ok.body);
    let a = c
        .send(subject.clone(), reply.clone(), h, body.clone())
        .await
        .unwrap();
    assert_eq!(a.error().unwrap().0, "request.replayed");
    n += 1;
    // Unknown service.
    let bad_subject = format!("mebyo.v1.svc.{}.records.delete", clinic.id);
    let a = c
        .send(
            bad_subject.clone(),
            reply.clone(),
            sign_headers(
                &key,
                &bad_subject,
                &reply,
                clinic.id.as_str(),
                clinic.credential.as_str(),
                now,
                &nonce(),
                None,
                b"{}",
            ),
            b"{}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(a.error().unwrap().0, "request.unknown_service");
    n += 1;
    // None of these authenticated (issue 22 §2): each is counted, none recorded.
    let stats = bus.stats();
    assert_eq!(stats.unauthenticated_total(), n as u64, "{stats:?}");
    // A signed request with a bad body is the provider's: recorded, from
    // validated fields only.
    let mut recorded = 0;
    for (b, idem, code) in [
        (&b"{not json"[..], "k-2", "request.malformed"),
        (&b"{\"items\":[]}"[..], "k-3", "request.malformed"),
    ] {
        let h = sign_headers(
            &key,
            &subject,
            &reply,
            clinic.id.as_str(),
            clinic.credential.as_str(),
            now,
            &nonce(),
            Some(idem),
            b,
        );
        let a = c
            .send(subject.clone(), reply.clone(), h, b.to_vec())
            .await
            .unwrap();
        assert_eq!(a.error().unwrap().0, code);
        recorded += 1;
    }
    // Exactly: the one good request's record and outcome, and one refusal per
    // authenticated bad one.
    assert_eq!(w.count("bus.request_refused").await, recorded);
    assert_eq!(w.count("record.added").await, 1);
    assert_eq!(w.head(), head + recorded as u64 + 2);
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_5_3_a_provider_without_vpn_cannot_submit_medical_records() {
    let w = World::new("p4_5_3_a_provider_without_vpn_cannot_submit_medical_records").await;
    let nats = NatsServer::start();
    let (app, key) = w.provider("app-b", ConnectionClass::TlsInternet).await;
    let hanako = w.person(1).await;
    w.consent(&hanako, &app, &[Category::Vitals], 30).await;
    let bus = w.serve(&nats).await;
    let c = w.client(&nats, &app, &key).await;
    let person = hanako.id.as_str();
    let when = w.at(1);
    let a = c
        .submit(
            vec![fhir_item(
                person,
                "vitals",
                &when,
                "x-1",
                blood_pressure(person, 120, 80, &when),
            )],
            "k-1",
            1,
        )
        .await
        .unwrap();
    let (code, clause, message) = a.error().expect("refused");
    assert_eq!(
        (code, clause),
        ("record.connection_not_vpn", "P4.5(3)"),
        "{message}"
    );
    assert_eq!(w.count("record.added").await, 0);
    assert_eq!(w.count("bus.request_refused").await, 1);
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_13_revocation_and_expiry_refuse_the_next_request() {
    let w = World::new("p4_13_revocation_and_expiry_refuse_the_next_request").await;
    let nats = NatsServer::start();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let (other, other_key) = w.provider("clinic-b", ConnectionClass::ClosedIpVpn).await;
    let bus = w.serve(&nats).await;
    let c = w.client(&nats, &clinic, &key).await;
    assert!(c.consents("active").await.unwrap().is_ok());

    // Revoked by the prefecture: the very next request is refused (within 1 s).
    w.platform
        .credential(
            &Org::actor(&w.org.prefecture),
            &clinic.credential,
            CredentialCommand::Revoke {
                reason: RevocationReason::JudgedRisk,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let a = c.consents("active").await.unwrap();
    assert_eq!(a.error().unwrap().0, "credential.revoked");
    assert_eq!(a.error().unwrap().1, "P4.13(3)");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));

    // Expired after the renewal interval (P4.12(1)), on the injected clock.
    let c2 = w.client(&nats, &other, &other_key).await;
    assert!(c2.consents("active").await.unwrap().is_ok());
    w.advance_days(366);
    let a = c2.consents("active").await.unwrap();
    assert_eq!(a.error().unwrap().0, "credential.expired");
    assert_eq!(a.error().unwrap().1, "P4.12(1)");
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_outcomes_survive_a_restart_of_the_bus() {
    let w = World::new("idempotency_outcomes_survive_a_restart_of_the_bus").await;
    let nats = NatsServer::start();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::ClosedIpVpn).await;
    let hanako = w.person(1).await;
    w.consent(&hanako, &clinic, &[Category::Vitals], 30).await;
    let person = hanako.id.as_str();
    let when = w.at(1);
    let item = fhir_item(
        person,
        "vitals",
        &when,
        "x-1",
        blood_pressure(person, 120, 80, &when),
    );
    let bus = w.serve(&nats).await;
    let c = w.client(&nats, &clinic, &key).await;
    let first = c.submit(vec![item.clone()], "k-1", 1).await.unwrap();
    assert!(first.is_ok());
    bus.shutdown().await;

    // A new bus process rebuilds its index from the ledger.
    w.advance_days(20);
    let bus = w.serve(&nats).await;
    let head = w.head();
    let again = c.submit(vec![item], "k-1", 1).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    assert_eq!(w.head(), head);
    assert_eq!(w.count("record.added").await, 1);
    bus.shutdown().await;
}
