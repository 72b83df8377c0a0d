//! P4.12 renewal and loss, P4.13 revocation.

use crate::credential::{
    Credential, CredentialCommand as C, CredentialEvent, GuidanceKind, Holder, RevocationReason::*,
};
use crate::person::{Person, PersonEvent};
use crate::provider::{ConnectionClass::*, ProviderEvent};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;

fn issue(holder: Holder) -> C {
    C::Issue {
        credential: cid("c1"),
        holder,
        replaces: None,
    }
}

fn as_pref<'a>(s: &'a StaffState, a: &'a Actor, cfg: &'a Config) -> Ctx<'a> {
    Ctx::new(T0, a, cfg).staff(s)
}

#[test]
fn p4_12_1_issued_to_the_responsible_person_of_an_approved_provider() {
    let (cfg, s, a) = (
        config(),
        staff("pref", Role::Prefecture, true),
        staff_actor("pref"),
    );
    let p = provider("clinic", ClosedIpVpn);
    let ctx = as_pref(&s, &a, &cfg).provider(&p);
    let after = check::<Credential>(
        &ctx,
        &[],
        issue(provider_holder("clinic")),
        Events(vec![CredentialEvent::Issued {
            credential: cid("c1"),
            holder: provider_holder("clinic"),
            replaces: None,
            expires_at: T0 + Duration::days(90),
            by: sid("pref"),
            at: T0,
        }]),
    );
    assert!(credential_valid(&after, days(89)));
    assert!(
        !credential_valid(&after, days(90)),
        "expires after the renewal interval"
    );
    let wrong = Holder::Provider {
        provider: prid("clinic"),
        responsible: sid("someone"),
    };
    check::<Credential>(
        &ctx,
        &[],
        issue(wrong),
        Refused("credential.not_responsible", "P4.12(1)"),
    );
    // Nothing reaches a provider before approval.
    let applied = provider::Provider::fold(&provider_history("clinic", ClosedIpVpn)[..3]);
    let ctx = as_pref(&s, &a, &cfg).provider(&applied);
    check::<Credential>(
        &ctx,
        &[],
        issue(provider_holder("clinic")),
        Refused("provider.not_approved", "P2(3)"),
    );
}

#[test]
fn p4_12_1_issued_to_an_active_individual() {
    let (cfg, s, a) = (
        config(),
        staff("office", Role::OperationsOffice, true),
        staff_actor("office"),
    );
    let person = Person::fold(&registered("p1"));
    let ctx = as_pref(&s, &a, &cfg).person(&person);
    check::<Credential>(
        &ctx,
        &[],
        issue(person_holder("p1")),
        Types(&["credential.issued"]),
    );
    check::<Credential>(
        &ctx,
        &[],
        issue(person_holder("p2")),
        Refused("credential.holder_inactive", "P2(2)"),
    );
}

#[test]
fn p4_12_1_renewal_extends_by_the_interval() {
    let cfg = config();
    let given = [issued("c1", person_holder("p1"), days(-10))];
    let actor = individual("p1", "c1");
    let ctx = Ctx::new(T0, &actor, &cfg);
    let after = check::<Credential>(
        &ctx,
        &given,
        C::Renew,
        Events(vec![CredentialEvent::Renewed {
            credential: cid("c1"),
            expires_at: days(90),
            at: T0,
        }]),
    );
    assert!(credential_valid(&after, days(89)));
    let late = Ctx {
        now: days(75),
        ..ctx
    };
    check::<Credential>(&late, &given, C::Renew, Types(&["credential.renewed"]));
    let expired = Ctx {
        now: days(80),
        ..ctx
    };
    check::<Credential>(
        &expired,
        &given,
        C::Renew,
        Refused("credential.expired", "P4.12(1)"),
    );
}

#[test]
fn p4_12_2_loss_report_revokes_at_once_and_allows_reissue() {
    let cfg = config();
    let given = [issued("c1", person_holder("p1"), days(-10))];
    let actor = individual("p1", "c-other");
    let ctx = Ctx::new(T0, &actor, &cfg);
    let lost = check::<Credential>(
        &ctx,
        &given,
        C::ReportLoss,
        Events(vec![CredentialEvent::LossReported {
            credential: cid("c1"),
            at: T0,
        }]),
    );
    assert!(
        !credential_valid(&lost, T0),
        "invalid from the instant of the report"
    );
    let mut history = given.to_vec();
    history.push(CredentialEvent::LossReported {
        credential: cid("c1"),
        at: T0,
    });
    check::<Credential>(
        &ctx,
        &history,
        C::ReportLoss,
        Refused("credential.not_active", "P4.12(2)"),
    );
    // A stranger cannot report someone else's credential lost.
    let stranger = individual("p9", "c9");
    let ctx = Ctx::new(T0, &stranger, &cfg);
    check::<Credential>(
        &ctx,
        &given,
        C::ReportLoss,
        Refused("staff.role_required", "P4.12(2)"),
    );

    // Reissue names the lost one.
    let (s, a) = (
        staff("office", Role::OperationsOffice, true),
        staff_actor("office"),
    );
    let person = Person::fold(&registered("p1"));
    let ctx = Ctx::new(T0, &a, &cfg)
        .staff(&s)
        .person(&person)
        .replaced(&lost);
    let reissue = C::Issue {
        credential: cid("c2"),
        holder: person_holder("p1"),
        replaces: Some(cid("c1")),
    };
    check::<Credential>(&ctx, &[], reissue.clone(), Types(&["credential.issued"]));
    let valid = Credential::fold(&given);
    let ctx = Ctx {
        replaced: Some(&valid),
        ..ctx
    };
    check::<Credential>(
        &ctx,
        &[],
        reissue.clone(),
        Refused("credential.reissue_still_valid", "P4.12(2)"),
    );
    let revoked = credential("c1", person_holder("p1"), Cred::Revoked);
    let ctx = Ctx {
        replaced: Some(&revoked),
        ..ctx
    };
    check::<Credential>(
        &ctx,
        &[],
        reissue,
        Refused("credential.reissue_revoked", "P4.13(3)"),
    );
}

#[test]
fn p4_13_revocation_by_the_prefecture_with_a_reason() {
    let (cfg, s, a) = (
        config(),
        staff("pref", Role::Prefecture, true),
        staff_actor("pref"),
    );
    let given = [issued("c1", provider_holder("clinic"), days(-10))];
    let ctx = as_pref(&s, &a, &cfg);
    for (reason, _) in [(BreachOfLaw, "P4.13(1)"), (JudgedRisk, "P4.13(3)")] {
        let after = check::<Credential>(
            &ctx,
            &given,
            C::Revoke { reason },
            Events(vec![CredentialEvent::Revoked {
                credential: cid("c1"),
                reason,
                by: sid("pref"),
                at: T0,
            }]),
        );
        assert!(!credential_valid(&after, T0), "takes effect at once");
    }
    let (o, oa) = (
        staff("office", Role::OperationsOffice, true),
        staff_actor("office"),
    );
    let ctx = Ctx::new(T0, &oa, &cfg).staff(&o);
    check::<Credential>(
        &ctx,
        &given,
        C::Revoke {
            reason: BreachOfLaw,
        },
        Refused("staff.role_required", "P4.13(1)"),
    );
}

#[test]
fn p4_13_2_improper_handling_needs_earlier_guidance_or_warning() {
    let (cfg, s, a) = (
        config(),
        staff("pref", Role::Prefecture, true),
        staff_actor("pref"),
    );
    let given = [issued("c1", provider_holder("clinic"), days(-10))];
    let revoke = C::Revoke {
        reason: ImproperHandlingUncorrected,
    };
    let plain = provider("clinic", ClosedIpVpn);
    let ctx = as_pref(&s, &a, &cfg).provider(&plain);
    check::<Credential>(
        &ctx,
        &given,
        revoke.clone(),
        Refused("credential.no_prior_guidance", "P4.13(2)"),
    );
    let mut history = provider_history("clinic", ClosedIpVpn);
    history.push(ProviderEvent::GuidanceGiven {
        provider: prid("clinic"),
        kind: GuidanceKind::Guidance,
        by: sid("pref"),
        at: days(-5),
    });
    let guided = provider::Provider::fold(&history);
    let ctx = as_pref(&s, &a, &cfg).provider(&guided);
    check::<Credential>(&ctx, &given, revoke.clone(), Types(&["credential.revoked"]));
    // Guidance given to another provider does not count.
    let other = provider::Provider::fold(
        &history
            .iter()
            .cloned()
            .map(|e| match e {
                ProviderEvent::Applied {
                    connection,
                    basis,
                    at,
                    ..
                } => ProviderEvent::Applied {
                    provider: prid("other"),
                    responsible: sid("x"),
                    connection,
                    basis,
                    at,
                },
                e => e,
            })
            .collect::<Vec<_>>(),
    );
    let ctx = as_pref(&s, &a, &cfg).provider(&other);
    check::<Credential>(
        &ctx,
        &given,
        revoke.clone(),
        Refused("credential.no_prior_guidance", "P4.13(2)"),
    );

    // An individual's warning sits in their own stream.
    let given = [issued("c1", person_holder("p1"), days(-10))];
    let mut person = registered("p1");
    person.push(PersonEvent::GuidanceGiven {
        person: pid("p1"),
        kind: GuidanceKind::Warning,
        by: sid("pref"),
        at: days(-3),
    });
    let warned = Person::fold(&person);
    let ctx = as_pref(&s, &a, &cfg).person(&warned);
    check::<Credential>(&ctx, &given, revoke, Types(&["credential.revoked"]));
}

#[test]
fn p4_12_credential_validity_is_evaluated_at_now() {
    for cond in Cred::ALL {
        let c = credential("c1", person_holder("p1"), cond);
        assert_eq!(credential_valid(&c, T0), cond == Cred::Valid, "{cond:?}");
    }
    let c = credential("c1", person_holder("p1"), Cred::Lost);
    assert_eq!(
        c.expires_at,
        days(-1),
        "validity ends at the instant of the loss report"
    );
}
