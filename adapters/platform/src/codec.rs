//! Between domain events and store envelopes: JSON payloads, sealed when the
//! event concerns a person (P4.8(1)), plaintext only for operational events.

use mebyo_domain::{Actor, DomainEvent};
use mebyo_store::{Envelope, Id128, NewEvent, PayloadKind, SealPlace};

use crate::keyring::{KeyError, KeyRing};

/// Whether an event type concerns a person, from its name alone: what `audit
/// verify` uses to check, without any key, that no such event is stored in
/// plaintext. Must agree with `DomainEvent::person_related` (a test checks it).
pub fn event_type_person_related(event_type: &str) -> bool {
    ["person.", "record.", "access.", "credential.", "erasure."]
        .iter()
        .any(|p| event_type.starts_with(p))
}

/// The envelope's actor: a role and a pseudonymous id, never a name.
pub fn store_actor(actor: &Actor) -> mebyo_store::Actor {
    match actor {
        Actor::Applicant => mebyo_store::Actor::new("applicant", "anonymous"),
        Actor::Individual { person, .. } => mebyo_store::Actor::new("individual", person.as_str()),
        Actor::Provider { provider, .. } => mebyo_store::Actor::new("provider", provider.as_str()),
        Actor::Staff { staff } => mebyo_store::Actor::new("staff", staff.as_str()),
        Actor::System => mebyo_store::Actor::system(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("event payload does not decode as {event_type}: {reason}")]
    Payload { event_type: String, reason: String },
}

/// Builds the store event for a domain event on `stream_id`.
pub fn to_new_event<E: DomainEvent>(
    event: &E,
    actor: &Actor,
    stream_id: &str,
    keys: &KeyRing,
    event_id: Id128,
    correlation_id: Id128,
) -> Result<NewEvent, CodecError> {
    let json = serde_json::to_vec(event).expect("domain events always serialise");
    let mut ev = if event.person_related() || event_type_person_related(event.event_type()) {
        let key_ref = keys.key_ref_for_stream(stream_id)?;
        NewEvent::to_seal(
            event.event_type(),
            store_actor(actor),
            event_id,
            key_ref,
            json,
        )
    } else {
        NewEvent::plain(event.event_type(), store_actor(actor), event_id, json)
    };
    ev.schema_version = event.schema_version();
    ev.correlation_id = correlation_id;
    Ok(ev)
}

/// What a stored event turned out to be.
pub enum Decoded<E> {
    Event(E),
    /// Sealed under a destroyed key: the person was erased (P4.9).
    Erased,
}

/// The payload's plaintext: as stored, or decrypted; `None` when sealed under a
/// destroyed key (an erased person, P4.9).
pub fn plaintext(
    env: &Envelope,
    keys: &KeyRing,
) -> Result<Option<mebyo_crypto::Zeroizing<Vec<u8>>>, CodecError> {
    match env.payload_kind {
        PayloadKind::Plain => Ok(Some(mebyo_crypto::Zeroizing::new(env.payload.clone()))),
        PayloadKind::AesSiv => {
            let place = SealPlace {
                stream_id: &env.stream_id,
                stream_revision: env.stream_revision,
                event_type: &env.event_type,
                position: env.position,
            };
            match keys.open(&env.key_ref, &place, &env.payload) {
                Ok(p) => Ok(Some(p)),
                Err(KeyError::Erased(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Decodes (and decrypts, when sealed) a stored event.
pub fn decode<E: DomainEvent>(env: &Envelope, keys: &KeyRing) -> Result<Decoded<E>, CodecError> {
    let bad = |reason: String| CodecError::Payload {
        event_type: env.event_type.clone(),
        reason,
    };
    match env.payload_kind {
        PayloadKind::Plain => serde_json::from_slice(&env.payload)
            .map(Decoded::Event)
            .map_err(|e| bad(e.to_string())),
        PayloadKind::AesSiv => {
            let place = SealPlace {
                stream_id: &env.stream_id,
                stream_revision: env.stream_revision,
                event_type: &env.event_type,
                position: env.position,
            };
            match keys.open(&env.key_ref, &place, &env.payload) {
                Ok(plain) => serde_json::from_slice(&plain)
                    .map(Decoded::Event)
                    .map_err(|e| bad(e.to_string())),
                Err(KeyError::Erased(_)) => Ok(Decoded::Erased),
                Err(e) => Err(e.into()),
            }
        }
    }
}
