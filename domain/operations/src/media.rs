//! Removable media (P4.7) and disposal (P4.9).
//!
//! P4.7(1): nothing is copied to a CD, USB stick or other medium without the
//! system operations administrator's permission, so a medium's stream `media-<id>`
//! begins with that approval and a copy is recorded only against it. P4.7(2): the
//! administrator keeps permitted media locked away and in a ledger: the stream is
//! the ledger entry (id, contents digest, custodian, storage place, state).
//!
//! P4.9(2): media are disposed of per NIST SP 800-88 (Clear, Purge, Destroy), in
//! principle by physical destruction, so Clear or Purge must give a reason;
//! P4.9(3): the administrator witnesses it, and is the one who records it. Media
//! outside the ledger (a server's disks, paper) are disposed of in their own
//! `disposal-<id>` stream with the same rules, plus P4.9(1) for paper.

use crate::clause::{acting_staff, ensure, refuse};
use crate::ids::{Digest, DisposalId, MediaId, Reference};
use mebyo_domain::staff::Role;
use mebyo_domain::{Ctx, Decider, DomainEvent, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    UsbMemory,
    OpticalDisc,
    HardDisk,
    MagneticTape,
    Other,
}

impl MediaKind {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

/// How something was disposed of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Method {
    /// NIST SP 800-88 Clear: overwrite through the normal interface.
    Clear,
    /// NIST SP 800-88 Purge: e.g. block erase, cryptographic erase, degaussing.
    Purge,
    /// NIST SP 800-88 Destroy: shred, disintegrate, pulverise, incinerate.
    Destroy,
    /// Paper through a shredder (P4.9(1)).
    Shred,
    /// Paper melted by an outside contractor, against a certificate (P4.9(1)).
    Melt { certificate: Reference },
}

impl Method {
    pub fn parse(s: &str, certificate: Option<Reference>) -> Option<Self> {
        Some(match (s, certificate) {
            ("clear", None) => Method::Clear,
            ("purge", None) => Method::Purge,
            ("destroy", None) => Method::Destroy,
            ("shred", None) => Method::Shred,
            ("melt", Some(certificate)) => Method::Melt { certificate },
            _ => return None,
        })
    }

    fn is_nist(&self) -> bool {
        matches!(self, Method::Clear | Method::Purge | Method::Destroy)
    }
}

/// What is disposed of, outside the media ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// A medium (a server's disk, a decommissioned PC's drive, a tape).
    Medium,
    Paper,
}

/// The disposal record (P4.9): method, witness, date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposal {
    pub method: Method,
    /// Why not destroyed, when the method is Clear or Purge (P4.9(2) "原則物理的な破壊").
    pub reason: Option<Reference>,
    /// The system operations administrator who witnessed it (P4.9(3)).
    pub witness: StaffId,
    /// When it was disposed of.
    pub disposed_at: Timestamp,
}

/// Whether a holder of `r` approves copies to media, hands them out and
/// witnesses disposals (P4.7(1), P4.9(3)): the system operations administrator.
pub fn keeper(r: Role) -> bool {
    r == Role::SystemOperationsAdministrator
}

/// The checks every disposal passes: the actor is the witnessing administrator,
/// the method fits the subject, and a method short of destruction is justified.
fn disposal(
    ctx: &Ctx,
    subject: Subject,
    method: &Method,
    reason: &Option<Reference>,
    disposed_at: Timestamp,
) -> Result<Disposal, Refusal> {
    let (witness, _) = acting_staff(
        ctx,
        keeper,
        true,
        mebyo_domain::clause!("P4.9(3)"),
        "disposal is witnessed and recorded by the system operations administrator",
    )?;
    match subject {
        Subject::Medium => {
            ensure(
                method.is_nist(),
                "disposal.method",
                mebyo_domain::clause!("P4.9(2)"),
                "media are sanitised per NIST SP 800-88: clear, purge or destroy",
            )?;
            ensure(
                *method == Method::Destroy || reason.is_some(),
                "disposal.not_destroyed",
                mebyo_domain::clause!("P4.9(2)"),
                "media are in principle physically destroyed; give the reason for clear or purge",
            )?;
        }
        Subject::Paper => ensure(
            matches!(method, Method::Shred | Method::Melt { .. }),
            "disposal.method",
            mebyo_domain::clause!("P4.9(1)"),
            "paper is shredded, or melted by a contractor against a certificate",
        )?,
    }
    ensure(
        disposed_at <= ctx.now,
        "disposal.future",
        mebyo_domain::clause!("P4.9(3)"),
        "a disposal is recorded after it was witnessed",
    )?;
    Ok(Disposal {
        method: method.clone(),
        reason: reason.clone(),
        witness,
        disposed_at,
    })
}

// ---- the media ledger ------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaStatus {
    #[default]
    Unknown,
    /// Permitted, nothing copied yet.
    Approved,
    /// Copied and in the custodian's hands.
    Issued,
    /// Back in its locked storage place.
    Returned,
    Disposed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// P4.7(1): the administrator permits copying these contents to this medium.
    ApproveExport {
        media: MediaId,
        kind: MediaKind,
        contents_digest: Digest,
        custodian: StaffId,
        storage: Reference,
        purpose: Reference,
    },
    /// The copy was made and handed to the custodian; its digest must be the one
    /// approved.
    Issue { contents_digest: Digest },
    /// Back under lock (P4.7(2)).
    Return { storage: Reference },
    Dispose {
        method: Method,
        reason: Option<Reference>,
        disposed_at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MediaEvent {
    #[serde(rename = "media.export_approved")]
    ExportApproved {
        media: MediaId,
        kind: MediaKind,
        contents_digest: Digest,
        custodian: StaffId,
        storage: Reference,
        purpose: Reference,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "media.issued")]
    Issued {
        media: MediaId,
        custodian: StaffId,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "media.returned")]
    Returned {
        media: MediaId,
        storage: Reference,
        by: StaffId,
        at: Timestamp,
    },
    #[serde(rename = "media.disposed")]
    Disposed {
        media: MediaId,
        disposal: Disposal,
        at: Timestamp,
    },
}

impl DomainEvent for MediaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            MediaEvent::ExportApproved { .. } => "media.export_approved",
            MediaEvent::Issued { .. } => "media.issued",
            MediaEvent::Returned { .. } => "media.returned",
            MediaEvent::Disposed { .. } => "media.disposed",
        }
    }

    /// The ledger holds a digest of the contents, never the contents.
    fn person_related(&self) -> bool {
        false
    }
}

/// One ledger entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaState {
    pub id: Option<MediaId>,
    pub kind: Option<MediaKind>,
    pub contents_digest: Option<Digest>,
    pub custodian: Option<StaffId>,
    pub storage: Option<Reference>,
    pub status: MediaStatus,
    pub approved_by: Option<StaffId>,
    pub disposal: Option<Disposal>,
}

pub struct Media;

impl Decider for Media {
    type State = MediaState;
    type Command = MediaCommand;
    type Event = MediaEvent;

    fn decide(
        state: &MediaState,
        cmd: &MediaCommand,
        ctx: &Ctx,
    ) -> Result<Vec<MediaEvent>, Refusal> {
        decide_media(state, cmd, ctx)
    }

    fn evolve(state: MediaState, event: &MediaEvent) -> MediaState {
        evolve_media(state, event)
    }
}

pub fn decide_media(
    state: &MediaState,
    cmd: &MediaCommand,
    ctx: &Ctx,
) -> Result<Vec<MediaEvent>, Refusal> {
    let now = ctx.now;
    if let MediaCommand::ApproveExport {
        media,
        kind,
        contents_digest,
        custodian,
        storage,
        purpose,
    } = cmd
    {
        let (by, _) = acting_staff(
            ctx,
            keeper,
            true,
            mebyo_domain::clause!("P4.7(1)"),
            "copying to media needs the system operations administrator's permission",
        )?;
        ensure(
            state.status == MediaStatus::Unknown,
            "media.already_in_ledger",
            mebyo_domain::clause!("P4.7(2)"),
            "this medium is already in the ledger",
        )?;
        return Ok(vec![MediaEvent::ExportApproved {
            media: media.clone(),
            kind: *kind,
            contents_digest: contents_digest.clone(),
            custodian: custodian.clone(),
            storage: storage.clone(),
            purpose: purpose.clone(),
            by,
            at: now,
        }]);
    }
    // Everything else happens to a medium already permitted (P4.7(1)): without the
    // approval there is nothing in the ledger to act on, and no copy may exist.
    let Some(media) = state.id.clone() else {
        return refuse(
            "media.not_approved",
            mebyo_domain::clause!("P4.7(1)"),
            "no approval by the system operations administrator for this medium",
        );
    };
    ensure(
        state.status != MediaStatus::Disposed,
        "media.disposed",
        mebyo_domain::clause!("P4.7(2)"),
        "the medium was disposed of",
    )?;
    let custodian = state
        .custodian
        .clone()
        .expect("approved media have a custodian");
    match cmd {
        MediaCommand::ApproveExport { .. } => unreachable!("handled above"),
        MediaCommand::Issue { contents_digest } => {
            // The custodian takes the copy, or the administrator hands it over.
            let by = match ctx.actor {
                mebyo_domain::Actor::Staff { staff } if *staff == custodian => staff.clone(),
                _ => {
                    acting_staff(
                        ctx,
                        keeper,
                        false,
                        mebyo_domain::clause!("P4.7(2)"),
                        "issuing a medium",
                    )?
                    .0
                }
            };
            ensure(
                matches!(state.status, MediaStatus::Approved | MediaStatus::Returned),
                "media.not_in_storage",
                mebyo_domain::clause!("P4.7(2)"),
                "the medium is already out",
            )?;
            ensure(
                state.contents_digest.as_ref() == Some(contents_digest),
                "media.contents_differ",
                mebyo_domain::clause!("P4.7(1)"),
                "the copy is not what was approved",
            )?;
            Ok(vec![MediaEvent::Issued {
                media,
                custodian,
                by,
                at: now,
            }])
        }
        MediaCommand::Return { storage } => {
            let (by, _) = acting_staff(
                ctx,
                keeper,
                false,
                mebyo_domain::clause!("P4.7(2)"),
                "the system operations administrator locks media away",
            )?;
            ensure(
                state.status == MediaStatus::Issued,
                "media.not_issued",
                mebyo_domain::clause!("P4.7(2)"),
                "the medium is not out",
            )?;
            Ok(vec![MediaEvent::Returned {
                media,
                storage: storage.clone(),
                by,
                at: now,
            }])
        }
        MediaCommand::Dispose {
            method,
            reason,
            disposed_at,
        } => {
            let disposal = disposal(ctx, Subject::Medium, method, reason, *disposed_at)?;
            ensure(
                state.status != MediaStatus::Issued,
                "media.not_in_storage",
                mebyo_domain::clause!("P4.7(2)"),
                "return the medium to the ledger before disposing of it",
            )?;
            Ok(vec![MediaEvent::Disposed {
                media,
                disposal,
                at: now,
            }])
        }
    }
}

/// Who may read a ledger entry (P4.7(2)): the ledger is the staff's record of
/// permitted media, so any staff member holding a role (an auditor checks it,
/// the administrator keeps it); never an individual or a provider. `roles` are
/// the reader's roles as staff, `None` when the reader is not staff.
pub fn may_read_ledger(roles: Option<&[Role]>) -> Result<(), Refusal> {
    ensure(
        roles.is_some_and(|r| !r.is_empty()),
        "media.ledger_staff_only",
        mebyo_domain::clause!("P4.7(2)"),
        "the media ledger is read by staff holding a role only",
    )
}

pub fn evolve_media(mut state: MediaState, event: &MediaEvent) -> MediaState {
    match event {
        MediaEvent::ExportApproved {
            media,
            kind,
            contents_digest,
            custodian,
            storage,
            by,
            ..
        } => {
            state.id = Some(media.clone());
            state.kind = Some(*kind);
            state.contents_digest = Some(contents_digest.clone());
            state.custodian = Some(custodian.clone());
            state.storage = Some(storage.clone());
            state.approved_by = Some(by.clone());
            state.status = MediaStatus::Approved;
        }
        MediaEvent::Issued { .. } => state.status = MediaStatus::Issued,
        MediaEvent::Returned { storage, .. } => {
            state.storage = Some(storage.clone());
            state.status = MediaStatus::Returned;
        }
        MediaEvent::Disposed { disposal, .. } => {
            state.disposal = Some(disposal.clone());
            state.status = MediaStatus::Disposed;
        }
    }
    state
}

// ---- disposals outside the ledger ---------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDisposal {
    pub disposal: DisposalId,
    pub subject: Subject,
    /// What it was: an asset tag, a batch number.
    pub item: Reference,
    pub method: Method,
    pub reason: Option<Reference>,
    pub disposed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DisposalEvent {
    #[serde(rename = "disposal.recorded")]
    Recorded {
        disposal_id: DisposalId,
        subject: Subject,
        item: Reference,
        disposal: Disposal,
        at: Timestamp,
    },
}

impl DomainEvent for DisposalEvent {
    fn event_type(&self) -> &'static str {
        "disposal.recorded"
    }
    fn person_related(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisposalState {
    pub recorded: Option<(Subject, Reference, Disposal)>,
}

pub struct DisposalLog;

impl Decider for DisposalLog {
    type State = DisposalState;
    type Command = RecordDisposal;
    type Event = DisposalEvent;

    fn decide(
        state: &DisposalState,
        cmd: &RecordDisposal,
        ctx: &Ctx,
    ) -> Result<Vec<DisposalEvent>, Refusal> {
        let d = disposal(ctx, cmd.subject, &cmd.method, &cmd.reason, cmd.disposed_at)?;
        ensure(
            state.recorded.is_none(),
            "disposal.duplicate",
            mebyo_domain::clause!("P4.9(3)"),
            "this disposal is already recorded",
        )?;
        Ok(vec![DisposalEvent::Recorded {
            disposal_id: cmd.disposal.clone(),
            subject: cmd.subject,
            item: cmd.item.clone(),
            disposal: d,
            at: ctx.now,
        }])
    }

    fn evolve(mut state: DisposalState, event: &DisposalEvent) -> DisposalState {
        let DisposalEvent::Recorded {
            subject,
            item,
            disposal,
            ..
        } = event;
        state.recorded = Some((*subject, item.clone(), disposal.clone()));
        state
    }
}
