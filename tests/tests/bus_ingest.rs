//! Ingestion of providers' input through the bus, end to end through a private
//! nats-server (issue 22 §1, §8): JAHIS files that once aborted the platform or
//! were stored cut or incomplete are refused by line, and nothing of them is
//! stored; MedicationDispense and FHIR Bundles are accepted, each entry
//! validated as strictly as one resource, a Bundle all or nothing (P2(1),
//! P5.1). That a refused file's text is stored nowhere (§2) is proven by
//! `plaintext_scan.rs`.

use crate::bus_support;

use bus_support::*;
use mebyo_bus::jahis::encode_sjis;
use mebyo_bus::testkit::NatsServer;
use mebyo_provider::{fhir_item, jahis_item};
use serde_json::{Value, json};

/// A patient's name, written into the file where an error once repeated it.
const NAME: &str = "神奈川 檸檬子";

fn file(body: &[&str]) -> Vec<u8> {
    let patient = format!("1,{NAME},2,19800401,231-8588");
    let mut lines = vec!["JAHISTC07,1", patient.as_str()];
    lines.extend_from_slice(body);
    encode_sjis(&lines)
}

const PHARMACY: &str = "11,みなと薬局,14,4,1234567,231-0001";
const MEDICINE: &str = "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1";

/// Issue 22 §1: a `5` record holding `-01010115` passed the date check and
/// then panicked the bus (with `panic = "abort"`, the whole platform), again on
/// the provider's retry. Now it is refused with the line, record and field,
/// the retry gets the same refusal, nothing is stored, and the bus goes on
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jahis_date_with_a_sign_is_refused_and_the_bus_lives_on() {
    let w = World::new("a_jahis_date_with_a_sign_is_refused_and_the_bus_lives_on").await;
    let nats = NatsServer::start();
    let Scene {
        hanako,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();
    let bad = file(&["5,-01010115,1", PHARMACY, MEDICINE]);
    let head = w.head();
    for attempt in 0..2 {
        let a = c
            .submit(vec![jahis_item(person, &bad)], "jahis-signed-year", 1)
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: no answer ({e}): the bus died"));
        let (code, clause, message) = a.error().unwrap_or_else(|| panic!("{:?}", a.body));
        assert_eq!((code, clause), ("jahis.invalid", "P2(1)"), "{message}");
        assert_eq!(
            message,
            "JAHIS line 3, record 5, field 2: dispensing date must be YYYYMMDD (8 digits, a real date, year 1900..=2100)"
        );
    }
    assert_eq!(w.count("record.added").await, 0, "nothing is stored");
    assert_eq!(
        w.count("bus.request_refused").await,
        2,
        "only the two refusals are recorded"
    );
    assert_eq!(w.head(), head + 2);
    // The same bus still serves a good file.
    let good = file(&["5,20261125,1", PHARMACY, MEDICINE]);
    let a = c
        .submit(vec![jahis_item(person, &good)], "jahis-good", 1)
        .await
        .unwrap();
    assert_eq!(
        a.result().unwrap()["items"][0]["status"],
        "added",
        "{:?}",
        a.body
    );
    assert_eq!(w.count("record.added").await, 1);
    bus.shutdown().await;
}

/// Issue 22 §8: an unknown record number (`250`) was skipped silently and a
/// file cut short was stored with its last text cut. Both are refused, naming
/// the line, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jahis_unknown_records_and_truncated_files_are_refused() {
    let w = World::new("jahis_unknown_records_and_truncated_files_are_refused").await;
    let nats = NatsServer::start();
    let Scene {
        hanako,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();
    let unknown = file(&["5,20261125,1", PHARMACY, MEDICINE, "250,1,何か"]);
    let mut cut = file(&[
        "5,20261125,1",
        PHARMACY,
        MEDICINE,
        "301,1,1日1回 朝食後,28,日分",
    ]);
    cut.truncate(cut.len() - 8);
    for (what, bytes, message) in [
        (
            "record 250",
            unknown,
            "JAHIS line 6: record number not defined by the JAHIS format: refused, so that nothing is lost silently",
        ),
        (
            "truncated",
            cut,
            "JAHIS line 6: the last line does not end with CRLF: the file is truncated or not JAHIS",
        ),
    ] {
        let a = c
            .submit(
                vec![jahis_item(person, &bytes)],
                what.replace(' ', "-").as_str(),
                1,
            )
            .await
            .unwrap();
        let (code, _, got) = a.error().unwrap_or_else(|| panic!("{what}: {:?}", a.body));
        assert_eq!((code, got), ("jahis.invalid", message), "{what}");
    }
    assert_eq!(w.count("record.added").await, 0, "nothing is stored");
    bus.shutdown().await;
}

fn dispense(person: &str, code: &str, handed_over: &str) -> Value {
    json!({
        "resourceType": "MedicationDispense", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.74", "code": code}]},
        "subject": {"reference": format!("Patient/{person}")},
        "quantity": {"value": 28, "unit": "錠"},
        "whenHandedOver": handed_over,
    })
}

/// Issue 22 §8: pharmacies send MedicationDispense, and several resources at
/// once as a Bundle. A dispense is stored as medication data; a Bundle's
/// entries become one record each, with the bundle's original identifier and
/// the entry's position (P5.1); one bad entry refuses the whole bundle and
/// nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispenses_and_bundles_are_stored_all_or_nothing() {
    let w = World::new("dispenses_and_bundles_are_stored_all_or_nothing").await;
    let nats = NatsServer::start();
    let Scene {
        hanako,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();
    let when = w.at(3);
    let notebook = "medication_notebook";
    let one = fhir_item(
        person,
        notebook,
        &when,
        "disp-1",
        dispense(person, "610463147", &when),
    );
    let a = c.submit(vec![one], "dispense-1", 1).await.unwrap();
    assert_eq!(
        a.result().unwrap()["items"][0]["status"],
        "added",
        "{:?}",
        a.body
    );

    let post = |r: Value| json!({"resource": r, "request": {"method": "POST", "url": "MedicationDispense"}});
    let bundle = |entries: Vec<Value>| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let good = bundle(vec![
        post(dispense(person, "620008601", &when)),
        post(dispense(person, "610443033", &when)),
    ]);
    let a = c
        .submit(
            vec![fhir_item(person, notebook, &when, "rx-77", good)],
            "bundle-1",
            1,
        )
        .await
        .unwrap();
    let item = &a.result().unwrap_or_else(|| panic!("{:?}", a.body))["items"][0];
    assert_eq!(item["status"], "added", "{item}");
    assert_eq!(item["records"].as_array().unwrap().len(), 2);
    assert_eq!(w.count("record.added").await, 3);

    // One entry wrong (a dateTime as some systems print it): all refused.
    let head = w.head();
    let bad = bundle(vec![
        post(dispense(person, "620008601", &when)),
        post(dispense(person, "610443033", "2026/11/20 07:35")),
    ]);
    let a = c
        .submit(
            vec![fhir_item(person, notebook, &when, "rx-78", bad)],
            "bundle-2",
            1,
        )
        .await
        .unwrap();
    let (code, clause, message) = a.error().unwrap_or_else(|| panic!("{:?}", a.body));
    assert_eq!((code, clause), ("record.fhir_invalid", "P2(1)"));
    assert!(
        message.starts_with("Bundle.entry[1].resource.whenHandedOver: must be an R4 dateTime"),
        "{message}"
    );
    assert_eq!(
        w.count("record.added").await,
        3,
        "nothing of the bundle is stored"
    );
    assert_eq!(w.head(), head + 1, "only the refusal");

    // A bundle the person's consent does not cover is refused whole too.
    let uncovered = bundle(vec![post(dispense(person, "620008601", &when))]);
    let a = c
        .submit(
            vec![fhir_item(
                person,
                "medication_history",
                &when,
                "rx-79",
                uncovered,
            )],
            "bundle-3",
            1,
        )
        .await
        .unwrap();
    assert_eq!(a.error().map(|e| e.1), Some("P4.6(2)"), "{:?}", a.body);
    assert_eq!(w.count("record.added").await, 3);

    // What was stored reads back, each entry with its own original identifier.
    let q = c
        .query(person, &[notebook], "care", "2026-01-01", "2026-11-27")
        .await
        .unwrap();
    let records = q.result().unwrap()["records"].as_array().unwrap().clone();
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["provenance"]["original_identifier"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["disp-1", "rx-77#1", "rx-77#2"]);
    assert!(
        records
            .iter()
            .all(|r| r["resource"]["resourceType"] == "MedicationDispense")
    );
    bus.shutdown().await;
}
