//! Staff duties on the running platform that no aggregate decides (issue 15 §1):
//! the backup on demand and the restore drill (P4.10). `domain::duty` says who
//! may; this runs the job and records it, like the scheduler's runs.

use std::sync::Arc;

use mebyo_backup::jobs::{self, DrillReport};
use mebyo_backup::{Kind, Manifest, StartedBy};
use mebyo_domain::duty::{Duty, authorise};
use mebyo_domain::{Actor, Ctx, StaffId};
use mebyo_store::EventStore;

use crate::{Outcome, Platform, PlatformError, receipt};

/// A job the platform ran for a staff member: what it produced, or why it failed,
/// and where the ledger recorded it (`backup.completed`, `backup.verified` or
/// `backup.failed`; `None` only if even that record could not be written).
#[derive(Debug)]
pub struct JobDone<T> {
    pub result: Result<T, String>,
    pub recorded_at: Option<u64>,
}

impl Platform {
    /// The acting staff member, if the rules let them take `duty` now.
    pub async fn authorise(&self, actor: &Actor, duty: Duty) -> Outcome<StaffId> {
        let facts = self.actor_facts(actor).await?;
        let mut ctx = Ctx::new(self.now(), actor, &self.config);
        ctx.staff = facts.staff.as_deref();
        Ok(authorise(duty, &ctx))
    }
}

/// A backup now (P4.10), into the platform's backups directory.
pub async fn backup_now(
    p: &Arc<Platform>,
    actor: &Actor,
    kind: Kind,
) -> Outcome<JobDone<Manifest>> {
    run_job(p, actor, Duty::Backup, move |p, by| async move {
        jobs::run_backup(
            p.store(),
            p.dir.root.clone(),
            p.backups_dir(),
            kind,
            by,
            p.clock.clone(),
            Default::default(),
        )
        .await
    })
    .await
}

/// A restore drill now (P4.10): the latest sets restored into scratch space and
/// checked against the live ledger.
pub async fn drill_now(p: &Arc<Platform>, actor: &Actor) -> Outcome<JobDone<DrillReport>> {
    run_job(p, actor, Duty::RestoreDrill, |p, by| async move {
        jobs::drill(
            p.store(),
            p.dir.root.clone(),
            p.backups_dir(),
            by,
            p.clock.clone(),
        )
        .await
    })
    .await
}

/// Authorises `duty`, then runs `job` in a task of its own: a request that times
/// out or goes away does not stop a backup halfway, which finishes and is
/// recorded all the same.
async fn run_job<T, F, Fut>(
    p: &Arc<Platform>,
    actor: &Actor,
    duty: Duty,
    job: F,
) -> Outcome<JobDone<T>>
where
    T: Send + 'static,
    F: FnOnce(Arc<Platform>, StartedBy) -> Fut,
    Fut: std::future::Future<Output = jobs::Recorded<T>> + Send + 'static,
{
    let staff = match p.authorise(actor, duty).await? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let by = started_by(&staff)?;
    let done = tokio::spawn(job(p.clone(), by)).await.map_err(joined)?;
    Ok(Ok(job_done(p, done.result, done.event_position).await?))
}

fn started_by(staff: &StaffId) -> Result<StartedBy, PlatformError> {
    // Staff ids are slugs, which the operator alphabet accepts.
    StartedBy::operator(staff.as_str()).map_err(|e| PlatformError::Settings(e.to_string()))
}

fn joined(e: tokio::task::JoinError) -> PlatformError {
    PlatformError::Settings(format!("the job's task ended abnormally: {e}"))
}

/// The job's outcome with the position of its record, noted as the receipt of
/// the request (the hash read back from the log: the record was appended by the
/// job, outside the deciders).
async fn job_done<T>(
    p: &Platform,
    result: mebyo_backup::Result<T>,
    position: mebyo_backup::Result<u64>,
) -> Result<JobDone<T>, PlatformError> {
    let recorded_at = position.ok();
    if let Some(pos) = recorded_at
        && let Some(env) = p.store().read_all(pos, 1).await?.first()
    {
        debug_assert_eq!(env.position, pos);
        receipt::note_at(env.position, env.hash);
    }
    Ok(JobDone {
        result: result.map_err(|e| e.to_string()),
        recorded_at,
    })
}
