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
