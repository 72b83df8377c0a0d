//! `mebyo providers`: the office's side of connecting a provider to the bus
//! (docs/bus.md §1): see which connection credentials providers hold, and
//! register the ed25519 public key a provider signs its requests with (P4.12(1)),
//! and revoke a credential for one of the policy's reasons (P4.13), on a stopped
//! platform or, with `--server`, on the running one at once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mebyo_domain::credential::{
    CredentialCommand, CredentialStatus, RevocationReason, credential_valid,
};
use mebyo_domain::{Actor, CredentialId, StaffId};
use mebyo_platform::Platform;
use mebyo_store::EventStore;

use crate::paths::{PlatformArgs, StaffTarget, Via, open_or_hint, runtime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Register (or replace) the signing key of a provider's credential (P4.12(1)).
    RegisterKey(RegisterKeyArgs),
    /// List providers' connection credentials, their state and whether a key is registered.
    List(ListArgs),
    /// Revoke a connection credential (P4.13): prefecture staff with current
    /// training. On a running server (--server) it is refused on every interface
    /// from the next request on.
    Revoke(RevokeArgs),
}

#[derive(clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub target: StaffTarget,
    /// Staff id of the prefecture member revoking (with --data; with a server
    /// the sign-in says who, and --as, if given, must be the same).
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: Option<String>,
    /// The credential id (cred-…).
    #[arg(long, value_name = "ID")]
    pub credential: String,
    /// breach-of-law (P4.13(1)), improper-handling (P4.13(2): needs earlier
    /// recorded guidance or a warning) or judged-risk (P4.13(3)).
    #[arg(long, value_parser = ["breach-of-law", "improper-handling", "judged-risk"])]
    pub reason: String,
}

#[derive(clap::Args)]
pub struct RegisterKeyArgs {
    #[command(flatten)]
    pub target: StaffTarget,
    /// Staff id of the prefecture or office member registering the key; their
    /// role and training are checked (P4.12(1), P3.4). Needed with --data; with
    /// a server the sign-in says who, and --as, if given, must be the same.
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: Option<String>,
    /// The provider's connection credential id (cred-…).
    #[arg(long, value_name = "ID")]
    pub credential: String,
    /// File holding the provider's ed25519 public key, 64 hex digits (what
    /// `mebyo-provider keygen` prints).
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::RegisterKey(a) => register_key(a),
        Command::List(a) => list(a),
        Command::Revoke(a) => revoke(a),
    }
}

fn revoke(a: RevokeArgs) -> anyhow::Result<ExitCode> {
    let platform = match a.target.via(a.staff.as_deref())? {
        Via::Server(r) => {
            let path = format!(
                "/api/v1/ops/credentials/{}/revoke",
                crate::client::segment(&a.credential)
            );
            let input = mebyo_web::ops_api::RevokeInput { reason: a.reason };
            let print =
                |_: &mebyo_web::ops_api::Recorded| println!("revoked credential {}", a.credential);
            return runtime()?.block_on(r.command(&path, Some(&input), print));
        }
        Via::Local(p) => p,
    };
    let staff = a
        .staff
        .as_deref()
        .context("say who revokes with --as STAFF (needed with --data)")?;
    let staff = StaffId::new(staff).context("--as is not a staff id")?;
    let credential =
        CredentialId::new(&a.credential).context("--credential is not a credential id")?;
    let reason = match a.reason.as_str() {
        "breach-of-law" => RevocationReason::BreachOfLaw,
        "improper-handling" => RevocationReason::ImproperHandlingUncorrected,
        "judged-risk" => RevocationReason::JudgedRisk,
        other => anyhow::bail!("unknown reason {other:?}"),
    };
    let outcome = runtime()?.block_on(async {
        let p = open_or_hint(&platform).await?;
        let cmd = CredentialCommand::Revoke { reason };
        anyhow::Ok(
            p.credential(&Actor::Staff { staff }, &credential, cmd)
                .await?,
        )
    })?;
    match outcome {
        Ok(_) => {
            println!("revoked credential {credential} ({})", reason.clause());
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            eprintln!("refused: {r}");
            Ok(ExitCode::from(1))
        }
    }
}

fn register_key(a: RegisterKeyArgs) -> anyhow::Result<ExitCode> {
    // Everything the command can check alone is checked before the ledger is
    // opened or the server asked: bad input changes nothing.
    let credential =
        CredentialId::new(&a.credential).context("--credential is not a credential id")?;
    let text = std::fs::read_to_string(&a.public_key)
        .with_context(|| format!("reading {}", a.public_key.display()))?;
    let key = mebyo_platform::signing_keys::parse_public_key_hex(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.public_key.display()))?;
    let key_hex = hex::encode(key.as_bytes());
    let stream = mebyo_domain::signing_key::stream(&credential);
    let print = || {
        println!("registered signing key {key_hex} for credential {credential} (stream {stream})")
    };
    let platform = match a.target.via(a.staff.as_deref())? {
        Via::Server(r) => {
            let path = format!(
                "/api/v1/ops/credentials/{}/signing-key",
                crate::client::segment(credential.as_str())
            );
            let input = mebyo_web::ops_providers::SigningKeyInput {
                public_key: key_hex.clone(),
            };
            let print = |_: &mebyo_web::ops_api::Recorded| print();
            return runtime()?.block_on(r.command(&path, Some(&input), print));
        }
        Via::Local(p) => p,
    };
    let staff = a
        .staff
        .as_deref()
        .context("say who registers with --as STAFF (needed with --data)")?;
    let staff = StaffId::new(staff).context("--as is not a staff id")?;
    let outcome = runtime()?.block_on(async {
        let p = open_or_hint(&platform).await?;
        anyhow::Ok(
            mebyo_platform::signing_keys::register(&p, &Actor::Staff { staff }, &credential, &key)
                .await?,
        )
    })?;
    match outcome {
        Ok(_) => {
            print();
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            eprintln!("refused: {r}");
            Ok(ExitCode::from(1))
        }
    }
}

fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let rows = rt.block_on(async {
        let p = Platform::open(&a.platform.data, a.platform.options()?).await?;
        // The bus's own fold of the ledger knows which credential is whose and
        // which keys are registered; the credential's state comes from its stream.
        let state = mebyo_bus::state::BusState::default();
        let mut from = 0;
        loop {
            let page = p.store().read_all(from, 4096).await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            for env in &page {
                state.apply(env, &p)?;
            }
        }
        let now = p.now();
        let holders: Vec<_> = state
            .credential_holder
            .read()
            .iter()
            .map(|(c, p)| (c.clone(), p.clone()))
            .collect();
        let mut rows = Vec::new();
        for (credential, provider) in holders {
            let c = p.credential_state(&credential).await?;
            let status = match &c.status {
                _ if credential_valid(&c, now) => "active".to_string(),
                CredentialStatus::Active => "expired".to_string(),
                CredentialStatus::Lost => "lost".to_string(),
                CredentialStatus::Revoked(r) => format!("revoked ({r:?}, {})", r.clause()),
                CredentialStatus::Unissued => "unissued".to_string(),
            };
            let key = state
                .keys
                .read()
                .get(&credential)
                .map(|(_, k)| hex::encode(k.as_bytes()))
                .unwrap_or_else(|| "-".into());
            rows.push((provider.to_string(), credential.to_string(), status, key));
        }
        rows.sort();
        anyhow::Ok(rows)
    })?;
    println!("provider\tcredential\tstatus\tsigning key");
    for (provider, credential, status, key) in rows {
        println!("{provider}\t{credential}\t{status}\t{key}");
    }
    Ok(ExitCode::SUCCESS)
}
