//! # mebyo-crypto
//!
//! Keys, payload encryption, identity vault, blind index and password hashing for
//! the mebyo personal health record platform. Key hierarchy and rationale:
//! `docs/keys.md`; key-store byte layout: `docs/keystore.md`.
//!
//! | clause  | enforced in |
//! |---------|-------------|
//! | P4.8(1) | [`seal`]/[`open`] (AES-256-SIV payloads), [`Kek::load_file`] (0600 key file), [`KeyStore`] (keys apart from data) |
//! | P4.8(2) | [`hash_password`], [`PasswordHasher`] (argon2id) |
//! | P4.8(3) | [`IdentityVault`] (own file, identity DEK), [`BlindIndex`], [`DekKind`] |
//! | P4.9    | [`KeyStore::erase_person`], [`IdentityVault::erase`] (cryptographic erase) |
//!
//! Principles: no IO except the documented file functions; randomness is
//! injected (`&mut impl CryptoRng`); key material lives only in zeroizing types
//! whose `Debug` prints `[redacted]`; every failure is a [`CryptoError`].

mod blind;
mod error;
mod fsio;
mod ids;
mod kek;
mod keystore;
mod password;
mod payload;
mod totp;
mod vault;

#[cfg(test)]
mod tests;

pub use blind::{
    BLIND_KEY_LEN, BlindIndex, BlindToken, MAX_EMAIL_CHARS, normalize_email, normalize_phone,
};
pub use error::{CryptoError, Result};
pub use ids::{DekKind, KeyRef, MAX_PSEUDONYM_LEN, Pseudonym};
pub use kek::{KEY_LEN, Kek, KeyId};
pub use keystore::{
    ErasureReceipt, KeyStore, KeyStoreSnapshot, PersonKeyRefs, PersonKeyStatus, RotationReport,
};
pub use password::{
    MAX_PASSWORD_LEN, PasswordHasher, PasswordHasherConfig, PasswordParams, SharedRng,
    Verification, hash_password, verify_password,
};
pub use payload::{Dek, SEAL_OVERHEAD, envelope_ad, open, seal};
pub use totp::{TOTP_DIGITS, TOTP_SECRET_LEN, TOTP_STEP_S, TotpSecret, totp_step};
pub use vault::{IdentityRecord, IdentityVault};
pub use zeroize::Zeroizing;
