//! Operations read model (issue 6 §3, issue 7 §1, §6): backups, incidents and the
//! ledger's checkpoints and verifications, for the operator dashboard and the
//! readiness details, folded from the log instead of scanning it per page.
//!
//! What it folds:
//! - stream `ops-backups` (plaintext JSON written by `mebyo_backup::jobs`):
//!   `backup.completed`, `backup.failed`, `backup.verified` (a restore drill),
//!   `backup.epoch_rotated` (P4.10, P4.9);
//! - streams `incident-<id>` (plaintext events of `mebyo-operations`, P4.14),
//!   folded with the operations domain's own `evolve`, `runbook` and `required`, so
//!   the missing steps here are the ones the incident report lists;
//! - stream `ledger-checkpoints`: `ledger.checkpoint`, a C2SP signed note.
//!
//! Events of these types on any other stream are ignored: only the writers of
//! those streams speak for backups, incidents and checkpoints.
//!
//! "Overdue" is asked at a given `now` against a [`BackupRule`] the caller builds
//! from the server's `mebyo_backup::BackupSchedule` (P4.10): the rule is that
//! schedule's `overdue`, restated over plain numbers because this crate is pure.

use crate::event::{AnyEvent, Applied};
use mebyo_domain::{Duration, Timestamp};
use mebyo_operations::incident::{
    self, Assessment, IncidentEvent, IncidentKind, IncidentState, Level, Source, Step, required,
    runbook,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const BACKUP_STREAM: &str = "ops-backups";
pub const CHECKPOINT_STREAM: &str = "ledger-checkpoints";
pub const CHECKPOINT_EVENT_TYPE: &str = "ledger.checkpoint";
const INCIDENT_STREAM_PREFIX: &str = "incident-";

// ---- events ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupKind {
    Full,
    Differential,
    /// Key store and vault only, under a new epoch key (after an erasure).
    Keystore,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Differential => "differential",
            BackupKind::Keystore => "keystore",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Full, Self::Differential, Self::Keystore]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The parts of a `backup.*` payload the dashboard shows: ids, times, positions,
/// hashes. The payloads themselves belong to `mebyo_backup::jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupEvent {
    Completed {
        kind: BackupKind,
        backup_id: String,
        started_at: Timestamp,
        finished_at: Timestamp,
        /// Log positions `[from, to)` the set holds, and the head hash at `to - 1`.
        range: Option<(u64, u64)>,
        head_hash: Option<String>,
    },
    Failed {
        /// `backup`, `drill` or `epoch_rotation`.
        operation: String,
        kind: Option<String>,
        at: Timestamp,
        error: String,
    },
    /// A restore drill proved the sets restore to the live ledger's history.
    Verified {
        full: String,
        differential: Option<String>,
        events: u64,
        head_hash: String,
        at: Timestamp,
    },
    EpochRotated {
        new_epoch_key_id: String,
        at: Timestamp,
    },
}

#[derive(Deserialize)]
struct RawRange {
    from: u64,
    to: u64,
    head_hash: String,
}

#[derive(Deserialize)]
struct RawCompleted {
    kind: String,
    backup_id: String,
    range: Option<RawRange>,
    started_at: String,
    finished_at: String,
}

#[derive(Deserialize)]
struct RawFailed {
    operation: String,
    kind: Option<String>,
    at: String,
    error: String,
}

#[derive(Deserialize)]
struct RawVerified {
    full: String,
    differential: Option<String>,
    events: u64,
    head_hash: String,
    at: String,
}

#[derive(Deserialize)]
struct RawRotated {
    new_epoch_key_id: String,
    at: String,
}

/// RFC 3339 as `mebyo_backup` writes it, or its `@<µs>us` fallback.
fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Some(us) = s
        .strip_prefix('@')
        .and_then(|r| r.strip_suffix("us"))
        .and_then(|n| n.parse().ok())
    {
        return Ok(Timestamp(us));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| Timestamp((t.unix_timestamp_nanos() / 1000) as i64))
        .map_err(|e| format!("time {s:?}: {e}"))
}

impl BackupEvent {
    pub const COMPLETED: &'static str = "backup.completed";
    pub const FAILED: &'static str = "backup.failed";
    pub const VERIFIED: &'static str = "backup.verified";
    pub const EPOCH_ROTATED: &'static str = "backup.epoch_rotated";

    /// `None` for a `backup.*` type this model does not know (a newer writer).
    pub(crate) fn decode(event_type: &str, json: &[u8]) -> Option<Result<BackupEvent, String>> {
        fn raw<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, String> {
            serde_json::from_slice(json).map_err(|e| e.to_string())
        }
        let decoded = match event_type {
            Self::COMPLETED => raw::<RawCompleted>(json).and_then(|r| {
                Ok(BackupEvent::Completed {
                    kind: BackupKind::parse(&r.kind)
                        .ok_or_else(|| format!("unknown backup kind {:?}", r.kind))?,
                    backup_id: r.backup_id,
                    started_at: parse_time(&r.started_at)?,
                    finished_at: parse_time(&r.finished_at)?,
                    range: r.range.as_ref().map(|g| (g.from, g.to)),
                    head_hash: r.range.map(|g| g.head_hash),
                })
            }),
            Self::FAILED => raw::<RawFailed>(json).and_then(|r| {
                Ok(BackupEvent::Failed {
                    operation: r.operation,
                    kind: r.kind,
                    at: parse_time(&r.at)?,
                    error: r.error,
                })
            }),
            Self::VERIFIED => raw::<RawVerified>(json).and_then(|r| {
                Ok(BackupEvent::Verified {
                    full: r.full,
                    differential: r.differential,
                    events: r.events,
                    head_hash: r.head_hash,
                    at: parse_time(&r.at)?,
                })
            }),
            Self::EPOCH_ROTATED => raw::<RawRotated>(json).and_then(|r| {
                Ok(BackupEvent::EpochRotated {
                    new_epoch_key_id: r.new_epoch_key_id,
                    at: parse_time(&r.at)?,
                })
            }),
            _ => return None,
        };
        Some(decoded)
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            BackupEvent::Completed { .. } => Self::COMPLETED,
            BackupEvent::Failed { .. } => Self::FAILED,
            BackupEvent::Verified { .. } => Self::VERIFIED,
            BackupEvent::EpochRotated { .. } => Self::EPOCH_ROTATED,
        }
    }
}

/// The head a `ledger.checkpoint` signs: the first three lines of its C2SP
/// signed note (origin, tree size, base64 root hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointNote {
    pub origin: String,
    pub size: u64,
    pub root_hash: String,
}

impl CheckpointNote {
    pub(crate) fn parse(payload: &[u8]) -> Result<CheckpointNote, String> {
        let text = std::str::from_utf8(payload).map_err(|_| "signed note is not UTF-8")?;
        let body = text
            .split_once("\n\n")
            .map(|(b, _)| b)
            .ok_or("signed note has no signature block")?;
        let mut lines = body.lines();
        let origin = lines.next().filter(|l| !l.is_empty());
        let size = lines.next().and_then(|l| l.parse::<u64>().ok());
        let root = lines.next().filter(|l| !l.is_empty());
        match (origin, size, root) {
            (Some(origin), Some(size), Some(root)) => Ok(CheckpointNote {
                origin: origin.to_owned(),
                size,
                root_hash: root.to_owned(),
            }),
            _ => Err("signed note lacks origin, tree size or root hash".into()),
        }
    }
}

/// The incident an event belongs to.
pub fn incident_of(e: &IncidentEvent) -> &str {
    match e {
        IncidentEvent::Reported { incident, .. }
        | IncidentEvent::StepRecorded { incident, .. }
        | IncidentEvent::Assessed { incident, .. }
        | IncidentEvent::Escalated { incident, .. }
        | IncidentEvent::Notified { incident, .. }
        | IncidentEvent::CredentialsRotated { incident, .. }
        | IncidentEvent::Closed { incident, .. } => incident.as_str(),
    }
}

// ---- rows -----------------------------------------------------------------------------

/// A completed full or differential set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRun {
    pub backup_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Log positions `[from, to)`.
    pub range: Option<(u64, u64)>,
    pub head_hash: Option<String>,
    /// Where its `backup.completed` sits in the log.
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFailure {
    pub operation: String,
    pub kind: Option<String>,
    pub at: Timestamp,
    /// The job's error text (paths and reasons, no personal data; cut to 1 KiB by
    /// the writer).
    pub error: String,
    pub position: u64,
}

/// The last restore drill (`backup.verified`): the sets restored and matched the
/// live ledger at `events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRow {
    pub full: String,
    pub differential: Option<String>,
    pub events: u64,
    pub head_hash: String,
    pub at: Timestamp,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRotationRow {
    pub new_epoch_key_id: String,
    pub at: Timestamp,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRow {
    pub note: CheckpointNote,
    /// When the store appended it.
    pub at: Timestamp,
    pub position: u64,
}

/// One incident as the list shows it; the full report is built from its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub kind: IncidentKind,
    /// Raised by the anomaly rules (P4.4(1)) rather than by a person.
    pub detected_by_platform: bool,
    pub detected_at: Timestamp,
    pub reported_at: Timestamp,
    pub vpn_used: bool,
    pub assessment: Option<Assessment>,
    pub steps_done: BTreeSet<Step>,
    pub level: Option<Level>,
    pub closed_at: Option<Timestamp>,
}

impl IncidentRow {
    /// The operations domain's state for the parts `evolve` and `required` read.
    fn state(&self) -> IncidentState {
        IncidentState {
            id: None,
            kind: Some(self.kind),
            detected_at: self.detected_at,
            reported_at: self.reported_at,
            vpn_used: self.vpn_used,
            steps: BTreeMap::new(),
            assessment: self.assessment,
            level: self.level,
            closed_at: self.closed_at,
        }
    }

    /// Runbook steps required and not done, or awaiting the assessment they depend
    /// on: what the incident report lists as missing (P4.14).
    pub fn missing(&self) -> Vec<Step> {
        let state = self.state();
        runbook(self.kind)
            .iter()
            .filter(|line| !self.steps_done.contains(&line.step))
            .filter(|line| required(line, &state) != Some(false))
            .map(|line| line.step)
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// How late a backup may be: the server's `BackupSchedule::overdue` rule, as
/// plain durations (7 days + full grace; 24 hours + differential grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupRule {
    pub full_max_age: Duration,
    pub differential_max_age: Duration,
}

/// A missing or late backup (P4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupFlag {
    /// No full backup started within `full_max_age` (`last`: the latest, if any).
    FullOverdue { last: Option<Timestamp> },
    /// No backup of either kind started within `differential_max_age`: a full
    /// covers everything a differential would.
    DifferentialOverdue { last: Option<Timestamp> },
}

// ---- the model ------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operations {
    last_full: Option<BackupRun>,
    last_differential: Option<BackupRun>,
    last_failure: Option<BackupFailure>,
    last_drill: Option<DrillRow>,
    last_epoch_rotation: Option<EpochRotationRow>,
    backups_completed: u64,
    backup_failures: u64,
    incidents: BTreeMap<String, IncidentRow>,
    last_checkpoint: Option<CheckpointRow>,
    checkpoints: u64,
}

impl Operations {
    pub fn apply(&mut self, e: &Applied) {
        match e.event {
            AnyEvent::Backup(b) if e.stream_id == BACKUP_STREAM => self.apply_backup(b, e.position),
            AnyEvent::Incident(i)
                if e.stream_id.strip_prefix(INCIDENT_STREAM_PREFIX) == Some(incident_of(i)) =>
            {
                self.apply_incident(i)
            }
            AnyEvent::Checkpoint(note) if e.stream_id == CHECKPOINT_STREAM => {
                self.checkpoints += 1;
                self.last_checkpoint = Some(CheckpointRow {
                    note: note.clone(),
                    at: Timestamp(e.recorded_at_us),
                    position: e.position,
                });
            }
            _ => {}
        }
    }

    fn apply_backup(&mut self, b: &BackupEvent, position: u64) {
        match b {
            BackupEvent::Completed {
                kind,
                backup_id,
                started_at,
                finished_at,
                range,
                head_hash,
            } => {
                self.backups_completed += 1;
                let slot = match kind {
                    BackupKind::Full => &mut self.last_full,
                    BackupKind::Differential => &mut self.last_differential,
                    BackupKind::Keystore => return,
                };
                // The latest by start time, as `mebyo_backup::schedule::last_runs`
                // picks it: a set recorded late does not hide a newer one.
                if slot.as_ref().is_none_or(|r| r.started_at <= *started_at) {
                    *slot = Some(BackupRun {
                        backup_id: backup_id.clone(),
                        started_at: *started_at,
                        finished_at: *finished_at,
                        range: *range,
                        head_hash: head_hash.clone(),
                        position,
                    });
                }
            }
            BackupEvent::Failed {
                operation,
                kind,
                at,
                error,
            } => {
                self.backup_failures += 1;
                self.last_failure = Some(BackupFailure {
                    operation: operation.clone(),
                    kind: kind.clone(),
                    at: *at,
                    error: error.clone(),
                    position,
                });
            }
            BackupEvent::Verified {
                full,
                differential,
                events,
                head_hash,
                at,
            } => {
                self.last_drill = Some(DrillRow {
                    full: full.clone(),
                    differential: differential.clone(),
                    events: *events,
                    head_hash: head_hash.clone(),
                    at: *at,
                    position,
                });
            }
            BackupEvent::EpochRotated {
                new_epoch_key_id,
                at,
            } => {
                self.last_epoch_rotation = Some(EpochRotationRow {
                    new_epoch_key_id: new_epoch_key_id.clone(),
                    at: *at,
                    position,
                });
            }
        }
    }

    fn apply_incident(&mut self, e: &IncidentEvent) {
        let id = incident_of(e);
        if let IncidentEvent::Reported {
            kind,
            detected_at,
            vpn_used,
            source,
            at,
            ..
        } = e
        {
            // The decider refuses a second report of the same id; if one were
            // there anyway, the first stands (as in the domain's fold).
            self.incidents
                .entry(id.to_owned())
                .or_insert_with(|| IncidentRow {
                    kind: *kind,
                    detected_by_platform: matches!(source, Source::Detected { .. }),
                    detected_at: *detected_at,
                    reported_at: *at,
                    vpn_used: *vpn_used,
                    assessment: None,
                    steps_done: BTreeSet::new(),
                    level: Some(Level::Reporter),
                    closed_at: None,
                });
            return;
        }
        // Events of an incident never reported are not an incident.
        let Some(row) = self.incidents.get_mut(id) else {
            return;
        };
        // The domain's own evolve decides the level, the assessment and closure.
        let after = incident::evolve(row.state(), e);
        row.level = after.level;
        row.assessment = after.assessment;
        row.closed_at = after.closed_at;
        row.steps_done.extend(after.steps.into_keys());
    }

    pub fn last_full(&self) -> Option<&BackupRun> {
        self.last_full.as_ref()
    }
    pub fn last_differential(&self) -> Option<&BackupRun> {
        self.last_differential.as_ref()
    }
    pub fn last_failure(&self) -> Option<&BackupFailure> {
        self.last_failure.as_ref()
    }
    pub fn last_drill(&self) -> Option<&DrillRow> {
        self.last_drill.as_ref()
    }
    pub fn last_epoch_rotation(&self) -> Option<&EpochRotationRow> {
        self.last_epoch_rotation.as_ref()
    }
    pub fn backups_completed(&self) -> u64 {
        self.backups_completed
    }
    pub fn backup_failures(&self) -> u64 {
        self.backup_failures
    }
    pub fn last_checkpoint(&self) -> Option<&CheckpointRow> {
        self.last_checkpoint.as_ref()
    }
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// Flags raised at `now` (P4.10), by the rule of `BackupSchedule::overdue`:
    /// late means no start within the limit, or none ever.
    pub fn backup_flags(&self, now: Timestamp, rule: &BackupRule) -> Vec<BackupFlag> {
        let late = |last: Option<Timestamp>, limit: Duration| match last {
            None => true,
            Some(t) => now.0.saturating_sub(t.0) > limit.0,
        };
        let full = self.last_full.as_ref().map(|r| r.started_at);
        let diff = self.last_differential.as_ref().map(|r| r.started_at);
        let mut flags = Vec::new();
        if late(full, rule.full_max_age) {
            flags.push(BackupFlag::FullOverdue { last: full });
        }
        let any = full.max(diff);
        if late(any, rule.differential_max_age) {
            flags.push(BackupFlag::DifferentialOverdue { last: any });
        }
        flags
    }

    pub fn incident(&self, id: &str) -> Option<&IncidentRow> {
        self.incidents.get(id)
    }

    /// Every incident, most recently reported first.
    pub fn incidents(&self) -> Vec<(&str, &IncidentRow)> {
        let mut v: Vec<_> = self
            .incidents
            .iter()
            .map(|(id, r)| (id.as_str(), r))
            .collect();
        v.sort_by(|a, b| (b.1.reported_at, b.0).cmp(&(a.1.reported_at, a.0)));
        v
    }

    /// (open, closed) counts.
    pub fn incident_counts(&self) -> (u64, u64) {
        let open = self.incidents.values().filter(|r| r.is_open()).count() as u64;
        (open, self.incidents.len() as u64 - open)
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.incidents.values().any(|r| r.level.is_none()) {
            return Err("incident without a level");
        }
        if (self.last_checkpoint.is_some()) != (self.checkpoints > 0) {
            return Err("checkpoint count and last checkpoint disagree");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use mebyo_operations::incident::{IncidentCommand, NotifyTarget};

    const DAY: i64 = 86_400_000_000;
    const HOUR: i64 = 3_600_000_000;

    /// The default schedule of `mebyo_backup` (7 d + 3 h, 24 h + 3 h).
    fn rule() -> BackupRule {
        BackupRule {
            full_max_age: Duration(7 * DAY + 3 * HOUR),
            differential_max_age: Duration(DAY + 3 * HOUR),
        }
    }

    #[test]
    fn p4_10_last_full_and_differential_with_their_ranges() {
        let mut log = Log::default();
        let full = log.backup_completed("full", "full-1", days(0), (0, 40));
        log.backup_completed("differential", "diff-1", days(1), (40, 52));
        log.backup_completed("keystore", "keys-1", days(1), (0, 0));
        let m = log.fold();
        let ops = m.operations();
        let f = ops.last_full().expect("a full backup");
        assert_eq!(f.backup_id, "full-1");
        assert_eq!(f.started_at, days(0));
        assert_eq!(f.range, Some((0, 40)));
        assert_eq!(f.position, full);
        let d = ops.last_differential().expect("a differential");
        assert_eq!((d.backup_id.as_str(), d.range), ("diff-1", Some((40, 52))));
        assert_eq!(ops.backups_completed(), 3);
        assert!(ops.last_failure().is_none());
    }

    #[test]
    fn p4_10_overdue_at_an_injected_now() {
        let mut log = Log::default();
        // Nothing ever: both flags.
        assert_eq!(
            log.fold().operations().backup_flags(days(0), &rule()),
            vec![
                BackupFlag::FullOverdue { last: None },
                BackupFlag::DifferentialOverdue { last: None }
            ]
        );
        log.backup_completed("full", "full-1", days(0), (0, 10));
        let m = log.fold();
        let ops = m.operations();
        // A full counts as the day's backup too.
        assert!(ops.backup_flags(days(0) + hours(27), &rule()).is_empty());
        assert_eq!(
            ops.backup_flags(days(0) + hours(27) + Duration(1), &rule()),
            vec![BackupFlag::DifferentialOverdue {
                last: Some(days(0))
            }]
        );
        log.backup_completed("differential", "diff-1", days(7), (10, 20));
        let m = log.fold();
        let ops = m.operations();
        assert!(ops.backup_flags(days(7), &rule()).is_empty());
        // Exactly at the limit is not late; a microsecond past it is.
        let limit = days(0) + Duration(7 * DAY + 3 * HOUR);
        assert!(ops.backup_flags(limit, &rule()).is_empty());
        assert_eq!(
            ops.backup_flags(limit + Duration(1), &rule()),
            vec![BackupFlag::FullOverdue {
                last: Some(days(0))
            }]
        );
    }

    #[test]
    fn p4_10_a_late_recorded_older_set_does_not_hide_a_newer_one() {
        let mut log = Log::default();
        log.backup_completed("full", "full-new", days(5), (0, 10));
        log.backup_completed("full", "full-old", days(1), (0, 5));
        let m = log.fold();
        assert_eq!(m.operations().last_full().unwrap().backup_id, "full-new");
    }

    #[test]
    fn p4_10_failures_drills_and_rotations() {
        let mut log = Log::default();
        log.backup_completed("full", "full-1", days(0), (0, 10));
        let failed = log.backup_failed("backup", Some("differential"), days(1), "disk full");
        let drill = log.backup_verified("full-1", None, 10, days(2));
        log.epoch_rotated("epoch-2", days(3));
        let m = log.fold();
        let ops = m.operations();
        let f = ops.last_failure().unwrap();
        assert_eq!(
            (f.operation.as_str(), f.kind.as_deref(), f.at, f.position),
            ("backup", Some("differential"), days(1), failed)
        );
        assert!(f.error.contains("disk full"));
        assert_eq!(ops.backup_failures(), 1);
        let d = ops.last_drill().unwrap();
        assert_eq!((d.full.as_str(), d.events, d.at), ("full-1", 10, days(2)));
        assert_eq!(d.position, drill);
        assert_eq!(
            ops.last_epoch_rotation().unwrap().new_epoch_key_id,
            "epoch-2"
        );
    }

    #[test]
    fn checkpoints_keep_the_last_signed_head() {
        let mut log = Log::default();
        log.checkpoint(5);
        let last = log.checkpoint(9);
        let m = log.fold();
        let c = m.operations().last_checkpoint().unwrap();
        assert_eq!((c.note.size, c.position), (9, last));
        assert_eq!(c.note.origin, "mebyo.example/ledger");
        assert_eq!(m.operations().checkpoints(), 2);
    }

    #[test]
    fn operational_events_on_foreign_streams_are_ignored() {
        // Only the backup job writes `ops-backups`, only the checkpointer
        // `ledger-checkpoints`, only an incident's own stream speaks for it.
        let mut log = Log::default();
        log.backup_completed("full", "full-1", days(0), (0, 10));
        log.checkpoint(3);
        let before = log.fold().operations().clone();
        log.push_on(
            "person-p1",
            Log::backup_event("full", "forged", days(9), (0, 99)),
        );
        log.push_on("ops-backups", Log::checkpoint_event(99));
        log.push_on(
            "incident-other",
            Log::incident_reported_event("x-1", days(0)),
        );
        let after = log.fold();
        assert_eq!(after.operations(), &before);
    }

    #[test]
    fn p4_14_incidents_open_closed_and_missing_steps() {
        let mut log = Log::default();
        // Other (P4.14(1)): report to the administrator, then contact departments.
        log.incident(
            "sysadm",
            "i-1",
            days(0),
            IncidentCommand::Report {
                incident: mebyo_operations::IncidentId::new("i-1").unwrap(),
                kind: IncidentKind::Other,
                detected_at: days(0),
                vpn_used: false,
                contractor: None,
                source: Source::Staff,
            },
        );
        let m = log.fold();
        let row = m.operations().incident("i-1").unwrap();
        assert!(row.is_open());
        assert_eq!(row.reported_at, days(0));
        assert_eq!(
            row.missing(),
            vec![Step::ReportToSoa, Step::ContactDepartments]
        );
        assert_eq!(m.operations().incident_counts(), (1, 0));

        log.incident(
            "sysadm",
            "i-1",
            days(0) + hours(1),
            IncidentCommand::RecordStep {
                step: Step::ReportToSoa,
                done_at: None,
                reference: None,
            },
        );
        let m = log.fold();
        let row = m.operations().incident("i-1").unwrap();
        assert_eq!(row.missing(), vec![Step::ContactDepartments]);
        assert_eq!(row.level, Some(Level::SystemOperationsAdministrator));

        log.incident(
            "sysadm",
            "i-1",
            days(0) + hours(2),
            IncidentCommand::RecordStep {
                step: Step::ContactDepartments,
                done_at: None,
                reference: None,
            },
        );
        log.incident(
            "sysadm",
            "i-1",
            days(0) + hours(3),
            IncidentCommand::Notify {
                target: NotifyTarget::RelatedDepartments,
                count: 0,
                reference: None,
            },
        );
        log.incident("sysadm", "i-1", days(0) + hours(4), IncidentCommand::Close);
        // A second incident, still open.
        log.incident(
            "office",
            "i-2",
            days(1),
            IncidentCommand::Report {
                incident: mebyo_operations::IncidentId::new("i-2").unwrap(),
                kind: IncidentKind::Malware,
                detected_at: days(1),
                vpn_used: false,
                contractor: None,
                source: Source::Staff,
            },
        );
        let m = log.fold();
        let ops = m.operations();
        let row = ops.incident("i-1").unwrap();
        assert!(row.missing().is_empty());
        assert_eq!(row.closed_at, Some(days(0) + hours(4)));
        assert_eq!(ops.incident_counts(), (1, 1));
        let list: Vec<&str> = ops.incidents().into_iter().map(|(id, _)| id).collect();
        assert_eq!(list, vec!["i-2", "i-1"], "most recent first");
        // Malware (P4.14(3)): the leak notification awaits the assessment, so it
        // counts as missing, as the report says.
        assert!(
            ops.incident("i-2")
                .unwrap()
                .missing()
                .contains(&Step::NotifyLeak)
        );
        // The same missing steps as the domain's report.
        let events = log.incident_events("i-2");
        let report = mebyo_operations::report::report(&events).unwrap();
        let ours: Vec<&str> = ops
            .incident("i-2")
            .unwrap()
            .missing()
            .iter()
            .map(|s| s.code())
            .collect();
        assert_eq!(ours, report.missing);
    }

    #[test]
    fn malformed_operational_payloads_are_decode_errors() {
        use crate::event::DecodeError;
        for (t, p) in [
            ("backup.completed", &b"{\"kind\":\"full\"}"[..]),
            (
                "backup.failed",
                b"{\"operation\":\"backup\",\"at\":\"yesterday\",\"error\":\"x\"}",
            ),
            ("ledger.checkpoint", b"just text"),
            ("incident.reported", b"{}"),
        ] {
            assert!(
                matches!(
                    AnyEvent::decode(t, p),
                    Err(DecodeError::Operational { .. } | DecodeError::Payload { .. })
                ),
                "{t}"
            );
        }
        // A backup type this model does not know yet moves the position only.
        assert!(matches!(
            AnyEvent::decode("backup.pruned", b"{}"),
            Ok(AnyEvent::Other { .. })
        ));
    }
}
