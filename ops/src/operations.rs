//! `mebyo ops`: being built (issue 7).

#[derive(clap::Subcommand)]
pub enum Command {}

pub fn run(c: Command) -> anyhow::Result<std::process::ExitCode> {
    match c {}
}
