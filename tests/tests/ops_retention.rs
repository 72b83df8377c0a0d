//! Access-record retention on a platform with an injected clock (P4.5(2)): the
//! server's running count of records past retention agrees with a full scan at
//! every step, moves only when the clock crosses a record's retention (kept for
//! exactly the configured days, not a microsecond less), and leaves the records
//! themselves in the chain.

use std::collections::BTreeSet;
use std::sync::Arc;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::{Channel, Timestamp};
use mebyo_operations_service::OpsSettings;
use mebyo_operations_service::monitoring::{
    ACCESS_EVENT, RetentionWatch, access_records_past_retention,
};
use mebyo_platform::world::{self, Individual};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::{EventStore, ManualClock};

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z
const DAY: i64 = 86_400_000_000;

fn read(who: &Individual, now: i64) -> AccessRequest {
    AccessRequest {
        actor: who.actor(),
        person: who.id.clone(),
        categories: Platform::all_categories()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        purpose: Purpose::PersonalUse,
        channel: Channel::Portal,
        period: Period {
            from: Timestamp(now - DAY),
            to: Timestamp(now + DAY),
        },
    }
}

async fn access_events(p: &Platform) -> u64 {
    let mut n = 0;
    let mut from = 0;
    loop {
        let page = p.store().read_all(from, 1024).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        n += page.iter().filter(|e| e.event_type == ACCESS_EVENT).count() as u64;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_5_2_the_running_count_of_access_records_past_retention_matches_a_full_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(5),
        ..Default::default()
    };
    Platform::init(tmp.path(), Settings::default(), opts())
        .await
        .unwrap();
    let p = Platform::open(tmp.path(), opts()).await.unwrap();
    let org = world::bootstrap_org(&p).await.unwrap();
    let who = world::enroll_individual(
        &p,
        &org,
        &IdentityRecord {
            name: "神奈川 花子".into(),
            address: "横浜市".into(),
            birth_date: "1980-01-01".into(),
            phone: None,
            email: None,
        },
    )
    .await
    .unwrap();
    let settings = OpsSettings {
        access_retention_days: 10,
        ..OpsSettings::default()
    };

    // Three reads a day apart: days 0, 1 and 2.
    for day in 0..3 {
        clock.set(NOW_US + day * DAY);
        p.read_records(&read(&who, NOW_US + day * DAY))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(access_events(&p).await, 3);

    let mut watch = RetentionWatch::default();
    // (clock, records past a 10-day retention then)
    for (at, expected) in [
        (NOW_US + 2 * DAY, 0),
        // One microsecond short of ten days after the first read: still kept.
        (NOW_US + 10 * DAY - 1, 0),
        (NOW_US + 10 * DAY, 1),
        (NOW_US + 11 * DAY + DAY / 2, 2),
        // A later read is recorded at the new now and is within retention.
        (NOW_US + 12 * DAY, 3),
    ] {
        clock.set(at);
        if at == NOW_US + 12 * DAY {
            p.read_records(&read(&who, at)).await.unwrap().unwrap();
        }
        assert_eq!(
            watch.update(&p, &settings).await.unwrap(),
            expected,
            "at day {}",
            (at - NOW_US) as f64 / DAY as f64
        );
        assert_eq!(
            access_records_past_retention(&p, &settings).await.unwrap(),
            expected,
            "a full scan agrees"
        );
        // Asking again at the same time changes nothing.
        assert_eq!(watch.update(&p, &settings).await.unwrap(), expected);
    }
    // Everything before the watch's position is past retention; nothing was removed.
    let before = watch.past_retention_before();
    let first_kept = p.store().read_all(before, 1).await.unwrap();
    assert!(first_kept[0].recorded_at_us > NOW_US + 2 * DAY);
    assert_eq!(access_events(&p).await, 4, "the chain keeps every record");
    clock.set(NOW_US + 30 * DAY);
    assert_eq!(watch.update(&p, &settings).await.unwrap(), 4);
}
