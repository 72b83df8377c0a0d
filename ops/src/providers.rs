//! `mebyo providers`: the office's side of connecting a provider to the bus
//! (docs/bus.md §1): see which connection credentials providers hold, and
//! register the ed25519 public key a provider signs its requests with (P4.12(1)).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mebyo_domain::credential::{CredentialStatus, credential_valid};
use mebyo_domain::{Actor, CredentialId, StaffId};
use mebyo_platform::Platform;
use mebyo_store::EventStore;

use crate::paths::{PlatformArgs, runtime};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Register (or replace) the signing key of a provider's credential (P4.12(1)).
    RegisterKey(RegisterKeyArgs),
    /// List providers' connection credentials, their state and whether a key is registered.
    List(ListArgs),
}

#[derive(clap::Args)]
pub struct RegisterKeyArgs {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Staff id of the prefecture or office member registering the key; their
    /// role and training are checked (P4.12(1), P3.4).
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: String,
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
    }
}

fn register_key(a: RegisterKeyArgs) -> anyhow::Result<ExitCode> {
    // Everything the command can check alone is checked before the ledger is
    // opened: bad input changes nothing.
    let staff = StaffId::new(&a.staff).context("--as is not a staff id")?;
    let credential =
        CredentialId::new(&a.credential).context("--credential is not a credential id")?;
    let text = std::fs::read_to_string(&a.public_key)
        .with_context(|| format!("reading {}", a.public_key.display()))?;
    let key = mebyo_bus::keys::parse_public_key_hex(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.public_key.display()))?;
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let p = Platform::open(&a.platform.data, a.platform.options()?).await?;
        anyhow::Ok(
            mebyo_bus::register_provider_key(&p, &Actor::Staff { staff }, &credential, &key)
                .await?,
        )
    })?;
    match outcome {
        Ok(()) => {
            println!(
                "registered signing key {} for credential {credential} (stream {})",
                hex::encode(key.as_bytes()),
                mebyo_bus::keys::stream(&credential)
            );
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
