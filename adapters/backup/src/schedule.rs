//! When backups are due, and when they are late (P4.10: at least a daily
//! differential and a weekly full; overdue backups flagged).
//!
//! Pure: the caller passes the time (microseconds since the Unix epoch, UTC) and
//! the start times of the last completed full and differential backups. The
//! schedule is in local wall-clock time at a fixed offset: Japan (UTC+9) has no
//! daylight saving time, so a fixed offset is exact there.

use std::fmt;

use time::{OffsetDateTime, Time, UtcOffset, Weekday};

use crate::manifest::Kind;

pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// Japan Standard Time.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("UTC+9 is a valid offset"),
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    pub full_weekday: Weekday,
    pub full_time: Time,
    pub differential_time: Time,
    /// The offset the times above are in.
    pub offset: UtcOffset,
    /// How late a backup may be before it is flagged, beyond 7 days (full) or
    /// 24 hours (differential).
    pub full_grace_us: i64,
    pub differential_grace_us: i64,
}

impl Default for BackupSchedule {
    /// Weekly full on Sunday 03:00 JST, daily differential 02:00 JST, 3 h grace.
    fn default() -> Self {
        Self {
            full_weekday: Weekday::Sunday,
            full_time: Time::from_hms(3, 0, 0).expect("valid time"),
            differential_time: Time::from_hms(2, 0, 0).expect("valid time"),
            offset: JST,
            full_grace_us: 3 * MICROS_PER_HOUR,
            differential_grace_us: 3 * MICROS_PER_HOUR,
        }
    }
}

/// A missing or late backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flag {
    /// No full backup started in the last 7 days + grace (`last`: the latest, if any).
    FullOverdue { last: Option<i64>, now: i64 },
    /// No backup (differential or full: a full covers everything a differential
    /// would) started in the last 24 hours + grace.
    DifferentialOverdue { last: Option<i64>, now: i64 },
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = |last: &Option<i64>| match last {
            Some(t) => format!("since {}", crate::backup::rfc3339(*t)),
            None => "ever".to_string(),
        };
        match self {
            Flag::FullOverdue { last, .. } => write!(
                f,
                "full backup overdue: none {} (weekly full required, P4.10)",
                since(last)
            ),
            Flag::DifferentialOverdue { last, .. } => write!(
                f,
                "differential backup overdue: none {} (daily differential required, P4.10)",
                since(last)
            ),
        }
    }
}

fn to_us(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

impl BackupSchedule {
    /// The latest instant `<= now` at `at` local time (on `weekday`, if given).
    fn last_slot(&self, now_us: i64, weekday: Option<Weekday>, at: Time) -> i64 {
        let now = OffsetDateTime::from_unix_timestamp_nanos(now_us as i128 * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset);
        let mut date = now.date();
        // At most 7 steps back reach the weekday; one more covers "today, but later".
        for _ in 0..9 {
            let slot = date.with_time(at).assume_offset(self.offset);
            if to_us(slot) <= now_us && weekday.is_none_or(|w| date.weekday() == w) {
                return to_us(slot);
            }
            match date.previous_day() {
                Some(d) => date = d,
                None => break,
            }
        }
        i64::MIN
    }

    /// Which backup to take now, if any. A full is due once its weekly slot has
    /// passed with no full started since; a differential once its daily slot has
    /// passed with no backup of either kind started since. A missed slot (server
    /// down) is caught up at the first call after it, not skipped. With no full
    /// at all, a full is due at once (a differential needs one).
    pub fn due(
        &self,
        now_us: i64,
        last_full: Option<i64>,
        last_differential: Option<i64>,
    ) -> Option<Kind> {
        let Some(last_full) = last_full else {
            return Some(Kind::Full);
        };
        if last_full < self.last_slot(now_us, Some(self.full_weekday), self.full_time) {
            return Some(Kind::Full);
        }
        let last_any = last_full.max(last_differential.unwrap_or(i64::MIN));
        if last_any < self.last_slot(now_us, None, self.differential_time) {
            return Some(Kind::Differential);
        }
        None
    }

    /// Flags raised now: no full in the last 7 days + grace, no backup in the
    /// last 24 h + grace.
    pub fn overdue(
        &self,
        now_us: i64,
        last_full: Option<i64>,
        last_differential: Option<i64>,
    ) -> Vec<Flag> {
        let mut flags = Vec::new();
        let late = |last: Option<i64>, limit: i64| match last {
            None => true,
            Some(t) => now_us.saturating_sub(t) > limit,
        };
        if late(last_full, 7 * MICROS_PER_DAY + self.full_grace_us) {
            flags.push(Flag::FullOverdue {
                last: last_full,
                now: now_us,
            });
        }
        let last_any = match (last_full, last_differential) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if late(last_any, MICROS_PER_DAY + self.differential_grace_us) {
            flags.push(Flag::DifferentialOverdue {
                last: last_any,
                now: now_us,
            });
        }
        flags
    }
}

/// Start times of the latest completed full and differential sets of a ledger.
pub fn last_runs(
    listing: &crate::manifest::Listing,
    ledger_id: &str,
) -> (Option<i64>, Option<i64>) {
    let last = |kind: Kind| {
        listing
            .sets
            .iter()
            .filter(|m| m.kind == kind && m.ledger_id == ledger_id)
            .map(|m| m.started_at_us)
            .max()
    };
    (last(Kind::Full), last(Kind::Differential))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn us(t: OffsetDateTime) -> i64 {
        to_us(t)
    }

    #[test]
    fn slots_are_in_jst() {
        let s = BackupSchedule::default();
        // 2026-11-29 is a Sunday. 03:00 JST is 18:00 UTC on Saturday.
        let now = us(datetime!(2026-11-29 03:30 +9));
        assert_eq!(
            s.last_slot(now, Some(Weekday::Sunday), s.full_time),
            us(datetime!(2026-11-28 18:00 UTC))
        );
        let now = us(datetime!(2026-11-29 02:59 +9));
        assert_eq!(
            s.last_slot(now, Some(Weekday::Sunday), s.full_time),
            us(datetime!(2026-11-22 03:00 +9))
        );
        assert_eq!(
            s.last_slot(now, None, s.differential_time),
            us(datetime!(2026-11-29 02:00 +9))
        );
    }
}
