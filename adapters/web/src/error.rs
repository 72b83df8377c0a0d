//! Refusals and failures as the web shows them. Every refusal carries a stable code
//! and the policy clause it enforces, in JSON as
//! `{"error":{"code":"consent.none","clause":"P4.6(2)","message":"…"}}` and in HTML
//! as an error page with the same three fields. Failures of the machinery are a
//! bare 500 with no detail: internal messages may name files or streams. The one
//! exception is a write that met a concurrent writer and was not made: 409
//! `platform.conflict` with `Retry-After`, since the same request may be sent again.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mebyo_domain::Refusal;
use mebyo_platform::PlatformError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `consent.none`.
    pub code: String,
    /// Policy clause of REQUIREMENTS.md, e.g. `P4.6(2)`.
    pub clause: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for `Retry-After` (rate limits, lockouts).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, clause: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                clause: clause.into(),
                message: message.into(),
            },
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    // ---- the web's own refusals, each with its clause ------------------------------

    /// No session: health data and actions need a signed-in actor (P4.6(2)).
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            mebyo_domain::clause!("P4.6(2)"),
            "sign in first",
        )
    }
    /// Idle or absolute session lifetime passed (P4.6(1)).
    pub fn session_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "session.expired",
            mebyo_domain::clause!("P4.6(1)"),
            "the session has expired; sign in again",
        )
    }
    /// A staff session with a step of signing in left acts for nobody (P4.8(2)).
    pub fn sign_in_incomplete(next: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "auth.sign_in_incomplete",
            mebyo_domain::clause!("P4.8(2)"),
            format!("finish signing in first: {next}"),
        )
    }
    pub fn wrong_role(message: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "auth.role",
            mebyo_domain::clause!("P4.6(2)"),
            message,
        )
    }
    /// A state-changing request from a cookie session without the CSRF token (P4.6(1)).
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf.invalid",
            mebyo_domain::clause!("P4.6(1)"),
            "missing or wrong CSRF token",
        )
    }
    pub fn bad_credentials() -> Self {
        // The same answer for an unknown login and a wrong password, so the
        // endpoint does not tell which accounts exist.
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth.failed",
            mebyo_domain::clause!("P4.8(2)"),
            "wrong login or password",
        )
    }
    /// The lock's end is said in words as well as in `Retry-After`, so the person
    /// locked out knows when to try again (issue 15 §5).
    pub fn locked(retry_secs: u64, until: &str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "auth.locked",
            mebyo_domain::clause!("P4.8(2)"),
            format!(
                "too many failed sign-ins from here; signing in from this place is locked until {until} (about {} min)",
                retry_secs.div_ceil(60)
            ),
        )
        .retry_after(retry_secs)
    }
    pub fn rate_limited(retry_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate.limited",
            mebyo_domain::clause!("P4.4"),
            "too many requests; slow down",
        )
        .retry_after(retry_secs)
    }
    /// An `Idempotency-Key` outside its syntax (issue 19 §5): refused before
    /// anything is written, so no typed text reaches an id (P2(1), P4.8(1)).
    pub fn idempotency_key_invalid() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.idempotency_key_invalid",
            mebyo_domain::clause!("P2(1)"),
            "Idempotency-Key must be 1 to 128 characters of [A-Za-z0-9._:-]",
        )
    }
    /// A key already used for a different request: 422, as the IETF draft asks;
    /// the first request's record stays as it was (P2(1)).
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.idempotency_key_reused",
            mebyo_domain::clause!("P2(1)"),
            "this Idempotency-Key was sent with a different request; use a new key for a new record",
        )
    }
    pub fn invalid(clause: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
            clause,
            message,
        )
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            mebyo_domain::clause!("P4.6(2)"),
            "no such page",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            mebyo_domain::clause!("P4.4"),
            "internal error; it has been logged",
        )
    }
    /// The body is larger than the configured limit (P4.4: bounded work per request).
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            mebyo_domain::clause!("P4.4"),
            "the request body is too large",
        )
    }
    /// The request took longer than the configured limit (P4.4).
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request.timeout",
            mebyo_domain::clause!("P4.4"),
            "the request took too long",
        )
    }
    /// The JSON shape for a bare error answer of the framework (a query or path
    /// that does not parse, a method the route lacks, a wrong media type).
    pub fn from_status(status: StatusCode, message: &str) -> Self {
        let (code, clause) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => return Self::too_large(),
            StatusCode::REQUEST_TIMEOUT => return Self::timeout(),
            StatusCode::NOT_FOUND => return Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("request.method", mebyo_domain::clause!("P4.5(1)(2)"))
            }
            s if s.is_server_error() => return Self::internal(),
            _ => ("request.invalid", mebyo_domain::clause!("P4.5(1)(2)")),
        };
        let message = if message.trim().is_empty() {
            status.canonical_reason().unwrap_or("refused")
        } else {
            message
        };
        Self::new(status, code, clause, message)
    }
    /// A write that met a concurrent writer and was not made (issue 22 §9): 409
    /// with `Retry-After`, never a bare 500.
    pub fn conflict() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "platform.conflict",
            mebyo_domain::clause!("P4.4"),
            "a concurrent change got there first; nothing was written; retry the same request",
        )
        .retry_after(1)
    }
    /// The ledger stopped taking writes after a storage failure (a full disk, a
    /// failed fsync): 503, saying what the client may and may not assume
    /// (issue 19 §5, P4.4). Not "nothing was written": the batch whose fsync
    /// failed may be on disk, which is what the idempotency key is for.
    pub fn ledger_stopped() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger.stopped",
            mebyo_domain::clause!("P4.4"),
            "the ledger stopped taking writes after a storage failure; this write was not acknowledged. Send it again with the same Idempotency-Key once the platform has been restarted",
        )
    }
    pub fn unavailable(message: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            mebyo_domain::clause!("P4.4"),
            message,
        )
    }
}

/// Status of a domain refusal: bad input is 422, an unknown thing 404, a conflict
/// 409, everything else (the rules said no) 403.
fn refusal_status(code: &str) -> StatusCode {
    if code.ends_with(".unknown") {
        StatusCode::NOT_FOUND
    } else if code.ends_with("_invalid")
        || code.ends_with(".invalid")
        || code.ends_with("_past")
        || code.ends_with("_too_far")
        || code.ends_with(".no_categories")
        || code.ends_with("in_future")
        || code.ends_with("_dates")
    {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if code.ends_with(".exists")
        || code.starts_with("person.already")
        || code.ends_with(".not_active")
        || code.contains(".already_")
    {
        StatusCode::CONFLICT
    } else {
        StatusCode::FORBIDDEN
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        // Credential problems of the presenting actor are authentication failures;
        // a refusal about a credential a command names is not (a staff member
        // revoking a revoked credential is a conflict, not a failed sign-in).
        let presented = mebyo_domain::credential::AUTHENTICATION_REFUSALS.contains(&r.code);
        let status = if presented {
            StatusCode::UNAUTHORIZED
        } else {
            refusal_status(r.code)
        };
        Self::new(status, r.code, r.clause, r.message)
    }
}

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        // Platform errors carry pseudonymous ids and paths only, never personal data.
        if e.is_conflict() {
            // Nothing was written: say so, and that the same request may be sent again.
            tracing::warn!(error = %e, "write conflict answered as retryable");
            return Self::conflict();
        }
        if e.is_ledger_stopped() {
            tracing::error!(error = %e, "a write met the stopped ledger");
            return Self::ledger_stopped();
        }
        tracing::error!(error = %e, "platform failure");
        Self::internal()
    }
}

impl From<mebyo_platform::auth::AuthError> for ApiError {
    fn from(e: mebyo_platform::auth::AuthError) -> Self {
        tracing::error!(error = %e, "auth data area failure");
        Self::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            axum::Json(ErrorEnvelope {
                error: self.body.clone(),
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Unwraps a platform outcome into the value or the refusal as an [`ApiError`].
pub fn outcome<T>(o: mebyo_platform::Outcome<T>) -> ApiResult<T> {
    Ok(o??)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P4.12, P4.13: only a failure of the presenting actor's own connection info
    /// is an authentication failure; a refusal about a credential a command names
    /// (revoking one already revoked) is a conflict or a refusal, never a 401.
    #[test]
    fn p4_13_only_the_presented_credential_answers_401() {
        let status =
            |code: &'static str| ApiError::from(Refusal::new(code, "P4.13(3)", "x")).status;
        for code in mebyo_domain::credential::AUTHENTICATION_REFUSALS {
            assert_eq!(status(code), StatusCode::UNAUTHORIZED, "{code}");
        }
        assert_eq!(status("credential.not_active"), StatusCode::CONFLICT);
        assert_eq!(status("credential.already_issued"), StatusCode::CONFLICT);
        // Done already is a conflict with the state; dates out of order are bad input.
        assert_eq!(status("provider.already_applied"), StatusCode::CONFLICT);
        assert_eq!(status("staff.already_appointed"), StatusCode::CONFLICT);
        assert_eq!(
            status("provider.attestation_dates"),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status("credential.no_prior_guidance"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(status("credential.unknown"), StatusCode::NOT_FOUND);
    }
}
