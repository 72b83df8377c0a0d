//! P4.4(1): anomaly rules over access events decide to open incidents, with ids
//! that repeat when the log is replayed.

use crate::anomaly::{Detector, Observation, Rules, refusal_burst, volume_spike};
use crate::incident::{AnomalyRule, Incident, IncidentCommand, IncidentKind};
use crate::testkit::*;
use mebyo_domain::{CredentialId, Duration, PersonId, ProviderId, Timestamp};

fn obs(at: Timestamp, provider: &str, person: u32, refusal: Option<&str>) -> Observation {
    Observation {
        at,
        provider: Some(ProviderId::new(provider).unwrap()),
        credential: Some(CredentialId::new(format!("cred-{provider}")).unwrap()),
        person: PersonId::new(format!("p-{person}")).unwrap(),
        granted: refusal.is_none(),
        refusal_code: refusal.map(str::to_string),
    }
}

fn rules() -> Rules {
    Rules {
        burst_refusals: 5,
        burst_window: Duration(60 * 1_000_000),
        spike_factor: 3,
        spike_bucket: Duration(3600 * 1_000_000),
        spike_trailing: 4,
        spike_min: 10,
    }
}

#[test]
fn pure_rules() {
    let t = |s: i64| Timestamp(s * 1_000_000);
    let w = Duration(60 * 1_000_000);
    assert!(refusal_burst(&[t(0), t(10), t(59)], 3, w));
    assert!(!refusal_burst(&[t(0), t(10), t(60)], 3, w));
    assert!(!refusal_burst(&[t(0), t(1)], 3, w));
    assert!(volume_spike(31, &[10, 10, 10], 3, 10));
    assert!(!volume_spike(30, &[10, 10, 10], 3, 10));
    assert!(!volume_spike(9, &[0, 0], 3, 10), "below the floor");
}

#[test]
fn p4_4_1_a_burst_of_refusals_opens_one_incident() {
    let mut d = Detector::new(rules());
    let mut opened = Vec::new();
    for i in 0..12 {
        opened.extend(d.observe(&obs(
            mins(0) + Duration(i * 3_000_000),
            "clinic",
            i as u32,
            Some("consent.none"),
        )));
    }
    // (Twelve reads in an hour from a provider with no history also trip the
    // volume rule's floor; only the burst matters here.)
    opened.retain(|o| o.rule == AnomalyRule::RefusalBurst);
    assert_eq!(opened.len(), 1, "{opened:?}");
    let o = &opened[0];
    assert_eq!(o.rule, AnomalyRule::RefusalBurst);
    assert_eq!(o.evidence.events, 5);
    assert_eq!(o.evidence.persons, 5);
    // Another provider's refusals do not count toward this one's burst.
    let mut d2 = Detector::new(rules());
    for i in 0..4 {
        assert!(
            d2.observe(&obs(mins(i), "a", 0, Some("consent.none")))
                .is_empty()
        );
        assert!(
            d2.observe(&obs(mins(i), "b", 0, Some("consent.none")))
                .is_empty()
        );
    }
    // Replaying the same traffic gives the same incident id (idempotent opening).
    let mut again = Detector::new(rules());
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.extend(again.observe(&obs(
            mins(0) + Duration(i * 3_000_000),
            "clinic",
            i as u32,
            Some("consent.none"),
        )));
    }
    ids.retain(|o| o.rule == AnomalyRule::RefusalBurst);
    assert_eq!(ids[0].incident, o.incident);
    // The decision is a report by the platform that the incident decider accepts.
    let env = Env::new();
    let cmd = o.command();
    assert!(matches!(
        cmd,
        IncidentCommand::Report {
            kind: IncidentKind::UnauthorizedAccess,
            ..
        }
    ));
    let h = check::<Incident>(
        &env.system(mins(1)),
        &[],
        cmd.clone(),
        Types(&["incident.reported"]),
    );
    check::<Incident>(
        &env.system(mins(1)),
        &h,
        cmd,
        Refused("incident.already_reported", "P4.14(1)"),
    );
}

#[test]
fn p4_4_1_volume_far_above_the_norm() {
    let mut d = Detector::new(rules());
    let hour = 60;
    let mut opened = Vec::new();
    // Four quiet hours of 5 reads each…
    for h in 0..4 {
        for i in 0..5 {
            opened.extend(d.observe(&obs(mins(h * hour + i), "app", 1, None)));
        }
    }
    assert!(opened.is_empty());
    // …then 16 in an hour: above 3 × 5.
    for i in 0..20 {
        opened.extend(d.observe(&obs(mins(4 * hour + i), "app", 1, None)));
    }
    assert_eq!(opened.len(), 1, "once per bucket: {opened:?}");
    assert_eq!(opened[0].rule, AnomalyRule::VolumeSpike);
    assert_eq!(opened[0].evidence.events, 16);
}

#[test]
fn p4_4_1_any_use_of_a_revoked_credential() {
    let mut d = Detector::new(rules());
    let first = d.observe(&obs(T0, "clinic", 1, Some("credential.revoked")));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].rule, AnomalyRule::RevokedCredentialUse);
    assert!(
        d.observe(&obs(mins(5), "clinic", 2, Some("credential.revoked")))
            .is_empty(),
        "one per credential per day"
    );
    assert_eq!(
        d.observe(&obs(days(1), "clinic", 2, Some("credential.revoked")))
            .len(),
        1
    );
    // Other refusals do not trip this rule.
    assert!(
        d.observe(&obs(days(2), "other", 2, Some("credential.expired")))
            .is_empty()
    );
}
