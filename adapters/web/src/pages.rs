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
use mebyo_domain::fhir::VitalKind;
use mebyo_domain::records::RecordEntry;
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

fn category_name(l: Lang, c: Category) -> &'static str {
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

fn purpose_name(l: Lang, p: Purpose) -> &'static str {
    match p {
        Purpose::Care => l.t("診療", "Care"),
        Purpose::HealthGuidance => l.t("保健指導", "Health guidance"),
        Purpose::CheckupFollowUp => l.t("健診後のフォロー", "Check-up follow-up"),
        Purpose::MedicationReview => l.t("服薬確認", "Medication review"),
        Purpose::PersonalUse => l.t("本人利用", "Personal use"),
    }
}

fn enum_key<T: serde::Serialize>(v: T) -> String {
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

fn see_other(to: &str) -> Response {
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
    serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::invalid("P4.5(1)(2)", "the form could not be read"))
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
    let (token, _) = svc::login(
        st,
        peer.ip(),
        kind,
        field(&f, "login"),
        Zeroizing::new(field(&f, "password").to_string()),
        previous.as_deref(),
    )
    .await?;
    let mut r = see_other(match kind {
        LoginKind::Staff => "/ops",
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
                "P4.8(2)",
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

// ---- portal -----------------------------------------------------------------------------

fn signed_individual(st: &AppState, headers: &HeaderMap, l: Lang) -> Result<Authed, PageError> {
    let a = svc::signed_in(st, headers).page(l, "/portal")?;
    svc::individual(&a).page(l, "/")?;
    Ok(a)
}

/// A line chart of one or two series over time, as inline SVG.
/// (name, colour, points as (time µs, value)).
type Series<'a> = (&'a str, &'a str, Vec<(i64, f64)>);

fn chart(l: Lang, label: &str, unit: &str, series: &[Series]) -> Markup {
    let (w, h, pad) = (600.0, 220.0, 36.0);
    let pts: Vec<&(i64, f64)> = series.iter().flat_map(|s| s.2.iter()).collect();
    if pts.is_empty() {
        return html! { p { (l.t("まだ記録がありません。", "No readings yet.")) } };
    }
    let (t0, t1) = pts
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (v0, v1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (v0, v1) = ((v0 - 5.0).floor(), (v1 + 5.0).ceil());
    let x = |t: i64| {
        if t1 == t0 {
            w / 2.0
        } else {
            pad + (t - t0) as f64 / (t1 - t0) as f64 * (w - 2.0 * pad)
        }
    };
    let y = |v: f64| h - pad - (v - v0) / (v1 - v0) * (h - 2.0 * pad);
    let date = |t: i64| {
        jst(&mebyo_platform::world::rfc3339_jst(
            mebyo_domain::Timestamp(t),
        ))[..10]
            .to_string()
    };
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(format!("{label} ({unit})")) {
                title { (label) " (" (unit) ")" }
                line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#444" {}
                line x1=(pad) y1=(pad) x2=(pad) y2=(h - pad) stroke="#444" {}
                text x="2" y=(pad + 4.0) font-size="12" fill="#1a1a1a" { (v1) }
                text x="2" y=(h - pad) font-size="12" fill="#1a1a1a" { (v0) }
                text x=(pad) y=(h - 8.0) font-size="12" fill="#1a1a1a" { (date(t0)) }
                text x=(w - pad) y=(h - 8.0) font-size="12" fill="#1a1a1a" text-anchor="end" { (date(t1)) }
                @for (_, color, s) in series {
                    polyline fill="none" stroke=(*color) stroke-width="2"
                        points=(s.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ")) {}
                    @for (t, v) in s {
                        circle cx=(format!("{:.1}", x(*t))) cy=(format!("{:.1}", y(*v))) r="3" fill=(*color) {}
                    }
                }
            }
            figcaption {
                (label) " (" (unit) ") "
                @for (name, color, _) in series {
                    span.key { svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(*color) {} } " " (name) " " }
                }
            }
        }
    }
}

fn provenance_text(l: Lang, r: &svc::RecordView) -> String {
    let origin = if r.origin == "self_entered" {
        l.t("本人入力", "self-entered")
    } else {
        l.t("医療機関", "medical institution")
    };
    match &r.original_identifier {
        Some(id) => format!("{origin} · {} · {id}", r.created_by),
        None => format!("{origin} · {}", r.created_by),
    }
}

async fn portal(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let me = svc::me(&st, &a).await.page(l, "/")?;
    let records: Vec<RecordEntry> = svc::my_records(&st, &a).await.page(l, "/")?;
    let mut bp_sys = vec![];
    let mut bp_dia = vec![];
    let mut weight = vec![];
    for r in records.iter().rev() {
        match r.vital {
            Some(VitalKind::BloodPressure) => {
                if let Some((s, d)) = svc::Glance::of(&r.resource).bp_values() {
                    bp_sys.push((r.effective_at.0, s));
                    bp_dia.push((r.effective_at.0, d));
                }
            }
            Some(VitalKind::Weight) => {
                if let Some((v, _)) = svc::Glance::of(&r.resource).value_quantity() {
                    weight.push((r.effective_at.0, v));
                }
            }
            _ => {}
        }
    }
    let views: Vec<svc::RecordView> = records.iter().map(svc::record_view).collect();
    let csrf = a.session.csrf.clone();
    let needs_policy = me.policy_in_force.is_some() && me.policy_accepted != me.policy_in_force;
    let body = html! {
        @if let Some(name) = &me.name { p { (name) (l.t(" さん", "")) } }
        @if needs_policy {
            p.warn role="alert" { (l.t("新しいセキュリティポリシーへの同意が必要です。", "Please accept the security policy in force.")) " "
                a href="/policy" { (l.t("確認する", "Review it")) } }
        }
        @if q.done.as_deref() == Some("vitals") { p.ok role="status" { (l.t("記録しました。", "Saved.")) } }
        section aria-labelledby="bp-h" {
            h2 id="bp-h" { (l.t("血圧を記録", "Record blood pressure")) }
            form.card method="post" action="/portal/vitals" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="blood_pressure";
                label for="systolic" { (l.t("最高血圧（mmHg）", "Systolic (mmHg)")) }
                input id="systolic" name="systolic" type="number" inputmode="numeric" min="50" max="300" required;
                label for="diastolic" { (l.t("最低血圧（mmHg）", "Diastolic (mmHg)")) }
                input id="diastolic" name="diastolic" type="number" inputmode="numeric" min="20" max="200" required;
                label for="bp_at" { (l.t("測定日時（空欄なら現在）", "Measured at (blank: now)")) }
                input id="bp_at" name="at" type="datetime-local";
                button type="submit" { (l.t("記録する", "Save")) }
            }
        }
        section aria-labelledby="wt-h" {
            h2 id="wt-h" { (l.t("体重を記録", "Record weight")) }
            form.card method="post" action="/portal/vitals" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="body_weight";
                label for="kg" { (l.t("体重（kg）", "Weight (kg)")) }
                input id="kg" name="kg" type="number" inputmode="decimal" min="1" max="500" step="0.1" required;
                label for="wt_at" { (l.t("測定日時（空欄なら現在）", "Measured at (blank: now)")) }
                input id="wt_at" name="at" type="datetime-local";
                button type="submit" { (l.t("記録する", "Save")) }
            }
        }
        section aria-labelledby="charts-h" {
            h2 id="charts-h" { (l.t("推移", "Over time")) }
            (chart(l, l.t("血圧", "Blood pressure"), "mmHg", &[
                (l.t("最高", "systolic"), "#b3261e", bp_sys),
                (l.t("最低", "diastolic"), "#0b57d0", bp_dia),
            ]))
            (chart(l, l.t("体重", "Weight"), "kg", &[(l.t("体重", "weight"), "#146c2e", weight)]))
        }
        section aria-labelledby="list-h" {
            h2 id="list-h" { (l.t("記録一覧", "All records")) }
            @if views.is_empty() { p { (l.t("まだ記録がありません。", "No records yet.")) } }
            @else {
                div.scroll {
                    table {
                        caption.sr { (l.t("記録一覧（新しい順）", "Records, newest first")) }
                        thead { tr {
                            th scope="col" { (l.t("日時", "When")) }
                            th scope="col" { (l.t("種類", "Kind")) }
                            th scope="col" { (l.t("値", "Value")) }
                            th scope="col" { (l.t("出所", "Provenance")) }
                        } }
                        tbody {
                            @for r in &views {
                                tr {
                                    td { (jst(&r.effective_at)) }
                                    td { (category_name(l, r.category)) @if let Some(v) = &r.vital { " · " (v) } }
                                    td { (r.summary) }
                                    td.prov { (provenance_text(l, r)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("わたしの記録", "My records"),
        "/portal",
        body,
    ))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn vitals_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let at = Some(field(&f, "at").to_string());
        let num = |name: &str| -> Result<f64, ApiError> {
            field(&f, name)
                .trim()
                .parse::<f64>()
                .map_err(|_| ApiError::invalid("P2(1)", format!("{name} must be a number")))
        };
        let input = match field(&f, "kind") {
            "blood_pressure" => svc::VitalInput::BloodPressure {
                systolic: num("systolic")? as u32,
                diastolic: num("diastolic")? as u32,
                at,
            },
            "body_weight" => svc::VitalInput::BodyWeight { kg: num("kg")?, at },
            _ => return Err(ApiError::invalid("P2(1)", "unknown kind of reading")),
        };
        svc::add_vital(&st, &a, input).await?;
        Ok(see_other("/portal?done=vitals"))
    };
    run.await.page(l, "/portal")
}

const PURPOSES: [Purpose; 4] = [
    Purpose::Care,
    Purpose::HealthGuidance,
    Purpose::CheckupFollowUp,
    Purpose::MedicationReview,
];

async fn consents_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let consents = svc::my_consents(&st, &a).await.page(l, "/portal")?;
    st.caught_up().await;
    let providers = svc::providers(&st, true);
    let csrf = &a.session.csrf;
    let body = html! {
        @match q.done.as_deref() {
            Some("granted") => p.ok role="status" { (l.t("同意しました。", "Consent granted.")) },
            Some("revoked") => p.ok role="status" { (l.t("同意を撤回しました。", "Consent revoked.")) },
            _ => {}
        }
        section aria-labelledby="grant-h" {
            h2 id="grant-h" { (l.t("事業者に同意する", "Grant a provider access")) }
            @if providers.is_empty() { p { (l.t("同意できる事業者はまだありません。", "No approved providers yet.")) } }
            @else {
                form.card method="post" action="/portal/consents" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="provider" { (l.t("事業者", "Provider")) }
                    select id="provider" name="provider" required {
                        @for p in &providers { option value=(p.provider) { (p.provider) } }
                    }
                    fieldset {
                        legend { (l.t("提供するデータの種類", "Kinds of data")) }
                        @for c in Category::ALL {
                            @let key = enum_key(c);
                            div.check {
                                input type="checkbox" id={"cat-" (key)} name="categories" value=(key) checked[c == Category::Vitals];
                                label for={"cat-" (key)} { (category_name(l, c)) }
                            }
                        }
                    }
                    label for="purpose" { (l.t("利用目的", "Purpose")) }
                    select id="purpose" name="purpose" required {
                        @for p in PURPOSES { option value=(enum_key(p)) { (purpose_name(l, p)) } }
                    }
                    label for="days" { (l.t("有効期間（日）", "Valid for (days)")) }
                    input id="days" name="days" type="number" min="1" max="3650" value="90" required;
                    button type="submit" { (l.t("同意する", "Grant consent")) }
                }
            }
        }
        section aria-labelledby="list-h" {
            h2 id="list-h" { (l.t("これまでの同意", "My consents")) }
            @if consents.is_empty() { p { (l.t("同意はありません。", "No consents.")) } }
            @else {
                ul.items {
                    @for c in &consents {
                        li.card {
                            p {
                                strong { (c.provider) } " · " (purpose_name(l, c.purpose)) " · "
                                @for (i, cat) in c.categories.iter().enumerate() { @if i > 0 { "、" } (category_name(l, *cat)) }
                            }
                            p {
                                (l.t("状態: ", "State: "))
                                @match c.state.as_str() {
                                    "active" => (l.t("有効", "active")),
                                    "revoked" => (l.t("撤回済み", "revoked")),
                                    _ => (l.t("期限切れ", "expired")),
                                }
                                " · " (l.t("期限: ", "Expires: ")) (jst(&c.expires_at))
                            }
                            @if c.state == "active" {
                                form method="post" action={"/portal/consents/" (c.consent) "/revoke"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.secondary type="submit" aria-label={(l.t("撤回: ", "Revoke: ")) (c.provider)} { (l.t("撤回する", "Revoke")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("同意の管理", "My consents"),
        "/portal/consents",
        body,
    ))
}

async fn consents_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let categories = f
            .iter()
            .filter(|(k, _)| k == "categories")
            .map(|(_, v)| svc::parse_categories(v))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let input = svc::ConsentInput {
            provider: field(&f, "provider").into(),
            categories,
            purpose: svc::parse_purpose(field(&f, "purpose"))?,
            days: field(&f, "days")
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid("P4.6(2)", "days must be a number"))?,
            years_back: None,
        };
        svc::grant_consent(&st, &a, input).await?;
        Ok::<_, ApiError>(see_other("/portal/consents?done=granted"))
    };
    run.await.page(l, "/portal/consents")
}

async fn consent_revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(consent): Path<String>,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        svc::revoke_consent(&st, &a, &consent).await?;
        Ok::<_, ApiError>(see_other("/portal/consents?done=revoked"))
    };
    run.await.page(l, "/portal/consents")
}

async fn access_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let lines = svc::my_access_log(&st, &a, 200).await.page(l, "/portal")?;
    let body = html! {
        p { (l.t("あなたのデータへのすべてのアクセスと拒否を新しい順に表示します（第4.6条(2)）。",
                 "Every access to your data, and every refusal, newest first (clause 4.6(2)).")) }
        @if lines.is_empty() { p { (l.t("まだアクセスはありません。", "No access yet.")) } }
        @else {
            ul.items {
                @for x in &lines {
                    li.card.access {
                        p {
                            strong {
                                @match x.who.as_str() {
                                    "themselves" => (l.t("ご本人", "You")),
                                    "provider" => { (l.t("事業者 ", "Provider ")) (x.who_id.as_deref().unwrap_or("")) }
                                    "representative" => { (l.t("代理人 ", "Representative ")) (x.who_id.as_deref().unwrap_or("")) }
                                    "staff" => { (l.t("職員 ", "Staff ")) (x.who_id.as_deref().unwrap_or("")) }
                                    other => (other),
                                }
                            }
                            " · " (jst(&x.at))
                        }
                        p {
                            @if x.outcome == "granted" { span.granted { (l.t("閲覧", "Read")) } }
                            @else { span.refused { (l.t("拒否", "Refused")) } }
                            " · " (l.t("目的: ", "Purpose: ")) (purpose_name(l, x.purpose))
                            " · " @for (i, cat) in x.categories.iter().enumerate() { @if i > 0 { "、" } (category_name(l, *cat)) }
                        }
                        @if let Some(c) = &x.consent { p { (l.t("根拠となった同意: ", "Consent relied on: ")) code { (c) } } }
                        @if let (Some(code), Some(clause)) = (&x.refusal_code, &x.refusal_clause) {
                            p { (l.t("拒否理由: ", "Refusal: ")) code { (code) } " (" (clause) ")" }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("わたしのデータの閲覧履歴", "Who accessed my data"),
        "/portal/access",
        body,
    ))
}

/// Change one's own password (P4.8(2)): individuals and staff alike; staff replace
/// the one-time password printed when the platform was created.
async fn password_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/login")?;
    let body = html! {
        p { (l.t("変更すると、この端末を含むすべてのセッションが終了します。新しいパスワードで再度ログインしてください。",
                 "Changing it ends every session of this account, this one included; sign in again with the new password.")) }
        form.card method="post" action="/account/password" {
            input type="hidden" name="csrf" value=(a.session.csrf);
            label for="current_password" { (l.t("現在のパスワード", "Current password")) }
            input #current_password type="password" name="current_password" autocomplete="current-password" required;
            label for="new_password" { (l.t("新しいパスワード（10文字以上）", "New password (at least 10 characters)")) }
            input #new_password type="password" name="new_password" autocomplete="new-password" minlength="10" required;
            button type="submit" { (l.t("変更する", "Change password")) }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("パスワード変更", "Change password"),
        "/account/password",
        body,
    ))
}

async fn password_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let staff = matches!(a.session.principal, Principal::Staff { .. });
        let input = svc::PasswordChange {
            current_password: field(&f, "current_password").to_string(),
            new_password: field(&f, "new_password").to_string(),
        };
        svc::change_password(&st, &a, input).await?;
        // Every session ended, this one too: back to the right sign-in page.
        Ok(see_other(if staff {
            "/ops/login?done=password"
        } else {
            "/login?done=password"
        }))
    };
    run.await.page(l, "/account/password")
}

async fn notices_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let body = html! {
        @if st.cfg.notices.is_empty() {
            p { (l.t("予定されているメンテナンスはありません。", "No maintenance is scheduled.")) }
        } @else {
            ul.items {
                @for n in &st.cfg.notices {
                    li.card { p { strong { (match l { Lang::Ja => &n.title_ja, Lang::En => &n.title_en }) } }
                        p { (jst(&n.starts_at)) " – " (jst(&n.ends_at)) } }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("メンテナンスのお知らせ", "Maintenance notices"),
        "/portal/notices",
        body,
    ))
}

// ---- dashboard --------------------------------------------------------------------------

fn bars(label: &str, data: &[(String, u32)]) -> Markup {
    let (w, h, pad) = (600.0, 160.0, 24.0);
    let max = data.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let bw = if data.is_empty() {
        0.0
    } else {
        (w - 2.0 * pad) / data.len() as f64
    };
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) {
                title { (label) }
                line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#444" {}
                @for (i, (_, n)) in data.iter().enumerate() {
                    @let bh = *n as f64 / max * (h - 2.0 * pad);
                    rect x=(format!("{:.1}", pad + i as f64 * bw + 2.0)) y=(format!("{:.1}", h - pad - bh))
                        width=(format!("{:.1}", (bw - 4.0).max(1.0))) height=(format!("{:.1}", bh)) fill="#0b57d0" {}
                }
                text x="2" y=(pad) font-size="12" fill="#1a1a1a" { (max) }
            }
            figcaption { (label) }
        }
    }
}

async fn dashboard(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops")?;
    let s = svc::ops_summary(&st, &a).await.page(l, "/")?;
    let no_access = Vec::new();
    let access = s.access.as_ref().unwrap_or(&no_access);
    let volume: Vec<(String, u32)> = {
        let mut by_hour = std::collections::BTreeMap::<String, u32>::new();
        for p in access {
            for (h, g, r) in &p.last_24h {
                *by_hour.entry(h.clone()).or_default() += g + r;
            }
        }
        by_hour.into_iter().collect()
    };
    let none = l.t("記録なし", "none recorded");
    let forms = crate::ops_pages::forms(&st, &a);
    let csrf = a.session.csrf.as_str();
    let body = html! {
        p { (l.t("集計のみを表示し、健康情報は表示しません（第4.6条(2)）。", "Aggregates only; no health content is shown (clause 4.6(2)).")) " "
            (l.t("表示内容は役割によります（第3.1条）。", "What is shown depends on your role (clause 3.1).")) " "
            (l.t("更新: ", "As of ")) (jst(&s.generated_at)) }
        div.grid {
            @if let (Some(r), Some(per_day)) = (&s.registrations, &s.registrations_per_day) {
                section.card #panel-registrations aria-labelledby="reg-h" {
                    h2 id="reg-h" { (l.t("登録者", "Registrations")) }
                    dl.kv {
                        dt { (l.t("登録累計", "Registered")) } dd #registered { (r.registered) }
                        dt { (l.t("利用中", "Active")) } dd { (r.active) }
                        dt { (l.t("退会（消去待ち）", "Withdrawn")) } dd { (r.withdrawn) }
                        dt { (l.t("消去済み", "Erased")) } dd { (r.erased) }
                    }
                    (bars(l.t("日別登録数（14日）", "Registrations per day (14 days)"), per_day))
                }
            }
            @if let Some(c) = &s.consents {
                section.card #panel-consents aria-labelledby="con-h" {
                    h2 id="con-h" { (l.t("同意", "Consents")) }
                    dl.kv {
                        dt { (l.t("有効", "Active")) } dd #consents-active { (c.active) }
                        dt { (l.t("撤回", "Revoked")) } dd #consents-revoked { (c.revoked) }
                        dt { (l.t("期限切れ", "Expired")) } dd { (c.expired) }
                    }
                }
            }
            @if let Some(c) = &s.chain {
                section.card #panel-chain aria-labelledby="chain-h" {
                    h2 id="chain-h" { (l.t("監査チェーン", "Audit chain")) }
                    dl.kv {
                        dt { (l.t("イベント数", "Events")) } dd #head-count { (c.head_count) }
                        dt { (l.t("先頭ハッシュ", "Head hash")) } dd { code.hash #head-hash { (c.head_hash) } }
                        dt { (l.t("集計済み位置", "Projected to")) } dd { (c.projected_position) }
                        dt { (l.t("最新チェックポイント", "Last checkpoint")) }
                        dd #last-checkpoint {
                            @match &c.last_checkpoint {
                                Some(k) => { (jst(&k.at)) " · " (l.t("木のサイズ ", "tree size ")) (k.tree_size) " · " code.hash { (k.root_hash) } }
                                None => { (none) }
                            }
                        }
                        dt { (l.t("最終検証（復元訓練）", "Last verification (restore drill)")) }
                        dd #last-verification {
                            @match &c.last_verification {
                                Some(v) => { (jst(&v.at)) " · " (v.events) (l.t(" 件一致", " events matched")) " · " code { (v.full) } }
                                None => { (none) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(providers) = &s.providers {
            section.card #panel-providers aria-labelledby="prov-h" {
                h2 id="prov-h" { (l.t("事業者と閲覧数", "Providers and reads")) }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { (l.t("事業者", "Provider")) }
                        th scope="col" { (l.t("状態", "State")) }
                        th scope="col" { (l.t("接続", "Connection")) }
                        @if s.access.is_some() {
                            th scope="col" { (l.t("閲覧", "Reads")) }
                            th scope="col" { (l.t("拒否", "Refused")) }
                        }
                    } }
                    tbody {
                        @for p in providers {
                            @let acc = access.iter().find(|x| x.provider == p.provider);
                            tr {
                                td { (p.provider) }
                                td { (p.status) }
                                td { (p.connection.as_deref().unwrap_or("-")) }
                                @if s.access.is_some() {
                                    td.num data-provider=(p.provider) data-kind="granted" { (acc.map_or(0, |x| x.granted)) }
                                    td.num data-provider=(p.provider) data-kind="refused" { (acc.map_or(0, |x| x.refused)) }
                                }
                            }
                        }
                    }
                } }
                @if s.access.is_some() {
                    (bars(l.t("直近24時間の閲覧数（時間別）", "Reads in the last 24 hours, by hour"), &volume))
                }
            }
        }
        div.grid {
            @if let Some(refusals) = &s.refusals {
                section.card #panel-refusals aria-labelledby="ref-h" {
                    h2 id="ref-h" { (l.t("拒否の内訳", "Refusals by code")) }
                    @if refusals.is_empty() { p { (l.t("なし", "None")) } }
                    ul { @for (code, n) in refusals { li { code { (code) } ": " (n) } } }
                }
            }
            @if let (Some(near), Some(expired), Some(revoked)) = (&s.credentials_near_expiry, &s.credentials_expired, s.revocations) {
                section.card #panel-credentials aria-labelledby="cred-h" {
                    h2 id="cred-h" { (l.t("接続情報", "Connection information")) }
                    p { (l.t("30日以内に期限: ", "Expiring within 30 days: ")) (near.len())
                        " · " (l.t("期限切れ: ", "Expired: ")) (expired.len())
                        " · " (l.t("取消: ", "Revoked: ")) (revoked) }
                    ul { @for c in near.iter().take(20) { li { code { (c.credential) } " " (c.holder) " → " (jst(&c.expires_at)) } } }
                    @if forms.revoke { (crate::ops_pages::revoke_form(l, csrf)) }
                }
            }
            @if let Some(b) = &s.backups {
                section.card #panel-backups aria-labelledby="bak-h" {
                    h2 id="bak-h" { (l.t("バックアップ（第4.10条）", "Backups (clause 4.10)")) }
                    @if b.overdue {
                        div.error role="alert" #backup-overdue {
                            @for f in &b.flags { p { (f) } }
                        }
                    }
                    dl.kv {
                        dt { (l.t("最新の完全バックアップ", "Last full")) }
                        dd #last-full { (backup_run(l, b.last_full.as_ref())) }
                        dt { (l.t("最新の差分バックアップ", "Last differential")) }
                        dd #last-differential { (backup_run(l, b.last_differential.as_ref())) }
                        dt { (l.t("完了 / 失敗", "Completed / failed")) } dd { (b.completed) " / " (b.failures) }
                        dt { (l.t("最新の失敗", "Last failure")) }
                        dd #last-failure {
                            @match &b.last_failure {
                                Some(f) => { (jst(&f.at)) " · " (f.operation) @if let Some(k) = &f.kind { " (" (k) ")" } }
                                None => { (l.t("なし", "none")) }
                            }
                        }
                        dt { (l.t("鍵エポック更新", "Epoch rotation")) }
                        dd { (b.last_epoch_rotation.as_deref().map(jst).unwrap_or_else(|| none.to_string())) }
                    }
                    @if forms.backup { (crate::ops_pages::backup_form(l, csrf)) }
                }
            }
            @if let Some(i) = &s.incidents {
                section.card #panel-incidents aria-labelledby="inc-h" {
                    h2 id="inc-h" { (l.t("インシデント（第4.14条）", "Incidents (clause 4.14)")) }
                    p { (l.t("対応中: ", "Open: ")) span #incidents-open { (i.open.len()) }
                        " · " (l.t("終了: ", "Closed: ")) span #incidents-closed { (i.closed) } }
                    @if !i.open.is_empty() {
                        ul #open-incidents {
                            @for x in &i.open {
                                li { a href=(x.report_url) { code { (x.incident) } } " " (x.kind) " · " (jst(&x.reported_at))
                                    " · " (l.t("未実施の手順: ", "steps missing: ")) (x.missing_steps) }
                            }
                        }
                    }
                    @if !i.recently_closed.is_empty() {
                        h3 { (l.t("最近終了したもの", "Recently closed")) }
                        ul { @for x in &i.recently_closed { li { a href=(x.report_url) { code { (x.incident) } } " " (x.kind) " · " (jst(&x.reported_at)) } } }
                    }
                    @if forms.incidents { (crate::ops_pages::report_form(l, csrf)) }
                }
            }
            @if let Some(due) = &s.staff_training_due {
                section.card #panel-staff aria-labelledby="staff-h" {
                    h2 id="staff-h" { (l.t("職員研修", "Staff training")) }
                    p { (l.t("研修期限が近い職員: ", "Staff training due: ")) (due.len()) }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("運用ダッシュボード", "Operations dashboard"),
        "/ops",
        body,
    ))
}

fn backup_run(l: Lang, r: Option<&svc::BackupRunView>) -> Markup {
    html! {
        @match r {
            Some(r) => {
                (jst(&r.started_at)) " · " code { (r.backup_id) }
                @if let (Some(from), Some(to)) = (r.from, r.to) { " · " (l.t("位置 ", "positions ")) (from) "–" (to) }
            }
            None => { (l.t("なし", "none")) }
        }
    }
}

/// One incident's report (P4.14): how the runbook was followed, what was
/// affected (counts only), who was told. From the incident's own stream.
async fn incident_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops")?;
    let r = svc::incident_report(&st, &a, &id).await.page(l, "/ops")?;
    let missing: Vec<String> = r
        .compliance
        .iter()
        .filter(|c| c.status == mebyo_operations::report::StepStatus::Missing)
        .map(|c| c.step.to_string())
        .collect();
    let can_act = r.closed_at.is_none() && crate::ops_pages::forms(&st, &a).incidents;
    let body = html! {
        p { a href="/ops" { (l.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
        p #incident-status { (r.title) " · " (l.t("根拠条項 ", "clause ")) code { (r.clause) } " · "
            (l.t("状態: ", "status: ")) strong { (r.status) } " · "
            @if r.compliant { (l.t("手順はすべて実施済み", "runbook complete")) }
            @else { strong.warn { (l.t("未実施の手順あり", "runbook INCOMPLETE")) } } }
        dl.kv {
            dt { (l.t("報告", "Reported")) } dd { (jst(&r.reported_at)) }
            dt { (l.t("発見", "Detected")) } dd { (jst(&r.detected_at)) }
            dt { (l.t("報告者", "Reported by")) } dd { (r.reported_by) }
            dt { (l.t("経緯", "Source")) } dd { (r.source) }
            dt { (l.t("委託先", "Contractor")) } dd { (r.contractor.as_deref().unwrap_or("—")) }
            dt { (l.t("VPN使用", "VPN used")) } dd { (r.vpn_used) }
            dt { (l.t("終了", "Closed")) } dd { (r.closed_at.as_deref().map(jst).unwrap_or_else(|| "—".into())) }
        }
        section.card aria-labelledby="rb-h" {
            h2 id="rb-h" { (l.t("手順の実施状況", "Runbook compliance")) }
            div.scroll { table #runbook {
                thead { tr {
                    th scope="col" { (l.t("手順", "Step")) }
                    th scope="col" { (l.t("条項", "Clause")) }
                    th scope="col" { (l.t("ポリシーの記載", "Policy")) }
                    th scope="col" { (l.t("担当", "Who")) }
                    th scope="col" { (l.t("状態", "Status")) }
                    th scope="col" { (l.t("実施", "Done")) }
                    th scope="col" { (l.t("報告からの分", "Minutes after report")) }
                } }
                tbody {
                    @for c in &r.compliance {
                        tr data-step=(c.step) {
                            td { code { (c.step) } }
                            td { (c.clause) }
                            td lang="ja" { (c.policy_text) }
                            td { (c.who) }
                            td data-status=(enum_key(c.status)) { (enum_key(c.status)) }
                            td { (c.done_at.as_deref().map(jst).unwrap_or_default()) " " (c.by.as_deref().unwrap_or("")) }
                            td.num { (c.minutes_after_report.map(|m| m.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            } }
        }
        div.grid {
            section.card aria-labelledby="aff-h" {
                h2 id="aff-h" { (l.t("影響（件数のみ）", "Affected (counts only)")) }
                dl.kv {
                    dt { (l.t("評価済み", "Assessed")) } dd { (r.affected.assessed) }
                    dt { (l.t("漏えいの可能性", "Leak possible")) } dd { (r.affected.leak_possible) }
                    dt { (l.t("本人の情報", "Individuals' data")) } dd { (r.affected.individuals_data) }
                    dt { (l.t("対象者数", "Individuals")) } dd { (r.affected.individuals) }
                    dt { (l.t("記録数", "Records")) } dd { (r.affected.records) }
                }
            }
            section.card aria-labelledby="not-h" {
                h2 id="not-h" { (l.t("連絡", "Notifications")) }
                @if r.notifications.is_empty() { p { (l.t("なし", "None")) } }
                ul { @for n in &r.notifications { li { (jst(&n.at)) " → " (n.to) @if n.count > 0 { " (" (n.count) ")" } " · " (n.by) } } }
                @if !r.credentials_rotated.is_empty() {
                    h3 { (l.t("変更した接続情報", "Connection information changed")) }
                    ul { @for c in &r.credentials_rotated { li { code { (c.revoked) } " → " code { (c.issued) } } } }
                }
            }
        }
        @if can_act {
            section.card aria-labelledby="act-h" {
                h2 id="act-h" { (l.t("対応を記録する", "Record the response")) }
                (crate::ops_pages::incident_forms(l, &a.session.csrf, &r.incident, &missing))
            }
        }
        section.card aria-labelledby="tl-h" {
            h2 id="tl-h" { (l.t("経過", "Timeline")) }
            ol #timeline { @for t in &r.timeline { li { (jst(&t.at)) " · " (t.what) @if let Some(b) = &t.by { " · " (b) } " · " code { (t.clause) } } } }
        }
    };
    let title = format!("{} {}", l.t("インシデント", "Incident"), r.incident);
    Ok(signed_page(l, &a, &title, "/ops", body))
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
        .route("/portal", get(portal))
        .route("/portal/vitals", post(vitals_post))
        .route("/portal/consents", get(consents_page).post(consents_post))
        .route("/portal/consents/{consent}/revoke", post(consent_revoke))
        .route("/portal/access", get(access_page))
        .route("/portal/notices", get(notices_page))
        .route("/ops", get(dashboard))
        .route("/account/password", get(password_page).post(password_post))
        .route("/ops/incidents/{id}", get(incident_page))
        .merge(crate::ops_pages::routes())
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
