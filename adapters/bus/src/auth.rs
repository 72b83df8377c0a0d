//! Who is asking (P4.11(4), P4.12, P4.13): every request carries the provider's
//! credential id and an ed25519 signature by the key registered for that
//! credential over the subject, the reply subject, the body's SHA-256, a
//! timestamp and a nonce.
//!
//! Checked in this order, each failure its own code: headers present and well
//! formed; the subject's provider is the signer's; timestamp within the
//! freshness window of the injected clock; the credential has a registered key of
//! that provider; the signature verifies; the nonce was not seen within the
//! window (checked after the signature so that forged messages cannot fill the
//! cache); then the credential's state, read from the store now, through the
//! domain's `authenticate` — so a revocation or expiry refuses the very next
//! request (P4.13).
//!
//! Replay across a restart (issue 22 §6): the nonces of the window are not only
//! in memory. Every request that passes this check leaves an event with its
//! evidence (nonce and timestamp included) before it is answered, so `serve`
//! refills the cache from the ledger's last two windows at start, and every
//! node learns the nonces the others saw by following the ledger. That costs no
//! extra write, lets a provider's clock lag behind a restart, and narrows a
//! replay to another node to the moment before that node has read the event.
//! (A retry answered from the idempotency index writes nothing, so its nonce is
//! kept in memory only; sent again after a restart it gets the same stored answer,
//! at the inbox it signed, and still writes nothing.)

use std::collections::{HashMap, VecDeque};

use async_nats::HeaderMap;
use ed25519_dalek::{Signature, VerifyingKey};
use mebyo_domain::{Actor, CredentialId, ProviderId, Timestamp};
use parking_lot::Mutex;

use crate::state::Evidence;
use crate::wire::{self, ErrorBody};

/// Who the request is from, with the proof.
#[derive(Debug, Clone)]
pub struct Verified {
    pub provider: ProviderId,
    pub credential: CredentialId,
    pub idempotency_key: Option<String>,
    pub evidence: Evidence,
}

impl Verified {
    pub fn actor(&self) -> Actor {
        Actor::Provider {
            provider: self.provider.clone(),
            credential: self.credential.clone(),
        }
    }
}

/// The signed headers, read but not yet trusted.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub provider: Option<String>,
    pub credential: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
    pub idempotency_key: Option<String>,
}

fn header(h: Option<&HeaderMap>, name: &str) -> Option<String> {
    h.and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .filter(|v| v.len() <= 256)
}

impl Claimed {
    pub fn read(h: Option<&HeaderMap>) -> Self {
        Self {
            provider: header(h, wire::H_PROVIDER),
            credential: header(h, wire::H_CREDENTIAL),
            timestamp: header(h, wire::H_TIMESTAMP),
            nonce: header(h, wire::H_NONCE),
            signature: header(h, wire::H_SIGNATURE),
            idempotency_key: header(h, wire::H_IDEMPOTENCY_KEY),
        }
    }
}

/// Nonces seen within the freshness window, per credential. A nonce older than
/// the window cannot be replayed anyway (its timestamp is stale), so entries are
/// evicted after the window and the cache is bounded by the request rate times
/// the window, and by `max_entries` whatever the rate.
pub struct NonceCache {
    inner: Mutex<Nonces>,
    window_us: i64,
    max_entries: usize,
}

#[derive(Default)]
struct Nonces {
    seen: HashMap<(CredentialId, String), i64>,
    order: VecDeque<(i64, CredentialId, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    Replayed,
    Full,
}

impl Default for NonceCache {
    /// The default freshness window (60 s) and bound (1M).
    fn default() -> Self {
        Self::new(60_000_000, 1_000_000)
    }
}

impl NonceCache {
    pub fn new(window_us: i64, max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Nonces::default()),
            window_us,
            max_entries,
        }
    }

    /// Remembers `nonce` (of a request stamped `ts_us`) unless already seen.
    pub fn check(
        &self,
        credential: &CredentialId,
        nonce: &str,
        ts_us: i64,
        now_us: i64,
    ) -> NonceCheck {
        let mut n = self.inner.lock();
        // Evict what has left the window: a request that old is refused as stale.
        while let Some((t, _, _)) = n.order.front() {
            if *t + 2 * self.window_us < now_us {
                if let Some((_, c, k)) = n.order.pop_front() {
                    n.seen.remove(&(c, k));
                }
            } else {
                break;
            }
        }
        let key = (credential.clone(), nonce.to_string());
        if n.seen.contains_key(&key) {
            return NonceCheck::Replayed;
        }
        if n.seen.len() >= self.max_entries {
            return NonceCheck::Full;
        }
        n.seen.insert(key, ts_us);
        n.order
            .push_back((ts_us.max(now_us), credential.clone(), nonce.to_string()));
        NonceCheck::Fresh
    }

    /// Remembers a nonce the ledger holds (seen by this node before a restart,
    /// or by another node).
    pub fn remember(&self, credential: &CredentialId, nonce: &str, ts_us: i64, now_us: i64) {
        let _ = self.check(credential, nonce, ts_us, now_us);
    }

    pub fn window_us(&self) -> i64 {
        self.window_us
    }

    pub fn len(&self) -> usize {
        self.inner.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks the signature part of a request (everything but the credential's state,
/// which needs the store). `reply` is the message's reply subject (empty when it
/// has none). `key_of` finds the registered key of a credential.
// Every argument is one input of the check; bundling them would only hide that.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    subject: &str,
    reply: &str,
    subject_provider: &str,
    claimed: &Claimed,
    body: &[u8],
    now: Timestamp,
    window_us: i64,
    key_of: impl FnOnce(&CredentialId) -> Option<(ProviderId, VerifyingKey)>,
    nonces: &NonceCache,
) -> Result<Verified, ErrorBody> {
    let (Some(provider), Some(credential), Some(ts), Some(nonce), Some(sig)) = (
        &claimed.provider,
        &claimed.credential,
        &claimed.timestamp,
        &claimed.nonce,
        &claimed.signature,
    ) else {
        return Err(ErrorBody::new(
            "request.unsigned",
            mebyo_domain::clause!("P4.12(1)"),
            format!(
                "every request carries {}, {}, {}, {} and {} headers",
                wire::H_PROVIDER,
                wire::H_CREDENTIAL,
                wire::H_TIMESTAMP,
                wire::H_NONCE,
                wire::H_SIGNATURE
            ),
        ));
    };
    let malformed = |what: &str| {
        ErrorBody::new(
            "request.malformed_header",
            mebyo_domain::clause!("P4.12(1)"),
            what.to_string(),
        )
    };
    let provider_id = ProviderId::new(provider.as_str())
        .map_err(|_| malformed("Mebyo-Provider is not a provider id"))?;
    let credential_id = CredentialId::new(credential.as_str())
        .map_err(|_| malformed("Mebyo-Credential is not a credential id"))?;
    if provider != subject_provider {
        return Err(ErrorBody::new(
            "request.wrong_provider",
            mebyo_domain::clause!("P4.11(4)"),
            "the subject names another provider than the signer",
        ));
    }
    if !wire::valid_nonce(nonce) {
        return Err(malformed(
            "Mebyo-Nonce must be 32 to 64 lowercase hex digits",
        ));
    }
    if let Some(k) = &claimed.idempotency_key
        && !wire::valid_idempotency_key(k)
    {
        return Err(malformed(
            "Mebyo-Idempotency-Key must be 1 to 128 characters of [A-Za-z0-9._:-]",
        ));
    }
    let ts_ms: i64 = ts
        .parse()
        .ok()
        .filter(|_| ts.len() <= 16 && ts.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| malformed("Mebyo-Timestamp must be Unix milliseconds"))?;
    let ts_us = ts_ms.saturating_mul(1000);
    if (ts_us - now.0).abs() > window_us {
        return Err(ErrorBody::new(
            "request.stale",
            mebyo_domain::clause!("P4.11(4)"),
            format!(
                "timestamp is more than {} s from the platform's clock; check the clock (NTP) and sign anew",
                window_us / 1_000_000
            ),
        ));
    }
    let Some((key_provider, key)) = key_of(&credential_id) else {
        return Err(ErrorBody::new(
            "request.key_unknown",
            mebyo_domain::clause!("P4.12(1)"),
            "no signing key is registered for this connection information",
        ));
    };
    if key_provider != provider_id {
        return Err(ErrorBody::new(
            "request.signature_invalid",
            mebyo_domain::clause!("P4.11(4)"),
            "connection information belongs to another provider",
        ));
    }
    let sig_bytes: [u8; 64] = hex::decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("Mebyo-Signature must be 128 hex digits"))?;
    let key_str = claimed.idempotency_key.as_deref().unwrap_or("");
    let signed = wire::signing_string(
        subject, reply, provider, credential, ts, nonce, key_str, body,
    );
    let signature = Signature::from_bytes(&sig_bytes);
    if key.verify_strict(signed.as_bytes(), &signature).is_err() {
        // Tell a client of the first scheme from a wrong signature: it only
        // needs to sign the reply subject too (§3 of docs/bus.md).
        let v1 = wire::signing_string_v1(subject, provider, credential, ts, nonce, key_str, body);
        if key.verify_strict(v1.as_bytes(), &signature).is_ok() {
            return Err(ErrorBody::new(
                "request.signature_outdated",
                mebyo_domain::clause!("P4.11(4)"),
                "signed the MEBYO-BUS-V1 way; sign the MEBYO-BUS-V2 string, which includes the reply subject",
            ));
        }
        return Err(ErrorBody::new(
            "request.signature_invalid",
            mebyo_domain::clause!("P4.11(4)"),
            "the signature does not verify with the registered key (body, subject or reply subject changed, or another key)",
        ));
    }
    match nonces.check(&credential_id, nonce, ts_us, now.0) {
        NonceCheck::Fresh => {}
        NonceCheck::Replayed => {
            return Err(ErrorBody::new(
                "request.replayed",
                mebyo_domain::clause!("P4.11(4)"),
                "this nonce was already used; sign every request with a fresh nonce",
            ));
        }
        NonceCheck::Full => {
            return Err(ErrorBody::new(
                "request.busy",
                mebyo_domain::clause!("P4.4"),
                "too many requests in the freshness window; retry shortly",
            ));
        }
    }
    let key_hash = claimed
        .idempotency_key
        .as_ref()
        .map(|k| crate::state::key_hash(&provider_id, k));
    Ok(Verified {
        provider: provider_id,
        credential: credential_id.clone(),
        idempotency_key: claimed.idempotency_key.clone(),
        evidence: Evidence {
            subject: subject.to_string(),
            credential: credential_id,
            timestamp_ms: ts.clone(),
            nonce: nonce.clone(),
            key_hash,
            body_sha256: wire::sha256_hex(body),
            signature: sig.to_lowercase(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: i64 = 1_795_651_200_000_000;
    const WINDOW: i64 = 60_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn signed(subject: &str, body: &[u8], ts_ms: i64, nonce: &str) -> Claimed {
        let ts = ts_ms.to_string();
        let s = wire::signing_string(
            subject, "_INBOX.r", "clinic", "cred-1", &ts, nonce, "k1", body,
        );
        Claimed {
            provider: Some("clinic".into()),
            credential: Some("cred-1".into()),
            timestamp: Some(ts),
            nonce: Some(nonce.into()),
            signature: Some(hex::encode(key().sign(s.as_bytes()).to_bytes())),
            idempotency_key: Some("k1".into()),
        }
    }

    fn run(c: &Claimed, body: &[u8], now: i64, cache: &NonceCache) -> Result<Verified, String> {
        run_to("_INBOX.r", c, body, now, cache)
    }

    fn run_to(
        reply: &str,
        c: &Claimed,
        body: &[u8],
        now: i64,
        cache: &NonceCache,
    ) -> Result<Verified, String> {
        let vk = key().verifying_key();
        verify(
            "s",
            reply,
            "clinic",
            c,
            body,
            Timestamp(now),
            WINDOW,
            |_| Some((ProviderId::new("clinic").unwrap(), vk)),
            cache,
        )
        .map_err(|e| e.code)
    }

    #[test]
    fn p4_11_4_signature_freshness_and_replay() {
        let cache = NonceCache::new(WINDOW, 1000);
        let n1 = "a".repeat(32);
        let c = signed("s", b"{}", NOW / 1000, &n1);
        let v = run(&c, b"{}", NOW, &cache).unwrap();
        assert_eq!(v.provider.as_str(), "clinic");
        assert_eq!(v.evidence.body_sha256, wire::sha256_hex(b"{}"));
        assert_eq!(run(&c, b"{}", NOW, &cache).unwrap_err(), "request.replayed");
        // Another body under the same signature.
        let c2 = signed("s", b"{}", NOW / 1000, &"b".repeat(32));
        assert_eq!(
            run(&c2, b"{\"x\":1}", NOW, &cache).unwrap_err(),
            "request.signature_invalid"
        );
        // ±60 s, on the injected clock.
        let c3 = signed("s", b"{}", NOW / 1000 - 61_000, &"c".repeat(32));
        assert_eq!(run(&c3, b"{}", NOW, &cache).unwrap_err(), "request.stale");
        let c4 = signed("s", b"{}", NOW / 1000 + 59_000, &"d".repeat(32));
        assert!(run(&c4, b"{}", NOW, &cache).is_ok());
        // Unsigned.
        let mut c5 = signed("s", b"{}", NOW / 1000, &"e".repeat(32));
        c5.signature = None;
        assert_eq!(
            run(&c5, b"{}", NOW, &cache).unwrap_err(),
            "request.unsigned"
        );
        // Another provider's subject.
        let c6 = signed("s", b"{}", NOW / 1000, &"f".repeat(32));
        let vk = key().verifying_key();
        let r = verify(
            "s",
            "_INBOX.r",
            "other",
            &c6,
            b"{}",
            Timestamp(NOW),
            WINDOW,
            |_| Some((ProviderId::new("clinic").unwrap(), vk)),
            &cache,
        );
        assert_eq!(r.unwrap_err().code, "request.wrong_provider");
    }

    /// Issue 22 §6: the reply subject is signed, so a captured request cannot be
    /// redirected; a request signed the V1 way gets its own code.
    #[test]
    fn p4_11_4_the_reply_subject_is_signed() {
        let cache = NonceCache::new(WINDOW, 1000);
        let c = signed("s", b"{}", NOW / 1000, &"1".repeat(32));
        assert_eq!(
            run_to("_INBOX.attacker", &c, b"{}", NOW, &cache).unwrap_err(),
            "request.signature_invalid"
        );
        assert_eq!(
            run_to("", &c, b"{}", NOW, &cache).unwrap_err(),
            "request.signature_invalid"
        );
        assert!(run(&c, b"{}", NOW, &cache).is_ok());
        let ts = (NOW / 1000).to_string();
        let nonce = "2".repeat(32);
        let v1 = wire::signing_string_v1("s", "clinic", "cred-1", &ts, &nonce, "k1", b"{}");
        let old = Claimed {
            signature: Some(hex::encode(key().sign(v1.as_bytes()).to_bytes())),
            nonce: Some(nonce),
            ..c
        };
        assert_eq!(
            run(&old, b"{}", NOW, &cache).unwrap_err(),
            "request.signature_outdated"
        );
    }

    #[test]
    fn nonce_cache_is_bounded_by_window_and_size() {
        let cache = NonceCache::new(WINDOW, 3);
        let c = CredentialId::new("c").unwrap();
        for i in 0..3 {
            assert_eq!(
                cache.check(&c, &format!("n{i}"), NOW, NOW),
                NonceCheck::Fresh
            );
        }
        assert_eq!(cache.check(&c, "n9", NOW, NOW), NonceCheck::Full);
        // After the window has passed (twice, for clock skew), old nonces go.
        let later = NOW + 2 * WINDOW + 1;
        assert_eq!(cache.check(&c, "n9", later, later), NonceCheck::Fresh);
        assert_eq!(cache.len(), 1);
    }
}
