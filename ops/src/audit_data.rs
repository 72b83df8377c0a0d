//! Auditors' commands that need to decrypt (issue 8 §3, §4): replay as of a time
//! or position, disclosures of one person with inclusion proofs, and the FHIR
//! AuditEvent export. Verification needs no key; decrypting does, and only under an
//! explicit auditor key grant that is itself an event in the ledger — and every use
//! of the grant is an event too.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mebyo_domain::{AccessEvent, Refusal, StaffId, Timestamp};
use mebyo_platform::codec;
use mebyo_platform::{Options, Platform};
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use mebyo_store::EventStore;
use serde::Serialize;

use mebyo_platform::audit_grants;
pub use mebyo_platform::audit_grants::{GRANTS_STREAM, USES_STREAM};

#[derive(clap::Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub target: crate::paths::StaffTarget,
    /// Staff id of the auditor (must hold the Auditor role).
    #[arg(long)]
    pub auditor: String,
    /// Staff id of the business administrator granting it. Needed with --data;
    /// with a server the sign-in says who, and --by, if given, must be the same.
    #[arg(long)]
    pub by: Option<String>,
    /// How many days the grant lasts (1 to 365, `audit_grant::DAYS`).
    #[arg(long, default_value_t = 30)]
    pub days: i64,
}

#[derive(clap::Args)]
pub struct AuditorArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Staff id of the auditor holding a current grant.
    #[arg(long)]
    pub auditor: String,
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub who: AuditorArgs,
    /// A position (number of events) or an RFC 3339 time.
    #[arg(long, value_name = "TIME|POSITION")]
    pub as_of: String,
}

#[derive(clap::Args)]
pub struct DisclosuresArgs {
    #[command(flatten)]
    pub who: AuditorArgs,
    /// Pseudonymous id of the person.
    #[arg(long)]
    pub person: String,
    /// Write the disclosures with their inclusion proofs here (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub who: AuditorArgs,
    /// NDJSON file of FHIR R4 AuditEvent resources (IHE BALP).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    crate::paths::runtime()
}

async fn open(data: &std::path::Path) -> anyhow::Result<Platform> {
    Platform::open(data, Options::default())
        .await
        .context("opening the platform (the auditor's key grant includes access to the KEK)")
}

/// `mebyo audit grant`: the business administrator grants an auditor decryption
/// for a period. The domain decides and the platform records its answer, a
/// refusal too (`mebyo_platform::audit_grants::grant`); with `--server` the
/// grantor is whoever signed in, not a name typed here.
pub fn grant(a: GrantArgs) -> anyhow::Result<ExitCode> {
    use crate::paths::Via;
    let auditor = StaffId::new(&a.auditor).context("--auditor is not a staff id")?;
    let data = match a.target.via(a.by.as_deref())? {
        Via::Server(r) => {
            let input = mebyo_web::ops_keys::GrantInput {
                auditor: a.auditor.clone(),
                days: a.days,
            };
            let print = |_: &mebyo_web::ops_api::Recorded| {
                println!("granted {} decryption for {} days", a.auditor, a.days)
            };
            let path = "/api/v1/ops/audit-grants";
            return runtime()?.block_on(r.command(path, Some(&input), print));
        }
        Via::Local(p) => p,
    };
    let by =
        a.by.as_deref()
            .context("say who grants with --by STAFF (needed with --data)")?;
    let by = StaffId::new(by).context("--by is not a staff id")?;
    runtime()?.block_on(async {
        let p = crate::paths::open_or_hint(&data).await?;
        match audit_grants::grant(&p, &by, &auditor, a.days).await? {
            Ok(_) => {
                println!(
                    "granted {} decryption for {} days (recorded in {GRANTS_STREAM})",
                    a.auditor, a.days
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(r) => {
                eprintln!("{r} (the refusal is recorded in {GRANTS_STREAM})");
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// Checks the auditor holds a grant honoured now, and records this use of it.
async fn use_grant(
    p: &Platform,
    auditor: &str,
    purpose: &str,
) -> anyhow::Result<Result<(), Refusal>> {
    let user = StaffId::new(auditor)?;
    Ok(audit_grants::use_grant(p, &user, purpose).await?)
}

fn no_grant(auditor: &str, r: &Refusal) -> ExitCode {
    eprintln!(
        "{r}: {auditor} holds no auditor key grant honoured now; decrypting needs one (`mebyo audit grant`). Verification needs none: `mebyo audit verify`. The refused attempt is recorded in {USES_STREAM}"
    );
    ExitCode::from(1)
}

/// Folds the first `count` events of the log into fresh read models.
pub async fn replay_models(p: &Platform, count: u64) -> anyhow::Result<(ReadModels, i64)> {
    let mut models = ReadModels::new();
    let mut last_recorded_at_us = 0;
    let mut from = 0;
    while from < count {
        let page = p
            .store()
            .read_all(from, (count - from).min(4096) as usize)
            .await?;
        if page.is_empty() {
            break;
        }
        for env in &page {
            let event = match codec::plaintext(env, p.keys())? {
                Some(plain) => AnyEvent::decode(&env.event_type, &plain)?,
                None => AnyEvent::Other {
                    event_type: env.event_type.clone(),
                },
            };
            models.apply(&Applied {
                position: env.position,
                recorded_at_us: env.recorded_at_us,
                stream_id: &env.stream_id,
                prev_hash: env.prev_hash,
                hash: env.hash,
                event: &event,
            })?;
            last_recorded_at_us = env.recorded_at_us;
        }
        from += page.len() as u64;
    }
    Ok((models, last_recorded_at_us))
}

/// A digest and summary of read models: equal digests mean equal models.
pub fn describe(models: &ReadModels, at: Timestamp) -> serde_json::Value {
    let r = models.registry().counts();
    let c = models.consents().counts(at);
    serde_json::json!({
        "position": models.position(),
        "models_blake3": hex::encode(blake3::hash(&models.snapshot()).as_bytes()),
        "people": { "registered": r.registered, "active": r.active, "withdrawn": r.withdrawn, "erased": r.erased },
        "consents": { "active": c.active, "revoked": c.revoked, "expired": c.expired },
        "providers": models.providers().status_counts().iter().map(|(s, n)| (format!("{s:?}"), *n)).collect::<BTreeMap<_, _>>(),
        "refusals_by_code": models.access().refusals_by_code().into_iter().map(|(c, n)| (c.to_string(), n)).collect::<BTreeMap<_, _>>(),
    })
}

/// `mebyo audit replay --as-of`: the read models as they stood then.
pub fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let p = open(&a.who.data).await?;
        // Find the position before the grant's own use is recorded.
        let head = p.head().count;
        let (count, at) = match a.as_of.parse::<u64>() {
            Ok(n) if n <= head => (n, None),
            Ok(n) => anyhow::bail!("the ledger holds {head} events; cannot replay as of {n}"),
            Err(_) => {
                let t = time::OffsetDateTime::parse(
                    &a.as_of,
                    &time::format_description::well_known::Rfc3339,
                )
                .with_context(|| {
                    format!(
                        "--as-of {:?} is neither a position nor an RFC 3339 time",
                        a.as_of
                    )
                })?;
                let us = (t.unix_timestamp_nanos() / 1000) as i64;
                (
                    count_recorded_before(&p, head, us).await?,
                    Some(Timestamp(us)),
                )
            }
        };
        if let Err(r) = use_grant(&p, &a.who.auditor, &format!("replay as of {}", a.as_of)).await? {
            return Ok(no_grant(&a.who.auditor, &r));
        }
        let (models, last_us) = replay_models(&p, count).await?;
        // As of a position: evaluate expiries at the time of its last event.
        let at = at.unwrap_or(Timestamp(last_us));
        println!("{}", serde_json::to_string_pretty(&describe(&models, at))?);
        Ok(ExitCode::SUCCESS)
    })
}

/// Number of events recorded before `us` (recorded-at never decreases along the log).
async fn count_recorded_before(p: &Platform, head: u64, us: i64) -> anyhow::Result<u64> {
    let (mut lo, mut hi) = (0u64, head);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let e = p.store().read_all(mid, 1).await?;
        if e[0].recorded_at_us < us {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[derive(Serialize)]
struct Disclosure {
    position: u64,
    access: serde_json::Value,
    inclusion_proof: Option<mebyo_audit::tlog::bundle::InclusionBundle>,
    note: Option<String>,
}

/// `mebyo audit disclosures --person`: every access to one person's data, each
/// with its inclusion proof against the newest signed checkpoint, so the person
/// can check it against a published checkpoint.
pub fn disclosures(a: DisclosuresArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let p = open(&a.who.data).await?;
        let person = mebyo_domain::PersonId::new(&a.person)?;
        if let Err(r) = use_grant(&p, &a.who.auditor, &format!("disclosures of {person}")).await? {
            return Ok(no_grant(&a.who.auditor, &r));
        }
        let events = p
            .store()
            .read_stream(&format!("access-{person}"), 0, 1_000_000)
            .await?;
        let log = mebyo_store::EmbeddedStore::log_path(&p.dir.ledger());
        let vkey = mebyo_audit::load_vkey(&p.dir.keys().join("checkpoint.vkey")).ok();
        let mut scan = mebyo_audit::scan_tree(
            &log,
            mebyo_audit::scan::ScanOptions {
                vkey: vkey.as_ref(),
                capture: None,
                chain: false,
                person_related: None,
            },
        )?;
        let mut out = Vec::new();
        for env in &events {
            let access = match codec::decode::<AccessEvent>(env, p.keys())? {
                codec::Decoded::Event(e) => serde_json::to_value(&e)?,
                codec::Decoded::Erased => serde_json::Value::Null,
            };
            scan.captured = Some(env.hash);
            let (proof, note) = match mebyo_audit::proofs::inclusion(&scan, env.position, None) {
                Ok(b) => (Some(b), None),
                Err(e) => (
                    None,
                    Some(format!("no proof yet: {e} (run `mebyo audit checkpoint`)")),
                ),
            };
            out.push(Disclosure {
                position: env.position,
                access,
                inclusion_proof: proof,
                note,
            });
        }
        std::fs::write(&a.out, serde_json::to_vec_pretty(&out)?)?;
        println!(
            "{} accesses to {person}'s data written to {}",
            out.len(),
            a.out.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// `mebyo audit export-fhir`: every access record as a FHIR AuditEvent (BALP), NDJSON.
pub fn export_fhir(a: ExportArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let p = open(&a.who.data).await?;
        if let Err(r) = use_grant(&p, &a.who.auditor, "FHIR AuditEvent export").await? {
            return Ok(no_grant(&a.who.auditor, &r));
        }
        let source = mebyo_audit::fhir::Platform {
            name: "mebyo".into(),
            site: "Kanagawa Prefecture My ME-BYO Karte".into(),
            address: "localhost".into(),
        };
        let mut w = mebyo_audit::fhir::NdjsonWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&a.out)?,
        ));
        let head = p.head().count;
        let mut from = 0;
        let mut n = 0u64;
        while from < head {
            let page = p.store().read_all(from, 4096).await?;
            from += page.len() as u64;
            for env in page.iter().filter(|e| e.event_type == "access.recorded") {
                if let codec::Decoded::Event(e) = codec::decode::<AccessEvent>(env, p.keys())? {
                    let id = format!("mebyo-{}", env.position);
                    let r = mebyo_audit::fhir::access_audit_event(
                        &e,
                        &id,
                        mebyo_audit::fhir::Interaction::Read,
                        &source,
                    )?;
                    w.write(&r)?;
                    n += 1;
                }
            }
        }
        w.finish()?.flush()?;
        println!("{n} AuditEvent resources written to {}", a.out.display());
        Ok(ExitCode::SUCCESS)
    })
}
