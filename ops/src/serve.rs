//! `mebyo serve`: being built (issue 6).
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (created and initialised if missing).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

pub fn run(_a: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("serve is being built")
}
