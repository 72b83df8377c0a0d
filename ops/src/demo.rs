use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (a ledger is created there if there is none).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// How many individuals to simulate.
    #[arg(long, default_value_t = 20)]
    pub people: u32,
    /// Seed for the simulation, so a demo can be replayed exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(_a: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("demo lands with the domain")
}
