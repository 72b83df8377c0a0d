//! DEKs and payload encryption with AES-256-SIV (P4.8(1)).
//!
//! Why AES-SIV (RFC 5297): it is nonce-misuse resistant. There is no nonce to
//! get wrong; the worst a repeated (key, AD, plaintext) triple can leak is that the
//! two ciphertexts are equal. Our associated data is the event envelope header
//! (stream id, revision, event type, global position), which is unique per stored
//! event, so in practice every seal is a fresh encryption, and a payload copied
//! into another envelope fails authentication.
//!
//! Sealed format: `0x01` (format version) ‖ 16-byte SIV tag ‖ ciphertext.

use std::fmt;

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, Result};
use crate::ids::{DekKind, KeyRef};
use crate::kek::KEY_LEN;

const SEAL_VERSION: u8 = 1;
/// Domain-separation header: a payload sealed for one purpose can never be
/// opened as another, even under the same key and AD bytes.
pub(crate) const DOMAIN_PAYLOAD: &[u8] = b"mebyo-payload-v1";
pub(crate) const DOMAIN_IDENTITY: &[u8] = b"mebyo-identity-record-v1";
const DOMAIN_ENVELOPE_AD: &[u8] = b"mebyo-envelope-ad-v1";
/// Bytes added by [`seal`]: version byte + SIV tag.
pub const SEAL_OVERHEAD: usize = 1 + 16;

/// A person's data-encryption key (unwrapped). Zeroized on drop; Debug shows only
/// the key reference.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Dek {
    key: [u8; KEY_LEN],
    #[zeroize(skip)]
    key_ref: KeyRef,
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dek")
            .field("key_ref", &self.key_ref.to_string())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Dek {
    pub(crate) fn generate(key_ref: KeyRef, rng: &mut (impl CryptoRng + ?Sized)) -> Dek {
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        let dek = Dek { key, key_ref };
        key.zeroize();
        dek
    }

    pub(crate) fn from_slice(key_ref: KeyRef, bytes: &[u8]) -> Option<Dek> {
        let key: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Dek { key, key_ref })
    }

    pub(crate) fn key_bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// Reference to put in event envelopes (no key material, no personal data).
    pub fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    pub fn kind(&self) -> DekKind {
        self.key_ref.kind
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(&self.key).expect("64-byte key fits AES-256-SIV")
    }

    pub(crate) fn require_kind(&self, kind: DekKind) -> Result<()> {
        if self.kind() != kind {
            return Err(CryptoError::WrongDekKind {
                expected: kind.name(),
                given: self.kind().name(),
            });
        }
        Ok(())
    }
}

/// AES-SIV decrypt into a buffer that is wiped on drop (also on failure).
pub(crate) fn siv_open(
    siv: &mut Aes256Siv,
    headers: &[&[u8]],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    siv.decrypt_in_place(headers, &mut *buf)
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(buf)
}

pub(crate) fn seal_in_domain(
    dek: &Dek,
    domain: &[u8],
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut sealed = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    sealed.push(SEAL_VERSION);
    sealed.extend_from_slice(&[0u8; 16]);
    sealed.extend_from_slice(plaintext);
    // Encrypt in place in the output buffer, so no plaintext copy is left behind in
    // an unzeroized temporary.
    let tag = dek
        .siv()
        .encrypt_in_place_detached([domain, associated_data], &mut sealed[SEAL_OVERHEAD..])
        .map_err(|_| CryptoError::Encrypt {
            reason: "AES-SIV rejected the input (too many headers)",
        })?;
    sealed[1..SEAL_OVERHEAD].copy_from_slice(tag.as_slice());
    Ok(sealed)
}

pub(crate) fn open_in_domain(
    dek: &Dek,
    domain: &[u8],
    associated_data: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    match sealed.split_first() {
        Some((&SEAL_VERSION, rest)) if rest.len() >= 16 => {
            siv_open(&mut dek.siv(), &[domain, associated_data], rest)
        }
        _ => Err(CryptoError::Decrypt),
    }
}

/// Encrypt an event payload under `dek`, bound to `associated_data` (use
/// [`envelope_ad`]). P4.8(1): every stored payload is encrypted at rest.
pub fn seal(dek: &Dek, associated_data: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    seal_in_domain(dek, DOMAIN_PAYLOAD, associated_data, plaintext)
}

/// Decrypt and authenticate a payload sealed by [`seal`]. Fails with
/// [`CryptoError::Decrypt`] if the key, the associated data or any byte differ.
/// The plaintext is returned in a zeroizing buffer.
pub fn open(dek: &Dek, associated_data: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    open_in_domain(dek, DOMAIN_PAYLOAD, associated_data, sealed)
}

/// Associated data for an event payload: binds the ciphertext to its place in the
/// log so it cannot be replayed elsewhere (P4.8(1)).
///
/// Encoding (unambiguous: every variable field is length-prefixed, integers are
/// fixed-width big-endian):
/// `"mebyo-envelope-ad-v1"` ‖ u32 len ‖ stream_id ‖ u64 stream_revision ‖
/// u32 len ‖ event_type ‖ u64 position.
pub fn envelope_ad(
    stream_id: &str,
    stream_revision: u64,
    event_type: &str,
    position: u64,
) -> Vec<u8> {
    let mut ad =
        Vec::with_capacity(DOMAIN_ENVELOPE_AD.len() + 24 + stream_id.len() + event_type.len());
    ad.extend_from_slice(DOMAIN_ENVELOPE_AD);
    push_len_prefixed(&mut ad, stream_id.as_bytes());
    ad.extend_from_slice(&stream_revision.to_be_bytes());
    push_len_prefixed(&mut ad, event_type.as_bytes());
    ad.extend_from_slice(&position.to_be_bytes());
    ad
}

fn push_len_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    // Lengths beyond u32 cannot occur for ids and type names; saturating keeps the
    // function infallible and such a field would still be unambiguous in practice.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

#[cfg(test)]
impl Dek {
    pub(crate) fn for_test(key_ref: KeyRef, rng: &mut (impl CryptoRng + ?Sized)) -> Dek {
        Dek::generate(key_ref, rng)
    }
}
