//! The request-reply services: one function from (subject, headers, body) to a
//! reply, independent of NATS so that it can be tested and reasoned about alone.
//!
//! Order of effects for every request: refuse early and record the refusal; or
//! do the work through the platform (whose deciders enforce the policy), record
//! the outcome with the request's signature, and only then reply. A reply never
//! leaves before what it reports is durable in the ledger.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_nats::HeaderMap;
use base64::Engine;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::Period;
use mebyo_domain::provider::provider_check;
use mebyo_domain::records::{Category, Origin, RecordCommand, Submission};
use mebyo_domain::{Actor, Channel, CredentialId, PersonId, ProviderId, RecordId};
use mebyo_platform::{Platform, PlatformError};
use serde_json::json;

use crate::auth::{self, Claimed, Verified};
use crate::state::{Answer, BusEvent, BusState, REFUSED_STREAM, record_id, requests_stream};
use crate::wire::{
    self, AckRequest, ConsentsRequest, ErrorBody, ItemResult, QueryRequest, RecordResult, Service,
    SubmitItem, SubmitRequest, SubmitResult,
};
use crate::{BusConfig, jahis};

/// A reply body and how to label it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: Arc<Vec<u8>>,
    pub ok: bool,
    pub replayed: bool,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Self {
            body: Arc::new(body),
            ok: true,
            replayed: false,
        }
    }
    fn error(e: &ErrorBody) -> Self {
        Self {
            body: Arc::new(e.reply()),
            ok: false,
            replayed: false,
        }
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(wire::H_STATUS, if self.ok { "ok" } else { "error" });
        if self.replayed {
            h.insert(wire::H_REPLAYED, "true");
        }
        h
    }
}

/// Most consents listed in one reply.
const MAX_CONSENTS_LISTED: usize = 5000;
/// Most feed message ids acknowledged in one request.
const MAX_ACK_IDS: usize = 1000;

pub struct Services {
    pub platform: Arc<Platform>,
    pub cfg: Arc<BusConfig>,
    pub state: Arc<BusState>,
    /// One lock per idempotency key being worked on, so that two copies of one
    /// request racing each other write once.
    in_progress: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A request the bus refuses as a whole: the reply, and whether the request was
/// signed (then the refusal keeps its signature).
struct Refused(ErrorBody);

impl From<ErrorBody> for Refused {
    fn from(e: ErrorBody) -> Self {
        Refused(e)
    }
}

fn malformed(what: impl std::fmt::Display) -> Refused {
    Refused(ErrorBody::new(
        "request.malformed",
        mebyo_domain::clause!("P4.4"),
        what.to_string(),
    ))
}

impl Services {
    pub fn new(platform: Arc<Platform>, cfg: Arc<BusConfig>, state: Arc<BusState>) -> Self {
        Self {
            platform,
            cfg,
            state,
            in_progress: Default::default(),
        }
    }

    /// Handles one request; `reply` is its reply subject. `Ok(None)` when it is
    /// not to be answered (unauthenticated noise beyond the answer rate). `Err`
    /// only for failures of the machinery (storage), which the caller answers
    /// with a retryable error and no record.
    pub async fn handle(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        body: &[u8],
    ) -> Result<Option<Reply>, PlatformError> {
        let claimed = Claimed::read(headers);
        if body.len() > self.cfg.max_body_bytes {
            let e = ErrorBody::new(
                "request.too_large",
                mebyo_domain::clause!("P4.4"),
                format!(
                    "body larger than {} bytes; split the batch",
                    self.cfg.max_body_bytes
                ),
            );
            return Ok(self.noise(e));
        }
        let Some((provider, service)) = wire::parse_service_subject(&self.cfg.prefix, subject)
        else {
            let e = ErrorBody::new(
                "request.unknown_service",
                mebyo_domain::clause!("P4.4"),
                "no such service subject",
            );
            return Ok(self.noise(e));
        };
        // The subject as rebuilt from its parts: the same text (parsing checked
        // that), and what the evidence keeps, so nothing of it is unchecked input.
        let subject = wire::service_subject(&self.cfg.prefix, provider, service);
        self.ensure_key(&claimed).await?;
        let now = self.platform.now();
        let verified = match auth::verify(
            &subject,
            reply.unwrap_or(""),
            provider,
            &claimed,
            body,
            now,
            self.cfg.freshness.as_micros() as i64,
            |c| self.state.keys.read().get(c).cloned(),
            &self.state.nonces,
        ) {
            Ok(v) => v,
            Err(e) => return Ok(self.noise(e)),
        };
        // From here on the request is the provider's, signed and fresh: what it
        // is refused is recorded (P4.5(1)(2)), from validated fields only.
        self.authenticated(service, &verified, body, now)
            .await
            .map(Some)
    }

    /// A message that did not authenticate: counted, answered at a bounded rate,
    /// never recorded (issue 22 §2; `stats`).
    fn noise(&self, e: ErrorBody) -> Option<Reply> {
        self.state
            .stats
            .unauthenticated(&e.code, self.platform.now().0)
            .then(|| Reply::error(&e))
    }

    async fn authenticated(
        &self,
        service: Service,
        verified: &Verified,
        body: &[u8],
        now: mebyo_domain::Timestamp,
    ) -> Result<Reply, PlatformError> {
        // The credential as the ledger has it now: a revocation, loss report or
        // expiry refuses this very request (P4.12, P4.13).
        let cred = self.platform.credential_state(&verified.credential).await?;
        if let Err(r) = mebyo_domain::credential::authenticate(&verified.actor(), Some(&cred), now)
        {
            let e = ErrorBody::from_refusal(&r);
            return self.refuse(verified, body, e).await;
        }
        if service.writes() && verified.idempotency_key.is_none() {
            let e = ErrorBody::new(
                "request.idempotency_key_missing",
                mebyo_domain::clause!("P2(1)"),
                "writes carry a Mebyo-Idempotency-Key so that a retry cannot write twice",
            );
            return self.refuse(verified, body, e).await;
        }
        match service {
            Service::Submit | Service::FeedAck => self.once(service, verified, body).await,
            Service::Query => self.query(verified, body).await,
            Service::Consents => self.consents(verified, body).await,
        }
    }

    /// Loads a credential's signing key from the ledger if this node has not seen
    /// it yet (registered on another node a moment ago).
    async fn ensure_key(&self, claimed: &Claimed) -> Result<(), PlatformError> {
        let Some(c) = claimed
            .credential
            .as_deref()
            .and_then(|c| CredentialId::new(c).ok())
        else {
            return Ok(());
        };
        if self.state.keys.read().contains_key(&c) {
            return Ok(());
        }
        if let Some(k) = crate::keys::load_key(&self.platform, &c).await? {
            self.state.keys.write().insert(c, k);
        }
        Ok(())
    }

    /// Records the refusal of an authenticated request (P4.5(1)(2)) and answers
    /// with the error. Only validated fields go into the event: the subject as
    /// rebuilt from the verified provider and service, the verified ids, the
    /// evidence (digests, hex and digits) and the code; never the message's text
    /// (principle 3).
    async fn refuse(
        &self,
        v: &Verified,
        body: &[u8],
        e: ErrorBody,
    ) -> Result<Reply, PlatformError> {
        let ev = BusEvent::RequestRefused {
            subject: v.evidence.subject.clone(),
            claimed_provider: Some(v.provider.to_string()),
            claimed_credential: Some(v.credential.to_string()),
            body_sha256: wire::sha256_hex(body),
            code: e.code.clone(),
            clause: e.clause.clone(),
            evidence: Some(v.evidence.clone()),
            at: self.platform.now(),
        };
        self.platform
            .record(REFUSED_STREAM, &Actor::System, &ev)
            .await?;
        Ok(Reply::error(&e))
    }

    fn key_lock(&self, key_hash: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.in_progress
            .lock()
            .entry(key_hash.to_string())
            .or_default()
            .clone()
    }

    /// A write, exactly once per idempotency key: the stored first answer if
    /// there is one, else the work, its outcome recorded before the reply.
    async fn once(
        &self,
        service: Service,
        v: &Verified,
        body: &[u8],
    ) -> Result<Reply, PlatformError> {
        // `authenticated` refused writes without a key already.
        let Some(kh) = v.evidence.key_hash.clone() else {
            let e = ErrorBody::new(
                "request.idempotency_key_missing",
                mebyo_domain::clause!("P2(1)"),
                "writes carry a Mebyo-Idempotency-Key so that a retry cannot write twice",
            );
            return self.refuse(v, body, e).await;
        };
        let lock = self.key_lock(&kh);
        let result = {
            let _guard = lock.lock().await;
            self.once_locked(service, v, body, &kh).await
        };
        // Forget the lock unless another copy of the request is waiting on it.
        let mut m = self.in_progress.lock();
        if Arc::strong_count(&lock) == 2 {
            m.remove(&kh);
        }
        result
    }

    async fn once_locked(
        &self,
        service: Service,
        v: &Verified,
        body: &[u8],
        kh: &str,
    ) -> Result<Reply, PlatformError> {
        let first = self.state.idem.get(kh, &v.evidence.body_sha256);
        if let Some(found) = first {
            if !found.same_body {
                let e = ErrorBody::new(
                    "request.idempotency_key_reused",
                    mebyo_domain::clause!("P2(1)"),
                    "this idempotency key was used for another request body; use a new key",
                );
                return self.refuse(v, body, e).await;
            }
            let response = match found.answer {
                Answer::Here(r) => r,
                Answer::InLedger(p) => crate::state::answer_at(&self.platform, p).await?,
            };
            return Ok(Reply {
                body: response,
                ok: true,
                replayed: true,
            });
        }
        // Each path records the outcome durably before it returns it.
        let work = match service {
            Service::Submit => self.submit(v, body, kh).await?,
            Service::FeedAck => match ack(body)? {
                Ok(r) => Ok(self.complete(v, r).await?),
                Err(e) => Err(e),
            },
            // `authenticated` sends only writes here.
            Service::Query | Service::Consents => Err(malformed("not a write")),
        };
        let response = match work {
            Ok(r) => r,
            Err(Refused(e)) => {
                return self.refuse(v, body, e).await;
            }
        };
        self.state
            .idem
            .completed_here(kh, &v.evidence.body_sha256, response.clone());
        Ok(Reply {
            body: response,
            ok: true,
            replayed: false,
        })
    }

    /// The outcome of a write, as the event that keeps it for retries (P2(1)).
    fn completed(&self, v: &Verified, response: &[u8]) -> (String, Actor, BusEvent) {
        let ev = BusEvent::RequestCompleted {
            provider: v.provider.clone(),
            evidence: v.evidence.clone(),
            // Replies are serde_json's output, so UTF-8: lossy never changes one.
            response: String::from_utf8_lossy(response).into_owned(),
            at: self.platform.now(),
        };
        (requests_stream(&v.provider), v.actor(), ev)
    }

    /// Records a write's outcome on its own, durably; returns it.
    async fn complete(
        &self,
        v: &Verified,
        response: Vec<u8>,
    ) -> Result<Arc<Vec<u8>>, PlatformError> {
        let (stream, actor, ev) = self.completed(v, &response);
        self.platform.record(&stream, &actor, &ev).await?;
        Ok(Arc::new(response))
    }

    /// Turns the items into record submissions and runs them through the
    /// records decider: one person's records in order, different people's at
    /// once (so their appends share a group commit). The request's last record
    /// goes last, and its append carries the request's outcome in the same
    /// commit (`Platform::records_then`): one durable commit for a one-record
    /// submission instead of two in sequence, and never an outcome without the
    /// records it reports. Returns the outcome once it is durable.
    async fn submit(
        &self,
        v: &Verified,
        body: &[u8],
        kh: &str,
    ) -> Result<Result<Arc<Vec<u8>>, Refused>, PlatformError> {
        let req: SubmitRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return Ok(Err(malformed(format_args!("body: {e}")))),
        };
        if req.items.is_empty() || req.items.len() > self.cfg.max_items {
            return Ok(Err(malformed(format_args!(
                "items: 1 to {} per request",
                self.cfg.max_items
            ))));
        }
        let mut results: Vec<ItemResult> = Vec::with_capacity(req.items.len());
        // Per person: (item, the records of the item it decides, command).
        let mut work: BTreeMap<PersonId, Vec<Work>> = BTreeMap::new();
        for (i, item) in req.items.into_iter().enumerate() {
            let mut result = ItemResult {
                index: i,
                status: String::new(),
                records: Vec::new(),
                error: None,
            };
            match prepare(item, kh, i) {
                Ok((person, subs, whole)) => {
                    for s in &subs {
                        result.records.push(RecordResult {
                            record: s.record.to_string(),
                            status: String::new(),
                            error: None,
                        });
                    }
                    let queue = work.entry(person).or_default();
                    if whole {
                        // A Bundle: one command, stored all or nothing.
                        queue.push((i, (0..subs.len()).collect(), RecordCommand::SubmitAll(subs)));
                    } else {
                        for (j, s) in subs.into_iter().enumerate() {
                            queue.push((i, vec![j], RecordCommand::Submit(s)));
                        }
                    }
                }
                Err(e) => result.error = Some(e),
            }
            results.push(result);
        }
        let actor = v.actor();
        // The last record of the request, held back to carry the outcome.
        let last = work
            .iter_mut()
            .next_back()
            .and_then(|(person, subs)| Some((person.clone(), subs.pop()?)));
        work.retain(|_, subs| !subs.is_empty());
        let runs = work.into_iter().map(|(person, subs)| {
            let actor = &actor;
            async move {
                let mut out = Vec::with_capacity(subs.len());
                for (i, js, cmd) in subs {
                    let r = self.platform.records(actor, &person, cmd).await?;
                    out.push((i, js, r.map(|_| ())));
                }
                Ok::<_, PlatformError>(out)
            }
        });
        for run in futures::future::try_join_all(runs).await? {
            for (i, js, r) in run {
                record_result(&mut results, i, &js, r.as_ref().err());
            }
        }
        let Some((person, (i, js, cmd))) = last else {
            // No item made a record: the outcome stands alone.
            return Ok(match finish(results) {
                Ok(response) => Ok(self.complete(v, response).await?),
                Err(e) => Err(e),
            });
        };
        let mut made = None;
        // The decision itself is in `made`, as the reply it makes.
        let _decided = self
            .platform
            .records_then(&actor, &person, cmd, |decision| {
                let mut results = results.clone();
                record_result(&mut results, i, &js, decision.as_ref().err());
                let outcome = finish(results);
                // A request refused as a whole is recorded as a refusal instead,
                // by the caller (it wrote nothing).
                let ev = outcome.as_ref().ok().map(|r| self.completed(v, r));
                made = Some(outcome);
                ev
            })
            .await?;
        match made {
            Some(outcome) => Ok(outcome.map(Arc::new)),
            // `records_then` decides at least once; were it not to, nothing was
            // decided and the provider retries.
            None => Err(PlatformError::Store(mebyo_store::StoreError::Other(
                "the submission's last record was not decided".into(),
            ))),
        }
    }

    async fn query(&self, v: &Verified, body: &[u8]) -> Result<Reply, PlatformError> {
        let q: QueryRequest = match serde_json::from_slice(body) {
            Ok(q) => q,
            Err(e) => {
                let Refused(e) = malformed(format_args!("body: {e}"));
                return self.refuse(v, body, e).await;
            }
        };
        let parsed = (|| {
            let person =
                PersonId::new(&q.person).map_err(|_| malformed("person is not a person id"))?;
            let from = wire::parse_time(&q.period.from).ok_or_else(|| malformed("period.from"))?;
            let to = wire::parse_time(&q.period.to).ok_or_else(|| malformed("period.to"))?;
            if q.categories.len() > Category::ALL.len() {
                return Err(malformed("categories"));
            }
            Ok::<_, Refused>(AccessRequest {
                actor: v.actor(),
                person,
                categories: q.categories.iter().copied().collect(),
                purpose: q.purpose,
                channel: Channel::ProviderGateway,
                period: Period { from, to },
            })
        })();
        let req = match parsed {
            Ok(r) => r,
            Err(Refused(e)) => {
                return self.refuse(v, body, e).await;
            }
        };
        // Records the access (granted or refused) before anything is returned.
        // Shared with the platform's state cache, serialised straight from it.
        let (reply, outcome) = match self.platform.read_records_shared(&req).await? {
            Ok(entries) => {
                let records: Vec<_> = entries
                    .iter()
                    .map(|e| wire::RecordOut {
                        record: &e.record,
                        category: e.category,
                        effective_at: wire::rfc3339(e.effective_at),
                        resource: &e.resource,
                        provenance: &e.provenance,
                    })
                    .collect();
                let body = wire::ok_reply(&wire::QueryResult { records });
                if body.len() > self.cfg.max_reply_bytes {
                    let e = ErrorBody::new(
                        "response.too_large",
                        mebyo_domain::clause!("P4.4"),
                        "the answer exceeds the reply limit; ask for a shorter period or fewer categories",
                    );
                    (Reply::error(&e), e.code)
                } else {
                    (Reply::ok(body), "ok".to_string())
                }
            }
            Err(r) => (
                Reply::error(&ErrorBody::from_refusal(&r)),
                r.code.to_string(),
            ),
        };
        self.served(v, outcome).await?;
        Ok(reply)
    }

    async fn consents(&self, v: &Verified, body: &[u8]) -> Result<Reply, PlatformError> {
        let req: ConsentsRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ConsentsRequest::default()
        } else {
            match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => {
                    let Refused(e) = malformed(format_args!("body: {e}"));
                    return self.refuse(v, body, e).await;
                }
            }
        };
        let all = match req.status.as_deref() {
            None | Some("active") => false,
            Some("all") => true,
            Some(_) => {
                let Refused(e) = malformed("status is `active` or `all`");
                return self.refuse(v, body, e).await;
            }
        };
        let now = self.platform.now();
        // Nothing reaches a provider that is not approved (P2(3)) or whose
        // attestations lapsed (P4.11).
        let provider = self.platform.provider_state(&v.provider).await?;
        if let Err(r) = provider_check(&provider, now) {
            let reply = Reply::error(&ErrorBody::from_refusal(&r));
            self.served(v, r.code.to_string()).await?;
            return Ok(reply);
        }
        let rows: Vec<_> = self
            .state
            .consents
            .read()
            .get(&v.provider)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|r| all || r.active_at(now))
            .take(MAX_CONSENTS_LISTED + 1)
            .map(|r| r.to_json(now))
            .collect();
        let truncated = rows.len() > MAX_CONSENTS_LISTED;
        let rows = &rows[..rows.len().min(MAX_CONSENTS_LISTED)];
        self.served(v, "ok".into()).await?;
        Ok(Reply::ok(wire::ok_reply(
            &json!({"consents": rows, "truncated": truncated, "as_of": wire::rfc3339(now)}),
        )))
    }

    async fn served(&self, v: &Verified, outcome: String) -> Result<(), PlatformError> {
        let ev = BusEvent::RequestServed {
            provider: v.provider.clone(),
            evidence: v.evidence.clone(),
            outcome,
            at: self.platform.now(),
        };
        self.platform
            .record(&requests_stream(&v.provider), &v.actor(), &ev)
            .await
    }
}

/// One command of a submission: the item, the records of the item it decides,
/// and the command.
type Work = (usize, Vec<usize>, RecordCommand);

/// Sets the status of records `js` of item `i` from their decision.
fn record_result(
    results: &mut [ItemResult],
    i: usize,
    js: &[usize],
    refusal: Option<&mebyo_domain::Refusal>,
) {
    let Some(item) = results.get_mut(i) else {
        return;
    };
    for &j in js {
        if let Some(rec) = item.records.get_mut(j) {
            record_status(rec, refusal);
        }
    }
}

fn record_status(rec: &mut RecordResult, refusal: Option<&mebyo_domain::Refusal>) {
    match refusal {
        None => rec.status = "added".into(),
        // The derived id is already there: this request's own earlier attempt
        // wrote it before failing to record its outcome.
        Some(r) if r.code == "record.exists" => rec.status = "added".into(),
        Some(r) => {
            rec.status = "refused".into();
            rec.error = Some(ErrorBody::from_refusal(r));
        }
    }
}

/// The reply to a submission once every record is decided; or, when every item
/// was refused for the same reason, that refusal for the whole request (e.g. a
/// provider without a VPN connection delivering institution data, P4.5(3)).
fn finish(mut results: Vec<ItemResult>) -> Result<Vec<u8>, Refused> {
    for item in &mut results {
        let added = item.records.iter().filter(|r| r.status == "added").count();
        item.status = match (added, item.records.len()) {
            (0, _) => "refused",
            (a, n) if a == n => "added",
            _ => "partial",
        }
        .into();
        if item.error.is_none() && added == 0 {
            item.error = item.records.iter().find_map(|r| r.error.clone());
        }
    }
    let first = results.first().and_then(|r| r.error.clone());
    if results.iter().all(|r| r.status == "refused")
        && let Some(e) = first
        && results
            .iter()
            .all(|r| r.error.as_ref().map(|x| &x.code) == Some(&e.code))
    {
        return Err(Refused(e));
    }
    Ok(wire::ok_reply(&SubmitResult { items: results }))
}

fn ack(body: &[u8]) -> Result<Result<Vec<u8>, Refused>, PlatformError> {
    let req: AckRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Ok(Err(malformed(format_args!("body: {e}")))),
    };
    if req.ids.is_empty()
        || req.ids.len() > MAX_ACK_IDS
        || req
            .ids
            .iter()
            .any(|i| i.is_empty() || i.len() > 128 || !i.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Ok(Err(malformed(format_args!(
            "ids: 1 to {MAX_ACK_IDS} feed message ids"
        ))));
    }
    Ok(Ok(wire::ok_reply(&json!({ "acknowledged": req.ids }))))
}

/// One item to its record submissions (or the item's error), and whether they
/// are stored all or nothing (a FHIR Bundle).
///
/// Errors never repeat the item's text: they name the field, the element's path
/// or the file's line (the answer is kept in the ledger, P4.8(3)).
fn prepare(
    item: SubmitItem,
    kh: &str,
    index: usize,
) -> Result<(PersonId, Vec<Submission>, bool), ErrorBody> {
    let bad = |m: &str| {
        ErrorBody::new(
            "item.invalid",
            mebyo_domain::clause!("P2(1)"),
            m.to_string(),
        )
    };
    let rid = |j: usize| {
        RecordId::new(record_id(kh, index, j)).map_err(|_| bad("derived record id is invalid"))
    };
    match item {
        SubmitItem::Fhir {
            person,
            category,
            effective_at,
            original_identifier,
            created_by,
            resource,
        } => {
            let person = PersonId::new(person).map_err(|_| bad("person is not a person id"))?;
            let effective_at = wire::parse_time(&effective_at)
                .ok_or_else(|| bad("effective_at is not RFC 3339 or YYYY-MM-DD"))?;
            let created_by = match created_by {
                Some(c) => {
                    Some(ProviderId::new(c).map_err(|_| bad("created_by is not a provider id"))?)
                }
                None => None,
            };
            let submission = |record, resource, original_identifier| Submission {
                record,
                category,
                effective_at,
                resource,
                origin: Origin::MedicalInstitution,
                created_by: created_by.clone(),
                original_identifier: Some(original_identifier),
            };
            if resource.get("resourceType").and_then(|t| t.as_str()) != Some("Bundle") {
                let s = submission(rid(0)?, resource, original_identifier);
                return Ok((person, vec![s], false));
            }
            // A Bundle: each entry one record, validated here with its path in
            // the bundle (the records decider validates each again), the
            // bundle's original identifier and the entry's position naming it.
            let entries = mebyo_domain::fhir::bundle_entries(category, &person, &resource)
                .map_err(|e| {
                    ErrorBody::new(
                        "record.fhir_invalid",
                        mebyo_domain::clause!("P2(1)"),
                        e.to_string(),
                    )
                })?;
            let subs = entries
                .into_iter()
                .enumerate()
                .map(|(k, (entry, _))| {
                    let oi = format!("{original_identifier}#{}", k + 1);
                    Ok(submission(rid(k)?, entry.clone(), oi))
                })
                .collect::<Result<Vec<_>, ErrorBody>>()?;
            Ok((person, subs, true))
        }
        SubmitItem::Jahis {
            person,
            data_base64,
        } => {
            let person = PersonId::new(person).map_err(|_| bad("person is not a person id"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data_base64.as_bytes())
                .map_err(|_| bad("data_base64 is not base64"))?;
            let nb = jahis::parse(&bytes).map_err(|e| {
                ErrorBody::new(
                    "jahis.invalid",
                    mebyo_domain::clause!("P2(1)"),
                    e.to_string(),
                )
            })?;
            let subs = jahis::to_fhir(&nb, &person)
                .into_iter()
                .enumerate()
                .map(|(j, c)| {
                    Ok(Submission {
                        record: rid(j)?,
                        category: Category::MedicationNotebook,
                        effective_at: c.effective_at,
                        resource: c.resource,
                        origin: Origin::MedicalInstitution,
                        created_by: None,
                        original_identifier: Some(c.original_identifier),
                    })
                })
                .collect::<Result<Vec<_>, ErrorBody>>()?;
            Ok((person, subs, false))
        }
    }
}
