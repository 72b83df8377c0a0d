//! Staff sign-in done properly (issue 15 §5): a one-time password is replaced at
//! the first sign-in, privileged staff confirm a second factor (TOTP, RFC 6238)
//! enrolled then, and a sign-in is reset only by the role the policy allows.
//!
//! A password that verifies gives a staff member a *pending* session
//! (`Principal::StaffPending`), which acts for nobody, until the steps left are
//! done: change the password, enrol a second factor, give its code. Which steps
//! are left follows the auth data area (`must_change`, an enrolled secret) and
//! the domain's rule of who needs a second factor
//! (`mebyo_domain::staff::second_factor_required`); who may reset whom is the
//! staff decider's (`StaffCommand::ResetSignIn`). Each change is an event: the
//! reset, the password change, the enrolment — never the password or the secret,
//! which stay in `DATA/auth` (the secret sealed, `KeyRing::seal_sign_in_secret`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use mebyo_crypto::{TotpSecret, Zeroizing, totp_step};
use mebyo_domain::signin::totp_steps;
use mebyo_domain::staff::{Role, StaffCommand, second_factor_required};
use mebyo_domain::{Actor, StaffId, Timestamp};
use mebyo_platform::auth::{AuthEntry, Subject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, outcome};
use crate::ops_api::Recorded;
use crate::session::{Pending, PendingSecret, Principal};
use crate::svc::Authed;

/// The principal a staff member's verified password gives: signed in, or the
/// first step left.
pub fn after_password(staff: StaffId, entry: &AuthEntry, roles: &BTreeSet<Role>) -> Principal {
    match next_step(entry, roles) {
        Some(next) => Principal::StaffPending { staff, next },
        None => Principal::Staff { staff },
    }
}

fn next_step(entry: &AuthEntry, roles: &BTreeSet<Role>) -> Option<Pending> {
    if entry.must_change {
        return Some(Pending::ChangePassword);
    }
    if !second_factor_required(roles) {
        return None;
    }
    Some(match entry.totp_sealed {
        Some(_) => Pending::SecondFactor,
        None => Pending::EnrolSecondFactor {
            secret: PendingSecret(Zeroizing::new(
                TotpSecret::generate(&mut rand::rng()).bytes().to_vec(),
            )),
        },
    })
}

/// The step a pending session has left, or `None` when it is signed in.
pub fn pending(a: &Authed) -> Option<&Pending> {
    match &a.session.principal {
        Principal::StaffPending { next, .. } => Some(next),
        _ => None,
    }
}

fn unix_s(now: Timestamp) -> u64 {
    u64::try_from(now.0 / 1_000_000).unwrap_or(0)
}

fn no_such_step(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "auth.step_not_pending",
        mebyo_domain::clause!("P4.8(2)"),
        format!("this session has no {what} to do"),
    )
}

fn code_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "auth.second_factor_invalid",
        mebyo_domain::clause!("P4.8(2)"),
        "the code is wrong, expired or already used; wait for the next one",
    )
}

/// Records one of the staff member's own sign-in events.
async fn own_event(st: &AppState, staff: &StaffId, cmd: StaffCommand) -> ApiResult<()> {
    let actor = Actor::Staff {
        staff: staff.clone(),
    };
    outcome(st.platform.staff(&actor, staff, cmd).await).map(|_| ())
}

/// After a password change: the password is no longer one-time, the change is
/// recorded, and a pending session moves to its next step (other sessions of the
/// staff member have ended, `svc::change_password`).
pub async fn password_changed(st: &AppState, a: &Authed, staff: &StaffId) -> ApiResult<()> {
    own_event(st, staff, StaffCommand::RecordPasswordChange).await?;
    if pending(a).is_none() {
        return Ok(());
    }
    let subject = Subject::Staff(staff.clone());
    let entry = st
        .auth
        .get(&subject)
        .ok_or_else(ApiError::bad_credentials)?;
    let roles = st.platform.staff_state(staff).await?.roles.clone();
    st.sessions
        .set_principal(&a.token, after_password(staff.clone(), &entry, &roles));
    Ok(())
}

/// The secret being enrolled, to type or scan into an authenticator app.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    /// Base32, as apps ask for it when typed.
    pub secret: String,
    /// `otpauth://totp/mebyo:<staff>?secret=…`, as apps scan it.
    pub uri: String,
}

pub fn enrolment(a: &Authed) -> ApiResult<Enrolment> {
    let Principal::StaffPending {
        staff,
        next: Pending::EnrolSecondFactor { secret },
    } = &a.session.principal
    else {
        return Err(no_such_step("second-factor enrolment"));
    };
    let s = TotpSecret::from_bytes(&secret.0).ok_or_else(ApiError::internal)?;
    Ok(Enrolment {
        secret: s.base32().to_string(),
        uri: s.uri(staff.as_str()).to_string(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    /// The 6-digit code the authenticator app shows now.
    #[schema(min_length = 1, max_length = 16)]
    pub code: String,
}

/// A code for the pending step: confirms an enrolment, or is the second factor
/// of this sign-in. Guessing is bounded like passwords (the sign-in guard, per
/// staff member and source), and a code is accepted once (the step is kept in
/// the auth data area, so a restart does not reopen it).
pub async fn give_code(st: &AppState, a: &Authed, ip: IpAddr, code: &str) -> ApiResult<()> {
    let Principal::StaffPending { staff, next } = &a.session.principal else {
        return Err(no_such_step("second factor"));
    };
    let subject = Subject::Staff(staff.clone());
    let now = st.platform.now();
    let ticket = st.guard.reserve("second-factor", staff.as_str(), ip, now)?;
    let entry = st
        .auth
        .get(&subject)
        .ok_or_else(ApiError::bad_credentials)?;
    let (secret, enrolling) = match next {
        Pending::EnrolSecondFactor { secret } => (secret.0.clone(), true),
        Pending::SecondFactor => {
            let sealed = entry
                .totp_sealed
                .as_deref()
                .ok_or_else(ApiError::internal)?;
            let bytes = st
                .platform
                .keys()
                .open_sign_in_secret(&subject.key(), sealed)
                .map_err(|_| ApiError::internal())?;
            (Zeroizing::new(bytes.to_vec()), false)
        }
        Pending::ChangePassword => return Err(no_such_step("second factor")),
    };
    let secret = TotpSecret::from_bytes(&secret).ok_or_else(ApiError::internal)?;
    let used = entry.totp_last_step.filter(|_| !enrolling);
    let step = secret.verify(code, totp_steps(totp_step(unix_s(now)), used));
    let verdict = ticket.settle(step.is_some(), now);
    let Some(step) = step else {
        // A lock says when it ends; any other failure is the one answer for a
        // wrong, expired or reused code.
        return Err(match verdict {
            Err(e) if e.body.code == "auth.locked" => e,
            _ => code_refused(),
        });
    };
    if enrolling {
        let sealed = st
            .platform
            .keys()
            .seal_sign_in_secret(&subject.key(), secret.bytes())
            .map_err(|_| ApiError::internal())?;
        st.auth.set_totp(&subject, Some(sealed), now)?;
        own_event(st, staff, StaffCommand::EnrolSecondFactor).await?;
    }
    // Kept before the session is upgraded: a second use of this code must fail
    // even if the answer is lost.
    if !st.auth.use_totp_step(&subject, step, now)? && !enrolling {
        return Err(code_refused());
    }
    st.sessions.set_principal(
        &a.token,
        Principal::Staff {
            staff: staff.clone(),
        },
    );
    Ok(())
}

/// What a sign-in reset answers: the event, and the one-time password to hand
/// over (shown once, never stored in plain).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetDone {
    pub position: u64,
    pub hash: String,
    pub link: String,
    /// The new one-time password; the staff member must replace it at sign-in.
    pub one_time_password: String,
}

/// Resets a staff member's sign-in (P3.1, P4.8(2)): decided by the staff decider
/// (the role that appoints theirs), recorded, then a one-time password replaces
/// the old one and, with `second_factor`, the enrolled secret is dropped; every
/// session of theirs ends. The event is durable before the auth data changes: if
/// writing the password fails, the reset is recorded but not done, and is simply
/// made again.
pub async fn reset(
    st: &AppState,
    actor: &Actor,
    target: &StaffId,
    second_factor: bool,
) -> ApiResult<ResetDone> {
    let work = async {
        outcome(
            st.platform
                .staff(actor, target, StaffCommand::ResetSignIn { second_factor })
                .await,
        )
    };
    let (_, r) = crate::ops_api::recorded(work, |_| Vec::new()).await?;
    let password = Zeroizing::new(crate::session::random_token());
    let phc = st
        .hasher
        .hash(password.clone())
        .await
        .map_err(|_| ApiError::internal())?;
    let subject = Subject::Staff(target.clone());
    let now = st.platform.now();
    st.auth.set_password_as(&subject, &phc, None, true, now)?;
    if second_factor {
        st.auth.set_totp(&subject, None, now)?;
    }
    st.sessions.remove_staff(target, None);
    Ok(ResetDone {
        position: r.position,
        hash: r.hash,
        link: r.link,
        one_time_password: password.to_string(),
    })
}

// ---- the API ----------------------------------------------------------------------

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;

use crate::api::JsonBody;
use crate::svc;

#[utoipa::path(get, path = "/api/v1/session/second-factor",
    responses((status = 200, body = Enrolment, description = "The secret to enrol"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 409, description = "This session has no enrolment pending", body = crate::error::ErrorEnvelope)),
    description = "A privileged staff member's first sign-in: the TOTP secret (RFC 6238) to put into an authenticator app, as base32 and as an otpauth URI. Confirm it by posting a code. Kept in this session only until then (issue 15 §5, P4.8(2)).")]
pub async fn enrolment_api(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Enrolment>> {
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(enrolment(&a)?))
}

#[utoipa::path(post, path = "/api/v1/session/second-factor", request_body = CodeInput,
    responses((status = 200, body = svc::Me, description = "Signed in"),
        (status = 401, description = "No session, or the code is wrong, expired or already used", body = crate::error::ErrorEnvelope),
        (status = 409, description = "This session has no second factor to give", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Too many wrong codes; see Retry-After and the message for when the lock ends", body = crate::error::ErrorEnvelope)),
    description = "The second factor of a staff sign-in: the code of the authenticator app, confirming an enrolment or signing in. A code is accepted once; wrong codes count toward the sign-in lock (P4.8(2)).")]
pub async fn code_api(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<CodeInput>,
) -> ApiResult<Json<svc::Me>> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    give_code(&st, &a, peer.ip(), &input.code).await?;
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(svc::me(&st, &a).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetInput {
    /// Also drop the enrolled second factor (a lost phone): the next sign-in
    /// enrols a new one.
    #[serde(default)]
    pub second_factor: bool,
}

#[utoipa::path(post, path = "/api/v1/ops/staff/{staff}/sign-in-reset",
    params(("staff" = String, Path, description = "staff id, e.g. soa-0001")),
    request_body = ResetInput,
    responses((status = 200, body = ResetDone, description = "Reset; the event and the one-time password to hand over"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the role that appoints this staff member's, training lapsed, one's own, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such staff member", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Reset a staff member's sign-in: a one-time password they must replace at the next sign-in, and with `second_factor` a new enrolment. Only the role that appoints theirs may (P3.1, P4.8(2)); every session of theirs ends.")]
pub async fn reset_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(staff): Path<String>,
    JsonBody(input): JsonBody<ResetInput>,
) -> ApiResult<Json<ResetDone>> {
    let actor = crate::ops_api::staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let target = staff_id(&staff)?;
    Ok(Json(
        reset(&st, &actor, &target, input.second_factor).await?,
    ))
}

// ---- the pages --------------------------------------------------------------------

use axum::body::Bytes;
use axum::response::Response;
use maud::html;

use crate::pages::{Lang, PageCtx, PageResult, field, fields, posted, see_other, signed_page};

/// Where a staff sign-in goes after a step: the next step, or the dashboard.
pub fn landing(principal: &Principal) -> &'static str {
    match principal {
        Principal::StaffPending { .. } => "/ops/sign-in",
        _ => "/ops",
    }
}

/// The step left, as a page: a password change, an enrolment (the secret shown
/// as text and as its otpauth URI; no script, the CSP forbids it), or a code.
async fn step_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops/login")?;
    let Some(next) = pending(&a) else {
        return Ok(see_other("/ops"));
    };
    let csrf = a.session.csrf.clone();
    let body = match next {
        Pending::ChangePassword => html! {
            p { (l.t("初回のログインです。渡されたパスワードを、ご自身だけが知るパスワードに変更してください。",
                     "This is a one-time password. Replace it with one only you know.")) }
            form.card method="post" action="/ops/sign-in/password" {
                input type="hidden" name="csrf" value=(csrf);
                label for="current_password" { (l.t("現在のパスワード", "Current password")) }
                input #current_password type="password" name="current_password" autocomplete="current-password" required;
                label for="new_password" { (l.t("新しいパスワード（10文字以上）", "New password (10 characters or more)")) }
                input #new_password type="password" name="new_password" autocomplete="new-password" minlength="10" required;
                button type="submit" { (l.t("変更する", "Change password")) }
            }
        },
        Pending::EnrolSecondFactor { .. } => {
            let e = enrolment(&a).page(l, "/ops/login")?;
            html! {
                p { (l.t("この役割では二要素認証が必要です。認証アプリに次の鍵を登録し、表示された6桁のコードを入力してください。",
                         "Your role signs in with a second factor. Add this key to an authenticator app, then enter the 6-digit code it shows.")) }
                dl.card {
                    dt { (l.t("鍵", "Key")) } dd { code #totp-secret { (e.secret) } }
                    dt { (l.t("登録用URI", "Enrolment URI")) } dd { code #totp-uri { (e.uri) } }
                }
                (code_form(l, &csrf))
            }
        }
        Pending::SecondFactor => html! {
            p { (l.t("認証アプリに表示された6桁のコードを入力してください。",
                     "Enter the 6-digit code your authenticator app shows.")) }
            (code_form(l, &csrf))
        },
    };
    Ok(signed_page(
        l,
        &a,
        l.t("ログインの続き", "Finish signing in"),
        "/ops/login",
        body,
    ))
}

fn code_form(l: Lang, csrf: &str) -> maud::Markup {
    html! {
        form.card method="post" action="/ops/sign-in/code" {
            input type="hidden" name="csrf" value=(csrf);
            label for="code" { (l.t("確認コード", "Code")) }
            input #code type="text" name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required maxlength="6";
            button type="submit" { (l.t("確認する", "Confirm")) }
        }
    }
}

async fn password_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let input = svc::PasswordChange {
            current_password: field(&f, "current_password").to_string(),
            new_password: field(&f, "new_password").to_string(),
        };
        svc::change_password(&st, &a, input).await?;
        let a = svc::signed_in(&st, &headers)?;
        Ok::<Response, ApiError>(see_other(landing(&a.session.principal)))
    };
    run.await.page(l, "/ops/sign-in")
}

async fn code_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        give_code(&st, &a, peer.ip(), field(&f, "code")).await?;
        Ok::<Response, ApiError>(see_other("/ops"))
    };
    run.await.page(l, "/ops/sign-in")
}

/// The staff panel's form (the panel is the appointing roles', and the decider
/// has the last word): reset a staff member's sign-in.
pub fn reset_form(l: Lang, csrf: &str) -> maud::Markup {
    html! {
        form.action method="post" action="/ops/staff/sign-in-reset" #sign-in-reset-form {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("職員 ID", "Staff id")) " " input name="staff" required maxlength="64" pattern="[a-z0-9-]+"; }
            label { input type="checkbox" name="second_factor" value="yes"; " " (l.t("二要素認証も登録し直す（端末の紛失）", "Also re-enrol the second factor (lost phone)")) }
            (crate::ops_pages::confirm_box(l))
            button type="submit" { (l.t("ログインをリセット", "Reset sign-in")) }
        }
    }
}

/// The reset from the dashboard: the one-time password is shown once, here.
async fn reset_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let actor = Actor::Staff {
            staff: svc::staff(&a)?,
        };
        crate::ops_pages::confirmed(&f)?;
        let target = staff_id(field(&f, "staff"))?;
        let done = reset(&st, &actor, &target, field(&f, "second_factor") == "yes").await?;
        Ok::<_, ApiError>((a, target, done))
    };
    let (a, target, done) = run.await.page(l, "/ops")?;
    let body = html! {
        div.notice role="status" #outcome {
            p { (l.t("ログインをリセットしました。次の一時パスワードを本人に渡してください（この画面でのみ表示）: ",
                     "The sign-in is reset. Hand this one-time password to the staff member (shown only here): "))
                code #one-time-password { (done.one_time_password) } }
            p { (target) " · " (l.t("記録: ", "Recorded as ")) a href=(done.link) #event-link { (l.t("イベント ", "event ")) (done.position) } }
        }
        p { a href="/ops" { (l.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
    };
    Ok(signed_page(l, &a, l.t("完了", "Done"), "/ops", body))
}

pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/ops/sign-in", get(step_page))
        .route("/ops/sign-in/password", post(password_post))
        .route("/ops/sign-in/code", post(code_post))
        .route("/ops/staff/sign-in-reset", post(reset_post))
}

// ---- appointments and training (P3.1, P3.4) ---------------------------------------

use mebyo_domain::staff::Role as StaffRole;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// `implementation-manager[-deputy]`, `operations-manager[-deputy]`,
    /// `system-operations-administrator`, `operations-office`, `prefecture` or
    /// `auditor`.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingInput {
    /// RFC 3339.
    pub completed_at: String,
    /// RFC 3339; after `completed_at`.
    pub valid_until: String,
}

fn role(s: &str) -> ApiResult<StaffRole> {
    StaffRole::from_slug(s.trim())
        .ok_or_else(|| ApiError::invalid(mebyo_domain::clause!("P3.1"), "no such role"))
}

fn time_of(s: &str, what: &str) -> ApiResult<Timestamp> {
    crate::ops_api::time_field(s, mebyo_domain::clause!("P3.4"), what)
}

fn staff_id(s: &str) -> ApiResult<StaffId> {
    StaffId::new(s.trim())
        .map_err(|_| ApiError::invalid(mebyo_domain::clause!("P3.1"), "staff id is malformed"))
}

/// A staff command on the running platform, decided by the staff decider (the
/// chain of authority, P3.1; current training for the privileged ones, P3.4).
async fn staff_command(
    st: &AppState,
    headers: &HeaderMap,
    staff: &str,
    cmd: impl FnOnce(StaffId) -> ApiResult<StaffCommand>,
) -> ApiResult<Json<Recorded>> {
    let actor = crate::ops_api::staff_actor(st, headers, svc::csrf_header(headers))?;
    let target = staff_id(staff)?;
    let cmd = cmd(target.clone())?;
    crate::ops_providers::answered(async { outcome(st.platform.staff(&actor, &target, cmd).await) })
        .await
}

#[utoipa::path(post, path = "/api/v1/ops/staff/{staff}/appointments",
    params(("staff" = String, Path, description = "staff id to appoint, e.g. soa-0002")),
    request_body = RoleInput,
    responses((status = 200, body = Recorded, description = "Appointed; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Outside the chain of authority, one's own, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 409, description = "They hold that role already", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Appoint a staff member to a role. Only the role above it in the chain of authority may (P3.1); privileged, so the appointer's privacy training must be current (P3.4).")]
pub async fn appoint_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(staff): Path<String>,
    JsonBody(input): JsonBody<RoleInput>,
) -> ApiResult<Json<Recorded>> {
    staff_command(&st, &headers, &staff, |staff| {
        Ok(StaffCommand::Appoint {
            staff,
            role: role(&input.role)?,
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/ops/staff/{staff}/dismissals",
    params(("staff" = String, Path, description = "staff id")),
    request_body = RoleInput,
    responses((status = 200, body = Recorded, description = "Dismissed; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Outside the chain of authority, training lapsed, not holding the role, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such staff member", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Dismiss a staff member from a role, by the role that appoints it (P3.1, P3.4).")]
pub async fn dismiss_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(staff): Path<String>,
    JsonBody(input): JsonBody<RoleInput>,
) -> ApiResult<Json<Recorded>> {
    staff_command(&st, &headers, &staff, |_| {
        Ok(StaffCommand::Dismiss {
            role: role(&input.role)?,
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/ops/staff/{staff}/training",
    params(("staff" = String, Path, description = "staff id")),
    request_body = TrainingInput,
    responses((status = 200, body = Recorded, description = "Recorded; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the operations manager (or, for the managers, the business administrator), or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such staff member", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Record a staff member's completed privacy training and its expiry (P3.4(2)); privileged actions need it current.")]
pub async fn training_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(staff): Path<String>,
    JsonBody(input): JsonBody<TrainingInput>,
) -> ApiResult<Json<Recorded>> {
    staff_command(&st, &headers, &staff, |_| {
        Ok(StaffCommand::RecordTraining {
            completed_at: time_of(&input.completed_at, "completed_at")?,
            valid_until: time_of(&input.valid_until, "valid_until")?,
        })
    })
    .await
}
