//! The routine of operations on the running server (issue 15 §1): maintenance
//! windows announced in advance (P4.3) and firewall-log reviews (P4.4(3)). The
//! lead time and the review interval come from the platform's settings
//! (`WebConfig::ops`, `DATA/operations.json`), never from the caller; who may
//! is the maintenance and firewall deciders' rule.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use mebyo_operations::maintenance::{MaintenanceCommand, Service};
use mebyo_operations::monitoring::Finding;
use mebyo_operations::{IncidentId, Reference, WindowId};
use mebyo_operations_service::{maintenance, monitoring};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, outcome};
use crate::ops_api::{Recorded, staff_actor, time_field as time};
use crate::ops_providers::answered;
use crate::svc;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    /// The window's id, e.g. `mw-2026-12`.
    pub window: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, after `starts_at`.
    pub ends_at: String,
    /// What it takes down: `portal`, `app`, `provider-gateway`.
    pub affects: Vec<String>,
    /// What users are told.
    pub summary: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// RFC 3339: the start of the log period reviewed.
    pub from: String,
    /// RFC 3339: its end.
    pub to: String,
    /// The incident the review found, if any (else: nothing found).
    pub incident: Option<String>,
    /// Where the review's record is kept, if anywhere.
    pub reference: Option<String>,
}

fn invalid(clause: &'static str, what: &str) -> ApiError {
    ApiError::invalid(clause, format!("{what} is malformed"))
}

#[utoipa::path(post, path = "/api/v1/ops/maintenance", request_body = WindowInput,
    responses((status = 200, body = Recorded, description = "Announced; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not a role that announces maintenance, too short notice, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Announce a maintenance window, at least the configured lead time ahead (P4.3); its notice reaches the portal and the providers.")]
pub async fn schedule_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<WindowInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let p3 = mebyo_domain::clause!("P4.3");
    let affects = input
        .affects
        .iter()
        .map(|a| Service::parse(a.trim()).ok_or_else(|| invalid(p3, "a service in affects")))
        .collect::<ApiResult<BTreeSet<_>>>()?;
    let plan = maintenance::Plan {
        window: WindowId::new(input.window.trim()).map_err(|_| invalid(p3, "window"))?,
        starts_at: time(&input.starts_at, p3, "starts_at")?,
        ends_at: time(&input.ends_at, p3, "ends_at")?,
        affects,
        summary: input.summary,
    };
    let ops = &st.cfg.ops;
    answered(async { outcome(maintenance::schedule(&st.platform, ops, &actor, plan).await) }).await
}

#[utoipa::path(post, path = "/api/v1/ops/maintenance/{window}/cancel",
    params(("window" = String, Path, description = "window id")),
    responses((status = 200, body = Recorded, description = "Cancelled; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not a role that announces maintenance, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such window", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Cancel an announced maintenance window (P4.3).")]
pub async fn cancel_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(window): Path<String>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let window =
        WindowId::new(&window).map_err(|_| invalid(mebyo_domain::clause!("P4.3"), "window"))?;
    let cmd = MaintenanceCommand::Cancel { window };
    answered(async { outcome(maintenance::maintenance(&st.platform, &actor, cmd).await) }).await
}

#[utoipa::path(post, path = "/api/v1/ops/firewall-reviews", request_body = ReviewInput,
    responses((status = 200, body = Recorded, description = "Recorded; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not a role that reviews firewall logs, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Record a regular review of the firewall's access logs and what it found (P4.4(3)); the next is due after the configured interval, and a late one is flagged.")]
pub async fn review_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ReviewInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let p = mebyo_domain::clause!("P4.4(3)");
    let finding = match input.incident.as_deref().map(str::trim) {
        Some(i) => Finding::Incident {
            incident: IncidentId::new(i).map_err(|_| invalid(p, "incident"))?,
        },
        None => Finding::NothingFound,
    };
    let reference = input
        .reference
        .as_deref()
        .map(|r| Reference::new(r.trim()))
        .transpose()
        .map_err(|_| invalid(p, "reference"))?;
    let (from, to) = (time(&input.from, p, "from")?, time(&input.to, p, "to")?);
    let ops = &st.cfg.ops;
    let work = async {
        outcome(
            monitoring::record_review(&st.platform, ops, &actor, from, to, finding, reference)
                .await,
        )
    };
    answered(work).await
}
