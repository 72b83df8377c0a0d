//! The layout of a data directory. Each data area is its own folder so that
//! identity data, keys and the event log never share a file (P4.8(3)).

use std::path::{Path, PathBuf};

pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    /// The event log (health data as ciphertext, pseudonymous metadata).
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
}
