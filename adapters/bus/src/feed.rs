//! The feed (P4.3, P4.6(2), P4.13): a JetStream stream that tells each provider,
//! on its own subjects, about consents that concern it (granted, revoked,
//! expired), its credentials being revoked or reported lost, and maintenance.
//!
//! Derived from the ledger, never the other way round: messages are published in
//! ledger order with `Nats-Msg-Id` set to a stable id, and at start the publisher
//! resumes after the last ledger position found in the stream. If JetStream loses
//! messages (it does not fsync each one), the publisher republishes from the
//! ledger; a provider may then see a message twice, with the same `id`.
//!
//! Isolation: every provider reads through one durable consumer created here,
//! `feed-<provider>`, whose single filter subject is `<prefix>.feed.<provider>.>`
//! (server 2.9 ignores `filter_subjects`, so never several). NATS permissions
//! must then let a provider's user pull only from its own consumer (see
//! docs/bus.md, "Deploying").

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use mebyo_domain::ProviderId;

use crate::state::FeedMsg;
use crate::wire;
use crate::{BusConfig, BusError};

pub async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &BusConfig,
) -> Result<stream::Stream, BusError> {
    js.get_or_create_stream(stream::Config {
        name: cfg.feed.stream.clone(),
        subjects: vec![format!("{}.feed.>", cfg.prefix)],
        storage: if cfg.feed.memory {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        },
        max_age: cfg.feed.max_age,
        max_bytes: cfg.feed.max_bytes,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| BusError::JetStream(format!("feed stream {}: {e}", cfg.feed.stream)))
}

pub async fn ensure_consumer(
    stream: &stream::Stream,
    cfg: &BusConfig,
    provider: &ProviderId,
) -> Result<(), BusError> {
    let name = wire::feed_consumer(provider.as_str());
    stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: wire::feed_filter(&cfg.prefix, provider.as_str()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| BusError::JetStream(format!("consumer {name}: {e}")))?;
    Ok(())
}

/// The last ledger position the stream holds a message for, if any. Looks back
/// over at most `limit` messages (notices carry no position).
pub async fn cursor(stream: &mut stream::Stream, limit: u64) -> Result<Option<u64>, BusError> {
    let info = stream
        .info()
        .await
        .map_err(|e| BusError::JetStream(format!("stream info: {e}")))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return Ok(None);
    }
    let mut seq = last;
    let mut looked = 0;
    while seq >= first.max(1) && looked < limit {
        if let Ok(m) = stream.get_raw_message(seq).await
            && let Some(p) = m.headers.get(wire::H_POSITION)
            && let Ok(p) = p.as_str().parse::<u64>()
        {
            return Ok(Some(p));
        }
        seq -= 1;
        looked += 1;
    }
    Ok(None)
}

/// Publishes one message, waiting for JetStream's acknowledgement; retries
/// (broker restarting) until it succeeds or `stop` says so.
pub async fn publish(
    js: &jetstream::Context,
    prefix: &str,
    msg: &FeedMsg,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> bool {
    let subject = wire::feed_subject(prefix, msg.provider.as_str(), msg.kind);
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("{}:{}", msg.provider, msg.id).as_str(),
    );
    if let Some(p) = msg.position {
        headers.insert(wire::H_POSITION, p.to_string().as_str());
    }
    let body = bytes::Bytes::from(msg.body());
    let mut backoff = Duration::from_millis(50);
    loop {
        match js
            .publish_with_headers(subject.clone(), headers.clone(), body.clone())
            .await
        {
            Ok(ack) => match ack.await {
                Ok(_) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, %subject, "feed publish not acknowledged; retrying")
                }
            },
            Err(e) => tracing::warn!(error = %e, %subject, "feed publish failed; retrying"),
        }
        if *stop.borrow() {
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
