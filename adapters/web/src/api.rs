//! The JSON API (`/api/v1`): everything the portal and the dashboard do, for apps
//! and providers. Sessions come from `POST /api/v1/session` as a bearer token (or
//! the browser cookie, which then needs `X-CSRF-Token` on state-changing calls).
//! Every refusal is `{"error":{"code","clause","message"}}`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mebyo_crypto::Zeroizing;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorEnvelope};
use crate::svc::{self, Authed, LoginKind};

/// A whole number as JSON Schema reads `integer`: `7` and `7.0` alike (the
/// schema's meaning, which clients such as Python's may send), anything with a
/// fraction or out of `T`'s range refused. serde's own integers refuse `7.0`,
/// so a request valid by the OpenAPI document would be refused.
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let v = match (n.as_i64(), n.as_f64()) {
        (Some(v), _) => v,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => {
            return Err(D::Error::custom(format!(
                "{n} is not a whole number in range"
            )));
        }
    };
    T::try_from(v).map_err(|_| D::Error::custom(format!("{v} is out of range")))
}

/// Rejections of malformed JSON as our error shape, not axum's plain text.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::new(
                e.status(),
                "request.invalid",
                mebyo_domain::clause!("P4.5(1)(2)"),
                e.body_text(),
            )),
        }
    }
}

pub fn session_cookie(token: &str, max_age_s: i64) -> HeaderValue {
    // __Host- prefix: Secure, Path=/ and no Domain are enforced by the browser too.
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}",
        svc::COOKIE
    ))
    .expect("cookie is ASCII")
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-mebyo=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginInput {
    pub kind: LoginKind,
    pub login: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOutput {
    /// Bearer token (also set as the `__Host-mebyo` cookie).
    pub token: String,
    pub csrf_token: String,
    pub kind: String,
    pub id: String,
    /// For staff: the step of signing in left (`change_password`,
    /// `enrol_second_factor`, `second_factor`); absent when signed in. Until then
    /// the session acts for nobody.
    pub next: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/session", request_body = LoginInput,
    responses((status = 200, body = LoginOutput), (status = 401, description = "Wrong login or password", body = ErrorEnvelope), (status = 403, description = "No connection information issued yet", body = ErrorEnvelope), (status = 429, description = "Rate limited or locked out; see Retry-After", body = ErrorEnvelope), (status = 503, description = "No room for another session", body = ErrorEnvelope)),
    description = "Sign in (argon2id, rate limited, lockout after repeated failures; P4.8(2)).")]
pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<LoginInput>,
) -> ApiResult<Response> {
    let previous = svc::cookie_token(&headers);
    let (token, s) = svc::login(
        &st,
        peer.ip(),
        input.kind,
        &input.login,
        Zeroizing::new(input.password),
        previous.as_deref(),
    )
    .await?;
    let me = svc::me(
        &st,
        &Authed {
            token: token.clone(),
            session: s.clone(),
            via_cookie: false,
        },
    )
    .await?;
    let mut res = Json(LoginOutput {
        token: token.clone(),
        csrf_token: s.csrf,
        kind: me.kind,
        id: me.id,
        next: me.next,
    })
    .into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, st.cfg.sessions.absolute_us / 1_000_000),
    );
    Ok(res)
}

#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204, description = "Signed out")),
    description = "Sign out: the session ends at once.")]
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let a = svc::session(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    st.sessions.remove(&a.token);
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = svc::Me)))]
pub async fn me(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<svc::Me>> {
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(svc::me(&st, &a).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
}

/// The answer to a sign-up, the same whether or not the address was registered.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupReceived {
    /// Always `received`.
    pub status: String,
    pub message: String,
}

#[utoipa::path(post, path = "/api/v1/signup", request_body = svc::SignupInput,
    responses((status = 202, body = SignupReceived), (status = 403, description = "Registration refused by the rules", body = ErrorEnvelope), (status = 422, description = "A field breaks its rule", body = ErrorEnvelope), (status = 429, description = "Rate limited; see Retry-After", body = ErrorEnvelope), (status = 503, description = "Self-service sign-up is off here", body = ErrorEnvelope)),
    description = "Self-service registration: identity into the vault (P4.8(3)), connection information issued (P4.12), password stored irreversibly (P4.8(2)). The answer is the same whether or not the e-mail address is registered already (then nothing is written): sign in to find out whether it worked.")]
pub async fn signup(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(input): JsonBody<svc::SignupInput>,
) -> ApiResult<(StatusCode, Json<SignupReceived>)> {
    svc::signup(&st, peer.ip(), input).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignupReceived {
            status: "received".into(),
            message: svc::SIGNUP_RECEIVED.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/policy", responses((status = 200, body = svc::PolicyView), (status = 404, description = "No policy version is in force", body = ErrorEnvelope)),
    description = "The security policy version in force (P7).")]
pub async fn policy(State(st): State<AppState>) -> ApiResult<Json<svc::PolicyView>> {
    svc::policy(&st).await?.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "policy.none_in_force",
            mebyo_domain::clause!("P7"),
            "no policy version is in force",
        )
    })
}

#[utoipa::path(get, path = "/checkpoint", responses((status = 200, description = "The newest signed checkpoint: a C2SP signed note (tlog-checkpoint body), text/plain", content_type = "text/plain; charset=utf-8", body = String), (status = 404, description = "No checkpoint is signed yet", body = ErrorEnvelope)),
    description = "The newest signed checkpoint of the ledger, for witnesses and providers to keep (issue 19 §8, P4.5(2)): the same note the bus publishes on mebyo.v1.checkpoints. Verify it with the platform's published verifier key; no sign-in needed, it holds no personal data.")]
pub async fn checkpoint(State(st): State<AppState>) -> ApiResult<Response> {
    let note = st.platform.published_checkpoint().map_err(|e| {
        tracing::error!(error = %e, "reading the published checkpoint");
        ApiError::internal()
    })?;
    let note = note.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "checkpoint.none_yet",
            mebyo_domain::clause!("P4.5(2)"),
            "no checkpoint is signed yet",
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        note,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/me/policy", responses((status = 200, body = Created), (status = 404, description = "No policy version is in force", body = ErrorEnvelope), (status = 409, description = "Already accepted", body = ErrorEnvelope)),
    description = "Accept the policy version in force (P8).")]
pub async fn accept_policy(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Created>> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    Ok(Json(Created {
        id: svc::accept_policy(&st, &a).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/me/records", responses((status = 200, body = Vec<svc::RecordView>), (status = 403, description = "Not an individual user", body = ErrorEnvelope)),
    description = "My own records with provenance (P5.1); the read is recorded (P4.6(2)).")]
pub async fn my_records(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<svc::RecordView>>> {
    let a = svc::signed_in(&st, &headers)?;
    let r = svc::my_records(&st, &a).await?;
    Ok(Json(r.iter().map(svc::record_view).collect()))
}

#[utoipa::path(post, path = "/api/v1/me/password", request_body = svc::PasswordChange,
    responses((status = 204, description = "Changed; every session of the account has ended"), (status = 401, description = "Wrong current password", body = ErrorEnvelope), (status = 422, description = "The new password breaks the rule", body = ErrorEnvelope), (status = 429, description = "Locked out; see Retry-After", body = ErrorEnvelope)),
    description = "Change the signed-in account's password; every session of the account ends (P4.8(2)).")]
pub async fn change_password(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<svc::PasswordChange>,
) -> ApiResult<StatusCode> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    svc::change_password(&st, &a, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/vitals", request_body = svc::VitalInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the write safe to retry: 1 to 128 characters of [A-Za-z0-9._:-], chosen anew for each new record. A retry with the same key and request answers the first record (201, `Idempotent-Replayed: true`) and writes nothing, across restarts; the same key with a different request is refused (422 `request.idempotency_key_reused`).")),
    responses((status = 201, body = Created, headers(("Idempotent-Replayed" = String, description = "`true` when the answer is an earlier request's with the same Idempotency-Key"))), (status = 403, description = "Not an individual user, or refused by the rules", body = ErrorEnvelope), (status = 422, description = "A value out of range, diastolic not below systolic, or an Idempotency-Key malformed or reused for a different request", body = ErrorEnvelope)),
    description = "Enter a vital sign (blood pressure, body weight) as a self-entered FHIR Observation.")]
pub async fn add_vital(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<svc::VitalInput>,
) -> ApiResult<Keyed> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    let key = svc::idempotency_key(&headers)?;
    let w = svc::add_vital(&st, &a, input, key).await?;
    Ok(created(w.record.to_string(), w.replayed))
}

/// A keyed write's answer: 201 and the id, whether made now or replayed
/// (`Idempotent-Replayed` tells which), so that a retry sees the first answer.
type Keyed = (StatusCode, [(&'static str, &'static str); 1], Json<Created>);

fn created(id: String, replayed: bool) -> Keyed {
    let replayed = if replayed { "true" } else { "false" };
    (
        StatusCode::CREATED,
        [("idempotent-replayed", replayed)],
        Json(Created { id }),
    )
}

#[utoipa::path(get, path = "/api/v1/me/consents", responses((status = 200, body = Vec<svc::ConsentView>), (status = 403, description = "Not an individual user", body = ErrorEnvelope)))]
pub async fn my_consents(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<svc::ConsentView>>> {
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(svc::my_consents(&st, &a).await?))
}

#[utoipa::path(post, path = "/api/v1/me/consents", request_body = svc::ConsentInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the grant safe to retry, as for /api/v1/me/vitals: the same key and request answer the first consent (201, `Idempotent-Replayed: true`) and write nothing; the same key with a different request is refused (422 `request.idempotency_key_reused`).")),
    responses((status = 201, body = Created, headers(("Idempotent-Replayed" = String, description = "`true` when the answer is an earlier request's with the same Idempotency-Key"))), (status = 403, description = "Not an individual user, or refused by the rules", body = ErrorEnvelope), (status = 404, description = "No such provider", body = ErrorEnvelope), (status = 409, description = "In conflict with an existing consent", body = ErrorEnvelope), (status = 422, description = "A field breaks its rule, or an Idempotency-Key malformed or reused for a different request", body = ErrorEnvelope)),
    description = "Grant a provider a consent: categories, purpose, expiry (P4.6(2)).")]
pub async fn grant_consent(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<svc::ConsentInput>,
) -> ApiResult<Keyed> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    let key = svc::idempotency_key(&headers)?;
    let g = svc::grant_consent(&st, &a, input, key).await?;
    Ok(created(g.consent.to_string(), g.replayed))
}

#[utoipa::path(post, path = "/api/v1/me/consents/{consent}/revoke", params(("consent" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, description = "Not an individual user, or refused by the rules", body = ErrorEnvelope), (status = 404, description = "No such consent", body = ErrorEnvelope), (status = 409, description = "Already revoked", body = ErrorEnvelope), (status = 422, description = "The consent id is malformed", body = ErrorEnvelope)),
    description = "Revoke a consent; it stops covering reads at once (P4.6(2)).")]
pub async fn revoke_consent(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(consent): Path<String>,
) -> ApiResult<StatusCode> {
    let a = svc::signed_in(&st, &headers)?;
    svc::check_csrf(&a, svc::csrf_header(&headers))?;
    svc::revoke_consent(&st, &a, &consent).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LimitQuery {
    /// At most this many lines, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/me/access-log", params(LimitQuery),
    responses((status = 200, body = Vec<svc::AccessLine>), (status = 403, description = "Not an individual user", body = ErrorEnvelope), (status = 422, description = "limit out of range", body = ErrorEnvelope)),
    description = "Who accessed my data: every access and refusal, newest first (P4.6(2)).")]
pub async fn my_access_log(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Vec<svc::AccessLine>>> {
    let a = svc::signed_in(&st, &headers)?;
    // Refused rather than clamped, so the schema's bounds are the server's.
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "limit must be 1 to 1000",
        ));
    }
    Ok(Json(svc::my_access_log(&st, &a, limit).await?))
}

#[utoipa::path(get, path = "/api/v1/notices", responses((status = 200, body = Vec<svc::Notice>)),
    description = "Maintenance notices (P4.3).")]
pub async fn notices(State(st): State<AppState>) -> Json<Vec<svc::Notice>> {
    Json(st.cfg.notices.clone())
}

#[utoipa::path(get, path = "/api/v1/providers", responses((status = 200, body = Vec<svc::ProviderLine>)),
    description = "Approved providers a person may consent to (P2(3)).")]
pub async fn providers(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<svc::ProviderLine>>> {
    svc::signed_in(&st, &headers)?;
    Ok(Json(svc::providers(&st, true)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReadQuery {
    /// Comma-separated categories, e.g. `vitals,allergy`.
    pub categories: String,
    /// Purpose of the access (P4.11(3)), e.g. `care`.
    pub purpose: String,
    /// Records of the last this many days (default 365).
    pub days: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/persons/{person}/records", params(("person" = String, Path), ReadQuery),
    responses((status = 200, body = Vec<svc::RecordView>), (status = 403, description = "Refused: no consent covers the read, or not the person", body = ErrorEnvelope), (status = 404, description = "No such person", body = ErrorEnvelope), (status = 422, description = "A malformed id, category, purpose or period", body = ErrorEnvelope)),
    description = "Consent-gated read (P4.6(2)): a provider sees only what an active consent covers; an individual only their own. The access event is durable before the answer.")]
pub async fn read_person(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(person): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Json<Vec<svc::RecordView>>> {
    let a = svc::signed_in(&st, &headers)?;
    let categories = svc::parse_categories(&q.categories)?;
    let purpose = svc::parse_purpose(&q.purpose)?;
    let r = svc::read_person(&st, &a, &person, categories, purpose, q.days.unwrap_or(365)).await?;
    Ok(Json(r))
}

#[utoipa::path(get, path = "/api/v1/ops/summary", responses((status = 200, body = svc::OpsSummary), (status = 403, description = "Not platform staff", body = ErrorEnvelope)),
    description = "Operator dashboard data from the read models, the panels of the caller's staff roles (P3.1); no health content (P4.6(2)).")]
pub async fn ops_summary(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<svc::OpsSummary>> {
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(svc::ops_summary(&st, &a).await?))
}

#[utoipa::path(get, path = "/api/v1/ops/incidents/{id}",
    params(("id" = String, Path, description = "incident id, e.g. inc-2025-0001")),
    responses(
        (status = 200, description = "The incident's report: its facts and, for each runbook step, the clause, who did it and when, or that it is missing (P4.14).", content_type = "application/json"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    description = "One incident's report as data, for the staff roles that see the incidents panel (P3.1, P4.14); the same report as `/ops/incidents/{id}`.")]
pub async fn incident_report(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<mebyo_operations::report::IncidentReport>> {
    let a = svc::signed_in(&st, &headers)?;
    Ok(Json(svc::incident_report(&st, &a, &id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub head: u64,
    pub projected: u64,
    pub detail: Option<String>,
    /// Operational flags that do not make the instance unready but need a person:
    /// a missing or late backup (P4.10). Empty on `/livez`.
    pub flags: Vec<String>,
}

#[utoipa::path(get, path = "/livez", responses((status = 200, body = Health)), description = "The process answers (P4.4).")]
pub async fn livez(State(st): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        head: st.platform.head().count,
        projected: st.views.position(),
        detail: None,
        flags: Vec::new(),
    })
}

/// Prometheus metrics (P4.4: the running state is monitored). Computed from the
/// ledger head and the read models at scrape time; labels carry only stable codes
/// and states, never ids or personal data.
pub async fn metrics(State(st): State<AppState>) -> Response {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    let mut registry = Registry::with_prefix("mebyo");
    crate::panics::register(&mut registry);
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let g: Gauge = Gauge::default();
        g.set(value as i64);
        registry.register(name, help, g);
    };
    let labelled = |registry: &mut Registry,
                    name: &str,
                    help: &str,
                    label: &str,
                    values: Vec<(String, u64)>| {
        let f: Family<Vec<(String, String)>, Gauge> = Family::default();
        for (k, v) in values {
            f.get_or_create(&vec![(label.to_string(), k)]).set(v as i64);
        }
        registry.register(name, help, f);
    };
    let head = st.platform.head().count;
    let projected = st.views.position();
    gauge(
        &mut registry,
        "ledger_events",
        "Events in the ledger (durable)",
        head,
    );
    gauge(
        &mut registry,
        "projections_position",
        "Events folded into the read models",
        projected,
    );
    gauge(
        &mut registry,
        "projections_lag_events",
        "Events the read models are behind",
        head.saturating_sub(projected),
    );
    {
        let m = st.views.read();
        let r = m.registry().counts();
        labelled(
            &mut registry,
            "people",
            "Individuals by state",
            "state",
            vec![
                ("active".into(), r.active),
                ("withdrawn".into(), r.withdrawn),
                ("erased".into(), r.erased),
            ],
        );
        let c = m.consents().counts(st.platform.now());
        labelled(
            &mut registry,
            "consents",
            "Consents by state at scrape time",
            "state",
            vec![
                ("active".into(), c.active),
                ("revoked".into(), c.revoked),
                ("expired".into(), c.expired),
            ],
        );
        labelled(
            &mut registry,
            "providers",
            "Providers by status",
            "status",
            m.providers()
                .status_counts()
                .into_iter()
                .map(|(s, n)| (format!("{s:?}").to_lowercase(), n as u64))
                .collect(),
        );
        labelled(
            &mut registry,
            "access_refusals",
            "Refused accesses by refusal code (P4.6(2))",
            "code",
            m.access()
                .refusals_by_code()
                .into_iter()
                .map(|(c, n)| (c.to_string(), n))
                .collect(),
        );
    }
    let mut body = String::new();
    match encode(&mut body, &registry) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A probe file of its own for each `/readyz` call: concurrent calls sharing one
/// name removed each other's file and reported the directory unwritable (issue
/// 22 §5). The process id keeps two servers on one directory apart too.
fn readyz_probe_path(root: &std::path::Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.join(format!(".readyz-probe-{}-{n}", std::process::id()))
}

#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Health), (status = 503, body = Health)),
    description = "Ready: the data directory is writable and the read models have caught up (P4.4).")]
pub async fn readyz(State(st): State<AppState>) -> Response {
    let head = st.platform.head().count;
    let projected = st.views.position();
    let probe = readyz_probe_path(&st.platform.dir.root);
    let writable = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)?;
        let written = f.write_all(b"ok").and_then(|()| f.sync_all());
        // Removed even when the write failed, so probes leave nothing behind.
        let removed = std::fs::remove_file(&probe);
        written.and(removed)
    })
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    let lag = head.saturating_sub(projected);
    let detail = if let Some(why) = st.platform.ledger_stopped() {
        // Nothing more is acknowledged until a restart reopens and rescans the
        // log (issue 19 §5): out of service, saying so.
        Some(format!(
            "the ledger stopped taking writes ({why}); fix the cause (e.g. free disk space), then restart mebyo serve"
        ))
    } else if !writable {
        Some("data directory is not writable".to_string())
    } else if let Some(f) = st.views.failed() {
        Some(format!("read models stopped: {f}"))
    } else if lag > st.cfg.max_projection_lag {
        Some(format!("read models are {lag} events behind"))
    } else {
        None
    };
    let status = if detail.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Late backups are flagged, not made a readiness failure: taking the instance
    // out of service would not take a backup (P4.10).
    let flags = svc::backup_flags(st.views.read().operations(), st.platform.now());
    (
        status,
        Json(Health {
            status: if detail.is_none() {
                "ready"
            } else {
                "not_ready"
            }
            .into(),
            head,
            projected,
            detail,
            flags,
        }),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mebyo",
        description = "My ME-BYO Karte personal health records: portal, provider and operator API. Every refusal names its clause of the security policy."
    ),
    paths(
        login,
        logout,
        me,
        signup,
        policy,
        checkpoint,
        accept_policy,
        change_password,
        my_records,
        add_vital,
        my_consents,
        grant_consent,
        revoke_consent,
        my_access_log,
        notices,
        providers,
        read_person,
        ops_summary,
        incident_report,
        crate::ops_api::report_incident,
        crate::ops_api::incident_step,
        crate::ops_api::incident_rotation,
        crate::ops_api::incident_escalation,
        crate::ops_api::incident_close,
        crate::ops_api::revoke_credential,
        crate::ops_api::run_backup,
        crate::ops_api::run_drill,
        crate::staff_signin::enrolment_api,
        crate::staff_signin::code_api,
        crate::staff_signin::reset_api,
        crate::staff_signin::appoint_api,
        crate::staff_signin::dismiss_api,
        crate::staff_signin::training_api,
        crate::ops_providers::apply_api,
        crate::ops_providers::attest_api,
        crate::ops_providers::decide_api,
        crate::ops_providers::renew_api,
        crate::ops_providers::loss_api,
        crate::ops_providers::issue_api,
        crate::ops_providers::signing_key_api,
        crate::ops_keys::erase_api,
        crate::ops_keys::rotate_kek_api,
        crate::ops_keys::grant_api,
        crate::ops_routine::schedule_api,
        crate::ops_routine::cancel_api,
        crate::ops_routine::review_api,
        crate::ops_media::approve_api,
        crate::ops_media::show_api,
        crate::ops_media::issue_api,
        crate::ops_media::return_api,
        crate::ops_media::dispose_api,
        crate::ops_media::disposal_api,
        livez,
        readyz,
        openapi
    ),
    components(schemas(
        ErrorEnvelope,
        ErrorBody,
        LoginInput,
        LoginOutput,
        LoginKind,
        Created,
        SignupReceived,
        svc::SignupInput,
        svc::PasswordChange,
        svc::PolicyView,
        svc::Me,
        svc::RecordView,
        svc::VitalInput,
        svc::ConsentView,
        svc::ConsentInput,
        svc::AccessLine,
        svc::Notice,
        svc::ProviderLine,
        svc::OpsSummary,
        svc::Counts,
        svc::ConsentCounts,
        svc::CredentialLine,
        svc::ProviderAccess,
        svc::ChainView,
        svc::CheckpointView,
        svc::VerificationView,
        svc::BackupRunView,
        svc::BackupFailureView,
        svc::BackupsView,
        svc::IncidentLine,
        svc::IncidentsView,
        crate::ops_api::Recorded,
        crate::ops_api::RevokeInput,
        crate::ops_api::BackupInput,
        crate::ops_api::IncidentInput,
        crate::ops_api::StepInput,
        crate::ops_api::RotationInput,
        crate::ops_api::EscalationInput,
        crate::staff_signin::Enrolment,
        crate::staff_signin::CodeInput,
        crate::staff_signin::ResetInput,
        crate::staff_signin::ResetDone,
        crate::staff_signin::RoleInput,
        crate::staff_signin::TrainingInput,
        crate::ops_providers::ApplicationInput,
        crate::ops_providers::AttestationInput,
        crate::ops_providers::DecisionInput,
        crate::ops_providers::IssueInput,
        crate::ops_providers::SigningKeyInput,
        crate::ops_keys::Erased,
        crate::ops_keys::Rotated,
        crate::ops_keys::GrantInput,
        crate::ops_routine::WindowInput,
        crate::ops_routine::ReviewInput,
        crate::ops_media::ApprovalInput,
        crate::ops_media::MediaIssueInput,
        crate::ops_media::ReturnInput,
        crate::ops_media::MediaDisposalInput,
        crate::ops_media::DisposalInput,
        Health
    ))
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "This document", content_type = "application/json")),
    description = "The OpenAPI document of this server, completed by `openapi::document`.")]
pub async fn openapi() -> Response {
    static DOC: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| crate::openapi::document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str()).into_response()
}
