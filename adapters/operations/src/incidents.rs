//! Incidents on the platform (P4.14): commands, credential rotation for a stolen
//! or lost device, reports and the list.

use mebyo_domain::credential::{CredentialCommand, CredentialStatus, RevocationReason};
use mebyo_domain::{Actor, CredentialId, Decider};
use mebyo_operations::incident::{Incident, IncidentCommand, IncidentEvent, Rotation};
use mebyo_operations::report::{IncidentReport, report};
use mebyo_operations::{IncidentId, clause::refusal};
use mebyo_platform::{Outcome, Platform};
use mebyo_store::EventStore;

use crate::{OpsError, execute, read_stream};

pub async fn incident(
    p: &Platform,
    actor: &Actor,
    id: &IncidentId,
    cmd: IncidentCommand,
) -> Outcome<Vec<IncidentEvent>> {
    execute::<Incident>(p, &id.stream(), actor, &cmd).await
}

pub async fn events(p: &Platform, id: &IncidentId) -> Result<Vec<IncidentEvent>, OpsError> {
    read_stream(p, &id.stream()).await
}

pub async fn incident_report(
    p: &Platform,
    id: &IncidentId,
) -> Result<Option<IncidentReport>, OpsError> {
    Ok(report(&events(p, id).await?))
}

/// Every incident's report, in the order they were reported. Scans the log for
/// `incident.reported` envelopes (type and stream are plaintext metadata, so the
/// scan decrypts nothing).
pub async fn list(p: &Platform) -> Result<Vec<IncidentReport>, OpsError> {
    let mut ids = Vec::new();
    let mut from = 0;
    loop {
        let page = p.store().read_all(from, 1024).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for env in &page {
            if env.event_type == "incident.reported"
                && let Some(id) = env.stream_id.strip_prefix("incident-")
                && let Ok(id) = IncidentId::new(id)
            {
                ids.push(id);
            }
        }
    }
    let mut out = Vec::new();
    for id in ids {
        if let Some(r) = incident_report(p, &id).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// P4.14(4)②: change the connection information a stolen or lost device held.
/// Each named credential is revoked and a new one issued to the same holder, then
/// the incident records the pairs (and so its `change-connection-info` step).
///
/// The incident's decision is taken first against the current incident state, so
/// a refusal there (wrong role, out of order, closed, wrong incident type) touches
/// no credential. Revocation uses `JudgedRisk` (P4.13(3)): the domain's reasons are
/// the three of P4.13 and a device stolen with the connection info on it is the
/// prefecture judging a risk. The domain refuses to reissue a revoked credential
/// with `replaces`, so the new one is issued fresh and the incident stream keeps
/// the link old → new. A re-run after a partial failure skips credentials already
/// revoked.
pub async fn rotate_credentials(
    p: &Platform,
    actor: &Actor,
    id: &IncidentId,
    old: &[CredentialId],
) -> Outcome<Vec<Rotation>> {
    let state = Incident::fold(&events(p, id).await.map_err(platform)?);
    let facts = p.facts_for(actor).await?;
    let dry = IncidentCommand::RecordRotation {
        rotations: old
            .iter()
            .map(|c| Rotation {
                revoked: c.clone(),
                issued: CredentialId::new("pending").expect("valid"),
            })
            .collect(),
    };
    if let Err(r) = facts.decide::<Incident>(&state, &dry, actor, p.config(), p.now()) {
        return Ok(Err(r));
    }
    // All must exist before any is touched.
    let mut holders = Vec::new();
    for c in old {
        let s = p.credential_state(c).await?;
        let Some(holder) = s.holder.clone() else {
            return Ok(Err(refusal(
                "incident.rotation_unknown_credential",
                mebyo_domain::clause!("P4.14(4)"),
                format!("no credential {c}"),
            )));
        };
        holders.push((c.clone(), s.status, holder));
    }
    let mut rotations = Vec::new();
    for (c, status, holder) in holders {
        if status == CredentialStatus::Active
            && let Err(r) = p
                .credential(
                    actor,
                    &c,
                    CredentialCommand::Revoke {
                        reason: RevocationReason::JudgedRisk,
                    },
                )
                .await?
        {
            return Ok(Err(r));
        }
        let new = CredentialId::new(p.new_id("cred")).expect("generated ids are valid");
        if let Err(r) = p
            .credential(
                actor,
                &new,
                CredentialCommand::Issue {
                    credential: new.clone(),
                    holder,
                    replaces: None,
                },
            )
            .await?
        {
            return Ok(Err(r));
        }
        rotations.push(Rotation {
            revoked: c,
            issued: new,
        });
    }
    match incident(
        p,
        actor,
        id,
        IncidentCommand::RecordRotation {
            rotations: rotations.clone(),
        },
    )
    .await?
    {
        Ok(_) => Ok(Ok(rotations)),
        Err(r) => Ok(Err(r)),
    }
}

fn platform(e: OpsError) -> mebyo_platform::PlatformError {
    match e {
        OpsError::Platform(e) => e,
        other => mebyo_platform::PlatformError::Settings(other.to_string()),
    }
}
