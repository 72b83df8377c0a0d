//! Consents (P4.6(2)): per person the consents they gave, per provider the consents
//! that concern it, and how many are active, revoked or expired at a given `now`.
//! Expiry is evaluated at query time, exactly as the domain does, so no job is needed.

use crate::compact::{Arena, Cats, Interner, NONE, OptTs, chain, check_ix, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::person::PersonEvent;
use mebyo_domain::{Category, Consent, ConsentId, Period, ProviderId, Purpose, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ConsentRow {
    /// Index into `ids`.
    id: u32,
    person: u32,
    provider: u32,
    /// The person or representative who gave it.
    by: u32,
    prev_of_person: u32,
    prev_of_provider: u32,
    period: Period,
    granted_at: Timestamp,
    expires_at: Timestamp,
    revoked_at: OptTs,
    position: u64,
    categories: Cats,
    purpose: Purpose,
    /// The person was erased (P4.9): the row is blanked and skipped everywhere.
    erased: bool,
}

/// Where a consent stands at some `now`, in the order the domain checks it
/// ([`Consent::active_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Granted after `now` (a query about the past).
    NotYetGranted,
    Revoked,
    Expired,
    Active,
}

impl ConsentRow {
    fn state_at(&self, now: Timestamp) -> ConsentState {
        if self.granted_at > now {
            ConsentState::NotYetGranted
        } else if self.revoked_at.get().is_some_and(|r| r <= now) {
            ConsentState::Revoked
        } else if now >= self.expires_at {
            ConsentState::Expired
        } else {
            ConsentState::Active
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    people: Interner,
    providers: Interner,
    /// Consent ids are unique per person only, so they are stored, not interned.
    ids: Arena,
    rows: Vec<ConsentRow>,
    /// Newest consent row per person / per provider, threaded through the rows.
    person_head: Vec<u32>,
    provider_head: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    pub consent: String,
    pub person: String,
    pub provider: String,
    pub categories: BTreeSet<Category>,
    pub purpose: Purpose,
    pub period: Period,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub given_by: String,
    /// Log position of the `person.consent_granted` event.
    pub position: u64,
}

impl ConsentView {
    /// The domain's own consent, to evaluate a read with [`Consent::covers_read`].
    pub fn to_domain(&self) -> Option<Consent> {
        Some(Consent {
            id: ConsentId::new(&self.consent).ok()?,
            provider: ProviderId::new(&self.provider).ok()?,
            categories: self.categories.clone(),
            purpose: self.purpose,
            period: self.period,
            granted_at: self.granted_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }

    pub fn state_at(&self, now: Timestamp) -> ConsentState {
        ConsentRow {
            id: NONE,
            person: NONE,
            provider: NONE,
            by: NONE,
            prev_of_person: NONE,
            prev_of_provider: NONE,
            period: self.period,
            granted_at: self.granted_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at.map_or(OptTs::NONE, OptTs::some),
            position: self.position,
            categories: Cats::default(),
            purpose: self.purpose,
            erased: false,
        }
        .state_at(now)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConsentCounts {
    pub active: u64,
    pub revoked: u64,
    pub expired: u64,
    pub not_yet_granted: u64,
}

impl Consents {
    pub fn apply(&mut self, e: &Applied) {
        let AnyEvent::Person(p) = e.event else {
            return;
        };
        match p {
            PersonEvent::ConsentGranted {
                person,
                consent,
                provider,
                categories,
                purpose,
                period,
                expires_at,
                by,
                at,
            } => {
                let person = self.people.intern(person.as_str());
                let by = self.people.intern(by.as_str());
                let provider = self.providers.intern(provider.as_str());
                ensure_len(&mut self.person_head, person.max(by), NONE);
                ensure_len(&mut self.provider_head, provider, NONE);
                let ix = u32::try_from(self.rows.len()).expect("fewer than 4e9 consents");
                self.rows.push(ConsentRow {
                    id: self.ids.push(consent.as_str()),
                    person,
                    provider,
                    by,
                    prev_of_person: self.person_head[person as usize],
                    prev_of_provider: self.provider_head[provider as usize],
                    period: *period,
                    granted_at: *at,
                    expires_at: *expires_at,
                    revoked_at: OptTs::NONE,
                    position: e.position,
                    categories: Cats::from_set(categories),
                    purpose: *purpose,
                    erased: false,
                });
                self.person_head[person as usize] = ix;
                self.provider_head[provider as usize] = ix;
            }
            PersonEvent::ConsentRevoked {
                person,
                consent,
                at,
                ..
            } => {
                if let Some(ix) = self.find(person.as_str(), consent.as_str()) {
                    let row = &mut self.rows[ix as usize];
                    if row.revoked_at.get().is_none() {
                        row.revoked_at = OptTs::some(*at);
                    }
                }
            }
            PersonEvent::ErasureCompleted { person, .. } => self.erase(person.as_str()),
            _ => {}
        }
    }

    fn find(&self, person: &str, consent: &str) -> Option<u32> {
        let p = self.people.find(person)?;
        chain(&self.rows, self.person_head[p as usize], |r| {
            r.prev_of_person
        })
        .find(|(_, r)| self.ids.get(r.id) == consent)
        .map(|(ix, _)| ix)
    }

    /// P4.9: an erased person's consents leave the model. Rows are blanked in place
    /// (their indices are threaded through provider chains) and skipped thereafter.
    fn erase(&mut self, person: &str) {
        let Some(p) = self.people.find(person) else {
            return;
        };
        let mut cur = std::mem::replace(&mut self.person_head[p as usize], NONE);
        while let Some(row) = self.rows.get_mut(cur as usize) {
            self.ids.scrub(row.id);
            let next = row.prev_of_person;
            *row = ConsentRow {
                id: row.id,
                person: row.person,
                provider: row.provider,
                by: row.person,
                prev_of_person: NONE,
                prev_of_provider: row.prev_of_provider,
                period: Period {
                    from: Timestamp(0),
                    to: Timestamp(0),
                },
                granted_at: Timestamp(0),
                expires_at: Timestamp(0),
                revoked_at: OptTs::NONE,
                position: 0,
                categories: Cats::default(),
                purpose: row.purpose,
                erased: true,
            };
            cur = next;
        }
    }

    fn view(&self, row: &ConsentRow) -> ConsentView {
        ConsentView {
            consent: self.ids.get(row.id).to_owned(),
            person: self.people.get(row.person).to_owned(),
            provider: self.providers.get(row.provider).to_owned(),
            categories: row.categories.to_set(),
            purpose: row.purpose,
            period: row.period,
            granted_at: row.granted_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at.get(),
            given_by: self.people.get(row.by).to_owned(),
            position: row.position,
        }
    }

    /// A person's consents, newest first.
    pub fn of_person(&self, person: &str) -> Vec<ConsentView> {
        let Some(p) = self.people.find(person) else {
            return Vec::new();
        };
        chain(&self.rows, self.person_head[p as usize], |r| {
            r.prev_of_person
        })
        .map(|(_, r)| self.view(r))
        .collect()
    }

    /// The consents given to a provider, newest first (erased people's excluded).
    pub fn of_provider(&self, provider: &str) -> Vec<ConsentView> {
        let Some(p) = self.providers.find(provider) else {
            return Vec::new();
        };
        chain(&self.rows, self.provider_head[p as usize], |r| {
            r.prev_of_provider
        })
        .filter(|(_, r)| !r.erased)
        .map(|(_, r)| self.view(r))
        .collect()
    }

    /// Active consents of `person` to `provider` at `now` (P4.6(2)).
    pub fn active_between(&self, person: &str, provider: &str, now: Timestamp) -> Vec<ConsentView> {
        let (Some(p), Some(pr)) = (self.people.find(person), self.providers.find(provider)) else {
            return Vec::new();
        };
        chain(&self.rows, self.person_head[p as usize], |r| {
            r.prev_of_person
        })
        .filter(|(_, r)| r.provider == pr && r.state_at(now) == ConsentState::Active)
        .map(|(_, r)| self.view(r))
        .collect()
    }

    /// Counts at `now`. One pass over compact rows (about 80 bytes each): `now` is free,
    /// so expiry cannot be precomputed.
    pub fn counts(&self, now: Timestamp) -> ConsentCounts {
        let mut c = ConsentCounts::default();
        for r in self.rows.iter().filter(|r| !r.erased) {
            match r.state_at(now) {
                ConsentState::Active => c.active += 1,
                ConsentState::Revoked => c.revoked += 1,
                ConsentState::Expired => c.expired += 1,
                ConsentState::NotYetGranted => c.not_yet_granted += 1,
            }
        }
        c
    }

    pub fn shrink_to_fit(&mut self) {
        self.people.shrink_to_fit();
        self.providers.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.person_head.shrink_to_fit();
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let n = self.rows.len();
        if self.person_head.len() > self.people.len()
            || self.provider_head.len() > self.providers.len()
        {
            return Err("consent heads without ids");
        }
        for &h in self.person_head.iter().chain(&self.provider_head) {
            check_ix(h, n, "consent head out of range")?;
        }
        for (i, r) in self.rows.iter().enumerate() {
            // Lists run strictly backwards, so walking one always ends.
            for prev in [r.prev_of_person, r.prev_of_provider] {
                if prev != NONE && prev as usize >= i {
                    return Err("consent chain not backwards");
                }
            }
            check_ix(r.id, self.ids.len(), "consent id out of range")?;
            if r.person as usize >= self.person_head.len()
                || r.by as usize >= self.person_head.len()
                || r.provider as usize >= self.provider_head.len()
            {
                return Err("consent party out of range");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use proptest::prelude::*;

    #[test]
    fn per_person_per_provider_and_counts() {
        let mut log = Log::default();
        log.provider_approved(
            "clinic",
            mebyo_domain::provider::ConnectionClass::ClosedIpVpn,
        );
        log.provider_approved("gym", mebyo_domain::provider::ConnectionClass::TlsInternet);
        log.person_registered("p1", days(-5));
        log.person_registered("p2", days(-5));
        log.consent("p1", "k1", "clinic", days(0), days(30));
        log.consent("p1", "k2", "gym", days(1), days(10));
        log.consent("p2", "k1", "clinic", days(2), days(60)); // same id, other person
        log.revoke_consent("p1", "k1", days(3));
        let m = log.fold();
        let c = &m.consents();
        let p1 = c.of_person("p1");
        assert_eq!(
            p1.iter().map(|v| v.consent.as_str()).collect::<Vec<_>>(),
            ["k2", "k1"],
            "newest first"
        );
        assert_eq!(p1[1].revoked_at, Some(days(3)));
        assert_eq!(p1[1].state_at(days(4)), ConsentState::Revoked);
        assert_eq!(p1[1].state_at(days(2)), ConsentState::Active);
        let clinic = c.of_provider("clinic");
        assert_eq!(
            clinic.iter().map(|v| v.person.as_str()).collect::<Vec<_>>(),
            ["p2", "p1"]
        );
        assert_eq!(c.active_between("p2", "clinic", days(5)).len(), 1);
        assert!(c.active_between("p1", "clinic", days(5)).is_empty());
        assert_eq!(
            c.counts(days(20)),
            ConsentCounts {
                active: 1,
                revoked: 1,
                expired: 1,
                not_yet_granted: 0
            }
        );
        assert_eq!(c.counts(days(0)).not_yet_granted, 2);
        // The view feeds the domain's own read check (P4.6(2)).
        let k = clinic[0].to_domain().unwrap();
        assert!(k.active_at(days(5)).is_ok());
        c.check().unwrap();
    }

    #[test]
    fn erasure_removes_consents_everywhere() {
        let mut log = Log::default();
        log.provider_approved(
            "clinic",
            mebyo_domain::provider::ConnectionClass::ClosedIpVpn,
        );
        log.person_registered("p1", days(-5));
        log.person_registered("p2", days(-5));
        log.consent("p1", "k1", "clinic", days(0), days(30));
        log.consent("p2", "k9", "clinic", days(0), days(30));
        log.withdraw_and_erase("p1", days(5));
        let m = log.fold();
        let c = &m.consents();
        assert!(c.of_person("p1").is_empty());
        let clinic = c.of_provider("clinic");
        assert_eq!(clinic.len(), 1);
        assert_eq!(clinic[0].person, "p2");
        assert_eq!(c.counts(days(1)).active, 1);
        // P4.9: the consent id no longer sits in memory or in a snapshot.
        assert!(!c.ids.text_contains("k1"));
        c.check().unwrap();
    }

    proptest! {
        /// The projection's cheap state matches the domain's `Consent::active_at`.
        #[test]
        fn state_matches_domain(granted in 0i64..100, expires in 0i64..100,
                                revoked in proptest::option::of(0i64..100), now in 0i64..100) {
            let view = ConsentView {
                consent: "k".into(),
                person: "p".into(),
                provider: "pr".into(),
                categories: [Category::Vitals].into(),
                purpose: Purpose::Care,
                period: Period { from: Timestamp(0), to: Timestamp(1) },
                granted_at: Timestamp(granted),
                expires_at: Timestamp(expires),
                revoked_at: revoked.map(Timestamp),
                given_by: "p".into(),
                position: 0,
            };
            let domain = view.to_domain().unwrap().active_at(Timestamp(now));
            let ours = view.state_at(Timestamp(now));
            let expect = match domain {
                Ok(()) => ConsentState::Active,
                Err(r) => match r.code {
                    "consent.revoked" => ConsentState::Revoked,
                    "consent.expired" => ConsentState::Expired,
                    _ => ConsentState::NotYetGranted,
                },
            };
            prop_assert_eq!(ours, expect);
        }
    }
}
