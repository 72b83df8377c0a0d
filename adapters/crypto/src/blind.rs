//! Blind index (P4.8(3)): a keyed hash of a normalised email or phone number, so
//! the identity vault can find a person by email/phone without storing or
//! decrypting either in the clear. Without the key, tokens cannot be tested
//! against guessed phone numbers (which a plain hash would allow: the space of
//! Japanese phone numbers is tiny).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{CryptoError, Result};
use crate::kek::KeyId;

pub const BLIND_KEY_LEN: usize = 32;
const EMAIL_CONTEXT: &str = "mebyo-crypto 2025-01 blind index email v1";
const PHONE_CONTEXT: &str = "mebyo-crypto 2025-01 blind index phone v1";
const KEY_ID_CONTEXT: &str = "mebyo-crypto 2025-01 blind index key id v1";
/// RFC 5321's 254, in characters (see [`normalize_email`]).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A blind-index token (32-byte keyed blake3). Not secret on its own, but only
/// meaningful together with the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindToken(pub [u8; 32]);

impl fmt::Debug for BlindToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindToken({})", hex::encode(self.0))
    }
}

/// Keyed hasher for blind indexes. Separate subkeys per field, so an email and a
/// phone number that normalise to the same string never share a token.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlindIndex {
    email_key: [u8; 32],
    phone_key: [u8; 32],
    #[zeroize(skip)]
    id: KeyId,
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindIndex")
            .field("key_id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl BlindIndex {
    /// From a 32-byte root key. In production the key comes from
    /// [`crate::KeyStore::blind_index`], where it is stored wrapped under the KEK.
    pub fn new(key: &[u8; BLIND_KEY_LEN]) -> BlindIndex {
        BlindIndex {
            email_key: blake3::derive_key(EMAIL_CONTEXT, key),
            phone_key: blake3::derive_key(PHONE_CONTEXT, key),
            id: KeyId::of(KEY_ID_CONTEXT, key),
        }
    }

    /// Fingerprint of the root key, safe to log and to store in the vault header.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    pub fn index_email(&self, email: &str) -> Result<BlindToken> {
        let n = normalize_email(email)?;
        Ok(BlindToken(
            *blake3::keyed_hash(&self.email_key, n.as_bytes()).as_bytes(),
        ))
    }

    pub fn index_phone(&self, phone: &str) -> Result<BlindToken> {
        let n = normalize_phone(phone)?;
        Ok(BlindToken(
            *blake3::keyed_hash(&self.phone_key, n.as_bytes()).as_bytes(),
        ))
    }
}

/// Email: trim and lowercase (the whole address: in practice mailbox providers
/// treat the local part case-insensitively, and a lookup that misses is worse
/// than one that merges two case-variants of one address).
pub fn normalize_email(email: &str) -> Result<Zeroizing<String>> {
    // Characters of the address as given, as the web and the API's schema count
    // them (JSON Schema's `maxLength` counts characters): a byte limit here made a
    // long multibyte address that the web accepted fail as a 500 (issue 22 §7).
    // Counted before lowercasing, which may lengthen an address.
    if email.trim().chars().count() > MAX_EMAIL_CHARS {
        return Err(CryptoError::InvalidEmail {
            reason: "longer than 254 characters",
        });
    }
    let n = Zeroizing::new(email.trim().to_lowercase());
    if n.is_empty() {
        return Err(CryptoError::InvalidEmail { reason: "empty" });
    }
    match n.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {}
        _ => {
            return Err(CryptoError::InvalidEmail {
                reason: "expected local@domain",
            });
        }
    }
    if n.chars().any(char::is_whitespace) {
        return Err(CryptoError::InvalidEmail {
            reason: "contains whitespace",
        });
    }
    Ok(n)
}

/// Phone: digits only (ASCII or full-width), with Japanese international forms
/// unified to the national form: `+81 90-1234-5678`, `+81 (0)90…`, `010-81-90…`
/// and `090-1234-5678` all become `09012345678`. Other countries keep a `+`
/// prefix so they can never collide with a national number.
pub fn normalize_phone(phone: &str) -> Result<Zeroizing<String>> {
    let trimmed = phone.trim();
    let international = trimmed.starts_with('+') || trimmed.starts_with('＋');
    let mut digits = Zeroizing::new(String::with_capacity(trimmed.len()));
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // Full-width digits are common in Japanese form input.
            '０'..='９' => digits.push(char::from(b'0' + (c as u32 - '０' as u32) as u8)),
            _ => {}
        }
    }
    // 010 is Japan's international call prefix; "010 81 …" dialled from Japan is
    // the same as "+81 …". No national number starts with 010.
    let rest: &str = if !international && digits.starts_with("01081") {
        &digits[5..]
    } else if international && digits.starts_with("81") {
        &digits[2..]
    } else if international {
        let out = Zeroizing::new(format!("+{}", digits.as_str()));
        return check_phone_len(out, digits.len());
    } else {
        let out = Zeroizing::new(digits.as_str().to_owned());
        return check_phone_len(out, digits.len());
    };
    // After the country code, a Japanese number drops its trunk 0; some people
    // write it anyway ("+81 (0)90…").
    let national = if rest.starts_with('0') {
        Zeroizing::new(rest.to_owned())
    } else {
        Zeroizing::new(format!("0{rest}"))
    };
    let n = national.len();
    check_phone_len(national, n)
}

fn check_phone_len(out: Zeroizing<String>, digits: usize) -> Result<Zeroizing<String>> {
    if digits < 6 {
        return Err(CryptoError::InvalidPhone {
            reason: "fewer than 6 digits",
        });
    }
    if digits > 15 {
        return Err(CryptoError::InvalidPhone {
            reason: "more than 15 digits (E.164 limit)",
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bi() -> BlindIndex {
        BlindIndex::new(&[7u8; 32])
    }

    // P4.8(3): lookups by email must match regardless of case and surrounding space.
    #[test]
    fn email_normalisation_unifies_case_and_space() {
        let b = bi();
        assert_eq!(
            b.index_email("  Taro.Yamada@Example.JP ").unwrap(),
            b.index_email("taro.yamada@example.jp").unwrap()
        );
        assert_ne!(
            b.index_email("taro@example.jp").unwrap(),
            b.index_email("hanako@example.jp").unwrap()
        );
        assert!(b.index_email("").is_err());
        assert!(b.index_email("no-at-sign").is_err());
        assert!(b.index_email("a b@example.jp").is_err());
    }

    /// Issue 22 §7: the limit counts characters, as the web and the API schema do;
    /// a 254-character address of 3-byte characters is an address, 255 is not.
    #[test]
    fn email_limit_counts_characters_not_bytes() {
        let b = bi();
        // `@例.jp` is five characters.
        let at = |n: usize| format!("{}@例.jp", "あ".repeat(n - 5));
        assert!(b.index_email(&at(MAX_EMAIL_CHARS)).is_ok());
        assert!(b.index_email(&at(MAX_EMAIL_CHARS + 1)).is_err());
        // Lowercasing may lengthen an address (İ is two characters lowercased).
        assert!(b.index_email(&format!("{}@x.jp", "İ".repeat(249))).is_ok());
    }

    #[test]
    fn phone_normalisation_unifies_japanese_forms() {
        let b = bi();
        let want = b.index_phone("090-1234-5678").unwrap();
        for form in [
            "09012345678",
            "+81 90-1234-5678",
            "+81-(0)90-1234-5678",
            "+819012345678",
            "０９０−１２３４−５６７８",
            "＋８１ ９０ １２３４ ５６７８",
            "010-81-90-1234-5678",
            " (090) 1234 5678 ",
        ] {
            assert_eq!(b.index_phone(form).unwrap(), want, "{form}");
        }
        assert_eq!(&*normalize_phone("+81 45-210-1111").unwrap(), "0452101111");
        // A US number keeps its '+' and never equals a national number.
        assert_eq!(
            &*normalize_phone("+1 202 555 0100").unwrap(),
            "+12025550100"
        );
        assert_ne!(
            b.index_phone("+1 202 555 0100").unwrap(),
            b.index_phone("12025550100").unwrap()
        );
        assert!(b.index_phone("12-34").is_err());
        assert!(b.index_phone("").is_err());
    }

    #[test]
    fn tokens_depend_on_key_and_field() {
        let a = BlindIndex::new(&[1u8; 32]);
        let c = BlindIndex::new(&[2u8; 32]);
        assert_ne!(
            a.index_phone("0452101111").unwrap(),
            c.index_phone("0452101111").unwrap()
        );
        assert_ne!(a.key_id(), c.key_id());
        // Debug shows only the fingerprint (P4.8(1): keys never in logs).
        let dbg = format!("{a:?}");
        assert!(dbg.contains("[redacted]"));
        assert!(!dbg.contains(&hex::encode(a.email_key)));
    }
}
