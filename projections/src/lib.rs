//! Pure folds from events to read models (see ARCHITECTURE.md; issue 4 §projections,
//! issue 6 §3 dashboard, issue 8 replay).
//!
//! Every model is a struct with `apply(&mut self, &Applied)` and cheap queries; time
//! dependent questions take `now` as an argument, nothing here reads a clock or does
//! IO. [`ReadModels`] bundles them behind a strictly ordered, hash-chained `apply` and
//! snapshots them.
//!
//! Feeding from the store, per envelope in log order:
//!
//! ```ignore
//! let event = AnyEvent::decode(&env.event_type, &plaintext_payload)?;
//! models.apply(&Applied {
//!     position: env.position,
//!     recorded_at_us: env.recorded_at_us,
//!     stream_id: &env.stream_id,
//!     prev_hash: env.prev_hash,
//!     hash: env.hash,
//!     event: &event,
//! })?;
//! ```
//!
//! | model | answers | clauses |
//! | --- | --- | --- |
//! | [`Registry`] | people, status counts, policy acceptance, registrations per day | P2(1), P3.2, P8, P4.9 |
//! | [`Providers`] | provider lifecycle, connection class, attestations current at `now` | P2(3), P4.5(3), P4.11 |
//! | [`Consents`] | consents per person and per provider, counts at `now` | P4.6(2) |
//! | [`Credentials`] | state, holder, expiry, renewal reminders, revocations | P4.12, P4.13 |
//! | [`RecordsIndex`] | per person record ids, category, time, provenance, positions | P2(1), P5.1 |
//! | [`AccessLog`] | who accessed my data; provider volume per hour, refusals | P4.6(2) |
//! | [`StaffRoster`] | roles, privacy training current at `now` | P3.1, P3.4 |
//! | [`Operations`] | last full / differential backup, failures, drills, overdue at `now`; incidents and their missing runbook steps; last checkpoint | P4.10, P4.14, P4.4 |
#![forbid(unsafe_code)]

pub mod access;
mod compact;
pub mod consents;
pub mod credentials;
pub mod event;
mod models;
pub mod operations;
pub mod providers;
pub mod records;
pub mod registry;
pub mod staff;

#[cfg(test)]
mod testkit;

pub use access::{AccessLog, AccessView, HourBucket, Who};
pub use consents::{ConsentCounts, ConsentState, ConsentView, Consents};
pub use credentials::{CredentialStatus, CredentialView, Credentials, HolderView};
pub use event::{AnyEvent, Applied, DecodeError};
pub use models::{ApplyError, ReadModels, SNAPSHOT_VERSION, SnapshotError};
pub use operations::{
    BackupEvent, BackupFlag, BackupKind, BackupRule, CheckpointNote, IncidentRow, Operations,
};
pub use providers::{AttestationView, ProviderRow, Providers};
pub use records::{PartyRef, RecordRef, RecordsIndex};
pub use registry::{PersonView, Registry, RegistryCounts, jst_day};
pub use staff::{StaffRoster, StaffRow};
