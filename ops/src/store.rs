//! `mebyo store`: operator decisions about the ledger itself.

use std::process::ExitCode;

use mebyo_domain::StaffId;
use mebyo_platform::Platform;
use mebyo_platform::loss::{AcceptLoss, LOSS_STREAM};

use crate::paths::{PlatformArgs, runtime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Accept that the log lost its end, after the start refused it (issue 19 §3).
    ///
    /// A start refuses a log that ends before what the clean-close record, the
    /// read models' snapshot or the last signed checkpoint say was written, and
    /// names every position. Restore the missing events from a backup if you
    /// can; otherwise this records your decision as a `ledger.loss_accepted`
    /// event, then removes the stale snapshot and sets the published checkpoint
    /// aside, so that the next start serves the log as it now is.
    AcceptLoss(AcceptLossArgs),
}

#[derive(clap::Args)]
pub struct AcceptLossArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The number of events the log holds now (where it ends), as the refusal
    /// named it: you confirm what you accept.
    #[arg(long, value_name = "POS")]
    pub to: u64,
    /// Staff id of the operator who decides (recorded in the event).
    #[arg(long, value_name = "STAFF")]
    pub by: String,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::AcceptLoss(a) => accept_loss(a),
    }
}

fn accept_loss(a: AcceptLossArgs) -> anyhow::Result<ExitCode> {
    let by = StaffId::new(&a.by)?;
    let mut opts = a.platform.options()?;
    opts.accept_loss = Some(AcceptLoss { to: a.to, by });
    runtime()?.block_on(async {
        let p = Platform::open(&a.platform.data, opts).await?;
        println!(
            "accepted: the log ends at position {}; the decision is recorded in {LOSS_STREAM} at position {}",
            a.to,
            p.head().count - 1
        );
        Ok(ExitCode::SUCCESS)
    })
}
