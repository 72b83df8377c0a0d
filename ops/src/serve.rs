//! `mebyo serve`: the platform's HTTPS portal, dashboard and API (issue 6).
//!
//! On a directory with no platform it creates one first, with the staff chain and
//! the policy in force (so sign-up and the dashboard work at once). Every
//! appointed staff member without a password (a new platform, or one `demo`
//! filled) gets a one-time one in `DATA/auth/initial-passwords.txt` (mode 0600)
//! — never the terminal or logs — which the first sign-in replaces. The self-signed certificate lives
//! in `DATA/tls/`. Runs until Ctrl-C (or SIGTERM), then lets requests in flight end.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mebyo_platform::auth::Subject;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};
use rand::RngCore;

use crate::paths::runtime;
use crate::serve_ops;

/// The name the synthetic probe's events carry (never the person's id).
const PROBE_NAME: &str = "probe-read-path";

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
    /// Serve providers over this NATS server (e.g. tls://bus.example:4222). Off when absent.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// CA, client certificate and key for NATS over TLS (P4.6(1)).
    /// All three or none: a certificate without its CA is refused rather than
    /// silently ignored (issue 22 §7).
    #[arg(long, value_name = "FILE", requires_all = ["nats", "nats_cert", "nats_key"])]
    pub nats_ca: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires_all = ["nats_ca", "nats_key"])]
    pub nats_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires_all = ["nats_ca", "nats_cert"])]
    pub nats_key: Option<PathBuf>,
    /// Sign a checkpoint every this many events...
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint_every: u64,
    /// ...or every this many seconds, whichever comes first.
    #[arg(long, default_value_t = 300)]
    pub checkpoint_secs: u64,
    /// How often the scheduler looks for due backups, maintenance notices, probes.
    #[arg(long, default_value_t = 300)]
    pub tick_secs: u64,
}

fn one_time_password() -> String {
    let mut b = [0u8; 15];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The bearer token of `/metrics`, under the data directory.
const METRICS_TOKEN: &str = "auth/metrics-token";

/// Reads the metrics token, or makes one (mode 0600) on the first start.
fn metrics_token(data: &std::path::Path) -> anyhow::Result<String> {
    let path = data.join(METRICS_TOKEN);
    match std::fs::read_to_string(&path) {
        Ok(kept) if !kept.trim().is_empty() => return Ok(kept.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the metrics token file is empty; a new token is made")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    // Whole or not at all (issue 19): a start killed between creating the file
    // and writing it left it empty, and an empty token matched a request with
    // no token, opening /metrics to anyone (P4.4(1)).
    let token = one_time_password();
    mebyo_store::fsio::write_atomic(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Written (durably) before a first start's set-up, removed after its last
/// step: while it exists, the next start finishes the set-up (issue 19 §2).
const FIRST_START_PENDING: &str = "first-start.pending";

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // A request's panic is answered and counted (the release profile unwinds);
    // its message, which may hold the input, stays out of the log.
    mebyo_web::panics::install_location_only_hook();
    runtime()?.block_on(async move {
        // A first start is redone until it has finished (issue 19 §2): `init`
        // redoes itself while its init.pending says it was cut short, and the
        // staff organisation's set-up resumes while first-start.pending says so.
        // The web starts only after both, so nothing is served half-made.
        let dir = mebyo_platform::DataDir::new(&a.data);
        let first_start = a.data.join(FIRST_START_PENDING);
        let fresh =
            !mebyo_store::EmbeddedStore::exists(&dir.ledger()) || dir.init_pending().exists();
        if fresh {
            std::fs::create_dir_all(&a.data)?;
            mebyo_platform::write_marker(&first_start)?;
            Platform::init(&a.data, Settings::default(), Options::default()).await?;
        }
        let platform = Arc::new(Platform::open(&a.data, Options::default()).await?);
        if crate::demo::is_demo(&a.data) {
            // Printed as well as logged: whoever starts it must see it (issue 22).
            let warning = format!(
                "WARNING: {} is a `mebyo demo` directory (simulated people); do not serve it to real users",
                a.data.display()
            );
            println!("{warning}");
            tracing::warn!(data = %a.data.display(), "serving a demo directory (simulated people)");
        }
        let org = if first_start.exists() {
            mebyo_platform::fault::point("serve.before_org");
            let org = world::bootstrap_org(&platform).await?;
            mebyo_platform::remove_marker(&first_start)?;
            Some(org)
        } else {
            None
        };
        // mebyo.json's business administrator must be the appointed one (issue 19 §7).
        platform.check_business_administrator().await?;
        let mut cfg = mebyo_web::WebConfig::new(&a.data);
        cfg.bind = a.listen;
        if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
            cfg.tls = mebyo_web::TlsSource::Pem { cert, key };
        }
        // `/metrics` needs this bearer token (issue 22 §7), kept beside the
        // passwords; Prometheus reads it with `authorization.credentials_file`.
        cfg.metrics_token = Some(metrics_token(&a.data)?);
        // The lead time and review interval the staff commands apply, as the CLI's.
        cfg.ops = mebyo_operations_service::settings::OpsSettings::load(&a.data)?;
        // The office desk that issues connection information at self-service sign-up.
        cfg.signup_office = Some(mebyo_domain::StaffId::new("office-0001")?);
        let web = mebyo_web::serve(platform.clone(), cfg).await?;
        if org.is_some() {
            println!("created a new platform in {}", a.data.display());
        }
        staff_passwords(&web, &a.data).await?;
        // Listen for the stop signals before saying where we listen: a supervisor
        // (or a test) that sends SIGTERM as soon as it reads the address must get a
        // clean stop, not the default action's kill.
        let signals = Signals::install()?;
        println!("listening on {}", web.url());
        println!("certificate: {}", a.data.join("tls/cert.pem").display());
        println!("metrics token: {}", a.data.join(METRICS_TOKEN).display());

        // The rest of the platform runs beside the web server until shutdown.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        };
        let clock: Arc<dyn mebyo_store::Clock> = Arc::new(mebyo_store::SystemClock);
        let mut tasks = Vec::new();
        // The checkpointer (which rebuilds the Merkle tree of every event) and the
        // anomaly watcher (which reads every access event) catch up on the whole
        // log at start. Both wait until the read models have caught up, so that on
        // two cores a restart serves again first and catches up after (issue 4 §9).
        let serving_first = {
            let (views, head) = (platform.views(), platform.head().count);
            move || {
                let views = views.clone();
                async move {
                    if let Some(v) = views {
                        v.caught_up_to(head).await;
                    }
                }
            }
        };

        // Signed checkpoints every N events or T seconds (issue 8 §2).
        let signer = mebyo_audit::load_signer(&a.data)?;
        let store: Arc<dyn mebyo_store::EventStore> = Arc::new(platform.store().clone());
        let checkpointing = mebyo_audit::Checkpointing::new(
            store,
            signer,
            mebyo_audit::tlog::checkpointer::SigningPolicy {
                every_leaves: a.checkpoint_every,
                every_secs: a.checkpoint_secs,
            },
        )
        .publish_to(mebyo_audit::published_path(&a.data));
        {
            let (clock, stop, first) = (clock.clone(), stopped(), serving_first());
            tasks.push(tokio::spawn(async move {
                first.await;
                if let Err(e) = checkpointing
                    .run(clock, std::time::Duration::from_secs(1), stop)
                    .await
                {
                    tracing::error!(error = %e, "checkpointing stopped");
                }
            }));
        }

        // Backups: daily differential, weekly full, overdue flags (P4.10).
        {
            let (p, clock, mut stop) = (platform.clone(), clock.clone(), Box::pin(stopped()));
            let every = std::time::Duration::from_secs(a.tick_secs.max(1));
            tasks.push(tokio::spawn(async move {
                let schedule = mebyo_backup::BackupSchedule::default();
                loop {
                    let due = mebyo_backup::jobs::run_due(
                        p.store(),
                        p.dir.root.clone(),
                        p.backups_dir(),
                        &schedule,
                        clock.clone(),
                        Default::default(),
                    )
                    .await;
                    match due {
                        Ok(d) if !d.flags.is_empty() => {
                            tracing::warn!(flags = ?d.flags, "backups overdue")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "backup scheduler"),
                    }
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                }
            }));
        }

        // Anomaly rules open incidents on their own (P4.4).
        let ops_settings = mebyo_operations_service::settings::OpsSettings::load(&a.data)?;
        {
            let (p, stop, rules) = (platform.clone(), stopped(), ops_settings.anomaly);
            let first = serving_first();
            tasks.push(tokio::spawn(async move {
                first.await;
                if let Err(e) = mebyo_operations_service::anomaly::AnomalyWatcher::new(rules)
                    .run(p, stop)
                    .await
                {
                    tracing::error!(error = %e, "anomaly watcher stopped");
                }
            }));
        }
        // Providers over NATS (issue 5), when configured.
        let bus = match &a.nats {
            Some(url) => {
                let mut cfg = mebyo_bus::BusConfig::new(url.clone());
                if let (Some(ca), Some(cert), Some(key)) = (&a.nats_ca, &a.nats_cert, &a.nats_key) {
                    cfg.tls = Some(mebyo_bus::TlsConfig {
                        ca: ca.clone(),
                        cert: cert.clone(),
                        key: key.clone(),
                    });
                }
                let bus = Arc::new(mebyo_bus::serve(platform.clone(), cfg).await?);
                println!("serving providers on {url}");
                tasks.push(publish_checkpoints(
                    platform.clone(),
                    bus.client().clone(),
                    stopped(),
                ));
                Some(bus)
            }
            None => None,
        };

        // The synthetic person the probe reads as (P4.4(2)), enrolled once and found
        // again at every start. Monitoring must not keep the platform down: if it
        // cannot be had, the server runs and says so in its logs and /readyz.
        let probe = {
            let org = match &org {
                Some(org) => org.clone(),
                None => known_org(&platform)?,
            };
            let name = mebyo_operations::Reference::new(PROBE_NAME)?;
            match mebyo_operations_service::monitoring::probe_target(&platform, &org, name).await {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(error = %e, "no synthetic probe (P4.4(2))");
                    None
                }
            }
        };
        // Periodic operations: maintenance notices to providers (P4.3), the probe,
        // the firewall-review flag; each result shown by /readyz and /metrics (P4.4).
        let tick = {
            let (p, stop) = (platform.clone(), stopped());
            let every = std::time::Duration::from_secs(a.tick_secs.max(1));
            let publisher = bus.as_ref().map(|b| {
                Arc::new(serve_ops::BusNotices(b.clone()))
                    as Arc<dyn mebyo_operations_service::NoticePublisher>
            });
            let web_state = web.state().clone();
            let slow_after_us = ops_settings.probe_slow_ms * 1000;
            let published = std::sync::atomic::AtomicU64::new(0);
            let bus_stats = bus.clone();
            tokio::spawn(async move {
                let clock = p.clone();
                mebyo_operations_service::background::run_periodic(
                    p,
                    ops_settings,
                    publisher,
                    probe,
                    every,
                    move |h| {
                        use std::sync::atomic::Ordering;
                        let n = h.as_ref().map_or(0, |h| h.notices_published as u64);
                        let total = published.fetch_add(n, Ordering::Relaxed) + n;
                        let mut health =
                            serve_ops::web_health(&h, clock.now().0, slow_after_us, total);
                        // Unauthenticated bus messages are counted, not recorded
                        // (issue 22 §2): their counters go to /metrics.
                        health.bus_metrics = bus_stats.as_ref().map(|b| b.stats().openmetrics());
                        web_state.set_ops_health(health);
                    },
                    stop,
                )
                .await;
            })
        };

        signals.wait().await;
        eprintln!("shutting down");
        let _ = stop_tx.send(true);
        // The tick holds the bus (to publish notices): let it end first, bounded,
        // so the bus can then stop cleanly with its requests in flight finished.
        let mut tick = tick;
        if tokio::time::timeout(std::time::Duration::from_secs(10), &mut tick)
            .await
            .is_err()
        {
            tick.abort();
            let _ = tick.await;
        }
        if let Some(bus) = bus {
            match Arc::try_unwrap(bus) {
                Ok(bus) => bus.shutdown().await,
                // Still shared: dropping it stops it, without waiting.
                Err(bus) => drop(bus),
            }
        }
        web.shutdown().await?;
        for t in tasks {
            let _ = t.await;
        }
        // The read models as they stand, so the next start restores them instead of
        // replaying what came after the last periodic save (issue 4 §9).
        let p = platform.clone();
        match tokio::task::spawn_blocking(move || p.save_views_snapshot()).await {
            Ok(Ok(Some(saved))) => {
                eprintln!("saved the read models at position {}", saved.position)
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "saving the read models at shutdown"),
            Err(e) => tracing::warn!(error = %e, "saving the read models at shutdown"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Publishes every signed checkpoint on `mebyo.v1.checkpoints` (issue 8 §2), so
/// witnesses and providers can keep them and later catch a forked history: the
/// newest one at start, then each new one as it is stored.
fn publish_checkpoints(
    platform: Arc<Platform>,
    client: async_nats::Client,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    use mebyo_store::EventStore;
    const SUBJECT: &str = "mebyo.v1.checkpoints";
    tokio::spawn(async move {
        let store = platform.store().clone();
        let head = store.head().count;
        if let Ok(cps) = store.read_stream("ledger-checkpoints", 0, usize::MAX).await
            && let Some(last) = cps.last()
        {
            let _ = client.publish(SUBJECT, last.payload.clone().into()).await;
        }
        let mut events = store.subscribe_all(head);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                next = events.next() => match next {
                    Some(Ok(e)) if e.event_type == "ledger.checkpoint" => {
                        if let Err(err) = client.publish(SUBJECT, e.payload.clone().into()).await {
                            tracing::warn!(error = %err, "publishing a checkpoint on the bus");
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
    })
}

/// The staff chain `serve` appoints on a fresh platform (`world::bootstrap_org`),
/// for a platform opened again: the probe person is enrolled by its office desk.
fn known_org(p: &Platform) -> anyhow::Result<mebyo_platform::world::Org> {
    let id = |s: &str| mebyo_domain::StaffId::new(s);
    Ok(mebyo_platform::world::Org {
        business_administrator: p.config().business_administrator.clone(),
        operations_manager: id("om-0001")?,
        system_operations_administrator: id("soa-0001")?,
        office: id("office-0001")?,
        prefecture: id("pref-0001")?,
        auditor: id("audit-0001")?,
    })
}

/// SIGINT (Ctrl-C) and SIGTERM, registered when made: from then on either one
/// is a clean stop, whenever it arrives.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Gives every appointed staff member who has no password yet a one-time one,
/// which the first sign-in must replace (issue 15 §5), and adds it to
/// `DATA/auth/initial-passwords.txt` (mode 0600) — never the terminal or the
/// logs. So a platform made by `serve`, by `init` + `demo`, or given new staff
/// while stopped, always has staff who can sign in.
async fn staff_passwords(web: &mebyo_web::WebHandle, data: &std::path::Path) -> anyhow::Result<()> {
    // The roster is a read model: wait until it holds every event written so
    // far, or staff appointed moments ago (a new directory) would be missed.
    let st = web.state();
    st.views.caught_up_to(st.platform.head().count).await;
    let missing: Vec<mebyo_domain::StaffId> = {
        let views = st.views.read();
        views
            .staff()
            .iter()
            .filter(|(_, row)| !row.roles.is_empty())
            .filter_map(|(id, _)| mebyo_domain::StaffId::new(id).ok())
            .filter(|id| !st.auth.contains(&Subject::Staff(id.clone())))
            .collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    let mut lines = String::from(
        "# One-time passwords of staff accounts. Sign in at /ops/login: the first\n\
         # sign-in replaces the password (and enrols a second factor for every role\n\
         # but the office). A later line for an account replaces an earlier one.\n\
         # Then delete this file.\n",
    );
    let passwords: Vec<(mebyo_domain::StaffId, String)> = missing
        .into_iter()
        .map(|staff| (staff, one_time_password()))
        .collect();
    for (staff, pw) in &passwords {
        lines.push_str(&format!("{staff} {pw}\n"));
    }
    // Written down durably before any of them is set (issue 19): a start cut
    // short in between leaves lines for passwords never set, which the next
    // start supersedes with later lines for the same accounts; the other way
    // round it left passwords set that no file names, and those staff members
    // could never sign in (P3.1: the appointed staff must be able to act).
    let path = data.join("auth").join("initial-passwords.txt");
    write_private(&path, &lines)?;
    for (n, (staff, pw)) in passwords.iter().enumerate() {
        web.set_one_time_password(&Subject::Staff(staff.clone()), pw)
            .await?;
        if n == 0 {
            mebyo_platform::fault::point("serve.staff_passwords");
        }
    }
    println!(
        "one-time passwords of {} staff accounts: {}",
        passwords.len(),
        path.display()
    );
    Ok(())
}

/// Appends to a file only its owner reads (made 0600 if new), durably: a new
/// file's name is synced with its directory.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let new = !path.exists();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    match path.parent() {
        Some(dir) if new => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
