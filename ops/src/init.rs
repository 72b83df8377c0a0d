use std::process::ExitCode;

use mebyo_platform::{Platform, Settings};

use crate::paths::{PlatformArgs, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Staff id of the business administrator, the system's head ex officio (P3.1(1)).
    #[arg(long, default_value = "ba-0001")]
    pub business_administrator: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        business_administrator: a.business_administrator.clone(),
        ..Settings::default()
    };
    let opts = a.platform.options()?;
    let report = runtime()?.block_on(Platform::init(&a.platform.data, settings, opts))?;
    println!("created a new platform in {}", a.platform.data.display());
    println!("ledger id:  {}", hex::encode(report.ledger_id));
    println!(
        "KEK id:     {} (keep the KEK file safe and offline: without it nothing decrypts)",
        report.kek_id
    );
    println!("layout:     ledger/ (event log)  keys/ (KEK, key store)  vault/ (identity data)");
    Ok(ExitCode::SUCCESS)
}
