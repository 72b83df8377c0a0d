//! Encrypted backup files: a header, then the plaintext in fixed-size chunks,
//! each sealed on its own with AES-256-SIV.
//!
//! Layout: `"MEBYOBKF"` ‖ version `1` ‖ 16-byte key id ‖ u32 LE chunk size `C`
//! (29 bytes), then chunks `tag(16) ‖ ciphertext`, every one holding `C` plaintext
//! bytes except the last, which holds `1..=C` (or 0 for an empty file: there is
//! always at least one chunk, so cutting a file down to its header is detected).
//!
//! Each chunk's S2V associated data is
//! `["mebyo-backup-chunk-v1", header, backup id, file name, chunk index (u64 BE), final flag]`:
//! a chunk moved to another position, file or backup, a chunk dropped from the
//! middle (the next one lands on the wrong index) or from the end (the new last
//! chunk was not sealed as final), and any edited byte all fail authentication.
//! Chunking keeps memory bounded whatever the log size; SIV needs no nonce, so
//! there is no nonce to repeat.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use aes_siv::siv::Aes256Siv;

use crate::error::{BackupError, Result};
use crate::fsio;
use crate::keys::BackupKey;

const MAGIC: &[u8; 8] = b"MEBYOBKF";
const VERSION: u8 = 1;
pub(crate) const HEADER_BYTES: usize = 8 + 1 + 16 + 4;
const TAG_BYTES: usize = 16;
const DOMAIN: &[u8] = b"mebyo-backup-chunk-v1";

/// Default plaintext bytes per chunk.
pub const CHUNK_BYTES_DEFAULT: usize = 1 << 20;
/// Bounds on the chunk size, checked when writing and when reading a header, so a
/// damaged header cannot make a reader allocate without limit.
pub const CHUNK_BYTES_MIN: usize = 1 << 10;
pub const CHUNK_BYTES_MAX: usize = 16 << 20;

/// What was written, for the manifest.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub bytes: u64,
    pub plain_bytes: u64,
    pub chunks: u64,
    pub blake3: String,
}

fn header(key: &BackupKey, chunk_bytes: usize) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8] = VERSION;
    h[9..25].copy_from_slice(&key.id());
    h[25..29].copy_from_slice(&(chunk_bytes as u32).to_le_bytes());
    h
}

fn seal_chunk(
    siv: &mut Aes256Siv,
    header: &[u8],
    backup_id: &str,
    name: &str,
    index: u64,
    last: bool,
    plain: &[u8],
) -> Result<Vec<u8>> {
    let idx = index.to_be_bytes();
    let fin = [last as u8];
    siv.encrypt(
        [
            DOMAIN,
            header,
            backup_id.as_bytes(),
            name.as_bytes(),
            &idx[..],
            &fin[..],
        ],
        plain,
    )
    .map_err(|_| BackupError::InvalidInput {
        what: "chunk",
        reason: "AES-SIV refused to encrypt".into(),
    })
}

/// Encrypts exactly `plain_len` bytes from `src` into the new file `dest` and
/// fsyncs it. The caller fsyncs the directory (once, for all files of a set).
pub(crate) fn encrypt_to_file(
    key: &BackupKey,
    backup_id: &str,
    name: &str,
    src: &mut dyn Read,
    plain_len: u64,
    chunk_bytes: usize,
    dest: &Path,
) -> Result<Written> {
    if !(CHUNK_BYTES_MIN..=CHUNK_BYTES_MAX).contains(&chunk_bytes) {
        return Err(BackupError::InvalidInput {
            what: "chunk size",
            reason: format!("{chunk_bytes} is outside {CHUNK_BYTES_MIN}..={CHUNK_BYTES_MAX}"),
        });
    }
    let mut out = fsio::create_new(dest)?;
    let io = |e| BackupError::io("write", dest, e);
    let h = header(key, chunk_bytes);
    let mut hasher = blake3::Hasher::new();
    out.write_all(&h).map_err(io)?;
    hasher.update(&h);
    let mut siv = key.siv();
    let mut buf = vec![0u8; chunk_bytes];
    let mut left = plain_len;
    let mut index = 0u64;
    let mut bytes = HEADER_BYTES as u64;
    loop {
        let n = left.min(chunk_bytes as u64) as usize;
        src.read_exact(&mut buf[..n])
            .map_err(|e| BackupError::io("read backup source for", dest, e))?;
        left -= n as u64;
        let last = left == 0;
        let sealed = seal_chunk(&mut siv, &h, backup_id, name, index, last, &buf[..n])?;
        out.write_all(&sealed).map_err(io)?;
        hasher.update(&sealed);
        bytes += sealed.len() as u64;
        index += 1;
        if last {
            break;
        }
    }
    out.sync_all()
        .map_err(|e| BackupError::io("fsync", dest, e))?;
    Ok(Written {
        bytes,
        plain_bytes: plain_len,
        chunks: index,
        blake3: hash_hex(&hasher),
    })
}

fn hash_hex(h: &blake3::Hasher) -> String {
    h.finalize().to_hex().to_string()
}

/// blake3 of a whole stored file and its length, streaming.
pub(crate) fn digest_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| BackupError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hash_hex(&h)))
}

/// What the manifest says a file must be.
pub(crate) struct Expect<'a> {
    pub bytes: u64,
    pub blake3: &'a str,
    pub plain_bytes: u64,
}

/// Checks the stored file against the manifest (size and blake3 of the
/// ciphertext), then decrypts it chunk by chunk into `sink`. Every failure names
/// the file. The sink receives plaintext before the last chunk is authenticated,
/// so callers write it to a staging place that they discard on error.
pub(crate) fn decrypt_file(
    key: &BackupKey,
    backup_id: &str,
    name: &str,
    path: &Path,
    expect: &Expect<'_>,
    sink: &mut dyn Write,
) -> Result<u64> {
    let (len, digest) = match digest_file(path) {
        Ok(x) => x,
        Err(BackupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::corrupt(path, "the file is missing"));
        }
        Err(e) => return Err(e),
    };
    if len != expect.bytes {
        return Err(BackupError::corrupt(
            path,
            format!(
                "it is {len} bytes, the manifest says {} (truncated or extended)",
                expect.bytes
            ),
        ));
    }
    if digest != expect.blake3 {
        return Err(BackupError::corrupt(
            path,
            format!(
                "blake3 digest {digest} differs from the manifest's {}",
                expect.blake3
            ),
        ));
    }
    decrypt_verified(key, backup_id, name, path, len, expect.plain_bytes, sink)
}

/// Decrypts without the manifest digest check: the chunk authentication alone
/// (used by tests to show it stands on its own, and by `decrypt_file`).
pub(crate) fn decrypt_verified(
    key: &BackupKey,
    backup_id: &str,
    name: &str,
    path: &Path,
    len: u64,
    plain_expected: u64,
    sink: &mut dyn Write,
) -> Result<u64> {
    let corrupt = |reason: String| BackupError::corrupt(path, reason);
    let mut f = File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let mut h = [0u8; HEADER_BYTES];
    if len < (HEADER_BYTES + TAG_BYTES) as u64 {
        return Err(corrupt("shorter than a header and one chunk".into()));
    }
    f.read_exact(&mut h)
        .map_err(|e| BackupError::io("read", path, e))?;
    if &h[..8] != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    if h[8] != VERSION {
        return Err(corrupt(format!("unknown backup file version {}", h[8])));
    }
    if h[9..25] != key.id() {
        return Err(BackupError::WrongKey {
            file: path.to_path_buf(),
            expected: hex::encode(&h[9..25]),
            given: key.id_hex(),
        });
    }
    let chunk_bytes = u32::from_le_bytes(h[25..29].try_into().unwrap()) as usize;
    if !(CHUNK_BYTES_MIN..=CHUNK_BYTES_MAX).contains(&chunk_bytes) {
        return Err(corrupt(format!("chunk size {chunk_bytes} out of bounds")));
    }
    let sealed_full = (chunk_bytes + TAG_BYTES) as u64;
    let body = len - HEADER_BYTES as u64;
    // Chunk count from the length: every chunk is full but the last.
    let chunks = body.div_ceil(sealed_full);
    let last_len = body - (chunks - 1) * sealed_full;
    if last_len < TAG_BYTES as u64 {
        return Err(corrupt(format!(
            "the last chunk is {last_len} bytes, shorter than its tag"
        )));
    }
    let mut siv = key.siv();
    let mut buf = vec![0u8; sealed_full as usize];
    let mut plain = 0u64;
    for index in 0..chunks {
        let last = index + 1 == chunks;
        let n = if last { last_len } else { sealed_full } as usize;
        f.read_exact(&mut buf[..n])
            .map_err(|e| BackupError::io("read", path, e))?;
        let idx = index.to_be_bytes();
        let fin = [last as u8];
        let pt = siv
            .decrypt(
                [
                    DOMAIN,
                    &h[..],
                    backup_id.as_bytes(),
                    name.as_bytes(),
                    &idx[..],
                    &fin[..],
                ],
                &buf[..n],
            )
            .map_err(|_| {
                corrupt(format!(
                    "chunk {index} of {chunks} fails authentication (edited, moved, dropped or cut short)"
                ))
            })?;
        sink.write_all(&pt)
            .map_err(|e| BackupError::io("write restored data from", path, e))?;
        plain += pt.len() as u64;
    }
    if plain != plain_expected {
        return Err(corrupt(format!(
            "it decrypts to {plain} bytes, the manifest says {plain_expected}"
        )));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPurpose;
    use rand::SeedableRng;

    fn key() -> BackupKey {
        BackupKey::generate(
            KeyPurpose::Log,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
        )
    }

    fn write(dir: &Path, data: &[u8]) -> (std::path::PathBuf, Written) {
        let p = dir.join("f.enc");
        let w = encrypt_to_file(
            &key(),
            "full-x",
            "f.enc",
            &mut &data[..],
            data.len() as u64,
            1024,
            &p,
        )
        .unwrap();
        (p, w)
    }

    fn dec(p: &Path, plain: u64) -> Result<Vec<u8>> {
        let len = std::fs::metadata(p).unwrap().len();
        let mut out = Vec::new();
        decrypt_verified(&key(), "full-x", "f.enc", p, len, plain, &mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_chunk_edges() {
        for n in [0usize, 1, 1023, 1024, 1025, 4096, 5000] {
            let dir = tempfile::tempdir().unwrap();
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let (p, w) = write(dir.path(), &data);
            assert_eq!(w.chunks, (n as u64).div_ceil(1024).max(1));
            assert_eq!(dec(&p, n as u64).unwrap(), data);
        }
    }

    /// Without the manifest's digest, the chunk AD alone refuses reordering,
    /// dropping, truncation at a chunk boundary and moving to another file name.
    #[test]
    fn chunk_binding_stands_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..5000).map(|i| i as u8).collect();
        let (p, _) = write(dir.path(), &data);
        let bytes = std::fs::read(&p).unwrap();
        let c = 1024 + 16;
        let chunk = |i: usize| bytes[HEADER_BYTES + i * c..HEADER_BYTES + (i + 1) * c].to_vec();
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("swap", {
                let mut b = bytes[..HEADER_BYTES].to_vec();
                b.extend(chunk(1));
                b.extend(chunk(0));
                b.extend(&bytes[HEADER_BYTES + 2 * c..]);
                b
            }),
            ("drop middle", {
                let mut b = bytes[..HEADER_BYTES + c].to_vec();
                b.extend(&bytes[HEADER_BYTES + 2 * c..]);
                b
            }),
            ("cut at boundary", bytes[..HEADER_BYTES + 2 * c].to_vec()),
            ("flip", {
                let mut b = bytes.clone();
                b[HEADER_BYTES + 3 * c + 5] ^= 1;
                b
            }),
        ];
        for (what, v) in variants {
            std::fs::write(&p, &v).unwrap();
            let e = dec(&p, 5000).unwrap_err();
            assert!(
                matches!(e, BackupError::Corrupt { ref file, .. } if file == &p),
                "{what}: {e}"
            );
        }
        // Same bytes under another file name: refused.
        std::fs::write(&p, &bytes).unwrap();
        let mut out = Vec::new();
        let e = decrypt_verified(
            &key(),
            "full-x",
            "g.enc",
            &p,
            bytes.len() as u64,
            5000,
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(e, BackupError::Corrupt { .. }), "{e}");
    }
}
