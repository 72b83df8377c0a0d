//! The read decision (P4.6(2)): an individual reads their own records or a represented
//! family member's; a provider reads only what an active consent covers by category,
//! purpose and data period, while approved, not suspended and holding valid connection
//! information; staff never read health content. Every decision, granted or refused,
//! becomes an `access.recorded` event.
//!
//! The decision never sees the records themselves, so a refusal cannot reveal whether
//! data exists; a provider asking about an unknown or withdrawn person gets the same
//! `consent.none` as one asking about a person who never consented.

use crate::actor::{Actor, Channel};
use crate::consent::{Period, Purpose, find_covering};
use crate::credential::{CredentialState, authenticate};
use crate::person::{PersonState, PersonStatus};
use crate::provider::{ProviderState, provider_check};
use crate::records::Category;
use crate::refusal::{Refusal, ensure};
use crate::{ConsentId, DomainEvent, PersonId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub actor: Actor,
    pub person: PersonId,
    pub categories: BTreeSet<Category>,
    /// Stated on every access (P4.11(3)).
    pub purpose: Purpose,
    pub channel: Channel,
    /// Clinical-date span of the records asked for.
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision {
    Granted {
        /// The consent relied on; `None` for the individual's own side.
        consent: Option<ConsentId>,
        categories: BTreeSet<Category>,
        /// Whether medical-institution-origin records may be served: only over a VPN
        /// connection (P4.5(3)). Read models filter them out otherwise.
        medical_origin: bool,
    },
    Refused(Refusal),
}

impl AccessDecision {
    pub fn is_granted(&self) -> bool {
        matches!(self, AccessDecision::Granted { .. })
    }
}

/// Decide one read. `provider` and `credential` are the states of the provider named
/// by the actor and of the credential the actor presents.
pub fn decide_access(
    req: &AccessRequest,
    person: &PersonState,
    provider: Option<&ProviderState>,
    credential: Option<&CredentialState>,
    now: Timestamp,
) -> AccessDecision {
    match decide(req, person, provider, credential, now) {
        Ok(granted) => granted,
        Err(refusal) => AccessDecision::Refused(refusal),
    }
}

fn decide(
    req: &AccessRequest,
    person: &PersonState,
    provider: Option<&ProviderState>,
    credential: Option<&CredentialState>,
    now: Timestamp,
) -> Result<AccessDecision, Refusal> {
    ensure(
        !req.categories.is_empty(),
        "access.no_categories",
        crate::clause!("P4.6(2)"),
        "name the categories asked for",
    )?;
    ensure(
        req.period.is_valid(),
        "access.period_invalid",
        crate::clause!("P4.6(2)"),
        "data period must start before it ends",
    )?;
    // A person record of another stream must never answer for this one.
    let person = if person.id.as_ref() == Some(&req.person) {
        person
    } else {
        &PersonState::default()
    };
    match &req.actor {
        Actor::Individual { person: reader, .. } => {
            ensure(
                req.channel.fits(&req.actor),
                "access.channel",
                crate::clause!("P4.5(3)"),
                "individuals connect through the portal or app over TLS",
            )?;
            authenticate(&req.actor, credential, now)?;
            ensure(
                person.status == PersonStatus::Active && person.may_be_acted_for_by(reader),
                "access.not_own",
                crate::clause!("P4.6(2)"),
                "an individual sees only their own information or a represented family member's",
            )?;
            Ok(AccessDecision::Granted {
                consent: None,
                categories: req.categories.clone(),
                medical_origin: true,
            })
        }
        Actor::Provider { provider: pid, .. } => {
            ensure(
                req.channel.fits(&req.actor),
                "access.channel",
                crate::clause!("P4.5(3)"),
                "providers connect through the provider gateway",
            )?;
            let p = provider
                .filter(|p| p.id.as_ref() == Some(pid))
                .cloned()
                .unwrap_or_default();
            provider_check(&p, now)?;
            authenticate(&req.actor, credential, now)?;
            let consents = person
                .consents
                .values()
                .filter(|_| person.status == PersonStatus::Active);
            let consent = find_covering(consents, pid, |c| {
                c.covers_read(&req.categories, req.purpose, &req.period, now)
            })?;
            Ok(AccessDecision::Granted {
                consent: Some(consent.id.clone()),
                categories: req.categories.clone(),
                medical_origin: p.connection_is_vpn(),
            })
        }
        Actor::Staff { .. } => Err(Refusal::new(
            "access.staff",
            crate::clause!("P4.6(2)"),
            "staff roles never read health content",
        )),
        Actor::Applicant | Actor::System => Err(Refusal::new(
            "access.unauthenticated",
            crate::clause!("P4.6(2)"),
            "health content is read only by its individual or a consented provider",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Granted,
    Refused,
}

/// Audit event of one read, kept in the person's `access-<person id>` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AccessEvent {
    #[serde(rename = "access.recorded")]
    AccessRecorded {
        actor: Actor,
        person: PersonId,
        categories: BTreeSet<Category>,
        purpose: Purpose,
        channel: Channel,
        period: Period,
        consent: Option<ConsentId>,
        outcome: Outcome,
        refusal_code: Option<String>,
        refusal_clause: Option<String>,
        at: Timestamp,
    },
}

impl DomainEvent for AccessEvent {
    fn event_type(&self) -> &'static str {
        "access.recorded"
    }

    fn person_related(&self) -> bool {
        true
    }
}

/// The record a decided read leaves (P4.6(2)): every read of a person's data,
/// granted or refused, is recorded in their `access-` stream. A read naming an id
/// that was never registered concerns no one's data: it gets the same refusal as a
/// real person's (so ids cannot be probed) but no record, so that made-up ids
/// create no streams and put no input into the log (P4.8(3)). `registered` is
/// whether the person's stream holds any event (erased people included: their
/// reads are still recorded). A granted read is always recorded (fail closed),
/// though no decision grants a read of a never-registered id.
pub fn access_record(
    req: &AccessRequest,
    decision: &AccessDecision,
    registered: bool,
    at: Timestamp,
) -> Option<AccessEvent> {
    (registered || decision.is_granted()).then(|| access_recorded(req, decision, at))
}

/// The event recording `decision` on `req` (P4.6(2): every access and every refusal).
pub fn access_recorded(
    req: &AccessRequest,
    decision: &AccessDecision,
    at: Timestamp,
) -> AccessEvent {
    let (outcome, consent, categories, refusal) = match decision {
        AccessDecision::Granted {
            consent,
            categories,
            ..
        } => (Outcome::Granted, consent.clone(), categories.clone(), None),
        AccessDecision::Refused(r) => (Outcome::Refused, None, req.categories.clone(), Some(r)),
    };
    AccessEvent::AccessRecorded {
        actor: req.actor.clone(),
        person: req.person.clone(),
        categories,
        purpose: req.purpose,
        channel: req.channel,
        period: req.period,
        consent,
        outcome,
        refusal_code: refusal.map(|r| r.code.to_string()),
        refusal_clause: refusal.map(|r| r.clause.to_string()),
        at,
    }
}
