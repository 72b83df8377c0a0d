//! The checks every event of a ledger must pass, frame after frame: the one home
//! of what the store's recovery (`embedded::recover`), the offline verifier
//! (`verify`) and the audit scan (`mebyo-audit`) check, so that an auditor's
//! "intact" can never disagree with the store's refusal to open the same file
//! (issue 19 §8).
//!
//! For each whole frame whose crc holds, in log order ([`Chain::check`]):
//! 1. its durable lag is at most its position (no more events before it can
//!    have been unsynced than there are);
//! 2. its stored hash is the blake3 of its canonical bytes (when
//!    [`Checks::hashes`]: the verifier checks every frame, recovery only the
//!    head, relying on the crc for the rest);
//! 3. its previous hash is the hash of the event before (genesis for position 0);
//! 4. its position is the next one;
//! 5. its body decodes under every limit and alphabet of `format` (what every
//!    read of it will check);
//! 6. its stream revision follows its stream's last, and its previous-in-stream
//!    field names that last event's position (`NO_PREVIOUS` for a stream's
//!    first): `read_stream` walks streams by it;
//! 7. its recorded-at does not go back (the writer never lets it);
//! 8. when [`Checks::person_related`] is given, no person-related event type is
//!    stored in plaintext (P4.8(1)).

use rustc_hash::FxHashMap as HashMap;

use crate::format::{self, BodyRef, Hash, Id128, PayloadKind, chain_hash, genesis_hash};
use crate::log::{FrameRef, NO_PREVIOUS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The stored hash is not the hash of the event's bytes: the event was changed.
    HashMismatch,
    /// The event's previous hash is not the hash of the event before it: an event
    /// was deleted, inserted or moved.
    BrokenLink,
    /// The frame claims another position than its place in the log.
    PositionOutOfOrder,
    /// The event's stream revision does not follow its stream's previous one.
    RevisionOutOfOrder,
    /// The frame's previous-in-stream field does not name its stream's previous
    /// event (it is outside the hash, inside the crc: an edit with the crc redone).
    StreamLinkBroken,
    /// Recorded-at goes back in time.
    TimeGoesBack,
    /// The bytes are not a frame and a crash cannot explain them, or a frame's
    /// body breaks the encoding's rules.
    DamagedFrame,
    /// The file header (magic, version, ledger id, creation time, crc) is damaged.
    DamagedHeader,
    /// A person-related event type stored in plaintext (P4.8(1)).
    Plaintext,
}

/// What is wrong with a frame, before its position and offset are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: BreakKind,
    pub detail: String,
    pub expected: Option<Hash>,
    pub found: Option<Hash>,
}

impl Fault {
    fn new(kind: BreakKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            expected: None,
            found: None,
        }
    }
}

/// Which of the optional checks to run.
#[derive(Clone, Copy, Default)]
pub struct Checks<'a> {
    /// Recompute every frame's blake3 hash (check 2).
    pub hashes: bool,
    /// Says whether an event type concerns a person (check 8).
    pub person_related: Option<&'a dyn Fn(&str) -> bool>,
}

/// Where a stream stands: its last revision and that event's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTip {
    pub last_revision: u64,
    pub last_position: u64,
}

/// The chain as checked so far.
pub struct Chain {
    /// Events checked (the position the next frame must have).
    pub count: u64,
    /// Hash of the last event checked (genesis when none).
    pub head_hash: Hash,
    pub streams: HashMap<Box<str>, StreamTip>,
    /// Recorded-at of the last event checked (`i64::MIN` when none).
    pub last_recorded_at_us: i64,
}

impl Chain {
    pub fn new(ledger_id: &Id128) -> Self {
        Self {
            count: 0,
            head_hash: genesis_hash(ledger_id),
            streams: HashMap::default(),
            last_recorded_at_us: i64::MIN,
        }
    }

    /// Checks `frame` (whole, crc held) as the next event and, if it passes,
    /// takes it into the chain. On a fault nothing changes.
    pub fn check<'f>(
        &mut self,
        frame: &FrameRef<'f>,
        checks: Checks<'_>,
    ) -> Result<BodyRef<'f>, Fault> {
        if u64::from(frame.durable_lag) > self.count {
            return Err(Fault::new(
                BreakKind::DamagedFrame,
                format!(
                    "the frame header's durable lag is {}, more than the {} events before it",
                    frame.durable_lag, self.count
                ),
            ));
        }
        let stored = frame.stored_hash();
        if checks.hashes {
            let computed = chain_hash(frame.canonical());
            if computed != stored {
                return Err(Fault {
                    kind: BreakKind::HashMismatch,
                    detail: "the event's bytes do not match its hash".into(),
                    expected: Some(computed),
                    found: Some(stored),
                });
            }
        }
        let prev = frame.stored_prev_hash();
        if prev != self.head_hash {
            return Err(Fault {
                kind: BreakKind::BrokenLink,
                detail: "previous hash does not link to the event before".into(),
                expected: Some(self.head_hash),
                found: Some(prev),
            });
        }
        let position = self.count;
        if frame.position() != position {
            return Err(Fault::new(
                BreakKind::PositionOutOfOrder,
                format!("frame claims position {}", frame.position()),
            ));
        }
        let (body, _) = format::parse_body(frame.body)
            .map_err(|e| Fault::new(BreakKind::DamagedFrame, format!("the body: {e}")))?;
        let tip = self.streams.get(body.stream_id).copied();
        let (want_rev, want_prev) =
            tip.map_or((0, NO_PREVIOUS), |t| (t.last_revision + 1, t.last_position));
        if body.stream_revision != want_rev {
            return Err(Fault::new(
                BreakKind::RevisionOutOfOrder,
                format!(
                    "stream revision {} where {want_rev} was due",
                    body.stream_revision
                ),
            ));
        }
        if frame.prev_in_stream != want_prev {
            let name = |p: u64| {
                if p == NO_PREVIOUS {
                    "none (first of its stream)".to_owned()
                } else {
                    format!("position {p}")
                }
            };
            return Err(Fault::new(
                BreakKind::StreamLinkBroken,
                format!(
                    "previous event in stream is {}, the frame says {}",
                    name(want_prev),
                    name(frame.prev_in_stream)
                ),
            ));
        }
        if body.recorded_at_us < self.last_recorded_at_us {
            return Err(Fault::new(
                BreakKind::TimeGoesBack,
                "recorded-at goes back in time",
            ));
        }
        if let Some(person_related) = checks.person_related
            && body.payload_kind == PayloadKind::Plain
            && person_related(body.event_type)
        {
            return Err(Fault::new(
                BreakKind::Plaintext,
                format!(
                    "person-related event type {} stored in plaintext (P4.8(1))",
                    body.event_type
                ),
            ));
        }
        let tip = StreamTip {
            last_revision: body.stream_revision,
            last_position: position,
        };
        match self.streams.get_mut(body.stream_id) {
            Some(t) => *t = tip,
            None => {
                self.streams.insert(body.stream_id.into(), tip);
            }
        }
        self.head_hash = stored;
        self.last_recorded_at_us = body.recorded_at_us;
        self.count += 1;
        Ok(body)
    }
}
