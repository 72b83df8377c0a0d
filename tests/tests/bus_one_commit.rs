//! A submission's idempotency outcome is appended with its last record, right
//! after it (P2(1)): for a one-record submission, exactly the record and then
//! the outcome; a JAHIS file's records all come first. That the two share one
//! commit, all or nothing, is the store's `append_then`, tested in
//! adapters/store/tests/append_then.rs (a manual clock cannot tell commits apart
//! here). A retry still writes nothing.

use crate::bus_support;

use bus_support::*;
use mebyo_bus::testkit::NatsServer;
use mebyo_provider::{blood_pressure, fhir_item, jahis_item};
use mebyo_store::EventStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_1_the_outcome_follows_its_last_record() {
    let w = World::new("p2_1_the_outcome_follows_its_last_record").await;
    let nats = NatsServer::start();
    let Scene {
        clinic,
        hanako,
        bus: _bus,
        client: c,
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();
    let store = w.platform.store();

    for (items, key, records) in [
        (
            vec![fhir_item(
                person,
                "vitals",
                &w.at(2),
                "lab-1",
                blood_pressure(person, 120, 80, &w.at(2)),
            )],
            "one",
            1,
        ),
        (vec![jahis_item(person, &jahis_sample())], "jahis", 2),
    ] {
        let before = w.head();
        let a = c.submit(items.clone(), key, 1).await.unwrap();
        assert!(a.is_ok(), "{:?}", a.body);
        let new = store.read_all(before, 100).await.unwrap();
        let types: Vec<&str> = new.iter().map(|e| e.event_type.as_str()).collect();
        let mut expected = vec!["record.added"; records];
        expected.push("bus.request_completed");
        assert_eq!(types, expected, "{key}");
        assert_eq!(
            new[records].stream_id,
            format!("bus-requests-{}", clinic.id)
        );
        // The retry is answered from the outcome and writes nothing.
        let head = w.head();
        let again = c.submit(items, key, 1).await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.body, a.body);
        assert_eq!(w.head(), head);
    }
}
