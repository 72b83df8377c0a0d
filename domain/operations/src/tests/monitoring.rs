//! P4.4(3) firewall-log reviews and their lateness; P4.5(2) retention.

use crate::ids::IncidentId;
use crate::monitoring::{
    Finding, FirewallEvent, FirewallReview, RecordReview, overdue, past_retention,
    retention_cutoff, review_flag, split_by_retention,
};
use crate::testkit::*;
use mebyo_domain::{Decider, Duration, Timestamp};
use proptest::prelude::*;

fn review(from: i64, to: i64) -> RecordReview {
    RecordReview {
        from: days(from),
        to: days(to),
        finding: Finding::NothingFound,
        reference: None,
        interval: Duration::days(7),
    }
}

#[test]
fn p4_4_3_reviews_cover_the_log_and_late_ones_are_flagged() {
    let env = Env::new();
    check::<FirewallReview>(
        &env.ctx("om", days(0)),
        &[],
        review(-7, 0),
        Refused("staff.role_required", "P4.5(1)"),
    );
    check::<FirewallReview>(
        &env.ctx("soa", days(0)),
        &[],
        review(-7, 1),
        Refused("firewall.span_invalid", "P4.4(3)"),
    );
    let h = check::<FirewallReview>(
        &env.ctx("soa", days(0)),
        &[],
        review(-7, 0),
        Events(vec![FirewallEvent::Reviewed {
            from: days(-7),
            to: days(0),
            finding: Finding::NothingFound,
            reference: None,
            late: false,
            by: sid("soa"),
            at: days(0),
        }]),
    );
    // A gap in coverage is refused; so is a span that adds nothing.
    check::<FirewallReview>(
        &env.ctx("soa", days(7)),
        &h,
        review(1, 7),
        Refused("firewall.coverage_gap", "P4.4(3)"),
    );
    check::<FirewallReview>(
        &env.ctx("soa", days(7)),
        &h,
        review(-3, 0),
        Refused("firewall.nothing_new", "P4.4(3)"),
    );
    // On time (exactly the interval), then late.
    let h = check::<FirewallReview>(
        &env.ctx("soa", days(7)),
        &h,
        review(0, 7),
        Types(&["firewall.reviewed"]),
    );
    let s = FirewallReview::fold(&h);
    assert!(!s.last.as_ref().unwrap().late);
    assert!(review_flag(&s, days(14) + Duration(1), Duration::days(7)).overdue);
    let mut escalated = review(7, 15);
    escalated.finding = Finding::Incident {
        incident: IncidentId::new("inc-fw-1").unwrap(),
    };
    let h = check::<FirewallReview>(
        &env.ctx("soa", days(15)),
        &h,
        escalated,
        Types(&["firewall.reviewed"]),
    );
    let s = FirewallReview::fold(&h);
    assert!(s.last.as_ref().unwrap().late);
    assert_eq!((s.reviews, s.late_reviews), (3, 1));
    let flag = review_flag(&s, days(16), Duration::days(7));
    assert_eq!(flag.due_at, Some(days(22)));
    assert!(!flag.overdue);
}

#[test]
fn p4_4_3_overdue_is_pure_and_never_reviewed_is_overdue() {
    let week = Duration::days(7);
    assert!(overdue(T0, None, week));
    assert!(!overdue(days(7), Some(T0), week));
    assert!(overdue(days(7) + Duration(1), Some(T0), week));
}

#[test]
fn p4_5_2_retention_keeps_exactly_the_configured_days() {
    let keep = Duration::days(365);
    assert!(!past_retention(days(365) + Duration(-1), T0, keep));
    assert!(past_retention(days(365), T0, keep));
    assert_eq!(retention_cutoff(days(365), keep), T0);
    let (kept, gone) =
        split_by_retention(vec![days(-1), days(0), days(1)], |t| *t, days(365), keep);
    assert_eq!(kept, vec![days(1)]);
    assert_eq!(gone, vec![days(-1), days(0)]);
}

proptest! {
    #[test]
    fn p4_5_2_retention_agrees_with_the_cutoff(now in 0i64..1 << 50, at in 0i64..1 << 50, d in 1i64..4000) {
        let keep = Duration::days(d);
        let (now, at) = (Timestamp(now), Timestamp(at));
        prop_assert_eq!(past_retention(now, at, keep), at <= retention_cutoff(now, keep));
    }

    #[test]
    fn p4_4_3_a_review_is_overdue_exactly_after_the_interval(last in 0i64..1 << 50, gap in 0i64..1 << 40, i in 1i64..1 << 40) {
        let (last, now) = (Timestamp(last), Timestamp(last + gap));
        prop_assert_eq!(overdue(now, Some(last), Duration(i)), gap > i);
    }
}
