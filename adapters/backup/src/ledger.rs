//! Reads the event log **read-only**, straight from the file.
//!
//! A running server holds the ledger's write lock; a backup must not take it.
//! Reading is still safe: the log is append-only, so frames below the durable
//! head never change. The head (count and hash) comes from the store, which only
//! publishes fsynced events; bytes after it (a batch being written) are ignored,
//! so a backup never holds an event that a crash could still take back.

use std::fs::File;
use std::path::{Path, PathBuf};

use mebyo_store::format::{Hash, chain_hash, genesis_hash};
use mebyo_store::log::{FileHeader, FrameReader, HEADER_BYTES};
use mebyo_store::{EmbeddedStore, Head};

use crate::error::{BackupError, Result};

pub(crate) struct LogFile {
    pub file: File,
    pub path: PathBuf,
    pub header: FileHeader,
    pub len: u64,
}

impl LogFile {
    pub fn open(ledger_dir: &Path) -> Result<Self> {
        let path = EmbeddedStore::log_path(ledger_dir);
        let file = File::open(&path).map_err(|e| BackupError::io("open", &path, e))?;
        let header = FileHeader::read_from(&file).map_err(|e| BackupError::Ledger {
            reason: format!("{}: {e}", path.display()),
        })?;
        let len = file
            .metadata()
            .map_err(|e| BackupError::io("stat", &path, e))?
            .len();
        Ok(Self {
            file,
            path,
            header,
            len,
        })
    }

    pub fn genesis(&self) -> Hash {
        genesis_hash(&self.header.ledger_id)
    }

    /// Follows the chain from byte `byte_from` (which must hold position `from`,
    /// linking to `prev`) up to position `to`, checking every frame's checksum,
    /// hash, link and position, and returns the byte offset where `to` starts.
    /// What goes into a backup is thus proven to be the chain the head names.
    pub fn walk(&self, byte_from: u64, from: u64, prev: Hash, head: Head) -> Result<u64> {
        let broken = |position: u64, offset: u64, why: &str| BackupError::Ledger {
            reason: format!(
                "{}: position {position} (byte offset {offset}): {why}",
                self.path.display()
            ),
        };
        if byte_from < HEADER_BYTES || byte_from > self.len {
            return Err(broken(from, byte_from, "start is outside the log"));
        }
        let mut reader = FrameReader::new(&self.file, byte_from, self.len);
        let mut hash = prev;
        let mut position = from;
        while position < head.count {
            let offset = reader.offset();
            let frame = match reader
                .next_frame()
                .map_err(|e| BackupError::io("read", &self.path, e))?
            {
                None => return Err(broken(position, offset, "the log ends before the head")),
                Some(Err(fault)) => return Err(broken(position, offset, &format!("{fault:?}"))),
                Some(Ok(f)) => f,
            };
            if !frame.crc_ok {
                return Err(broken(position, offset, "frame checksum mismatch"));
            }
            if frame.position() != position {
                return Err(broken(position, offset, "frame claims another position"));
            }
            if frame.stored_prev_hash() != hash {
                return Err(broken(
                    position,
                    offset,
                    "previous hash does not link to the chain (the log diverged from the base backup?)",
                ));
            }
            let stored = frame.stored_hash();
            if chain_hash(frame.canonical()) != stored {
                return Err(broken(
                    position,
                    offset,
                    "the event's bytes do not match its hash",
                ));
            }
            hash = stored;
            position += 1;
        }
        if hash != head.hash {
            return Err(BackupError::Ledger {
                reason: format!(
                    "the chain at position {} has hash {}, but the store's head is {}",
                    head.count,
                    hex::encode(hash),
                    hex::encode(head.hash)
                ),
            });
        }
        Ok(reader.offset())
    }
}
