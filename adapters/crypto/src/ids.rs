//! Pseudonyms and key references: the only identifiers that leave this crate and
//! end up in the event log, so neither carries personal data (P4.8(3)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CryptoError, Result};

/// Longest pseudonym accepted; the key store encodes the length in one byte.
pub const MAX_PSEUDONYM_LEN: usize = 128;

/// A person's pseudonymous id, as used in the event log.
///
/// Restricted to `[A-Za-z0-9._-]`, 1..=128 bytes: no `:` (the key-reference
/// separator), no whitespace or control characters that could confuse logs, and
/// nothing that looks like a name or email.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pseudonym(String);

impl Pseudonym {
    pub fn new(value: impl Into<String>) -> Result<Pseudonym> {
        let value = value.into();
        if value.is_empty() {
            return Err(CryptoError::InvalidPseudonym { reason: "empty" });
        }
        if value.len() > MAX_PSEUDONYM_LEN {
            return Err(CryptoError::InvalidPseudonym {
                reason: "longer than 128 bytes",
            });
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(CryptoError::InvalidPseudonym {
                reason: "only ASCII letters, digits, '.', '_' and '-' are allowed",
            });
        }
        Ok(Pseudonym(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Pseudonym {
    type Error = CryptoError;
    fn try_from(value: String) -> Result<Self> {
        Pseudonym::new(value)
    }
}

impl TryFrom<&str> for Pseudonym {
    type Error = CryptoError;
    fn try_from(value: &str) -> Result<Self> {
        Pseudonym::new(value)
    }
}

impl From<Pseudonym> for String {
    fn from(p: Pseudonym) -> String {
        p.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({})", self.0)
    }
}

/// Which of a person's two data-encryption keys (P4.8(3): identity and health data
/// are separate data areas with separate keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DekKind {
    Identity,
    Health,
}

impl DekKind {
    pub const ALL: [DekKind; 2] = [DekKind::Identity, DekKind::Health];

    /// One-letter code used in key references and the key-store file.
    pub fn code(self) -> u8 {
        match self {
            DekKind::Identity => b'i',
            DekKind::Health => b'h',
        }
    }

    pub fn from_code(code: u8) -> Option<DekKind> {
        match code {
            b'i' => Some(DekKind::Identity),
            b'h' => Some(DekKind::Health),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DekKind::Identity => "identity",
            DekKind::Health => "health",
        }
    }
}

/// Reference to one DEK, put in event envelopes: `dek:<i|h>:<pseudonym>:<version>`.
///
/// The version is the DEK's own generation, independent of the KEK: rotating the
/// KEK rewraps DEKs without changing them, so references already written into
/// the (immutable) event log stay valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyRef {
    pub kind: DekKind,
    pub person: Pseudonym,
    pub version: u32,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dek:{}:{}:{}",
            self.kind.code() as char,
            self.person,
            self.version
        )
    }
}

impl FromStr for KeyRef {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<KeyRef> {
        let bad = |reason| CryptoError::InvalidKeyRef {
            value: s.chars().take(160).collect(),
            reason,
        };
        let mut parts = s.split(':');
        let (Some("dek"), Some(kind), Some(person), Some(version), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("expected dek:<i|h>:<pseudonym>:<version>"));
        };
        let kind = match kind.as_bytes() {
            [c] => DekKind::from_code(*c),
            _ => None,
        }
        .ok_or_else(|| bad("kind must be 'i' or 'h'"))?;
        let person = Pseudonym::new(person).map_err(|_| bad("invalid pseudonym"))?;
        // Canonical decimal only, so one key has exactly one reference string.
        let version: u32 = version
            .parse()
            .ok()
            .filter(|v: &u32| *v >= 1 && v.to_string() == version)
            .ok_or_else(|| bad("version must be a positive decimal without leading zeros"))?;
        Ok(KeyRef {
            kind,
            person,
            version,
        })
    }
}

impl Serialize for KeyRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
