//! The HTTP server's edges, as the outside review of issue 22 found them: no
//! panic ends the process, `/readyz` holds under concurrency, no open redirect,
//! `/metrics` is not public, the limits' answers have the API's shape and the
//! security headers, and a long multibyte e-mail is an answer, not a 500.

use crate::web_common;

use serde_json::{Value, json};
use web_common::*;

/// The answer carries the security headers every response must have (P4.6(1)).
fn assert_security_headers(r: &reqwest::Response) {
    let h = r.headers();
    for name in [
        "strict-transport-security",
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(h.contains_key(name), "{name} missing on {}: {h:?}", r.url());
    }
    assert_eq!(h["cache-control"], "no-store");
}

/// The answer is `{"error":{code,clause,message}}` as JSON, with the headers.
async fn assert_shaped(r: reqwest::Response, status: u16, code: &str, clause: &str) -> Value {
    assert_security_headers(&r);
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "{:?}",
        r.headers()
    );
    assert_refusal(r, status, code, clause).await
}

/// Issue 22 §1: the release build unwinds, so that the catch-panic layer (tested
/// in `mebyo-web`, `a_handler_panic_is_a_counted_500_and_the_server_goes_on`)
/// can answer a panic; with `abort` one request ended the whole platform.
#[test]
fn the_release_build_unwinds_on_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(root).unwrap();
    let release = text
        .split("\n[")
        .find(|s| s.starts_with("profile.release]"))
        .expect("a [profile.release] section");
    let panic = release
        .lines()
        .find_map(|l| l.trim().strip_prefix("panic"))
        .map(|v| v.trim_start_matches([' ', '=']).trim());
    assert_eq!(panic, Some("\"unwind\""), "{release}");
}

/// Issue 22 §5: 16 callers at once, 10 calls each, all ready. They shared one
/// probe file, removed each other's, and 127 of 160 answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_readyz_is_ready_under_concurrent_calls() {
    let env = start().await;
    let url = env.url("/readyz");
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url) = (env.http.clone(), url.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..10 {
                    let r = http.get(&url).send().await.unwrap();
                    statuses.push((r.status().as_u16(), r.text().await.unwrap()));
                }
                statuses
            })
        })
        .collect();
    let mut answers = 0;
    for c in callers {
        for (status, body) in c.await.unwrap() {
            assert_eq!(status, 200, "{body}");
            answers += 1;
        }
    }
    assert_eq!(answers, 160);
    // Every probe cleaned up after itself.
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".readyz-probe"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Issue 22 §7: `back` goes only to a path on this site. `/%09/` decodes to a
/// tab, which browsers drop, making `//evil.example`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lang_switch_is_no_open_redirect() {
    let env = start().await;
    for (back, to) in [
        ("/%09/evil.example", "/"),
        ("/%0A/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("https://evil.example/", "/"),
        ("/%01", "/"),
        ("/portal", "/portal"),
    ] {
        let r = env
            .http
            .get(env.url(&format!("/lang/en?back={back}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{back}");
        assert_eq!(r.headers()["location"], to, "{back}");
        assert_security_headers(&r);
    }
}

/// Issue 22 §7: `/metrics` was public. It needs the monitoring token (P4.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_metrics_need_the_monitoring_token() {
    let env = start().await;
    let r = env.http.get(env.url("/metrics")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_shaped(r, 401, "auth.required", "P4.4").await;
    let r = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth("metrics-token-for-test")
        .send()
        .await
        .unwrap();
    assert_shaped(r, 401, "auth.required", "P4.4").await;
    // A person's session is no monitoring token either.
    let person = env.person("metrics@example.jp").await;
    let r = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(&person.token)
        .send()
        .await
        .unwrap();
    assert_shaped(r, 401, "auth.required", "P4.4").await;
    let r = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("mebyo_panics_total{interface=\"web\"}"),
        "{text}"
    );
}

/// Issue 22 §7: without a configured token `/metrics` is off, not open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_metrics_without_a_token_are_off() {
    let env = start_with(|c| c.metrics_token = None).await;
    let r = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_shaped(r, 404, "not_found", "P4.6(2)").await;
}

/// Issue 22 §7: the body limit answered a bare 413 without the security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_a_body_over_the_limit_is_a_shaped_413() {
    let env = start().await;
    let big = "x".repeat(65 * 1024);
    let r = env
        .http
        .post(env.url("/api/v1/signup"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_shaped(r, 413, "request.too_large", "P4.4").await;
    // A form page too.
    let r = env
        .http
        .post(env.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("login={big}"))
        .send()
        .await
        .unwrap();
    assert_shaped(r, 413, "request.too_large", "P4.4").await;
}

/// Issue 22 §7: the timeout answered a bare 408. A body that never ends cannot
/// finish before it, whatever the machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_a_request_over_the_time_limit_is_a_shaped_408() {
    let env = start_with(|c| c.request_timeout = std::time::Duration::from_millis(300)).await;
    use futures::StreamExt;
    let first: Result<&'static [u8], std::io::Error> = Ok(b"{\"name\":");
    let never_ends = futures::stream::iter([first]).chain(futures::stream::pending());
    let r = env
        .http
        .post(env.url("/api/v1/signup"))
        .header("content-type", "application/json")
        .header("content-length", "1000")
        .body(reqwest::Body::wrap_stream(never_ends))
        .send()
        .await
        .unwrap();
    assert_shaped(r, 408, "request.timeout", "P4.4").await;
}

/// The framework's own refusals on the API (a method the route lacks, a query
/// that does not parse) have the API's shape too, so the API answers only what
/// its OpenAPI document describes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_framework_refusals_are_shaped() {
    let env = start().await;
    let r = env
        .http
        .delete(env.url("/api/v1/notices"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("allow"), "{:?}", r.headers());
    assert_shaped(r, 405, "request.method", "P4.5(1)(2)").await;
    let person = env.person("query@example.jp").await;
    let r = env
        .http
        .get(env.url("/api/v1/me/access-log?limit=many"))
        .bearer_auth(&person.token)
        .send()
        .await
        .unwrap();
    assert_shaped(r, 400, "request.invalid", "P4.5(1)(2)").await;
}

/// Issue 22 §7: the web counted an e-mail's characters and the identity vault its
/// bytes, so a long multibyte address passed one and failed the other as a 500.
/// Both count characters now: 254 is an address, 255 a refusal, and the long one
/// signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_1_a_long_multibyte_email_is_counted_in_characters() {
    let env = start().await;
    // `@例え.jp` is six characters.
    let email = |n: usize| format!("{}@例え.jp", "め".repeat(n - 6));
    let signup = |email: String| {
        env.http.post(env.url("/api/v1/signup")).json(&json!({
            "name": "山田 花子", "address": "神奈川県横浜市中区日本大通1",
            "birth_date": "1980-05-05", "email": email, "password": PERSON_PASSWORD
        }))
    };
    let r = signup(email(255)).send().await.unwrap();
    assert_shaped(r, 422, "request.invalid", "P2(1)").await;
    let r = signup(email(254)).send().await.unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    env.login("individual", &email(254), PERSON_PASSWORD).await;
    // Text that is no address is a wrong login, not a failure.
    for login in ["め@", "@め", &email(255), &"め".repeat(300)] {
        let r = env
            .http
            .post(env.url("/api/v1/session"))
            .json(&json!({"kind": "individual", "login": login, "password": PERSON_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_shaped(r, 401, "auth.failed", "P4.8(2)").await;
    }
}
