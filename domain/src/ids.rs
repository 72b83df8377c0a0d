//! Pseudonymous identifiers and time.
//!
//! Ids become stream names (`person-<id>`) and appear in every event, so they are
//! restricted to `[a-z0-9-]` and never carry personal data (P4.8(3)). Time is passed
//! in by the caller: the domain never reads a clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Add;

/// A malformed identifier; rejected before it can reach a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} must be 1..=64 characters of [a-z0-9-], not starting or ending with '-': {value:?}"
)]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
}

fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

macro_rules! pseudonymous_id {
    ($($(#[$doc:meta])* $name:ident => $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Stream-name prefix for this kind of id.
            pub const PREFIX: &'static str = $prefix;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if valid_id(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: stringify!($name), value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The event stream this id names, e.g. `person-<id>`.
            pub fn stream(&self) -> String {
                format!("{}-{}", $prefix, self.0)
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

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

pseudonymous_id! {
    /// An individual user (個人利用者).
    PersonId => "person";
    /// A service provider (サービス事業者).
    ProviderId => "provider";
    /// One consent an individual gave a provider.
    ConsentId => "consent";
    /// Connection information (接続情報) issued to a provider's responsible person or an individual.
    CredentialId => "credential";
    /// A staff member of the platform, or a provider's responsible person.
    StaffId => "staff";
    /// One health record entry.
    RecordId => "record";
    /// Where an individual's identity data sits in the identity vault (P4.8(3)).
    VaultRef => "vault";
    /// A version of the security policy (P8).
    PolicyId => "policy";
}

/// Keyed hash of an identity attribute (e.g. e-mail) for duplicate detection without
/// storing the attribute itself (P4.8(3)): exactly 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlindIndex(String);

impl BlindIndex {
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
                kind: "BlindIndex",
                value,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlindIndex {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::new(value)
    }
}

impl From<BlindIndex> for String {
    fn from(b: BlindIndex) -> String {
        b.0
    }
}

/// Microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// A span of time in microseconds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Duration(pub i64);

impl Duration {
    pub const fn days(n: i64) -> Self {
        Self(n * 86_400_000_000)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_pseudonymous_slugs() {
        assert_eq!(PersonId::new("p-01").unwrap().stream(), "person-p-01");
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
            assert!(PersonId::new(bad).is_err(), "{bad:?} accepted");
        }
        let json = serde_json::to_string(&ProviderId::new("clinic-1").unwrap()).unwrap();
        assert_eq!(json, "\"clinic-1\"");
        assert!(serde_json::from_str::<ProviderId>("\"Clinic\"").is_err());
    }

    #[test]
    fn blind_index_is_a_hash_not_an_address() {
        assert!(BlindIndex::new("ab".repeat(32)).is_ok());
        assert!(BlindIndex::new("taro@example.jp").is_err());
    }
}
