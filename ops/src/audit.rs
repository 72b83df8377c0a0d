use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mebyo_store::verify::{self, Outcome};

use crate::paths::DataDir;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Recompute the whole chain from genesis, with no decryption key.
    ///
    /// Exit 0: intact (prints the event count and head hash). Exit 1: broken (prints
    /// the first bad position with expected and found hash). Exit 2: usage error or
    /// unreadable input.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Data directory holding the ledger.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Output format.
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
    }
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let path = mebyo_store::EmbeddedStore::log_path(&DataDir::new(&a.data).ledger());
    if !path.exists() {
        anyhow::bail!(
            "no ledger at {} (expected {})",
            a.data.display(),
            path.display()
        );
    }
    let started = Instant::now();
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
    let mut last_line = Instant::now();
    let mut progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        } else if last_line.elapsed().as_secs() >= 2 {
            eprintln!("verifying: {done} of {total} bytes");
            last_line = Instant::now();
        }
    };
    let outcome = verify::verify_file(
        &path,
        verify::Options {
            progress: &mut progress,
            person_related: None,
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    match outcome {
        Outcome::Intact(i) => {
            match a.format {
                Format::Text => {
                    println!(
                        "intact: {} events, head hash {}",
                        i.count,
                        hex::encode(i.head_hash)
                    );
                    if i.torn_tail_bytes > 0 {
                        println!(
                            "note: {} bytes of an interrupted, unacknowledged write follow the last event; the next open removes them",
                            i.torn_tail_bytes
                        );
                    }
                    eprintln!("verified in {secs:.3} s");
                }
                Format::Json => println!(
                    "{}",
                    serde_json::json!({
                        "status": "intact",
                        "events": i.count,
                        "head_hash": hex::encode(i.head_hash),
                        "ledger_id": hex::encode(i.ledger_id),
                        "torn_tail_bytes": i.torn_tail_bytes,
                        "seconds": secs,
                    })
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Broken(b) => {
            match a.format {
                Format::Text => {
                    println!(
                        "BROKEN at position {} (byte offset {}): {:?}: {}",
                        b.position, b.offset, b.kind, b.detail
                    );
                    if let (Some(e), Some(f)) = (b.expected, b.found) {
                        println!("expected hash: {}", hex::encode(e));
                        println!("found hash:    {}", hex::encode(f));
                    }
                    println!("{} events before it verified", b.verified);
                }
                Format::Json => println!(
                    "{}",
                    serde_json::json!({
                        "status": "broken",
                        "position": b.position,
                        "offset": b.offset,
                        "kind": format!("{:?}", b.kind),
                        "detail": b.detail,
                        "expected_hash": b.expected.map(hex::encode),
                        "found_hash": b.found.map(hex::encode),
                        "verified": b.verified,
                    })
                ),
            }
            Ok(ExitCode::from(1))
        }
    }
}
