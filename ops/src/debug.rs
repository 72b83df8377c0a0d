//! Tools for the test suite: a load generator that the crash test kills.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mebyo_store::{
    Actor, EmbeddedStore, EventStore, ExpectedRevision, NewEvent, OpenOptions, PayloadKind,
};
use rand::{RngCore, SeedableRng};

use crate::paths::DataDir;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Append forever with concurrent appenders; print one `ack` line per durable
    /// append. The crash test kills this process with SIGKILL.
    Load(LoadArgs),
}

#[derive(clap::Args)]
pub struct LoadArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub appenders: usize,
    /// Events per append are drawn from 1..=this.
    #[arg(long, default_value_t = 4)]
    pub events_max: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after this many appends per appender (0: never).
    #[arg(long, default_value_t = 0)]
    pub appends: u64,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Load(a) => load(a),
    }
}

fn load(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let opened = EmbeddedStore::open(&DataDir::new(&a.data).ledger(), OpenOptions::default())?;
        println!(
            "open {} {}",
            opened.store.head().count,
            opened.torn_tail_bytes
        );
        let store = Arc::new(opened.store);
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..a.appenders {
            let store = store.clone();
            let out = out.clone();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ ((t as u64) << 32));
            let events_max = a.events_max.max(1);
            tasks.push(tokio::spawn(async move {
                let stream = format!("load-{t}");
                let mut n = 0u64;
                while a.appends == 0 || n < a.appends {
                    let k = 1 + (rng.next_u32() as usize % events_max);
                    let evs = (0..k)
                        .map(|_| {
                            let mut id = [0u8; 16];
                            rng.fill_bytes(&mut id);
                            let mut payload = vec![0u8; 200 + (rng.next_u32() % 200) as usize];
                            rng.fill_bytes(&mut payload);
                            NewEvent {
                                event_type: "load.tested".into(),
                                schema_version: 1,
                                actor: Actor::system(),
                                event_id: id,
                                correlation_id: id,
                                causation_id: id,
                                payload_kind: PayloadKind::Plain,
                                key_ref: String::new(),
                                payload,
                                seal: false,
                            }
                        })
                        .collect();
                    let o = store.append(&stream, ExpectedRevision::Any, evs).await?;
                    let line = format!(
                        "ack {stream} {} {} {}\n",
                        o.first_position + k as u64 - 1,
                        o.last_revision,
                        hex::encode(o.last_hash)
                    );
                    // One write per line so a kill never leaves half a line counted.
                    let mut w = out.lock().unwrap();
                    w.write_all(line.as_bytes())?;
                    w.flush()?;
                    n += 1;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
