use std::process::ExitCode;

use anyhow::Context;
use mebyo_domain::{PersonId, StaffId};

use crate::paths::{StaffTarget, Via, open_or_hint, runtime};

/// Cryptographic erase of a withdrawn person's data (P4.9): their data keys are
/// destroyed, which NIST SP 800-88 counts as a Purge; the witness is recorded.
/// On a running server (`--server`) the signed-in staff member is the witness.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: StaffTarget,
    /// Pseudonymous id of the person (they must have withdrawn).
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// Staff id of the system operations administrator who witnesses the erasure
    /// (P4.9(3)). Needed with --data; with a server the sign-in says who, and
    /// --witness, if given, must be the same.
    #[arg(long, value_name = "STAFF")]
    pub witness: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // Checked before anything is sent or opened: bad input changes nothing.
    let person = PersonId::new(&a.person).context("--person is not a person id")?;
    let platform = match a.target.via(a.witness.as_deref())? {
        Via::Server(r) => {
            let path = format!(
                "/api/v1/ops/persons/{}/erasure",
                crate::client::segment(&a.person)
            );
            let print = |e: &mebyo_web::ops_keys::Erased| {
                print_erased(&a.person, e.destroyed_keys, &r.session.staff);
                println!("key store digest after the erase: {}", e.keystore_digest);
            };
            return runtime()?.block_on(r.command_as(&path, None::<&()>, print));
        }
        Via::Local(p) => p,
    };
    let witness = a
        .witness
        .as_deref()
        .context("say who witnesses with --witness STAFF (needed with --data)")?;
    let witness = StaffId::new(witness).context("--witness is not a staff id")?;
    let outcome = runtime()?.block_on(async {
        let p = open_or_hint(&platform).await?;
        anyhow::Ok(p.erase(&person, &witness).await?)
    })?;
    match outcome {
        Ok(receipt) => {
            print_erased(&a.person, receipt.destroyed.len(), witness.as_str());
            println!("key store digest after the erase: {}", receipt.store_digest);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            eprintln!("refused: {refusal}");
            Ok(ExitCode::from(1))
        }
    }
}

fn print_erased(person: &str, destroyed_keys: usize, witness: &str) {
    println!("erased {person}: destroyed {destroyed_keys} data keys, witnessed by {witness}");
}
