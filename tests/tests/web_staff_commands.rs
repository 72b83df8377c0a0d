//! Staff commands on the running server (issue 15 §1, §4): revoking a credential,
//! a backup now and a restore drill, and an incident's runbook, over real HTTPS
//! against a serving platform. Each endpoint against the roles: allowed, refused
//! with its clause, refused without the CSRF token on the cookie; bad input
//! changes nothing. Every success names the event it appended, and the test
//! checks that event in the log: same position, same hash.

use crate::web_common;

use mebyo_store::EventStore;
use serde_json::{Value, json};
use web_common::*;

/// POST of a JSON body with a bearer token: status and body.
async fn post(env: &Env, s: &Session, path: &str, body: Value) -> (u16, Value) {
    let r = env
        .http
        .post(env.url(path))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The same with the session's cookie and no CSRF token.
async fn post_cookie_without_csrf(env: &Env, s: &Session, path: &str, body: Value) -> (u16, Value) {
    let r = env
        .http
        .post(env.url(path))
        .header("cookie", s.cookie())
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Checks a refusal's status, code and clause.
fn refused(got: &(u16, Value), status: u16, code: &str, clause: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert_eq!(got.1["error"]["clause"], clause, "{}", got.1);
}

/// Checks that an answer names a real event of the log of type `event_type`:
/// the same position and hash, and the dashboard link to it.
async fn names_event(env: &Env, answer: &Value, event_type: &str) {
    let position = answer["position"].as_u64().expect("a position");
    let page = env.platform.store().read_all(position, 1).await.unwrap();
    let event = page.first().expect("the event is in the log");
    assert_eq!(event.position, position);
    assert_eq!(answer["hash"], hex::encode(event.hash), "{answer}");
    assert_eq!(event.event_type, event_type, "{answer}");
    assert_eq!(answer["link"], format!("/ops/events/{position}"));
}

async fn sign_in(env: &Env, staff: &mebyo_domain::StaffId) -> Session {
    env.staff_account(staff).await;
    env.login("staff", staff.as_str(), STAFF_PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_13_the_prefecture_revokes_a_credential_on_the_running_server() {
    let env = start().await;
    let path = format!("/api/v1/ops/credentials/{}/revoke", env.provider.credential);
    let provider = env.provider_login().await;
    let read = "/api/v1/persons/p-none/records?categories=vitals&purpose=care";
    let before = env
        .http
        .get(env.url(read))
        .bearer_auth(&provider.token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        before, 403,
        "the credential works before: the read is refused by consent, not by the credential"
    );

    // Refused to everyone but the prefecture, and to a cookie without CSRF; each
    // refusal leaves the log as it was.
    let office = env.staff_login().await;
    let person = env.person("revoke@example.jp").await;
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let head = env.platform.head().count;
    let reason = json!({"reason": "judged-risk"});
    refused(
        &post(&env, &office, &path, reason.clone()).await,
        403,
        "staff.role_required",
        "P4.13(3)",
    );
    refused(
        &post(&env, &person, &path, reason.clone()).await,
        403,
        "auth.role",
        "P4.6(2)",
    );
    let got = post_cookie_without_csrf(&env, &prefecture, &path, reason.clone()).await;
    assert_eq!(got.0, 403, "{}", got.1);
    assert_eq!(got.1["error"]["clause"], "P4.6(1)", "{}", got.1);
    refused(
        &post(&env, &prefecture, &path, json!({"reason": "dislike"})).await,
        422,
        "request.invalid",
        "P4.13",
    );
    refused(
        &post(
            &env,
            &prefecture,
            "/api/v1/ops/credentials/cred-nobody/revoke",
            reason.clone(),
        )
        .await,
        404,
        "credential.unknown",
        "P4.12(1)",
    );
    // Improper handling needs earlier guidance on the provider's record (P4.13(2)).
    refused(
        &post(
            &env,
            &prefecture,
            &path,
            json!({"reason": "improper-handling"}),
        )
        .await,
        403,
        "credential.no_prior_guidance",
        "P4.13(2)",
    );
    assert_eq!(env.platform.head().count, head, "refusals append nothing");

    // The prefecture revokes; the answer names the event.
    let (status, answer) = post(&env, &prefecture, &path, reason.clone()).await;
    assert_eq!(status, 200, "{answer}");
    names_event(&env, &answer, "credential.revoked").await;

    // At once: the provider's next request is refused (P4.13), and a second
    // revocation is a conflict that changes nothing.
    let after = env
        .http
        .get(env.url(read))
        .bearer_auth(&provider.token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["error"]["code"], "credential.revoked", "{body}");
    let head = env.platform.head().count;
    refused(
        &post(&env, &prefecture, &path, reason).await,
        409,
        "credential.not_active",
        "P4.13(3)",
    );
    assert_eq!(env.platform.head().count, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_10_a_backup_and_a_drill_on_demand_while_serving() {
    let env = start().await;
    let office = env.staff_login().await;
    refused(
        &post(
            &env,
            &office,
            "/api/v1/ops/backups",
            json!({"kind": "full"}),
        )
        .await,
        403,
        "staff.role_required",
        "P4.10",
    );
    let sysadm = sign_in(&env, &env.org.system_operations_administrator).await;
    refused(
        &post(
            &env,
            &sysadm,
            "/api/v1/ops/backups",
            json!({"kind": "weekly"}),
        )
        .await,
        422,
        "request.invalid",
        "P4.10",
    );
    let (status, full) = post(
        &env,
        &sysadm,
        "/api/v1/ops/backups",
        json!({"kind": "full"}),
    )
    .await;
    assert_eq!(status, 201, "{full}");
    names_event(&env, &full, "backup.completed").await;
    assert_eq!(full["made"].as_array().unwrap().len(), 1, "{full}");
    let (status, diff) = post(
        &env,
        &sysadm,
        "/api/v1/ops/backups",
        json!({"kind": "differential"}),
    )
    .await;
    assert_eq!(status, 201, "{diff}");
    names_event(&env, &diff, "backup.completed").await;
    let (status, drill) = post(&env, &sysadm, "/api/v1/ops/backups/drill", json!({})).await;
    assert_eq!(status, 201, "{drill}");
    names_event(&env, &drill, "backup.verified").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_14_4_a_theft_runbook_worked_through_the_api_to_the_credential_rotation() {
    let env = start().await;
    let office = env.staff_login().await;
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let (status, opened) = post(
        &env,
        &office,
        "/api/v1/ops/incidents",
        json!({"kind": "theft-or-loss", "vpn_used": true}),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    names_event(&env, &opened, "incident.reported").await;
    let id = opened["made"][0].as_str().unwrap().to_string();
    let at = |what: &str| format!("/api/v1/ops/incidents/{id}/{what}");

    // Bad input and out-of-order steps are refused and change nothing.
    let head = env.platform.head().count;
    let got = post(
        &env,
        &office,
        &at("steps"),
        json!({"step": "check-stored-data"}),
    )
    .await;
    assert_eq!(got.0, 403, "a step ahead of the runbook's order: {}", got.1);
    assert_eq!(got.1["error"]["clause"], "P4.14(4)", "{}", got.1);
    refused(
        &post(&env, &office, &at("steps"), json!({"step": "dance"})).await,
        422,
        "request.invalid",
        "P4.14(1)",
    );
    refused(
        &post(
            &env,
            &office,
            "/api/v1/ops/incidents/inc-nowhere/steps",
            json!({"step": "police-report"}),
        )
        .await,
        404,
        "incident.unknown",
        "P4.14(1)",
    );
    let got = post(&env, &office, &at("close"), json!({})).await;
    assert_eq!(got.0, 403, "closing with steps missing: {}", got.1);
    assert_eq!(env.platform.head().count, head);

    // In order: the police report, then the prefecture rotates the stolen
    // device's credential, which records the change-connection-info step.
    let (status, step) = post(
        &env,
        &office,
        &at("steps"),
        json!({"step": "police-report", "reference": "kanagawa-police-0001"}),
    )
    .await;
    assert_eq!(status, 201, "{step}");
    names_event(&env, &step, "incident.step_recorded").await;
    let old = env.provider.credential.to_string();
    let got = post(
        &env,
        &office,
        &at("rotations"),
        json!({"credentials": [old]}),
    )
    .await;
    assert_eq!(
        got.0, 403,
        "only the prefecture changes connection info: {}",
        got.1
    );
    let (status, rotated) = post(
        &env,
        &prefecture,
        &at("rotations"),
        json!({"credentials": [old]}),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    // The rotation's last event is the runbook step it completes.
    names_event(&env, &rotated, "incident.step_recorded").await;
    let new = rotated["made"][0].as_str().unwrap();
    assert_ne!(new, old);
    let state = env
        .platform
        .credential_state(&mebyo_domain::CredentialId::new(old.as_str()).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(
            state.status,
            mebyo_domain::credential::CredentialStatus::Revoked(_)
        ),
        "{state:?}"
    );
}

/// Issue 15 §1 (P2(3), P4.12): the prefecture's decisions on a provider and a
/// credential's renewal and loss report, on the running server; each by the
/// roles the deciders allow, each answering its event, a wrong step refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_3_p4_12_provider_decisions_renewal_and_loss_on_the_running_server() {
    let env = start().await;
    let office = env.staff_login().await;
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let decisions = format!("/api/v1/ops/providers/{}/decisions", env.provider.id);
    let got = post(&env, &office, &decisions, json!({"decision": "suspend"})).await;
    refused(&got, 403, "staff.role_required", "P2(3)");
    let got = post(
        &env,
        &prefecture,
        &decisions,
        json!({"decision": "abolish"}),
    )
    .await;
    refused(&got, 422, "request.invalid", "P2(3)");
    let got = post(
        &env,
        &prefecture,
        &decisions,
        json!({"decision": "approve"}),
    )
    .await;
    refused(&got, 403, "provider.wrong_status", "P2(3)");
    let got = post(
        &env,
        &prefecture,
        &decisions,
        json!({"decision": "suspend"}),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "provider.suspended").await;
    let got = post(
        &env,
        &prefecture,
        &decisions,
        json!({"decision": "reinstate"}),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "provider.reinstated").await;

    let credential = format!("/api/v1/ops/credentials/{}", env.provider.credential);
    let got = post(&env, &office, &format!("{credential}/renew"), json!(null)).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "credential.renewed").await;
    // The provider's session presents that credential: refused once it is lost.
    let provider = env.provider_login().await;
    let got = post(&env, &office, &format!("{credential}/loss"), json!(null)).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "credential.loss_reported").await;
    let read = "/api/v1/persons/p-none/records?categories=vitals&purpose=care";
    let r = env
        .http
        .get(env.url(read))
        .bearer_auth(&provider.token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "credential.lost", "{body}");
    let got = post(&env, &office, &format!("{credential}/loss"), json!(null)).await;
    refused(&got, 409, "credential.not_active", "P4.12(2)");
}

/// Issue 15 §1 (P2(3), P4.11, P4.12(1)): a provider onboarded on the running
/// server from its paper application to its connection information, each step by
/// the role the policy names; a second application and malformed input refused
/// with their clauses, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_3_p4_11_a_provider_onboarded_on_the_running_server() {
    let env = start().await;
    let office = env.staff_login().await;
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let application = json!({"provider": "clinic-b", "responsible": "clinic-b-lead",
        "connection": "ipsec-ike-vpn", "basis": "commissioned"});
    let head = env.platform.head().count;
    let mut bad = application.clone();
    bad["connection"] = json!("carrier-pigeon");
    refused(
        &post(&env, &office, "/api/v1/ops/providers", bad).await,
        422,
        "request.invalid",
        "P4.5(3)",
    );
    let auditor = env
        .login("staff", env.org.auditor.as_str(), STAFF_PASSWORD)
        .await;
    let got = post(&env, &auditor, "/api/v1/ops/providers", application.clone()).await;
    refused(&got, 403, "staff.role_required", "P2(3)");
    assert_eq!(env.platform.head().count, head, "refusals write nothing");
    let got = post(&env, &office, "/api/v1/ops/providers", application.clone()).await;
    assert_eq!(got.0, 201, "{}", got.1);
    assert_eq!(got.1["made"], json!(["clinic-b"]));
    names_event(&env, &got.1, "provider.applied").await;
    let got = post(&env, &office, "/api/v1/ops/providers", application).await;
    refused(&got, 409, "provider.already_applied", "P2(3)");

    // The attestations that came with it, entered by the prefecture (P4.11).
    let now_s = env.platform.now().0 / 1_000_000;
    let (yesterday, next_year) = (
        mebyo_tests::rfc3339_s(now_s - 86_400),
        mebyo_tests::rfc3339_s(now_s + 300 * 86_400),
    );
    let attest = "/api/v1/ops/providers/clinic-b/attestations";
    for kind in ["members-trained", "antivirus-current"] {
        let body = json!({"kind": kind, "attested_on": yesterday, "valid_until": next_year});
        let got = post(&env, &office, attest, body.clone()).await;
        assert_eq!(
            got.0, 403,
            "the office does not enter attestations: {}",
            got.1
        );
        let got = post(&env, &prefecture, attest, body).await;
        assert_eq!(got.0, 201, "{}", got.1);
        names_event(&env, &got.1, "provider.attested").await;
    }
    let backwards =
        json!({"kind": "members-trained", "attested_on": next_year, "valid_until": yesterday});
    let got = post(&env, &prefecture, attest, backwards).await;
    refused(&got, 422, "provider.attestation_dates", "P4.11(1)");

    let decide = "/api/v1/ops/providers/clinic-b/decisions";
    let got = post(&env, &prefecture, decide, json!({"decision": "approve"})).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "provider.approved").await;
    let issue = json!({"provider": "clinic-b", "responsible": "clinic-b-lead"});
    let got = post(&env, &office, "/api/v1/ops/credentials", issue).await;
    assert_eq!(got.0, 201, "{}", got.1);
    names_event(&env, &got.1, "credential.issued").await;
}

/// Issue 15 §1 (P4.3, P4.4(3)): a maintenance window announced and cancelled and
/// a firewall-log review recorded on the running server; the lead time is the
/// platform's, not the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_3_p4_4_3_maintenance_and_firewall_reviews_on_the_running_server() {
    let env = start().await;
    let sysadm = sign_in(&env, &env.org.system_operations_administrator).await;
    let office = env.staff_login().await;
    // START is 2025-04-01T00:00Z; the lead time is a week.
    let window = |starts: &str| {
        json!({"window": "mw-2025-04", "starts_at": starts, "ends_at": "2025-04-20T06:00:00+09:00",
               "affects": ["portal", "provider-gateway"], "summary": "OS updates"})
    };
    let soon = post(
        &env,
        &sysadm,
        "/api/v1/ops/maintenance",
        window("2025-04-02T02:00:00+09:00"),
    )
    .await;
    assert_eq!(soon.0, 403, "{}", soon.1);
    assert_eq!(soon.1["error"]["clause"], "P4.3", "{}", soon.1);
    let got = post(
        &env,
        &office,
        "/api/v1/ops/maintenance",
        window("2025-04-20T02:00:00+09:00"),
    )
    .await;
    refused(&got, 403, "staff.role_required", "P4.3");
    let mut bad = window("2025-04-20T02:00:00+09:00");
    bad["affects"] = json!(["everything"]);
    let got = post(&env, &sysadm, "/api/v1/ops/maintenance", bad).await;
    refused(&got, 422, "request.invalid", "P4.3");
    let got = post(
        &env,
        &sysadm,
        "/api/v1/ops/maintenance",
        window("2025-04-20T02:00:00+09:00"),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "maintenance.scheduled").await;
    let got = post(
        &env,
        &sysadm,
        "/api/v1/ops/maintenance/mw-2025-04/cancel",
        json!(null),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "maintenance.cancelled").await;

    let review = json!({"from": "2025-03-25T00:00:00+09:00", "to": "2025-04-01T00:00:00+09:00"});
    let got = post(
        &env,
        &office,
        "/api/v1/ops/firewall-reviews",
        review.clone(),
    )
    .await;
    refused(&got, 403, "staff.role_required", "P4.5(1)");
    let got = post(&env, &sysadm, "/api/v1/ops/firewall-reviews", review).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "firewall.reviewed").await;
}

/// GET with a bearer token: status and body.
async fn get(env: &Env, s: &Session, path: &str) -> (u16, Value) {
    let r = env
        .http
        .get(env.url(path))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Issue 15 §1 (P4.7, P4.9): a medium approved, issued, returned and disposed of
/// on the running server, in the ledger's order and by the administrator only;
/// bad input changes nothing; the ledger entry is for staff with a role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_7_p4_9_the_media_ledger_and_disposals_on_the_running_server() {
    let env = start().await;
    let soa = env.org.system_operations_administrator.as_str();
    let sysadm = sign_in(&env, &env.org.system_operations_administrator).await;
    let office = env.staff_login().await;
    let person = env.person("media@example.jp").await;
    let digest = "ab".repeat(32);
    let approval = json!({"id": "usb-0007", "kind": "usb-memory", "digest": digest,
        "custodian": soa, "storage": "cabinet-a1", "purpose": "annual-report"});
    let media = "/api/v1/ops/media";

    // Refused to the wrong role, to an individual, to a cookie without CSRF, and
    // for malformed input; none of it changes the log.
    let head = env.platform.head().count;
    let got = post(&env, &office, media, approval.clone()).await;
    refused(&got, 403, "staff.role_required", "P4.7(1)");
    let got = post(&env, &person, media, approval.clone()).await;
    refused(&got, 403, "auth.role", "P4.6(2)");
    let got = post_cookie_without_csrf(&env, &sysadm, media, approval.clone()).await;
    refused(&got, 403, "csrf.invalid", "P4.6(1)");
    for (field, value, clause) in [
        ("digest", json!("AB"), "P4.7(2)"),
        ("kind", json!("floppy"), "P4.7(2)"),
        ("id", json!("USB 7"), "P4.7(2)"),
        ("purpose", json!("free prose, not a code"), "P4.7(1)"),
    ] {
        let mut bad = approval.clone();
        bad[field] = value;
        refused(
            &post(&env, &sysadm, media, bad).await,
            422,
            "request.invalid",
            clause,
        );
    }
    let mut extra = approval.clone();
    extra["contents"] = json!("the data itself");
    let got = post(&env, &sysadm, media, extra).await;
    assert_eq!(got.0, 422, "{}", got.1);
    assert_eq!(env.platform.head().count, head, "refusals append nothing");

    // Approved: the answer names the event and the medium.
    let got = post(&env, &sysadm, media, approval.clone()).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(&env, &got.1, "media.export_approved").await;
    assert_eq!(got.1["made"], json!(["usb-0007"]));
    let got = post(&env, &sysadm, media, approval.clone()).await;
    refused(&got, 409, "media.already_in_ledger", "P4.7(2)");
    let mut fresh = approval.clone();
    fresh.as_object_mut().unwrap().remove("id");
    let got = post(&env, &sysadm, media, fresh).await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert!(
        got.1["made"][0].as_str().unwrap().starts_with("med-"),
        "{}",
        got.1
    );

    ledger_in_order(&env, &sysadm, &digest).await;
    ledger_entry_for_staff(&env, &sysadm, &office, &person).await;
    disposals_outside_the_ledger(&env, &sysadm, &office).await;
}

/// Issue, return and disposal in the ledger's order only (P4.7(2), P4.9).
async fn ledger_in_order(env: &Env, sysadm: &Session, digest: &str) {
    let at = |what: &str| format!("/api/v1/ops/media/usb-0007/{what}");
    let got = post(env, sysadm, &at("return"), json!({"storage": "cabinet-a2"})).await;
    refused(&got, 403, "media.not_issued", "P4.7(2)");
    let other = "cd".repeat(32);
    let got = post(env, sysadm, &at("issue"), json!({"digest": other})).await;
    refused(&got, 403, "media.contents_differ", "P4.7(1)");
    let got = post(env, sysadm, &at("issue"), json!({"digest": digest})).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(env, &got.1, "media.issued").await;
    let destroy = json!({"method": "destroy"});
    let got = post(env, sysadm, &at("disposal"), destroy.clone()).await;
    refused(&got, 403, "media.not_in_storage", "P4.7(2)");
    let got = post(env, sysadm, &at("return"), json!({"storage": "cabinet-a2"})).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(env, &got.1, "media.returned").await;

    let head = env.platform.head().count;
    let got = post(env, sysadm, &at("disposal"), json!({"method": "burn"})).await;
    refused(&got, 422, "request.invalid", "P4.9(2)");
    let soon = json!({"method": "destroy", "at": "tomorrow"});
    let got = post(env, sysadm, &at("disposal"), soon).await;
    refused(&got, 422, "request.invalid", "P4.9(3)");
    assert_eq!(env.platform.head().count, head);
    let later = json!({"method": "destroy", "at": "2030-01-01T00:00:00Z"});
    let got = post(env, sysadm, &at("disposal"), later).await;
    refused(&got, 403, "disposal.future", "P4.9(3)");
    let got = post(env, sysadm, &at("disposal"), json!({"method": "purge"})).await;
    refused(&got, 403, "disposal.not_destroyed", "P4.9(2)");
    let got = post(env, sysadm, &at("disposal"), destroy.clone()).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(env, &got.1, "media.disposed").await;
    let got = post(env, sysadm, &at("disposal"), destroy).await;
    refused(&got, 403, "media.disposed", "P4.7(2)");
}

/// The ledger entry: any staff member with a role, never an individual.
async fn ledger_entry_for_staff(env: &Env, sysadm: &Session, office: &Session, person: &Session) {
    let path = "/api/v1/ops/media/usb-0007";
    for s in [sysadm, office] {
        let got = get(env, s, path).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["status"], "disposed", "{}", got.1);
        assert_eq!(got.1["contents_digest"], "ab".repeat(32), "{}", got.1);
        assert_eq!(
            got.1["disposal"]["method"]["method"], "destroy",
            "{}",
            got.1
        );
    }
    refused(
        &get(env, person, path).await,
        403,
        "media.ledger_staff_only",
        "P4.7(2)",
    );
    let got = get(env, sysadm, "/api/v1/ops/media/usb-9999").await;
    assert_eq!(got.0, 404, "{}", got.1);
    let got = get(env, sysadm, "/api/v1/ops/media/USB-1").await;
    refused(&got, 422, "request.invalid", "P4.7(2)");
}

/// Disposals of paper and media outside the ledger (P4.9).
async fn disposals_outside_the_ledger(env: &Env, sysadm: &Session, office: &Session) {
    let path = "/api/v1/ops/disposals";
    let paper = json!({"id": "paper-2025-04", "subject": "paper", "item": "batch-17",
        "method": "shred", "at": "2025-03-31T10:00:00+09:00"});
    refused(
        &post(env, office, path, paper.clone()).await,
        403,
        "staff.role_required",
        "P4.9(3)",
    );
    let head = env.platform.head().count;
    let mut melt = paper.clone();
    melt["method"] = json!("melt");
    refused(
        &post(env, sysadm, path, melt).await,
        422,
        "request.invalid",
        "P4.9",
    );
    let mut bad = paper.clone();
    bad["subject"] = json!("cloud");
    refused(
        &post(env, sysadm, path, bad).await,
        422,
        "request.invalid",
        "P4.9",
    );
    assert_eq!(env.platform.head().count, head);
    let mut wrong = paper.clone();
    wrong["method"] = json!("destroy");
    let got = post(env, sysadm, path, wrong).await;
    refused(&got, 403, "disposal.method", "P4.9(1)");
    let got = post(env, sysadm, path, paper.clone()).await;
    assert_eq!(got.0, 200, "{}", got.1);
    names_event(env, &got.1, "disposal.recorded").await;
    assert_eq!(got.1["made"], json!(["paper-2025-04"]));
    let got = post(env, sysadm, path, paper).await;
    refused(&got, 403, "disposal.duplicate", "P4.9(3)");
}
