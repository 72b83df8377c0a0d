use std::process::ExitCode;

use anyhow::Context;
use mebyo_domain::{Actor, StaffId};

use crate::paths::{StaffTarget, Via, open_or_hint, runtime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rotate the key-encryption key: rewrap every data key under a new KEK,
    /// without touching a single event, and record that it happened (P4.8(1)).
    /// On a running server (--server) it rotates while serving.
    Rotate(RotateArgs),
}

#[derive(clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: StaffTarget,
    /// Staff id of the system operations administrator running the rotation:
    /// their role and training are checked (P4.8(1), P3.4) and it is recorded.
    /// Needed with --data; with a server the sign-in says who, and --by, if
    /// given, must be the same.
    #[arg(long, value_name = "STAFF")]
    pub by: Option<String>,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Rotate(a) => rotate(a),
    }
}

fn rotate(a: RotateArgs) -> anyhow::Result<ExitCode> {
    let platform = match a.target.via(a.by.as_deref())? {
        Via::Server(r) => {
            let print = |k: &mebyo_web::ops_keys::Rotated| {
                print_rotated(&k.old_kek_id, &k.new_kek_id, k.rewrapped_deks, k.persons)
            };
            let path = "/api/v1/ops/keys/kek-rotation";
            return runtime()?.block_on(r.command_as(path, None::<&()>, print));
        }
        Via::Local(p) => p,
    };
    if platform.kek_file.is_some() || platform.kek_env.is_some() {
        anyhow::bail!(
            "rotation replaces DIR/keys/kek; rotate an external KEK with the tool that keeps it"
        );
    }
    let by =
        a.by.as_deref()
            .context("say who rotates with --by STAFF (needed with --data)")?;
    let staff = StaffId::new(by).context("--by is not a staff id")?;
    let outcome = runtime()?.block_on(async {
        let p = open_or_hint(&platform).await?;
        anyhow::Ok(p.rotate_kek(&Actor::Staff { staff }).await?)
    })?;
    match outcome {
        Ok(r) => {
            let (old, new) = (r.old_kek_id.to_hex(), r.new_kek_id.to_hex());
            print_rotated(&old, &new, r.rewrapped_deks, r.persons);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            eprintln!("refused: {refusal}");
            Ok(ExitCode::from(1))
        }
    }
}

fn print_rotated(old: &str, new: &str, rewrapped_deks: usize, persons: usize) {
    println!(
        "rotated the KEK {old} -> {new}: {rewrapped_deks} data keys of {persons} owners rewrapped, no event changed"
    );
}
