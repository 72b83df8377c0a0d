//! mebyo-bus: the provider bus over NATS (protocol in `docs/bus.md`).
//!
//! - request-reply services under `<prefix>.svc.<provider>.…` (submit records as
//!   FHIR R4 or JAHIS CSV, query what consent allows, list consents, acknowledge
//!   feed messages), every request signed with the provider's credential key and
//!   checked against the credential's state in the ledger ([`auth`]);
//! - a JetStream feed per provider under `<prefix>.feed.<provider>.…` ([`feed`]);
//! - exactly once: writes carry an idempotency key whose outcome is kept in the
//!   ledger and replayed to any retry ([`state`]).
//!
//! The ledger (the platform's event store) is the source of truth; NATS and
//! JetStream only carry messages. `serve` rebuilds everything it keeps in memory
//! from the ledger at start.
#![forbid(unsafe_code)]

pub mod auth;
pub mod feed;
pub mod jahis;
pub mod keys;
pub mod service;
pub mod state;
pub mod stats;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mebyo_domain::{ProviderId, Timestamp};
use mebyo_platform::{Platform, PlatformError};
use mebyo_store::EventStore;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use keys::register as register_provider_key;
pub use service::Services;
use state::{BusEvent, BusState, FEED_STREAM, FeedMsg};

/// The platform's inbox prefix (JetStream API answers, its own round trips). Not
/// a provider id (those are lowercase), so never a provider's `_INBOX.<id>`.
pub const PLATFORM_INBOX_PREFIX: &str = "_INBOX_MEBYO";

/// Certificates for NATS over TLS (P4.5(3), P4.6(1)): the CA that signed the
/// server's certificate, and this client's certificate and key (mutual TLS).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// JetStream stream name.
    pub stream: String,
    /// Memory storage (tests); file storage otherwise.
    pub memory: bool,
    /// How long the broker keeps feed messages (the ledger keeps them for good).
    pub max_age: Duration,
    pub max_bytes: i64,
    /// How often consent expiries are looked for.
    pub expiry_tick: Duration,
}

#[derive(Debug, Clone)]
pub struct BusConfig {
    /// NATS server URL, e.g. `tls://bus.example:4222`.
    pub url: String,
    /// TLS settings; `None` only for a loopback development server.
    pub tls: Option<TlsConfig>,
    /// Subject prefix, `mebyo.v1` (tests use their own to share a server).
    pub prefix: String,
    /// Queue group of the service subscriptions: several nodes share the load.
    pub queue_group: String,
    pub feed: FeedConfig,
    /// Allowed distance between a request's timestamp and the platform's clock.
    pub freshness: Duration,
    pub max_body_bytes: usize,
    pub max_reply_bytes: usize,
    /// Most items in one submission.
    pub max_items: usize,
    /// Requests handled at once; more wait in the subscription's buffer.
    pub max_in_flight: usize,
    /// Most nonces remembered (a bound whatever the request rate).
    pub max_nonces: usize,
    /// Connection name shown by the server's monitoring.
    pub name: String,
}

impl BusConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tls: None,
            prefix: wire::DEFAULT_PREFIX.into(),
            queue_group: "mebyo-bus".into(),
            feed: FeedConfig {
                stream: "MEBYO_FEED".into(),
                memory: false,
                max_age: Duration::from_secs(30 * 86_400),
                max_bytes: 1 << 30,
                expiry_tick: Duration::from_secs(1),
            },
            freshness: Duration::from_secs(60),
            max_body_bytes: 512 * 1024,
            max_reply_bytes: 900 * 1024,
            max_items: 100,
            max_in_flight: 256,
            max_nonces: 1_000_000,
            name: "mebyo-bus".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("connecting to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("subscribing to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] mebyo_store::StoreError),
}

/// The bus speaks TLS with client certificates to any server off this machine
/// (P4.6(1)): without a TLS configuration every server of the URL must be a
/// loopback address, and a `tls://` URL needs the certificates, so that a
/// forgotten `--nats-ca` never falls back to plaintext (issue 22 §7).
pub fn check_transport(url: &str, tls: bool) -> Result<(), String> {
    for server in url.split(',').map(str::trim) {
        let (scheme, rest) = server.split_once("://").unwrap_or(("nats", server));
        let hostport = rest.rsplit('@').next().unwrap_or(rest);
        let host = match hostport.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => hostport.split(':').next().unwrap_or(""),
        };
        match scheme {
            "tls" if !tls => {
                return Err(format!(
                    "{server}: a tls:// server needs the CA, client certificate and key \
                     (--nats-ca, --nats-cert, --nats-key) (P4.6(1))"
                ));
            }
            "tls" => {}
            "nats" if tls || is_loopback(host) => {}
            "nats" => {
                return Err(format!(
                    "{server}: plaintext NATS is allowed to a loopback server only; use \
                     tls:// with --nats-ca, --nats-cert and --nats-key (P4.6(1))"
                ));
            }
            other => return Err(format!("{server}: unsupported scheme {other}://")),
        }
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A maintenance window announced to providers ahead of time (P4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceNotice {
    /// Stable id: publishing the same notice again is deduplicated.
    pub id: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub message: String,
    /// Whom to tell; `None` for every approved provider.
    pub providers: Option<Vec<ProviderId>>,
}

/// The running bus. Stops on drop, or cleanly (in-flight requests finished) with
/// [`BusHandle::shutdown`].
pub struct BusHandle {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    cfg: Arc<BusConfig>,
    state: Arc<BusState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    in_flight: Arc<Semaphore>,
}

/// Connects with the configured TLS; the server must present a certificate
/// signed by `ca`, and gets ours.
pub async fn connect(cfg: &BusConfig) -> Result<async_nats::Client, BusError> {
    check_transport(&cfg.url, cfg.tls.is_some()).map_err(|reason| BusError::Connect {
        url: cfg.url.clone(),
        reason,
    })?;
    let mut opts = async_nats::ConnectOptions::new()
        .name(&cfg.name)
        // Its own inboxes, apart from every provider's `_INBOX.<provider>.`, so
        // that NATS permissions can keep each to its own (docs/bus.md §10).
        .custom_inbox_prefix(PLATFORM_INBOX_PREFIX)
        .max_reconnects(None)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some(tls) = &cfg.tls {
        opts = opts
            .require_tls(true)
            .add_root_certificates(tls.ca.clone())
            .add_client_certificate(tls.cert.clone(), tls.key.clone());
    }
    let client = opts
        .connect(&cfg.url)
        .await
        .map_err(|e| BusError::Connect {
            url: cfg.url.clone(),
            reason: e.to_string(),
        })?;
    // `retry_on_initial_connect` returns at once; wait (bounded) for the first
    // connection so that a wrong URL or certificate fails `serve`, not later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() > deadline {
            return Err(BusError::Connect {
                url: cfg.url.clone(),
                reason: "no connection within 10 s (server down, or TLS refused)".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client)
}

/// Starts the bus: rebuilds its state from the ledger, makes sure the feed stream
/// and every provider's consumer exist, then serves requests and publishes the
/// feed until stopped.
pub async fn serve(platform: Arc<Platform>, cfg: BusConfig) -> Result<BusHandle, BusError> {
    let cfg = Arc::new(cfg);
    let client = connect(&cfg).await?;
    let js = async_nats::jetstream::new(client.clone());

    // 1. State from the ledger, and the feed messages it implies.
    let state = Arc::new(BusState::new(
        cfg.freshness.as_micros() as i64,
        cfg.max_nonces,
    ));
    let mut backlog = Vec::new();
    let mut from = 0;
    loop {
        let page = platform.store().read_all(from, 4096).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for env in &page {
            backlog.extend(state.apply(env, &platform)?);
        }
    }

    // 2. The feed stream, resuming after what it already holds.
    let mut stream = feed::ensure_stream(&js, &cfg).await?;
    let cursor = feed::cursor(&mut stream, 1000).await?;
    backlog.retain(|m| cursor.is_none_or(|c| m.position.is_some_and(|p| p > c)));
    let providers: Vec<_> = state.providers.read().iter().cloned().collect();
    for p in &providers {
        feed::ensure_consumer(&stream, &cfg, p).await?;
    }

    let (stop, stop_rx) = watch::channel(false);
    let in_flight = Arc::new(Semaphore::new(cfg.max_in_flight));
    let mut tasks = Vec::new();

    // 3. Services.
    let services = Arc::new(Services::new(platform.clone(), cfg.clone(), state.clone()));
    let subject = format!("{}.svc.>", cfg.prefix);
    let mut sub = client
        .queue_subscribe(subject.clone(), cfg.queue_group.clone())
        .await
        .map_err(|e| BusError::Subscribe {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
    // Round trip to the server so the subscription is registered before `serve`
    // returns: a provider asking right after a restart must find a responder.
    // `flush` only empties our write buffer, it does not wait for the server
    // (a test saw "no responders" right after a restart), so: our own message
    // through a subscription made after the service's. The server handles one
    // connection's protocol in order, so once it comes back the service's
    // subscription is in place.
    registered(&client)
        .await
        .map_err(|reason| BusError::Subscribe {
            subject: subject.clone(),
            reason,
        })?;
    {
        let client = client.clone();
        let in_flight = in_flight.clone();
        let mut stop_rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = sub.next() => match m { Some(m) => m, None => break },
                    _ = stop_rx.changed() => break,
                };
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let services = services.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    answer(&services, &client, msg).await;
                });
            }
            let _ = sub.unsubscribe().await;
        }));
    }

    // 4. The feed publisher.
    {
        let platform = platform.clone();
        let js = js.clone();
        let cfg = cfg.clone();
        let state = state.clone();
        let stop_rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = run_feed(platform, js, stream, cfg, state, backlog, from, stop_rx).await
            {
                tracing::error!(error = %e, "feed publisher stopped");
            }
        }));
    }

    Ok(BusHandle {
        client,
        js,
        cfg,
        state,
        stop,
        tasks,
        in_flight,
    })
}

/// Runs one request and publishes its reply.
async fn answer(services: &Services, client: &async_nats::Client, msg: async_nats::Message) {
    let reply_to = msg.reply.as_ref().map(|r| r.as_str());
    let handled = services.handle(
        msg.subject.as_str(),
        reply_to,
        msg.headers.as_ref(),
        &msg.payload,
    );
    let Some((headers, body)) = caught(handled, &services.state.stats).await else {
        // Unauthenticated noise past the answer rate (`stats`).
        return;
    };
    let Some(to) = msg.reply else {
        // Nobody to answer; the request was handled (and recorded) all the same.
        return;
    };
    if let Err(e) = client.publish_with_headers(to, headers, body).await {
        // The outcome is in the ledger; a retry with the same key gets it.
        tracing::warn!(error = %e, "reply not sent");
    }
}

/// The reply to one handled request, `None` when there is none to send. A
/// failure of the machinery is answered with a retryable error and leaves no
/// record (nothing was decided). A panic in the handler is caught here, counted
/// and answered `platform.internal`: one request never takes the process down
/// (with `panic = "unwind"`; issue 22 §1).
async fn caught(
    handled: impl std::future::Future<Output = Result<Option<service::Reply>, PlatformError>>,
    stats: &stats::BusStats,
) -> Option<(async_nats::HeaderMap, bytes::Bytes)> {
    use futures::FutureExt;
    let error = |code: &str, message: &str| {
        let mut h = async_nats::HeaderMap::new();
        h.insert(wire::H_STATUS, "error");
        let body = wire::ErrorBody::new(code, mebyo_domain::clause!("P4.4"), message).reply();
        (h, bytes::Bytes::from(body))
    };
    match std::panic::AssertUnwindSafe(handled).catch_unwind().await {
        Ok(Ok(Some(r))) => Some((r.headers(), bytes::Bytes::from(r.body.to_vec()))),
        Ok(Ok(None)) => None,
        Ok(Err(e)) if e.is_conflict() => {
            // Commands on one stream take turns in this process (issue 22 §9); a
            // conflict left is with another writer, and nothing was written.
            tracing::warn!(error = %e, "request met a concurrent writer");
            Some(error(
                "platform.conflict",
                "a concurrent change got there first; nothing was written; retry with the same idempotency key",
            ))
        }
        Ok(Err(e)) => {
            // Never the subject: before authentication it is anyone's text.
            tracing::error!(error = %e, "request failed");
            Some(error(
                "platform.unavailable",
                "the platform could not complete the request; retry with the same idempotency key",
            ))
        }
        Err(_) => {
            stats.handler_panicked();
            tracing::error!("a bus request handler panicked; answered platform.internal");
            Some(error(
                "platform.internal",
                "the platform failed on this request; it is counted and looked into. A retry with the same idempotency key is safe",
            ))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_feed(
    platform: Arc<Platform>,
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
    cfg: Arc<BusConfig>,
    state: Arc<BusState>,
    backlog: Vec<FeedMsg>,
    from: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BusError> {
    for m in &backlog {
        if !feed::publish(&js, &cfg.prefix, m, &stop).await {
            return Ok(());
        }
    }
    drop(backlog);
    let mut events = platform.store().subscribe_all(from);
    let mut tick = tokio::time::interval(cfg.feed.expiry_tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { return Ok(()) };
                let env = ev?;
                let before = state.providers.read().len();
                let msgs = state.apply(&env, &platform)?;
                if state.providers.read().len() != before {
                    let providers: Vec<_> = state.providers.read().iter().cloned().collect();
                    for p in &providers {
                        feed::ensure_consumer(&stream, &cfg, p).await?;
                    }
                }
                for m in &msgs {
                    if !feed::publish(&js, &cfg.prefix, m, &stop).await {
                        return Ok(());
                    }
                }
            }
            _ = tick.tick() => {
                for (consent, m) in state.due_expiries(platform.now(), 1000) {
                    if !feed::publish(&js, &cfg.prefix, &m, &stop).await {
                        return Ok(());
                    }
                    // Remembered in the ledger so that it is told once, across restarts.
                    let ev = BusEvent::ExpiryPublished {
                        provider: m.provider.clone(),
                        consent,
                        at: platform.now(),
                    };
                    platform.record(FEED_STREAM, &mebyo_domain::Actor::System, &ev).await?;
                    if let BusEvent::ExpiryPublished { consent, .. } = ev {
                        state.expiry_noticed.write().insert(consent);
                    }
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

impl BusHandle {
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn config(&self) -> &BusConfig {
        &self.cfg
    }

    /// The bus's counters: unauthenticated messages by refusal code, handler
    /// panics (for `/metrics`).
    pub fn stats(&self) -> stats::StatsSnapshot {
        self.state.stats.snapshot()
    }

    /// Announces a maintenance window on the feed of each provider concerned
    /// (P4.3). Returns how many providers were told. Publishing the same notice
    /// id again within two minutes is deduplicated by JetStream.
    pub async fn publish_maintenance_notice(
        &self,
        notice: &MaintenanceNotice,
    ) -> Result<usize, BusError> {
        let providers = match &notice.providers {
            Some(p) => p.clone(),
            None => self.state.providers.read().iter().cloned().collect(),
        };
        let stop = self.stop.subscribe();
        for p in &providers {
            let m = FeedMsg {
                provider: p.clone(),
                kind: "maintenance.notice",
                id: format!("maintenance-{}", notice.id),
                position: None,
                data: json!({
                    "notice": notice.id,
                    "starts_at": wire::rfc3339(notice.starts_at),
                    "ends_at": wire::rfc3339(notice.ends_at),
                    "message": notice.message,
                }),
                at: notice.starts_at,
            };
            if !feed::publish(&self.js, &self.cfg.prefix, &m, &stop).await {
                return Err(BusError::JetStream("bus stopping".into()));
            }
        }
        Ok(providers.len())
    }

    /// Stops taking requests, lets those in flight finish (at most 10 s), and
    /// stops the feed publisher.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let all = self.cfg.max_in_flight as u32;
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.in_flight.acquire_many(all)).await;
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let _ = self.client.flush().await;
    }
}

impl Drop for BusHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Waits until the server has processed everything this client sent so far.
async fn registered(client: &async_nats::Client) -> Result<(), String> {
    let subject = client.new_inbox();
    let mut echo = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish(subject, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let back = tokio::time::timeout(std::time::Duration::from_secs(10), echo.next()).await;
    let _ = echo.unsubscribe().await;
    match back {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the connection closed before the server answered".into()),
        Err(_) => Err("the server did not answer within 10 s".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 22 §7: certificates given without a CA, or none at all, never make
    /// the bus fall back to plaintext off this machine (P4.6(1)).
    #[test]
    fn p4_6_1_plaintext_nats_only_to_loopback() {
        for (url, tls, ok) in [
            ("nats://127.0.0.1:4222", false, true),
            ("127.0.0.1:4222", false, true),
            ("nats://localhost:4222", false, true),
            ("nats://[::1]:4222", false, true),
            ("nats://user:pw@127.0.0.2:4222", false, true),
            ("nats://bus.example:4222", false, false),
            ("nats://10.0.0.5:4222", false, false),
            (
                "nats://127.0.0.1:4222,nats://bus.example:4222",
                false,
                false,
            ),
            ("bus.example:4222", false, false),
            ("tls://bus.example:4222", false, false),
            ("tls://bus.example:4222", true, true),
            ("nats://bus.example:4222", true, true),
            ("ws://bus.example:80", true, false),
        ] {
            let got = check_transport(url, tls);
            assert_eq!(got.is_ok(), ok, "{url} tls={tls}: {got:?}");
            if let Err(e) = got {
                assert!(e.contains("P4.6(1)") || e.contains("scheme"), "{e}");
            }
        }
    }

    /// Issue 22 §1: a handler that panics is answered `platform.internal` and
    /// counted; the task (and process) carries on.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_and_counted() {
        let stats = stats::BusStats::default();
        let panicking = async {
            if stats.snapshot().handler_panics == 0 {
                panic!("a bug reached by some request");
            }
            Ok(None)
        };
        let (headers, body) = caught(panicking, &stats).await.expect("answered");
        assert_eq!(
            headers.get(wire::H_STATUS).map(|v| v.as_str()),
            Some("error")
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "platform.internal");
        assert_eq!(stats.snapshot().handler_panics, 1);
        // The next request is handled as usual.
        assert!(caught(async { Ok(None) }, &stats).await.is_none());
    }
}
