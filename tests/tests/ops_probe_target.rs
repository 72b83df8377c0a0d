//! The server's synthetic probe person (P4.4(2)) on a platform with an injected
//! clock: enrolled once and found again from `DATA/operations-probe.json`; no
//! half-enrolled person when the office desk is missing; a damaged file is an
//! error, never a reason to enrol another; the file holds no identity.

use std::sync::Arc;

use mebyo_operations::Reference;
use mebyo_operations::monitoring::ProbeOutcome;
use mebyo_operations_service::monitoring::{PROBE_FILE, probe, probe_target};
use mebyo_platform::world::{self, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::{EventStore, ManualClock};

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z

async fn registrations(p: &Platform) -> usize {
    let mut n = 0;
    let mut from = 0;
    loop {
        let page = p.store().read_all(from, 1024).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        n += page
            .iter()
            .filter(|e| e.event_type == "person.registered")
            .count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_2_the_probe_person_is_enrolled_once_and_found_again() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(9),
        ..Default::default()
    };
    Platform::init(tmp.path(), Settings::default(), opts())
        .await
        .unwrap();
    let p = Platform::open(tmp.path(), opts()).await.unwrap();
    let name = || Reference::new("probe-read-path").unwrap();
    let org = Org {
        business_administrator: p.config().business_administrator.clone(),
        operations_manager: mebyo_domain::StaffId::new("om-0001").unwrap(),
        system_operations_administrator: mebyo_domain::StaffId::new("soa-0001").unwrap(),
        office: mebyo_domain::StaffId::new("office-0001").unwrap(),
        prefecture: mebyo_domain::StaffId::new("pref-0001").unwrap(),
        auditor: mebyo_domain::StaffId::new("audit-0001").unwrap(),
    };

    // No staff chain yet: refused up front, nothing registered, no file.
    let e = probe_target(&p, &org, name()).await.unwrap_err();
    assert!(e.to_string().contains("P4.4(2)"), "{e}");
    assert_eq!(registrations(&p).await, 0);
    assert!(!tmp.path().join(PROBE_FILE).exists());

    let org = world::bootstrap_org(&p).await.unwrap();
    let first = probe_target(&p, &org, name()).await.unwrap();
    assert_eq!(registrations(&p).await, 1);
    let file = std::fs::read_to_string(tmp.path().join(PROBE_FILE)).unwrap();
    assert!(file.contains(first.individual.id.as_str()));
    assert!(
        !file.contains("synthetic probe"),
        "no identity at rest: {file}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tmp.path().join(PROBE_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0);

    // Found again (a restart): the same person, nothing new in the log.
    let again = probe_target(&p, &org, name()).await.unwrap();
    assert_eq!(again.individual.id, first.individual.id);
    assert_eq!(again.individual.credential, first.individual.credential);
    assert_eq!(registrations(&p).await, 1);
    // ...and it reads through the real path.
    let stopwatch = || 0i64;
    let ev = probe(&p, &again, &stopwatch).await.unwrap();
    let mebyo_operations::monitoring::ProbeEvent::Recorded { outcome, .. } = ev;
    assert!(matches!(outcome, ProbeOutcome::Ok { .. }), "{outcome:?}");

    // A file naming another probe, or a damaged one, is an error: no new person.
    let other = probe_target(&p, &org, Reference::new("probe-other").unwrap())
        .await
        .unwrap_err();
    assert!(other.to_string().contains("probe-read-path"), "{other}");
    std::fs::write(tmp.path().join(PROBE_FILE), b"{ not json").unwrap();
    assert!(probe_target(&p, &org, name()).await.is_err());
    assert_eq!(registrations(&p).await, 1);
}
