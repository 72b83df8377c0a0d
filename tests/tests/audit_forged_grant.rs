//! A grant is honoured for what the domain decided, not for being in the ledger
//! (issue 15): an `audit.key_granted` event appended by something other than
//! `mebyo audit grant`, chained correctly so the ledger verifies, decrypts nothing
//! when it names a non-auditor (P4.6(2)) or a grantor other than the business
//! administrator (P3.1(1)); each refused use is itself recorded.

use mebyo_domain::audit_grant::KeyGrant;
use mebyo_domain::{Duration, StaffId};
use mebyo_store::{Actor, EmbeddedStore, EventStore, ExpectedRevision, NewEvent, OpenOptions};
use mebyo_tests::{mebyo, path_str};
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Opens the ledger the binary closed, as a forger with file access would.
fn ledger(data: &Path) -> EmbeddedStore {
    EmbeddedStore::open(&data.join("ledger"), OpenOptions::default())
        .unwrap()
        .store
}

/// Appends a correctly chained `audit.key_granted` event that `mebyo audit
/// grant` never decided: `by` grants `auditor` 30 days from now.
async fn forge(data: &Path, auditor: &str, by: &str) {
    let store = ledger(data);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let g = KeyGrant {
        auditor: StaffId::new(auditor).unwrap(),
        by: StaffId::new(by).unwrap(),
        scope: "decrypt".into(),
        from_us: now,
        until_us: now + Duration::days(30).0,
    };
    store
        .append(
            "audit-grants",
            ExpectedRevision::Any,
            vec![NewEvent::plain(
                "audit.key_granted",
                Actor::new("staff", by),
                rand::random(),
                serde_json::to_vec(&g).unwrap(),
            )],
        )
        .await
        .unwrap();
}

fn replay(d: &str, auditor: &str) -> Output {
    mebyo(&[
        "audit",
        "replay",
        "--data",
        d,
        "--auditor",
        auditor,
        "--as-of",
        "1",
    ])
}

/// The newest event of `audit-key-uses`: its type, actor and payload.
async fn last_use(data: &Path) -> (String, String, serde_json::Value) {
    let store = ledger(data);
    let uses = store.read_stream("audit-key-uses", 0, 1000).await.unwrap();
    let e = uses.last().expect("the use is recorded");
    (
        e.event_type.clone(),
        e.actor.id.clone(),
        serde_json::from_slice(&e.payload).unwrap(),
    )
}

fn assert_refused(r: &Output, clause: &str, code: &str) {
    assert_eq!(r.status.code(), Some(1), "{}", stderr(r));
    assert!(
        stderr(r).contains(clause) && stderr(r).contains(code),
        "{}",
        stderr(r)
    );
    assert!(r.stdout.is_empty(), "nothing decrypted is printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_grants_are_refused_at_use_and_the_refusals_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    let demo = mebyo(&["demo", "--data", d, "--people", "3", "--seed", "5"]);
    assert!(demo.status.success(), "{}", stderr(&demo));

    // Naming a non-auditor, as if from the business administrator.
    forge(&data, "office-0001", "ba-0001").await;
    let verify = mebyo(&["audit", "verify", "--data", d]);
    assert!(
        verify.status.success(),
        "the forgery is chained: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let r = replay(d, "office-0001");
    assert_refused(&r, "P4.6(2)", "audit_grant.not_auditor");
    let (kind, actor, body) = last_use(&data).await;
    assert_eq!(
        (kind.as_str(), actor.as_str()),
        ("audit.key_use_refused", "office-0001")
    );
    assert_eq!(body["clause"], "P4.6(2)", "{body}");
    assert_eq!(body["code"], "audit_grant.not_auditor", "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );

    // Naming a real auditor, from the operations manager.
    forge(&data, "audit-0001", "om-0001").await;
    let r = replay(d, "audit-0001");
    assert_refused(&r, "P3.1(1)", "audit_grant.not_business_administrator");
    let (kind, actor, body) = last_use(&data).await;
    assert_eq!(
        (kind.as_str(), actor.as_str()),
        ("audit.key_use_refused", "audit-0001")
    );
    assert_eq!(body["clause"], "P3.1(1)", "{body}");
    assert_eq!(body["code"], "audit_grant.not_business_administrator");

    // A grant the business administrator really gives is honoured beside them.
    let g = mebyo_tests::audit_grant(d, "audit-0001", "ba-0001", &[]);
    assert!(g.status.success(), "{}", stderr(&g));
    let r = replay(d, "audit-0001");
    assert!(r.status.success(), "{}", stderr(&r));
    let (kind, actor, _) = last_use(&data).await;
    assert_eq!(
        (kind.as_str(), actor.as_str()),
        ("audit.key_used", "audit-0001")
    );
    // And the non-auditor stays refused.
    assert_refused(
        &replay(d, "office-0001"),
        "P4.6(2)",
        "audit_grant.not_auditor",
    );

    // Out-of-bounds days are refused by the decider and recorded, nothing granted.
    let g = mebyo_tests::audit_grant(d, "audit-0001", "ba-0001", &["--days", "366"]);
    assert_eq!(g.status.code(), Some(1), "{}", stderr(&g));
    assert!(
        stderr(&g).contains("audit_grant.days_out_of_bounds"),
        "{}",
        stderr(&g)
    );
    let store = ledger(&data);
    let grants = store.read_stream("audit-grants", 0, 100).await.unwrap();
    let types: Vec<&str> = grants.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "audit.key_granted",
            "audit.key_granted",
            "audit.key_granted",
            "audit.grant_refused"
        ]
    );
}
