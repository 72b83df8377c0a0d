//! Replay as of a position equals the live projections after exactly that many
//! events (issue 8 §5); decrypting needs an auditor key grant, itself an event;
//! disclosures carry inclusion proofs a person can check independently.

use mebyo_domain::consent::Purpose;
use mebyo_domain::records::Category;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform};
use mebyo_tests::{mebyo, path_str};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_equals_live_projections_and_decryption_needs_a_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    let demo = mebyo(&["demo", "--data", d, "--people", "8", "--seed", "3"]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );

    // The live projections, caught up to the head, then more activity after it.
    let (p0, live_digest, person) = {
        let p = Platform::open(
            &data,
            Options {
                seed: Some(9),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let views = p.start_views();
        let p0 = p.head().count;
        views.caught_up_to(p0).await;
        assert!(views.failed().is_none());
        let digest = hex::encode(blake3::hash(&views.read().snapshot()).as_bytes());
        let person = views.read().registry().counts();
        // The demo erases one of its 8 people: their events no longer decrypt
        // (P4.9), but their envelopes still count (issue 19 §8).
        assert_eq!(
            (person.registered, person.erased),
            (8, 1),
            "{person:?} at {p0}"
        );
        // More activity after p0: another person and a consent.
        let org = world::Org {
            business_administrator: mebyo_domain::StaffId::new("ba-0001").unwrap(),
            operations_manager: mebyo_domain::StaffId::new("om-0001").unwrap(),
            system_operations_administrator: mebyo_domain::StaffId::new("soa-0001").unwrap(),
            office: mebyo_domain::StaffId::new("office-0001").unwrap(),
            prefecture: mebyo_domain::StaffId::new("pref-0001").unwrap(),
            auditor: mebyo_domain::StaffId::new("audit-0001").unwrap(),
        };
        let clinic = world::onboard_provider(
            &p,
            &org,
            "clinic-late",
            mebyo_domain::provider::ConnectionClass::ClosedIpVpn,
        )
        .await
        .unwrap();
        let me = world::enroll_individual(
            &p,
            &org,
            &mebyo_crypto::IdentityRecord {
                name: "後日 追加".into(),
                address: "藤沢市".into(),
                birth_date: "1990-01-01".into(),
                phone: None,
                email: None,
            },
        )
        .await
        .unwrap();
        world::grant_consent(&p, &me, &clinic.id, &[Category::Vitals], Purpose::Care, 30)
            .await
            .unwrap();
        let now = p.now();
        let read = mebyo_domain::access::AccessRequest {
            actor: clinic.actor(),
            person: me.id.clone(),
            categories: [Category::Vitals].into_iter().collect(),
            purpose: Purpose::Care,
            channel: mebyo_domain::Channel::ProviderGateway,
            period: mebyo_domain::consent::Period {
                from: mebyo_domain::Timestamp(now.0 - 86_400_000_000),
                to: now,
            },
        };
        p.read_records(&read).await.unwrap().unwrap();
        views.caught_up_to(p.head().count).await;
        assert_ne!(
            hex::encode(blake3::hash(&views.read().snapshot()).as_bytes()),
            digest
        );
        drop(views);
        (p0, digest, me.id)
    };

    // Without a grant, nothing is decrypted.
    let r = mebyo(&[
        "audit",
        "replay",
        "--data",
        d,
        "--auditor",
        "audit-0001",
        "--as-of",
        &p0.to_string(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("grant"));
    // Only the business administrator grants, and only to an auditor.
    assert_eq!(
        mebyo_tests::audit_grant(d, "audit-0001", "om-0001", &[])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        mebyo_tests::audit_grant(d, "office-0001", "ba-0001", &[])
            .status
            .code(),
        Some(1)
    );
    // Issue 19 §8: every refused attempt above is itself an event.
    {
        let store = mebyo_store::EmbeddedStore::open(
            &data.join("ledger"),
            mebyo_store::OpenOptions::default(),
        )
        .unwrap()
        .store;
        use mebyo_store::EventStore;
        let grants = store.read_stream("audit-grants", 0, 100).await.unwrap();
        let refused: Vec<serde_json::Value> = grants
            .iter()
            .filter(|e| e.event_type == "audit.grant_refused")
            .map(|e| serde_json::from_slice(&e.payload).unwrap())
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0]["by"], "om-0001");
        // The operations manager is not the business administrator (P3.1(1)).
        assert_eq!(refused[0]["clause"], "P3.1(1)");
        assert_eq!(refused[0]["code"], "audit_grant.not_business_administrator");
        assert_eq!(refused[1]["auditor"], "office-0001");
        assert_eq!(refused[1]["clause"], "P4.6(2)");
        assert_eq!(refused[1]["code"], "audit_grant.not_auditor");
        let uses = store.read_stream("audit-key-uses", 0, 100).await.unwrap();
        let types: Vec<&str> = uses.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            ["audit.key_use_refused"],
            "the replay without a grant"
        );
        assert_eq!(uses[0].actor.id, "audit-0001");
    }
    assert!(
        mebyo_tests::audit_grant(d, "audit-0001", "ba-0001", &[])
            .status
            .success()
    );

    let r = mebyo(&[
        "audit",
        "replay",
        "--data",
        d,
        "--auditor",
        "audit-0001",
        "--as-of",
        &p0.to_string(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v = json(&r);
    assert_eq!(v["position"], p0);
    // An erased person is part of what happened: counted, as erased.
    assert_eq!(v["people"]["registered"], 8, "{v}");
    assert_eq!(v["people"]["erased"], 1, "{v}");
    assert_eq!(
        v["models_blake3"], live_digest,
        "replay as of {p0} equals the live projections after {p0} events"
    );

    // Disclosures with inclusion proofs against a signed checkpoint.
    assert!(
        mebyo(&["audit", "checkpoint", "--data", d])
            .status
            .success()
    );
    let out = tmp.path().join("disclosures.json");
    let r = mebyo(&[
        "audit",
        "disclosures",
        "--data",
        d,
        "--auditor",
        "audit-0001",
        "--person",
        person.as_str(),
        "--out",
        path_str(&out),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(!list.is_empty());
    let vkey_text = std::fs::read_to_string(data.join("keys/checkpoint.vkey")).unwrap();
    let vkey = mebyo_tlog::note::NoteVerifier::from_vkey(vkey_text.trim()).unwrap();
    for item in &list {
        assert_eq!(item["access"]["person"], person.as_str());
        let bundle: mebyo_tlog::InclusionBundle =
            serde_json::from_value(item["inclusion_proof"].clone()).expect("a proof for each");
        mebyo_tlog::verify_bundle(&mebyo_tlog::ProofBundle::Inclusion(bundle), &vkey)
            .expect("the proof verifies independently");
    }

    // Every use of the grant is itself recorded; the chain still verifies.
    let fhir = tmp.path().join("audit.ndjson");
    assert!(
        mebyo(&[
            "audit",
            "export-fhir",
            "--data",
            d,
            "--auditor",
            "audit-0001",
            "--out",
            path_str(&fhir)
        ])
        .status
        .success()
    );
    let lines = std::fs::read_to_string(&fhir).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["resourceType"], "AuditEvent");
    let verify = mebyo(&["audit", "verify", "--data", d]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
