//! Monitoring support (P4.4, P4.5): the recurring firewall-log review, access-log
//! retention, and the synthetic response probe.
//!
//! P4.4(3) asks for a *regular* check of the firewall's access logs; P4.5(1) puts
//! network monitoring on the system operations administrator. Each review is an
//! event in `ops-firewall-reviews` saying which span of the log was read and what
//! came of it; reviews must cover the log without gaps, and one recorded after its
//! due time is marked late. P4.5(2) asks that access logs be collected and kept:
//! retention is configured in days and [`past_retention`] decides what has passed
//! it. P4.4(2) asks for liveness and application-response monitoring: a probe reads
//! a synthetic person's records through the real read path and its latency is kept
//! as a `probe.recorded` event in `ops-probes`.

use crate::clause::{acting_staff, ensure};
use crate::ids::{IncidentId, Reference};
use mebyo_domain::staff::Role;
use mebyo_domain::{Ctx, Decider, DomainEvent, Duration, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};

pub const FIREWALL_STREAM: &str = "ops-firewall-reviews";
pub const PROBE_STREAM: &str = "ops-probes";

/// Whether a review is overdue at `now`: the next one was due `interval` after the
/// last. A log never reviewed is overdue: there is no evidence it was ever read.
pub fn overdue(now: Timestamp, last_review: Option<Timestamp>, interval: Duration) -> bool {
    match last_review {
        None => true,
        Some(last) => now > last + interval,
    }
}

/// The review status an operator's dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReviewFlag {
    pub last_review: Option<Timestamp>,
    /// `None` when never reviewed (due at once).
    pub due_at: Option<Timestamp>,
    pub overdue: bool,
}

pub fn review_flag(state: &FirewallState, now: Timestamp, interval: Duration) -> ReviewFlag {
    let last = state.last.as_ref().map(|r| r.at);
    ReviewFlag {
        last_review: last,
        due_at: last.map(|l| l + interval),
        overdue: overdue(now, last, interval),
    }
}

/// Whether something recorded at `recorded_at` is past a retention of `retention`
/// at `now` (kept for exactly `retention`, not a microsecond less).
pub fn past_retention(now: Timestamp, recorded_at: Timestamp, retention: Duration) -> bool {
    recorded_at + retention <= now
}

/// The first instant still within retention at `now`.
pub fn retention_cutoff(now: Timestamp, retention: Duration) -> Timestamp {
    Timestamp(now.0.saturating_sub(retention.0))
}

/// Splits items into those kept and those past retention, keeping their order.
pub fn split_by_retention<T>(
    items: impl IntoIterator<Item = T>,
    recorded_at: impl Fn(&T) -> Timestamp,
    now: Timestamp,
    retention: Duration,
) -> (Vec<T>, Vec<T>) {
    items
        .into_iter()
        .partition(|t| !past_retention(now, recorded_at(t), retention))
}

// ---- firewall-log review ------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    NothingFound,
    /// Something was found and reported as this incident (P4.14(1)).
    Incident {
        incident: IncidentId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReview {
    /// The span of firewall log read.
    pub from: Timestamp,
    pub to: Timestamp,
    pub finding: Finding,
    /// A reference to the reviewer's working notes (outside the system).
    pub reference: Option<Reference>,
    /// The configured review interval, filled in by the service.
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FirewallEvent {
    #[serde(rename = "firewall.reviewed")]
    Reviewed {
        from: Timestamp,
        to: Timestamp,
        finding: Finding,
        reference: Option<Reference>,
        /// Recorded after the review was due.
        late: bool,
        by: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for FirewallEvent {
    fn event_type(&self) -> &'static str {
        "firewall.reviewed"
    }
    fn person_related(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastReview {
    pub at: Timestamp,
    pub to: Timestamp,
    pub late: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    pub last: Option<LastReview>,
    pub reviews: u32,
    pub late_reviews: u32,
}

/// Whether a holder of `r` reviews the firewall logs (P4.4(3), P4.5(1)): the
/// system operations administrator.
pub fn reviewer(r: Role) -> bool {
    r == Role::SystemOperationsAdministrator
}

pub struct FirewallReview;

impl Decider for FirewallReview {
    type State = FirewallState;
    type Command = RecordReview;
    type Event = FirewallEvent;

    fn decide(
        state: &FirewallState,
        cmd: &RecordReview,
        ctx: &Ctx,
    ) -> Result<Vec<FirewallEvent>, Refusal> {
        let (by, _) = acting_staff(
            ctx,
            reviewer,
            false,
            mebyo_domain::clause!("P4.5(1)"),
            "the system operations administrator reviews the firewall logs",
        )?;
        ensure(
            cmd.from < cmd.to && cmd.to <= ctx.now,
            "firewall.span_invalid",
            mebyo_domain::clause!("P4.4(3)"),
            "a review reads a past span of the log",
        )?;
        if let Some(last) = &state.last {
            // Regular review means the whole log, not samples of it.
            ensure(
                cmd.from <= last.to,
                "firewall.coverage_gap",
                mebyo_domain::clause!("P4.4(3)"),
                "the span must start where the last review ended (or earlier): no gaps",
            )?;
            ensure(
                cmd.to > last.to,
                "firewall.nothing_new",
                mebyo_domain::clause!("P4.4(3)"),
                "the span adds nothing to the last review",
            )?;
        }
        let late = state.last.is_some()
            && overdue(ctx.now, state.last.as_ref().map(|l| l.at), cmd.interval);
        Ok(vec![FirewallEvent::Reviewed {
            from: cmd.from,
            to: cmd.to,
            finding: cmd.finding.clone(),
            reference: cmd.reference.clone(),
            late,
            by,
            at: ctx.now,
        }])
    }

    fn evolve(mut state: FirewallState, event: &FirewallEvent) -> FirewallState {
        let FirewallEvent::Reviewed { to, late, at, .. } = event;
        state.last = Some(LastReview {
            at: *at,
            to: *to,
            late: *late,
        });
        state.reviews += 1;
        state.late_reviews += u32::from(*late);
        state
    }
}

// ---- synthetic probe ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// The read was granted and answered.
    Ok { records: u32 },
    /// The read path answered with a refusal: the synthetic person's set-up is
    /// broken (an expired credential), which an operator must see.
    Refused { code: String, clause: String },
    /// The machinery failed (storage, keys).
    Failed { error: String },
}

/// One probe of the read path (P4.4(2)). Names the probe, never the synthetic
/// person, so nothing links the probe stream to a person stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ProbeEvent {
    #[serde(rename = "probe.recorded")]
    Recorded {
        probe: Reference,
        path: String,
        latency_us: i64,
        outcome: ProbeOutcome,
        at: Timestamp,
    },
}

impl DomainEvent for ProbeEvent {
    fn event_type(&self) -> &'static str {
        "probe.recorded"
    }
    fn person_related(&self) -> bool {
        false
    }
}

impl ProbeEvent {
    pub fn latency_us(&self) -> i64 {
        let ProbeEvent::Recorded { latency_us, .. } = self;
        *latency_us
    }

    pub fn healthy(&self, slow_after_us: i64) -> bool {
        let ProbeEvent::Recorded {
            latency_us,
            outcome,
            ..
        } = self;
        matches!(outcome, ProbeOutcome::Ok { .. }) && *latency_us <= slow_after_us
    }
}
