//! The access decision (P4.6(2)) and its audit event.

use crate::access::{Outcome, access_recorded};
use crate::person::{Person, PersonEvent};
use crate::provider::ConnectionClass::*;
use crate::testkit::*;
use crate::*;

fn request(actor: Actor, channel: Channel) -> AccessRequest {
    AccessRequest {
        actor,
        person: pid("p1"),
        categories: cats(&[Category::Vitals]),
        purpose: Purpose::Care,
        channel,
        period: Period {
            from: days(-300),
            to: days(-100),
        },
    }
}

fn p1(extra: &[PersonEvent]) -> PersonState {
    let mut h = registered("p1");
    h.push(represented_by("p1", "p2"));
    h.push(consent_granted("p1", "k1", "clinic"));
    h.extend_from_slice(extra);
    Person::fold(&h)
}

fn refused(d: AccessDecision) -> (&'static str, &'static str) {
    match d {
        AccessDecision::Refused(r) => {
            refusal_contract(&r);
            (r.code, r.clause)
        }
        g => panic!("granted: {g:?}"),
    }
}

#[test]
fn p4_6_2_an_individual_reads_their_own_or_a_represented_family_members() {
    let person = p1(&[]);
    for who in ["p1", "p2"] {
        let cred = credential("c", person_holder(who), Cred::Valid);
        let d = decide_access(
            &request(individual(who, "c"), Channel::App),
            &person,
            None,
            Some(&cred),
            T0,
        );
        assert_eq!(
            d,
            AccessDecision::Granted {
                consent: None,
                categories: cats(&[Category::Vitals]),
                medical_origin: true
            }
        );
    }
    let cred = credential("c", person_holder("p9"), Cred::Valid);
    let d = decide_access(
        &request(individual("p9", "c"), Channel::Portal),
        &person,
        None,
        Some(&cred),
        T0,
    );
    assert_eq!(refused(d), ("access.not_own", "P4.6(2)"));
    let cred = credential("c", person_holder("p1"), Cred::Lost);
    let d = decide_access(
        &request(individual("p1", "c"), Channel::Portal),
        &person,
        None,
        Some(&cred),
        T0,
    );
    assert_eq!(refused(d), ("credential.lost", "P4.12(2)"));
}

#[test]
fn p4_6_2_a_provider_reads_what_an_active_consent_covers() {
    let person = p1(&[]);
    let cred = credential("pc", provider_holder("clinic"), Cred::Valid);
    let read = |provider: &ProviderState, req: &AccessRequest, now| {
        decide_access(req, &person, Some(provider), Some(&cred), now)
    };
    let vpn = provider("clinic", ClosedIpVpn);
    let req = request(provider_actor("clinic", "pc"), Channel::ProviderGateway);
    assert_eq!(
        read(&vpn, &req, T0),
        AccessDecision::Granted {
            consent: Some(kid("k1")),
            categories: cats(&[Category::Vitals]),
            medical_origin: true
        }
    );
    // P4.5(3): over TLS, medical-institution records are withheld from the read.
    let tls = provider("clinic", TlsInternet);
    assert!(matches!(
        read(&tls, &req, T0),
        AccessDecision::Granted {
            medical_origin: false,
            ..
        }
    ));

    let mut other = req.clone();
    other.categories = cats(&[Category::Vitals, Category::Allergy]);
    assert_eq!(
        refused(read(&vpn, &other, T0)),
        ("consent.category", "P4.6(2)")
    );
    other = req.clone();
    other.purpose = Purpose::HealthGuidance;
    assert_eq!(
        refused(read(&vpn, &other, T0)),
        ("consent.purpose", "P4.6(2)")
    );
    other = req.clone();
    other.period.to = days(1);
    assert_eq!(
        refused(read(&vpn, &other, T0)),
        ("consent.period", "P4.6(2)")
    );
    // Expiry is evaluated at read time; no job flips it.
    let later = days(90);
    let fresh = credential::Credential::fold(&[issued("pc", provider_holder("clinic"), days(80))]);
    assert_eq!(
        refused(decide_access(
            &req,
            &person,
            Some(&vpn),
            Some(&fresh),
            later
        )),
        ("consent.expired", "P4.6(2)")
    );
    other = req.clone();
    other.channel = Channel::Portal;
    assert_eq!(
        refused(read(&vpn, &other, T0)),
        ("access.channel", "P4.5(3)")
    );
}

#[test]
fn p4_6_2_revocation_applies_to_the_next_read() {
    let person = p1(&[PersonEvent::ConsentRevoked {
        person: pid("p1"),
        consent: kid("k1"),
        by: pid("p1"),
        at: T0,
    }]);
    let cred = credential("pc", provider_holder("clinic"), Cred::Valid);
    let vpn = provider("clinic", ClosedIpVpn);
    let req = request(provider_actor("clinic", "pc"), Channel::ProviderGateway);
    assert!(decide_access(&req, &person, Some(&vpn), Some(&cred), days(-1)).is_granted());
    assert_eq!(
        refused(decide_access(&req, &person, Some(&vpn), Some(&cred), T0)),
        ("consent.revoked", "P4.6(2)")
    );
}

#[test]
fn p4_6_2_refusal_does_not_reveal_whether_the_person_or_data_exists() {
    let cred = credential("pc", provider_holder("other"), Cred::Valid);
    let other = provider("other", ClosedIpVpn);
    let req = AccessRequest {
        actor: provider_actor("other", "pc"),
        ..request(provider_actor("other", "pc"), Channel::ProviderGateway)
    };
    let withdrawn = p1(&[PersonEvent::Withdrawn {
        person: pid("p1"),
        at: days(-1),
    }]);
    let decisions: Vec<_> = [
        PersonState::default(),
        Person::fold(&registered("p1")),
        p1(&[]),
        withdrawn,
    ]
    .iter()
    .map(|p| decide_access(&req, p, Some(&other), Some(&cred), T0))
    .collect();
    assert!(decisions.windows(2).all(|w| w[0] == w[1]), "{decisions:?}");
    assert_eq!(refused(decisions[0].clone()), ("consent.none", "P4.6(2)"));
    // Another person's state never answers for the requested person.
    let mut req = req;
    req.person = pid("p5");
    let clinic_cred = credential("pc", provider_holder("clinic"), Cred::Valid);
    req.actor = provider_actor("clinic", "pc");
    let d = decide_access(
        &req,
        &p1(&[]),
        Some(&provider("clinic", ClosedIpVpn)),
        Some(&clinic_cred),
        T0,
    );
    assert_eq!(refused(d), ("consent.none", "P4.6(2)"));
}

#[test]
fn p4_6_2_staff_never_read_health_content() {
    let person = p1(&[]);
    // Whatever the role (the decision does not even look at it).
    let d = decide_access(
        &request(staff_actor("x"), Channel::Portal),
        &person,
        None,
        None,
        T0,
    );
    assert_eq!(refused(d), ("access.staff", "P4.6(2)"));
    for actor in [Actor::Applicant, Actor::System] {
        let d = decide_access(&request(actor, Channel::Portal), &person, None, None, T0);
        assert_eq!(refused(d), ("access.unauthenticated", "P4.6(2)"));
    }
}

#[test]
fn p4_6_2_every_access_and_refusal_is_recorded() {
    let person = p1(&[]);
    let cred = credential("pc", provider_holder("clinic"), Cred::Revoked);
    let req = request(provider_actor("clinic", "pc"), Channel::ProviderGateway);
    let d = decide_access(
        &req,
        &person,
        Some(&provider("clinic", ClosedIpVpn)),
        Some(&cred),
        T0,
    );
    let e = access_recorded(&req, &d, T0);
    event_contract(&e);
    let AccessEvent::AccessRecorded {
        outcome,
        refusal_code,
        refusal_clause,
        consent,
        purpose,
        ..
    } = &e;
    assert_eq!(*outcome, Outcome::Refused);
    assert_eq!(refusal_code.as_deref(), Some("credential.revoked"));
    assert_eq!(refusal_clause.as_deref(), Some("P4.13(3)"));
    assert_eq!((consent, *purpose), (&None, Purpose::Care));
    assert!(e.person_related());

    let cred = credential("pc", provider_holder("clinic"), Cred::Valid);
    let d = decide_access(
        &req,
        &person,
        Some(&provider("clinic", ClosedIpVpn)),
        Some(&cred),
        T0,
    );
    let e = access_recorded(&req, &d, T0);
    event_contract(&e);
    let AccessEvent::AccessRecorded {
        outcome,
        consent,
        refusal_code,
        ..
    } = e;
    assert_eq!(
        (outcome, consent, refusal_code),
        (Outcome::Granted, Some(kid("k1")), None)
    );
}

/// P4.6(2), P4.8(3): a read naming a never-registered id gets the same refusal as
/// a real person's and leaves no record; a registered person's refused read does.
#[test]
fn p4_6_2_a_made_up_id_is_refused_like_a_real_one_and_not_recorded() {
    let reader = credential("c2", person_holder("p2"), Cred::Valid);
    let req = request(individual("p2", "c2"), Channel::Portal);
    // p1 without p2 as a representative: a real person p2 may not read.
    let real = Person::fold(&registered("p1"));
    let on_real = decide_access(&req, &real, None, Some(&reader), T0);
    let on_made_up = decide_access(&req, &PersonState::default(), None, Some(&reader), T0);
    assert_eq!(on_real, on_made_up);
    assert_eq!(refused(on_real.clone()), ("access.not_own", "P4.6(2)"));
    assert!(crate::access::access_record(&req, &on_real, true, T0).is_some());
    assert!(crate::access::access_record(&req, &on_made_up, false, T0).is_none());
}
