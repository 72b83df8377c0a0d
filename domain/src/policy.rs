//! Security policy versions (P7, P8, P9): the prefecture revises the policy without
//! prior consent; each version carries the date it is in force from and the date it
//! applies from; users and providers acknowledge the version in force.

use crate::refusal::ensure;
use crate::staff::{Role, privileged};
use crate::{Ctx, Decider, DomainEvent, PolicyId, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: PolicyId,
    /// 施行日 (the first version: 2020-11-16).
    pub in_force_from: Timestamp,
    /// 適用日 (the first version: 2020-11-01).
    pub applies_from: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyState {
    /// Ordered by `in_force_from`, strictly increasing.
    pub versions: Vec<PolicyVersion>,
}

impl PolicyState {
    /// The version in force at `now`: the latest whose `in_force_from` has passed (P7).
    pub fn in_force_at(&self, now: Timestamp) -> Option<&PolicyVersion> {
        self.versions.iter().rev().find(|v| v.in_force_from <= now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCommand {
    Publish { version: PolicyVersion },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PolicyEvent {
    #[serde(rename = "policy.version_published")]
    VersionPublished {
        version: PolicyVersion,
        by: StaffId,
        at: Timestamp,
    },
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> &'static str {
        "policy.version_published"
    }

    fn person_related(&self) -> bool {
        false
    }
}

pub struct Policy;

impl Decider for Policy {
    type State = PolicyState;
    type Command = PolicyCommand;
    type Event = PolicyEvent;

    fn decide(
        state: &PolicyState,
        cmd: &PolicyCommand,
        ctx: &Ctx,
    ) -> Result<Vec<PolicyEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: PolicyState, event: &PolicyEvent) -> PolicyState {
        evolve(state, event)
    }
}

pub fn decide(
    state: &PolicyState,
    cmd: &PolicyCommand,
    ctx: &Ctx,
) -> Result<Vec<PolicyEvent>, Refusal> {
    let PolicyCommand::Publish { version } = cmd;
    let by = privileged(
        ctx,
        |r| r == Role::Prefecture,
        crate::clause!("P8"),
        "only the prefecture revises the policy",
    )?;
    ensure(
        state.versions.iter().all(|v| v.id != version.id),
        "policy.version_exists",
        crate::clause!("P8"),
        "a published version is never replaced; publish a new one",
    )?;
    // Revisions only move forward, so "the version in force" is never ambiguous (P9).
    ensure(
        state
            .versions
            .last()
            .is_none_or(|v| v.in_force_from < version.in_force_from),
        "policy.version_order",
        crate::clause!("P9"),
        "a new version must come into force after the current one",
    )?;
    Ok(vec![PolicyEvent::VersionPublished {
        version: version.clone(),
        by,
        at: ctx.now,
    }])
}

pub fn evolve(mut state: PolicyState, event: &PolicyEvent) -> PolicyState {
    let PolicyEvent::VersionPublished { version, .. } = event;
    state.versions.push(version.clone());
    state
}
