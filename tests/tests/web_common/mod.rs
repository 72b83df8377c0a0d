//! Shared set-up of the web tests: a real platform in a temporary directory on a
//! manual clock, the staff chain and an approved provider made through the real
//! commands (`world`), and the real HTTPS server on a free loopback port. Clients
//! pin the server's self-signed certificate rather than switching checks off.
#![allow(dead_code)]

use std::sync::Arc;

use mebyo_platform::auth::Subject;
use mebyo_platform::world::{self, OnboardedProvider, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::ManualClock;
use mebyo_web::{WebConfig, WebHandle};
use serde_json::{Value, json};

/// 2025-04-01T00:00:00Z: after the policy came into force (P9).
pub const START_US: i64 = 1_743_465_600_000_000;
pub const STAFF_PASSWORD: &str = "staff-password-1";
pub const PROVIDER_PASSWORD: &str = "provider-password-1";
pub const PERSON_PASSWORD: &str = "person-password-1";
/// The bearer token `/metrics` needs in these tests (issue 22 §7).
pub const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// The second-factor secret the tests' privileged staff enrolled.
pub fn totp_secret() -> mebyo_crypto::TotpSecret {
    mebyo_crypto::TotpSecret::from_bytes(b"mebyo-tests-totp-key").unwrap()
}

/// Posts the code of [`totp_secret`] for TOTP step `step` as a pending staff
/// session's second factor.
pub async fn post_code(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    step: u64,
) -> reqwest::Response {
    let code = totp_secret().code_at(step * mebyo_crypto::TOTP_STEP_S);
    http.post(format!("{base}/api/v1/session/second-factor"))
        .bearer_auth(token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub platform: Arc<Platform>,
    pub web: WebHandle,
    pub org: Org,
    pub provider: OnboardedProvider,
    pub http: reqwest::Client,
    /// The last TOTP step a test sign-in gave (one secret serves every staff
    /// member here, so one step is kept for all: a little stricter than needed).
    pub used_step: std::sync::Mutex<Option<u64>>,
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut WebConfig)) -> Env {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = ManualClock::new(START_US);
    let seed = mebyo_tests::seed("web");
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(seed),
        ..Options::default()
    };
    Platform::init(dir.path(), Settings::default(), opts())
        .await
        .expect("init");
    let platform = Arc::new(Platform::open(dir.path(), opts()).await.expect("open"));
    let org = world::bootstrap_org(&platform).await.expect("staff chain");
    let provider = world::onboard_provider(
        &platform,
        &org,
        "clinic-a",
        mebyo_domain::provider::ConnectionClass::TlsInternet,
    )
    .await
    .expect("provider");
    let mut cfg = WebConfig::new(dir.path());
    cfg.bind = "127.0.0.1:0".parse().unwrap();
    cfg.signup_office = Some(org.office.clone());
    cfg.metrics_token = Some(METRICS_TOKEN.into());
    tweak(&mut cfg);
    let web = mebyo_web::serve(platform.clone(), cfg)
        .await
        .expect("serve");
    for staff in [
        &org.office,
        &org.prefecture,
        &org.auditor,
        &org.operations_manager,
    ] {
        web.set_password(&Subject::Staff(staff.clone()), STAFF_PASSWORD, None)
            .await
            .unwrap();
    }
    // Every role but the office signs in with a second factor (issue 15 §5):
    // enrolled here with a known secret, its codes computed on the test clock.
    for staff in [&org.prefecture, &org.auditor, &org.operations_manager] {
        web.enrol_second_factor(&Subject::Staff(staff.clone()), &totp_secret())
            .unwrap();
    }
    web.set_password(
        &Subject::Provider(provider.id.clone()),
        PROVIDER_PASSWORD,
        Some(provider.credential.clone()),
    )
    .await
    .unwrap();
    let http = client(&web);
    Env {
        dir,
        clock,
        platform,
        web,
        org,
        provider,
        http,
        used_step: std::sync::Mutex::new(None),
    }
}

/// An HTTPS client trusting exactly the server's certificate; no cookie jar, so
/// each test says which session it presents.
pub fn client(web: &WebHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(web.cert_pem().as_bytes()).expect("certificate"),
        )
        .tls_built_in_root_certs(false)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.web.url())
    }

    /// GET `path` with `s`'s bearer token.
    pub async fn get_as(&self, s: &Session, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap()
    }

    pub fn advance_minutes(&self, m: i64) {
        self.clock.advance(m * 60_000_000);
    }

    /// Signs in through the API; returns (bearer token, csrf token, cookie header).
    pub async fn login(&self, kind: &str, login: &str, password: &str) -> Session {
        let r = self
            .http
            .post(self.url("/api/v1/session"))
            .json(&json!({"kind": kind, "login": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "login {kind} {login}: {:?}",
            r.text().await
        );
        let cookie = r
            .headers()
            .get("set-cookie")
            .expect("session cookie")
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = r.json().await.unwrap();
        let s = Session {
            token: body["token"].as_str().unwrap().into(),
            csrf: body["csrf_token"].as_str().unwrap().into(),
            set_cookie: cookie,
            id: body["id"].as_str().unwrap().into(),
        };
        if body["next"] == "second_factor" {
            let r = self.give_code(&s).await;
            assert_eq!(
                r.status(),
                200,
                "second factor of {login}: {:?}",
                r.text().await
            );
        }
        s
    }

    /// Posts the current TOTP code of [`totp_secret`] for a pending staff
    /// session. A code is accepted once, so when this step's code was used, the
    /// next step's is given (the server accepts one step ahead) or, failing that,
    /// the clock moves on one step.
    pub async fn give_code(&self, s: &Session) -> reqwest::Response {
        let now_s = || (self.platform.now().0 / 1_000_000) as u64;
        // In a block: the guard must be gone before the await.
        let step = {
            let mut used = self.used_step.lock().unwrap();
            let mut step = now_s() / mebyo_crypto::TOTP_STEP_S;
            if used.is_some_and(|u| u >= step) {
                step += 1;
            }
            if used.is_some_and(|u| u >= step) {
                self.clock
                    .advance(mebyo_crypto::TOTP_STEP_S as i64 * 1_000_000);
                step = now_s() / mebyo_crypto::TOTP_STEP_S + 1;
            }
            *used = Some(step);
            step
        };
        post_code(&self.http, &self.web.url(), &s.token, step).await
    }

    /// Gives a staff member the tests' password and second factor.
    pub async fn staff_account(&self, staff: &mebyo_domain::StaffId) {
        let subject = Subject::Staff(staff.clone());
        self.web
            .set_password(&subject, STAFF_PASSWORD, None)
            .await
            .unwrap();
        self.web
            .enrol_second_factor(&subject, &totp_secret())
            .unwrap();
    }

    pub async fn staff_login(&self) -> Session {
        self.login("staff", self.org.office.as_str(), STAFF_PASSWORD)
            .await
    }

    pub async fn provider_login(&self) -> Session {
        self.login("provider", self.provider.id.as_str(), PROVIDER_PASSWORD)
            .await
    }

    /// Signs up a person through the API, signs them in and accepts the policy.
    pub async fn person(&self, email: &str) -> Session {
        let r = self
            .http
            .post(self.url("/api/v1/signup"))
            .json(&json!({
                "name": "山田 花子", "address": "神奈川県横浜市中区日本大通1",
                "birth_date": "1980-05-05", "email": email, "password": PERSON_PASSWORD
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "signup: {:?}", r.text().await);
        let s = self.login("individual", email, PERSON_PASSWORD).await;
        let r = self
            .http
            .post(self.url("/api/v1/me/policy"))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "policy: {:?}", r.text().await);
        s
    }
}

pub struct Session {
    pub token: String,
    pub csrf: String,
    /// The `Set-Cookie` header the login answered with.
    pub set_cookie: String,
    /// Pseudonymous id of whoever signed in.
    pub id: String,
}

impl Session {
    /// `Cookie:` header value for this session.
    pub fn cookie(&self) -> String {
        self.set_cookie
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string()
    }
}

/// Checks a refusal's shape and that its clause is one the policy has.
pub async fn assert_refusal(r: reqwest::Response, status: u16, code: &str, clause: &str) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.expect("JSON error body");
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["clause"], clause, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        clause_exists(clause),
        "clause {clause} is not in docs/policy/catalogue.md"
    );
    body
}

/// Whether the repository's clause catalogue (`docs/policy/catalogue.md`) has a row
/// for the clause: its first cell is the id in backticks.
pub fn clause_exists(clause: &str) -> bool {
    const CATALOGUE: &str = include_str!("../../../docs/policy/catalogue.md");
    CATALOGUE.contains(&format!("| `{clause}` |"))
}
