//! Staff and roles (P3.1, P3.4): appointments follow the chain of authority and
//! nothing else; privileged actions need current privacy training.

use crate::refusal::{ensure, refuse};
use crate::{Actor, Ctx, Decider, DomainEvent, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Primary (正) or deputy (副) holder of a role that allows both (P3.1(2), P3.1(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rank {
    Primary,
    Deputy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// 事業管理者: the system's overall head, ex officio (P3.1(1)).
    BusinessAdministrator,
    /// 事業実施責任者 (P3.1(2)).
    BusinessImplementationManager(Rank),
    /// 運用管理責任者 (P3.1(3)).
    OperationsManager(Rank),
    /// システム運用管理者 (P3.1(4)).
    SystemOperationsAdministrator,
    /// 運営事務局 (P3.2).
    OperationsOffice,
    /// Prefecture officials who approve providers and revoke connection info.
    Prefecture,
    /// Reads audit trails, never health content.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::BusinessAdministrator,
        Role::BusinessImplementationManager(Rank::Primary),
        Role::BusinessImplementationManager(Rank::Deputy),
        Role::OperationsManager(Rank::Primary),
        Role::OperationsManager(Rank::Deputy),
        Role::SystemOperationsAdministrator,
        Role::OperationsOffice,
        Role::Prefecture,
        Role::Auditor,
    ];

    /// The role's name in commands and the API (`operations-manager`,
    /// `operations-manager-deputy`, …).
    pub const fn slug(self) -> &'static str {
        match self {
            Role::BusinessAdministrator => "business-administrator",
            Role::BusinessImplementationManager(Rank::Primary) => "implementation-manager",
            Role::BusinessImplementationManager(Rank::Deputy) => "implementation-manager-deputy",
            Role::OperationsManager(Rank::Primary) => "operations-manager",
            Role::OperationsManager(Rank::Deputy) => "operations-manager-deputy",
            Role::SystemOperationsAdministrator => "system-operations-administrator",
            Role::OperationsOffice => "operations-office",
            Role::Prefecture => "prefecture",
            Role::Auditor => "auditor",
        }
    }

    pub fn from_slug(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.slug() == s)
    }

    /// Whether a holder of `appointer` may appoint this role (P3.1). The head is ex
    /// officio and appointed by nobody. Roles outside the policy's chain sit under the
    /// head that owns them: the office under the operations manager, prefecture
    /// officials and auditors under the business administrator.
    /// Whether a holder of `self` appoints or dismisses anyone at all (P3.1): the
    /// dashboard shows the staff forms to them.
    pub fn appoints_anyone(self) -> bool {
        Role::ALL.iter().any(|r| r.appointable_by(self))
    }

    /// Whether a holder of `self` records staff training (P3.4(2)): the
    /// operations manager, and the business administrator for the managers.
    pub fn records_training(self) -> bool {
        matches!(
            self,
            Role::OperationsManager(_) | Role::BusinessAdministrator
        )
    }

    pub fn appointable_by(self, appointer: Role) -> bool {
        match self {
            Role::BusinessAdministrator => false,
            Role::BusinessImplementationManager(_)
            | Role::OperationsManager(_)
            | Role::Prefecture
            | Role::Auditor => appointer == Role::BusinessAdministrator,
            Role::SystemOperationsAdministrator | Role::OperationsOffice => {
                matches!(appointer, Role::OperationsManager(_))
            }
        }
    }
}

/// Whether signing in with this role needs a second factor (issue 15 §5): every
/// role that can approve, revoke, erase, grant, appoint or export does. The office
/// answers inquiries and handles applications; everything it does is undone or
/// decided by one of the others, so a password (with the lockout) is enough.
pub fn second_factor_required(roles: &BTreeSet<Role>) -> bool {
    roles.iter().any(|r| *r != Role::OperationsOffice)
}

/// A completed privacy training (P3.4(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Training {
    pub completed_at: Timestamp,
    pub valid_until: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffState {
    pub id: Option<StaffId>,
    pub roles: BTreeSet<Role>,
    pub training: Option<Training>,
}

impl StaffState {
    pub fn holds(&self, may: impl Fn(Role) -> bool) -> bool {
        self.roles.iter().any(|r| may(*r))
    }

    /// Privacy training completed and not yet lapsed at `now` (P3.4).
    pub fn training_current(&self, now: Timestamp) -> bool {
        self.training
            .is_some_and(|t| t.completed_at <= now && now < t.valid_until)
    }
}

/// The acting staff member if they hold a role `may` accepts (else refused citing
/// `clause`). Role only: for routine staff work.
pub fn with_role(
    ctx: &Ctx,
    may: impl Fn(Role) -> bool,
    clause: &'static str,
    what: &str,
) -> Result<StaffId, Refusal> {
    let Actor::Staff { staff: id } = ctx.actor else {
        return refuse("staff.role_required", clause, format!("{what}: staff only"));
    };
    match ctx.staff {
        Some(s) if s.id.as_ref() == Some(id) && s.holds(may) => Ok(id.clone()),
        _ => refuse(
            "staff.role_required",
            clause,
            format!("{what}: the acting staff member does not hold the required role"),
        ),
    }
}

/// As [`with_role`], and the staff member's privacy training must be current: every
/// privileged action (appointment, approval, revocation, erasure witness) passes
/// through here (P3.4).
pub fn privileged(
    ctx: &Ctx,
    may: impl Fn(Role) -> bool,
    clause: &'static str,
    what: &str,
) -> Result<StaffId, Refusal> {
    let id = with_role(ctx, may, clause, what)?;
    ensure(
        ctx.staff.is_some_and(|s| s.training_current(ctx.now)),
        "staff.training_lapsed",
        crate::clause!("P3.4"),
        "privileged action refused: privacy training is not current",
    )?;
    Ok(id)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffCommand {
    /// Appoint `staff` (this stream) to `role`.
    Appoint {
        staff: StaffId,
        role: Role,
    },
    Dismiss {
        role: Role,
    },
    RecordTraining {
        completed_at: Timestamp,
        valid_until: Timestamp,
    },
    /// Give this staff member a new one-time password (and, with `second_factor`,
    /// drop their enrolled second factor): only the role that appoints theirs
    /// (P3.1, P4.8(2)).
    ResetSignIn {
        second_factor: bool,
    },
    /// The staff member replaced their password themselves (P4.8(2)).
    RecordPasswordChange,
    /// The staff member enrolled a second factor themselves (P4.8(2)).
    EnrolSecondFactor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StaffEvent {
    #[serde(rename = "staff.appointed")]
    Appointed {
        staff: StaffId,
        role: Role,
        /// `None` for the ex-officio business administrator.
        by: Option<StaffId>,
        at: Timestamp,
    },
    #[serde(rename = "staff.dismissed")]
    Dismissed {
        staff: StaffId,
        role: Role,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "staff.training_recorded")]
    TrainingRecorded {
        staff: StaffId,
        training: Training,
        by: StaffId,
        at: Timestamp,
    },
    /// Neither the password nor the secret: those live in the auth data area.
    #[serde(rename = "staff.sign_in_reset")]
    SignInReset {
        staff: StaffId,
        /// `None`: the system actor, at the console of the stopped platform.
        by: Option<StaffId>,
        second_factor: bool,
        at: Timestamp,
    },
    #[serde(rename = "staff.password_changed")]
    PasswordChanged { staff: StaffId, at: Timestamp },
    #[serde(rename = "staff.second_factor_enrolled")]
    SecondFactorEnrolled { staff: StaffId, at: Timestamp },
}

impl StaffEvent {
    /// Whose record this event is part of.
    pub fn staff(&self) -> &StaffId {
        match self {
            StaffEvent::Appointed { staff, .. }
            | StaffEvent::Dismissed { staff, .. }
            | StaffEvent::TrainingRecorded { staff, .. }
            | StaffEvent::SignInReset { staff, .. }
            | StaffEvent::PasswordChanged { staff, .. }
            | StaffEvent::SecondFactorEnrolled { staff, .. } => staff,
        }
    }
}

impl DomainEvent for StaffEvent {
    fn event_type(&self) -> &'static str {
        match self {
            StaffEvent::Appointed { .. } => "staff.appointed",
            StaffEvent::Dismissed { .. } => "staff.dismissed",
            StaffEvent::TrainingRecorded { .. } => "staff.training_recorded",
            StaffEvent::SignInReset { .. } => "staff.sign_in_reset",
            StaffEvent::PasswordChanged { .. } => "staff.password_changed",
            StaffEvent::SecondFactorEnrolled { .. } => "staff.second_factor_enrolled",
        }
    }

    fn person_related(&self) -> bool {
        false
    }
}

pub struct Staff;

impl Decider for Staff {
    type State = StaffState;
    type Command = StaffCommand;
    type Event = StaffEvent;

    fn decide(
        state: &StaffState,
        cmd: &StaffCommand,
        ctx: &Ctx,
    ) -> Result<Vec<StaffEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: StaffState, event: &StaffEvent) -> StaffState {
        evolve(state, event)
    }
}

fn this(state: &StaffState) -> Result<StaffId, Refusal> {
    state.id.clone().ok_or_else(|| {
        Refusal::new(
            "staff.unknown",
            crate::clause!("P3.1"),
            "no such staff member",
        )
    })
}

pub fn decide(
    state: &StaffState,
    cmd: &StaffCommand,
    ctx: &Ctx,
) -> Result<Vec<StaffEvent>, Refusal> {
    let at = ctx.now;
    match cmd {
        StaffCommand::Appoint { staff, role } => {
            ensure(
                state.id.as_ref().is_none_or(|id| id == staff),
                "staff.stream_mismatch",
                crate::clause!("P3.1"),
                "appointment addressed to another staff member's stream",
            )?;
            ensure(
                !state.roles.contains(role),
                "staff.already_appointed",
                crate::clause!("P3.1"),
                "already holds this role",
            )?;
            let by = if *role == Role::BusinessAdministrator {
                // Ex officio: only the configured head, only by the platform itself.
                ensure(
                    *ctx.actor == Actor::System && *staff == ctx.config.business_administrator,
                    "staff.appointment_chain",
                    crate::clause!("P3.1(1)"),
                    "the business administrator is the system's head ex officio",
                )?;
                None
            } else {
                let by = privileged(
                    ctx,
                    |r| role.appointable_by(r),
                    crate::clause!("P3.1"),
                    "appointment outside the chain of authority",
                )?;
                ensure(
                    by != *staff,
                    "staff.self_appointment",
                    crate::clause!("P3.1"),
                    "nobody appoints themselves",
                )?;
                Some(by)
            };
            Ok(vec![StaffEvent::Appointed {
                staff: staff.clone(),
                role: *role,
                by,
                at,
            }])
        }
        StaffCommand::Dismiss { role } => {
            let staff = this(state)?;
            ensure(
                state.roles.contains(role),
                "staff.not_appointed",
                crate::clause!("P3.1"),
                "does not hold this role",
            )?;
            let by = privileged(
                ctx,
                |r| role.appointable_by(r),
                crate::clause!("P3.1"),
                "dismissal outside the chain of authority",
            )?;
            Ok(vec![StaffEvent::Dismissed {
                staff,
                role: *role,
                by,
                at,
            }])
        }
        StaffCommand::RecordTraining {
            completed_at,
            valid_until,
        } => {
            let staff = this(state)?;
            // The operations manager trains staff (P3.4(2)); the business administrator
            // records the managers' own. Not privileged itself, or lapsed training could
            // never be renewed.
            let by = with_role(
                ctx,
                Role::records_training,
                crate::clause!("P3.4"),
                "training is recorded by the operations manager",
            )?;
            ensure(
                completed_at < valid_until && *completed_at <= at,
                "staff.training_dates",
                crate::clause!("P3.4"),
                "training must be completed and expire after completion",
            )?;
            Ok(vec![StaffEvent::TrainingRecorded {
                staff,
                training: Training {
                    completed_at: *completed_at,
                    valid_until: *valid_until,
                },
                by,
                at,
            }])
        }
        StaffCommand::ResetSignIn { second_factor } => reset_sign_in(state, *second_factor, ctx),
        StaffCommand::RecordPasswordChange => {
            let staff = own_sign_in(state, ctx)?;
            Ok(vec![StaffEvent::PasswordChanged { staff, at }])
        }
        StaffCommand::EnrolSecondFactor => {
            let staff = own_sign_in(state, ctx)?;
            Ok(vec![StaffEvent::SecondFactorEnrolled { staff, at }])
        }
    }
}

/// A reset of another staff member's sign-in (P3.1, P4.8(2)): by the role that
/// appoints theirs, with current training, never one's own; or by the system
/// actor (the console of the stopped platform, the only way for the head).
fn reset_sign_in(
    state: &StaffState,
    second_factor: bool,
    ctx: &Ctx,
) -> Result<Vec<StaffEvent>, Refusal> {
    let staff = this(state)?;
    let by = if *ctx.actor == Actor::System {
        None
    } else {
        let by = privileged(
            ctx,
            // The role that appoints theirs, as for dismissal; the head is
            // appointed by nobody, so only the console resets the head.
            |r| state.roles.iter().any(|held| held.appointable_by(r)),
            crate::clause!("P3.1"),
            "a sign-in is reset only by the role that appoints the staff member's",
        )?;
        ensure(
            by != staff,
            "staff.self_reset",
            crate::clause!("P3.1"),
            "nobody resets their own sign-in; change the password instead",
        )?;
        Some(by)
    };
    Ok(vec![StaffEvent::SignInReset {
        staff,
        by,
        second_factor,
        at: ctx.now,
    }])
}

/// The staff member acting on their own sign-in (P4.8(2)).
fn own_sign_in(state: &StaffState, ctx: &Ctx) -> Result<StaffId, Refusal> {
    let staff = this(state)?;
    ensure(
        matches!(ctx.actor, Actor::Staff { staff: s } if *s == staff),
        "staff.self_only",
        crate::clause!("P4.8(2)"),
        "only the staff member themselves sets their password and second factor",
    )?;
    Ok(staff)
}

pub fn evolve(mut state: StaffState, event: &StaffEvent) -> StaffState {
    match event {
        StaffEvent::Appointed { staff, role, .. } => {
            state.id = Some(staff.clone());
            state.roles.insert(*role);
        }
        StaffEvent::Dismissed { role, .. } => {
            state.roles.remove(role);
        }
        StaffEvent::TrainingRecorded { training, .. } => state.training = Some(*training),
        // Whether a second factor is enrolled is the auth data area's (the
        // secret lives there); the events are the record of who did what.
        StaffEvent::SignInReset { .. }
        | StaffEvent::PasswordChanged { .. }
        | StaffEvent::SecondFactorEnrolled { .. } => {}
    }
    state
}
