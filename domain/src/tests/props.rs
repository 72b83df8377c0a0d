//! Properties over random command sequences: replaying a stream rebuilds the same
//! state, and no access is ever granted without a covering consent (P4.6(2)).

use crate::credential::{Credential, CredentialCommand, RevocationReason};
use crate::person::{Person, PersonCommand, PersonEvent};
use crate::provider::{ConnectionClass, Provider, ProviderCommand};
use crate::records::{Origin, RecordCommand, RecordEvent, Records, Submission};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Advance(i64),
    Grant {
        provider: usize,
        cats: u16,
        purpose: usize,
        from: i64,
        len: i64,
        expiry: i64,
        id: u8,
    },
    Revoke(u8),
    Suspend(usize),
    Reinstate(usize),
    RevokeProvider(usize),
    LoseCredential(usize),
    RevokeCredential(usize),
    Renew(usize),
    Reissue(usize),
    Withdraw,
    Write {
        who: usize,
        cats: u16,
        at: i64,
    },
    Read {
        who: usize,
        cats: u16,
        purpose: usize,
        from: i64,
        len: i64,
    },
    /// Read exactly what consent `k<id>` names, if it exists.
    ReadAsConsented(u8),
}

const PURPOSES: [Purpose; 5] = [
    Purpose::Care,
    Purpose::HealthGuidance,
    Purpose::CheckupFollowUp,
    Purpose::MedicationReview,
    Purpose::PersonalUse,
];
const PROVIDERS: [&str; 3] = ["pa", "pb", "unknown"];

/// Weighted so that covered reads are common: narrow read requests against wide
/// grants, and destructive steps (withdrawal, provider revocation) rare.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..20i64).prop_map(Op::Advance),
        12 => (0..3usize, 0..8u16, 0..3usize, -700..-100i64, 0..800i64, -5..400i64, 0..6u8).prop_map(
            |(provider, cats, purpose, from, len, expiry, id)| Op::Grant { provider, cats, purpose, from, len, expiry, id }
        ),
        2 => (0..6u8).prop_map(Op::Revoke),
        1 => (0..2usize).prop_map(Op::Suspend),
        2 => (0..2usize).prop_map(Op::Reinstate),
        1 => (0..2usize).prop_map(Op::RevokeProvider),
        1 => (0..2usize).prop_map(Op::LoseCredential),
        1 => (0..2usize).prop_map(Op::RevokeCredential),
        3 => (0..3usize).prop_map(Op::Renew),
        3 => (0..2usize).prop_map(Op::Reissue),
        1 => Just(Op::Withdraw),
        6 => (0..3usize, 0..4u16, -300..0i64).prop_map(|(who, cats, at)| Op::Write { who, cats, at }),
        24 => (0..4usize, 1..4u16, 0..3usize, -300..-1i64, 1..200i64)
            .prop_map(|(who, cats, purpose, from, len)| Op::Read { who, cats, purpose, from, len }),
        12 => (0..6u8).prop_map(Op::ReadAsConsented),
    ]
}

fn categories(mask: u16) -> std::collections::BTreeSet<Category> {
    Category::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect()
}

/// A stream: its history and the state built incrementally beside it.
struct Stream<D: Decider> {
    events: Vec<D::Event>,
    state: D::State,
}

impl<D: Decider> Stream<D> {
    fn new(events: Vec<D::Event>) -> Self {
        Self {
            state: D::fold(&events),
            events,
        }
    }

    fn run(&mut self, cmd: D::Command, ctx: &Ctx) {
        if let Ok(events) = D::decide(&self.state, &cmd, ctx) {
            for e in events {
                self.state = D::evolve(std::mem::take(&mut self.state), &e);
                self.events.push(e);
            }
        }
    }

    /// Fold of the history, also after a serde round trip, equals the live state.
    fn assert_replays(&self) {
        assert_eq!(D::fold(&self.events), self.state);
        let json = serde_json::to_string(&self.events).unwrap();
        let back: Vec<D::Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(D::fold(&back), self.state);
    }
}

struct World {
    cfg: Config,
    now: Timestamp,
    pref: StaffState,
    office: StaffState,
    person: Stream<Person>,
    me: Stream<Credential>,
    providers: Vec<Stream<Provider>>,
    creds: Vec<Stream<Credential>>,
    records: Stream<Records>,
    issued: u32,
}

impl World {
    fn new() -> Self {
        let mut person = registered("p1");
        person.push(represented_by("p1", "p2"));
        Self {
            cfg: config(),
            now: T0,
            pref: staff("pref", Role::Prefecture, true),
            office: staff("office", Role::OperationsOffice, true),
            person: Stream::new(person),
            me: Stream::new(vec![issued(
                "c1",
                person_holder("p1"),
                T0 + Duration::days(-1),
            )]),
            providers: vec![
                Stream::new(provider_history("pa", ConnectionClass::ClosedIpVpn)),
                Stream::new(provider_history("pb", ConnectionClass::TlsInternet)),
            ],
            creds: vec![
                Stream::new(vec![issued("pa-c0", provider_holder("pa"), T0)]),
                Stream::new(vec![issued("pb-c0", provider_holder("pb"), T0)]),
            ],
            records: Stream::new(vec![]),
            issued: 0,
        }
    }

    fn pref_actor() -> Actor {
        staff_actor("pref")
    }

    fn apply(&mut self, op: &Op) {
        let cfg = self.cfg.clone();
        let pref = Self::pref_actor();
        let me = individual("p1", "c1");
        let now = self.now;
        match op {
            Op::Advance(d) => self.now = now + Duration::days(*d),
            Op::Grant {
                provider,
                cats,
                purpose,
                from,
                len,
                expiry,
                id,
            } => {
                let empty = ProviderState::default();
                let p = self.providers.get(*provider).map_or(&empty, |s| &s.state);
                let policy = policy_v1();
                let ctx = Ctx::new(now, &me, &cfg)
                    .credential(&self.me.state)
                    .provider(p)
                    .policy(&policy);
                let cmd = PersonCommand::GrantConsent {
                    consent: kid(&format!("k{id}")),
                    provider: prid(PROVIDERS[*provider]),
                    categories: categories(*cats),
                    purpose: PURPOSES[*purpose],
                    period: Period {
                        from: now + Duration::days(*from),
                        to: now + Duration::days(from + len),
                    },
                    expires_at: now + Duration::days(*expiry),
                };
                self.person.run(cmd, &ctx);
            }
            Op::Revoke(id) => {
                let ctx = Ctx::new(now, &me, &cfg).credential(&self.me.state);
                self.person.run(
                    PersonCommand::RevokeConsent {
                        consent: kid(&format!("k{id}")),
                    },
                    &ctx,
                );
            }
            Op::Withdraw => {
                let ctx = Ctx::new(now, &me, &cfg).credential(&self.me.state);
                self.person.run(PersonCommand::Withdraw, &ctx);
            }
            Op::Suspend(i) | Op::Reinstate(i) | Op::RevokeProvider(i) => {
                let cmd = match op {
                    Op::Suspend(_) => ProviderCommand::Suspend,
                    Op::Reinstate(_) => ProviderCommand::Reinstate,
                    _ => ProviderCommand::Revoke,
                };
                let ctx = Ctx::new(now, &pref, &cfg).staff(&self.pref);
                self.providers[*i].run(cmd, &ctx);
            }
            Op::Renew(2) => {
                // The individual renews their own connection information.
                let ctx = Ctx::new(now, &me, &cfg);
                self.me.run(CredentialCommand::Renew, &ctx);
            }
            Op::LoseCredential(i) | Op::RevokeCredential(i) | Op::Renew(i) => {
                let (actor, staff) = match op {
                    Op::RevokeCredential(_) => (pref.clone(), &self.pref),
                    _ => (staff_actor("office"), &self.office),
                };
                let cmd = match op {
                    Op::LoseCredential(_) => CredentialCommand::ReportLoss,
                    Op::Renew(_) => CredentialCommand::Renew,
                    _ => CredentialCommand::Revoke {
                        reason: RevocationReason::JudgedRisk,
                    },
                };
                let ctx = Ctx::new(now, &actor, &cfg).staff(staff);
                self.creds[*i].run(cmd, &ctx);
            }
            Op::Reissue(i) => {
                self.issued += 1;
                let old = &self.creds[*i];
                let id = cid(&format!("{}-c{}", PROVIDERS[*i], self.issued));
                let ctx = Ctx::new(now, &pref, &cfg)
                    .staff(&self.pref)
                    .provider(&self.providers[*i].state)
                    .replaced(&old.state);
                let cmd = CredentialCommand::Issue {
                    credential: id,
                    holder: provider_holder(PROVIDERS[*i]),
                    replaces: old.state.id.clone(),
                };
                let mut fresh = Stream::<Credential>::new(vec![]);
                fresh.run(cmd, &ctx);
                if !fresh.events.is_empty() {
                    old.assert_replays();
                    self.creds[*i] = fresh;
                }
            }
            Op::Write { who, cats, at } => {
                let Some(category) = categories(*cats)
                    .into_iter()
                    .next()
                    .filter(|c| *c == Category::Vitals)
                else {
                    return;
                };
                let actor = self.reader(*who);
                let (provider, cred) = self.facts(&actor);
                let (provider, cred, person) =
                    (provider.clone(), cred.clone(), self.person.state.clone());
                let ctx = Ctx::new(now, &actor, &cfg)
                    .credential(&cred)
                    .provider(&provider)
                    .person(&person);
                let n = self.records.events.len();
                let cmd = RecordCommand::Submit(Submission {
                    record: rid(&format!("r{n}")),
                    category,
                    effective_at: now + Duration::days(*at),
                    resource: super::records::weight("p1", 60.0),
                    origin: if matches!(actor, Actor::Provider { .. }) {
                        Origin::MedicalInstitution
                    } else {
                        Origin::SelfEntered
                    },
                    created_by: None,
                    original_identifier: Some("urn:x|1".into()),
                });
                self.records.run(cmd, &ctx);
                if let Some(RecordEvent::Added { entry, .. }) = self.records.events.get(n)
                    && let Actor::Provider { provider, .. } = &actor
                {
                    let period = Period {
                        from: entry.effective_at,
                        to: entry.effective_at + Duration(1),
                    };
                    assert!(
                        self.consented(provider, &categories(1), None, &period),
                        "delivery without a covering consent: {entry:?}"
                    );
                }
            }
            Op::ReadAsConsented(id) => {
                let Some(c) = self.person.state.consents.get(&kid(&format!("k{id}"))) else {
                    return;
                };
                let Some(who) = PROVIDERS[..2]
                    .iter()
                    .position(|p| *p == c.provider.as_str())
                else {
                    return;
                };
                let (actor, categories, purpose, period) =
                    (self.reader(who), c.categories.clone(), c.purpose, c.period);
                self.read(AccessRequest {
                    channel: Channel::ProviderGateway,
                    actor,
                    person: pid("p1"),
                    categories,
                    purpose,
                    period,
                });
            }
            Op::Read {
                who,
                cats,
                purpose,
                from,
                len,
            } => {
                let actor = self.reader(*who);
                self.read(AccessRequest {
                    channel: if matches!(actor, Actor::Provider { .. }) {
                        Channel::ProviderGateway
                    } else {
                        Channel::App
                    },
                    actor,
                    person: pid("p1"),
                    categories: categories(*cats),
                    purpose: PURPOSES[*purpose],
                    period: Period {
                        from: now + Duration::days(*from),
                        to: now + Duration::days(from + len),
                    },
                });
            }
        }
    }

    /// Decide a read and hold the decision against the oracle.
    fn read(&self, req: AccessRequest) {
        let (now, actor) = (self.now, &req.actor);
        let (provider, cred) = self.facts(actor);
        let decision = decide_access(&req, &self.person.state, Some(provider), Some(cred), now);
        match (&decision, actor) {
            (AccessDecision::Refused(r), _) => refusal_contract(r),
            (AccessDecision::Granted { consent, .. }, Actor::Provider { provider: p, .. }) => {
                assert!(consent.is_some());
                assert!(
                    self.consented(p, &req.categories, Some(req.purpose), &req.period),
                    "granted without a covering consent: {req:?}\n{:#?}",
                    self.person.events
                );
                assert!(provider_can_receive(provider, now) && credential_valid(cred, now));
            }
            (AccessDecision::Granted { consent, .. }, Actor::Individual { person, .. }) => {
                assert_eq!(*consent, None);
                assert!(
                    !self.withdrawn() && person.as_str() == "p1" && credential_valid(cred, now)
                );
            }
            (g, a) => panic!("{a:?} granted {g:?}"),
        }
    }

    fn reader(&self, who: usize) -> Actor {
        match who {
            0 | 1 => Actor::Provider {
                provider: prid(PROVIDERS[who]),
                credential: self.creds[who].state.id.clone().unwrap(),
            },
            2 => individual("p1", "c1"),
            _ => staff_actor("office"),
        }
    }

    fn facts(&self, actor: &Actor) -> (&ProviderState, &CredentialState) {
        match actor {
            Actor::Provider { provider, .. } => {
                let i = PROVIDERS
                    .iter()
                    .position(|p| *p == provider.as_str())
                    .unwrap();
                (&self.providers[i].state, &self.creds[i].state)
            }
            _ => (&self.providers[0].state, &self.me.state),
        }
    }

    fn withdrawn(&self) -> bool {
        self.person
            .events
            .iter()
            .any(|e| matches!(e, PersonEvent::Withdrawn { .. }))
    }

    /// The oracle: straight from the person's history, not from the state.
    fn consented(
        &self,
        provider: &ProviderId,
        cats: &std::collections::BTreeSet<Category>,
        purpose: Option<Purpose>,
        period: &Period,
    ) -> bool {
        let now = self.now;
        let revoked = |id: &ConsentId| {
            self.person.events.iter().any(|e| matches!(e, PersonEvent::ConsentRevoked { consent, at, .. } if consent == id && *at <= now))
        };
        !self.withdrawn()
            && self.person.events.iter().any(|e| match e {
                PersonEvent::ConsentGranted {
                    consent,
                    provider: p,
                    categories,
                    purpose: pu,
                    period: pe,
                    expires_at,
                    at,
                    ..
                } => {
                    p == provider
                        && cats.is_subset(categories)
                        && purpose.is_none_or(|x| x == *pu)
                        && pe.from <= period.from
                        && period.to <= pe.to
                        && *at <= now
                        && now < *expires_at
                        && !revoked(consent)
                }
                _ => false,
            })
    }

    fn assert_replays(&self) {
        self.person.assert_replays();
        self.me.assert_replays();
        self.records.assert_replays();
        self.providers.iter().for_each(Stream::assert_replays);
        self.creds.iter().for_each(Stream::assert_replays);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// P2(1): state is nothing but the fold of the stream, also after serialization.
    #[test]
    fn p2_1_replaying_events_rebuilds_identical_state(ops in prop::collection::vec(op(), 1..50)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
        }
        world.assert_replays();
    }

    /// P4.6(2): whatever happened before, a provider is granted a read only under an
    /// active consent covering category, purpose and period (checked inside `apply`).
    #[test]
    fn p4_6_2_no_grant_without_a_covering_consent(ops in prop::collection::vec(op(), 1..50)) {
        let mut world = World::new();
        let mut reads = 0;
        for op in &ops {
            reads += usize::from(matches!(op, Op::Read { .. } | Op::ReadAsConsented(_)));
            world.apply(op);
        }
        prop_assert!(reads <= ops.len());
    }
}

#[test]
fn p4_6_2_property_world_does_grant_when_consented() {
    // Guards the property against vacuity: the same world grants a covered read.
    let mut world = World::new();
    world.apply(&Op::Grant {
        provider: 0,
        cats: 1,
        purpose: 0,
        from: -100,
        len: 100,
        expiry: 30,
        id: 1,
    });
    assert!(
        world
            .person
            .events
            .iter()
            .any(|e| matches!(e, PersonEvent::ConsentGranted { .. }))
    );
    let actor = world.reader(0);
    let (provider, cred) = world.facts(&actor);
    let req = AccessRequest {
        actor: actor.clone(),
        person: pid("p1"),
        categories: categories(1),
        purpose: Purpose::Care,
        channel: Channel::ProviderGateway,
        period: Period {
            from: T0 + Duration::days(-50),
            to: T0 + Duration::days(-10),
        },
    };
    assert!(decide_access(&req, &world.person.state, Some(provider), Some(cred), T0).is_granted());
    world.apply(&Op::Write {
        who: 0,
        cats: 1,
        at: -20,
    });
    assert_eq!(world.records.events.len(), 1);
}
