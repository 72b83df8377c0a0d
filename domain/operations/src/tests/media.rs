//! P4.7 media approval and ledger; P4.9 disposal per NIST SP 800-88, witnessed.

use crate::ids::{Digest, DisposalId, MediaId, Reference};
use crate::media::{
    DisposalLog, Media, MediaCommand as C, MediaKind, MediaStatus, Method, RecordDisposal, Subject,
    may_read_ledger,
};
use crate::testkit::*;
use mebyo_domain::Decider;

fn digest(c: char) -> Digest {
    Digest::new(c.to_string().repeat(64)).unwrap()
}

fn r(s: &str) -> Reference {
    Reference::new(s).unwrap()
}

fn approve() -> C {
    C::ApproveExport {
        media: MediaId::new("usb-0007").unwrap(),
        kind: MediaKind::UsbMemory,
        contents_digest: digest('a'),
        custodian: sid("office"),
        storage: r("cabinet-b2"),
        purpose: r("audit-2026-q1"),
    }
}

#[test]
fn p4_7_1_no_copy_without_the_administrators_approval() {
    let env = Env::new();
    // Without an approval, nothing else happens to a medium.
    check::<Media>(
        &env.ctx("soa", T0),
        &[],
        C::Issue {
            contents_digest: digest('a'),
        },
        Refused("media.not_approved", "P4.7(1)"),
    );
    for who in ["om", "office", "ba", "pref"] {
        check::<Media>(
            &env.ctx(who, T0),
            &[],
            approve(),
            Refused("staff.role_required", "P4.7(1)"),
        );
    }
    // Approval is privileged: lapsed privacy training refuses it (P3.4).
    check::<Media>(
        &env.ctx("untrained-soa", T0),
        &[],
        approve(),
        Refused("staff.training_lapsed", "P3.4"),
    );
    let h = check::<Media>(
        &env.ctx("soa", T0),
        &[],
        approve(),
        Types(&["media.export_approved"]),
    );
    check::<Media>(
        &env.ctx("soa", T0),
        &h,
        approve(),
        Refused("media.already_in_ledger", "P4.7(2)"),
    );
    // The copy must be what was approved.
    check::<Media>(
        &env.ctx("office", mins(1)),
        &h,
        C::Issue {
            contents_digest: digest('b'),
        },
        Refused("media.contents_differ", "P4.7(1)"),
    );
    // Someone who is neither custodian nor administrator cannot take it out.
    check::<Media>(
        &env.ctx("om", mins(1)),
        &h,
        C::Issue {
            contents_digest: digest('a'),
        },
        Refused("staff.role_required", "P4.7(2)"),
    );
    let h = check::<Media>(
        &env.ctx("office", mins(1)),
        &h,
        C::Issue {
            contents_digest: digest('a'),
        },
        Types(&["media.issued"]),
    );
    check::<Media>(
        &env.ctx("office", mins(2)),
        &h,
        C::Issue {
            contents_digest: digest('a'),
        },
        Refused("media.not_in_storage", "P4.7(2)"),
    );
    let s = Media::fold(&h);
    assert_eq!(s.status, MediaStatus::Issued);
    assert_eq!(s.custodian, Some(sid("office")));
}

#[test]
fn p4_7_2_ledger_tracks_return_and_p4_9_disposal() {
    let env = Env::new();
    let h = check::<Media>(
        &env.ctx("soa", T0),
        &[],
        approve(),
        Types(&["media.export_approved"]),
    );
    let h = check::<Media>(
        &env.ctx("office", mins(1)),
        &h,
        C::Issue {
            contents_digest: digest('a'),
        },
        Types(&["media.issued"]),
    );
    let destroy = C::Dispose {
        method: Method::Destroy,
        reason: None,
        disposed_at: mins(3),
    };
    check::<Media>(
        &env.ctx("soa", mins(5)),
        &h,
        destroy.clone(),
        Refused("media.not_in_storage", "P4.7(2)"),
    );
    check::<Media>(
        &env.ctx("office", mins(2)),
        &h,
        C::Return {
            storage: r("cabinet-b2"),
        },
        Refused("staff.role_required", "P4.7(2)"),
    );
    let h = check::<Media>(
        &env.ctx("soa", mins(2)),
        &h,
        C::Return {
            storage: r("cabinet-b3"),
        },
        Types(&["media.returned"]),
    );
    assert_eq!(Media::fold(&h).storage, Some(r("cabinet-b3")));
    // P4.9(3): only the administrator witnesses; P4.9(2): clear/purge need a reason.
    check::<Media>(
        &env.ctx("om", mins(5)),
        &h,
        destroy.clone(),
        Refused("staff.role_required", "P4.9(3)"),
    );
    check::<Media>(
        &env.ctx("soa", mins(5)),
        &h,
        C::Dispose {
            method: Method::Purge,
            reason: None,
            disposed_at: mins(3),
        },
        Refused("disposal.not_destroyed", "P4.9(2)"),
    );
    check::<Media>(
        &env.ctx("soa", mins(5)),
        &h,
        C::Dispose {
            method: Method::Shred,
            reason: None,
            disposed_at: mins(3),
        },
        Refused("disposal.method", "P4.9(2)"),
    );
    check::<Media>(
        &env.ctx("soa", mins(5)),
        &h,
        C::Dispose {
            method: Method::Destroy,
            reason: None,
            disposed_at: mins(6),
        },
        Refused("disposal.future", "P4.9(3)"),
    );
    let h = check::<Media>(
        &env.ctx("soa", mins(5)),
        &h,
        destroy.clone(),
        Types(&["media.disposed"]),
    );
    let s = Media::fold(&h);
    assert_eq!(s.status, MediaStatus::Disposed);
    assert_eq!(s.disposal.as_ref().unwrap().witness, sid("soa"));
    assert_eq!(s.disposal.as_ref().unwrap().disposed_at, mins(3));
    check::<Media>(
        &env.ctx("soa", mins(6)),
        &h,
        destroy,
        Refused("media.disposed", "P4.7(2)"),
    );
}

#[test]
fn p4_9_disposals_outside_the_ledger() {
    let env = Env::new();
    let cmd = |subject, method| RecordDisposal {
        disposal: DisposalId::new("d-1").unwrap(),
        subject,
        item: r("srv-disk-0042"),
        method,
        reason: None,
        disposed_at: T0,
    };
    check::<DisposalLog>(
        &env.ctx("soa", T0),
        &[],
        cmd(Subject::Paper, Method::Destroy),
        Refused("disposal.method", "P4.9(1)"),
    );
    check::<DisposalLog>(
        &env.ctx("soa", T0),
        &[],
        cmd(Subject::Medium, Method::Clear),
        Refused("disposal.not_destroyed", "P4.9(2)"),
    );
    check::<DisposalLog>(
        &env.ctx("office", T0),
        &[],
        cmd(Subject::Medium, Method::Destroy),
        Refused("staff.role_required", "P4.9(3)"),
    );
    let h = check::<DisposalLog>(
        &env.ctx("soa", T0),
        &[],
        cmd(
            Subject::Paper,
            Method::Melt {
                certificate: r("melt-cert-77"),
            },
        ),
        Types(&["disposal.recorded"]),
    );
    check::<DisposalLog>(
        &env.ctx("soa", T0),
        &h,
        cmd(Subject::Paper, Method::Shred),
        Refused("disposal.duplicate", "P4.9(3)"),
    );
    let with_reason = RecordDisposal {
        reason: Some(r("crypto-erase-sed")),
        ..cmd(Subject::Medium, Method::Purge)
    };
    check::<DisposalLog>(
        &env.ctx("soa", T0),
        &[],
        with_reason,
        Types(&["disposal.recorded"]),
    );
    assert_eq!(Method::parse("melt", None), None);
    assert_eq!(Method::parse("destroy", None), Some(Method::Destroy));
}

/// P4.7(2): the ledger is read by staff holding a role, never by anyone else.
#[test]
fn p4_7_2_the_ledger_is_read_by_staff_with_a_role_only() {
    use mebyo_domain::staff::Role;
    assert!(may_read_ledger(Some(&[Role::Auditor])).is_ok());
    assert!(may_read_ledger(Some(&[Role::SystemOperationsAdministrator])).is_ok());
    for roles in [None, Some(&[][..])] {
        let r = may_read_ledger(roles).unwrap_err();
        assert_eq!((r.code, r.clause), ("media.ledger_staff_only", "P4.7(2)"));
    }
}
