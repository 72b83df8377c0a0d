//! Application services: the imperative shell around the pure deciders.
//!
//! For each command: load the aggregate's state (from a cache, catching up from
//! the store), load the facts the decision needs from other streams, run the pure
//! `decide`, seal and append the events with optimistic concurrency, and retry
//! on a conflict. A refusal writes nothing and comes back as
//! `Ok(Err(Refusal))`; a storage or key failure is `Err(PlatformError)` — domain
//! refusals are kept apart from failures of the machinery (esrs style).
//!
//! Reads of health data go through [`Platform::read_records`], which records the
//! access (granted or refused) durably before any data leaves (principle 2).
#![forbid(unsafe_code)]

pub mod audit_grants;
pub mod auth;
pub mod codec;
pub mod dirs;
pub mod duties;
pub mod idempotency;
pub mod keyring;
pub mod loss;
pub mod receipt;
pub mod registration;
pub mod signing_keys;
pub mod snapshot;
mod state;
pub mod views;
pub mod world;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use mebyo_crypto::{IdentityRecord, IdentityVault, Kek, KeyStore, Pseudonym};
use mebyo_domain::access::{AccessDecision, AccessRequest, access_record, decide_access};
use mebyo_domain::credential::{Credential, CredentialCommand, CredentialEvent};
use mebyo_domain::person::{Person, PersonCommand, PersonEvent, PersonStatus};
use mebyo_domain::policy::{Policy, PolicyCommand};
use mebyo_domain::provider::{Provider, ProviderCommand};
use mebyo_domain::records::{Origin, RecordCommand, RecordEntry, Records};
use mebyo_domain::staff::{Staff, StaffCommand};
use mebyo_domain::{
    Actor, Config, CredentialId, DomainEvent, Duration, PersonId, ProviderId, Refusal, StaffId,
    Timestamp,
};
use mebyo_store::{Clock, EmbeddedStore, EventStore, ExpectedRevision, Head, Id128};
use parking_lot::Mutex;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

pub use dirs::DataDir;
pub use keyring::KeyRing;
pub use registration::{Fault, RegistrationStep, SignUp, SignedUp};
pub use state::Facts;

use crate::codec::{CodecError, to_new_event};
use crate::keyring::{AUDIT_KEY_OWNER, CREDENTIALS_KEY_OWNER, KeyError};

/// Attempts at one command before giving up on a contended stream.
const APPEND_ATTEMPTS_MAX: usize = 5;

/// What one decide-and-append attempt came to.
enum Attempt<E> {
    /// Decided: the events appended (with the stream's new last revision), or a refusal.
    Decided(Result<Vec<E>, Refusal>, Option<u64>),
    /// Another writer got there first: load again and retry.
    Conflict,
}

/// The outcome of a command: decided (events or refusal), or a failure of the machinery.
pub type Outcome<T> = Result<Result<T, Refusal>, PlatformError>;

/// Named places where a test stops the process as a crash would (issue 19 §2):
/// with `MEBYO_FAULT_POINT=init.after_ledger`, `mebyo init` or `serve` exits
/// with status [`fault::EXIT_STATUS`] at that point, after what it wrote before.
/// An exit, not a panic: no destructor, flush or undo runs, as with SIGKILL
/// (lost unsynced pages are the store's simulated disk's to test, not this).
/// Unset, a point costs one environment lookup, and only set-up steps have one.
pub mod fault {
    pub const VAR: &str = "MEBYO_FAULT_POINT";
    pub const EXIT_STATUS: i32 = 86;

    pub fn point(name: &str) {
        if std::env::var_os(VAR).is_some_and(|v| v == name) {
            std::process::exit(EXIT_STATUS);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0} already holds a ledger; refusing to touch it")]
    AlreadyInitialised(String),
    #[error("no platform at {0} (run `mebyo init --data {0}` first)")]
    NotInitialised(String),
    #[error(
        "{0} holds an interrupted `mebyo init` (init.pending): run `mebyo init` again, or `mebyo serve`, which redoes it"
    )]
    InitInterrupted(String),
    #[error(transparent)]
    Open(#[from] mebyo_store::embedded::OpenError),
    #[error(transparent)]
    Create(#[from] mebyo_store::embedded::CreateError),
    #[error(transparent)]
    Crypto(#[from] mebyo_crypto::CryptoError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Store(#[from] mebyo_store::StoreError),
    #[error(transparent)]
    Append(#[from] mebyo_store::AppendError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("platform settings: {0}")]
    Settings(String),
    /// Another writer (another process: commands of this one wait their turn)
    /// kept changing the stream. Nothing was decided: retry.
    #[error("stream {0} kept changing under concurrent writers; nothing was written, retry")]
    Contention(String),
    /// Files outside the log say it once held more events (issue 19 §3).
    #[error("{0}")]
    LogShorter(String),
    /// `accept-loss --to` must name the log's end as it is now.
    #[error(
        "the ledger holds {head} events, not {to}: nothing accepted (pass --to {head} to accept that its log ends there)"
    )]
    AcceptLossMismatch { head: u64, to: u64 },
    #[error("nothing to accept: no file says the log held more than its {0} events")]
    NothingToAccept(u64),
    /// The key store or the identity vault is older than the ledger (issue 19
    /// §4): a restored or rolled-back copy, refused before anything is served.
    #[error("{0}")]
    FilesBehindLedger(String),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("fault injected after the registration step {0:?} (tests only)")]
    Injected(RegistrationStep),
}

impl PlatformError {
    /// A conflict with a concurrent writer: nothing was written, and the same
    /// request may simply be sent again (web 409 `platform.conflict`, bus
    /// `platform.conflict`).
    pub fn is_conflict(&self) -> bool {
        matches!(self, PlatformError::Contention(_))
    }

    /// The ledger stopped taking writes after an IO failure (issue 19 §5): the
    /// write was not acknowledged, and none will be until a restart.
    pub fn is_ledger_stopped(&self) -> bool {
        use mebyo_store::{AppendError, StoreError};
        matches!(
            self,
            PlatformError::Store(StoreError::Poisoned(_))
                | PlatformError::Append(AppendError::Store(StoreError::Poisoned(_)))
        )
    }
}

/// What [`Platform::check_files_cover_ledger`] says of one file: how many of the
/// ledger's people it lacks, and the first few (pseudonyms, never names).
fn files_behind(file: &Path, what: &str, ids: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut shown: Vec<&str> = ids.iter().take(SHOWN).map(String::as_str).collect();
    if ids.len() > SHOWN {
        shown.push("…");
    }
    format!(
        "{} holds no {what} for {} of the people in the ledger ({})",
        file.display(),
        ids.len(),
        shown.join(", ")
    )
}

/// Settings kept in `DATA/mebyo.json`, written once by `init`, checked at every
/// load ([`Settings::load`], [`Settings::check`]): an error names the file and the
/// field. An unknown field is refused too (a misspelt one would otherwise be
/// silently replaced by its default).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub business_administrator: String,
    /// Longest consent, in days (P4.6(2)).
    pub consent_max_days: i64,
    /// Renewal interval of connection information, in days (P4.12(1)).
    pub credential_renewal_days: i64,
    /// Where backup sets go, relative to the data directory unless absolute
    /// (P4.10). Production puts this on other media.
    #[serde(default = "default_backups")]
    pub backups: String,
}

fn default_backups() -> String {
    "backups".into()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            business_administrator: "ba-0001".into(),
            consent_max_days: 365,
            credential_renewal_days: 365,
            backups: default_backups(),
        }
    }
}

/// Bounds of the settings (issue 19 §7). A consent lasts at least a day and at
/// most ten years (P4.6(2)); connection information is renewed at least once in
/// ten years and lasts at least a day (P4.12(1)). Zero would refuse every
/// consent or expire every credential at once.
pub const CONSENT_MAX_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;
pub const CREDENTIAL_RENEWAL_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;

impl Settings {
    /// The settings file's name in the data directory.
    pub const FILE: &'static str = "mebyo.json";

    /// Reads and checks `root/mebyo.json`; every error names the file (and the
    /// field, when one is at fault).
    pub fn load(root: &Path) -> Result<Settings, PlatformError> {
        let path = root.join(Self::FILE);
        let at = |e: String| PlatformError::Settings(format!("{}: {e}", path.display()));
        let bytes = std::fs::read(&path).map_err(|e| at(e.to_string()))?;
        let settings: Settings = serde_json::from_slice(&bytes).map_err(|e| at(e.to_string()))?;
        settings.check().map_err(at)?;
        Ok(settings)
    }

    /// Checks every field against its bounds; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let days = |field: &str, v: i64, r: &std::ops::RangeInclusive<i64>, clause: &str| {
            if r.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{field} is {v}; it must be from {} to {} days ({clause})",
                    r.start(),
                    r.end()
                ))
            }
        };
        days(
            "consent_max_days",
            self.consent_max_days,
            &CONSENT_MAX_DAYS,
            mebyo_domain::clause!("P4.6(2)"),
        )?;
        days(
            "credential_renewal_days",
            self.credential_renewal_days,
            &CREDENTIAL_RENEWAL_DAYS,
            mebyo_domain::clause!("P4.12(1)"),
        )?;
        StaffId::new(&self.business_administrator)
            .map_err(|e| format!("business_administrator: {e}"))?;
        if self.backups.trim().is_empty() {
            return Err("backups is empty; name a directory".into());
        }
        Ok(())
    }

    fn domain(&self) -> Result<Config, PlatformError> {
        Ok(Config {
            consent_max: Duration::days(self.consent_max_days),
            credential_renewal: Duration::days(self.credential_renewal_days),
            business_administrator: StaffId::new(&self.business_administrator)
                .map_err(|e| PlatformError::Settings(e.to_string()))?,
        })
    }
}

/// Where the key-encryption key comes from.
#[derive(Clone)]
pub enum KekSource {
    /// `DATA/keys/kek` (created by `init`, mode 0600).
    DataDir,
    File(std::path::PathBuf),
    /// Hex in an environment variable's value.
    Hex(String),
}

pub struct Options {
    pub clock: Arc<dyn Clock>,
    /// Seed for ids and keys; `None` draws one from the operating system. Tests
    /// pass a seed so a failure replays exactly (principle 6).
    pub seed: Option<u64>,
    pub kek: KekSource,
    /// Open a log that lost its end, as the operator decided (`mebyo store
    /// accept-loss`); the decision is recorded as an event ([`loss`]).
    pub accept_loss: Option<loss::AcceptLoss>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(mebyo_store::SystemClock),
            seed: None,
            kek: KekSource::DataDir,
            accept_loss: None,
        }
    }
}

pub struct InitReport {
    pub ledger_id: Id128,
    pub kek_id: String,
}

pub struct Platform {
    pub dir: DataDir,
    store: EmbeddedStore,
    keys: Arc<KeyRing>,
    vault: Mutex<IdentityVault>,
    clock: Arc<dyn Clock>,
    rng: Mutex<rand_chacha::ChaCha20Rng>,
    config: Config,
    settings: Settings,
    state: state::Caches,
    /// Commands on one stream take turns in this process (issue 22 §9).
    locks: state::StreamLocks,
    pending: registration::Pending,
    faults: Mutex<Option<registration::FaultHook>>,
    views: Mutex<Option<Arc<views::Views>>>,
    /// Reads refused because the id was never registered: counted, not recorded
    /// (`access_record`), so the noise is still visible to monitoring (P4.4).
    unknown_person_reads: std::sync::atomic::AtomicU64,
    /// The KEK is `DATA/keys/kek`, which [`Platform::rotate_kek`] may replace; an
    /// external one is rotated with the tool that keeps it.
    kek_in_dir: bool,
}

fn load_kek(dir: &DataDir, source: &KekSource) -> Result<Kek, PlatformError> {
    Ok(match source {
        KekSource::DataDir => Kek::load_file(dir.kek())?,
        KekSource::File(p) => Kek::load_file(p)?,
        KekSource::Hex(h) => Kek::from_env_hex(h)?,
    })
}

/// Opens the key store, resuming or rolling back a KEK rotation that a crash
/// interrupted (issue 19 §6), and says which it did (recorded as an event once
/// the ledger is open):
/// - the key store opens only under `kek.new`: it was rewrapped, but the new KEK
///   had not replaced the old one yet. Finish: `kek.new` becomes `kek`.
/// - it opens under `kek`: the rotation stopped before the rewrapped key store
///   replaced the old one. Roll back: `kek.new` goes (`keystore.tmp`, the
///   unfinished rewrap, is removed by `KeyStore::open`). Without this every later
///   rotation failed with "File exists".
fn open_keystore(
    dir: &DataDir,
    source: &KekSource,
) -> Result<(KeyStore, Option<serde_json::Value>), PlatformError> {
    let kek = load_kek(dir, source)?;
    let ours = matches!(source, KekSource::DataDir) && dir.kek_new().exists();
    match KeyStore::open(dir.keystore(), &kek) {
        Err(mebyo_crypto::CryptoError::WrongKek { .. }) if ours => {
            let new = Kek::load_file(dir.kek_new())?;
            let ks = KeyStore::open(dir.keystore(), &new)?;
            tracing::warn!("finishing an interrupted KEK rotation");
            std::fs::rename(dir.kek_new(), dir.kek())?;
            std::fs::File::open(dir.keys())?.sync_all()?;
            let note = serde_json::json!({
                "outcome": "finished",
                "old_kek_id": kek.id().to_hex(),
                "new_kek_id": new.id().to_hex(),
            });
            Ok((ks, Some(note)))
        }
        Ok(ks) if ours => {
            // A partly written kek.new does not load; it is abandoned all the same.
            let abandoned = Kek::load_file(dir.kek_new()).ok().map(|k| k.id().to_hex());
            tracing::warn!(
                "rolling back an interrupted KEK rotation: the key store is still under the old KEK"
            );
            std::fs::remove_file(dir.kek_new())?;
            std::fs::File::open(dir.keys())?.sync_all()?;
            let note = serde_json::json!({
                "outcome": "rolled_back",
                "kek_id": kek.id().to_hex(),
                "abandoned_kek_id": abandoned,
            });
            Ok((ks, Some(note)))
        }
        other => Ok((other?, None)),
    }
}

/// Records what [`open_keystore`] did about an interrupted rotation.
async fn record_rotation_recovery(
    store: &EmbeddedStore,
    mut note: serde_json::Value,
    now_us: i64,
) -> Result<(), PlatformError> {
    note["at"] = serde_json::json!(now_us);
    let payload = serde_json::to_vec(&note).expect("json");
    // No randomness yet at this point of the open: the record's bytes name it.
    let mut id = [0u8; 16];
    id.copy_from_slice(&blake3::hash(&payload).as_bytes()[..16]);
    store
        .append(
            "ops-keys",
            ExpectedRevision::Any,
            vec![mebyo_store::NewEvent::plain(
                "keys.kek_rotation_recovered",
                mebyo_store::Actor::system(),
                id,
                payload,
            )],
        )
        .await?;
    Ok(())
}

fn rng_from(seed: Option<u64>) -> rand_chacha::ChaCha20Rng {
    match seed {
        Some(s) => rand_chacha::ChaCha20Rng::seed_from_u64(s),
        None => rand_chacha::ChaCha20Rng::from_os_rng(),
    }
}

impl Platform {
    /// Creates a new platform in `root`: the ledger, the KEK (unless given), the key
    /// store with the platform's own keys, the identity vault, the settings, and
    /// the ex-officio business administrator (P3.1(1)). Refuses a directory that
    /// already holds a ledger, changing nothing.
    pub async fn init(
        root: &Path,
        settings: Settings,
        opts: Options,
    ) -> Result<InitReport, PlatformError> {
        let dir = DataDir::new(root);
        let interrupted = dir.init_pending().exists();
        if EmbeddedStore::exists(&dir.ledger()) && !interrupted {
            return Err(PlatformError::AlreadyInitialised(
                root.display().to_string(),
            ));
        }
        settings
            .check()
            .map_err(|e| PlatformError::Settings(format!("{}: {e}", Settings::FILE)))?;
        let config = settings.domain()?;
        let mut rng = rng_from(opts.seed);
        // One recoverable step (issue 19 §2): the marker first; an earlier init
        // that left it was cut short, and nothing it wrote was ever acknowledged
        // (the marker goes only after its last step), so its files go and it is
        // done again. The KEK, the checkpoint and backup keys are kept: made
        // again or not, they are the same kind of file, and key material is never
        // deleted on a guess.
        std::fs::create_dir_all(root)?;
        if interrupted {
            tracing::warn!(root = %root.display(), "redoing an interrupted init");
            clear_interrupted_init(&dir)?;
        }
        write_marker(&dir.init_pending())?;
        std::fs::create_dir_all(dir.keys())?;
        set_mode(&dir.keys(), 0o700)?;
        let vault_dir = dir
            .vault()
            .parent()
            .expect("vault has a folder")
            .to_path_buf();
        std::fs::create_dir_all(&vault_dir)?;
        set_mode(&vault_dir, 0o700)?;
        let kek = match &opts.kek {
            KekSource::DataDir if !dir.kek().exists() => Kek::create_file(dir.kek(), &mut rng)?,
            other => load_kek(&dir, other)?,
        };
        let mut keystore = KeyStore::create(dir.keystore(), &kek, &mut rng)?;
        fault::point("init.after_keystore");
        for owner in [AUDIT_KEY_OWNER, CREDENTIALS_KEY_OWNER] {
            keystore.create_person_keys(&Pseudonym::new(owner)?, &mut rng)?;
        }
        IdentityVault::create(dir.vault(), keystore.blind_index()?)?;
        let settings_json = serde_json::to_vec_pretty(&settings).expect("settings serialise");
        write_new_file(&root.join("mebyo.json"), &settings_json)?;
        let mut ledger_id = [0u8; 16];
        rng.fill_bytes(&mut ledger_id);
        EmbeddedStore::create(&dir.ledger(), ledger_id, opts.clock.now_us())?;
        fault::point("init.after_ledger");
        // The checkpoint signing key (auditors verify with its public half) and the
        // backup keys (log key; key-store epoch key that keeps erasure effective in
        // backups, P4.9) belong to the platform from its first moment.
        mebyo_audit::ensure_checkpoint_key(root)
            .map_err(|e| PlatformError::Settings(e.to_string()))?;
        mebyo_backup::ensure_backup_keys(&dir.keys(), &mut rng)
            .map_err(|e| PlatformError::Settings(e.to_string()))?;
        let kek_id = kek.id().to_hex();
        drop(keystore);
        let platform = Platform::open_initialised(
            root,
            Options {
                seed: Some(rng.next_u64()),
                ..opts
            },
        )
        .await?;
        // The head of the system is appointed by the platform itself, ex officio.
        let ba = config.business_administrator.clone();
        platform
            .staff(
                &Actor::System,
                &ba,
                StaffCommand::Appoint {
                    staff: ba.clone(),
                    role: mebyo_domain::Role::BusinessAdministrator,
                },
            )
            .await?
            .map_err(|r| PlatformError::Settings(format!("bootstrap refused: {r}")))?;
        drop(platform);
        remove_marker(&dir.init_pending())?;
        Ok(InitReport { ledger_id, kek_id })
    }

    /// Opens an initialised platform. Refuses a KEK file readable by others and a
    /// wrong KEK, changing nothing (P4.8(1)).
    pub async fn open(root: &Path, opts: Options) -> Result<Platform, PlatformError> {
        Self::check_init_finished(root)?;
        Self::open_initialised(root, opts).await
    }

    /// Refuses a directory whose init was cut short (issue 19 §2): what it holds
    /// was never acknowledged, so nothing that only reads it (opening, `audit
    /// verify`) may present it as a platform.
    pub fn check_init_finished(root: &Path) -> Result<(), PlatformError> {
        if DataDir::new(root).init_pending().exists() {
            return Err(PlatformError::InitInterrupted(root.display().to_string()));
        }
        Ok(())
    }

    /// [`Platform::open`] without the check for an unfinished init: init's own
    /// last step opens the platform it is making.
    async fn open_initialised(root: &Path, opts: Options) -> Result<Platform, PlatformError> {
        let dir = DataDir::new(root);
        if !EmbeddedStore::exists(&dir.ledger()) {
            return Err(PlatformError::NotInitialised(root.display().to_string()));
        }
        let settings = Settings::load(root)?;
        let config = settings.domain()?;
        let (keystore, rotation) = open_keystore(&dir, &opts.kek)?;
        let vault = IdentityVault::open(dir.vault(), keystore.blind_index()?)?;
        let keys = Arc::new(KeyRing::new(keystore));
        let opened = EmbeddedStore::open(
            &dir.ledger(),
            mebyo_store::OpenOptions {
                clock: opts.clock.clone(),
                sealer: Some(keys.clone()),
                accept_loss_to: opts.accept_loss.as_ref().map(|a| a.to),
                ..mebyo_store::OpenOptions::default()
            },
        );
        let (store, mut evidence) = match opened {
            Ok(o) => (
                o.store,
                o.accepted_loss_from
                    .map(loss::clean_close)
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
            Err(mebyo_store::embedded::OpenError::Shorter {
                count,
                clean_close_count,
                ..
            }) => {
                let mut evidence = vec![loss::clean_close(clean_close_count)];
                evidence.extend(
                    loss::platform_evidence(&dir, count).map_err(PlatformError::LogShorter)?,
                );
                return Err(match &opts.accept_loss {
                    Some(a) if a.to != count => PlatformError::AcceptLossMismatch {
                        head: count,
                        to: a.to,
                    },
                    _ => PlatformError::LogShorter(loss::describe(root, count, &evidence)),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let head = store.head().count;
        evidence.extend(loss::platform_evidence(&dir, head).map_err(PlatformError::LogShorter)?);
        match &opts.accept_loss {
            None if evidence.is_empty() => {}
            None => {
                return Err(PlatformError::LogShorter(loss::describe(
                    root, head, &evidence,
                )));
            }
            Some(a) if a.to != head => {
                return Err(PlatformError::AcceptLossMismatch { head, to: a.to });
            }
            Some(_) if evidence.is_empty() => return Err(PlatformError::NothingToAccept(head)),
            Some(a) => loss::accept(&store, &dir, a, &evidence, opts.clock.now_us()).await?,
        }
        if let Some(note) = rotation {
            record_rotation_recovery(&store, note, opts.clock.now_us()).await?;
        }
        let platform = Platform {
            dir,
            store,
            keys,
            vault: Mutex::new(vault),
            clock: opts.clock,
            rng: Mutex::new(rng_from(opts.seed)),
            config,
            settings,
            state: state::Caches::default(),
            locks: state::StreamLocks::default(),
            pending: Default::default(),
            faults: Mutex::new(None),
            views: Mutex::new(None),
            unknown_person_reads: std::sync::atomic::AtomicU64::new(0),
            kek_in_dir: matches!(opts.kek, KekSource::DataDir),
        };
        // With the ledger's lock held: no other process is registering anyone.
        platform.recover_registrations().await?;
        platform.check_files_cover_ledger().await?;
        platform.check_password_file().await?;
        Ok(platform)
    }

    /// The newest signed checkpoint as published beside the ledger
    /// (`DATA/checkpoints/latest.note`, written once durable in the log): a C2SP
    /// signed note, no personal data, for `GET /checkpoint` (issue 19 §8).
    pub fn published_checkpoint(&self) -> Result<Option<String>, PlatformError> {
        mebyo_audit::read_published_note(&mebyo_audit::published_path(&self.dir.root))
            .map_err(|e| PlatformError::Io(std::io::Error::other(e)))
    }

    /// The ledger's event count, for the password file's binding
    /// ([`auth::AuthStore::bind_ledger`]).
    pub fn ledger_count(&self) -> auth::LedgerCount {
        let store = self.store.clone();
        Arc::new(move || store.head().count)
    }

    /// Issue 19 §4 (P4.8(2), P4.10): the password file is bound to the ledger by
    /// the count it last saw. A file that saw more than the ledger holds is from
    /// another ledger or a later one; and every person registered with a password
    /// (`person.registered`'s `password`, a self-service sign-up) whose
    /// connection information in force changed since must have their entry, or
    /// the file is an older copy and those people would be told their password
    /// is wrong. Only credentials changed since the file's last write
    /// are read (for a current file, about none). Not caught: an older copy that
    /// has every account but an older password of one (a password change has no
    /// event to compare with).
    async fn check_password_file(&self) -> Result<(), PlatformError> {
        use mebyo_domain::credential::{CredentialStatus, Holder};
        let auth = auth::AuthStore::open(&self.dir.root)?;
        let (since, head) = (auth.ledger_count(), self.store.head().count);
        let path = auth::AuthStore::dir(&self.dir.root).join("passwords.json");
        if since > head {
            return Err(PlatformError::FilesBehindLedger(format!(
                "{} was last written when the ledger held {since} events, but it holds {head}: the file belongs to another or a later ledger; put back the copy that goes with this ledger, or restore the whole data directory from one backup set (P4.8(2), P4.10); nothing was changed",
                path.display()
            )));
        }
        let mut missing = Vec::new();
        for stream in self.store.streams_changed_since("credential-", since) {
            let Ok(id) = CredentialId::new(&stream["credential-".len()..]) else {
                continue;
            };
            let c = self.credential_state(&id).await?;
            let (Some(Holder::Individual { person }), CredentialStatus::Active) =
                (c.holder.clone(), c.status)
            else {
                continue;
            };
            let p = self.person_state(&person).await?;
            if p.password
                && p.status != PersonStatus::Erased
                && !auth.contains(&auth::Subject::Person(person.clone()))
            {
                missing.push(person.to_string());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(PlatformError::FilesBehindLedger(format!(
            "{}. The file is older than the ledger (a restored or rolled-back copy): put back the copy that goes with this ledger, or restore the whole data directory from one backup set (P4.8(2), P4.10); nothing was changed",
            files_behind(&path, "passwords", &missing)
        )))
    }

    /// Issue 19 §4 (P4.8(3), P4.10): the key store and the identity vault are
    /// files of their own, apart from the log because identity and health data
    /// live in separate areas (P4.8(3)),
    /// so an older copy of either (a restored volume, a rolled-back snapshot)
    /// would start and then tell people their data is gone. Every person the
    /// ledger holds must have keys in the key store (or its tombstone: erased),
    /// and an identity in the vault unless erased. Checked from the store's
    /// stream index in memory and the two files' own maps: no scan of the log.
    /// (The password file is not checked: the ledger does not say who has one.)
    async fn check_files_cover_ledger(&self) -> Result<(), PlatformError> {
        use mebyo_crypto::PersonKeyStatus;
        let (mut no_keys, mut no_identity) = (Vec::new(), Vec::new());
        for stream in self.store.streams_with_prefix("person-") {
            let id = &stream["person-".len()..];
            let Ok(pseudonym) = Pseudonym::new(id) else {
                continue;
            };
            match self.keys.with_store(|k| k.status(&pseudonym)) {
                PersonKeyStatus::Unknown => no_keys.push(id.to_string()),
                PersonKeyStatus::Erased => {}
                PersonKeyStatus::Active if !self.vault.lock().contains(&pseudonym) => {
                    no_identity.push(id.to_string())
                }
                PersonKeyStatus::Active => {}
            }
        }
        // An erasure cut between the vault's step and the key store's leaves an
        // erased person's keys behind: not a rolled-back vault.
        let mut behind = Vec::new();
        for id in no_identity {
            let person =
                PersonId::new(id.as_str()).map_err(|e| PlatformError::Settings(e.to_string()))?;
            if self.person_state(&person).await?.status != PersonStatus::Erased {
                behind.push(id);
            }
        }
        let mut problems = Vec::new();
        if !no_keys.is_empty() {
            problems.push(files_behind(&self.dir.keystore(), "keys", &no_keys));
        }
        if !behind.is_empty() {
            problems.push(files_behind(&self.dir.vault(), "identity", &behind));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(PlatformError::FilesBehindLedger(format!(
            "{}. The file is older than the ledger (a restored or rolled-back copy): put back the copy that goes with this ledger, or restore the whole data directory from one backup set (P4.8(3), P4.10); nothing was changed",
            problems.join("; ")
        )))
    }

    /// Starts the live read models (once; later calls return the same). Servers
    /// call this; one-shot commands do not pay for a replay they do not need.
    ///
    /// The models start from the sealed snapshot in the data directory when it
    /// matches the log, and are saved by [`views::SnapshotPolicy::default`].
    pub fn start_views(&self) -> Arc<views::Views> {
        self.start_views_with(Some(views::SnapshotPolicy::default()))
    }

    /// [`Platform::start_views`] with another snapshot policy, or none (always
    /// replay, never write the file).
    pub fn start_views_with(&self, policy: Option<views::SnapshotPolicy>) -> Arc<views::Views> {
        let mut v = self.views.lock();
        v.get_or_insert_with(|| {
            views::start(
                self.store.clone(),
                self.keys.clone(),
                policy.map(|p| (snapshot::path(&self.dir.root), p)),
            )
        })
        .clone()
    }

    /// Saves the live models' snapshot now (at shutdown, so the next start is
    /// quick). Blocking; `None` when views are not started or nothing is new.
    pub fn save_views_snapshot(&self) -> Result<Option<views::SnapshotSaved>, String> {
        match self.views() {
            Some(v) => v.save_snapshot(),
            None => Ok(None),
        }
    }

    /// The live read models, if started.
    pub fn views(&self) -> Option<Arc<views::Views>> {
        self.views.lock().clone()
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }
    /// The business administrator named in `mebyo.json` must be the one the
    /// ledger appointed (P3.1(1)): a start with anyone else would refuse every
    /// privileged act, or act for no one. Servers check this once set-up is done.
    pub async fn check_business_administrator(&self) -> Result<(), PlatformError> {
        let ba = &self.config.business_administrator;
        let state = self.staff_state(ba).await?;
        if state
            .roles
            .contains(&mebyo_domain::staff::Role::BusinessAdministrator)
        {
            return Ok(());
        }
        Err(PlatformError::Settings(format!(
            "{}: business_administrator is {ba}, but no staff member of that id holds the business administrator role in the ledger (P3.1(1))",
            self.dir.root.join(Settings::FILE).display()
        )))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The backup directory (P4.10).
    pub fn backups_dir(&self) -> std::path::PathBuf {
        self.dir.root.join(&self.settings.backups)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn head(&self) -> Head {
        self.store.head()
    }
    /// Why the ledger stopped taking writes, if it has (see
    /// [`EmbeddedStore::stopped`]).
    pub fn ledger_stopped(&self) -> Option<String> {
        self.store.stopped()
    }
    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.now_us())
    }

    pub(crate) fn id128(&self) -> Id128 {
        let mut id = [0u8; 16];
        self.rng.lock().fill_bytes(&mut id);
        id
    }

    /// A fresh pseudonymous id: a prefix and 16 random hex digits. Random, not
    /// sequential, so ids reveal nothing about when or in what order people joined.
    pub fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:016x}", self.rng.lock().next_u64())
    }

    /// The id of a new thing a request creates: derived from `scope` (whose it
    /// is) and the request's idempotency key when it has one, so a retry names
    /// the same thing (issue 19 §5, P2(1)); drawn like [`Platform::new_id`]
    /// otherwise. Both have the same shape.
    pub fn id_for(&self, prefix: &str, scope: &str, key: Option<&str>) -> String {
        match key {
            Some(k) => idempotency::derived_id(prefix, scope, k),
            None => self.new_id(prefix),
        }
    }

    /// Runs the injected random source (key generation).
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut rand_chacha::ChaCha20Rng) -> T) -> T {
        f(&mut self.rng.lock())
    }

    // ---- commands -----------------------------------------------------------------

    pub async fn person(
        &self,
        actor: &Actor,
        person: &PersonId,
        cmd: PersonCommand,
    ) -> Outcome<Vec<PersonEvent>> {
        let stream = person.stream();
        let mut facts = self.actor_facts(actor).await?;
        if let PersonCommand::GrantConsent { provider, .. } = &cmd {
            facts.provider = Some(self.provider_state(provider).await?);
        }
        if let PersonCommand::AcceptPolicy { .. } | PersonCommand::GrantConsent { .. } = &cmd {
            facts.policy = self.policy_in_force().await?.map(Arc::new);
        }
        self.execute::<Person>(&stream, actor, &cmd, &facts).await
    }

    pub async fn provider(
        &self,
        actor: &Actor,
        provider: &ProviderId,
        cmd: ProviderCommand,
    ) -> Outcome<Vec<mebyo_domain::provider::ProviderEvent>> {
        let facts = self.actor_facts(actor).await?;
        self.execute::<Provider>(&provider.stream(), actor, &cmd, &facts)
            .await
    }

    pub async fn credential(
        &self,
        actor: &Actor,
        credential: &CredentialId,
        cmd: CredentialCommand,
    ) -> Outcome<Vec<CredentialEvent>> {
        let mut facts = self.actor_facts(actor).await?;
        if let CredentialCommand::Issue {
            holder, replaces, ..
        } = &cmd
        {
            match holder {
                mebyo_domain::credential::Holder::Provider { provider, .. } => {
                    facts.provider = Some(self.provider_state(provider).await?)
                }
                mebyo_domain::credential::Holder::Individual { person } => {
                    facts.person = Some(self.person_state(person).await?)
                }
            }
            if let Some(old) = replaces {
                facts.replaced = Some(self.credential_state(old).await?);
            }
        }
        if let CredentialCommand::Revoke { .. } = &cmd {
            // P4.13(2): improper handling needs the guidance on the holder's record.
            match self.credential_state(credential).await?.holder.clone() {
                Some(mebyo_domain::credential::Holder::Provider { provider, .. }) => {
                    facts.provider = Some(self.provider_state(&provider).await?)
                }
                Some(mebyo_domain::credential::Holder::Individual { person }) => {
                    facts.person = Some(self.person_state(&person).await?)
                }
                None => {}
            }
        }
        self.execute::<Credential>(&credential.stream(), actor, &cmd, &facts)
            .await
    }

    pub async fn staff(
        &self,
        actor: &Actor,
        staff: &StaffId,
        cmd: StaffCommand,
    ) -> Outcome<Vec<mebyo_domain::staff::StaffEvent>> {
        let facts = self.actor_facts(actor).await?;
        self.execute::<Staff>(&staff.stream(), actor, &cmd, &facts)
            .await
    }

    pub async fn policy(
        &self,
        actor: &Actor,
        cmd: PolicyCommand,
    ) -> Outcome<Vec<mebyo_domain::policy::PolicyEvent>> {
        let facts = self.actor_facts(actor).await?;
        self.execute::<Policy>(state::POLICY_STREAM, actor, &cmd, &facts)
            .await
    }

    pub async fn records(
        &self,
        actor: &Actor,
        person: &PersonId,
        cmd: RecordCommand,
    ) -> Outcome<Vec<mebyo_domain::records::RecordEvent>> {
        let mut facts = self.actor_facts(actor).await?;
        facts.person = Some(self.person_state(person).await?);
        self.execute::<Records>(&mebyo_domain::records::stream(person), actor, &cmd, &facts)
            .await
    }

    /// As [`Self::records`], and in the same durable commit, right after the
    /// record's events, the event `then` makes of the decision — for the bus, the
    /// answer that reports it, kept for retries. One commit instead of two in
    /// sequence, and never the answer without the fact (`EmbeddedStore::
    /// append_then`). `then` sees every attempt's decision (a conflict decides
    /// again); after a refusal or a no-op its event is appended alone.
    pub async fn records_then<E: DomainEvent>(
        &self,
        actor: &Actor,
        person: &PersonId,
        cmd: RecordCommand,
        mut then: impl FnMut(
            &Result<Vec<mebyo_domain::records::RecordEvent>, Refusal>,
        ) -> Option<(String, Actor, E)>,
    ) -> Outcome<Vec<mebyo_domain::records::RecordEvent>> {
        use mebyo_domain::Decider;
        let mut facts = self.actor_facts(actor).await?;
        facts.person = Some(self.person_state(person).await?);
        let stream = mebyo_domain::records::stream(person);
        let _turn = self.locks.lock(&stream).await;
        for _ in 0..APPEND_ATTEMPTS_MAX {
            let (revision, state) = self.load_shared::<Records>(&stream).await?;
            let decided = facts.decide::<Records>(&state, &cmd, actor, &self.config, self.now());
            let extra = then(&decided);
            let events = match decided {
                Ok(events) if !events.is_empty() => events,
                other => {
                    if let Some((s, a, e)) = extra {
                        self.append_one(&s, &a, &e).await?;
                    }
                    return Ok(other);
                }
            };
            let correlation = self.id128();
            let mut new = Vec::with_capacity(events.len());
            for e in &events {
                new.push(to_new_event(
                    e,
                    actor,
                    &stream,
                    &self.keys,
                    self.id128(),
                    correlation,
                )?);
            }
            let mut more = Vec::new();
            if let Some((s, a, e)) = &extra {
                let ev = to_new_event(e, a, s, &self.keys, self.id128(), correlation)?;
                more.push((s.clone(), vec![ev]));
            }
            let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
            match self.store.append_then(&stream, expected, new, more).await {
                Ok(out) => {
                    // As `execute`: evolve the cached state in place.
                    let cache = <Records as state::Cached>::cache(&self.state);
                    drop(cache.take(&stream));
                    let state = events
                        .iter()
                        .fold(Arc::unwrap_or_clone(state), Records::evolve);
                    cache.put(&stream, out.last_revision, Arc::new(state));
                    return Ok(Ok(events));
                }
                Err(mebyo_store::AppendError::WrongExpectedRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PlatformError::Contention(stream))
    }

    // ---- services -----------------------------------------------------------------

    /// A person's identity record, decrypted from the vault. Only for the person
    /// themselves or the office; callers check who asks.
    pub fn identity(&self, person: &PersonId) -> Result<Option<IdentityRecord>, PlatformError> {
        let pseudonym = Pseudonym::new(person.as_str())?;
        let vault = self.vault.lock();
        if !vault.contains(&pseudonym) {
            return Ok(None);
        }
        let refs = match self.keys.with_store(|k| k.key_refs(&pseudonym)) {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        let dek = self.keys.dek(&refs.identity.to_string())?;
        Ok(Some(vault.get(&pseudonym, &dek)?))
    }

    /// Reads refused since start because the person id was never registered.
    pub fn unknown_person_reads(&self) -> u64 {
        self.unknown_person_reads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A consent-gated read (P4.6(2)). The decision and the `access.recorded` event
    /// come first; the event is durable before any record is returned, and a
    /// refusal returns nothing — the same refusal whether or not data exists.
    pub async fn read_records(&self, req: &AccessRequest) -> Outcome<Vec<RecordEntry>> {
        Ok(self
            .read_records_shared(req)
            .await?
            .map(|r| r.iter().cloned().collect()))
    }

    /// As [`Self::read_records`], without copying the records: the hot path for
    /// servers that serialise them straight into a response.
    pub async fn read_records_shared(&self, req: &AccessRequest) -> Outcome<SharedRecords> {
        let now = self.now();
        let facts = self.actor_facts(&req.actor).await?;
        let (revision, person) = self.load_shared::<Person>(&req.person.stream()).await?;
        let decision = decide_access(
            req,
            &person,
            facts.provider.as_deref(),
            facts.credential.as_deref(),
            now,
        );
        // A never-registered id is refused (a default person grants nothing) and
        // leaves no record: no stream per made-up id (P4.8(3)).
        match access_record(req, &decision, revision.is_some(), now) {
            // Fail closed (principle 2): the access is on disk before any data leaves.
            Some(event) => {
                self.append_one(&format!("access-{}", req.person), &req.actor, &event)
                    .await?
            }
            None => {
                self.unknown_person_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        match decision {
            AccessDecision::Refused(r) => Ok(Err(r)),
            AccessDecision::Granted {
                categories,
                medical_origin,
                ..
            } => {
                let state = self
                    .load_shared::<Records>(&mebyo_domain::records::stream(&req.person))
                    .await?
                    .1;
                // The filter is kept, not its result: serving straight from the
                // shared state costs no copy of record ids per read.
                let filter = RecordFilter {
                    categories,
                    period: req.period,
                    medical_origin,
                };
                Ok(Ok(SharedRecords { state, filter }))
            }
        }
    }

    /// Cryptographic erase of a withdrawn person (P4.9): the witnessed
    /// `person.erasure_completed` event, then the person's DEKs are destroyed and
    /// their vault entry removed, then a record of the erasure (pseudonymous, under
    /// the platform audit key so it outlives the person) names the witness.
    pub async fn erase(
        &self,
        person: &PersonId,
        witness: &StaffId,
    ) -> Outcome<mebyo_crypto::ErasureReceipt> {
        let actor = Actor::Staff {
            staff: witness.clone(),
        };
        if let Err(r) = self
            .person(&actor, person, PersonCommand::ConfirmErasure)
            .await?
        {
            return Ok(Err(r));
        }
        let pseudonym = Pseudonym::new(person.as_str())?;
        self.keys.forget(person.as_str());
        self.vault.lock().erase(&pseudonym)?;
        let receipt = self.keys.with_store(|k| k.erase_person(&pseudonym))?;
        // Again after the erase: a read racing with it may have cached the DEK
        // between the first forget and the key store's rewrite.
        self.keys.forget(person.as_str());
        self.state.forget_person(person);
        let record = ErasureRecord {
            person: person.clone(),
            witness: witness.clone(),
            destroyed_keys: receipt.destroyed.iter().map(|k| k.to_string()).collect(),
            kek_id: receipt.kek_id.to_hex(),
            keystore_digest: receipt.store_digest.clone(),
            at: self.now(),
        };
        self.append_one("ops-erasures", &actor, &record).await?;
        // Older key-store backups still hold the erased person's wrapped DEKs: a new
        // backup epoch makes them unreadable (crypto-shredded) and takes a fresh
        // key-store backup without the person (P4.9 reaches into backups).
        let rotated = mebyo_backup::jobs::rotate_epoch(
            &self.store,
            self.dir.root.clone(),
            self.backups_dir(),
            mebyo_backup::StartedBy::Operator(witness.as_str().to_string()),
            self.clock.clone(),
            Default::default(),
        )
        .await;
        if let Err(e) = rotated.result {
            // The erasure itself stands (the live keys are gone); the failed
            // rotation is recorded as backup.failed and must be retried.
            tracing::error!(error = %e, "backup epoch rotation after erasure failed; retry with `mebyo backup rotate-epoch`");
        }
        Ok(Ok(receipt))
    }

    /// KEK rotation (`mebyo keys rotate`): a new KEK is written to `keys/kek.new`,
    /// every DEK is rewrapped under it (no event changes), then `kek.new` replaces
    /// `kek`; a crash between the two steps is finished at the next open. Records
    /// that it happened. Only for a platform whose KEK lives in the data directory.
    /// Who may is `domain::duty` (`Duty::KekRotation`, P4.8(1)).
    pub async fn rotate_kek(&self, by: &Actor) -> Outcome<mebyo_crypto::RotationReport> {
        if let Err(r) = self
            .authorise(by, mebyo_domain::duty::Duty::KekRotation)
            .await?
        {
            return Ok(Err(r));
        }
        if !self.kek_in_dir {
            return Err(PlatformError::Settings(
                "the KEK lives outside DIR/keys; rotate it with the tool that keeps it".into(),
            ));
        }
        let new_kek = self.with_rng(|rng| Kek::create_file(self.dir.kek_new(), rng))?;
        let report = match self.keys.with_store(|k| k.rotate_kek(&new_kek)) {
            Ok(r) => r,
            Err(e) => {
                // Nothing was rewrapped: the new key is useless, remove it.
                let _ = std::fs::remove_file(self.dir.kek_new());
                return Err(e.into());
            }
        };
        std::fs::rename(self.dir.kek_new(), self.dir.kek())?;
        std::fs::File::open(self.dir.keys())?.sync_all()?;
        let ev = serde_json::json!({
            "old_kek_id": report.old_kek_id.to_hex(),
            "new_kek_id": report.new_kek_id.to_hex(),
            "persons": report.persons,
            "rewrapped_deks": report.rewrapped_deks,
            "at": self.now().0,
        });
        let out = self
            .store
            .append(
                "ops-keys",
                ExpectedRevision::Any,
                vec![mebyo_store::NewEvent::plain(
                    "keys.kek_rotated",
                    codec::store_actor(by),
                    self.id128(),
                    serde_json::to_vec(&ev).expect("json"),
                )],
            )
            .await?;
        receipt::note(&out, 1);
        Ok(Ok(report))
    }

    /// Appends one event to a stream whatever it holds (audit trails).
    async fn append_one<E: DomainEvent>(
        &self,
        stream: &str,
        actor: &Actor,
        event: &E,
    ) -> Result<(), PlatformError> {
        let id = self.id128();
        let ev = to_new_event(event, actor, stream, &self.keys, id, id)?;
        let out = self
            .store
            .append(stream, ExpectedRevision::Any, vec![ev])
            .await?;
        receipt::note(&out, 1);
        Ok(())
    }

    /// Runs any decider against its stream without the state cache: for
    /// aggregates defined outside the core domain (operations: incidents,
    /// maintenance, media). Same guarantees as the built-in commands.
    pub async fn execute_uncached<D: mebyo_domain::Decider>(
        &self,
        stream: &str,
        actor: &Actor,
        cmd: &D::Command,
        facts: &Facts,
    ) -> Outcome<Vec<D::Event>> {
        let _turn = self.locks.lock(stream).await;
        for _ in 0..APPEND_ATTEMPTS_MAX {
            let (revision, state) = self
                .fold_stream::<D>(stream, None, D::State::default())
                .await?;
            match self
                .decide_and_append::<D>(stream, actor, cmd, facts, &state, revision)
                .await?
            {
                Attempt::Decided(outcome, _) => return Ok(outcome),
                Attempt::Conflict => continue,
            }
        }
        Err(PlatformError::Contention(stream.to_string()))
    }

    /// One attempt: decide against `state` (at `revision`), seal and append with
    /// optimistic concurrency. Shared by every command path.
    async fn decide_and_append<D: mebyo_domain::Decider>(
        &self,
        stream: &str,
        actor: &Actor,
        cmd: &D::Command,
        facts: &Facts,
        state: &D::State,
        revision: Option<u64>,
    ) -> Result<Attempt<D::Event>, PlatformError> {
        let events = match facts.decide::<D>(state, cmd, actor, &self.config, self.now()) {
            Ok(e) => e,
            Err(r) => return Ok(Attempt::Decided(Err(r), None)),
        };
        if events.is_empty() {
            return Ok(Attempt::Decided(Ok(events), None));
        }
        let correlation = self.id128();
        let mut new = Vec::with_capacity(events.len());
        for e in &events {
            new.push(to_new_event(
                e,
                actor,
                stream,
                &self.keys,
                self.id128(),
                correlation,
            )?);
        }
        let expected = revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        match self.store.append(stream, expected, new).await {
            Ok(out) => {
                receipt::note(&out, events.len());
                Ok(Attempt::Decided(Ok(events), Some(out.last_revision)))
            }
            Err(mebyo_store::AppendError::WrongExpectedRevision { .. }) => Ok(Attempt::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Folds a stream's events after `after` onto `state` (decrypting; events of an
    /// erased person are unreadable by design, P4.9, and are skipped).
    async fn fold_stream<D: mebyo_domain::Decider>(
        &self,
        stream: &str,
        after: Option<u64>,
        mut state: D::State,
    ) -> Result<(Option<u64>, D::State), PlatformError> {
        let mut revision = after;
        loop {
            let from = revision.map_or(0, |r| r + 1);
            let page = self.store.read_stream(stream, from, 512).await?;
            if page.is_empty() {
                return Ok((revision, state));
            }
            for env in &page {
                if let codec::Decoded::Event(e) = codec::decode::<D::Event>(env, &self.keys)? {
                    state = D::evolve(state, &e);
                }
                revision = Some(env.stream_revision);
            }
        }
    }

    /// The facts about an actor that decisions need (their staff record, or their
    /// credential and provider).
    pub async fn facts_for(&self, actor: &Actor) -> Result<Facts, PlatformError> {
        self.actor_facts(actor).await
    }

    /// Appends one event (sealed if person-related) to a stream whatever it holds.
    pub async fn record<E: DomainEvent>(
        &self,
        stream: &str,
        actor: &Actor,
        event: &E,
    ) -> Result<(), PlatformError> {
        self.append_one(stream, actor, event).await
    }

    /// Decide and append, retrying when another writer got there first.
    async fn execute<D: state::Cached>(
        &self,
        stream: &str,
        actor: &Actor,
        cmd: &D::Command,
        facts: &Facts,
    ) -> Outcome<Vec<D::Event>> {
        // Load, decide and append without another command of this process on the
        // stream in between: the optimistic check is then only for other processes.
        let _turn = self.locks.lock(stream).await;
        for _ in 0..APPEND_ATTEMPTS_MAX {
            // Shared, not copied: a person's record history can be large, and most
            // commands are refused or add one event.
            let (revision, state) = self.load_shared::<D>(stream).await?;
            match self
                .decide_and_append::<D>(stream, actor, cmd, facts, &state, revision)
                .await?
            {
                Attempt::Decided(Ok(events), Some(last_revision)) => {
                    // Evolve in place when nobody else holds the state: take it out of
                    // the cache so ours is the only reference, and no copy is made.
                    let cache = D::cache(&self.state);
                    drop(cache.take(stream));
                    let state = events.iter().fold(Arc::unwrap_or_clone(state), D::evolve);
                    cache.put(stream, last_revision, Arc::new(state));
                    return Ok(Ok(events));
                }
                Attempt::Decided(outcome, _) => return Ok(outcome),
                Attempt::Conflict => continue,
            }
        }
        Err(PlatformError::Contention(stream.to_string()))
    }

    /// The state of `stream`, shared with the cache.
    async fn shared<D: state::Cached>(&self, stream: &str) -> Result<Arc<D::State>, PlatformError> {
        Ok(self.load_shared::<D>(stream).await?.1)
    }

    /// An aggregate's state and last revision: the cached state, caught up with
    /// anything appended since, shared with the cache (never copied here).
    async fn load_shared<D: state::Cached>(
        &self,
        stream: &str,
    ) -> Result<(Option<u64>, Arc<D::State>), PlatformError> {
        let (mut revision, mut state) = D::cache(&self.state)
            .get(stream)
            .unwrap_or((None, Arc::new(D::State::default())));
        let mut from = revision.map_or(0, |r| r + 1);
        loop {
            let page = self.store.read_stream(stream, from, 512).await?;
            if page.is_empty() {
                break;
            }
            for env in &page {
                match codec::decode::<D::Event>(env, &self.keys)? {
                    codec::Decoded::Event(e) => {
                        state = Arc::new(D::evolve(Arc::unwrap_or_clone(state), &e))
                    }
                    // An erased person's history is unreadable by design (P4.9).
                    codec::Decoded::Erased => {}
                }
                revision = Some(env.stream_revision);
            }
            from = revision.map_or(0, |r| r + 1);
        }
        if let Some(r) = revision {
            D::cache(&self.state).put(stream, r, state.clone());
        }
        Ok((revision, state))
    }

    async fn actor_facts(&self, actor: &Actor) -> Result<Facts, PlatformError> {
        let mut f = Facts::default();
        match actor {
            Actor::Staff { staff } => f.staff = Some(self.staff_state(staff).await?),
            Actor::Individual { credential, .. } => {
                f.credential = Some(self.credential_state(credential).await?)
            }
            Actor::Provider {
                provider,
                credential,
            } => {
                f.credential = Some(self.credential_state(credential).await?);
                f.provider = Some(self.provider_state(provider).await?);
            }
            Actor::Applicant | Actor::System => {}
        }
        Ok(f)
    }

    // The states below are the cache's own, shared (`Arc`): a caller that only
    // looks must not pay for copying a person's consents or record history.
    pub async fn person_state(
        &self,
        person: &PersonId,
    ) -> Result<Arc<mebyo_domain::PersonState>, PlatformError> {
        self.shared::<Person>(&person.stream()).await
    }
    pub async fn provider_state(
        &self,
        provider: &ProviderId,
    ) -> Result<Arc<mebyo_domain::ProviderState>, PlatformError> {
        self.shared::<Provider>(&provider.stream()).await
    }
    pub async fn credential_state(
        &self,
        credential: &CredentialId,
    ) -> Result<Arc<mebyo_domain::CredentialState>, PlatformError> {
        self.shared::<Credential>(&credential.stream()).await
    }
    pub async fn staff_state(
        &self,
        staff: &StaffId,
    ) -> Result<Arc<mebyo_domain::StaffState>, PlatformError> {
        self.shared::<Staff>(&staff.stream()).await
    }
    /// A staff member's record as it stood before global position `position`: what
    /// an act recorded there was decided against (an auditor key grant is checked
    /// at each use against its grantor then, not now). Not cached: rarely asked.
    pub async fn staff_state_before(
        &self,
        staff: &StaffId,
        position: u64,
    ) -> Result<mebyo_domain::StaffState, PlatformError> {
        let stream = staff.stream();
        let (mut state, mut from) = (mebyo_domain::StaffState::default(), 0);
        loop {
            let page = self.store.read_stream(&stream, from, 512).await?;
            let Some(last) = page.last() else { break };
            from = last.stream_revision + 1;
            for env in page.iter().take_while(|e| e.position < position) {
                if let codec::Decoded::Event(e) = codec::decode(env, &self.keys)? {
                    state = mebyo_domain::staff::evolve(state, &e);
                }
            }
            if last.position >= position {
                break;
            }
        }
        Ok(state)
    }
    pub async fn records_state(
        &self,
        person: &PersonId,
    ) -> Result<Arc<mebyo_domain::records::RecordState>, PlatformError> {
        self.shared::<Records>(&mebyo_domain::records::stream(person))
            .await
    }
    pub async fn policy_in_force(
        &self,
    ) -> Result<Option<mebyo_domain::PolicyVersion>, PlatformError> {
        let s = self.shared::<Policy>(state::POLICY_STREAM).await?;
        Ok(s.in_force_at(self.now()).cloned())
    }

    /// Whether a person is active (registered, not withdrawn or erased).
    pub async fn person_active(&self, person: &PersonId) -> Result<bool, PlatformError> {
        Ok(self.person_state(person).await?.status == PersonStatus::Active)
    }

    /// All categories, for callers that ask for everything a consent covers.
    pub fn all_categories() -> BTreeSet<mebyo_domain::Category> {
        mebyo_domain::Category::ALL.into_iter().collect()
    }
}

/// Records a read may return, shared with the state cache rather than copied.
pub struct SharedRecords {
    state: Arc<mebyo_domain::records::RecordState>,
    filter: RecordFilter,
}

/// What a granted read may return (P4.6(2), P4.5(3)).
struct RecordFilter {
    categories: std::collections::BTreeSet<mebyo_domain::records::Category>,
    period: mebyo_domain::consent::Period,
    /// Medical-origin data only over a VPN connection (P4.5(3)).
    medical_origin: bool,
}

impl RecordFilter {
    fn admits(&self, e: &RecordEntry) -> bool {
        self.categories.contains(&e.category)
            && self.period.contains(e.effective_at)
            && (self.medical_origin || e.provenance.origin != Origin::MedicalInstitution)
    }
}

impl SharedRecords {
    /// The current (not superseded) records the read was granted, in record-id order.
    pub fn iter(&self) -> impl Iterator<Item = &RecordEntry> {
        self.state.current().filter(|e| self.filter.admits(e))
    }
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The record of a cryptographic erase (P4.9(3)): pseudonymous, sealed under the
/// platform audit key so it survives the person's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureRecord {
    pub person: PersonId,
    pub witness: StaffId,
    pub destroyed_keys: Vec<String>,
    pub kek_id: String,
    pub keystore_digest: String,
    pub at: Timestamp,
}

impl DomainEvent for ErasureRecord {
    fn event_type(&self) -> &'static str {
        "erasure.completed"
    }
    fn person_related(&self) -> bool {
        true
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a new file durably (file and directory fsynced); refuses to overwrite.
/// What an interrupted init left that the next one makes again: the key store,
/// the vault, the settings and the ledger. Only called while `init.pending` says
/// that init never finished, so none of it was ever in use.
fn clear_interrupted_init(dir: &DataDir) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    gone(std::fs::remove_file(dir.keystore()))?;
    gone(std::fs::remove_file(dir.vault()))?;
    gone(std::fs::remove_file(dir.root.join(Settings::FILE)))?;
    gone(std::fs::remove_dir_all(dir.ledger()))?;
    std::fs::File::open(&dir.root)?.sync_all()
}

/// A marker file made durable: the file and its directory entry (a crash after
/// this returns leaves it in place).
pub fn write_marker(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes a marker durably (gone after a crash once this returns).
pub fn remove_marker(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
