//! `mebyo audit`: the auditor's tools. Everything but `checkpoint` is read-only
//! and needs no decryption key; an auditor runs them on a copy or a backup.
//!
//! Exit codes: 0 fine, 1 the ledger (or a proof) is bad, 2 usage error or
//! unreadable input.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mebyo_audit::checkpointing::Now;
use mebyo_audit::scan::ScanOptions;
use mebyo_audit::tlog::bundle::ProofBundle;
use mebyo_audit::tlog::note::MAX_NOTE_BYTES;
use mebyo_audit::tlog::{NoteVerifier, SigningPolicy, Verified, verify_bundle};
use mebyo_audit::{Checkpointing, ExternalCheckpoint, Report, VerifyOptions, keys, proofs};
use mebyo_store::{EmbeddedStore, EventStore, OpenOptions};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Verify the ledger offline, with no decryption key: the hash chain, the
    /// Merkle tree, every checkpoint in the ledger, and checkpoints kept elsewhere.
    ///
    /// Exit 0: intact (prints the event count, head hash and tree root). Exit 1:
    /// broken (prints the first bad position, its byte offset and what is wrong;
    /// a damaged file header too). Exit 2: usage error or unreadable input.
    ///
    /// The chain alone cannot tell a log cut back at a frame boundary, or one
    /// extended with correctly chained events, from the real one: unless a
    /// `--checkpoint` kept outside the log covers its end, the output says so.
    Verify(VerifyArgs),
    /// Sign a checkpoint of the ledger now and store it in the ledger.
    ///
    /// Opens the ledger for writing: fails if a server holds it. Verifies the
    /// whole ledger first and refuses (exit 1) to sign a broken one.
    Checkpoint(CheckpointArgs),
    /// Write a proof that the event at a position is in a signed checkpoint.
    ProveInclusion(ProveInclusionArgs),
    /// Write a proof that a signed checkpoint extends an older one.
    ProveConsistency(ProveConsistencyArgs),
    /// Check a proof file as a third party would: with the published verifier
    /// key only. Exit 0 valid, 1 invalid, 2 unreadable.
    CheckProof(CheckProofArgs),
    /// Print the checkpoint verifier key, to publish to auditors and witnesses.
    PublicKey(DataArgs),
    /// Grant an auditor decryption for a period (an event; by the business administrator).
    Grant(crate::audit_data::GrantArgs),
    /// The read models as they stood at a time or position (needs a key grant).
    Replay(crate::audit_data::ReplayArgs),
    /// Every access to one person's data, each with its inclusion proof (needs a key grant).
    Disclosures(crate::audit_data::DisclosuresArgs),
    /// Export the access history as FHIR AuditEvent resources, NDJSON (IHE BALP; needs a key grant).
    ExportFhir(crate::audit_data::ExportArgs),
}

#[derive(clap::Args)]
pub struct DataArgs {
    /// Data directory holding the ledger.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Data directory holding the ledger.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The published checkpoint verifier key. Default: DIR/keys/checkpoint.vkey
    /// (an auditor should pass the key they obtained independently).
    #[arg(long, value_name = "FILE")]
    pub vkey: Option<PathBuf>,
    /// A checkpoint saved earlier (by a witness or an auditor); the ledger must
    /// extend it. Detects truncation and rewritten (forked) history. Repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
    /// Also fail when events follow the newest checkpoint (an extension no one
    /// signed). Use on a copy that was checkpointed when it was taken.
    #[arg(long)]
    pub require_signed_head: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args)]
pub struct CheckpointArgs {
    /// Data directory holding the ledger.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Also write the signed checkpoint note to this file (keep it: it is what
    /// `verify --checkpoint` checks a later ledger against).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ProveInclusionArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Position of the event in the ledger.
    #[arg(long)]
    pub position: u64,
    /// Tree size of the checkpoint to prove against. Default: the newest.
    #[arg(long, value_name = "SIZE")]
    pub checkpoint_at: Option<u64>,
    /// Verifier key. Default: DIR/keys/checkpoint.vkey.
    #[arg(long, value_name = "FILE")]
    pub vkey: Option<PathBuf>,
    /// Where to write the JSON proof bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct ProveConsistencyArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Tree size of the older checkpoint.
    #[arg(long, value_name = "SIZE")]
    pub from: u64,
    /// Tree size of the newer checkpoint.
    #[arg(long, value_name = "SIZE")]
    pub to: u64,
    /// Verifier key. Default: DIR/keys/checkpoint.vkey.
    #[arg(long, value_name = "FILE")]
    pub vkey: Option<PathBuf>,
    /// Where to write the JSON proof bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct CheckProofArgs {
    /// The log's published verifier key.
    #[arg(long, value_name = "FILE")]
    pub vkey: PathBuf,
    /// The proof bundle (JSON).
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Verify(a) => verify_cmd(a),
        Command::Checkpoint(a) => checkpoint_cmd(a),
        Command::ProveInclusion(a) => prove_inclusion_cmd(a),
        Command::ProveConsistency(a) => prove_consistency_cmd(a),
        Command::CheckProof(a) => check_proof_cmd(a),
        Command::PublicKey(a) => public_key_cmd(a),
        Command::Grant(a) => crate::audit_data::grant(a),
        Command::Replay(a) => crate::audit_data::replay(a),
        Command::Disclosures(a) => crate::audit_data::disclosures(a),
        Command::ExportFhir(a) => crate::audit_data::export_fhir(a),
    }
}

fn ledger_dir(data: &Path) -> PathBuf {
    data.join("ledger")
}

fn log_path(data: &Path) -> anyhow::Result<PathBuf> {
    mebyo_platform::Platform::check_init_finished(data)?;
    let path = EmbeddedStore::log_path(&ledger_dir(data));
    if !path.exists() {
        anyhow::bail!(
            "no ledger at {} (expected {})",
            data.display(),
            path.display()
        );
    }
    Ok(path)
}

/// `--vkey` if given (must load), else the data directory's if present.
fn vkey_for(data: &Path, given: Option<&Path>) -> anyhow::Result<Option<NoteVerifier>> {
    match given {
        Some(p) => Ok(Some(keys::load_vkey(p)?)),
        None => match keys::load_vkey(&keys::vkey_path(data)) {
            Ok(v) => Ok(Some(v)),
            Err(keys::KeyError::NoVkey(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

fn read_note(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(MAX_NOTE_BYTES as u64 + 1)
                .read_to_string(&mut s)
                .map(|_| ())
        })
        .with_context(|| format!("reading checkpoint {}", path.display()))?;
    if s.len() > MAX_NOTE_BYTES {
        anyhow::bail!("{} is larger than a checkpoint can be", path.display());
    }
    Ok(s)
}

fn progress_reporter() -> (
    Option<indicatif::ProgressBar>,
    impl FnMut(u64, u64) + Send + 'static,
) {
    // A progress bar for people at a terminal; plain lines for logs and pipes.
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        b
    });
    let b2 = bar.clone();
    let mut last_line = Instant::now();
    let progress = move |done: u64, total: u64| {
        if let Some(b) = &b2 {
            b.set_length(total);
            b.set_position(done);
        } else if last_line.elapsed().as_secs() >= 2 {
            eprintln!("verifying: {done} of {total} bytes");
            last_line = Instant::now();
        }
    };
    (bar, progress)
}

fn run_verify(
    path: &Path,
    vkey: Option<NoteVerifier>,
    external: Vec<ExternalCheckpoint>,
    require_signed_head: bool,
) -> anyhow::Result<Report> {
    let (bar, mut progress) = progress_reporter();
    let report = mebyo_audit::verify_ledger(
        path,
        VerifyOptions {
            vkey,
            external,
            require_signed_head,
            progress: &mut progress,
            // No person-related event type may be stored in plaintext (P4.8(1)).
            person_related: Some(&mebyo_platform::codec::event_type_person_related),
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(report)
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let path = log_path(&a.data)?;
    let vkey = vkey_for(&a.data, a.vkey.as_deref())?;
    let external = a
        .checkpoints
        .iter()
        .map(|p| {
            Ok(ExternalCheckpoint {
                label: p.display().to_string(),
                note: read_note(p)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let r = run_verify(&path, vkey, external, a.require_signed_head)?;
    let secs = started.elapsed().as_secs_f64();
    let latest = r.checkpoints.last();
    let unvouched = unvouched_end(&r);
    match &r.problem {
        None => {
            match a.format {
                Format::Text => {
                    println!(
                        "intact: {} events, head hash {}",
                        r.events,
                        hex::encode(r.head_hash)
                    );
                    if let Some(why) = &unvouched {
                        println!("WARNING: {why}");
                    }
                    println!("tree root: {} (size {})", hex::encode(r.root()), r.events);
                    match latest {
                        Some(c) => println!(
                            "checkpoints: {} in the ledger, all signed and consistent; the newest (position {}) covers {} events",
                            r.checkpoints.len(),
                            c.position,
                            c.signed.checkpoint.size
                        ),
                        None => println!("checkpoints: none in the ledger"),
                    }
                    if !r.external.is_empty() {
                        println!(
                            "external checkpoints: the ledger extends all {} given",
                            r.external.len()
                        );
                    }
                    if let Some(first) = r.first_unsigned {
                        println!(
                            "unsigned tail: {} events from position {first} on are not covered by a checkpoint yet",
                            r.unsigned_tail
                        );
                    }
                    if r.torn_tail_bytes > 0 {
                        println!(
                            "note: {} bytes after the last event hold no event (zeros a running store writes ahead, or an interrupted, unacknowledged write); the next open removes them",
                            r.torn_tail_bytes
                        );
                    }
                    eprintln!("verified in {secs:.3} s");
                }
                Format::Json => println!(
                    "{}",
                    json!({
                        "status": "intact",
                        "events": r.events,
                        "head_hash": hex::encode(r.head_hash),
                        "ledger_id": hex::encode(r.ledger_id),
                        "torn_tail_bytes": r.torn_tail_bytes,
                        "tree_size": r.events,
                        "tree_root": hex::encode(r.root()),
                        "checkpoints": r.checkpoints.len(),
                        "latest_checkpoint": latest.map(|c| json!({
                            "position": c.position,
                            "size": c.signed.checkpoint.size,
                        })),
                        "external_checkpoints": r.external.len(),
                        "vouched_to": vouched_to(&r),
                        "end_vouched": unvouched.is_none(),
                        "unvouched_end": unvouched,
                        "unsigned_tail": r.unsigned_tail,
                        "first_unsigned": r.first_unsigned,
                        "seconds": secs,
                    })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(p) => {
            match a.format {
                Format::Text => {
                    match p.offset {
                        Some(o) => print!("BROKEN at position {} (byte offset {o})", p.position),
                        None => print!("BROKEN at position {}", p.position),
                    }
                    println!(": {}: {}", p.kind.name(), p.detail);
                    if let (Some(e), Some(f)) = (p.expected, p.found) {
                        println!("expected hash: {}", hex::encode(e));
                        println!("found hash:    {}", hex::encode(f));
                    }
                    println!("{} events before it verified", p.verified);
                }
                Format::Json => println!(
                    "{}",
                    json!({
                        "status": "broken",
                        "position": p.position,
                        "offset": p.offset,
                        "kind": p.kind.name(),
                        "detail": p.detail,
                        "expected_hash": p.expected.map(hex::encode),
                        "found_hash": p.found.map(hex::encode),
                        "verified": p.verified,
                    })
                ),
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// How many events checkpoints kept outside the log (`--checkpoint`) vouch for.
fn vouched_to(r: &Report) -> u64 {
    r.external.iter().map(|(_, c)| c.size).max().unwrap_or(0)
}

/// What the chain cannot tell (issue 19 §8): a log cut back at a frame boundary,
/// or extended with correctly chained events, is still a chain, and checkpoints
/// inside the log go with it. Only a checkpoint kept outside vouches for the end.
/// Checkpoint events after the newest outside one are not counted against it:
/// a checkpoint never covers itself, and it carries no record.
fn unvouched_end(r: &Report) -> Option<String> {
    let to = vouched_to(r);
    let n = r.events;
    let checkpoints_after = r.checkpoints.iter().filter(|c| c.position >= to).count() as u64;
    if !r.external.is_empty() && n.saturating_sub(to) <= checkpoints_after {
        return None;
    }
    let what = if r.external.is_empty() {
        "nothing outside the log vouches for its end".to_owned()
    } else {
        format!(
            "checkpoints kept outside the log vouch for the first {to} events only; nothing vouches for positions {to}..{n}"
        )
    };
    Some(format!(
        "{what}: a log cut back at a frame boundary (a restored older copy, lost writes), or extended with correctly chained forged events, verifies the same. \
         To check it, pass --checkpoint FILE with the newest checkpoint kept outside it (a witness's copy, or one saved earlier by `mebyo audit checkpoint --out`), \
         and --require-signed-head to refuse events no checkpoint signed"
    ))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn checkpoint_cmd(a: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let path = log_path(&a.data)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Opening takes the ledger's lock, so nothing appends while the tree is
        // rebuilt and the head signed.
        let opened = EmbeddedStore::open(&ledger_dir(&a.data), OpenOptions::default())
            .map_err(|e| match e {
                mebyo_store::embedded::OpenError::Locked(_) => anyhow::anyhow!(
                    "{e}: a running server holds the ledger and signs checkpoints itself; stop it, or let it checkpoint"
                ),
                e => anyhow::Error::new(e).context("opening the ledger"),
            })?;
        let store: Arc<dyn EventStore> = Arc::new(opened.store);
        let (signer, vkey) = keys::ensure_checkpoint_key(&a.data)?;
        let verifier = NoteVerifier::from_vkey(&vkey)?;
        let r = run_verify(&path, Some(verifier), Vec::new(), false)?;
        if let Some(p) = &r.problem {
            println!("REFUSED: the ledger is broken, so it will not be signed: {p}");
            return Ok(ExitCode::from(1));
        }
        let head = store.head().count;
        if r.events != head || r.tree.size() != head {
            anyhow::bail!(
                "the ledger changed while it was read ({} verified, {head} in the store)",
                r.events
            );
        }
        let mut c = Checkpointing::from_scan(
            store,
            signer,
            SigningPolicy {
                every_leaves: 0,
                every_secs: 0,
            },
            r.tree,
            &r.checkpoints,
        )
        .publish_to(mebyo_audit::published_path(&a.data));
        let (note, what) = match c.checkpoint_now(now_secs()).await? {
            Now::Signed(s) => (
                s.signed.note,
                format!(
                    "signed a checkpoint of {} events, stored at position {}",
                    s.signed.checkpoint.size, s.position
                ),
            ),
            Now::UpToDate(s) => (
                s.note,
                format!(
                    "nothing new since the newest checkpoint ({} events); here it is",
                    s.checkpoint.size
                ),
            ),
        };
        if let Some(out) = &a.out {
            std::fs::write(out, &note).with_context(|| format!("writing {}", out.display()))?;
        }
        eprintln!("{what}");
        print!("{note}");
        Ok(ExitCode::SUCCESS)
    })
}

fn required_vkey(data: &Path, given: Option<&Path>) -> anyhow::Result<NoteVerifier> {
    vkey_for(data, given)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no verifier key at {} (pass --vkey)",
            keys::vkey_path(data).display()
        )
    })
}

fn write_bundle(out: &Path, bundle: &ProofBundle, vkey: &NoteVerifier) -> anyhow::Result<()> {
    // Check the bundle as its reader will before handing it out.
    verify_bundle(bundle, vkey).context("the proof just built does not verify")?;
    bundle
        .write_file(out)
        .with_context(|| format!("writing {}", out.display()))
}

fn prove_inclusion_cmd(a: ProveInclusionArgs) -> anyhow::Result<ExitCode> {
    let path = log_path(&a.data)?;
    let vkey = required_vkey(&a.data, a.vkey.as_deref())?;
    let started = Instant::now();
    let scan = mebyo_audit::scan_tree(
        &path,
        ScanOptions {
            vkey: Some(&vkey),
            capture: Some(a.position),
            chain: false,
            person_related: None,
        },
    )?;
    let b = proofs::inclusion(&scan, a.position, a.checkpoint_at)?;
    let (size, proof_len) = (b.tree_size, b.proof.len());
    write_bundle(&a.out, &ProofBundle::Inclusion(b), &vkey)?;
    println!(
        "wrote {}: event {} is in the signed tree of {size} events ({proof_len} hashes)",
        a.out.display(),
        a.position
    );
    eprintln!("built in {:.3} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn prove_consistency_cmd(a: ProveConsistencyArgs) -> anyhow::Result<ExitCode> {
    let path = log_path(&a.data)?;
    let vkey = required_vkey(&a.data, a.vkey.as_deref())?;
    let started = Instant::now();
    let scan = mebyo_audit::scan_tree(
        &path,
        ScanOptions {
            vkey: Some(&vkey),
            capture: None,
            chain: false,
            person_related: None,
        },
    )?;
    let b = proofs::consistency(&scan, a.from, a.to)?;
    let proof_len = b.proof.len();
    write_bundle(&a.out, &ProofBundle::Consistency(b), &vkey)?;
    println!(
        "wrote {}: the signed tree of {} events extends the one of {} ({proof_len} hashes)",
        a.out.display(),
        a.to,
        a.from
    );
    eprintln!("built in {:.3} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn check_proof_cmd(a: CheckProofArgs) -> anyhow::Result<ExitCode> {
    let vkey = keys::load_vkey(&a.vkey)?;
    let invalid = |why: String, format: Format| {
        match format {
            Format::Text => println!("INVALID: {why}"),
            Format::Json => println!("{}", json!({"status": "invalid", "reason": why})),
        }
        Ok(ExitCode::from(1))
    };
    // An unreadable file is exit 2; a readable one that does not parse is an
    // invalid proof (exit 1): a flipped byte must never be reported as usage.
    let text = {
        use std::io::Read;
        let mut buf = Vec::new();
        std::fs::File::open(&a.proof)
            .and_then(|f| {
                f.take(mebyo_audit::tlog::bundle::MAX_BUNDLE_BYTES as u64 + 1)
                    .read_to_end(&mut buf)
            })
            .with_context(|| format!("reading {}", a.proof.display()))?;
        buf
    };
    let Ok(text) = String::from_utf8(text) else {
        return invalid("the proof is not UTF-8 text".into(), a.format);
    };
    let bundle = match ProofBundle::from_json(&text) {
        Ok(b) => b,
        Err(e) => return invalid(e.to_string(), a.format),
    };
    match verify_bundle(&bundle, &vkey) {
        Err(e) => invalid(e.to_string(), a.format),
        Ok(Verified::Inclusion(v)) => {
            match a.format {
                Format::Text => println!(
                    "valid: event {} (hash {}) is in the tree of {} events signed by {}",
                    v.leaf_index,
                    hex::encode(v.event_hash),
                    v.checkpoint.size,
                    v.checkpoint.origin
                ),
                Format::Json => println!(
                    "{}",
                    json!({
                        "status": "valid",
                        "kind": "inclusion",
                        "position": v.leaf_index,
                        "event_hash": hex::encode(v.event_hash),
                        "tree_size": v.checkpoint.size,
                        "origin": v.checkpoint.origin,
                    })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Verified::Consistency(v)) => {
            match a.format {
                Format::Text => println!(
                    "valid: the tree of {} events extends the tree of {} events, both signed by {}",
                    v.new.size, v.old.size, v.new.origin
                ),
                Format::Json => println!(
                    "{}",
                    json!({
                        "status": "valid",
                        "kind": "consistency",
                        "from": v.old.size,
                        "to": v.new.size,
                        "origin": v.new.origin,
                    })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn public_key_cmd(a: DataArgs) -> anyhow::Result<ExitCode> {
    let v = keys::load_vkey(&keys::vkey_path(&a.data))?;
    println!("{}", v.to_vkey());
    Ok(ExitCode::SUCCESS)
}
