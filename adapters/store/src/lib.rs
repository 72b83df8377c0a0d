//! The event log of mebyo: one blake3 hash chain over every event.
//!
//! - [`format`]: the canonical, versioned encoding of an event and its hash (pure).
//! - [`log`]: the log file's frames, and crash recovery's torn-tail rule.
//! - [`embedded`]: the embedded default store (no server needed), with group commit.
//! - [`disk`]: the store's one way to the disk; [`simdisk`] simulates one with faults.
//! - [`check`]: the checks every frame must pass, shared by recovery and the verifiers.
//! - [`verify`]: recomputes the whole chain from genesis without any key.
//! - [`contract`]: the behaviour every [`EventStore`] backend must show, as tests.
//!
//! The on-disk format is specified byte by byte in `docs/design.md`.
// No unsafe code but one syscall without a safe wrapper (`disk::sync_file_range`).
#![deny(unsafe_code)]

pub mod check;
mod clean;
pub mod contract;
pub mod disk;
pub mod embedded;
pub mod format;
pub mod fsio;
pub mod log;
pub mod simdisk;
pub mod verify;
mod zeros;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub use embedded::{EmbeddedStore, OpenOptions};
pub use format::{Actor, Envelope, Hash, Id128, PayloadKind};

/// An event as read back from a store: the envelope, hash included.
pub type RecordedEvent = Envelope;

/// What a caller hands to `append`. Position, revision, time and hashes are the
/// store's to assign, so a caller cannot forge them.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: u16,
    pub actor: Actor,
    /// Unique id of this event, chosen at the edge (randomness is injected there).
    pub event_id: Id128,
    pub correlation_id: Id128,
    pub causation_id: Id128,
    pub payload_kind: PayloadKind,
    pub key_ref: String,
    /// Plaintext when `seal` is set, otherwise the bytes to store as they are.
    pub payload: Vec<u8>,
    /// Whether the store must encrypt `payload` under `key_ref` at append time. The
    /// store does it because only it knows the event's final place (stream,
    /// revision, type, position), which the ciphertext is bound to (P4.8(1)).
    pub seal: bool,
}

impl fmt::Debug for NewEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEvent")
            .field("event_type", &self.event_type)
            .field("actor", &self.actor)
            .field("payload_kind", &self.payload_kind)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

impl NewEvent {
    /// A plaintext operational event (no personal data).
    pub fn plain(
        event_type: impl Into<String>,
        actor: Actor,
        event_id: Id128,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version: 1,
            actor,
            event_id,
            correlation_id: event_id,
            causation_id: event_id,
            payload_kind: PayloadKind::Plain,
            key_ref: String::new(),
            payload,
            seal: false,
        }
    }

    /// A person-related event whose plaintext the store seals under `key_ref`.
    pub fn to_seal(
        event_type: impl Into<String>,
        actor: Actor,
        event_id: Id128,
        key_ref: impl Into<String>,
        plaintext: Vec<u8>,
    ) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version: 1,
            actor,
            event_id,
            correlation_id: event_id,
            causation_id: event_id,
            payload_kind: PayloadKind::AesSiv,
            key_ref: key_ref.into(),
            payload: plaintext,
            seal: true,
        }
    }
}

/// Where an event will stand: what a sealed payload is bound to, so that a
/// payload copied to another place fails to decrypt.
#[derive(Debug, Clone, Copy)]
pub struct SealPlace<'a> {
    pub stream_id: &'a str,
    pub stream_revision: u64,
    pub event_type: &'a str,
    pub position: u64,
}

/// Encrypts payloads at append time (the seam to the key store). Errors are
/// reasons (an unknown or erased key), never key material.
pub trait Sealer: Send + Sync + 'static {
    fn seal(
        &self,
        key_ref: &str,
        place: &SealPlace<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, String>;
}

/// Optimistic concurrency on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last revision must be exactly this.
    Exact(u64),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => write!(f, "any"),
            Self::NoStream => write!(f, "no stream"),
            Self::Exact(n) => write!(f, "revision {n}"),
        }
    }
}

/// What a stream holds now, as a conflict reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActualRevision {
    NoStream,
    Revision(u64),
}

impl fmt::Display for ActualRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStream => write!(f, "no stream"),
            Self::Revision(n) => write!(f, "revision {n}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Global position of the first appended event.
    pub first_position: u64,
    /// The stream's revision after the append (of its last event).
    pub last_revision: u64,
    /// Hash of the last appended event.
    pub last_hash: Hash,
}

/// The chain's head: how many events there are, and the hash of the last one
/// (the genesis value when empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub count: u64,
    pub hash: Hash,
}

/// Storage failures: the store could not do what was asked, through no fault of
/// the request. Kept apart from refusals of the request itself (esrs style).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage IO failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store stopped accepting writes after an IO failure and must be reopened: {0}")]
    Poisoned(String),
    #[error("the log is damaged at position {position} (byte offset {offset}): {reason}")]
    Corrupt {
        position: u64,
        offset: u64,
        reason: String,
    },
    #[error("the store is closed")]
    Closed,
    #[error("{0}")]
    Other(String),
}

/// Why an append was not acknowledged. Nothing was written, except possibly in
/// one case: [`StoreError::Poisoned`] answered to the batch whose `fdatasync`
/// failed, whose bytes may or may not be on disk. Its writer cannot tell, so
/// it says "not acknowledged", never "not written"; a retry with the same
/// idempotency key after the restart is safe either way.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream}: expected {expected}, but it is at {actual}")]
    WrongExpectedRevision {
        stream: String,
        expected: ExpectedRevision,
        actual: ActualRevision,
    },
    #[error("invalid event: {0}")]
    Invalid(#[from] format::FormatError),
    #[error("an append holds {count} events, more than the limit of {max}")]
    TooManyEvents { count: usize, max: usize },
    #[error("an append must hold at least one event")]
    Empty,
    #[error("sealing the payload failed: {0}")]
    Seal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stream of recorded events for subscribers.
pub type EventStream = futures::stream::BoxStream<'static, Result<RecordedEvent, StoreError>>;

/// The seam between the application and a storage backend. Every backend
/// (embedded, NATS JetStream, KurrentDB) must pass [`contract`].
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends events to one stream atomically; resolves only once they are durable.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError>;

    /// Up to `max` events of one stream from `from_revision` on, in revision order.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_revision: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `max` events from global position `from` on, in position order.
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Every event from `from` on: first those already stored, then new ones as
    /// they become durable, with no gap and no duplicate at the switch.
    fn subscribe_all(&self, from: u64) -> EventStream;

    /// The durable head of the chain.
    fn head(&self) -> Head;
}

/// Wall-clock time, injected so that tests and simulations control it.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since the Unix epoch, UTC.
    fn now_us(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the system clock is before 1970");
        d.as_micros() as i64
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_us: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_us)))
    }
    pub fn set(&self, now_us: i64) {
        self.0.store(now_us, Ordering::SeqCst);
    }
    pub fn advance(&self, by_us: i64) {
        self.0.fetch_add(by_us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
