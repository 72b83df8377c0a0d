//! Provider signing keys (P4.12(1)): the ed25519 public key a provider signs bus
//! requests with, registered against one of its connection credentials by the
//! prefecture or its office, the same people who issue the credential. The key
//! lives and dies with the credential: renewal keeps it, a loss report or
//! revocation makes every request signed with it fail (the credential's state is
//! read at request time), and a reissued credential needs its key registered anew.
//!
//! A small decider of its own in stream `bus-key-<credential>` (run through
//! `Platform::execute_uncached`) rather than new credential events: the read
//! models match credential events exhaustively, and a public key is not personal
//! data, so it needs no seal. Here because who may register is a rule; the
//! platform (`mebyo_platform::signing_keys`) runs it for the CLI and the server.

use crate::credential::{CredentialState, Holder};
use crate::staff::{Role, privileged};
use crate::{
    CredentialId, Ctx, Decider, DomainEvent, ProviderId, Refusal, StaffId, Timestamp,
    credential_valid,
};
use serde::{Deserialize, Serialize};

/// The stream of a credential's signing key.
/// Whether a holder of `role` registers a provider's signing key: those who
/// issue its connection information, the prefecture and its office (P4.12(1)).
pub fn registers(role: Role) -> bool {
    crate::credential::issues(role)
}

pub fn stream(credential: &CredentialId) -> String {
    format!("bus-key-{credential}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCommand {
    Register {
        credential: CredentialId,
        /// 32 bytes of an ed25519 public key, hex.
        public_key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KeyEvent {
    #[serde(rename = "bus.key_registered")]
    Registered {
        credential: CredentialId,
        provider: ProviderId,
        public_key: String,
        by: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for KeyEvent {
    fn event_type(&self) -> &'static str {
        "bus.key_registered"
    }
    fn person_related(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyState {
    pub credential: Option<CredentialId>,
    pub provider: Option<ProviderId>,
    pub public_key: Option<String>,
}

pub struct ProviderKey;

impl Decider for ProviderKey {
    type State = KeyState;
    type Command = KeyCommand;
    type Event = KeyEvent;

    /// `ctx.credential` carries the state of the credential the key is for (the
    /// acting staff member presents none of their own).
    fn decide(state: &KeyState, cmd: &KeyCommand, ctx: &Ctx) -> Result<Vec<KeyEvent>, Refusal> {
        let KeyCommand::Register {
            credential,
            public_key,
        } = cmd;
        let by = privileged(
            ctx,
            registers,
            crate::clause!("P4.12(1)"),
            "provider signing keys are registered by the prefecture or its office",
        )?;
        let c: &CredentialState = match ctx.credential {
            Some(c) if c.id.as_ref() == Some(credential) => c,
            _ => {
                return Err(Refusal::new(
                    "credential.unknown",
                    crate::clause!("P4.12(1)"),
                    "no such connection information",
                ));
            }
        };
        let Some(Holder::Provider { provider, .. }) = &c.holder else {
            return Err(Refusal::new(
                "bus.key_not_provider",
                crate::clause!("P4.12(1)"),
                "signing keys belong to providers' connection information",
            ));
        };
        if !credential_valid(c, ctx.now) {
            return Err(Refusal::new(
                "credential.not_active",
                crate::clause!("P4.12(1)"),
                "connection information is not valid; reissue it first",
            ));
        }
        if public_key.len() != 64 || !public_key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::new(
                "bus.key_invalid",
                crate::clause!("P4.12(1)"),
                "an ed25519 public key is 32 bytes, 64 hex digits",
            ));
        }
        if state.public_key.as_deref() == Some(public_key.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![KeyEvent::Registered {
            credential: credential.clone(),
            provider: provider.clone(),
            public_key: public_key.clone(),
            by,
            at: ctx.now,
        }])
    }

    fn evolve(mut state: KeyState, event: &KeyEvent) -> KeyState {
        let KeyEvent::Registered {
            credential,
            provider,
            public_key,
            ..
        } = event;
        state.credential = Some(credential.clone());
        state.provider = Some(provider.clone());
        state.public_key = Some(public_key.clone());
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::CredentialStatus;
    use crate::staff::StaffState;
    use crate::{Actor, Ctx};
    use crate::{Config, Duration};
    use std::collections::BTreeSet;

    fn config() -> Config {
        Config {
            consent_max: Duration::days(365),
            credential_renewal: Duration::days(365),
            business_administrator: StaffId::new("ba").unwrap(),
        }
    }

    fn staff(role: Role, trained_until: i64) -> StaffState {
        let mut s = StaffState {
            id: Some(StaffId::new("office-1").unwrap()),
            ..Default::default()
        };
        s.roles = BTreeSet::from([role]);
        s.training = Some(crate::staff::Training {
            completed_at: Timestamp(0),
            valid_until: Timestamp(trained_until),
        });
        s
    }

    fn cred(holder: Holder, status: CredentialStatus) -> CredentialState {
        CredentialState {
            id: Some(CredentialId::new("cred-1").unwrap()),
            holder: Some(holder),
            status,
            issued_at: Timestamp(0),
            expires_at: Timestamp(1000),
        }
    }

    fn provider_holder() -> Holder {
        Holder::Provider {
            provider: ProviderId::new("clinic").unwrap(),
            responsible: StaffId::new("lead").unwrap(),
        }
    }

    fn register() -> KeyCommand {
        KeyCommand::Register {
            credential: CredentialId::new("cred-1").unwrap(),
            public_key: "ab".repeat(32),
        }
    }

    #[test]
    fn p4_12_1_office_registers_a_key_for_a_valid_provider_credential() {
        let cfg = config();
        let actor = Actor::Staff {
            staff: StaffId::new("office-1").unwrap(),
        };
        let s = staff(Role::OperationsOffice, 10_000);
        let c = cred(provider_holder(), CredentialStatus::Active);
        let ctx = Ctx::new(Timestamp(10), &actor, &cfg)
            .staff(&s)
            .credential(&c);
        let ev = ProviderKey::decide(&KeyState::default(), &register(), &ctx).unwrap();
        assert_eq!(ev.len(), 1);
        let state = ProviderKey::fold(&ev);
        assert_eq!(
            ProviderKey::decide(&state, &register(), &ctx).unwrap(),
            vec![]
        );

        // Expired or revoked connection information gets no key.
        let ctx = Ctx::new(Timestamp(2000), &actor, &cfg)
            .staff(&s)
            .credential(&c);
        let r = ProviderKey::decide(&KeyState::default(), &register(), &ctx).unwrap_err();
        assert_eq!((r.code, r.clause), ("credential.not_active", "P4.12(1)"));
        // An individual's credential is not a provider's.
        let ind = cred(
            Holder::Individual {
                person: crate::PersonId::new("p1").unwrap(),
            },
            CredentialStatus::Active,
        );
        let ctx = Ctx::new(Timestamp(10), &actor, &cfg)
            .staff(&s)
            .credential(&ind);
        let r = ProviderKey::decide(&KeyState::default(), &register(), &ctx).unwrap_err();
        assert_eq!(r.code, "bus.key_not_provider");
    }

    #[test]
    fn p4_12_1_only_prefecture_or_office_with_current_training() {
        let cfg = config();
        let actor = Actor::Staff {
            staff: StaffId::new("office-1").unwrap(),
        };
        let c = cred(provider_holder(), CredentialStatus::Active);
        let auditor = staff(Role::Auditor, 10_000);
        let ctx = Ctx::new(Timestamp(10), &actor, &cfg)
            .staff(&auditor)
            .credential(&c);
        let r = ProviderKey::decide(&KeyState::default(), &register(), &ctx).unwrap_err();
        assert_eq!(r.clause, "P4.12(1)");
        let lapsed = staff(Role::Prefecture, 5);
        let ctx = Ctx::new(Timestamp(10), &actor, &cfg)
            .staff(&lapsed)
            .credential(&c);
        let r = ProviderKey::decide(&KeyState::default(), &register(), &ctx).unwrap_err();
        assert_eq!(r.clause, "P3.4");
        let provider_actor = Actor::Provider {
            provider: ProviderId::new("clinic").unwrap(),
            credential: CredentialId::new("cred-1").unwrap(),
        };
        let ctx = Ctx::new(Timestamp(10), &provider_actor, &cfg).credential(&c);
        assert!(ProviderKey::decide(&KeyState::default(), &register(), &ctx).is_err());
    }
}
