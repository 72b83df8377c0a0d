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

use crate::auth::NonceCache;
use crate::keys::{KeyEvent, KeyState, ProviderKey, parse_key};
use crate::stats::BusStats;
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

/// Bytes of a hash kept by the idempotency index: 128 bits tell keys and bodies
/// apart (a collision needs ~2^64 requests) at half the memory of 256.
const IDEM_HASH_BYTES: usize = 16;
type IdemHash = [u8; IDEM_HASH_BYTES];

/// Where a completed request's first answer is.
#[derive(Clone)]
pub enum Answer {
    /// In memory: just completed here, not yet seen in the log by the follower.
    Here(Arc<Vec<u8>>),
    /// In the `bus.request_completed` event at this log position.
    InLedger(u64),
}

/// What the index knows of one idempotency key.
pub struct Found {
    /// Whether the request now asking carries the body of the first one.
    pub same_body: bool,
    pub answer: Answer,
}

/// Idempotency outcomes, kept for ever (a retry however late gets the first
/// answer and writes nothing, P2(1), issue 5 §5) but not in memory: once the follower has seen a request's
/// `bus.request_completed` event, the index keeps only its position (about 50
/// bytes a request instead of the whole answer, ~600), and a retry reads the
/// answer back from the ledger.
#[derive(Default)]
pub struct IdemIndex {
    map: Mutex<HashMap<IdemHash, (IdemHash, Answer)>>,
}

/// The index's key for a digest as events carry it (hex text).
fn idem_hash(digest_hex: &str) -> IdemHash {
    let mut out = [0u8; IDEM_HASH_BYTES];
    out.copy_from_slice(&blake3::hash(digest_hex.as_bytes()).as_bytes()[..IDEM_HASH_BYTES]);
    out
}

impl IdemIndex {
    /// The first answer for `key_hash`, if any, and whether `body_sha256` is the
    /// body it answered.
    pub fn get(&self, key_hash: &str, body_sha256: &str) -> Option<Found> {
        let map = self.map.lock();
        let (body, answer) = map.get(&idem_hash(key_hash))?;
        Some(Found {
            same_body: *body == idem_hash(body_sha256),
            answer: answer.clone(),
        })
    }

    /// A request just completed on this node: its answer, until the follower
    /// sees its event.
    pub fn completed_here(&self, key_hash: &str, body_sha256: &str, response: Arc<Vec<u8>>) {
        self.map
            .lock()
            .entry(idem_hash(key_hash))
            .or_insert((idem_hash(body_sha256), Answer::Here(response)));
    }

    /// The follower saw a request's outcome at `position`: from now on the
    /// answer is read from there.
    pub fn completed_at(&self, key_hash: &str, body_sha256: &str, position: u64) {
        let mut map = self.map.lock();
        let e = map
            .entry(idem_hash(key_hash))
            .or_insert((idem_hash(body_sha256), Answer::InLedger(position)));
        // Keep the first outcome only (a later one for the same key cannot be
        // written, but the first position is the one that answered).
        if let Answer::Here(_) = e.1 {
            e.1 = Answer::InLedger(position);
        }
    }

    /// Answers held in memory (the rest are in the ledger).
    #[cfg(test)]
    fn held_in_memory(&self) -> usize {
        self.map
            .lock()
            .values()
            .filter(|(_, a)| matches!(a, Answer::Here(_)))
            .count()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

/// Reads the first answer of a request from its `bus.request_completed` event.
pub async fn answer_at(
    platform: &Platform,
    position: u64,
) -> Result<Arc<Vec<u8>>, mebyo_platform::PlatformError> {
    use mebyo_store::EventStore;
    let page = platform.store().read_all(position, 1).await?;
    let corrupt = |what: &str| {
        mebyo_platform::PlatformError::Store(mebyo_store::StoreError::Other(format!(
            "the idempotency index points at position {position}, {what}"
        )))
    };
    let env = page
        .first()
        .filter(|e| e.position == position)
        .ok_or_else(|| corrupt("past the end of the log"))?;
    match decode::<BusEvent>(env, platform.keys())? {
        Decoded::Event(BusEvent::RequestCompleted { response, .. }) => {
            Ok(Arc::new(response.into_bytes()))
        }
        _ => Err(corrupt("which holds another event")),
    }
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
    pub idem: IdemIndex,
    /// Nonces of the freshness window: those this node checked, and those the
    /// ledger holds in the evidence of recent requests (`auth`, issue 22 §6).
    pub nonces: NonceCache,
    /// What the bus counts instead of recording (`stats`).
    pub stats: BusStats,
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
    /// Empty, with a nonce cache of this freshness window and bound.
    pub fn new(window_us: i64, max_nonces: usize) -> Self {
        Self {
            nonces: NonceCache::new(window_us, max_nonces),
            ..Default::default()
        }
    }

    /// Remembers the nonce of a request the ledger holds, when it is recent
    /// enough to be replayed (its event's time within two windows of now, the
    /// cache's own horizon): after a restart, and across nodes, a captured
    /// request stays refused (issue 22 §6).
    fn remember_nonce(&self, evidence: &Evidence, now_us: i64) {
        let Ok(ts_ms) = evidence.timestamp_ms.parse::<i64>() else {
            return;
        };
        self.nonces.remember(
            &evidence.credential,
            &evidence.nonce,
            ts_ms.saturating_mul(1000),
            now_us,
        );
    }

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
            "bus.request_served" | "bus.request_refused" => {
                // Only the nonce matters here, and only for recent events: older
                // ones are not decoded at all.
                let now = platform.now().0;
                if env.recorded_at_us < now.saturating_sub(2 * self.nonces.window_us()) {
                    return Ok(out);
                }
                match decode::<BusEvent>(env, keys)? {
                    Decoded::Event(BusEvent::RequestServed { evidence, .. })
                    | Decoded::Event(BusEvent::RequestRefused {
                        evidence: Some(evidence),
                        ..
                    }) => self.remember_nonce(&evidence, now),
                    _ => {}
                }
            }
            "bus.request_completed" | "bus.feed_expiry_published" => {
                match decode::<BusEvent>(env, keys)? {
                    Decoded::Event(BusEvent::RequestCompleted { evidence, .. }) => {
                        let now = platform.now().0;
                        if env.recorded_at_us >= now.saturating_sub(2 * self.nonces.window_us()) {
                            self.remember_nonce(&evidence, now);
                        }
                        if let Some(kh) = evidence.key_hash {
                            self.idem
                                .completed_at(&kh, &evidence.body_sha256, env.position);
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
    pub fn due_expiries(&self, now: Timestamp, max: usize) -> Vec<(ConsentId, FeedMsg)> {
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
                    out.push((row.consent.clone(), FeedMsg {
                        provider: provider.clone(),
                        kind: "consent.expired",
                        id: format!("expiry-{}", row.consent),
                        position: None,
                        data: json!({"consent": row.consent, "person": row.person, "expired_at": rfc3339(row.expires_at)}),
                        at: row.expires_at,
                    }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P2(1), issue 5 §5: the first answer is kept for ever, in memory only until the
    /// follower has seen its event; then only where it is in the ledger.
    #[test]
    fn p2_1_idempotency_answers_move_from_memory_to_the_ledger() {
        let p = ProviderId::new("clinic").unwrap();
        let (k1, k2) = (key_hash(&p, "k-1"), key_hash(&p, "k-2"));
        let body = crate::wire::sha256_hex(b"{\"items\":[]}");
        let other_body = crate::wire::sha256_hex(b"{}");
        let idem = IdemIndex::default();
        assert!(idem.get(&k1, &body).is_none());

        idem.completed_here(&k1, &body, Arc::new(b"first".to_vec()));
        let found = idem.get(&k1, &body).unwrap();
        assert!(found.same_body);
        assert!(matches!(found.answer, Answer::Here(r) if *r == b"first"));
        assert!(
            !idem.get(&k1, &other_body).unwrap().same_body,
            "another body"
        );
        assert_eq!(idem.held_in_memory(), 1);

        // The follower sees the outcome event: the answer leaves memory.
        idem.completed_at(&k1, &body, 41);
        assert!(matches!(
            idem.get(&k1, &body).unwrap().answer,
            Answer::InLedger(41)
        ));
        assert_eq!(idem.held_in_memory(), 0);
        // A second event for the key (cannot be written) does not move it.
        idem.completed_at(&k1, &body, 99);
        assert!(matches!(
            idem.get(&k1, &body).unwrap().answer,
            Answer::InLedger(41)
        ));

        // Rebuilt from the log after a restart: positions only.
        idem.completed_at(&k2, &body, 7);
        assert!(matches!(
            idem.get(&k2, &body).unwrap().answer,
            Answer::InLedger(7)
        ));
        assert_eq!((idem.len(), idem.held_in_memory()), (2, 0));
        assert!(idem.get(&key_hash(&p, "k-3"), &body).is_none());
    }

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
