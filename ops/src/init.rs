use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mebyo_store::EmbeddedStore;
use rand::RngCore;

use crate::paths::DataDir;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory to create the ledger in (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let dir = DataDir::new(&a.data);
    let ledger_id = create(&dir)?;
    println!("created an empty ledger in {}", a.data.display());
    println!("ledger id: {}", hex::encode(ledger_id));
    Ok(ExitCode::SUCCESS)
}

/// Creates the ledger; refuses a directory that already holds one.
pub fn create(dir: &DataDir) -> anyhow::Result<[u8; 16]> {
    if EmbeddedStore::exists(&dir.ledger()) {
        anyhow::bail!(
            "{} already holds a ledger; refusing to touch it (choose another --data)",
            dir.root.display()
        );
    }
    // The ledger id seeds the genesis hash, so it must be unpredictable and unique.
    let mut ledger_id = [0u8; 16];
    rand::rng().fill_bytes(&mut ledger_id);
    let now_us = mebyo_store::Clock::now_us(&mebyo_store::SystemClock);
    EmbeddedStore::create(&dir.ledger(), ledger_id, now_us).context("creating the ledger")?;
    Ok(ledger_id)
}
