//! Connection information (P4.12, P4.13): state, holder and expiry per credential,
//! the renewal reminders (`near_expiry`), lapsed ones (`expired`) and revocations with
//! their reasons.

use crate::compact::{Interner, NONE, OptTs, PartyIx, check_ix};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::credential::{CredentialEvent, Holder, RevocationReason};
use mebyo_domain::person::PersonEvent;
use mebyo_domain::{Duration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    Lost,
    Revoked(RevocationReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct CredRow {
    holder: PartyIx,
    /// A provider's responsible person (index into `staff`), or [`NONE`].
    responsible: u32,
    /// The credential this one replaces (index into `ids`), or [`NONE`].
    replaces: u32,
    /// Who revoked it (index into `staff`), or [`NONE`].
    revoked_by: u32,
    renewals: u32,
    issued_at: Timestamp,
    expires_at: Timestamp,
    /// Loss report or revocation time.
    ended_at: OptTs,
    /// Position of the `credential.issued` event.
    position: u64,
    status: CredentialStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    ids: Interner,
    /// `rows[i]` belongs to `ids[i]`; ids named only as `replaces` have no row yet.
    rows: Vec<Option<CredRow>>,
    people: Interner,
    providers: Interner,
    staff: Interner,
    /// Rows revoked by the prefecture, in revocation order (P4.13).
    revocations: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialView {
    pub credential: String,
    pub holder: HolderView,
    pub status: CredentialStatus,
    pub issued_at: Timestamp,
    /// Already cut to the loss or revocation time, as the domain does.
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub replaces: Option<String>,
    pub renewals: u32,
    pub revoked_by: Option<String>,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HolderView {
    Provider {
        provider: String,
        responsible: String,
    },
    Individual {
        person: String,
    },
}

impl CredentialView {
    /// Usable at `now`: the domain's `credential_valid` (P4.12, P4.13).
    pub fn valid_at(&self, now: Timestamp) -> bool {
        self.status == CredentialStatus::Active && self.issued_at <= now && now < self.expires_at
    }
}

impl Credentials {
    pub fn apply(&mut self, e: &Applied) {
        if let AnyEvent::Person(PersonEvent::ErasureCompleted { person, .. }) = e.event {
            self.erase(person.as_str());
            return;
        }
        let AnyEvent::Credential(c) = e.event else {
            return;
        };
        match c {
            CredentialEvent::Issued {
                credential,
                holder,
                replaces,
                expires_at,
                at,
                ..
            } => {
                let (holder, responsible) = match holder {
                    Holder::Provider {
                        provider,
                        responsible,
                    } => (
                        PartyIx::provider(self.providers.intern(provider.as_str())),
                        self.staff.intern(responsible.as_str()),
                    ),
                    Holder::Individual { person } => {
                        (PartyIx::person(self.people.intern(person.as_str())), NONE)
                    }
                };
                let replaces = replaces.as_ref().map_or(NONE, |r| self.slot(r.as_str()));
                let ix = self.slot(credential.as_str());
                self.rows[ix as usize] = Some(CredRow {
                    holder,
                    responsible,
                    replaces,
                    revoked_by: NONE,
                    renewals: 0,
                    issued_at: *at,
                    expires_at: *expires_at,
                    ended_at: OptTs::NONE,
                    position: e.position,
                    status: CredentialStatus::Active,
                });
            }
            CredentialEvent::Renewed {
                credential,
                expires_at,
                ..
            } => {
                if let Some(row) = self.row_mut(credential.as_str()) {
                    row.expires_at = *expires_at;
                    row.renewals += 1;
                }
            }
            CredentialEvent::LossReported { credential, at } => {
                if let Some(row) = self.row_mut(credential.as_str()) {
                    row.status = CredentialStatus::Lost;
                    row.ended_at = OptTs::some(*at);
                    row.expires_at = row.expires_at.min(*at);
                }
            }
            CredentialEvent::Revoked {
                credential,
                reason,
                by,
                at,
            } => {
                let by = self.staff.intern(by.as_str());
                let Some(ix) = self.ids.find(credential.as_str()) else {
                    return;
                };
                if let Some(row) = self.rows[ix as usize].as_mut() {
                    row.status = CredentialStatus::Revoked(*reason);
                    row.ended_at = OptTs::some(*at);
                    row.expires_at = row.expires_at.min(*at);
                    row.revoked_by = by;
                    self.revocations.push(ix);
                }
            }
        }
    }

    /// P4.9: an erased person's connection information leaves the model: their
    /// rows go, so no reminder, expiry list or revocation list names them. The
    /// pseudonym stays interned, as in the registry and the ledger's plaintext
    /// envelopes; credential ids too: they are random, and another row may name one
    /// as replaced.
    /// One pass over the rows per erasure: erasures are rare, reads are not.
    fn erase(&mut self, person: &str) {
        let Some(p) = self.people.find(person) else {
            return;
        };
        let holder = PartyIx::person(p);
        let mut gone = Vec::new();
        for (i, r) in self.rows.iter_mut().enumerate() {
            if r.is_some_and(|r| r.holder == holder) {
                *r = None;
                gone.push(i as u32);
            }
        }
        self.revocations.retain(|ix| !gone.contains(ix));
    }

    fn slot(&mut self, id: &str) -> u32 {
        let ix = self.ids.intern(id);
        if self.rows.len() <= ix as usize {
            self.rows.resize(ix as usize + 1, None);
        }
        ix
    }

    fn row_mut(&mut self, id: &str) -> Option<&mut CredRow> {
        let ix = self.ids.find(id)?;
        self.rows[ix as usize].as_mut()
    }

    fn view(&self, ix: u32, r: &CredRow) -> CredentialView {
        let staff = |i: u32| (i != NONE).then(|| self.staff.get(i).to_owned());
        CredentialView {
            credential: self.ids.get(ix).to_owned(),
            holder: match r.holder.split() {
                Ok(p) => HolderView::Individual {
                    person: self.people.get(p).to_owned(),
                },
                Err(p) => HolderView::Provider {
                    provider: self.providers.get(p).to_owned(),
                    responsible: self.staff.get(r.responsible).to_owned(),
                },
            },
            status: r.status,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            ended_at: r.ended_at.get(),
            replaces: (r.replaces != NONE).then(|| self.ids.get(r.replaces).to_owned()),
            renewals: r.renewals,
            revoked_by: staff(r.revoked_by),
            position: r.position,
        }
    }

    fn issued(&self) -> impl Iterator<Item = (u32, &CredRow)> {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i as u32, r)))
    }

    pub fn get(&self, credential: &str) -> Option<CredentialView> {
        let ix = self.ids.find(credential)?;
        let row = self.rows[ix as usize].as_ref()?;
        Some(self.view(ix, row))
    }

    /// Active credentials whose expiry falls within `[now, now + within)`: the holders
    /// to remind to renew (P4.12(1)). Soonest first.
    pub fn near_expiry(&self, now: Timestamp, within: Duration) -> Vec<CredentialView> {
        let until = now + within;
        let mut v: Vec<_> = self
            .issued()
            .filter(|(_, r)| {
                r.status == CredentialStatus::Active && now <= r.expires_at && r.expires_at < until
            })
            .map(|(i, r)| self.view(i, r))
            .collect();
        v.sort_by_key(|c| c.expires_at);
        v
    }

    /// Active credentials past their expiry at `now`: lapsed without renewal, to be
    /// reissued rather than renewed (P4.12(1)). Oldest expiry first.
    pub fn expired(&self, now: Timestamp) -> Vec<CredentialView> {
        let mut v: Vec<_> = self
            .issued()
            .filter(|(_, r)| r.status == CredentialStatus::Active && r.expires_at <= now)
            .map(|(i, r)| self.view(i, r))
            .collect();
        v.sort_by_key(|c| c.expires_at);
        v
    }

    /// Revocations in the order they happened, each with its reason and clause
    /// (`RevocationReason::clause`, P4.13(1)-(3)).
    pub fn revocations(&self) -> Vec<CredentialView> {
        self.revocations
            .iter()
            .filter_map(|&i| Some(self.view(i, self.rows[i as usize].as_ref()?)))
            .collect()
    }

    /// Credentials held by an individual, in issue order.
    pub fn of_person(&self, person: &str) -> Vec<CredentialView> {
        let Some(p) = self.people.find(person) else {
            return Vec::new();
        };
        let mut v: Vec<_> = self
            .issued()
            .filter(|(_, r)| r.holder == PartyIx::person(p))
            .map(|(i, r)| self.view(i, r))
            .collect();
        v.sort_by_key(|c| c.position);
        v
    }

    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.people.shrink_to_fit();
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.rows.len() > self.ids.len() {
            return Err("credential rows without ids");
        }
        for (_, r) in self.issued() {
            let holder_ok = match r.holder.split() {
                Ok(p) => (p as usize) < self.people.len(),
                Err(p) => (p as usize) < self.providers.len(),
            };
            if !holder_ok {
                return Err("credential holder out of range");
            }
            check_ix(
                r.replaces,
                self.ids.len(),
                "credential replaces out of range",
            )?;
            check_ix(
                r.responsible,
                self.staff.len(),
                "credential staff out of range",
            )?;
            check_ix(
                r.revoked_by,
                self.staff.len(),
                "credential staff out of range",
            )?;
        }
        for &i in &self.revocations {
            check_ix(i, self.rows.len(), "revocation out of range")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn expiry_loss_revocation_and_reissue() {
        let mut log = Log::default();
        log.person_registered("p1", days(-10));
        log.person_registered("p2", days(-10));
        // Issued at day 0 with the 90-day renewal interval of the testkit config.
        log.credential_for_person("c1", "p1", days(0), None);
        log.credential_for_person("c2", "p2", days(0), None);
        log.credential_for_person("c3", "p2", days(5), None);
        log.push(CredentialEvent::LossReported {
            credential: cid("c2"),
            at: days(6),
        });
        log.credential_for_person("c4", "p2", days(7), Some("c2"));
        log.push(CredentialEvent::Revoked {
            credential: cid("c3"),
            reason: RevocationReason::JudgedRisk,
            by: sid("pref"),
            at: days(8),
        });
        let m = log.fold();
        let c = &m.credentials();
        let c1 = c.get("c1").unwrap();
        assert!(c1.valid_at(days(89)) && !c1.valid_at(days(90)));
        assert_eq!(
            c1.holder,
            HolderView::Individual {
                person: "p1".into()
            }
        );
        let near: Vec<_> = c
            .near_expiry(days(80), Duration::days(14))
            .into_iter()
            .map(|v| v.credential)
            .collect();
        assert_eq!(near, ["c1"], "lost and revoked ones need no reminder");
        assert_eq!(
            c.expired(days(100))
                .into_iter()
                .map(|v| v.credential)
                .collect::<Vec<_>>(),
            ["c1", "c4"]
        );
        let revs = c.revocations();
        assert_eq!(revs.len(), 1);
        assert_eq!(
            revs[0].status,
            CredentialStatus::Revoked(RevocationReason::JudgedRisk)
        );
        assert_eq!(RevocationReason::JudgedRisk.clause(), "P4.13(3)");
        assert_eq!(revs[0].revoked_by.as_deref(), Some("pref"));
        assert_eq!(revs[0].expires_at, days(8), "revocation cuts expiry");
        let c2 = c.get("c2").unwrap();
        assert_eq!(
            (c2.status, c2.ended_at),
            (CredentialStatus::Lost, Some(days(6)))
        );
        assert_eq!(c.get("c4").unwrap().replaces.as_deref(), Some("c2"));
        assert_eq!(c.of_person("p2").len(), 3);
        c.check().unwrap();
    }

    #[test]
    fn p4_9_erasure_removes_the_persons_credentials_and_only_theirs() {
        let mut log = Log::default();
        log.person_registered("p1", days(-10));
        log.person_registered("p2", days(-10));
        log.credential_for_person("c1", "p1", days(0), None);
        log.credential_for_person("c2", "p1", days(1), None);
        log.credential_for_person("c3", "p2", days(1), None);
        for c in ["c2", "c3"] {
            log.push(CredentialEvent::Revoked {
                credential: cid(c),
                reason: RevocationReason::JudgedRisk,
                by: sid("pref"),
                at: days(2),
            });
        }
        let before = log.fold();
        assert_eq!(before.credentials().of_person("p1").len(), 2);
        log.withdraw_and_erase("p1", days(3));
        let m = log.fold();
        let c = m.credentials();
        assert!(c.get("c1").is_none() && c.get("c2").is_none());
        assert!(c.of_person("p1").is_empty());
        assert_eq!(
            c.revocations()
                .iter()
                .map(|v| v.credential.as_str())
                .collect::<Vec<_>>(),
            ["c3"]
        );
        assert!(c.get("c3").is_some(), "another person's rows stay");
        assert!(
            !c.near_expiry(days(80), Duration::days(30))
                .iter()
                .any(|v| v.credential == "c1"),
            "no renewal reminder for an erased person"
        );
    }

    #[test]
    fn renewal_extends_expiry() {
        let mut log = Log::default();
        log.person_registered("p1", days(-10));
        log.credential_for_person("c1", "p1", days(0), None);
        log.push(CredentialEvent::Renewed {
            credential: cid("c1"),
            expires_at: days(170),
            at: days(80),
        });
        let m = log.fold();
        let c1 = m.credentials().get("c1").unwrap();
        assert_eq!((c1.expires_at, c1.renewals), (days(170), 1));
        assert!(m.credentials().expired(days(100)).is_empty());
    }
}
