//! Individuals (P2(1), P2(2), P7, P8): registration, policy acceptance, identity
//! changes (content stays in the vault, P4.8(3)), family representation, consents
//! (P4.6(2)) and withdrawal leading to erasure (P4.9). Consents live here so every
//! decision about one person is consistent within one stream.

use crate::consent::{Consent, Period, Purpose};
use crate::credential::{GuidanceKind, authenticate};
use crate::provider::provider_check;
use crate::records::Category;
use crate::refusal::{ensure, refuse};
use crate::staff::{Role, privileged};
use crate::{
    Actor, BlindIndex, ConsentId, Ctx, Decider, DomainEvent, PersonId, PolicyId, ProviderId,
    Refusal, StaffId, Timestamp, VaultRef,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonStatus {
    #[default]
    Unregistered,
    Active,
    /// Withdrawn; erasure requested, awaiting the witnessed crypto-erase (P4.9).
    Withdrawn,
    Erased,
}

/// How the person came to be registered (P3.2: the office registers users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Registrar {
    SelfService,
    OperationsOffice { staff: StaffId },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonState {
    pub id: Option<PersonId>,
    pub status: PersonStatus,
    pub registrar: Option<Registrar>,
    pub identity: Option<VaultRef>,
    pub identity_revision: u32,
    pub accepted_policy: Option<PolicyId>,
    /// Signs in with a password from the password file (P4.8(2)).
    pub password: bool,
    /// People who may act for this person (family representatives).
    pub representatives: BTreeSet<PersonId>,
    pub consents: BTreeMap<ConsentId, Consent>,
    /// Guidance and warnings given to this user (P4.13(2)).
    pub guidance: Vec<(GuidanceKind, Timestamp)>,
}

impl PersonState {
    /// `actor_person` is this person or a representative they appointed.
    pub fn may_be_acted_for_by(&self, actor_person: &PersonId) -> bool {
        self.id.as_ref() == Some(actor_person) || self.representatives.contains(actor_person)
    }
}

/// Someone acting for this person: themselves or a representative, authenticated with
/// valid connection information (P4.6(2), P4.12). Returns the acting person.
pub fn acting_individual(state: &PersonState, ctx: &Ctx) -> Result<PersonId, Refusal> {
    let Actor::Individual { person, .. } = ctx.actor else {
        return refuse(
            "person.not_self",
            crate::clause!("P4.6(2)"),
            "only the individual or their representative may do this",
        );
    };
    ensure(
        state.may_be_acted_for_by(person),
        "person.not_self",
        crate::clause!("P4.6(2)"),
        "only the individual or their representative may do this",
    )?;
    authenticate(ctx.actor, ctx.credential, ctx.now)?;
    Ok(person.clone())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonCommand {
    Register {
        person: PersonId,
        identity: VaultRef,
        email_index: Option<BlindIndex>,
        /// Signs in to the portal with a password (a self-service sign-up), kept
        /// in the password file beside the ledger (P4.8(2)).
        password: bool,
    },
    AcceptPolicy {
        policy: PolicyId,
    },
    /// The vault entry changed; the event says so without content.
    UpdateIdentity,
    GrantRepresentation {
        representative: PersonId,
    },
    RevokeRepresentation {
        representative: PersonId,
    },
    GrantConsent {
        consent: ConsentId,
        provider: ProviderId,
        categories: BTreeSet<Category>,
        purpose: Purpose,
        period: Period,
        expires_at: Timestamp,
    },
    RevokeConsent {
        consent: ConsentId,
    },
    GiveGuidance {
        kind: GuidanceKind,
    },
    Withdraw,
    /// The system operations administrator witnessed the crypto-erase (P4.9).
    ConfirmErasure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PersonEvent {
    #[serde(rename = "person.registered")]
    Registered {
        person: PersonId,
        registrar: Registrar,
        identity: VaultRef,
        email_index: Option<BlindIndex>,
        /// The password file must hold this person's entry while they are
        /// registered: what the open checks the file against (issue 19 §4).
        /// Absent (false) in events of earlier versions.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        password: bool,
        at: Timestamp,
    },
    #[serde(rename = "person.policy_accepted")]
    PolicyAccepted {
        person: PersonId,
        policy: PolicyId,
        at: Timestamp,
    },
    #[serde(rename = "person.identity_updated")]
    IdentityUpdated {
        person: PersonId,
        revision: u32,
        at: Timestamp,
    },
    #[serde(rename = "person.representative_granted")]
    RepresentativeGranted {
        person: PersonId,
        representative: PersonId,
        at: Timestamp,
    },
    #[serde(rename = "person.representative_revoked")]
    RepresentativeRevoked {
        person: PersonId,
        representative: PersonId,
        at: Timestamp,
    },
    #[serde(rename = "person.consent_granted")]
    ConsentGranted {
        person: PersonId,
        consent: ConsentId,
        provider: ProviderId,
        categories: BTreeSet<Category>,
        purpose: Purpose,
        period: Period,
        expires_at: Timestamp,
        /// Who gave it: the person or a representative.
        by: PersonId,
        at: Timestamp,
    },
    #[serde(rename = "person.consent_revoked")]
    ConsentRevoked {
        person: PersonId,
        consent: ConsentId,
        by: PersonId,
        at: Timestamp,
    },
    #[serde(rename = "person.guidance_given")]
    GuidanceGiven {
        person: PersonId,
        kind: GuidanceKind,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "person.withdrawn")]
    Withdrawn { person: PersonId, at: Timestamp },
    #[serde(rename = "person.erasure_requested")]
    ErasureRequested { person: PersonId, at: Timestamp },
    #[serde(rename = "person.erasure_completed")]
    ErasureCompleted {
        person: PersonId,
        witness: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for PersonEvent {
    fn event_type(&self) -> &'static str {
        match self {
            PersonEvent::Registered { .. } => "person.registered",
            PersonEvent::PolicyAccepted { .. } => "person.policy_accepted",
            PersonEvent::IdentityUpdated { .. } => "person.identity_updated",
            PersonEvent::RepresentativeGranted { .. } => "person.representative_granted",
            PersonEvent::RepresentativeRevoked { .. } => "person.representative_revoked",
            PersonEvent::ConsentGranted { .. } => "person.consent_granted",
            PersonEvent::ConsentRevoked { .. } => "person.consent_revoked",
            PersonEvent::GuidanceGiven { .. } => "person.guidance_given",
            PersonEvent::Withdrawn { .. } => "person.withdrawn",
            PersonEvent::ErasureRequested { .. } => "person.erasure_requested",
            PersonEvent::ErasureCompleted { .. } => "person.erasure_completed",
        }
    }

    fn person_related(&self) -> bool {
        true
    }
}

pub struct Person;

impl Decider for Person {
    type State = PersonState;
    type Command = PersonCommand;
    type Event = PersonEvent;

    fn decide(
        state: &PersonState,
        cmd: &PersonCommand,
        ctx: &Ctx,
    ) -> Result<Vec<PersonEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: PersonState, event: &PersonEvent) -> PersonState {
        evolve(state, event)
    }
}

pub fn decide(
    state: &PersonState,
    cmd: &PersonCommand,
    ctx: &Ctx,
) -> Result<Vec<PersonEvent>, Refusal> {
    let at = ctx.now;
    if let PersonCommand::Register {
        person,
        identity,
        email_index,
        password,
    } = cmd
    {
        ensure(
            state.status == PersonStatus::Unregistered,
            "person.already_registered",
            crate::clause!("P2(1)"),
            "this person is already registered",
        )?;
        let registrar = match ctx.actor {
            Actor::Applicant => Registrar::SelfService,
            _ => Registrar::OperationsOffice {
                staff: privileged(
                    ctx,
                    |r| r == Role::OperationsOffice,
                    crate::clause!("P3.2"),
                    "users register themselves or through the office",
                )?,
            },
        };
        return Ok(vec![PersonEvent::Registered {
            person: person.clone(),
            registrar,
            identity: identity.clone(),
            email_index: email_index.clone(),
            password: *password,
            at,
        }]);
    }
    let person = match (&state.id, state.status) {
        (Some(id), PersonStatus::Active) => id.clone(),
        (Some(id), PersonStatus::Withdrawn) if *cmd == PersonCommand::ConfirmErasure => id.clone(),
        (Some(_), _) => {
            return refuse(
                "person.withdrawn",
                crate::clause!("P4.9"),
                "withdrawn: the record awaits or has had erasure",
            );
        }
        (None, _) => return refuse("person.unknown", crate::clause!("P2(1)"), "no such person"),
    };
    let event = match cmd {
        PersonCommand::Register { .. } => unreachable!("handled above"),
        PersonCommand::AcceptPolicy { policy } => {
            acting_individual(state, ctx)?;
            ensure(
                ctx.policy
                    .is_some_and(|v| v.id == *policy && v.in_force_from <= at),
                "policy.not_in_force",
                crate::clause!("P8"),
                "only the policy version in force can be accepted",
            )?;
            PersonEvent::PolicyAccepted {
                person,
                policy: policy.clone(),
                at,
            }
        }
        PersonCommand::UpdateIdentity => {
            if !matches!(ctx.actor, Actor::Staff { .. }) {
                acting_individual(state, ctx)?;
            } else {
                privileged(
                    ctx,
                    |r| r == Role::OperationsOffice,
                    crate::clause!("P3.2"),
                    "identity changes by the person or the office",
                )?;
            }
            PersonEvent::IdentityUpdated {
                person,
                revision: state.identity_revision + 1,
                at,
            }
        }
        PersonCommand::GrantRepresentation { representative } => {
            let by = acting_individual(state, ctx)?;
            // A representative cannot appoint further representatives: only the person.
            ensure(
                by == person,
                "person.not_self",
                crate::clause!("P4.6(2)"),
                "only the person appoints representatives",
            )?;
            ensure(
                *representative != person,
                "person.representative_self",
                crate::clause!("P4.6(2)"),
                "a person does not represent themselves",
            )?;
            ensure(
                !state.representatives.contains(representative),
                "person.representative_exists",
                crate::clause!("P4.6(2)"),
                "already a representative",
            )?;
            PersonEvent::RepresentativeGranted {
                person,
                representative: representative.clone(),
                at,
            }
        }
        PersonCommand::RevokeRepresentation { representative } => {
            let by = acting_individual(state, ctx)?;
            ensure(
                state.representatives.contains(representative),
                "person.representative_unknown",
                crate::clause!("P4.6(2)"),
                "not a representative",
            )?;
            // The person, or the representative stepping down themselves.
            ensure(
                by == person || by == *representative,
                "person.not_self",
                crate::clause!("P4.6(2)"),
                "only the person or that representative ends a representation",
            )?;
            PersonEvent::RepresentativeRevoked {
                person,
                representative: representative.clone(),
                at,
            }
        }
        PersonCommand::GrantConsent {
            consent,
            provider,
            categories,
            purpose,
            period,
            expires_at,
        } => {
            let by = acting_individual(state, ctx)?;
            let Some(in_force) = ctx.policy else {
                return refuse(
                    "policy.none_in_force",
                    crate::clause!("P7"),
                    "no policy version is in force",
                );
            };
            ensure(
                state.accepted_policy.as_ref() == Some(&in_force.id),
                "policy.not_accepted",
                crate::clause!("P8"),
                "accept the policy version in force before consenting",
            )?;
            ensure(
                !state.consents.contains_key(consent),
                "consent.exists",
                crate::clause!("P4.6(2)"),
                "consent id already used",
            )?;
            ensure(
                !categories.is_empty(),
                "consent.no_categories",
                crate::clause!("P4.6(2)"),
                "a consent names at least one category",
            )?;
            ensure(
                *purpose != Purpose::PersonalUse,
                "consent.purpose_invalid",
                crate::clause!("P4.11(3)"),
                "a provider's purpose must be a service purpose",
            )?;
            ensure(
                period.is_valid(),
                "consent.period_invalid",
                crate::clause!("P4.6(2)"),
                "data period must start before it ends",
            )?;
            ensure(
                *expires_at > at,
                "consent.expiry_past",
                crate::clause!("P4.6(2)"),
                "expiry must lie in the future",
            )?;
            ensure(
                *expires_at <= at + ctx.config.consent_max,
                "consent.expiry_too_far",
                crate::clause!("P4.6(2)"),
                "expiry beyond the longest consent allowed",
            )?;
            let p = ctx
                .provider
                .filter(|p| p.id.as_ref() == Some(provider))
                .cloned()
                .unwrap_or_default();
            provider_check(&p, at)?;
            PersonEvent::ConsentGranted {
                person,
                consent: consent.clone(),
                provider: provider.clone(),
                categories: categories.clone(),
                purpose: *purpose,
                period: *period,
                expires_at: *expires_at,
                by,
                at,
            }
        }
        PersonCommand::RevokeConsent { consent } => {
            let by = acting_individual(state, ctx)?;
            ensure(
                state
                    .consents
                    .get(consent)
                    .is_some_and(|c| c.revoked_at.is_none()),
                "consent.unknown",
                crate::clause!("P4.6(2)"),
                "no such consent in force",
            )?;
            PersonEvent::ConsentRevoked {
                person,
                consent: consent.clone(),
                by,
                at,
            }
        }
        PersonCommand::GiveGuidance { kind } => {
            let by = privileged(
                ctx,
                |r| r == Role::Prefecture,
                crate::clause!("P4.13(2)"),
                "only the prefecture gives guidance or warnings",
            )?;
            PersonEvent::GuidanceGiven {
                person,
                kind: *kind,
                by,
                at,
            }
        }
        PersonCommand::Withdraw => {
            if matches!(ctx.actor, Actor::Staff { .. }) {
                privileged(
                    ctx,
                    |r| r == Role::OperationsOffice,
                    crate::clause!("P3.2"),
                    "withdrawal by the person or through the office",
                )?;
            } else {
                let by = acting_individual(state, ctx)?;
                ensure(
                    by == person,
                    "person.not_self",
                    crate::clause!("P4.6(2)"),
                    "only the person withdraws",
                )?;
            }
            return Ok(vec![
                PersonEvent::Withdrawn {
                    person: person.clone(),
                    at,
                },
                PersonEvent::ErasureRequested { person, at },
            ]);
        }
        PersonCommand::ConfirmErasure => {
            let witness = privileged(
                ctx,
                witnesses_erasure,
                crate::clause!("P4.9"),
                "erasure is witnessed by the system operations administrator",
            )?;
            ensure(
                state.status == PersonStatus::Withdrawn,
                "person.not_withdrawn",
                crate::clause!("P4.9"),
                "only a withdrawn person's data is erased",
            )?;
            PersonEvent::ErasureCompleted {
                person,
                witness,
                at,
            }
        }
    };
    Ok(vec![event])
}

/// Whether a holder of `role` witnesses (and so carries out) a withdrawn
/// person's erasure: the system operations administrator (P4.9(3)).
pub fn witnesses_erasure(role: Role) -> bool {
    role == Role::SystemOperationsAdministrator
}

pub fn evolve(mut state: PersonState, event: &PersonEvent) -> PersonState {
    match event {
        PersonEvent::Registered {
            person,
            registrar,
            identity,
            password,
            ..
        } => {
            state.password = *password;
            state.id = Some(person.clone());
            state.status = PersonStatus::Active;
            state.registrar = Some(registrar.clone());
            state.identity = Some(identity.clone());
        }
        PersonEvent::PolicyAccepted { policy, .. } => state.accepted_policy = Some(policy.clone()),
        PersonEvent::IdentityUpdated { revision, .. } => state.identity_revision = *revision,
        PersonEvent::RepresentativeGranted { representative, .. } => {
            state.representatives.insert(representative.clone());
        }
        PersonEvent::RepresentativeRevoked { representative, .. } => {
            state.representatives.remove(representative);
        }
        PersonEvent::ConsentGranted {
            consent,
            provider,
            categories,
            purpose,
            period,
            expires_at,
            at,
            ..
        } => {
            state.consents.insert(
                consent.clone(),
                Consent {
                    id: consent.clone(),
                    provider: provider.clone(),
                    categories: categories.clone(),
                    purpose: *purpose,
                    period: *period,
                    granted_at: *at,
                    expires_at: *expires_at,
                    revoked_at: None,
                },
            );
        }
        PersonEvent::ConsentRevoked { consent, at, .. } => {
            if let Some(c) = state.consents.get_mut(consent) {
                c.revoked_at = Some(*at);
            }
        }
        PersonEvent::GuidanceGiven { kind, at, .. } => state.guidance.push((*kind, *at)),
        PersonEvent::Withdrawn { .. } => state.status = PersonStatus::Withdrawn,
        PersonEvent::ErasureRequested { .. } => {}
        PersonEvent::ErasureCompleted { .. } => state.status = PersonStatus::Erased,
    }
    state
}
