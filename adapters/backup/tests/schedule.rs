//! The backup schedule across two simulated weeks with an injected clock (P4.10:
//! daily differential, weekly full, overdue flagged).

use mebyo_backup::{BackupSchedule, Flag, Kind, MICROS_PER_HOUR};
use time::OffsetDateTime;
use time::macros::datetime;

fn us(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn jst(t: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(t as i128 * 1000)
        .unwrap()
        .to_offset(mebyo_backup::JST);
    format!(
        "{} {:?} {:02}:{:02}",
        t.date(),
        t.weekday(),
        t.hour(),
        t.minute()
    )
}

struct Sim {
    schedule: BackupSchedule,
    last_full: Option<i64>,
    last_diff: Option<i64>,
    runs: Vec<(String, Kind)>,
    /// (first time raised, last time raised) per flag kind.
    diff_flagged: Vec<i64>,
    full_flagged: Vec<i64>,
}

impl Sim {
    /// Steps the clock every 5 minutes from `start` to `end`; the server is down
    /// (takes no backups) while `down(t)`, but the overdue check still runs, as an
    /// outside monitor would.
    fn run(&mut self, start: i64, end: i64, down: impl Fn(i64) -> bool) {
        let mut now = start;
        while now <= end {
            if !down(now)
                && let Some(kind) = self.schedule.due(now, self.last_full, self.last_diff)
            {
                self.runs.push((jst(now), kind));
                match kind {
                    Kind::Full => self.last_full = Some(now),
                    _ => self.last_diff = Some(now),
                }
                // Once run, nothing else is due at the same instant.
                assert_eq!(self.schedule.due(now, self.last_full, self.last_diff), None);
            }
            for f in self.schedule.overdue(now, self.last_full, self.last_diff) {
                match f {
                    Flag::DifferentialOverdue { .. } => self.diff_flagged.push(now),
                    Flag::FullOverdue { .. } => self.full_flagged.push(now),
                }
            }
            now += 5 * 60 * 1_000_000;
        }
    }
}

#[test]
fn two_weeks_of_backups_with_a_missed_day_flagged() {
    let mut sim = Sim {
        schedule: BackupSchedule::default(),
        // The state at the start: last full on Sunday 2026-11-22, last differential that Thursday.
        last_full: Some(us(datetime!(2026-11-22 03:00 +9))),
        last_diff: Some(us(datetime!(2026-11-26 02:00 +9))),
        runs: Vec::new(),
        diff_flagged: Vec::new(),
        full_flagged: Vec::new(),
    };
    let outage = (
        us(datetime!(2026-12-02 01:00 +9)),
        us(datetime!(2026-12-03 09:00 +9)),
    );
    sim.run(
        us(datetime!(2026-11-26 12:00 +9)),
        us(datetime!(2026-12-10 12:00 +9)),
        |t| t >= outage.0 && t < outage.1,
    );
    let d = Kind::Differential;
    let expected: Vec<(&str, Kind)> = vec![
        ("2026-11-27 Friday 02:00", d),
        ("2026-11-28 Saturday 02:00", d),
        ("2026-11-29 Sunday 02:00", d),
        ("2026-11-29 Sunday 03:00", Kind::Full),
        ("2026-11-30 Monday 02:00", d),
        ("2026-12-01 Tuesday 02:00", d),
        // Wednesday's and Thursday's 02:00 slots fall in the outage: one catch-up
        // differential as soon as the server is back, not two.
        ("2026-12-03 Thursday 09:00", d),
        ("2026-12-04 Friday 02:00", d),
        ("2026-12-05 Saturday 02:00", d),
        ("2026-12-06 Sunday 02:00", d),
        ("2026-12-06 Sunday 03:00", Kind::Full),
        ("2026-12-07 Monday 02:00", d),
        ("2026-12-08 Tuesday 02:00", d),
        ("2026-12-09 Wednesday 02:00", d),
        ("2026-12-10 Thursday 02:00", d),
    ];
    let got: Vec<(&str, Kind)> = sim.runs.iter().map(|(t, k)| (t.as_str(), *k)).collect();
    assert_eq!(got, expected);

    // The missed day is flagged from 24 h + 3 h grace after Tuesday's differential
    // until the catch-up run, and at no other time.
    assert_eq!(
        jst(*sim.diff_flagged.first().expect("the missed day is flagged")),
        "2026-12-02 Wednesday 05:05"
    );
    assert_eq!(
        jst(*sim.diff_flagged.last().unwrap()),
        "2026-12-03 Thursday 08:55"
    );
    let contiguous = sim
        .diff_flagged
        .windows(2)
        .all(|w| w[1] - w[0] == 5 * 60 * 1_000_000);
    assert!(contiguous, "one flagged stretch only");
    assert!(sim.full_flagged.is_empty(), "weekly fulls were all on time");
}

#[test]
fn a_missed_sunday_full_is_caught_up_and_flagged_when_late() {
    let s = BackupSchedule::default();
    let last_full = us(datetime!(2026-11-22 03:00 +9));
    // Down over Sunday 2026-11-29; back on Monday 10:00: a full is due at once.
    let monday = us(datetime!(2026-11-30 10:00 +9));
    let last_diff = Some(us(datetime!(2026-11-28 02:00 +9)));
    assert_eq!(s.due(monday, Some(last_full), last_diff), Some(Kind::Full));
    // 7 days + 3 h after the last full (Sunday 06:00) the flag is up...
    let flags = s.overdue(monday, Some(last_full), last_diff);
    assert!(
        flags.iter().any(|f| matches!(f, Flag::FullOverdue { .. })),
        "{flags:?}"
    );
    assert!(
        flags
            .iter()
            .any(|f| f.to_string().contains("full backup overdue"))
    );
    // ...but not at Sunday 05:59.
    let sunday = us(datetime!(2026-11-29 05:59 +9));
    let flags = s.overdue(sunday, Some(last_full), last_diff);
    assert!(
        !flags.iter().any(|f| matches!(f, Flag::FullOverdue { .. })),
        "{flags:?}"
    );
    // Never backed up: a full is due and both flags are raised.
    assert_eq!(s.due(monday, None, None), Some(Kind::Full));
    assert_eq!(s.overdue(monday, None, None).len(), 2);
}

#[test]
fn the_schedule_is_configurable() {
    let s = BackupSchedule {
        full_weekday: time::Weekday::Wednesday,
        full_time: time::Time::from_hms(23, 30, 0).unwrap(),
        differential_time: time::Time::from_hms(12, 0, 0).unwrap(),
        full_grace_us: MICROS_PER_HOUR,
        ..BackupSchedule::default()
    };
    let last_full = Some(us(datetime!(2026-11-25 23:30 +9))); // a Wednesday
    let last_diff = Some(us(datetime!(2026-11-26 12:00 +9)));
    assert_eq!(
        s.due(us(datetime!(2026-11-27 11:59 +9)), last_full, last_diff),
        None
    );
    assert_eq!(
        s.due(us(datetime!(2026-11-27 12:00 +9)), last_full, last_diff),
        Some(Kind::Differential)
    );
    assert_eq!(
        s.due(us(datetime!(2026-12-02 23:30 +9)), last_full, last_diff),
        Some(Kind::Full)
    );
}
