//! P4.3: maintenance announced at least the lead time ahead; notices shown on the
//! portal from announcement to the window's end; published to providers once.

use crate::ids::WindowId;
use crate::maintenance::{
    Audience, Maintenance, MaintenanceCommand as C, MaintenanceEvent, Service, due_for_bus,
    notices_at,
};
use crate::testkit::*;
use mebyo_domain::{Decider, Duration};

fn wid(s: &str) -> WindowId {
    WindowId::new(s).unwrap()
}

fn schedule(id: &str, start_day: i64, lead_days: i64) -> C {
    C::Schedule {
        window: wid(id),
        starts_at: days(start_day),
        ends_at: days(start_day) + Duration(2 * 3600 * 1_000_000),
        affects: [Service::Portal, Service::ProviderGateway]
            .into_iter()
            .collect(),
        summary: "定期保守のため、2時間ご利用いただけません".into(),
        lead_time: Duration::days(lead_days),
    }
}

#[test]
fn p4_3_announced_at_least_the_lead_time_ahead() {
    let env = Env::new();
    // Exactly the lead time is enough; a microsecond less is refused.
    let h = check::<Maintenance>(
        &env.ctx("soa", T0),
        &[],
        schedule("w1", 7, 7),
        Types(&["maintenance.scheduled"]),
    );
    check::<Maintenance>(
        &env.ctx("soa", T0),
        &[],
        schedule("w2", 6, 7),
        Refused("maintenance.short_notice", "P4.3"),
    );
    let mut late = schedule("w2", 7, 7);
    if let C::Schedule { starts_at, .. } = &mut late {
        starts_at.0 -= 1;
    }
    check::<Maintenance>(
        &env.ctx("om", T0),
        &h,
        late,
        Refused("maintenance.short_notice", "P4.3"),
    );
    check::<Maintenance>(
        &env.ctx("om", T0),
        &h,
        schedule("w1", 9, 7),
        Refused("maintenance.duplicate", "P4.3"),
    );
    check::<Maintenance>(
        &env.ctx("office", T0),
        &[],
        schedule("w3", 9, 7),
        Refused("staff.role_required", "P4.3"),
    );
    let mut empty = schedule("w4", 9, 7);
    if let C::Schedule {
        summary, affects, ..
    } = &mut empty
    {
        summary.clear();
        affects.clear();
    }
    check::<Maintenance>(
        &env.ctx("om", T0),
        &[],
        empty,
        Refused("maintenance.affects_nothing", "P4.3"),
    );
    let mut backwards = schedule("w5", 9, 7);
    if let C::Schedule {
        ends_at, starts_at, ..
    } = &mut backwards
    {
        *ends_at = *starts_at;
    }
    check::<Maintenance>(
        &env.ctx("om", T0),
        &[],
        backwards,
        Refused("maintenance.window_invalid", "P4.3"),
    );
}

#[test]
fn p4_3_portal_shows_notices_from_announcement_until_the_window_ends() {
    let env = Env::new();
    let h = check::<Maintenance>(
        &env.ctx("soa", T0),
        &[],
        schedule("w1", 7, 7),
        Types(&["maintenance.scheduled"]),
    );
    let h = check::<Maintenance>(
        &env.ctx("soa", days(1)),
        &h,
        schedule("w0", 8, 7),
        Types(&["maintenance.scheduled"]),
    );
    let s = Maintenance::fold(&h);
    assert!(
        notices_at(&s, days(-1)).is_empty(),
        "not before it is announced"
    );
    let at3: Vec<_> = notices_at(&s, days(3))
        .into_iter()
        .map(|n| n.window)
        .collect();
    assert_eq!(at3, vec![wid("w1"), wid("w0")], "soonest first");
    assert_eq!(notices_at(&s, days(7)).len(), 2, "shown during the window");
    assert_eq!(
        notices_at(&s, days(7) + Duration(2 * 3600 * 1_000_000)).len(),
        1,
        "gone when it ends"
    );
    // Cancelled: no longer shown, and cannot be cancelled twice.
    let h = check::<Maintenance>(
        &env.ctx("om", days(4)),
        &h,
        C::Cancel { window: wid("w1") },
        Types(&["maintenance.cancelled"]),
    );
    check::<Maintenance>(
        &env.ctx("om", days(4)),
        &h,
        C::Cancel { window: wid("w1") },
        Refused("maintenance.not_cancellable", "P4.3"),
    );
    let s = Maintenance::fold(&h);
    assert_eq!(
        notices_at(&s, days(3)).len(),
        2,
        "history at 3 days is unchanged"
    );
    assert_eq!(notices_at(&s, days(5)).len(), 1);
}

#[test]
fn p4_3_providers_are_told_once_over_the_bus() {
    let env = Env::new();
    let h = check::<Maintenance>(
        &env.ctx("soa", T0),
        &[],
        schedule("w1", 7, 7),
        Types(&["maintenance.scheduled"]),
    );
    assert_eq!(due_for_bus(&Maintenance::fold(&h), T0).len(), 1);
    let publish = C::RecordPublished {
        window: wid("w1"),
        audience: Audience::Providers,
    };
    let h = check::<Maintenance>(
        &env.system(T0),
        &h,
        publish.clone(),
        Types(&["maintenance.notice_published"]),
    );
    assert!(due_for_bus(&Maintenance::fold(&h), T0).is_empty());
    // A retried publication adds nothing.
    check::<Maintenance>(
        &env.system(T0),
        &h,
        publish,
        Events(Vec::<MaintenanceEvent>::new()),
    );
    check::<Maintenance>(
        &env.ctx("office", T0),
        &h,
        C::RecordPublished {
            window: wid("w1"),
            audience: Audience::Individuals,
        },
        Refused("staff.role_required", "P4.3"),
    );
    check::<Maintenance>(
        &env.system(T0),
        &h,
        C::RecordPublished {
            window: wid("nope"),
            audience: Audience::Providers,
        },
        Refused("maintenance.unknown", "P4.3"),
    );
}
