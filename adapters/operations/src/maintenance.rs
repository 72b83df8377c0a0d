//! Maintenance windows on the platform (P4.3): scheduling with the configured lead
//! time, the portal's notice query, and publishing to providers over the bus.

use std::collections::BTreeSet;

use mebyo_domain::{Actor, Timestamp};
use mebyo_operations::WindowId;
use mebyo_operations::maintenance::{
    Audience, Maintenance, MaintenanceCommand, MaintenanceEvent, MaintenanceState, Notice,
    NoticePublisher, STREAM, Service, due_for_bus, notices_at,
};
use mebyo_platform::{Outcome, Platform};

use crate::{OpsError, OpsSettings, execute, state};

pub async fn maintenance(
    p: &Platform,
    actor: &Actor,
    cmd: MaintenanceCommand,
) -> Outcome<Vec<MaintenanceEvent>> {
    execute::<Maintenance>(p, STREAM, actor, &cmd).await
}

/// A window as an operator plans it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub window: WindowId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub affects: BTreeSet<Service>,
    pub summary: String,
}

/// Schedules a window with the configured lead time (never the caller's).
pub async fn schedule(
    p: &Platform,
    settings: &OpsSettings,
    actor: &Actor,
    plan: Plan,
) -> Outcome<Vec<MaintenanceEvent>> {
    maintenance(
        p,
        actor,
        MaintenanceCommand::Schedule {
            window: plan.window,
            starts_at: plan.starts_at,
            ends_at: plan.ends_at,
            affects: plan.affects,
            summary: plan.summary,
            lead_time: settings.maintenance_lead(),
        },
    )
    .await
}

pub async fn windows(p: &Platform) -> Result<MaintenanceState, OpsError> {
    state::<Maintenance>(p, STREAM).await
}

/// What the portal shows individuals at `t`.
pub async fn notices(p: &Platform, t: Timestamp) -> Result<Vec<Notice>, OpsError> {
    Ok(notices_at(&windows(p).await?, t))
}

/// Publishes every notice still owed to providers, recording each publication
/// after the publisher confirms it (at least once to the bus, once in the log).
/// Returns the windows published.
pub async fn publish_due(
    p: &Platform,
    publisher: &dyn NoticePublisher,
) -> Result<Vec<WindowId>, OpsError> {
    let mut done = Vec::new();
    for notice in due_for_bus(&windows(p).await?, p.now()) {
        publisher.publish(&notice).await?;
        let cmd = MaintenanceCommand::RecordPublished {
            window: notice.window.clone(),
            audience: Audience::Providers,
        };
        if let Err(r) = maintenance(p, &Actor::System, cmd).await? {
            // Cancelled meanwhile: the providers got a notice for a cancelled
            // window, which the next notice corrects; nothing else to record.
            tracing::warn!(window = %notice.window, %r, "publication not recorded");
            continue;
        }
        done.push(notice.window);
    }
    Ok(done)
}
