//! Read-only passes over the log file: the Merkle tree and checkpoint checks
//! ([`scan_tree`]), and the full offline verification ([`verify_ledger`]).
//!
//! Nothing here opens the store: an auditor works on a copy or a backup, and a
//! live server's lock is not disturbed.
//!
//! `verify_ledger` runs two passes at once, on two threads: the store's own chain
//! verifier (unchanged, so its first-bad-position semantics stay exactly as they
//! are), and the tree pass. Both read the same file through the page cache. The
//! report names the first problem by position; on a tie the chain's break wins,
//! since a checkpoint cannot be judged over events whose hashes do not hold.

use std::fs::File;
use std::path::{Path, PathBuf};

use mebyo_store::check::{Chain, Checks};
use mebyo_store::format::{Envelope, Hash, Id128, PayloadKind, chain_hash};
use mebyo_store::log::{FileHeader, FrameReader, FrameRef, HEADER_BYTES};
use mebyo_store::verify::{self, BreakKind, Outcome};
use mebyo_tlog::checkpoint::CheckpointError;
use mebyo_tlog::note::NoteError;
use mebyo_tlog::{
    Checkpoint, MerkleTree, NoteVerifier, SignedCheckpoint, parse_and_verify_checkpoint_for_origin,
    verify_consistency,
};

use crate::{CHECKPOINT_EVENT_TYPE, CHECKPOINT_STREAM, keys};

/// At most this many external checkpoint files per run (each is <= 16 KiB).
pub const EXTERNAL_CHECKPOINTS_MAX: usize = 1024;

/// A checkpoint event found in the log, whose signature and root held.
#[derive(Debug, Clone)]
pub struct LedgerCheckpoint {
    pub position: u64,
    pub offset: u64,
    pub recorded_at_us: i64,
    pub signed: SignedCheckpoint,
}

/// A checkpoint kept outside the ledger (by a witness or an auditor).
#[derive(Debug, Clone)]
pub struct ExternalCheckpoint {
    /// Where it came from (a file name), for messages.
    pub label: String,
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The hash chain itself is broken (the store verifier's finding).
    Chain(BreakKind),
    /// A checkpoint event that is not a plaintext signed note in its stream.
    CheckpointMalformed,
    /// A checkpoint whose signature does not verify with the verifier key:
    /// forged, or signed by another key.
    CheckpointSignature,
    /// A checkpoint claiming to cover events after its own position.
    CheckpointAhead,
    /// A checkpoint whose signed root is not the root of the log's tree at its size:
    /// events it covers were changed, removed or reordered after it was signed.
    CheckpointRootMismatch,
    /// Two consecutive checkpoints that are not consistent (one is not a prefix of
    /// the other): the log signed a fork.
    CheckpointInconsistent,
    /// An external checkpoint covers more events than the log holds.
    Truncated,
    /// The log's tree at an external checkpoint's size has another root: history
    /// was rewritten after that checkpoint was taken, even if re-signed.
    Forked,
    /// Events after the newest checkpoint, which no one signed (only a problem
    /// when the caller requires a signed head).
    UnsignedTail,
}

impl ProblemKind {
    /// Stable name for JSON output; chain kinds keep the store verifier's names.
    pub fn name(&self) -> String {
        match self {
            Self::Chain(k) => format!("{k:?}"),
            other => format!("{other:?}"),
        }
    }
}

/// The first problem found, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub position: u64,
    /// Byte offset of the frame at fault, when the problem is in a frame.
    pub offset: Option<u64>,
    pub kind: ProblemKind,
    pub detail: String,
    pub expected: Option<Hash>,
    pub found: Option<Hash>,
    /// Events verified before the problem.
    pub verified: u64,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "position {}", self.position)?;
        if let Some(o) = self.offset {
            write!(f, " (byte offset {o})")?;
        }
        write!(f, ": {}: {}", self.kind.name(), self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Header { path: PathBuf, reason: String },
    #[error(transparent)]
    Chain(#[from] verify::VerifyError),
    #[error(
        "the log holds a checkpoint at position {position} but no verifier key was given (pass --vkey, or create DATA/keys/checkpoint.vkey)"
    )]
    NoVerifierKey { position: u64 },
    #[error("external checkpoint {label}: {reason}")]
    BadExternal { label: String, reason: String },
    #[error("too many external checkpoints ({0}, limit {EXTERNAL_CHECKPOINTS_MAX})")]
    TooManyExternal(usize),
    #[error(
        "the verifier key is for log {key_origin}, but this ledger is {ledger_origin}: wrong --vkey?"
    )]
    WrongLedger {
        key_origin: String,
        ledger_origin: String,
    },
}

/// Result of [`scan_tree`].
pub struct TreeScan {
    pub ledger_id: Id128,
    /// Leaves = stored hashes of the frames read, in order.
    pub tree: MerkleTree,
    /// Checkpoint events that verified, in position order.
    pub checkpoints: Vec<LedgerCheckpoint>,
    /// The first checkpoint problem; the scan stops there.
    pub problem: Option<Problem>,
    /// The stored hash of the event at `ScanOptions::capture`, if reached.
    pub captured: Option<Hash>,
    /// Present when `ScanOptions::chain` was set.
    pub chain: Option<ChainScan>,
}

#[derive(Default)]
pub struct ScanOptions<'a> {
    /// Key to check checkpoint signatures with. A checkpoint met without one is
    /// an error: skipping it would report an unchecked log as fine.
    pub vkey: Option<&'a NoteVerifier>,
    /// Keep the event hash at this position (for inclusion proofs).
    pub capture: Option<u64>,
    /// Also run the chain's sequential checks (link, position, stream revision,
    /// time); the hashes themselves are checked by [`hash_pass`] in parallel.
    pub chain: bool,
    /// With `chain`: also check that no person-related event is plaintext (P4.8(1)).
    pub person_related: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
}

/// The sequential half of the chain checks, as run by the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainScan {
    /// Every frame to the end of the file was whole and passed the checks.
    pub clean: bool,
    /// Hash of the last event read (the genesis value when there is none).
    pub head: Hash,
}

fn open_log(path: &Path) -> Result<(File, FileHeader, u64), ScanError> {
    let io = |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let header = FileHeader::read_from(&file).map_err(|e| ScanError::Header {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let len = file.metadata().map_err(io)?.len();
    Ok((file, header, len))
}

fn check_key_matches_ledger(vkey: &NoteVerifier, ledger_id: &Id128) -> Result<(), ScanError> {
    let ledger_origin = keys::checkpoint_origin(ledger_id);
    if vkey.name() != ledger_origin {
        return Err(ScanError::WrongLedger {
            key_origin: vkey.name().to_owned(),
            ledger_origin,
        });
    }
    Ok(())
}

/// What is wrong with a checkpoint, before a position is attached.
pub(crate) struct Fault {
    pub kind: ProblemKind,
    pub detail: String,
    pub expected: Option<Hash>,
    pub found: Option<Hash>,
}

impl Fault {
    fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            expected: None,
            found: None,
        }
    }
    pub(crate) fn at(self, position: u64, offset: Option<u64>, verified: u64) -> Problem {
        Problem {
            position,
            offset,
            kind: self.kind,
            detail: self.detail,
            expected: self.expected,
            found: self.found,
            verified,
        }
    }
}

/// Checks a checkpoint event's envelope: the right stream, plaintext, UTF-8.
pub(crate) fn checkpoint_note(env: &Envelope) -> Result<&str, Fault> {
    if env.stream_id != CHECKPOINT_STREAM {
        return Err(Fault::new(
            ProblemKind::CheckpointMalformed,
            format!(
                "checkpoint event in stream {} instead of {CHECKPOINT_STREAM}",
                env.stream_id
            ),
        ));
    }
    if env.payload_kind != PayloadKind::Plain {
        return Err(Fault::new(
            ProblemKind::CheckpointMalformed,
            "checkpoint payload is not plaintext",
        ));
    }
    std::str::from_utf8(&env.payload)
        .map_err(|_| Fault::new(ProblemKind::CheckpointMalformed, "checkpoint is not UTF-8"))
}

/// Checks the checkpoint note stored at `position` against the tree of the
/// events before it (`tree.size() >= position`) and the previous checkpoint.
pub(crate) fn check_checkpoint(
    tree: &MerkleTree,
    position: u64,
    note: &str,
    vkey: &NoteVerifier,
    prev: Option<&Checkpoint>,
) -> Result<Checkpoint, Fault> {
    let cp = parse_and_verify_checkpoint_for_origin(note, vkey, vkey.name()).map_err(|e| {
        let kind = match e {
            CheckpointError::Note(NoteError::Malformed(_)) | CheckpointError::Malformed(_) => {
                ProblemKind::CheckpointMalformed
            }
            CheckpointError::Note(_) => ProblemKind::CheckpointSignature,
        };
        Fault::new(
            kind,
            format!("checkpoint does not verify with key {}: {e}", vkey.name()),
        )
    })?;
    if cp.size > position {
        return Err(Fault::new(
            ProblemKind::CheckpointAhead,
            format!(
                "checkpoint claims tree size {} but stands at position {position}",
                cp.size
            ),
        ));
    }
    let root = tree
        .root(cp.size)
        .map_err(|e| Fault::new(ProblemKind::CheckpointAhead, e.to_string()))?;
    if root != cp.root {
        return Err(Fault {
            kind: ProblemKind::CheckpointRootMismatch,
            detail: format!(
                "signed root of tree size {} is not the root of the log's first {} events: events before position {} were changed, removed or reordered after signing",
                cp.size, cp.size, cp.size
            ),
            expected: Some(root),
            found: Some(cp.root),
        });
    }
    if let Some(prev) = prev {
        consistent(tree, prev, &cp).map_err(|detail| Fault {
            kind: ProblemKind::CheckpointInconsistent,
            detail: format!(
                "checkpoint of size {} is not consistent with the previous one of size {}: {detail}",
                cp.size, prev.size
            ),
            expected: Some(prev.root),
            found: Some(cp.root),
        })?;
    }
    Ok(cp)
}

/// Proves with the tree, and checks with tlog's independent verifier, that
/// `new` extends `old`.
fn consistent(tree: &MerkleTree, old: &Checkpoint, new: &Checkpoint) -> Result<(), String> {
    if new.size < old.size {
        return Err("the tree shrank".into());
    }
    let proof = tree
        .consistency_proof(old.size, new.size)
        .map_err(|e| e.to_string())?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|e| e.to_string())
}

/// Rebuilds the tree from the log file and checks every checkpoint event in it.
///
/// Stops at the end of the file, at the first frame that is not whole or fails
/// its checksum (the chain verifier decides whether that is a torn tail or
/// damage), or at the first checkpoint problem.
pub fn scan_tree(path: &Path, opts: ScanOptions<'_>) -> Result<TreeScan, ScanError> {
    let (file, header, file_len) = open_log(path)?;
    if let Some(v) = opts.vkey {
        check_key_matches_ledger(v, &header.ledger_id)?;
    }
    let io = |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Preallocate from the file size (frames are >= ~150 bytes) so the leaf
    // vector does not double-and-copy hundreds of megabytes at 10M events.
    let estimate = ((file_len / 160) as usize).min(1 << 28);
    let mut scan = TreeScan {
        ledger_id: header.ledger_id,
        tree: MerkleTree::with_capacity(estimate),
        checkpoints: Vec::new(),
        problem: None,
        captured: None,
        chain: None,
    };
    let mut chain = opts.chain.then(|| Sequential::new(&header.ledger_id));
    let mut reader = FrameReader::new(&file, HEADER_BYTES, file_len);
    loop {
        let position = scan.tree.size();
        let frame = match reader.next_frame().map_err(io)? {
            None => {
                if let Some(c) = &mut chain {
                    c.reached_end = true;
                }
                break;
            }
            Some(Ok(f)) if f.crc_ok => f,
            _ => break,
        };
        let stored = frame.stored_hash();
        if let Some(c) = &mut chain
            && !c.check(&frame, opts.person_related)
        {
            break;
        }
        if opts.capture == Some(position) {
            scan.captured = Some(stored);
        }
        if mebyo_store::format::peek(frame.body)
            .is_some_and(|f| f.event_type == CHECKPOINT_EVENT_TYPE)
        {
            let offset = frame.offset;
            let Some(vkey) = opts.vkey else {
                return Err(ScanError::NoVerifierKey { position });
            };
            let checked = match Envelope::decode_body(frame.body) {
                Err(e) => Err(Fault::new(
                    ProblemKind::CheckpointMalformed,
                    format!("checkpoint event does not decode: {e}"),
                )),
                Ok((env, _)) => checkpoint_note(&env).and_then(|note| {
                    let prev = scan.checkpoints.last().map(|c| &c.signed.checkpoint);
                    check_checkpoint(&scan.tree, position, note, vkey, prev).map(|cp| {
                        LedgerCheckpoint {
                            position,
                            offset,
                            recorded_at_us: env.recorded_at_us,
                            signed: SignedCheckpoint {
                                checkpoint: cp,
                                note: note.to_owned(),
                            },
                        }
                    })
                }),
            };
            match checked {
                Ok(c) => scan.checkpoints.push(c),
                Err(f) => {
                    scan.problem = Some(f.at(position, Some(offset), position));
                    break;
                }
            }
        }
        scan.tree.append_event(&stored);
    }
    scan.chain = chain.map(|c| ChainScan {
        clean: c.reached_end && scan.problem.is_none(),
        head: c.chain.head_hash,
    });
    Ok(scan)
}

/// The store's own frame checks (`mebyo_store::check`, shared with recovery and
/// the store's verifier) but the hashes, for the fast path. It only has to be
/// right when it says "fine": any fault sends the run to the store's verifier,
/// which then names the first bad position.
struct Sequential {
    chain: Chain,
    reached_end: bool,
}

impl Sequential {
    fn new(ledger_id: &Id128) -> Self {
        Self {
            chain: Chain::new(ledger_id),
            reached_end: false,
        }
    }

    fn check(
        &mut self,
        frame: &FrameRef<'_>,
        person_related: Option<&(dyn Fn(&str) -> bool + Sync)>,
    ) -> bool {
        let checks = Checks {
            // The hashes are checked by `hash_pass`, in parallel.
            hashes: false,
            person_related: person_related.map(|f| f as &dyn Fn(&str) -> bool),
        };
        self.chain.check(frame, checks).is_ok()
    }
}

/// The other half of the fast path: recomputes every event's blake3 hash.
/// Returns how many frames matched and whether it reached a clean end of file.
pub fn hash_pass(
    path: &Path,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(u64, bool), ScanError> {
    let (file, _, file_len) = open_log(path)?;
    let mut reader = FrameReader::new(&file, HEADER_BYTES, file_len);
    let mut count = 0u64;
    loop {
        if count.is_multiple_of(65_536) {
            progress(reader.offset(), file_len);
        }
        let frame = match reader.next_frame() {
            Err(source) => {
                return Err(ScanError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Ok(None) => {
                progress(file_len, file_len);
                return Ok((count, true));
            }
            Ok(Some(Ok(f))) if f.crc_ok => f,
            Ok(Some(_)) => return Ok((count, false)),
        };
        if chain_hash(frame.canonical()) != frame.stored_hash() {
            return Ok((count, false));
        }
        count += 1;
    }
}

pub struct VerifyOptions<'a> {
    /// The verifier key; required when the log holds checkpoints or externals are given.
    pub vkey: Option<NoteVerifier>,
    pub external: Vec<ExternalCheckpoint>,
    /// Fail when events follow the newest checkpoint (an unsigned extension).
    pub require_signed_head: bool,
    /// Called with (bytes verified, bytes in total) now and then, from the chain thread.
    pub progress: &'a mut (dyn FnMut(u64, u64) + Send),
    /// Says whether an event type concerns a person, so that verify checks that no
    /// such event is stored in plaintext (P4.8(1)). `None` skips the check.
    pub person_related: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
}

/// Everything a verification established, or the first problem.
pub struct Report {
    pub ledger_id: Id128,
    /// Events whose chain verified (all of them when there is no problem).
    pub events: u64,
    pub head_hash: Hash,
    pub torn_tail_bytes: u64,
    /// The tree over the verified events.
    pub tree: MerkleTree,
    pub checkpoints: Vec<LedgerCheckpoint>,
    /// External checkpoints that the log was found to extend.
    pub external: Vec<(String, Checkpoint)>,
    /// Events after the newest checkpoint's coverage, checkpoint events excluded.
    pub unsigned_tail: u64,
    pub first_unsigned: Option<u64>,
    pub problem: Option<Problem>,
}

impl Report {
    pub fn root(&self) -> Hash {
        self.tree
            .root(self.events.min(self.tree.size()))
            .unwrap_or_else(|_| self.tree.current_root())
    }
}

/// Parses and verifies external checkpoints up front: one that does not verify
/// is not evidence about the log, it is a bad input (exit 2 at the CLI).
fn parse_external(
    external: &[ExternalCheckpoint],
    vkey: &NoteVerifier,
) -> Result<Vec<(String, Checkpoint)>, ScanError> {
    if external.len() > EXTERNAL_CHECKPOINTS_MAX {
        return Err(ScanError::TooManyExternal(external.len()));
    }
    external
        .iter()
        .map(|e| {
            parse_and_verify_checkpoint_for_origin(&e.note, vkey, vkey.name())
                .map(|cp| (e.label.clone(), cp))
                .map_err(|err| ScanError::BadExternal {
                    label: e.label.clone(),
                    reason: format!("does not verify with key {}: {err}", vkey.name()),
                })
        })
        .collect()
}

/// The full offline verification: chain, tree, in-ledger checkpoints, external
/// checkpoints, and optionally a signed head.
pub fn verify_ledger(path: &Path, opts: VerifyOptions<'_>) -> Result<Report, ScanError> {
    let VerifyOptions {
        vkey,
        external,
        require_signed_head,
        progress,
        person_related,
    } = opts;
    // A damaged header is a break at its byte offset, not unreadable input.
    if let Err(b) = verify::open_log(path)? {
        return Ok(Report {
            ledger_id: [0; 16],
            events: 0,
            head_hash: [0; 32],
            torn_tail_bytes: 0,
            tree: MerkleTree::new(),
            checkpoints: Vec::new(),
            external: Vec::new(),
            unsigned_tail: 0,
            first_unsigned: None,
            problem: Some(chain_problem(b)),
        });
    }
    let external = match (&vkey, external.is_empty()) {
        (_, true) => Vec::new(),
        (Some(v), false) => parse_external(&external, v)?,
        (None, false) => {
            return Err(ScanError::BadExternal {
                label: external[0].label.clone(),
                reason: "no verifier key to check it with (pass --vkey)".into(),
            });
        }
    };
    // Fast path: the hashes on one thread, everything else on this one.
    let (hashes, scan) = std::thread::scope(|s| {
        let hashes = s.spawn(|| hash_pass(path, progress));
        let scan = scan_tree(
            path,
            ScanOptions {
                vkey: vkey.as_ref(),
                capture: None,
                chain: true,
                person_related,
            },
        );
        let hashes = hashes
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (hashes, scan)
    });
    let scan = scan?;
    let (hashed, hashes_clean) = hashes?;
    let fast = scan
        .chain
        .filter(|c| c.clean && hashes_clean && hashed == scan.tree.size());
    let chain = match fast {
        Some(c) => Outcome::Intact(verify::Intact {
            ledger_id: scan.ledger_id,
            count: scan.tree.size(),
            head_hash: c.head,
            torn_tail_bytes: 0,
        }),
        // Something is off (or a torn tail): the store's verifier says exactly
        // what and where, with its own first-bad-position semantics.
        None => verify::verify_file(
            path,
            verify::Options {
                progress: &mut |_, _| {},
                person_related: person_related.map(|f| f as &dyn Fn(&str) -> bool),
            },
        )?,
    };
    let mut report = Report {
        ledger_id: scan.ledger_id,
        events: 0,
        head_hash: [0; 32],
        torn_tail_bytes: 0,
        tree: scan.tree,
        checkpoints: scan.checkpoints,
        external: Vec::new(),
        unsigned_tail: 0,
        first_unsigned: None,
        problem: None,
    };
    let chain_break = match chain {
        Outcome::Intact(i) => {
            report.events = i.count;
            report.head_hash = i.head_hash;
            report.torn_tail_bytes = i.torn_tail_bytes;
            None
        }
        Outcome::Broken(b) => {
            report.events = b.verified;
            Some(chain_problem(b))
        }
    };
    // The first problem by position; a tie goes to the chain.
    report.problem = match (chain_break, scan.problem) {
        (Some(c), Some(t)) if t.position < c.position => Some(t),
        (Some(c), _) => Some(c),
        (None, t) => t,
    };
    if let Some(p) = &report.problem {
        // Nothing at or after the problem is trustworthy.
        report.events = report.events.min(p.position);
        report.checkpoints.retain(|c| c.position < p.position);
        return Ok(report);
    }
    if report.tree.size() < report.events {
        // The file grew between the two passes' reads (a live ledger): judge
        // the prefix both passes saw.
        report.events = report.tree.size();
    }
    let n = report.events;
    for (label, cp) in external {
        if let Some(p) = check_external(&report.tree, n, &label, &cp) {
            report.problem = Some(p);
            return Ok(report);
        }
        report.external.push((label, cp));
    }
    // Events after the newest signed size that are not themselves checkpoints.
    let signed_to = report
        .checkpoints
        .iter()
        .map(|c| c.signed.checkpoint.size)
        .chain(report.external.iter().map(|(_, c)| c.size))
        .max()
        .unwrap_or(0);
    let mut cps_after = report
        .checkpoints
        .iter()
        .map(|c| c.position)
        .filter(|&p| p >= signed_to)
        .peekable();
    let mut first = None;
    let mut pos = signed_to;
    while pos < n {
        if cps_after.peek() == Some(&pos) {
            cps_after.next();
            pos += 1;
        } else {
            first = Some(pos);
            break;
        }
    }
    let cps_in_tail = report
        .checkpoints
        .iter()
        .filter(|c| c.position >= signed_to)
        .count() as u64;
    report.unsigned_tail = n.saturating_sub(signed_to).saturating_sub(cps_in_tail);
    report.first_unsigned = first;
    if require_signed_head && let Some(first) = first {
        report.problem = Some(Problem {
            position: first,
            offset: None,
            kind: ProblemKind::UnsignedTail,
            detail: format!(
                "{} events from position {first} on are covered by no checkpoint (the newest covers {signed_to}): an extension no one signed",
                report.unsigned_tail
            ),
            expected: None,
            found: None,
            verified: n,
        });
    }
    Ok(report)
}

fn chain_problem(b: verify::Break) -> Problem {
    Problem {
        position: b.position,
        offset: Some(b.offset),
        kind: ProblemKind::Chain(b.kind),
        detail: b.detail,
        expected: b.expected,
        found: b.found,
        verified: b.verified,
    }
}

/// The log (`n` verified events, tree `tree`) must extend an external checkpoint.
fn check_external(tree: &MerkleTree, n: u64, label: &str, cp: &Checkpoint) -> Option<Problem> {
    if cp.size > n {
        return Some(Problem {
            position: n,
            offset: None,
            kind: ProblemKind::Truncated,
            detail: format!(
                "checkpoint {label} signed {} events but the log holds {n}: events from position {n} on are missing (truncated or rolled back)",
                cp.size
            ),
            expected: None,
            found: None,
            verified: n,
        });
    }
    let fork = |detail: String, expected| Problem {
        position: cp.size,
        offset: None,
        kind: ProblemKind::Forked,
        detail,
        expected,
        found: Some(cp.root),
        verified: n,
    };
    let root = match tree.root(cp.size) {
        Ok(r) => r,
        Err(e) => return Some(fork(e.to_string(), None)),
    };
    if root != cp.root {
        return Some(fork(
            format!(
                "the log's first {} events (positions 0..{}) are not those checkpoint {label} signed: history was rewritten after it was taken (a fork, even if re-signed)",
                cp.size, cp.size
            ),
            Some(root),
        ));
    }
    let new = Checkpoint::new(cp.origin.clone(), n, tree.root(n).ok()?);
    consistent(tree, cp, &new)
        .err()
        .map(|e| fork(format!("the log does not extend {label}: {e}"), Some(root)))
}
