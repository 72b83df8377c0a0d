//! The outside review's findings on sign-in, sessions and the person-read path
//! (issue 22 §2, §3, §4), each against the real HTTPS server or its services:
//! made-up person ids append nothing; guesses sent at once cannot outrun the lock;
//! locks hold one account from one source group, limits hold an account across
//! sources and a /64 as one source; known and unknown logins, taken and free
//! e-mail addresses get the same answers; anonymous pages store no session.

use crate::web_common;

use std::net::IpAddr;

use futures::StreamExt;
use mebyo_crypto::Zeroizing;
use mebyo_web::svc::{self, LoginKind};
use serde_json::{Value, json};
use web_common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn read_as(env: &Env, s: &Session, person: &str) -> (u16, Value) {
    let r = env
        .http
        .get(env.url(&format!(
            "/api/v1/persons/{person}/records?categories=vitals&purpose=personal_use"
        )))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Issue 22 §2: 300 made-up ids read by a signed-in person get the answer a real
/// person's id gets (so ids cannot be probed) and leave the ledger's head where it
/// was; a real person's refused read is still recorded (P4.6(2), P4.8(3)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_person_ids_are_refused_and_append_nothing_p4_6_2() {
    let env = start().await;
    let a = env.person("reader@example.jp").await;
    let b = env.person("other@example.jp").await;
    let before = env.platform.head().count;
    let on_real = read_as(&env, &a, &b.id).await;
    assert_eq!(on_real.0, 403, "{:?}", on_real.1);
    assert_eq!(on_real.1["error"]["code"], "access.not_own");
    assert_eq!(
        env.platform.head().count,
        before + 1,
        "a real person's refused read is recorded first"
    );
    let head = env.platform.head();
    for i in 0..300 {
        let made_up = format!("p-{i:04}-made-up");
        assert_eq!(read_as(&env, &a, &made_up).await, on_real, "{made_up}");
    }
    assert_eq!(
        env.platform.head(),
        head,
        "made-up ids appended to the ledger"
    );
    assert_eq!(env.platform.unknown_person_reads(), 300);
}

/// Issue 22 §3, P4.8(2): nineteen wrong passwords and the right one at once. The
/// nineteen are started first (each reserves its attempt before hashing); the
/// right one, started after five are reserved, is refused although it would
/// verify. Deterministic: every future is polled in a fixed order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_outrun_the_lock_p4_8_2() {
    let env = start_with(|c| {
        c.auth_burst = 100;
        c.auth_per_minute = 100;
    })
    .await;
    env.person("race@example.jp").await;
    let st = env.web.state();
    let from = ip("203.0.113.5");
    let attempt = |pw: &str| {
        Box::pin(svc::login(
            st,
            from,
            LoginKind::Individual,
            "race@example.jp",
            Zeroizing::new(pw.to_string()),
            None,
        ))
    };
    let mut wrong: Vec<_> = (0..19).map(|_| attempt("wrong-password")).collect();
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for mut f in wrong.drain(..) {
        match futures::poll!(f.as_mut()) {
            std::task::Poll::Ready(r) => done.push(r),
            std::task::Poll::Pending => pending.push(f),
        }
    }
    assert_eq!(pending.len(), 5, "five attempts reserved and hashing");
    let right = attempt(PERSON_PASSWORD).await;
    let e = right.expect_err("the right password got in after five reserved failures");
    assert_eq!(e.body.code, "auth.locked");
    for f in pending {
        done.push(f.await);
    }
    let codes: Vec<String> = done
        .into_iter()
        .map(|r| r.expect_err("a wrong password got in").body.code)
        .collect();
    let failed = codes.iter().filter(|c| *c == "auth.failed").count();
    let locked = codes.iter().filter(|c| *c == "auth.locked").count();
    assert_eq!((failed, locked), (4, 15), "{codes:?}");
    // The lock runs out; the right password works again.
    env.advance_minutes(16);
    env.login("individual", "race@example.jp", PERSON_PASSWORD)
        .await;
}

/// Issue 22 §3, P4.4(1): one host holds a whole IPv6 /64, so its addresses share
/// one budget; another /64 has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_addresses_of_one_ipv6_64_share_one_limit_p4_4_1() {
    let env = start_with(|c| {
        c.auth_burst = 5;
        c.auth_per_minute = 1;
    })
    .await;
    let st = env.web.state();
    let mut codes = Vec::new();
    for i in 0..8 {
        let from = ip(&format!("2001:db8:7:9::{:x}", 0x100 + i * 77));
        let r = svc::login(
            st,
            from,
            LoginKind::Staff,
            &format!("guess-{i}"),
            Zeroizing::new("x".into()),
            None,
        )
        .await;
        codes.push(r.unwrap_err().body.code);
    }
    assert_eq!(&codes[..5], ["auth.failed"; 5], "{codes:?}");
    assert_eq!(&codes[5..], ["rate.limited"; 3], "{codes:?}");
    let r = svc::login(
        st,
        ip("2001:db8:7:a::1"),
        LoginKind::Staff,
        "guess-x",
        Zeroizing::new("x".into()),
        None,
    )
    .await;
    assert_eq!(r.unwrap_err().body.code, "auth.failed");
}

/// Issue 22 §3, P4.8(2), P4.4(1): guesses at a staff id from one source lock that
/// source only — the staff member signs in from their own; guesses from 25
/// addresses meet the account's limit across sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_id_cannot_be_locked_by_others_and_sources_meet_the_account_limit() {
    let env = start().await;
    let st = env.web.state();
    let office = env.org.office.as_str().to_string();
    let guess = |from: IpAddr| {
        svc::login(
            st,
            from,
            LoginKind::Staff,
            &office,
            Zeroizing::new("not-the-password".into()),
            None,
        )
    };
    for _ in 0..5 {
        guess(ip("198.51.100.200")).await.unwrap_err();
    }
    assert_eq!(
        guess(ip("198.51.100.200")).await.unwrap_err().body.code,
        "auth.locked"
    );
    // The staff member, from their own address (127.0.0.1), is not locked out.
    env.staff_login().await;
    // 25 source addresses against one account: the account's limit answers.
    let rule = mebyo_domain::signin::SigninRule::default();
    let mut codes = Vec::new();
    for i in 0..25 {
        let r = guess(ip(&format!("192.0.2.{i}"))).await;
        codes.push(r.unwrap_err().body.code);
    }
    let limited = codes.iter().filter(|c| *c == "rate.limited").count();
    // The staff sign-in above and the five first guesses used the burst too.
    assert_eq!(limited as u32, 25 - (rule.account_burst - 6), "{codes:?}");
}

async fn post_login(env: &Env, login: &str, password: &str) -> (u16, Value, bool) {
    let r = env
        .http
        .post(env.url("/api/v1/session"))
        .json(&json!({"kind": "individual", "login": login, "password": password}))
        .send()
        .await
        .unwrap();
    let retry = r.headers().contains_key("retry-after");
    (r.status().as_u16(), r.json().await.unwrap(), retry)
}

/// Issue 22 §3, P4.8(2): a registered e-mail address with a wrong password and an
/// unregistered one get the same answers, attempt by attempt, lock included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_unknown_logins_get_the_same_answers_p4_8_2() {
    let env = start_with(|c| {
        c.auth_burst = 100;
        c.auth_per_minute = 100;
    })
    .await;
    env.person("known@example.jp").await;
    for i in 0..7 {
        let known = post_login(&env, "known@example.jp", "wrong-password").await;
        let unknown = post_login(&env, "unknown@example.jp", "wrong-password").await;
        assert_eq!(known, unknown, "attempt {i}");
        let want = if i < 4 { "auth.failed" } else { "auth.locked" };
        assert_eq!(known.1["error"]["code"], want, "attempt {i}: {known:?}");
    }
}

/// Issue 22 §3, P4.8(3): sign-up answers the same whether or not the address is
/// registered; for a taken one nothing is written and the owner's password stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_does_not_tell_which_addresses_are_registered_p4_8_3() {
    let env = start().await;
    env.person("taken@example.jp").await;
    let signup = |email: &'static str, password: &'static str| {
        env.http
            .post(env.url("/api/v1/signup"))
            .json(&json!({
                "name": "鈴木 一郎", "address": "神奈川県川崎市1-1",
                "birth_date": "1970-01-01", "email": email, "password": password
            }))
            .send()
    };
    let head = env.platform.head();
    let taken = signup("taken@example.jp", "another-password-1")
        .await
        .unwrap();
    let taken = (
        taken.status().as_u16(),
        taken.json::<Value>().await.unwrap(),
    );
    assert_eq!(env.platform.head(), head, "a taken address wrote nothing");
    let free = signup("free@example.jp", "another-password-1")
        .await
        .unwrap();
    let free = (free.status().as_u16(), free.json::<Value>().await.unwrap());
    assert_eq!(taken, free);
    assert_eq!(free.0, 202, "{free:?}");
    assert!(
        env.platform.head().count > head.count,
        "the free one registered"
    );
    // The owner's password still works; the newcomer's does not.
    env.login("individual", "taken@example.jp", PERSON_PASSWORD)
        .await;
    let (status, body, _) = post_login(&env, "taken@example.jp", "another-password-1").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("auth.failed"))
    );
    env.login("individual", "free@example.jp", "another-password-1")
        .await;
}

fn form_csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

fn pre_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-mebyo-pre="))
        .expect("the anonymous CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Issue 22 §4, P4.6(1): 10,000 anonymous page views store no session; sign-in
/// through the page still works with the anonymous CSRF token, which is refused
/// when missing, wrong or not bound to the browser's cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pages_store_no_session_p4_6_1() {
    let env = start().await;
    env.person("pages@example.jp").await;
    let sessions = env.web.state().sessions.len();
    let pages = ["/login", "/ops/login", "/signup", "/policy"];
    let statuses: Vec<u16> = futures::stream::iter(0..10_000)
        .map(|i| {
            let req = env.http.get(env.url(pages[i % 4])).send();
            async move { req.await.unwrap().status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "a page failed");
    assert_eq!(env.web.state().sessions.len(), sessions);

    let r = env.http.get(env.url("/login")).send().await.unwrap();
    let cookie = pre_cookie(&r);
    let csrf = form_csrf(&r.text().await.unwrap());
    let post = |cookie: Option<String>, csrf: &str| {
        let mut req = env.http.post(env.url("/login")).form(&[
            ("csrf", csrf),
            ("login", "pages@example.jp"),
            ("password", PERSON_PASSWORD),
        ]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let other = {
        let r = env.http.get(env.url("/signup")).send().await.unwrap();
        pre_cookie(&r)
    };
    for (c, t) in [
        (Some(cookie.clone()), ""),
        (Some(cookie.clone()), "wrong"),
        (None, csrf.as_str()),
        (Some(other), csrf.as_str()),
    ] {
        let r = post(c, t).await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("csrf.invalid"));
    }
    assert_eq!(env.web.state().sessions.len(), sessions);
    let r = post(Some(cookie), &csrf).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/portal");
    assert_eq!(env.web.state().sessions.len(), sessions + 1);
}
