//! Staff commands of the running server (issue 15 §1): what an operator used to
//! stop the platform for — revoking a credential, a backup now, a restore drill,
//! working an incident's runbook — as JSON endpoints under `/api/v1/ops/`. The
//! dashboard's forms post to the same functions (`pages`), so the two faces
//! cannot disagree. Who may do what is decided in `domain/` (the credential,
//! incident and duty deciders); here requests are only parsed and answered.
//!
//! Each answer names the event the action appended: its position in the log and
//! its hash, and the dashboard page that shows it (a [`Recorded`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mebyo_backup::Kind;
use mebyo_domain::credential::{CredentialCommand, RevocationReason};
use mebyo_domain::{Actor, CredentialId, StaffId, Timestamp};
use mebyo_operations::incident::{IncidentCommand, IncidentKind, Level, Source, Step};
use mebyo_operations::{IncidentId, Reference};
use mebyo_operations_service::incidents;
use mebyo_platform::receipt::{Receipt, with_receipt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, outcome};
use crate::svc;

/// Where the action's last event landed. The inputs and this answer serialize
/// both ways, since `mebyo`'s client sends and reads them as they are (issue 15 §3).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recorded {
    /// Position of the event in the log (0-based).
    pub position: u64,
    /// Its blake3 hash in hex, as `mebyo audit verify` and the proofs use it.
    pub hash: String,
    /// The dashboard page of the event.
    pub link: String,
    /// Ids the action made: the incident's, the backup's, the new credentials.
    pub made: Vec<String>,
}

impl Recorded {
    pub fn new(r: Receipt, made: Vec<String>) -> Self {
        Self {
            position: r.position,
            hash: hex::encode(r.hash),
            link: format!("/ops/events/{}", r.position),
            made,
        }
    }
}

/// A staff member's signed-in session, its CSRF token checked when it came as the
/// cookie (P4.6(1)).
pub fn staff_actor(st: &AppState, headers: &HeaderMap, csrf: Option<&str>) -> ApiResult<Actor> {
    Ok(Actor::Staff {
        staff: staff_member(st, headers, csrf)?,
    })
}

/// The signed-in staff member themselves, for actions whose record names them
/// (the witness of an erasure, the grantor of a key grant).
pub fn staff_member(st: &AppState, headers: &HeaderMap, csrf: Option<&str>) -> ApiResult<StaffId> {
    let a = svc::signed_in(st, headers)?;
    let staff = svc::staff(&a)?;
    svc::check_csrf(&a, csrf)?;
    Ok(staff)
}

/// Runs an action and answers where its last event landed. An action that the
/// rules accepted but that appended nothing changed nothing, and says so.
pub(crate) async fn recorded<T>(
    work: impl std::future::Future<Output = ApiResult<T>>,
    made: impl FnOnce(&T) -> Vec<String>,
) -> ApiResult<(T, Recorded)> {
    let (out, receipt) = with_receipt(work).await;
    let out = out?;
    let Some(receipt) = receipt else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ops.unchanged",
            mebyo_domain::clause!("P4.4"),
            "the action was accepted but changed nothing",
        ));
    };
    let ids = made(&out);
    Ok((out, Recorded::new(receipt, ids)))
}

// ---- credentials ---------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// `breach-of-law` (P4.13(1)), `improper-handling` (P4.13(2): needs earlier
    /// recorded guidance or a warning) or `judged-risk` (P4.13(3)).
    pub reason: String,
}

pub fn parse_reason(s: &str) -> ApiResult<RevocationReason> {
    match s {
        "breach-of-law" => Ok(RevocationReason::BreachOfLaw),
        "improper-handling" => Ok(RevocationReason::ImproperHandlingUncorrected),
        "judged-risk" => Ok(RevocationReason::JudgedRisk),
        _ => Err(ApiError::invalid(
            mebyo_domain::clause!("P4.13"),
            "reason must be breach-of-law, improper-handling or judged-risk",
        )),
    }
}

pub(crate) fn credential_id(s: &str) -> ApiResult<CredentialId> {
    CredentialId::new(s).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.12(1)"),
            "credential id is malformed",
        )
    })
}

/// Revokes a credential on the running platform (P4.13): the bus, the API and the
/// web refuse it from the next request on, since each reads the credential's
/// state from the same platform.
pub async fn revoke(
    st: &AppState,
    actor: &Actor,
    credential: &str,
    reason: &str,
) -> ApiResult<Recorded> {
    let credential = credential_id(credential)?;
    let reason = parse_reason(reason)?;
    let work = async {
        outcome(
            st.platform
                .credential(actor, &credential, CredentialCommand::Revoke { reason })
                .await,
        )
    };
    Ok(recorded(work, |_| Vec::new()).await?.1)
}

#[utoipa::path(post, path = "/api/v1/ops/credentials/{credential}/revoke",
    params(("credential" = String, Path, description = "credential id, e.g. cred-…")),
    request_body = RevokeInput,
    responses((status = 200, body = Recorded, description = "Revoked; the event that records it"),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, description = "Not the prefecture, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such credential", body = crate::error::ErrorEnvelope), (status = 409, description = "Already lost or revoked", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Revoke a connection credential for one of the three reasons of P4.13, at once on every interface. Prefecture staff with current training only (P4.13, P3.4).")]
pub async fn revoke_credential(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(credential): Path<String>,
    JsonBody(input): JsonBody<RevokeInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok(Json(revoke(&st, &actor, &credential, &input.reason).await?))
}

// ---- backups -------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupInput {
    /// `full` or `differential`.
    pub kind: String,
}

/// A backup now (P4.10); `kind` is `full` or `differential`.
pub async fn backup(st: &AppState, actor: &Actor, kind: &str) -> ApiResult<Recorded> {
    let kind = match kind {
        "full" => Kind::Full,
        "differential" => Kind::Differential,
        _ => {
            return Err(ApiError::invalid(
                mebyo_domain::clause!("P4.10"),
                "kind must be full or differential",
            ));
        }
    };
    let work = async {
        let done = outcome(mebyo_platform::duties::backup_now(&st.platform, actor, kind).await)?;
        job_result(done)
    };
    Ok(recorded(work, |m| vec![m.backup_id.clone()]).await?.1)
}

/// A failed job was recorded (`backup.failed`), and is a failure of the machinery,
/// not a refusal: a 500 that says where to look, without the job's own message
/// (it names files).
fn job_result<T>(done: mebyo_platform::duties::JobDone<T>) -> ApiResult<T> {
    done.result.map_err(|e| {
        tracing::error!(error = %e, recorded_at = ?done.recorded_at, "staff job failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ops.job_failed",
            mebyo_domain::clause!("P4.10"),
            "the job failed; it is recorded as backup.failed and the server log says why",
        )
    })
}

#[utoipa::path(post, path = "/api/v1/ops/backups", request_body = BackupInput,
    responses((status = 201, body = Recorded, description = "Backed up; `made` holds the backup id"),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, description = "Not the system operations administrator or operations manager, training lapsed, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope), (status = 500, description = "The job failed; recorded as backup.failed", body = crate::error::ErrorEnvelope)),
    description = "Take a full or differential backup now, beside the schedule's (P4.10); recorded like every backup job.")]
pub async fn run_backup(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<BackupInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let r = backup(&st, &actor, &input.kind).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A restore drill now (P4.10).
pub async fn drill(st: &AppState, actor: &Actor) -> ApiResult<Recorded> {
    let work = async {
        let done = outcome(mebyo_platform::duties::drill_now(&st.platform, actor).await)?;
        job_result(done)
    };
    Ok(recorded(work, |_| Vec::new()).await?.1)
}

#[utoipa::path(post, path = "/api/v1/ops/backups/drill",
    responses((status = 201, body = Recorded, description = "The latest backups restored to the live history; recorded as backup.verified"),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope),
        (status = 500, description = "The drill failed; recorded as backup.failed", body = crate::error::ErrorEnvelope)),
    description = "Restore the latest backups into scratch space and prove they hold the live history (P4.10).")]
pub async fn run_drill(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok((StatusCode::CREATED, Json(drill(&st, &actor).await?)))
}

// ---- incidents -----------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentInput {
    /// `unauthorized-access`, `malware`, `theft-or-loss`, `contractor` or `other`.
    pub kind: String,
    /// When it was noticed, RFC 3339 (default: now).
    #[serde(default)]
    pub detected_at: Option<String>,
    /// Theft or loss: the device connected over VPN (P4.14(4)②).
    #[serde(default)]
    pub vpn_used: bool,
    /// Contractor incidents: the contractor and contract reference (P4.14(5)).
    #[serde(default)]
    pub contractor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// A step code of the incident's runbook, e.g. `disconnect-device`.
    pub step: String,
    /// An outside reference, e.g. the police report number.
    #[serde(default)]
    pub reference: Option<String>,
    /// When it was done, RFC 3339 (default: now).
    #[serde(default)]
    pub done_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationInput {
    /// The credentials the stolen or lost device held (1 to 16).
    pub credentials: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationInput {
    /// `system-operations-administrator`, `operations-manager` or `business-administrator`.
    pub to: String,
}

/// Most credentials one rotation names: a device holds a few (bounded work per
/// request, P4.4).
const ROTATION_CREDENTIALS_MAX: usize = 16;

fn incident_id(s: &str) -> ApiResult<IncidentId> {
    IncidentId::new(s).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.14(1)"),
            "incident id is malformed",
        )
    })
}

fn reference(s: Option<&str>) -> ApiResult<Option<Reference>> {
    s.map(Reference::new)
        .transpose()
        .map_err(|_| ApiError::invalid(mebyo_domain::clause!("P4.14(1)"), "reference is malformed"))
}

fn time_of(s: Option<&str>) -> ApiResult<Option<Timestamp>> {
    s.map(|t| time_field(t, mebyo_domain::clause!("P4.14(1)"), "time"))
        .transpose()
}

/// A time field of a staff command: RFC 3339 (or a form's JST `datetime-local`),
/// else refused citing the command's clause.
pub(crate) fn time_field(s: &str, clause: &'static str, what: &str) -> ApiResult<Timestamp> {
    svc::parse_time(s)
        .ok_or_else(|| ApiError::invalid(clause, format!("{what} is not an RFC 3339 time")))
}

/// One incident command, answered with its event.
async fn incident_command(
    st: &AppState,
    actor: &Actor,
    id: &IncidentId,
    cmd: IncidentCommand,
) -> ApiResult<Recorded> {
    let work = async { outcome(incidents::incident(&st.platform, actor, id, cmd).await) };
    Ok(recorded(work, |_| vec![id.to_string()]).await?.1)
}

/// Reports an incident (P4.14(1)); its id is fresh.
pub async fn open_incident(
    st: &AppState,
    actor: &Actor,
    input: &IncidentInput,
) -> ApiResult<Recorded> {
    Ok(open_incident_keyed(st, actor, input, None).await?.0)
}

/// [`open_incident`] under an `Idempotency-Key` (issue 19 §5): the incident's id
/// is derived from the reporter and the key, so a retry after a lost answer
/// (even across a restart) finds the incident it made and answers it again
/// (`true`: replayed), instead of reporting a second one; the same key with a
/// different report is refused.
pub async fn open_incident_keyed(
    st: &AppState,
    actor: &Actor,
    input: &IncidentInput,
    key: Option<&str>,
) -> ApiResult<(Recorded, bool)> {
    let kind = IncidentKind::parse(&input.kind).ok_or_else(|| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.14(1)"),
            "kind must be unauthorized-access, malware, theft-or-loss, contractor or other",
        )
    })?;
    let given_at = time_of(input.detected_at.as_deref())?;
    let detected_at = given_at.unwrap_or_else(|| st.platform.now());
    let scope = match actor {
        Actor::Staff { staff } => staff.as_str(),
        _ => "",
    };
    let id = incident_id(&st.platform.id_for("inc", scope, key))?;
    let contractor = reference(input.contractor.as_deref())?;
    if key.is_some() {
        use mebyo_store::EventStore;
        let first = st
            .platform
            .store()
            .read_stream(&id.stream(), 0, 1)
            .await
            .map_err(|_| ApiError::internal())?;
        if let Some(e) = first.first() {
            let events = incidents::events(&st.platform, &id)
                .await
                .map_err(|_| ApiError::internal())?;
            let same = matches!(events.first(), Some(mebyo_operations::incident::IncidentEvent::Reported {
                kind: k, vpn_used: v, contractor: c, detected_at: d, ..
            }) if *k == kind && *v == input.vpn_used && *c == contractor
                && given_at.is_none_or(|g| g == *d));
            if !same {
                return Err(ApiError::idempotency_key_reused());
            }
            let receipt = Receipt {
                position: e.position,
                hash: e.hash,
            };
            return Ok((Recorded::new(receipt, vec![id.to_string()]), true));
        }
    }
    let cmd = IncidentCommand::Report {
        incident: id.clone(),
        kind,
        detected_at,
        vpn_used: input.vpn_used,
        contractor,
        source: Source::Staff,
    };
    Ok((incident_command(st, actor, &id, cmd).await?, false))
}

/// Records a runbook step as done (P4.14); out of order or by the wrong role is
/// refused by the incident's decider.
pub async fn record_step(
    st: &AppState,
    actor: &Actor,
    id: &str,
    input: &StepInput,
) -> ApiResult<Recorded> {
    let id = incident_id(id)?;
    let step = Step::parse(&input.step).ok_or_else(|| {
        ApiError::invalid(mebyo_domain::clause!("P4.14(1)"), "not a runbook step code")
    })?;
    let cmd = IncidentCommand::RecordStep {
        step,
        done_at: time_of(input.done_at.as_deref())?,
        reference: reference(input.reference.as_deref())?,
    };
    incident_command(st, actor, &id, cmd).await
}

/// P4.14(4)②: revokes and reissues the credentials a stolen or lost device held;
/// `made` holds the new credential ids.
pub async fn rotate(
    st: &AppState,
    actor: &Actor,
    id: &str,
    credentials: &[String],
) -> ApiResult<Recorded> {
    let id = incident_id(id)?;
    if credentials.is_empty() || credentials.len() > ROTATION_CREDENTIALS_MAX {
        return Err(ApiError::invalid(
            mebyo_domain::clause!("P4.14(4)"),
            format!("name 1 to {ROTATION_CREDENTIALS_MAX} credentials"),
        ));
    }
    let old = credentials
        .iter()
        .map(|c| credential_id(c))
        .collect::<ApiResult<Vec<_>>>()?;
    let work =
        async { outcome(incidents::rotate_credentials(&st.platform, actor, &id, &old).await) };
    let made = |rotations: &Vec<mebyo_operations::incident::Rotation>| {
        rotations.iter().map(|r| r.issued.to_string()).collect()
    };
    Ok(recorded(work, made).await?.1)
}

pub async fn escalate(st: &AppState, actor: &Actor, id: &str, to: &str) -> ApiResult<Recorded> {
    let id = incident_id(id)?;
    let to = Level::parse(to).ok_or_else(|| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.14(1)"),
            "to must be system-operations-administrator, operations-manager or business-administrator",
        )
    })?;
    incident_command(st, actor, &id, IncidentCommand::Escalate { to }).await
}

pub async fn close(st: &AppState, actor: &Actor, id: &str) -> ApiResult<Recorded> {
    let id = incident_id(id)?;
    incident_command(st, actor, &id, IncidentCommand::Close).await
}

#[utoipa::path(post, path = "/api/v1/ops/incidents", request_body = IncidentInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the report safe to retry, as for /api/v1/me/vitals: the same key and report answer the first incident (201, `Idempotent-Replayed: true`) and report nothing new, across restarts; the same key with a different report is refused (422 `request.idempotency_key_reused`).")),
    responses((status = 201, body = Recorded, description = "Reported; `made` holds the incident id", headers(("Idempotent-Replayed" = String, description = "`true` when the answer is an earlier request's with the same Idempotency-Key"))),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope),
        (status = 409, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Report a security incident (P4.14(1)); its runbook follows from its kind.")]
pub async fn report_incident(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<IncidentInput>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let key = svc::idempotency_key(&headers)?;
    let (recorded, replayed) = open_incident_keyed(&st, &actor, &input, key).await?;
    let replayed = if replayed { "true" } else { "false" };
    Ok((
        StatusCode::CREATED,
        [("idempotent-replayed", replayed)],
        Json(recorded),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/ops/incidents/{id}/steps", request_body = StepInput,
    params(("id" = String, Path, description = "incident id")),
    responses((status = 201, body = Recorded),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, description = "Wrong role for the step, or out of runbook order", body = crate::error::ErrorEnvelope),
        (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Record a runbook step as done, by whom the runbook allows, in its order (P4.14).")]
pub async fn incident_step(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StepInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok((
        StatusCode::CREATED,
        Json(record_step(&st, &actor, &id, &input).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/ops/incidents/{id}/rotations", request_body = RotationInput,
    params(("id" = String, Path, description = "incident id")),
    responses((status = 201, body = Recorded, description = "Revoked and reissued; `made` holds the new credential ids"),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope),
        (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Change the connection information a stolen or lost device held: revoke each credential and issue its holder a new one (P4.14(4)②, P4.13(3)).")]
pub async fn incident_rotation(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<RotationInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok((
        StatusCode::CREATED,
        Json(rotate(&st, &actor, &id, &input.credentials).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/ops/incidents/{id}/escalations", request_body = EscalationInput,
    params(("id" = String, Path, description = "incident id")),
    responses((status = 201, body = Recorded),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope),
        (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Pass the incident one level up the chain of roles (P4.14(1)).")]
pub async fn incident_escalation(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<EscalationInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok((
        StatusCode::CREATED,
        Json(escalate(&st, &actor, &id, &input.to).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/ops/incidents/{id}/close",
    params(("id" = String, Path, description = "incident id")),
    responses((status = 201, body = Recorded),
        (status = 401, body = crate::error::ErrorEnvelope), (status = 403, description = "A required step is missing, or the wrong role", body = crate::error::ErrorEnvelope),
        (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Close an incident whose required runbook steps are all done (P4.14).")]
pub async fn incident_close(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    Ok((StatusCode::CREATED, Json(close(&st, &actor, &id).await?)))
}
