//! Who issues a command or a read. Authentication happens upstream; the domain decides
//! what an authenticated actor may do, and re-checks the presented credential itself.

use crate::ids::{CredentialId, PersonId, ProviderId, StaffId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Not yet known to the system: self-service sign-up or a provider's application.
    Applicant,
    /// An individual user presenting their connection information.
    Individual {
        person: PersonId,
        credential: CredentialId,
    },
    /// A provider's responsible person presenting the provider's connection information.
    Provider {
        provider: ProviderId,
        credential: CredentialId,
    },
    /// Platform staff; what they may do follows from their roles.
    Staff { staff: StaffId },
    /// The platform acting on its own configuration.
    System,
}

/// Interface a read or write arrived through (recorded on every access, P4.5(1)(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Web portal for individuals (TLS).
    Portal,
    /// Mobile app for individuals (TLS).
    App,
    /// Provider gateway; its network class is the provider's connection class.
    ProviderGateway,
}

impl Channel {
    /// Individuals use TLS interfaces; providers come through their gateway (P4.5(3)).
    pub fn fits(self, actor: &Actor) -> bool {
        match actor {
            Actor::Individual { .. } => matches!(self, Channel::Portal | Channel::App),
            Actor::Provider { .. } => self == Channel::ProviderGateway,
            _ => true,
        }
    }
}
