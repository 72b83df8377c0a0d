//! The HTML face: the portal for individuals and the operator dashboard. Japanese
//! first, English one click away (`lang` cookie). No JavaScript at all (the CSP
//! forbids it): forms post and redirect, charts are inline SVG drawn on the
//! server. Every form carries the session's CSRF token, or before sign-in one bound
//! to the `__Host-mebyo-pre` cookie with nothing stored on the server (P4.6(1)).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use mebyo_crypto::Zeroizing;
use mebyo_domain::{Category, Purpose};
use serde::Deserialize;

use crate::AppState;
use crate::api::{clear_cookie, session_cookie};
use crate::error::ApiError;
use crate::session::{PRE_COOKIE, Principal, Session, random_token, well_formed};
use crate::svc::{self, Authed, LoginKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn from_headers(h: &HeaderMap) -> Lang {
        let en = h
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|kv| kv.trim() == "lang=en");
        if en { Lang::En } else { Lang::Ja }
    }
    pub fn t(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

pub(crate) fn category_name(l: Lang, c: Category) -> &'static str {
    match c {
        Category::Vitals => l.t("バイタル", "Vitals"),
        Category::Allergy => l.t("アレルギー", "Allergies"),
        Category::IllnessHistory => l.t("既往歴", "Illness history"),
        Category::MedicationHistory => l.t("服薬履歴", "Medication history"),
        Category::MedicationNotebook => l.t("お薬手帳", "Medication notebook"),
        Category::SideEffect => l.t("副作用", "Side effects"),
        Category::Vaccination => l.t("予防接種", "Vaccinations"),
        Category::CheckupResult => l.t("健診結果", "Check-up results"),
        Category::DailyLifeLog => l.t("生活記録", "Daily life log"),
        Category::MeByoIndex => l.t("未病指標", "ME-BYO index"),
    }
}

pub(crate) fn purpose_name(l: Lang, p: Purpose) -> &'static str {
    match p {
        Purpose::Care => l.t("診療", "Care"),
        Purpose::HealthGuidance => l.t("保健指導", "Health guidance"),
        Purpose::CheckupFollowUp => l.t("健診後のフォロー", "Check-up follow-up"),
        Purpose::MedicationReview => l.t("服薬確認", "Medication review"),
        Purpose::PersonalUse => l.t("本人利用", "Personal use"),
    }
}

pub(crate) fn enum_key<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Display time: `2025-01-02 09:30` (JST).
pub(crate) fn jst(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

struct Nav<'a> {
    csrf: &'a str,
    principal: &'a Principal,
}

const CSS: &str = include_str!("app.css");

fn layout(l: Lang, title: &str, nav: Option<Nav>, back: &str, body: Markup) -> Markup {
    let other = match l {
        Lang::Ja => ("en", "English"),
        Lang::En => ("ja", "日本語"),
    };
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (l.t("マイME-BYOカルテ", "My ME-BYO Karte")) }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                a.skip href="#main" { (l.t("本文へ移動", "Skip to content")) }
                header.top {
                    span.brand { (l.t("マイME-BYOカルテ", "My ME-BYO Karte")) }
                    nav aria-label=(l.t("メニュー", "Menu")) {
                        ul {
                            @match nav.as_ref().map(|n| n.principal) {
                                Some(Principal::Individual { .. }) => {
                                    li { a href="/portal" { (l.t("記録", "Records")) } }
                                    li { a href="/portal/consents" { (l.t("同意", "Consents")) } }
                                    li { a href="/portal/access" { (l.t("閲覧履歴", "Who accessed")) } }
                                    li { a href="/portal/notices" { (l.t("お知らせ", "Notices")) } }
                                    li { a href="/account/password" { (l.t("パスワード変更", "Password")) } }
                                }
                                Some(Principal::Staff { .. }) => {
                                    li { a href="/ops" { (l.t("運用ダッシュボード", "Dashboard")) } }
                                    li { a href="/account/password" { (l.t("パスワード変更", "Password")) } }
                                }
                                _ => {
                                    li { a href="/login" { (l.t("ログイン", "Sign in")) } }
                                    li { a href="/signup" { (l.t("新規登録", "Sign up")) } }
                                }
                            }
                            li { a href="/policy" { (l.t("セキュリティポリシー", "Security policy")) } }
                            li { a href={"/lang/" (other.0) "?back=" (back)} lang=(other.0) { (other.1) } }
                        }
                    }
                    @if let Some(n) = &nav {
                        @if !matches!(n.principal, Principal::Anonymous) {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(n.csrf);
                                button type="submit" { (l.t("ログアウト", "Sign out")) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    p { (l.t("神奈川県 健康情報等プラットフォーム", "Kanagawa Prefecture health information platform")) }
                }
            }
        }
    }
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// A page for a signed-in user: the layout with their menu and sign-out form.
pub(crate) fn signed_page(l: Lang, a: &Authed, title: &str, back: &str, body: Markup) -> Response {
    let nav = Nav {
        csrf: &a.session.csrf,
        principal: &a.session.principal,
    };
    html_response(StatusCode::OK, layout(l, title, Some(nav), back, body))
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// An error as a page, with the same code and clause the API would give.
pub struct PageError {
    lang: Lang,
    err: ApiError,
    back: &'static str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let l = self.lang;
        // A staff session half-way through signing in goes back to its step.
        if self.err.body.code == "auth.sign_in_incomplete" {
            return see_other("/ops/sign-in");
        }
        if matches!(
            self.err.body.code.as_str(),
            "auth.required" | "session.expired"
        ) && self.back != "/login"
        {
            let to = if self.back.starts_with("/ops") {
                "/ops/login"
            } else {
                "/login"
            };
            let mut r = see_other(to);
            if self.err.body.code == "session.expired" {
                r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
            }
            return r;
        }
        let body = html! {
            div.error role="alert" {
                p { (self.err.body.message) }
                dl {
                    dt { (l.t("コード", "Code")) } dd { code { (self.err.body.code) } }
                    dt { (l.t("根拠条項", "Policy clause")) } dd { code { (self.err.body.clause) } }
                }
            }
            p { a href=(self.back) { (l.t("戻る", "Back")) } }
        };
        let mut r = html_response(
            self.err.status,
            layout(
                l,
                l.t("できませんでした", "That did not work"),
                None,
                "/",
                body,
            ),
        );
        if let Some(s) = self.err.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

pub(crate) trait PageCtx<T> {
    fn page(self, lang: Lang, back: &'static str) -> Result<T, PageError>;
}

impl<T> PageCtx<T> for Result<T, ApiError> {
    fn page(self, lang: Lang, back: &'static str) -> Result<T, PageError> {
        self.map_err(|err| PageError { lang, err, back })
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

pub fn not_found(req: &Request) -> Response {
    let l = Lang::from_headers(req.headers());
    PageError {
        lang: l,
        err: ApiError::not_found(),
        back: "/",
    }
    .into_response()
}

/// The form fields of a urlencoded body; repeated names (checkboxes) kept.
pub(crate) fn fields(body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.5(1)(2)"),
            "the form could not be read",
        )
    })
}

pub(crate) fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The session for a form page. Without a live one: a transient anonymous session,
/// never stored, whose CSRF token is bound to the `__Host-mebyo-pre` cookie
/// (`session::AnonCsrf`), which is set here if the browser has none yet. So
/// showing `/login`, `/ops/login`, `/signup` or `/policy` stores nothing (issue 22
/// §4).
fn form_session(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(Authed, Option<HeaderValue>), ApiError> {
    if let Ok(a) = svc::session(st, headers) {
        return Ok((a, None));
    }
    let (value, cookie) = match svc::cookie_value(headers, PRE_COOKIE).filter(|v| well_formed(v)) {
        Some(v) => (v, None),
        None => {
            let v = random_token();
            let c = pre_cookie(&v, st.cfg.sessions.absolute_us / 1_000_000);
            (v, Some(c))
        }
    };
    let now = st.platform.now();
    let session = Session {
        principal: Principal::Anonymous,
        csrf: st.anon_csrf.token(&value),
        created: now,
        last_seen: now,
    };
    Ok((
        Authed {
            token: String::new(),
            session,
            via_cookie: true,
        },
        cookie,
    ))
}

fn pre_cookie(value: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .expect("cookie is ASCII")
}

/// Checks the CSRF field of a form posted before sign-in (sign-in, sign-up): the
/// live session's token, or the anonymous one bound to the `__Host-mebyo-pre`
/// cookie (P4.6(1)).
fn posted_before_sign_in(
    st: &AppState,
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<(), ApiError> {
    let presented = field(f, "csrf");
    if let Ok(a) = svc::session(st, headers)
        && svc::check_csrf(&a, Some(presented)).is_ok()
    {
        return Ok(());
    }
    let pre = svc::cookie_value(headers, PRE_COOKIE);
    if st.anon_csrf.check(pre.as_deref(), presented) {
        Ok(())
    } else {
        Err(ApiError::csrf())
    }
}

fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// Checks the CSRF field of a posted form against the cookie session.
pub(crate) fn posted(
    st: &AppState,
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<Authed, ApiError> {
    let a = svc::session(st, headers)?;
    svc::check_csrf(&a, Some(field(f, "csrf")))?;
    Ok(a)
}

// ---- public pages ---------------------------------------------------------------------

async fn home(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match svc::session(&st, &headers).map(|a| a.session.principal) {
        Ok(Principal::Individual { .. }) => see_other("/portal"),
        Ok(Principal::Staff { .. }) => see_other("/ops"),
        _ => see_other("/login"),
    }
}

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

/// Whether `back` (already percent-decoded) is a path on this site and nothing
/// else: a single `/`, then no `/` or `\\` (which browsers read as a host), and
/// only visible ASCII throughout, since browsers drop tabs, newlines and spaces
/// before parsing (`/\t/evil.example` is `//evil.example`). Never an open
/// redirect (issue 22 §7).
fn same_origin_path(back: &str) -> bool {
    let mut chars = back.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && back.len() <= 200
        && back.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

async fn set_lang(Path(to): Path<String>, Query(q): Query<Back>) -> Response {
    let to = if to == "en" { "en" } else { "ja" };
    let back = q
        .back
        .filter(|b| same_origin_path(b))
        .unwrap_or_else(|| "/".into());
    let mut r = see_other(&back);
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "lang={to}; Path=/; Secure; SameSite=Strict; Max-Age=31536000"
        ))
        .expect("ascii"),
    );
    r
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

fn login_form(l: Lang, action: &str, csrf: &str, staff: bool) -> Markup {
    html! {
        form.card method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            @if staff {
                label for="login" { (l.t("職員ID", "Staff id")) }
                input id="login" name="login" type="text" autocomplete="username" required maxlength="64";
            } @else {
                label for="login" { (l.t("メールアドレス", "E-mail address")) }
                input id="login" name="login" type="email" autocomplete="email" required maxlength="254";
            }
            label for="password" { (l.t("パスワード", "Password")) }
            input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024";
            button type="submit" { (l.t("ログイン", "Sign in")) }
        }
    }
}

async fn login_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let (a, cookie) = form_session(&st, &headers).page(l, "/login")?;
    let body = html! {
        (login_form(l, "/login", &a.session.csrf, false))
        p { (l.t("はじめての方は", "New here? ")) a href="/signup" { (l.t("新規登録", "Sign up")) } }
        p { a href="/ops/login" { (l.t("運用担当者の方はこちら", "Operations staff sign in")) } }
    };
    Ok(with_cookie(
        signed_page(l, &a, l.t("ログイン", "Sign in"), "/login", body),
        cookie,
    ))
}

async fn ops_login_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let (a, cookie) = form_session(&st, &headers).page(l, "/login")?;
    let body = login_form(l, "/ops/login", &a.session.csrf, true);
    Ok(with_cookie(
        signed_page(
            l,
            &a,
            l.t("運用担当者ログイン", "Staff sign in"),
            "/ops/login",
            body,
        ),
        cookie,
    ))
}

async fn do_login(
    st: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    body: &Bytes,
    kind: LoginKind,
) -> Result<Response, ApiError> {
    let f = fields(body)?;
    posted_before_sign_in(st, headers, &f)?;
    let previous = svc::cookie_token(headers);
    let (token, session) = svc::login(
        st,
        peer.ip(),
        kind,
        field(&f, "login"),
        Zeroizing::new(field(&f, "password").to_string()),
        previous.as_deref(),
    )
    .await?;
    let mut r = see_other(match kind {
        LoginKind::Staff => crate::staff_signin::landing(&session.principal),
        _ => "/portal",
    });
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, st.cfg.sessions.absolute_us / 1_000_000),
    );
    Ok(r)
}

async fn login_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    do_login(&st, &headers, peer, &body, LoginKind::Individual)
        .await
        .page(l, "/login")
}

async fn ops_login_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    do_login(&st, &headers, peer, &body, LoginKind::Staff)
        .await
        .page(l, "/ops/login")
}

async fn logout(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let f = fields(&body).page(l, "/")?;
    let a = posted(&st, &headers, &f).page(l, "/")?;
    st.sessions.remove(&a.token);
    let mut r = see_other("/login");
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    Ok(r)
}

async fn signup_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let (a, cookie) = form_session(&st, &headers).page(l, "/signup")?;
    let body = html! {
        p { (l.t("氏名・住所などは個人情報として健康情報とは別の領域に暗号化して保管します。",
                 "Your name, address and contact details are kept encrypted, apart from health data.")) }
        form.card method="post" action="/signup" {
            input type="hidden" name="csrf" value=(a.session.csrf);
            label for="name" { (l.t("氏名", "Full name")) }
            input id="name" name="name" type="text" autocomplete="name" required maxlength="100";
            label for="address" { (l.t("住所", "Address")) }
            input id="address" name="address" type="text" autocomplete="street-address" required maxlength="200";
            label for="birth_date" { (l.t("生年月日", "Date of birth")) }
            input id="birth_date" name="birth_date" type="date" required;
            label for="email" { (l.t("メールアドレス", "E-mail address")) }
            input id="email" name="email" type="email" autocomplete="email" required maxlength="254";
            label for="phone" { (l.t("電話番号（任意）", "Phone (optional)")) }
            input id="phone" name="phone" type="tel" autocomplete="tel" maxlength="20";
            label for="password" { (l.t("パスワード（10文字以上）", "Password (10 characters or more)")) }
            input id="password" name="password" type="password" autocomplete="new-password" required minlength="10" maxlength="1024";
            button type="submit" { (l.t("登録する", "Sign up")) }
        }
    };
    Ok(with_cookie(
        signed_page(l, &a, l.t("新規登録", "Sign up"), "/signup", body),
        cookie,
    ))
}

async fn signup_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        posted_before_sign_in(&st, &headers, &f)?;
        let input = svc::SignupInput {
            name: field(&f, "name").into(),
            address: field(&f, "address").into(),
            birth_date: field(&f, "birth_date").into(),
            email: field(&f, "email").into(),
            phone: Some(field(&f, "phone").into()),
            password: field(&f, "password").into(),
        };
        let email = input.email.clone();
        let password = Zeroizing::new(input.password.clone());
        svc::signup(&st, peer.ip(), input).await?;
        // Signed in at once, then on to the policy (P8) before anything else. If
        // the address was registered already, sign-up wrote nothing and this fails
        // as any sign-in with a wrong password would: the page says what to do,
        // never that the address is taken (P4.8(3)).
        let previous = svc::cookie_token(&headers);
        let signed = svc::login(
            &st,
            peer.ip(),
            LoginKind::Individual,
            &email,
            password,
            previous.as_deref(),
        )
        .await;
        let (token, _) = signed.map_err(|e| match e.body.code.as_str() {
            "auth.failed" => ApiError::new(
                e.status,
                "auth.failed",
                mebyo_domain::clause!("P4.8(2)"),
                l.t(
                    "この内容では登録を完了できませんでした。すでに登録済みの方は、そのパスワードでログインしてください。そうでない場合は運営事務局にお問い合わせください。",
                    "Sign-up could not be completed with these details. If you are registered already, sign in with your password; otherwise, contact the operations office.",
                ),
            ),
            _ => e,
        })?;
        let mut r = see_other("/policy");
        r.headers_mut().insert(
            header::SET_COOKIE,
            session_cookie(&token, st.cfg.sessions.absolute_us / 1_000_000),
        );
        Ok::<_, ApiError>(r)
    };
    run.await.page(l, "/signup")
}

async fn policy_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let (a, cookie) = form_session(&st, &headers).page(l, "/policy")?;
    let version = svc::policy(&st).await.page(l, "/")?;
    let accepted = match &a.session.principal {
        Principal::Individual { person, .. } => Some(
            st.platform
                .person_state(person)
                .await
                .map_err(ApiError::from)
                .page(l, "/")?
                .accepted_policy
                .as_ref()
                .map(|p| p.to_string()),
        ),
        _ => None,
    };
    let body = html! {
        @match &version {
            None => p { (l.t("現在施行中のポリシーはありません。", "No policy version is in force.")) },
            Some(v) => {
                p {
                    (l.t("施行中の版: ", "Version in force: ")) code { (v.id) }
                    br;
                    (l.t("施行日: ", "In force from: ")) (jst(&v.in_force_from))
                    br;
                    (l.t("適用日: ", "Applies from: ")) (jst(&v.applies_from))
                }
                p { (l.t("神奈川県健康情報等プラットフォーム及びマイME-BYOカルテのセキュリティポリシー（原文は日本語）。県は事前の同意なくポリシーを改定できます（第8条）。",
                        "The security policy of the Kanagawa health information platform and My ME-BYO Karte (the Japanese original governs). The prefecture may revise it without prior consent (clause 8).")) }
                @if let Some(acc) = &accepted {
                    @if acc.as_deref() == Some(v.id.as_str()) {
                        p.ok role="status" { (l.t("この版に同意済みです。", "You have accepted this version.")) }
                        p { a href="/portal" { (l.t("記録へ進む", "Go to my records")) } }
                    } @else {
                        form.card method="post" action="/policy/accept" {
                            input type="hidden" name="csrf" value=(a.session.csrf);
                            button type="submit" { (l.t("この版に同意する", "Accept this version")) }
                        }
                    }
                }
            }
        }
    };
    Ok(with_cookie(
        signed_page(
            l,
            &a,
            l.t("セキュリティポリシー", "Security policy"),
            "/policy",
            body,
        ),
        cookie,
    ))
}

async fn policy_accept(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        svc::accept_policy(&st, &a).await?;
        Ok::<_, ApiError>(see_other("/portal"))
    };
    run.await.page(l, "/policy")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/lang/{to}", get(set_lang))
        .route("/login", get(login_page).post(login_post))
        .route("/ops/login", get(ops_login_page).post(ops_login_post))
        .route("/logout", post(logout))
        .route("/signup", get(signup_page).post(signup_post))
        .route("/policy", get(policy_page))
        .route("/policy/accept", post(policy_accept))
        .merge(crate::portal_pages::routes())
        .merge(crate::ops_dashboard::routes())
        .merge(crate::ops_pages::routes())
        .merge(crate::staff_signin::routes())
}

#[cfg(test)]
mod tests {
    use super::same_origin_path;

    /// Issue 22 §7: `/lang/en?back=/%09/evil.example` redirected off the site.
    /// Inputs as the query decoder hands them over (percent-decoded).
    #[test]
    fn lang_back_is_a_path_on_this_site_only() {
        for ok in [
            "/",
            "/portal",
            "/ops/incidents/inc-2025-0001",
            "/a/b?c=d",
            "/%2F",
        ] {
            assert!(same_origin_path(ok), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            "portal",
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{a0}/evil.example",
            "/\u{3000}/evil.example",
            "/p\\..\\evil",
            "https://evil.example/",
            "/\u{2028}/evil.example",
            "/ポータル",
            &format!("/{}", "a".repeat(200)),
        ] {
            assert!(!same_origin_path(bad), "{bad:?} should be refused");
        }
    }
}
