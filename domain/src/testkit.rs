//! Given/when/then for every decider, plus the fixtures the scenarios share.

use crate::credential::{CredentialEvent, Holder, RevocationReason};
use crate::person::{PersonEvent, Registrar};
use crate::provider::{Attestation, AttestationKind, Basis, ConnectionClass, ProviderEvent};
use crate::refusal::KNOWN_CLAUSES;
use crate::staff::{StaffEvent, Training};
use crate::*;

pub const T0: Timestamp = Timestamp(1_767_225_600_000_000); // 2026-01-01T00:00Z

pub fn days(n: i64) -> Timestamp {
    T0 + Duration::days(n)
}

/// What a scenario expects.
#[derive(Debug)]
pub enum Expect<E> {
    /// Exactly these events.
    Events(Vec<E>),
    /// Events of these types, in order.
    Types(&'static [&'static str]),
    /// Refused with this code, citing this clause.
    Refused(&'static str, &'static str),
}

pub use Expect::{Events, Refused, Types};

/// Given the stream's history, when the command is decided in `ctx`, then `expect`.
/// Every emitted event also passes the event contract; returns the resulting state.
pub fn check<D: Decider>(
    ctx: &Ctx,
    given: &[D::Event],
    when: D::Command,
    then: Expect<D::Event>,
) -> D::State {
    let state = D::fold(given);
    let result = D::decide(&state, &when, ctx);
    match (result, then) {
        (Ok(events), Events(want)) => {
            assert_eq!(events, want, "when {when:?}");
            accept::<D>(state, &events)
        }
        (Ok(events), Types(want)) => {
            let got: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
            assert_eq!(got, want, "when {when:?}");
            accept::<D>(state, &events)
        }
        (Err(r), Refused(code, clause)) => {
            assert_eq!((r.code, r.clause), (code, clause), "when {when:?}: {r}");
            refusal_contract(&r);
            state
        }
        (got, want) => panic!("when {when:?}\n  expected {want:?}\n  got {got:?}"),
    }
}

fn accept<D: Decider>(state: D::State, events: &[D::Event]) -> D::State {
    events.iter().for_each(event_contract);
    events.iter().fold(state, D::evolve)
}

/// Every refusal cites a known clause and shows it when displayed.
pub fn refusal_contract(r: &Refusal) {
    assert!(KNOWN_CLAUSES.contains(&r.clause), "unknown clause in {r:?}");
    assert!(r.to_string().contains(r.clause), "{r} hides its clause");
}

/// The serde tag is the stable type name, payloads round-trip, and no identity field
/// ever appears in an event (P4.8(3)).
pub fn event_contract<E: DomainEvent>(e: &E) {
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["type"], e.event_type(), "{e:?}");
    assert_eq!(&serde_json::from_value::<E>(json.clone()).unwrap(), e);
    assert_eq!(e.schema_version(), 1);
    let text = json.to_string();
    for field in [
        "\"name\"",
        "\"email\"",
        "\"address\"",
        "\"phone\"",
        "\"birth",
        "\"display\"",
    ] {
        assert!(!text.contains(field), "{field} in {text}");
    }
}

pub fn config() -> Config {
    Config {
        consent_max: Duration::days(365),
        credential_renewal: Duration::days(90),
        business_administrator: sid("ba"),
    }
}

pub fn pid(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}
pub fn prid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}
pub fn sid(s: &str) -> StaffId {
    StaffId::new(s).unwrap()
}
pub fn cid(s: &str) -> CredentialId {
    CredentialId::new(s).unwrap()
}
pub fn kid(s: &str) -> ConsentId {
    ConsentId::new(s).unwrap()
}
pub fn rid(s: &str) -> RecordId {
    RecordId::new(s).unwrap()
}

pub fn individual(person: &str, credential: &str) -> Actor {
    Actor::Individual {
        person: pid(person),
        credential: cid(credential),
    }
}
pub fn provider_actor(provider: &str, credential: &str) -> Actor {
    Actor::Provider {
        provider: prid(provider),
        credential: cid(credential),
    }
}
pub fn staff_actor(staff: &str) -> Actor {
    Actor::Staff { staff: sid(staff) }
}

// ---- staff ----

pub fn appointed(staff: &str, role: Role) -> StaffEvent {
    StaffEvent::Appointed {
        staff: sid(staff),
        role,
        by: None,
        at: days(-400),
    }
}

pub fn trained(staff: &str, from: Timestamp, until: Timestamp) -> StaffEvent {
    StaffEvent::TrainingRecorded {
        staff: sid(staff),
        training: Training {
            completed_at: from,
            valid_until: until,
        },
        by: sid("om"),
        at: from,
    }
}

/// A staff member holding `role`, trained (current at T0) or not.
pub fn staff(id: &str, role: Role, current: bool) -> StaffState {
    let until = if current { days(300) } else { days(-1) };
    staff::Staff::fold(&[appointed(id, role), trained(id, days(-365), until)])
}

// ---- providers ----

pub fn provider_history(id: &str, class: ConnectionClass) -> Vec<ProviderEvent> {
    let p = prid(id);
    let attest = |kind| ProviderEvent::Attested {
        provider: p.clone(),
        kind,
        attestation: Attestation {
            attested_on: days(-30),
            valid_until: days(335),
        },
        at: days(-30),
    };
    vec![
        ProviderEvent::Applied {
            provider: p.clone(),
            responsible: sid(&format!("{id}-lead")),
            connection: class,
            basis: Basis::Commissioned,
            at: days(-60),
        },
        attest(AttestationKind::MembersTrained),
        attest(AttestationKind::AntivirusCurrent),
        ProviderEvent::Approved {
            provider: p,
            by: sid("pref"),
            at: days(-30),
        },
    ]
}

pub fn provider(id: &str, class: ConnectionClass) -> ProviderState {
    provider::Provider::fold(&provider_history(id, class))
}

// ---- credentials ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    Valid,
    Expired,
    Revoked,
    Lost,
}

impl Cred {
    pub const ALL: [Cred; 4] = [Cred::Valid, Cred::Expired, Cred::Revoked, Cred::Lost];
}

pub fn issued(id: &str, holder: Holder, at: Timestamp) -> CredentialEvent {
    CredentialEvent::Issued {
        credential: cid(id),
        holder,
        replaces: None,
        expires_at: at + Duration::days(90),
        by: sid("pref"),
        at,
    }
}

pub fn provider_holder(provider: &str) -> Holder {
    Holder::Provider {
        provider: prid(provider),
        responsible: sid(&format!("{provider}-lead")),
    }
}

pub fn person_holder(person: &str) -> Holder {
    Holder::Individual {
        person: pid(person),
    }
}

/// A credential in `cond` at T0.
pub fn credential(id: &str, holder: Holder, cond: Cred) -> CredentialState {
    let mut events = vec![issued(
        id,
        holder,
        if cond == Cred::Expired {
            days(-120)
        } else {
            days(-10)
        },
    )];
    match cond {
        Cred::Valid | Cred::Expired => {}
        Cred::Lost => events.push(CredentialEvent::LossReported {
            credential: cid(id),
            at: days(-1),
        }),
        Cred::Revoked => events.push(CredentialEvent::Revoked {
            credential: cid(id),
            reason: RevocationReason::JudgedRisk,
            by: sid("pref"),
            at: days(-1),
        }),
    }
    credential::Credential::fold(&events)
}

// ---- persons ----

pub fn policy_v1() -> PolicyVersion {
    PolicyVersion {
        id: PolicyId::new("2020-11-16").unwrap(),
        in_force_from: days(-2000),
        applies_from: days(-2015),
    }
}

pub fn registered(person: &str) -> Vec<PersonEvent> {
    vec![
        PersonEvent::Registered {
            person: pid(person),
            registrar: Registrar::SelfService,
            identity: VaultRef::new(format!("v-{person}")).unwrap(),
            email_index: None,
            password: false,
            at: days(-100),
        },
        PersonEvent::PolicyAccepted {
            person: pid(person),
            policy: policy_v1().id,
            at: days(-100),
        },
    ]
}

pub fn represented_by(person: &str, rep: &str) -> PersonEvent {
    PersonEvent::RepresentativeGranted {
        person: pid(person),
        representative: pid(rep),
        at: days(-90),
    }
}

pub fn cats(c: &[Category]) -> std::collections::BTreeSet<Category> {
    c.iter().copied().collect()
}

/// The standard consent: `provider` may read vitals and medication history for care,
/// covering records of 2025, until 90 days from T0.
pub fn consent_granted(person: &str, consent: &str, provider: &str) -> PersonEvent {
    PersonEvent::ConsentGranted {
        person: pid(person),
        consent: kid(consent),
        provider: prid(provider),
        categories: cats(&[Category::Vitals, Category::MedicationHistory]),
        purpose: Purpose::Care,
        period: year_2025(),
        expires_at: days(90),
        by: pid(person),
        at: days(-20),
    }
}

pub fn year_2025() -> Period {
    Period {
        from: days(-365),
        to: T0,
    }
}
