//! A provider's client for the mebyo bus, written from `docs/bus.md` alone.
//!
//! Read it top to bottom: [`sign_headers`] is the whole authentication scheme;
//! [`ProviderClient::request`] sends one signed request; [`ProviderClient::submit`]
//! retries a write with the same idempotency key until it gets an answer, which
//! is safe because the platform answers a repeated key with its first answer and
//! writes nothing new; [`ProviderClient::feed`] reads the provider's own feed.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use async_nats::jetstream;
use base64::Engine;
use ed25519_dalek::Signer;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "mebyo.v1";

/// This provider's inbox prefix, `_INBOX.<provider>` (docs/bus.md §2, §10).
pub fn inbox_prefix(provider: &str) -> String {
    format!("_INBOX.{provider}")
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// No answer (timeout, no responder, broker away). Safe to retry a write
    /// with the same idempotency key.
    #[error("no answer: {0}")]
    NoAnswer(String),
    #[error("the platform answered something that is not JSON: {0}")]
    BadReply(String),
    #[error("feed: {0}")]
    Feed(String),
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
}

/// The platform's answer: `{"result": ...}` or `{"error": {code, clause, message}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub body: Value,
    /// The platform replayed its first answer to this idempotency key.
    pub replayed: bool,
}

impl Answer {
    pub fn is_ok(&self) -> bool {
        self.body.get("result").is_some()
    }
    pub fn result(&self) -> Option<&Value> {
        self.body.get("result")
    }
    /// `(code, clause, message)` of an error answer.
    pub fn error(&self) -> Option<(&str, &str, &str)> {
        let e = self.body.get("error")?;
        Some((
            e["code"].as_str().unwrap_or(""),
            e["clause"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or(""),
        ))
    }
    /// The answer is a transient failure of the platform: retry with the same key.
    pub fn retryable(&self) -> bool {
        self.error()
            .is_some_and(|(c, _, _)| c == "platform.unavailable" || c == "platform.conflict")
    }
}

/// TLS files: the CA of the platform's NATS server, and this client's certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

// ---- keys ------------------------------------------------------------------------

/// A new signing key. Keep the secret half to yourself; give the public half
/// (hex) to the prefecture's office, which registers it with your credential.
pub fn generate_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Reads a signing key saved as 64 hex digits.
pub fn load_key(path: &std::path::Path) -> Result<SigningKey, ClientError> {
    let bad = |reason: String| ClientError::Key {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .map_err(|e| bad(e.to_string()))?
        .try_into()
        .map_err(|_| bad("expected 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

// ---- signing -------------------------------------------------------------------------

pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The headers that authenticate one request (docs/bus.md, "Signing"):
/// an ed25519 signature over nine lines —
/// `MEBYO-BUS-V2`, subject, reply subject (the inbox the answer goes to, or
/// empty), provider, credential, timestamp (Unix ms), nonce, idempotency key
/// (or empty), SHA-256 of the body in hex — joined by `\n`.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    key: &SigningKey,
    subject: &str,
    reply: &str,
    provider: &str,
    credential: &str,
    timestamp_ms: u64,
    nonce: &str,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> HeaderMap {
    let ts = timestamp_ms.to_string();
    let signed = [
        "MEBYO-BUS-V2",
        subject,
        reply,
        provider,
        credential,
        &ts,
        nonce,
        idempotency_key.unwrap_or(""),
        &sha256_hex(body),
    ]
    .join("\n");
    let signature = key.sign(signed.as_bytes());
    let mut h = HeaderMap::new();
    h.insert("Mebyo-Provider", provider);
    h.insert("Mebyo-Credential", credential);
    h.insert("Mebyo-Timestamp", ts.as_str());
    h.insert("Mebyo-Nonce", nonce);
    h.insert(
        "Mebyo-Signature",
        hex::encode(signature.to_bytes()).as_str(),
    );
    if let Some(k) = idempotency_key {
        h.insert("Mebyo-Idempotency-Key", k);
    }
    h
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// 128 random bits, hex: never reuse a nonce.
pub fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

// ---- items -------------------------------------------------------------------------

/// A FHIR R4 resource to submit (`category` as in docs/bus.md, e.g. `vitals`).
pub fn fhir_item(
    person: &str,
    category: &str,
    effective_at: &str,
    original_identifier: &str,
    resource: Value,
) -> Value {
    json!({
        "format": "fhir",
        "person": person,
        "category": category,
        "effective_at": effective_at,
        "original_identifier": original_identifier,
        "resource": resource,
    })
}

/// A JAHIS medication-notebook file, as the pharmacy system wrote it (Shift_JIS bytes).
pub fn jahis_item(person: &str, file: &[u8]) -> Value {
    json!({
        "format": "jahis",
        "person": person,
        "data_base64": base64::engine::general_purpose::STANDARD.encode(file),
    })
}

/// A blood-pressure panel (LOINC 85354-9) for `person` at `when` (RFC 3339).
pub fn blood_pressure(person: &str, systolic: u32, diastolic: u32, when: &str) -> Value {
    let loinc = "http://loinc.org";
    let ucum = "http://unitsofmeasure.org";
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": loinc, "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": when,
        "component": [
            {"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
             "valueQuantity": {"value": systolic, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": loinc, "code": "8462-4"}]},
             "valueQuantity": {"value": diastolic, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}}
        ]
    })
}

// ---- the client ------------------------------------------------------------------

/// Milliseconds since the Unix epoch; replaceable so tests can sign on the
/// platform's simulated clock.
pub type ClockFn = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

pub struct ProviderClient {
    pub nats: async_nats::Client,
    pub prefix: String,
    pub provider: String,
    pub credential: String,
    key: SigningKey,
    clock: ClockFn,
}

impl ProviderClient {
    pub async fn connect(
        url: &str,
        tls: Option<&Tls>,
        provider: &str,
        credential: &str,
        key: SigningKey,
    ) -> Result<Self, ClientError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("provider-{provider}"))
            // Answers come to `_INBOX.<provider>.…`, the only inboxes this
            // provider's NATS user may subscribe to (docs/bus.md §10).
            .custom_inbox_prefix(inbox_prefix(provider))
            .request_timeout(Some(Duration::from_secs(5)))
            .max_reconnects(None);
        if let Some(t) = tls {
            opts = opts
                .require_tls(true)
                .add_root_certificates(t.ca.clone())
                .add_client_certificate(t.cert.clone(), t.key.clone());
        }
        let nats = opts.connect(url).await.map_err(|e| ClientError::Connect {
            url: url.into(),
            reason: e.to_string(),
        })?;
        Ok(Self::with_client(nats, provider, credential, key))
    }

    pub fn with_client(
        nats: async_nats::Client,
        provider: &str,
        credential: &str,
        key: SigningKey,
    ) -> Self {
        Self {
            nats,
            prefix: PREFIX.into(),
            provider: provider.into(),
            credential: credential.into(),
            key,
            clock: std::sync::Arc::new(now_ms),
        }
    }

    pub fn with_clock(mut self, clock: ClockFn) -> Self {
        self.clock = clock;
        self
    }

    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn subject(&self, service: &str) -> String {
        format!("{}.svc.{}.{service}", self.prefix, self.provider)
    }

    /// One signed request, signed now with a fresh nonce.
    pub async fn request(
        &self,
        service: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let body = serde_json::to_vec(body).expect("json");
        self.request_json(service, body, idempotency_key).await
    }

    /// As [`Self::request`], for a body that is JSON text already (what is
    /// signed is exactly these bytes, so they are sent as they are).
    pub async fn request_json(
        &self,
        service: &str,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let subject = self.subject(service);
        // The answer's inbox is chosen here, not by the NATS library, because it
        // is signed: a captured request cannot have its answer sent elsewhere.
        let reply = self.inbox();
        let headers = sign_headers(
            &self.key,
            &subject,
            &reply,
            &self.provider,
            &self.credential,
            self.now_ms(),
            &fresh_nonce(),
            idempotency_key,
            &body,
        );
        self.send(subject, reply, headers, body).await
    }

    /// A fresh inbox for one request's answer.
    pub fn inbox(&self) -> String {
        self.nats.new_inbox()
    }

    /// Sends prepared headers and body as they are, asking for the answer on
    /// `reply` (tests use it to tamper).
    pub async fn send(
        &self,
        subject: String,
        reply: String,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(body.into())
            .inbox(reply);
        let msg = self
            .nats
            .send_request(subject, request)
            .await
            .map_err(|e| ClientError::NoAnswer(e.to_string()))?;
        let replayed = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Mebyo-Replayed"))
            .is_some_and(|v| v.as_str() == "true");
        let body = serde_json::from_slice(&msg.payload).map_err(|_| {
            ClientError::BadReply(String::from_utf8_lossy(&msg.payload).into_owned())
        })?;
        Ok(Answer { body, replayed })
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Submits items under `idempotency_key`, retrying (same key, new nonce and
    /// signature) while there is no answer or the platform reports a transient
    /// failure, up to `attempts` times.
    pub async fn submit(
        &self,
        items: Vec<Value>,
        idempotency_key: &str,
        attempts: u32,
    ) -> Result<Answer, ClientError> {
        let body = serde_json::to_vec(&json!({ "items": items })).expect("json");
        self.submit_json(&body, idempotency_key, attempts).await
    }

    /// As [`Self::submit`], for a request body (`{"items": [...]}`) that is JSON
    /// text already, as a provider's system that keeps its FHIR resources as
    /// text would hold it: no parsing and writing it again on the way out.
    pub async fn submit_json(
        &self,
        body: &[u8],
        idempotency_key: &str,
        attempts: u32,
    ) -> Result<Answer, ClientError> {
        let mut last = None;
        for attempt in 0..attempts.max(1) {
            match self
                .request_json("records.submit", body.to_vec(), Some(idempotency_key))
                .await
            {
                Ok(a) if !a.retryable() => return Ok(a),
                Ok(a) => last = Some(Ok(a)),
                Err(e) => last = Some(Err(e)),
            }
            tokio::time::sleep(
                Duration::from_millis(100 * (attempt as u64 + 1)).min(Duration::from_secs(2)),
            )
            .await;
        }
        last.expect("at least one attempt")
    }

    /// Records of `person` that consent allows, for `purpose` over `[from, to)`.
    pub async fn query(
        &self,
        person: &str,
        categories: &[&str],
        purpose: &str,
        from: &str,
        to: &str,
    ) -> Result<Answer, ClientError> {
        let body = json!({
            "person": person,
            "categories": categories,
            "purpose": purpose,
            "period": {"from": from, "to": to},
        });
        self.request("records.query", &body, None).await
    }

    /// Consents concerning this provider (`active` or `all`).
    pub async fn consents(&self, status: &str) -> Result<Answer, ClientError> {
        self.request("consents.list", &json!({ "status": status }), None)
            .await
    }

    /// Acknowledges feed messages by id: the platform records that you got them.
    pub async fn acknowledge(
        &self,
        ids: &[String],
        idempotency_key: &str,
    ) -> Result<Answer, ClientError> {
        self.request("feed.ack", &json!({ "ids": ids }), Some(idempotency_key))
            .await
    }

    /// Up to `max` messages of this provider's feed, waiting at most `wait`.
    /// Each is acked to JetStream after `handle` returns.
    pub async fn feed(
        &self,
        stream: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        let js = jetstream::new(self.nats.clone());
        let err = |e: &dyn std::fmt::Display| ClientError::Feed(e.to_string());
        let consumer: jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream(format!("feed-{}", self.provider), stream)
            .await
            .map_err(|e| err(&e))?;
        let mut batch = consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| err(&e))?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| err(&e))?;
            let v: Value = serde_json::from_slice(&m.payload).map_err(|e| err(&e))?;
            m.ack().await.map_err(|e| err(&e))?;
            out.push(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/bus.md, "Signing": a provider's implementation
    /// in any language must produce these bytes.
    #[test]
    fn signing_test_vector_of_the_documentation() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let body = br#"{"status":"active"}"#;
        let h = sign_headers(
            &key,
            "mebyo.v1.svc.clinic-a.consents.list",
            "_INBOX.clinic-a.0001",
            "clinic-a",
            "cred-0123456789abcdef",
            1_795_651_200_000,
            "00112233445566778899aabbccddeeff",
            None,
            body,
        );
        println!("public key {}", public_key_hex(&key.verifying_key()));
        println!("body sha256 {}", sha256_hex(body));
        println!("signature {}", h.get("Mebyo-Signature").unwrap().as_str());
        assert_eq!(public_key_hex(&key.verifying_key()), DOC_PUBLIC_KEY,);
        assert_eq!(h.get("Mebyo-Signature").unwrap().as_str(), DOC_SIGNATURE);
    }

    const DOC_PUBLIC_KEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    const DOC_SIGNATURE: &str = "bdd5942cfb9257b8a3241759e5d411c65bb6a7008be3ca3a94717413843c25c124c8b32e004e06cf9ccefd5c4b47fba296646bcdd3103ca96033f9a0dcb89201";
}
