//! `mebyo ops`: operations over the platform (issue 7): incidents and their
//! reports (P4.14), maintenance windows (P4.3), the media ledger and disposal
//! (P4.7, P4.9), firewall-log reviews (P4.4(3)) and the anomaly scan (P4.4(1)).
//!
//! Each command opens the platform, runs one service call and exits: 0 done,
//! 1 refused (the refusal, with its clause, on stderr), 2 could not run. A running
//! server holds the ledger lock, so these are for when it is stopped; while it
//! runs, `incident open|step|rotate|escalate|close` and the routine of
//! `crate::ops_routine` (maintenance, media, disposal, firewall reviews) go to it
//! with `--server` (`crate::client`), and the server's deciders decide the same way.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use mebyo_domain::{Actor, CredentialId, Refusal, StaffId, Timestamp};
use mebyo_operations::incident::{
    Assessment, IncidentCommand, IncidentKind, Level, NotifyTarget, Source, Step, runbook,
};
use mebyo_operations::{IncidentId, Reference};
use mebyo_operations_service::{self as svc, OpsSettings};
use mebyo_platform::{Outcome, Platform};

use crate::client::{Remote, segment};
use crate::ops_routine::{self as routine, DisposalCmd, FirewallCmd, MaintenanceCmd, MediaCmd};
use crate::paths::{PlatformArgs, StaffTarget, Via, open_or_hint, runtime};
use mebyo_web::ops_api::{EscalationInput, IncidentInput, Recorded, RotationInput, StepInput};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Security incidents: report, runbook steps, reports (P4.14).
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Maintenance windows announced in advance (P4.3).
    #[command(subcommand)]
    Maintenance(MaintenanceCmd),
    /// The media ledger: approval of copies, issue, return, disposal (P4.7, P4.9).
    #[command(subcommand)]
    Media(MediaCmd),
    /// Disposal of media or paper outside the ledger (P4.9).
    #[command(subcommand)]
    Disposal(DisposalCmd),
    /// Firewall-log reviews (P4.4(3)).
    #[command(subcommand)]
    Firewall(FirewallCmd),
    /// Anomaly rules over the access log (P4.4(1)).
    #[command(subcommand)]
    Anomalies(AnomalyCmd),
}

/// The platform and the acting staff member.
#[derive(clap::Args, Clone)]
pub struct Acting {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Staff id of the person acting; their role is checked.
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: String,
}

/// The acting staff member of a command that can also go to a running server
/// (issue 15 §3): `--data DIR --as STAFF` on a stopped platform, or the server
/// and the staff member `mebyo login` signed in.
#[derive(clap::Args, Clone)]
pub struct StaffActing {
    #[command(flatten)]
    pub target: StaffTarget,
    /// Staff id of the person acting; their role is checked. With a server the
    /// sign-in says who, and --as, if given, must be the same.
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: Option<String>,
}

/// Where an incident command goes.
pub(crate) enum Target {
    Local(Acting),
    Server(Remote),
}

impl StaffActing {
    pub(crate) fn target(&self) -> anyhow::Result<Target> {
        Ok(match self.target.via(self.staff.as_deref())? {
            Via::Server(r) => Target::Server(r),
            Via::Local(platform) => Target::Local(Acting {
                platform,
                staff: self
                    .staff
                    .clone()
                    .ok_or_else(|| anyhow!("say who acts with --as STAFF (needed with --data)"))?,
            }),
        })
    }
}

#[derive(clap::Subcommand)]
pub enum IncidentCmd {
    /// Report an incident (P4.14(1)); prints its id.
    Open {
        #[command(flatten)]
        acting: StaffActing,
        /// unauthorized-access, malware, theft-or-loss, contractor or other.
        #[arg(long)]
        kind: String,
        /// Incident id (default: a fresh one; a server always gives a fresh one).
        #[arg(long)]
        id: Option<String>,
        /// When it was noticed, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        detected_at: Option<String>,
        /// Theft or loss: the device connected over VPN (P4.14(4)②).
        #[arg(long)]
        vpn_used: bool,
        /// Contractor incidents: the contractor/contract reference (P4.14(5)).
        #[arg(long, value_name = "REF")]
        contractor: Option<String>,
    },
    /// Record a runbook step as done.
    Step {
        #[command(flatten)]
        acting: StaffActing,
        id: String,
        /// A step code, e.g. disconnect-device (see `runbook`).
        step: String,
        /// When it was done, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        done_at: Option<String>,
        /// An outside reference, e.g. the police report number.
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
    },
    /// Record what data the incident touched (counts only).
    Assess {
        #[command(flatten)]
        acting: Acting,
        id: String,
        #[arg(long)]
        leak_possible: bool,
        #[arg(long)]
        individuals_data: bool,
        #[arg(long, default_value_t = 0)]
        individuals: u32,
        #[arg(long, default_value_t = 0)]
        records: u32,
    },
    /// Pass the incident one level up the chain (P4.14(1)).
    Escalate {
        #[command(flatten)]
        acting: StaffActing,
        id: String,
        /// system-operations-administrator, operations-manager or business-administrator.
        #[arg(long)]
        to: String,
    },
    /// Record a notification.
    Notify {
        #[command(flatten)]
        acting: Acting,
        id: String,
        /// related-departments, organisations, individuals, police, carrier or contractor.
        #[arg(long)]
        target: String,
        #[arg(long, default_value_t = 0)]
        count: u32,
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
    },
    /// Revoke and reissue the credentials a stolen or lost device held (P4.14(4)②).
    Rotate {
        #[command(flatten)]
        acting: StaffActing,
        id: String,
        #[arg(long = "credential", value_name = "ID", required = true)]
        credentials: Vec<String>,
    },
    /// Close an incident whose required steps are all done.
    Close {
        #[command(flatten)]
        acting: StaffActing,
        id: String,
    },
    /// Print an incident's report.
    Report {
        #[command(flatten)]
        platform: PlatformArgs,
        id: String,
        #[arg(long, default_value = "json", value_parser = ["json", "html"])]
        format: String,
    },
    /// List incidents with their runbook status.
    List {
        #[command(flatten)]
        platform: PlatformArgs,
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Print the runbook the policy gives for an incident type.
    Runbook { kind: String },
}

#[derive(clap::Subcommand)]
pub enum AnomalyCmd {
    /// Run the rules over the whole access log once, opening incidents.
    Scan {
        #[command(flatten)]
        platform: PlatformArgs,
    },
}

pub(crate) fn time_arg(s: &str) -> anyhow::Result<Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is not an RFC 3339 time"))?;
    Ok(Timestamp((t.unix_timestamp_nanos() / 1000) as i64))
}

pub(crate) fn opt_time(s: &Option<String>) -> anyhow::Result<Option<Timestamp>> {
    s.as_deref().map(time_arg).transpose()
}

pub(crate) fn reference(s: &Option<String>) -> anyhow::Result<Option<Reference>> {
    Ok(s.as_deref().map(Reference::new).transpose()?)
}

pub(crate) fn staff(a: &Acting) -> anyhow::Result<Actor> {
    Ok(Actor::Staff {
        staff: StaffId::new(&a.staff)?,
    })
}

pub(crate) async fn open(p: &PlatformArgs) -> anyhow::Result<(Platform, OpsSettings)> {
    let platform = Platform::open(&p.data, p.options()?).await?;
    let settings = OpsSettings::load(&p.data)?;
    Ok((platform, settings))
}

/// Prints what was done, or the refusal with its clause (exit 1).
pub(crate) fn decided<T>(outcome: Result<T, Refusal>, done: impl FnOnce(T)) -> ExitCode {
    match outcome {
        Ok(t) => {
            done(t);
            ExitCode::SUCCESS
        }
        Err(r) => {
            eprintln!("refused: {r}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn outcome<T>(o: Outcome<T>) -> anyhow::Result<Result<T, Refusal>> {
    Ok(o?)
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    if let Command::Incident(IncidentCmd::Runbook { kind }) = &c {
        return print_runbook(kind);
    }
    runtime()?.block_on(async move {
        match c {
            Command::Incident(c) => incident(c).await,
            Command::Maintenance(c) => routine::maintenance(c).await,
            Command::Media(c) => routine::media(c).await,
            Command::Disposal(c) => routine::disposal(c).await,
            Command::Firewall(c) => routine::firewall(c).await,
            Command::Anomalies(AnomalyCmd::Scan { platform }) => {
                let (p, s) = open(&platform).await?;
                let mut w = svc::anomaly::AnomalyWatcher::new(s.anomaly);
                w.catch_up(&p).await?;
                println!(
                    "scanned {} events; {} incident(s) opened",
                    w.next,
                    w.opened.len()
                );
                for id in &w.opened {
                    println!("{id}");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn print_runbook(kind: &str) -> anyhow::Result<ExitCode> {
    let k = IncidentKind::parse(kind).ok_or_else(|| anyhow!("unknown incident kind {kind:?}"))?;
    println!("{} ({})", k.title(), k.clause());
    for l in runbook(k) {
        println!(
            "  {:<24} {:<9} item {} · {} · when {:?}\n      {}",
            l.step.code(),
            l.clause,
            l.item,
            l.who.describe(),
            l.condition,
            l.policy_text
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one incident command and prints the events it recorded.
async fn apply(acting: &Acting, id: String, cmd: IncidentCommand) -> anyhow::Result<ExitCode> {
    let (p, _) = open(&acting.platform).await?;
    apply_on(&p, acting, id, cmd).await
}

/// The same for a command `--server` could have sent: a ledger held by a
/// server says so.
async fn apply_or_hint(
    acting: &Acting,
    id: String,
    cmd: IncidentCommand,
) -> anyhow::Result<ExitCode> {
    let p = open_or_hint(&acting.platform).await?;
    apply_on(&p, acting, id, cmd).await
}

async fn apply_on(
    p: &Platform,
    acting: &Acting,
    id: String,
    cmd: IncidentCommand,
) -> anyhow::Result<ExitCode> {
    let id = IncidentId::new(id)?;
    let o = outcome(svc::incidents::incident(p, &staff(acting)?, &id, cmd).await)?;
    Ok(decided(o, |events| {
        for e in events {
            println!("{}", serde_json::to_string(&e).expect("json"));
        }
    }))
}

async fn incident(c: IncidentCmd) -> anyhow::Result<ExitCode> {
    use IncidentCmd::*;
    match c {
        Open {
            acting,
            kind,
            id,
            detected_at,
            vpn_used,
            contractor,
        } => {
            let input = IncidentInput {
                kind,
                detected_at,
                vpn_used,
                contractor,
            };
            open_incident(&acting, id, input).await
        }
        Step {
            acting,
            id,
            step,
            done_at,
            reference,
        } => {
            let input = StepInput {
                step,
                reference,
                done_at,
            };
            step_done(&acting, id, input).await
        }
        Escalate { acting, id, to } => escalate(&acting, id, EscalationInput { to }).await,
        Rotate {
            acting,
            id,
            credentials,
        } => rotate(&acting, id, RotationInput { credentials }).await,
        Close { acting, id } => close(&acting, id).await,
        other => incident_local(other).await,
    }
}

// The commands a server takes: on a server, each CLI argument is the field of
// the same name in the endpoint's input (`mebyo_web::ops_api`); on `--data`, the
// same service call as before there was a server.

fn incident_path(id: &str, what: &str) -> String {
    format!("/api/v1/ops/incidents/{}/{what}", segment(id))
}

async fn open_incident(
    acting: &StaffActing,
    id: Option<String>,
    input: IncidentInput,
) -> anyhow::Result<ExitCode> {
    let acting = match acting.target()? {
        Target::Server(_) if id.is_some() => {
            anyhow::bail!("a server gives each new incident a fresh id: --id is for --data")
        }
        Target::Server(r) => {
            let print_ids = |rec: &Recorded| rec.made.iter().for_each(|m| println!("{m}"));
            return r
                .command("/api/v1/ops/incidents", Some(&input), print_ids)
                .await;
        }
        Target::Local(a) => a,
    };
    let kind = IncidentKind::parse(&input.kind)
        .ok_or_else(|| anyhow!("unknown incident kind {:?}", input.kind))?;
    let p = open_or_hint(&acting.platform).await?;
    let id = match id {
        Some(i) => IncidentId::new(i)?,
        None => IncidentId::new(p.new_id("inc"))?,
    };
    let cmd = IncidentCommand::Report {
        incident: id.clone(),
        kind,
        detected_at: opt_time(&input.detected_at)?.unwrap_or_else(|| p.now()),
        vpn_used: input.vpn_used,
        contractor: reference(&input.contractor)?,
        source: Source::Staff,
    };
    let o = outcome(svc::incidents::incident(&p, &staff(&acting)?, &id, cmd).await)?;
    Ok(decided(o, |_| println!("{id}")))
}

async fn step_done(acting: &StaffActing, id: String, input: StepInput) -> anyhow::Result<ExitCode> {
    match acting.target()? {
        Target::Server(r) => {
            let path = incident_path(&id, "steps");
            r.command(&path, Some(&input), |_| {}).await
        }
        Target::Local(a) => {
            let step =
                Step::parse(&input.step).ok_or_else(|| anyhow!("unknown step {:?}", input.step))?;
            let cmd = IncidentCommand::RecordStep {
                step,
                done_at: opt_time(&input.done_at)?,
                reference: reference(&input.reference)?,
            };
            apply_or_hint(&a, id, cmd).await
        }
    }
}

async fn escalate(
    acting: &StaffActing,
    id: String,
    input: EscalationInput,
) -> anyhow::Result<ExitCode> {
    match acting.target()? {
        Target::Server(r) => {
            let path = incident_path(&id, "escalations");
            r.command(&path, Some(&input), |_| {}).await
        }
        Target::Local(a) => {
            let to =
                Level::parse(&input.to).ok_or_else(|| anyhow!("unknown level {:?}", input.to))?;
            apply_or_hint(&a, id, IncidentCommand::Escalate { to }).await
        }
    }
}

async fn close(acting: &StaffActing, id: String) -> anyhow::Result<ExitCode> {
    match acting.target()? {
        Target::Server(r) => {
            let path = incident_path(&id, "close");
            r.command(&path, None::<&()>, |_| {}).await
        }
        Target::Local(a) => apply_or_hint(&a, id, IncidentCommand::Close).await,
    }
}

async fn rotate(
    acting: &StaffActing,
    id: String,
    input: RotationInput,
) -> anyhow::Result<ExitCode> {
    let a = match acting.target()? {
        Target::Server(r) => {
            // `made` holds the new credentials in the order the old ones were named.
            let print = |rec: &Recorded| {
                for (old, new) in input.credentials.iter().zip(&rec.made) {
                    println!("{old} revoked, replaced by {new}");
                }
            };
            let path = incident_path(&id, "rotations");
            return r.command(&path, Some(&input), print).await;
        }
        Target::Local(a) => a,
    };
    let old = input
        .credentials
        .iter()
        .map(CredentialId::new)
        .collect::<Result<Vec<_>, _>>()?;
    let p = open_or_hint(&a.platform).await?;
    let id = IncidentId::new(id)?;
    let o = outcome(svc::incidents::rotate_credentials(&p, &staff(&a)?, &id, &old).await)?;
    Ok(decided(o, |rotations| {
        for r in rotations {
            println!("{} revoked, replaced by {}", r.revoked, r.issued);
        }
    }))
}

/// The incident commands that work on the data directory only.
async fn incident_local(c: IncidentCmd) -> anyhow::Result<ExitCode> {
    use svc::incidents::incident_report;
    let id_of = |s: &str| IncidentId::new(s).map_err(anyhow::Error::from);
    match c {
        IncidentCmd::Assess {
            acting,
            id,
            leak_possible,
            individuals_data,
            individuals,
            records,
        } => {
            let cmd = IncidentCommand::Assess(Assessment {
                leak_possible,
                individuals_data,
                individuals_affected: individuals,
                records_affected: records,
            });
            apply(&acting, id, cmd).await
        }
        IncidentCmd::Notify {
            acting,
            id,
            target,
            count,
            reference: r,
        } => {
            let target =
                NotifyTarget::parse(&target).ok_or_else(|| anyhow!("unknown target {target:?}"))?;
            let cmd = IncidentCommand::Notify {
                target,
                count,
                reference: reference(&r)?,
            };
            apply(&acting, id, cmd).await
        }
        IncidentCmd::Report {
            platform,
            id,
            format,
        } => {
            let (p, _) = open(&platform).await?;
            let Some(r) = incident_report(&p, &id_of(&id)?).await? else {
                eprintln!("no incident {id}");
                return Ok(ExitCode::from(2));
            };
            match format.as_str() {
                "html" => print!("{}", r.to_html()),
                _ => println!("{}", r.to_json()),
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCmd::List { platform, format } => list_incidents(&platform, &format).await,
        IncidentCmd::Runbook { kind } => print_runbook(&kind),
        IncidentCmd::Open { .. }
        | IncidentCmd::Step { .. }
        | IncidentCmd::Escalate { .. }
        | IncidentCmd::Rotate { .. }
        | IncidentCmd::Close { .. } => {
            // `incident` routes these before calling here; an error, never a panic.
            anyhow::bail!("internal: this incident command is not handled locally")
        }
    }
}

async fn list_incidents(platform: &PlatformArgs, format: &str) -> anyhow::Result<ExitCode> {
    let (p, _) = open(platform).await?;
    let all = svc::incidents::list(&p).await?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &all {
        let runbook = if r.compliant {
            "runbook complete".to_string()
        } else {
            format!("missing: {}", r.missing.join(", "))
        };
        println!(
            "{}  {:<20} {:<6} reported {}  {runbook}",
            r.incident, r.kind, r.status, r.reported_at
        );
    }
    Ok(ExitCode::SUCCESS)
}
