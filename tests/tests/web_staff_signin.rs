//! Staff accounts done properly (issue 15 §5), over real HTTPS against a serving
//! platform: a one-time password is replaced at the first sign-in, a privileged
//! role enrols a second factor (TOTP) then and gives a code every time after, a
//! code works once, and a sign-in is reset only by the role that appoints the
//! staff member's (P3.1, P4.8(2)), as an event, ending their sessions.

use crate::web_common;

use mebyo_crypto::{TOTP_STEP_S, TotpSecret};
use mebyo_platform::auth::Subject;
use mebyo_store::EventStore;
use serde_json::{Value, json};
use web_common::*;

const ONE_TIME: &str = "one-time-password-1";
const OWN: &str = "soa-own-password-1";

async fn call(
    env: &Env,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => env.http.get(env.url(path)),
        _ => env.http.post(env.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn refused(got: &(u16, Value), status: u16, code: &str, clause: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert_eq!(got.1["error"]["clause"], clause, "{}", got.1);
}

/// The sign-in answer, whatever `next` it names (no step is done for the caller).
async fn password(env: &Env, login: &str, pw: &str) -> (u16, Value) {
    let r = env
        .http
        .post(env.url("/api/v1/session"))
        .json(&json!({"kind": "staff", "login": login, "password": pw}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn step_now(env: &Env) -> u64 {
    (env.platform.now().0 / 1_000_000) as u64 / TOTP_STEP_S
}

async fn staff_events(env: &Env, staff: &mebyo_domain::StaffId) -> Vec<String> {
    let events = env
        .platform
        .store()
        .read_stream(&staff.stream(), 0, 100)
        .await
        .unwrap();
    events.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_8_2_first_sign_in_replaces_the_password_and_enrols_a_second_factor() {
    let env = start().await;
    let soa = env.org.system_operations_administrator.clone();
    let subject = Subject::Staff(soa.clone());
    env.web
        .set_one_time_password(&subject, ONE_TIME)
        .await
        .unwrap();

    let (status, login) = password(&env, soa.as_str(), ONE_TIME).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["next"], "change_password");
    let token = login["token"].as_str().unwrap().to_string();
    // Half-way, the session acts for nobody: no dashboard, no command.
    let got = call(&env, &token, "GET", "/api/v1/ops/summary", None).await;
    refused(&got, 403, "auth.sign_in_incomplete", "P4.8(2)");
    let got = call(
        &env,
        &token,
        "POST",
        "/api/v1/ops/backups",
        Some(json!({"kind": "full"})),
    )
    .await;
    refused(&got, 403, "auth.sign_in_incomplete", "P4.8(2)");
    // Nor can it skip ahead to the code.
    let got = call(&env, &token, "GET", "/api/v1/session/second-factor", None).await;
    refused(&got, 409, "auth.step_not_pending", "P4.8(2)");
    // The rule holds for the new password, and it must differ.
    let change = |new: &str| json!({"current_password": ONE_TIME, "new_password": new});
    let got = call(
        &env,
        &token,
        "POST",
        "/api/v1/me/password",
        Some(change(ONE_TIME)),
    )
    .await;
    refused(&got, 422, "request.invalid", "P4.8(2)");
    let (status, _) = call(
        &env,
        &token,
        "POST",
        "/api/v1/me/password",
        Some(change(OWN)),
    )
    .await;
    assert_eq!(status, 204);

    // Next: enrol. The secret is shown to this session only.
    let (status, me) = call(&env, &token, "GET", "/api/v1/me", None).await;
    assert_eq!(
        (status, me["next"].as_str()),
        (200, Some("enrol_second_factor")),
        "{me}"
    );
    let (status, e) = call(&env, &token, "GET", "/api/v1/session/second-factor", None).await;
    assert_eq!(status, 200, "{e}");
    let uri = e["uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!("otpauth://totp/mebyo:{soa}?")),
        "{uri}"
    );
    let secret = TotpSecret::from_base32(e["secret"].as_str().unwrap()).unwrap();
    let code = |step: u64| json!({"code": secret.code_at(step * TOTP_STEP_S)});
    let got = call(
        &env,
        &token,
        "POST",
        "/api/v1/session/second-factor",
        Some(json!({"code": "000000"})),
    )
    .await;
    refused(&got, 401, "auth.second_factor_invalid", "P4.8(2)");
    let (status, me) = call(
        &env,
        &token,
        "POST",
        "/api/v1/session/second-factor",
        Some(code(step_now(&env))),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert!(me["next"].is_null(), "{me}");
    let (status, _) = call(&env, &token, "GET", "/api/v1/ops/summary", None).await;
    assert_eq!(status, 200);

    // Each step is an event; neither password nor secret is in the log or in
    // the auth data area in the clear.
    let types = staff_events(&env, &soa).await;
    assert!(
        types.ends_with(&[
            "staff.password_changed".into(),
            "staff.second_factor_enrolled".into()
        ]),
        "{types:?}"
    );
    let auth = std::fs::read_to_string(env.dir.path().join("auth/passwords.json")).unwrap();
    assert!(!auth.contains(e["secret"].as_str().unwrap()) && !auth.contains(OWN));
    assert!(!auth.contains(&hex::encode(secret.bytes())));

    // The next sign-in asks for a code; the one just used is spent, one from
    // three steps ago has expired, a wrong one counts toward the lock.
    let (_, login) = password(&env, soa.as_str(), OWN).await;
    assert_eq!(login["next"], "second_factor", "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    let now = step_now(&env);
    for stale in [now, now - 3] {
        let got = call(
            &env,
            &token,
            "POST",
            "/api/v1/session/second-factor",
            Some(code(stale)),
        )
        .await;
        refused(&got, 401, "auth.second_factor_invalid", "P4.8(2)");
    }
    let (status, _) = call(
        &env,
        &token,
        "POST",
        "/api/v1/session/second-factor",
        Some(code(now + 1)),
    )
    .await;
    assert_eq!(status, 200);
    // Once signed in, there is no code to give.
    let got = call(
        &env,
        &token,
        "POST",
        "/api/v1/session/second-factor",
        Some(code(now + 1)),
    )
    .await;
    refused(&got, 409, "auth.step_not_pending", "P4.8(2)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_8_2_wrong_codes_lock_and_the_lock_says_when_it_ends() {
    let env = start().await;
    let (_, login) = password(&env, env.org.prefecture.as_str(), STAFF_PASSWORD).await;
    assert_eq!(login["next"], "second_factor", "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    let mut last = (0, Value::Null);
    for _ in 0..6 {
        last = call(
            &env,
            &token,
            "POST",
            "/api/v1/session/second-factor",
            Some(json!({"code": "123456"})),
        )
        .await;
    }
    refused(&last, 429, "auth.locked", "P4.8(2)");
    let message = last.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("until 2025-04-01T09:15"), "{message}");
    // Even the right code waits for the lock.
    let good = json!({"code": totp_secret().code_at(step_now(&env) * TOTP_STEP_S)});
    let got = call(
        &env,
        &token,
        "POST",
        "/api/v1/session/second-factor",
        Some(good),
    )
    .await;
    refused(&got, 429, "auth.locked", "P4.8(2)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_1_a_sign_in_is_reset_only_by_the_appointing_role_and_ends_the_sessions() {
    let env = start().await;
    let soa = env.org.system_operations_administrator.clone();
    env.staff_account(&soa).await;
    let victim = env.login("staff", soa.as_str(), STAFF_PASSWORD).await;
    let path = format!("/api/v1/ops/staff/{soa}/sign-in-reset");
    let body = json!({"second_factor": true});

    // Not the appointing role: the office, the prefecture; not without CSRF.
    let office = env.staff_login().await;
    let got = call(&env, &office.token, "POST", &path, Some(body.clone())).await;
    refused(&got, 403, "staff.role_required", "P3.1");
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let got = call(&env, &prefecture.token, "POST", &path, Some(body.clone())).await;
    refused(&got, 403, "staff.role_required", "P3.1");
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let r = env
        .http
        .post(env.url(&path))
        .header("cookie", manager.cookie())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Unknown and malformed ids.
    let got = call(
        &env,
        &manager.token,
        "POST",
        "/api/v1/ops/staff/nobody-9/sign-in-reset",
        Some(body.clone()),
    )
    .await;
    refused(&got, 404, "staff.unknown", "P3.1");
    let before = staff_events(&env, &soa).await.len();
    let (status, _) = call(&env, &victim.token, "GET", "/api/v1/ops/summary", None).await;
    assert_eq!(status, 200, "nothing was reset yet");

    // The operations manager appoints system operations administrators: allowed.
    let (status, done) = call(&env, &manager.token, "POST", &path, Some(body)).await;
    assert_eq!(status, 200, "{done}");
    let position = done["position"].as_u64().unwrap();
    let event = &env.platform.store().read_all(position, 1).await.unwrap()[0];
    assert_eq!(event.event_type, "staff.sign_in_reset");
    assert_eq!(done["hash"], hex::encode(event.hash));
    assert_eq!(staff_events(&env, &soa).await.len(), before + 1);
    // Every session of theirs ended; the old password and second factor are gone.
    let (status, _) = call(&env, &victim.token, "GET", "/api/v1/ops/summary", None).await;
    assert_eq!(status, 401);
    let (status, _) = password(&env, soa.as_str(), STAFF_PASSWORD).await;
    assert_eq!(status, 401);
    let one_time = done["one_time_password"].as_str().unwrap();
    let (status, login) = password(&env, soa.as_str(), one_time).await;
    assert_eq!(
        (status, login["next"].as_str()),
        (200, Some("change_password")),
        "{login}"
    );
    let token = login["token"].as_str().unwrap();
    let change = json!({"current_password": one_time, "new_password": OWN});
    let (status, _) = call(&env, token, "POST", "/api/v1/me/password", Some(change)).await;
    assert_eq!(status, 204);
    let (_, me) = call(&env, token, "GET", "/api/v1/me", None).await;
    assert_eq!(me["next"], "enrol_second_factor", "{me}");
}

/// Issue 15 §2, §5: the reset from the dashboard's staff panel, with its
/// confirmation; the one-time password is shown once, on the outcome page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_1_the_operations_manager_resets_a_sign_in_from_the_dashboard() {
    let env = start().await;
    let soa = env.org.system_operations_administrator.clone();
    env.staff_account(&soa).await;
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let page = env
        .http
        .get(env.url("/ops"))
        .header("cookie", manager.cookie())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"sign-in-reset-form\""), "{page}");
    let post = |fields: Vec<(&'static str, String)>| {
        let mut f = vec![("csrf", manager.csrf.clone())];
        f.extend(fields);
        env.http
            .post(env.url("/ops/staff/sign-in-reset"))
            .header("cookie", manager.cookie())
            .form(&f)
            .send()
    };
    let head = env.platform.head().count;
    let r = post(vec![("staff", soa.to_string())]).await.unwrap();
    assert_eq!(r.status(), 422, "no confirmation, nothing changes");
    assert_eq!(env.platform.head().count, head);
    let r = post(vec![("staff", soa.to_string()), ("confirm", "yes".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let pw = html
        .split("id=\"one-time-password\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the one-time password is shown");
    let (status, login) = password(&env, soa.as_str(), pw).await;
    assert_eq!(
        (status, login["next"].as_str()),
        (200, Some("change_password")),
        "{login}"
    );
}

/// Issue 15 §1 (P3.1, P3.4): appointments, training and dismissals on the
/// running server, by the chain of authority only; each answers its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_1_appointments_training_and_dismissals_follow_the_chain() {
    let env = start().await;
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let office = env.staff_login().await;
    let new = "/api/v1/ops/staff/soa-0002";
    let role = json!({"role": "system-operations-administrator"});
    let got = call(
        &env,
        &office.token,
        "POST",
        &format!("{new}/appointments"),
        Some(role.clone()),
    )
    .await;
    refused(&got, 403, "staff.role_required", "P3.1");
    let got = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/appointments"),
        Some(json!({"role": "root"})),
    )
    .await;
    refused(&got, 422, "request.invalid", "P3.1");
    let head = env.platform.head().count;
    let (status, done) = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/appointments"),
        Some(role.clone()),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let event = &env
        .platform
        .store()
        .read_all(done["position"].as_u64().unwrap(), 1)
        .await
        .unwrap()[0];
    assert_eq!(event.event_type, "staff.appointed");
    assert_eq!(done["hash"], hex::encode(event.hash));
    let got = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/appointments"),
        Some(role.clone()),
    )
    .await;
    refused(&got, 409, "staff.already_appointed", "P3.1");
    assert_eq!(env.platform.head().count, head + 1);

    let training = json!({"completed_at": "2025-03-20T10:00:00+09:00", "valid_until": "2026-03-20T10:00:00+09:00"});
    let (status, done) = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/training"),
        Some(training),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let backwards = json!({"completed_at": "2025-03-20T10:00:00+09:00", "valid_until": "2025-03-01T10:00:00+09:00"});
    let got = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/training"),
        Some(backwards),
    )
    .await;
    refused(&got, 422, "staff.training_dates", "P3.4");
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let got = call(
        &env,
        &prefecture.token,
        "POST",
        &format!("{new}/dismissals"),
        Some(role.clone()),
    )
    .await;
    refused(&got, 403, "staff.role_required", "P3.1");
    let (status, done) = call(
        &env,
        &manager.token,
        "POST",
        &format!("{new}/dismissals"),
        Some(role),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        staff_events(&env, &mebyo_domain::StaffId::new("soa-0002").unwrap()).await,
        [
            "staff.appointed",
            "staff.training_recorded",
            "staff.dismissed"
        ]
    );
}
