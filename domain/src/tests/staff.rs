//! P3.1 chain of authority, P3.4 privacy training.

use crate::staff::{Rank, Role::*, Staff, StaffCommand, StaffEvent, Training};
use crate::testkit::*;
use crate::*;

fn appoint(staff: &str, role: Role) -> StaffCommand {
    StaffCommand::Appoint {
        staff: sid(staff),
        role,
    }
}

#[test]
fn p3_1_1_business_administrator_is_ex_officio() {
    let cfg = config();
    let ctx = Ctx::new(T0, &Actor::System, &cfg);
    check::<Staff>(
        &ctx,
        &[],
        appoint("ba", BusinessAdministrator),
        Events(vec![StaffEvent::Appointed {
            staff: sid("ba"),
            role: BusinessAdministrator,
            by: None,
            at: T0,
        }]),
    );
    check::<Staff>(
        &ctx,
        &[],
        appoint("mallory", BusinessAdministrator),
        Refused("staff.appointment_chain", "P3.1(1)"),
    );
    let om = staff("om", OperationsManager(Rank::Primary), true);
    let by_om = staff_actor("om");
    let ctx = Ctx::new(T0, &by_om, &cfg).staff(&om);
    check::<Staff>(
        &ctx,
        &[],
        appoint("ba", BusinessAdministrator),
        Refused("staff.appointment_chain", "P3.1(1)"),
    );
}

#[test]
fn p3_1_business_administrator_appoints_managers_primary_and_deputy() {
    let cfg = config();
    let ba = staff("ba", BusinessAdministrator, true);
    let actor = staff_actor("ba");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&ba);
    for role in [
        BusinessImplementationManager(Rank::Primary),
        BusinessImplementationManager(Rank::Deputy),
        OperationsManager(Rank::Primary),
        OperationsManager(Rank::Deputy),
    ] {
        check::<Staff>(
            &ctx,
            &[],
            appoint("m1", role),
            Events(vec![StaffEvent::Appointed {
                staff: sid("m1"),
                role,
                by: Some(sid("ba")),
                at: T0,
            }]),
        );
    }
    // The head does not skip a level: system operations administrators come from the
    // operations manager.
    check::<Staff>(
        &ctx,
        &[],
        appoint("s1", SystemOperationsAdministrator),
        Refused("staff.role_required", "P3.1"),
    );
}

#[test]
fn p3_1_operations_manager_appoints_system_operations_administrators() {
    let cfg = config();
    let om = staff("om", OperationsManager(Rank::Deputy), true);
    let actor = staff_actor("om");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&om);
    check::<Staff>(
        &ctx,
        &[],
        appoint("s1", SystemOperationsAdministrator),
        Types(&["staff.appointed"]),
    );
    check::<Staff>(
        &ctx,
        &[],
        appoint("s1", OperationsManager(Rank::Primary)),
        Refused("staff.role_required", "P3.1"),
    );
    check::<Staff>(
        &ctx,
        &[],
        appoint("om", SystemOperationsAdministrator),
        Refused("staff.self_appointment", "P3.1"),
    );
}

#[test]
fn p3_1_every_appointment_off_the_chain_is_refused() {
    let cfg = config();
    for appointer in Role::ALL {
        let s = staff("x", appointer, true);
        let actor = staff_actor("x");
        let ctx = Ctx::new(T0, &actor, &cfg).staff(&s);
        for role in Role::ALL {
            let r = staff::decide(&Default::default(), &appoint("y", role), &ctx);
            assert_eq!(
                r.is_ok(),
                role.appointable_by(appointer),
                "{appointer:?} appoints {role:?}"
            );
            if let Err(r) = r {
                assert!(r.clause.starts_with("P3.1"), "{r}");
            }
        }
    }
}

#[test]
fn p3_4_privileged_action_refused_when_training_lapsed() {
    let cfg = config();
    let ba = staff("ba", BusinessAdministrator, false);
    let actor = staff_actor("ba");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&ba);
    check::<Staff>(
        &ctx,
        &[],
        appoint("m1", OperationsManager(Rank::Primary)),
        Refused("staff.training_lapsed", "P3.4"),
    );
}

#[test]
fn p3_4_operations_manager_records_training_with_expiry() {
    let cfg = config();
    let om = staff("om", OperationsManager(Rank::Primary), false); // lapsed, yet may record
    let actor = staff_actor("om");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&om);
    let given = [appointed("s1", SystemOperationsAdministrator)];
    let training = Training {
        completed_at: T0,
        valid_until: days(365),
    };
    let after = check::<Staff>(
        &ctx,
        &given,
        StaffCommand::RecordTraining {
            completed_at: T0,
            valid_until: days(365),
        },
        Events(vec![StaffEvent::TrainingRecorded {
            staff: sid("s1"),
            training,
            by: sid("om"),
            at: T0,
        }]),
    );
    assert!(after.training_current(days(364)) && !after.training_current(days(365)));
    check::<Staff>(
        &ctx,
        &given,
        StaffCommand::RecordTraining {
            completed_at: T0,
            valid_until: T0,
        },
        Refused("staff.training_dates", "P3.4"),
    );
    let ops = staff("office", OperationsOffice, true);
    let actor = staff_actor("office");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&ops);
    check::<Staff>(
        &ctx,
        &given,
        StaffCommand::RecordTraining {
            completed_at: T0,
            valid_until: days(365),
        },
        Refused("staff.role_required", "P3.4"),
    );
}

#[test]
fn p3_1_dismissal_by_the_appointing_role_only() {
    let cfg = config();
    let given = [appointed("s1", SystemOperationsAdministrator)];
    let om = staff("om", OperationsManager(Rank::Primary), true);
    let actor = staff_actor("om");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&om);
    let after = check::<Staff>(
        &ctx,
        &given,
        StaffCommand::Dismiss {
            role: SystemOperationsAdministrator,
        },
        Types(&["staff.dismissed"]),
    );
    assert!(after.roles.is_empty());
    let ba = staff("ba", BusinessAdministrator, true);
    let actor = staff_actor("ba");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&ba);
    check::<Staff>(
        &ctx,
        &given,
        StaffCommand::Dismiss {
            role: SystemOperationsAdministrator,
        },
        Refused("staff.role_required", "P3.1"),
    );
}

#[test]
fn p3_1_a_staff_record_must_be_the_actors_own() {
    // Presenting someone else's staff record does not lend their roles.
    let cfg = config();
    let ba = staff("ba", BusinessAdministrator, true);
    let actor = staff_actor("mallory");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&ba);
    check::<Staff>(
        &ctx,
        &[],
        appoint("m1", OperationsManager(Rank::Primary)),
        Refused("staff.role_required", "P3.1"),
    );
}

fn office_with_second_factor() -> Vec<StaffEvent> {
    vec![
        appointed("sys", SystemOperationsAdministrator),
        StaffEvent::SecondFactorEnrolled {
            staff: sid("sys"),
            at: days(-10),
        },
    ]
}

/// P3.1, P4.8(2): a sign-in is reset by the role that appoints the staff member's
/// (the operations manager for a system operations administrator), with current
/// training, never by the member or by anyone else; the event says whether the
/// second factor was dropped.
#[test]
fn p3_1_sign_in_reset_by_the_appointing_role_only() {
    let cfg = config();
    let given = office_with_second_factor();
    let om = staff("om", OperationsManager(Rank::Primary), true);
    let by_om = staff_actor("om");
    let reset = StaffCommand::ResetSignIn {
        second_factor: true,
    };
    check::<Staff>(
        &Ctx::new(T0, &by_om, &cfg).staff(&om),
        &given,
        reset.clone(),
        Events(vec![StaffEvent::SignInReset {
            staff: sid("sys"),
            by: Some(sid("om")),
            second_factor: true,
            at: T0,
        }]),
    );

    let untrained = staff("om", OperationsManager(Rank::Primary), false);
    check::<Staff>(
        &Ctx::new(T0, &by_om, &cfg).staff(&untrained),
        &given,
        reset.clone(),
        Refused("staff.training_lapsed", "P3.4"),
    );
    for (id, role) in [
        ("pref", Prefecture),
        ("ba", BusinessAdministrator),
        ("sys2", SystemOperationsAdministrator),
    ] {
        let other = staff(id, role, true);
        let actor = staff_actor(id);
        check::<Staff>(
            &Ctx::new(T0, &actor, &cfg).staff(&other),
            &given,
            reset.clone(),
            Refused("staff.role_required", "P3.1"),
        );
    }
    // The console of the stopped platform resets anyone, the head included.
    check::<Staff>(
        &Ctx::new(T0, &Actor::System, &cfg),
        &[appointed("ba", BusinessAdministrator)],
        reset.clone(),
        Events(vec![StaffEvent::SignInReset {
            staff: sid("ba"),
            by: None,
            second_factor: true,
            at: T0,
        }]),
    );
    check::<Staff>(
        &Ctx::new(T0, &by_om, &cfg).staff(&om),
        &[],
        reset,
        Refused("staff.unknown", "P3.1"),
    );
}

/// P4.8(2): only the staff member records their own password change and
/// enrolment.
#[test]
fn p4_8_2_password_change_and_enrolment_are_the_members_own() {
    let cfg = config();
    let given = office_with_second_factor();
    let me = staff_actor("sys");
    let om = staff("om", OperationsManager(Rank::Primary), true);
    let by_om = staff_actor("om");
    check::<Staff>(
        &Ctx::new(T0, &me, &cfg),
        &given,
        StaffCommand::RecordPasswordChange,
        Events(vec![StaffEvent::PasswordChanged {
            staff: sid("sys"),
            at: T0,
        }]),
    );
    check::<Staff>(
        &Ctx::new(T0, &me, &cfg),
        &given,
        StaffCommand::EnrolSecondFactor,
        Events(vec![StaffEvent::SecondFactorEnrolled {
            staff: sid("sys"),
            at: T0,
        }]),
    );
    for cmd in [
        StaffCommand::RecordPasswordChange,
        StaffCommand::EnrolSecondFactor,
    ] {
        check::<Staff>(
            &Ctx::new(T0, &by_om, &cfg).staff(&om),
            &given,
            cmd,
            Refused("staff.self_only", "P4.8(2)"),
        );
    }
}

/// Issue 15 §5: every role but the office signs in with a second factor.
#[test]
fn p4_8_2_second_factor_for_every_role_that_decides() {
    use std::collections::BTreeSet;
    for role in Role::ALL {
        let needs = crate::staff::second_factor_required(&BTreeSet::from([role]));
        assert_eq!(needs, role != OperationsOffice, "{role:?}");
    }
    assert!(!crate::staff::second_factor_required(&BTreeSet::new()));
}

#[test]
fn p3_1_role_names_round_trip() {
    for role in Role::ALL {
        assert_eq!(Role::from_slug(role.slug()), Some(role));
    }
    assert_eq!(
        Role::from_slug("operations-manager-deputy"),
        Some(OperationsManager(Rank::Deputy))
    );
    assert_eq!(Role::from_slug("root"), None);
}
