//! Given/when/then for every operational decider, in the style of the core's
//! testkit: one `check` helper, fixtures for staff in each role.

use crate::clause::known;
use mebyo_domain::staff::{Rank, Role, Staff, StaffEvent, Training};
use mebyo_domain::*;

pub const T0: Timestamp = Timestamp(1_767_225_600_000_000); // 2026-01-01T00:00Z

pub const MINUTE: i64 = 60_000_000;

pub fn mins(n: i64) -> Timestamp {
    Timestamp(T0.0 + n * MINUTE)
}

pub fn days(n: i64) -> Timestamp {
    T0 + Duration::days(n)
}

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
/// Emitted events pass the event contract; returns the resulting history (given +
/// emitted) so a scenario can continue from it. A refusal leaves it unchanged: bad
/// input changes nothing.
pub fn check<D: Decider>(
    ctx: &Ctx,
    given: &[D::Event],
    when: D::Command,
    then: Expect<D::Event>,
) -> Vec<D::Event> {
    let state = D::fold(given);
    let result = D::decide(&state, &when, ctx);
    let mut history = given.to_vec();
    match (result, then) {
        (Ok(events), Events(want)) => {
            assert_eq!(events, want, "when {when:?}");
            events.iter().for_each(event_contract);
            history.extend(events);
        }
        (Ok(events), Types(want)) => {
            let got: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
            assert_eq!(got, want, "when {when:?}");
            events.iter().for_each(event_contract);
            history.extend(events);
        }
        (Err(r), Refused(code, clause)) => {
            assert_eq!((r.code, r.clause), (code, clause), "when {when:?}: {r}");
            refusal_contract(&r);
        }
        (got, want) => panic!("when {when:?}\n  expected {want:?}\n  got {got:?}"),
    }
    history
}

pub fn refusal_contract(r: &Refusal) {
    assert!(known(r.clause), "unknown clause in {r:?}");
    assert!(r.to_string().contains(r.clause), "{r} hides its clause");
}

/// The serde tag is the stable type name, payloads round-trip, no identity field
/// appears, and operational events are plaintext-safe (not person-related).
pub fn event_contract<E: DomainEvent>(e: &E) {
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["type"], e.event_type(), "{e:?}");
    assert_eq!(&serde_json::from_value::<E>(json.clone()).unwrap(), e);
    assert!(!e.person_related(), "{e:?}");
    for prefix in ["person.", "record.", "access.", "credential.", "erasure."] {
        assert!(
            !e.event_type().starts_with(prefix),
            "{} would be sealed by the platform codec",
            e.event_type()
        );
    }
    let text = json.to_string();
    for field in [
        "\"name\"",
        "\"email\"",
        "\"address\"",
        "\"phone\"",
        "\"birth",
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

pub fn sid(s: &str) -> StaffId {
    StaffId::new(s).unwrap()
}

pub fn staff_actor(s: &str) -> Actor {
    Actor::Staff { staff: sid(s) }
}

/// A staff member holding `role`, with training current at T0 or lapsed.
pub fn staff(id: &str, role: Role, current: bool) -> StaffState {
    let until = if current { days(300) } else { days(-1) };
    Staff::fold(&[
        StaffEvent::Appointed {
            staff: sid(id),
            role,
            by: None,
            at: days(-400),
        },
        StaffEvent::TrainingRecorded {
            staff: sid(id),
            training: Training {
                completed_at: days(-365),
                valid_until: until,
            },
            by: sid("om"),
            at: days(-365),
        },
    ])
}

/// The org: one staff member per role, with the ids tests use.
pub const ROLES: [(&str, Role); 7] = [
    ("ba", Role::BusinessAdministrator),
    ("om", Role::OperationsManager(Rank::Primary)),
    ("soa", Role::SystemOperationsAdministrator),
    ("office", Role::OperationsOffice),
    ("pref", Role::Prefecture),
    ("audit", Role::Auditor),
    ("bim", Role::BusinessImplementationManager(Rank::Primary)),
];

/// Everything a scenario needs to act as someone at some time.
pub struct Env {
    pub cfg: Config,
    pub actors: Vec<(Actor, StaffState)>,
    pub system: Actor,
}

impl Env {
    pub fn new() -> Self {
        Env {
            cfg: config(),
            actors: ROLES
                .iter()
                .map(|(id, role)| (staff_actor(id), staff(id, *role, true)))
                .chain([(
                    staff_actor("untrained-soa"),
                    staff("untrained-soa", Role::SystemOperationsAdministrator, false),
                )])
                .collect(),
            system: Actor::System,
        }
    }

    /// `who` acting at `at`.
    pub fn ctx(&self, who: &str, at: Timestamp) -> Ctx<'_> {
        let (a, s) = self
            .actors
            .iter()
            .find(|(a, _)| *a == staff_actor(who))
            .unwrap_or_else(|| panic!("no staff {who}"));
        Ctx::new(at, a, &self.cfg).staff(s)
    }

    pub fn system(&self, at: Timestamp) -> Ctx<'_> {
        Ctx::new(at, &self.system, &self.cfg)
    }
}
