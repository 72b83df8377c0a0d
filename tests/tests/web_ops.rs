//! The operator dashboard's backups, incidents and chain panels over real HTTPS
//! (issue 6 §3, issue 7 §1, §6): a real backup run and drill, a real incident
//! report, then the summary JSON, the dashboard HTML, the incident report page
//! and `/readyz` show them — each only to the staff roles that see that panel
//! (P3.1), never with health content (P4.6(2)).

use crate::web_common;

use std::sync::Arc;

use mebyo_backup::jobs;
use mebyo_backup::{Kind, StartedBy};
use mebyo_domain::Actor;
use mebyo_operations::IncidentId;
use mebyo_operations::incident::{IncidentCommand, IncidentKind, Source, Step};
use mebyo_operations_service::incidents;
use serde_json::Value;
use web_common::*;

async fn summary(env: &Env, s: &Session) -> Value {
    let (status, v) = api_get(env, s, "/api/v1/ops/summary").await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn page(env: &Env, s: &Session, path: &str) -> (u16, String) {
    let r = env
        .http
        .get(env.url(path))
        .header("cookie", format!("{}; lang=en", s.cookie()))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// GET of a JSON route with the session's token: status and body.
async fn api_get(env: &Env, s: &Session, path: &str) -> (u16, Value) {
    let r = env
        .http
        .get(env.url(path))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn readyz(env: &Env) -> Value {
    let r = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "late backups are flagged, not unready");
    r.json().await.unwrap()
}

fn flags(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_incidents_and_verification_on_the_dashboard_by_role_p4_10_p4_14_p3_1() {
    let env = start().await;
    let sysadm = env.org.system_operations_administrator.clone();
    env.staff_account(&sysadm).await;
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;

    // Nothing backed up yet: both flags, on the dashboard and on /readyz (P4.10).
    let s = summary(&env, &manager).await;
    assert_eq!(s["backups"]["overdue"], true, "{s}");
    assert!(s["backups"]["last_full"].is_null());
    let r = flags(&readyz(&env).await["flags"]);
    assert!(
        r.iter().any(|f| f.contains("full backup overdue"))
            && r.iter().all(|f| f.contains("P4.10")),
        "{r:?}"
    );

    // A real full backup and a real restore drill, recorded in the ledger.
    let clock: Arc<dyn mebyo_store::Clock> = Arc::new(env.clock.clone());
    let p = &env.platform;
    let by = StartedBy::Operator(sysadm.to_string());
    let run = jobs::run_backup(
        p.store(),
        p.dir.root.clone(),
        p.backups_dir(),
        Kind::Full,
        by.clone(),
        clock.clone(),
        Default::default(),
    )
    .await;
    let manifest = run.result.expect("full backup");
    run.event_position.expect("backup.completed recorded");
    env.advance_minutes(5);
    let drill = jobs::drill(
        p.store(),
        p.dir.root.clone(),
        p.backups_dir(),
        by,
        clock.clone(),
    )
    .await;
    let drilled = drill.result.expect("drill");
    drill.event_position.expect("backup.verified recorded");

    // A real incident (P4.14(1)): reported, then received by the administrator.
    let incident = IncidentId::new("inc-2025-0001").unwrap();
    let as_sysadm = Actor::Staff {
        staff: sysadm.clone(),
    };
    for cmd in [
        IncidentCommand::Report {
            incident: incident.clone(),
            kind: IncidentKind::Other,
            detected_at: mebyo_domain::Timestamp(START_US),
            vpn_used: false,
            contractor: None,
            source: Source::Staff,
        },
        IncidentCommand::RecordStep {
            step: Step::ReportToSoa,
            done_at: None,
            reference: None,
        },
    ] {
        incidents::incident(p, &as_sysadm, &incident, cmd)
            .await
            .unwrap()
            .expect("incident command accepted");
    }

    // The operations manager sees all of it, from the read models.
    let s = summary(&env, &manager).await;
    let b = &s["backups"];
    assert_eq!(
        b["overdue"], false,
        "a full counts as the day's backup: {s}"
    );
    assert!(b["flags"].as_array().unwrap().is_empty());
    assert_eq!(b["last_full"]["backup_id"], manifest.backup_id.as_str());
    let range = manifest.log.as_ref().unwrap();
    assert_eq!(b["last_full"]["from"], range.from);
    assert_eq!(b["last_full"]["to"], range.to);
    assert!(b["last_differential"].is_null());
    assert!(b["last_failure"].is_null());
    assert_eq!(b["completed"], 1);
    let v = &s["chain"]["last_verification"];
    assert_eq!(v["full"], manifest.backup_id.as_str(), "{s}");
    assert_eq!(v["events"], drilled.restore.events);
    assert_eq!(v["head_hash"], drilled.restore.head_hash.as_str());
    let i = &s["incidents"];
    assert_eq!(i["closed"], 0);
    let open = i["open"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{s}");
    assert_eq!(open[0]["incident"], "inc-2025-0001");
    assert_eq!(open[0]["state"], "open");
    assert_eq!(open[0]["missing_steps"], 1, "contact-departments is left");
    assert_eq!(open[0]["report_url"], "/ops/incidents/inc-2025-0001");
    assert!(readyz(&env).await["flags"].as_array().unwrap().is_empty());

    // The HTML shows the same, and links to the report.
    let (status, html) = page(&env, &manager, "/ops").await;
    assert_eq!(status, 200);
    for want in [
        manifest.backup_id.as_str(),
        "href=\"/ops/incidents/inc-2025-0001\"",
        "id=\"panel-backups\"",
        "id=\"last-verification\"",
    ] {
        assert!(html.contains(want), "{want} missing from the dashboard");
    }
    assert!(!html.contains("backup-overdue"));
    let (status, report) = page(&env, &manager, "/ops/incidents/inc-2025-0001").await;
    assert_eq!(status, 200, "{report}");
    for want in [
        "inc-2025-0001",
        "runbook INCOMPLETE",
        "data-step=\"report-to-soa\"",
        "data-step=\"contact-departments\"",
        "P4.14(1)",
    ] {
        assert!(report.contains(want), "{want} missing from the report");
    }
    assert!(report.contains("<td data-status=\"missing\">missing</td>"));
    // The same report as data (P4.14), for tools and the prefecture's records.
    let (status, r) = api_get(&env, &manager, "/api/v1/ops/incidents/inc-2025-0001").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["incident"], "inc-2025-0001");
    assert_eq!(r["compliant"], false);
    assert_eq!(
        r["missing"],
        serde_json::json!(["contact-departments"]),
        "{r}"
    );
    let steps: Vec<&str> = r["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"report-to-soa") && steps.contains(&"contact-departments"));
    let (status, _) = api_get(&env, &manager, "/api/v1/ops/incidents/inc-9999").await;
    assert_eq!(status, 404);
    let (status, e) = api_get(&env, &manager, "/api/v1/ops/incidents/Not%20An%20Id").await;
    assert_eq!(status, 422);
    assert_eq!(e["error"]["clause"], "P4.14(1)", "{e}");
    let (status, _) = page(&env, &manager, "/ops/incidents/inc-9999").await;
    assert_eq!(status, 404);
    let (status, _) = page(&env, &manager, "/ops/incidents/Not%20An%20Id").await;
    assert_eq!(status, 422);

    // A day and a bit later with no new backup: the differential is late (P4.10).
    env.advance_minutes(28 * 60);
    // (Sessions lapse in a day's idleness: sign in again.)
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let s = summary(&env, &manager).await;
    assert_eq!(s["backups"]["overdue"], true);
    let f = flags(&s["backups"]["flags"]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("differential backup overdue"), "{f:?}");
    assert_eq!(flags(&readyz(&env).await["flags"]), f);
    let (_, html) = page(&env, &manager, "/ops").await;
    assert!(html.contains("id=\"backup-overdue\""));

    // By role (P3.1): the office sees registrations, not backups, incidents or
    // the chain, and is refused the incident report.
    let office = env.staff_login().await;
    let s = summary(&env, &office).await;
    for hidden in ["backups", "incidents", "chain", "staff_training_due"] {
        assert!(s[hidden].is_null(), "{hidden} shown to the office: {s}");
    }
    assert!(s["registrations"]["registered"].is_u64());
    let (_, html) = page(&env, &office, "/ops").await;
    for hidden in [
        "panel-backups",
        "panel-incidents",
        "panel-chain",
        "inc-2025-0001",
    ] {
        assert!(!html.contains(hidden), "{hidden} on the office's dashboard");
    }
    let (status, body) = page(&env, &office, "/ops/incidents/inc-2025-0001").await;
    assert_eq!(status, 403);
    assert!(body.contains("P3.1") && !body.contains("report-to-soa"));
    let (status, e) = api_get(&env, &office, "/api/v1/ops/incidents/inc-2025-0001").await;
    assert_eq!(status, 403);
    assert_eq!(e["error"]["clause"], "P3.1", "{e}");
    assert!(!e.to_string().contains("report-to-soa"));
    // The prefecture: providers and credentials, no registrations or backups.
    let pref = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let s = summary(&env, &pref).await;
    assert!(
        s["registrations"].is_null() && s["backups"].is_null(),
        "{s}"
    );
    assert!(
        s["providers"].is_array() && s["revocations"].is_u64(),
        "{s}"
    );
    // The auditor: the record (chain, backups, incidents), not staff training.
    let auditor = env
        .login("staff", env.org.auditor.as_str(), STAFF_PASSWORD)
        .await;
    let s = summary(&env, &auditor).await;
    assert_eq!(s["incidents"]["open"][0]["incident"], "inc-2025-0001");
    assert!(s["chain"]["last_verification"].is_object());
    assert!(s["staff_training_due"].is_null() && s["credentials_expired"].is_null());
    let (status, _) = page(&env, &auditor, "/ops/incidents/inc-2025-0001").await;
    assert_eq!(status, 200);
    // The system operations administrator sees the machines' side.
    let admin = env.login("staff", sysadm.as_str(), STAFF_PASSWORD).await;
    let s = summary(&env, &admin).await;
    assert!(
        s["backups"].is_object() && s["incidents"].is_object(),
        "{s}"
    );
    assert!(s["registrations"].is_null() && s["consents"].is_null());
    assert_eq!(
        s["panels"],
        serde_json::json!([
            "providers",
            "access",
            "credentials",
            "chain",
            "backups",
            "incidents",
            "operations"
        ])
    );
}
