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
use mebyo_domain::audit_grant::{self, KeyGrant};
use mebyo_domain::{AccessEvent, Refusal, StaffId, Timestamp};
use mebyo_platform::codec;
use mebyo_platform::{Options, Platform};
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use mebyo_store::{Actor, EventStore, ExpectedRevision, NewEvent, RecordedEvent};
use serde::Serialize;

/// Grants live in their own stream; uses of a grant in another.
pub const GRANTS_STREAM: &str = audit_grant::STREAM;
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
/// for a period. The domain decides (`mebyo_domain::audit_grant::decide`: only the
/// business administrator with current training, only to a current auditor, 1 to
/// 365 days); this records its answer, a refusal too.
pub fn grant(a: GrantArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let p = open(&a.data).await?;
        let cmd = audit_grant::Grant {
            auditor: StaffId::new(&a.auditor)?,
            by: StaffId::new(&a.by)?,
            days: a.days,
            at: p.now(),
        };
        let by = p.staff_state(&cmd.by).await?;
        let auditor = p.staff_state(&cmd.auditor).await?;
        // Appended at the revision read, so two grants never pass each other unseen.
        let expected = revision(&read_whole(&p, GRANTS_STREAM).await?);
        let g = match audit_grant::decide(&by, &auditor, &cmd) {
            Ok(g) => g,
            Err(r) => {
                // A refused attempt is evidence too: it is recorded before the answer.
                let body = serde_json::json!({
                    "auditor": a.auditor, "by": a.by, "days": a.days, "at_us": cmd.at.0,
                    "clause": r.clause, "code": r.code, "reason": r.message,
                });
                record(&p, GRANTS_STREAM, expected, GRANT_REFUSED, &a.by, &body).await?;
                eprintln!("{r} (the refusal is recorded in {GRANTS_STREAM})");
                return Ok(ExitCode::from(1));
            }
        };
        let body = serde_json::to_value(&g)?;
        record(&p, GRANTS_STREAM, expected, GRANTED, &a.by, &body).await?;
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
    expected: ExpectedRevision,
    event_type: &str,
    staff: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let id = p.with_rng(rand::Rng::random::<[u8; 16]>);
    p.store()
        .append(
            stream,
            expected,
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

/// Every event of one stream, in order.
async fn read_whole(p: &Platform, stream: &str) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = all.last().map_or(0, |e| e.stream_revision + 1);
        let page = p.store().read_stream(stream, from, 4096).await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// The revision a stream read as `events` must still be at.
fn revision(events: &[RecordedEvent]) -> ExpectedRevision {
    events.last().map_or(ExpectedRevision::NoStream, |e| {
        ExpectedRevision::Exact(e.stream_revision)
    })
}

/// Whether `user` may decrypt now: every grant in the ledger naming them is
/// checked by the domain (`audit_grant::honoured`) against its grantor as they
/// stood where it was recorded and against `user` now, so one appended by
/// anything but `mebyo audit grant` is not honoured for being there.
async fn verdict(
    p: &Platform,
    user: &StaffId,
    now: Timestamp,
) -> anyhow::Result<Result<(), Refusal>> {
    let grantee = p.staff_state(user).await?;
    let mut verdicts = Vec::new();
    for env in read_whole(p, GRANTS_STREAM).await? {
        if env.event_type != GRANTED {
            continue;
        }
        // A payload that does not parse names nobody and grants nothing.
        let Ok(g) = serde_json::from_slice::<KeyGrant>(&env.payload) else {
            continue;
        };
        if g.auditor != *user {
            continue;
        }
        let grantor = p.staff_state_before(&g.by, env.position).await?;
        let given_at = Timestamp(env.recorded_at_us);
        verdicts.push(audit_grant::honoured(
            &g, given_at, &grantor, &grantee, user, now,
        ));
    }
    Ok(audit_grant::first_honoured(verdicts))
}

/// Checks the auditor holds a grant honoured now, and records this use of it; a
/// use refused is recorded too, with the clause and reason, before the refusal is
/// told (P4.6(2)).
async fn use_grant(
    p: &Platform,
    auditor: &str,
    purpose: &str,
) -> anyhow::Result<Result<(), Refusal>> {
    let user = StaffId::new(auditor)?;
    let now = p.now();
    let verdict = verdict(p, &user, now).await?;
    let (event_type, body) = match &verdict {
        Ok(()) => (
            USED,
            serde_json::json!({ "auditor": auditor, "purpose": purpose, "at_us": now.0 }),
        ),
        Err(r) => (
            USE_REFUSED,
            serde_json::json!({
                "auditor": auditor, "purpose": purpose, "at_us": now.0,
                "clause": r.clause, "code": r.code, "reason": r.message,
            }),
        ),
    };
    // Uses are evidence, never contended: any revision.
    record(
        p,
        USES_STREAM,
        ExpectedRevision::Any,
        event_type,
        auditor,
        &body,
    )
    .await?;
    Ok(verdict)
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
