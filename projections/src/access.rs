//! Access log (P4.6(2)): "who accessed my data", the disclosure record a person may
//! demand. Per person every read of their records, granted or refused, newest first;
//! per provider the volume per hour and refusals by code, for anomaly rules and the
//! dashboard.

use crate::compact::{Arena, Cats, Interner, NONE, chain, check_ix, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::access::{AccessEvent, Outcome};
use mebyo_domain::person::PersonEvent;
use mebyo_domain::{Actor, Category, Channel, Period, Purpose, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ActorKind {
    Applicant,
    Individual,
    Provider,
    Staff,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct AccessRow {
    position: u64,
    at: Timestamp,
    period: Period,
    /// Index into `people`, `providers` or `staff` by `actor`; [`NONE`] otherwise.
    actor_id: u32,
    /// Index into `credentials`, or [`NONE`].
    credential: u32,
    /// Index into `consents`, or [`NONE`].
    consent: u32,
    /// Previous access to the same person.
    prev: u32,
    /// Indices into `codes`, or [`NONE`].
    refusal_code: u32,
    refusal_clause: u32,
    categories: Cats,
    actor: ActorKind,
    purpose: Purpose,
    channel: Channel,
    outcome: Outcome,
}

/// Reads by one provider in one clock hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourBucket {
    /// Hours since the Unix epoch (UTC; JST differs by whole hours).
    pub hour: u32,
    pub granted: u32,
    pub refused: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ProviderStats {
    /// Sorted by hour; only hours with activity.
    hourly: Vec<HourBucket>,
    /// (index into `codes`, count).
    refusals: Vec<(u32, u64)>,
    granted: u64,
    refused: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    people: Interner,
    providers: Interner,
    staff: Interner,
    credentials: Interner,
    /// Consent ids are per person and erased with the person, so stored, not interned.
    consents: Arena,
    /// Refusal codes and clauses: a few dozen distinct strings.
    codes: Interner,
    rows: Vec<AccessRow>,
    head: Vec<u32>,
    per_provider: Vec<ProviderStats>,
    /// Refusals by code across all actors (index into `codes`).
    refusals: BTreeMap<u32, u64>,
}

/// Who read, as the person is shown it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Who<'a> {
    /// The person themselves.
    Themselves {
        credential: &'a str,
    },
    /// A family representative they appointed.
    Representative {
        person: &'a str,
        credential: &'a str,
    },
    Provider {
        provider: &'a str,
        credential: &'a str,
    },
    /// Staff never read health content; their attempts are refused and shown.
    Staff {
        staff: &'a str,
    },
    Applicant,
    System,
}

/// One line of the disclosure record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessView<'a> {
    pub position: u64,
    pub at: Timestamp,
    pub who: Who<'a>,
    pub purpose: Purpose,
    pub categories: BTreeSet<Category>,
    /// Clinical-time span asked for.
    pub period: Period,
    pub consent: Option<&'a str>,
    pub channel: Channel,
    pub outcome: Outcome,
    pub refusal_code: Option<&'a str>,
    pub refusal_clause: Option<&'a str>,
}

impl AccessLog {
    pub fn apply(&mut self, e: &Applied) {
        match e.event {
            AnyEvent::Access(a) => self.access(a, e.position),
            AnyEvent::Person(PersonEvent::ErasureCompleted { person, .. }) => {
                self.erase(person.as_str())
            }
            _ => {}
        }
    }

    fn access(&mut self, a: &AccessEvent, position: u64) {
        let AccessEvent::AccessRecorded {
            actor,
            person,
            categories,
            purpose,
            channel,
            period,
            consent,
            outcome,
            refusal_code,
            refusal_clause,
            at,
        } = a;
        let (kind, actor_id, credential) = match actor {
            Actor::Applicant => (ActorKind::Applicant, NONE, NONE),
            Actor::System => (ActorKind::System, NONE, NONE),
            Actor::Staff { staff } => (ActorKind::Staff, self.staff.intern(staff.as_str()), NONE),
            Actor::Individual { person, credential } => (
                ActorKind::Individual,
                self.people.intern(person.as_str()),
                self.credentials.intern(credential.as_str()),
            ),
            Actor::Provider {
                provider,
                credential,
            } => (
                ActorKind::Provider,
                self.providers.intern(provider.as_str()),
                self.credentials.intern(credential.as_str()),
            ),
        };
        let p = self.people.intern(person.as_str());
        ensure_len(&mut self.head, self.people.len() as u32 - 1, NONE);
        let mut code = |s: &Option<String>| s.as_deref().map_or(NONE, |s| self.codes.intern(s));
        let (refusal_code, refusal_clause) = (code(refusal_code), code(refusal_clause));
        let ix = u32::try_from(self.rows.len()).expect("fewer than 4e9 accesses");
        self.rows.push(AccessRow {
            position,
            at: *at,
            period: *period,
            actor_id,
            credential,
            consent: consent
                .as_ref()
                .map_or(NONE, |c| self.consents.push(c.as_str())),
            prev: self.head[p as usize],
            refusal_code,
            refusal_clause,
            categories: Cats::from_set(categories),
            actor: kind,
            purpose: *purpose,
            channel: *channel,
            outcome: *outcome,
        });
        self.head[p as usize] = ix;
        if refusal_code != NONE {
            *self.refusals.entry(refusal_code).or_default() += 1;
        }
        if kind == ActorKind::Provider {
            ensure_len(&mut self.per_provider, actor_id, ProviderStats::default());
            count(
                &mut self.per_provider[actor_id as usize],
                *at,
                *outcome,
                refusal_code,
            );
        }
    }

    /// P4.9: the erased person's access events are unreadable in the store; their
    /// lines go here too. Provider volumes are aggregates and stay.
    fn erase(&mut self, person: &str) {
        let Some(p) = self.people.find(person) else {
            return;
        };
        let Some(head) = self.head.get_mut(p as usize) else {
            return;
        };
        let mut cur = std::mem::replace(head, NONE);
        while let Some(row) = self.rows.get_mut(cur as usize) {
            if row.consent != NONE {
                self.consents.scrub(row.consent);
            }
            let next = row.prev;
            *row = AccessRow {
                position: 0,
                at: Timestamp(0),
                period: Period {
                    from: Timestamp(0),
                    to: Timestamp(0),
                },
                actor_id: NONE,
                credential: NONE,
                consent: NONE,
                prev: NONE,
                refusal_code: NONE,
                refusal_clause: NONE,
                categories: Cats::default(),
                actor: ActorKind::System,
                ..*row
            };
            cur = next;
        }
    }

    fn opt(i: &Interner, ix: u32) -> Option<&str> {
        (ix != NONE).then(|| i.get(ix))
    }

    fn view(&self, subject: u32, r: &AccessRow) -> AccessView<'_> {
        let credential = self.credentials.get(r.credential);
        let who = match r.actor {
            ActorKind::Individual if r.actor_id == subject => Who::Themselves { credential },
            ActorKind::Individual => Who::Representative {
                person: self.people.get(r.actor_id),
                credential,
            },
            ActorKind::Provider => Who::Provider {
                provider: self.providers.get(r.actor_id),
                credential,
            },
            ActorKind::Staff => Who::Staff {
                staff: self.staff.get(r.actor_id),
            },
            ActorKind::Applicant => Who::Applicant,
            ActorKind::System => Who::System,
        };
        AccessView {
            position: r.position,
            at: r.at,
            who,
            purpose: r.purpose,
            categories: r.categories.to_set(),
            period: r.period,
            consent: (r.consent != NONE).then(|| self.consents.get(r.consent)),
            channel: r.channel,
            outcome: r.outcome,
            refusal_code: Self::opt(&self.codes, r.refusal_code),
            refusal_clause: Self::opt(&self.codes, r.refusal_clause),
        }
    }

    /// Every access to `person`'s data, newest first (take what a page needs).
    pub fn of_person<'s>(&'s self, person: &str) -> impl Iterator<Item = AccessView<'s>> + 's {
        let subject = self.people.find(person).unwrap_or(NONE);
        let head = self.head.get(subject as usize).copied().unwrap_or(NONE);
        chain(&self.rows, head, |r| r.prev).map(move |(_, r)| self.view(subject, r))
    }

    /// A provider's reads per hour with `from_hour <= hour < to_hour` (hours since the
    /// epoch), only hours with activity.
    pub fn provider_hourly(&self, provider: &str, from_hour: u32, to_hour: u32) -> &[HourBucket] {
        let Some(s) = self.stats(provider) else {
            return &[];
        };
        let lo = s.hourly.partition_point(|b| b.hour < from_hour);
        let hi = s.hourly.partition_point(|b| b.hour < to_hour);
        &s.hourly[lo..hi.max(lo)]
    }

    /// (granted, refused) reads by a provider overall.
    pub fn provider_totals(&self, provider: &str) -> (u64, u64) {
        self.stats(provider)
            .map_or((0, 0), |s| (s.granted, s.refused))
    }

    /// A provider's refusals by code, most frequent first.
    pub fn provider_refusals(&self, provider: &str) -> Vec<(&str, u64)> {
        let Some(s) = self.stats(provider) else {
            return Vec::new();
        };
        let mut v: Vec<_> = s
            .refusals
            .iter()
            .map(|(c, n)| (self.codes.get(*c), *n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// Refusals by code across every actor, most frequent first.
    pub fn refusals_by_code(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<_> = self
            .refusals
            .iter()
            .map(|(c, n)| (self.codes.get(*c), *n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    fn stats(&self, provider: &str) -> Option<&ProviderStats> {
        self.per_provider
            .get(self.providers.find(provider)? as usize)
    }

    pub fn shrink_to_fit(&mut self) {
        self.people.shrink_to_fit();
        self.credentials.shrink_to_fit();
        self.consents.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.head.shrink_to_fit();
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let n = self.rows.len();
        if self.head.len() > self.people.len() || self.per_provider.len() > self.providers.len() {
            return Err("access tables without ids");
        }
        for &h in &self.head {
            check_ix(h, n, "access head out of range")?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            if r.prev != NONE && r.prev as usize >= i {
                return Err("access chain not backwards");
            }
            let ids = match r.actor {
                ActorKind::Individual => self.people.len(),
                ActorKind::Provider => self.providers.len(),
                ActorKind::Staff => self.staff.len(),
                ActorKind::Applicant | ActorKind::System => 0,
            };
            check_ix(r.actor_id, ids, "access actor out of range")?;
            check_ix(
                r.credential,
                self.credentials.len(),
                "access credential out of range",
            )?;
            check_ix(
                r.consent,
                self.consents.len(),
                "access consent out of range",
            )?;
            check_ix(r.refusal_code, self.codes.len(), "access code out of range")?;
            check_ix(
                r.refusal_clause,
                self.codes.len(),
                "access code out of range",
            )?;
        }
        for s in &self.per_provider {
            if s.refusals
                .iter()
                .any(|(c, _)| *c as usize >= self.codes.len())
            {
                return Err("provider refusal code out of range");
            }
        }
        if self
            .refusals
            .keys()
            .any(|c| *c as usize >= self.codes.len())
        {
            return Err("refusal code out of range");
        }
        Ok(())
    }
}

fn count(s: &mut ProviderStats, at: Timestamp, outcome: Outcome, code: u32) {
    let hour = at.0.div_euclid(3_600_000_000).clamp(0, u32::MAX as i64) as u32;
    // Events arrive nearly in time order: the bucket is almost always the last one.
    let i = match s.hourly.last() {
        Some(b) if b.hour == hour => s.hourly.len() - 1,
        Some(b) if b.hour < hour => {
            s.hourly.push(HourBucket {
                hour,
                granted: 0,
                refused: 0,
            });
            s.hourly.len() - 1
        }
        None => {
            s.hourly.push(HourBucket {
                hour,
                granted: 0,
                refused: 0,
            });
            0
        }
        Some(_) => match s.hourly.binary_search_by_key(&hour, |b| b.hour) {
            Ok(i) => i,
            Err(i) => {
                s.hourly.insert(
                    i,
                    HourBucket {
                        hour,
                        granted: 0,
                        refused: 0,
                    },
                );
                i
            }
        },
    };
    let b = &mut s.hourly[i];
    match outcome {
        Outcome::Granted => {
            b.granted += 1;
            s.granted += 1;
        }
        Outcome::Refused => {
            b.refused += 1;
            s.refused += 1;
            if code != NONE {
                match s.refusals.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, n)) => *n += 1,
                    None => s.refusals.push((code, 1)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use mebyo_domain::provider::ConnectionClass;

    #[test]
    fn disclosure_record_and_provider_volume() {
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.person_registered("p1", days(-30));
        log.person_registered("rep", days(-30));
        log.push(represented_by("p1", "rep"));
        log.consent("p1", "k1", "clinic", days(-20), days(60));
        log.credential_for_person("c-p1", "p1", days(-10), None);
        log.credential_for_person("c-rep", "rep", days(-10), None);
        log.credential_for_provider("c-clinic", "clinic", days(-10));
        // Decided by the domain's own read decision, then recorded (P4.6(2)).
        let a1 = log.read_as_provider("clinic", "c-clinic", "p1", &[Category::Vitals], days(0));
        let a2 = log.read_as_provider(
            "clinic",
            "c-clinic",
            "p1",
            &[Category::Allergy],
            days(0) + hours(1),
        );
        let a3 = log.read_as_individual("rep", "c-rep", "p1", days(1));
        let a4 = log.read_as_individual("p1", "c-p1", "p1", days(1));
        let a5 = log.read_as_staff("om", "p1", days(2));
        let m = log.fold();
        let acc = &m.access();
        let lines: Vec<_> = acc.of_person("p1").collect();
        assert_eq!(
            lines.iter().map(|l| l.position).collect::<Vec<_>>(),
            [a5, a4, a3, a2, a1],
            "newest first"
        );
        assert_eq!(
            lines[4].who,
            Who::Provider {
                provider: "clinic",
                credential: "c-clinic"
            }
        );
        assert_eq!(lines[4].outcome, Outcome::Granted);
        assert_eq!(lines[4].consent, Some("k1"));
        assert_eq!(lines[4].purpose, Purpose::Care);
        assert_eq!(lines[4].channel, Channel::ProviderGateway);
        // The consent covers vitals and medication history, not allergies.
        assert_eq!(lines[3].outcome, Outcome::Refused);
        assert_eq!(
            (lines[3].refusal_code, lines[3].refusal_clause),
            (Some("consent.category"), Some("P4.6(2)"))
        );
        assert_eq!(
            lines[2].who,
            Who::Representative {
                person: "rep",
                credential: "c-rep"
            }
        );
        assert_eq!(lines[1].who, Who::Themselves { credential: "c-p1" });
        assert_eq!(lines[0].who, Who::Staff { staff: "om" });
        assert_eq!(lines[0].refusal_code, Some("access.staff"));
        let h0 = (days(0).0 / 3_600_000_000) as u32;
        assert_eq!(
            acc.provider_hourly("clinic", h0, h0 + 24),
            &[
                HourBucket {
                    hour: h0,
                    granted: 1,
                    refused: 0
                },
                HourBucket {
                    hour: h0 + 1,
                    granted: 0,
                    refused: 1
                }
            ]
        );
        assert_eq!(acc.provider_hourly("clinic", h0 + 1, h0 + 1), &[]);
        assert_eq!(acc.provider_totals("clinic"), (1, 1));
        assert_eq!(
            acc.provider_refusals("clinic"),
            vec![("consent.category", 1)]
        );
        assert_eq!(
            acc.refusals_by_code(),
            vec![("access.staff", 1), ("consent.category", 1)]
        );
        acc.check().unwrap();
    }

    #[test]
    fn late_events_land_in_their_hour() {
        let mut s = ProviderStats::default();
        let h = |n: i64| Timestamp(n * 3_600_000_000 + 5);
        for t in [h(10), h(12), h(11), h(10), h(9)] {
            count(&mut s, t, Outcome::Granted, NONE);
        }
        let hours: Vec<_> = s.hourly.iter().map(|b| (b.hour, b.granted)).collect();
        assert_eq!(hours, [(9, 1), (10, 2), (11, 1), (12, 1)]);
    }

    #[test]
    fn erasure_clears_the_log_but_keeps_volumes() {
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.person_registered("p1", days(-30));
        log.consent("p1", "k-secret", "clinic", days(-20), days(60));
        log.credential_for_provider("c-clinic", "clinic", days(-10));
        log.read_as_provider("clinic", "c-clinic", "p1", &[Category::Vitals], days(0));
        log.withdraw_and_erase("p1", days(1));
        let m = log.fold();
        assert_eq!(m.access().of_person("p1").count(), 0);
        assert!(!m.access().consents.text_contains("k-secret"));
        assert_eq!(m.access().provider_totals("clinic"), (1, 0));
        m.access().check().unwrap();
    }
}
