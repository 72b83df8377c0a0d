//! `mebyo`: the thin binary over the library crates. Each subcommand parses its
//! arguments, wires real IO (clock, randomness, files) into the libraries, and
//! maps outcomes to exit codes. No policy logic lives here.

use std::process::ExitCode;

// Under load the platform allocates and frees many small objects on two worker
// threads and the ledger's writer and syncer; glibc's malloc and free were ~15 %
// of a bus request's CPU. Measured A/B in BENCHMARKS.md.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

mod audit;
mod audit_data;
mod backup;
mod client;
mod debug;
mod demo;
mod erase;
mod init;
mod keys;
mod login;
mod operations;
mod ops_routine;
mod paths;
mod providers;
mod serve;
mod serve_ops;
mod store;

/// mebyo: personal health records for My ME-BYO Karte, event-sourced and audit-first.
#[derive(Parser)]
#[command(name = "mebyo", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new, empty ledger in a data directory.
    Init(init::Args),
    /// Fill a ledger with realistic activity so a newcomer sees the platform work.
    Demo(demo::Args),
    /// Auditors' tools: verify the chain offline, with no decryption key.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Backups: run one now, restore, drill (P4.10).
    #[command(subcommand)]
    Backup(backup::Command),
    /// Run the platform: HTTPS portal, dashboard and API, the provider bus, the scheduler.
    Serve(serve::Args),
    /// Sign in to a running server as staff, once, for the commands given --server.
    Login(login::LoginArgs),
    /// Sign out of the server and remove the session file.
    Logout(login::LogoutArgs),
    /// Operations: incidents, maintenance windows, media, disposal, reviews (P4.3, P4.4, P4.7, P4.9, P4.14).
    #[command(subcommand)]
    Ops(operations::Command),
    /// Key management: rotate the key-encryption key (P4.8(1)).
    #[command(subcommand)]
    Keys(keys::Command),
    /// Providers on the bus: list their credentials, register their signing keys (P4.12(1)).
    #[command(subcommand)]
    Providers(providers::Command),
    /// Cryptographically erase a withdrawn person's data, with a witness (P4.9).
    Erase(erase::Args),
    /// The ledger itself: accept a loss the start refused (issue 19 §3).
    #[command(subcommand)]
    Store(store::Command),
    /// Developer tools used by the test suite (not for operators).
    #[command(subcommand, hide = true)]
    Debug(debug::Command),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(a) => init::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Audit(c) => audit::run(c),
        Command::Backup(c) => backup::run(c),
        Command::Serve(a) => serve::run(a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Ops(c) => operations::run(c),
        Command::Keys(c) => keys::run(c),
        Command::Providers(c) => providers::run(c),
        Command::Erase(a) => erase::run(a),
        Command::Store(c) => store::run(c),
        Command::Debug(c) => debug::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2: the request could not be carried out (usage, unreadable input);
            // distinct from 1, which audit uses for "the ledger is broken".
            ExitCode::from(2)
        }
    }
}

/// JSON logs on stderr, filtered by `MEBYO_LOG` (default: warnings). Logs carry
/// pseudonymous ids only (principle 3).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEBYO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
