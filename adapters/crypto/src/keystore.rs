//! The key store: every person's DEKs, wrapped under the KEK, in a file of its own
//! (a data area apart from the event log and from the identity vault, P4.8(1),
//! P4.8(3)). Byte layout: docs/keystore.md.
//!
//! Wrapping is AES-256-SIV used as deterministic authenticated key wrap (RFC 5297
//! §1.3.2): no nonce, and the associated data binds each wrapped DEK to (person,
//! kind, DEK version, KEK id), so a wrapped key copied to another person or slot
//! does not unwrap.
//!
//! Erasure (P4.9) is cryptographic: removing a person's wrapped DEKs makes every
//! payload and identity record encrypted under them unreadable, in the live store
//! and in every backup of the event log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rand::CryptoRng;
use zeroize::Zeroizing;

use crate::blind::{BLIND_KEY_LEN, BlindIndex};
use crate::error::{CryptoError, Result};
use crate::fsio::{self, Reader, Writer};
use crate::ids::{DekKind, KeyRef, MAX_PSEUDONYM_LEN, Pseudonym};
use crate::kek::{KEY_LEN, Kek, KeyId};
use crate::payload::{Dek, siv_open};

const WHAT: &str = "key store";
const MAGIC: &[u8; 8] = b"MEBYOKS\0";
const VERSION: u16 = 1;
const TAG_LEN: usize = 16;
const WRAPPED_DEK_LEN: usize = TAG_LEN + KEY_LEN;
const WRAPPED_BLIND_LEN: usize = TAG_LEN + BLIND_KEY_LEN;
const DOMAIN_DEK_WRAP: &[u8] = b"mebyo-dek-wrap-v1";
const DOMAIN_BLIND_WRAP: &[u8] = b"mebyo-blind-index-key-wrap-v1";
/// DEK generation written into new key references. DEKs are never re-keyed today
/// (KEK rotation does not change them); a future DEK rotation would bump this.
const FIRST_DEK_VERSION: u32 = 1;

#[derive(Clone)]
struct WrappedDek {
    version: u32,
    wrapped: Vec<u8>,
}

/// References to a person's two DEKs, for event envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonKeyRefs {
    pub identity: KeyRef,
    pub health: KeyRef,
}

/// What the key store knows about a pseudonym.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonKeyStatus {
    Active,
    /// Cryptographically erased (P4.9); keys gone for good.
    Erased,
    Unknown,
}

/// Returned by [`KeyStore::erase_person`]; what the caller records as the erasure
/// event (P4.9: erasure is recorded as an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub person: Pseudonym,
    pub destroyed: Vec<KeyRef>,
    pub kek_id: KeyId,
    /// blake3 of the key store file after the rewrite, for the disposal record.
    pub store_digest: String,
}

/// Returned by [`KeyStore::rotate_kek`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationReport {
    pub old_kek_id: KeyId,
    pub new_kek_id: KeyId,
    pub persons: usize,
    pub rewrapped_deks: usize,
    pub erased_persons: usize,
}

/// A consistent copy of the key store for backup: the exact file bytes (only
/// KEK-wrapped keys) plus a summary.
#[derive(Clone, Debug)]
pub struct KeyStoreSnapshot {
    pub kek_id: KeyId,
    pub persons: Vec<Pseudonym>,
    pub erased: Vec<Pseudonym>,
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// Wrapped DEKs for all persons, bound to one KEK. Mutations take `&mut self`;
/// share it behind a mutex. Every mutation is durable when it returns, and a
/// failed mutation leaves memory and file unchanged.
pub struct KeyStore {
    path: PathBuf,
    kek: Kek,
    blind_wrapped: Vec<u8>,
    entries: BTreeMap<(Pseudonym, DekKind), WrappedDek>,
    erased: BTreeSet<Pseudonym>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .field("kek_id", &self.kek.id())
            .field("persons", &(self.entries.len() / 2))
            .field("erased", &self.erased.len())
            .finish_non_exhaustive()
    }
}

fn dek_headers<'a>(
    person: &'a Pseudonym,
    kind: &'a [u8; 1],
    version: &'a [u8; 4],
    kek_id: &'a KeyId,
) -> [&'a [u8]; 5] {
    [
        DOMAIN_DEK_WRAP,
        person.as_str().as_bytes(),
        kind,
        version,
        &kek_id.0,
    ]
}

fn wrap_dek(kek: &Kek, dek: &Dek) -> Result<Vec<u8>> {
    let r = dek.key_ref();
    let (kind, version) = ([r.kind.code()], r.version.to_be_bytes());
    let id = kek.id();
    kek.siv()
        .encrypt(
            dek_headers(&r.person, &kind, &version, &id),
            dek.key_bytes(),
        )
        .map_err(|_| CryptoError::Encrypt {
            reason: "DEK wrap failed",
        })
}

fn unwrap_dek(kek: &Kek, person: &Pseudonym, kind: DekKind, w: &WrappedDek) -> Result<Dek> {
    let (k, version) = ([kind.code()], w.version.to_be_bytes());
    let id = kek.id();
    let raw = siv_open(
        &mut kek.siv(),
        &dek_headers(person, &k, &version, &id),
        &w.wrapped,
    )?;
    let key_ref = KeyRef {
        kind,
        person: person.clone(),
        version: w.version,
    };
    Dek::from_slice(key_ref, &raw).ok_or(CryptoError::Decrypt)
}

fn wrap_blind_key(kek: &Kek, key: &[u8; BLIND_KEY_LEN]) -> Result<Vec<u8>> {
    kek.siv()
        .encrypt([DOMAIN_BLIND_WRAP, &kek.id().0[..]], key)
        .map_err(|_| CryptoError::Encrypt {
            reason: "blind-index key wrap failed",
        })
}

fn unwrap_blind_key(kek: &Kek, wrapped: &[u8]) -> Result<Zeroizing<[u8; BLIND_KEY_LEN]>> {
    let raw = siv_open(
        &mut kek.siv(),
        &[DOMAIN_BLIND_WRAP, &kek.id().0[..]],
        wrapped,
    )?;
    let mut key = Zeroizing::new([0u8; BLIND_KEY_LEN]);
    if raw.len() != BLIND_KEY_LEN {
        return Err(CryptoError::Decrypt);
    }
    key.copy_from_slice(&raw);
    Ok(key)
}

impl KeyStore {
    /// Create a new, empty key store at `path` (refuses to overwrite). The store
    /// also holds a random blind-index key wrapped under the KEK, so that blind
    /// indexes survive KEK rotation (docs/keys.md).
    ///
    /// `open` never creates a store: a mistyped path must not silently yield an
    /// empty store in which every person looks "unknown".
    pub fn create(
        path: impl AsRef<Path>,
        kek: &Kek,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<KeyStore> {
        let path = path.as_ref().to_path_buf();
        let mut blind_key = Zeroizing::new([0u8; BLIND_KEY_LEN]);
        rng.fill_bytes(&mut blind_key[..]);
        let store = KeyStore {
            blind_wrapped: wrap_blind_key(kek, &blind_key)?,
            path,
            kek: kek.clone(),
            entries: BTreeMap::new(),
            erased: BTreeSet::new(),
        };
        fsio::create_new_private(&store.path, &store.encode()).map_err(|e| match e {
            CryptoError::Io { source, path, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                CryptoError::AlreadyExists { what: WHAT, path }
            }
            other => other,
        })?;
        tracing::info!(path = %store.path.display(), kek_id = %kek.id(), "created key store");
        Ok(store)
    }

    /// Open an existing key store. Fails, changing nothing, if the file is corrupt,
    /// was written under another KEK, or any wrapped key fails to unwrap.
    pub fn open(path: impl AsRef<Path>, kek: &Kek) -> Result<KeyStore> {
        let path = path.as_ref().to_path_buf();
        let data = fsio::read_all(&path)?;
        let body = fsio::verify_checksum(WHAT, &path, &data)?;
        let bad = |reason: &str| CryptoError::FileFormat {
            what: WHAT,
            path: path.clone(),
            reason: reason.to_string(),
        };
        let mut r = Reader::new(body);
        if r.take(8) != Some(&MAGIC[..]) {
            return Err(bad("bad magic"));
        }
        if r.u16() != Some(VERSION) {
            return Err(bad("unsupported version"));
        }
        let stored_id = KeyId(r.array().ok_or_else(|| bad("truncated header"))?);
        if stored_id != kek.id() {
            return Err(CryptoError::WrongKek {
                path,
                expected: stored_id,
                given: kek.id(),
            });
        }
        let blind_wrapped = r
            .take(WRAPPED_BLIND_LEN)
            .ok_or_else(|| bad("truncated header"))?
            .to_vec();
        // The blind-index key doubles as the KEK check for an empty store.
        let unwrap_failed = || CryptoError::UnwrapFailed {
            path: path.clone(),
            kek_id: kek.id(),
        };
        unwrap_blind_key(kek, &blind_wrapped).map_err(|_| unwrap_failed())?;

        let n = r.u32().ok_or_else(|| bad("truncated entry count"))?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let person = read_pseudonym(&mut r).ok_or_else(|| bad("bad entry pseudonym"))?;
            let kind = r
                .u8()
                .and_then(DekKind::from_code)
                .ok_or_else(|| bad("bad entry kind"))?;
            let version = r.u32().ok_or_else(|| bad("truncated entry"))?;
            let wrapped = r
                .take(WRAPPED_DEK_LEN)
                .ok_or_else(|| bad("truncated entry"))?
                .to_vec();
            let w = WrappedDek { version, wrapped };
            // Prove the KEK really unwraps every key now, not at first use.
            unwrap_dek(kek, &person, kind, &w).map_err(|_| unwrap_failed())?;
            if entries.insert((person, kind), w).is_some() {
                return Err(bad("duplicate entry"));
            }
        }
        let m = r.u32().ok_or_else(|| bad("truncated tombstone count"))?;
        let mut erased = BTreeSet::new();
        for _ in 0..m {
            let person = read_pseudonym(&mut r).ok_or_else(|| bad("bad tombstone"))?;
            if !erased.insert(person) {
                return Err(bad("duplicate tombstone"));
            }
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        for (person, _) in entries.keys() {
            if erased.contains(person) {
                return Err(bad("erased person still has keys"));
            }
            if !DekKind::ALL
                .iter()
                .all(|k| entries.contains_key(&(person.clone(), *k)))
            {
                return Err(bad("person without both DEKs"));
            }
        }
        fsio::remove_stale_temp(&path);
        Ok(KeyStore {
            path,
            kek: kek.clone(),
            blind_wrapped,
            entries,
            erased,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u16(VERSION);
        w.bytes(&self.kek.id().0);
        w.bytes(&self.blind_wrapped);
        w.u32(u32::try_from(self.entries.len()).expect("fewer than 2^32 keys"));
        for ((person, kind), wd) in &self.entries {
            write_pseudonym(&mut w, person);
            w.u8(kind.code());
            w.u32(wd.version);
            w.bytes(&wd.wrapped);
        }
        w.u32(u32::try_from(self.erased.len()).expect("fewer than 2^32 tombstones"));
        for person in &self.erased {
            write_pseudonym(&mut w, person);
        }
        w.finish_with_checksum()
    }

    fn persist(&self) -> Result<()> {
        fsio::atomic_replace(&self.path, &self.encode())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kek_id(&self) -> KeyId {
        self.kek.id()
    }

    /// Number of persons with live keys.
    pub fn person_count(&self) -> usize {
        self.entries.len() / DekKind::ALL.len()
    }

    pub fn status(&self, person: &Pseudonym) -> PersonKeyStatus {
        if self.erased.contains(person) {
            PersonKeyStatus::Erased
        } else if self
            .entries
            .contains_key(&(person.clone(), DekKind::Identity))
        {
            PersonKeyStatus::Active
        } else {
            PersonKeyStatus::Unknown
        }
    }

    pub fn is_erased(&self, person: &Pseudonym) -> bool {
        self.erased.contains(person)
    }

    fn require_active(&self, person: &Pseudonym) -> Result<()> {
        match self.status(person) {
            PersonKeyStatus::Active => Ok(()),
            PersonKeyStatus::Erased => Err(CryptoError::PersonErased {
                person: person.to_string(),
            }),
            PersonKeyStatus::Unknown => Err(CryptoError::UnknownPerson {
                person: person.to_string(),
            }),
        }
    }

    /// Generate and store a person's identity and health DEKs (P4.8(3): separate
    /// keys for separate data areas). Refused for a person who already has keys or
    /// was erased (an erased pseudonym is never reused).
    pub fn create_person_keys(
        &mut self,
        person: &Pseudonym,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<PersonKeyRefs> {
        match self.status(person) {
            PersonKeyStatus::Unknown => {}
            PersonKeyStatus::Active => {
                return Err(CryptoError::PersonKeysExist {
                    person: person.to_string(),
                });
            }
            PersonKeyStatus::Erased => {
                return Err(CryptoError::PersonErased {
                    person: person.to_string(),
                });
            }
        }
        let mut wrapped = Vec::with_capacity(2);
        for kind in DekKind::ALL {
            let key_ref = KeyRef {
                kind,
                person: person.clone(),
                version: FIRST_DEK_VERSION,
            };
            let dek = Dek::generate(key_ref, rng);
            wrapped.push((
                kind,
                WrappedDek {
                    version: FIRST_DEK_VERSION,
                    wrapped: wrap_dek(&self.kek, &dek)?,
                },
            ));
        }
        for (kind, w) in wrapped {
            self.entries.insert((person.clone(), kind), w);
        }
        if let Err(e) = self.persist() {
            for kind in DekKind::ALL {
                self.entries.remove(&(person.clone(), kind));
            }
            return Err(e);
        }
        tracing::info!(person = %person, "created person DEKs");
        self.key_refs(person)
    }

    /// The key references for a person's DEKs.
    pub fn key_refs(&self, person: &Pseudonym) -> Result<PersonKeyRefs> {
        self.require_active(person)?;
        let r = |kind| KeyRef {
            kind,
            person: person.clone(),
            version: self.entries[&(person.clone(), kind)].version,
        };
        Ok(PersonKeyRefs {
            identity: r(DekKind::Identity),
            health: r(DekKind::Health),
        })
    }

    /// Unwrap one of a person's DEKs. Distinguishes erased from unknown persons.
    pub fn dek(&self, person: &Pseudonym, kind: DekKind) -> Result<Dek> {
        self.require_active(person)?;
        let w = &self.entries[&(person.clone(), kind)];
        unwrap_dek(&self.kek, person, kind, w).map_err(|_| CryptoError::UnwrapFailed {
            path: self.path.clone(),
            kek_id: self.kek.id(),
        })
    }

    /// Unwrap the DEK named by a key reference from an event envelope.
    pub fn dek_for_ref(&self, key_ref: &KeyRef) -> Result<Dek> {
        let dek = self.dek(&key_ref.person, key_ref.kind)?;
        if dek.key_ref().version != key_ref.version {
            return Err(CryptoError::InvalidKeyRef {
                value: key_ref.to_string(),
                reason: "no DEK with this version",
            });
        }
        Ok(dek)
    }

    /// Cryptographic erase (P4.9): remove both wrapped DEKs and tombstone the
    /// pseudonym. After this returns, the key store file holds no copy of either
    /// key, so every ciphertext under them — in the log, the vault and their
    /// backups — is unreadable. Erasing an erased person returns `PersonErased`.
    pub fn erase_person(&mut self, person: &Pseudonym) -> Result<ErasureReceipt> {
        self.require_active(person)?;
        let mut removed = Vec::with_capacity(2);
        for kind in DekKind::ALL {
            if let Some(w) = self.entries.remove(&(person.clone(), kind)) {
                removed.push((kind, w));
            }
        }
        self.erased.insert(person.clone());
        let bytes = self.encode();
        if let Err(e) = fsio::atomic_replace(&self.path, &bytes) {
            self.erased.remove(person);
            for (kind, w) in removed {
                self.entries.insert((person.clone(), kind), w);
            }
            return Err(e);
        }
        let destroyed = removed
            .iter()
            .map(|(kind, w)| KeyRef {
                kind: *kind,
                person: person.clone(),
                version: w.version,
            })
            .collect();
        tracing::info!(person = %person, "erased person DEKs (cryptographic erase)");
        Ok(ErasureReceipt {
            person: person.clone(),
            destroyed,
            kek_id: self.kek.id(),
            store_digest: blake3::hash(&bytes).to_hex().to_string(),
        })
    }

    /// Rewrap every DEK (and the blind-index key) under `new_kek`. DEKs themselves
    /// are unchanged, so nothing in the event log changes. Afterwards the old KEK
    /// no longer opens this store; destroy it to turn old copies of the store file
    /// (backups, freed disk blocks) into noise.
    pub fn rotate_kek(&mut self, new_kek: &Kek) -> Result<RotationReport> {
        let mut entries = BTreeMap::new();
        for ((person, kind), w) in &self.entries {
            let dek =
                unwrap_dek(&self.kek, person, *kind, w).map_err(|_| CryptoError::UnwrapFailed {
                    path: self.path.clone(),
                    kek_id: self.kek.id(),
                })?;
            let wrapped = wrap_dek(new_kek, &dek)?;
            entries.insert(
                (person.clone(), *kind),
                WrappedDek {
                    version: w.version,
                    wrapped,
                },
            );
        }
        let blind_key = unwrap_blind_key(&self.kek, &self.blind_wrapped).map_err(|_| {
            CryptoError::UnwrapFailed {
                path: self.path.clone(),
                kek_id: self.kek.id(),
            }
        })?;
        let next = KeyStore {
            path: self.path.clone(),
            kek: new_kek.clone(),
            blind_wrapped: wrap_blind_key(new_kek, &blind_key)?,
            entries,
            erased: self.erased.clone(),
        };
        next.persist()?;
        let report = RotationReport {
            old_kek_id: self.kek.id(),
            new_kek_id: new_kek.id(),
            persons: next.person_count(),
            rewrapped_deks: next.entries.len(),
            erased_persons: next.erased.len(),
        };
        *self = next;
        tracing::info!(
            old_kek_id = %report.old_kek_id,
            new_kek_id = %report.new_kek_id,
            rewrapped = report.rewrapped_deks,
            "rotated KEK"
        );
        Ok(report)
    }

    /// The blind-index hasher whose key this store holds (wrapped under the KEK).
    pub fn blind_index(&self) -> Result<BlindIndex> {
        let key = unwrap_blind_key(&self.kek, &self.blind_wrapped).map_err(|_| {
            CryptoError::UnwrapFailed {
                path: self.path.clone(),
                kek_id: self.kek.id(),
            }
        })?;
        Ok(BlindIndex::new(&key))
    }

    /// A backup-ready copy: exact file bytes (KEK-wrapped keys only) and summary.
    pub fn export_snapshot(&self) -> KeyStoreSnapshot {
        let bytes = self.encode();
        let mut persons: Vec<Pseudonym> = self.entries.keys().map(|(p, _)| p.clone()).collect();
        persons.dedup();
        KeyStoreSnapshot {
            kek_id: self.kek.id(),
            persons,
            erased: self.erased.iter().cloned().collect(),
            digest: blake3::hash(&bytes).to_hex().to_string(),
            bytes,
        }
    }

    #[cfg(test)]
    pub(crate) fn wrapped_bytes(&self, person: &Pseudonym, kind: DekKind) -> Option<Vec<u8>> {
        self.entries
            .get(&(person.clone(), kind))
            .map(|w| w.wrapped.clone())
    }
}

pub(crate) fn write_pseudonym(w: &mut Writer, p: &Pseudonym) {
    let b = p.as_str().as_bytes();
    w.u8(u8::try_from(b.len()).expect("pseudonym length checked at construction"));
    w.bytes(b);
}

pub(crate) fn read_pseudonym(r: &mut Reader<'_>) -> Option<Pseudonym> {
    let len = r.u8()? as usize;
    if len > MAX_PSEUDONYM_LEN {
        return None;
    }
    let s = std::str::from_utf8(r.take(len)?).ok()?;
    Pseudonym::new(s).ok()
}
