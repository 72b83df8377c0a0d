use std::process::ExitCode;

use mebyo_domain::Actor;
use mebyo_platform::Platform;

use crate::paths::{PlatformArgs, runtime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rotate the key-encryption key: rewrap every data key under a new KEK,
    /// without touching a single event, and record that it happened (P4.8(1)).
    Rotate(RotateArgs),
}

#[derive(clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Staff id of the operator running the rotation (recorded in the event).
    #[arg(long, default_value = "ops")]
    pub by: String,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Rotate(a) => {
            if a.platform.kek_file.is_some() || a.platform.kek_env.is_some() {
                anyhow::bail!(
                    "rotation replaces DIR/keys/kek; rotate an external KEK with the tool that keeps it"
                );
            }
            let staff = mebyo_domain::StaffId::new(&a.by)?;
            let rt = runtime()?;
            let report = rt.block_on(async {
                let p = Platform::open(&a.platform.data, a.platform.options()?).await?;
                anyhow::Ok(p.rotate_kek(&Actor::Staff { staff }).await?)
            })?;
            println!(
                "rotated the KEK {} -> {}: {} data keys of {} owners rewrapped, no event changed",
                report.old_kek_id.to_hex(),
                report.new_kek_id.to_hex(),
                report.rewrapped_deks,
                report.persons
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
