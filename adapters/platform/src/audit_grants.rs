//! Auditor key grants on the platform (P3.1(1), P3.4, P4.6(2)): giving one and
//! using one, each recorded, refusals too. The rules are the domain's
//! (`mebyo_domain::audit_grant`: who may grant, to whom, for how long, and whether
//! a grant found in the ledger is honoured); here they are run against the
//! ledger. One home for `mebyo audit grant` on a stopped platform and for the
//! running server's `POST /api/v1/ops/audit-grants`, whose grantor is the
//! signed-in staff member rather than a name typed on a command line.

use mebyo_domain::audit_grant::{self, KeyGrant};
use mebyo_domain::{Refusal, StaffId, Timestamp};
use mebyo_store::{Actor, AppendError, EventStore, ExpectedRevision, NewEvent, RecordedEvent};

use crate::{Outcome, Platform, PlatformError};

/// Grants live in their own stream; uses of a grant in another.
pub const GRANTS_STREAM: &str = audit_grant::STREAM;
pub const USES_STREAM: &str = "audit-key-uses";

/// Event types of the grant and its uses, granted or refused.
pub const GRANTED: &str = "audit.key_granted";
pub const GRANT_REFUSED: &str = "audit.grant_refused";
pub const USED: &str = "audit.key_used";
pub const USE_REFUSED: &str = "audit.key_use_refused";

/// Events one read of a grant stream takes at a time.
const PAGE_EVENTS: usize = 4096;

/// `by` grants `auditor` decryption for `days` from now. The domain decides; its
/// answer is recorded, a refusal too, before it is told. Appended at the revision
/// read, so that two grants never pass each other unseen.
pub async fn grant(p: &Platform, by: &StaffId, auditor: &StaffId, days: i64) -> Outcome<KeyGrant> {
    let cmd = audit_grant::Grant {
        auditor: auditor.clone(),
        by: by.clone(),
        days,
        at: p.now(),
    };
    let grantor = p.staff_state(by).await?;
    let grantee = p.staff_state(auditor).await?;
    let expected = revision(&read_whole(p, GRANTS_STREAM).await?);
    match audit_grant::decide(&grantor, &grantee, &cmd) {
        Ok(g) => {
            let body = serde_json::to_value(&g).map_err(codec_error)?;
            record(p, GRANTS_STREAM, expected, GRANTED, by, &body).await?;
            Ok(Ok(g))
        }
        Err(r) => {
            let body = serde_json::json!({
                "auditor": auditor, "by": by, "days": days, "at_us": cmd.at.0,
                "clause": r.clause, "code": r.code, "reason": r.message,
            });
            record(p, GRANTS_STREAM, expected, GRANT_REFUSED, by, &body).await?;
            Ok(Err(r))
        }
    }
}

/// JSON of our own types does not fail to encode; if it ever did, it is a codec
/// failure of the platform, not a panic.
fn codec_error(e: serde_json::Error) -> PlatformError {
    PlatformError::Codec(crate::codec::CodecError::Payload {
        event_type: GRANTED.to_string(),
        reason: e.to_string(),
    })
}

/// Whether `user` may decrypt now: every grant in the ledger naming them is
/// checked by the domain (`audit_grant::honoured`) against its grantor as they
/// stood where it was recorded and against `user` now, so one appended by
/// anything but [`grant`] is not honoured for being there.
pub async fn verdict(
    p: &Platform,
    user: &StaffId,
    now: Timestamp,
) -> Result<Result<(), Refusal>, PlatformError> {
    let grantee = p.staff_state(user).await?;
    let mut verdicts = Vec::new();
    for env in read_whole(p, GRANTS_STREAM).await? {
        if env.event_type != GRANTED {
            continue;
        }
        // A payload that does not parse names nobody and grants nothing.
        let Ok(g) = serde_json::from_slice::<KeyGrant>(&env.payload) else {
            continue;
        };
        if g.auditor != *user {
            continue;
        }
        let grantor = p.staff_state_before(&g.by, env.position).await?;
        let given_at = Timestamp(env.recorded_at_us);
        verdicts.push(audit_grant::honoured(
            &g, given_at, &grantor, &grantee, user, now,
        ));
    }
    Ok(audit_grant::first_honoured(verdicts))
}

/// Checks `auditor` holds a grant honoured now, and records this use of it; a
/// use refused is recorded too, with the clause and reason, before the refusal is
/// told (P4.6(2)).
pub async fn use_grant(
    p: &Platform,
    auditor: &StaffId,
    purpose: &str,
) -> Result<Result<(), Refusal>, PlatformError> {
    let now = p.now();
    let verdict = verdict(p, auditor, now).await?;
    let (event_type, body) = match &verdict {
        Ok(()) => (
            USED,
            serde_json::json!({ "auditor": auditor, "purpose": purpose, "at_us": now.0 }),
        ),
        Err(r) => (
            USE_REFUSED,
            serde_json::json!({
                "auditor": auditor, "purpose": purpose, "at_us": now.0,
                "clause": r.clause, "code": r.code, "reason": r.message,
            }),
        ),
    };
    // Uses are evidence, never contended: any revision.
    record(
        p,
        USES_STREAM,
        ExpectedRevision::Any,
        event_type,
        auditor,
        &body,
    )
    .await?;
    Ok(verdict)
}

/// Appends one plaintext operational event by staff member `staff` (a
/// pseudonymous id) and waits until it is durable. A stream moved on since it was
/// read is contention: nothing was written, and the caller may retry.
async fn record(
    p: &Platform,
    stream: &str,
    expected: ExpectedRevision,
    event_type: &str,
    staff: &StaffId,
    body: &serde_json::Value,
) -> Result<(), PlatformError> {
    let payload = serde_json::to_vec(body).map_err(codec_error)?;
    let event = NewEvent::plain(
        event_type,
        Actor::new("staff", staff.as_str()),
        p.id128(),
        payload,
    );
    match p.store().append(stream, expected, vec![event]).await {
        Ok(out) => {
            crate::receipt::note(&out, 1);
            Ok(())
        }
        Err(AppendError::WrongExpectedRevision { .. }) => {
            Err(PlatformError::Contention(stream.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Every event of one stream, in order.
async fn read_whole(p: &Platform, stream: &str) -> Result<Vec<RecordedEvent>, PlatformError> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = all.last().map_or(0, |e| e.stream_revision + 1);
        let page = p.store().read_stream(stream, from, PAGE_EVENTS).await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// The revision a stream read as `events` must still be at.
fn revision(events: &[RecordedEvent]) -> ExpectedRevision {
    events.last().map_or(ExpectedRevision::NoStream, |e| {
        ExpectedRevision::Exact(e.stream_revision)
    })
}
