//! Writes over the JSON API under concurrency and faults, against the real HTTPS
//! server: one person's concurrent writes all succeed (issue 22 §9), and a sign-up
//! cut half-way locks nobody out (issue 19 §1).

use crate::web_common;

use mebyo_platform::{Fault, RegistrationStep};
use serde_json::{Value, json};
use web_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_persons_concurrent_writes_all_succeed_over_http() {
    let env = start().await;
    let s = env.person("busy@example.jp").await;
    let bp = json!({"kind": "blood_pressure", "systolic": 120, "diastolic": 80});
    let n = 16;
    let sent = (0..n).map(|_| {
        env.http
            .post(env.url("/api/v1/me/vitals"))
            .bearer_auth(&s.token)
            .json(&bp)
            .send()
    });
    for (i, r) in futures::future::join_all(sent)
        .await
        .into_iter()
        .enumerate()
    {
        let r = r.unwrap();
        let status = r.status();
        assert_eq!(status, 201, "write {i} of {n}: {:?}", r.text().await);
    }
    let r = env
        .http
        .get(env.url("/api/v1/me/records"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let records: Vec<Value> = r.json().await.unwrap();
    assert_eq!(records.len(), n, "every write is a record");
}

async fn sign_up(env: &Env, email: &str) -> reqwest::Response {
    env.http
        .post(env.url("/api/v1/signup"))
        .json(&json!({
            "name": "山田 花子", "address": "神奈川県横浜市中区日本大通1",
            "birth_date": "1980-05-05", "email": email, "password": PERSON_PASSWORD
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_cut_half_way_can_be_retried_and_signed_in_p2_1() {
    let env = start().await;
    let email = "cut@example.jp";
    // The password is written, the registration is not: the machinery fails.
    env.platform
        .inject_registration_faults(|s| (s == RegistrationStep::Password).then_some(Fault::Fail));
    let r = sign_up(&env, email).await;
    assert_eq!(r.status(), 500, "{:?}", r.text().await);
    env.platform.clear_registration_faults();
    assert!(!env.platform.email_registered(email).await.unwrap());
    // Not taken: nothing of the first attempt counts, and the retry registers.
    let head = env.platform.head().count;
    let r = sign_up(&env, email).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    assert!(env.platform.head().count > head, "the retry registered");
    env.login("individual", email, PERSON_PASSWORD).await;
    // Now the address is taken: the same answer, and nothing written.
    let head = env.platform.head().count;
    let r = sign_up(&env, email).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    assert_eq!(env.platform.head().count, head);
}

/// POSTs `body` to `path` as `s`, with `key` as its `Idempotency-Key`.
async fn keyed(env: &Env, s: &Session, path: &str, key: &str, body: &Value) -> reqwest::Response {
    env.http
        .post(env.url(path))
        .bearer_auth(&s.token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The id a 201 answered, and whether it was a replay.
async fn made(r: reqwest::Response) -> (String, bool) {
    assert_eq!(r.status(), 201, "{:?}", r.headers());
    let replayed = r.headers()["idempotent-replayed"] == "true";
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, replayed)
}

async fn count(env: &Env, s: &Session, path: &str) -> usize {
    let r = env.get_as(s, path).await;
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap().len()
}

/// Issue 19 §5: a client that lost the answer to a write (or got a 500 for a
/// write that was in fact durable) retries with the same `Idempotency-Key` and
/// gets the first answer, never a second record (P2(1)); a key reused for a
/// different request, or malformed, is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_1_a_vital_retried_with_its_idempotency_key_is_one_record() {
    let env = start().await;
    let s = env.person("retry@example.jp").await;
    let path = "/api/v1/me/vitals";
    let bp = json!({"kind": "blood_pressure", "systolic": 120, "diastolic": 80});
    // Sent at once, as a client that times out and retries: one record.
    let sent = (0..6).map(|_| keyed(&env, &s, path, "bp-2026-12-03.1", &bp));
    let mut ids = Vec::new();
    for r in futures::future::join_all(sent).await {
        ids.push(made(r).await);
    }
    let first = ids[0].0.clone();
    assert!(ids.iter().all(|(id, _)| *id == first), "{ids:?}");
    assert_eq!(
        ids.iter().filter(|(_, replayed)| !replayed).count(),
        1,
        "{ids:?}"
    );
    // Later (the request named no time, so its time was the first one's).
    env.advance_minutes(5);
    assert_eq!(
        made(keyed(&env, &s, path, "bp-2026-12-03.1", &bp).await).await,
        (first.clone(), true)
    );
    assert_eq!(count(&env, &s, "/api/v1/me/records").await, 1);
    // The same key for another request: refused, nothing written.
    let other = json!({"kind": "blood_pressure", "systolic": 121, "diastolic": 80});
    let r = keyed(&env, &s, path, "bp-2026-12-03.1", &other).await;
    assert_refusal(r, 422, "request.idempotency_key_reused", "P2(1)").await;
    for bad in ["a b", "", &"k".repeat(129), "名前"] {
        let r = env
            .http
            .post(env.url(path))
            .bearer_auth(&s.token)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .json(&bp)
            .send()
            .await
            .unwrap();
        assert_refusal(r, 422, "request.idempotency_key_invalid", "P2(1)").await;
    }
    assert_eq!(count(&env, &s, "/api/v1/me/records").await, 1);
    // A new key is a new record; another person's equal key is theirs.
    let (second, replayed) = made(keyed(&env, &s, path, "bp-2026-12-03.2", &bp).await).await;
    assert!(second != first && !replayed);
    let t = env.person("other@example.jp").await;
    let (theirs, replayed) = made(keyed(&env, &t, path, "bp-2026-12-03.1", &bp).await).await;
    assert!(theirs != first && !replayed);
    assert_eq!(count(&env, &s, "/api/v1/me/records").await, 2);
    assert_eq!(count(&env, &t, "/api/v1/me/records").await, 1);
    // Without a key every write is new, as before.
    let (plain, replayed) = made(
        env.http
            .post(env.url(path))
            .bearer_auth(&s.token)
            .json(&bp)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(plain != first && !replayed);
}

/// Issue 19 §5 for consents: the same grant retried is one consent (P4.6(2)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_6_2_a_consent_retried_with_its_idempotency_key_is_one_consent() {
    let env = start().await;
    let s = env.person("grant@example.jp").await;
    let path = "/api/v1/me/consents";
    let grant =
        json!({"provider": "clinic-a", "categories": ["vitals"], "purpose": "care", "days": 30});
    let (first, replayed) = made(keyed(&env, &s, path, "grant-1", &grant).await).await;
    assert!(!replayed);
    env.advance_minutes(10);
    assert_eq!(
        made(keyed(&env, &s, path, "grant-1", &grant).await).await,
        (first.clone(), true)
    );
    let longer =
        json!({"provider": "clinic-a", "categories": ["vitals"], "purpose": "care", "days": 31});
    let r = keyed(&env, &s, path, "grant-1", &longer).await;
    assert_refusal(r, 422, "request.idempotency_key_reused", "P2(1)").await;
    assert_eq!(count(&env, &s, path).await, 1);
}

/// Issue 19 §5: once the ledger stops taking writes (a full disk, a failed
/// fsync), a write is answered 503 `ledger.stopped` (P4.4), saying it was not
/// acknowledged, not a bare 500; `/readyz` takes the node out of service and
/// says why and what to do. Reading one's records fails closed the same way:
/// no data leaves before the event recording its access is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_4_a_stopped_ledger_answers_503_and_readiness_says_so() {
    let env = start().await;
    let s = env.person("full@example.jp").await;
    let path = "/api/v1/me/vitals";
    let bp = json!({"kind": "blood_pressure", "systolic": 118, "diastolic": 76});
    made(keyed(&env, &s, path, "before", &bp).await).await;
    let ready = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    env.platform
        .store()
        .inject_io_failure("No space left on device (os error 28)");
    let r = keyed(&env, &s, path, "during", &bp).await;
    let body = assert_refusal(r, 503, "ledger.stopped", "P4.4").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not acknowledged"),
        "{body}"
    );
    let ready = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health: Value = ready.json().await.unwrap();
    assert_eq!(health["status"], "not_ready", "{health}");
    let detail = health["detail"].as_str().unwrap();
    assert!(
        detail.contains("stopped taking writes") && detail.contains("restart"),
        "{detail}"
    );
    let r = env.get_as(&s, "/api/v1/me/records").await;
    assert_refusal(r, 503, "ledger.stopped", "P4.4").await;
}

/// Issue 19 §5: a staff member's incident report, retried with its
/// `Idempotency-Key` after a lost answer, is the one incident (P4.14(1)): the id
/// is derived from the reporter and the key, so the ledger itself remembers. The
/// same key for another report, or from another staff member, is not a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_14_1_an_incident_report_retried_with_its_key_is_one_incident() {
    let env = start().await;
    let om = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let path = "/api/v1/ops/incidents";
    let report = json!({"kind": "malware"});
    let incident = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 201, "{:?}", r.headers());
        let replayed = r.headers()["idempotent-replayed"] == "true";
        let v: Value = r.json().await.unwrap();
        (
            v["made"][0].as_str().unwrap().to_string(),
            v["position"].as_u64().unwrap(),
            replayed,
        )
    };
    let first = incident(keyed(&env, &om, path, "inc-2026-12-03.1", &report).await).await;
    assert!(!first.2);
    let again = incident(keyed(&env, &om, path, "inc-2026-12-03.1", &report).await).await;
    assert_eq!(
        again,
        (first.0.clone(), first.1, true),
        "the first answer, replayed"
    );
    let other = json!({"kind": "other"});
    let r = keyed(&env, &om, path, "inc-2026-12-03.1", &other).await;
    assert_refusal(r, 422, "request.idempotency_key_reused", "P2(1)").await;
    let office = env.staff_login().await;
    let theirs = incident(keyed(&env, &office, path, "inc-2026-12-03.1", &report).await).await;
    assert!(
        theirs.0 != first.0 && !theirs.2,
        "another reporter's key is theirs"
    );
    let reports = mebyo_operations_service::incidents::list(&env.platform)
        .await
        .unwrap();
    assert_eq!(reports.len(), 2, "two incidents, not three or four");
}
