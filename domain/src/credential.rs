//! Connection information (P4.12, P4.13): issued to a provider's responsible person or
//! to an individual, renewed at a fixed interval, revoked at once on a loss report or
//! by the prefecture. Validity is evaluated against `now`, so expiry needs no job.

use crate::person::PersonStatus;
use crate::provider::provider_check;
use crate::refusal::{ensure, refuse};
use crate::staff::{Role, privileged, with_role};
use crate::{
    Actor, CredentialId, Ctx, Decider, DomainEvent, PersonId, ProviderId, Refusal, StaffId,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// Guidance (指導) or warning (警告) given before revocation for improper handling
/// (P4.13(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GuidanceKind {
    Guidance,
    Warning,
}

/// Who holds the connection information.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Holder {
    Provider {
        provider: ProviderId,
        responsible: StaffId,
    },
    Individual {
        person: PersonId,
    },
}

/// The only grounds on which the prefecture revokes connection information (P4.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationReason {
    /// P4.13(1).
    BreachOfLaw,
    /// P4.13(2): needs earlier recorded guidance or a warning.
    ImproperHandlingUncorrected,
    /// P4.13(3).
    JudgedRisk,
}

impl RevocationReason {
    pub fn clause(self) -> &'static str {
        match self {
            RevocationReason::BreachOfLaw => crate::clause!("P4.13(1)"),
            RevocationReason::ImproperHandlingUncorrected => crate::clause!("P4.13(2)"),
            RevocationReason::JudgedRisk => crate::clause!("P4.13(3)"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CredentialStatus {
    #[default]
    Unissued,
    Active,
    Lost,
    Revoked(RevocationReason),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialState {
    pub id: Option<CredentialId>,
    pub holder: Option<Holder>,
    pub status: CredentialStatus,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// False from the instant of expiry, loss report or revocation.
pub fn credential_valid(state: &CredentialState, now: Timestamp) -> bool {
    state.status == CredentialStatus::Active && state.issued_at <= now && now < state.expires_at
}

/// The codes [`authenticate`] refuses with: the presenting actor's own connection
/// info failed, which the faces answer as an authentication failure (401). Every
/// other `credential.*` refusal is about the credential a command names.
pub const AUTHENTICATION_REFUSALS: [&str; 4] = [
    "credential.invalid",
    "credential.lost",
    "credential.revoked",
    "credential.expired",
];

/// Checks the credential an individual or provider presents: it must be theirs
/// (connection info is never shared, P4.11(4)) and valid now (P4.12, P4.13).
/// Staff, applicants and the system do not authenticate with connection info.
pub fn authenticate(
    actor: &Actor,
    credential: Option<&CredentialState>,
    now: Timestamp,
) -> Result<(), Refusal> {
    let (presented, owns): (&CredentialId, fn(&Actor, &Holder) -> bool) = match actor {
        Actor::Individual { credential, .. } => (
            credential,
            |a, h| matches!((a, h), (Actor::Individual { person, .. }, Holder::Individual { person: p }) if person == p),
        ),
        Actor::Provider { credential, .. } => (
            credential,
            |a, h| matches!((a, h), (Actor::Provider { provider, .. }, Holder::Provider { provider: p, .. }) if provider == p),
        ),
        _ => return Ok(()),
    };
    let Some(c) = credential.filter(|c| c.id.as_ref() == Some(presented)) else {
        return refuse(
            "credential.invalid",
            crate::clause!("P4.11(4)"),
            "unknown connection information",
        );
    };
    ensure(
        c.holder.as_ref().is_some_and(|h| owns(actor, h)),
        "credential.invalid",
        crate::clause!("P4.11(4)"),
        "connection information belongs to someone else",
    )?;
    match c.status {
        CredentialStatus::Lost => refuse(
            "credential.lost",
            crate::clause!("P4.12(2)"),
            "connection information reported lost",
        ),
        CredentialStatus::Revoked(reason) => refuse(
            "credential.revoked",
            reason.clause(),
            "connection information revoked by the prefecture",
        ),
        _ if !credential_valid(c, now) => refuse(
            "credential.expired",
            crate::clause!("P4.12(1)"),
            "connection information expired; renew it",
        ),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialCommand {
    /// Issue; `replaces` names a lost or expired credential of the same holder.
    Issue {
        credential: CredentialId,
        holder: Holder,
        replaces: Option<CredentialId>,
    },
    Renew,
    ReportLoss,
    Revoke {
        reason: RevocationReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CredentialEvent {
    #[serde(rename = "credential.issued")]
    Issued {
        credential: CredentialId,
        holder: Holder,
        replaces: Option<CredentialId>,
        expires_at: Timestamp,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "credential.renewed")]
    Renewed {
        credential: CredentialId,
        expires_at: Timestamp,
        at: Timestamp,
    },
    #[serde(rename = "credential.loss_reported")]
    LossReported {
        credential: CredentialId,
        at: Timestamp,
    },
    #[serde(rename = "credential.revoked")]
    Revoked {
        credential: CredentialId,
        reason: RevocationReason,
        by: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for CredentialEvent {
    fn event_type(&self) -> &'static str {
        match self {
            CredentialEvent::Issued { .. } => "credential.issued",
            CredentialEvent::Renewed { .. } => "credential.renewed",
            CredentialEvent::LossReported { .. } => "credential.loss_reported",
            CredentialEvent::Revoked { .. } => "credential.revoked",
        }
    }

    /// Every credential belongs to a natural person (an individual or a provider's
    /// responsible person), so the whole stream is encrypted.
    fn person_related(&self) -> bool {
        true
    }
}

pub struct Credential;

impl Decider for Credential {
    type State = CredentialState;
    type Command = CredentialCommand;
    type Event = CredentialEvent;

    fn decide(
        state: &CredentialState,
        cmd: &CredentialCommand,
        ctx: &Ctx,
    ) -> Result<Vec<CredentialEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: CredentialState, event: &CredentialEvent) -> CredentialState {
        evolve(state, event)
    }
}

/// Whether a holder of `role` issues, renews and takes loss reports of
/// connection information: the prefecture and its office (P4.12(1)). The decider
/// and the dashboard's forms both ask this.
pub fn issues(role: Role) -> bool {
    matches!(role, Role::Prefecture | Role::OperationsOffice)
}

/// Whether a holder of `role` revokes connection information: the prefecture
/// only (P4.13). The decider and the dashboard's forms both ask this.
pub fn revokes(role: Role) -> bool {
    role == Role::Prefecture
}

/// The actor is the credential's holder (any credential of theirs, or none: a lost
/// one cannot be presented).
fn is_holder(actor: &Actor, holder: &Holder) -> bool {
    match (actor, holder) {
        (Actor::Individual { person, .. }, Holder::Individual { person: p }) => person == p,
        (Actor::Provider { provider, .. }, Holder::Provider { provider: p, .. }) => provider == p,
        _ => false,
    }
}

fn issued(state: &CredentialState) -> Result<(CredentialId, &Holder), Refusal> {
    match (&state.id, &state.holder) {
        (Some(id), Some(h)) => Ok((id.clone(), h)),
        _ => refuse(
            "credential.unknown",
            crate::clause!("P4.12(1)"),
            "no such connection information",
        ),
    }
}

pub fn decide(
    state: &CredentialState,
    cmd: &CredentialCommand,
    ctx: &Ctx,
) -> Result<Vec<CredentialEvent>, Refusal> {
    let now = ctx.now;
    match cmd {
        CredentialCommand::Issue {
            credential,
            holder,
            replaces,
        } => {
            let by = privileged(
                ctx,
                issues,
                crate::clause!("P4.12(1)"),
                "connection information is issued by the prefecture or its office",
            )?;
            ensure(
                state.status == CredentialStatus::Unissued,
                "credential.already_issued",
                crate::clause!("P4.12(1)"),
                "connection information is issued once; renew or reissue instead",
            )?;
            match holder {
                Holder::Provider {
                    provider,
                    responsible,
                } => {
                    // Nothing reaches a provider before approval (P2(3)).
                    let p = ctx
                        .provider
                        .filter(|p| p.id.as_ref() == Some(provider))
                        .cloned()
                        .unwrap_or_default();
                    provider_check(&p, now)?;
                    ensure(
                        p.responsible.as_ref() == Some(responsible),
                        "credential.not_responsible",
                        crate::clause!("P4.12(1)"),
                        "provider connection information goes to its responsible person",
                    )?;
                }
                Holder::Individual { person } => ensure(
                    ctx.person.is_some_and(|p| {
                        p.id.as_ref() == Some(person) && p.status == PersonStatus::Active
                    }),
                    "credential.holder_inactive",
                    crate::clause!("P2(2)"),
                    "connection information goes only to a registered, active individual",
                )?,
            }
            if let Some(old) = replaces {
                let Some(prev) = ctx
                    .replaced
                    .filter(|c| c.id.as_ref() == Some(old) && c.holder.as_ref() == Some(holder))
                else {
                    return refuse(
                        "credential.reissue_unknown",
                        crate::clause!("P4.12(2)"),
                        "reissue must name the holder's earlier credential",
                    );
                };
                match prev.status {
                    CredentialStatus::Revoked(reason) => {
                        return refuse(
                            "credential.reissue_revoked",
                            reason.clause(),
                            "revoked connection information is not reissued",
                        );
                    }
                    CredentialStatus::Lost => {}
                    _ => ensure(
                        !credential_valid(prev, now),
                        "credential.reissue_still_valid",
                        crate::clause!("P4.12(2)"),
                        "report the loss before reissuing",
                    )?,
                }
            }
            Ok(vec![CredentialEvent::Issued {
                credential: credential.clone(),
                holder: holder.clone(),
                replaces: replaces.clone(),
                expires_at: now + ctx.config.credential_renewal,
                by,
                at: now,
            }])
        }
        CredentialCommand::Renew => {
            let (credential, holder) = issued(state)?;
            if is_holder(ctx.actor, holder) {
                // The holder renews by presenting this very credential, still valid.
                authenticate(ctx.actor, Some(state), now)?;
            } else {
                with_role(
                    ctx,
                    issues,
                    crate::clause!("P4.12(1)"),
                    "renewal by the holder or the office",
                )?;
                ensure(
                    credential_valid(state, now),
                    "credential.not_renewable",
                    crate::clause!("P4.12(1)"),
                    "only valid connection information is renewed; reissue otherwise",
                )?;
            }
            Ok(vec![CredentialEvent::Renewed {
                credential,
                expires_at: now + ctx.config.credential_renewal,
                at: now,
            }])
        }
        CredentialCommand::ReportLoss => {
            let (credential, holder) = issued(state)?;
            if !is_holder(ctx.actor, holder) {
                with_role(
                    ctx,
                    issues,
                    crate::clause!("P4.12(2)"),
                    "loss is reported by the holder or through the office",
                )?;
            }
            ensure(
                matches!(state.status, CredentialStatus::Active),
                "credential.not_active",
                crate::clause!("P4.12(2)"),
                "connection information already lost or revoked",
            )?;
            Ok(vec![CredentialEvent::LossReported {
                credential,
                at: now,
            }])
        }
        CredentialCommand::Revoke { reason } => {
            let by = privileged(
                ctx,
                revokes,
                reason.clause(),
                "only the prefecture revokes connection information",
            )?;
            let (credential, holder) = issued(state)?;
            ensure(
                matches!(state.status, CredentialStatus::Active),
                "credential.not_active",
                reason.clause(),
                "connection information already lost or revoked",
            )?;
            if *reason == RevocationReason::ImproperHandlingUncorrected {
                let guidance = match holder {
                    Holder::Provider { provider, .. } => ctx
                        .provider
                        .filter(|p| p.id.as_ref() == Some(provider))
                        .map(|p| p.guidance.as_slice()),
                    Holder::Individual { person } => ctx
                        .person
                        .filter(|p| p.id.as_ref() == Some(person))
                        .map(|p| p.guidance.as_slice()),
                };
                ensure(
                    guidance.is_some_and(|g| g.iter().any(|(_, at)| *at < now)),
                    "credential.no_prior_guidance",
                    crate::clause!("P4.13(2)"),
                    "improper handling needs earlier guidance or a warning on record",
                )?;
            }
            Ok(vec![CredentialEvent::Revoked {
                credential,
                reason: *reason,
                by,
                at: now,
            }])
        }
    }
}

pub fn evolve(mut state: CredentialState, event: &CredentialEvent) -> CredentialState {
    match event {
        CredentialEvent::Issued {
            credential,
            holder,
            expires_at,
            at,
            ..
        } => {
            state.id = Some(credential.clone());
            state.holder = Some(holder.clone());
            state.status = CredentialStatus::Active;
            state.issued_at = *at;
            state.expires_at = *expires_at;
        }
        CredentialEvent::Renewed { expires_at, .. } => state.expires_at = *expires_at,
        CredentialEvent::LossReported { at, .. } => {
            state.status = CredentialStatus::Lost;
            state.expires_at = state.expires_at.min(*at);
        }
        CredentialEvent::Revoked { reason, at, .. } => {
            state.status = CredentialStatus::Revoked(*reason);
            state.expires_at = state.expires_at.min(*at);
        }
    }
    state
}
