//! Auditor key grants (P3.1(1), P3.4, P4.6(2)): who may let an auditor decrypt,
//! for how long, and whether a grant found in the ledger is honoured when used.
//!
//! A grant is an `audit.key_granted` event in the `audit-grants` stream, a plain
//! payload ([`KeyGrant`]). Being in the ledger is not enough to be honoured: an
//! event appended there by anything but [`decide`] (a forged one, chained
//! correctly) is checked again at every use by [`honoured`], against the grantor
//! as they stood when it was recorded and the grantee as they stand now.

use crate::refusal::ensure;
use crate::staff::Role;
use crate::{Duration, Refusal, StaffId, StaffState, Timestamp};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// The stream of grants and refused grants.
pub const STREAM: &str = "audit-grants";
/// What a grant allows: decrypting for the auditors' commands.
pub const SCOPE_DECRYPT: &str = "decrypt";
/// How many days a grant may last. At least one; at most a year, so access for a
/// longer audit is a fresh decision of the business administrator, on record,
/// rather than one grant that outlives the reasons for it (P4.6(2)).
pub const DAYS: RangeInclusive<i64> = 1..=365;

/// `mebyo audit grant`: `by` lets `auditor` decrypt for `days` from `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub auditor: StaffId,
    pub by: StaffId,
    pub days: i64,
    pub at: Timestamp,
}

/// The `audit.key_granted` payload, in the shape every ledger has stored it
/// (fields added later must carry serde defaults, so old ledgers still replay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub auditor: StaffId,
    pub by: StaffId,
    pub scope: String,
    pub from_us: i64,
    pub until_us: i64,
}

/// Decides a grant against the grantor's and the grantee's staff records: only
/// the business administrator (P3.1(1)) with current privacy training (P3.4), only
/// to a current auditor, for a bounded number of days (P4.6(2)).
pub fn decide(
    grantor: &StaffState,
    grantee: &StaffState,
    cmd: &Grant,
) -> Result<KeyGrant, Refusal> {
    authorised(grantor, &cmd.by, cmd.at)?;
    auditor(grantee, &cmd.auditor)?;
    ensure(
        DAYS.contains(&cmd.days),
        "audit_grant.days_out_of_bounds",
        crate::clause!("P4.6(2)"),
        "a grant lasts 1 to 365 days",
    )?;
    Ok(KeyGrant {
        auditor: cmd.auditor.clone(),
        by: cmd.by.clone(),
        scope: SCOPE_DECRYPT.into(),
        from_us: cmd.at.0,
        until_us: (cmd.at + Duration::days(cmd.days)).0,
    })
}

/// Whether a grant found in the ledger is honoured for `user` at `now`. Everything
/// [`decide`] checked is checked again, so a grant it never made is refused:
/// `grantor_then` is the grantor's record as of the grant's position in the ledger
/// and `given_at` the time it was recorded (neither taken from the payload, which
/// whoever appended it chose); `grantee_now` is the user's record now.
pub fn honoured(
    grant: &KeyGrant,
    given_at: Timestamp,
    grantor_then: &StaffState,
    grantee_now: &StaffState,
    user: &StaffId,
    now: Timestamp,
) -> Result<(), Refusal> {
    ensure(
        grant.auditor == *user,
        "audit_grant.other_auditor",
        crate::clause!("P4.6(2)"),
        "the grant names another auditor",
    )?;
    ensure(
        grant.scope == SCOPE_DECRYPT,
        "audit_grant.scope",
        crate::clause!("P4.6(2)"),
        "the grant is not for decrypting",
    )?;
    authorised(grantor_then, &grant.by, given_at)?;
    auditor(grantee_now, &grant.auditor)?;
    let longest = Duration::days(*DAYS.end()).0;
    ensure(
        grant.from_us < grant.until_us && grant.until_us - grant.from_us <= longest,
        "audit_grant.days_out_of_bounds",
        crate::clause!("P4.6(2)"),
        "the grant's period is empty or longer than 365 days",
    )?;
    ensure(
        grant.from_us <= now.0 && now.0 < grant.until_us,
        "audit_grant.not_current",
        crate::clause!("P4.6(2)"),
        "the grant's period does not cover now",
    )
}

/// The answer for a use, from every grant naming the user, newest last: the first
/// honoured one allows it; else the newest grant's refusal says why; with no grant
/// at all, there is none to use (P4.6(2)).
pub fn first_honoured(uses: impl IntoIterator<Item = Result<(), Refusal>>) -> Result<(), Refusal> {
    let mut last = None;
    for r in uses {
        match r {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(none))
}

/// The refusal of a use when no grant names the user.
pub fn none() -> Refusal {
    Refusal::new(
        "audit_grant.none",
        crate::clause!("P4.6(2)"),
        "no current auditor key grant",
    )
}

/// Whether a holder of `role` grants an auditor decryption: the business
/// administrator (P3.1(1)).
pub fn grants(role: Role) -> bool {
    role == Role::BusinessAdministrator
}

/// `state` is `by`'s record, and `by` was the business administrator (P3.1(1))
/// with privacy training current at `at` (P3.4).
fn authorised(state: &StaffState, by: &StaffId, at: Timestamp) -> Result<(), Refusal> {
    ensure(
        state.id.as_ref() == Some(by) && state.roles.iter().any(|r| grants(*r)),
        "audit_grant.not_business_administrator",
        crate::clause!("P3.1(1)"),
        "only the business administrator grants an auditor decryption",
    )?;
    ensure(
        state.training_current(at),
        "audit_grant.training_lapsed",
        crate::clause!("P3.4"),
        "the business administrator's privacy training was not current",
    )
}

/// `state` is `auditor`'s record, and they hold the Auditor role (P4.6(2)).
fn auditor(state: &StaffState, auditor: &StaffId) -> Result<(), Refusal> {
    ensure(
        state.id.as_ref() == Some(auditor) && state.roles.contains(&Role::Auditor),
        "audit_grant.not_auditor",
        crate::clause!("P4.6(2)"),
        "the grantee does not hold the Auditor role",
    )
}
