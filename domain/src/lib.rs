//! Pure core of mebyo: events, commands and deciders (see ARCHITECTURE.md).
//!
//! Every aggregate follows the Decider pattern: `decide(&State, &Command, &Ctx) ->
//! Result<Vec<Event>, Refusal>` and `evolve(State, &Event) -> State`. Nothing here does
//! IO, reads a clock or draws randomness: time, ids and the facts a decision needs from
//! other streams arrive in the command or in [`Ctx`]. Each enforced rule cites its
//! clause of the catalogue, `docs/policy/catalogue.md` (e.g. `P4.6(2)`), in code, test and
//! [`Refusal`].
//!
//! # Module map
//!
//! | module | stream | what it decides |
//! | --- | --- | --- |
//! | [`ids`] | — | pseudonymous ids (`[a-z0-9-]`), [`Timestamp`], [`Duration`], [`BlindIndex`] |
//! | [`refusal`] | — | [`Refusal`] and the clause catalogue |
//! | [`actor`] | — | [`Actor`] (who issues a command or read) and [`Channel`] |
//! | [`policy`] | `policy-<id>` | policy versions in force (P7, P8, P9) |
//! | [`staff`] | `staff-<id>` | appointments along the chain of authority, privacy training (P3.1, P3.4) |
//! | [`provider`] | `provider-<id>` | application, approval, suspension, attestations, guidance (P2(3), P4.11) |
//! | [`credential`] | `credential-<id>` | connection info: issue, renew, loss, revocation (P4.12, P4.13) |
//! | [`person`] | `person-<id>` | registration, policy acceptance, representation, consents, withdrawal (P2, P4.6(2), P8) |
//! | [`consent`] | (in `person-<id>`) | what one consent covers, evaluated against `now` (P4.6(2)) |
//! | [`records`] | `records-<person id>` | health records with provenance and corrections (P2(1), P4.5(3), P5.1) |
//! | [`fhir`] | — | FHIR R4 validation of the resources records accept |
//! | [`access`] | `access-<person id>` | the read decision and its `access.recorded` event (P4.6(2)); no record for a never-registered id |
//! | [`duty`] | — | staff duties taken on demand, and who may take them: backup, restore drill (P4.10, P3.4) |
//! | [`audit_grant`] | `audit-grants` | auditor key grants: given only by the business administrator with current training to a current auditor, for 1..=365 days, and checked again at every use (P3.1(1), P3.4, P4.6(2)) |
//! | [`panel`] | — | the dashboard's panels and the roles that see each (P3.1, P4.6(2)) |
//! | [`signin`] | — (memory of the web face) | sign-in attempts: reserved before hashing, locks per account and source, limits per account (P4.8(2), P4.4(1)) |
#![forbid(unsafe_code)]

pub mod access;
pub mod actor;
pub mod audit_grant;
pub mod consent;
pub mod credential;
pub mod duty;
pub mod fhir;
pub mod ids;
pub mod panel;
pub mod person;
pub mod policy;
pub mod provider;
pub mod records;
pub mod refusal;
pub mod signin;
pub mod signing_key;
pub mod staff;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use access::{AccessDecision, AccessEvent, AccessRequest, decide_access};
pub use actor::{Actor, Channel};
pub use consent::{Consent, Period, Purpose};
pub use credential::{CredentialState, credential_valid};
pub use ids::*;
pub use person::PersonState;
pub use policy::PolicyVersion;
pub use provider::{ProviderState, provider_can_receive};
pub use records::Category;
pub use refusal::Refusal;
pub use staff::{Role, StaffState};

use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// What every domain event tells the store without looking inside it.
pub trait DomainEvent: Clone + Debug + PartialEq + Serialize + DeserializeOwned {
    /// Stable type name, also the serde `type` tag, e.g. `person.registered`.
    fn event_type(&self) -> &'static str;
    /// Payload schema version, bumped when a payload changes shape.
    fn schema_version(&self) -> u16 {
        1
    }
    /// Whether the payload concerns an individual and so must be encrypted under
    /// that individual's key (P4.8(1), erasable per P4.9).
    fn person_related(&self) -> bool;
}

/// One aggregate's decider.
pub trait Decider {
    type State: Default + Clone + Debug + PartialEq;
    type Command: Debug;
    type Event: DomainEvent;

    fn decide(
        state: &Self::State,
        cmd: &Self::Command,
        ctx: &Ctx,
    ) -> Result<Vec<Self::Event>, Refusal>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Rebuild state from a stream's history.
    fn fold<'e>(events: impl IntoIterator<Item = &'e Self::Event>) -> Self::State
    where
        Self::Event: 'e,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// Deployment settings the rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Longest a consent may run from the moment it is granted (P4.6(2)).
    pub consent_max: Duration,
    /// Fixed renewal interval of connection information (P4.12(1)).
    pub credential_renewal: Duration,
    /// The system's overall head, business administrator ex officio (P3.1(1)).
    pub business_administrator: StaffId,
}

/// Everything a decision needs besides its own state: who, when, settings, and
/// read-only facts from other streams. A missing fact behaves like an empty stream,
/// so absence always refuses (deny by default).
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub actor: &'a Actor,
    pub config: &'a Config,
    /// The acting staff member's record, when the actor is staff.
    pub staff: Option<&'a StaffState>,
    /// The credential the actor presents, when the actor is an individual or provider.
    pub credential: Option<&'a CredentialState>,
    /// The provider the command concerns.
    pub provider: Option<&'a ProviderState>,
    /// The person the command concerns, when that is another stream.
    pub person: Option<&'a PersonState>,
    /// The policy version in force at `now`.
    pub policy: Option<&'a PolicyVersion>,
    /// The credential a reissue replaces.
    pub replaced: Option<&'a CredentialState>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: Timestamp, actor: &'a Actor, config: &'a Config) -> Self {
        Self {
            now,
            actor,
            config,
            staff: None,
            credential: None,
            provider: None,
            person: None,
            policy: None,
            replaced: None,
        }
    }

    pub fn staff(self, staff: &'a StaffState) -> Self {
        Self {
            staff: Some(staff),
            ..self
        }
    }

    pub fn credential(self, credential: &'a CredentialState) -> Self {
        Self {
            credential: Some(credential),
            ..self
        }
    }

    pub fn provider(self, provider: &'a ProviderState) -> Self {
        Self {
            provider: Some(provider),
            ..self
        }
    }

    pub fn person(self, person: &'a PersonState) -> Self {
        Self {
            person: Some(person),
            ..self
        }
    }

    pub fn policy(self, policy: &'a PolicyVersion) -> Self {
        Self {
            policy: Some(policy),
            ..self
        }
    }

    pub fn replaced(self, replaced: &'a CredentialState) -> Self {
        Self {
            replaced: Some(replaced),
            ..self
        }
    }
}
