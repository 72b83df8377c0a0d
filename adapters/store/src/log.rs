//! The log file: a fixed header, then frames, each holding one canonical event.
//!
//! Byte layout, the crash argument and the assumptions about the disk are in
//! `docs/design.md`. This module reads and writes frames and decides, after a
//! crash, whether damage at the end of the file is a torn tail (repairable: the
//! bytes were never acknowledged) or corruption (never skipped, reported).

use crate::disk::DiskFile;
use std::io;

use crate::format::{CANONICAL_BYTES_MAX, Hash, Id128};

pub const FILE_MAGIC: [u8; 8] = *b"MEBYOLOG";
pub const FILE_FORMAT_VERSION: u32 = 1;
pub const HEADER_BYTES: u64 = 64;

pub const FRAME_MAGIC: [u8; 4] = *b"MBEV";
pub const FRAME_HEADER_BYTES: usize = 24;
/// A frame body is the canonical encoding followed by the 32-byte hash.
pub const FRAME_BODY_BYTES_MAX: usize = CANONICAL_BYTES_MAX + 32;
/// The smallest possible body: canonical fixed part + 1 byte for each of the
/// four identifiers that may not be empty + the hash.
pub const FRAME_BODY_BYTES_MIN: usize = crate::format::CANONICAL_FIXED_BYTES + 4 + 32;
/// `prev_in_stream` value for the first event of a stream.
pub const NO_PREVIOUS: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub ledger_id: Id128,
    pub created_at_us: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("not a mebyo ledger (bad magic at byte offset 0)")]
    BadMagic,
    #[error(
        "ledger file format version {0} (byte offset 8) is not supported by this build (supports {FILE_FORMAT_VERSION})"
    )]
    UnknownVersion(u32),
    #[error(
        "the ledger header is damaged: bytes 0..60 do not match their crc32c at byte offset 60"
    )]
    Checksum,
    #[error("the ledger file is shorter than its 64-byte header")]
    Short,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        let mut b = [0u8; HEADER_BYTES as usize];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..12].copy_from_slice(&FILE_FORMAT_VERSION.to_le_bytes());
        b[12..28].copy_from_slice(&self.ledger_id);
        b[28..36].copy_from_slice(&self.created_at_us.to_le_bytes());
        // 36..60 reserved, zero.
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < HEADER_BYTES as usize {
            return Err(HeaderError::Short);
        }
        if b[0..8] != FILE_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if version != FILE_FORMAT_VERSION {
            return Err(HeaderError::UnknownVersion(version));
        }
        let crc = u32::from_le_bytes(b[60..64].try_into().unwrap());
        if crc != crc32c::crc32c(&b[0..60]) {
            return Err(HeaderError::Checksum);
        }
        Ok(Self {
            ledger_id: b[12..28].try_into().unwrap(),
            created_at_us: i64::from_le_bytes(b[28..36].try_into().unwrap()),
        })
    }

    pub fn read_from(file: &dyn DiskFile) -> Result<Self, ReadHeaderError> {
        let mut b = [0u8; HEADER_BYTES as usize];
        match file.read_exact_at(&mut b, 0) {
            Ok(()) => Ok(Self::decode(&b)?),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(HeaderError::Short.into()),
            Err(e) => Err(ReadHeaderError::Io(e)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadHeaderError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("reading the ledger header: {0}")]
    Io(#[from] io::Error),
}

/// Appends one frame (header + canonical bytes + hash) to `out`. `durable_lag`:
/// how many events before this one were not yet known durable when it was
/// written (see [`FrameRef::durable_lag`]).
pub fn encode_frame(
    out: &mut Vec<u8>,
    prev_in_stream: u64,
    durable_lag: u32,
    canonical: &[u8],
    hash: &Hash,
) {
    let body_len = canonical.len() + 32;
    assert!(
        body_len <= FRAME_BODY_BYTES_MAX,
        "frame body over the limit"
    );
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&prev_in_stream.to_le_bytes());
    out.extend_from_slice(&durable_lag.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // crc, filled below
    out.extend_from_slice(canonical);
    out.extend_from_slice(hash);
    let crc = frame_crc(
        &out[start + 4..start + 20],
        &out[start + FRAME_HEADER_BYTES..],
    );
    out[start + 20..start + 24].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(header_fields: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_fields), body)
}

/// A frame as found in the file, borrowed from the reader's buffer.
#[derive(Debug)]
pub struct FrameRef<'a> {
    pub offset: u64,
    pub prev_in_stream: u64,
    /// How many of the events before this one were not yet durable (published)
    /// when the writer wrote it: its position minus the durable count then,
    /// saturating. Recovery's evidence about damage before it: an event older
    /// than `position - durable_lag` had been fsynced before this frame was
    /// written, so no crash can have torn it (docs/design.md, "Recovery").
    /// Outside the hash (it says nothing about the event); `check.rs` refuses a
    /// lag larger than the position.
    pub durable_lag: u32,
    pub body: &'a [u8],
    pub crc_ok: bool,
}

impl FrameRef<'_> {
    /// Bytes of the frame on disk, header included (never zero).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        (FRAME_HEADER_BYTES + self.body.len()) as u64
    }
    /// Canonical bytes: the body without the trailing hash.
    pub fn canonical(&self) -> &[u8] {
        &self.body[..self.body.len() - 32]
    }
    pub fn stored_hash(&self) -> Hash {
        self.body[self.body.len() - 32..].try_into().unwrap()
    }
    /// The previous hash sits at a fixed place from the end of the canonical bytes,
    /// so the chain can be followed without decoding the variable fields.
    pub fn stored_prev_hash(&self) -> Hash {
        let n = self.body.len();
        self.body[n - 64..n - 32].try_into().unwrap()
    }
    /// Position, at a fixed place after the encoding version byte.
    pub fn position(&self) -> u64 {
        u64::from_le_bytes(self.body[1..9].try_into().unwrap())
    }
}

/// Why the bytes at an offset do not form a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFault {
    /// The frame's header or body runs past the end of the file.
    Incomplete,
    BadMagic,
    BadLength(u32),
}

/// Reads frames sequentially through a large buffer (one `pread` per few MiB,
/// no allocation per frame), which is what makes open and verify fast.
pub struct FrameReader<'f> {
    file: &'f dyn DiskFile,
    file_len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Valid bytes in `buf`.
    buf_len: usize,
    /// File offset of the next frame.
    next: u64,
}

const READ_CHUNK_BYTES: usize = 4 << 20;

impl<'f> FrameReader<'f> {
    pub fn new(file: &'f dyn DiskFile, start: u64, file_len: u64) -> Self {
        Self {
            file,
            file_len,
            buf: vec![0; READ_CHUNK_BYTES.max(FRAME_HEADER_BYTES + FRAME_BODY_BYTES_MAX)],
            buf_offset: start,
            buf_len: 0,
            next: start,
        }
    }

    pub fn offset(&self) -> u64 {
        self.next
    }

    /// Makes `[self.next, self.next + n)` available in the buffer, if the file has it.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        let have_end = self.buf_offset + self.buf_len as u64;
        if self.next >= self.buf_offset && self.next + n as u64 <= have_end {
            return Ok(true);
        }
        if self.next + n as u64 > self.file_len {
            return Ok(false);
        }
        let want = (self.file_len - self.next).min(self.buf.len() as u64) as usize;
        self.file.read_exact_at(&mut self.buf[..want], self.next)?;
        self.buf_offset = self.next;
        self.buf_len = want;
        Ok(n <= want)
    }

    /// The next frame, `Ok(None)` at a clean end of file, or the fault found at
    /// `self.offset()`. A fault does not advance the reader.
    pub fn next_frame(&mut self) -> io::Result<Option<Result<FrameRef<'_>, FrameFault>>> {
        if self.next == self.file_len {
            return Ok(None);
        }
        if !self.fill(FRAME_HEADER_BYTES)? {
            return Ok(Some(Err(FrameFault::Incomplete)));
        }
        let at = (self.next - self.buf_offset) as usize;
        let h = &self.buf[at..at + FRAME_HEADER_BYTES];
        if h[0..4] != FRAME_MAGIC {
            return Ok(Some(Err(FrameFault::BadMagic)));
        }
        let body_len = u32::from_le_bytes(h[4..8].try_into().unwrap());
        if (body_len as usize) < FRAME_BODY_BYTES_MIN || body_len as usize > FRAME_BODY_BYTES_MAX {
            return Ok(Some(Err(FrameFault::BadLength(body_len))));
        }
        let total = FRAME_HEADER_BYTES + body_len as usize;
        if !self.fill(total)? {
            return Ok(Some(Err(FrameFault::Incomplete)));
        }
        let at = (self.next - self.buf_offset) as usize;
        let h = &self.buf[at..at + FRAME_HEADER_BYTES];
        let prev_in_stream = u64::from_le_bytes(h[8..16].try_into().unwrap());
        let durable_lag = u32::from_le_bytes(h[16..20].try_into().unwrap());
        let crc = u32::from_le_bytes(h[20..24].try_into().unwrap());
        let body = &self.buf[at + FRAME_HEADER_BYTES..at + total];
        let crc_ok = frame_crc(&h[4..20], body) == crc;
        let offset = self.next;
        self.next += total as u64;
        Ok(Some(Ok(FrameRef {
            offset,
            prev_in_stream,
            durable_lag,
            body,
            crc_ok,
        })))
    }
}

/// A frame read at an offset: its length on disk, its body and whether its crc
/// matched.
pub type FrameAt = (u64, Vec<u8>, bool);

/// Reads one whole frame at a known offset (used by stream reads and by the
/// damage classifier). Returns the fault instead of a frame when the bytes there
/// are not one.
pub fn read_frame_at(
    file: &dyn DiskFile,
    offset: u64,
    file_len: u64,
) -> io::Result<Result<FrameAt, FrameFault>> {
    let mut h = [0u8; FRAME_HEADER_BYTES];
    if offset + FRAME_HEADER_BYTES as u64 > file_len {
        return Ok(Err(FrameFault::Incomplete));
    }
    file.read_exact_at(&mut h, offset)?;
    if h[0..4] != FRAME_MAGIC {
        return Ok(Err(FrameFault::BadMagic));
    }
    let body_len = u32::from_le_bytes(h[4..8].try_into().unwrap());
    if (body_len as usize) < FRAME_BODY_BYTES_MIN || body_len as usize > FRAME_BODY_BYTES_MAX {
        return Ok(Err(FrameFault::BadLength(body_len)));
    }
    if offset + FRAME_HEADER_BYTES as u64 + body_len as u64 > file_len {
        return Ok(Err(FrameFault::Incomplete));
    }
    let mut body = vec![0u8; body_len as usize];
    file.read_exact_at(&mut body, offset + FRAME_HEADER_BYTES as u64)?;
    let prev_in_stream = u64::from_le_bytes(h[8..16].try_into().unwrap());
    let crc = u32::from_le_bytes(h[20..24].try_into().unwrap());
    let crc_ok = frame_crc(&h[4..20], &body) == crc;
    Ok(Ok((prev_in_stream, body, crc_ok)))
}

/// What damage found at `offset` means (see docs/design.md, "Recovery").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Nothing intact follows: the bytes are the unacknowledged remains of the last
    /// write, and truncating them loses nothing that was acknowledged.
    TornTail,
    /// An intact frame follows the damage, or the damaged frame is complete and
    /// non-zero: this is not what a crash leaves behind. Never skipped.
    Corrupt,
}

/// Classifies damage that starts at `offset`, where the frame of
/// `damaged_position` should be. `complete_frame_end` is the end of the frame
/// there when it is whole (magic, length, all bytes present) but fails its checksum.
///
/// Intact frames after the damage say whether it can be a crash's: each says
/// up to which position the log was durable when it was written. If one says
/// the damaged position was durable by then, a crash cannot have torn it: rot
/// or an edit, never skipped. If all were written before that, the damage and
/// they may be one unsynced write that reached the disk out of order (a drive's
/// cache, page write-back), torn by the crash: torn if the damage holds a
/// sector that never reached the disk (zeros), corruption otherwise.
pub fn classify_damage(
    file: &dyn DiskFile,
    offset: u64,
    file_len: u64,
    complete_frame_end: Option<u64>,
    damaged_position: u64,
) -> io::Result<Damage> {
    match durable_claim_after(file, offset, file_len)? {
        Some(durable) if durable > damaged_position => return Ok(Damage::Corrupt),
        Some(_) => {
            // Written before the damaged position was durable, so a crash could
            // have torn it; it did only if the damage has a crash's shape (a
            // sector that never reached the disk). Otherwise a flipped byte in
            // the last batch would pass for a torn write.
            let next = find_intact_frame_after(file, offset, file_len)?.unwrap_or(file_len);
            let end = complete_frame_end.map_or(next, |e| e.min(next));
            return Ok(if has_zero_sector(file, offset, end)? {
                Damage::TornTail
            } else {
                Damage::Corrupt
            });
        }
        None => {}
    }
    if let Some(end) = complete_frame_end {
        // A crash cuts writes short or leaves sectors unwritten (read back as zeros);
        // it does not produce a whole frame of wrong non-zero bytes. So a complete
        // frame that fails its checksum is torn only if a sector of it is zeros
        // (one that did not reach the disk); a flipped byte or an edit is corruption.
        if !has_zero_sector(file, offset, end)? {
            return Ok(Damage::Corrupt);
        }
    }
    Ok(Damage::TornTail)
}

const SECTOR_BYTES: u64 = 512;

/// A frame that ends in this many zero bytes was cut short: its last bytes are
/// its hash, which ends in 8 zero bytes once in 2^64 frames.
const CUT_ZEROS_MIN: usize = 8;

/// Whether `[from, end)` (a frame's place) has what a crash leaves of a write:
/// a sector of it that is all zeros (the first and the last may be cut by
/// `from` and `end`), or zeros at its end (a short write, such as one cut by a full disk,
/// whose sector reached the disk with the rest of it zero).
fn has_zero_sector(file: &dyn DiskFile, from: u64, end: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; (end - from) as usize];
    file.read_exact_at(&mut buf, from)?;
    if buf.len() >= CUT_ZEROS_MIN && buf[buf.len() - CUT_ZEROS_MIN..].iter().all(|&b| b == 0) {
        return Ok(true);
    }
    // The part of the first sector where the frame begins counts too: a frame
    // begins with its magic, never with zeros, so zeros there are a sector that
    // never reached the disk (its old content, zeros, read back).
    let mut s = (from / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let first = &buf[..((s.min(end)) - from) as usize];
    if first.len() >= FRAME_MAGIC.len() && first.iter().all(|&b| b == 0) {
        return Ok(true);
    }
    while s < end {
        let e = (s + SECTOR_BYTES).min(end);
        if buf[(s - from) as usize..(e - from) as usize]
            .iter()
            .all(|&b| b == 0)
        {
            return Ok(true);
        }
        s = e;
    }
    Ok(false)
}

/// Of the intact frames after `offset`, the latest durable count any of them
/// says it was written after (`position - durable_lag`); `None` if none is intact.
fn durable_claim_after(file: &dyn DiskFile, offset: u64, file_len: u64) -> io::Result<Option<u64>> {
    let mut latest = None;
    let mut at = offset;
    while let Some(found) = find_intact_frame_after(file, at, file_len)? {
        let mut h = [0u8; FRAME_HEADER_BYTES];
        file.read_exact_at(&mut h, found)?;
        let lag = u32::from_le_bytes(h[16..20].try_into().unwrap());
        if let Ok((_, body, true)) = read_frame_at(file, found, file_len)?
            && let Some(p) = body.get(1..9)
        {
            let position = u64::from_le_bytes(p.try_into().unwrap());
            let claim = position.saturating_sub(u64::from(lag));
            latest = Some(latest.map_or(claim, |l: u64| l.max(claim)));
        }
        at = found;
    }
    Ok(latest)
}

/// Searches for the magic of a frame whose checksum holds, anywhere after `offset`.
pub fn find_intact_frame_after(
    file: &dyn DiskFile,
    offset: u64,
    file_len: u64,
) -> io::Result<Option<u64>> {
    let chunk = 1usize << 20;
    let mut buf = vec![0u8; chunk + 3];
    let mut at = offset + 1;
    while at < file_len {
        let n = ((file_len - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        for i in memchr::memmem::find_iter(&buf[..n], &FRAME_MAGIC) {
            let cand = at + i as u64;
            if let Ok((_, _, true)) = read_frame_at(file, cand, file_len)? {
                return Ok(Some(cand));
            }
        }
        if n < buf.len() {
            break;
        }
        at += chunk as u64; // overlap of 3 bytes so a magic across chunks is seen
    }
    Ok(None)
}
