//! Maintenance windows (P4.3): "保守点検のため、本システムの利用に影響を生じる場合は、
//! 予め日程と時間を本システムの個人利用者に伝える". A window is announced at least
//! the configured lead time before it starts; from the announcement until it ends,
//! the portal shows it to individuals, and the bus publishes it once to providers.
//!
//! All windows live in one stream, `ops-maintenance`, so overlapping windows and
//! duplicate ids are decided against everything announced.

use crate::clause::{acting_staff, ensure, refuse};
use crate::ids::WindowId;
use mebyo_domain::staff::Role;
use mebyo_domain::{Actor, Ctx, Decider, DomainEvent, Duration, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

pub const STREAM: &str = "ops-maintenance";

/// Longest summary shown to users; a notice is a line, not a document.
pub const SUMMARY_MAX_CHARS: usize = 200;

/// What a window takes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Portal,
    App,
    ProviderGateway,
}

impl Service {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

/// Who is told through which channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Individuals, on the portal (pulled: the portal asks [`notices_at`]).
    Individuals,
    /// Providers, over the bus (pushed once through a [`NoticePublisher`]).
    Providers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceCommand {
    Schedule {
        window: WindowId,
        starts_at: Timestamp,
        ends_at: Timestamp,
        affects: BTreeSet<Service>,
        summary: String,
        /// The configured lead time, filled in by the service from its settings
        /// (configuration, not caller input).
        lead_time: Duration,
    },
    Cancel {
        window: WindowId,
    },
    /// The bus published the notice to providers.
    RecordPublished {
        window: WindowId,
        audience: Audience,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MaintenanceEvent {
    #[serde(rename = "maintenance.scheduled")]
    Scheduled {
        window: WindowId,
        starts_at: Timestamp,
        ends_at: Timestamp,
        affects: BTreeSet<Service>,
        summary: String,
        lead_time: Duration,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "maintenance.cancelled")]
    Cancelled {
        window: WindowId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "maintenance.notice_published")]
    NoticePublished {
        window: WindowId,
        audience: Audience,
        at: Timestamp,
    },
}

impl DomainEvent for MaintenanceEvent {
    fn event_type(&self) -> &'static str {
        match self {
            MaintenanceEvent::Scheduled { .. } => "maintenance.scheduled",
            MaintenanceEvent::Cancelled { .. } => "maintenance.cancelled",
            MaintenanceEvent::NoticePublished { .. } => "maintenance.notice_published",
        }
    }

    fn person_related(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    pub id: WindowId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub affects: BTreeSet<Service>,
    pub summary: String,
    pub announced_at: Timestamp,
    pub announced_by: StaffId,
    pub cancelled_at: Option<Timestamp>,
    pub published: BTreeMap<Audience, Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceState {
    pub windows: BTreeMap<WindowId, Window>,
}

/// What the portal shows and the bus sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub window: WindowId,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub affects: BTreeSet<Service>,
    pub summary: String,
    pub announced_at: Timestamp,
}

impl From<&Window> for Notice {
    fn from(w: &Window) -> Self {
        Notice {
            window: w.id.clone(),
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            affects: w.affects.clone(),
            summary: w.summary.clone(),
            announced_at: w.announced_at,
        }
    }
}

/// The notices the portal shows at `t`: every window announced by `t` that has not
/// ended and was not cancelled by `t`, soonest first.
pub fn notices_at(state: &MaintenanceState, t: Timestamp) -> Vec<Notice> {
    let mut v: Vec<Notice> = state
        .windows
        .values()
        .filter(|w| w.announced_at <= t && t < w.ends_at)
        .filter(|w| w.cancelled_at.is_none_or(|c| t < c))
        .map(Notice::from)
        .collect();
    v.sort_by_key(|n| (n.starts_at, n.window.clone()));
    v
}

/// Windows whose notice the bus still owes providers at `now`.
pub fn due_for_bus(state: &MaintenanceState, now: Timestamp) -> Vec<Notice> {
    state
        .windows
        .values()
        .filter(|w| w.cancelled_at.is_none() && now < w.ends_at)
        .filter(|w| !w.published.contains_key(&Audience::Providers))
        .map(Notice::from)
        .collect()
}

/// Why a notice could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("publishing maintenance notice {window} failed: {reason}")]
pub struct PublishError {
    pub window: WindowId,
    pub reason: String,
}

/// The hook the provider bus implements to push notices to providers (P4.3). The
/// operations service calls it for each window [`due_for_bus`] and records the
/// publication once it returns `Ok`, so a notice is sent at least once and recorded
/// at most once. A boxed future keeps the trait object-safe without an async
/// runtime in this pure crate.
pub trait NoticePublisher: Send + Sync {
    fn publish<'a>(
        &'a self,
        notice: &'a Notice,
    ) -> Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;
}

pub struct Maintenance;

impl Decider for Maintenance {
    type State = MaintenanceState;
    type Command = MaintenanceCommand;
    type Event = MaintenanceEvent;

    fn decide(
        state: &MaintenanceState,
        cmd: &MaintenanceCommand,
        ctx: &Ctx,
    ) -> Result<Vec<MaintenanceEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: MaintenanceState, event: &MaintenanceEvent) -> MaintenanceState {
        evolve(state, event)
    }
}

/// Who plans maintenance: the operations manager, who owns operations (P3.1(3)),
/// or the system operations administrator, who runs them (P3.1(4)).
/// Whether a holder of `r` announces, moves and cancels maintenance windows
/// (P4.3): the operations manager and the system operations administrator.
pub fn planner(r: Role) -> bool {
    matches!(
        r,
        Role::OperationsManager(_) | Role::SystemOperationsAdministrator
    )
}

pub fn decide(
    state: &MaintenanceState,
    cmd: &MaintenanceCommand,
    ctx: &Ctx,
) -> Result<Vec<MaintenanceEvent>, Refusal> {
    let now = ctx.now;
    match cmd {
        MaintenanceCommand::Schedule {
            window,
            starts_at,
            ends_at,
            affects,
            summary,
            lead_time,
        } => {
            let (by, _) = acting_staff(
                ctx,
                planner,
                false,
                mebyo_domain::clause!("P4.3"),
                "scheduling maintenance",
            )?;
            ensure(
                !state.windows.contains_key(window),
                "maintenance.duplicate",
                mebyo_domain::clause!("P4.3"),
                "a window with this id is already announced",
            )?;
            ensure(
                starts_at < ends_at,
                "maintenance.window_invalid",
                mebyo_domain::clause!("P4.3"),
                "a window ends after it starts",
            )?;
            ensure(
                !affects.is_empty(),
                "maintenance.affects_nothing",
                mebyo_domain::clause!("P4.3"),
                "name what the window takes down",
            )?;
            let chars = summary.chars().count();
            ensure(
                (1..=SUMMARY_MAX_CHARS).contains(&chars) && !summary.chars().any(char::is_control),
                "maintenance.summary",
                mebyo_domain::clause!("P4.3"),
                "the notice needs a one-line summary of at most 200 characters",
            )?;
            // The heart of P4.3: users hear of it in advance, by the lead time.
            ensure(
                *starts_at >= now + *lead_time,
                "maintenance.short_notice",
                mebyo_domain::clause!("P4.3"),
                "maintenance must be announced at least the configured lead time ahead",
            )?;
            Ok(vec![MaintenanceEvent::Scheduled {
                window: window.clone(),
                starts_at: *starts_at,
                ends_at: *ends_at,
                affects: affects.clone(),
                summary: summary.clone(),
                lead_time: *lead_time,
                by,
                at: now,
            }])
        }
        MaintenanceCommand::Cancel { window } => {
            let (by, _) = acting_staff(
                ctx,
                planner,
                false,
                mebyo_domain::clause!("P4.3"),
                "cancelling maintenance",
            )?;
            let Some(w) = state.windows.get(window) else {
                return refuse(
                    "maintenance.unknown",
                    mebyo_domain::clause!("P4.3"),
                    "no such window",
                );
            };
            ensure(
                w.cancelled_at.is_none() && now < w.ends_at,
                "maintenance.not_cancellable",
                mebyo_domain::clause!("P4.3"),
                "the window is already cancelled or over",
            )?;
            Ok(vec![MaintenanceEvent::Cancelled {
                window: window.clone(),
                by,
                at: now,
            }])
        }
        MaintenanceCommand::RecordPublished { window, audience } => {
            // The platform's bus publishes on its own; staff may record a manual send.
            if *ctx.actor != Actor::System {
                acting_staff(
                    ctx,
                    planner,
                    false,
                    mebyo_domain::clause!("P4.3"),
                    "recording a publication",
                )?;
            }
            let Some(w) = state.windows.get(window) else {
                return refuse(
                    "maintenance.unknown",
                    mebyo_domain::clause!("P4.3"),
                    "no such window",
                );
            };
            ensure(
                w.cancelled_at.is_none(),
                "maintenance.cancelled",
                mebyo_domain::clause!("P4.3"),
                "the window was cancelled",
            )?;
            if w.published.contains_key(audience) {
                // Already recorded: nothing to add (a retried publication).
                return Ok(vec![]);
            }
            Ok(vec![MaintenanceEvent::NoticePublished {
                window: window.clone(),
                audience: *audience,
                at: now,
            }])
        }
    }
}

pub fn evolve(mut state: MaintenanceState, event: &MaintenanceEvent) -> MaintenanceState {
    match event {
        MaintenanceEvent::Scheduled {
            window,
            starts_at,
            ends_at,
            affects,
            summary,
            by,
            at,
            ..
        } => {
            state.windows.insert(
                window.clone(),
                Window {
                    id: window.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    affects: affects.clone(),
                    summary: summary.clone(),
                    announced_at: *at,
                    announced_by: by.clone(),
                    cancelled_at: None,
                    published: BTreeMap::new(),
                },
            );
        }
        MaintenanceEvent::Cancelled { window, at, .. } => {
            if let Some(w) = state.windows.get_mut(window) {
                w.cancelled_at = Some(*at);
            }
        }
        MaintenanceEvent::NoticePublished {
            window,
            audience,
            at,
        } => {
            if let Some(w) = state.windows.get_mut(window) {
                w.published.insert(*audience, *at);
            }
        }
    }
    state
}
