//! `mebyo-provider`: an example provider client for the mebyo bus.
//!
//! ```text
//! mebyo-provider keygen --out clinic.key          # prints the public key to register
//! mebyo-provider --provider clinic-a --credential cred-… --key clinic.key \
//!     --url tls://bus:4222 --ca ca.pem --cert me.pem --cert-key me.key \
//!     submit-bp --person p-… --systolic 128 --diastolic 82
//! mebyo-provider … submit-jahis --person p-… --file samples/okusuri.csv
//! mebyo-provider … query --person p-… --category vitals --purpose care --from 2026-01-01 --to 2026-12-31
//! mebyo-provider … consents
//! mebyo-provider … follow                            # prints the feed, acknowledges it
//! ```
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mebyo_provider::{ProviderClient, Tls, blood_pressure, fhir_item, jahis_item};

#[derive(Parser)]
#[command(
    version,
    about = "Example provider client for the mebyo bus (docs/bus.md)"
)]
struct Cli {
    #[arg(long, env = "MEBYO_BUS_URL", default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// CA certificate of the platform's NATS server (turns TLS on).
    #[arg(long, env = "MEBYO_BUS_CA")]
    ca: Option<PathBuf>,
    #[arg(long, env = "MEBYO_BUS_CERT", requires = "ca")]
    cert: Option<PathBuf>,
    #[arg(long, env = "MEBYO_BUS_CERT_KEY", requires = "ca")]
    cert_key: Option<PathBuf>,
    #[arg(long, env = "MEBYO_PROVIDER")]
    provider: Option<String>,
    #[arg(long, env = "MEBYO_CREDENTIAL")]
    credential: Option<String>,
    /// Signing key file (64 hex digits), made by `keygen`.
    #[arg(long, env = "MEBYO_SIGNING_KEY")]
    key: Option<PathBuf>,
    #[arg(long, default_value = mebyo_provider::PREFIX)]
    prefix: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a signing key; prints the public key for the office to register.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit a blood-pressure reading (FHIR R4 Observation).
    SubmitBp {
        #[arg(long)]
        person: String,
        #[arg(long)]
        systolic: u32,
        #[arg(long)]
        diastolic: u32,
        /// RFC 3339; default now.
        #[arg(long)]
        at: Option<String>,
        /// Your own identifier of the measurement (P5.1).
        #[arg(long, default_value = "bp-1")]
        original_id: String,
        /// Idempotency key; default derived from the original id.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Submit a JAHIS medication-notebook file (Shift_JIS CSV).
    SubmitJahis {
        #[arg(long)]
        person: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Read what consent allows.
    Query {
        #[arg(long)]
        person: String,
        #[arg(long = "category", required = true)]
        categories: Vec<String>,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// List the consents that concern this provider.
    Consents {
        #[arg(long, default_value = "active")]
        status: String,
    },
    /// Print the feed as it comes, acknowledging each batch.
    Follow {
        #[arg(long, default_value = "MEBYO_FEED")]
        stream: String,
        /// Stop after this many seconds without messages (0: never).
        #[arg(long, default_value_t = 0)]
        idle_exit: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Keygen { out } = &cli.cmd {
        let key = mebyo_provider::generate_key();
        write_secret(out, &hex::encode(key.to_bytes()))?;
        println!("{}", mebyo_provider::public_key_hex(&key.verifying_key()));
        eprintln!(
            "secret key written to {}; give the public key above to the office",
            out.display()
        );
        return Ok(());
    }
    let provider = cli.provider.clone().context("--provider is required")?;
    let credential = cli.credential.clone().context("--credential is required")?;
    let key = mebyo_provider::load_key(cli.key.as_deref().context("--key is required")?)?;
    let tls = match (&cli.ca, &cli.cert, &cli.cert_key) {
        (Some(ca), Some(cert), Some(k)) => Some(Tls {
            ca: ca.clone(),
            cert: cert.clone(),
            key: k.clone(),
        }),
        (None, _, _) => None,
        _ => anyhow::bail!("TLS needs --ca, --cert and --cert-key together"),
    };
    let client = ProviderClient::connect(&cli.url, tls.as_ref(), &provider, &credential, key)
        .await?
        .with_prefix(&cli.prefix);
    let answer = match cli.cmd {
        Cmd::Keygen { .. } => unreachable!(),
        Cmd::SubmitBp {
            person,
            systolic,
            diastolic,
            at,
            original_id,
            idempotency_key,
        } => {
            let at = at.unwrap_or_else(|| {
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("formattable")
            });
            let item = fhir_item(
                &person,
                "vitals",
                &at,
                &original_id,
                blood_pressure(&person, systolic, diastolic, &at),
            );
            let key = idempotency_key.unwrap_or_else(|| format!("bp:{original_id}"));
            client.submit(vec![item], &key, 5).await?
        }
        Cmd::SubmitJahis {
            person,
            file,
            idempotency_key,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            // The file's digest makes a natural key: the same file is stored once.
            let key = idempotency_key
                .unwrap_or_else(|| format!("jahis:{}", &mebyo_provider::sha256_hex(&bytes)[..32]));
            client
                .submit(vec![jahis_item(&person, &bytes)], &key, 5)
                .await?
        }
        Cmd::Query {
            person,
            categories,
            purpose,
            from,
            to,
        } => {
            let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
            client.query(&person, &cats, &purpose, &from, &to).await?
        }
        Cmd::Consents { status } => client.consents(&status).await?,
        Cmd::Follow { stream, idle_exit } => {
            let mut idle = 0;
            loop {
                let msgs = client.feed(&stream, 100, Duration::from_secs(5)).await?;
                if msgs.is_empty() {
                    idle += 5;
                    if idle_exit > 0 && idle >= idle_exit {
                        return Ok(());
                    }
                    continue;
                }
                idle = 0;
                let ids: Vec<String> = msgs
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(String::from))
                    .collect();
                for m in &msgs {
                    println!("{m}");
                }
                // Tell the platform we received them (recorded in its ledger).
                let key = format!(
                    "ack:{}",
                    &mebyo_provider::sha256_hex(ids.join(",").as_bytes())[..32]
                );
                client.acknowledge(&ids, &key).await?;
            }
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer.body)?);
    if answer.replayed {
        eprintln!("(the platform's first answer to this idempotency key)");
    }
    if let Some((code, clause, message)) = answer.error() {
        anyhow::bail!("refused under {clause}: {message} ({code})");
    }
    Ok(())
}

fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (refusing to overwrite a key)", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
}
