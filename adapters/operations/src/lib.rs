//! The operations services: the imperative shell that runs `mebyo-operations`'
//! pure deciders on the platform (issue 7 §2–§7).
//!
//! Every command goes through [`Platform::execute_uncached`], so it gets the same
//! sealing and optimistic concurrency as the core's commands; a refusal writes
//! nothing and comes back as `Ok(Err(Refusal))`, a failure of the machinery as
//! `Err`. Time is the platform's injected clock; nothing here reads another.
//!
//! | module | what runs there |
//! | --- | --- |
//! | [`settings`] | lead time, review interval, retention, anomaly thresholds (`DATA/operations.json`) |
//! | [`incidents`] | incident commands, credential rotation (P4.14(4)②), reports, listing |
//! | [`anomaly`] | the subscriber that opens incidents from access events (P4.4(1)) |
//! | [`maintenance`] | windows, portal notices, publishing to providers through a [`NoticePublisher`] (P4.3) |
//! | [`media`] | export approval, the media ledger, disposal (P4.7, P4.9) |
//! | [`monitoring`] | firewall reviews and their flag, retention, the synthetic probe (P4.4, P4.5) |
//! | [`background`] | what the server runs: the periodic tick (notices, probe, review flag) |
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod background;
pub mod incidents;
pub mod maintenance;
pub mod media;
pub mod monitoring;
pub mod settings;

pub use mebyo_operations::maintenance::NoticePublisher;
pub use settings::OpsSettings;

use mebyo_domain::{Actor, Decider, DomainEvent};
use mebyo_platform::codec::{self, Decoded};
use mebyo_platform::{Outcome, Platform, PlatformError};
use mebyo_store::EventStore;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Publish(#[from] mebyo_operations::maintenance::PublishError),
    #[error("operations settings: {0}")]
    Settings(String),
    #[error("synthetic probe (P4.4(2)): {0}")]
    Probe(String),
}

impl From<codec::CodecError> for OpsError {
    fn from(e: codec::CodecError) -> Self {
        OpsError::Platform(e.into())
    }
}

impl From<mebyo_store::StoreError> for OpsError {
    fn from(e: mebyo_store::StoreError) -> Self {
        OpsError::Platform(e.into())
    }
}

/// Runs decider `D` on `stream` for `actor`, with the actor's facts.
pub async fn execute<D: Decider>(
    p: &Platform,
    stream: &str,
    actor: &Actor,
    cmd: &D::Command,
) -> Outcome<Vec<D::Event>> {
    let facts = p.facts_for(actor).await?;
    p.execute_uncached::<D>(stream, actor, cmd, &facts).await
}

/// Every event of one stream, decoded, in order. Events of other types that may
/// share a stream are skipped only if they fail to decode as `E` — they do not
/// here: each operational stream holds one event family.
pub async fn read_stream<E: DomainEvent>(p: &Platform, stream: &str) -> Result<Vec<E>, OpsError> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = p.store().read_stream(stream, from, 512).await?;
        let Some(last) = page.last() else { break };
        from = last.stream_revision + 1;
        for env in &page {
            if let Decoded::Event(e) = codec::decode::<E>(env, p.keys())? {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// The state of decider `D`'s stream, folded from the log.
pub async fn state<D: Decider>(p: &Platform, stream: &str) -> Result<D::State, OpsError> {
    Ok(D::fold(&read_stream::<D::Event>(p, stream).await?))
}
