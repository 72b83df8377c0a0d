//! One typed error for the whole crate.
//!
//! Messages name paths, modes, key ids (fingerprints) and pseudonyms, never key
//! bytes or personal data (P4.8(1), P4.8(3)): an error may end up in a log.

use std::path::PathBuf;

use crate::kek::KeyId;

/// Everything that can go wrong in `mebyo-crypto`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "key file {path} has mode {mode:04o}, which lets group or other users read it; \
         run `chmod 600` on it (P4.8(1))"
    )]
    KekFilePermissions { path: PathBuf, mode: u32 },

    #[error("key file {path} is not a valid KEK file: {reason}")]
    KekFileFormat { path: PathBuf, reason: &'static str },

    #[error("KEK from environment is invalid: {reason}")]
    KekHex { reason: &'static str },

    #[error("{what} file {path} is malformed: {reason}")]
    FileFormat {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error("{what} file {path} failed its checksum: the file is corrupt or was modified")]
    ChecksumMismatch { what: &'static str, path: PathBuf },

    #[error("key store {path} is wrapped under KEK {expected}, but KEK {given} was supplied")]
    WrongKek {
        path: PathBuf,
        expected: KeyId,
        given: KeyId,
    },

    #[error(
        "key store {path}: a wrapped key does not unwrap under KEK {kek_id} \
         (wrong key material or tampered entry)"
    )]
    UnwrapFailed { path: PathBuf, kek_id: KeyId },

    #[error("{what} file {path} already exists; refusing to overwrite it")]
    AlreadyExists { what: &'static str, path: PathBuf },

    #[error("invalid pseudonym: {reason}")]
    InvalidPseudonym { reason: &'static str },

    #[error("invalid key reference {value:?}: {reason}")]
    InvalidKeyRef { value: String, reason: &'static str },

    #[error("person {person} already has keys")]
    PersonKeysExist { person: String },

    #[error(
        "person {person} was erased (cryptographic erase, P4.9); their keys cannot be used or recreated"
    )]
    PersonErased { person: String },

    #[error("no keys for person {person}")]
    UnknownPerson { person: String },

    #[error("a {expected} DEK is required, got a {given} DEK")]
    WrongDekKind {
        expected: &'static str,
        given: &'static str,
    },

    #[error("encryption failed: {reason}")]
    Encrypt { reason: &'static str },

    /// Deliberately vague: wrong key, wrong associated data and tampering all look the same.
    #[error("decryption failed: wrong key, mismatched associated data, or tampered ciphertext")]
    Decrypt,

    #[error("DEK {key_ref} does not belong to person {person}")]
    DekPersonMismatch { person: String, key_ref: String },

    #[error("identity vault has no record for {person}")]
    NoIdentityRecord { person: String },

    #[error(
        "identity vault {path} was built with blind-index key {expected}, but key {given} was supplied"
    )]
    WrongBlindIndexKey {
        path: PathBuf,
        expected: String,
        given: String,
    },

    #[error("identity record could not be {op}: {reason}")]
    RecordEncoding { op: &'static str, reason: String },

    #[error("invalid email for blind index: {reason}")]
    InvalidEmail { reason: &'static str },

    #[error("invalid phone number for blind index: {reason}")]
    InvalidPhone { reason: &'static str },

    #[error("password rejected: {reason}")]
    InvalidPassword { reason: &'static str },

    #[error(
        "password hashing parameters below the minimum m=19456 KiB, t=2, p=1 (P4.8(2)): {reason}"
    )]
    WeakPasswordParams { reason: String },

    #[error("stored password hash is malformed or unsupported: {reason}")]
    MalformedPasswordHash { reason: String },

    #[error("password hashing failed: {reason}")]
    PasswordHash { reason: String },

    #[error("password hashing pool is unavailable: {reason}")]
    HashPool { reason: &'static str },
}

/// Crate-wide result.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;

impl CryptoError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CryptoError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
