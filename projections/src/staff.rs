//! Staff roster (P3.1, P3.4): roles held per staff member and privacy training expiry.
//! Privileged actions are refused to staff whose training is not current, so the
//! roster lists who is about to lapse.

use crate::compact::{Interner, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::staff::{StaffEvent, Training};
use mebyo_domain::{Duration, Role, StaffId, StaffState, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRow {
    /// Roles held, with the time of appointment.
    pub roles: Vec<(Role, Timestamp)>,
    pub training: Option<Training>,
}

impl StaffRow {
    /// The domain's own rule (P3.4): completed and not yet lapsed at `now`.
    pub fn training_current(&self, now: Timestamp) -> bool {
        StaffState {
            id: None,
            roles: Default::default(),
            training: self.training,
        }
        .training_current(now)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRoster {
    ids: Interner,
    rows: Vec<StaffRow>,
}

impl StaffRoster {
    pub fn apply(&mut self, e: &Applied) {
        let AnyEvent::Staff(s) = e.event else {
            return;
        };
        let staff = s.staff();
        let ix = self.ids.intern(staff.as_str());
        ensure_len(&mut self.rows, ix, StaffRow::default());
        let row = &mut self.rows[ix as usize];
        match s {
            StaffEvent::Appointed { role, at, .. } => {
                if !row.roles.iter().any(|(r, _)| r == role) {
                    row.roles.push((*role, *at));
                }
            }
            StaffEvent::Dismissed { role, .. } => row.roles.retain(|(r, _)| r != role),
            StaffEvent::TrainingRecorded { training, .. } => row.training = Some(*training),
            StaffEvent::SignInReset { .. }
            | StaffEvent::PasswordChanged { .. }
            | StaffEvent::SecondFactorEnrolled { .. } => {}
        }
    }

    pub fn get(&self, staff: &str) -> Option<&StaffRow> {
        self.rows.get(self.ids.find(staff)? as usize)
    }

    pub fn roles(&self, staff: &str) -> Vec<Role> {
        self.get(staff)
            .map(|r| r.roles.iter().map(|(r, _)| *r).collect())
            .unwrap_or_default()
    }

    pub fn training_current(&self, staff: &str, now: Timestamp) -> bool {
        self.get(staff).is_some_and(|r| r.training_current(now))
    }

    /// Holders of `role`.
    pub fn holders(&self, role: Role) -> Vec<&str> {
        self.iter()
            .filter(|(_, r)| r.roles.iter().any(|(x, _)| *x == role))
            .map(|(id, _)| id)
            .collect()
    }

    /// Staff holding any role whose training is not current at `now + within`: lapsed
    /// already (within = 0) or about to, so the operations manager can retrain them
    /// before their privileged actions start being refused (P3.4).
    pub fn training_due(&self, now: Timestamp, within: Duration) -> Vec<(&str, Option<Timestamp>)> {
        self.iter()
            .filter(|(_, r)| !r.roles.is_empty() && !r.training_current(now + within))
            .map(|(id, r)| (id, r.training.map(|t| t.valid_until)))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &StaffRow)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| (self.ids.get(i as u32), r))
    }

    /// The roster entry as the domain's state, for a decision needing [`StaffState`].
    pub fn state(&self, staff: &str) -> Option<StaffState> {
        let row = self.get(staff)?;
        Some(StaffState {
            id: StaffId::new(staff).ok(),
            roles: row.roles.iter().map(|(r, _)| *r).collect(),
            training: row.training,
        })
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.rows.len() > self.ids.len() {
            return Err("staff rows without ids");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use mebyo_domain::staff::Rank;

    #[test]
    fn roles_and_training() {
        // The testkit's staff come from the domain's deciders: `ba` ex officio, the
        // managers and office appointed along the chain (P3.1), all trained.
        let log = Log::default();
        let m = log.fold();
        let s = &m.staff();
        assert_eq!(s.roles("ba"), vec![Role::BusinessAdministrator]);
        assert_eq!(s.roles("om"), vec![Role::OperationsManager(Rank::Primary)]);
        assert_eq!(s.holders(Role::Prefecture), vec!["pref"]);
        assert!(s.training_current("office", days(0)));
        // Training runs a year from day -400 + ... (testkit): lapsed by day 400.
        assert!(!s.training_current("office", days(400)));
        assert!(s.training_due(days(0), Duration::days(0)).is_empty());
        assert_eq!(s.training_due(days(0), Duration::days(400)).len(), 5);
        assert!(!s.training_current("nobody", days(0)));
        let st = s.state("pref").unwrap();
        assert!(st.holds(|r| r == Role::Prefecture));
    }

    #[test]
    fn dismissal_removes_role() {
        let mut log = Log::default();
        log.push(StaffEvent::Dismissed {
            staff: sid("office"),
            role: Role::OperationsOffice,
            by: sid("om"),
            at: days(1),
        });
        let m = log.fold();
        assert!(m.staff().roles("office").is_empty());
        assert!(m.staff().training_due(days(0), Duration::days(400)).len() == 4);
    }
}
