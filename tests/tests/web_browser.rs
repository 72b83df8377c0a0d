//! The portal and the dashboard in headless Chromium (issue 6 §5): sign up, accept
//! the policy, enter a blood pressure, grant a consent, have the provider read it
//! (through the API with a provider session), see that read in "who accessed my
//! data", revoke, see the provider refused; then the operator dashboard reflects
//! it. Then an accessibility and layout check of the main pages: `lang`, labels on
//! every input, text contrast (WCAG AA, 4.5:1), and no horizontal scroll at 375 px.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install -y chromium
//! chromium-driver`); fails with that message when they are missing.

use crate::browser_support;
use crate::web_common;

use browser_support::*;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use web_common::*;

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

const EMAIL: &str = "hanako@example.jp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_flow_and_dashboard_in_chromium() {
    let env = std::sync::Arc::new(start().await);
    let driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path(), false).await;
    // Run each part in a task so a failed assertion still closes the browser.
    let r = tokio::spawn({
        let (env, c) = (env.clone(), c.clone());
        async move { flow(&env, &c).await }
    })
    .await;
    let _ = c.close().await;
    if let Err(e) = r {
        std::panic::resume_unwind(e.into_panic());
    }
    let profile = tempfile::tempdir().unwrap();
    let m = browser(&driver, profile.path(), true).await;
    let r = tokio::spawn({
        let (env, m) = (env.clone(), m.clone());
        async move { accessibility(&env, &m).await }
    })
    .await;
    let _ = m.close().await;
    if let Err(e) = r {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn flow(env: &Env, c: &Client) {
    // Sign up (identity into the vault, credential issued, password hashed).
    c.goto(&env.url("/signup")).await.unwrap();
    assert_eq!(
        c.execute("return document.documentElement.lang", vec![])
            .await
            .unwrap(),
        "ja"
    );
    fill(c, "name", "山田 花子").await;
    fill(c, "address", "神奈川県横浜市中区日本大通1").await;
    c.execute(
        "document.getElementById('birth_date').value = '1980-05-05'",
        vec![],
    )
    .await
    .unwrap();
    fill(c, "email", EMAIL).await;
    fill(c, "password", PERSON_PASSWORD).await;
    submit(c, "/signup").await;
    // On to the policy in force (P7, P8), then accept it.
    assert_eq!(path(c).await, "/policy", "{}", text(c).await);
    assert!(text(c).await.contains("v2020-11-16"));
    submit(c, "/policy/accept").await;
    assert_eq!(path(c).await, "/portal");
    assert!(text(c).await.contains("山田 花子"));

    // Enter a blood pressure; it shows in the list with its provenance, and in the chart.
    fill(c, "systolic", "128").await;
    fill(c, "diastolic", "82").await;
    submit(c, "/portal/vitals").await;
    let page = text(c).await;
    assert!(page.contains("記録しました"), "{page}");
    assert!(
        page.contains("128/82 mmHg") && page.contains("本人入力"),
        "{page}"
    );
    let points = c
        .execute(
            "return document.querySelectorAll('figure.chart polyline').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(points.as_u64().unwrap() >= 2, "blood pressure chart drawn");

    // Grant clinic-a a consent over vitals for care.
    c.goto(&env.url("/portal/consents")).await.unwrap();
    c.find(Locator::Id("provider"))
        .await
        .unwrap()
        .select_by_value("clinic-a")
        .await
        .unwrap();
    c.find(Locator::Id("purpose"))
        .await
        .unwrap()
        .select_by_value("care")
        .await
        .unwrap();
    fill(c, "days", "30").await;
    submit(c, "/portal/consents").await;
    assert!(text(c).await.contains("同意しました"));

    // The provider reads through the API with its own session.
    let person: Value = {
        let s = env.login("individual", EMAIL, PERSON_PASSWORD).await;
        env.http
            .get(env.url("/api/v1/me"))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let person = person["id"].as_str().unwrap().to_string();
    let provider = env.provider_login().await;
    let r = provider_read(env, &provider, &person).await;
    assert_eq!(r.status(), 200);
    let records: Vec<Value> = r.json().await.unwrap();
    assert_eq!(records.len(), 1);

    // The read shows in "who accessed my data", with provider, purpose and consent.
    c.goto(&env.url("/portal/access")).await.unwrap();
    let page = text(c).await;
    assert!(page.contains("事業者 clinic-a"), "{page}");
    assert!(
        page.contains("閲覧") && page.contains("診療") && page.contains("consent-"),
        "{page}"
    );

    // Revoke; the provider is refused at once, and that shows too.
    c.goto(&env.url("/portal/consents")).await.unwrap();
    click_and_wait(c, "form[action$='/revoke'] button").await;
    assert!(text(c).await.contains("同意を撤回しました"));
    let r = provider_read(env, &provider, &person).await;
    assert_refusal(r, 403, "consent.revoked", "P4.6(2)").await;
    c.goto(&env.url("/portal/access")).await.unwrap();
    let page = text(c).await;
    assert!(
        page.contains("拒否") && page.contains("consent.revoked"),
        "{page}"
    );

    // English one click away.
    click_and_wait(c, "a[href^='/lang/en']").await;
    assert_eq!(path(c).await, "/portal/access");
    assert_eq!(
        c.execute("return document.documentElement.lang", vec![])
            .await
            .unwrap(),
        "en"
    );
    assert!(text(c).await.contains("Who accessed my data"));

    // Sign out; the old session is gone.
    submit(c, "/logout").await;
    c.goto(&env.url("/portal")).await.unwrap();
    assert_eq!(path(c).await, "/login");

    // The operator signs in and sees the dashboard reflect it (from the read models).
    c.goto(&env.url("/ops/login")).await.unwrap();
    fill(c, "login", env.org.office.as_str()).await;
    fill(c, "password", STAFF_PASSWORD).await;
    submit(c, "/ops/login").await;
    assert_eq!(path(c).await, "/ops", "{}", text(c).await);
    let cell = |sel: &'static str| async move {
        c.find(Locator::Css(sel))
            .await
            .unwrap_or_else(|_| panic!("{sel}"))
            .text()
            .await
            .unwrap()
    };
    assert_eq!(cell("#consents-revoked").await, "1");
    assert_eq!(cell("#registered").await, "1");
    assert_eq!(
        cell("td[data-provider='clinic-a'][data-kind='granted']").await,
        "1"
    );
    assert_eq!(
        cell("td[data-provider='clinic-a'][data-kind='refused']").await,
        "1"
    );
    // No health content and no identity on the dashboard (P4.6(2)).
    let page = text(c).await;
    for secret in ["128", "山田", EMAIL] {
        assert!(!page.contains(secret), "{secret} on the dashboard");
    }
    submit(c, "/logout").await;
}

/// Runs in the page: returns a list of problems (empty when all is well).
const AUDIT_JS: &str = r#"
const problems = [];
const lang = document.documentElement.getAttribute('lang');
if (!lang || !/^(ja|en)$/.test(lang)) problems.push('html lang missing: ' + lang);
if (!document.title) problems.push('no title');
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  const labelled = (el.labels && el.labels.length > 0 && el.labels[0].textContent.trim())
    || el.getAttribute('aria-label');
  if (!labelled) problems.push('unlabelled ' + el.tagName + '#' + el.id);
}
for (const b of document.querySelectorAll('button')) {
  if (!b.textContent.trim() && !b.getAttribute('aria-label')) problems.push('button without name');
}
for (const s of document.querySelectorAll('svg[role=img]')) {
  if (!s.getAttribute('aria-label')) problems.push('chart without a label');
}
function rgb(s) { const m = s.match(/[\d.]+/g); return m ? m.map(Number) : [0,0,0,0]; }
function lum(c) {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function bg(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c;
  }
  return [255, 255, 255];
}
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
while (walker.nextNode()) {
  const el = walker.currentNode.parentElement;
  if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
  seen.add(el);
  const st = getComputedStyle(el);
  if (st.visibility === 'hidden' || st.display === 'none' || el.closest('svg')) continue;
  const r = el.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1) continue;
  const a = lum(rgb(st.color)), b = lum(bg(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' on ' + el.tagName + ': ' + el.textContent.trim().slice(0, 30));
}
const w = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth > w) problems.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + w);
return problems;
"#;

async fn audit(c: &Client, page: &str) {
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, 375, "mobile emulation at 375 px");
    let problems = c.execute(AUDIT_JS, vec![]).await.unwrap();
    assert_eq!(
        problems,
        json!([]),
        "accessibility/layout problems on {page}"
    );
}

async fn accessibility(env: &Env, c: &Client) {
    for page in ["/login", "/signup", "/policy", "/ops/login"] {
        c.goto(&env.url(page)).await.unwrap();
        audit(c, page).await;
    }
    c.goto(&env.url("/login")).await.unwrap();
    fill(c, "login", EMAIL).await;
    fill(c, "password", PERSON_PASSWORD).await;
    submit(c, "/login").await;
    assert_eq!(path(c).await, "/portal");
    for page in [
        "/portal",
        "/portal/consents",
        "/portal/access",
        "/portal/notices",
    ] {
        c.goto(&env.url(page)).await.unwrap();
        audit(c, page).await;
    }
    // The English pages too.
    c.goto(&env.url("/lang/en?back=/portal")).await.unwrap();
    audit(c, "/portal (en)").await;
    submit(c, "/logout").await;
    c.goto(&env.url("/ops/login")).await.unwrap();
    fill(c, "login", env.org.office.as_str()).await;
    fill(c, "password", STAFF_PASSWORD).await;
    submit(c, "/ops/login").await;
    assert_eq!(path(c).await, "/ops");
    audit(c, "/ops").await;
}
