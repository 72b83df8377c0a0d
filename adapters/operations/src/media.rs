//! The media ledger and disposals on the platform (P4.7, P4.9).

use mebyo_domain::Actor;
use mebyo_operations::media::{
    DisposalEvent, DisposalLog, Media, MediaCommand, MediaEvent, MediaState, RecordDisposal,
};
use mebyo_operations::{DisposalId, MediaId};
use mebyo_platform::{Outcome, Platform};

use crate::{OpsError, execute, state};

pub async fn media(
    p: &Platform,
    actor: &Actor,
    id: &MediaId,
    cmd: MediaCommand,
) -> Outcome<Vec<MediaEvent>> {
    execute::<Media>(p, &id.stream(), actor, &cmd).await
}

pub async fn ledger_entry(p: &Platform, id: &MediaId) -> Result<MediaState, OpsError> {
    state::<Media>(p, &id.stream()).await
}

pub async fn disposal(
    p: &Platform,
    actor: &Actor,
    id: &DisposalId,
    cmd: RecordDisposal,
) -> Outcome<Vec<DisposalEvent>> {
    execute::<DisposalLog>(p, &id.stream(), actor, &cmd).await
}
