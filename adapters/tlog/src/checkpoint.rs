//! C2SP tlog checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed tree
//! head, carried as the text of a signed note.
//!
//! ```text
//! <origin>\n
//! <tree size, decimal, no leading zeros>\n
//! <base64 root hash>\n
//! [<extension line>\n ...]
//! ```

use crate::hash::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier, open_note};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use thiserror::Error;

/// Bound on extension lines; mebyo writes none, but other logs might.
pub const MAX_EXTENSION_LINES: usize = 16;

/// Errors from checkpoint formatting, parsing and verification.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
}

/// A tree head: which log, how many leaves, and the RFC 9162 root at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque extension lines (without newlines). Not recommended by the spec.
    pub extensions: Vec<String>,
}

/// A checkpoint together with the exact signed note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

fn valid_line(s: &str) -> bool {
    !s.is_empty() && !s.contains('\n') && !s.bytes().any(|b| b < 0x20)
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text (body) of this checkpoint.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        if !valid_line(&self.origin) {
            return Err(CheckpointError::Malformed(
                "origin must be a non-empty line",
            ));
        }
        if self.extensions.len() > MAX_EXTENSION_LINES {
            return Err(CheckpointError::Malformed("too many extension lines"));
        }
        if !self.extensions.iter().all(|e| valid_line(e)) {
            return Err(CheckpointError::Malformed(
                "extension lines must be non-empty lines",
            ));
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            body.push_str(e);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parse a checkpoint body (the *verified* text of a note). Strict: one
    /// canonical spelling per checkpoint, so two different byte strings can
    /// never claim the same tree head.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let lines = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("body must end with a newline"))?;
        let mut it = lines.split('\n');
        let origin = it
            .next()
            .filter(|s| !s.is_empty())
            .ok_or(CheckpointError::Malformed("missing origin"))?;
        let size_s = it
            .next()
            .ok_or(CheckpointError::Malformed("missing size"))?;
        let root_s = it
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash"))?;
        let size = parse_size(size_s)?;
        let root: Hash = B64
            .decode(root_s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "root hash must be canonical base64 of 32 bytes",
            ))?;
        let mut extensions = Vec::new();
        for e in it {
            if e.is_empty() {
                return Err(CheckpointError::Malformed("empty extension line"));
            }
            if extensions.len() == MAX_EXTENSION_LINES {
                return Err(CheckpointError::Malformed("too many extension lines"));
            }
            extensions.push(e.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// ASCII decimal, no sign, no leading zeros (except "0" itself), fits in u64.
fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    let bad = CheckpointError::Malformed("tree size must be canonical decimal");
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

/// Sign a checkpoint, producing the signed note text.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    signer: &NoteSigner,
) -> Result<SignedCheckpoint, CheckpointError> {
    let note = signer.sign_note(&checkpoint.to_body()?)?;
    Ok(SignedCheckpoint {
        checkpoint: checkpoint.clone(),
        note,
    })
}

/// Verify a signed checkpoint note against one trusted key and parse it.
///
/// This does not require the origin to equal the key name (the spec only says
/// SHOULD, and e.g. sum.golang.org signs "go.sum database tree"); callers that
/// expect a particular log must compare `origin` themselves, or use
/// [`parse_and_verify_checkpoint_for_origin`].
pub fn parse_and_verify_checkpoint(
    note: &str,
    verifier: &NoteVerifier,
) -> Result<Checkpoint, CheckpointError> {
    let text = open_note(note, verifier)?;
    Checkpoint::parse_body(text)
}

/// As [`parse_and_verify_checkpoint`], and also require a specific origin so a
/// key shared between logs cannot pass off one log's head as another's.
pub fn parse_and_verify_checkpoint_for_origin(
    note: &str,
    verifier: &NoteVerifier,
    origin: &str,
) -> Result<Checkpoint, CheckpointError> {
    let cp = parse_and_verify_checkpoint(note, verifier)?;
    if cp.origin != origin {
        return Err(CheckpointError::Malformed("unexpected origin"));
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    // A real sum.golang.org checkpoint and the public sum.golang.org key, from
    // transparency-dev/formats log/note_test.go (TestSumDBNoteParsing).
    const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    const SUMDB_NOTE: &str = "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n\u{2014} sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n";

    #[test]
    fn real_sumdb_checkpoint_verifies() {
        let v = NoteVerifier::from_vkey(SUMDB_VKEY).unwrap();
        let cp = parse_and_verify_checkpoint(SUMDB_NOTE, &v).unwrap();
        assert_eq!(cp.origin, "go.sum database tree");
        assert_eq!(cp.size, 6476701);
        assert_eq!(
            B64.encode(cp.root),
            "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
        );
        assert!(cp.extensions.is_empty());
        assert!(
            parse_and_verify_checkpoint_for_origin(SUMDB_NOTE, &v, "go.sum database tree").is_ok()
        );
        assert!(parse_and_verify_checkpoint_for_origin(SUMDB_NOTE, &v, "other").is_err());
        // Any change to the size line breaks the signature.
        let forged = SUMDB_NOTE.replace("6476701", "6476702");
        assert!(parse_and_verify_checkpoint(&forged, &v).is_err());
    }

    #[test]
    fn sign_and_verify_roundtrip() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let s = NoteSigner::generate("mebyo.example/tlog", &mut rng).unwrap();
        let mut cp = Checkpoint::new("mebyo.example/tlog", 42, [9; 32]);
        cp.extensions.push("ext line".into());
        let signed = sign_checkpoint(&cp, &s).unwrap();
        assert!(signed.note.starts_with("mebyo.example/tlog\n42\nCQkJ"));
        let back = parse_and_verify_checkpoint(&signed.note, &s.verifier()).unwrap();
        assert_eq!(back, cp);
        let other = NoteSigner::generate("mebyo.example/tlog", &mut rng).unwrap();
        assert!(parse_and_verify_checkpoint(&signed.note, &other.verifier()).is_err());
    }

    #[test]
    fn malformed_bodies_rejected() {
        let root = B64.encode([1u8; 32]);
        let bad = [
            format!("o\n1\n{root}"),                          // no final newline
            format!("\n1\n{root}\n"),                         // empty origin
            format!("o\n01\n{root}\n"),                       // leading zero
            format!("o\n+1\n{root}\n"),                       // sign
            format!("o\n-1\n{root}\n"),                       // negative
            format!("o\n18446744073709551616\n{root}\n"),     // overflow
            format!("o\n1 \n{root}\n"),                       // trailing space
            "o\n1\nAAAA\n".to_string(),                       // short root
            format!("o\n1\n{}\n", &root[..root.len() - 1]),   // bad padding
            format!("o\n1\n{}F=\n", &root[..root.len() - 2]), // non-canonical bits
            format!("o\n1\n{root}\n\n"),                      // empty extension
            "o\n1\n".to_string(),                             // missing root
        ];
        for b in &bad {
            assert!(Checkpoint::parse_body(b).is_err(), "accepted {b:?}");
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("o\n0\n{root}\n"))
                .unwrap()
                .size,
            0
        );
        let too_many = format!("o\n1\n{root}\n{}", "x\n".repeat(MAX_EXTENSION_LINES + 1));
        assert!(Checkpoint::parse_body(&too_many).is_err());
        let cp = Checkpoint::new("has\nnewline", 1, [0; 32]);
        assert!(cp.to_body().is_err());
    }
}
