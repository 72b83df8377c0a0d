//! Individuals: P2(1), P2(2), P3.2, P4.6(2) consents and representation, P4.9, P7, P8.

use crate::credential::{GuidanceKind, Holder};
use crate::person::{Person, PersonCommand as C, PersonEvent as E, PersonStatus, Registrar};
use crate::provider::ConnectionClass::*;
use crate::staff::Role;
use crate::testkit::*;
use crate::*;

/// p1 acting for themselves with a valid credential, provider `clinic` approved.
struct Fx {
    cfg: Config,
    actor: Actor,
    cred: CredentialState,
    clinic: ProviderState,
    policy: PolicyVersion,
}

impl Fx {
    fn new(actor: Actor, holder: Holder) -> Self {
        let credential = match &actor {
            Actor::Individual { credential, .. } => credential.as_str().to_string(),
            _ => "none".into(),
        };
        Self {
            cfg: config(),
            cred: credential_state(&credential, holder),
            actor,
            clinic: provider("clinic", ClosedIpVpn),
            policy: policy_v1(),
        }
    }

    fn me() -> Self {
        Self::new(individual("p1", "c1"), person_holder("p1"))
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(T0, &self.actor, &self.cfg)
            .credential(&self.cred)
            .provider(&self.clinic)
            .policy(&self.policy)
    }
}

fn credential_state(id: &str, holder: Holder) -> CredentialState {
    credential(id, holder, Cred::Valid)
}

fn grant() -> C {
    C::GrantConsent {
        consent: kid("k1"),
        provider: prid("clinic"),
        categories: cats(&[Category::Vitals]),
        purpose: Purpose::Care,
        period: year_2025(),
        expires_at: days(30),
    }
}

fn with(f: impl FnOnce(&mut C)) -> C {
    let mut c = grant();
    f(&mut c);
    c
}

#[test]
fn p2_1_self_service_registration_keeps_identity_in_the_vault() {
    let cfg = config();
    let ctx = Ctx::new(T0, &Actor::Applicant, &cfg);
    let index = BlindIndex::new("0f".repeat(32)).unwrap();
    let register = C::Register {
        person: pid("p1"),
        identity: VaultRef::new("v-9").unwrap(),
        email_index: Some(index.clone()),
        password: true,
    };
    let after = check::<Person>(
        &ctx,
        &[],
        register.clone(),
        Events(vec![E::Registered {
            person: pid("p1"),
            registrar: Registrar::SelfService,
            identity: VaultRef::new("v-9").unwrap(),
            email_index: Some(index),
            password: true,
            at: T0,
        }]),
    );
    assert_eq!(after.status, PersonStatus::Active);
    assert!(
        after.password,
        "the password file must hold this person (issue 19 §4)"
    );
    check::<Person>(
        &ctx,
        &registered("p1"),
        register,
        Refused("person.already_registered", "P2(1)"),
    );
}

#[test]
fn p3_2_operations_office_registers_on_the_persons_behalf() {
    let cfg = config();
    let (s, a) = (
        staff("office", Role::OperationsOffice, true),
        staff_actor("office"),
    );
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let register = C::Register {
        person: pid("p1"),
        identity: VaultRef::new("v-1").unwrap(),
        email_index: None,
        password: false,
    };
    let after = check::<Person>(&ctx, &[], register.clone(), Types(&["person.registered"]));
    assert_eq!(
        after.registrar,
        Some(Registrar::OperationsOffice {
            staff: sid("office")
        })
    );
    let (s, a) = (staff("aud", Role::Auditor, true), staff_actor("aud"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Person>(&ctx, &[], register, Refused("staff.role_required", "P3.2"));
}

#[test]
fn p8_accepts_only_the_version_in_force() {
    let fx = Fx::me();
    let given = &registered("p1")[..1];
    check::<Person>(
        &fx.ctx(),
        given,
        C::AcceptPolicy {
            policy: policy_v1().id,
        },
        Events(vec![E::PolicyAccepted {
            person: pid("p1"),
            policy: policy_v1().id,
            at: T0,
        }]),
    );
    check::<Person>(
        &fx.ctx(),
        given,
        C::AcceptPolicy {
            policy: PolicyId::new("v0").unwrap(),
        },
        Refused("policy.not_in_force", "P8"),
    );
    // Before accepting the version in force, no consent can be given.
    check::<Person>(
        &fx.ctx(),
        given,
        grant(),
        Refused("policy.not_accepted", "P8"),
    );
    let no_policy = Ctx {
        policy: None,
        ..fx.ctx()
    };
    check::<Person>(
        &no_policy,
        &registered("p1"),
        grant(),
        Refused("policy.none_in_force", "P7"),
    );
}

#[test]
fn p4_8_3_identity_update_says_only_that_the_vault_changed() {
    let fx = Fx::me();
    let after = check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        C::UpdateIdentity,
        Events(vec![E::IdentityUpdated {
            person: pid("p1"),
            revision: 1,
            at: T0,
        }]),
    );
    assert_eq!(after.identity_revision, 1);
}

#[test]
fn p4_6_2_consent_grant_names_provider_categories_purpose_period_expiry() {
    let fx = Fx::me();
    let after = check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        grant(),
        Events(vec![E::ConsentGranted {
            person: pid("p1"),
            consent: kid("k1"),
            provider: prid("clinic"),
            categories: cats(&[Category::Vitals]),
            purpose: Purpose::Care,
            period: year_2025(),
            expires_at: days(30),
            by: pid("p1"),
            at: T0,
        }]),
    );
    assert!(after.consents[&kid("k1")].active_at(T0).is_ok());
    assert_eq!(
        after.consents[&kid("k1")]
            .active_at(days(30))
            .unwrap_err()
            .code,
        "consent.expired"
    );
}

#[test]
fn p4_6_2_consent_grant_is_validated() {
    let fx = Fx::me();
    let given = registered("p1");
    let ctx = fx.ctx();
    let refused = |cmd, code, clause| check::<Person>(&ctx, &given, cmd, Refused(code, clause));
    refused(
        with(|c| {
            if let C::GrantConsent { expires_at, .. } = c {
                *expires_at = T0
            }
        }),
        "consent.expiry_past",
        "P4.6(2)",
    );
    refused(
        with(|c| {
            if let C::GrantConsent { expires_at, .. } = c {
                *expires_at = days(366)
            }
        }),
        "consent.expiry_too_far",
        "P4.6(2)",
    );
    refused(
        with(|c| {
            if let C::GrantConsent { categories, .. } = c {
                categories.clear()
            }
        }),
        "consent.no_categories",
        "P4.6(2)",
    );
    refused(
        with(|c| {
            if let C::GrantConsent { purpose, .. } = c {
                *purpose = Purpose::PersonalUse
            }
        }),
        "consent.purpose_invalid",
        "P4.11(3)",
    );
    refused(
        with(|c| {
            if let C::GrantConsent { period, .. } = c {
                period.to = period.from
            }
        }),
        "consent.period_invalid",
        "P4.6(2)",
    );
    refused(
        with(|c| {
            if let C::GrantConsent { provider, .. } = c {
                *provider = prid("unknown")
            }
        }),
        "provider.not_approved",
        "P2(3)",
    );
    let mut with_k1 = given.clone();
    with_k1.push(consent_granted("p1", "k1", "clinic"));
    check::<Person>(
        &ctx,
        &with_k1,
        grant(),
        Refused("consent.exists", "P4.6(2)"),
    );
}

#[test]
fn p4_6_2_only_the_person_or_a_representative_consents() {
    let other = Fx::new(individual("p9", "c9"), person_holder("p9"));
    check::<Person>(
        &other.ctx(),
        &registered("p1"),
        grant(),
        Refused("person.not_self", "P4.6(2)"),
    );
    let rep = Fx::new(individual("p2", "c2"), person_holder("p2"));
    let mut given = registered("p1");
    given.push(represented_by("p1", "p2"));
    let after = check::<Person>(
        &rep.ctx(),
        &given,
        grant(),
        Types(&["person.consent_granted"]),
    );
    assert_eq!(after.consents.len(), 1);
    let (s, a) = (
        staff("ba", Role::BusinessAdministrator, true),
        staff_actor("ba"),
    );
    let cfg = config();
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Person>(&ctx, &given, grant(), Refused("person.not_self", "P4.6(2)"));
}

#[test]
fn p4_12_commands_need_valid_connection_information() {
    for (cond, code, clause) in [
        (Cred::Expired, "credential.expired", "P4.12(1)"),
        (Cred::Lost, "credential.lost", "P4.12(2)"),
        (Cred::Revoked, "credential.revoked", "P4.13(3)"),
    ] {
        let mut fx = Fx::me();
        fx.cred = credential("c1", person_holder("p1"), cond);
        check::<Person>(&fx.ctx(), &registered("p1"), grant(), Refused(code, clause));
    }
    // Someone else's connection information is never accepted (P4.11(4)).
    let mut fx = Fx::me();
    fx.cred = credential("c1", person_holder("p2"), Cred::Valid);
    check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        grant(),
        Refused("credential.invalid", "P4.11(4)"),
    );
}

#[test]
fn p4_6_2_revocation_takes_effect_at_once() {
    let fx = Fx::me();
    let mut given = registered("p1");
    given.push(consent_granted("p1", "k1", "clinic"));
    let after = check::<Person>(
        &fx.ctx(),
        &given,
        C::RevokeConsent { consent: kid("k1") },
        Events(vec![E::ConsentRevoked {
            person: pid("p1"),
            consent: kid("k1"),
            by: pid("p1"),
            at: T0,
        }]),
    );
    assert_eq!(
        after.consents[&kid("k1")].active_at(T0).unwrap_err().code,
        "consent.revoked"
    );
    check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        C::RevokeConsent { consent: kid("k1") },
        Refused("consent.unknown", "P4.6(2)"),
    );
}

#[test]
fn p4_6_2_family_representation_granted_by_the_person_only() {
    let fx = Fx::me();
    let grant_rep = C::GrantRepresentation {
        representative: pid("p2"),
    };
    let after = check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        grant_rep.clone(),
        Events(vec![E::RepresentativeGranted {
            person: pid("p1"),
            representative: pid("p2"),
            at: T0,
        }]),
    );
    assert!(after.may_be_acted_for_by(&pid("p2")));
    check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        C::GrantRepresentation {
            representative: pid("p1"),
        },
        Refused("person.representative_self", "P4.6(2)"),
    );
    let mut given = registered("p1");
    given.push(represented_by("p1", "p2"));
    check::<Person>(
        &fx.ctx(),
        &given,
        grant_rep,
        Refused("person.representative_exists", "P4.6(2)"),
    );
    // A representative cannot appoint further representatives...
    let rep = Fx::new(individual("p2", "c2"), person_holder("p2"));
    check::<Person>(
        &rep.ctx(),
        &given,
        C::GrantRepresentation {
            representative: pid("p3"),
        },
        Refused("person.not_self", "P4.6(2)"),
    );
    // ...but may step down.
    let after = check::<Person>(
        &rep.ctx(),
        &given,
        C::RevokeRepresentation {
            representative: pid("p2"),
        },
        Types(&["person.representative_revoked"]),
    );
    assert!(!after.may_be_acted_for_by(&pid("p2")));
}

#[test]
fn p4_9_withdrawal_requests_erasure_and_ends_further_commands() {
    let fx = Fx::me();
    let after = check::<Person>(
        &fx.ctx(),
        &registered("p1"),
        C::Withdraw,
        Events(vec![
            E::Withdrawn {
                person: pid("p1"),
                at: T0,
            },
            E::ErasureRequested {
                person: pid("p1"),
                at: T0,
            },
        ]),
    );
    assert_eq!(after.status, PersonStatus::Withdrawn);
    let mut given = registered("p1");
    given.extend([
        E::Withdrawn {
            person: pid("p1"),
            at: T0,
        },
        E::ErasureRequested {
            person: pid("p1"),
            at: T0,
        },
    ]);
    for cmd in [
        grant(),
        C::UpdateIdentity,
        C::Withdraw,
        C::GrantRepresentation {
            representative: pid("p2"),
        },
    ] {
        check::<Person>(&fx.ctx(), &given, cmd, Refused("person.withdrawn", "P4.9"));
    }
    // The system operations administrator witnesses the crypto-erase.
    let cfg = config();
    let (s, a) = (
        staff("soa", Role::SystemOperationsAdministrator, true),
        staff_actor("soa"),
    );
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let erased = check::<Person>(
        &ctx,
        &given,
        C::ConfirmErasure,
        Events(vec![E::ErasureCompleted {
            person: pid("p1"),
            witness: sid("soa"),
            at: T0,
        }]),
    );
    assert_eq!(erased.status, PersonStatus::Erased);
    check::<Person>(
        &ctx,
        &registered("p1"),
        C::ConfirmErasure,
        Refused("person.not_withdrawn", "P4.9"),
    );
    let lapsed = staff("soa", Role::SystemOperationsAdministrator, false);
    let ctx = Ctx::new(T0, &a, &cfg).staff(&lapsed);
    check::<Person>(
        &ctx,
        &given,
        C::ConfirmErasure,
        Refused("staff.training_lapsed", "P3.4"),
    );
    // Representatives do not withdraw the person.
    let mut given = registered("p1");
    given.push(represented_by("p1", "p2"));
    let rep = Fx::new(individual("p2", "c2"), person_holder("p2"));
    check::<Person>(
        &rep.ctx(),
        &given,
        C::Withdraw,
        Refused("person.not_self", "P4.6(2)"),
    );
}

#[test]
fn p4_13_2_prefecture_gives_guidance_to_an_individual() {
    let cfg = config();
    let (s, a) = (staff("pref", Role::Prefecture, true), staff_actor("pref"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let after = check::<Person>(
        &ctx,
        &registered("p1"),
        C::GiveGuidance {
            kind: GuidanceKind::Guidance,
        },
        Events(vec![E::GuidanceGiven {
            person: pid("p1"),
            kind: GuidanceKind::Guidance,
            by: sid("pref"),
            at: T0,
        }]),
    );
    assert_eq!(after.guidance.len(), 1);
    check::<Person>(
        &ctx,
        &[],
        C::GiveGuidance {
            kind: GuidanceKind::Guidance,
        },
        Refused("person.unknown", "P2(1)"),
    );
}
