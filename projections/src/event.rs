//! What a projection is fed: one decoded event and where it sits in the log.

use mebyo_domain::DomainEvent;
use mebyo_domain::access::AccessEvent;
use mebyo_domain::credential::CredentialEvent;
use mebyo_domain::person::PersonEvent;
use mebyo_domain::policy::PolicyEvent;
use mebyo_domain::provider::ProviderEvent;
use mebyo_domain::records::RecordEvent;
use mebyo_domain::staff::StaffEvent;
use mebyo_operations::incident::IncidentEvent;
use serde::de::DeserializeOwned;

use crate::operations::{BackupEvent, CHECKPOINT_EVENT_TYPE, CheckpointNote};

/// Any event the log may hold, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    Person(PersonEvent),
    Provider(ProviderEvent),
    Credential(CredentialEvent),
    Staff(StaffEvent),
    Record(RecordEvent),
    Access(AccessEvent),
    Policy(PolicyEvent),
    /// An incident's event (`incident-<id>` streams, plaintext; P4.14).
    Incident(IncidentEvent),
    /// A backup job's record (`ops-backups`, plaintext; P4.10).
    Backup(BackupEvent),
    /// A signed checkpoint of the ledger (`ledger-checkpoints`, plaintext).
    Checkpoint(CheckpointNote),
    /// Any other operational event (`load.tested`, a `backup.*` type newer than this
    /// build, an event sealed under an erased person's key...): it advances the
    /// position, nothing more.
    Other {
        event_type: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The payload does not parse as the domain event its type prefix names, e.g. a
    /// `person.*` type the domain no longer (or not yet) knows. Skipping it would make
    /// every read model silently wrong, so it is an error, not `Other`.
    #[error("event type {event_type}: payload does not decode: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
    /// The envelope's type and the payload's own `type` tag disagree.
    #[error("envelope says {envelope} but payload says {payload}")]
    TypeMismatch { envelope: String, payload: String },
    /// A backup record or checkpoint whose payload lacks what its writer always
    /// puts there: an error for the same reason as [`DecodeError::Payload`].
    #[error("event type {event_type}: payload does not decode: {reason}")]
    Operational { event_type: String, reason: String },
}

/// The platform's record of a witnessed erasure (stream `ops-erasures`, sealed
/// under the audit key, so it stays readable after the person's keys are gone).
pub const ERASURE_RECORD_TYPE: &str = "erasure.completed";

/// Reads the erasure record as the person's own `ErasureCompleted` (P4.9). The
/// person's event is sealed under their key, which the erasure destroys at once: a
/// follower that reaches it a moment later, or a replay from the start, cannot read
/// it, and without this the erased person's consents, record index and access rows
/// would stay in the read models (and in their snapshot). The record comes after
/// the person's event; applying the erasure twice changes nothing.
fn erasure_record(json: &[u8]) -> Result<AnyEvent, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Record {
        person: mebyo_domain::PersonId,
        witness: mebyo_domain::StaffId,
        at: mebyo_domain::Timestamp,
    }
    let r: Record = serde_json::from_slice(json)?;
    Ok(AnyEvent::Person(PersonEvent::ErasureCompleted {
        person: r.person,
        witness: r.witness,
        at: r.at,
    }))
}

/// Event-type prefixes owned by the domain; anything else is operational.
pub const DOMAIN_PREFIXES: [&str; 7] = [
    "person.",
    "provider.",
    "credential.",
    "staff.",
    "record.",
    "access.",
    "policy.",
];

impl AnyEvent {
    /// Decodes a payload (the serde_json of a domain event, already decrypted) by its
    /// envelope `event_type`.
    pub fn decode(event_type: &str, json: &[u8]) -> Result<AnyEvent, DecodeError> {
        let operational = |reason: String| DecodeError::Operational {
            event_type: event_type.to_owned(),
            reason,
        };
        if event_type.starts_with("incident.") {
            return Ok(AnyEvent::Incident(parse(event_type, json)?));
        }
        if event_type == ERASURE_RECORD_TYPE {
            return erasure_record(json).map_err(|source| DecodeError::Payload {
                event_type: event_type.to_owned(),
                source,
            });
        }
        if event_type.starts_with("backup.")
            && let Some(decoded) = BackupEvent::decode(event_type, json)
        {
            return decoded.map(AnyEvent::Backup).map_err(operational);
        }
        if event_type == CHECKPOINT_EVENT_TYPE {
            return CheckpointNote::parse(json)
                .map(AnyEvent::Checkpoint)
                .map_err(operational);
        }
        let Some(prefix) = DOMAIN_PREFIXES.iter().find(|p| event_type.starts_with(*p)) else {
            return Ok(AnyEvent::Other {
                event_type: event_type.to_owned(),
            });
        };
        fn parse<E: DomainEvent + DeserializeOwned>(
            event_type: &str,
            json: &[u8],
        ) -> Result<E, DecodeError> {
            let e: E = serde_json::from_slice(json).map_err(|source| DecodeError::Payload {
                event_type: event_type.to_owned(),
                source,
            })?;
            if e.event_type() != event_type {
                return Err(DecodeError::TypeMismatch {
                    envelope: event_type.to_owned(),
                    payload: e.event_type().to_owned(),
                });
            }
            Ok(e)
        }
        Ok(match *prefix {
            "person." => AnyEvent::Person(parse(event_type, json)?),
            "provider." => AnyEvent::Provider(parse(event_type, json)?),
            "credential." => AnyEvent::Credential(parse(event_type, json)?),
            "staff." => AnyEvent::Staff(parse(event_type, json)?),
            "record." => AnyEvent::Record(parse(event_type, json)?),
            "access." => AnyEvent::Access(parse(event_type, json)?),
            _ => AnyEvent::Policy(parse(event_type, json)?),
        })
    }

    /// The stable type name, as the envelope carries it.
    pub fn event_type(&self) -> &str {
        match self {
            AnyEvent::Person(e) => e.event_type(),
            AnyEvent::Provider(e) => e.event_type(),
            AnyEvent::Credential(e) => e.event_type(),
            AnyEvent::Staff(e) => e.event_type(),
            AnyEvent::Record(e) => e.event_type(),
            AnyEvent::Access(e) => e.event_type(),
            AnyEvent::Policy(e) => e.event_type(),
            AnyEvent::Incident(e) => e.event_type(),
            AnyEvent::Backup(e) => e.event_type(),
            AnyEvent::Checkpoint(_) => CHECKPOINT_EVENT_TYPE,
            AnyEvent::Other { event_type } => event_type,
        }
    }

    /// The payload bytes [`AnyEvent::decode`] reads back; `None` for backup records,
    /// checkpoints and other operational events, whose payloads belong to their own
    /// crates.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let json = match self {
            AnyEvent::Person(e) => serde_json::to_vec(e),
            AnyEvent::Provider(e) => serde_json::to_vec(e),
            AnyEvent::Credential(e) => serde_json::to_vec(e),
            AnyEvent::Staff(e) => serde_json::to_vec(e),
            AnyEvent::Record(e) => serde_json::to_vec(e),
            AnyEvent::Access(e) => serde_json::to_vec(e),
            AnyEvent::Policy(e) => serde_json::to_vec(e),
            AnyEvent::Incident(e) => serde_json::to_vec(e),
            AnyEvent::Backup(_) | AnyEvent::Checkpoint(_) | AnyEvent::Other { .. } => {
                return None;
            }
        };
        Some(json.expect("domain events serialise"))
    }
}

macro_rules! from_events {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for AnyEvent {
            fn from(e: $t) -> Self {
                AnyEvent::$v(e)
            }
        }
    )*};
}

from_events!(PersonEvent => Person, ProviderEvent => Provider, CredentialEvent => Credential,
    StaffEvent => Staff, RecordEvent => Record, AccessEvent => Access, PolicyEvent => Policy,
    IncidentEvent => Incident, BackupEvent => Backup);

/// One event as a projection sees it: the decoded event plus the envelope fields the
/// read models keep (position to fetch it again, hashes to check the chain).
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// Global log position, dense from 0.
    pub position: u64,
    /// The store's clock when the event was appended.
    pub recorded_at_us: i64,
    pub stream_id: &'a str,
    /// Chain hash of the previous event (the genesis value at position 0).
    pub prev_hash: [u8; 32],
    /// Chain hash of this event.
    pub hash: [u8; 32],
    pub event: &'a AnyEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_domain::{PolicyId, PolicyVersion, StaffId, Timestamp};

    fn policy_event() -> AnyEvent {
        AnyEvent::Policy(PolicyEvent::VersionPublished {
            version: PolicyVersion {
                id: PolicyId::new("2020-11-16").unwrap(),
                in_force_from: Timestamp(5),
                applies_from: Timestamp(1),
            },
            by: StaffId::new("pref").unwrap(),
            at: Timestamp(0),
        })
    }

    #[test]
    fn decode_round_trips_domain_events() {
        let e = policy_event();
        let json = e.encode().unwrap();
        assert_eq!(
            AnyEvent::decode("policy.version_published", &json).unwrap(),
            e
        );
    }

    #[test]
    fn operational_events_are_skippable() {
        for t in ["backup.pruned", "maintenance.tick", "load.tested"] {
            let e = AnyEvent::decode(t, b"{\"anything\":1}").unwrap();
            assert_eq!(
                e,
                AnyEvent::Other {
                    event_type: t.into()
                }
            );
            assert_eq!(e.event_type(), t);
            assert!(e.encode().is_none());
        }
    }

    #[test]
    fn unknown_domain_types_and_mismatches_are_errors() {
        let json = policy_event().encode().unwrap();
        assert!(matches!(
            AnyEvent::decode("policy.retracted", &json),
            Err(DecodeError::TypeMismatch { .. })
        ));
        assert!(matches!(
            AnyEvent::decode("person.teleported", b"{\"type\":\"person.teleported\"}"),
            Err(DecodeError::Payload { .. })
        ));
        assert!(matches!(
            AnyEvent::decode("record.added", b"not json"),
            Err(DecodeError::Payload { .. })
        ));
    }
}
