//! Security incidents (P4.14): one stream `incident-<id>` per incident, holding its
//! report, the runbook steps as they are done, the assessment of what data was
//! involved, escalations along the chain of roles, notifications, credentials
//! rotated, and closure.
//!
//! The runbook for each type is the policy's own list (P4.14(2)–(5)), with the
//! general rule of P4.14(1) — report to the system operations administrator, then
//! contact related departments — added to every type. Steps carry the policy's
//! item number; a step is refused until every required step of an earlier item is
//! done (the policy numbers them in the order they must happen), and refused to a
//! staff member who does not hold the role the step names.

use crate::clause::{acting_staff, ensure, refuse};
use crate::ids::{IncidentId, Reference};
use mebyo_domain::staff::Role;
use mebyo_domain::{
    Actor, CredentialId, Ctx, Decider, DomainEvent, ProviderId, Refusal, StaffId, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The incident types the policy gives a runbook for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// 不正アクセス被害 (P4.14(2)).
    UnauthorizedAccess,
    /// ウイルス感染 (P4.14(3)).
    Malware,
    /// PC、記録媒体などの盗難・遺失 (P4.14(4)).
    TheftOrLoss,
    /// 業務委託会社に起因する事故・事件 (P4.14(5)).
    Contractor,
    /// Any other security incident: the general rule (P4.14(1)).
    Other,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 5] = [
        IncidentKind::UnauthorizedAccess,
        IncidentKind::Malware,
        IncidentKind::TheftOrLoss,
        IncidentKind::Contractor,
        IncidentKind::Other,
    ];

    pub fn clause(self) -> &'static str {
        match self {
            IncidentKind::UnauthorizedAccess => mebyo_domain::clause!("P4.14(2)"),
            IncidentKind::Malware => mebyo_domain::clause!("P4.14(3)"),
            IncidentKind::TheftOrLoss => mebyo_domain::clause!("P4.14(4)"),
            IncidentKind::Contractor => mebyo_domain::clause!("P4.14(5)"),
            IncidentKind::Other => mebyo_domain::clause!("P4.14(1)"),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            IncidentKind::UnauthorizedAccess => "unauthorized-access",
            IncidentKind::Malware => "malware",
            IncidentKind::TheftOrLoss => "theft-or-loss",
            IncidentKind::Contractor => "contractor",
            IncidentKind::Other => "other",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            IncidentKind::UnauthorizedAccess => "unauthorised access (不正アクセス被害)",
            IncidentKind::Malware => "malware infection (ウイルス感染)",
            IncidentKind::TheftOrLoss => "theft or loss of a PC or media (盗難・遺失)",
            IncidentKind::Contractor => "caused by a contractor (業務委託会社に起因)",
            IncidentKind::Other => "other security incident (セキュリティ事故)",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// One step of a runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// P4.14(2)①: disconnect the affected device from the network.
    #[serde(rename = "disconnect-device")]
    DisconnectDevice,
    /// P4.14(2)①: keep the server it talked to powered and running; do not touch it.
    #[serde(rename = "preserve-server")]
    PreserveServer,
    /// P4.14(3)①: disconnect the infected PC from the network at once.
    #[serde(rename = "disconnect-pc")]
    DisconnectPc,
    /// P4.14(4)①: theft or loss report to the nearest police.
    #[serde(rename = "police-report")]
    PoliceReport,
    /// P4.14(4)②: change the VPN connection information.
    #[serde(rename = "change-connection-info")]
    ChangeConnectionInfo,
    /// P4.14(4)②: ask the data-card carrier to stop the line.
    #[serde(rename = "stop-carrier-line")]
    StopCarrierLine,
    /// P4.14(4)③: check what data the stolen or lost item held.
    #[serde(rename = "check-stored-data")]
    CheckStoredData,
    /// P4.14(1), (2)②, (3)②, (4)③, (5): the system operations administrator has
    /// the report (recorded by the administrator, who received it).
    #[serde(rename = "report-to-soa")]
    ReportToSoa,
    /// P4.14(2)③, (3)③: the administrator contacts the operations manager and asks
    /// for instructions.
    #[serde(rename = "escalate-to-om")]
    EscalateToOm,
    /// P4.14(1): contact the related departments.
    #[serde(rename = "contact-departments")]
    ContactDepartments,
    /// P4.14(3)④: where a leak is possible, contact the appropriate departments
    /// and organisations.
    #[serde(rename = "notify-leak")]
    NotifyLeak,
    /// P4.14(4)④: where individuals' information was held, the business
    /// administrator contacts the appropriate departments and organisations.
    #[serde(rename = "ba-notifies")]
    BusinessAdministratorNotifies,
    /// P4.14(5): the administrator handles it under the outsourcing contract.
    #[serde(rename = "handle-per-contract")]
    HandlePerContract,
}

impl Step {
    pub const ALL: [Step; 13] = [
        Step::DisconnectDevice,
        Step::PreserveServer,
        Step::DisconnectPc,
        Step::PoliceReport,
        Step::ChangeConnectionInfo,
        Step::StopCarrierLine,
        Step::CheckStoredData,
        Step::ReportToSoa,
        Step::EscalateToOm,
        Step::ContactDepartments,
        Step::NotifyLeak,
        Step::BusinessAdministratorNotifies,
        Step::HandlePerContract,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Step::DisconnectDevice => "disconnect-device",
            Step::PreserveServer => "preserve-server",
            Step::DisconnectPc => "disconnect-pc",
            Step::PoliceReport => "police-report",
            Step::ChangeConnectionInfo => "change-connection-info",
            Step::StopCarrierLine => "stop-carrier-line",
            Step::CheckStoredData => "check-stored-data",
            Step::ReportToSoa => "report-to-soa",
            Step::EscalateToOm => "escalate-to-om",
            Step::ContactDepartments => "contact-departments",
            Step::NotifyLeak => "notify-leak",
            Step::BusinessAdministratorNotifies => "ba-notifies",
            Step::HandlePerContract => "handle-per-contract",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    /// Whether doing the step tells someone outside the incident team (so the
    /// report lists it among notifications).
    pub fn is_notification(self) -> bool {
        matches!(
            self,
            Step::ContactDepartments | Step::NotifyLeak | Step::BusinessAdministratorNotifies
        )
    }
}

/// Who may do (and record) a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Who {
    /// Whoever is at hand: any staff role except auditors, who stay independent.
    AnyStaff,
    /// システム運用管理者 (receives reports, escalates, handles contractors).
    SystemOperationsAdministrator,
    /// The administrator or the operations manager (contacting departments).
    AdministratorOrManager,
    /// The prefecture, the only role that revokes connection information (P4.13).
    Prefecture,
    /// 事業管理者 (P4.14(4)④).
    BusinessAdministrator,
}

impl Who {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Who::AnyStaff => role != Role::Auditor,
            Who::SystemOperationsAdministrator => role == Role::SystemOperationsAdministrator,
            Who::AdministratorOrManager => matches!(
                role,
                Role::SystemOperationsAdministrator | Role::OperationsManager(_)
            ),
            Who::Prefecture => role == Role::Prefecture,
            Who::BusinessAdministrator => role == Role::BusinessAdministrator,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Who::AnyStaff => "any staff member at hand",
            Who::SystemOperationsAdministrator => "system operations administrator",
            Who::AdministratorOrManager => "system operations administrator or operations manager",
            Who::Prefecture => "prefecture",
            Who::BusinessAdministrator => "business administrator",
        }
    }
}

/// When a step is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    Always,
    /// P4.14(4)②: "VPN を利用していた場合".
    VpnUsed,
    /// P4.14(3)④: "情報漏洩につながる可能性のある場合".
    LeakPossible,
    /// P4.14(4)④: "個人利用者に関する情報が含まれている場合".
    IndividualsData,
}

/// One line of a runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunbookStep {
    pub step: Step,
    /// The policy's item number (①…④) within the clause; earlier items first.
    pub item: u8,
    /// Order of the line within the runbook; a step waits for every required step
    /// of a lower order. Items the policy writes as "do X, then report" are split
    /// into two orders.
    pub order: u8,
    pub clause: &'static str,
    pub who: Who,
    pub condition: Condition,
    /// The policy's words for the step.
    pub policy_text: &'static str,
}

const fn line(
    step: Step,
    item: u8,
    order: u8,
    clause: &'static str,
    who: Who,
    condition: Condition,
    policy_text: &'static str,
) -> RunbookStep {
    RunbookStep {
        step,
        item,
        order,
        clause,
        who,
        condition,
        policy_text,
    }
}

use Condition::*;
use Who::*;

const CONTACT: &str = "各関連部門に連絡すること";

const UNAUTHORIZED_ACCESS: &[RunbookStep] = &[
    line(
        Step::DisconnectDevice,
        1,
        1,
        mebyo_domain::clause!("P4.14(2)"),
        AnyStaff,
        Always,
        "被害のあったデバイスをネットワークから切断する",
    ),
    line(
        Step::PreserveServer,
        1,
        1,
        mebyo_domain::clause!("P4.14(2)"),
        AnyStaff,
        Always,
        "当該サーバの電源は落とさず、システム起動した状態に保つ。当該サーバに対して不用意に操作は行わない",
    ),
    line(
        Step::ReportToSoa,
        2,
        2,
        mebyo_domain::clause!("P4.14(2)"),
        SystemOperationsAdministrator,
        Always,
        "直ちにシステム運用管理者へ状況を報告する",
    ),
    line(
        Step::EscalateToOm,
        3,
        3,
        mebyo_domain::clause!("P4.14(2)"),
        SystemOperationsAdministrator,
        Always,
        "システム運用管理者より運用管理責任者へ連絡し、対処の指示を仰ぐ",
    ),
    line(
        Step::ContactDepartments,
        0,
        3,
        mebyo_domain::clause!("P4.14(1)"),
        AdministratorOrManager,
        Always,
        CONTACT,
    ),
];

const MALWARE: &[RunbookStep] = &[
    line(
        Step::DisconnectPc,
        1,
        1,
        mebyo_domain::clause!("P4.14(3)"),
        AnyStaff,
        Always,
        "直ちに感染したPCをネットワークから切断する",
    ),
    line(
        Step::ReportToSoa,
        2,
        2,
        mebyo_domain::clause!("P4.14(3)"),
        SystemOperationsAdministrator,
        Always,
        "直ちにシステム運用管理者へ状況を報告する",
    ),
    line(
        Step::EscalateToOm,
        3,
        3,
        mebyo_domain::clause!("P4.14(3)"),
        SystemOperationsAdministrator,
        Always,
        "システム運用管理者より運用管理責任者へ連絡し、対処の指示を仰ぐ",
    ),
    line(
        Step::ContactDepartments,
        0,
        3,
        mebyo_domain::clause!("P4.14(1)"),
        AdministratorOrManager,
        Always,
        CONTACT,
    ),
    line(
        Step::NotifyLeak,
        4,
        4,
        mebyo_domain::clause!("P4.14(3)"),
        AdministratorOrManager,
        LeakPossible,
        "情報漏洩につながる可能性のある場合またはつながる場合は、適切な部門及び組織に連絡する",
    ),
];

const THEFT_OR_LOSS: &[RunbookStep] = &[
    line(
        Step::PoliceReport,
        1,
        1,
        mebyo_domain::clause!("P4.14(4)"),
        AnyStaff,
        Always,
        "最寄りの警察に盗難届けまたは遺失届を出す",
    ),
    line(
        Step::ChangeConnectionInfo,
        2,
        2,
        mebyo_domain::clause!("P4.14(4)"),
        Prefecture,
        VpnUsed,
        "VPN を利用していた場合は、接続情報の変更",
    ),
    line(
        Step::StopCarrierLine,
        2,
        2,
        mebyo_domain::clause!("P4.14(4)"),
        AnyStaff,
        VpnUsed,
        "通信カードキャリアへのサービス停止依頼を行う",
    ),
    line(
        Step::CheckStoredData,
        3,
        3,
        mebyo_domain::clause!("P4.14(4)"),
        AnyStaff,
        Always,
        "格納データの確認を行い",
    ),
    line(
        Step::ReportToSoa,
        3,
        4,
        mebyo_domain::clause!("P4.14(4)"),
        SystemOperationsAdministrator,
        Always,
        "システム運用管理者に報告する",
    ),
    line(
        Step::ContactDepartments,
        0,
        5,
        mebyo_domain::clause!("P4.14(1)"),
        AdministratorOrManager,
        Always,
        CONTACT,
    ),
    line(
        Step::BusinessAdministratorNotifies,
        4,
        5,
        mebyo_domain::clause!("P4.14(4)"),
        BusinessAdministrator,
        IndividualsData,
        "個人利用者に関する情報が含まれている場合は原則、事業管理者より適切な部門及び組織に連絡する",
    ),
];

const CONTRACTOR: &[RunbookStep] = &[
    line(
        Step::ReportToSoa,
        1,
        1,
        mebyo_domain::clause!("P4.14(5)"),
        SystemOperationsAdministrator,
        Always,
        "直ちにシステム運用管理者へ状況を報告し",
    ),
    line(
        Step::HandlePerContract,
        1,
        2,
        mebyo_domain::clause!("P4.14(5)"),
        SystemOperationsAdministrator,
        Always,
        "システム運用管理者は委託契約に基づいて対応を行う",
    ),
    line(
        Step::ContactDepartments,
        0,
        2,
        mebyo_domain::clause!("P4.14(1)"),
        AdministratorOrManager,
        Always,
        CONTACT,
    ),
];

const OTHER: &[RunbookStep] = &[
    line(
        Step::ReportToSoa,
        0,
        1,
        mebyo_domain::clause!("P4.14(1)"),
        SystemOperationsAdministrator,
        Always,
        "直ちにシステム運用管理者に報告の上",
    ),
    line(
        Step::ContactDepartments,
        0,
        2,
        mebyo_domain::clause!("P4.14(1)"),
        AdministratorOrManager,
        Always,
        CONTACT,
    ),
];

/// The checklist the policy gives for an incident type.
pub fn runbook(kind: IncidentKind) -> &'static [RunbookStep] {
    match kind {
        IncidentKind::UnauthorizedAccess => UNAUTHORIZED_ACCESS,
        IncidentKind::Malware => MALWARE,
        IncidentKind::TheftOrLoss => THEFT_OR_LOSS,
        IncidentKind::Contractor => CONTRACTOR,
        IncidentKind::Other => OTHER,
    }
}

/// Levels of the chain an incident climbs (P3.1, P4.14(1)–(3)): whoever found it,
/// the system operations administrator, the operations manager, the business
/// administrator. Each level is reached only from the one below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Reporter,
    SystemOperationsAdministrator,
    OperationsManager,
    BusinessAdministrator,
}

impl Level {
    pub fn next(self) -> Option<Level> {
        match self {
            Level::Reporter => Some(Level::SystemOperationsAdministrator),
            Level::SystemOperationsAdministrator => Some(Level::OperationsManager),
            Level::OperationsManager => Some(Level::BusinessAdministrator),
            Level::BusinessAdministrator => None,
        }
    }

    /// Whether `role` holds this level (and so may pass the incident upward).
    pub fn held_by(self, role: Role) -> bool {
        match self {
            Level::Reporter => role != Role::Auditor,
            Level::SystemOperationsAdministrator => role == Role::SystemOperationsAdministrator,
            Level::OperationsManager => matches!(role, Role::OperationsManager(_)),
            Level::BusinessAdministrator => role == Role::BusinessAdministrator,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

/// Which anomaly rule opened an incident on its own (P4.4(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyRule {
    /// Many refusals for one provider within a window.
    RefusalBurst,
    /// Access volume far above the provider's trailing norm.
    VolumeSpike,
    /// An attempt with connection information after its revocation.
    RevokedCredentialUse,
}

/// What the detector saw: counts only, never who (the incident stream is plaintext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub events: u32,
    /// Distinct individuals whose records the attempts concerned.
    pub persons: u32,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// How the incident came to be reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A person noticed it.
    Staff,
    /// The platform's anomaly rules raised it (P4.4(1)).
    Detected {
        rule: AnomalyRule,
        provider: Option<ProviderId>,
        credential: Option<CredentialId>,
        evidence: Evidence,
    },
}

/// The assessment of what data the incident touched: counts, not people (the
/// incident stream is plaintext and must not link anyone to it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub leak_possible: bool,
    pub individuals_data: bool,
    pub individuals_affected: u32,
    pub records_affected: u32,
}

/// Whom a notification went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyTarget {
    RelatedDepartments,
    Organisations,
    /// The individuals whose data were involved.
    Individuals,
    Police,
    Carrier,
    Contractor,
}

impl NotifyTarget {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

/// One credential replaced because the incident exposed it (P4.14(4)②).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub revoked: CredentialId,
    pub issued: CredentialId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentCommand {
    /// P4.14(1): report an incident.
    Report {
        incident: IncidentId,
        kind: IncidentKind,
        /// When it was noticed (before or at the report).
        detected_at: Timestamp,
        /// Theft or loss only: whether the item connected over VPN (P4.14(4)②).
        vpn_used: bool,
        /// Contractor incidents only: which contractor, which contract (P4.14(5)).
        contractor: Option<Reference>,
        source: Source,
    },
    /// Record a runbook step as done, at `done_at` (defaults to now; a step done
    /// before it could be recorded carries its real time).
    RecordStep {
        step: Step,
        done_at: Option<Timestamp>,
        reference: Option<Reference>,
    },
    /// What data were involved (P4.14(3)④, (4)③); may be revised as more is known.
    Assess(Assessment),
    /// Pass the incident one level up the chain (P4.14(1)).
    Escalate { to: Level },
    /// A notification beyond the runbook's (e.g. the individuals themselves).
    Notify {
        target: NotifyTarget,
        /// Individuals told, when the target is individuals.
        count: u32,
        reference: Option<Reference>,
    },
    /// P4.14(4)②: the connection information was changed; the service revoked and
    /// reissued these credentials just before.
    RecordRotation { rotations: Vec<Rotation> },
    /// Every required step done: close.
    Close,
}

/// Who reported: a staff member, or the platform's detector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reporter {
    Staff { staff: StaffId, role: Role },
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum IncidentEvent {
    #[serde(rename = "incident.reported")]
    Reported {
        incident: IncidentId,
        kind: IncidentKind,
        detected_at: Timestamp,
        vpn_used: bool,
        contractor: Option<Reference>,
        source: Source,
        by: Reporter,
        at: Timestamp,
    },
    #[serde(rename = "incident.step_recorded")]
    StepRecorded {
        incident: IncidentId,
        step: Step,
        done_at: Timestamp,
        reference: Option<Reference>,
        by: StaffId,
        role: Role,
        at: Timestamp,
    },
    #[serde(rename = "incident.assessed")]
    Assessed {
        incident: IncidentId,
        assessment: Assessment,
        by: StaffId,
        role: Role,
        at: Timestamp,
    },
    #[serde(rename = "incident.escalated")]
    Escalated {
        incident: IncidentId,
        from: Level,
        to: Level,
        by: StaffId,
        role: Role,
        at: Timestamp,
    },
    #[serde(rename = "incident.notified")]
    Notified {
        incident: IncidentId,
        target: NotifyTarget,
        count: u32,
        reference: Option<Reference>,
        by: StaffId,
        role: Role,
        at: Timestamp,
    },
    #[serde(rename = "incident.credentials_rotated")]
    CredentialsRotated {
        incident: IncidentId,
        rotations: Vec<Rotation>,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "incident.closed")]
    Closed {
        incident: IncidentId,
        by: StaffId,
        role: Role,
        at: Timestamp,
    },
}

impl DomainEvent for IncidentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            IncidentEvent::Reported { .. } => "incident.reported",
            IncidentEvent::StepRecorded { .. } => "incident.step_recorded",
            IncidentEvent::Assessed { .. } => "incident.assessed",
            IncidentEvent::Escalated { .. } => "incident.escalated",
            IncidentEvent::Notified { .. } => "incident.notified",
            IncidentEvent::CredentialsRotated { .. } => "incident.credentials_rotated",
            IncidentEvent::Closed { .. } => "incident.closed",
        }
    }

    /// Operational: ids, roles, counts and references only, no one's data. Stored
    /// in plaintext so that an incident's record survives any person's erasure.
    fn person_related(&self) -> bool {
        false
    }
}

/// A step as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDone {
    pub done_at: Timestamp,
    pub by: StaffId,
    pub role: Role,
    pub recorded_at: Timestamp,
    pub reference: Option<Reference>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentState {
    pub id: Option<IncidentId>,
    pub kind: Option<IncidentKind>,
    pub detected_at: Timestamp,
    pub reported_at: Timestamp,
    pub vpn_used: bool,
    pub steps: BTreeMap<Step, StepDone>,
    pub assessment: Option<Assessment>,
    /// Highest level reached, and when each was reached.
    pub level: Option<Level>,
    pub closed_at: Option<Timestamp>,
}

/// Whether a runbook line is required, given what is known: `None` while it
/// depends on an assessment not yet made.
pub fn required(line: &RunbookStep, state: &IncidentState) -> Option<bool> {
    match line.condition {
        Condition::Always => Some(true),
        Condition::VpnUsed => Some(state.vpn_used),
        Condition::LeakPossible => state.assessment.map(|a| a.leak_possible),
        Condition::IndividualsData => state.assessment.map(|a| a.individuals_data),
    }
}

pub struct Incident;

impl Decider for Incident {
    type State = IncidentState;
    type Command = IncidentCommand;
    type Event = IncidentEvent;

    fn decide(
        state: &IncidentState,
        cmd: &IncidentCommand,
        ctx: &Ctx,
    ) -> Result<Vec<IncidentEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: IncidentState, event: &IncidentEvent) -> IncidentState {
        evolve(state, event)
    }
}

fn open(state: &IncidentState) -> Result<(IncidentId, IncidentKind), Refusal> {
    let (Some(id), Some(kind)) = (&state.id, state.kind) else {
        return refuse(
            "incident.unknown",
            mebyo_domain::clause!("P4.14(1)"),
            "no such incident",
        );
    };
    ensure(
        state.closed_at.is_none(),
        "incident.closed",
        kind.clause(),
        "the incident is closed",
    )?;
    Ok((id.clone(), kind))
}

pub fn decide(
    state: &IncidentState,
    cmd: &IncidentCommand,
    ctx: &Ctx,
) -> Result<Vec<IncidentEvent>, Refusal> {
    let now = ctx.now;
    match cmd {
        IncidentCommand::Report {
            incident,
            kind,
            detected_at,
            vpn_used,
            contractor,
            source,
        } => {
            // Idempotent opening: the anomaly subscriber derives ids from what it
            // saw, so a replay asks for the same incident again and is refused here.
            ensure(
                state.id.is_none(),
                "incident.already_reported",
                mebyo_domain::clause!("P4.14(1)"),
                "this incident is already reported",
            )?;
            let by = match (ctx.actor, source) {
                (Actor::System, Source::Detected { .. }) => Reporter::System,
                (Actor::System, Source::Staff) => {
                    return refuse(
                        "incident.reporter",
                        mebyo_domain::clause!("P4.14(1)"),
                        "the platform reports only what its anomaly rules detected",
                    );
                }
                (_, Source::Detected { .. }) => {
                    return refuse(
                        "incident.reporter",
                        mebyo_domain::clause!("P4.4(1)"),
                        "only the platform's detector reports detected anomalies",
                    );
                }
                (_, Source::Staff) => {
                    // Anyone on the staff who notices an incident reports it (P4.14(1)).
                    let (staff, role) = acting_staff(
                        ctx,
                        |r| Level::Reporter.held_by(r),
                        false,
                        mebyo_domain::clause!("P4.14(1)"),
                        "reporting an incident",
                    )?;
                    Reporter::Staff { staff, role }
                }
            };
            ensure(
                *detected_at <= now,
                "incident.detected_in_future",
                mebyo_domain::clause!("P4.14(1)"),
                "an incident cannot be detected after it is reported",
            )?;
            ensure(
                !*vpn_used || *kind == IncidentKind::TheftOrLoss,
                "incident.vpn_not_applicable",
                mebyo_domain::clause!("P4.14(4)"),
                "VPN use matters only for a stolen or lost PC or medium",
            )?;
            ensure(
                (*kind == IncidentKind::Contractor) == contractor.is_some(),
                "incident.contractor",
                mebyo_domain::clause!("P4.14(5)"),
                "a contractor incident names the contractor and contract, and only it does",
            )?;
            Ok(vec![IncidentEvent::Reported {
                incident: incident.clone(),
                kind: *kind,
                detected_at: *detected_at,
                vpn_used: *vpn_used,
                contractor: contractor.clone(),
                source: source.clone(),
                by,
                at: now,
            }])
        }
        IncidentCommand::RecordStep {
            step,
            done_at,
            reference,
        } => {
            let (incident, kind) = open(state)?;
            Ok(vec![record_step(
                state, &incident, kind, *step, *done_at, reference, ctx,
            )?])
        }
        IncidentCommand::Assess(assessment) => {
            let (incident, kind) = open(state)?;
            let (by, role) = acting_staff(
                ctx,
                |r| Who::AdministratorOrManager.allows(r),
                false,
                kind.clause(),
                "assessing what data an incident touched",
            )?;
            ensure(
                assessment.individuals_data || assessment.individuals_affected == 0,
                "incident.assessment_inconsistent",
                kind.clause(),
                "individuals are affected only if individuals' data were involved",
            )?;
            Ok(vec![IncidentEvent::Assessed {
                incident,
                assessment: *assessment,
                by,
                role,
                at: now,
            }])
        }
        IncidentCommand::Escalate { to } => {
            let (incident, kind) = open(state)?;
            let from = state.level.unwrap_or(Level::Reporter);
            ensure(
                from.next() == Some(*to),
                "incident.escalation_chain",
                mebyo_domain::clause!("P4.14(1)"),
                "escalation goes one level up the chain of roles at a time",
            )?;
            // Where the runbook has the escalation as a step, it is that step.
            let as_step = match to {
                Level::SystemOperationsAdministrator => Some(Step::ReportToSoa),
                Level::OperationsManager => Some(Step::EscalateToOm),
                _ => None,
            }
            .filter(|s| runbook(kind).iter().any(|l| l.step == *s));
            if let Some(step) = as_step {
                return Ok(vec![record_step(
                    state, &incident, kind, step, None, &None, ctx,
                )?]);
            }
            let (by, role) = acting_staff(
                ctx,
                |r| from.held_by(r),
                false,
                mebyo_domain::clause!("P4.14(1)"),
                "only the holder of the current level passes an incident up",
            )?;
            Ok(vec![IncidentEvent::Escalated {
                incident,
                from,
                to: *to,
                by,
                role,
                at: now,
            }])
        }
        IncidentCommand::Notify {
            target,
            count,
            reference,
        } => {
            let (incident, kind) = open(state)?;
            let (by, role) = acting_staff(
                ctx,
                |r| Who::AdministratorOrManager.allows(r) || Who::BusinessAdministrator.allows(r),
                false,
                kind.clause(),
                "notifications go out through the administrator, the manager or the head",
            )?;
            ensure(
                (*target == NotifyTarget::Individuals) == (*count > 0),
                "incident.notify_count",
                kind.clause(),
                "a notification of individuals says how many were told, and only it does",
            )?;
            Ok(vec![IncidentEvent::Notified {
                incident,
                target: *target,
                count: *count,
                reference: reference.clone(),
                by,
                role,
                at: now,
            }])
        }
        IncidentCommand::RecordRotation { rotations } => {
            let (incident, kind) = open(state)?;
            ensure(
                kind == IncidentKind::TheftOrLoss,
                "incident.rotation_not_applicable",
                mebyo_domain::clause!("P4.14(4)"),
                "connection information is changed for a stolen or lost PC or medium",
            )?;
            ensure(
                !rotations.is_empty() && rotations.iter().all(|r| r.revoked != r.issued),
                "incident.rotation_empty",
                mebyo_domain::clause!("P4.14(4)"),
                "name each revoked credential and its replacement",
            )?;
            let step = record_step(
                state,
                &incident,
                kind,
                Step::ChangeConnectionInfo,
                None,
                &None,
                ctx,
            )?;
            let IncidentEvent::StepRecorded { by, .. } = &step else {
                unreachable!("record_step records a step")
            };
            Ok(vec![
                IncidentEvent::CredentialsRotated {
                    incident,
                    rotations: rotations.clone(),
                    by: by.clone(),
                    at: now,
                },
                step,
            ])
        }
        IncidentCommand::Close => {
            let (incident, kind) = open(state)?;
            let (by, role) = acting_staff(
                ctx,
                |r| Who::AdministratorOrManager.allows(r),
                false,
                kind.clause(),
                "closing an incident",
            )?;
            for line in runbook(kind) {
                match required(line, state) {
                    None => {
                        return refuse(
                            "incident.assessment_missing",
                            line.clause,
                            format!(
                                "whether {} is needed depends on an assessment not yet recorded",
                                line.step.code()
                            ),
                        );
                    }
                    Some(true) if !state.steps.contains_key(&line.step) => {
                        return refuse(
                            "incident.step_missing",
                            line.clause,
                            format!("runbook step {} is not done", line.step.code()),
                        );
                    }
                    _ => {}
                }
            }
            Ok(vec![IncidentEvent::Closed {
                incident,
                by,
                role,
                at: now,
            }])
        }
    }
}

fn record_step(
    state: &IncidentState,
    incident: &IncidentId,
    kind: IncidentKind,
    step: Step,
    done_at: Option<Timestamp>,
    reference: &Option<Reference>,
    ctx: &Ctx,
) -> Result<IncidentEvent, Refusal> {
    let now = ctx.now;
    let book = runbook(kind);
    let Some(line) = book.iter().find(|l| l.step == step) else {
        return refuse(
            "incident.step_not_in_runbook",
            kind.clause(),
            format!("{} is not a step for {}", step.code(), kind.code()),
        );
    };
    let (by, role) = acting_staff(
        ctx,
        |r| line.who.allows(r),
        false,
        line.clause,
        &format!("{} is done by the {}", step.code(), line.who.describe()),
    )?;
    ensure(
        !state.steps.contains_key(&step),
        "incident.step_done",
        line.clause,
        "this step is already recorded",
    )?;
    let done_at = done_at.unwrap_or(now);
    ensure(
        state.detected_at <= done_at && done_at <= now,
        "incident.step_time",
        line.clause,
        "a step is done after the incident was detected and before it is recorded",
    )?;
    // The policy numbers the steps in the order they must happen.
    for earlier in book.iter().filter(|l| l.order < line.order) {
        if required(earlier, state) == Some(true) {
            let Some(done) = state.steps.get(&earlier.step) else {
                return refuse(
                    "incident.step_out_of_order",
                    line.clause,
                    format!(
                        "{} must be done before {}",
                        earlier.step.code(),
                        step.code()
                    ),
                );
            };
            ensure(
                done.done_at <= done_at,
                "incident.step_out_of_order",
                line.clause,
                "a step cannot be done before the steps it follows",
            )?;
        }
    }
    if step == Step::CheckStoredData {
        // "格納データの確認を行い": the check is what the assessment records.
        ensure(
            state.assessment.is_some(),
            "incident.assessment_missing",
            line.clause,
            "record what the item held (assess) before marking the check done",
        )?;
    }
    Ok(IncidentEvent::StepRecorded {
        incident: incident.clone(),
        step,
        done_at,
        reference: reference.clone(),
        by,
        role,
        at: now,
    })
}

fn level_after(step: Step) -> Option<Level> {
    match step {
        Step::ReportToSoa => Some(Level::SystemOperationsAdministrator),
        Step::EscalateToOm => Some(Level::OperationsManager),
        Step::BusinessAdministratorNotifies => Some(Level::BusinessAdministrator),
        _ => None,
    }
}

pub fn evolve(mut state: IncidentState, event: &IncidentEvent) -> IncidentState {
    match event {
        IncidentEvent::Reported {
            incident,
            kind,
            detected_at,
            vpn_used,
            at,
            ..
        } => {
            state.id = Some(incident.clone());
            state.kind = Some(*kind);
            state.detected_at = *detected_at;
            state.reported_at = *at;
            state.vpn_used = *vpn_used;
            state.level = Some(Level::Reporter);
        }
        IncidentEvent::StepRecorded {
            step,
            done_at,
            reference,
            by,
            role,
            at,
            ..
        } => {
            state.steps.insert(
                *step,
                StepDone {
                    done_at: *done_at,
                    by: by.clone(),
                    role: *role,
                    recorded_at: *at,
                    reference: reference.clone(),
                },
            );
            if let Some(l) = level_after(*step) {
                state.level = state.level.max(Some(l));
            }
        }
        IncidentEvent::Assessed { assessment, .. } => state.assessment = Some(*assessment),
        IncidentEvent::Escalated { to, .. } => state.level = state.level.max(Some(*to)),
        IncidentEvent::Notified { .. } | IncidentEvent::CredentialsRotated { .. } => {}
        IncidentEvent::Closed { at, .. } => state.closed_at = Some(*at),
    }
    state
}
