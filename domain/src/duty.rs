//! Staff duties that no aggregate of their own decides: a backup taken on demand
//! and a restore drill (P4.10), a rotation of the key-encryption key (P4.8(1)). Who may take each is a rule, so it lives here,
//! and the running server and the command line ask the same function.

use crate::refusal::Refusal;
use crate::staff::{Role, privileged};
use crate::{Ctx, StaffId};

/// A duty the platform's staff take on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// A full or differential backup now, beside the scheduler's (P4.10).
    Backup,
    /// Restore the latest backups into scratch space and prove the same history (P4.10).
    RestoreDrill,
    /// Rewrap every data key under a new key-encryption key (P4.8(1)).
    KekRotation,
}

impl Duty {
    /// The system operations administrator runs the machines (P3.1(4)); the
    /// operations manager, who owns the operating rules, may stand in (P3.1(3)).
    /// A backup holds every sealed record, so it is privileged: training must be
    /// current (P3.4).
    ///
    /// The KEK guards every sealed payload, so only the system operations
    /// administrator, who holds the keys apart from the data (P4.8(1), P3.1(4)),
    /// rotates it; training must be current too.
    pub fn allowed(self, role: Role) -> bool {
        match self {
            Duty::Backup | Duty::RestoreDrill => matches!(
                role,
                Role::SystemOperationsAdministrator | Role::OperationsManager(_)
            ),
            Duty::KekRotation => role == Role::SystemOperationsAdministrator,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Duty::Backup => "a backup on demand",
            Duty::RestoreDrill => "a restore drill",
            Duty::KekRotation => "a rotation of the key-encryption key",
        }
    }

    /// The clause a refusal of the duty cites.
    pub fn clause(self) -> &'static str {
        match self {
            Duty::Backup | Duty::RestoreDrill => crate::clause!("P4.10"),
            Duty::KekRotation => crate::clause!("P4.8(1)"),
        }
    }
}

/// The acting staff member, if they may take `duty` now (P4.10, P4.8(1), P3.4).
pub fn authorise(duty: Duty, ctx: &Ctx) -> Result<StaffId, Refusal> {
    privileged(ctx, |r| duty.allowed(r), duty.clause(), duty.what())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::{Rank, StaffState, Training};
    use crate::{Actor, Duration, Timestamp};

    fn check(
        roles: &[Role],
        trained: bool,
        duty: Duty,
        expect: Result<(), (&'static str, &'static str)>,
    ) {
        let id = StaffId::new("st-ops").unwrap();
        let now = Timestamp(10 * Duration::days(1).0);
        let state = StaffState {
            id: Some(id.clone()),
            roles: roles.iter().copied().collect(),
            training: trained.then_some(Training {
                completed_at: Timestamp(0),
                valid_until: Timestamp(now.0 + Duration::days(30).0),
            }),
        };
        let actor = Actor::Staff { staff: id.clone() };
        let config = crate::testkit::config();
        let mut ctx = Ctx::new(now, &actor, &config);
        ctx.staff = Some(&state);
        let got = authorise(duty, &ctx).map_err(|r| (r.code, r.clause));
        match expect {
            Ok(()) => assert_eq!(got, Ok(id)),
            Err(refused) => assert_eq!(got, Err(refused)),
        }
    }

    #[test]
    fn p4_10_the_system_operations_administrator_backs_up_and_drills() {
        for duty in [Duty::Backup, Duty::RestoreDrill] {
            check(&[Role::SystemOperationsAdministrator], true, duty, Ok(()));
            check(&[Role::OperationsManager(Rank::Deputy)], true, duty, Ok(()));
        }
    }

    #[test]
    fn p4_10_other_roles_are_refused() {
        for role in [Role::OperationsOffice, Role::Prefecture, Role::Auditor] {
            check(
                &[role],
                true,
                Duty::Backup,
                Err(("staff.role_required", "P4.10")),
            );
        }
    }

    #[test]
    fn p4_8_1_only_the_system_operations_administrator_rotates_the_kek() {
        check(
            &[Role::SystemOperationsAdministrator],
            true,
            Duty::KekRotation,
            Ok(()),
        );
        for role in [
            Role::OperationsManager(Rank::Deputy),
            Role::OperationsOffice,
            Role::Prefecture,
            Role::Auditor,
        ] {
            check(
                &[role],
                true,
                Duty::KekRotation,
                Err(("staff.role_required", "P4.8(1)")),
            );
        }
        check(
            &[Role::SystemOperationsAdministrator],
            false,
            Duty::KekRotation,
            Err(("staff.training_lapsed", "P3.4")),
        );
    }

    #[test]
    fn p3_4_a_lapsed_training_refuses_the_duty() {
        check(
            &[Role::SystemOperationsAdministrator],
            false,
            Duty::Backup,
            Err(("staff.training_lapsed", "P3.4")),
        );
    }
}
