//! What the portal, the dashboard and the JSON API do, once: authentication,
//! sign-up, vitals, consents, reads and the disclosure record (the operator
//! summary is `ops_summary`, re-exported here). Handlers only translate between HTTP and these functions, so the HTML
//! and JSON faces can never disagree on a rule.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::http::HeaderMap;
use mebyo_crypto::{IdentityRecord, Zeroizing};
use mebyo_domain::access::{AccessRequest, Outcome as AccessOutcome};
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::fhir::VitalKind;
use mebyo_domain::person::PersonCommand;
use mebyo_domain::records::{Origin, Party, RecordCommand, RecordEntry, Resource, Submission};
use mebyo_domain::signin::source_group;
use mebyo_domain::{
    Actor, Category, Channel, ConsentId, Duration, PersonId, ProviderId, RecordId, StaffId,
    Timestamp,
};
use mebyo_platform::auth::{AuthEntry, Subject};
use mebyo_platform::{SignUp, world};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, outcome};
use crate::session::{Principal, Session, ct_eq};

pub const COOKIE: &str = "__Host-mebyo";
const YEAR_US: i64 = 365 * 86_400_000_000;

// ---- authentication ------------------------------------------------------------------

/// A request's session and how it was presented.
#[derive(Debug, Clone)]
pub struct Authed {
    pub token: String,
    pub session: Session,
    /// Cookie sessions need the CSRF token on state-changing requests; bearer
    /// tokens are never sent by a browser on its own, so they do not.
    pub via_cookie: bool,
}

pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|s| s.trim().to_string())
}

/// The session presented, anonymous or not.
pub fn session(st: &AppState, headers: &HeaderMap) -> ApiResult<Authed> {
    let now = st.platform.now();
    if let Some(token) = bearer(headers) {
        let session = st.sessions.get(&token, now)?;
        return Ok(Authed {
            token,
            session,
            via_cookie: false,
        });
    }
    let token = cookie_token(headers).ok_or_else(ApiError::unauthenticated)?;
    let session = st.sessions.get(&token, now)?;
    Ok(Authed {
        token,
        session,
        via_cookie: true,
    })
}

/// A signed-in session (not anonymous).
pub fn signed_in(st: &AppState, headers: &HeaderMap) -> ApiResult<Authed> {
    let a = session(st, headers)?;
    if a.session.principal == Principal::Anonymous {
        return Err(ApiError::unauthenticated());
    }
    Ok(a)
}

/// CSRF check for state-changing requests made with the cookie (P4.6(1)).
pub fn check_csrf(a: &Authed, presented: Option<&str>) -> ApiResult<()> {
    if !a.via_cookie {
        return Ok(());
    }
    match presented {
        Some(t) if ct_eq(t, &a.session.csrf) => Ok(()),
        _ => Err(ApiError::csrf()),
    }
}

pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// The request's `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header),
/// if it sent one. A malformed key is refused before anything is written: a key
/// that could carry typed text must not reach a derived id (P4.8(1)).
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if mebyo_platform::idempotency::valid_key(k) => Ok(Some(k)),
        _ => Err(ApiError::idempotency_key_invalid()),
    }
}

/// The request header that makes a write safe to retry (issue 19 §5).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub fn individual(a: &Authed) -> ApiResult<(PersonId, Actor)> {
    match &a.session.principal {
        Principal::Individual { person, .. } => Ok((person.clone(), a.session.principal.actor())),
        _ => Err(ApiError::wrong_role(
            "only an individual user may do this, for their own data",
        )),
    }
}

pub fn staff(a: &Authed) -> ApiResult<StaffId> {
    match &a.session.principal {
        Principal::Staff { staff } => Ok(staff.clone()),
        Principal::StaffPending { next, .. } => Err(ApiError::sign_in_incomplete(next.name())),
        _ => Err(ApiError::wrong_role(
            "only platform staff see the dashboard",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginKind {
    /// Individual user; `login` is the e-mail address.
    Individual,
    /// Platform staff; `login` is the staff id.
    Staff,
    /// A provider's responsible person; `login` is the provider id.
    Provider,
}

impl LoginKind {
    /// The namespace of this kind's logins in the sign-in guard.
    pub fn key(self) -> &'static str {
        match self {
            LoginKind::Individual => "individual",
            LoginKind::Staff => "staff",
            LoginKind::Provider => "provider",
        }
    }
}

fn resolve(st: &AppState, kind: LoginKind, login: &str) -> ApiResult<Option<Subject>> {
    let login = login.trim();
    // Characters, as sign-up counts them (issue 22 §7).
    if login.is_empty() || login.chars().count() > mebyo_crypto::MAX_EMAIL_CHARS {
        return Ok(None);
    }
    Ok(match kind {
        LoginKind::Individual => st
            .platform
            .find_by_email(login)?
            .into_iter()
            .map(Subject::Person)
            .find(|s| st.auth.contains(s)),
        LoginKind::Staff => StaffId::new(login).ok().map(Subject::Staff),
        LoginKind::Provider => ProviderId::new(login).ok().map(Subject::Provider),
    })
}

/// Signs in (P4.8(2), P4.4(1)): a rate limit per source group, then an attempt
/// reserved for the (login, source group) pair and counted against the login's
/// limit across sources — all before argon2 runs on the bounded pool, so
/// concurrent guesses cannot outrun the lock. A login that names no account gets
/// the same reservation, a hash against a dummy and the same answers, so no answer
/// (status, body, or the work behind it) tells which accounts exist.
pub async fn login(
    st: &AppState,
    ip: IpAddr,
    kind: LoginKind,
    login: &str,
    password: Zeroizing<String>,
    previous: Option<&str>,
) -> ApiResult<(String, Session)> {
    let now = st.platform.now();
    st.auth_limiter
        .check(source_group(ip), now)
        .map_err(ApiError::rate_limited)?;
    let ticket = st.guard.reserve(kind.key(), login, ip, now)?;
    let subject = resolve(st, kind, login)?;
    let entry = subject.as_ref().and_then(|s| st.auth.get(s));
    let (Some(subject), Some(entry)) = (subject, entry) else {
        let _ = st.hasher.verify(password, st.dummy_phc.clone()).await;
        let refused = ticket.settle(false, st.platform.now()).err();
        return Err(refused.unwrap_or_else(ApiError::bad_credentials));
    };
    let needs_rehash = check_password(st, ticket, &entry, password.clone()).await?;
    if needs_rehash && let Ok(phc) = st.hasher.hash(password).await {
        st.auth
            .set_password(&subject, &phc, entry.credential.clone(), now)?;
    }
    let principal = match subject {
        Subject::Person(person) => Principal::Individual {
            person,
            credential: entry.credential.ok_or_else(no_credential)?,
        },
        Subject::Provider(provider) => Principal::Provider {
            provider,
            credential: entry.credential.ok_or_else(no_credential)?,
        },
        Subject::Staff(staff) => {
            let roles = st.platform.staff_state(&staff).await?.roles.clone();
            if roles.is_empty() {
                return Err(ApiError::wrong_role("no role is held by this staff id"));
            }
            crate::staff_signin::after_password(staff, &entry, &roles)
        }
    };
    // A new token on every sign-in: a token planted before cannot be ridden.
    if let Some(old) = previous {
        st.sessions.remove(old);
    }
    st.sessions.create(principal, now)
}

/// The one password check behind sign-in and password change (P4.8(2)): the
/// attempt was reserved before (`ticket`); a wrong password settles it as a failure
/// (`auth.failed`, or `auth.locked` when it locks the pair), a right one clears the
/// count. Returns whether the stored hash should be redone with the current
/// parameters.
async fn check_password(
    st: &AppState,
    ticket: crate::guard::Ticket<'_>,
    entry: &AuthEntry,
    password: Zeroizing<String>,
) -> ApiResult<bool> {
    let verified = st.hasher.verify(password, entry.phc.clone()).await;
    let valid = verified.as_ref().is_ok_and(|v| v.valid);
    ticket.settle(valid, st.platform.now())?;
    Ok(verified.map_err(|_| ApiError::internal())?.needs_rehash)
}

fn no_credential() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "credential.missing",
        mebyo_domain::clause!("P4.12(1)"),
        "no connection information has been issued yet; ask the operations office",
    )
}

/// The rule for a password being set (sign-up, change): long enough to resist
/// guessing with the lockout in place, short enough to bound the hashing (P4.8(2)).
/// Counted in characters, as the API schema's `minLength`/`maxLength` count them;
/// the maximum keeps any password within the hasher's byte limit (issue 22 §7).
fn check_new_password(password: &str) -> ApiResult<()> {
    mebyo_domain::signin::check_new_password(password, None)
        .map_err(|r| ApiError::invalid(r.clause, r.message))
}

// ---- password change -------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the signed-in account's own password (P4.8(2)); staff replace the
/// one-time password `serve` printed this way. The current password is checked as
/// at sign-in: a wrong one counts toward the lockout, and a locked account cannot
/// change it. The new one follows the sign-up rule and must differ. Every session
/// of the account ends, this one included: whoever else held one must sign in with
/// the new password, and so does the user (P4.6(1)).
pub async fn change_password(st: &AppState, a: &Authed, input: PasswordChange) -> ApiResult<()> {
    let subject = match &a.session.principal {
        Principal::Individual { person, .. } => Subject::Person(person.clone()),
        Principal::Staff { staff } => Subject::Staff(staff.clone()),
        Principal::StaffPending {
            staff,
            next: crate::session::Pending::ChangePassword,
        } => Subject::Staff(staff.clone()),
        Principal::StaffPending { next, .. } => {
            return Err(ApiError::sign_in_incomplete(next.name()));
        }
        Principal::Provider { provider, .. } => Subject::Provider(provider.clone()),
        Principal::Anonymous => return Err(ApiError::unauthenticated()),
    };
    let current = Zeroizing::new(input.current_password);
    let new = Zeroizing::new(input.new_password);
    check_new_password(&new)?;
    let now = st.platform.now();
    let entry = st
        .auth
        .get(&subject)
        .ok_or_else(ApiError::bad_credentials)?;
    // Counted like sign-in attempts, under the account's own key and one source
    // (only its own sessions reach this form): a stolen session cannot guess the
    // password here either, and nobody else can lock it.
    let any = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    let ticket = st.guard.reserve("subject", &subject.key(), any, now)?;
    check_password(st, ticket, &entry, current.clone()).await?;
    mebyo_domain::signin::check_new_password(&new, Some(&current))
        .map_err(|r| ApiError::invalid(r.clause, r.message))?;
    let phc = st
        .hasher
        .hash(new)
        .await
        .map_err(|_| ApiError::internal())?;
    st.auth
        .set_password(&subject, &phc, entry.credential.clone(), now)?;
    if let Subject::Staff(staff) = &subject {
        // A staff member finishing a forced change keeps this session, which
        // moves on to the next step of signing in; every other one ends.
        let keep = crate::staff_signin::pending(a).map(|_| a.token.as_str());
        st.sessions.remove_staff(staff, keep);
        crate::staff_signin::password_changed(st, a, staff).await?;
    } else {
        st.sessions.remove_principal(&a.session.principal);
    }
    tracing::info!(subject = %subject.key(), "password changed; the account's other sessions ended");
    Ok(())
}

// ---- sign-up -------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SignupInput {
    pub name: String,
    pub address: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub email: String,
    pub phone: Option<String>,
    pub password: String,
}

fn check_len(field: &str, v: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(|c| c.is_control()) {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P2(1)"),
            format!("{field} must be {min} to {max} characters, without control characters"),
        ));
    }
    Ok(())
}

/// A phone number as the API schema's pattern states it (`crate::openapi`): an
/// optional `+`, then 6 to 15 digits with single spaces or hyphens between them;
/// and one the identity vault can index (its rule, one home), which a 500 told
/// before (issue 22 §7).
fn phone_ok(p: &str) -> bool {
    let mut digits = 0;
    let mut after_digit = false;
    for c in p.strip_prefix('+').unwrap_or(p).chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                after_digit = true;
            }
            ' ' | '-' if after_digit => after_digit = false,
            _ => return false,
        }
    }
    after_digit && (6..=15).contains(&digits) && mebyo_crypto::normalize_phone(p).is_ok()
}

pub fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

pub use mebyo_domain::signin::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
// Four bytes at most per character: the longest password fits the hasher.
const _: () = assert!(MAX_PASSWORD_CHARS * 4 <= mebyo_crypto::MAX_PASSWORD_LEN);

/// What sign-up answers, registered or not (P4.8(3): no answer tells which e-mail
/// addresses are registered). Nothing is sent anywhere: the platform holds no
/// mail service, so the answer says what to do next instead.
pub const SIGNUP_RECEIVED: &str = "Sign-up received. If these details could be registered, \
     you can now sign in with this e-mail address and password. If sign-in fails, the \
     address may already be registered: sign in with its password, or contact the \
     operations office.";

/// Registers an individual (identity into the vault, P4.8(3)), issues their
/// connection information through the office's self-service desk (as
/// `world::enroll_individual` does), and stores the password hash (P4.8(2)).
/// `None` when the e-mail address is registered already: callers answer the same
/// either way (`SIGNUP_RECEIVED`).
pub async fn signup(st: &AppState, ip: IpAddr, input: SignupInput) -> ApiResult<Option<PersonId>> {
    let now = st.platform.now();
    st.auth_limiter
        .check(source_group(ip), now)
        .map_err(ApiError::rate_limited)?;
    check_len("name", input.name.trim(), 1, 100)?;
    check_len("address", input.address.trim(), 1, 200)?;
    // Taken as given (a browser's e-mail field strips spaces itself), so that the
    // API schema's pattern and length say exactly what is accepted.
    let email = input.email.as_str();
    check_len("email", email, 3, mebyo_crypto::MAX_EMAIL_CHARS)?;
    // The identity vault's own rule (one home): what it cannot index it refuses,
    // and that refusal must come here, as a 422, not from the vault as a 500.
    if email.contains(char::is_whitespace) || mebyo_crypto::normalize_email(email).is_err() {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P2(1)"),
            "email is not an e-mail address",
        ));
    }
    let today = time::OffsetDateTime::from_unix_timestamp(now.0 / 1_000_000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    match parse_date(input.birth_date.trim()) {
        Some(d) if d <= today && d.year() >= 1900 => {}
        _ => {
            return Err(ApiError::invalid(
                mebyo_domain::clause!("P2(1)"),
                "birth date must be YYYY-MM-DD, in the past",
            ));
        }
    }
    let phone = input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &phone
        && !phone_ok(p)
    {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P2(1)"),
            "phone must be an optional + and 6 to 15 digits, single spaces or hyphens between them",
        ));
    }
    let password = Zeroizing::new(input.password);
    check_new_password(&password)?;
    let Some(office) = st.cfg.signup_office.clone() else {
        return Err(ApiError::unavailable(
            "self-service sign-up is not enabled here; register at the operations office",
        ));
    };
    // Hash first, taken or not: the slowest step, and one that can refuse, before
    // anything is written; and the same work whatever the address.
    let phc = st.hasher.hash(password).await.map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P4.8(2)"), "password not accepted")
    })?;
    // Committed registrations only: a sign-up cut short must not lock its address
    // out (issue 19 §1).
    if st.platform.email_registered(email).await? {
        // The same answer as a registration (`SIGNUP_RECEIVED`): saying "taken"
        // would tell anyone which addresses are registered. The owner signs in as
        // before; someone else is told to check the details or ask the office.
        tracing::info!("sign-up with an address already registered; nothing written");
        return Ok(None);
    }
    let identity = IdentityRecord {
        name: input.name.trim().to_string(),
        address: input.address.trim().to_string(),
        birth_date: input.birth_date.trim().to_string(),
        phone,
        email: Some(email.to_string()),
    };
    // Registration, connection information and password commit together, or
    // nothing is left behind (`mebyo_platform::registration`).
    let signed_up = st
        .platform
        .sign_up(
            &st.auth,
            SignUp {
                identity: &identity,
                office: &office,
                password_phc: &phc,
            },
        )
        .await?;
    match signed_up {
        Ok(s) => Ok(Some(s.person)),
        // Taken after all (checked again under the address's lock): the same
        // answer as above.
        Err(r) if r.code == "person.email_taken" => Ok(None),
        Err(r) => Err(r.into()),
    }
}

// ---- policy (P7, P8) -----------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyView {
    pub id: String,
    /// RFC 3339, JST.
    pub in_force_from: String,
    pub applies_from: String,
    /// The full text (Japanese original) is published at `/policy`.
    pub text_url: String,
}

pub async fn policy(st: &AppState) -> ApiResult<Option<PolicyView>> {
    Ok(st.platform.policy_in_force().await?.map(|v| PolicyView {
        id: v.id.to_string(),
        in_force_from: world::rfc3339_jst(v.in_force_from),
        applies_from: world::rfc3339_jst(v.applies_from),
        text_url: "/policy".into(),
    }))
}

pub async fn accept_policy(st: &AppState, a: &Authed) -> ApiResult<String> {
    let (person, actor) = individual(a)?;
    let Some(v) = st.platform.policy_in_force().await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "policy.none_in_force",
            mebyo_domain::clause!("P7"),
            "no policy version is in force",
        ));
    };
    let state = st.platform.person_state(&person).await?;
    if state.accepted_policy.as_ref() != Some(&v.id) {
        outcome(
            st.platform
                .person(
                    &actor,
                    &person,
                    PersonCommand::AcceptPolicy {
                        policy: v.id.clone(),
                    },
                )
                .await,
        )?;
    }
    Ok(v.id.to_string())
}

// ---- me ------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    pub kind: String,
    /// Pseudonymous id of the person, staff member or provider.
    pub id: String,
    /// The individual's own name (from the identity vault), shown only to them.
    pub name: Option<String>,
    pub policy_accepted: Option<String>,
    pub policy_in_force: Option<String>,
    pub csrf_token: String,
    /// A staff sign-in's step left (`change_password`, `enrol_second_factor`,
    /// `second_factor`); absent once signed in.
    pub next: Option<String>,
}

pub async fn me(st: &AppState, a: &Authed) -> ApiResult<Me> {
    let in_force = st
        .platform
        .policy_in_force()
        .await?
        .map(|v| v.id.to_string());
    let (id, name, accepted) = match &a.session.principal {
        Principal::Individual { person, .. } => {
            let state = st.platform.person_state(person).await?;
            let name = st.platform.identity(person)?.map(|i| i.name.clone());
            (
                person.to_string(),
                name,
                state.accepted_policy.as_ref().map(|p| p.to_string()),
            )
        }
        Principal::Staff { staff } | Principal::StaffPending { staff, .. } => {
            (staff.to_string(), None, None)
        }
        Principal::Provider { provider, .. } => (provider.to_string(), None, None),
        Principal::Anonymous => return Err(ApiError::unauthenticated()),
    };
    Ok(Me {
        kind: a.session.principal.kind().into(),
        id,
        name,
        policy_accepted: accepted,
        policy_in_force: in_force,
        csrf_token: a.session.csrf.clone(),
        next: crate::staff_signin::pending(a).map(|p| p.name().to_string()),
    })
}

// ---- records -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordView {
    pub record: String,
    #[schema(value_type = String)]
    pub category: Category,
    /// `blood_pressure`, `weight`, …
    pub vital: Option<String>,
    /// Clinical time, RFC 3339 JST.
    pub effective_at: String,
    pub effective_at_us: i64,
    /// Human summary, e.g. `128/82 mmHg`.
    pub summary: String,
    /// Provenance (P5.1): origin, creator, deliverer, original id.
    pub origin: String,
    pub created_by: String,
    pub delivered_by: String,
    pub original_identifier: Option<String>,
    /// The FHIR R4 resource as stored (its text, shared with the state).
    #[schema(value_type = Object)]
    pub resource: Resource,
}

fn party(p: &Party) -> String {
    match p {
        Party::Person { person } => format!("person:{person}"),
        Party::Provider { provider } => format!("provider:{provider}"),
    }
}

pub fn vital_name(v: VitalKind) -> &'static str {
    match v {
        VitalKind::Height => "height",
        VitalKind::Weight => "weight",
        VitalKind::BloodPressure => "blood_pressure",
        VitalKind::Temperature => "temperature",
        VitalKind::SpO2 => "spo2",
        VitalKind::Steps => "steps",
    }
}

/// The few fields of a resource that a summary or a chart shows, read from its
/// text without building the whole JSON tree (a listing reads many records).
/// Resources were validated on the way in; one that does not fit reads as empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Glance {
    component: Vec<GlanceComponent>,
    #[serde(rename = "valueQuantity")]
    value_quantity: Option<GlanceQuantity>,
    code: GlanceConcept,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceComponent {
    code: GlanceConcept,
    #[serde(rename = "valueQuantity")]
    value_quantity: Option<GlanceQuantity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceConcept {
    coding: Vec<GlanceCoding>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceCoding {
    code: Option<String>,
    display: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GlanceQuantity {
    value: Option<f64>,
    unit: Option<String>,
}

impl Glance {
    pub fn of(resource: &Resource) -> Self {
        serde_json::from_str(resource.json()).unwrap_or_default()
    }

    fn component(&self, loinc: &str) -> Option<f64> {
        self.component.iter().find_map(|c| {
            let first = c.code.coding.first()?;
            (first.code.as_deref() == Some(loinc))
                .then(|| c.value_quantity.as_ref()?.value)
                .flatten()
        })
    }

    /// (systolic, diastolic) of a blood-pressure Observation.
    pub fn bp_values(&self) -> Option<(f64, f64)> {
        Some((self.component("8480-6")?, self.component("8462-4")?))
    }

    pub fn value_quantity(&self) -> Option<(f64, String)> {
        let q = self.value_quantity.as_ref()?;
        Some((q.value?, q.unit.clone().unwrap_or_default()))
    }

    fn display(&self) -> &str {
        self.code
            .coding
            .first()
            .and_then(|c| c.display.as_deref())
            .unwrap_or("")
    }
}

pub fn record_view(e: &RecordEntry) -> RecordView {
    let glance = Glance::of(&e.resource);
    let summary = match e.vital {
        Some(VitalKind::BloodPressure) => glance
            .bp_values()
            .map(|(s, d)| format!("{s}/{d} mmHg"))
            .unwrap_or_default(),
        Some(_) => glance
            .value_quantity()
            .map(|(v, u)| format!("{v} {u}"))
            .unwrap_or_default(),
        None => glance.display().to_string(),
    };
    RecordView {
        record: e.record.to_string(),
        category: e.category,
        vital: e.vital.map(|v| vital_name(v).to_string()),
        effective_at: world::rfc3339_jst(e.effective_at),
        effective_at_us: e.effective_at.0,
        summary,
        origin: match e.provenance.origin {
            Origin::SelfEntered => "self_entered".into(),
            Origin::MedicalInstitution => "medical_institution".into(),
        },
        created_by: party(&e.provenance.created_by),
        delivered_by: party(&e.provenance.delivered_by),
        original_identifier: e.provenance.original_identifier.clone(),
        resource: e.resource.clone(),
    }
}

/// The signed-in individual's own records; the read is recorded first (P4.6(2)).
pub async fn my_records(st: &AppState, a: &Authed) -> ApiResult<Vec<RecordEntry>> {
    let (person, actor) = individual(a)?;
    let now = st.platform.now();
    let mut records = outcome(
        st.platform
            .read_records(&AccessRequest {
                actor,
                person,
                categories: Category::ALL.into_iter().collect(),
                purpose: Purpose::PersonalUse,
                channel: Channel::Portal,
                period: Period {
                    from: Timestamp(now.0 - 120 * YEAR_US),
                    to: Timestamp(now.0 + 1),
                },
            })
            .await,
    )?;
    records.sort_by_key(|r| std::cmp::Reverse(r.effective_at));
    Ok(records)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VitalInput {
    BloodPressure {
        #[serde(deserialize_with = "crate::api::whole")]
        systolic: u32,
        #[serde(deserialize_with = "crate::api::whole")]
        diastolic: u32,
        /// RFC 3339; default now.
        at: Option<String>,
    },
    BodyWeight {
        kg: f64,
        at: Option<String>,
    },
}

/// Parses an RFC 3339 time, or a `datetime-local` value read as JST.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(Timestamp((t.unix_timestamp_nanos() / 1000) as i64));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?;
    let t = t.assume_offset(time::macros::offset!(+9));
    Some(Timestamp((t.unix_timestamp_nanos() / 1000) as i64))
}

/// What a vital-sign write answered: the record, and whether it was made just
/// now or by an earlier request with the same `Idempotency-Key`.
pub struct Written {
    pub record: RecordId,
    pub replayed: bool,
}

/// Enters a vital sign. With an idempotency key (issue 19 §5) the record's id is
/// derived from the person and the key, so the ledger remembers the key: a retry
/// of the same request (after a lost answer, a 500 for a write that was in fact
/// durable, or a restart) answers the first record and writes nothing; the same
/// key on a different request is refused (422) and changes nothing.
pub async fn add_vital(
    st: &AppState,
    a: &Authed,
    input: VitalInput,
    key: Option<&str>,
) -> ApiResult<Written> {
    let (person, actor) = individual(a)?;
    let now = st.platform.now();
    let record = RecordId::new(st.platform.id_for("rec", person.as_str(), key))
        .expect("ids the platform makes are valid ids");
    if key.is_some()
        && let Some(w) = keyed_replay(st, &person, &record, &input, now).await?
    {
        return Ok(w);
    }
    let built = vital_resource(&person, &input, now, now)?;
    match submit_vital(st, &actor, &person, &record, built).await {
        // A concurrent request with the same key got there first.
        Err(e) if key.is_some() && e.body.code == "record.exists" => {
            keyed_replay(st, &person, &record, &input, now)
                .await?
                .ok_or(e)
        }
        other => other.map(|()| Written {
            record,
            replayed: false,
        }),
    }
}

/// The answer to a keyed request whose record exists: the first one's, if this
/// request is the same one (its vital rebuilt at the first one's time, when it
/// named none, is the stored resource), else the key's reuse refused.
async fn keyed_replay(
    st: &AppState,
    person: &PersonId,
    record: &RecordId,
    input: &VitalInput,
    now: Timestamp,
) -> ApiResult<Option<Written>> {
    let state = st.platform.records_state(person).await?;
    let Some(first) = state.records.get(record) else {
        return Ok(None);
    };
    let (resource, _) = vital_resource(person, input, first.entry.effective_at, now)?;
    if first.entry.category != Category::Vitals || first.entry.resource.value() != resource {
        return Err(ApiError::idempotency_key_reused());
    }
    Ok(Some(Written {
        record: record.clone(),
        replayed: true,
    }))
}

async fn submit_vital(
    st: &AppState,
    actor: &Actor,
    person: &PersonId,
    record: &RecordId,
    (resource, effective_at): (serde_json::Value, Timestamp),
) -> ApiResult<()> {
    outcome(
        st.platform
            .records(
                actor,
                person,
                RecordCommand::Submit(Submission {
                    record: record.clone(),
                    category: Category::Vitals,
                    effective_at,
                    resource,
                    origin: Origin::SelfEntered,
                    created_by: None,
                    original_identifier: None,
                }),
            )
            .await,
    )?;
    Ok(())
}

/// The FHIR Observation of a vital sign and its clinical time: the input's, or
/// `default_at` when it names none. Values out of range are refused (P2(1)).
fn vital_resource(
    person: &PersonId,
    input: &VitalInput,
    default_at: Timestamp,
    now: Timestamp,
) -> ApiResult<(serde_json::Value, Timestamp)> {
    let at = |s: &Option<String>| -> ApiResult<Timestamp> {
        match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default_at),
            Some(s) => {
                let t = parse_time(s).ok_or_else(|| {
                    ApiError::invalid(mebyo_domain::clause!("P2(1)"), "time must be RFC 3339")
                })?;
                if t > now || t.0 < now.0 - 120 * YEAR_US {
                    return Err(ApiError::invalid(
                        mebyo_domain::clause!("P2(1)"),
                        "time must lie in the past (and not before 120 years ago)",
                    ));
                }
                Ok(t)
            }
        }
    };
    match input {
        VitalInput::BloodPressure {
            systolic,
            diastolic,
            at: t,
        } => {
            if !(50..=300).contains(systolic)
                || !(20..=200).contains(diastolic)
                || diastolic >= systolic
            {
                return Err(ApiError::invalid(
                    mebyo_domain::clause!("P2(1)"),
                    "blood pressure: systolic 50–300, diastolic 20–200 mmHg, diastolic below systolic",
                ));
            }
            let t = at(t)?;
            Ok((world::blood_pressure(person, *systolic, *diastolic, t), t))
        }
        VitalInput::BodyWeight { kg, at: t } => {
            if !kg.is_finite() || !(1.0..=500.0).contains(kg) {
                return Err(ApiError::invalid(
                    mebyo_domain::clause!("P2(1)"),
                    "weight must be 1–500 kg",
                ));
            }
            let t = at(t)?;
            let kg = (kg * 10.0).round() / 10.0;
            Ok((world::body_weight(person, kg, t), t))
        }
    }
}

// ---- consents (P4.6(2)) --------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub consent: String,
    pub provider: String,
    #[schema(value_type = Vec<String>)]
    pub categories: BTreeSet<Category>,
    #[schema(value_type = String)]
    pub purpose: Purpose,
    pub granted_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// `active`, `revoked` or `expired` at the time of the request.
    pub state: String,
}

pub async fn my_consents(st: &AppState, a: &Authed) -> ApiResult<Vec<ConsentView>> {
    let (person, _) = individual(a)?;
    let now = st.platform.now();
    let state = st.platform.person_state(&person).await?;
    let mut v: Vec<_> = state
        .consents
        .values()
        .map(|c| ConsentView {
            consent: c.id.to_string(),
            provider: c.provider.to_string(),
            categories: c.categories.clone(),
            purpose: c.purpose,
            granted_at: world::rfc3339_jst(c.granted_at),
            expires_at: world::rfc3339_jst(c.expires_at),
            revoked_at: c.revoked_at.map(world::rfc3339_jst),
            state: match c.active_at(now) {
                Ok(()) => "active".into(),
                Err(r) if r.code == "consent.revoked" => "revoked".into(),
                Err(_) => "expired".into(),
            },
        })
        .collect();
    v.sort_by(|a, b| b.granted_at.cmp(&a.granted_at));
    Ok(v)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ConsentInput {
    pub provider: String,
    #[schema(value_type = Vec<String>)]
    pub categories: Vec<Category>,
    #[schema(value_type = String)]
    pub purpose: Purpose,
    /// Days until the consent expires (at most the platform's longest consent).
    pub days: i64,
    /// How many years of past records it covers (default 10).
    pub years_back: Option<i64>,
}

/// The provider, categories and years back a grant asks for, each in its bounds
/// (P4.6(2)).
fn consent_terms(input: &ConsentInput) -> ApiResult<(ProviderId, BTreeSet<Category>, i64)> {
    let provider = ProviderId::new(input.provider.as_str()).map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P4.6(2)"), "provider id is malformed")
    })?;
    if !(1..=3650).contains(&input.days) {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "days must be 1 to 3650",
        ));
    }
    let years = input.years_back.unwrap_or(10);
    if !(0..=120).contains(&years) {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "years_back must be 0 to 120",
        ));
    }
    if input.categories.len() > Category::ALL.len() {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "too many categories",
        ));
    }
    Ok((provider, input.categories.iter().copied().collect(), years))
}

/// What a consent grant answered: the consent, and whether an earlier request
/// with the same `Idempotency-Key` made it.
pub struct Granted {
    pub consent: ConsentId,
    pub replayed: bool,
}

/// Grants a consent. With an idempotency key its id is derived from the person
/// and the key (issue 19 §5), as [`add_vital`] does for records.
pub async fn grant_consent(
    st: &AppState,
    a: &Authed,
    input: ConsentInput,
    key: Option<&str>,
) -> ApiResult<Granted> {
    let (person, actor) = individual(a)?;
    let (provider, categories, years) = consent_terms(&input)?;
    let consent = ConsentId::new(st.platform.id_for("consent", person.as_str(), key))
        .expect("ids the platform makes are valid ids");
    // The request as the consent it would make, relative to its grant time.
    let same = |c: &mebyo_domain::consent::Consent| {
        c.provider == provider
            && c.categories == categories
            && c.purpose == input.purpose
            && c.expires_at.0 - c.granted_at.0 == Duration::days(input.days).0
            && c.granted_at.0 - c.period.from.0 == years * YEAR_US + 1
    };
    let replay = |state: &mebyo_domain::person::PersonState| match state.consents.get(&consent) {
        None => Ok(None),
        Some(c) if key.is_some() && same(c) => Ok(Some(Granted {
            consent: consent.clone(),
            replayed: true,
        })),
        Some(_) => Err(ApiError::idempotency_key_reused()),
    };
    if key.is_some()
        && let Some(g) = replay(&*st.platform.person_state(&person).await?)?
    {
        return Ok(g);
    }
    let now = st.platform.now();
    let expires_at = now + Duration::days(input.days);
    let granted = st
        .platform
        .person(
            &actor,
            &person,
            PersonCommand::GrantConsent {
                consent: consent.clone(),
                provider: provider.clone(),
                categories: categories.clone(),
                purpose: input.purpose,
                period: Period {
                    from: Timestamp(now.0 - years * YEAR_US - 1),
                    to: expires_at,
                },
                expires_at,
            },
        )
        .await;
    match outcome(granted) {
        // A concurrent request with the same key got there first.
        Err(e) if key.is_some() && e.body.code == "consent.exists" => {
            replay(&*st.platform.person_state(&person).await?)?.ok_or(e)
        }
        other => other.map(|_| Granted {
            consent,
            replayed: false,
        }),
    }
}

pub async fn revoke_consent(st: &AppState, a: &Authed, consent: &str) -> ApiResult<()> {
    let (person, actor) = individual(a)?;
    let consent = ConsentId::new(consent).map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P4.6(2)"), "consent id is malformed")
    })?;
    outcome(
        st.platform
            .person(&actor, &person, PersonCommand::RevokeConsent { consent })
            .await,
    )?;
    Ok(())
}

// ---- reads by anyone (provider gateway, or an individual's own) --------------------

pub fn parse_categories(s: &str) -> ApiResult<BTreeSet<Category>> {
    let mut out = BTreeSet::new();
    for c in s
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .take(16)
    {
        let cat: Category =
            serde_json::from_value(serde_json::Value::String(c.into())).map_err(|_| {
                ApiError::invalid(
                    mebyo_domain::clause!("P4.6(2)"),
                    format!("unknown category {c:?}"),
                )
            })?;
        out.insert(cat);
    }
    Ok(out)
}

pub fn parse_purpose(s: &str) -> ApiResult<Purpose> {
    serde_json::from_value(serde_json::Value::String(s.trim().into()))
        .map_err(|_| ApiError::invalid(mebyo_domain::clause!("P4.11(3)"), "unknown purpose"))
}

/// A consent-gated read (P4.6(2)); the platform records it durably before any
/// data is returned, refused or not.
pub async fn read_person(
    st: &AppState,
    a: &Authed,
    person: &str,
    categories: BTreeSet<Category>,
    purpose: Purpose,
    days: i64,
) -> ApiResult<Vec<RecordView>> {
    let person = PersonId::new(person).map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P4.6(2)"), "person id is malformed")
    })?;
    if !(1..=36500).contains(&days) {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "days must be 1 to 36500",
        ));
    }
    let now = st.platform.now();
    let actor = a.session.principal.actor();
    let channel = match actor {
        Actor::Provider { .. } => Channel::ProviderGateway,
        _ => Channel::Portal,
    };
    outcome(
        st.platform
            .read_records_shared(&AccessRequest {
                actor,
                person,
                categories,
                purpose,
                channel,
                period: Period {
                    from: Timestamp(now.0 - days * 86_400_000_000),
                    to: Timestamp(now.0 + 1),
                },
            })
            .await,
    )
    // Views straight from the shared records: one copy, into the response.
    .map(|shared| shared.iter().map(record_view).collect())
}

// ---- who accessed my data ------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessLine {
    pub at: String,
    /// `themselves`, `representative`, `provider`, `staff`, …
    pub who: String,
    /// Provider or staff id (or the representative's person id).
    pub who_id: Option<String>,
    #[schema(value_type = String)]
    pub purpose: Purpose,
    #[schema(value_type = Vec<String>)]
    pub categories: BTreeSet<Category>,
    pub consent: Option<String>,
    /// `granted` or `refused`.
    pub outcome: String,
    pub refusal_code: Option<String>,
    pub refusal_clause: Option<String>,
}

pub async fn my_access_log(st: &AppState, a: &Authed, limit: usize) -> ApiResult<Vec<AccessLine>> {
    let (person, _) = individual(a)?;
    st.caught_up().await;
    let models = st.views.read();
    Ok(models
        .access()
        .of_person(person.as_str())
        .take(limit)
        .map(|v| {
            use mebyo_projections::Who;
            let (who, who_id) = match v.who {
                Who::Themselves { .. } => ("themselves", None),
                Who::Representative { person, .. } => ("representative", Some(person)),
                Who::Provider { provider, .. } => ("provider", Some(provider)),
                Who::Staff { staff } => ("staff", Some(staff)),
                Who::Applicant => ("applicant", None),
                Who::System => ("system", None),
            };
            AccessLine {
                at: world::rfc3339_jst(v.at),
                who: who.into(),
                who_id: who_id.map(str::to_string),
                purpose: v.purpose,
                categories: v.categories.clone(),
                consent: v.consent.map(str::to_string),
                outcome: match v.outcome {
                    AccessOutcome::Granted => "granted".into(),
                    AccessOutcome::Refused => "refused".into(),
                },
                refusal_code: v.refusal_code.map(str::to_string),
                refusal_clause: v.refusal_clause.map(str::to_string),
            }
        })
        .collect())
}

// ---- providers a person may consent to, notices ---------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderLine {
    pub provider: String,
    pub status: String,
    pub connection: Option<String>,
}

pub fn lower(v: impl std::fmt::Debug) -> String {
    // Enum names as snake_case words for display and JSON (no data inside them).
    let s = format!("{v:?}");
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            break;
        }
    }
    out
}

pub fn providers(st: &AppState, only_approved: bool) -> Vec<ProviderLine> {
    let m = st.views.read();
    m.providers()
        .iter()
        .filter(|(_, r)| {
            !only_approved || r.status == mebyo_domain::provider::ProviderStatus::Approved
        })
        .map(|(id, r)| ProviderLine {
            provider: id.to_string(),
            status: lower(r.status),
            connection: r.connection.map(lower),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Notice {
    /// RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
    pub title_ja: String,
    pub title_en: String,
}

// The operator summary lives in `ops_summary`; re-exported so that both faces
// keep one path to it.
pub use crate::ops_summary::*;

pub fn jst_date(day: i32) -> String {
    let d = time::Date::from_julian_day(2_440_588 + day).unwrap_or(time::Date::MIN);
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_backup::{BackupSchedule, Flag, MICROS_PER_HOUR};
    use mebyo_projections::{AnyEvent, Applied, BackupEvent, BackupKind, Operations};

    fn folded(last_full: Option<i64>, last_diff: Option<i64>) -> Operations {
        let mut ops = Operations::default();
        let runs = [
            (BackupKind::Full, last_full),
            (BackupKind::Differential, last_diff),
        ];
        for (i, (kind, at)) in runs.into_iter().enumerate() {
            let Some(at) = at else { continue };
            let e = AnyEvent::Backup(BackupEvent::Completed {
                kind,
                backup_id: format!("set-{i}"),
                started_at: Timestamp(at),
                finished_at: Timestamp(at + 1),
                range: Some((0, 1)),
                head_hash: None,
            });
            ops.apply(&Applied {
                position: i as u64,
                recorded_at_us: at,
                stream_id: "ops-backups",
                prev_hash: [0; 32],
                hash: [0; 32],
                event: &e,
            });
        }
        ops
    }

    /// P4.10: the dashboard's overdue flags are `BackupSchedule::overdue`'s, for
    /// every combination of last runs around both limits.
    #[test]
    fn p4_10_dashboard_flags_agree_with_the_backup_schedule() {
        let schedule = BackupSchedule::default();
        let now = 1_767_225_600_000_000_i64;
        let ages = [
            None,
            Some(0),
            Some(MICROS_PER_HOUR),
            Some(27 * MICROS_PER_HOUR),
            Some(27 * MICROS_PER_HOUR + 1),
            Some(3 * 24 * MICROS_PER_HOUR),
            Some(7 * 24 * MICROS_PER_HOUR + 3 * MICROS_PER_HOUR),
            Some(7 * 24 * MICROS_PER_HOUR + 3 * MICROS_PER_HOUR + 1),
            Some(30 * 24 * MICROS_PER_HOUR),
        ];
        let mut cases = 0;
        for full in ages {
            for diff in ages {
                let (full, diff) = (full.map(|a| now - a), diff.map(|a| now - a));
                let want: Vec<String> = schedule
                    .overdue(now, full, diff)
                    .iter()
                    .map(Flag::to_string)
                    .collect();
                assert_eq!(
                    backup_flags(&folded(full, diff), Timestamp(now)),
                    want,
                    "full {full:?} differential {diff:?}"
                );
                cases += 1;
            }
        }
        assert_eq!(cases, 81);
    }

    /// A summary reads its fields from the stored text (P5.1 shows what was
    /// recorded as recorded); a resource that does not fit reads as empty
    /// instead of failing the whole listing.
    #[test]
    fn p5_1_a_glance_reads_the_summary_fields_of_a_stored_resource() {
        use mebyo_domain::PersonId;
        use mebyo_domain::Timestamp;
        let bp = Resource::from(world::blood_pressure(
            &PersonId::new("p-1").unwrap(),
            128,
            82,
            Timestamp(0),
        ));
        assert_eq!(Glance::of(&bp).bp_values(), Some((128.0, 82.0)));
        assert_eq!(Glance::of(&bp).value_quantity(), None);
        let weight = Resource::from(world::body_weight(
            &PersonId::new("p-1").unwrap(),
            61.5,
            Timestamp(0),
        ));
        let g = Glance::of(&weight);
        assert_eq!(g.value_quantity(), Some((61.5, "kg".to_string())));
        assert_eq!(g.display(), "Body weight");
        assert_eq!(g.bp_values(), None);
        let odd = Resource::from(serde_json::json!({"code": "not an object", "component": 3}));
        assert_eq!(Glance::of(&odd).bp_values(), None);
        assert_eq!(Glance::of(&odd).display(), "");
    }
}
