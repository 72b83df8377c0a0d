//! What the bus writes to the ledger, and what it keeps in memory from it.
//!
//! The ledger is the source of truth; JetStream only carries. Everything here is
//! rebuilt at start by one scan of the log ([`BusState::apply`]), then kept current
//! from `subscribe_all`: idempotency outcomes, signing keys, which credential
//! belongs to which provider, and every consent that concerns a provider.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::credential::{CredentialEvent, Holder};
use mebyo_domain::person::PersonEvent;
use mebyo_domain::provider::ProviderEvent;
use mebyo_domain::{
    Category, ConsentId, CredentialId, DomainEvent, PersonId, ProviderId, Timestamp,
};
use mebyo_platform::Platform;
use mebyo_platform::codec::{Decoded, decode};
use mebyo_store::Envelope;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::keys::{KeyEvent, KeyState, ProviderKey, parse_key};
use crate::wire::rfc3339;

/// What makes a signed request undeniable later (P4.12, P4.13): the signed
/// string's parts and the signature. The body itself is not kept here — it holds
/// health data, which lives sealed in the person's streams and must stay erasable
/// (P4.9) — but its SHA-256 is, so a copy of the body proves itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub subject: String,
    pub credential: CredentialId,
    pub timestamp_ms: String,
    pub nonce: String,
    /// blake3 of provider and idempotency key: keys may embed a provider's own
    /// identifiers, so only their hash is stored.
    pub key_hash: Option<String>,
    pub body_sha256: String,
    /// ed25519 signature over the signing string, hex.
    pub signature: String,
}

/// Plaintext operational events (no personal data: pseudonymous ids, digests,
/// codes) in `bus-*` streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BusEvent {
    /// A write request's outcome, kept so that a retry returns the first answer
    /// however long after.
    #[serde(rename = "bus.request_completed")]
    RequestCompleted {
        provider: ProviderId,
        evidence: Evidence,
        /// The reply body exactly as sent.
        response: String,
        at: Timestamp,
    },
    /// A read request (query, consent list) answered; the data access itself is
    /// the sealed `access.recorded` in the person's access stream.
    #[serde(rename = "bus.request_served")]
    RequestServed {
        provider: ProviderId,
        evidence: Evidence,
        /// `ok`, or the refusal code.
        outcome: String,
        at: Timestamp,
    },
    /// A message refused before it could be attributed (malformed, unsigned,
    /// stale, replayed, wrongly signed, revoked credential...): P4.5(1)(2), every
    /// request leaves a record. Claimed ids are recorded only when well formed.
    #[serde(rename = "bus.request_refused")]
    RequestRefused {
        subject: String,
        claimed_provider: Option<String>,
        claimed_credential: Option<String>,
        body_sha256: String,
        code: String,
        clause: String,
        /// Present when the request was signed and the signature verified
        /// (refused then for its credential, its key reuse or its body).
        evidence: Option<Evidence>,
        at: Timestamp,
    },
    /// The feed told a provider that a consent expired (expiry is a moment, not
    /// an event, so the notice is remembered here to be sent once).
    #[serde(rename = "bus.feed_expiry_published")]
    ExpiryPublished {
        provider: ProviderId,
        consent: ConsentId,
        at: Timestamp,
    },
}

impl DomainEvent for BusEvent {
    fn event_type(&self) -> &'static str {
        match self {
            BusEvent::RequestCompleted { .. } => "bus.request_completed",
            BusEvent::RequestServed { .. } => "bus.request_served",
            BusEvent::RequestRefused { .. } => "bus.request_refused",
            BusEvent::ExpiryPublished { .. } => "bus.feed_expiry_published",
        }
    }
    fn person_related(&self) -> bool {
        false
    }
}

pub fn requests_stream(provider: &ProviderId) -> String {
    format!("bus-requests-{provider}")
}
pub const REFUSED_STREAM: &str = "bus-refused";
pub const FEED_STREAM: &str = "bus-feed";

pub fn key_hash(provider: &ProviderId, key: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"mebyo-bus idempotency key\n");
    h.update(provider.as_str().as_bytes());
    h.update(b"\n");
    h.update(key.as_bytes());
    h.finalize().to_hex().to_string()
}

/// The record id of the `sub`-th record of item `item` of the request with this
/// idempotency key: derived, not drawn, so a retry after a crash between the
/// record's append and the outcome's append finds the record already there
/// (`record.exists`) instead of writing it twice.
pub fn record_id(key_hash: &str, item: usize, sub: usize) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"mebyo-bus record id\n");
    h.update(key_hash.as_bytes());
    h.update(format!("\n{item}\n{sub}").as_bytes());
    format!("rec-{}", &h.finalize().to_hex()[..16])
}

#[derive(Debug, Clone)]
pub struct Completed {
    pub body_sha256: String,
    pub response: Arc<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub consent: ConsentId,
    pub person: PersonId,
    pub categories: BTreeSet<Category>,
    pub purpose: Purpose,
    pub period: Period,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    /// Revoked by the person, or ended by their withdrawal.
    pub ended_at: Option<Timestamp>,
}

impl ConsentRow {
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.granted_at <= now && self.ended_at.is_none_or(|e| e > now) && now < self.expires_at
    }

    pub fn to_json(&self, now: Timestamp) -> serde_json::Value {
        let status = if self.ended_at.is_some_and(|e| e <= now) {
            "revoked"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "active"
        };
        json!({
            "consent": self.consent,
            "person": self.person,
            "categories": self.categories,
            "purpose": self.purpose,
            "period": {"from": rfc3339(self.period.from), "to": rfc3339(self.period.to)},
            "granted_at": rfc3339(self.granted_at),
            "expires_at": rfc3339(self.expires_at),
            "status": status,
        })
    }
}

/// A message for one provider's feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMsg {
    pub provider: ProviderId,
    /// Subject suffix after `<prefix>.feed.<provider>.`, e.g. `consent.granted`.
    pub kind: &'static str,
    /// Stable id (also `Nats-Msg-Id`): the same fact always has the same id, so
    /// JetStream drops a republication and a provider can deduplicate.
    pub id: String,
    pub position: Option<u64>,
    pub data: serde_json::Value,
    pub at: Timestamp,
}

impl FeedMsg {
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": self.id,
            "type": self.kind,
            "provider": self.provider,
            "at": rfc3339(self.at),
            "data": self.data,
        }))
        .expect("json")
    }
}

#[derive(Default)]
pub struct BusState {
    pub idem: Mutex<HashMap<String, Completed>>,
    pub keys: RwLock<HashMap<CredentialId, (ProviderId, VerifyingKey)>>,
    pub credential_holder: RwLock<HashMap<CredentialId, ProviderId>>,
    /// Providers approved at some point: they get a durable feed consumer.
    pub providers: RwLock<BTreeSet<ProviderId>>,
    pub consents: RwLock<HashMap<ProviderId, BTreeMap<ConsentId, ConsentRow>>>,
    consents_of_person: RwLock<HashMap<PersonId, Vec<(ProviderId, ConsentId)>>>,
    pub expiry_noticed: RwLock<HashSet<ConsentId>>,
}

fn ledger_msg(
    provider: &ProviderId,
    kind: &'static str,
    position: u64,
    at: Timestamp,
    data: serde_json::Value,
) -> FeedMsg {
    FeedMsg {
        provider: provider.clone(),
        kind,
        id: format!("ledger-{position}"),
        position: Some(position),
        data,
        at,
    }
}

impl BusState {
    /// Folds one ledger event into the state; returns the feed messages it means.
    /// Events this state does not concern itself with are skipped without being
    /// decrypted.
    pub fn apply(
        &self,
        env: &Envelope,
        platform: &Platform,
    ) -> Result<Vec<FeedMsg>, mebyo_platform::PlatformError> {
        let t = env.event_type.as_str();
        let keys = platform.keys();
        let mut out = Vec::new();
        match t {
            "person.consent_granted" | "person.consent_revoked" | "person.withdrawn" => {
                let Decoded::Event(e) = decode::<PersonEvent>(env, keys)? else {
                    return Ok(out);
                };
                self.person_event(&e, env.position, &mut out);
            }
            "credential.issued" | "credential.revoked" | "credential.loss_reported" => {
                let Decoded::Event(e) = decode::<CredentialEvent>(env, keys)? else {
                    return Ok(out);
                };
                match e {
                    CredentialEvent::Issued {
                        credential,
                        holder: Holder::Provider { provider, .. },
                        ..
                    } => {
                        self.credential_holder.write().insert(credential, provider);
                    }
                    CredentialEvent::Revoked {
                        credential,
                        reason,
                        at,
                        ..
                    } => {
                        if let Some(p) = self.credential_holder.read().get(&credential) {
                            out.push(ledger_msg(
                                p,
                                "credential.revoked",
                                env.position,
                                at,
                                json!({"credential": credential, "reason": reason, "clause": reason.clause()}),
                            ));
                        }
                    }
                    CredentialEvent::LossReported { credential, at } => {
                        if let Some(p) = self.credential_holder.read().get(&credential) {
                            out.push(ledger_msg(
                                p,
                                "credential.lost",
                                env.position,
                                at,
                                json!({"credential": credential, "clause": "P4.12(2)"}),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            "provider.approved" => {
                if let Decoded::Event(ProviderEvent::Approved { provider, .. }) =
                    decode::<ProviderEvent>(env, keys)?
                {
                    self.providers.write().insert(provider);
                }
            }
            "bus.key_registered" => {
                if let Decoded::Event(e) = decode::<KeyEvent>(env, keys)? {
                    let KeyEvent::Registered { credential, .. } = &e;
                    let credential = credential.clone();
                    if let Some(k) = parse_key(&<ProviderKey as mebyo_domain::Decider>::evolve(
                        KeyState::default(),
                        &e,
                    )) {
                        self.keys.write().insert(credential, k);
                    }
                }
            }
            "bus.request_completed" | "bus.feed_expiry_published" => {
                match decode::<BusEvent>(env, keys)? {
                    Decoded::Event(BusEvent::RequestCompleted {
                        evidence, response, ..
                    }) => {
                        if let Some(kh) = evidence.key_hash {
                            self.idem.lock().entry(kh).or_insert(Completed {
                                body_sha256: evidence.body_sha256,
                                response: Arc::new(response.into_bytes()),
                            });
                        }
                    }
                    Decoded::Event(BusEvent::ExpiryPublished { consent, .. }) => {
                        self.expiry_noticed.write().insert(consent);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn person_event(&self, e: &PersonEvent, position: u64, out: &mut Vec<FeedMsg>) {
        match e {
            PersonEvent::ConsentGranted {
                person,
                consent,
                provider,
                categories,
                purpose,
                period,
                expires_at,
                at,
                ..
            } => {
                let row = ConsentRow {
                    consent: consent.clone(),
                    person: person.clone(),
                    categories: categories.clone(),
                    purpose: *purpose,
                    period: *period,
                    granted_at: *at,
                    expires_at: *expires_at,
                    ended_at: None,
                };
                out.push(ledger_msg(
                    provider,
                    "consent.granted",
                    position,
                    *at,
                    row.to_json(*at),
                ));
                self.consents
                    .write()
                    .entry(provider.clone())
                    .or_default()
                    .insert(consent.clone(), row);
                self.consents_of_person
                    .write()
                    .entry(person.clone())
                    .or_default()
                    .push((provider.clone(), consent.clone()));
            }
            PersonEvent::ConsentRevoked {
                person,
                consent,
                at,
                ..
            } => {
                let of = self.consents_of_person.read();
                let Some((provider, _)) = of
                    .get(person)
                    .and_then(|v| v.iter().find(|(_, c)| c == consent))
                else {
                    return;
                };
                if let Some(row) = self
                    .consents
                    .write()
                    .get_mut(provider)
                    .and_then(|m| m.get_mut(consent))
                {
                    row.ended_at = Some(*at);
                }
                out.push(ledger_msg(
                    provider,
                    "consent.revoked",
                    position,
                    *at,
                    json!({"consent": consent, "person": person, "reason": "revoked"}),
                ));
            }
            PersonEvent::Withdrawn { person, at } => {
                // Withdrawal ends every consent the person gave (P4.9): tell each
                // provider still relying on one.
                let of = self.consents_of_person.read();
                let mut consents = self.consents.write();
                for (provider, consent) in of.get(person).into_iter().flatten() {
                    let Some(row) = consents.get_mut(provider).and_then(|m| m.get_mut(consent))
                    else {
                        continue;
                    };
                    if row.ended_at.is_some() || row.expires_at <= *at {
                        continue;
                    }
                    row.ended_at = Some(*at);
                    out.push(FeedMsg {
                        id: format!("ledger-{position}-{consent}"),
                        ..ledger_msg(
                            provider,
                            "consent.revoked",
                            position,
                            *at,
                            json!({"consent": consent, "person": person, "reason": "withdrawn"}),
                        )
                    });
                }
            }
            _ => {}
        }
    }

    /// Consents that expired by `now` and whose expiry was not yet told.
    pub fn due_expiries(&self, now: Timestamp, max: usize) -> Vec<FeedMsg> {
        let noticed = self.expiry_noticed.read();
        let mut out = Vec::new();
        for (provider, rows) in self.consents.read().iter() {
            for row in rows.values() {
                if out.len() >= max {
                    return out;
                }
                if row.expires_at <= now
                    && row.ended_at.is_none_or(|e| e > row.expires_at)
                    && !noticed.contains(&row.consent)
                {
                    out.push(FeedMsg {
                        provider: provider.clone(),
                        kind: "consent.expired",
                        id: format!("expiry-{}", row.consent),
                        position: None,
                        data: json!({"consent": row.consent, "person": row.person, "expired_at": rfc3339(row.expires_at)}),
                        at: row.expires_at,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_stable_and_distinct() {
        let p = ProviderId::new("clinic").unwrap();
        let k = key_hash(&p, "batch-1");
        assert_eq!(record_id(&k, 0, 0), record_id(&k, 0, 0));
        assert_ne!(record_id(&k, 0, 0), record_id(&k, 0, 1));
        assert_ne!(record_id(&k, 0, 0), record_id(&k, 1, 0));
        let other = ProviderId::new("pharmacy").unwrap();
        assert_ne!(k, key_hash(&other, "batch-1"), "keys are per provider");
        assert!(mebyo_domain::RecordId::new(record_id(&k, 3, 7)).is_ok());
    }
}
