//! `mebyo serve`: the platform's HTTPS portal, dashboard and API (issue 6).
//!
//! On a directory with no platform it creates one first, with the staff chain and
//! the policy in force (so sign-up and the dashboard work at once), and writes
//! one-time passwords for the staff accounts to `DATA/auth/initial-passwords.txt`
//! (mode 0600) — never to the terminal or logs. The self-signed certificate lives
//! in `DATA/tls/`. Runs until Ctrl-C (or SIGTERM), then lets requests in flight end.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mebyo_platform::auth::Subject;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};
use rand::RngCore;

use crate::paths::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (created and initialised if missing).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on (HTTPS only).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// Certificate chain (PEM) instead of the self-signed default.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

fn one_time_password() -> String {
    let mut b = [0u8; 15];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let fresh =
            !mebyo_store::EmbeddedStore::exists(&mebyo_platform::DataDir::new(&a.data).ledger());
        if fresh {
            std::fs::create_dir_all(&a.data)?;
            Platform::init(&a.data, Settings::default(), Options::default()).await?;
        }
        let platform = Arc::new(Platform::open(&a.data, Options::default()).await?);
        let org = if fresh {
            Some(world::bootstrap_org(&platform).await?)
        } else {
            None
        };
        let mut cfg = mebyo_web::WebConfig::new(&a.data);
        cfg.bind = a.listen;
        if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
            cfg.tls = mebyo_web::TlsSource::Pem { cert, key };
        }
        // The office desk that issues connection information at self-service sign-up.
        cfg.signup_office = Some(mebyo_domain::StaffId::new("office-0001")?);
        let web = mebyo_web::serve(platform.clone(), cfg).await?;
        if let Some(org) = org {
            let mut lines = String::from(
                "# One-time passwords of the staff accounts created with this platform.\n\
                 # Sign in at /ops/login, then delete this file.\n",
            );
            for staff in [
                &org.business_administrator,
                &org.operations_manager,
                &org.system_operations_administrator,
                &org.office,
                &org.prefecture,
                &org.auditor,
            ] {
                let pw = one_time_password();
                web.set_password(&Subject::Staff(staff.clone()), &pw, None)
                    .await?;
                lines.push_str(&format!("{staff} {pw}\n"));
            }
            write_private(&a.data.join("auth").join("initial-passwords.txt"), &lines)?;
            println!(
                "created a new platform in {} (staff passwords: {})",
                a.data.display(),
                a.data.join("auth/initial-passwords.txt").display()
            );
        }
        println!("listening on {}", web.url());
        println!("certificate: {}", a.data.join("tls/cert.pem").display());
        wait_for_signal().await?;
        eprintln!("shutting down");
        web.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
