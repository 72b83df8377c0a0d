//! Keys and erasure on the running server (issue 15 §1): a person's cryptographic
//! erase with its witness (P4.9), a rotation of the key-encryption key (P4.8(1)),
//! and auditor key grants (P3.1(1), P4.6(2)). The signed-in staff member is the
//! witness, the rotator and the grantor: no name typed into a form stands in for
//! a sign-in. Who may is decided in `domain/` (the person decider, `duty`,
//! `audit_grant`); here requests are only parsed and answered.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mebyo_domain::{PersonId, StaffId};
use mebyo_platform::audit_grants;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, outcome};
use crate::ops_api::{Recorded, recorded, staff_actor, staff_member};
use crate::svc;

/// The erasure's answer: where it was recorded, and what it destroyed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Erased {
    #[serde(flatten)]
    pub recorded: Recorded,
    /// How many data keys were destroyed.
    pub destroyed_keys: usize,
    /// The key store's digest after the erase (evidence for the record).
    pub keystore_digest: String,
}

#[utoipa::path(post, path = "/api/v1/ops/persons/{person}/erasure",
    params(("person" = String, Path, description = "pseudonymous person id (they must have withdrawn)")),
    responses((status = 200, body = Erased, description = "Erased: their data keys destroyed; the witnessed record"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the system operations administrator, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such person", body = crate::error::ErrorEnvelope),
        (status = 409, description = "Not withdrawn, or already erased", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Cryptographic erase of a withdrawn person (P4.9): their data keys are destroyed (a NIST SP 800-88 Purge), witnessed by the signed-in system operations administrator, and a new backup epoch makes older backups unreadable for them.")]
pub async fn erase_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(person): Path<String>,
) -> ApiResult<Json<Erased>> {
    let witness = staff_member(&st, &headers, svc::csrf_header(&headers))?;
    let person = PersonId::new(&person)
        .map_err(|_| ApiError::invalid(mebyo_domain::clause!("P4.9"), "person id is malformed"))?;
    let work = async { outcome(st.platform.erase(&person, &witness).await) };
    let (receipt, recorded) = recorded(work, |_| Vec::new()).await?;
    Ok(Json(Erased {
        recorded,
        destroyed_keys: receipt.destroyed.len(),
        keystore_digest: receipt.store_digest,
    }))
}

/// The rotation's answer: where it was recorded, and what it rewrapped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rotated {
    #[serde(flatten)]
    pub recorded: Recorded,
    pub old_kek_id: String,
    pub new_kek_id: String,
    /// Data keys rewrapped under the new KEK; no event changes.
    pub rewrapped_deks: usize,
    pub persons: usize,
}

#[utoipa::path(post, path = "/api/v1/ops/keys/kek-rotation",
    responses((status = 201, body = Rotated, description = "Every data key rewrapped under a new KEK; recorded as keys.kek_rotated"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the system operations administrator, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 500, description = "The KEK lives outside the data directory, or the rotation failed (the old KEK stays)", body = crate::error::ErrorEnvelope)),
    description = "Rotate the key-encryption key while serving (P4.8(1)): every data key is rewrapped under a new KEK, no event changes, and a crash halfway is finished or rolled back at the next open.")]
pub async fn rotate_kek_api(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Rotated>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let work = async { outcome(st.platform.rotate_kek(&actor).await) };
    let (r, recorded) = recorded(work, |_| Vec::new()).await?;
    let rotated = Rotated {
        recorded,
        old_kek_id: r.old_kek_id.to_hex(),
        new_kek_id: r.new_kek_id.to_hex(),
        rewrapped_deks: r.rewrapped_deks,
        persons: r.persons,
    };
    Ok((StatusCode::CREATED, Json(rotated)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// Staff id of the auditor (they must hold the auditor role now).
    pub auditor: String,
    /// How many days the grant lasts: 1 to 365 (P4.6(2)).
    #[serde(deserialize_with = "crate::api::whole")]
    pub days: i64,
}

#[utoipa::path(post, path = "/api/v1/ops/audit-grants", request_body = GrantInput,
    responses((status = 201, body = Recorded, description = "Granted; recorded as audit.key_granted"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the business administrator, training lapsed, the grantee not a current auditor, or no CSRF token with the cookie; the refusal is recorded as audit.grant_refused", body = crate::error::ErrorEnvelope),
        (status = 409, body = crate::error::ErrorEnvelope),
        (status = 422, description = "Days out of 1 to 365, or a malformed staff id", body = crate::error::ErrorEnvelope)),
    description = "The business administrator lets an auditor decrypt for a bounded period (P3.1(1), P4.6(2)). The grantor is the signed-in staff member. At every use the grant is checked again against its grantor and grantee, so one appended by anything else is refused.")]
pub async fn grant_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<GrantInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let by = staff_member(&st, &headers, svc::csrf_header(&headers))?;
    let auditor = StaffId::new(&input.auditor).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.6(2)"),
            "auditor is not a staff id",
        )
    })?;
    let work =
        async { outcome(audit_grants::grant(&st.platform, &by, &auditor, input.days).await) };
    let (_, recorded) = recorded(work, |_| Vec::new()).await?;
    Ok((StatusCode::CREATED, Json(recorded)))
}

#[cfg(test)]
mod tests {
    use super::GrantInput;

    /// JSON Schema's `integer` includes `7.0`; a fraction or a string does not.
    #[test]
    fn p4_6_2_days_are_a_whole_number_however_written() {
        let days = |body: &str| serde_json::from_str::<GrantInput>(body).map(|g| g.days);
        assert_eq!(days(r#"{"auditor":"aud-1","days":7}"#).unwrap(), 7);
        assert_eq!(days(r#"{"auditor":"aud-1","days":-206.0}"#).unwrap(), -206);
        assert!(days(r#"{"auditor":"aud-1","days":7.5}"#).is_err());
        assert!(days(r#"{"auditor":"aud-1","days":"7"}"#).is_err());
        assert!(days(r#"{"auditor":"aud-1","days":1e300}"#).is_err());
    }
}
