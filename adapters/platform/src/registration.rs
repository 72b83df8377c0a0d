//! Registration that commits whole or leaves nothing behind, across crashes
//! (issue 19 §1).
//!
//! A registration writes to four places, each durable on its own: the key store
//! (the person's DEKs), the identity vault, the password file (self-service
//! sign-up) and the event log. Only the log is the record, so **the commit point is
//! one append**: `person.registered`, with a sign-up's `credential.issued` in the
//! same commit (`EmbeddedStore::append_then`). Everything written before it is
//! provisional:
//!
//! 1. every decision is taken first (the registration, and the office's issue of
//!    connection information against the person as registered), so a refusal
//!    writes nothing;
//! 2. the person is added to the journal of pending registrations
//!    (`DATA/keys/registrations.pending`, pseudonymous ids only), durably;
//! 3. keys, vault entry and password entry are written;
//! 4. the events are appended: committed.
//!
//! A failure before the commit undoes 3. A crash anywhere leaves the journal entry,
//! and the next start settles it against the log ([`Platform::settle`]): no
//! `person.registered` → the provisional keys, vault entry and password entry are
//! removed; registered but the credential lost (a crash can keep a prefix of one
//! commit) → the credential is issued now. A retry of the same sign-up settles
//! any leftover of its e-mail address too, under a lock per address, so an
//! address is never locked out. The "e-mail taken" check counts committed
//! registrations only.
//!
//! Tests drive crashes through [`Platform::inject_registration_faults`]: a hook
//! called after each durable step that can make the step fail (the undo runs) or
//! simulate the process dying there (nothing after it runs).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mebyo_crypto::{IdentityRecord, PersonKeyStatus, Pseudonym};
use mebyo_domain::credential::{Credential, CredentialCommand, CredentialEvent, Holder};
use mebyo_domain::person::{Person, PersonCommand, PersonEvent};
use mebyo_domain::{
    Actor, BlindIndex, CredentialId, Decider, PersonId, Refusal, StaffId, VaultRef,
};
use mebyo_store::{EventStore, ExpectedRevision};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthStore, Subject};
use crate::codec::to_new_event;
use crate::{Outcome, Platform, PlatformError};

/// The durable steps of a registration, in order; a fault hook is called after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStep {
    /// The person is in the journal of pending registrations.
    Journal,
    /// Their DEKs are in the key store.
    Keys,
    /// Their identity is in the vault.
    Vault,
    /// Their password is in the password file (sign-up only).
    Password,
    /// The registration (and a sign-up's credential) is in the log.
    Committed,
}

/// What an injected fault does at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The step fails: the registration undoes what it wrote and reports an error.
    /// (After `Committed` there is nothing to undo: treated as `Crash`.)
    Fail,
    /// The process dies right after the step: nothing after it runs, not even the
    /// undo. The test then drops the platform and opens it again.
    Crash,
}

/// A test's fault hook; production never sets one.
pub type FaultHook = Arc<dyn Fn(RegistrationStep) -> Option<Fault> + Send + Sync>;

/// A self-service sign-up (P2(1), P4.12(1), P4.8(2)).
pub struct SignUp<'a> {
    pub identity: &'a IdentityRecord,
    /// The operations-office staff member whose desk issues the connection
    /// information.
    pub office: &'a StaffId,
    /// The chosen password, already hashed (argon2id PHC string).
    pub password_phc: &'a str,
}

/// What a sign-up created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUp {
    pub person: PersonId,
    pub credential: CredentialId,
}

/// A journal entry: enough to settle the registration at the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingEntry {
    /// A sign-up's credential and the office that issues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<(CredentialId, StaffId)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JournalFile {
    format: u32,
    pending: BTreeMap<PersonId, PendingEntry>,
}

const JOURNAL_FORMAT: u32 = 1;

/// The registrations not known to be settled: in progress, or cut short.
#[derive(Default)]
pub(crate) struct Pending {
    entries: parking_lot::Mutex<BTreeMap<PersonId, PendingEntry>>,
}

impl Pending {
    fn contains(&self, person: &str) -> bool {
        PersonId::new(person).is_ok_and(|p| self.entries.lock().contains_key(&p))
    }

    /// Adds an entry and writes the journal durably before anything else is written.
    fn add(&self, path: &Path, person: &PersonId, e: PendingEntry) -> std::io::Result<()> {
        let mut m = self.entries.lock();
        m.insert(person.clone(), e);
        if let Err(err) = write_journal(path, &m) {
            m.remove(person);
            return Err(err);
        }
        Ok(())
    }

    /// Forgets a settled entry. The file keeps it until the next write, which is
    /// harmless: settling a settled registration changes nothing.
    fn settled(&self, person: &PersonId) {
        self.entries.lock().remove(person);
    }
}

fn write_journal(path: &Path, m: &BTreeMap<PersonId, PendingEntry>) -> std::io::Result<()> {
    let f = JournalFile {
        format: JOURNAL_FORMAT,
        pending: m.clone(),
    };
    mebyo_store::fsio::write_atomic(path, &serde_json::to_vec(&f).expect("json"))
}

fn read_journal(path: &Path) -> Result<BTreeMap<PersonId, PendingEntry>, PlatformError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    let f: JournalFile = serde_json::from_slice(&bytes)
        .map_err(|e| PlatformError::Settings(format!("{} is damaged: {e}", path.display())))?;
    if f.format != JOURNAL_FORMAT {
        return Err(PlatformError::Settings(format!(
            "{}: format {} is not supported",
            path.display(),
            f.format
        )));
    }
    Ok(f.pending)
}

/// Why a registration stopped before its end.
enum Stop {
    /// Nothing is committed: undo what was written.
    Failed(PlatformError),
    /// The commit may be durable, or a simulated crash: leave it to `settle`.
    InDoubt(PlatformError),
}

impl From<PlatformError> for Stop {
    fn from(e: PlatformError) -> Self {
        Stop::Failed(e)
    }
}

impl Platform {
    /// Sets the fault hook of registrations (tests only; see the module doc).
    pub fn inject_registration_faults(
        &self,
        hook: impl Fn(RegistrationStep) -> Option<Fault> + Send + Sync + 'static,
    ) {
        *self.faults.lock() = Some(Arc::new(hook));
    }

    /// Removes the fault hook.
    pub fn clear_registration_faults(&self) {
        *self.faults.lock() = None;
    }

    fn after(&self, step: RegistrationStep) -> Result<(), Stop> {
        let hook = self.faults.lock().clone();
        match hook.and_then(|h| h(step)) {
            None => Ok(()),
            Some(Fault::Fail) if step != RegistrationStep::Committed => {
                Err(Stop::Failed(PlatformError::Injected(step)))
            }
            Some(_) => Err(Stop::InDoubt(PlatformError::Injected(step))),
        }
    }

    /// Registers an individual on their behalf or as an applicant: their keys, their
    /// identity in the vault (under their identity DEK, P4.8(3)), then the
    /// `person.registered` event, which carries only the vault reference and a
    /// blind index of the e-mail. Commits whole or leaves nothing (module doc).
    pub async fn register_person(
        &self,
        actor: &Actor,
        identity: &IdentityRecord,
    ) -> Outcome<PersonId> {
        // The address's lock, as a sign-up takes it: a sign-up settling leftovers
        // of the address must never meet this registration half-way.
        let _one = match identity.email.as_deref() {
            Some(email) => Some(
                self.locks
                    .lock(&format!("email-{}", self.email_token(email)?))
                    .await,
            ),
            None => None,
        };
        Ok(self
            .register(actor, identity, None)
            .await?
            .map(|(person, _)| person))
    }

    /// Self-service sign-up: registration, connection information issued by the
    /// office's desk (P4.12(1)) and the password (P4.8(2)), committed together. An
    /// e-mail address with a committed registration is refused
    /// (`person.email_taken`, P2(1)); leftovers of an earlier attempt with the
    /// same address are settled first, so a cut sign-up can simply be retried.
    pub async fn sign_up(&self, auth: &AuthStore, s: SignUp<'_>) -> Outcome<SignedUp> {
        let Some(email) = s.identity.email.as_deref() else {
            return Ok(Err(Refusal::new(
                "person.email_required",
                mebyo_domain::clause!("P2(1)"),
                "a self-service sign-up needs an e-mail address to sign in with",
            )));
        };
        // One sign-up per address at a time, so that "is it taken?" and the
        // registration cannot interleave with another attempt for it.
        let token = self.email_token(email)?;
        let _one = self.locks.lock(&format!("email-{token}")).await;
        let found = self.vault.lock().find_by_email(email)?;
        for p in found {
            let Ok(person) = PersonId::new(p.as_str()) else {
                continue;
            };
            if self.settle(&person, Some(auth)).await? {
                return Ok(Err(Refusal::new(
                    "person.email_taken",
                    mebyo_domain::clause!("P2(1)"),
                    "this e-mail address is already registered; sign in instead",
                )));
            }
        }
        Ok(self
            .register(
                &Actor::Applicant,
                s.identity,
                Some((auth, s.office, s.password_phc)),
            )
            .await?
            .map(|(person, credential)| SignedUp {
                person,
                credential: credential.expect("a sign-up issues a credential"),
            }))
    }

    /// Whether an e-mail address belongs to a committed registration (not to a
    /// registration in progress or cut short).
    pub async fn email_registered(&self, email: &str) -> Result<bool, PlatformError> {
        let found = self.vault.lock().find_by_email(email)?;
        for p in found {
            if self.pending.contains(p.as_str()) {
                continue;
            }
            if let Ok(person) = PersonId::new(p.as_str())
                && self.registered(&person).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn email_token(&self, email: &str) -> Result<String, PlatformError> {
        let token = self
            .keys
            .with_store(|k| k.blind_index())?
            .index_email(email)?;
        Ok(hex::encode(token.0))
    }

    /// Whether the person's registration is in the log.
    async fn registered(&self, person: &PersonId) -> Result<bool, PlatformError> {
        Ok(!self
            .store
            .read_stream(&person.stream(), 0, 1)
            .await?
            .is_empty())
    }

    async fn register(
        &self,
        actor: &Actor,
        identity: &IdentityRecord,
        signup: Option<(&AuthStore, &StaffId, &str)>,
    ) -> Outcome<(PersonId, Option<CredentialId>)> {
        let person = PersonId::new(self.new_id("p")).expect("generated ids are valid");
        let email_index = match &identity.email {
            Some(email) => Some(BlindIndex::new(self.email_token(email)?).expect("64 hex digits")),
            None => None,
        };
        let cmd = PersonCommand::Register {
            person: person.clone(),
            identity: VaultRef::new(person.as_str()).expect("person ids are vault refs"),
            email_index,
            password: signup.is_some(),
        };
        // Every decision before anything is written: a refusal creates nothing.
        let facts = self.actor_facts(actor).await?;
        let registered = match facts.decide::<Person>(
            &Default::default(),
            &cmd,
            actor,
            &self.config,
            self.now(),
        ) {
            Ok(e) => e,
            Err(r) => return Ok(Err(r)),
        };
        let issue = match signup {
            None => None,
            Some((auth, office, phc)) => {
                match self.decide_issue(&person, office, &registered).await? {
                    Ok((id, events)) => Some((auth, office, phc, id, events)),
                    Err(r) => return Ok(Err(r)),
                }
            }
        };
        let entry = PendingEntry {
            credential: issue
                .as_ref()
                .map(|(_, o, _, id, _)| (id.clone(), (*o).clone())),
        };
        let journal = self.dir.pending_registrations();
        self.pending.add(&journal, &person, entry)?;
        let credential = issue.as_ref().map(|(_, _, _, id, _)| id.clone());
        match self
            .provisional_then_commit(actor, &person, identity, &registered, issue)
            .await
        {
            Ok(()) => {
                self.pending.settled(&person);
                Ok(Ok((person, credential)))
            }
            Err(Stop::Failed(e)) => {
                // Not committed: undo, and forget the entry only if the undo held.
                match self.remove_provisional(&person, signup.map(|(a, _, _)| a)) {
                    Ok(()) => self.pending.settled(&person),
                    Err(u) => tracing::error!(error = %u, person = %person,
                        "undoing a failed registration; the next start finishes it"),
                }
                Err(e)
            }
            Err(Stop::InDoubt(e)) => Err(e),
        }
    }

    /// The office's issue of connection information to `person` as registered by
    /// `registered` (not yet in the log).
    async fn decide_issue(
        &self,
        person: &PersonId,
        office: &StaffId,
        registered: &[PersonEvent],
    ) -> Outcome<(CredentialId, Vec<CredentialEvent>)> {
        let credential = CredentialId::new(self.new_id("cred")).expect("valid id");
        let office = Actor::Staff {
            staff: office.clone(),
        };
        let mut facts = self.actor_facts(&office).await?;
        let state = registered.iter().fold(Default::default(), Person::evolve);
        facts.person = Some(Arc::new(state));
        let cmd = CredentialCommand::Issue {
            credential: credential.clone(),
            holder: Holder::Individual {
                person: person.clone(),
            },
            replaces: None,
        };
        Ok(facts
            .decide::<Credential>(&Default::default(), &cmd, &office, &self.config, self.now())
            .map(|events| (credential, events)))
    }

    /// Steps 3 and 4 of the module doc.
    async fn provisional_then_commit(
        &self,
        actor: &Actor,
        person: &PersonId,
        identity: &IdentityRecord,
        registered: &[PersonEvent],
        issue: Option<(
            &AuthStore,
            &StaffId,
            &str,
            CredentialId,
            Vec<CredentialEvent>,
        )>,
    ) -> Result<(), Stop> {
        use RegistrationStep::*;
        self.after(Journal)?;
        let pseudonym = Pseudonym::new(person.as_str()).map_err(PlatformError::from)?;
        let refs = self
            .keys
            .with_store(|k| self.with_rng(|rng| k.create_person_keys(&pseudonym, rng)))
            .map_err(PlatformError::from)?;
        self.after(Keys)?;
        let dek = self
            .keys
            .dek(&refs.identity.to_string())
            .map_err(PlatformError::from)?;
        self.vault
            .lock()
            .put(&pseudonym, identity, &dek)
            .map_err(PlatformError::from)?;
        self.after(Vault)?;
        if let Some((auth, _, phc, credential, _)) = &issue {
            auth.set_password(
                &Subject::Person(person.clone()),
                phc,
                Some(credential.clone()),
                self.now(),
            )
            .map_err(PlatformError::from)?;
            self.after(Password)?;
        }
        let correlation = self.id128();
        let stream = person.stream();
        let mine = registered
            .iter()
            .map(|e| to_new_event(e, actor, &stream, &self.keys, self.id128(), correlation))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PlatformError::from)?;
        let mut then = Vec::new();
        if let Some((_, office, _, credential, events)) = &issue {
            let office = Actor::Staff {
                staff: (*office).clone(),
            };
            let s = credential.stream();
            let evs = events
                .iter()
                .map(|e| to_new_event(e, &office, &s, &self.keys, self.id128(), correlation))
                .collect::<Result<Vec<_>, _>>()
                .map_err(PlatformError::from)?;
            then.push((s, evs));
        }
        match self
            .store
            .append_then(&stream, ExpectedRevision::NoStream, mine, then)
            .await
        {
            Ok(_) => {}
            // The log failed: the events may be durable all the same. Only the
            // log can tell, after a reopen: leave it to `settle`.
            Err(e @ mebyo_store::AppendError::Store(_)) => return Err(Stop::InDoubt(e.into())),
            Err(e) => return Err(Stop::Failed(e.into())),
        }
        self.after(Committed)
    }

    /// Removes a registration's provisional keys, vault entry and password entry.
    /// Idempotent: what is already gone is skipped.
    fn remove_provisional(
        &self,
        person: &PersonId,
        auth: Option<&AuthStore>,
    ) -> Result<(), PlatformError> {
        let pseudonym = Pseudonym::new(person.as_str())?;
        if let Some(auth) = auth {
            auth.remove(&Subject::Person(person.clone()))?;
        }
        self.keys.forget(person.as_str());
        self.vault.lock().erase(&pseudonym)?;
        if self.keys.with_store(|k| k.status(&pseudonym)) == PersonKeyStatus::Active {
            self.keys.with_store(|k| k.erase_person(&pseudonym))?;
        }
        self.keys.forget(person.as_str());
        Ok(())
    }

    /// Settles a registration that is not in progress against the log: not
    /// registered → its provisional entries go; registered with its sign-up's
    /// credential missing → the credential is issued now. Returns whether the
    /// person is registered.
    async fn settle(
        &self,
        person: &PersonId,
        auth: Option<&AuthStore>,
    ) -> Result<bool, PlatformError> {
        let entry = self.pending.entries.lock().get(person).cloned();
        if !self.registered(person).await? {
            self.remove_provisional(person, auth)?;
            self.pending.settled(person);
            return Ok(false);
        }
        if let Some(PendingEntry {
            credential: Some((credential, office)),
        }) = entry
            && self
                .store
                .read_stream(&credential.stream(), 0, 1)
                .await?
                .is_empty()
        {
            self.complete_credential(person, &credential, &office)
                .await?;
        }
        self.pending.settled(person);
        Ok(true)
    }

    /// Issues a sign-up's credential that a crash cut from its registration's
    /// commit, with the id its password entry already names.
    async fn complete_credential(
        &self,
        person: &PersonId,
        credential: &CredentialId,
        office: &StaffId,
    ) -> Result<(), PlatformError> {
        let cmd = CredentialCommand::Issue {
            credential: credential.clone(),
            holder: Holder::Individual {
                person: person.clone(),
            },
            replaces: None,
        };
        let office = Actor::Staff {
            staff: office.clone(),
        };
        if let Err(r) = self.credential(&office, credential, cmd).await? {
            // The rules say no now (the office lost its role): the person stays
            // registered without connection information, for the office to issue.
            tracing::error!(person = %person, refusal = %r,
                "completing a cut sign-up: the credential was refused");
        }
        Ok(())
    }

    /// At open: settles every registration the journal lists (module doc), then
    /// empties the journal.
    pub(crate) async fn recover_registrations(&self) -> Result<(), PlatformError> {
        let journal = self.dir.pending_registrations();
        let pending = read_journal(&journal)?;
        if pending.is_empty() {
            return Ok(());
        }
        *self.pending.entries.lock() = pending.clone();
        // The password file only if a sign-up is among them; nothing else has it open yet.
        let auth = if pending.values().any(|e| e.credential.is_some()) {
            let auth = AuthStore::open(&self.dir.root)?;
            auth.bind_ledger(self.ledger_count());
            Some(auth)
        } else {
            None
        };
        let mut left = 0;
        for person in pending.keys() {
            match self.settle(person, auth.as_ref()).await {
                Ok(true) => {
                    tracing::info!(person = %person, "a cut registration was committed; completed")
                }
                Ok(false) => {
                    tracing::warn!(person = %person, "a cut registration was not committed; its keys, identity and password were removed")
                }
                Err(e) => {
                    left += 1;
                    tracing::error!(error = %e, person = %person, "settling a cut registration; retried at the next start");
                }
            }
        }
        if left == 0 {
            write_journal(&journal, &self.pending.entries.lock())?;
        }
        Ok(())
    }

    /// People found by e-mail through the blind index, never the plaintext:
    /// only registrations not in progress or cut short.
    pub fn find_by_email(&self, email: &str) -> Result<Vec<PersonId>, PlatformError> {
        // Text that is no e-mail address is nobody's, not a failure: a sign-in
        // with it was a 500 (issue 22 §7).
        if mebyo_crypto::normalize_email(email).is_err() {
            return Ok(Vec::new());
        }
        Ok(self
            .vault
            .lock()
            .find_by_email(email)?
            .into_iter()
            .filter(|p| !self.pending.contains(p.as_str()))
            .filter_map(|p| PersonId::new(p.as_str()).ok())
            .collect())
    }
}
