//! Refusals of the operational deciders, the clauses they may cite, and the staff
//! role checks they share.
//!
//! Every clause cited here is in the core's catalogue
//! (`mebyo_domain::refusal::KNOWN_CLAUSES`), which `Refusal::new` checks.

use mebyo_domain::refusal::KNOWN_CLAUSES;
use mebyo_domain::{Actor, Ctx, Refusal, Role, StaffId};

/// Whether `clause` is in the policy's catalogue.
pub fn known(clause: &str) -> bool {
    KNOWN_CLAUSES.contains(&clause)
}

/// A refusal citing `clause` (checked against the catalogue in debug builds).
pub fn refusal(code: &'static str, clause: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(code, clause, message)
}

pub(crate) fn refuse<T>(
    code: &'static str,
    clause: &'static str,
    message: impl Into<String>,
) -> Result<T, Refusal> {
    Err(refusal(code, clause, message))
}

pub(crate) fn ensure(
    ok: bool,
    code: &'static str,
    clause: &'static str,
    message: &str,
) -> Result<(), Refusal> {
    if ok {
        Ok(())
    } else {
        refuse(code, clause, message)
    }
}

/// The acting staff member and the role under which they act, if they hold one
/// that `may` accepts; refused citing `clause` otherwise. The role is returned so
/// the event records not only who acted but in which capacity (P4.14: "by whom").
///
/// `privileged` actions (media approval, witnessing disposal) also need current
/// privacy training (P3.4), as in the core's `privileged()`. Incident steps are not
/// privileged on purpose: a lapsed training certificate must never stop someone
/// from pulling a network cable during an attack.
pub fn acting_staff(
    ctx: &Ctx,
    may: impl Fn(Role) -> bool,
    privileged: bool,
    clause: &'static str,
    what: &str,
) -> Result<(StaffId, Role), Refusal> {
    let Actor::Staff { staff: id } = ctx.actor else {
        return refuse("staff.role_required", clause, format!("{what}: staff only"));
    };
    let role = ctx
        .staff
        .filter(|s| s.id.as_ref() == Some(id))
        .and_then(|s| s.roles.iter().copied().find(|r| may(*r)));
    let Some(role) = role else {
        return refuse(
            "staff.role_required",
            clause,
            format!("{what}: the acting staff member does not hold the required role"),
        );
    };
    if privileged {
        ensure(
            ctx.staff.is_some_and(|s| s.training_current(ctx.now)),
            "staff.training_lapsed",
            mebyo_domain::clause!("P3.4"),
            "privileged action refused: privacy training is not current",
        )?;
    }
    Ok((id.clone(), role))
}

/// Role names as the policy gives them, for reports.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::BusinessAdministrator => "business administrator (事業管理者)",
        Role::BusinessImplementationManager(_) => {
            "business implementation manager (事業実施責任者)"
        }
        Role::OperationsManager(_) => "operations manager (運用管理責任者)",
        Role::SystemOperationsAdministrator => {
            "system operations administrator (システム運用管理者)"
        }
        Role::OperationsOffice => "operations office (運営事務局)",
        Role::Prefecture => "prefecture (神奈川県)",
        Role::Auditor => "auditor",
    }
}

/// RFC 3339 in Japan Standard Time (UTC+9, no daylight saving), as operators in
/// Kanagawa read times. Pure arithmetic (civil-from-days), no clock, no tz database.
pub fn jst(at: mebyo_domain::Timestamp) -> String {
    let secs = at.0.div_euclid(1_000_000) + 9 * 3600;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+09:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_domain::Timestamp;

    #[test]
    fn jst_formats_japan_time() {
        // 2026-01-01T00:00Z is 09:00 in Japan.
        assert_eq!(
            jst(Timestamp(1_767_225_600_000_000)),
            "2026-01-01T09:00:00+09:00"
        );
        assert_eq!(jst(Timestamp(0)), "1970-01-01T09:00:00+09:00");
        // 2024-02-29T15:30:05Z crosses midnight into 1 March in Japan.
        assert_eq!(
            jst(Timestamp(1_709_220_605_000_000)),
            "2024-03-01T00:30:05+09:00"
        );
    }

    #[test]
    fn every_ops_clause_is_a_policy_item() {
        // Items that section 4 of the policy actually numbers.
        let items = [
            ("P4.3", 0),
            ("P4.4", 3),
            ("P4.5", 3),
            ("P4.7", 2),
            ("P4.9", 3),
            ("P4.13", 3),
            ("P4.14", 5),
            ("P3.4", 0),
        ];
        for c in KNOWN_CLAUSES {
            // `P4.5(1)(2)` cites two items of one clause.
            let (base, cited) = match c.find('(') {
                Some(i) => (&c[..i], &c[i..]),
                None => (*c, ""),
            };
            let cited: Vec<u32> = cited
                .split(['(', ')'])
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            // Only the sections this crate cites are checked here.
            if let Some((_, max)) = items.iter().find(|(b, _)| *b == base) {
                assert!(cited.iter().all(|i| i <= max), "{c}: no such item");
            }
        }
    }
}
