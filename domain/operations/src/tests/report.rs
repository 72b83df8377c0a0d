//! P4.14 incident reports: JSON and HTML renderings of the same projection.

use crate::ids::IncidentId;
use crate::incident::{Incident, IncidentCommand as C, IncidentKind as K, Source, Step};
use crate::report::{escape, report};
use crate::testkit::*;

#[test]
fn p4_14_report_shows_missing_steps_and_renders() {
    let env = Env::new();
    let h = check::<Incident>(
        &env.ctx("office", T0),
        &[],
        C::Report {
            incident: IncidentId::new("inc-9").unwrap(),
            kind: K::UnauthorizedAccess,
            detected_at: T0,
            vpn_used: false,
            contractor: None,
            source: Source::Staff,
        },
        Types(&["incident.reported"]),
    );
    let h = check::<Incident>(
        &env.ctx("office", mins(2)),
        &h,
        C::RecordStep {
            step: Step::DisconnectDevice,
            done_at: None,
            reference: None,
        },
        Types(&["incident.step_recorded"]),
    );
    let r = report(&h).unwrap();
    assert!(!r.compliant);
    assert_eq!(
        r.missing,
        vec![
            "preserve-server",
            "report-to-soa",
            "escalate-to-om",
            "contact-departments"
        ]
    );
    assert_eq!(r.timeline.len(), 2);
    assert_eq!(r.reported_at, "2026-01-01T09:00:00+09:00");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["compliance"][0]["status"], "done");
    assert_eq!(json["compliance"][0]["minutes_after_report"], 2);
    assert_eq!(json["compliance"][1]["status"], "missing");
    let html = r.to_html();
    assert!(html.contains("INCOMPLETE"));
    assert!(html.contains("P4.14(2)"));
    assert!(html.contains("被害のあったデバイスをネットワークから切断する"));
    assert!(!html.contains("<script"));
    assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    assert!(report(&[]).is_none());
}
