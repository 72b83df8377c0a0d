//! Identifiers of operational records, and short references to things outside the
//! system (a police report number, a storage cabinet, a contract clause).
//!
//! Everything here ends up in plaintext operational streams, so it is restricted to
//! `[a-z0-9-]` like the domain's ids: a slug cannot carry a name, an address or free
//! prose that might hold personal data (P4.8(3)).

use serde::{Deserialize, Serialize};
use std::fmt;

pub use mebyo_domain::ids::IdError;

fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

macro_rules! slug {
    ($($(#[$doc:meta])* $name:ident => $prefix:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Stream-name prefix, when records of this kind have their own streams.
            pub const PREFIX: Option<&'static str> = $prefix;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if valid_slug(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: stringify!($name), value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

slug! {
    /// A security incident (P4.14); its stream is `incident-<id>`.
    IncidentId => Some("incident");
    /// A removable medium in the media ledger (P4.7(2)); stream `media-<id>`.
    MediaId => Some("media");
    /// A disposal of something not in the media ledger (P4.9); stream `disposal-<id>`.
    DisposalId => Some("disposal");
    /// A maintenance window (P4.3), within the single `ops-maintenance` stream.
    WindowId => None;
    /// A reference to something outside the system: a police report number, a
    /// cabinet, a contract, a purpose code. Never prose (see the module comment).
    Reference => None;
}

macro_rules! streams {
    ($($name:ident),*) => {$(
        impl $name {
            /// The event stream of this record, e.g. `incident-<id>`.
            pub fn stream(&self) -> String {
                format!("{}-{}", Self::PREFIX.expect("has a stream"), self.0)
            }
        }
    )*};
}

streams!(IncidentId, MediaId, DisposalId);

/// A BLAKE3 (or any 256-bit) digest of what was copied to a medium: exactly 64
/// lowercase hex digits, so the ledger proves which contents left (P4.7(2)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(value))
        } else {
            Err(IdError {
                kind: "Digest",
                value,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::new(value)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64-bit FNV-1a: a stable, dependency-free hash for deriving deterministic ids
/// (anomaly incidents must get the same id when the log is replayed, so opening
/// them is idempotent). Not a security primitive.
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_refuse_prose_and_personal_data() {
        assert_eq!(IncidentId::new("i-1").unwrap().stream(), "incident-i-1");
        assert_eq!(MediaId::new("usb-7").unwrap().stream(), "media-usb-7");
        for bad in [
            "",
            "Taro",
            "a b",
            "-a",
            "a-",
            "田中",
            "a@b.jp",
            &"a".repeat(65),
        ] {
            assert!(Reference::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<IncidentId>("\"Bad Id\"").is_err());
        assert!(Digest::new("ab".repeat(32)).is_ok());
        assert!(Digest::new("AB".repeat(32)).is_err());
    }

    #[test]
    fn fnv_is_stable_and_separates_parts() {
        assert_eq!(fnv1a(&["a", "b"]), fnv1a(&["a", "b"]));
        assert_ne!(fnv1a(&["ab", ""]), fnv1a(&["a", "b"]));
    }
}
