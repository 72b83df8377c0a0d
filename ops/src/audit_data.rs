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
use mebyo_domain::staff::Role;
use mebyo_domain::{AccessEvent, StaffId, Timestamp};
use mebyo_platform::codec;
use mebyo_platform::{Options, Platform};
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use mebyo_store::{Actor, EventStore, ExpectedRevision, NewEvent};
use serde::{Deserialize, Serialize};

/// Grants live in their own stream; uses of a grant in another.
pub const GRANTS_STREAM: &str = "audit-grants";
pub const USES_STREAM: &str = "audit-key-uses";

#[derive(clap::Args)]
pub struct GrantArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Staff id of the auditor (must hold the Auditor role).
    #[arg(long)]
    pub auditor: String,
    /// Staff id of the business administrator granting it.
    #[arg(long)]
    pub by: String,
    /// How many days the grant lasts.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub auditor: String,
    pub by: String,
    pub scope: String,
    pub from_us: i64,
    pub until_us: i64,
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
/// for a period. Refused unless `by` is the business administrator with current
/// training (P3.4) and `auditor` holds the Auditor role.
pub fn grant(a: GrantArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let p = open(&a.data).await?;
        let now = p.now();
        let by = p.staff_state(&StaffId::new(&a.by)?).await?;
        let auditor = p.staff_state(&StaffId::new(&a.auditor)?).await?;
        let refusal =
            if !by.roles.contains(&Role::BusinessAdministrator) || !by.training_current(now) {
                Some((
                    "P3.4",
                    format!(
                        "{} is not the business administrator with current privacy training",
                        a.by
                    ),
                ))
            } else if !auditor.roles.contains(&Role::Auditor) {
                Some((
                    "P4.6(2)",
                    format!("{} does not hold the Auditor role", a.auditor),
                ))
            } else {
                None
            };
        if let Some((clause, why)) = refusal {
            // A refused attempt is evidence too: it is recorded before the answer.
            let body = serde_json::json!({
                "auditor": a.auditor, "by": a.by, "days": a.days,
                "clause": clause, "reason": why, "at_us": now.0,
            });
            record(&p, GRANTS_STREAM, GRANT_REFUSED, &a.by, &body).await?;
            eprintln!("refused ({clause}): {why} (the refusal is recorded in {GRANTS_STREAM})");
            return Ok(ExitCode::from(1));
        }
        let g = Grant {
            auditor: a.auditor.clone(),
            by: a.by.clone(),
            scope: "decrypt".into(),
            from_us: now.0,
            until_us: now.0 + mebyo_domain::Duration::days(a.days).0,
        };
        let id = p.with_rng(rand::Rng::random::<[u8; 16]>);
        p.store()
            .append(
                GRANTS_STREAM,
                ExpectedRevision::Any,
                vec![NewEvent::plain(
                    GRANTED,
                    Actor::new("staff", &a.by),
                    id,
                    serde_json::to_vec(&g)?,
                )],
            )
            .await?;
        println!(
            "granted {} decryption for {} days (recorded in {GRANTS_STREAM})",
            a.auditor, a.days
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Event types of the grant and its uses, granted or refused.
pub const GRANTED: &str = "audit.key_granted";
pub const GRANT_REFUSED: &str = "audit.grant_refused";
pub const USED: &str = "audit.key_used";
pub const USE_REFUSED: &str = "audit.key_use_refused";

/// Appends one plaintext operational event by staff member `staff` (a
/// pseudonymous id, checked by the store's alphabet) and waits until it is durable.
async fn record(
    p: &Platform,
    stream: &str,
    event_type: &str,
    staff: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let id = p.with_rng(rand::Rng::random::<[u8; 16]>);
    p.store()
        .append(
            stream,
            ExpectedRevision::Any,
            vec![NewEvent::plain(
                event_type,
                Actor::new("staff", staff),
                id,
                serde_json::to_vec(body)?,
            )],
        )
        .await?;
    Ok(())
}

/// Checks the auditor holds a current grant, and records this use of it; a use
/// refused for want of one is recorded too (P4.6(2)), before the refusal is told.
async fn use_grant(p: &Platform, auditor: &str, purpose: &str) -> anyhow::Result<bool> {
    StaffId::new(auditor)?;
    let now = p.now().0;
    let grants = p.store().read_stream(GRANTS_STREAM, 0, 100_000).await?;
    let current = grants
        .iter()
        .filter(|e| e.event_type == GRANTED)
        .filter_map(|e| serde_json::from_slice::<Grant>(&e.payload).ok())
        .any(|g| g.auditor == auditor && g.from_us <= now && now < g.until_us);
    let (event_type, body) = if current {
        (
            USED,
            serde_json::json!({ "auditor": auditor, "purpose": purpose, "at_us": now }),
        )
    } else {
        let body = serde_json::json!({
            "auditor": auditor, "purpose": purpose, "at_us": now,
            "clause": "P4.6(2)", "reason": "no current auditor key grant",
        });
        (USE_REFUSED, body)
    };
    record(p, USES_STREAM, event_type, auditor, &body).await?;
    Ok(current)
}

fn no_grant(auditor: &str) -> ExitCode {
    eprintln!(
        "refused (P4.6(2)): {auditor} holds no current auditor key grant; decrypting needs one (`mebyo audit grant`). Verification needs none: `mebyo audit verify`. The refused attempt is recorded in {USES_STREAM}"
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
        if !use_grant(&p, &a.who.auditor, &format!("replay as of {}", a.as_of)).await? {
            return Ok(no_grant(&a.who.auditor));
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
        if !use_grant(&p, &a.who.auditor, &format!("disclosures of {person}")).await? {
            return Ok(no_grant(&a.who.auditor));
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
        if !use_grant(&p, &a.who.auditor, "FHIR AuditEvent export").await? {
            return Ok(no_grant(&a.who.auditor));
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
