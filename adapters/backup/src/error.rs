//! One typed error for the crate. Messages name files, set ids and key ids
//! (fingerprints), never key bytes or personal data: they end up in the ledger
//! (`backup.failed`) and in operators' terminals.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no backup key at {path}: {hint}")]
    MissingKey { path: PathBuf, hint: &'static str },

    #[error(
        "backup key file {path} has mode {mode:04o}, which lets group or other users read it; run `chmod 600` on it"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("backup key file {path} is not valid: {reason}")]
    KeyFormat { path: PathBuf, reason: &'static str },

    #[error(
        "backup file {file} is encrypted under backup key {expected}, but the key supplied is {given}"
    )]
    WrongKey {
        file: PathBuf,
        expected: String,
        given: String,
    },

    #[error("backup file {file} is corrupt or was modified: {reason}; refusing to restore it")]
    Corrupt { file: PathBuf, reason: String },

    #[error("backup manifest {path} is invalid: {reason}")]
    Manifest { path: PathBuf, reason: String },

    #[error(
        "no full backup of ledger {ledger_id} in {dir}: a differential is relative to the last full backup (P4.10); run a full backup first"
    )]
    NoFullBackup { dir: PathBuf, ledger_id: String },

    #[error(
        "differential backup {differential} builds on full backup {base}, which is not in {dir} (or its manifest is unreadable); a differential alone cannot be restored"
    )]
    MissingBase {
        differential: String,
        base: String,
        dir: PathBuf,
    },

    #[error("no backup set {id} in {dir}")]
    UnknownSet { id: String, dir: PathBuf },

    #[error("the ledger cannot be backed up: {reason}")]
    Ledger { reason: String },

    #[error("the restored ledger does not verify: {reason}")]
    Verify { reason: String },

    #[error(
        "the restored ledger's head hash {found} is not the manifest's {expected}; refusing the restore"
    )]
    HeadMismatch { expected: String, found: String },

    #[error("{path} is not empty; restore writes only into a new or empty directory")]
    TargetNotEmpty { path: PathBuf },

    #[error(
        "none of the {tried} key-store backups in {dir} opens with the current backup epoch key {epoch_key_id}: \
         restore the key store from a backup taken under this epoch (every backup run and every epoch rotation writes one)"
    )]
    NoReadableKeystore {
        dir: PathBuf,
        epoch_key_id: String,
        tried: usize,
    },

    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },

    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },

    #[error("recording the backup event in the ledger failed: {0}")]
    Record(String),
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

impl BackupError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BackupError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn corrupt(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        BackupError::Corrupt {
            file: file.into(),
            reason: reason.into(),
        }
    }
}
