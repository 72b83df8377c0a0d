//! Records index (P2(1), P5.1): per person the records they hold, with category,
//! clinical time, provenance summary, correction links and the log position of the
//! event. The health content itself stays encrypted in the store: a reader fetches the
//! event at `position` and decrypts it; this index holds nothing more than the above.

use crate::compact::{Arena, Interner, NONE, PartyIx, chain, check_ix, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::fhir::VitalKind;
use mebyo_domain::person::PersonEvent;
use mebyo_domain::records::{Origin, Party, RecordEvent};
use mebyo_domain::{Category, Period, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RecordRow {
    /// Index into `ids`.
    id: u32,
    /// Previous record of the same person (newest-first list).
    prev: u32,
    /// Row this one corrects, and the row correcting this one ([`NONE`] if none).
    supersedes: u32,
    superseded_by: u32,
    created_by: PartyIx,
    delivered_by: PartyIx,
    effective_at: Timestamp,
    recorded_at: Timestamp,
    position: u64,
    category: Category,
    origin: Origin,
    vital: Option<VitalKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsIndex {
    people: Interner,
    providers: Interner,
    /// Record ids are unique per person only, so stored, not interned.
    ids: Arena,
    rows: Vec<RecordRow>,
    head: Vec<u32>,
    /// Records per category (corrections included), for the dashboard.
    per_category: [u64; Category::ALL.len()],
    erased_rows: u64,
}

/// One entry of a person's record list. Borrowed: listing is cheap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordRef<'a> {
    pub record: &'a str,
    pub category: Category,
    pub vital: Option<VitalKind>,
    pub effective_at: Timestamp,
    pub recorded_at: Timestamp,
    pub origin: Origin,
    pub created_by: PartyRef<'a>,
    pub delivered_by: PartyRef<'a>,
    pub supersedes: Option<&'a str>,
    pub superseded_by: Option<&'a str>,
    /// Where the full (encrypted) event sits in the log.
    pub position: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum PartyRef<'a> {
    Person(&'a str),
    Provider(&'a str),
}

impl RecordRef<'_> {
    /// Not superseded by a correction: what a reader shows by default.
    pub fn is_current(&self) -> bool {
        self.superseded_by.is_none()
    }
}

impl RecordsIndex {
    pub fn apply(&mut self, e: &Applied) {
        match e.event {
            AnyEvent::Record(r) => self.record(r, e.position),
            AnyEvent::Person(PersonEvent::ErasureCompleted { person, .. }) => {
                self.erase(person.as_str())
            }
            _ => {}
        }
    }

    fn party(&mut self, p: &Party) -> PartyIx {
        match p {
            Party::Person { person } => PartyIx::person(self.people.intern(person.as_str())),
            Party::Provider { provider } => {
                PartyIx::provider(self.providers.intern(provider.as_str()))
            }
        }
    }

    fn record(&mut self, r: &RecordEvent, position: u64) {
        let (person, entry, supersedes, at) = match r {
            RecordEvent::Added { person, entry, at } => (person, entry, None, *at),
            RecordEvent::Corrected {
                person,
                supersedes,
                entry,
                at,
            } => (person, entry, Some(supersedes), *at),
        };
        let p = self.people.intern(person.as_str());
        let created_by = self.party(&entry.provenance.created_by);
        let delivered_by = self.party(&entry.provenance.delivered_by);
        ensure_len(&mut self.head, self.people.len() as u32 - 1, NONE);
        let head = self.head[p as usize];
        let ix = u32::try_from(self.rows.len()).expect("fewer than 4e9 records");
        // Record ids are scoped to the person, so the superseded one is found on their
        // own list; lists are short (tens), the walk is cheap.
        let old = supersedes.and_then(|s| {
            chain(&self.rows, head, |r| r.prev)
                .find(|(_, r)| self.ids.get(r.id) == s.as_str())
                .map(|(i, _)| i)
        });
        if let Some(old) = old {
            self.rows[old as usize].superseded_by = ix;
        }
        self.rows.push(RecordRow {
            id: self.ids.push(entry.record.as_str()),
            prev: head,
            supersedes: old.unwrap_or(NONE),
            superseded_by: NONE,
            created_by,
            delivered_by,
            effective_at: entry.effective_at,
            recorded_at: at,
            position,
            category: entry.category,
            origin: entry.provenance.origin,
            vital: entry.vital,
        });
        self.head[p as usize] = ix;
        self.per_category[cat_ix(entry.category)] += 1;
    }

    /// P4.9: once the person's keys are destroyed their events cannot be read, so the
    /// index forgets their records too: ids overwritten, rows blanked, list cut.
    fn erase(&mut self, person: &str) {
        let Some(p) = self.people.find(person) else {
            return;
        };
        let Some(head) = self.head.get_mut(p as usize) else {
            return;
        };
        let mut cur = std::mem::replace(head, NONE);
        while let Some(row) = self.rows.get_mut(cur as usize) {
            self.ids.scrub(row.id);
            self.per_category[cat_ix(row.category)] -= 1;
            self.erased_rows += 1;
            let next = row.prev;
            *row = RecordRow {
                id: row.id,
                prev: NONE,
                supersedes: NONE,
                superseded_by: NONE,
                created_by: PartyIx::person(p),
                delivered_by: PartyIx::person(p),
                effective_at: Timestamp(0),
                recorded_at: Timestamp(0),
                position: 0,
                category: Category::Vitals,
                origin: Origin::SelfEntered,
                vital: None,
            };
            cur = next;
        }
    }

    fn party_ref(&self, p: PartyIx) -> PartyRef<'_> {
        match p.split() {
            Ok(i) => PartyRef::Person(self.people.get(i)),
            Err(i) => PartyRef::Provider(self.providers.get(i)),
        }
    }

    fn view(&self, r: &RecordRow) -> RecordRef<'_> {
        let link = |i: u32| self.rows.get(i as usize).map(|r| self.ids.get(r.id));
        RecordRef {
            record: self.ids.get(r.id),
            category: r.category,
            vital: r.vital,
            effective_at: r.effective_at,
            recorded_at: r.recorded_at,
            origin: r.origin,
            created_by: self.party_ref(r.created_by),
            delivered_by: self.party_ref(r.delivered_by),
            supersedes: link(r.supersedes),
            superseded_by: link(r.superseded_by),
            position: r.position,
        }
    }

    /// A person's records, newest event first, corrections and superseded ones
    /// included (filter with [`RecordRef::is_current`]).
    pub fn of_person<'s>(&'s self, person: &str) -> impl Iterator<Item = RecordRef<'s>> + 's {
        let head = self
            .people
            .find(person)
            .and_then(|p| self.head.get(p as usize).copied())
            .unwrap_or(NONE);
        chain(&self.rows, head, |r| r.prev).map(|(_, r)| self.view(r))
    }

    /// The current records of `categories` whose clinical time lies in `period`: the
    /// positions an access granted for exactly that (P4.6(2)) may fetch.
    pub fn select<'s>(
        &'s self,
        person: &str,
        categories: &'s [Category],
        period: Period,
    ) -> impl Iterator<Item = RecordRef<'s>> + 's {
        self.of_person(person).filter(move |r| {
            r.is_current() && categories.contains(&r.category) && period.contains(r.effective_at)
        })
    }

    pub fn count_by_category(&self) -> impl Iterator<Item = (Category, u64)> + '_ {
        Category::ALL
            .into_iter()
            .zip(self.per_category.iter().copied())
    }

    pub fn shrink_to_fit(&mut self) {
        self.people.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.head.shrink_to_fit();
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let n = self.rows.len();
        if self.head.len() > self.people.len() {
            return Err("record heads without people");
        }
        for &h in &self.head {
            check_ix(h, n, "record head out of range")?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            if r.prev != NONE && r.prev as usize >= i {
                return Err("record chain not backwards");
            }
            check_ix(r.supersedes, n, "record link out of range")?;
            check_ix(r.superseded_by, n, "record link out of range")?;
            check_ix(r.id, self.ids.len(), "record id out of range")?;
            for p in [r.created_by, r.delivered_by] {
                let ok = match p.split() {
                    Ok(i) => (i as usize) < self.people.len(),
                    Err(i) => (i as usize) < self.providers.len(),
                };
                if !ok {
                    return Err("record party out of range");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl RecordsIndex {
    /// A head pointing past the rows: what a buggy writer could leave behind.
    pub(crate) fn corrupt_head_for_test(&mut self) {
        self.head.push(self.rows.len() as u32 + 5);
        self.people.intern("corrupt-head");
    }
}

fn cat_ix(c: Category) -> usize {
    Category::ALL
        .iter()
        .position(|x| *x == c)
        .expect("Category::ALL lists every category")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use mebyo_domain::provider::ConnectionClass;

    #[test]
    fn index_links_corrections_and_keeps_provenance() {
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.person_registered("p1", days(-30));
        log.consent("p1", "k1", "clinic", days(-20), days(60));
        let r1 = log.self_vital("p1", "r1", days(-1));
        let r2 = log.clinic_vital("p1", "r2", "clinic", days(-2));
        let r3 = log.correct_self_vital("p1", "r3", "r1", days(-1));
        let m = log.fold();
        let ix = &m.records();
        let all: Vec<_> = ix.of_person("p1").collect();
        assert_eq!(
            all.iter().map(|r| r.record).collect::<Vec<_>>(),
            ["r3", "r2", "r1"]
        );
        assert_eq!(
            all.iter().map(|r| r.position).collect::<Vec<_>>(),
            [r3, r2, r1],
            "positions point back at the events"
        );
        assert_eq!(all[2].superseded_by, Some("r3"));
        assert_eq!(all[0].supersedes, Some("r1"));
        // P5.1: provenance summary.
        assert_eq!(all[1].origin, Origin::MedicalInstitution);
        assert_eq!(all[1].delivered_by, PartyRef::Provider("clinic"));
        assert_eq!(all[0].created_by, PartyRef::Person("p1"));
        let current: Vec<_> = ix
            .select(
                "p1",
                &[Category::Vitals],
                Period {
                    from: days(-10),
                    to: days(0),
                },
            )
            .map(|r| r.record)
            .collect();
        assert_eq!(current, ["r3", "r2"]);
        assert_eq!(
            ix.count_by_category().find(|(c, _)| *c == Category::Vitals),
            Some((Category::Vitals, 3))
        );
        assert_eq!(ix.of_person("nobody").count(), 0);
        ix.check().unwrap();
    }

    #[test]
    fn erasure_forgets_records() {
        let mut log = Log::default();
        log.person_registered("p1", days(-30));
        log.person_registered("p2", days(-30));
        log.self_vital("p1", "secret-rec", days(-1));
        log.self_vital("p2", "r2", days(-1));
        log.withdraw_and_erase("p1", days(1));
        let m = log.fold();
        assert_eq!(m.records().of_person("p1").count(), 0);
        assert_eq!(m.records().of_person("p2").count(), 1);
        assert!(!m.records().ids.text_contains("secret-rec"));
        assert_eq!(
            m.records().count_by_category().map(|(_, n)| n).sum::<u64>(),
            1
        );
        m.records().check().unwrap();
    }
}
