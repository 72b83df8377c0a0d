//! One person's concurrent commands all succeed (issue 22 §9): commands on one
//! stream take turns inside the process, so legitimate concurrency never runs out
//! of optimistic retries. Against the real embedded store, key store and vault.

use std::sync::Arc;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::consent::Purpose;
use mebyo_domain::records::{Category, Origin, RecordCommand, Submission};
use mebyo_domain::{RecordId, Timestamp};
use mebyo_platform::world::{self, Individual};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::ManualClock;

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z

async fn setup(dir: &std::path::Path) -> (Arc<Platform>, Individual, world::OnboardedProvider) {
    let clock = ManualClock::new(NOW_US);
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(11),
        ..Default::default()
    };
    Platform::init(dir, Settings::default(), opts())
        .await
        .unwrap();
    let p = Platform::open(dir, opts()).await.unwrap();
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(
        &p,
        &org,
        "clinic-a",
        mebyo_domain::provider::ConnectionClass::IpsecIkeVpn,
    )
    .await
    .unwrap();
    let who = world::enroll_individual(
        &p,
        &org,
        &IdentityRecord {
            name: "神奈川 花子".into(),
            address: "横浜市中区日本大通1".into(),
            birth_date: "1980-04-01".into(),
            phone: None,
            email: Some("hanako@example.jp".into()),
        },
    )
    .await
    .unwrap();
    world::grant_consent(&p, &who, &clinic.id, &[Category::Vitals], Purpose::Care, 30)
        .await
        .unwrap();
    (Arc::new(p), who, clinic)
}

fn submission(p: &Platform, who: &Individual, i: u32, origin: Origin) -> Submission {
    let at = Timestamp(NOW_US - 3_600_000_000 - i64::from(i));
    Submission {
        record: RecordId::new(p.new_id("rec")).unwrap(),
        category: Category::Vitals,
        effective_at: at,
        resource: world::blood_pressure(&who.id, 120 + i % 40, 80, at),
        // Medical-institution data names its original at the creator (P5.1).
        original_identifier: (origin == Origin::MedicalInstitution).then(|| format!("lab-{i}")),
        origin,
        created_by: None,
    }
}

/// `n` commands for one person at once, half of them as the bus submits them
/// (`records_then`, the provider), half as the portal does (`records`, the person).
async fn one_persons_writes_all_succeed(n: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let (p, who, clinic) = setup(tmp.path()).await;
    let before = p.records_state(&who.id).await.unwrap().current().count();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (p, who, clinic) = (p.clone(), who.clone(), clinic.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let s = submission(&p, &who, i, Origin::SelfEntered);
                    p.records(&who.actor(), &who.id, RecordCommand::Submit(s))
                        .await
                } else {
                    let s = submission(&p, &who, i, Origin::MedicalInstitution);
                    p.records_then(&clinic.actor(), &who.id, RecordCommand::Submit(s), |_| {
                        None::<(String, mebyo_domain::Actor, mebyo_platform::ErasureRecord)>
                    })
                    .await
                }
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(Ok(events)) => assert_eq!(events.len(), 1, "command {i}"),
            other => panic!("command {i} of {n} for one person failed: {other:?}"),
        }
    }
    let after = p.records_state(&who.id).await.unwrap().current().count();
    assert_eq!(after, before + n as usize, "every record is there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_writes_for_one_person_all_succeed() {
    one_persons_writes_all_succeed(16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_writes_for_one_person_all_succeed() {
    one_persons_writes_all_succeed(64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consents_of_one_person_all_succeed_p4_6_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, who, clinic) = setup(tmp.path()).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (p, who, clinic) = (p.clone(), who.clone(), clinic.clone());
            tokio::spawn(async move {
                world::grant_consent(&p, &who, &clinic.id, &[Category::Vitals], Purpose::Care, 30)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("a consent grant of one person among 16 at once");
    }
    assert_eq!(p.person_state(&who.id).await.unwrap().consents.len(), 17);
}
