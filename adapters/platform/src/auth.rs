//! Login passwords in their own data area (P4.8(2), P4.8(3)): `DATA/auth/passwords.json`,
//! argon2id PHC strings keyed by a pseudonymous subject (`person:<id>`,
//! `staff:<id>`, `provider:<id>`), never in the event log. The log is immutable
//! and replicated to auditors and backups; a password hash there could never be
//! replaced after a leak and would be copied everywhere the log goes.
//!
//! Failed attempts and locks are not kept here: they are counted per account and
//! source by the web face, in memory (`mebyo_web::guard`, rule in
//! `mebyo_domain::signin`), so a guess costs no write of this file. Entries written
//! by earlier versions with `failures` and `locked_until` read as before (the
//! fields are ignored). Every change rewrites the whole file
//! atomically (temporary file, fsync, rename, fsync of the folder): a crash leaves
//! either the old or the new file, never a torn one. Hashing itself happens in the
//! caller (on the bounded argon2id pool of `mebyo_crypto::PasswordHasher`); this
//! module only stores strings that are already irreversible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mebyo_domain::{CredentialId, PersonId, ProviderId, StaffId, Timestamp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Who a password belongs to. Only pseudonymous ids: the file names no one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Person(PersonId),
    Staff(StaffId),
    /// A provider's responsible person, signing in for the provider's API.
    Provider(ProviderId),
}

impl Subject {
    pub fn key(&self) -> String {
        match self {
            Subject::Person(p) => format!("person:{p}"),
            Subject::Staff(s) => format!("staff:{s}"),
            Subject::Provider(p) => format!("provider:{p}"),
        }
    }
}

/// One subject's login data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEntry {
    /// argon2id PHC string (`$argon2id$v=19$m=…`).
    pub phc: String,
    /// The connection information a session of this subject presents (P4.12):
    /// individuals and providers act with a credential, staff without.
    pub credential: Option<CredentialId>,
    pub updated_at: Timestamp,
    /// A one-time password (from `serve`'s first start or a reset): the next
    /// sign-in must replace it before anything else (issue 15 §5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change: bool,
    /// The TOTP secret, sealed (AES-SIV under the platform's credentials key, see
    /// `Platform::seal_sign_in_secret`), base64; `None` until enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_sealed: Option<String>,
    /// The last TOTP step accepted: a code of that step or before is refused, so
    /// a code is used once, across restarts too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    format: u32,
    /// Events the ledger held when this file was last written: what binds it to
    /// the ledger (issue 19 §4). Whatever changed in the ledger after it is
    /// checked against the file at open (`Platform::check_password_file`); 0 in
    /// files of earlier versions, so their first open checks everything.
    #[serde(default)]
    ledger_count: u64,
    entries: BTreeMap<String, AuthEntry>,
}

/// The ledger's event count now, for [`AuthStore::bind_ledger`].
pub type LedgerCount = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

const FORMAT: u32 = 1;
/// Bound on the file's size when read back: a planted or corrupt file must not make
/// the server allocate without limit.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth data area: {0}")]
    Io(#[from] std::io::Error),
    #[error("auth data area {path} is damaged: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("password hash must be an argon2id PHC string (P4.8(2))")]
    NotArgon2id,
}

pub struct AuthStore {
    path: PathBuf,
    file: Mutex<AuthFile>,
    ledger: Mutex<Option<LedgerCount>>,
}

impl AuthStore {
    /// The auth data area of a data directory.
    pub fn dir(root: &Path) -> PathBuf {
        root.join("auth")
    }

    /// Opens `DATA/auth/passwords.json`, creating the folder (mode 0700) if needed.
    pub fn open(root: &Path) -> Result<AuthStore, AuthError> {
        let dir = Self::dir(root);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            set_mode(&dir, 0o700)?;
        }
        let path = dir.join("passwords.json");
        let file = match std::fs::File::open(&path) {
            Ok(f) => {
                let len = f.metadata()?.len();
                if len > MAX_FILE_BYTES {
                    return Err(AuthError::Corrupt {
                        path: path.display().to_string(),
                        reason: format!("{len} bytes, more than the limit"),
                    });
                }
                let parsed: AuthFile = serde_json::from_reader(std::io::BufReader::new(f))
                    .map_err(|e| AuthError::Corrupt {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                if parsed.format != FORMAT {
                    return Err(AuthError::Corrupt {
                        path: path.display().to_string(),
                        reason: format!("format {} is not supported", parsed.format),
                    });
                }
                parsed
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AuthFile {
                format: FORMAT,
                ledger_count: 0,
                entries: BTreeMap::new(),
            },
            Err(e) => return Err(e.into()),
        };
        Ok(AuthStore {
            path,
            file: Mutex::new(file),
            ledger: Mutex::new(None),
        })
    }

    /// Every later write records the ledger's count from `count` (the writer
    /// that serves must bind it; a store left unbound keeps the count it read).
    pub fn bind_ledger(&self, count: LedgerCount) {
        *self.ledger.lock() = Some(count);
    }

    /// The ledger's event count when the file was last written.
    pub fn ledger_count(&self) -> u64 {
        self.file.lock().ledger_count
    }

    pub fn get(&self, subject: &Subject) -> Option<AuthEntry> {
        self.file.lock().entries.get(&subject.key()).cloned()
    }

    pub fn contains(&self, subject: &Subject) -> bool {
        self.file.lock().entries.contains_key(&subject.key())
    }

    /// Sets (or replaces) a password. Refuses anything but an argon2id PHC string,
    /// so a plaintext can never be stored by mistake (P4.8(2)).
    pub fn set_password(
        &self,
        subject: &Subject,
        phc: &str,
        credential: Option<CredentialId>,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.set_password_as(subject, phc, credential, false, now)
    }

    /// Sets a password, saying whether it is a one-time one that the next sign-in
    /// must replace. The second factor, if any, stays.
    pub fn set_password_as(
        &self,
        subject: &Subject,
        phc: &str,
        credential: Option<CredentialId>,
        must_change: bool,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        if !phc.starts_with("$argon2id$") {
            return Err(AuthError::NotArgon2id);
        }
        self.update(|f| {
            let old = f.entries.remove(&subject.key());
            f.entries.insert(
                subject.key(),
                AuthEntry {
                    phc: phc.to_string(),
                    credential,
                    updated_at: now,
                    must_change,
                    totp_sealed: old.as_ref().and_then(|o| o.totp_sealed.clone()),
                    totp_last_step: old.and_then(|o| o.totp_last_step),
                },
            );
        })
    }

    /// Enrols (`Some`) or drops (`None`) a subject's sealed TOTP secret. Returns
    /// whether the subject has an entry.
    pub fn set_totp(
        &self,
        subject: &Subject,
        sealed: Option<String>,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        self.change_entry(subject, now, |e| {
            e.totp_sealed = sealed;
        })
    }

    /// Records the TOTP step just accepted (single use), if it is later than the
    /// last one; `false` if it is not, which means the code was already used.
    pub fn use_totp_step(
        &self,
        subject: &Subject,
        step: u64,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        let mut later = false;
        self.change_entry(subject, now, |e| {
            later = e.totp_last_step.is_none_or(|u| step > u);
            if later {
                e.totp_last_step = Some(step);
            }
        })?;
        Ok(later)
    }

    /// Removes a subject's entry (a registration that did not commit, see
    /// `registration.rs`). Removing what is not there writes nothing.
    pub fn remove(&self, subject: &Subject) -> Result<(), AuthError> {
        let key = subject.key();
        if !self.file.lock().entries.contains_key(&key) {
            return Ok(());
        }
        self.update(|f| {
            f.entries.remove(&key);
        })
    }

    /// Replaces the credential a subject's sessions present (after a reissue).
    pub fn set_credential(
        &self,
        subject: &Subject,
        credential: Option<CredentialId>,
        now: Timestamp,
    ) -> Result<bool, AuthError> {
        self.change_entry(subject, now, |e| e.credential = credential)
    }

    /// Changes a subject's entry durably; `false` (and nothing written) if there is
    /// none.
    fn change_entry(
        &self,
        subject: &Subject,
        now: Timestamp,
        change: impl FnOnce(&mut AuthEntry),
    ) -> Result<bool, AuthError> {
        let key = subject.key();
        if !self.file.lock().entries.contains_key(&key) {
            return Ok(false);
        }
        self.update(|f| {
            if let Some(e) = f.entries.get_mut(&key) {
                change(e);
                e.updated_at = now;
            }
        })?;
        Ok(true)
    }

    /// Applies `change` and rewrites the file durably; on a write failure the
    /// in-memory state is rolled back so memory and disk never disagree.
    fn update(&self, change: impl FnOnce(&mut AuthFile)) -> Result<(), AuthError> {
        let mut f = self.file.lock();
        let before = (f.entries.clone(), f.ledger_count);
        change(&mut f);
        if let Some(count) = self.ledger.lock().as_ref() {
            f.ledger_count = count();
        }
        if let Err(e) =
            mebyo_store::fsio::write_atomic(&self.path, &serde_json::to_vec(&*f).expect("json"))
        {
            (f.entries, f.ledger_count) = before;
            return Err(e.into());
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

    fn subject() -> Subject {
        Subject::Person(PersonId::new("p-1").unwrap())
    }

    #[test]
    fn refuses_anything_but_argon2id_p4_8_2() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::open(dir.path()).unwrap();
        let err = store
            .set_password(&subject(), "hunter2", None, Timestamp(0))
            .unwrap_err();
        assert!(matches!(err, AuthError::NotArgon2id));
        assert!(!store.contains(&subject()));
        assert!(!dir.path().join("auth/passwords.json").exists());
    }

    #[test]
    fn survives_reopen_and_reads_older_entries_p4_8_2() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = AuthStore::open(dir.path()).unwrap();
            store
                .set_password(&subject(), PHC, None, Timestamp(0))
                .unwrap();
        }
        let store = AuthStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&subject()).unwrap().phc, PHC);
        // The file holds no plaintext and no name: only the pseudonymous key.
        let path = dir.path().join("auth/passwords.json");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("person:p-1") && text.contains("$argon2id$"));
        // A file of the version that kept lockouts here still opens.
        let old = text.replace(
            "\"updated_at\"",
            "\"failures\":3,\"locked_until\":null,\"updated_at\"",
        );
        assert!(old.contains("failures"));
        std::fs::write(&path, old).unwrap();
        assert!(AuthStore::open(dir.path()).unwrap().contains(&subject()));
    }
}
