//! Pure deciders of the operational half of the policy (issue 7 §2–§7): incidents,
//! maintenance windows, the media ledger and disposal, firewall-log reviews,
//! retention, probes, anomaly rules and incident reports.
//!
//! Same shape as `mebyo-domain`: `decide(&State, &Command, &Ctx) -> Result<Vec<Event>,
//! Refusal>` and `evolve`; no IO, no clock (time arrives in [`mebyo_domain::Ctx`] or
//! as an argument), no randomness. The services in `mebyo-operations-service` run
//! these deciders on the platform. Every refusal cites its clause (see [`clause`]).
//!
//! # Module map
//!
//! | module | stream | what it decides |
//! | --- | --- | --- |
//! | [`clause`] | — | the clauses cited here, refusals, role checks, JST formatting |
//! | [`ids`] | — | incident, media, disposal, window ids; references; digests |
//! | [`incident`] | `incident-<id>` | report, runbook steps per type, assessment, escalation, notifications, rotation, closure (P4.14) |
//! | [`maintenance`] | `ops-maintenance` | windows announced a lead time ahead; portal notices; the bus hook (P4.3) |
//! | [`media`] | `media-<id>`, `disposal-<id>` | export approval, media ledger, disposal per NIST SP 800-88 with witness (P4.7, P4.9) |
//! | [`monitoring`] | `ops-firewall-reviews`, `ops-probes` | firewall-log reviews and lateness, retention, probe records (P4.4, P4.5) |
//! | [`anomaly`] | — | rules over access events that open incidents (P4.4(1)) |
//! | [`report`] | — | incident report projection, JSON and HTML (P4.14) |
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod clause;
pub mod ids;
pub mod incident;
pub mod maintenance;
pub mod media;
pub mod monitoring;
pub mod report;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use clause::refusal;
pub use ids::{Digest, DisposalId, IncidentId, MediaId, Reference, WindowId};
pub use incident::{Incident, IncidentCommand, IncidentEvent, IncidentKind, Step};
