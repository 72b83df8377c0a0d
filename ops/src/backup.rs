//! `mebyo backup`: run a backup now, restore, drill, rotate the epoch key, list,
//! and show what the schedule says (issue 7 §1, P4.10, P4.9). The logic lives in
//! mebyo-backup; this wires in the real clock, randomness and files, and records
//! every job in the ledger.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mebyo_backup::jobs::{self, Recorded};
use mebyo_backup::{
    BackupError, BackupOptions, BackupSchedule, DataPaths, Kind, Manifest, RestoreRequest,
    StartedBy,
};
use mebyo_store::{Clock, EmbeddedStore, OpenOptions, SystemClock, embedded::OpenError};

use crate::client::{ServerArgs, Where, where_to};
use crate::paths::SERVER_HINT;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Take a full or differential backup now and record it in the ledger.
    ///
    /// With --data it opens the ledger for writing to record the job, so it
    /// refuses while a server holds the ledger; then --server asks the server.
    Run(RunArgs),
    /// Restore a full backup and its latest differential into a new data directory.
    ///
    /// Exit 0: restored and verified. Exit 1: the backup is unusable (corrupt file,
    /// missing full, chain or head mismatch); nothing is written. Exit 2: usage.
    Restore(RestoreArgs),
    /// Restore the latest backup into a scratch directory, verify it against the
    /// live ledger, and record `backup.verified`.
    Drill(DrillArgs),
    /// After an erasure: new backup epoch key, fresh key-store backup, old epoch
    /// key destroyed, so no older backup can bring back an erased person's keys (P4.9).
    RotateEpoch(RotateArgs),
    /// List the backup sets in a backups directory.
    List(ListArgs),
    /// Show which backup the schedule says is due now, and any overdue flags.
    Status(StatusArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Full,
    Differential,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Data directory holding the ledger (and keys/), when no server runs it.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Backups directory (one sub-directory per backup set); with --data. A
    /// server writes to its own.
    #[arg(long, value_name = "BACKUPS_DIR", requires = "data")]
    pub to: Option<PathBuf>,
    /// Staff id of the operator starting the backup. Default: `$USER`; with a
    /// server, who signed in.
    #[arg(long, value_name = "OPERATOR")]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Plaintext bytes per encrypted chunk.
    #[arg(long, default_value_t = mebyo_backup::CHUNK_BYTES_DEFAULT, hide = true)]
    pub chunk_bytes: usize,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[arg(long, value_name = "BACKUPS_DIR")]
    pub from: PathBuf,
    /// A full or differential set id. Default: the latest full and its latest differential.
    #[arg(long, value_name = "ID")]
    pub set: Option<String>,
    /// The new data directory (must not exist, or be empty).
    #[arg(long, value_name = "NEWDATA")]
    pub to: PathBuf,
    /// Directory holding backup-log.key and backup.key: the live DATA/keys, or the
    /// offline copy kept with the KEK.
    #[arg(long, value_name = "DIR", env = "MEBYO_BACKUP_KEYS")]
    pub keys: PathBuf,
}

#[derive(clap::Args)]
pub struct DrillArgs {
    /// Data directory holding the ledger, when no server runs it.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data: Option<PathBuf>,
    /// Backups directory; with --data. A server drills from its own.
    #[arg(long, value_name = "BACKUPS_DIR", requires = "data")]
    pub from: Option<PathBuf>,
    #[arg(long, value_name = "OPERATOR")]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(clap::Args)]
pub struct RotateArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[arg(long, value_name = "BACKUPS_DIR")]
    pub to: PathBuf,
    #[arg(long, value_name = "OPERATOR")]
    pub by: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[arg(long, value_name = "BACKUPS_DIR")]
    pub from: PathBuf,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[arg(long, value_name = "BACKUPS_DIR")]
    pub to: PathBuf,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Run(a) => run_cmd(a),
        Command::Restore(a) => restore_cmd(a),
        Command::Drill(a) => drill_cmd(a),
        Command::RotateEpoch(a) => rotate_cmd(a),
        Command::List(a) => list_cmd(a),
        Command::Status(a) => status_cmd(a),
    }
}

fn operator(by: &Option<String>) -> anyhow::Result<StartedBy> {
    let id = match by {
        Some(b) => b.clone(),
        None => std::env::var("USER")
            .map(|u| u.to_lowercase())
            .map_err(|_| anyhow::anyhow!("say who starts this job with --by OPERATOR"))?,
    };
    StartedBy::operator(&id).context("--by (or $USER)")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Opens the ledger for writing, to record the job. A running server holds the
/// ledger's lock; say so plainly instead of a bare "locked", and, for the jobs
/// the server takes on request, how to ask it.
fn open_store(data: &Path, servable: bool) -> anyhow::Result<EmbeddedStore> {
    let ledger = DataPaths::new(data).ledger();
    match EmbeddedStore::open(&ledger, OpenOptions::default()) {
        Ok(o) => Ok(o.store),
        Err(OpenError::Locked(p)) => anyhow::bail!(
            "the ledger at {} is locked by another process, most likely a running `mebyo serve`: \
             the job could not be recorded, so it was not started. While the server runs, its \
             scheduler takes the backups; stop it first to run one by hand{}",
            p.display(),
            if servable {
                format!("\nhint: {SERVER_HINT}")
            } else {
                String::new()
            }
        ),
        Err(e) => Err(e).context("opening the ledger"),
    }
}

fn print_manifest(m: &Manifest, dest: &Path) {
    println!("backup {} completed ({})", m.backup_id, m.kind);
    if let Some(l) = &m.log {
        println!(
            "  events [{}, {})  bytes [{}, {})  head hash {}",
            l.from, l.to, l.byte_from, l.byte_to, l.head_hash
        );
        if let Some(b) = &l.base {
            println!(
                "  builds on full {} (head hash {})",
                b.backup_id, b.head_hash
            );
        }
    }
    for f in &m.files {
        println!(
            "  file {:<16} {:>10} bytes  {} chunks  key {}  blake3 {}",
            f.name, f.bytes, f.chunks, f.key_id, f.blake3
        );
    }
    if m.file(mebyo_backup::manifest::Role::Keystore).is_none() && m.log.is_some() {
        println!("  (no key store in this data directory: only the log was backed up)");
    }
    println!(
        "  manifest {}",
        dest.join(&m.backup_id).join("manifest.json").display()
    );
}

fn report_event<T>(r: &Recorded<T>, what: &str) {
    match &r.event_position {
        Ok(p) => println!("recorded {what} at ledger position {p}"),
        Err(e) => eprintln!("warning: the job could not be recorded in the ledger: {e}"),
    }
}

fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let kind = match a.kind {
        KindArg::Full => Kind::Full,
        KindArg::Differential => Kind::Differential,
    };
    let data = match where_to(a.data.as_deref(), &a.server, a.by.as_deref())? {
        Where::Data(d) => d.to_path_buf(),
        Where::Server(r) => {
            let input = mebyo_web::ops_api::BackupInput {
                kind: kind.to_string(),
            };
            let print = |rec: &mebyo_web::ops_api::Recorded| {
                for id in &rec.made {
                    println!("backup {id} completed ({kind})");
                }
            };
            return runtime()?.block_on(r.command("/api/v1/ops/backups", Some(&input), print));
        }
    };
    let to =
        a.to.clone()
            .context("say where the backups go with --to BACKUPS_DIR")?;
    let by = operator(&a.by)?;
    let opts = BackupOptions {
        chunk_bytes: a.chunk_bytes,
    };
    let store = open_store(&data, true)?;
    let keys = DataPaths::new(&data).keys();
    let ensured = mebyo_backup::ensure_backup_keys(&keys, &mut rand::rng())?;
    if !ensured.created.is_empty() {
        let names: Vec<String> = ensured
            .created
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "created backup keys {} (log key id {}, epoch key id {}): copy them offline with the KEK; restore cannot work without them",
            names.join(", "),
            ensured.log_key_id,
            ensured.epoch_key_id
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let r = runtime()?.block_on(jobs::run_backup(
        &store,
        data,
        to.clone(),
        kind,
        by,
        clock,
        opts,
    ));
    match &r.result {
        Ok(m) => {
            print_manifest(m, &to);
            report_event(&r, "backup.completed");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report_event(&r, "backup.failed");
            Err(anyhow::anyhow!("backup failed: {e}"))
        }
    }
}

/// Unusable backups exit 1 (like a broken ledger in `audit verify`); anything
/// else (usage, IO) is an error, exit 2.
fn refused(e: &BackupError) -> bool {
    matches!(
        e,
        BackupError::Corrupt { .. }
            | BackupError::Manifest { .. }
            | BackupError::MissingBase { .. }
            | BackupError::NoFullBackup { .. }
            | BackupError::Verify { .. }
            | BackupError::HeadMismatch { .. }
            | BackupError::NoReadableKeystore { .. }
            | BackupError::WrongKey { .. }
    )
}

fn restore_cmd(a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let req = RestoreRequest {
        from: a.from.clone(),
        set: a.set.clone(),
        to: a.to.clone(),
        keys_dir: a.keys.clone(),
    };
    match mebyo_backup::restore(&req) {
        Ok(r) => {
            match &r.differential {
                Some(d) => println!("restored full {} + differential {d}", r.full),
                None => println!("restored full {}", r.full),
            }
            println!(
                "into {}: {} events, head hash {} (chain verified, head matches the manifest)",
                a.to.display(),
                r.events,
                r.head_hash
            );
            match &r.keystore {
                Some(k) => println!(
                    "key store from {} (epoch key {}{}); {} older key-store backups are under destroyed epoch keys and were skipped",
                    k.set,
                    k.epoch_key_id,
                    if k.vault { ", identity vault too" } else { "" },
                    k.older_epochs_skipped
                ),
                None => println!("key store: none restored"),
            }
            for n in &r.notes {
                println!("note: {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if refused(&e) => {
            eprintln!("REFUSED: {e}");
            eprintln!("nothing was written to {}", a.to.display());
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn drill_cmd(a: DrillArgs) -> anyhow::Result<ExitCode> {
    let data = match where_to(a.data.as_deref(), &a.server, a.by.as_deref())? {
        Where::Data(d) => d.to_path_buf(),
        Where::Server(r) => {
            let print = |_: &mebyo_web::ops_api::Recorded| {
                println!("drill passed: the latest backups restored to the live history")
            };
            let path = "/api/v1/ops/backups/drill";
            return runtime()?.block_on(r.command(path, None::<&()>, print));
        }
    };
    let from = a
        .from
        .clone()
        .context("say where the backups are with --from BACKUPS_DIR")?;
    let by = operator(&a.by)?;
    let store = open_store(&data, true)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let r = runtime()?.block_on(jobs::drill(&store, data, from, by, clock));
    match &r.result {
        Ok(d) => {
            println!(
                "drill passed: {}{} restored to {} events, head hash {}, equal to the live ledger's event at that position",
                d.restore.full,
                d.restore
                    .differential
                    .as_ref()
                    .map(|x| format!(" + {x}"))
                    .unwrap_or_default(),
                d.restore.events,
                d.restore.head_hash
            );
            report_event(&r, "backup.verified");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("DRILL FAILED: {e}");
            report_event(&r, "backup.failed");
            Ok(ExitCode::from(1))
        }
    }
}

fn rotate_cmd(a: RotateArgs) -> anyhow::Result<ExitCode> {
    let by = operator(&a.by)?;
    let store = open_store(&a.data, false)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let r = runtime()?.block_on(jobs::rotate_epoch(
        &store,
        a.data.clone(),
        a.to.clone(),
        by,
        clock,
        BackupOptions::default(),
    ));
    match &r.result {
        Ok(rot) => {
            println!(
                "backup epoch rotated: new epoch key {}, key-store backup {}",
                rot.new_epoch_key_id, rot.keystore_set.backup_id
            );
            match &rot.old_epoch_key_id {
                Some(old) => println!(
                    "old epoch key {old} destroyed (overwritten, fsynced, unlinked): destroy its offline copy too, and replace it with the new key"
                ),
                None => println!("there was no epoch key before"),
            }
            report_event(&r, "backup.epoch_rotated");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report_event(&r, "backup.failed");
            Err(anyhow::anyhow!("epoch rotation failed: {e}"))
        }
    }
}

fn list_cmd(a: ListArgs) -> anyhow::Result<ExitCode> {
    let l = mebyo_backup::manifest::list(&a.from)?;
    for m in &l.sets {
        let range = m
            .log
            .as_ref()
            .map(|r| format!("events [{}, {})", r.from, r.to))
            .unwrap_or_else(|| "key store only".into());
        println!(
            "{}  {:<12}  {}  {}  by {}",
            m.backup_id, m.kind, m.finished_at, range, m.started_by
        );
    }
    for p in &l.incomplete {
        println!(
            "{}  incomplete (no manifest: an interrupted run)",
            p.display()
        );
    }
    for (p, why) in &l.unreadable {
        println!("{}  unreadable: {why}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn status_cmd(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let s = BackupSchedule::default();
    let l = mebyo_backup::manifest::list(&a.to)?;
    let log = EmbeddedStore::log_path(&DataPaths::new(&a.data).ledger());
    let f = std::fs::File::open(&log).with_context(|| format!("opening {}", log.display()))?;
    let header = mebyo_store::log::FileHeader::read_from(&f)?;
    let (full, diff) = mebyo_backup::last_runs(&l, &hex::encode(header.ledger_id));
    let now = SystemClock.now_us();
    match s.due(now, full, diff) {
        Some(k) => println!("due now: {k}"),
        None => println!("nothing due"),
    }
    let flags = s.overdue(now, full, diff);
    for f in &flags {
        println!("OVERDUE: {f}");
    }
    Ok(if flags.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
