//! P2(3) provider lifecycle, P4.11 attestations, P4.13(2) guidance.

use crate::credential::GuidanceKind;
use crate::provider::{
    Attestation, AttestationKind::*, Basis, ConnectionClass::*, Provider, ProviderCommand as C,
    ProviderEvent, ProviderStatus, provider_check,
};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;

fn applied() -> Vec<ProviderEvent> {
    provider_history("clinic", ClosedIpVpn)[..3].to_vec()
}

fn pref() -> StaffState {
    staff("pref", Role::Prefecture, true)
}

#[test]
fn p2_3_provider_applies_then_the_prefecture_approves() {
    let cfg = config();
    let ctx = Ctx::new(T0, &Actor::Applicant, &cfg);
    let apply = C::Apply {
        provider: prid("clinic"),
        responsible: sid("clinic-lead"),
        connection: IpsecIkeVpn,
        basis: Basis::Certified,
    };
    let after = check::<Provider>(&ctx, &[], apply.clone(), Types(&["provider.applied"]));
    assert!(
        !provider_can_receive(&after, T0),
        "nothing reaches a provider before approval"
    );
    check::<Provider>(
        &ctx,
        &applied(),
        apply,
        Refused("provider.already_applied", "P2(3)"),
    );

    let (s, a) = (pref(), staff_actor("pref"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let approved = check::<Provider>(
        &ctx,
        &applied(),
        C::Approve,
        Events(vec![ProviderEvent::Approved {
            provider: prid("clinic"),
            by: sid("pref"),
            at: T0,
        }]),
    );
    assert!(provider_can_receive(&approved, T0));
    check::<Provider>(&ctx, &applied(), C::Reject, Types(&["provider.rejected"]));
    check::<Provider>(
        &ctx,
        &[],
        C::Approve,
        Refused("provider.wrong_status", "P2(3)"),
    );
}

#[test]
fn p2_3_approval_needs_the_prefecture_role_and_current_training() {
    let cfg = config();
    let (s, a) = (
        staff("office", Role::OperationsOffice, true),
        staff_actor("office"),
    );
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Provider>(
        &ctx,
        &applied(),
        C::Approve,
        Refused("staff.role_required", "P2(3)"),
    );
    let (s, a) = (staff("pref", Role::Prefecture, false), staff_actor("pref"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Provider>(
        &ctx,
        &applied(),
        C::Approve,
        Refused("staff.training_lapsed", "P3.4"),
    );
    let individual = individual("p1", "c1");
    let ctx = Ctx::new(T0, &individual, &cfg);
    check::<Provider>(
        &ctx,
        &applied(),
        C::Approve,
        Refused("staff.role_required", "P2(3)"),
    );
}

#[test]
fn p2_3_suspend_reinstate_revoke() {
    let cfg = config();
    let (s, a) = (pref(), staff_actor("pref"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let approved = provider_history("clinic", ClosedIpVpn);
    let suspended = check::<Provider>(&ctx, &approved, C::Suspend, Types(&["provider.suspended"]));
    assert_eq!(
        provider_check(&suspended, T0).unwrap_err().code,
        "provider.suspended"
    );
    let mut history = approved.clone();
    history.push(ProviderEvent::Suspended {
        provider: prid("clinic"),
        by: sid("pref"),
        at: T0,
    });
    check::<Provider>(
        &ctx,
        &history,
        C::Suspend,
        Refused("provider.wrong_status", "P2(3)"),
    );
    let back = check::<Provider>(
        &ctx,
        &history,
        C::Reinstate,
        Types(&["provider.reinstated"]),
    );
    assert!(provider_can_receive(&back, T0));
    let revoked = check::<Provider>(&ctx, &history, C::Revoke, Types(&["provider.revoked"]));
    assert_eq!(revoked.status, ProviderStatus::Revoked);
    assert!(!provider_can_receive(&revoked, T0));
    check::<Provider>(
        &ctx,
        &approved,
        C::Reinstate,
        Refused("provider.wrong_status", "P2(3)"),
    );
}

#[test]
fn p4_11_attestations_are_dated_and_lapse() {
    let cfg = config();
    let p = provider("clinic", ClosedIpVpn);
    assert!(provider_can_receive(&p, T0));
    assert_eq!(
        provider_check(&p, days(335)).unwrap_err().clause,
        "P4.11(1)"
    );
    let mut no_av = p.clone();
    no_av.attestations.remove(&AntivirusCurrent);
    assert_eq!(provider_check(&no_av, T0).unwrap_err().clause, "P4.11(5)");

    // The provider attests over its own valid connection.
    let cred = credential("pc1", provider_holder("clinic"), Cred::Valid);
    let actor = provider_actor("clinic", "pc1");
    let ctx = Ctx::new(T0, &actor, &cfg).credential(&cred);
    let attest = C::Attest {
        kind: AntivirusCurrent,
        attested_on: T0,
        valid_until: days(180),
    };
    check::<Provider>(
        &ctx,
        &provider_history("clinic", ClosedIpVpn),
        attest.clone(),
        Events(vec![ProviderEvent::Attested {
            provider: prid("clinic"),
            kind: AntivirusCurrent,
            attestation: Attestation {
                attested_on: T0,
                valid_until: days(180),
            },
            at: T0,
        }]),
    );
    check::<Provider>(
        &ctx,
        &provider_history("clinic", ClosedIpVpn),
        C::Attest {
            kind: MembersTrained,
            attested_on: days(1),
            valid_until: days(180),
        },
        Refused("provider.attestation_dates", "P4.11(1)"),
    );
    let lost = credential("pc1", provider_holder("clinic"), Cred::Lost);
    let ctx = Ctx::new(T0, &actor, &cfg).credential(&lost);
    check::<Provider>(
        &ctx,
        &provider_history("clinic", ClosedIpVpn),
        attest.clone(),
        Refused("credential.lost", "P4.12(2)"),
    );
    // Another provider cannot attest for this one.
    let other = provider_actor("other", "pc1");
    let ctx = Ctx::new(T0, &other, &cfg).credential(&cred);
    check::<Provider>(
        &ctx,
        &provider_history("clinic", ClosedIpVpn),
        attest,
        Refused("staff.role_required", "P4.11(5)"),
    );
}

#[test]
fn p4_13_2_guidance_and_warnings_are_events() {
    let cfg = config();
    let (s, a) = (pref(), staff_actor("pref"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    let after = check::<Provider>(
        &ctx,
        &provider_history("clinic", TlsInternet),
        C::GiveGuidance {
            kind: GuidanceKind::Warning,
        },
        Events(vec![ProviderEvent::GuidanceGiven {
            provider: prid("clinic"),
            kind: GuidanceKind::Warning,
            by: sid("pref"),
            at: T0,
        }]),
    );
    assert_eq!(after.guidance, vec![(GuidanceKind::Warning, T0)]);
}

#[test]
fn p2_3_paper_applications_only_through_the_office_or_prefecture() {
    let cfg = config();
    let apply = C::Apply {
        provider: prid("clinic"),
        responsible: sid("clinic-lead"),
        connection: ClosedIpVpn,
        basis: Basis::Commissioned,
    };
    let (s, a) = (
        staff("office", Role::OperationsOffice, false),
        staff_actor("office"),
    );
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Provider>(&ctx, &[], apply.clone(), Types(&["provider.applied"]));
    let (s, a) = (staff("aud", Role::Auditor, true), staff_actor("aud"));
    let ctx = Ctx::new(T0, &a, &cfg).staff(&s);
    check::<Provider>(
        &ctx,
        &[],
        apply.clone(),
        Refused("staff.role_required", "P2(3)"),
    );
    let individual = individual("p1", "c1");
    let ctx = Ctx::new(T0, &individual, &cfg);
    check::<Provider>(&ctx, &[], apply, Refused("staff.role_required", "P2(3)"));
}
