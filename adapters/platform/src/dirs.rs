//! The layout of a data directory. Each data area is its own folder so that the
//! event log, the keys and the identity vault never share a file (P4.8(3)), and
//! a backup or an auditor can take one without the others.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
        }
    }
    /// The event log: health data as ciphertext, pseudonymous metadata only.
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    /// Keys: the KEK file, the key store of wrapped DEKs, signing keys.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn kek(&self) -> PathBuf {
        self.keys().join("kek")
    }
    /// A KEK being rotated in (see `Platform::rotate_kek`).
    pub fn kek_new(&self) -> PathBuf {
        self.keys().join("kek.new")
    }
    pub fn keystore(&self) -> PathBuf {
        self.keys().join("keystore")
    }
    /// Registrations not known to be settled (`registration.rs`): pseudonymous ids.
    pub fn pending_registrations(&self) -> PathBuf {
        self.keys().join("registrations.pending")
    }
    /// Written before `init`'s first file and removed after its last step: while
    /// it exists the directory holds an interrupted init, which the next `init`
    /// (or `serve`) redoes from the start, and which `open` refuses (issue 19 §2).
    pub fn init_pending(&self) -> PathBuf {
        self.root.join("init.pending")
    }
    /// Identity data (name, address, birth date, phone, email), under identity DEKs.
    pub fn vault(&self) -> PathBuf {
        self.root.join("vault").join("identity.vault")
    }
}
