//! The platform end to end against the real embedded store, key store and vault:
//! registration, consent, consent-gated reads recorded before data leaves,
//! revocation, erasure by key destruction (P4.6(2), P4.8, P4.9).

use std::collections::BTreeSet;
use std::sync::Arc;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_domain::{Actor, Channel, Duration, Timestamp};
use mebyo_platform::world::{self, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::{EventStore, ManualClock, PayloadKind};

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z

fn identity(n: u32) -> IdentityRecord {
    IdentityRecord {
        name: format!("神奈川 花子{n}"),
        address: format!("横浜市中区日本大通{n}"),
        birth_date: "1980-04-01".into(),
        phone: Some(format!("045-210-{n:04}")),
        email: Some(format!("hanako{n}@example.jp")),
    }
}

async fn platform(dir: &std::path::Path, clock: &ManualClock) -> Platform {
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(7),
        ..Default::default()
    };
    Platform::init(dir, Settings::default(), opts())
        .await
        .unwrap();
    Platform::open(dir, opts()).await.unwrap()
}

fn read(actor: Actor, person: &mebyo_domain::PersonId, channel: Channel) -> AccessRequest {
    AccessRequest {
        actor,
        person: person.clone(),
        categories: [Category::Vitals].into_iter().collect::<BTreeSet<_>>(),
        purpose: Purpose::Care,
        channel,
        period: Period {
            from: Timestamp(NOW_US - Duration::days(365).0),
            to: Timestamp(NOW_US + Duration::days(1).0),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_gates_reads_and_every_access_is_recorded_first() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-a", ConnectionClass::IpsecIkeVpn)
        .await
        .unwrap();
    let other = world::onboard_provider(&p, &org, "app-b", ConnectionClass::TlsInternet)
        .await
        .unwrap();
    let hanako = world::enroll_individual(&p, &org, &identity(1))
        .await
        .unwrap();
    world::record_blood_pressure(&p, &hanako, 128, 82, Timestamp(NOW_US - 3_600_000_000))
        .await
        .unwrap();

    // Deny by default (P4.6(2)): no consent, refused — and the refusal is recorded.
    let before = p.head().count;
    let r = p
        .read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "consent.none");
    assert_eq!(p.head().count, before + 1, "the refusal is an event");

    // Consent, then the provider reads exactly the covered record.
    let consent = world::grant_consent(
        &p,
        &hanako,
        &clinic.id,
        &[Category::Vitals],
        Purpose::Care,
        30,
    )
    .await
    .unwrap();
    let got = p
        .read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].resource.value()["component"][0]["valueQuantity"]["value"],
        128
    );

    // Another provider, no consent: refused, same code whether or not data exists.
    let r = p
        .read_records(&read(other.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().clause, "P4.6(2)");

    // The individual reads their own.
    assert_eq!(
        p.read_records(&read(hanako.actor(), &hanako.id, Channel::Portal))
            .await
            .unwrap()
            .unwrap()
            .len(),
        1
    );

    // Staff never read health content.
    let r = p
        .read_records(&read(Org::actor(&org.office), &hanako.id, Channel::Portal))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "access.staff");

    // Expiry works at its instant, with no job (P4.6(2)).
    clock.advance(Duration::days(31).0);
    let r = p
        .read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap();
    assert!(r.is_err(), "expired consent still worked");
    clock.set(NOW_US);

    // Revocation takes effect at once.
    p.person(
        &hanako.actor(),
        &hanako.id,
        PersonCommand::RevokeConsent { consent },
    )
    .await
    .unwrap()
    .unwrap();
    let r = p
        .read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap();
    assert!(r.is_err());

    // Every access event is sealed, never plaintext (P4.8(1)), in access-<person>.
    let access = p
        .store()
        .read_stream(&format!("access-{}", hanako.id), 0, 100)
        .await
        .unwrap();
    assert_eq!(access.len(), 7);
    assert!(
        access
            .iter()
            .all(|e| e.payload_kind == PayloadKind::AesSiv && e.event_type == "access.recorded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_destroys_the_keys_and_keeps_the_chain_and_the_disclosures() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-a", ConnectionClass::ClosedIpVpn)
        .await
        .unwrap();
    let hanako = world::enroll_individual(&p, &org, &identity(2))
        .await
        .unwrap();
    world::record_blood_pressure(&p, &hanako, 140, 90, Timestamp(NOW_US - 1))
        .await
        .unwrap();
    world::grant_consent(
        &p,
        &hanako,
        &clinic.id,
        &[Category::Vitals],
        Purpose::Care,
        30,
    )
    .await
    .unwrap();
    p.read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
        .await
        .unwrap()
        .unwrap();
    assert!(p.identity(&hanako.id).unwrap().is_some());
    assert_eq!(
        p.find_by_email("HANAKO2@example.jp ").unwrap(),
        vec![hanako.id.clone()]
    );

    // Erasure needs withdrawal first and a witness with the right role (P4.9).
    let r = p
        .erase(&hanako.id, &org.system_operations_administrator)
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "person.not_withdrawn");
    p.person(&hanako.actor(), &hanako.id, PersonCommand::Withdraw)
        .await
        .unwrap()
        .unwrap();
    let r = p.erase(&hanako.id, &org.office).await.unwrap();
    assert_eq!(
        r.unwrap_err().clause,
        "P4.9",
        "the office cannot witness an erasure"
    );
    let receipt = p
        .erase(&hanako.id, &org.system_operations_administrator)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receipt.destroyed.len(), 2, "identity and health DEKs");

    // Afterwards: no identity, payloads unreadable, the chain intact.
    assert!(p.identity(&hanako.id).unwrap().is_none());
    assert!(p.find_by_email("hanako2@example.jp").unwrap().is_empty());
    let records = p
        .store()
        .read_stream(&format!("records-{}", hanako.id), 0, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "the event stays in the chain");
    let key_ref = records[0].key_ref.clone();
    assert!(p.keys().dek(&key_ref).is_err(), "the DEK is gone");
    assert!(
        p.records_state(&hanako.id)
            .await
            .unwrap()
            .records
            .is_empty(),
        "nothing decrypts"
    );
    // The disclosure record survives as pseudonymous metadata under the audit key.
    let access = p
        .store()
        .read_stream(&format!("access-{}", hanako.id), 0, 10)
        .await
        .unwrap();
    assert_eq!(access.len(), 1);
    assert!(p.keys().dek(&access[0].key_ref).is_ok());
    let erasures = p.store().read_stream("ops-erasures", 0, 10).await.unwrap();
    assert_eq!(erasures.len(), 1);
    // Erasure reaches into backups: a new key-store backup epoch (P4.9, P4.10).
    let backups = p.store().read_stream("ops-backups", 0, 10).await.unwrap();
    assert!(
        backups
            .iter()
            .any(|e| e.event_type == "backup.epoch_rotated"),
        "{backups:?}"
    );
    drop(p);
    let v = mebyo_store::verify::verify_file(
        &mebyo_store::EmbeddedStore::log_path(&tmp.path().join("ledger")),
        mebyo_store::verify::Options {
            progress: &mut |_, _| {},
            person_related: Some(&mebyo_platform::codec::event_type_person_related),
        },
    )
    .unwrap();
    assert!(
        matches!(v, mebyo_store::verify::Outcome::Intact(_)),
        "{v:?}"
    );
}

/// P4.6(2), P4.8(3): reads naming made-up ids, by a person or a provider, get the
/// same refusal as a real person who gave no consent, and leave the ledger as it
/// was (no `access-<id>` stream per guess); a real person's refused read is still
/// recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_made_up_ids_are_refused_and_append_nothing_p4_6_2() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-a", ConnectionClass::IpsecIkeVpn)
        .await
        .unwrap();
    let hanako = world::enroll_individual(&p, &org, &identity(1))
        .await
        .unwrap();
    let taro = world::enroll_individual(&p, &org, &identity(2))
        .await
        .unwrap();
    let refusal = |r: mebyo_platform::Outcome<Vec<_>>| {
        let r = r.unwrap().unwrap_err();
        (r.code, r.clause)
    };
    // The answers on a real person, recorded.
    let before = p.head().count;
    let on_real_by_person = refusal(
        p.read_records(&read(taro.actor(), &hanako.id, Channel::Portal))
            .await,
    );
    let on_real_by_clinic = refusal(
        p.read_records(&read(clinic.actor(), &hanako.id, Channel::ProviderGateway))
            .await,
    );
    assert_eq!(on_real_by_person, ("access.not_own", "P4.6(2)"));
    assert_eq!(on_real_by_clinic, ("consent.none", "P4.6(2)"));
    assert_eq!(
        p.head().count,
        before + 2,
        "a real person's refused reads are recorded"
    );
    // 300 made-up ids: the same answers, nothing appended.
    let head = p.head();
    for i in 0..300 {
        let id = mebyo_domain::PersonId::new(format!("p-made-up-{i:04}")).unwrap();
        assert_eq!(
            refusal(
                p.read_records(&read(taro.actor(), &id, Channel::Portal))
                    .await
            ),
            on_real_by_person
        );
        assert_eq!(
            refusal(
                p.read_records(&read(clinic.actor(), &id, Channel::ProviderGateway))
                    .await
            ),
            on_real_by_clinic
        );
    }
    assert_eq!(p.head(), head, "made-up ids appended to the ledger");
    assert_eq!(p.unknown_person_reads(), 600);
}
