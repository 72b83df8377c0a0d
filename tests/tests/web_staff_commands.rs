//! Staff commands on the running server (issue 15 §1, §4): revoking a credential,
//! a backup now and a restore drill, and an incident's runbook, over real HTTPS
//! against a serving platform. Each endpoint against the roles: allowed, refused
//! with its clause, refused without the CSRF token on the cookie; bad input
//! changes nothing. Every success names the event it appended, and the test
//! checks that event in the log: same position, same hash.

mod web_common;

use mebyo_platform::auth::Subject;
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
    env.web
        .set_password(&Subject::Staff(staff.clone()), STAFF_PASSWORD, None)
        .await
        .unwrap();
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
