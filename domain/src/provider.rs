//! Service providers (P2(3), P4.5(3), P4.11): commissioned or certified, they apply and
//! the prefecture approves or rejects; nothing reaches a provider before approval.

use crate::credential::{GuidanceKind, authenticate};
use crate::refusal::{ensure, refuse};
use crate::staff::{Role, privileged, with_role};
use crate::{Actor, Ctx, Decider, DomainEvent, ProviderId, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Network class of the provider's connection (P4.5(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionClass {
    /// 閉域網 (IP-VPN).
    ClosedIpVpn,
    /// IPsec + IKE VPN.
    IpsecIkeVpn,
    /// TLS over the internet: not for medical-institution-origin data.
    TlsInternet,
}

impl ConnectionClass {
    pub fn is_vpn(self) -> bool {
        matches!(
            self,
            ConnectionClass::ClosedIpVpn | ConnectionClass::IpsecIkeVpn
        )
    }
}

/// On what footing the provider may apply at all (P2(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Basis {
    Commissioned,
    Certified,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderStatus {
    #[default]
    Unknown,
    Applied,
    Approved,
    Rejected,
    Suspended,
    Revoked,
}

/// What the responsible person attests to (P4.11(1), P4.11(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttestationKind {
    /// Members trained in correct use (P4.11(1)).
    MembersTrained,
    /// Anti-virus installed with current definitions on every terminal (P4.11(5)).
    AntivirusCurrent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub attested_on: Timestamp,
    pub valid_until: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderState {
    pub id: Option<ProviderId>,
    pub status: ProviderStatus,
    pub responsible: Option<StaffId>,
    pub connection: Option<ConnectionClass>,
    pub attestations: BTreeMap<AttestationKind, Attestation>,
    /// Guidance and warnings given, oldest first (P4.13(2)).
    pub guidance: Vec<(GuidanceKind, Timestamp)>,
}

impl ProviderState {
    pub fn connection_is_vpn(&self) -> bool {
        self.connection.is_some_and(ConnectionClass::is_vpn)
    }
}

/// Why nothing may reach this provider at `now`, if anything: it must be approved
/// and not suspended (P2(3)), with current training (P4.11(1)) and anti-virus
/// (P4.11(5)) attestations.
pub fn provider_check(state: &ProviderState, now: Timestamp) -> Result<(), Refusal> {
    match state.status {
        ProviderStatus::Approved => {}
        ProviderStatus::Suspended => {
            return refuse(
                "provider.suspended",
                crate::clause!("P2(3)"),
                "provider is suspended",
            );
        }
        _ => {
            return refuse(
                "provider.not_approved",
                crate::clause!("P2(3)"),
                "provider is not approved",
            );
        }
    }
    for (kind, clause) in [
        (AttestationKind::MembersTrained, crate::clause!("P4.11(1)")),
        (
            AttestationKind::AntivirusCurrent,
            crate::clause!("P4.11(5)"),
        ),
    ] {
        let current = state
            .attestations
            .get(&kind)
            .is_some_and(|a| a.attested_on <= now && now < a.valid_until);
        ensure(
            current,
            "provider.attestation_lapsed",
            clause,
            &format!("no current {kind:?} attestation"),
        )?;
    }
    Ok(())
}

/// Whether anything may reach the provider at `now` (see [`provider_check`]).
pub fn provider_can_receive(state: &ProviderState, now: Timestamp) -> bool {
    provider_check(state, now).is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderCommand {
    Apply {
        provider: ProviderId,
        responsible: StaffId,
        connection: ConnectionClass,
        basis: Basis,
    },
    Approve,
    Reject,
    Suspend,
    Reinstate,
    Revoke,
    Attest {
        kind: AttestationKind,
        attested_on: Timestamp,
        valid_until: Timestamp,
    },
    GiveGuidance {
        kind: GuidanceKind,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ProviderEvent {
    #[serde(rename = "provider.applied")]
    Applied {
        provider: ProviderId,
        responsible: StaffId,
        connection: ConnectionClass,
        basis: Basis,
        at: Timestamp,
    },
    #[serde(rename = "provider.approved")]
    Approved {
        provider: ProviderId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "provider.rejected")]
    Rejected {
        provider: ProviderId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "provider.suspended")]
    Suspended {
        provider: ProviderId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "provider.reinstated")]
    Reinstated {
        provider: ProviderId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "provider.revoked")]
    Revoked {
        provider: ProviderId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "provider.attested")]
    Attested {
        provider: ProviderId,
        kind: AttestationKind,
        attestation: Attestation,
        at: Timestamp,
    },
    #[serde(rename = "provider.guidance_given")]
    GuidanceGiven {
        provider: ProviderId,
        kind: GuidanceKind,
        by: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for ProviderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ProviderEvent::Applied { .. } => "provider.applied",
            ProviderEvent::Approved { .. } => "provider.approved",
            ProviderEvent::Rejected { .. } => "provider.rejected",
            ProviderEvent::Suspended { .. } => "provider.suspended",
            ProviderEvent::Reinstated { .. } => "provider.reinstated",
            ProviderEvent::Revoked { .. } => "provider.revoked",
            ProviderEvent::Attested { .. } => "provider.attested",
            ProviderEvent::GuidanceGiven { .. } => "provider.guidance_given",
        }
    }

    fn person_related(&self) -> bool {
        false
    }
}

pub struct Provider;

impl Decider for Provider {
    type State = ProviderState;
    type Command = ProviderCommand;
    type Event = ProviderEvent;

    fn decide(
        state: &ProviderState,
        cmd: &ProviderCommand,
        ctx: &Ctx,
    ) -> Result<Vec<ProviderEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: ProviderState, event: &ProviderEvent) -> ProviderState {
        evolve(state, event)
    }
}

/// Who enters a paper application for a provider (P2(3)): the office or the
/// prefecture; a provider applying itself is the applicant.
pub fn enters_applications(role: Role) -> bool {
    matches!(role, Role::OperationsOffice | Role::Prefecture)
}

/// Who enters a paper attestation received with an application (P4.11(1),
/// P4.11(5)): the prefecture; a provider attests over its own connection.
pub fn enters_attestations(role: Role) -> bool {
    role == Role::Prefecture
}

/// Who decides on providers' applications, approvals and suspensions (P2(3)):
/// the prefecture. Public so the dashboard shows the form to exactly them.
pub fn decides(role: Role) -> bool {
    role == Role::Prefecture
}

fn prefecture(ctx: &Ctx, clause: &'static str, what: &str) -> Result<StaffId, Refusal> {
    privileged(ctx, decides, clause, what)
}

/// Refuses unless the provider is in one of `from`.
fn status_in(
    state: &ProviderState,
    from: &[ProviderStatus],
    what: &str,
) -> Result<ProviderId, Refusal> {
    match &state.id {
        Some(id) if from.contains(&state.status) => Ok(id.clone()),
        _ => refuse(
            "provider.wrong_status",
            crate::clause!("P2(3)"),
            format!("cannot {what} a provider that is {:?}", state.status),
        ),
    }
}

pub fn decide(
    state: &ProviderState,
    cmd: &ProviderCommand,
    ctx: &Ctx,
) -> Result<Vec<ProviderEvent>, Refusal> {
    use ProviderStatus::*;
    let at = ctx.now;
    let event = match cmd {
        ProviderCommand::Apply {
            provider,
            responsible,
            connection,
            basis,
        } => {
            // From the applicant, or a paper application entered by the office or prefecture.
            if *ctx.actor != Actor::Applicant {
                with_role(
                    ctx,
                    enters_applications,
                    crate::clause!("P2(3)"),
                    "applications come from the applicant or through the office",
                )?;
            }
            ensure(
                matches!(state.status, Unknown | Rejected),
                "provider.already_applied",
                crate::clause!("P2(3)"),
                "provider already applied or is approved",
            )?;
            ensure(
                state.id.as_ref().is_none_or(|id| id == provider),
                "provider.stream_mismatch",
                crate::clause!("P2(3)"),
                "application addressed to another provider's stream",
            )?;
            ProviderEvent::Applied {
                provider: provider.clone(),
                responsible: responsible.clone(),
                connection: *connection,
                basis: *basis,
                at,
            }
        }
        ProviderCommand::Approve => {
            let by = prefecture(
                ctx,
                crate::clause!("P2(3)"),
                "only the prefecture approves providers",
            )?;
            let provider = status_in(state, &[Applied], "approve")?;
            ProviderEvent::Approved { provider, by, at }
        }
        ProviderCommand::Reject => {
            let by = prefecture(
                ctx,
                crate::clause!("P2(3)"),
                "only the prefecture rejects providers",
            )?;
            let provider = status_in(state, &[Applied], "reject")?;
            ProviderEvent::Rejected { provider, by, at }
        }
        ProviderCommand::Suspend => {
            let by = prefecture(
                ctx,
                crate::clause!("P2(3)"),
                "only the prefecture suspends providers",
            )?;
            let provider = status_in(state, &[Approved], "suspend")?;
            ProviderEvent::Suspended { provider, by, at }
        }
        ProviderCommand::Reinstate => {
            let by = prefecture(
                ctx,
                crate::clause!("P2(3)"),
                "only the prefecture reinstates providers",
            )?;
            let provider = status_in(state, &[Suspended], "reinstate")?;
            ProviderEvent::Reinstated { provider, by, at }
        }
        ProviderCommand::Revoke => {
            let by = prefecture(
                ctx,
                crate::clause!("P2(3)"),
                "only the prefecture revokes providers",
            )?;
            let provider = status_in(state, &[Approved, Suspended], "revoke")?;
            ProviderEvent::Revoked { provider, by, at }
        }
        ProviderCommand::Attest {
            kind,
            attested_on,
            valid_until,
        } => {
            let clause = match kind {
                AttestationKind::MembersTrained => crate::clause!("P4.11(1)"),
                AttestationKind::AntivirusCurrent => crate::clause!("P4.11(5)"),
            };
            let provider = status_in(state, &[Applied, Approved, Suspended], "attest for")?;
            // The responsible person attests over their own connection, or the
            // prefecture enters a paper attestation received with the application.
            match ctx.actor {
                Actor::Provider { provider: p, .. } if *p == provider => {
                    authenticate(ctx.actor, ctx.credential, at)?;
                }
                _ => {
                    with_role(
                        ctx,
                        enters_attestations,
                        clause,
                        "attestations come from the provider",
                    )?;
                }
            }
            ensure(
                attested_on < valid_until && *attested_on <= at,
                "provider.attestation_dates",
                clause,
                "an attestation is dated no later than today and expires after that date",
            )?;
            ProviderEvent::Attested {
                provider,
                kind: *kind,
                attestation: Attestation {
                    attested_on: *attested_on,
                    valid_until: *valid_until,
                },
                at,
            }
        }
        ProviderCommand::GiveGuidance { kind } => {
            let by = prefecture(
                ctx,
                crate::clause!("P4.13(2)"),
                "only the prefecture gives guidance or warnings",
            )?;
            let provider = status_in(state, &[Approved, Suspended], "give guidance to")?;
            ProviderEvent::GuidanceGiven {
                provider,
                kind: *kind,
                by,
                at,
            }
        }
    };
    Ok(vec![event])
}

pub fn evolve(mut state: ProviderState, event: &ProviderEvent) -> ProviderState {
    use ProviderStatus::*;
    match event {
        ProviderEvent::Applied {
            provider,
            responsible,
            connection,
            ..
        } => {
            state.id = Some(provider.clone());
            state.responsible = Some(responsible.clone());
            state.connection = Some(*connection);
            state.status = Applied;
        }
        ProviderEvent::Approved { .. } | ProviderEvent::Reinstated { .. } => {
            state.status = Approved
        }
        ProviderEvent::Rejected { .. } => state.status = Rejected,
        ProviderEvent::Suspended { .. } => state.status = Suspended,
        ProviderEvent::Revoked { .. } => state.status = Revoked,
        ProviderEvent::Attested {
            kind, attestation, ..
        } => {
            state.attestations.insert(*kind, *attestation);
        }
        ProviderEvent::GuidanceGiven { kind, at, .. } => state.guidance.push((*kind, *at)),
    }
    state
}
