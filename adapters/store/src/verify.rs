//! Recomputes the whole chain from genesis, with no key and without opening the
//! store for writing: what an auditor runs on a ledger or a backup.
//!
//! Checks, for every frame in order: it is a whole frame; its blake3 hash
//! recomputed over the canonical bytes equals the stored hash; its previous hash
//! links to the hash before it (genesis for position 0); its position is the next
//! one; its stream revision follows its stream's last; its recorded-at does not go
//! back in time. The first failure stops the run and names its position with the
//! expected and found hash.

use rustc_hash::FxHashMap as HashMap;
use std::fs::File;
use std::path::Path;

use crate::format::{Hash, Id128, chain_hash, genesis_hash};
use crate::log::{self, Damage, FileHeader, FrameReader, HEADER_BYTES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    pub ledger_id: Id128,
    pub count: u64,
    pub head_hash: Hash,
    /// Bytes of an interrupted, unacknowledged write at the end (repaired at the
    /// next open). Zero after a clean shutdown.
    pub torn_tail_bytes: u64,
}

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
    /// Recorded-at goes back in time.
    TimeGoesBack,
    /// The bytes are not a frame and a crash cannot explain them.
    DamagedFrame,
    /// A person-related event type stored in plaintext (P4.8(1)).
    Plaintext,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub position: u64,
    pub offset: u64,
    pub kind: BreakKind,
    pub expected: Option<Hash>,
    pub found: Option<Hash>,
    pub detail: String,
    /// Events verified before the break.
    pub verified: u64,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "position {} (byte offset {}): {:?}: {}",
            self.position, self.offset, self.kind, self.detail
        )?;
        if let (Some(e), Some(x)) = (self.expected, self.found) {
            write!(
                f,
                "; expected hash {}, found {}",
                hex::encode(e),
                hex::encode(x)
            )?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Outcome {
    Intact(Intact),
    Broken(Break),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Header {
        path: String,
        source: log::ReadHeaderError,
    },
}

/// Options for a verification run.
pub struct Options<'a> {
    /// Called with (bytes verified, bytes in total) now and then.
    pub progress: &'a mut dyn FnMut(u64, u64),
    /// Says whether an event type concerns a person, so that verify can check that
    /// such events are never stored in plaintext (P4.8(1)). `None` skips the check.
    pub person_related: Option<&'a dyn Fn(&str) -> bool>,
}

/// Verifies the log file at `path`.
pub fn verify_file(path: &Path, opts: Options<'_>) -> Result<Outcome, VerifyError> {
    let p = || path.display().to_string();
    let file = File::open(path).map_err(|source| VerifyError::Io { path: p(), source })?;
    let header =
        FileHeader::read_from(&file).map_err(|source| VerifyError::Header { path: p(), source })?;
    let file_len = file
        .metadata()
        .map_err(|source| VerifyError::Io { path: p(), source })?
        .len();
    verify_open_file(&file, &header, file_len, opts)
        .map_err(|source| VerifyError::Io { path: p(), source })
}

fn verify_open_file(
    file: &File,
    header: &FileHeader,
    file_len: u64,
    opts: Options<'_>,
) -> std::io::Result<Outcome> {
    let mut reader = FrameReader::new(file, HEADER_BYTES, file_len);
    let mut head = genesis_hash(&header.ledger_id);
    let mut position = 0u64;
    let mut last_time = i64::MIN;
    let mut streams: HashMap<Box<str>, u64> = HashMap::default();
    let broken = |position, offset, kind, expected, found, detail: String| {
        Ok(Outcome::Broken(Break {
            position,
            offset,
            kind,
            expected,
            found,
            detail,
            verified: position,
        }))
    };
    loop {
        if position.is_multiple_of(65_536) {
            (opts.progress)(reader.offset(), file_len);
        }
        let offset = reader.offset();
        let frame = match reader.next_frame()? {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(fault)) => {
                return match log::classify_damage(file, offset, file_len, None)? {
                    Damage::TornTail => Ok(intact(header, position, head, file_len - offset)),
                    Damage::Corrupt => broken(
                        position,
                        offset,
                        BreakKind::DamagedFrame,
                        None,
                        None,
                        format!("{fault:?}"),
                    ),
                };
            }
        };
        let stored = frame.stored_hash();
        let computed = chain_hash(frame.canonical());
        if !frame.crc_ok {
            let end = frame.offset + frame.len();
            if log::classify_damage(file, offset, file_len, Some(end))? == Damage::TornTail {
                return Ok(intact(header, position, head, file_len - offset));
            }
            if computed == stored {
                return broken(
                    position,
                    offset,
                    BreakKind::DamagedFrame,
                    None,
                    None,
                    "frame checksum mismatch (frame header damaged)".into(),
                );
            }
        }
        if computed != stored {
            return broken(
                position,
                offset,
                BreakKind::HashMismatch,
                Some(computed),
                Some(stored),
                "the event's bytes do not match its hash".into(),
            );
        }
        let prev = frame.stored_prev_hash();
        if prev != head {
            return broken(
                position,
                offset,
                BreakKind::BrokenLink,
                Some(head),
                Some(prev),
                "previous hash does not link to the event before".into(),
            );
        }
        if frame.position() != position {
            return broken(
                position,
                offset,
                BreakKind::PositionOutOfOrder,
                None,
                None,
                format!("frame claims position {}", frame.position()),
            );
        }
        let Some(fields) = crate::format::peek(frame.body) else {
            return broken(
                position,
                offset,
                BreakKind::DamagedFrame,
                None,
                None,
                "unparsable fields".into(),
            );
        };
        let want = streams.get(fields.stream_id).map_or(0, |r| r + 1);
        if fields.stream_revision != want {
            return broken(
                position,
                offset,
                BreakKind::RevisionOutOfOrder,
                None,
                None,
                format!(
                    "stream revision {} where {want} was due",
                    fields.stream_revision
                ),
            );
        }
        match streams.get_mut(fields.stream_id) {
            Some(r) => *r = fields.stream_revision,
            None => {
                streams.insert(fields.stream_id.into(), fields.stream_revision);
            }
        }
        if fields.recorded_at_us < last_time {
            return broken(
                position,
                offset,
                BreakKind::TimeGoesBack,
                None,
                None,
                "recorded-at goes back in time".into(),
            );
        }
        last_time = fields.recorded_at_us;
        if let Some(person_related) = opts.person_related
            && fields.payload_kind == 0
            && person_related(fields.event_type)
        {
            return broken(
                position,
                offset,
                BreakKind::Plaintext,
                None,
                None,
                format!(
                    "person-related event type {} stored in plaintext (P4.8(1))",
                    fields.event_type
                ),
            );
        }
        head = stored;
        position += 1;
    }
    (opts.progress)(file_len, file_len);
    Ok(intact(header, position, head, 0))
}

fn intact(header: &FileHeader, count: u64, head_hash: Hash, torn_tail_bytes: u64) -> Outcome {
    Outcome::Intact(Intact {
        ledger_id: header.ledger_id,
        count,
        head_hash,
        torn_tail_bytes,
    })
}
