//! Recomputes the whole chain from genesis, with no key and without opening the
//! store for writing: what an auditor runs on a ledger or a backup.
//!
//! Checks the file header, then every frame in order: it is a whole frame whose
//! crc holds (or a torn tail a crash explains), and it passes every check the
//! store's own recovery makes, with the same code (`check.rs`), plus its blake3
//! hash recomputed and, when asked, the plaintext rule. The first failure stops
//! the run and names its position and byte offset, with the expected and found
//! hash where there are hashes to compare.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::disk::DiskFile;
use std::path::Path;

pub use crate::check::BreakKind;
use crate::check::{Chain, Checks};
use crate::format::{Hash, Id128, chain_hash};
use crate::log::{
    self, Damage, FILE_MAGIC, FRAME_MAGIC, FileHeader, FrameReader, HEADER_BYTES, HeaderError,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    pub ledger_id: Id128,
    pub count: u64,
    pub head_hash: Hash,
    /// Bytes of an interrupted, unacknowledged write at the end (repaired at the
    /// next open). Zero after a clean shutdown.
    pub torn_tail_bytes: u64,
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

/// Opens the log file and reads its header. A file that is plainly not a
/// ledger (no magic, and no frame where the first one would be) is an error;
/// a ledger whose header is damaged is a [`Break`] at position 0 with the byte
/// offset of the damage (`Ok(Err(_))`).
pub fn open_log(path: &Path) -> Result<Result<(File, FileHeader, u64), Break>, VerifyError> {
    let p = || path.display().to_string();
    let io = |source| VerifyError::Io { path: p(), source };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let e = match FileHeader::read_from(&file) {
        Ok(h) => return Ok(Ok((file, h, file_len))),
        Err(log::ReadHeaderError::Io(e)) => return Err(io(e)),
        Err(log::ReadHeaderError::Header(e)) => e,
    };
    let mut head = [0u8; HEADER_BYTES as usize + 4];
    let n = (file_len as usize).min(head.len());
    FileExt::read_exact_at(&file, &mut head[..n], 0).map_err(io)?;
    let head = &head[..n];
    let magic_ok = head.get(..8) == Some(&FILE_MAGIC[..]);
    let frame_follows = head.get(HEADER_BYTES as usize..) == Some(&FRAME_MAGIC[..]);
    let offset = match e {
        _ if !magic_ok && !frame_follows => {
            return Err(VerifyError::Header {
                path: p(),
                source: e.into(),
            });
        }
        HeaderError::BadMagic => 0,
        HeaderError::UnknownVersion(_) => 8,
        HeaderError::Short => file_len,
        // The reserved bytes must be zero; otherwise the damage is somewhere in
        // the ledger id, the creation time or the crc itself.
        HeaderError::Checksum => head[36..60]
            .iter()
            .position(|&b| b != 0)
            .map_or(12, |i| 36 + i as u64),
    };
    Ok(Err(Break {
        position: 0,
        offset,
        kind: BreakKind::DamagedHeader,
        expected: None,
        found: None,
        detail: format!("the file header: {e}"),
        verified: 0,
    }))
}

/// Verifies the log file at `path`.
pub fn verify_file(path: &Path, opts: Options<'_>) -> Result<Outcome, VerifyError> {
    let (file, header, file_len) = match open_log(path)? {
        Ok(opened) => opened,
        Err(b) => return Ok(Outcome::Broken(b)),
    };
    verify_open_file(&file, &header, file_len, opts).map_err(|source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Verifies a log that is already open, on any disk (the simulated one's too).
/// A header that does not read is an error here, not a break with an offset
/// ([`verify_file`] finds that offset).
pub fn verify_open(file: &dyn DiskFile, opts: Options<'_>) -> std::io::Result<Outcome> {
    let header = FileHeader::read_from(file).map_err(std::io::Error::other)?;
    verify_open_file(file, &header, file.len()?, opts)
}

fn verify_open_file(
    file: &dyn DiskFile,
    header: &FileHeader,
    file_len: u64,
    opts: Options<'_>,
) -> std::io::Result<Outcome> {
    let mut reader = FrameReader::new(file, HEADER_BYTES, file_len);
    let mut chain = Chain::new(&header.ledger_id);
    let checks = Checks {
        hashes: true,
        person_related: opts.person_related,
    };
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
        let position = chain.count;
        if position.is_multiple_of(65_536) {
            (opts.progress)(reader.offset(), file_len);
        }
        let offset = reader.offset();
        let frame = match reader.next_frame()? {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(fault)) => {
                return match log::classify_damage(file, offset, file_len, None, chain.count)? {
                    Damage::TornTail => Ok(intact(header, &chain, file_len - offset)),
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
        if !frame.crc_ok {
            let end = frame.offset + frame.len();
            if log::classify_damage(file, offset, file_len, Some(end), chain.count)?
                == Damage::TornTail
            {
                return Ok(intact(header, &chain, file_len - offset));
            }
            let (stored, computed) = (frame.stored_hash(), chain_hash(frame.canonical()));
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
            return broken(
                position,
                offset,
                BreakKind::HashMismatch,
                Some(computed),
                Some(stored),
                "the event's bytes do not match its hash".into(),
            );
        }
        if let Err(f) = chain.check(&frame, checks) {
            return broken(position, offset, f.kind, f.expected, f.found, f.detail);
        }
    }
    (opts.progress)(file_len, file_len);
    Ok(intact(header, &chain, 0))
}

fn intact(header: &FileHeader, chain: &Chain, torn_tail_bytes: u64) -> Outcome {
    Outcome::Intact(Intact {
        ledger_id: header.ledger_id,
        count: chain.count,
        head_hash: chain.head_hash,
        torn_tail_bytes,
    })
}
