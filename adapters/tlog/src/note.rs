//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, the
//! same format as Go's `golang.org/x/mod/sumdb/note`.
//!
//! ```text
//! <text ending in \n>
//! \n
//! — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>\n
//! ```
//!
//! Parsing is strict and bounded: everything arriving here is untrusted.

use crate::hash::sha256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use thiserror::Error;
use zeroize::Zeroize;

/// Signature type identifier byte for Ed25519 (signed-note spec).
pub const ALG_ED25519: u8 = 0x01;
/// Upper bound on an entire signed note, text plus signatures.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// Upper bound on signature lines; the spec requires accepting at least 16.
pub const MAX_SIGNATURES: usize = 100;
/// Upper bound on a key name, so key strings stay small.
pub const MAX_KEY_NAME_BYTES: usize = 256;

const SIG_PREFIX: &str = "\u{2014} ";

/// Errors from key handling, signing and note verification.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum NoteError {
    #[error("invalid key name (must be non-empty, at most 256 bytes, no spaces or '+')")]
    InvalidKeyName,
    #[error("malformed verifier key")]
    MalformedVerifierKey,
    #[error("malformed signer key")]
    MalformedSignerKey,
    #[error("unsupported signature algorithm {0:#04x}")]
    UnsupportedAlgorithm(u8),
    #[error("key ID in key string does not match the key")]
    KeyIdMismatch,
    #[error("note is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("note text must end with a newline and contain no control characters")]
    InvalidText,
    #[error("invalid signature for key {name}+{key_id:08x}")]
    BadSignature { name: String, key_id: u32 },
    #[error("note has no signature from key {name}+{key_id:08x}")]
    NoTrustedSignature { name: String, key_id: u32 },
}

/// Key ID = first 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || pubkey).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let h = sha256(&[name.as_bytes(), b"\n", &[ALG_ED25519], public_key]);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Key names: non-empty, no Unicode whitespace, no '+', bounded length.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEY_NAME_BYTES
        && !name.contains('+')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Signed notes must be UTF-8 (guaranteed by `&str`) with no ASCII control
/// characters other than newline.
fn has_forbidden_chars(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\n')
}

/// An Ed25519 note signing key with its name. The secret is zeroized on drop
/// (by `ed25519-dalek`) and never printed by `Debug`.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Generate a key from an injected CSPRNG (tests use a seeded ChaCha).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        name: &str,
        rng: &mut R,
    ) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let s = Self::from_seed(name, &seed);
        seed.zeroize();
        s
    }

    /// Build from a 32-byte RFC 8032 Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parse Go's private key string `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedSignerKey)?;
        let (name, id, mut key) =
            parse_key_parts(rest).map_err(|_| NoteError::MalformedSignerKey)?;
        let result = (|| {
            if key.len() != 33 {
                return Err(NoteError::MalformedSignerKey);
            }
            if key[0] != ALG_ED25519 {
                return Err(NoteError::UnsupportedAlgorithm(key[0]));
            }
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&key[1..]);
            let signer = Self::from_seed(name, &seed);
            seed.zeroize();
            let signer = signer?;
            if signer.key_id != id {
                return Err(NoteError::KeyIdMismatch);
            }
            Ok(signer)
        })();
        key.zeroize();
        result
    }

    /// Go-compatible private key string. Secret material: store it like one.
    pub fn to_skey(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let s = format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            B64.encode(raw)
        );
        raw.zeroize();
        s
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Sign `text` and return the complete signed note. `text` must end in a
    /// newline, contain no control characters, and not end in a blank line
    /// (which would make the text/signature split ambiguous).
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty()
            || !text.ends_with('\n')
            || text.ends_with("\n\n")
            || has_forbidden_chars(text)
        {
            return Err(NoteError::InvalidText);
        }
        let sig = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        let note = format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw));
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        Ok(note)
    }
}

/// An Ed25519 note verifier key, written as `<name>+<hex key ID>+<base64(0x01 || pubkey)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl std::fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl std::str::FromStr for NoteVerifier {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_vkey(s)
    }
}

/// Split `<name>+<8 lowercase hex>+<base64>` and decode; used for vkeys and skeys.
fn parse_key_parts(s: &str) -> Result<(&str, u32, Vec<u8>), ()> {
    if s.len() > MAX_KEY_NAME_BYTES + 128 {
        return Err(());
    }
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(());
    };
    if !is_valid_key_name(name) {
        return Err(());
    }
    // Exactly 8 hex digits: a canonical spelling, so one key has one string.
    if id.len() != 8 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(());
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| ())?;
    let key = B64.decode(key).map_err(|_| ())?;
    Ok((name, id, key))
}

impl NoteVerifier {
    /// Parse a verifier key string, checking the algorithm, key length and that
    /// the embedded key ID really is the hash of name and key.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_key_parts(vkey).map_err(|_| NoteError::MalformedVerifierKey)?;
        if key.is_empty() {
            return Err(NoteError::MalformedVerifierKey);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm(key[0]));
        }
        let pk: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey)?;
        if key_id(name, &pk) != id {
            return Err(NoteError::KeyIdMismatch);
        }
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| NoteError::MalformedVerifierKey)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// Build from a raw public key.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| NoteError::MalformedVerifierKey)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, public_key),
            key,
        })
    }

    /// `<name>+<hex key ID>+<base64(0x01 || pubkey)>`.
    pub fn to_vkey(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(raw))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

/// Verify a signed note against one trusted key and return its text (which
/// includes the final newline).
///
/// Follows the signed-note rules: signatures from other keys are ignored
/// (they may be witnesses); every signature matching our key's name *and* ID
/// must verify, otherwise the whole note is rejected; at least one must exist.
pub fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge);
    }
    if has_forbidden_chars(note) {
        return Err(NoteError::Malformed("control character"));
    }
    // The text is separated from the signatures by the *last* blank line.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no signature block"))?;
    let text = &note[..split + 1];
    let sigs = &note[split + 2..];
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed("signature block must end in newline"));
    }
    let mut trusted = 0usize;
    for (n, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "signature line must start with em dash",
        ))?;
        let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
            "signature line needs name and signature",
        ))?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed("invalid key name in signature"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not canonical base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        // Unknown keys (name or ID differ) are ignored, per the spec.
        if name != verifier.name || id != verifier.key_id {
            continue;
        }
        let bad = || NoteError::BadSignature {
            name: verifier.name.clone(),
            key_id: verifier.key_id,
        };
        let sig_bytes: [u8; 64] = raw[4..].try_into().map_err(|_| bad())?;
        let sig = Signature::from_bytes(&sig_bytes);
        // verify_strict: reject non-canonical and small-order encodings so one
        // note has one valid signature per key.
        verifier
            .key
            .verify_strict(text.as_bytes(), &sig)
            .map_err(|_| bad())?;
        trusted += 1;
    }
    if trusted == 0 {
        return Err(NoteError::NoTrustedSignature {
            name: verifier.name.clone(),
            key_id: verifier.key_id,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    // Test vectors from golang.org/x/mod/sumdb/note/note_test.go.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn go_vkey_parses_and_roundtrips() {
        let v = NoteVerifier::from_vkey(PETER_VKEY).unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_id(), 0xc74f20a3);
        assert_eq!(v.to_vkey(), PETER_VKEY);
        assert_eq!(
            NoteVerifier::from_public_key("PeterNeumann", &v.public_key()).unwrap(),
            v
        );
    }

    #[test]
    fn go_vkey_manglings_rejected() {
        // Same mangling strategy as Go's TestNewVerifier.
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                if let Ok(s) = std::str::from_utf8(&b[i..j]) {
                    assert!(NoteVerifier::from_vkey(s).is_err(), "accepted {s:?}");
                }
            }
        }
        let mut m = b.to_vec();
        for i in 0..m.len() {
            m[i] += 1;
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(NoteVerifier::from_vkey(s).is_err(), "accepted {s:?}");
            }
            m[i] -= 1;
        }
        // Wrong length key / unknown algorithm (with adjusted key hashes), from Go.
        assert!(
            NoteVerifier::from_vkey(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            )
            .is_err()
        );
        assert_eq!(
            NoteVerifier::from_vkey(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(NoteError::UnsupportedAlgorithm(0x65))
        );
    }

    #[test]
    fn go_skey_signs_byte_identical_note() {
        let s = NoteSigner::from_skey(PETER_SKEY).unwrap();
        assert_eq!(s.to_skey(), PETER_SKEY);
        assert_eq!(s.verifier().to_vkey(), PETER_VKEY);
        // Ed25519 is deterministic, so our output must equal Go's TestSign output.
        let note = s.sign_note(TEXT).unwrap();
        assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn go_signed_note_verifies() {
        let peter = NoteVerifier::from_vkey(PETER_VKEY).unwrap();
        let enoch = NoteVerifier::from_vkey(ENOCH_VKEY).unwrap();
        let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        assert_eq!(open_note(&note, &peter).unwrap(), TEXT);
        assert_eq!(open_note(&note, &enoch).unwrap(), TEXT);
        // Only Enoch signed: Peter's verifier finds no trusted signature.
        let only_enoch = format!("{TEXT}\n{ENOCH_SIG}");
        assert!(matches!(
            open_note(&only_enoch, &peter),
            Err(NoteError::NoTrustedSignature { .. })
        ));
    }

    #[test]
    fn go_bad_notes_rejected() {
        let peter = NoteVerifier::from_vkey(PETER_VKEY).unwrap();
        // Invalid signature (Go's TestOpen mangling).
        let bad_sig = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(open_note(&bad_sig, &peter).is_err());
        let bad = [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\x01{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
        ];
        for msg in &bad {
            assert!(open_note(msg, &peter).is_err(), "accepted {msg:?}");
        }
        // Tampered text.
        let tampered = format!("{}\n{PETER_SIG}", TEXT.replace("answer", "question"));
        assert!(matches!(
            open_note(&tampered, &peter),
            Err(NoteError::BadSignature { .. })
        ));
        // Too large.
        let huge = format!("{}\n{PETER_SIG}", "a\n".repeat(MAX_NOTE_BYTES));
        assert_eq!(open_note(&huge, &peter), Err(NoteError::TooLarge));
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let s = NoteSigner::generate("mebyo.example/log", &mut rng).unwrap();
        let v: NoteVerifier = s.verifier().to_vkey().parse().unwrap();
        let note = s.sign_note("hello\n").unwrap();
        assert_eq!(open_note(&note, &v).unwrap(), "hello\n");
        let other = NoteSigner::generate("mebyo.example/log", &mut rng).unwrap();
        assert!(open_note(&note, &other.verifier()).is_err());
        assert!(format!("{s:?}").contains("mebyo.example/log"));
        assert!(!format!("{s:?}").contains(&s.to_skey()[40..]));
    }

    #[test]
    fn invalid_names_and_texts_rejected() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for name in ["", "a b", "a+b", "tab\there", "nl\n"] {
            assert!(NoteSigner::generate(name, &mut rng).is_err(), "{name:?}");
        }
        let s = NoteSigner::generate("ok", &mut rng).unwrap();
        for text in ["", "no newline", "blank end\n\n", "ctrl\x07\n"] {
            assert_eq!(s.sign_note(text), Err(NoteError::InvalidText), "{text:?}");
        }
    }
}
