//! Monitoring support on the platform (P4.4, P4.5): firewall-log reviews and their
//! flag, the access-retention query, and the synthetic response probe.

use std::collections::BTreeSet;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::{Actor, Channel, Duration, Timestamp};
use mebyo_operations::Reference;
use mebyo_operations::monitoring::{
    FIREWALL_STREAM, Finding, FirewallEvent, FirewallReview, PROBE_STREAM, ProbeEvent,
    ProbeOutcome, RecordReview, ReviewFlag, past_retention, retention_cutoff, review_flag,
};
use mebyo_platform::world::{self, Individual, Org};
use mebyo_platform::{Outcome, Platform};

use crate::{OpsError, OpsSettings, execute, read_stream, state};
use mebyo_store::EventStore;

/// Records a firewall-log review with the configured interval (P4.4(3)).
pub async fn record_review(
    p: &Platform,
    settings: &OpsSettings,
    actor: &Actor,
    from: Timestamp,
    to: Timestamp,
    finding: Finding,
    reference: Option<Reference>,
) -> Outcome<Vec<FirewallEvent>> {
    let cmd = RecordReview {
        from,
        to,
        finding,
        reference,
        interval: settings.firewall_review_interval(),
    };
    execute::<FirewallReview>(p, FIREWALL_STREAM, actor, &cmd).await
}

/// Whether the firewall-log review is overdue now: what the server shows on its
/// dashboard and exports as a metric.
pub async fn review_status(p: &Platform, settings: &OpsSettings) -> Result<ReviewFlag, OpsError> {
    let s = state::<FirewallReview>(p, FIREWALL_STREAM).await?;
    Ok(review_flag(
        &s,
        p.now(),
        settings.firewall_review_interval(),
    ))
}

/// Access records older than this are past retention now (P4.5(2)).
pub fn access_retention_cutoff(p: &Platform, settings: &OpsSettings) -> Timestamp {
    retention_cutoff(p.now(), settings.access_retention())
}

/// The synthetic individual a probe reads as.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub name: Reference,
    pub individual: Individual,
}

/// Enrols the synthetic probe person through the real commands (registration,
/// connection info, policy acceptance). Their identity is obviously synthetic.
pub async fn enroll_probe_person(
    p: &Platform,
    org: &Org,
    name: Reference,
) -> Result<ProbeTarget, world::SetupError> {
    let identity = IdentityRecord {
        name: format!("synthetic probe {name}"),
        address: "synthetic".into(),
        birth_date: "2000-01-01".into(),
        phone: None,
        email: None,
    };
    let individual = world::enroll_individual(p, org, &identity).await?;
    Ok(ProbeTarget { name, individual })
}

/// Where a server remembers which synthetic person its probe reads as, beside
/// `operations.json`. Holds the probe's name and the person's pseudonymous ids —
/// no identity (that is in the vault, sealed) — so a restart probes the same
/// person instead of enrolling one per start. The probe stream itself never names
/// the person (see [`ProbeEvent`]).
pub const PROBE_FILE: &str = "operations-probe.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct ProbeFile {
    probe: Reference,
    person: mebyo_domain::PersonId,
    credential: mebyo_domain::CredentialId,
}

/// The server's probe target (P4.4(2)): the one named in `DATA/`[`PROBE_FILE`],
/// or, on first start, a synthetic person enrolled now through the real commands
/// and remembered there (written whole, fsynced, then renamed into place). An
/// unreadable or foreign file is an error, never a reason to enrol another.
/// A crash between enrolment and the rename leaves one unused synthetic person;
/// the next start enrols a new one.
pub async fn probe_target(
    p: &Platform,
    org: &Org,
    name: Reference,
) -> Result<ProbeTarget, OpsError> {
    let path = p.dir.root.join(PROBE_FILE);
    let bad = |e: &dyn std::fmt::Display| OpsError::Probe(format!("{}: {e}", path.display()));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let f: ProbeFile = serde_json::from_slice(&bytes).map_err(|e| bad(&e))?;
            if f.probe != name {
                return Err(bad(&format!("names probe {}, not {name}", f.probe)));
            }
            return Ok(ProbeTarget {
                name: f.probe,
                individual: Individual {
                    id: f.person,
                    credential: f.credential,
                },
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(&e)),
    }
    // Registration succeeds for anyone; the office desk then issues the credential.
    // Without that desk, enrolling would leave a half-enrolled person per start.
    if p.staff_state(&org.office).await?.roles.is_empty() {
        return Err(OpsError::Probe(format!(
            "office desk {} is not appointed; no synthetic person enrolled",
            org.office
        )));
    }
    let target = enroll_probe_person(p, org, name)
        .await
        .map_err(|e| OpsError::Probe(format!("enrolling the synthetic probe person: {e}")))?;
    let json = serde_json::to_vec_pretty(&ProbeFile {
        probe: target.name.clone(),
        person: target.individual.id.clone(),
        credential: target.individual.credential.clone(),
    })
    .map_err(|e| bad(&e))?;
    mebyo_store::fsio::write_atomic(&path, &json).map_err(|e| bad(&e))?;
    Ok(target)
}

/// Microseconds from a monotonic clock, for measuring latency. Injected so tests
/// are deterministic; [`system_stopwatch`] is the real one.
pub type Stopwatch = dyn Fn() -> i64 + Send + Sync;

pub fn system_stopwatch() -> impl Fn() -> i64 + Send + Sync {
    let origin = std::time::Instant::now();
    move || origin.elapsed().as_micros() as i64
}

/// P4.4(2) application-response monitoring: reads the synthetic person's own
/// records through [`Platform::read_records`] (the real path: decision, recorded
/// access, decryption) and records the latency in `ops-probes`. A refusal or a
/// failure is recorded too: that is what an operator must see.
pub async fn probe(
    p: &Platform,
    target: &ProbeTarget,
    stopwatch: &Stopwatch,
) -> Result<ProbeEvent, OpsError> {
    let now = p.now();
    let req = AccessRequest {
        actor: target.individual.actor(),
        person: target.individual.id.clone(),
        categories: Platform::all_categories()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        purpose: Purpose::PersonalUse,
        channel: Channel::Portal,
        period: Period {
            from: Timestamp(now.0 - Duration::days(1).0),
            to: now + Duration::days(1),
        },
    };
    let start = stopwatch();
    let result = p.read_records(&req).await;
    let latency_us = stopwatch() - start;
    let outcome = match result {
        Ok(Ok(records)) => ProbeOutcome::Ok {
            records: records.len() as u32,
        },
        Ok(Err(r)) => ProbeOutcome::Refused {
            code: r.code.into(),
            clause: r.clause.into(),
        },
        Err(e) => ProbeOutcome::Failed {
            error: e.to_string(),
        },
    };
    let event = ProbeEvent::Recorded {
        probe: target.name.clone(),
        path: "read_records".into(),
        latency_us,
        outcome,
        at: now,
    };
    p.record(PROBE_STREAM, &Actor::System, &event).await?;
    Ok(event)
}

/// The most recent probe, for /readyz and /metrics.
pub async fn last_probe(p: &Platform) -> Result<Option<ProbeEvent>, OpsError> {
    Ok(read_stream::<ProbeEvent>(p, PROBE_STREAM).await?.pop())
}

/// How many access records are past retention now (P4.5(2)), read from envelope
/// metadata only (event type and recorded time are plaintext; nothing decrypted).
/// Reads the whole past-retention part of the log; a server keeps a
/// [`RetentionWatch`] instead, which reads each event once.
pub async fn access_records_past_retention(
    p: &Platform,
    settings: &OpsSettings,
) -> Result<u64, OpsError> {
    RetentionWatch::default().update(p, settings).await
}

/// The running count of access records past retention (P4.5(2)).
///
/// Decision (see ARCHITECTURE.md, "Access records and their retention"): access
/// records are `access.recorded` events in the hash-chained ledger, so retention
/// there is a floor that the ledger enforces by never removing them (deleting or
/// rewriting one would break the chain every auditor checks). They carry only
/// pseudonyms and are sealed under the platform audit key. What outlives the
/// retention is counted here and exported (`mebyo_ops_access_records_past_retention`)
/// so operators see it.
///
/// The ledger's recorded times never run backwards (the store takes the later of
/// the clock and the last time), so what is past retention is a prefix of the
/// log: each update reads only what crossed the cutoff since the last one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionWatch {
    /// The first position not yet known to be past retention.
    next: u64,
    past: u64,
}

impl RetentionWatch {
    /// Access records past retention at the platform's now.
    pub async fn update(&mut self, p: &Platform, settings: &OpsSettings) -> Result<u64, OpsError> {
        let (now, retention) = (p.now(), settings.access_retention());
        loop {
            let page = p.store().read_all(self.next, 1024).await?;
            if page.is_empty() {
                return Ok(self.past);
            }
            for e in &page {
                if !past_retention(now, Timestamp(e.recorded_at_us), retention) {
                    return Ok(self.past);
                }
                self.past += u64::from(e.event_type == ACCESS_EVENT);
                self.next = e.position + 1;
            }
        }
    }

    /// Log positions below this are past retention (as of the last update).
    pub fn past_retention_before(&self) -> u64 {
        self.next
    }
}

/// The event type of an access record (P4.5(1)(2), P4.6(2)).
pub const ACCESS_EVENT: &str = "access.recorded";
