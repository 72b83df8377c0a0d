//! P7, P8, P9: policy versions.

use crate::policy::{Policy, PolicyCommand, PolicyEvent, PolicyState};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;

fn v(id: &str, from: i64) -> PolicyVersion {
    PolicyVersion {
        id: PolicyId::new(id).unwrap(),
        in_force_from: days(from),
        applies_from: days(from - 15),
    }
}

#[test]
fn p8_prefecture_publishes_versions_that_move_forward() {
    let cfg = config();
    let pref = staff("pref", Role::Prefecture, true);
    let actor = staff_actor("pref");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&pref);
    let given = [PolicyEvent::VersionPublished {
        version: v("v1", -2000),
        by: sid("pref"),
        at: days(-2000),
    }];
    let after = check::<Policy>(
        &ctx,
        &given,
        PolicyCommand::Publish {
            version: v("v2", 10),
        },
        Events(vec![PolicyEvent::VersionPublished {
            version: v("v2", 10),
            by: sid("pref"),
            at: T0,
        }]),
    );
    // P7: the version in force is the latest whose date has come; P9: both dates kept.
    assert_eq!(after.in_force_at(T0).unwrap().id.as_str(), "v1");
    assert_eq!(after.in_force_at(days(10)).unwrap().applies_from, days(-5));
    assert_eq!(PolicyState::default().in_force_at(T0), None);
    check::<Policy>(
        &ctx,
        &given,
        PolicyCommand::Publish {
            version: v("v1", 20),
        },
        Refused("policy.version_exists", "P8"),
    );
    check::<Policy>(
        &ctx,
        &given,
        PolicyCommand::Publish {
            version: v("v0", -3000),
        },
        Refused("policy.version_order", "P9"),
    );
}

#[test]
fn p8_only_the_prefecture_revises_the_policy() {
    let cfg = config();
    let om = staff("om", Role::OperationsOffice, true);
    let actor = staff_actor("om");
    let ctx = Ctx::new(T0, &actor, &cfg).staff(&om);
    check::<Policy>(
        &ctx,
        &[],
        PolicyCommand::Publish {
            version: v("v1", 0),
        },
        Refused("staff.role_required", "P8"),
    );
}
