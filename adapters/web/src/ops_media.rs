//! The media ledger and disposals on the running server (issue 15 §1): an export
//! to a medium approved, the copy issued and returned to its locked place, the
//! medium disposed of (P4.7), and disposals of what is not in the ledger (P4.9).
//! Who may do what, and in which order, is the media and disposal deciders'
//! rule (`mebyo_operations::media`); here requests are only parsed and answered.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use mebyo_domain::{Actor, StaffId, Timestamp};
use mebyo_operations::media::{MediaCommand, MediaKind, MediaStatus, Method, RecordDisposal};
use mebyo_operations::media::{Subject, may_read_ledger};
use mebyo_operations::{Digest, DisposalId, MediaId, Reference};
use mebyo_operations_service::{OpsError, media};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, outcome};
use crate::ops_api::{Recorded, recorded, staff_actor, time_field};
use crate::session::Principal;
use crate::svc;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInput {
    /// The medium's ledger id, e.g. `usb-0007` (default: a fresh one, in `made`).
    pub id: Option<String>,
    /// `usb-memory`, `optical-disc`, `hard-disk`, `magnetic-tape` or `other`.
    pub kind: String,
    /// The contents' digest: 64 lowercase hex digits.
    pub digest: String,
    /// The staff id of who holds the copy.
    pub custodian: String,
    /// The locked place it is kept in, e.g. `cabinet-b2`.
    pub storage: String,
    /// A purpose code, e.g. `audit-2026-q1`.
    pub purpose: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaIssueInput {
    /// The digest of the copy made: must be the one approved.
    pub digest: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    /// The locked place it is back in.
    pub storage: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaDisposalInput {
    /// NIST SP 800-88: `clear`, `purge` or `destroy`.
    pub method: String,
    /// Why not destroyed, for `clear` or `purge` (a reference, never prose).
    pub reason: Option<String>,
    /// When it was disposed of, RFC 3339 (default: now).
    pub at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisposalInput {
    /// The disposal's id (default: a fresh one, in `made`).
    pub id: Option<String>,
    /// `medium` or `paper`.
    pub subject: String,
    /// What it was: an asset tag, a batch number.
    pub item: String,
    /// `clear`, `purge`, `destroy` (media); `shred`, `melt` (paper).
    pub method: String,
    /// The contractor's melting certificate (method `melt` only).
    pub certificate: Option<String>,
    /// Why not destroyed, for `clear` or `purge`.
    pub reason: Option<String>,
    /// When it was disposed of, RFC 3339 (default: now).
    pub at: Option<String>,
}

fn invalid(clause: &'static str, what: &str) -> ApiError {
    ApiError::invalid(clause, format!("{what} is malformed"))
}

fn media_id(s: &str) -> ApiResult<MediaId> {
    MediaId::new(s.trim()).map_err(|_| invalid(mebyo_domain::clause!("P4.7(2)"), "media id"))
}

fn digest(s: &str) -> ApiResult<Digest> {
    Digest::new(s.trim()).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.7(2)"),
            "digest must be 64 lowercase hex digits",
        )
    })
}

fn reference(s: &str, clause: &'static str, what: &str) -> ApiResult<Reference> {
    Reference::new(s.trim()).map_err(|_| invalid(clause, what))
}

fn optional(s: Option<&str>, clause: &'static str, what: &str) -> ApiResult<Option<Reference>> {
    s.map(|r| reference(r, clause, what)).transpose()
}

fn when(st: &AppState, at: Option<&str>) -> ApiResult<Timestamp> {
    let p = mebyo_domain::clause!("P4.9(3)");
    Ok(at
        .map(|t| time_field(t, p, "at"))
        .transpose()?
        .unwrap_or_else(|| st.platform.now()))
}

/// One ledger command, answered with its event; `made` names the medium for an
/// approval.
async fn ledger_command(
    st: &AppState,
    actor: &Actor,
    id: &MediaId,
    cmd: MediaCommand,
) -> ApiResult<Recorded> {
    let approval = matches!(cmd, MediaCommand::ApproveExport { .. });
    let work = async { outcome(media::media(&st.platform, actor, id, cmd).await) };
    let made = |_: &Vec<_>| approval.then(|| id.to_string()).into_iter().collect();
    Ok(recorded(work, made).await?.1)
}

/// P4.7(1): permits copying these contents to a medium; its id is fresh unless given.
pub async fn approve(st: &AppState, actor: &Actor, input: &ApprovalInput) -> ApiResult<Recorded> {
    let p1 = mebyo_domain::clause!("P4.7(1)");
    let p2 = mebyo_domain::clause!("P4.7(2)");
    let id = match input.id.as_deref() {
        Some(i) => media_id(i)?,
        None => media_id(&st.platform.new_id("med"))?,
    };
    let kind = MediaKind::parse(input.kind.trim()).ok_or_else(|| {
        ApiError::invalid(
            p2,
            "kind must be usb-memory, optical-disc, hard-disk, magnetic-tape or other",
        )
    })?;
    let cmd = MediaCommand::ApproveExport {
        media: id.clone(),
        kind,
        contents_digest: digest(&input.digest)?,
        custodian: StaffId::new(input.custodian.trim()).map_err(|_| invalid(p2, "custodian"))?,
        storage: reference(&input.storage, p2, "storage")?,
        purpose: reference(&input.purpose, p1, "purpose")?,
    };
    ledger_command(st, actor, &id, cmd).await
}

pub async fn issue(
    st: &AppState,
    actor: &Actor,
    id: &str,
    input: &MediaIssueInput,
) -> ApiResult<Recorded> {
    let id = media_id(id)?;
    let cmd = MediaCommand::Issue {
        contents_digest: digest(&input.digest)?,
    };
    ledger_command(st, actor, &id, cmd).await
}

pub async fn return_medium(
    st: &AppState,
    actor: &Actor,
    id: &str,
    input: &ReturnInput,
) -> ApiResult<Recorded> {
    let id = media_id(id)?;
    let p2 = mebyo_domain::clause!("P4.7(2)");
    let cmd = MediaCommand::Return {
        storage: reference(&input.storage, p2, "storage")?,
    };
    ledger_command(st, actor, &id, cmd).await
}

/// P4.9: a ledger medium's disposal; the method's rules are the decider's.
pub async fn dispose(
    st: &AppState,
    actor: &Actor,
    id: &str,
    input: &MediaDisposalInput,
) -> ApiResult<Recorded> {
    let id = media_id(id)?;
    let p2 = mebyo_domain::clause!("P4.9(2)");
    let method = Method::parse(input.method.trim(), None)
        .ok_or_else(|| ApiError::invalid(p2, "method must be clear, purge or destroy"))?;
    let cmd = MediaCommand::Dispose {
        method,
        reason: optional(input.reason.as_deref(), p2, "reason")?,
        disposed_at: when(st, input.at.as_deref())?,
    };
    ledger_command(st, actor, &id, cmd).await
}

/// P4.9: a disposal of a medium or paper outside the ledger; its id is fresh
/// unless given.
pub async fn record_disposal(
    st: &AppState,
    actor: &Actor,
    input: &DisposalInput,
) -> ApiResult<Recorded> {
    let p = mebyo_domain::clause!("P4.9");
    let p1 = mebyo_domain::clause!("P4.9(1)");
    let id = match input.id.as_deref() {
        Some(i) => i.trim().to_string(),
        None => st.platform.new_id("disp"),
    };
    let id = DisposalId::new(id).map_err(|_| invalid(p, "disposal id"))?;
    let subject = match input.subject.trim() {
        "medium" => Subject::Medium,
        "paper" => Subject::Paper,
        _ => return Err(ApiError::invalid(p, "subject must be medium or paper")),
    };
    let certificate = optional(input.certificate.as_deref(), p1, "certificate")?;
    let method = Method::parse(input.method.trim(), certificate).ok_or_else(|| {
        ApiError::invalid(
            p,
            "method must be clear, purge, destroy, shred, or melt with a certificate (and only melt has one)",
        )
    })?;
    let cmd = RecordDisposal {
        disposal: id.clone(),
        subject,
        item: reference(&input.item, p, "item")?,
        method,
        reason: optional(
            input.reason.as_deref(),
            mebyo_domain::clause!("P4.9(2)"),
            "reason",
        )?,
        disposed_at: when(st, input.at.as_deref())?,
    };
    let work = async { outcome(media::disposal(&st.platform, actor, &id, cmd).await) };
    Ok(recorded(work, |_| vec![id.to_string()]).await?.1)
}

fn actor_of(st: &AppState, headers: &HeaderMap) -> ApiResult<Actor> {
    staff_actor(st, headers, svc::csrf_header(headers))
}

#[utoipa::path(post, path = "/api/v1/ops/media", request_body = ApprovalInput,
    responses((status = 200, body = Recorded, description = "Approved and in the ledger; `made` holds the medium's id"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the system operations administrator, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 409, description = "That id is already in the ledger", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Permit copying contents, named by their digest, to a removable medium, and enter it in the media ledger with its custodian and locked storage place (P4.7).")]
pub async fn approve_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ApprovalInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = actor_of(&st, &headers)?;
    Ok(Json(approve(&st, &actor, &input).await?))
}

#[utoipa::path(post, path = "/api/v1/ops/media/{media}/issue", request_body = MediaIssueInput,
    params(("media" = String, Path, description = "media ledger id")),
    responses((status = 200, body = Recorded, description = "Issued to the custodian; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not approved, already out, disposed of, not what was approved, not the custodian or the administrator, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "The copy was made and handed to its custodian; its digest must be the approved one (P4.7).")]
pub async fn issue_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<MediaIssueInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = actor_of(&st, &headers)?;
    Ok(Json(issue(&st, &actor, &id, &input).await?))
}

#[utoipa::path(post, path = "/api/v1/ops/media/{media}/return", request_body = ReturnInput,
    params(("media" = String, Path, description = "media ledger id")),
    responses((status = 200, body = Recorded, description = "Back under lock; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the system operations administrator, the medium not out, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "The medium is back in its locked storage place (P4.7(2)).")]
pub async fn return_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ReturnInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = actor_of(&st, &headers)?;
    Ok(Json(return_medium(&st, &actor, &id, &input).await?))
}

#[utoipa::path(post, path = "/api/v1/ops/media/{media}/disposal", request_body = MediaDisposalInput,
    params(("media" = String, Path, description = "media ledger id")),
    responses((status = 200, body = Recorded, description = "Disposed of; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the witnessing administrator, a method short of destruction without a reason, the medium out or already disposed of, a time in the future, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "A ledger medium's disposal per NIST SP 800-88, in principle destroyed, witnessed and recorded by the system operations administrator (P4.9).")]
pub async fn dispose_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<MediaDisposalInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = actor_of(&st, &headers)?;
    Ok(Json(dispose(&st, &actor, &id, &input).await?))
}

#[utoipa::path(post, path = "/api/v1/ops/disposals", request_body = DisposalInput,
    responses((status = 200, body = Recorded, description = "Recorded; `made` holds the disposal's id"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the witnessing administrator, a method that does not fit the subject, no reason for clear or purge, already recorded, a time in the future, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Record a disposal of a medium or paper outside the media ledger: media per NIST SP 800-88, paper shredded or melted against a certificate, witnessed by the system operations administrator (P4.9).")]
pub async fn disposal_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<DisposalInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = actor_of(&st, &headers)?;
    Ok(Json(record_disposal(&st, &actor, &input).await?))
}

/// The roles the reader holds as staff, `None` when not staff; a staff sign-in
/// with a step left acts for nobody yet.
fn reader_roles(st: &AppState, a: &svc::Authed) -> ApiResult<Option<Vec<mebyo_domain::Role>>> {
    Ok(match &a.session.principal {
        Principal::Staff { staff } => Some(st.views.read().staff().roles(staff.as_str())),
        Principal::StaffPending { .. } => {
            svc::staff(a)?;
            None
        }
        _ => None,
    })
}

#[utoipa::path(get, path = "/api/v1/ops/media/{media}",
    params(("media" = String, Path, description = "media ledger id")),
    responses(
        (status = 200, description = "The ledger entry: kind, contents digest, custodian, storage place, state, approver and disposal (P4.7(2)).", content_type = "application/json"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not staff holding a role", body = crate::error::ErrorEnvelope),
        (status = 404, description = "Not in the ledger", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "One media ledger entry, for staff holding a role (P4.7(2)); the same as `mebyo ops media show`.")]
pub async fn show_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let a = svc::signed_in(&st, &headers)?;
    st.caught_up().await;
    may_read_ledger(reader_roles(&st, &a)?.as_deref())?;
    let id = media_id(&id)?;
    let entry = match media::ledger_entry(&st.platform, &id).await {
        Ok(e) => e,
        Err(OpsError::Platform(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "media ledger entry");
            return Err(ApiError::internal());
        }
    };
    if entry.status == MediaStatus::Unknown {
        return Err(ApiError::not_found());
    }
    serde_json::to_value(&entry)
        .map(Json)
        .map_err(|_| ApiError::internal())
}
