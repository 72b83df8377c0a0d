//! Anomaly rules over access events (P4.4(1), P4.5(1)): "異常な動作、不適切なアクセス等の
//! 検知に努める". Each rule is a pure function of the access events seen so far; when
//! one fires it yields an [`OpenIncident`] decision, which the operations service
//! turns into an `incident.reported` by the platform itself.
//!
//! Decisions carry ids derived from what fired (rule, provider or credential, time
//! bucket), so replaying the same log yields the same ids and the incident decider
//! refuses the second report: opening incidents is idempotent.

use crate::ids::{IncidentId, fnv1a};
use crate::incident::{AnomalyRule, Evidence, IncidentCommand, IncidentKind, Source};
use mebyo_domain::access::{AccessEvent, Outcome};
use mebyo_domain::{Actor, CredentialId, Duration, PersonId, ProviderId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What the rules need from one `access.recorded` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub at: Timestamp,
    pub provider: Option<ProviderId>,
    pub credential: Option<CredentialId>,
    pub person: PersonId,
    pub granted: bool,
    pub refusal_code: Option<String>,
}

impl Observation {
    pub fn from_access(e: &AccessEvent) -> Self {
        let AccessEvent::AccessRecorded {
            actor,
            person,
            outcome,
            refusal_code,
            at,
            ..
        } = e;
        let (provider, credential) = match actor {
            Actor::Provider {
                provider,
                credential,
            } => (Some(provider.clone()), Some(credential.clone())),
            Actor::Individual { credential, .. } => (None, Some(credential.clone())),
            _ => (None, None),
        };
        Observation {
            at: *at,
            provider,
            credential,
            person: person.clone(),
            granted: *outcome == Outcome::Granted,
            refusal_code: refusal_code.clone(),
        }
    }
}

/// Thresholds, from the operations settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Open an incident when one provider is refused this many times…
    pub burst_refusals: u32,
    /// …within this window.
    pub burst_window: Duration,
    /// Volume: accesses per bucket above `spike_factor` × the mean of the
    /// `spike_trailing` previous buckets…
    pub spike_factor: u32,
    pub spike_bucket: Duration,
    pub spike_trailing: u32,
    /// …and at least this many (a quiet provider's first busy hour is not an
    /// attack). With no history the trailing mean is zero, so for a new provider
    /// this floor acts as an absolute cap per bucket.
    pub spike_min: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            burst_refusals: 20,
            burst_window: Duration(10 * 60 * 1_000_000),
            spike_factor: 10,
            spike_bucket: Duration(3600 * 1_000_000),
            spike_trailing: 24,
            spike_min: 100,
        }
    }
}

/// A rule fired: open this incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub incident: IncidentId,
    pub rule: AnomalyRule,
    pub provider: Option<ProviderId>,
    pub credential: Option<CredentialId>,
    pub evidence: Evidence,
}

impl OpenIncident {
    /// The report the platform files: unauthorised access (P4.14(2)), since each
    /// rule is a sign of inappropriate access (P4.4(1)).
    pub fn command(&self) -> IncidentCommand {
        IncidentCommand::Report {
            incident: self.incident.clone(),
            kind: IncidentKind::UnauthorizedAccess,
            detected_at: self.evidence.to,
            vpn_used: false,
            contractor: None,
            source: Source::Detected {
                rule: self.rule,
                provider: self.provider.clone(),
                credential: self.credential.clone(),
                evidence: self.evidence,
            },
        }
    }
}

fn bucket(at: Timestamp, width: Duration) -> i64 {
    at.0.div_euclid(width.0.max(1))
}

fn incident_id(rule: &str, subject: &str, bucket: i64) -> IncidentId {
    let h = fnv1a(&[rule, subject, &bucket.to_string()]);
    IncidentId::new(format!("anomaly-{rule}-{h:016x}")).expect("a valid slug")
}

/// Rule 1 as a pure function: the refusals of one provider, oldest first, and
/// whether the last `n` of them fall within `window`.
pub fn refusal_burst(refusals_at: &[Timestamp], n: u32, window: Duration) -> bool {
    let n = n as usize;
    n > 0
        && refusals_at.len() >= n
        && refusals_at[refusals_at.len() - 1].0 - refusals_at[refusals_at.len() - n].0 < window.0
}

/// Rule 2 as a pure function: is `current` far above the trailing mean?
pub fn volume_spike(current: u32, trailing: &[u32], factor: u32, min: u32) -> bool {
    if current < min {
        return false;
    }
    let sum: u64 = trailing.iter().map(|c| u64::from(*c)).sum();
    let len = trailing.len().max(1) as u64;
    // current > factor × sum/len, in integers.
    u64::from(current) * len > u64::from(factor) * sum
}

/// Rule 3 as a pure function: an attempt refused because the credential was revoked.
pub fn revoked_credential_use(o: &Observation) -> bool {
    o.refusal_code.as_deref() == Some("credential.revoked")
}

#[derive(Debug, Default, Clone)]
struct ProviderWindow {
    refusals: VecDeque<(Timestamp, PersonId)>,
    burst_quiet_until: Timestamp,
    /// Accesses per bucket, pruned to the trailing window.
    volume: BTreeMap<i64, u32>,
    spiked: BTreeSet<i64>,
}

/// The stateful runner of the rules over a sequence of observations (the log in
/// position order). Memory is bounded by the windows, per provider.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    rules: Rules,
    providers: BTreeMap<ProviderId, ProviderWindow>,
    revoked: BTreeSet<(CredentialId, i64)>,
}

impl Detector {
    pub fn new(rules: Rules) -> Self {
        Detector {
            rules,
            ..Default::default()
        }
    }

    pub fn observe(&mut self, o: &Observation) -> Vec<OpenIncident> {
        let mut out = Vec::new();
        let r = self.rules;
        if revoked_credential_use(o)
            && let Some(c) = &o.credential
        {
            let day = bucket(o.at, Duration::days(1));
            if self.revoked.insert((c.clone(), day)) {
                out.push(OpenIncident {
                    incident: incident_id("revoked", c.as_str(), day),
                    rule: AnomalyRule::RevokedCredentialUse,
                    provider: o.provider.clone(),
                    credential: Some(c.clone()),
                    evidence: Evidence {
                        events: 1,
                        persons: 1,
                        from: o.at,
                        to: o.at,
                    },
                });
            }
        }
        let Some(provider) = &o.provider else {
            return out;
        };
        let w = self.providers.entry(provider.clone()).or_default();
        if !o.granted {
            w.refusals.push_back((o.at, o.person.clone()));
            while w
                .refusals
                .front()
                .is_some_and(|(t, _)| t.0 <= o.at.0 - r.burst_window.0)
            {
                w.refusals.pop_front();
            }
            let times: Vec<Timestamp> = w.refusals.iter().map(|(t, _)| *t).collect();
            if o.at >= w.burst_quiet_until
                && refusal_burst(&times, r.burst_refusals, r.burst_window)
            {
                // One incident per burst: quiet for a window after it fires.
                w.burst_quiet_until = o.at + r.burst_window;
                let persons: BTreeSet<_> = w.refusals.iter().map(|(_, p)| p).collect();
                out.push(OpenIncident {
                    incident: incident_id("burst", provider.as_str(), bucket(o.at, r.burst_window)),
                    rule: AnomalyRule::RefusalBurst,
                    provider: Some(provider.clone()),
                    credential: o.credential.clone(),
                    evidence: Evidence {
                        events: w.refusals.len() as u32,
                        persons: persons.len() as u32,
                        from: times[0],
                        to: o.at,
                    },
                });
            }
        }
        let b = bucket(o.at, r.spike_bucket);
        *w.volume.entry(b).or_default() += 1;
        let oldest = b - i64::from(r.spike_trailing);
        w.volume.retain(|k, _| *k >= oldest);
        w.spiked.retain(|k| *k >= oldest);
        let trailing: Vec<u32> = (oldest..b)
            .map(|k| w.volume.get(&k).copied().unwrap_or(0))
            .collect();
        let current = w.volume[&b];
        if !w.spiked.contains(&b) && volume_spike(current, &trailing, r.spike_factor, r.spike_min) {
            w.spiked.insert(b);
            out.push(OpenIncident {
                incident: incident_id("volume", provider.as_str(), b),
                rule: AnomalyRule::VolumeSpike,
                provider: Some(provider.clone()),
                credential: o.credential.clone(),
                evidence: Evidence {
                    events: current,
                    // Counting distinct people per bucket would keep them all in
                    // memory; the report says how many accesses, not whom.
                    persons: 0,
                    from: Timestamp(b * r.spike_bucket.0),
                    to: o.at,
                },
            });
        }
        out
    }
}
