//! The projection snapshot on disk: the live read models, sealed, so that a
//! restarted server is serving again in seconds instead of replaying the whole log
//! (issue 4 §9: "a restart is serving again in ≤ 10 s; projection snapshots are
//! fine if they are checked against the log's hash at load").
//!
//! Why sealed: the models hold pseudonymous ids, record categories and consent
//! rows, which are personal data; nothing personal is stored in plaintext (P4.8(1)).
//! They are sealed under the platform audit key, the key that already seals the
//! access records that outlive an erasure, because the snapshot is derived data of
//! the same reach. Erasure (P4.9) stays effective: the models drop an erased
//! person's rows and the server writes a new snapshot soon after any erasure
//! ([`crate::views::SnapshotPolicy`]), replacing the old file.
//!
//! Format (all integers little-endian):
//!
//! ```text
//! header   (56 bytes) "MEBYOPRJ" ‖ u8 version=1 ‖ 7 zero bytes ‖ u64 position
//!                     ‖ [u8; 32] hash of the event at position-1 (zeros at 0)
//! chunk i  (repeated) u32 sealed_len ‖ AES-SIV seal of ≤ 4 MiB of the
//!                     ReadModels::snapshot() bytes, with associated data
//!                     "mebyo-projection-snapshot-v1" ‖ header ‖ u64 i ‖ u8 last
//! ```
//!
//! The associated data binds every chunk to the header, its index and whether it
//! is the last, so a truncated, reordered or spliced file fails to open. Sealing in
//! chunks keeps the peak memory at one plaintext copy plus one chunk. The write is
//! crash-safe: a temporary file, fsynced, renamed over the old one, directory
//! fsynced; a crash leaves the old snapshot or the new one, never a mix.
//!
//! At load, the position and hash are checked against the log itself (the event at
//! position-1 must have that hash) and [`ReadModels::restore`] checks the body's
//! blake3 sum: a snapshot of another ledger, of a rewritten history or a damaged
//! file is refused, and the caller replays from the start instead.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mebyo_crypto::Dek;

const MAGIC: &[u8; 8] = b"MEBYOPRJ";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 56;
const CHUNK_BYTES: usize = 4 << 20;
/// A sealed chunk is never larger than this; anything else is damage.
const SEALED_CHUNK_BYTES_MAX: usize = CHUNK_BYTES + mebyo_crypto::SEAL_OVERHEAD;
const AD_DOMAIN: &[u8] = b"mebyo-projection-snapshot-v1";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot file IO: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a projection snapshot of a supported version")]
    Format,
    #[error("the snapshot does not open under the audit key (damaged or spliced)")]
    Seal,
}

/// Where the snapshot lives in the data directory.
pub fn path(root: &Path) -> PathBuf {
    root.join("projections").join("models.snap")
}

/// What a snapshot claims to cover, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covers {
    pub position: u64,
    pub last_hash: Option<[u8; 32]>,
}

fn header(c: Covers) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = VERSION;
    h[16..24].copy_from_slice(&c.position.to_le_bytes());
    h[24..56].copy_from_slice(&c.last_hash.unwrap_or([0; 32]));
    h
}

fn parse_header(h: &[u8; HEADER_LEN]) -> Result<Covers, SnapshotFileError> {
    if &h[..8] != MAGIC || h[8] != VERSION || h[9..16] != [0; 7] {
        return Err(SnapshotFileError::Format);
    }
    let position = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    let hash: [u8; 32] = h[24..56].try_into().expect("32 bytes");
    // Position 0 has no previous event; any other position names one.
    let last_hash = (position > 0).then_some(hash);
    if position == 0 && hash != [0; 32] {
        return Err(SnapshotFileError::Format);
    }
    Ok(Covers {
        position,
        last_hash,
    })
}

fn chunk_ad(header: &[u8; HEADER_LEN], index: u64, last: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_DOMAIN.len() + HEADER_LEN + 9);
    ad.extend_from_slice(AD_DOMAIN);
    ad.extend_from_slice(header);
    ad.extend_from_slice(&index.to_le_bytes());
    ad.push(last as u8);
    ad
}

/// Writes `models` (the bytes of `ReadModels::snapshot`) covering `covers`, sealed
/// under `dek`, replacing any previous snapshot atomically. Returns the file size.
pub fn write(
    target: &Path,
    dek: &Dek,
    covers: Covers,
    models: &[u8],
) -> Result<u64, SnapshotFileError> {
    let h = header(covers);
    // An empty body still gets one (empty) chunk, so "the last chunk was seen" is
    // the single rule that proves the file complete.
    let chunks: Vec<&[u8]> = if models.is_empty() {
        vec![&[]]
    } else {
        models.chunks(CHUNK_BYTES).collect()
    };
    let n = chunks.len();
    let mut size = HEADER_LEN as u64;
    let mut sealing_failed = false;
    let written = mebyo_store::fsio::write_atomic_with(target, |out| {
        out.write_all(&h)?;
        // Sealed a batch at a time on every core: AES-SIV runs at ~400 MB/s on one
        // core here, the slowest step of a save or a load.
        for (b, batch) in chunks.chunks(workers()).enumerate() {
            let first = b * workers();
            let sealed = par_map(batch, |k, chunk| {
                let i = first + k;
                mebyo_crypto::seal(dek, &chunk_ad(&h, i as u64, i + 1 == n), chunk)
            });
            for sealed in sealed {
                let Ok(sealed) = sealed else {
                    sealing_failed = true;
                    return Err(std::io::Error::other("sealing a snapshot chunk failed"));
                };
                assert!(sealed.len() <= SEALED_CHUNK_BYTES_MAX);
                out.write_all(&(sealed.len() as u32).to_le_bytes())?;
                out.write_all(&sealed)?;
                size += 4 + sealed.len() as u64;
            }
        }
        Ok(())
    });
    match written {
        Ok(()) => Ok(size),
        Err(_) if sealing_failed => Err(SnapshotFileError::Seal),
        Err(e) => Err(e.into()),
    }
}

/// Reads only the header: what the snapshot claims to cover.
pub fn covers(source: &Path) -> Result<Covers, SnapshotFileError> {
    let mut h = [0u8; HEADER_LEN];
    std::fs::File::open(source)?.read_exact(&mut h)?;
    parse_header(&h)
}

/// Reads and opens a snapshot: what it covers and the models' bytes, for
/// `ReadModels::restore`.
pub fn read(source: &Path, dek: &Dek) -> Result<(Covers, Vec<u8>), SnapshotFileError> {
    let file = std::fs::File::open(source)?;
    let len = file.metadata()?.len();
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut h = [0u8; HEADER_LEN];
    input.read_exact(&mut h)?;
    let covers = parse_header(&h)?;
    // Plaintext is no longer than the file: one allocation, not doubling growth.
    let mut models = Vec::with_capacity(len as usize);
    let mut index = 0u64;
    let mut consumed = HEADER_LEN as u64;
    loop {
        // Read a batch of sealed chunks, then open them on every core.
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(workers());
        let mut at_end = false;
        while batch.len() < workers() {
            if consumed == len {
                at_end = true;
                break;
            }
            let mut n = [0u8; 4];
            input
                .read_exact(&mut n)
                .map_err(|_| SnapshotFileError::Seal)?;
            let n = u32::from_le_bytes(n) as usize;
            if n > SEALED_CHUNK_BYTES_MAX {
                return Err(SnapshotFileError::Format);
            }
            let mut sealed = vec![0u8; n];
            input
                .read_exact(&mut sealed)
                .map_err(|_| SnapshotFileError::Seal)?;
            consumed += 4 + n as u64;
            batch.push(sealed);
        }
        if batch.is_empty() {
            // The file ended before a chunk marked last: truncated.
            return Err(SnapshotFileError::Seal);
        }
        let first = index;
        // The last flag is not stored: try "not last" first, as almost every chunk
        // is; the tag tells which one holds.
        let opened = par_map(&batch, |k, sealed| {
            let i = first + k as u64;
            match mebyo_crypto::open(dek, &chunk_ad(&h, i, false), sealed) {
                Ok(p) => Ok((p, false)),
                Err(_) => mebyo_crypto::open(dek, &chunk_ad(&h, i, true), sealed)
                    .map(|p| (p, true))
                    .map_err(|_| SnapshotFileError::Seal),
            }
        });
        let count = opened.len();
        for (k, opened) in opened.into_iter().enumerate() {
            let (plain, last) = opened?;
            models.extend_from_slice(&plain);
            if last {
                // Nothing may follow the last chunk: not in this batch, not in the
                // file (trailing bytes are damage, not padding).
                if k + 1 != count || consumed != len {
                    return Err(SnapshotFileError::Format);
                }
                return Ok((covers, models));
            }
        }
        if at_end {
            return Err(SnapshotFileError::Seal);
        }
        index += count as u64;
    }
}

/// Threads for sealing and opening: every core, at most 8.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f` over `items` on scoped threads (one per item; batches are `workers()`
/// long), results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().enumerate().map(|(k, x)| f(k, x)).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(k, x)| s.spawn(move || f(k, x)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sealing thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real DEK from a throwaway key store, one per seed.
    fn dek(seed: u8) -> Dek {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed as u64);
        let kek = mebyo_crypto::Kek::generate(&mut rng);
        let mut ks = mebyo_crypto::KeyStore::create(dir.path().join("ks"), &kek, &mut rng).unwrap();
        let who = mebyo_crypto::Pseudonym::new("snapshot-test").unwrap();
        ks.create_person_keys(&who, &mut rng).unwrap();
        ks.dek(&who, mebyo_crypto::DekKind::Health).unwrap()
    }

    fn covers_at(position: u64) -> Covers {
        Covers {
            position,
            last_hash: (position > 0).then_some([7; 32]),
        }
    }

    #[test]
    fn round_trip_small_large_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        for body in [
            Vec::new(),
            b"models".to_vec(),
            (0..(CHUNK_BYTES * 2 + 5))
                .map(|i| i as u8)
                .collect::<Vec<u8>>(),
        ] {
            write(&p, &dek(1), covers_at(42), &body).unwrap();
            assert_eq!(covers(&p).unwrap(), covers_at(42));
            let (c, back) = read(&p, &dek(1)).unwrap();
            assert_eq!(c, covers_at(42));
            assert_eq!(back, body);
        }
    }

    #[test]
    fn no_plaintext_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        let body = b"person-p-0001 category=vitals".repeat(100);
        write(&p, &dek(1), covers_at(3), &body).unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert!(!raw.windows(13).any(|w| w == b"person-p-0001"));
    }

    #[test]
    fn damage_of_every_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        let body: Vec<u8> = (0..(CHUNK_BYTES + 100)).map(|i| (i % 251) as u8).collect();
        write(&p, &dek(1), covers_at(9), &body).unwrap();
        let good = std::fs::read(&p).unwrap();
        let check = |bytes: &[u8]| {
            std::fs::write(&p, bytes).unwrap();
            read(&p, &dek(1)).unwrap_err()
        };
        // Wrong key.
        std::fs::write(&p, &good).unwrap();
        assert!(matches!(read(&p, &dek(2)), Err(SnapshotFileError::Seal)));
        // A header that claims another position: every chunk's AD differs.
        let mut moved = good.clone();
        moved[16] ^= 1;
        assert!(matches!(check(&moved), SnapshotFileError::Seal));
        // One flipped byte in the body.
        let mut flipped = good.clone();
        let at = good.len() - 10;
        flipped[at] ^= 0x40;
        assert!(matches!(check(&flipped), SnapshotFileError::Seal));
        // Truncated after the first chunk (which is not the last).
        let first = HEADER_LEN + 4 + u32::from_le_bytes(good[56..60].try_into().unwrap()) as usize;
        assert!(matches!(check(&good[..first]), SnapshotFileError::Seal));
        // Bytes after the last chunk.
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(check(&longer), SnapshotFileError::Format));
        // A one-chunk file with one byte after its only (last) chunk.
        write(&p, &dek(1), covers_at(9), b"small").unwrap();
        let mut one = std::fs::read(&p).unwrap();
        one.push(7);
        assert!(matches!(
            check(&one),
            SnapshotFileError::Format | SnapshotFileError::Seal
        ));
        // Not a snapshot at all.
        assert!(matches!(
            check(b"hello, world, this is not it at all, no, not at all..."),
            SnapshotFileError::Format | SnapshotFileError::Io(_)
        ));
    }

    #[test]
    fn a_crash_before_rename_keeps_the_old_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        write(&p, &dek(1), covers_at(1), b"old").unwrap();
        // A torn temporary file from a crash mid-write is ignored and overwritten.
        std::fs::write(p.with_extension("snap.tmp"), b"torn").unwrap();
        assert_eq!(read(&p, &dek(1)).unwrap().1, b"old");
        write(&p, &dek(1), covers_at(2), b"new").unwrap();
        assert_eq!(read(&p, &dek(1)).unwrap(), (covers_at(2), b"new".to_vec()));
    }
}
