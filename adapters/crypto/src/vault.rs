//! Identity vault (P4.8(3)): names, addresses, birth dates, phones and emails, in
//! a file of their own, apart from the key store and the event log. Each record
//! is encrypted under the person's *identity* DEK (never the health DEK), with the
//! pseudonym as associated data, so a record moved to another person's slot fails
//! to decrypt. Lookup by email/phone goes through blind-index tokens only.
//!
//! Storage choice: whole-file atomic rewrite (like the key store) rather than an
//! append-only log with compaction. `erase` must physically remove the ciphertext
//! and blind tokens *now* (P4.9); with an append-only file they would linger until
//! the next compaction. The cost is O(vault size) per write, fine for the expected
//! write rate (registrations and profile edits); see docs/keys.md for the limit.
//!
//! File layout (big-endian):
//! `"MEBYOIV\0"` ‖ u16 version=1 ‖ 16-byte blind-index key id ‖ u32 count ‖
//! entries sorted by pseudonym: { u8 len ‖ pseudonym ‖ u8 token count ‖
//! tokens: { u8 field ('e' email, 'p' phone) ‖ 32-byte token } ‖ u32 len ‖ sealed
//! record } ‖ 32-byte blake3 of everything before.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::blind::{BlindIndex, BlindToken};
use crate::error::{CryptoError, Result};
use crate::fsio::{self, Reader, Writer};
use crate::ids::{DekKind, Pseudonym};
use crate::kek::KeyId;
use crate::keystore::{read_pseudonym, write_pseudonym};
use crate::payload::{DOMAIN_IDENTITY, Dek, open_in_domain, seal_in_domain};

const WHAT: &str = "identity vault";
const MAGIC: &[u8; 8] = b"MEBYOIV\0";
const VERSION: u16 = 1;
const FIELD_EMAIL: u8 = b'e';
const FIELD_PHONE: u8 = b'p';
/// A serialized record is a few hundred bytes; this bounds a corrupt length field.
const MAX_SEALED_LEN: u32 = 1 << 20;

/// A person's identifying data. Zeroized on drop; Debug never shows values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct IdentityRecord {
    pub name: String,
    pub address: String,
    /// ISO 8601 date, `YYYY-MM-DD`.
    pub birth_date: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl fmt::Debug for IdentityRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data never goes to logs (P4.8(3)).
        f.write_str("IdentityRecord { [redacted] }")
    }
}

#[derive(Clone)]
struct Entry {
    tokens: Vec<(u8, BlindToken)>,
    sealed: Vec<u8>,
}

/// The identity vault. Mutations take `&mut self`, are durable on return, and
/// leave memory and file unchanged when they fail.
pub struct IdentityVault {
    path: PathBuf,
    blind: BlindIndex,
    entries: BTreeMap<Pseudonym, Entry>,
    by_token: HashMap<(u8, BlindToken), BTreeSet<Pseudonym>>,
}

impl fmt::Debug for IdentityVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityVault")
            .field("path", &self.path)
            .field("records", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl IdentityVault {
    /// Create an empty vault (refuses to overwrite an existing file).
    pub fn create(path: impl AsRef<Path>, blind: BlindIndex) -> Result<IdentityVault> {
        let v = IdentityVault {
            path: path.as_ref().to_path_buf(),
            blind,
            entries: BTreeMap::new(),
            by_token: HashMap::new(),
        };
        fsio::create_new_private(&v.path, &v.encode()).map_err(|e| match e {
            CryptoError::Io { source, path, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                CryptoError::AlreadyExists { what: WHAT, path }
            }
            other => other,
        })?;
        Ok(v)
    }

    /// Open an existing vault. The blind-index key must be the one it was built with.
    pub fn open(path: impl AsRef<Path>, blind: BlindIndex) -> Result<IdentityVault> {
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
        let key_id = KeyId(r.array().ok_or_else(|| bad("truncated header"))?);
        if key_id != blind.key_id() {
            return Err(CryptoError::WrongBlindIndexKey {
                path,
                expected: key_id.to_hex(),
                given: blind.key_id().to_hex(),
            });
        }
        let n = r.u32().ok_or_else(|| bad("truncated count"))?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let person = read_pseudonym(&mut r).ok_or_else(|| bad("bad pseudonym"))?;
            let tcount = r.u8().ok_or_else(|| bad("truncated entry"))?;
            if tcount > 2 {
                return Err(bad("too many blind tokens"));
            }
            let mut tokens = Vec::with_capacity(tcount as usize);
            for _ in 0..tcount {
                let field = r
                    .u8()
                    .filter(|f| matches!(*f, FIELD_EMAIL | FIELD_PHONE))
                    .ok_or_else(|| bad("bad token field"))?;
                let t = BlindToken(r.array().ok_or_else(|| bad("truncated token"))?);
                tokens.push((field, t));
            }
            let len = r
                .u32()
                .filter(|l| *l <= MAX_SEALED_LEN)
                .ok_or_else(|| bad("bad record length"))?;
            let sealed = r
                .take(len as usize)
                .ok_or_else(|| bad("truncated record"))?
                .to_vec();
            if entries.insert(person, Entry { tokens, sealed }).is_some() {
                return Err(bad("duplicate person"));
            }
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let mut v = IdentityVault {
            path,
            blind,
            entries,
            by_token: HashMap::new(),
        };
        v.rebuild_index();
        fsio::remove_stale_temp(&v.path);
        Ok(v)
    }

    fn rebuild_index(&mut self) {
        self.by_token.clear();
        for (person, e) in &self.entries {
            for t in &e.tokens {
                self.by_token.entry(*t).or_default().insert(person.clone());
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u16(VERSION);
        w.bytes(&self.blind.key_id().0);
        w.u32(u32::try_from(self.entries.len()).expect("fewer than 2^32 records"));
        for (person, e) in &self.entries {
            write_pseudonym(&mut w, person);
            w.u8(e.tokens.len() as u8);
            for (field, t) in &e.tokens {
                w.u8(*field);
                w.bytes(&t.0);
            }
            w.u32(e.sealed.len() as u32);
            w.bytes(&e.sealed);
        }
        w.finish_with_checksum()
    }

    /// Swap in a new entry for `person` (or none), persist, and roll back on failure.
    fn replace(&mut self, person: &Pseudonym, new: Option<Entry>) -> Result<Option<Entry>> {
        let old = match new {
            Some(e) => self.entries.insert(person.clone(), e),
            None => self.entries.remove(person),
        };
        if let Err(e) = fsio::atomic_replace(&self.path, &self.encode()) {
            match old.clone() {
                Some(o) => self.entries.insert(person.clone(), o),
                None => self.entries.remove(person),
            };
            return Err(e);
        }
        self.rebuild_index_for(person, old.as_ref());
        Ok(old)
    }

    fn rebuild_index_for(&mut self, person: &Pseudonym, old: Option<&Entry>) {
        if let Some(o) = old {
            for t in &o.tokens {
                if let Some(set) = self.by_token.get_mut(t) {
                    set.remove(person);
                    if set.is_empty() {
                        self.by_token.remove(t);
                    }
                }
            }
        }
        if let Some(e) = self.entries.get(person) {
            for t in &e.tokens {
                self.by_token.entry(*t).or_default().insert(person.clone());
            }
        }
    }

    /// Store (or replace) a person's identity record, encrypted under their
    /// identity DEK (P4.8(3)); the health DEK is refused.
    pub fn put(&mut self, person: &Pseudonym, record: &IdentityRecord, dek: &Dek) -> Result<()> {
        check_dek(person, dek)?;
        let mut tokens = Vec::with_capacity(2);
        if let Some(email) = &record.email {
            tokens.push((FIELD_EMAIL, self.blind.index_email(email)?));
        }
        if let Some(phone) = &record.phone {
            tokens.push((FIELD_PHONE, self.blind.index_phone(phone)?));
        }
        let json = Zeroizing::new(serde_json::to_vec(record).map_err(|_| {
            CryptoError::RecordEncoding {
                op: "encoded",
                reason: "serialization failed".into(),
            }
        })?);
        let sealed = seal_in_domain(dek, DOMAIN_IDENTITY, person.as_str().as_bytes(), &json)?;
        self.replace(person, Some(Entry { tokens, sealed }))?;
        Ok(())
    }

    /// Decrypt a person's identity record.
    pub fn get(&self, person: &Pseudonym, dek: &Dek) -> Result<IdentityRecord> {
        check_dek(person, dek)?;
        let e = self
            .entries
            .get(person)
            .ok_or_else(|| CryptoError::NoIdentityRecord {
                person: person.to_string(),
            })?;
        let json = open_in_domain(dek, DOMAIN_IDENTITY, person.as_str().as_bytes(), &e.sealed)?;
        // serde_json's messages can quote input, i.e. personal data: drop them.
        serde_json::from_slice(&json).map_err(|_| CryptoError::RecordEncoding {
            op: "decoded",
            reason: "decrypted record has an unexpected structure".into(),
        })
    }

    /// Remove a person's ciphertext and blind tokens from the file (P4.9). Returns
    /// whether there was a record. Together with [`crate::KeyStore::erase_person`]
    /// this leaves no recoverable identity data.
    pub fn erase(&mut self, person: &Pseudonym) -> Result<bool> {
        if !self.entries.contains_key(person) {
            return Ok(false);
        }
        self.replace(person, None)?;
        tracing::info!(person = %person, "erased identity record");
        Ok(true)
    }

    pub fn contains(&self, person: &Pseudonym) -> bool {
        self.entries.contains_key(person)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Persons whose email matches (after normalisation); usually zero or one.
    pub fn find_by_email(&self, email: &str) -> Result<Vec<Pseudonym>> {
        let t = self.blind.index_email(email)?;
        Ok(self.lookup(FIELD_EMAIL, t))
    }

    /// Persons whose phone matches (after normalisation); a shared home phone can
    /// match several.
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<Pseudonym>> {
        let t = self.blind.index_phone(phone)?;
        Ok(self.lookup(FIELD_PHONE, t))
    }

    fn lookup(&self, field: u8, t: BlindToken) -> Vec<Pseudonym> {
        self.by_token
            .get(&(field, t))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_dek(person: &Pseudonym, dek: &Dek) -> Result<()> {
    dek.require_kind(DekKind::Identity)?;
    if &dek.key_ref().person != person {
        return Err(CryptoError::DekPersonMismatch {
            person: person.to_string(),
            key_ref: dek.key_ref().to_string(),
        });
    }
    Ok(())
}
