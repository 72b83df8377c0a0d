//! Registry of individuals (P2(1), P3.2, P8, P4.9): who is registered, withdrawn or
//! erased, which policy version each accepted, their representatives, and
//! registrations per day for the dashboard.

use crate::compact::{Interner, NONE, OptTs, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::person::{PersonEvent, PersonStatus, Registrar};
use mebyo_domain::policy::PolicyEvent;
use mebyo_domain::{PolicyVersion, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kanagawa's offices count days in JST (UTC+9, no daylight saving), so a sign-up at
/// 08:00 JST belongs to that day, not to the UTC day before.
pub const JST_OFFSET_US: i64 = 9 * 3_600_000_000;

/// Days since 1970-01-01 in JST.
pub fn jst_day(t: Timestamp) -> i32 {
    let day = (t.0 + JST_OFFSET_US).div_euclid(86_400_000_000);
    day.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PersonRow {
    registered_at: OptTs,
    policy_accepted_at: OptTs,
    withdrawn_at: OptTs,
    erased_at: OptTs,
    /// Index into `policies`, or [`NONE`].
    policy: u32,
    guidance: u16,
    status: PersonStatus,
    /// Registered through the operations office (P3.2) rather than self-service.
    by_office: bool,
}

const EMPTY: PersonRow = PersonRow {
    registered_at: OptTs::NONE,
    policy_accepted_at: OptTs::NONE,
    withdrawn_at: OptTs::NONE,
    erased_at: OptTs::NONE,
    policy: NONE,
    guidance: 0,
    status: PersonStatus::Unregistered,
    by_office: false,
};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    people: Interner,
    rows: Vec<PersonRow>,
    policies: Interner,
    /// Published versions in publication order (P7, P9: strictly later each time).
    versions: Vec<PolicyVersion>,
    /// People currently accepting each policy (by `policies` index).
    accepting: Vec<u32>,
    /// Only people who appointed someone appear here: most never do.
    representatives: BTreeMap<u32, Vec<u32>>,
    registrations_per_day: BTreeMap<i32, u32>,
    registered: u64,
    withdrawn: u64,
    erased: u64,
}

/// Counts for the dashboard. `withdrawn` and `erased` are disjoint: a withdrawn person
/// moves to `erased` once the crypto-erase is witnessed (P4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RegistryCounts {
    /// Ever registered.
    pub registered: u64,
    pub active: u64,
    /// Withdrawn, erasure requested, not yet witnessed.
    pub withdrawn: u64,
    pub erased: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub person: String,
    pub status: PersonStatus,
    pub registered_at: Option<Timestamp>,
    pub registered_by_office: bool,
    pub policy: Option<String>,
    pub policy_accepted_at: Option<Timestamp>,
    pub representatives: Vec<String>,
    pub guidance_count: u16,
    pub withdrawn_at: Option<Timestamp>,
    pub erased_at: Option<Timestamp>,
}

impl Registry {
    pub fn apply(&mut self, e: &Applied) {
        match e.event {
            AnyEvent::Person(p) => self.person_event(p),
            AnyEvent::Other { event_type } => self.unreadable(event_type, e),
            AnyEvent::Policy(PolicyEvent::VersionPublished { version, .. }) => {
                let ix = self.policies.intern(version.id.as_str());
                ensure_len(&mut self.accepting, ix, 0);
                self.versions.push(version.clone());
            }
            _ => {}
        }
    }

    fn row(&mut self, person: &str) -> (u32, &mut PersonRow) {
        let ix = self.people.intern(person);
        ensure_len(&mut self.rows, ix, EMPTY);
        (ix, &mut self.rows[ix as usize])
    }

    /// A person's own event sealed under a key the erasure destroyed (P4.9), met
    /// by a replay from the start (`mebyo audit replay`, a rebuild without the
    /// snapshot): its payload is gone, but its plaintext envelope still says what
    /// happened, to whom and when. Counting it keeps the history whole: the 200
    /// registrations of a log stay 200 after one of them is erased (issue 19 §8).
    /// Whether the office registered them sat in the payload, so it is unknown.
    fn unreadable(&mut self, event_type: &str, e: &Applied) {
        let Some(person) = e.stream_id.strip_prefix("person-") else {
            return;
        };
        let at = Timestamp(e.recorded_at_us);
        match event_type {
            "person.registered" => self.registered(person, at, false),
            "person.withdrawn" => self.withdrawn(person, at),
            _ => {}
        }
    }

    fn registered(&mut self, person: &str, at: Timestamp, by_office: bool) {
        let (_, row) = self.row(person);
        if row.status != PersonStatus::Unregistered {
            return; // the decider refuses a second registration (P2(1))
        }
        row.status = PersonStatus::Active;
        row.registered_at = OptTs::some(at);
        row.by_office = by_office;
        self.registered += 1;
        *self.registrations_per_day.entry(jst_day(at)).or_default() += 1;
    }

    fn withdrawn(&mut self, person: &str, at: Timestamp) {
        let (_, row) = self.row(person);
        if row.status == PersonStatus::Active {
            row.status = PersonStatus::Withdrawn;
            row.withdrawn_at = OptTs::some(at);
            self.withdrawn += 1;
        }
    }

    fn person_event(&mut self, e: &PersonEvent) {
        match e {
            PersonEvent::Registered {
                person,
                registrar,
                at,
                ..
            } => self.registered(
                person.as_str(),
                *at,
                matches!(registrar, Registrar::OperationsOffice { .. }),
            ),
            PersonEvent::PolicyAccepted {
                person, policy, at, ..
            } => {
                let pol = self.policies.intern(policy.as_str());
                ensure_len(&mut self.accepting, pol, 0);
                let (_, row) = self.row(person.as_str());
                let old = std::mem::replace(&mut row.policy, pol);
                row.policy_accepted_at = OptTs::some(*at);
                if old != NONE {
                    self.accepting[old as usize] -= 1;
                }
                self.accepting[pol as usize] += 1;
            }
            PersonEvent::RepresentativeGranted {
                person,
                representative,
                ..
            } => {
                let (ix, _) = self.row(person.as_str());
                let rep = self.people.intern(representative.as_str());
                ensure_len(&mut self.rows, rep, EMPTY);
                let reps = self.representatives.entry(ix).or_default();
                if !reps.contains(&rep) {
                    reps.push(rep);
                }
            }
            PersonEvent::RepresentativeRevoked {
                person,
                representative,
                ..
            } => {
                let (Some(ix), Some(rep)) = (
                    self.people.find(person.as_str()),
                    self.people.find(representative.as_str()),
                ) else {
                    return;
                };
                if let Some(reps) = self.representatives.get_mut(&ix) {
                    reps.retain(|r| *r != rep);
                    if reps.is_empty() {
                        self.representatives.remove(&ix);
                    }
                }
            }
            PersonEvent::GuidanceGiven { person, .. } => {
                let (_, row) = self.row(person.as_str());
                row.guidance = row.guidance.saturating_add(1);
            }
            PersonEvent::Withdrawn { person, at } => self.withdrawn(person.as_str(), *at),
            PersonEvent::ErasureCompleted { person, at, .. } => {
                let (ix, row) = self.row(person.as_str());
                if row.status != PersonStatus::Withdrawn {
                    return;
                }
                row.status = PersonStatus::Erased;
                row.erased_at = OptTs::some(*at);
                // The policy choice and representation sat in the now-erased payloads
                // (P4.9); the pseudonymous id and dates stay, as in the ledger's
                // plaintext envelopes.
                let pol = std::mem::replace(&mut row.policy, NONE);
                row.policy_accepted_at = OptTs::NONE;
                if pol != NONE {
                    self.accepting[pol as usize] -= 1;
                }
                self.representatives.remove(&ix);
                self.withdrawn -= 1;
                self.erased += 1;
            }
            PersonEvent::IdentityUpdated { .. }
            | PersonEvent::ConsentGranted { .. }
            | PersonEvent::ConsentRevoked { .. }
            | PersonEvent::ErasureRequested { .. } => {}
        }
    }

    pub fn counts(&self) -> RegistryCounts {
        RegistryCounts {
            registered: self.registered,
            active: self.registered - self.withdrawn - self.erased,
            withdrawn: self.withdrawn,
            erased: self.erased,
        }
    }

    pub fn person(&self, person: &str) -> Option<PersonView> {
        let ix = self.people.find(person)?;
        let row = self.rows[ix as usize];
        if row.status == PersonStatus::Unregistered {
            return None; // only named as someone's representative so far
        }
        let reps = self.representatives.get(&ix).map_or(&[][..], |v| v);
        Some(PersonView {
            person: person.to_owned(),
            status: row.status,
            registered_at: row.registered_at.get(),
            registered_by_office: row.by_office,
            policy: (row.policy != NONE).then(|| self.policies.get(row.policy).to_owned()),
            policy_accepted_at: row.policy_accepted_at.get(),
            representatives: reps
                .iter()
                .map(|r| self.people.get(*r).to_owned())
                .collect(),
            guidance_count: row.guidance,
            withdrawn_at: row.withdrawn_at.get(),
            erased_at: row.erased_at.get(),
        })
    }

    /// Registrations per JST day ([`jst_day`]), oldest first.
    pub fn registrations_per_day(&self) -> impl Iterator<Item = (i32, u32)> + '_ {
        self.registrations_per_day.iter().map(|(d, n)| (*d, *n))
    }

    /// The policy version in force at `now`: the latest whose date has passed (P7).
    pub fn policy_in_force(&self, now: Timestamp) -> Option<&PolicyVersion> {
        self.versions.iter().rev().find(|v| v.in_force_from <= now)
    }

    /// How many people currently accept each published policy version (P8): after a
    /// revision the dashboard shows how many still have to accept the new one.
    pub fn policy_acceptance(&self) -> Vec<(&str, u32)> {
        self.accepting
            .iter()
            .enumerate()
            .map(|(i, n)| (self.policies.get(i as u32), *n))
            .collect()
    }

    pub fn shrink_to_fit(&mut self) {
        self.people.shrink_to_fit();
        self.rows.shrink_to_fit();
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.rows.len() > self.people.len() || self.accepting.len() != self.policies.len() {
            return Err("registry tables disagree");
        }
        let n = self.people.len();
        let bad_person = |p: &u32| *p as usize >= n;
        if self
            .rows
            .iter()
            .any(|r| r.policy != NONE && r.policy as usize >= self.accepting.len())
            || self
                .representatives
                .iter()
                .any(|(p, reps)| bad_person(p) || reps.iter().any(bad_person))
        {
            return Err("registry index out of range");
        }
        let (w, e) = self.rows.iter().fold((0, 0), |(w, e), r| match r.status {
            PersonStatus::Withdrawn => (w + 1, e),
            PersonStatus::Erased => (w, e + 1),
            _ => (w, e),
        });
        if (w, e) != (self.withdrawn, self.erased) {
            return Err("registry counts disagree with rows");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn lifecycle_counts_and_views() {
        let mut log = Log::default();
        log.person_registered("p1", days(0));
        log.person_registered("p2", days(0) + hours(20)); // next JST day
        log.person_registered("p3", days(1));
        log.push(represented_by("p1", "p2"));
        log.withdraw_and_erase("p3", days(2));
        let m = log.fold();
        let r = &m.registry();
        assert_eq!(
            r.counts(),
            RegistryCounts {
                registered: 3,
                active: 2,
                withdrawn: 0,
                erased: 1
            }
        );
        let p1 = r.person("p1").unwrap();
        assert_eq!(p1.status, PersonStatus::Active);
        assert_eq!(p1.policy.as_deref(), Some(POLICY));
        assert_eq!(p1.representatives, vec!["p2".to_string()]);
        assert!(p1.registered_by_office);
        // P4.9: the erased person keeps only the pseudonymous id and dates.
        let p3 = r.person("p3").unwrap();
        assert_eq!(p3.status, PersonStatus::Erased);
        assert_eq!((p3.policy, p3.erased_at), (None, Some(days(2))));
        assert_eq!(r.policy_acceptance(), vec![(POLICY, 2)]);
        assert_eq!(r.policy_in_force(days(0)).unwrap().id.as_str(), POLICY);
        let per_day: Vec<_> = r.registrations_per_day().collect();
        assert_eq!(
            per_day,
            vec![(jst_day(days(0)), 1), (jst_day(days(1)), 2)],
            "p2 registered at 05:00 JST the next day"
        );
        assert!(r.person("nobody").is_none());
        r.check().unwrap();
    }

    /// Issue 19 §8 (P4.9): a replay from the start after an erasure cannot read
    /// the erased person's own events; their envelopes still count, and the
    /// erasure record then erases: 3 registered stay 3, one of them erased.
    #[test]
    fn p4_9_an_erased_persons_unreadable_events_still_count() {
        let mut log = Log::default();
        log.person_registered("p1", days(0));
        log.person_registered("p2", days(0));
        log.person_registered("p3", days(1));
        log.withdraw_and_erase("p3", days(2));
        let record = serde_json::json!({
            "person": "p3", "witness": "sysadm", "destroyed_keys": ["dek:h:p3:1"],
            "kek_id": "00", "keystore_digest": "00", "at": days(2),
        });
        let record = AnyEvent::decode("erasure.completed", record.to_string().as_bytes()).unwrap();
        log.push_on("ops-erasures", record);
        let live = log.fold();
        let mut replayed = crate::ReadModels::new();
        for mut e in log.entries() {
            if e.stream == "person-p3" {
                // Sealed under p3's destroyed key: only the envelope is left.
                let event_type = e.event.event_type().to_owned();
                e.event = AnyEvent::Other { event_type };
            }
            replayed.apply(&e.applied()).unwrap();
        }
        let want = RegistryCounts {
            registered: 3,
            active: 2,
            withdrawn: 0,
            erased: 1,
        };
        assert_eq!(live.registry().counts(), want);
        assert_eq!(replayed.registry().counts(), want, "the replay counts p3");
        let p3 = replayed.registry().person("p3").unwrap();
        assert_eq!(p3.status, PersonStatus::Erased);
        assert!(p3.registered_at.is_some());
        replayed.registry().check().unwrap();
    }

    #[test]
    fn revoked_representative_disappears() {
        let mut log = Log::default();
        log.person_registered("p1", days(0));
        log.person_registered("p2", days(0));
        log.push(represented_by("p1", "p2"));
        log.push(PersonEvent::RepresentativeRevoked {
            person: pid("p1"),
            representative: pid("p2"),
            at: days(1),
        });
        let m = log.fold();
        assert!(
            m.registry()
                .person("p1")
                .unwrap()
                .representatives
                .is_empty()
        );
    }

    #[test]
    fn jst_day_boundary() {
        // 2026-01-01T00:00Z is 09:00 JST on Jan 1; 15:00Z is midnight JST Jan 2.
        assert_eq!(jst_day(T0 + hours(14)), jst_day(T0));
        assert_eq!(jst_day(T0 + hours(15)), jst_day(T0) + 1);
        assert_eq!(jst_day(T0 + hours(-9)), jst_day(T0));
        assert_eq!(jst_day(T0 + hours(-10)), jst_day(T0) - 1);
    }
}
