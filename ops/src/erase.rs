use std::process::ExitCode;

use mebyo_domain::{PersonId, StaffId};
use mebyo_platform::Platform;

use crate::paths::{PlatformArgs, runtime};

/// Cryptographic erase of a withdrawn person's data (P4.9): their data keys are
/// destroyed, which NIST SP 800-88 counts as a Purge; the witness is recorded.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Pseudonymous id of the person (they must have withdrawn).
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// Staff id of the system operations administrator who witnesses the erasure (P4.9(3)).
    #[arg(long, value_name = "STAFF")]
    pub witness: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let person = PersonId::new(&a.person)?;
    let witness = StaffId::new(&a.witness)?;
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let p = Platform::open(&a.platform.data, a.platform.options()?).await?;
        anyhow::Ok(p.erase(&person, &witness).await?)
    })?;
    match outcome {
        Ok(receipt) => {
            println!(
                "erased {}: destroyed {} data keys, witnessed by {}",
                a.person,
                receipt.destroyed.len(),
                a.witness
            );
            println!("key store digest after the erase: {}", receipt.store_digest);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            eprintln!("refused: {refusal}");
            Ok(ExitCode::from(1))
        }
    }
}
