//! Auditor key grants: given the grantor's and the grantee's staff histories,
//! when a grant is decided (or a grant from the ledger is used), then the grant or
//! the refusal with its clause (P3.1(1), P3.4, P4.6(2)).

use crate::audit_grant::{self, Grant, KeyGrant, SCOPE_DECRYPT};
use crate::staff::{Rank, Role::*, Staff, StaffEvent};
use crate::testkit::*;
use crate::*;

/// The business administrator `ba`, trained until `until`.
fn ba_history(until: Timestamp) -> Vec<StaffEvent> {
    vec![
        appointed("ba", BusinessAdministrator),
        trained("ba", days(-365), until),
    ]
}

fn auditor_history() -> Vec<StaffEvent> {
    vec![appointed("aud", Auditor)]
}

fn grant(by: &str, auditor: &str, days: i64) -> Grant {
    Grant {
        auditor: sid(auditor),
        by: sid(by),
        days,
        at: T0,
    }
}

/// Given the grantor's and the grantee's histories, when `cmd` is decided, then `then`.
fn check(grantor: &[StaffEvent], grantee: &[StaffEvent], cmd: Grant, then: Expect<KeyGrant>) {
    let result = audit_grant::decide(&Staff::fold(grantor), &Staff::fold(grantee), &cmd);
    match (result, then) {
        (Ok(g), Events(want)) => assert_eq!(vec![g], want, "when {cmd:?}"),
        (Err(r), Refused(code, clause)) => {
            assert_eq!((r.code, r.clause), (code, clause), "when {cmd:?}: {r}");
            refusal_contract(&r);
        }
        (got, want) => panic!("when {cmd:?}\n  expected {want:?}\n  got {got:?}"),
    }
}

fn the_grant(days_: i64) -> KeyGrant {
    KeyGrant {
        auditor: sid("aud"),
        by: sid("ba"),
        scope: SCOPE_DECRYPT.into(),
        from_us: T0.0,
        until_us: days(days_).0,
    }
}

#[test]
fn p4_6_2_the_trained_business_administrator_grants_a_current_auditor() {
    check(
        &ba_history(days(300)),
        &auditor_history(),
        grant("ba", "aud", 30),
        Events(vec![the_grant(30)]),
    );
}

#[test]
fn p3_1_1_nobody_but_the_business_administrator_grants() {
    let om = [
        appointed("om", OperationsManager(Rank::Primary)),
        trained("om", days(-365), days(300)),
    ];
    check(
        &om,
        &auditor_history(),
        grant("om", "aud", 30),
        Refused("audit_grant.not_business_administrator", "P3.1(1)"),
    );
    // The grantor's record must be the grantor's own: the administrator's record
    // does not stand in for someone else naming themselves `by`.
    check(
        &ba_history(days(300)),
        &auditor_history(),
        grant("om", "aud", 30),
        Refused("audit_grant.not_business_administrator", "P3.1(1)"),
    );
    check(
        &[],
        &auditor_history(),
        grant("nobody", "aud", 30),
        Refused("audit_grant.not_business_administrator", "P3.1(1)"),
    );
}

#[test]
fn p3_4_the_business_administrator_without_current_training_is_refused() {
    check(
        &ba_history(days(-1)),
        &auditor_history(),
        grant("ba", "aud", 30),
        Refused("audit_grant.training_lapsed", "P3.4"),
    );
    check(
        &[appointed("ba", BusinessAdministrator)],
        &auditor_history(),
        grant("ba", "aud", 30),
        Refused("audit_grant.training_lapsed", "P3.4"),
    );
}

#[test]
fn p4_6_2_only_a_current_auditor_is_granted() {
    for grantee in [
        vec![appointed("aud", OperationsOffice)],
        vec![],
        vec![
            appointed("aud", Auditor),
            StaffEvent::Dismissed {
                staff: sid("aud"),
                role: Auditor,
                by: sid("ba"),
                at: days(-1),
            },
        ],
    ] {
        check(
            &ba_history(days(300)),
            &grantee,
            grant("ba", "aud", 30),
            Refused("audit_grant.not_auditor", "P4.6(2)"),
        );
    }
    // Nor the business administrator to themselves.
    check(
        &ba_history(days(300)),
        &ba_history(days(300)),
        grant("ba", "ba", 30),
        Refused("audit_grant.not_auditor", "P4.6(2)"),
    );
}

#[test]
fn p4_6_2_a_grant_lasts_1_to_365_days() {
    for d in [1, 365] {
        check(
            &ba_history(days(300)),
            &auditor_history(),
            grant("ba", "aud", d),
            Events(vec![the_grant(d)]),
        );
    }
    for d in [0, -1, 366, i64::MAX, i64::MIN] {
        check(
            &ba_history(days(300)),
            &auditor_history(),
            grant("ba", "aud", d),
            Refused("audit_grant.days_out_of_bounds", "P4.6(2)"),
        );
    }
}

/// Given the grantor's history up to the grant, the grantee's now, and the grant
/// recorded at T0: when it is used by `user` at `now`, then `Ok` or the refusal.
fn used(
    grant: &KeyGrant,
    grantor: &[StaffEvent],
    grantee: &[StaffEvent],
    user: &str,
    now: Timestamp,
) -> Result<(), (&'static str, &'static str)> {
    audit_grant::honoured(
        grant,
        T0,
        &Staff::fold(grantor),
        &Staff::fold(grantee),
        &sid(user),
        now,
    )
    .map_err(|r| {
        refusal_contract(&r);
        (r.code, r.clause)
    })
}

#[test]
fn p4_6_2_a_decided_grant_is_honoured_within_its_period_only() {
    let g = the_grant(30);
    let (ba, aud) = (ba_history(days(300)), auditor_history());
    assert_eq!(used(&g, &ba, &aud, "aud", T0), Ok(()));
    assert_eq!(used(&g, &ba, &aud, "aud", days(29)), Ok(()));
    assert_eq!(
        used(&g, &ba, &aud, "aud", days(30)),
        Err(("audit_grant.not_current", "P4.6(2)"))
    );
    assert_eq!(
        used(&g, &ba, &aud, "aud", days(-1)),
        Err(("audit_grant.not_current", "P4.6(2)"))
    );
    // Honoured for the auditor it names, nobody else.
    assert_eq!(
        used(&g, &ba, &aud, "other", T0),
        Err(("audit_grant.other_auditor", "P4.6(2)"))
    );
    // The administrator's training lapsing after the grant does not undo it.
    assert_eq!(used(&g, &ba_history(days(1)), &aud, "aud", days(2)), Ok(()));
}

#[test]
fn p4_6_2_a_forged_grant_naming_a_non_auditor_is_refused_at_use() {
    let forged = KeyGrant {
        auditor: sid("office"),
        ..the_grant(30)
    };
    let office = [appointed("office", OperationsOffice)];
    assert_eq!(
        used(&forged, &ba_history(days(300)), &office, "office", T0),
        Err(("audit_grant.not_auditor", "P4.6(2)"))
    );
    // An auditor dismissed since the grant holds it no longer.
    let dismissed = [
        appointed("aud", Auditor),
        StaffEvent::Dismissed {
            staff: sid("aud"),
            role: Auditor,
            by: sid("ba"),
            at: days(1),
        },
    ];
    assert_eq!(
        used(
            &the_grant(30),
            &ba_history(days(300)),
            &dismissed,
            "aud",
            days(2)
        ),
        Err(("audit_grant.not_auditor", "P4.6(2)"))
    );
}

#[test]
fn p3_1_1_a_forged_grant_by_anyone_but_the_business_administrator_is_refused_at_use() {
    let forged = KeyGrant {
        by: sid("om"),
        ..the_grant(30)
    };
    let om = [
        appointed("om", OperationsManager(Rank::Primary)),
        trained("om", days(-365), days(300)),
    ];
    assert_eq!(
        used(&forged, &om, &auditor_history(), "aud", T0),
        Err(("audit_grant.not_business_administrator", "P3.1(1)"))
    );
    // The administrator's record as it stood when the grant was recorded: one
    // whose training had lapsed then could not have given it.
    assert_eq!(
        used(
            &the_grant(30),
            &ba_history(days(-1)),
            &auditor_history(),
            "aud",
            T0
        ),
        Err(("audit_grant.training_lapsed", "P3.4"))
    );
}

#[test]
fn p4_6_2_a_forged_grant_of_a_longer_period_or_another_scope_is_refused_at_use() {
    let (ba, aud) = (ba_history(days(300)), auditor_history());
    let long = KeyGrant {
        until_us: days(366).0,
        ..the_grant(30)
    };
    assert_eq!(
        used(&long, &ba, &aud, "aud", T0),
        Err(("audit_grant.days_out_of_bounds", "P4.6(2)"))
    );
    let backwards = KeyGrant {
        from_us: days(10).0,
        until_us: days(1).0,
        ..the_grant(30)
    };
    assert_eq!(
        used(&backwards, &ba, &aud, "aud", days(5)),
        Err(("audit_grant.days_out_of_bounds", "P4.6(2)"))
    );
    let scope = KeyGrant {
        scope: "everything".into(),
        ..the_grant(30)
    };
    assert_eq!(
        used(&scope, &ba, &aud, "aud", T0),
        Err(("audit_grant.scope", "P4.6(2)"))
    );
}

#[test]
fn p4_6_2_a_use_is_allowed_by_any_honoured_grant_else_refused_with_the_newest_reason() {
    let lapsed = || Refusal::new("audit_grant.not_current", "P4.6(2)", "old");
    let forged = || Refusal::new("audit_grant.not_auditor", "P4.6(2)", "forged");
    assert_eq!(audit_grant::first_honoured([Err(lapsed()), Ok(())]), Ok(()));
    assert_eq!(
        audit_grant::first_honoured([Err(lapsed()), Err(forged())]),
        Err(forged())
    );
    let none = audit_grant::first_honoured([]).unwrap_err();
    assert_eq!((none.code, none.clause), ("audit_grant.none", "P4.6(2)"));
    refusal_contract(&none);
}

/// The payload every ledger stored before this decider existed still reads.
#[test]
fn an_old_grant_payload_still_reads() {
    let old = r#"{"auditor":"aud","by":"ba","scope":"decrypt","from_us":1767225600000000,"until_us":1769817600000000}"#;
    let g: KeyGrant = serde_json::from_str(old).unwrap();
    assert_eq!(g, the_grant(30));
    assert_eq!(serde_json::to_string(&g).unwrap(), old);
}
