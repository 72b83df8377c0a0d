//! Authorization matrix (P4.6(2)): every actor role × action × consent state ×
//! credential state × provider state. No unauthorized read or write is ever granted,
//! every authorized one is, and every refusal cites a known clause.

use crate::person::{Person, PersonEvent};
use crate::provider::{ConnectionClass::*, ProviderEvent};
use crate::records::{Origin, RecordCommand, RecordState, Submission};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Myself,
    Representative,
    Stranger,
    Provider,
    Staff(Role),
    Applicant,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ConsentState {
    None,
    Active,
    Revoked,
    Expired,
    WrongCategory,
    WrongPurpose,
    OutOfPeriod,
    OtherProvider,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ProviderSt {
    ApprovedVpn,
    ApprovedTls,
    Suspended,
    Applied,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CredSt {
    Is(Cred),
    /// Someone else's connection information (P4.11(4)).
    Foreign,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Read,
    WriteSelfEntered,
    WriteMedical,
}

fn person(consent: ConsentState) -> PersonState {
    let mut h = registered("p1");
    h.push(represented_by("p1", "p2"));
    let base = consent_granted("p1", "k1", "clinic");
    let PersonEvent::ConsentGranted {
        person,
        consent: id,
        provider,
        categories,
        purpose,
        period,
        expires_at,
        by,
        at,
    } = base.clone()
    else {
        unreachable!()
    };
    let mk = |provider, categories, purpose, period, expires_at| PersonEvent::ConsentGranted {
        person: person.clone(),
        consent: id.clone(),
        provider,
        categories,
        purpose,
        period,
        expires_at,
        by: by.clone(),
        at,
    };
    match consent {
        ConsentState::None => {}
        ConsentState::Active => h.push(base),
        ConsentState::Revoked => {
            h.push(base);
            h.push(PersonEvent::ConsentRevoked {
                person: pid("p1"),
                consent: kid("k1"),
                by: pid("p1"),
                at: days(-1),
            });
        }
        ConsentState::Expired => h.push(mk(provider, categories, purpose, period, days(-1))),
        ConsentState::WrongCategory => h.push(mk(
            provider,
            cats(&[Category::Allergy]),
            purpose,
            period,
            expires_at,
        )),
        ConsentState::WrongPurpose => h.push(mk(
            provider,
            categories,
            Purpose::HealthGuidance,
            period,
            expires_at,
        )),
        ConsentState::OutOfPeriod => h.push(mk(
            provider,
            categories,
            purpose,
            Period {
                from: days(-730),
                to: days(-365),
            },
            expires_at,
        )),
        ConsentState::OtherProvider => {
            h.push(mk(prid("other"), categories, purpose, period, expires_at))
        }
    }
    Person::fold(&h)
}

fn provider_state(st: ProviderSt) -> ProviderState {
    let mut h = provider_history(
        "clinic",
        if st == ProviderSt::ApprovedTls {
            TlsInternet
        } else {
            ClosedIpVpn
        },
    );
    match st {
        ProviderSt::ApprovedVpn | ProviderSt::ApprovedTls => {}
        ProviderSt::Suspended => h.push(ProviderEvent::Suspended {
            provider: prid("clinic"),
            by: sid("pref"),
            at: days(-1),
        }),
        ProviderSt::Applied => {
            h.pop();
        }
    }
    provider::Provider::fold(&h)
}

fn actor(who: Who) -> Actor {
    match who {
        Who::Myself => individual("p1", "cx"),
        Who::Representative => individual("p2", "cx"),
        Who::Stranger => individual("p9", "cx"),
        Who::Provider => provider_actor("clinic", "cx"),
        Who::Staff(_) => staff_actor("s"),
        Who::Applicant => Actor::Applicant,
        Who::System => Actor::System,
    }
}

fn credential_for(actor: &Actor, st: CredSt) -> CredentialState {
    let own = match actor {
        Actor::Individual { person, .. } => credential::Holder::Individual {
            person: person.clone(),
        },
        Actor::Provider { provider, .. } => provider_holder(provider.as_str()),
        _ => person_holder("nobody"),
    };
    match st {
        CredSt::Is(c) => credential("cx", own, c),
        CredSt::Foreign => credential("cx", person_holder("p7"), Cred::Valid),
    }
}

/// The policy, stated independently of the deciders.
fn authorized(
    who: Who,
    action: Action,
    consent: ConsentState,
    cred: CredSt,
    prov: ProviderSt,
) -> bool {
    let cred_ok = cred == CredSt::Is(Cred::Valid);
    let individual_side = matches!(who, Who::Myself | Who::Representative);
    let approved = matches!(prov, ProviderSt::ApprovedVpn | ProviderSt::ApprovedTls);
    match action {
        Action::Read => {
            cred_ok
                && (individual_side
                    || (who == Who::Provider && approved && consent == ConsentState::Active))
        }
        Action::WriteSelfEntered => cred_ok && individual_side,
        // Delivery needs consent by category and period; purpose is stated on reads.
        Action::WriteMedical => {
            cred_ok
                && who == Who::Provider
                && prov == ProviderSt::ApprovedVpn
                && matches!(consent, ConsentState::Active | ConsentState::WrongPurpose)
        }
    }
}

#[test]
fn p4_6_2_authorization_matrix() {
    let cfg = config();
    let mut whos = vec![
        Who::Myself,
        Who::Representative,
        Who::Stranger,
        Who::Provider,
        Who::Applicant,
        Who::System,
    ];
    whos.extend(Role::ALL.map(Who::Staff));
    let consents = [
        ConsentState::None,
        ConsentState::Active,
        ConsentState::Revoked,
        ConsentState::Expired,
        ConsentState::WrongCategory,
        ConsentState::WrongPurpose,
        ConsentState::OutOfPeriod,
        ConsentState::OtherProvider,
    ];
    let creds = [
        CredSt::Is(Cred::Valid),
        CredSt::Is(Cred::Expired),
        CredSt::Is(Cred::Revoked),
        CredSt::Is(Cred::Lost),
        CredSt::Foreign,
    ];
    let provs = [
        ProviderSt::ApprovedVpn,
        ProviderSt::ApprovedTls,
        ProviderSt::Suspended,
        ProviderSt::Applied,
    ];
    let (mut cases, mut granted) = (0, 0);
    for &who in &whos {
        let actor = actor(who);
        let staff_state = match who {
            Who::Staff(role) => staff("s", role, true),
            _ => StaffState::default(),
        };
        for consent in consents {
            let person = person(consent);
            for cred in creds {
                let credential = credential_for(&actor, cred);
                for prov in provs {
                    let provider = provider_state(prov);
                    for action in [Action::Read, Action::WriteSelfEntered, Action::WriteMedical] {
                        let result = match action {
                            Action::Read => {
                                let channel = if who == Who::Provider {
                                    Channel::ProviderGateway
                                } else {
                                    Channel::Portal
                                };
                                let req = AccessRequest {
                                    actor: actor.clone(),
                                    person: pid("p1"),
                                    categories: cats(&[Category::Vitals]),
                                    purpose: Purpose::Care,
                                    channel,
                                    period: Period {
                                        from: days(-300),
                                        to: days(-100),
                                    },
                                };
                                match decide_access(
                                    &req,
                                    &person,
                                    Some(&provider),
                                    Some(&credential),
                                    T0,
                                ) {
                                    AccessDecision::Granted { .. } => Ok(()),
                                    AccessDecision::Refused(r) => Err(r),
                                }
                            }
                            Action::WriteSelfEntered | Action::WriteMedical => {
                                let origin = if action == Action::WriteMedical {
                                    Origin::MedicalInstitution
                                } else {
                                    Origin::SelfEntered
                                };
                                let cmd = RecordCommand::Submit(Submission {
                                    record: rid("r1"),
                                    category: Category::Vitals,
                                    effective_at: days(-200),
                                    resource: super::records::weight("p1", 60.0),
                                    origin,
                                    created_by: None,
                                    original_identifier: Some("urn:oid:1.2|x".into()),
                                });
                                let ctx = Ctx::new(T0, &actor, &cfg)
                                    .staff(&staff_state)
                                    .credential(&credential)
                                    .provider(&provider)
                                    .person(&person);
                                records::decide(&RecordState::default(), &cmd, &ctx).map(drop)
                            }
                        };
                        let want = authorized(who, action, consent, cred, prov);
                        cases += 1;
                        match result {
                            Ok(()) => {
                                assert!(
                                    want,
                                    "UNAUTHORIZED {action:?} granted to {who:?} / {consent:?} / {cred:?} / {prov:?}"
                                );
                                granted += 1;
                            }
                            Err(r) => {
                                refusal_contract(&r);
                                assert!(
                                    !want,
                                    "{action:?} by {who:?} / {consent:?} / {cred:?} / {prov:?} wrongly refused: {r}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, whos.len() * 8 * 5 * 4 * 3);
    assert!(granted > 0);
}
