//! The JSON API over real HTTPS (issue 6 §4, §5): every refusal path is a JSON
//! error with a stable code and the policy clause; the full consent flow, with the
//! provider's reads and refusals showing up in the person's disclosure record.

use crate::web_common;

use serde_json::{Value, json};
use web_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_is_refused_p4_6_2() {
    let env = start().await;
    for path in [
        "/api/v1/me",
        "/api/v1/me/records",
        "/api/v1/me/consents",
        "/api/v1/me/access-log",
        "/api/v1/ops/summary",
        "/api/v1/persons/p-0123456789abcdef/records?categories=vitals&purpose=care",
    ] {
        let r = env.http.get(env.url(path)).send().await.unwrap();
        assert_refusal(r, 401, "auth.required", "P4.6(2)").await;
    }
    // A made-up token is no session either.
    let r = env
        .http
        .get(env.url("/api/v1/me/records"))
        .bearer_auth("not-a-session")
        .send()
        .await
        .unwrap();
    assert_refusal(r, 401, "auth.required", "P4.6(2)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_role_is_refused_p4_6_2() {
    let env = start().await;
    let person = env.person("role@example.jp").await;
    let staff = env.staff_login().await;
    let provider = env.provider_login().await;
    // An individual or a provider on the operators' summary.
    for s in [&person, &provider] {
        let r = env
            .http
            .get(env.url("/api/v1/ops/summary"))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_refusal(r, 403, "auth.role", "P4.6(2)").await;
    }
    // Staff and providers have no "my records".
    for s in [&staff, &provider] {
        let r = env
            .http
            .get(env.url("/api/v1/me/records"))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_refusal(r, 403, "auth.role", "P4.6(2)").await;
    }
    // Staff never read health content; the refusal is recorded (P4.6(2)).
    let r = env
        .http
        .get(env.url(&format!(
            "/api/v1/persons/{}/records?categories=vitals&purpose=care",
            person.id
        )))
        .bearer_auth(&staff.token)
        .send()
        .await
        .unwrap();
    assert_refusal(r, 403, "access.staff", "P4.6(2)").await;
    let log = access_log(&env, &person).await;
    assert_eq!(log[0]["who"], "staff");
    assert_eq!(log[0]["outcome"], "refused");
    assert_eq!(log[0]["refusal_code"], "access.staff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_the_csrf_token_p4_6_1() {
    let env = start().await;
    let s = env.person("csrf@example.jp").await;
    let bp = json!({"kind": "blood_pressure", "systolic": 120, "diastolic": 80});
    // Cookie without token, or with a wrong one: refused, nothing written.
    let head = env.platform.head().count;
    for token in [None, Some("wrong")] {
        let mut req = env
            .http
            .post(env.url("/api/v1/me/vitals"))
            .header("cookie", s.cookie())
            .json(&bp);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        assert_refusal(req.send().await.unwrap(), 403, "csrf.invalid", "P4.6(1)").await;
    }
    assert_eq!(
        env.platform.head().count,
        head,
        "a refused request writes nothing"
    );
    // The HTML form without its hidden field: refused the same way.
    let r = env
        .http
        .post(env.url("/portal/vitals"))
        .header("cookie", s.cookie())
        .form(&[
            ("kind", "blood_pressure"),
            ("systolic", "120"),
            ("diastolic", "80"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("csrf.invalid") && page.contains("P4.6(1)"),
        "{page}"
    );
    // With the token: accepted.
    let r = env
        .http
        .post(env.url("/api/v1/me/vitals"))
        .header("cookie", s.cookie())
        .header("x-csrf-token", &s.csrf)
        .json(&bp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    // Logout is state-changing too.
    let r = env
        .http
        .delete(env.url("/api/v1/session"))
        .header("cookie", s.cookie())
        .send()
        .await
        .unwrap();
    assert_refusal(r, 403, "csrf.invalid", "P4.6(1)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_flags_and_security_headers_p4_6_1() {
    let env = start().await;
    let s = env.person("headers@example.jp").await;
    for flag in [
        "__Host-mebyo=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(
            s.set_cookie.contains(flag),
            "{flag} missing: {}",
            s.set_cookie
        );
    }
    assert!(!s.set_cookie.contains("Domain"), "{}", s.set_cookie);
    for path in ["/livez", "/login", "/api/v1/me"] {
        let r = env.http.get(env.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000"),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    // Only TLS is spoken: a plaintext request to the port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/livez", env.web.local_addr()))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP must not be served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_account_p4_8_2() {
    let env = start().await;
    env.person("lock@example.jp").await;
    let attempt = |pw: &'static str| {
        env.http
            .post(env.url("/api/v1/session"))
            .json(&json!({"kind": "individual", "login": "lock@example.jp", "password": pw}))
            .send()
    };
    for _ in 0..4 {
        assert_refusal(
            attempt("wrong-password").await.unwrap(),
            401,
            "auth.failed",
            "P4.8(2)",
        )
        .await;
    }
    let r = attempt("wrong-password").await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_refusal(r, 429, "auth.locked", "P4.8(2)").await;
    // Locked means locked: even the right password is refused.
    assert_refusal(
        attempt(PERSON_PASSWORD).await.unwrap(),
        429,
        "auth.locked",
        "P4.8(2)",
    )
    .await;
    // An unknown account gets the same answer as a wrong password.
    let r = env
        .http
        .post(env.url("/api/v1/session"))
        .json(&json!({"kind": "individual", "login": "nobody@example.jp", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_refusal(r, 401, "auth.failed", "P4.8(2)").await;
    // The lock runs out (15 minutes by default); the right password works again.
    env.advance_minutes(16);
    env.login("individual", "lock@example.jp", PERSON_PASSWORD)
        .await;
    // The password file holds argon2id hashes and pseudonymous keys only (P4.8(2), P4.8(3)).
    let file = std::fs::read_to_string(env.dir.path().join("auth/passwords.json")).unwrap();
    assert!(file.contains("$argon2id$"));
    for secret in [PERSON_PASSWORD, "lock@example.jp", "山田"] {
        assert!(!file.contains(secret), "{secret} stored in the auth area");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_rate_limited_p4_4() {
    let env = start_with(|c| {
        c.auth_burst = 3;
        c.auth_per_minute = 3;
    })
    .await;
    for i in 0..3 {
        let r = env
            .http
            .post(env.url("/api/v1/session"))
            .json(&json!({"kind": "staff", "login": format!("nobody-{i}"), "password": "x"}))
            .send()
            .await
            .unwrap();
        assert_refusal(r, 401, "auth.failed", "P4.8(2)").await;
    }
    let r = env
        .http
        .post(env.url("/api/v1/session"))
        .json(&json!({"kind": "staff", "login": "nobody", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_refusal(r, 429, "rate.limited", "P4.4").await;
    env.advance_minutes(1);
    env.staff_login().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_end_on_logout_p4_6_1() {
    let env = start().await;
    let s = env.person("expiry@example.jp").await;
    let me = |token: String| {
        env.http
            .get(env.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(me(s.token.clone()).await.unwrap().status(), 200);
    // Idle for longer than 15 minutes.
    env.advance_minutes(16);
    assert_refusal(
        me(s.token.clone()).await.unwrap(),
        401,
        "session.expired",
        "P4.6(1)",
    )
    .await;
    // Kept busy, a session still ends 8 hours after it began.
    let s = env
        .login("individual", "expiry@example.jp", PERSON_PASSWORD)
        .await;
    for _ in 0..(8 * 6 - 1) {
        env.advance_minutes(10);
        assert_eq!(me(s.token.clone()).await.unwrap().status(), 200);
    }
    env.advance_minutes(10);
    assert_refusal(
        me(s.token.clone()).await.unwrap(),
        401,
        "session.expired",
        "P4.6(1)",
    )
    .await;
    // Logout ends a session at once.
    let s = env
        .login("individual", "expiry@example.jp", PERSON_PASSWORD)
        .await;
    let r = env
        .http
        .delete(env.url("/api/v1/session"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refusal(
        me(s.token.clone()).await.unwrap(),
        401,
        "auth.required",
        "P4.6(2)",
    )
    .await;
}

async fn access_log(env: &Env, s: &Session) -> Vec<Value> {
    let r = env
        .http
        .get(env.url("/api/v1/me/access-log"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn provider_read(env: &Env, provider: &Session, person: &str) -> reqwest::Response {
    env.http
        .get(env.url(&format!(
            "/api/v1/persons/{person}/records?categories=vitals&purpose=care"
        )))
        .bearer_auth(&provider.token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_persons_records_are_refused_and_recorded_p4_6_2() {
    let env = start().await;
    let a = env.person("a@example.jp").await;
    let b = env.person("b@example.jp").await;
    let r = env
        .http
        .post(env.url("/api/v1/me/vitals"))
        .bearer_auth(&b.token)
        .json(&json!({"kind": "body_weight", "kg": 61.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = env
        .http
        .get(env.url(&format!(
            "/api/v1/persons/{}/records?categories=vitals&purpose=personal_use",
            b.id
        )))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_refusal(r, 403, "access.not_own", "P4.6(2)").await;
    // B sees the attempt in their disclosure record; A's own reads work.
    let log = access_log(&env, &b).await;
    assert!(
        log.iter()
            .any(|l| l["outcome"] == "refused" && l["refusal_code"] == "access.not_own"),
        "{log:?}"
    );
    let r = env
        .http
        .get(env.url(&format!(
            "/api/v1/persons/{}/records?categories=vitals&purpose=personal_use",
            a.id
        )))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Malformed ids are bad input, not a lookup.
    let r = env
        .http
        .get(env.url("/api/v1/persons/NOT..VALID/records?categories=vitals&purpose=care"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_refusal(r, 422, "request.invalid", "P4.6(2)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_grant_read_revoke_refuse_p4_6_2() {
    let env = start().await;
    let person = env.person("flow@example.jp").await;
    let provider = env.provider_login().await;
    let r = env
        .http
        .post(env.url("/api/v1/me/vitals"))
        .bearer_auth(&person.token)
        .json(&json!({"kind": "blood_pressure", "systolic": 132, "diastolic": 85}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // No consent yet.
    assert_refusal(
        provider_read(&env, &provider, &person.id).await,
        403,
        "consent.none",
        "P4.6(2)",
    )
    .await;
    let r = env
        .http
        .post(env.url("/api/v1/me/consents"))
        .bearer_auth(&person.token)
        .json(&json!({"provider": "clinic-a", "categories": ["vitals"], "purpose": "care", "days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let consent = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = provider_read(&env, &provider, &person.id).await;
    assert_eq!(r.status(), 200);
    let records: Vec<Value> = r.json().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["summary"], "132/85 mmHg");
    assert_eq!(records[0]["origin"], "self_entered");
    // Another purpose than consented: refused (P4.11(3) purpose is stated on every access).
    let r = env
        .http
        .get(env.url(&format!(
            "/api/v1/persons/{}/records?categories=vitals&purpose=health_guidance",
            person.id
        )))
        .bearer_auth(&provider.token)
        .send()
        .await
        .unwrap();
    assert_refusal(r, 403, "consent.purpose", "P4.6(2)").await;
    let log = access_log(&env, &person).await;
    let read = log
        .iter()
        .find(|l| l["who"] == "provider" && l["outcome"] == "granted")
        .expect("the provider's read is in the disclosure record");
    assert_eq!(read["who_id"], "clinic-a");
    assert_eq!(read["purpose"], "care");
    assert_eq!(read["consent"], consent.as_str());
    // Newest first.
    assert_eq!(log[0]["refusal_code"], "consent.purpose");
    // Revoke: the next read is refused at once.
    let r = env
        .http
        .post(env.url(&format!("/api/v1/me/consents/{consent}/revoke")))
        .bearer_auth(&person.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refusal(
        provider_read(&env, &provider, &person.id).await,
        403,
        "consent.revoked",
        "P4.6(2)",
    )
    .await;
    let log = access_log(&env, &person).await;
    assert_eq!(log[0]["outcome"], "refused");
    assert_eq!(log[0]["refusal_code"], "consent.revoked");
    // Revoking twice: nothing to revoke.
    let r = env
        .http
        .post(env.url(&format!("/api/v1/me/consents/{consent}/revoke")))
        .bearer_auth(&person.token)
        .send()
        .await
        .unwrap();
    assert_refusal(r, 404, "consent.unknown", "P4.6(2)").await;
    // The dashboard reflects it, from the read models.
    let staff = env.staff_login().await;
    let s: Value = env
        .http
        .get(env.url("/api/v1/ops/summary"))
        .bearer_auth(&staff.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["consents"]["revoked"], 1, "{s}");
    let clinic = s["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "clinic-a")
        .unwrap();
    assert_eq!(clinic["granted"], 1);
    assert_eq!(clinic["refused"], 3);
    assert!(s["registrations"]["registered"].as_u64().unwrap() >= 1);
    // No health content and no identity on the dashboard.
    let text = s.to_string();
    for secret in ["132", "山田", "flow@example.jp", "mm[Hg]"] {
        assert!(!text.contains(secret), "{secret} on the dashboard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let env = start().await;
    let s = env.person("input@example.jp").await;
    let head = env.platform.head().count;
    for (body, clause) in [
        (
            json!({"kind": "blood_pressure", "systolic": 999, "diastolic": 80}),
            "P2(1)",
        ),
        (
            json!({"kind": "blood_pressure", "systolic": 80, "diastolic": 120}),
            "P2(1)",
        ),
        (json!({"kind": "body_weight", "kg": -3}), "P2(1)"),
        (
            json!({"kind": "body_weight", "kg": 60, "at": "2999-01-01T00:00:00Z"}),
            "P2(1)",
        ),
        (
            json!({"kind": "body_weight", "kg": 60, "at": "yesterday"}),
            "P2(1)",
        ),
    ] {
        let r = env
            .http
            .post(env.url("/api/v1/me/vitals"))
            .bearer_auth(&s.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_refusal(r, 422, "request.invalid", clause).await;
    }
    // Malformed JSON and unknown kinds: the same error shape.
    let r = env
        .http
        .post(env.url("/api/v1/me/vitals"))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_refusal(r, 400, "request.invalid", "P4.5(1)(2)").await;
    // Consents: past expiry, unknown provider, personal-use purpose.
    for (body, status, code) in [
        (
            json!({"provider": "clinic-a", "categories": ["vitals"], "purpose": "care", "days": 0}),
            422,
            "request.invalid",
        ),
        (
            json!({"provider": "nowhere", "categories": ["vitals"], "purpose": "care", "days": 10}),
            403,
            "provider.not_approved",
        ),
        (
            json!({"provider": "clinic-a", "categories": ["vitals"], "purpose": "personal_use", "days": 10}),
            422,
            "consent.purpose_invalid",
        ),
        (
            json!({"provider": "clinic-a", "categories": [], "purpose": "care", "days": 10}),
            422,
            "consent.no_categories",
        ),
    ] {
        let r = env
            .http
            .post(env.url("/api/v1/me/consents"))
            .bearer_auth(&s.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let got = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(got, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    // A body over the limit is refused before it is read.
    let big = "x".repeat(200 * 1024);
    let r = env
        .http
        .post(env.url("/api/v1/signup"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    // The server answers 413 and closes without reading the rest; a client still
    // writing the body may see that as a broken pipe instead. Either way the
    // request was refused, which is what matters (and is checked just below).
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected error: {e}"),
    }
    assert_eq!(
        env.platform.head().count,
        head,
        "refused input wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_and_policy_are_served_p7_p4_4() {
    let env = start().await;
    let doc: Value = env
        .http
        .get(env.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for p in [
        "/api/v1/session",
        "/api/v1/signup",
        "/api/v1/me/records",
        "/api/v1/me/vitals",
        "/api/v1/me/consents",
        "/api/v1/me/consents/{consent}/revoke",
        "/api/v1/me/access-log",
        "/api/v1/persons/{person}/records",
        "/api/v1/ops/summary",
        "/api/v1/ops/incidents/{id}",
        "/livez",
        "/readyz",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
    let r = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready");
    let r = env.http.get(env.url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Prometheus metrics (P4.4): the ledger head and the read models' state.
    let m = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    let text = m.text().await.unwrap();
    for name in [
        "mebyo_ledger_events ",
        "mebyo_projections_lag_events ",
        "mebyo_people{state=\"active\"}",
        "mebyo_providers",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(!text.contains("@"), "no personal data in metrics");
    let v: Value = env
        .http
        .get(env.url("/api/v1/policy"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "v2020-11-16");
    assert!(
        v["in_force_from"]
            .as_str()
            .unwrap()
            .starts_with("2020-11-16")
    );
    // Unknown API paths are JSON errors too.
    let r = env
        .http
        .get(env.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_refusal(r, 404, "not_found", "P4.6(2)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_checks_the_old_one_and_ends_every_session_p4_8_2() {
    let env = start().await;
    let s = env.person("change@example.jp").await;
    let other = env
        .login("individual", "change@example.jp", PERSON_PASSWORD)
        .await;
    let change = |cookie: Option<&Session>, csrf: Option<&str>, body: Value| {
        let mut r = env.http.post(env.url("/api/v1/me/password")).json(&body);
        match cookie {
            Some(c) => r = r.header("cookie", c.cookie()),
            None => r = r.bearer_auth(&s.token),
        }
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    const NEW: &str = "a-new-passphrase-2026";
    // No session, no change.
    let r = env
        .http
        .post(env.url("/api/v1/me/password"))
        .json(&json!({"current_password": PERSON_PASSWORD, "new_password": NEW}))
        .send()
        .await
        .unwrap();
    assert_refusal(r, 401, "auth.required", "P4.6(2)").await;
    // A cookie session without the CSRF token: refused.
    let r = change(
        Some(&s),
        None,
        json!({"current_password": PERSON_PASSWORD, "new_password": NEW}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "{:?}", r.text().await);
    // The wrong current password: refused like a sign-in, and counted.
    let r = change(
        None,
        None,
        json!({"current_password": "not-my-password", "new_password": NEW}),
    )
    .await
    .unwrap();
    assert_refusal(r, 401, "auth.failed", "P4.8(2)").await;
    // Too short, and the same as before: refused, nothing changes.
    for new in ["short", PERSON_PASSWORD] {
        let r = change(
            None,
            None,
            json!({"current_password": PERSON_PASSWORD, "new_password": new}),
        )
        .await
        .unwrap();
        assert_refusal(r, 422, "request.invalid", "P4.8(2)").await;
    }
    // The change, with the cookie and its CSRF token.
    let r = change(
        Some(&s),
        Some(&s.csrf),
        json!({"current_password": PERSON_PASSWORD, "new_password": NEW}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    // Every session of the account ended, this one and the other one.
    for t in [&s.token, &other.token] {
        let r = env
            .http
            .get(env.url("/api/v1/me"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "a session outlived the password change");
    }
    // The old password no longer works; the new one does.
    let r = env
        .http
        .post(env.url("/api/v1/session"))
        .json(&json!({"kind": "individual", "login": "change@example.jp", "password": PERSON_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_refusal(r, 401, "auth.failed", "P4.8(2)").await;
    env.login("individual", "change@example.jp", NEW).await;
}
