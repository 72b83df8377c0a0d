//! mebyo-web: the HTTPS portal for individuals (Japanese first, English one click
//! away), the operator dashboard, and the JSON API with its OpenAPI document
//! (issue 6).
//!
//! Transport and sessions (P4.5(3), P4.6(1), P4.8(2)): rustls only, HSTS and a
//! strict CSP on every response; argon2id passwords in the platform's auth data
//! area; rate limits per source group and per account, attempts reserved before
//! hashing and locks per account and source (`guard`); CSRF tokens for anonymous
//! pages without any session (`session::AnonCsrf`); `__Host-` session cookies
//! (Secure, HttpOnly, SameSite=Strict) with a CSRF token per session; sessions
//! expire on the platform's injected clock. Every read of health data goes through
//! `Platform::read_records`, which records the access before answering (P4.6(2)).
//! No personal data in logs or URLs: paths carry pseudonymous ids only, and the
//! request log records the route template, never the concrete path.
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod guard;
pub mod openapi;
pub mod ops_api;
pub mod ops_dashboard;
pub mod ops_forms;
pub mod ops_keys;
pub mod ops_media;
pub mod ops_pages;
pub mod ops_providers;
pub mod ops_routine;
pub mod ops_summary;
pub mod pages;
pub mod panics;
pub mod portal_pages;
pub mod session;
pub mod staff_signin;
pub mod svc;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use mebyo_crypto::{PasswordHasher, PasswordHasherConfig, Zeroizing};
use mebyo_domain::signin::SigninRule;
use mebyo_domain::{CredentialId, StaffId};
use mebyo_platform::Platform;
use mebyo_platform::auth::{AuthStore, Subject};

pub use session::SessionLimits;
pub use svc::Notice;
pub use tls::TlsSource;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Auth(#[from] mebyo_platform::auth::AuthError),
    #[error(transparent)]
    Crypto(#[from] mebyo_crypto::CryptoError),
}

/// How the web face runs. Every limit has a default; nothing is unbounded.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Address to listen on (port 0 picks a free one).
    pub bind: SocketAddr,
    pub tls: TlsSource,
    /// The operations-office staff id whose desk issues connection information at
    /// self-service sign-up (P4.12(1)); `None` disables self-service sign-up.
    pub signup_office: Option<StaffId>,
    pub sessions: SessionLimits,
    /// Sign-in locks per account and source group, limits per account (P4.8(2)).
    pub lockout: SigninRule,
    /// Sign-in and sign-up attempts per source group (an IPv4 address or an IPv6
    /// /64, `signin::source_group`): burst, then per minute (P4.4(1)).
    pub auth_burst: u32,
    pub auth_per_minute: u32,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests handled at once; the rest wait (back-pressure, not collapse).
    pub max_concurrent_requests: usize,
    pub request_timeout: std::time::Duration,
    /// argon2id computations at once (each ~19 MiB).
    pub password_hashing_concurrency: usize,
    /// Readiness fails when the read models are further behind than this.
    pub max_projection_lag: u64,
    /// Maintenance notices shown on the portal (P4.3); fed by operations later.
    pub notices: Vec<Notice>,
    /// The operations settings (maintenance lead time, firewall-review interval):
    /// `DATA/operations.json`, as the CLI reads them.
    pub ops: mebyo_operations_service::OpsSettings,
    /// The bearer token `/metrics` requires (P4.4); `None` turns `/metrics` off.
    /// A token rather than a second listener: one TLS port to open and watch,
    /// and Prometheus sends it with `authorization.credentials_file`.
    pub metrics_token: Option<String>,
}

impl WebConfig {
    /// Defaults for a data directory: `https://127.0.0.1:8443`, self-signed
    /// certificate in `DATA/tls/`.
    pub fn new(data_root: &Path) -> Self {
        Self {
            bind: "127.0.0.1:8443".parse().expect("valid address"),
            tls: TlsSource::in_data_dir(data_root),
            signup_office: None,
            sessions: SessionLimits::default(),
            lockout: SigninRule::default(),
            auth_burst: 10,
            auth_per_minute: 10,
            max_body_bytes: 64 * 1024,
            max_concurrent_requests: 4096,
            request_timeout: std::time::Duration::from_secs(30),
            password_hashing_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            max_projection_lag: 10_000,
            notices: Vec::new(),
            metrics_token: None,
            ops: mebyo_operations_service::OpsSettings::default(),
        }
    }
}

pub struct Inner {
    pub platform: Arc<Platform>,
    pub auth: AuthStore,
    pub hasher: PasswordHasher,
    pub sessions: session::Sessions,
    pub auth_limiter: session::RateLimiter,
    /// Sign-in reservations and per-account limits.
    pub guard: guard::SigninGuard,
    /// CSRF tokens of the pages shown before sign-in (no session needed).
    pub anon_csrf: session::AnonCsrf,
    pub views: Arc<mebyo_platform::views::Views>,
    pub cfg: WebConfig,
    /// A hash of a random password, verified against when the login is unknown so
    /// unknown and known accounts take the same time.
    pub dummy_phc: String,
    /// The last operations tick's result (P4.4), set by whoever runs the tick.
    pub ops_health: parking_lot::RwLock<Option<OpsHealth>>,
}

/// What the operations tick last found (P4.4(2)(3)), shown in `/readyz` under
/// `operations` and as `mebyo_ops_*` metrics. Plain values, so this crate needs
/// nothing of the operations service; no ids, no personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpsHealth {
    /// When the tick ran (platform clock, microseconds since the epoch).
    pub at_us: i64,
    /// `false` when the tick failed as a whole (then `error` says why).
    pub tick_ok: bool,
    pub error: Option<String>,
    pub probe: Option<ProbeHealth>,
    pub firewall_review_overdue: Option<bool>,
    /// Maintenance notices published to providers since the server started (P4.3).
    pub notices_published: u64,
    /// Access records older than the configured retention (P4.5(2)).
    pub access_records_past_retention: Option<u64>,
    /// The provider bus's counters as OpenMetrics lines, when it runs
    /// (`mebyo_bus::stats`: unauthenticated messages by code, handler panics).
    #[serde(skip)]
    pub bus_metrics: Option<String>,
}

/// The synthetic probe's last read of the real read path (P4.4(2)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeHealth {
    pub at_us: i64,
    pub latency_us: i64,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// The refusal code when refused.
    pub code: Option<String>,
    pub healthy: bool,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub async fn new(platform: Arc<Platform>, cfg: WebConfig) -> Result<AppState, WebError> {
        let auth = AuthStore::open(&platform.dir.root)?;
        auth.bind_ledger(platform.ledger_count());
        let hasher = PasswordHasher::new(
            PasswordHasherConfig {
                max_concurrent: cfg.password_hashing_concurrency.max(1),
                ..Default::default()
            },
            Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_os_rng()),
        )?;
        let dummy_phc = hasher.hash(Zeroizing::new(session::random_token())).await?;
        // The platform's live read models: pages and the dashboard read these.
        let views = platform.start_views();
        Ok(AppState(Arc::new(Inner {
            auth,
            hasher,
            sessions: session::Sessions::new(cfg.sessions),
            auth_limiter: session::RateLimiter::new(cfg.auth_burst, cfg.auth_per_minute, 100_000),
            guard: guard::SigninGuard::new(cfg.lockout, 200_000),
            anon_csrf: session::AnonCsrf::new(),
            views,
            dummy_phc,
            cfg,
            platform,
            ops_health: parking_lot::RwLock::new(None),
        })))
    }

    /// Records the operations tick's latest result for `/readyz` and `/metrics`.
    pub fn set_ops_health(&self, h: OpsHealth) {
        *self.ops_health.write() = Some(h);
    }

    pub fn ops_health(&self) -> Option<OpsHealth> {
        self.ops_health.read().clone()
    }

    /// Waits (briefly, bounded) until the read models include everything durable
    /// now, so a page shows the person's own change right after making it.
    pub async fn caught_up(&self) {
        let target = self.platform.head().count;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.views.caught_up_to(target),
        )
        .await;
    }

    /// Sets a password (argon2id, P4.8(2)) for a subject, with the connection
    /// information its sessions present. For operators' tools and tests.
    pub async fn set_password(
        &self,
        subject: &Subject,
        password: &str,
        credential: Option<CredentialId>,
    ) -> Result<(), WebError> {
        let phc = self
            .hasher
            .hash(Zeroizing::new(password.to_string()))
            .await?;
        self.auth
            .set_password(subject, &phc, credential, self.platform.now())?;
        Ok(())
    }

    /// Sets a one-time password, which the next sign-in must replace before
    /// anything else (issue 15 §5): for the staff accounts a new platform makes.
    pub async fn set_one_time_password(
        &self,
        subject: &Subject,
        password: &str,
    ) -> Result<(), WebError> {
        let phc = self
            .hasher
            .hash(Zeroizing::new(password.to_string()))
            .await?;
        self.auth
            .set_password_as(subject, &phc, None, true, self.platform.now())?;
        Ok(())
    }

    /// Enrols a second factor for a subject directly, as a confirmed enrolment
    /// would, without the event: for tests and operators' tools that set up
    /// accounts before the server serves.
    pub fn enrol_second_factor(
        &self,
        subject: &Subject,
        secret: &mebyo_crypto::TotpSecret,
    ) -> Result<(), WebError> {
        let sealed = self
            .platform
            .keys()
            .seal_sign_in_secret(&subject.key(), secret.bytes())
            .map_err(|e| WebError::Io(std::io::Error::other(e.to_string())))?;
        self.auth
            .set_totp(subject, Some(sealed), self.platform.now())?;
        Ok(())
    }
}

/// Security headers on every response (P4.6(1)): HSTS, a CSP allowing nothing but
/// our own stylesheet (no scripts, no framing), no MIME sniffing, no referrer,
/// nothing cached (pages carry personal data).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// One line per request (P4.5(1)(2)): the route template, never the concrete path
/// (which may hold ids), status and latency. No query strings, no bodies.
async fn request_log(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        target: "mebyo_web::access",
        %method,
        route,
        status = res.status().as_u16(),
        micros = start.elapsed().as_micros() as u64,
        "request"
    );
    res
}

/// `/readyz` with the operations tick's last result under `operations`. Readiness
/// itself stays what the instance checks at request time: the probe result is up to
/// one tick old, and every node would go unready together on a shared cause, so it
/// is reported for alerting rather than used to take the node out (P4.4(2)).
async fn readyz(State(st): State<AppState>) -> Response {
    use axum::response::IntoResponse;
    let res = api::readyz(State(st.clone())).await;
    let Some(ops) = st.ops_health() else {
        return res;
    };
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    v["operations"] = serde_json::to_value(&ops).unwrap_or(serde_json::Value::Null);
    (parts.status, axum::Json(v)).into_response()
}

/// `/metrics` followed by the operations tick's gauges (P4.4), in the same
/// OpenMetrics document (one `# EOF`, at the end).
async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    use axum::response::IntoResponse;
    if let Err(e) = metrics_allowed(&st, &headers) {
        return *e;
    }
    let res = api::metrics(State(st.clone())).await;
    let Some(ops) = st.ops_health() else {
        return res;
    };
    let (mut parts, body) = res.into_parts();
    // The body grows; let the server compute its length.
    parts.headers.remove(header::CONTENT_LENGTH);
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = text.strip_suffix("# EOF\n").unwrap_or(&text).to_string();
    if let Some(bus) = &ops.bus_metrics {
        out.push_str(bus);
    }
    if prometheus_client::encoding::text::encode(&mut out, &ops_registry(&ops)).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    Response::from_parts(parts, axum::body::Body::from(out))
}

/// `/metrics` is for the monitoring system only (P4.4): it needs the configured
/// bearer token, compared in constant time; without one configured it is off.
fn metrics_allowed(st: &AppState, headers: &axum::http::HeaderMap) -> Result<(), Box<Response>> {
    use axum::response::IntoResponse;
    let Some(want) = st.cfg.metrics_token.as_deref() else {
        return Err(Box::new(error::ApiError::not_found().into_response()));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if session::ct_eq(given, want) {
        return Ok(());
    }
    let mut res = error::ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "auth.required",
        mebyo_domain::clause!("P4.4"),
        "metrics need the monitoring token",
    )
    .into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(Box::new(res))
}

fn ops_registry(ops: &OpsHealth) -> prometheus_client::registry::Registry {
    use prometheus_client::metrics::gauge::Gauge;
    let mut registry = prometheus_client::registry::Registry::with_prefix("mebyo_ops");
    let mut gauge = |name: &str, help: &str, value: i64| {
        let g: Gauge = Gauge::default();
        g.set(value);
        registry.register(name, help, g);
    };
    gauge(
        "tick_ok",
        "1 if the last operations tick succeeded",
        i64::from(ops.tick_ok),
    );
    gauge(
        "tick_timestamp_seconds",
        "When the last operations tick ran",
        ops.at_us / 1_000_000,
    );
    gauge(
        "maintenance_notices_published",
        "Maintenance notices published to providers since start (P4.3)",
        ops.notices_published as i64,
    );
    if let Some(overdue) = ops.firewall_review_overdue {
        gauge(
            "firewall_review_overdue",
            "1 if the firewall-log review is overdue (P4.4(3))",
            i64::from(overdue),
        );
    }
    if let Some(n) = ops.access_records_past_retention {
        gauge(
            "access_records_past_retention",
            "Access records older than the configured retention (P4.5(2))",
            n as i64,
        );
    }
    if let Some(p) = &ops.probe {
        gauge(
            "probe_latency_microseconds",
            "Latency of the last synthetic read (P4.4(2))",
            p.latency_us,
        );
        gauge(
            "probe_healthy",
            "1 if the last synthetic read succeeded within the threshold (P4.4(2))",
            i64::from(p.healthy),
        );
        gauge(
            "probe_timestamp_seconds",
            "When the last synthetic read ran",
            p.at_us / 1_000_000,
        );
    }
    registry
}

async fn fallback(State(_): State<AppState>, req: Request) -> Response {
    use axum::response::IntoResponse;
    tracing::info!(target: "mebyo_web::access", method = %req.method(), route = "(unmatched)", status = 404, "request");
    if req.uri().path().starts_with("/api/") {
        error::ApiError::not_found().into_response()
    } else {
        pages::not_found(&req).into_response()
    }
}

/// A path segment as this server's router reads it back: ids are plain, but a
/// typo such as `..` or `a/b` stays one segment and cannot turn into another
/// path. The CLI's `--server` commands and the dashboard's forms both build
/// endpoint paths with it.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn router(state: AppState) -> Router {
    layered(routes(), state)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/livez", get(api::livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/v1/session", post(api::login).delete(api::logout))
        .route(
            "/api/v1/session/second-factor",
            get(staff_signin::enrolment_api).post(staff_signin::code_api),
        )
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/signup", post(api::signup))
        .route("/api/v1/policy", get(api::policy))
        .route("/checkpoint", get(api::checkpoint))
        .route("/api/v1/me/policy", post(api::accept_policy))
        .route("/api/v1/me/records", get(api::my_records))
        .route("/api/v1/me/vitals", post(api::add_vital))
        .route("/api/v1/me/password", post(api::change_password))
        .route(
            "/api/v1/me/consents",
            get(api::my_consents).post(api::grant_consent),
        )
        .route(
            "/api/v1/me/consents/{consent}/revoke",
            post(api::revoke_consent),
        )
        .route("/api/v1/me/access-log", get(api::my_access_log))
        .route("/api/v1/notices", get(api::notices))
        .route("/api/v1/providers", get(api::providers))
        .route("/api/v1/persons/{person}/records", get(api::read_person))
        .route("/api/v1/ops/summary", get(api::ops_summary))
        .route("/api/v1/ops/incidents/{id}", get(api::incident_report))
        .route("/api/v1/ops/incidents", post(ops_api::report_incident))
        .route(
            "/api/v1/ops/incidents/{id}/steps",
            post(ops_api::incident_step),
        )
        .route(
            "/api/v1/ops/incidents/{id}/rotations",
            post(ops_api::incident_rotation),
        )
        .route(
            "/api/v1/ops/incidents/{id}/escalations",
            post(ops_api::incident_escalation),
        )
        .route(
            "/api/v1/ops/incidents/{id}/close",
            post(ops_api::incident_close),
        )
        .route(
            "/api/v1/ops/credentials/{credential}/revoke",
            post(ops_api::revoke_credential),
        )
        .route("/api/v1/ops/backups", post(ops_api::run_backup))
        .route("/api/v1/ops/backups/drill", post(ops_api::run_drill))
        .route(
            "/api/v1/ops/staff/{staff}/sign-in-reset",
            post(staff_signin::reset_api),
        )
        .route("/api/v1/ops/maintenance", post(ops_routine::schedule_api))
        .route(
            "/api/v1/ops/maintenance/{window}/cancel",
            post(ops_routine::cancel_api),
        )
        .route(
            "/api/v1/ops/firewall-reviews",
            post(ops_routine::review_api),
        )
        .route("/api/v1/ops/media", post(ops_media::approve_api))
        .route("/api/v1/ops/media/{media}", get(ops_media::show_api))
        .route(
            "/api/v1/ops/media/{media}/issue",
            post(ops_media::issue_api),
        )
        .route(
            "/api/v1/ops/media/{media}/return",
            post(ops_media::return_api),
        )
        .route(
            "/api/v1/ops/media/{media}/disposal",
            post(ops_media::dispose_api),
        )
        .route("/api/v1/ops/disposals", post(ops_media::disposal_api))
        .route(
            "/api/v1/ops/providers/{provider}/decisions",
            post(ops_providers::decide_api),
        )
        .route("/api/v1/ops/credentials", post(ops_providers::issue_api))
        .route("/api/v1/ops/providers", post(ops_providers::apply_api))
        .route(
            "/api/v1/ops/providers/{provider}/attestations",
            post(ops_providers::attest_api),
        )
        .route(
            "/api/v1/ops/persons/{person}/erasure",
            post(ops_keys::erase_api),
        )
        .route(
            "/api/v1/ops/keys/kek-rotation",
            post(ops_keys::rotate_kek_api),
        )
        .route("/api/v1/ops/audit-grants", post(ops_keys::grant_api))
        .route(
            "/api/v1/ops/credentials/{credential}/signing-key",
            post(ops_providers::signing_key_api),
        )
        .route(
            "/api/v1/ops/credentials/{credential}/renew",
            post(ops_providers::renew_api),
        )
        .route(
            "/api/v1/ops/credentials/{credential}/loss",
            post(ops_providers::loss_api),
        )
        .route(
            "/api/v1/ops/staff/{staff}/appointments",
            post(staff_signin::appoint_api),
        )
        .route(
            "/api/v1/ops/staff/{staff}/dismissals",
            post(staff_signin::dismiss_api),
        )
        .route(
            "/api/v1/ops/staff/{staff}/training",
            post(staff_signin::training_api),
        )
        .merge(pages::routes())
        .merge(ops_forms::routes())
}

/// The layers every route sits in, innermost first. A panic is caught innermost,
/// so its 500 still passes the edge and the security headers; the edge answers
/// the body limit and the timeout in the JSON error shape, inside the security
/// headers, so no answer of this server goes without them (issue 22 §1, §7).
fn layered(routes: Router<AppState>, state: AppState) -> Router {
    let max_body = state.cfg.max_body_bytes;
    let timeout = state.cfg.request_timeout;
    let concurrency = state.cfg.max_concurrent_requests;
    routes
        // Per route, so the log sees the matched template (never the concrete path).
        .route_layer(axum::middleware::from_fn(request_log))
        .fallback(fallback)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panics::answer,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(
            Edge { timeout, max_body },
            edge,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(concurrency))
        .with_state(state)
}

/// The request timeout, and the JSON error shape for the framework's own bare
/// error answers: 413 and 408 everywhere, and every error of `/api/` (a query or
/// path that does not parse, a method the route lacks), so the API answers only
/// what its OpenAPI document describes.
async fn edge(State(limits): State<Edge>, req: Request, next: Next) -> Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let api = req.uri().path().starts_with("/api/");
    let answer = async {
        if let Some(n) = declared_length_bytes(&req).filter(|n| *n > limits.max_body as u64) {
            return refuse_oversize(req, n).await;
        }
        next.run(req).await
    };
    let Ok(res) = tokio::time::timeout(limits.timeout, answer).await else {
        return error::ApiError::timeout().into_response();
    };
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let edge_status = matches!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    );
    if is_json || !(edge_status || (api && status.is_client_error())) {
        return res;
    }
    let (parts, body) = res.into_parts();
    // The framework's rejection text says what did not parse; bounded.
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let message: String = String::from_utf8_lossy(&text).chars().take(200).collect();
    let mut shaped = error::ApiError::from_status(status, &message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            shaped.headers_mut().insert(name, v.clone());
        }
    }
    shaped
}

/// What the edge bounds: the time of a request and the size of its body.
#[derive(Clone, Copy)]
struct Edge {
    timeout: std::time::Duration,
    max_body: usize,
}

/// A body over the limit but at most this long is read and thrown away before
/// the 413 (a lingering close, as nginx does): a client still sending then reads
/// the answer, where a server that stopped reading would close with unread bytes,
/// and the client's kernel would see a reset instead of the 413 (CI saw it:
/// `p4_4_a_body_over_the_limit_is_a_shaped_413`). Bounded, so a refusal costs at
/// most this much reading, inside the request timeout; a longer one is refused at
/// once and the client may see the reset.
const LINGER_MAX_BYTES: u64 = 1024 * 1024;

fn declared_length_bytes(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The 413 for a body whose declared length, `declared_bytes`, is over the limit
/// (P4.4), after reading at most [`LINGER_MAX_BYTES`] of it.
async fn refuse_oversize(req: Request, declared_bytes: u64) -> Response {
    use axum::response::IntoResponse;
    use futures::StreamExt;
    if declared_bytes <= LINGER_MAX_BYTES {
        let mut body = req.into_body().into_data_stream();
        let mut read_bytes: u64 = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read_bytes += chunk.len() as u64;
            if read_bytes > LINGER_MAX_BYTES {
                break;
            }
        }
    }
    error::ApiError::too_large().into_response()
}

/// A running server.
pub struct WebHandle {
    addr: SocketAddr,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: AppState,
    cert_pem: String,
}

impl WebHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// `https://ADDR` (a loopback address keeps its IP, which the certificate names).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
    /// The server certificate (PEM), for clients that pin the self-signed default.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    pub fn state(&self) -> &AppState {
        &self.state
    }
    pub async fn set_password(
        &self,
        subject: &Subject,
        password: &str,
        credential: Option<CredentialId>,
    ) -> Result<(), WebError> {
        self.state.set_password(subject, password, credential).await
    }
    pub async fn set_one_time_password(
        &self,
        subject: &Subject,
        password: &str,
    ) -> Result<(), WebError> {
        self.state.set_one_time_password(subject, password).await
    }
    pub fn enrol_second_factor(
        &self,
        subject: &Subject,
        secret: &mebyo_crypto::TotpSecret,
    ) -> Result<(), WebError> {
        self.state.enrol_second_factor(subject, secret)
    }
    /// Stops accepting, lets requests in flight finish (up to 10 s), and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Starts the HTTPS server; returns once it is listening.
pub async fn serve(platform: Arc<Platform>, cfg: WebConfig) -> Result<WebHandle, WebError> {
    let material = tls::load(&cfg.tls)?;
    let rustls_cfg = tls::server_config(&material)?;
    let listener = std::net::TcpListener::bind(cfg.bind)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = AppState::new(platform, cfg).await?;
    let app = router(state.clone());
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(rustls_cfg),
    )
    .handle(handle.clone());
    let task = tokio::spawn(async move {
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    });
    // Sweep ended sessions now and then so memory follows use; holds the state
    // weakly so a shut-down server is not kept alive by its sweeper.
    let sweeper = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            match sweeper.upgrade() {
                Some(s) => s.sessions.sweep(s.platform.now()),
                None => return,
            }
        }
    });
    Ok(WebHandle {
        addr,
        handle,
        task,
        state,
        cert_pem: material.cert_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[test]
    fn a_segment_cannot_leave_its_place_in_the_path() {
        assert_eq!(path_segment("inc-01ab"), "inc-01ab");
        assert_eq!(path_segment("../backups"), "%2E%2E%2Fbackups");
        assert_eq!(path_segment("a b?c"), "a%20b%3Fc");
    }

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let opts = mebyo_platform::Options::default;
        Platform::init(dir.path(), mebyo_platform::Settings::default(), opts())
            .await
            .unwrap();
        let platform = Arc::new(Platform::open(dir.path(), opts()).await.unwrap());
        let mut cfg = WebConfig::new(dir.path());
        cfg.metrics_token = Some("t".into());
        (dir, AppState::new(platform, cfg).await.unwrap())
    }

    async fn call(app: &Router, path: &str) -> (Response, String) {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, "Bearer t")
            .body(Body::empty())
            .unwrap();
        let (parts, body) = app.clone().oneshot(req).await.unwrap().into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }

    /// Issue 22 §1: a handler's panic is one request's 500, in the API's error
    /// shape with the security headers, counted in `mebyo_panics_total`; the same
    /// server answers the next request. The panicking route exists only here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_panic_is_a_counted_500_and_the_server_goes_on() {
        let (_dir, st) = state().await;
        async fn panics() -> &'static str {
            panic!("an input the message must not show: 山田");
        }
        let routes = routes().route("/api/v1/test/panic", get(panics));
        let app = layered(routes, st);
        let before = panics::panics_counted("web");

        let (res, body) = call(&app, "/api/v1/test/panic").await;
        assert_eq!(res.status(), 500, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal", "{body}");
        assert_eq!(v["error"]["clause"], "P4.4", "{body}");
        assert!(!body.contains("山田"), "{body}");
        let h = res.headers();
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(panics::panics_counted("web") > before);

        let (res, body) = call(&app, "/livez").await;
        assert_eq!(res.status(), 200, "{body}");
        let (res, metrics) = call(&app, "/metrics").await;
        assert_eq!(res.status(), 200, "{metrics}");
        let line = metrics
            .lines()
            .find(|l| l.starts_with("mebyo_panics_total{interface=\"web\"}"))
            .unwrap_or_else(|| panic!("no panic counter in:\n{metrics}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > before, "{line}");
    }
}
