//! The operator summary (split from `svc.rs` by audience, issue 15 §6): the
//! dashboard's panels as data, from the projections only, never health content
//! (P4.6(2)); which panels a staff member sees is `domain::panel`'s rule. The
//! HTML (`ops_dashboard`) and the JSON (`/api/v1/ops/summary`) both read it.

use std::collections::BTreeSet;

use mebyo_domain::{Duration, StaffId, Timestamp};
use mebyo_platform::world;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

use crate::svc::*;

// ---- operator summary (projections only, no health content) --------------------------

// The panels and which roles see them are a rule: `mebyo_domain::panel`.
pub use mebyo_domain::panel::Panel;

/// The panels `staff` may see, from the roles the staff roster (a read model)
/// says they hold now: a dismissal takes effect on the next page, not at the next
/// sign-in (P3.1).
pub fn panels(st: &AppState, staff: &StaffId) -> ApiResult<BTreeSet<Panel>> {
    let roles = st.views.read().staff().roles(staff.as_str());
    if roles.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "auth.role",
            mebyo_domain::clause!("P3.1"),
            "no role is held by this staff id",
        ));
    }
    Ok(mebyo_domain::panel::shown(&roles))
}

/// Refused unless `staff` sees `panel` now (P3.1).
pub fn require_panel(st: &AppState, staff: &StaffId, panel: Panel) -> ApiResult<()> {
    if panels(st, staff)?.contains(&panel) {
        Ok(())
    } else {
        Err(panel_refused(panel))
    }
}

fn panel_refused(panel: Panel) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "auth.role",
        mebyo_domain::clause!("P3.1"),
        format!(
            "the {} panel is not among those of the roles held",
            lower(panel)
        ),
    )
}

/// Panels a role is not shown are `null` in JSON and absent in HTML; `panels`
/// lists those shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpsSummary {
    pub generated_at: String,
    /// The panels shown, by their snake_case names (`registrations`, `chain`, …).
    #[schema(value_type = Vec<String>)]
    pub panels: Vec<Panel>,
    pub registrations: Option<Counts>,
    /// (JST day as YYYY-MM-DD, registrations) for the last 14 days with any.
    pub registrations_per_day: Option<Vec<(String, u32)>>,
    pub providers: Option<Vec<ProviderLine>>,
    pub consents: Option<ConsentCounts>,
    pub credentials_near_expiry: Option<Vec<CredentialLine>>,
    pub credentials_expired: Option<Vec<CredentialLine>>,
    pub revocations: Option<u64>,
    /// Reads per provider: granted, refused, and the last 24 hours by hour.
    pub access: Option<Vec<ProviderAccess>>,
    /// Refusals by code across all actors.
    pub refusals: Option<Vec<(String, u64)>>,
    pub chain: Option<ChainView>,
    pub backups: Option<BackupsView>,
    pub incidents: Option<IncidentsView>,
    pub staff_training_due: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Counts {
    pub registered: u64,
    pub active: u64,
    pub withdrawn: u64,
    pub erased: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentCounts {
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CredentialLine {
    pub credential: String,
    /// `individual` or `provider:<id>` (individuals are not named, only counted).
    pub holder: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderAccess {
    pub provider: String,
    pub granted: u64,
    pub refused: u64,
    /// (hour as RFC 3339 JST, granted, refused).
    pub last_24h: Vec<(String, u32, u32)>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainView {
    pub head_count: u64,
    pub head_hash: String,
    pub projected_position: u64,
    pub projected_hash: Option<String>,
    /// The last signed checkpoint stored in the ledger.
    pub last_checkpoint: Option<CheckpointView>,
    pub checkpoints: u64,
    /// The last restore drill: the backups restored and matched the live chain.
    pub last_verification: Option<VerificationView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointView {
    /// RFC 3339, JST: when it was stored.
    pub at: String,
    pub position: u64,
    /// Events the signed tree covers.
    pub tree_size: u64,
    /// Base64 Merkle root, as in the signed note.
    pub root_hash: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerificationView {
    pub at: String,
    /// `backup-drill`: a restore of the latest sets compared with the live ledger.
    pub kind: String,
    pub events: u64,
    pub head_hash: String,
    pub full: String,
    pub differential: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupRunView {
    pub backup_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// Log positions `[from, to)` the set holds.
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub head_hash: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupFailureView {
    pub at: String,
    /// `backup`, `drill` or `epoch_rotation`.
    pub operation: String,
    pub kind: Option<String>,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupsView {
    pub last_full: Option<BackupRunView>,
    pub last_differential: Option<BackupRunView>,
    /// A full or differential backup is late or missing (P4.10).
    pub overdue: bool,
    /// What is late, in words, with the clause.
    pub flags: Vec<String>,
    pub last_failure: Option<BackupFailureView>,
    pub completed: u64,
    pub failures: u64,
    pub last_epoch_rotation: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentLine {
    pub incident: String,
    pub kind: String,
    pub clause: String,
    pub reported_at: String,
    /// `open` or `closed`.
    pub state: String,
    pub detected_by_platform: bool,
    /// Runbook steps required and not done (or awaiting an assessment).
    pub missing_steps: u32,
    /// The incident report page.
    pub report_url: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentsView {
    pub open: Vec<IncidentLine>,
    pub closed: u64,
    /// The ten most recently reported closed incidents.
    pub recently_closed: Vec<IncidentLine>,
}

fn holder_line(h: &mebyo_projections::HolderView) -> String {
    // Only the kind and provider id: an individual's credential list on the
    // dashboard must not become a list of people.
    match h {
        mebyo_projections::HolderView::Provider { provider, .. } => format!("provider:{provider}"),
        mebyo_projections::HolderView::Individual { .. } => "individual".into(),
    }
}

/// The server's backup schedule as the read model's rule: the flags on the
/// dashboard and `/readyz` are exactly `BackupSchedule::overdue`'s (P4.10).
/// `mebyo serve` runs the default schedule.
pub fn backup_rule(s: &mebyo_backup::BackupSchedule) -> mebyo_projections::BackupRule {
    mebyo_projections::BackupRule {
        full_max_age: Duration(7 * mebyo_backup::MICROS_PER_DAY + s.full_grace_us),
        differential_max_age: Duration(mebyo_backup::MICROS_PER_DAY + s.differential_grace_us),
    }
}

/// Overdue backups at `now`, in the words of `mebyo_backup::Flag`.
pub fn backup_flags(ops: &mebyo_projections::Operations, now: Timestamp) -> Vec<String> {
    use mebyo_projections::BackupFlag;
    ops.backup_flags(now, &backup_rule(&mebyo_backup::BackupSchedule::default()))
        .into_iter()
        .map(|f| {
            match f {
                BackupFlag::FullOverdue { last } => mebyo_backup::Flag::FullOverdue {
                    last: last.map(|t| t.0),
                    now: now.0,
                },
                BackupFlag::DifferentialOverdue { last } => {
                    mebyo_backup::Flag::DifferentialOverdue {
                        last: last.map(|t| t.0),
                        now: now.0,
                    }
                }
            }
            .to_string()
        })
        .collect()
}

fn incident_line(id: &str, r: &mebyo_projections::IncidentRow) -> IncidentLine {
    IncidentLine {
        incident: id.to_string(),
        kind: r.kind.code().to_string(),
        clause: r.kind.clause().to_string(),
        reported_at: world::rfc3339_jst(r.reported_at),
        state: if r.is_open() { "open" } else { "closed" }.into(),
        detected_by_platform: r.detected_by_platform,
        missing_steps: r.missing().len() as u32,
        report_url: format!("/ops/incidents/{id}"),
    }
}

fn backups_view(ops: &mebyo_projections::Operations, now: Timestamp) -> BackupsView {
    let run = |r: &mebyo_projections::operations::BackupRun| BackupRunView {
        backup_id: r.backup_id.clone(),
        started_at: world::rfc3339_jst(r.started_at),
        finished_at: world::rfc3339_jst(r.finished_at),
        from: r.range.map(|g| g.0),
        to: r.range.map(|g| g.1),
        head_hash: r.head_hash.clone(),
    };
    let flags = backup_flags(ops, now);
    BackupsView {
        last_full: ops.last_full().map(run),
        last_differential: ops.last_differential().map(run),
        overdue: !flags.is_empty(),
        flags,
        last_failure: ops.last_failure().map(|f| BackupFailureView {
            at: world::rfc3339_jst(f.at),
            operation: f.operation.clone(),
            kind: f.kind.clone(),
            error: f.error.clone(),
        }),
        completed: ops.backups_completed(),
        failures: ops.backup_failures(),
        last_epoch_rotation: ops.last_epoch_rotation().map(|r| world::rfc3339_jst(r.at)),
    }
}

fn incidents_view(ops: &mebyo_projections::Operations) -> IncidentsView {
    let all = ops.incidents();
    let (_, closed) = ops.incident_counts();
    IncidentsView {
        open: all
            .iter()
            .filter(|(_, r)| r.is_open())
            .map(|(id, r)| incident_line(id, r))
            .collect(),
        closed,
        recently_closed: all
            .iter()
            .filter(|(_, r)| !r.is_open())
            .take(10)
            .map(|(id, r)| incident_line(id, r))
            .collect(),
    }
}

pub async fn ops_summary(st: &AppState, a: &Authed) -> ApiResult<OpsSummary> {
    let me = staff(a)?;
    let now = st.platform.now();
    let head = st.platform.head();
    st.caught_up().await;
    let shown = panels(st, &me)?;
    let on = |p: Panel| shown.contains(&p);
    let providers_list = on(Panel::Providers).then(|| providers(st, false));
    let m = st.views.read();
    let c = m.registry().counts();
    let today = mebyo_projections::jst_day(now);
    let mut per_day: Vec<(String, u32)> = m
        .registry()
        .registrations_per_day()
        .filter(|(d, _)| *d > today - 14)
        .map(|(d, n)| (jst_date(d), n))
        .collect();
    per_day.sort();
    let cc = m.consents().counts(now);
    let cred = |v: Vec<mebyo_projections::CredentialView>| -> Vec<CredentialLine> {
        v.into_iter()
            .take(100)
            .map(|c| CredentialLine {
                credential: c.credential.clone(),
                holder: holder_line(&c.holder),
                expires_at: world::rfc3339_jst(c.expires_at),
            })
            .collect()
    };
    let hour_now = (now.0 / 3_600_000_000) as u32;
    let access = || {
        m.providers()
            .iter()
            .map(|(id, _)| {
                let (granted, refused) = m.access().provider_totals(id);
                ProviderAccess {
                    provider: id.to_string(),
                    granted,
                    refused,
                    last_24h: m
                        .access()
                        .provider_hourly(id, hour_now.saturating_sub(23), hour_now + 1)
                        .iter()
                        .map(|b| {
                            (
                                world::rfc3339_jst(Timestamp(b.hour as i64 * 3_600_000_000)),
                                b.granted,
                                b.refused,
                            )
                        })
                        .collect(),
                }
            })
            .collect()
    };
    let ops = m.operations();
    Ok(OpsSummary {
        generated_at: world::rfc3339_jst(now),
        panels: shown.iter().copied().collect(),
        registrations: on(Panel::Registrations).then_some(Counts {
            registered: c.registered,
            active: c.active,
            withdrawn: c.withdrawn,
            erased: c.erased,
        }),
        registrations_per_day: on(Panel::Registrations).then_some(per_day),
        providers: providers_list,
        consents: on(Panel::Consents).then_some(ConsentCounts {
            active: cc.active,
            revoked: cc.revoked,
            expired: cc.expired,
        }),
        credentials_near_expiry: on(Panel::Credentials)
            .then(|| cred(m.credentials().near_expiry(now, Duration::days(30)))),
        credentials_expired: on(Panel::Credentials).then(|| cred(m.credentials().expired(now))),
        revocations: on(Panel::Credentials).then(|| m.credentials().revocations().len() as u64),
        access: on(Panel::Access).then(access),
        refusals: on(Panel::Access).then(|| {
            m.access()
                .refusals_by_code()
                .into_iter()
                .map(|(c, n)| (c.to_string(), n))
                .collect()
        }),
        chain: on(Panel::Chain).then(|| ChainView {
            head_count: head.count,
            head_hash: hex::encode(head.hash),
            projected_position: m.position(),
            projected_hash: m.last_hash().map(hex::encode),
            last_checkpoint: ops.last_checkpoint().map(|c| CheckpointView {
                at: world::rfc3339_jst(c.at),
                position: c.position,
                tree_size: c.note.size,
                root_hash: c.note.root_hash.clone(),
            }),
            checkpoints: ops.checkpoints(),
            last_verification: ops.last_drill().map(|d| VerificationView {
                at: world::rfc3339_jst(d.at),
                kind: "backup-drill".into(),
                events: d.events,
                head_hash: d.head_hash.clone(),
                full: d.full.clone(),
                differential: d.differential.clone(),
            }),
        }),
        backups: on(Panel::Backups).then(|| backups_view(ops, now)),
        incidents: on(Panel::Incidents).then(|| incidents_view(ops)),
        staff_training_due: on(Panel::Staff).then(|| {
            m.staff()
                .training_due(now, Duration::days(30))
                .into_iter()
                .map(|(s, _)| s.to_string())
                .collect()
        }),
    })
}

/// One incident's report (P4.14), for the roles that see the incidents panel.
/// The list comes from the read model; the report itself from the incident's own
/// stream (one stream read, never a scan of the log).
pub async fn incident_report(
    st: &AppState,
    a: &Authed,
    id: &str,
) -> ApiResult<mebyo_operations::report::IncidentReport> {
    let me = staff(a)?;
    st.caught_up().await;
    require_panel(st, &me, Panel::Incidents)?;
    let id = mebyo_operations::IncidentId::new(id).map_err(|_| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.14(1)"),
            "incident id is malformed",
        )
    })?;
    if st.views.read().operations().incident(id.as_str()).is_none() {
        return Err(ApiError::not_found());
    }
    match mebyo_operations_service::incidents::incident_report(&st.platform, &id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(ApiError::not_found()),
        Err(mebyo_operations_service::OpsError::Platform(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "incident report");
            Err(ApiError::internal())
        }
    }
}
