//! `mebyo ops`: operations over the platform (issue 7): incidents and their
//! reports (P4.14), maintenance windows (P4.3), the media ledger and disposal
//! (P4.7, P4.9), firewall-log reviews (P4.4(3)) and the anomaly scan (P4.4(1)).
//!
//! Each command opens the platform, runs one service call and exits: 0 done,
//! 1 refused (the refusal, with its clause, on stderr), 2 could not run. A running
//! server holds the ledger lock, so these are for when it is stopped.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use mebyo_domain::{Actor, CredentialId, Refusal, StaffId, Timestamp};
use mebyo_operations::incident::{
    Assessment, IncidentCommand, IncidentKind, Level, NotifyTarget, Source, Step, runbook,
};
use mebyo_operations::maintenance::{MaintenanceCommand, Service};
use mebyo_operations::media::{MediaCommand, MediaKind, Method, RecordDisposal, Subject};
use mebyo_operations::monitoring::Finding;
use mebyo_operations::{Digest, DisposalId, IncidentId, MediaId, Reference, WindowId};
use mebyo_operations_service::{self as svc, OpsSettings};
use mebyo_platform::{Outcome, Platform};

use crate::paths::{PlatformArgs, runtime};

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

#[derive(clap::Subcommand)]
pub enum IncidentCmd {
    /// Report an incident (P4.14(1)); prints its id.
    Open {
        #[command(flatten)]
        acting: Acting,
        /// unauthorized-access, malware, theft-or-loss, contractor or other.
        #[arg(long)]
        kind: String,
        /// Incident id (default: a fresh one).
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
        acting: Acting,
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
        acting: Acting,
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
        acting: Acting,
        id: String,
        #[arg(long = "credential", value_name = "ID", required = true)]
        credentials: Vec<String>,
    },
    /// Close an incident whose required steps are all done.
    Close {
        #[command(flatten)]
        acting: Acting,
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
pub enum MaintenanceCmd {
    /// Announce a window, at least the configured lead time ahead (P4.3).
    Schedule {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        #[arg(long, value_name = "TIME")]
        starts: String,
        #[arg(long, value_name = "TIME")]
        ends: String,
        /// Comma-separated: portal, app, provider-gateway.
        #[arg(long, value_delimiter = ',', required = true)]
        affects: Vec<String>,
        /// One line shown to users.
        #[arg(long)]
        summary: String,
    },
    Cancel {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
    },
    /// The notices the portal shows at a time (default: now), as JSON.
    Notices {
        #[command(flatten)]
        platform: PlatformArgs,
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum MediaCmd {
    /// Permit copying to a medium: the system operations administrator (P4.7(1)).
    Approve {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        /// usb-memory, optical-disc, hard-disk, magnetic-tape or other.
        #[arg(long)]
        kind: String,
        /// 64-hex digest of the contents.
        #[arg(long)]
        digest: String,
        #[arg(long, value_name = "STAFF")]
        custodian: String,
        #[arg(long, value_name = "REF")]
        storage: String,
        #[arg(long, value_name = "REF")]
        purpose: String,
    },
    /// The copy was made and handed to the custodian.
    Issue {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        #[arg(long)]
        digest: String,
    },
    /// Back under lock (P4.7(2)).
    Return {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        #[arg(long, value_name = "REF")]
        storage: String,
    },
    /// Disposal witnessed by the system operations administrator (P4.9).
    Dispose {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        /// clear, purge or destroy (NIST SP 800-88).
        #[arg(long)]
        method: String,
        /// Why not destroyed (clear or purge).
        #[arg(long, value_name = "REF")]
        reason: Option<String>,
        /// When it was disposed of, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Print a ledger entry as JSON.
    Show {
        #[command(flatten)]
        platform: PlatformArgs,
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Subcommand)]
pub enum DisposalCmd {
    Record {
        #[command(flatten)]
        acting: Acting,
        #[arg(long)]
        id: String,
        /// medium or paper.
        #[arg(long)]
        subject: String,
        /// Asset tag or batch number.
        #[arg(long, value_name = "REF")]
        item: String,
        /// clear, purge, destroy (media); shred, melt (paper).
        #[arg(long)]
        method: String,
        /// The melting certificate (method melt).
        #[arg(long, value_name = "REF")]
        certificate: Option<String>,
        #[arg(long, value_name = "REF")]
        reason: Option<String>,
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum FirewallCmd {
    /// Record a review of the firewall log from..to.
    Review {
        #[command(flatten)]
        acting: Acting,
        #[arg(long, value_name = "TIME")]
        from: String,
        #[arg(long, value_name = "TIME")]
        to: String,
        /// The incident the review found, if any.
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        #[arg(long, value_name = "REF")]
        reference: Option<String>,
    },
    /// Whether the review is overdue (exit 1 if it is).
    Status {
        #[command(flatten)]
        platform: PlatformArgs,
    },
}

#[derive(clap::Subcommand)]
pub enum AnomalyCmd {
    /// Run the rules over the whole access log once, opening incidents.
    Scan {
        #[command(flatten)]
        platform: PlatformArgs,
    },
}

fn time_arg(s: &str) -> anyhow::Result<Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is not an RFC 3339 time"))?;
    Ok(Timestamp((t.unix_timestamp_nanos() / 1000) as i64))
}

fn opt_time(s: &Option<String>) -> anyhow::Result<Option<Timestamp>> {
    s.as_deref().map(time_arg).transpose()
}

fn reference(s: &Option<String>) -> anyhow::Result<Option<Reference>> {
    Ok(s.as_deref().map(Reference::new).transpose()?)
}

fn staff(a: &Acting) -> anyhow::Result<Actor> {
    Ok(Actor::Staff {
        staff: StaffId::new(&a.staff)?,
    })
}

async fn open(p: &PlatformArgs) -> anyhow::Result<(Platform, OpsSettings)> {
    let platform = Platform::open(&p.data, p.options()?).await?;
    let settings = OpsSettings::load(&p.data)?;
    Ok((platform, settings))
}

/// Prints what was done, or the refusal with its clause (exit 1).
fn decided<T>(outcome: Result<T, Refusal>, done: impl FnOnce(T)) -> ExitCode {
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

fn outcome<T>(o: Outcome<T>) -> anyhow::Result<Result<T, Refusal>> {
    Ok(o?)
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    if let Command::Incident(IncidentCmd::Runbook { kind }) = &c {
        return print_runbook(kind);
    }
    runtime()?.block_on(async move {
        match c {
            Command::Incident(c) => incident(c).await,
            Command::Maintenance(c) => maintenance(c).await,
            Command::Media(c) => media(c).await,
            Command::Disposal(c) => disposal(c).await,
            Command::Firewall(c) => firewall(c).await,
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
    let id = IncidentId::new(id)?;
    let o = outcome(svc::incidents::incident(&p, &staff(acting)?, &id, cmd).await)?;
    Ok(decided(o, |events| {
        for e in events {
            println!("{}", serde_json::to_string(&e).expect("json"));
        }
    }))
}

async fn incident(c: IncidentCmd) -> anyhow::Result<ExitCode> {
    use svc::incidents::{incident as run, incident_report, list, rotate_credentials};
    let id_of = |s: &str| IncidentId::new(s).map_err(anyhow::Error::from);
    match c {
        IncidentCmd::Open {
            acting,
            kind,
            id,
            detected_at,
            vpn_used,
            contractor,
        } => {
            let kind = IncidentKind::parse(&kind)
                .ok_or_else(|| anyhow!("unknown incident kind {kind:?}"))?;
            let (p, _) = open(&acting.platform).await?;
            let id = match id {
                Some(i) => id_of(&i)?,
                None => IncidentId::new(p.new_id("inc"))?,
            };
            let cmd = IncidentCommand::Report {
                incident: id.clone(),
                kind,
                detected_at: opt_time(&detected_at)?.unwrap_or_else(|| p.now()),
                vpn_used,
                contractor: reference(&contractor)?,
                source: Source::Staff,
            };
            let o = outcome(run(&p, &staff(&acting)?, &id, cmd).await)?;
            Ok(decided(o, |_| println!("{id}")))
        }
        IncidentCmd::Step {
            acting,
            id,
            step,
            done_at,
            reference: r,
        } => {
            let step = Step::parse(&step).ok_or_else(|| anyhow!("unknown step {step:?}"))?;
            let cmd = IncidentCommand::RecordStep {
                step,
                done_at: opt_time(&done_at)?,
                reference: reference(&r)?,
            };
            apply(&acting, id, cmd).await
        }
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
        IncidentCmd::Escalate { acting, id, to } => {
            let to = Level::parse(&to).ok_or_else(|| anyhow!("unknown level {to:?}"))?;
            apply(&acting, id, IncidentCommand::Escalate { to }).await
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
        IncidentCmd::Close { acting, id } => apply(&acting, id, IncidentCommand::Close).await,
        IncidentCmd::Rotate {
            acting,
            id,
            credentials,
        } => {
            let old = credentials
                .iter()
                .map(CredentialId::new)
                .collect::<Result<Vec<_>, _>>()?;
            let (p, _) = open(&acting.platform).await?;
            let o = outcome(rotate_credentials(&p, &staff(&acting)?, &id_of(&id)?, &old).await)?;
            Ok(decided(o, |rotations| {
                for r in rotations {
                    println!("{} revoked, replaced by {}", r.revoked, r.issued);
                }
            }))
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
        IncidentCmd::List { platform, format } => {
            let (p, _) = open(&platform).await?;
            let all = list(&p).await?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for r in &all {
                    println!(
                        "{}  {:<20} {:<6} reported {}  {}",
                        r.incident,
                        r.kind,
                        r.status,
                        r.reported_at,
                        if r.compliant {
                            "runbook complete".to_string()
                        } else {
                            format!("missing: {}", r.missing.join(", "))
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCmd::Runbook { kind } => print_runbook(&kind),
    }
}

async fn maintenance(c: MaintenanceCmd) -> anyhow::Result<ExitCode> {
    use svc::maintenance::{Plan, maintenance as run, notices, schedule};
    match c {
        MaintenanceCmd::Schedule {
            acting,
            id,
            starts,
            ends,
            affects,
            summary,
        } => {
            let affects = affects
                .iter()
                .map(|a| Service::parse(a).ok_or_else(|| anyhow!("unknown service {a:?}")))
                .collect::<anyhow::Result<BTreeSet<_>>>()?;
            let (p, s) = open(&acting.platform).await?;
            let plan = Plan {
                window: WindowId::new(&id)?,
                starts_at: time_arg(&starts)?,
                ends_at: time_arg(&ends)?,
                affects,
                summary,
            };
            let o = outcome(schedule(&p, &s, &staff(&acting)?, plan).await)?;
            Ok(decided(o, |_| println!("window {id} announced")))
        }
        MaintenanceCmd::Cancel { acting, id } => {
            let (p, _) = open(&acting.platform).await?;
            let cmd = MaintenanceCommand::Cancel {
                window: WindowId::new(&id)?,
            };
            let o = outcome(run(&p, &staff(&acting)?, cmd).await)?;
            Ok(decided(o, |_| println!("window {id} cancelled")))
        }
        MaintenanceCmd::Notices { platform, at } => {
            let (p, _) = open(&platform).await?;
            let at = opt_time(&at)?.unwrap_or_else(|| p.now());
            println!("{}", serde_json::to_string_pretty(&notices(&p, at).await?)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn media(c: MediaCmd) -> anyhow::Result<ExitCode> {
    use svc::media::{ledger_entry, media as run};
    let (acting, id, cmd) = match c {
        MediaCmd::Show { platform, id } => {
            let (p, _) = open(&platform).await?;
            let entry = ledger_entry(&p, &MediaId::new(id)?).await?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
            return Ok(ExitCode::SUCCESS);
        }
        MediaCmd::Approve {
            acting,
            id,
            kind,
            digest,
            custodian,
            storage,
            purpose,
        } => {
            let media = MediaId::new(&id)?;
            let cmd = MediaCommand::ApproveExport {
                media: media.clone(),
                kind: MediaKind::parse(&kind).ok_or_else(|| anyhow!("unknown kind {kind:?}"))?,
                contents_digest: Digest::new(digest)?,
                custodian: StaffId::new(custodian)?,
                storage: Reference::new(storage)?,
                purpose: Reference::new(purpose)?,
            };
            (acting, media, cmd)
        }
        MediaCmd::Issue { acting, id, digest } => (
            acting,
            MediaId::new(id)?,
            MediaCommand::Issue {
                contents_digest: Digest::new(digest)?,
            },
        ),
        MediaCmd::Return {
            acting,
            id,
            storage,
        } => (
            acting,
            MediaId::new(id)?,
            MediaCommand::Return {
                storage: Reference::new(storage)?,
            },
        ),
        MediaCmd::Dispose {
            acting,
            id,
            method,
            reason,
            at,
        } => {
            let method =
                Method::parse(&method, None).ok_or_else(|| anyhow!("unknown method {method:?}"))?;
            let cmd = MediaCommand::Dispose {
                method,
                reason: reference(&reason)?,
                // Placeholder replaced by "now" below when no time was given.
                disposed_at: opt_time(&at)?.unwrap_or(Timestamp(i64::MIN)),
            };
            (acting, MediaId::new(id)?, cmd)
        }
    };
    let (p, _) = open(&acting.platform).await?;
    let cmd = match cmd {
        MediaCommand::Dispose {
            method,
            reason,
            disposed_at: Timestamp(i64::MIN),
        } => MediaCommand::Dispose {
            method,
            reason,
            disposed_at: p.now(),
        },
        other => other,
    };
    let o = outcome(run(&p, &staff(&acting)?, &id, cmd).await)?;
    Ok(decided(o, |events| {
        for e in events {
            println!("{}", serde_json::to_string(&e).expect("json"));
        }
    }))
}

async fn disposal(c: DisposalCmd) -> anyhow::Result<ExitCode> {
    let DisposalCmd::Record {
        acting,
        id,
        subject,
        item,
        method,
        certificate,
        reason,
        at,
    } = c;
    let subject = match subject.as_str() {
        "medium" => Subject::Medium,
        "paper" => Subject::Paper,
        other => anyhow::bail!("unknown subject {other:?}"),
    };
    let method = Method::parse(&method, reference(&certificate)?)
        .ok_or_else(|| anyhow!("unknown method {method:?} (melt needs --certificate)"))?;
    let (p, _) = open(&acting.platform).await?;
    let disposal = DisposalId::new(&id)?;
    let cmd = RecordDisposal {
        disposal: disposal.clone(),
        subject,
        item: Reference::new(item)?,
        method,
        reason: reference(&reason)?,
        disposed_at: opt_time(&at)?.unwrap_or_else(|| p.now()),
    };
    let o = outcome(svc::media::disposal(&p, &staff(&acting)?, &disposal, cmd).await)?;
    Ok(decided(o, |_| println!("disposal {id} recorded")))
}

async fn firewall(c: FirewallCmd) -> anyhow::Result<ExitCode> {
    match c {
        FirewallCmd::Review {
            acting,
            from,
            to,
            incident,
            reference: r,
        } => {
            let finding = match incident {
                Some(i) => Finding::Incident {
                    incident: IncidentId::new(i)?,
                },
                None => Finding::NothingFound,
            };
            let (p, s) = open(&acting.platform).await?;
            let o = outcome(
                svc::monitoring::record_review(
                    &p,
                    &s,
                    &staff(&acting)?,
                    time_arg(&from)?,
                    time_arg(&to)?,
                    finding,
                    reference(&r)?,
                )
                .await,
            )?;
            Ok(decided(o, |events| {
                for e in events {
                    println!("{}", serde_json::to_string(&e).expect("json"));
                }
            }))
        }
        FirewallCmd::Status { platform } => {
            let (p, s) = open(&platform).await?;
            let flag = svc::monitoring::review_status(&p, &s).await?;
            println!("{}", serde_json::to_string_pretty(&flag)?);
            Ok(if flag.overdue {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
