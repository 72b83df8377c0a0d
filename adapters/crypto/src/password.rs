//! Login passwords, stored irreversibly (P4.8(2)): argon2id, memory-hard, PHC
//! string format, parameters at or above OWASP's minimum (m=19456 KiB, t=2, p=1).
//!
//! Hashing costs tens of milliseconds of CPU and ~19 MiB of memory by design, so
//! the async [`PasswordHasher`] runs it on tokio's blocking pool behind a
//! semaphore: a flood of logins queues on the semaphore instead of occupying
//! every blocking thread or stalling the async workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::CryptoRng;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};

/// Passwords longer than this are refused before hashing: no human types them, and
/// unbounded input is a cheap way to burn CPU.
pub const MAX_PASSWORD_LEN: usize = 1024;
const SALT_LEN: usize = 16;
/// Upper bound accepted from a stored hash (4 GiB), so a corrupt or planted hash
/// cannot make verification allocate without limit.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl PasswordParams {
    /// P4.8(2) floor (OWASP Password Storage Cheat Sheet, argon2id option 2).
    pub const MINIMUM: PasswordParams = PasswordParams {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    /// Refuse parameters below the floor: weakening must be a code change with a
    /// clause review, not a config typo.
    pub fn validate(&self) -> Result<()> {
        let m = Self::MINIMUM;
        if self.m_cost_kib < m.m_cost_kib || self.t_cost < m.t_cost || self.p_cost < m.p_cost {
            return Err(CryptoError::WeakPasswordParams {
                reason: format!(
                    "got m={} KiB, t={}, p={}",
                    self.m_cost_kib, self.t_cost, self.p_cost
                ),
            });
        }
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None).map_err(|e| {
            CryptoError::WeakPasswordParams {
                reason: e.to_string(),
            }
        })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self::MINIMUM
    }
}

/// Outcome of [`verify_password`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub valid: bool,
    /// The stored hash uses weaker settings than `current` (or not argon2id v1.3):
    /// on a valid login, hash again and store the new string.
    pub needs_rehash: bool,
}

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(CryptoError::InvalidPassword { reason: "empty" });
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(CryptoError::InvalidPassword {
            reason: "longer than 1024 bytes",
        });
    }
    Ok(())
}

fn make_salt(rng: &mut (impl CryptoRng + ?Sized)) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

fn hash_with_salt(
    password: &str,
    params: &PasswordParams,
    salt: &[u8; SALT_LEN],
) -> Result<String> {
    check_password(password)?;
    params.validate()?;
    let salt = SaltString::encode_b64(salt).map_err(|e| CryptoError::PasswordHash {
        reason: e.to_string(),
    })?;
    let hash = params
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| CryptoError::PasswordHash {
            reason: e.to_string(),
        })?;
    Ok(hash.to_string())
}

/// Hash a password with argon2id and a 16-byte random salt; returns a PHC string
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). P4.8(2).
pub fn hash_password(
    password: &str,
    params: &PasswordParams,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<String> {
    hash_with_salt(password, params, &make_salt(rng))
}

/// Verify a password against a stored PHC string. The comparison is constant
/// time (done by the `password-hash` crate). A wrong password is `valid: false`,
/// not an error; a malformed hash is an error.
pub fn verify_password(
    password: &str,
    phc: &str,
    current: &PasswordParams,
) -> Result<Verification> {
    let malformed = |reason: String| CryptoError::MalformedPasswordHash { reason };
    let parsed = PasswordHash::new(phc).map_err(|e| malformed(e.to_string()))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| malformed(e.to_string()))?;
    let stored = Params::try_from(&parsed).map_err(|e| malformed(e.to_string()))?;
    if stored.m_cost() > MAX_M_COST_KIB {
        return Err(malformed("memory cost above 4 GiB".into()));
    }
    let version = parsed.version.unwrap_or(0x13);
    let needs_rehash = algorithm != Algorithm::Argon2id
        || version != 0x13
        || stored.m_cost() < current.m_cost_kib
        || stored.t_cost() < current.t_cost
        || stored.p_cost() < current.p_cost;
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Ok(Verification {
            valid: false,
            needs_rehash,
        });
    }
    // The verifier re-derives with the *stored* algorithm and parameters.
    let valid = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(Verification {
        valid,
        needs_rehash,
    })
}

/// Settings for [`PasswordHasher`].
#[derive(Clone, Copy, Debug)]
pub struct PasswordHasherConfig {
    pub params: PasswordParams,
    /// Maximum concurrent hash/verify computations; default = number of cores.
    pub max_concurrent: usize,
}

impl Default for PasswordHasherConfig {
    fn default() -> Self {
        PasswordHasherConfig {
            params: PasswordParams::default(),
            max_concurrent: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// Boxed random source shared by the async hasher (salts only).
pub type SharedRng = Box<dyn CryptoRng + Send>;

/// Async password hashing on a bounded slice of tokio's blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    params: PasswordParams,
    permits: usize,
    semaphore: Arc<Semaphore>,
    rng: Arc<Mutex<SharedRng>>,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(config: PasswordHasherConfig, rng: SharedRng) -> Result<PasswordHasher> {
        config.params.validate()?;
        if config.max_concurrent == 0 {
            return Err(CryptoError::HashPool {
                reason: "max_concurrent must be at least 1",
            });
        }
        Ok(PasswordHasher {
            params: config.params,
            permits: config.max_concurrent,
            semaphore: Arc::new(Semaphore::new(config.max_concurrent)),
            rng: Arc::new(Mutex::new(rng)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn params(&self) -> PasswordParams {
        self.params
    }

    pub fn max_concurrent(&self) -> usize {
        self.permits
    }

    /// Highest number of hash computations that ever ran at once (for tests and
    /// metrics); never exceeds `max_concurrent`.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit =
            self.semaphore
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| CryptoError::HashPool {
                    reason: "semaphore closed",
                })?;
        let (in_flight, peak) = (self.in_flight.clone(), self.peak.clone());
        // The permit moves into the blocking task, so it is held until the work
        // ends even if the caller's future is dropped (cancelled login request).
        tokio::task::spawn_blocking(move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = job();
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|_| CryptoError::HashPool {
            reason: "hashing task panicked or was cancelled",
        })?
    }

    /// Hash a new password (P4.8(2)).
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String> {
        check_password(&password)?;
        let salt = {
            let mut rng = self.rng.lock().map_err(|_| CryptoError::HashPool {
                reason: "rng mutex poisoned",
            })?;
            make_salt(&mut **rng)
        };
        let params = self.params;
        self.run(move || hash_with_salt(&password, &params, &salt))
            .await
    }

    /// Verify a password against a stored PHC string.
    pub async fn verify(&self, password: Zeroizing<String>, phc: String) -> Result<Verification> {
        let params = self.params;
        self.run(move || verify_password(&password, &phc, &params))
            .await
    }
}
