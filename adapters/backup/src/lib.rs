//! # mebyo-backup
//!
//! Backups of a mebyo data directory (P4.10) that keep erasure effective (P4.9).
//! Design and reasoning: `docs/backups.md`.
//!
//! - [`create_backup`]: a **full** (whole log) or **differential** (frames after
//!   the last full's end) set: encrypted chunked files + `manifest.json`, read
//!   from the log file without taking the ledger lock.
//! - [`restore()`]: full + latest differential into a fresh directory, every digest
//!   and chunk checked, the chain verified, the head hash compared; the key store
//!   from the newest key-store backup the *current* epoch key opens.
//! - [`rotate_backup_epoch`]: after an erasure, a new epoch key and key-store
//!   backup, then the old epoch key destroyed: every older key-store backup is
//!   crypto-shredded.
//! - [`jobs`]: the same as ledger-recorded jobs (`ops-backups` stream), the drill,
//!   and [`jobs::run_due`] for the server's scheduler loop.
//! - [`BackupSchedule`]: pure due/overdue logic with an injected clock.
//!
//! | clause | enforced in |
//! |--------|-------------|
//! | P4.10 backups, record of each job, daily differential / weekly full, overdue flagged | [`create_backup`], [`jobs`], [`BackupSchedule`] |
//! | P4.9 no plaintext recoverable from backups after erasure | [`rotate_backup_epoch`], [`restore()`] |
#![forbid(unsafe_code)]

mod backup;
mod chunked;
mod error;
mod fsio;
pub mod jobs;
mod keys;
mod ledger;
pub mod manifest;
mod restore;
mod schedule;

pub use backup::{
    BackupJob, BackupOptions, DataPaths, EpochRotation, KEYSTORE_BYTES_MAX, StartedBy,
    VAULT_BYTES_MAX, backup_keystore, create_backup, rotate_backup_epoch,
};
pub use chunked::{CHUNK_BYTES_DEFAULT, CHUNK_BYTES_MAX, CHUNK_BYTES_MIN};
pub use error::{BackupError, Result};
pub use keys::{
    BackupKey, EPOCH_KEY_FILE, EnsuredKeys, KeyPaths, KeyPurpose, LOG_KEY_FILE, ensure_backup_keys,
};
pub use manifest::{Kind, Manifest};
pub use restore::{KeystoreRestored, RestoreReport, RestoreRequest, plan, restore};
pub use schedule::{BackupSchedule, Flag, JST, MICROS_PER_DAY, MICROS_PER_HOUR, last_runs};
