//! P4.14: each incident type walked through its runbook; steps out of order or by
//! the wrong role refused with the clause.

use crate::ids::{IncidentId, Reference};
use crate::incident::{
    Assessment, Incident, IncidentCommand as C, IncidentEvent, IncidentKind as K, Level,
    NotifyTarget, Rotation, Source, Step, runbook,
};
use crate::report::{StepStatus, report};
use crate::testkit::*;
use mebyo_domain::CredentialId;
use mebyo_domain::staff::Role;

fn iid() -> IncidentId {
    IncidentId::new("inc-1").unwrap()
}

fn report_cmd(kind: K) -> C {
    C::Report {
        incident: iid(),
        kind,
        detected_at: mins(-5),
        vpn_used: kind == K::TheftOrLoss,
        contractor: (kind == K::Contractor).then(|| Reference::new("acme-contract-2025").unwrap()),
        source: Source::Staff,
    }
}

fn step(s: Step) -> C {
    C::RecordStep {
        step: s,
        done_at: None,
        reference: None,
    }
}

/// Reported at T0 by the office.
fn reported(env: &Env, kind: K) -> Vec<IncidentEvent> {
    check::<Incident>(
        &env.ctx("office", T0),
        &[],
        report_cmd(kind),
        Types(&["incident.reported"]),
    )
}

fn done(env: &Env, h: Vec<IncidentEvent>, who: &str, at: i64, s: Step) -> Vec<IncidentEvent> {
    check::<Incident>(
        &env.ctx(who, mins(at)),
        &h,
        step(s),
        Types(&["incident.step_recorded"]),
    )
}

#[test]
fn p4_14_1_anyone_on_the_staff_reports_but_not_twice_and_not_as_an_auditor() {
    let env = Env::new();
    let h = check::<Incident>(
        &env.ctx("office", T0),
        &[],
        report_cmd(K::Other),
        Events(vec![IncidentEvent::Reported {
            incident: iid(),
            kind: K::Other,
            detected_at: mins(-5),
            vpn_used: false,
            contractor: None,
            source: Source::Staff,
            by: crate::incident::Reporter::Staff {
                staff: sid("office"),
                role: Role::OperationsOffice,
            },
            at: T0,
        }]),
    );
    check::<Incident>(
        &env.ctx("soa", T0),
        &h,
        report_cmd(K::Other),
        Refused("incident.already_reported", "P4.14(1)"),
    );
    check::<Incident>(
        &env.ctx("audit", T0),
        &[],
        report_cmd(K::Other),
        Refused("staff.role_required", "P4.14(1)"),
    );
    // The platform reports only detections; staff cannot claim to be the detector.
    check::<Incident>(
        &env.system(T0),
        &[],
        report_cmd(K::Other),
        Refused("incident.reporter", "P4.14(1)"),
    );
    let detected = C::Report {
        incident: iid(),
        kind: K::UnauthorizedAccess,
        detected_at: T0,
        vpn_used: false,
        contractor: None,
        source: Source::Detected {
            rule: crate::incident::AnomalyRule::RefusalBurst,
            provider: None,
            credential: None,
            evidence: crate::incident::Evidence {
                events: 20,
                persons: 20,
                from: mins(-3),
                to: T0,
            },
        },
    };
    check::<Incident>(
        &env.ctx("soa", T0),
        &[],
        detected.clone(),
        Refused("incident.reporter", "P4.4(1)"),
    );
    check::<Incident>(
        &env.system(T0),
        &[],
        detected,
        Types(&["incident.reported"]),
    );
    // Detected in the future, VPN for a non-theft, contractor without a contract.
    let future = C::Report {
        incident: iid(),
        kind: K::Other,
        detected_at: mins(1),
        vpn_used: false,
        contractor: None,
        source: Source::Staff,
    };
    check::<Incident>(
        &env.ctx("office", T0),
        &[],
        future,
        Refused("incident.detected_in_future", "P4.14(1)"),
    );
    let vpn = C::Report {
        incident: iid(),
        kind: K::Malware,
        detected_at: T0,
        vpn_used: true,
        contractor: None,
        source: Source::Staff,
    };
    check::<Incident>(
        &env.ctx("office", T0),
        &[],
        vpn,
        Refused("incident.vpn_not_applicable", "P4.14(4)"),
    );
    let no_contract = C::Report {
        incident: iid(),
        kind: K::Contractor,
        detected_at: T0,
        vpn_used: false,
        contractor: None,
        source: Source::Staff,
    };
    check::<Incident>(
        &env.ctx("office", T0),
        &[],
        no_contract,
        Refused("incident.contractor", "P4.14(5)"),
    );
    // Nothing happens to an incident never reported.
    check::<Incident>(
        &env.ctx("soa", T0),
        &[],
        step(Step::ReportToSoa),
        Refused("incident.unknown", "P4.14(1)"),
    );
}

#[test]
fn p4_14_2_unauthorised_access_runbook() {
    let env = Env::new();
    let h = reported(&env, K::UnauthorizedAccess);
    // ② before ①: the device is disconnected first.
    check::<Incident>(
        &env.ctx("soa", mins(1)),
        &h,
        step(Step::ReportToSoa),
        Refused("incident.step_out_of_order", "P4.14(2)"),
    );
    // A step from another type's runbook.
    check::<Incident>(
        &env.ctx("office", mins(1)),
        &h,
        step(Step::PoliceReport),
        Refused("incident.step_not_in_runbook", "P4.14(2)"),
    );
    // Auditors stay independent.
    check::<Incident>(
        &env.ctx("audit", mins(1)),
        &h,
        step(Step::DisconnectDevice),
        Refused("staff.role_required", "P4.14(2)"),
    );
    let h = done(&env, h, "office", 1, Step::DisconnectDevice);
    check::<Incident>(
        &env.ctx("office", mins(1)),
        &h,
        step(Step::DisconnectDevice),
        Refused("incident.step_done", "P4.14(2)"),
    );
    let h = done(&env, h, "office", 2, Step::PreserveServer);
    // ② is the administrator's: the office cannot record that the administrator knows.
    check::<Incident>(
        &env.ctx("office", mins(3)),
        &h,
        step(Step::ReportToSoa),
        Refused("staff.role_required", "P4.14(2)"),
    );
    // ③ before ②.
    check::<Incident>(
        &env.ctx("soa", mins(3)),
        &h,
        step(Step::EscalateToOm),
        Refused("incident.step_out_of_order", "P4.14(2)"),
    );
    let h = done(&env, h, "soa", 4, Step::ReportToSoa);
    // ③ is the administrator's contact, not the manager's own.
    check::<Incident>(
        &env.ctx("om", mins(5)),
        &h,
        step(Step::EscalateToOm),
        Refused("staff.role_required", "P4.14(2)"),
    );
    // Closing with steps missing is refused, citing the missing step's clause.
    check::<Incident>(
        &env.ctx("soa", mins(5)),
        &h,
        C::Close,
        Refused("incident.step_missing", "P4.14(2)"),
    );
    let h = done(&env, h, "soa", 6, Step::EscalateToOm);
    check::<Incident>(
        &env.ctx("soa", mins(7)),
        &h,
        C::Close,
        Refused("incident.step_missing", "P4.14(1)"),
    );
    let h = done(&env, h, "om", 30, Step::ContactDepartments);
    let h = check::<Incident>(
        &env.ctx("om", mins(40)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    check::<Incident>(
        &env.ctx("soa", mins(41)),
        &h,
        step(Step::DisconnectDevice),
        Refused("incident.closed", "P4.14(2)"),
    );
    let r = report(&h).unwrap();
    assert!(r.compliant, "{r:?}");
    assert_eq!(r.status, "closed");
    assert_eq!(r.escalation_level, Some(Level::OperationsManager));
    let soa = r
        .compliance
        .iter()
        .find(|c| c.step == "report-to-soa")
        .unwrap();
    assert_eq!(soa.minutes_after_report, Some(4));
    assert_eq!(soa.clause, "P4.14(2)");
}

#[test]
fn p4_14_3_malware_runbook_needs_an_assessment_and_a_leak_notice() {
    let env = Env::new();
    let h = reported(&env, K::Malware);
    let h = done(&env, h, "office", 1, Step::DisconnectPc);
    let h = done(&env, h, "soa", 2, Step::ReportToSoa);
    let h = done(&env, h, "soa", 3, Step::EscalateToOm);
    let h = done(&env, h, "soa", 4, Step::ContactDepartments);
    // Whether ④ applies is unknown until assessed: closing is refused.
    check::<Incident>(
        &env.ctx("soa", mins(5)),
        &h,
        C::Close,
        Refused("incident.assessment_missing", "P4.14(3)"),
    );
    let r = report(&h).unwrap();
    assert_eq!(r.missing, vec!["notify-leak"]);
    // Assessment by the office is refused; by the administrator accepted.
    let leak = Assessment {
        leak_possible: true,
        individuals_data: true,
        individuals_affected: 12,
        records_affected: 40,
    };
    check::<Incident>(
        &env.ctx("office", mins(6)),
        &h,
        C::Assess(leak),
        Refused("staff.role_required", "P4.14(3)"),
    );
    let bad = Assessment {
        individuals_data: false,
        ..leak
    };
    check::<Incident>(
        &env.ctx("soa", mins(6)),
        &h,
        C::Assess(bad),
        Refused("incident.assessment_inconsistent", "P4.14(3)"),
    );
    let h = check::<Incident>(
        &env.ctx("soa", mins(6)),
        &h,
        C::Assess(leak),
        Types(&["incident.assessed"]),
    );
    check::<Incident>(
        &env.ctx("soa", mins(7)),
        &h,
        C::Close,
        Refused("incident.step_missing", "P4.14(3)"),
    );
    let h = done(&env, h, "om", 8, Step::NotifyLeak);
    let h = check::<Incident>(
        &env.ctx("ba", mins(9)),
        &h,
        C::Notify {
            target: NotifyTarget::Individuals,
            count: 12,
            reference: None,
        },
        Types(&["incident.notified"]),
    );
    check::<Incident>(
        &env.ctx("ba", mins(9)),
        &h,
        C::Notify {
            target: NotifyTarget::Individuals,
            count: 0,
            reference: None,
        },
        Refused("incident.notify_count", "P4.14(3)"),
    );
    let h = check::<Incident>(
        &env.ctx("soa", mins(10)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    let r = report(&h).unwrap();
    assert!(r.compliant);
    assert_eq!(r.affected.individuals, 12);
    assert_eq!(
        r.notifications.len(),
        3,
        "departments, leak, individuals: {:?}",
        r.notifications
    );
}

#[test]
fn p4_14_3_no_leak_no_notice_needed() {
    let env = Env::new();
    let h = reported(&env, K::Malware);
    let h = done(&env, h, "office", 1, Step::DisconnectPc);
    let h = done(&env, h, "soa", 2, Step::ReportToSoa);
    let h = done(&env, h, "soa", 3, Step::EscalateToOm);
    let h = done(&env, h, "om", 4, Step::ContactDepartments);
    let h = check::<Incident>(
        &env.ctx("om", mins(5)),
        &h,
        C::Assess(Assessment::default()),
        Types(&["incident.assessed"]),
    );
    let h = check::<Incident>(
        &env.ctx("om", mins(6)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    let r = report(&h).unwrap();
    assert!(r.compliant);
    let leak = r
        .compliance
        .iter()
        .find(|c| c.step == "notify-leak")
        .unwrap();
    assert_eq!(leak.status, StepStatus::NotRequired);
}

#[test]
fn p4_14_4_theft_runbook_with_rotation_check_and_head_notification() {
    let env = Env::new();
    let h = reported(&env, K::TheftOrLoss);
    // ② waits for ①.
    check::<Incident>(
        &env.ctx("office", mins(1)),
        &h,
        step(Step::StopCarrierLine),
        Refused("incident.step_out_of_order", "P4.14(4)"),
    );
    let h = check::<Incident>(
        &env.ctx("office", mins(30)),
        &h,
        C::RecordStep {
            step: Step::PoliceReport,
            done_at: Some(mins(20)),
            reference: Some(Reference::new("kanagawa-pd-2026-0042").unwrap()),
        },
        Types(&["incident.step_recorded"]),
    );
    // A step dated before the incident was detected, or in the future.
    check::<Incident>(
        &env.ctx("office", mins(31)),
        &h,
        C::RecordStep {
            step: Step::StopCarrierLine,
            done_at: Some(mins(-10)),
            reference: None,
        },
        Refused("incident.step_time", "P4.14(4)"),
    );
    check::<Incident>(
        &env.ctx("office", mins(31)),
        &h,
        C::RecordStep {
            step: Step::StopCarrierLine,
            done_at: Some(mins(32)),
            reference: None,
        },
        Refused("incident.step_time", "P4.14(4)"),
    );
    let h = done(&env, h, "office", 35, Step::StopCarrierLine);
    let rot = vec![Rotation {
        revoked: CredentialId::new("c-old").unwrap(),
        issued: CredentialId::new("c-new").unwrap(),
    }];
    // Only the prefecture revokes connection information (P4.13), so only it records the change.
    check::<Incident>(
        &env.ctx("soa", mins(40)),
        &h,
        C::RecordRotation {
            rotations: rot.clone(),
        },
        Refused("staff.role_required", "P4.14(4)"),
    );
    check::<Incident>(
        &env.ctx("pref", mins(40)),
        &h,
        C::RecordRotation { rotations: vec![] },
        Refused("incident.rotation_empty", "P4.14(4)"),
    );
    // The check of stored data is the assessment; marking it without one is refused.
    check::<Incident>(
        &env.ctx("office", mins(41)),
        &h,
        step(Step::CheckStoredData),
        Refused("incident.step_out_of_order", "P4.14(4)"),
    );
    let h = check::<Incident>(
        &env.ctx("pref", mins(40)),
        &h,
        C::RecordRotation {
            rotations: rot.clone(),
        },
        Types(&["incident.credentials_rotated", "incident.step_recorded"]),
    );
    check::<Incident>(
        &env.ctx("office", mins(41)),
        &h,
        step(Step::CheckStoredData),
        Refused("incident.assessment_missing", "P4.14(4)"),
    );
    let a = Assessment {
        leak_possible: true,
        individuals_data: true,
        individuals_affected: 3,
        records_affected: 9,
    };
    let h = check::<Incident>(
        &env.ctx("soa", mins(42)),
        &h,
        C::Assess(a),
        Types(&["incident.assessed"]),
    );
    // ③ report waits for the check.
    check::<Incident>(
        &env.ctx("soa", mins(43)),
        &h,
        step(Step::ReportToSoa),
        Refused("incident.step_out_of_order", "P4.14(4)"),
    );
    let h = done(&env, h, "office", 44, Step::CheckStoredData);
    let h = done(&env, h, "soa", 45, Step::ReportToSoa);
    // ④ is the business administrator's, nobody else's.
    check::<Incident>(
        &env.ctx("om", mins(50)),
        &h,
        step(Step::BusinessAdministratorNotifies),
        Refused("staff.role_required", "P4.14(4)"),
    );
    let h = done(&env, h, "ba", 60, Step::BusinessAdministratorNotifies);
    let h = done(&env, h, "soa", 61, Step::ContactDepartments);
    let h = check::<Incident>(
        &env.ctx("soa", mins(70)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    let r = report(&h).unwrap();
    assert!(r.compliant, "{:?}", r.missing);
    assert_eq!(r.credentials_rotated, rot);
    let police = r
        .compliance
        .iter()
        .find(|c| c.step == "police-report")
        .unwrap();
    assert_eq!(police.minutes_after_report, Some(20));
    assert_eq!(police.reference.as_deref(), Some("kanagawa-pd-2026-0042"));
}

#[test]
fn p4_14_4_without_vpn_no_rotation_is_required() {
    let env = Env::new();
    let h = check::<Incident>(
        &env.ctx("office", T0),
        &[],
        C::Report {
            incident: iid(),
            kind: K::TheftOrLoss,
            detected_at: T0,
            vpn_used: false,
            contractor: None,
            source: Source::Staff,
        },
        Types(&["incident.reported"]),
    );
    let h = done(&env, h, "office", 1, Step::PoliceReport);
    let h = check::<Incident>(
        &env.ctx("soa", mins(2)),
        &h,
        C::Assess(Assessment::default()),
        Types(&["incident.assessed"]),
    );
    let h = done(&env, h, "office", 3, Step::CheckStoredData);
    let h = done(&env, h, "soa", 4, Step::ReportToSoa);
    let h = done(&env, h, "soa", 5, Step::ContactDepartments);
    let h = check::<Incident>(
        &env.ctx("soa", mins(6)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    assert!(report(&h).unwrap().compliant);
}

#[test]
fn p4_14_5_contractor_incident_is_handled_per_contract() {
    let env = Env::new();
    let h = reported(&env, K::Contractor);
    check::<Incident>(
        &env.ctx("soa", mins(1)),
        &h,
        step(Step::HandlePerContract),
        Refused("incident.step_out_of_order", "P4.14(5)"),
    );
    let h = done(&env, h, "soa", 1, Step::ReportToSoa);
    check::<Incident>(
        &env.ctx("om", mins(2)),
        &h,
        step(Step::HandlePerContract),
        Refused("staff.role_required", "P4.14(5)"),
    );
    let h = done(&env, h, "soa", 2, Step::HandlePerContract);
    let h = done(&env, h, "soa", 3, Step::ContactDepartments);
    let h = check::<Incident>(
        &env.ctx("soa", mins(4)),
        &h,
        C::Close,
        Types(&["incident.closed"]),
    );
    let r = report(&h).unwrap();
    assert!(r.compliant);
    assert_eq!(r.contractor.as_deref(), Some("acme-contract-2025"));
}

#[test]
fn p4_14_1_escalation_climbs_the_chain_one_level_at_a_time() {
    let env = Env::new();
    let h = reported(&env, K::Other);
    // Skipping the administrator is refused.
    check::<Incident>(
        &env.ctx("soa", mins(1)),
        &h,
        C::Escalate {
            to: Level::OperationsManager,
        },
        Refused("incident.escalation_chain", "P4.14(1)"),
    );
    // Escalating to the administrator is the runbook's report step, recorded by them.
    let h = check::<Incident>(
        &env.ctx("soa", mins(1)),
        &h,
        C::Escalate {
            to: Level::SystemOperationsAdministrator,
        },
        Types(&["incident.step_recorded"]),
    );
    check::<Incident>(
        &env.ctx("om", mins(2)),
        &h,
        C::Escalate {
            to: Level::OperationsManager,
        },
        Refused("staff.role_required", "P4.14(1)"),
    );
    let h = check::<Incident>(
        &env.ctx("soa", mins(2)),
        &h,
        C::Escalate {
            to: Level::OperationsManager,
        },
        Types(&["incident.escalated"]),
    );
    check::<Incident>(
        &env.ctx("soa", mins(3)),
        &h,
        C::Escalate {
            to: Level::BusinessAdministrator,
        },
        Refused("staff.role_required", "P4.14(1)"),
    );
    let h = check::<Incident>(
        &env.ctx("om", mins(3)),
        &h,
        C::Escalate {
            to: Level::BusinessAdministrator,
        },
        Types(&["incident.escalated"]),
    );
    assert_eq!(
        report(&h).unwrap().escalation_level,
        Some(Level::BusinessAdministrator)
    );
}

#[test]
fn every_runbook_starts_from_the_policy_and_reports_to_the_administrator() {
    for kind in K::ALL {
        let book = runbook(kind);
        assert!(book.iter().any(|l| l.step == Step::ReportToSoa), "{kind:?}");
        assert!(
            book.iter().any(|l| l.step == Step::ContactDepartments),
            "{kind:?}"
        );
        for l in book {
            assert!(crate::clause::known(l.clause));
            assert!(!l.policy_text.is_empty());
            assert_eq!(Step::parse(l.step.code()), Some(l.step));
            assert_eq!(serde_json::to_value(l.step).unwrap(), l.step.code());
        }
        assert_eq!(K::parse(kind.code()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.code());
    }
}
