//! `mebyo ops maintenance|media|disposal|firewall`: the routine of operations
//! (P4.3, P4.4(3), P4.7, P4.9), on a stopped platform with `--data`, or with
//! `--server` on the running one (issue 15 §3). On a server each CLI argument is
//! the field of the same name in the endpoint's input (`mebyo_web::ops_routine`,
//! `mebyo_web::ops_media`), so the two cannot disagree; the server decides.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::anyhow;
use mebyo_domain::StaffId;
use mebyo_operations::maintenance::{MaintenanceCommand, Service};
use mebyo_operations::media::{MediaCommand, MediaKind, Method, RecordDisposal, Subject};
use mebyo_operations::monitoring::Finding;
use mebyo_operations::{Digest, DisposalId, IncidentId, MediaId, Reference, WindowId};
use mebyo_operations_service::{self as svc, OpsSettings};
use mebyo_platform::Platform;
use mebyo_web::ops_api::Recorded;
use mebyo_web::ops_media::{
    ApprovalInput, DisposalInput, MediaDisposalInput, MediaIssueInput, ReturnInput,
};
use mebyo_web::ops_routine::{ReviewInput, WindowInput};

use crate::client::{Answer, refused, segment};
use crate::operations::{
    Acting, StaffActing, Target, decided, open, opt_time, outcome, reference, staff, time_arg,
};
use crate::paths::{PlatformArgs, StaffTarget, Via, open_or_hint};

#[derive(clap::Subcommand)]
pub enum MaintenanceCmd {
    /// Announce a window, at least the configured lead time ahead (P4.3).
    Schedule {
        #[command(flatten)]
        acting: StaffActing,
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
        acting: StaffActing,
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
        acting: StaffActing,
        /// The medium's ledger id (default: a fresh one, printed).
        #[arg(long)]
        id: Option<String>,
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
        acting: StaffActing,
        #[arg(long)]
        id: String,
        #[arg(long)]
        digest: String,
    },
    /// Back under lock (P4.7(2)).
    Return {
        #[command(flatten)]
        acting: StaffActing,
        #[arg(long)]
        id: String,
        #[arg(long, value_name = "REF")]
        storage: String,
    },
    /// Disposal witnessed by the system operations administrator (P4.9).
    Dispose {
        #[command(flatten)]
        acting: StaffActing,
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
        target: StaffTarget,
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Subcommand)]
pub enum DisposalCmd {
    Record {
        #[command(flatten)]
        acting: StaffActing,
        /// The disposal's id (default: a fresh one, printed).
        #[arg(long)]
        id: Option<String>,
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
        acting: StaffActing,
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

/// The platform for a command `--server` could have sent: a ledger held by a
/// server says so.
async fn open_hinted(p: &PlatformArgs) -> anyhow::Result<(Platform, OpsSettings)> {
    let platform = open_or_hint(p).await?;
    Ok((platform, OpsSettings::load(&p.data)?))
}

fn print_events<T: serde::Serialize>(events: Vec<T>) {
    for e in events {
        match serde_json::to_string(&e) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("an event could not be printed: {err}"),
        }
    }
}

pub async fn maintenance(c: MaintenanceCmd) -> anyhow::Result<ExitCode> {
    match c {
        MaintenanceCmd::Schedule {
            acting,
            id,
            starts,
            ends,
            affects,
            summary,
        } => {
            let input = WindowInput {
                window: id,
                starts_at: starts,
                ends_at: ends,
                affects,
                summary,
            };
            schedule(&acting, input).await
        }
        MaintenanceCmd::Cancel { acting, id } => match acting.target()? {
            Target::Server(r) => {
                let path = format!("/api/v1/ops/maintenance/{}/cancel", segment(&id));
                let print = |_: &Recorded| println!("window {id} cancelled");
                r.command(&path, None::<&()>, print).await
            }
            Target::Local(a) => {
                let (p, _) = open_hinted(&a.platform).await?;
                let cmd = MaintenanceCommand::Cancel {
                    window: WindowId::new(&id)?,
                };
                let o = outcome(svc::maintenance::maintenance(&p, &staff(&a)?, cmd).await)?;
                Ok(decided(o, |_| println!("window {id} cancelled")))
            }
        },
        MaintenanceCmd::Notices { platform, at } => {
            let (p, _) = open(&platform).await?;
            let at = opt_time(&at)?.unwrap_or_else(|| p.now());
            let notices = svc::maintenance::notices(&p, at).await?;
            println!("{}", serde_json::to_string_pretty(&notices)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn schedule(acting: &StaffActing, input: WindowInput) -> anyhow::Result<ExitCode> {
    let id = input.window.clone();
    let a = match acting.target()? {
        Target::Server(r) => {
            let print = |_: &Recorded| println!("window {id} announced");
            return r
                .command("/api/v1/ops/maintenance", Some(&input), print)
                .await;
        }
        Target::Local(a) => a,
    };
    let affects = input
        .affects
        .iter()
        .map(|s| Service::parse(s).ok_or_else(|| anyhow!("unknown service {s:?}")))
        .collect::<anyhow::Result<BTreeSet<_>>>()?;
    let (p, s) = open_hinted(&a.platform).await?;
    let plan = svc::maintenance::Plan {
        window: WindowId::new(&input.window)?,
        starts_at: time_arg(&input.starts_at)?,
        ends_at: time_arg(&input.ends_at)?,
        affects,
        summary: input.summary,
    };
    let o = outcome(svc::maintenance::schedule(&p, &s, &staff(&a)?, plan).await)?;
    Ok(decided(o, |_| println!("window {id} announced")))
}

fn media_path(id: &str, what: &str) -> String {
    format!("/api/v1/ops/media/{}/{what}", segment(id))
}

pub async fn media(c: MediaCmd) -> anyhow::Result<ExitCode> {
    match c {
        MediaCmd::Show { target, id } => show(&target, &id).await,
        MediaCmd::Approve {
            acting,
            id,
            kind,
            digest,
            custodian,
            storage,
            purpose,
        } => {
            let input = ApprovalInput {
                id,
                kind,
                digest,
                custodian,
                storage,
                purpose,
            };
            approve(&acting, input).await
        }
        MediaCmd::Issue { acting, id, digest } => {
            let input = MediaIssueInput { digest };
            let cmd = || {
                Ok(MediaCommand::Issue {
                    contents_digest: Digest::new(input.digest.clone())?,
                })
            };
            ledger(&acting, &id, "issue", &input, cmd).await
        }
        MediaCmd::Return {
            acting,
            id,
            storage,
        } => {
            let input = ReturnInput { storage };
            let cmd = || {
                Ok(MediaCommand::Return {
                    storage: Reference::new(input.storage.clone())?,
                })
            };
            ledger(&acting, &id, "return", &input, cmd).await
        }
        MediaCmd::Dispose {
            acting,
            id,
            method,
            reason,
            at,
        } => {
            let input = MediaDisposalInput { method, reason, at };
            match acting.target()? {
                Target::Server(r) => {
                    let path = media_path(&id, "disposal");
                    r.command(&path, Some(&input), |_| {}).await
                }
                Target::Local(a) => dispose_local(&a, &id, input).await,
            }
        }
    }
}

/// One ledger command on a medium: its input to the server, or the command
/// `local` makes of it decided here.
async fn ledger<I: serde::Serialize>(
    acting: &StaffActing,
    id: &str,
    what: &str,
    input: &I,
    local: impl FnOnce() -> anyhow::Result<MediaCommand>,
) -> anyhow::Result<ExitCode> {
    match acting.target()? {
        Target::Server(r) => r.command(&media_path(id, what), Some(input), |_| {}).await,
        Target::Local(a) => ledger_local(&a, &MediaId::new(id)?, local()?).await,
    }
}

async fn ledger_local(a: &Acting, id: &MediaId, cmd: MediaCommand) -> anyhow::Result<ExitCode> {
    let (p, _) = open_hinted(&a.platform).await?;
    let o = outcome(svc::media::media(&p, &staff(a)?, id, cmd).await)?;
    Ok(decided(o, print_events))
}

async fn approve(acting: &StaffActing, input: ApprovalInput) -> anyhow::Result<ExitCode> {
    let a = match acting.target()? {
        Target::Server(r) => {
            let print = |rec: &Recorded| rec.made.iter().for_each(|m| println!("{m}"));
            return r.command("/api/v1/ops/media", Some(&input), print).await;
        }
        Target::Local(a) => a,
    };
    let kind =
        MediaKind::parse(&input.kind).ok_or_else(|| anyhow!("unknown kind {:?}", input.kind))?;
    let (contents_digest, custodian) = (Digest::new(input.digest)?, StaffId::new(input.custodian)?);
    let (storage, purpose) = (
        Reference::new(input.storage)?,
        Reference::new(input.purpose)?,
    );
    let (p, _) = open_hinted(&a.platform).await?;
    let media = MediaId::new(input.id.unwrap_or_else(|| p.new_id("med")))?;
    let cmd = MediaCommand::ApproveExport {
        media: media.clone(),
        kind,
        contents_digest,
        custodian,
        storage,
        purpose,
    };
    let o = outcome(svc::media::media(&p, &staff(&a)?, &media, cmd).await)?;
    Ok(decided(o, print_events))
}

async fn dispose_local(
    a: &Acting,
    id: &str,
    input: MediaDisposalInput,
) -> anyhow::Result<ExitCode> {
    let method = Method::parse(&input.method, None)
        .ok_or_else(|| anyhow!("unknown method {:?}", input.method))?;
    let (reason, at) = (reference(&input.reason)?, opt_time(&input.at)?);
    let id = MediaId::new(id)?;
    let (p, _) = open_hinted(&a.platform).await?;
    let cmd = MediaCommand::Dispose {
        method,
        reason,
        disposed_at: at.unwrap_or_else(|| p.now()),
    };
    let o = outcome(svc::media::media(&p, &staff(a)?, &id, cmd).await)?;
    Ok(decided(o, print_events))
}

/// A ledger entry as JSON: from the data directory, or from the server to staff
/// holding a role (P4.7(2)).
async fn show(target: &StaffTarget, id: &str) -> anyhow::Result<ExitCode> {
    let platform = match target.via(None)? {
        Via::Server(r) => {
            let path = format!("/api/v1/ops/media/{}", segment(id));
            let token = Some(r.session.token.as_str());
            let get = reqwest::Method::GET;
            return match r.client.send(get, &path, token, None::<&()>).await? {
                Answer::Done(entry) => {
                    let entry: serde_json::Value = entry;
                    println!("{}", serde_json::to_string_pretty(&entry)?);
                    Ok(ExitCode::SUCCESS)
                }
                Answer::Refused(status, e) => Ok(refused(status, &e)),
            };
        }
        Via::Local(p) => p,
    };
    let (p, _) = open_hinted(&platform).await?;
    let entry = svc::media::ledger_entry(&p, &MediaId::new(id)?).await?;
    println!("{}", serde_json::to_string_pretty(&entry)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn disposal(c: DisposalCmd) -> anyhow::Result<ExitCode> {
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
    let input = DisposalInput {
        id,
        subject,
        item,
        method,
        certificate,
        reason,
        at,
    };
    let a = match acting.target()? {
        Target::Server(r) => {
            let print = |rec: &Recorded| {
                rec.made
                    .iter()
                    .for_each(|m| println!("disposal {m} recorded"))
            };
            return r
                .command("/api/v1/ops/disposals", Some(&input), print)
                .await;
        }
        Target::Local(a) => a,
    };
    let subject = match input.subject.as_str() {
        "medium" => Subject::Medium,
        "paper" => Subject::Paper,
        other => anyhow::bail!("unknown subject {other:?}"),
    };
    let method = Method::parse(&input.method, reference(&input.certificate)?).ok_or_else(|| {
        anyhow!(
            "unknown method {:?} (melt needs --certificate)",
            input.method
        )
    })?;
    let (item, reason) = (Reference::new(input.item)?, reference(&input.reason)?);
    let at = opt_time(&input.at)?;
    let (p, _) = open_hinted(&a.platform).await?;
    let disposal = DisposalId::new(input.id.unwrap_or_else(|| p.new_id("disp")))?;
    let cmd = RecordDisposal {
        disposal: disposal.clone(),
        subject,
        item,
        method,
        reason,
        disposed_at: at.unwrap_or_else(|| p.now()),
    };
    let o = outcome(svc::media::disposal(&p, &staff(&a)?, &disposal, cmd).await)?;
    Ok(decided(o, |_| println!("disposal {disposal} recorded")))
}

pub async fn firewall(c: FirewallCmd) -> anyhow::Result<ExitCode> {
    match c {
        FirewallCmd::Review {
            acting,
            from,
            to,
            incident,
            reference,
        } => {
            let input = ReviewInput {
                from,
                to,
                incident,
                reference,
            };
            review(&acting, input).await
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

async fn review(acting: &StaffActing, input: ReviewInput) -> anyhow::Result<ExitCode> {
    let a = match acting.target()? {
        Target::Server(r) => {
            let path = "/api/v1/ops/firewall-reviews";
            return r.command(path, Some(&input), |_| {}).await;
        }
        Target::Local(a) => a,
    };
    let finding = match &input.incident {
        Some(i) => Finding::Incident {
            incident: IncidentId::new(i)?,
        },
        None => Finding::NothingFound,
    };
    let (from, to) = (time_arg(&input.from)?, time_arg(&input.to)?);
    let r = reference(&input.reference)?;
    let (p, s) = open_hinted(&a.platform).await?;
    let o =
        outcome(svc::monitoring::record_review(&p, &s, &staff(&a)?, from, to, finding, r).await)?;
    Ok(decided(o, print_events))
}
