//! The key ring: the key store behind a lock, with a cache of unwrapped DEKs, and
//! the seam through which the event store seals payloads at append time.
//!
//! Which key seals which stream (the key hierarchy is in docs/keys.md of
//! mebyo-crypto; the choice per stream is here, in one place):
//! - `person-<id>`, `records-<id>`: that person's health DEK, so erasing the person
//!   (destroying the DEK) makes their history unreadable (P4.9);
//! - `access-<id>`, `ops-erasures`: the platform audit key, so the record of who
//!   accessed a person's data outlives the person's erasure as pseudonymous
//!   metadata (issue 3 §5), readable by an auditor only through a key grant;
//! - `credential-<id>`: the platform credentials key (connection info of natural
//!   persons, kept apart from health keys).
//!
//! Any other person-related stream is refused: fail closed rather than guess.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use mebyo_crypto::{Dek, DekKind, KeyRef, KeyStore, Pseudonym};
use mebyo_store::{SealPlace, Sealer};
use parking_lot::{Mutex, RwLock};

/// Pseudonyms of the platform's own keys in the key store.
pub const AUDIT_KEY_OWNER: &str = "platform-audit";
pub const CREDENTIALS_KEY_OWNER: &str = "platform-credentials";
/// Unwrapped DEKs kept in memory at most.
pub const DEKS_CACHED_MAX: usize = 131_072;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key is defined for stream {0}; refusing to store a person-related event")]
    NoKeyForStream(String),
    #[error("key store: {0}")]
    Crypto(#[from] mebyo_crypto::CryptoError),
    #[error("the key {0} was destroyed (erased person)")]
    Erased(String),
}

pub struct KeyRing {
    store: Mutex<KeyStore>,
    /// Unwrapped DEKs by key reference. Unwrapping costs an AES-SIV operation; a
    /// read path that decrypts many events of one person should not pay it each time.
    cache: RwLock<HashMap<String, Arc<Dek>>>,
    /// Key reference of each owner's health DEK: every access event asks for the
    /// audit key's, and the key store would otherwise be locked for each.
    refs: RwLock<HashMap<String, String>>,
}

impl KeyRing {
    pub fn new(store: KeyStore) -> Self {
        Self {
            store: Mutex::new(store),
            cache: RwLock::new(HashMap::new()),
            refs: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `f` with the key store locked (creation, erasure, rotation).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut KeyStore) -> T) -> T {
        f(&mut self.store.lock())
    }

    /// The key reference that seals `stream_id`.
    pub fn key_ref_for_stream(&self, stream_id: &str) -> Result<String, KeyError> {
        let owner = if let Some(p) = stream_id
            .strip_prefix("person-")
            .or_else(|| stream_id.strip_prefix("records-"))
        {
            p
        } else if stream_id.starts_with("access-") || stream_id == "ops-erasures" {
            AUDIT_KEY_OWNER
        } else if stream_id.starts_with("credential-") {
            CREDENTIALS_KEY_OWNER
        } else {
            return Err(KeyError::NoKeyForStream(stream_id.to_string()));
        };
        self.key_ref_of_owner(owner)
    }

    /// The key reference of an owner's health DEK (a person's, or one of the
    /// platform's own keys).
    fn key_ref_of_owner(&self, owner: &str) -> Result<String, KeyError> {
        if let Some(r) = self.refs.read().get(owner) {
            return Ok(r.clone());
        }
        let pseudonym = Pseudonym::new(owner)?;
        let refs = self
            .store
            .lock()
            .key_refs(&pseudonym)
            .map_err(|e| match e {
                mebyo_crypto::CryptoError::PersonErased { .. } => {
                    KeyError::Erased(owner.to_string())
                }
                e => KeyError::Crypto(e),
            })?;
        let key_ref = refs.health.to_string();
        self.refs.write().insert(owner.to_string(), key_ref.clone());
        Ok(key_ref)
    }

    /// The unwrapped DEK for a key reference.
    pub fn dek(&self, key_ref: &str) -> Result<Arc<Dek>, KeyError> {
        if let Some(d) = self.cache.read().get(key_ref) {
            return Ok(d.clone());
        }
        let parsed = KeyRef::from_str(key_ref)?;
        // The cache is filled under the key store's lock, so an erasure (which takes
        // the same lock, then forgets) can never be followed by a stale insert.
        let store = self.store.lock();
        let dek = store.dek_for_ref(&parsed).map_err(|e| match e {
            mebyo_crypto::CryptoError::PersonErased { .. } => KeyError::Erased(key_ref.to_string()),
            e => KeyError::Crypto(e),
        })?;
        let dek = Arc::new(dek);
        let mut cache = self.cache.write();
        // Bounded (a long-running server would otherwise hold every person's
        // unwrapped key): when full, an arbitrary entry goes; a miss only costs an
        // unwrap.
        if cache.len() >= DEKS_CACHED_MAX {
            let victim = cache.keys().next().cloned().expect("full map has a key");
            cache.remove(&victim);
        }
        cache.insert(key_ref.to_string(), dek.clone());
        drop(cache);
        drop(store);
        Ok(dek)
    }

    /// The platform audit key, which also seals the projection snapshot.
    pub fn audit_dek(&self) -> Result<Arc<Dek>, KeyError> {
        let r = self.key_ref_for_stream("ops-erasures")?;
        self.dek(&r)
    }

    /// Forget every cached DEK of a person: called before their keys are destroyed.
    pub fn forget(&self, owner: &str) {
        self.refs.write().remove(owner);
        for kind in [DekKind::Identity, DekKind::Health] {
            let prefix = format!("dek:{}:{owner}:", kind.code() as char);
            self.cache.write().retain(|k, _| !k.starts_with(&prefix));
        }
    }

    /// Seals a sign-in secret (a staff member's TOTP seed) for the auth data area:
    /// under the credentials key, with the subject as associated data, so a copy
    /// of `DATA/auth` alone opens nothing and a secret moved to another subject's
    /// entry does not open either. Hex, for the JSON file.
    pub fn seal_sign_in_secret(
        &self,
        subject_key: &str,
        secret: &[u8],
    ) -> Result<String, KeyError> {
        let dek = self.dek(&self.key_ref_of_owner(CREDENTIALS_KEY_OWNER)?)?;
        let sealed = mebyo_crypto::seal(&dek, &sign_in_ad(subject_key), secret)?;
        Ok(hex::encode(sealed))
    }

    /// Opens what [`Self::seal_sign_in_secret`] sealed for `subject_key`.
    pub fn open_sign_in_secret(
        &self,
        subject_key: &str,
        sealed_hex: &str,
    ) -> Result<mebyo_crypto::Zeroizing<Vec<u8>>, KeyError> {
        let dek = self.dek(&self.key_ref_of_owner(CREDENTIALS_KEY_OWNER)?)?;
        let sealed = hex::decode(sealed_hex)
            .map_err(|_| KeyError::Crypto(mebyo_crypto::CryptoError::Decrypt))?;
        Ok(mebyo_crypto::open(&dek, &sign_in_ad(subject_key), &sealed)?)
    }

    /// Decrypts a payload stored at `place` under `key_ref`.
    pub fn open(
        &self,
        key_ref: &str,
        place: &SealPlace<'_>,
        sealed: &[u8],
    ) -> Result<mebyo_crypto::Zeroizing<Vec<u8>>, KeyError> {
        let dek = self.dek(key_ref)?;
        let ad = mebyo_crypto::envelope_ad(
            place.stream_id,
            place.stream_revision,
            place.event_type,
            place.position,
        );
        Ok(mebyo_crypto::open(&dek, &ad, sealed)?)
    }
}

/// Associated data of a sealed sign-in secret: a purpose label and the subject.
fn sign_in_ad(subject_key: &str) -> Vec<u8> {
    [b"mebyo sign-in secret\0".as_slice(), subject_key.as_bytes()].concat()
}

impl Sealer for KeyRing {
    fn seal(
        &self,
        key_ref: &str,
        place: &SealPlace<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, String> {
        let dek = self.dek(key_ref).map_err(|e| e.to_string())?;
        let ad = mebyo_crypto::envelope_ad(
            place.stream_id,
            place.stream_revision,
            place.event_type,
            place.position,
        );
        mebyo_crypto::seal(&dek, &ad, plaintext).map_err(|e| e.to_string())
    }
}
