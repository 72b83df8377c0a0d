//! Operations on a real platform (issue 7): anomaly rules opening incidents from
//! generated traffic (P4.4(1)), a theft incident rotating credentials
//! (P4.14(4)②), maintenance notices and the bus hook (P4.3), media approval
//! (P4.7), firewall-review lateness (P4.4(3)) and the synthetic probe (P4.4(2)).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::credential::{CredentialCommand, CredentialStatus, RevocationReason};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_domain::{Actor, Channel, Duration, Timestamp};
use mebyo_operations::anomaly::Rules;
use mebyo_operations::incident::{IncidentCommand, IncidentKind, Source, Step};
use mebyo_operations::maintenance::{Notice, NoticePublisher, PublishError, Service};
use mebyo_operations::media::{MediaCommand, MediaKind, MediaStatus};
use mebyo_operations::monitoring::{Finding, ProbeEvent, ProbeOutcome};
use mebyo_operations::{Digest, IncidentId, MediaId, Reference, WindowId};
use mebyo_operations_service::anomaly::AnomalyWatcher;
use mebyo_operations_service::{
    OpsSettings, background, incidents, maintenance, media, monitoring,
};
use mebyo_platform::world::{self, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::{EventStore, ManualClock, PayloadKind};

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z
const SECOND: i64 = 1_000_000;

fn identity(n: u32) -> IdentityRecord {
    IdentityRecord {
        name: format!("神奈川 次郎{n}"),
        address: format!("横浜市中区日本大通{n}"),
        birth_date: "1975-06-01".into(),
        phone: None,
        email: Some(format!("jiro{n}@example.jp")),
    }
}

async fn platform(dir: &std::path::Path, clock: &ManualClock) -> Platform {
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(11),
        ..Default::default()
    };
    Platform::init(dir, Settings::default(), opts())
        .await
        .unwrap();
    Platform::open(dir, opts()).await.unwrap()
}

fn read(actor: Actor, person: &mebyo_domain::PersonId) -> AccessRequest {
    AccessRequest {
        actor,
        person: person.clone(),
        categories: [Category::Vitals].into_iter().collect::<BTreeSet<_>>(),
        purpose: Purpose::Care,
        channel: Channel::ProviderGateway,
        period: Period {
            from: Timestamp(NOW_US - Duration::days(365).0),
            to: Timestamp(NOW_US + Duration::days(1).0),
        },
    }
}

fn rules() -> Rules {
    Rules {
        burst_refusals: 10,
        burst_window: Duration(60 * SECOND),
        ..Rules::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_1_refused_traffic_and_a_revoked_credential_open_incidents_once() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let prober = world::onboard_provider(&p, &org, "clinic-probing", ConnectionClass::TlsInternet)
        .await
        .unwrap();
    let quiet = world::onboard_provider(&p, &org, "clinic-quiet", ConnectionClass::TlsInternet)
        .await
        .unwrap();
    let mut people = Vec::new();
    for n in 0..12 {
        people.push(
            world::enroll_individual(&p, &org, &identity(n))
                .await
                .unwrap(),
        );
    }
    // A provider walks through people it has no consent for: every read refused.
    for who in &people {
        clock.advance(2 * SECOND);
        let r = p
            .read_records(&read(prober.actor(), &who.id))
            .await
            .unwrap();
        assert_eq!(r.unwrap_err().code, "consent.none");
    }
    // Another provider's few refusals stay under the threshold.
    for who in people.iter().take(3) {
        clock.advance(2 * SECOND);
        let _ = p.read_records(&read(quiet.actor(), &who.id)).await.unwrap();
    }
    let mut w = AnomalyWatcher::new(rules());
    w.catch_up(&p).await.unwrap();
    assert_eq!(w.opened.len(), 1, "{:?}", w.opened);
    let report = incidents::incident_report(&p, &w.opened[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.kind, "unauthorized-access");
    assert_eq!(report.clause, "P4.14(2)");
    assert!(report.source.contains("refusal-burst"), "{}", report.source);
    assert!(report.source.contains("clinic-probing"));
    assert_eq!(report.affected.detected_persons, Some(10));
    assert!(!report.compliant, "nobody has acted on it yet");
    // The incident stream is plaintext and names nobody: counts only.
    let stored = p
        .store()
        .read_stream(&w.opened[0].stream(), 0, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].payload_kind, PayloadKind::Plain);
    for who in &people {
        let text = String::from_utf8_lossy(&stored[0].payload);
        assert!(!text.contains(who.id.as_str()));
    }

    // Replaying the whole log opens nothing new (idempotent).
    let mut again = AnomalyWatcher::new(rules());
    again.catch_up(&p).await.unwrap();
    assert!(again.opened.is_empty(), "{:?}", again.opened);

    // The prefecture revokes the prober's connection info; its next attempt is an incident.
    p.credential(
        &Org::actor(&org.prefecture),
        &prober.credential,
        CredentialCommand::Revoke {
            reason: RevocationReason::JudgedRisk,
        },
    )
    .await
    .unwrap()
    .unwrap();
    clock.advance(3600 * SECOND);
    let r = p
        .read_records(&read(prober.actor(), &people[0].id))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "credential.revoked");
    w.catch_up(&p).await.unwrap();
    assert_eq!(w.opened.len(), 2);
    let revoked = incidents::incident_report(&p, &w.opened[1])
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.source.contains("revoked-credential-use"));
    assert_eq!(incidents::list(&p).await.unwrap().len(), 2);

    // Following the live log: a subscriber sees new traffic and stops on request.
    let p = Arc::new(p);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(AnomalyWatcher::new(rules()).run(p.clone(), async move {
        let _ = stopped.await;
    }));
    clock.advance(24 * 3600 * SECOND);
    let _ = p
        .read_records(&read(prober.actor(), &people[1].id))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while incidents::list(&p).await.unwrap().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "subscriber opened nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    let w = task.await.unwrap().unwrap();
    assert_eq!(
        w.opened.len(),
        1,
        "only the new day's revoked use: {:?}",
        w.opened
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_14_4_theft_rotates_the_stolen_connection_info() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-vpn", ConnectionClass::ClosedIpVpn)
        .await
        .unwrap();
    let hanako = world::enroll_individual(&p, &org, &identity(1))
        .await
        .unwrap();
    let id = IncidentId::new("inc-theft-1").unwrap();
    let office = Org::actor(&org.office);
    let soa = Org::actor(&org.system_operations_administrator);
    let pref = Org::actor(&org.prefecture);
    incidents::incident(
        &p,
        &office,
        &id,
        IncidentCommand::Report {
            incident: id.clone(),
            kind: IncidentKind::TheftOrLoss,
            detected_at: p.now(),
            vpn_used: true,
            contractor: None,
            source: Source::Staff,
        },
    )
    .await
    .unwrap()
    .unwrap();
    let creds = [clinic.credential.clone()];
    // Out of order (no police report yet): refused, and no credential touched.
    let r = incidents::rotate_credentials(&p, &pref, &id, &creds)
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().clause, "P4.14(4)");
    assert_eq!(
        p.credential_state(&clinic.credential).await.unwrap().status,
        CredentialStatus::Active
    );
    clock.advance(600 * SECOND);
    incidents::incident(
        &p,
        &office,
        &id,
        IncidentCommand::RecordStep {
            step: Step::PoliceReport,
            done_at: None,
            reference: Some(Reference::new("kanagawa-pd-0042").unwrap()),
        },
    )
    .await
    .unwrap()
    .unwrap();
    // The administrator cannot revoke connection info (P4.13 is the prefecture's).
    let r = incidents::rotate_credentials(&p, &soa, &id, &creds)
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "staff.role_required");
    assert_eq!(
        p.credential_state(&clinic.credential).await.unwrap().status,
        CredentialStatus::Active
    );
    let rotations = incidents::rotate_credentials(&p, &pref, &id, &creds)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotations.len(), 1);
    assert_eq!(
        p.credential_state(&clinic.credential).await.unwrap().status,
        CredentialStatus::Revoked(RevocationReason::JudgedRisk)
    );
    // The stolen credential no longer works; the new one does (same holder).
    let r = p
        .read_records(&read(clinic.actor(), &hanako.id))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().code, "credential.revoked");
    let fresh = Actor::Provider {
        provider: clinic.id.clone(),
        credential: rotations[0].issued.clone(),
    };
    let r = p.read_records(&read(fresh, &hanako.id)).await.unwrap();
    assert_eq!(
        r.unwrap_err().code,
        "consent.none",
        "authenticated, then consent-gated"
    );
    let report = incidents::incident_report(&p, &id).await.unwrap().unwrap();
    assert_eq!(report.credentials_rotated, rotations);
    let change = report
        .compliance
        .iter()
        .find(|c| c.step == "change-connection-info")
        .unwrap();
    assert_eq!(change.minutes_after_report, Some(10));
    assert_eq!(
        report.missing,
        vec![
            "stop-carrier-line",
            "check-stored-data",
            "report-to-soa",
            "contact-departments",
            "ba-notifies"
        ]
    );
}

#[derive(Default)]
struct Bus(Mutex<Vec<Notice>>);

impl NoticePublisher for Bus {
    fn publish<'a>(
        &'a self,
        notice: &'a Notice,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PublishError>> + Send + 'a>>
    {
        Box::pin(async move {
            self.0.lock().unwrap().push(notice.clone());
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_3_maintenance_lead_time_portal_notices_and_bus() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let settings = OpsSettings::default();
    let om = Org::actor(&org.operations_manager);
    let plan = |id: &str, days: i64| maintenance::Plan {
        window: WindowId::new(id).unwrap(),
        starts_at: p.now() + Duration::days(days),
        ends_at: p.now() + Duration::days(days) + Duration(3 * 3600 * SECOND),
        affects: [Service::Portal, Service::ProviderGateway]
            .into_iter()
            .collect(),
        summary: "サーバ保守のため停止します".into(),
    };
    let r = maintenance::schedule(&p, &settings, &om, plan("w-short", 6))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().clause, "P4.3");
    let before = p.head().count;
    maintenance::schedule(&p, &settings, &om, plan("w-1", 7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.head().count, before + 1);
    assert_eq!(maintenance::notices(&p, p.now()).await.unwrap().len(), 1);
    assert!(
        maintenance::notices(&p, Timestamp(NOW_US - 1))
            .await
            .unwrap()
            .is_empty()
    );
    let bus = Bus::default();
    let sent = maintenance::publish_due(&p, &bus).await.unwrap();
    assert_eq!(sent, vec![WindowId::new("w-1").unwrap()]);
    assert!(maintenance::publish_due(&p, &bus).await.unwrap().is_empty());
    assert_eq!(bus.0.lock().unwrap().len(), 1, "providers told once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_7_media_approval_p4_4_3_reviews_and_p4_4_2_probe() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let p = platform(tmp.path(), &clock).await;
    let org = world::bootstrap_org(&p).await.unwrap();
    let settings = OpsSettings::default();
    let soa = Org::actor(&org.system_operations_administrator);
    let office = Org::actor(&org.office);

    // P4.7(1): the copy needs the administrator's approval first.
    let usb = MediaId::new("usb-0001").unwrap();
    let digest = Digest::new("c".repeat(64)).unwrap();
    let r = media::media(
        &p,
        &office,
        &usb,
        MediaCommand::Issue {
            contents_digest: digest.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r.unwrap_err().clause, "P4.7(1)");
    let approve = MediaCommand::ApproveExport {
        media: usb.clone(),
        kind: MediaKind::UsbMemory,
        contents_digest: digest.clone(),
        custodian: org.office.clone(),
        storage: Reference::new("cabinet-a1").unwrap(),
        purpose: Reference::new("prefecture-report-2026").unwrap(),
    };
    let r = media::media(&p, &office, &usb, approve.clone())
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().clause, "P4.7(1)");
    media::media(&p, &soa, &usb, approve)
        .await
        .unwrap()
        .unwrap();
    media::media(
        &p,
        &office,
        &usb,
        MediaCommand::Issue {
            contents_digest: digest,
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        media::ledger_entry(&p, &usb).await.unwrap().status,
        MediaStatus::Issued
    );

    // P4.4(3): never reviewed is overdue; a review clears it; a week later it is due again.
    assert!(
        monitoring::review_status(&p, &settings)
            .await
            .unwrap()
            .overdue
    );
    monitoring::record_review(
        &p,
        &settings,
        &soa,
        Timestamp(NOW_US - Duration::days(7).0),
        p.now(),
        Finding::NothingFound,
        None,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        !monitoring::review_status(&p, &settings)
            .await
            .unwrap()
            .overdue
    );
    clock.advance(Duration::days(8).0);
    assert!(
        monitoring::review_status(&p, &settings)
            .await
            .unwrap()
            .overdue
    );

    // P4.4(2): the probe reads through the real path and keeps its latency.
    let target = monitoring::enroll_probe_person(&p, &org, Reference::new("probe-portal").unwrap())
        .await
        .unwrap();
    let ticks = std::sync::atomic::AtomicI64::new(0);
    let stopwatch = move || ticks.fetch_add(1500, std::sync::atomic::Ordering::SeqCst);
    let event = monitoring::probe(&p, &target, &stopwatch).await.unwrap();
    let ProbeEvent::Recorded {
        latency_us,
        outcome,
        ..
    } = &event;
    assert_eq!(*latency_us, 1500);
    assert_eq!(*outcome, ProbeOutcome::Ok { records: 0 });
    assert!(event.healthy(settings.probe_slow_ms * 1000));
    assert_eq!(monitoring::last_probe(&p).await.unwrap(), Some(event));
    let probes = p.store().read_stream("ops-probes", 0, 10).await.unwrap();
    assert_eq!(probes[0].payload_kind, PayloadKind::Plain);
    assert!(!String::from_utf8_lossy(&probes[0].payload).contains(target.individual.id.as_str()));
    // The probe's read is an access like any other (P4.5(1)(2)).
    let access = p
        .store()
        .read_stream(&format!("access-{}", target.individual.id), 0, 10)
        .await
        .unwrap();
    assert_eq!(access.len(), 1);

    // What the server runs each tick: notices, probe, review flag.
    let health = background::tick(
        &p,
        &settings,
        Some(&Bus::default()),
        Some(&target),
        &stopwatch,
    )
    .await
    .unwrap();
    assert!(health.firewall_review.overdue);
    assert_eq!(health.probe_healthy, Some(true));
    // P4.5(2): nothing is past a five-year retention; with one day, both probe reads are.
    assert_eq!(
        monitoring::access_records_past_retention(&p, &settings)
            .await
            .unwrap(),
        0
    );
    clock.advance(Duration::days(2).0);
    let short = OpsSettings {
        access_retention_days: 1,
        ..OpsSettings::default()
    };
    assert_eq!(
        monitoring::access_records_past_retention(&p, &short)
            .await
            .unwrap(),
        2
    );
}
