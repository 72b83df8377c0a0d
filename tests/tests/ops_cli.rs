//! `mebyo ops` end to end through the real binary: an incident reported, its
//! runbook walked with refusals for wrong order and wrong role (exit 1, clause on
//! stderr), the report rendered as JSON and HTML; maintenance lead time (P4.3);
//! media approval (P4.7(1)); disposal (P4.9).

use mebyo_tests::{mebyo, path_str};

fn ok(args: &[&str]) -> String {
    let out = mebyo(args);
    assert!(
        out.status.success(),
        "mebyo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Refused with exit 1, citing `clause`.
fn refused(args: &[&str], clause: &str) {
    let out = mebyo(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "mebyo {args:?}: {err}");
    assert!(
        err.contains(clause),
        "mebyo {args:?} should cite {clause}: {err}"
    );
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn incident_runbook_and_report_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = path_str(tmp.path());
    // The demo appoints the staff chain (om-0001, soa-0001, office-0001, …).
    ok(&["demo", "--data", data, "--people", "2"]);

    let id = ok(&[
        "ops",
        "incident",
        "open",
        "--data",
        data,
        "--as",
        "office-0001",
        "--kind",
        "malware",
        "--id",
        "inc-cli-1",
    ]);
    assert_eq!(id.trim(), "inc-cli-1");
    // Reported twice: refused.
    refused(
        &[
            "ops",
            "incident",
            "open",
            "--data",
            data,
            "--as",
            "office-0001",
            "--kind",
            "malware",
            "--id",
            "inc-cli-1",
        ],
        "P4.14(1)",
    );
    let step = |who: &str, step: &str| {
        vec![
            "ops".to_string(),
            "incident".into(),
            "step".into(),
            "--data".into(),
            data.into(),
            "--as".into(),
            who.into(),
            "inc-cli-1".into(),
            step.into(),
        ]
    };
    let run = |v: Vec<String>| ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let deny = |v: Vec<String>, clause: &str| {
        refused(&v.iter().map(String::as_str).collect::<Vec<_>>(), clause)
    };
    // ② before ①: out of order.
    deny(step("soa-0001", "report-to-soa"), "P4.14(3)");
    run(step("office-0001", "disconnect-pc"));
    // ② is the administrator's to record.
    deny(step("office-0001", "report-to-soa"), "P4.14(3)");
    run(step("soa-0001", "report-to-soa"));

    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "ops",
        "incident",
        "report",
        "--data",
        data,
        "inc-cli-1",
    ]))
    .unwrap();
    assert_eq!(json["kind"], "malware");
    assert_eq!(json["compliant"], false);
    assert_eq!(json["compliance"][0]["step"], "disconnect-pc");
    assert_eq!(json["compliance"][0]["status"], "done");
    assert_eq!(json["compliance"][1]["by"], "soa-0001");
    let missing: Vec<_> = json["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        vec!["escalate-to-om", "contact-departments", "notify-leak"]
    );

    // Closing with steps missing is refused.
    refused(
        &[
            "ops",
            "incident",
            "close",
            "--data",
            data,
            "--as",
            "soa-0001",
            "inc-cli-1",
        ],
        "P4.14(3)",
    );
    run(step("soa-0001", "escalate-to-om"));
    run(step("om-0001", "contact-departments"));
    ok(&[
        "ops",
        "incident",
        "assess",
        "--data",
        data,
        "--as",
        "soa-0001",
        "inc-cli-1",
        "--leak-possible",
        "--individuals-data",
        "--individuals",
        "2",
        "--records",
        "7",
    ]);
    run(step("om-0001", "notify-leak"));
    ok(&[
        "ops",
        "incident",
        "close",
        "--data",
        data,
        "--as",
        "soa-0001",
        "inc-cli-1",
    ]);

    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "ops",
        "incident",
        "report",
        "--data",
        data,
        "inc-cli-1",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["compliant"], true);
    assert_eq!(json["status"], "closed");
    assert_eq!(json["affected"]["individuals"], 2);
    let html = ok(&[
        "ops",
        "incident",
        "report",
        "--data",
        data,
        "inc-cli-1",
        "--format",
        "html",
    ]);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("直ちに感染したPCをネットワークから切断する"));
    assert!(html.contains("runbook complete"));
    let list = ok(&["ops", "incident", "list", "--data", data]);
    assert!(
        list.contains("inc-cli-1") && list.contains("closed"),
        "{list}"
    );
    let runbook = ok(&["ops", "incident", "runbook", "unauthorized-access"]);
    assert!(runbook.contains("preserve-server"));
}

#[test]
fn maintenance_media_and_disposal_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = path_str(tmp.path());
    ok(&["demo", "--data", data, "--people", "1"]);
    // The default lead time is a week (P4.3): tomorrow is too soon, a year ahead is fine.
    let t = mebyo_tests::in_days;
    let (soon, soon_end, later, later_end) = (t(1), t(2), t(365), t(366));
    refused(
        &[
            "ops",
            "maintenance",
            "schedule",
            "--data",
            data,
            "--as",
            "om-0001",
            "--id",
            "w-1",
            "--starts",
            &soon,
            "--ends",
            &soon_end,
            "--affects",
            "portal",
            "--summary",
            "保守",
        ],
        "P4.3",
    );
    ok(&[
        "ops",
        "maintenance",
        "schedule",
        "--data",
        data,
        "--as",
        "om-0001",
        "--id",
        "w-1",
        "--starts",
        &later,
        "--ends",
        &later_end,
        "--affects",
        "portal,provider-gateway",
        "--summary",
        "保守",
    ]);
    let notices: serde_json::Value =
        serde_json::from_str(&ok(&["ops", "maintenance", "notices", "--data", data])).unwrap();
    assert_eq!(notices[0]["window"], "w-1");

    let digest = "ab".repeat(32);
    let approve = |who: &'static str| {
        vec![
            "ops",
            "media",
            "approve",
            "--data",
            data,
            "--as",
            who,
            "--id",
            "usb-1",
            "--kind",
            "usb-memory",
            "--digest",
            &digest,
            "--custodian",
            "office-0001",
            "--storage",
            "cabinet-a1",
            "--purpose",
            "annual-report",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let by_office = approve("office-0001");
    refused(&args(&by_office), "P4.7(1)");
    let by_soa = approve("soa-0001");
    ok(&args(&by_soa));
    ok(&[
        "ops",
        "media",
        "issue",
        "--data",
        data,
        "--as",
        "office-0001",
        "--id",
        "usb-1",
        "--digest",
        &digest,
    ]);
    ok(&[
        "ops",
        "media",
        "return",
        "--data",
        data,
        "--as",
        "soa-0001",
        "--id",
        "usb-1",
        "--storage",
        "cabinet-a2",
    ]);
    refused(
        &[
            "ops", "media", "dispose", "--data", data, "--as", "soa-0001", "--id", "usb-1",
            "--method", "purge",
        ],
        "P4.9(2)",
    );
    ok(&[
        "ops", "media", "dispose", "--data", data, "--as", "soa-0001", "--id", "usb-1", "--method",
        "destroy",
    ]);
    let entry: serde_json::Value = serde_json::from_str(&ok(&[
        "ops", "media", "show", "--data", data, "--id", "usb-1",
    ]))
    .unwrap();
    assert_eq!(entry["status"], "disposed");
    assert_eq!(entry["disposal"]["witness"], "soa-0001");
    refused(
        &[
            "ops",
            "disposal",
            "record",
            "--data",
            data,
            "--as",
            "om-0001",
            "--id",
            "d-1",
            "--subject",
            "paper",
            "--item",
            "batch-7",
            "--method",
            "shred",
        ],
        "P4.9(3)",
    );
    ok(&[
        "ops",
        "disposal",
        "record",
        "--data",
        data,
        "--as",
        "soa-0001",
        "--id",
        "d-1",
        "--subject",
        "paper",
        "--item",
        "batch-7",
        "--method",
        "melt",
        "--certificate",
        "cert-9",
    ]);
    // Never reviewed: the firewall review is overdue (exit 1).
    let out = mebyo(&["ops", "firewall", "status", "--data", data]);
    assert_eq!(out.status.code(), Some(1));
    let scan = ok(&["ops", "anomalies", "scan", "--data", data]);
    assert!(scan.contains("incident(s) opened"), "{scan}");
}
