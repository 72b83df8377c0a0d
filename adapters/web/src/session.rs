//! Sessions and request budgets.
//!
//! Sessions live in memory only: a restart signs everyone out, which is the safe
//! direction, and no session secret ever reaches disk. Tokens are 256 random bits;
//! a session ends on logout, after `idle` without use and at `absolute` after it
//! began, measured on the platform's injected clock so tests can move time (P4.6(1)).
//! Each session carries its own CSRF token (synchronizer pattern), required on every
//! state-changing request made with the cookie.

use std::collections::HashMap;

use base64::Engine;
use mebyo_domain::{Actor, CredentialId, PersonId, ProviderId, StaffId, Timestamp};
use parking_lot::Mutex;
use rand::RngCore;

use crate::error::ApiError;

/// Who a session speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Not signed in: holds only a CSRF token for the sign-in and sign-up forms.
    Anonymous,
    Individual {
        person: PersonId,
        credential: CredentialId,
    },
    Staff {
        staff: StaffId,
    },
    /// A staff member whose password verified but who has a step left before the
    /// session acts for them (issue 15 §5). Acts for nobody meanwhile.
    StaffPending {
        staff: StaffId,
        next: Pending,
    },
    Provider {
        provider: ProviderId,
        credential: CredentialId,
    },
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Anonymous | Principal::StaffPending { .. } => Actor::Applicant,
            Principal::Individual { person, credential } => Actor::Individual {
                person: person.clone(),
                credential: credential.clone(),
            },
            Principal::Staff { staff } => Actor::Staff {
                staff: staff.clone(),
            },
            Principal::Provider {
                provider,
                credential,
            } => Actor::Provider {
                provider: provider.clone(),
                credential: credential.clone(),
            },
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Individual { .. } => "individual",
            Principal::Staff { .. } => "staff",
            Principal::StaffPending { .. } => "staff_pending",
            Principal::Provider { .. } => "provider",
        }
    }
}

/// The step a staff sign-in has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The password is a one-time one: replace it first.
    ChangePassword,
    /// No second factor yet: confirm this new one with a code. The secret lives
    /// in this session only (memory) until the code confirms it.
    EnrolSecondFactor { secret: PendingSecret },
    /// Give the code of the enrolled second factor.
    SecondFactor,
}

impl Pending {
    /// The name the API gives this step (`next` of the login answer).
    pub fn name(&self) -> &'static str {
        match self {
            Pending::ChangePassword => "change_password",
            Pending::EnrolSecondFactor { .. } => "enrol_second_factor",
            Pending::SecondFactor => "second_factor",
        }
    }
}

/// A second-factor secret being enrolled: zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingSecret(pub mebyo_crypto::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for PendingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSecret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    pub created: Timestamp,
    pub last_seen: Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Ends a session unused this long (µs).
    pub idle_us: i64,
    /// Ends any session this long after it began (µs).
    pub absolute_us: i64,
    /// Most sessions held at once; beyond it new sessions are refused (memory bound).
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle_us: 15 * 60 * 1_000_000,
            absolute_us: 8 * 3600 * 1_000_000,
            max_sessions: 200_000,
        }
    }
}

pub struct Sessions {
    limits: SessionLimits,
    map: Mutex<HashMap<String, Session>>,
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Equality in time independent of where the strings differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, s: &Session, now: Timestamp) -> bool {
        now.0 - s.last_seen.0 < self.limits.idle_us && now.0 - s.created.0 < self.limits.absolute_us
    }

    /// A new session; returns its token.
    pub fn create(
        &self,
        principal: Principal,
        now: Timestamp,
    ) -> Result<(String, Session), ApiError> {
        let mut m = self.map.lock();
        if m.len() >= self.limits.max_sessions {
            m.retain(|_, s| {
                now.0 - s.last_seen.0 < self.limits.idle_us
                    && now.0 - s.created.0 < self.limits.absolute_us
            });
            if m.len() >= self.limits.max_sessions {
                return Err(ApiError::unavailable("too many sessions; try again later"));
            }
        }
        let token = random_token();
        let s = Session {
            principal,
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        m.insert(token.clone(), s.clone());
        Ok((token, s))
    }

    /// The live session of `token`, touched; an ended one is removed and reported.
    pub fn get(&self, token: &str, now: Timestamp) -> Result<Session, ApiError> {
        let mut m = self.map.lock();
        let Some(s) = m.get_mut(token) else {
            return Err(ApiError::unauthenticated());
        };
        if !(now.0 - s.last_seen.0 < self.limits.idle_us
            && now.0 - s.created.0 < self.limits.absolute_us)
        {
            m.remove(token);
            return Err(ApiError::session_expired());
        }
        s.last_seen = now;
        Ok(s.clone())
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().remove(token);
    }

    /// Ends every session of a principal (password change, lockout by staff).
    pub fn remove_principal(&self, p: &Principal) {
        self.map.lock().retain(|_, s| s.principal != *p);
    }

    /// Ends every session of a staff member, signed in or half-way, except
    /// `keep` (a password change, a sign-in reset, issue 15 §5).
    pub fn remove_staff(&self, staff: &StaffId, keep: Option<&str>) {
        self.map.lock().retain(|token, s| {
            let theirs = matches!(&s.principal,
                Principal::Staff { staff: x } | Principal::StaffPending { staff: x, .. } if x == staff);
            !theirs || keep == Some(token.as_str())
        });
    }

    /// Moves a session to its next step of signing in; `false` if it has ended.
    pub fn set_principal(&self, token: &str, principal: Principal) -> bool {
        match self.map.lock().get_mut(token) {
            Some(s) => {
                s.principal = principal;
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops ended sessions (called now and then, so memory follows use).
    pub fn sweep(&self, now: Timestamp) {
        let mut m = self.map.lock();
        m.retain(|_, s| self.live(s, now));
    }
}

/// Token buckets per key (a source group, an account), against guessing and
/// floods (P4.4(1), P4.8(2)).
pub struct RateLimiter<K = u128> {
    /// Tokens a client may hold (burst).
    capacity: f64,
    /// Tokens added per second.
    refill_per_s: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<K, (f64, Timestamp)>>,
}

impl<K: std::hash::Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(capacity: u32, per_minute: u32, max_clients: usize) -> Self {
        Self {
            capacity: capacity as f64,
            refill_per_s: (per_minute as f64 / 60.0).max(1e-6),
            max_clients,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is available.
    pub fn check(&self, key: K, now: Timestamp) -> Result<(), u64> {
        let mut m = self.buckets.lock();
        if m.len() >= self.max_clients && !m.contains_key(&key) {
            // Forget clients whose buckets have refilled: they are indistinguishable
            // from new ones. If all are busy, refuse rather than grow without bound.
            let full_after = (self.capacity / self.refill_per_s * 1e6) as i64;
            m.retain(|_, (_, t)| now.0 - t.0 < full_after);
            if m.len() >= self.max_clients {
                return Err(60);
            }
        }
        let (tokens, last) = m.entry(key).or_insert((self.capacity, now));
        let elapsed = ((now.0 - last.0).max(0)) as f64 / 1e6;
        *tokens = (*tokens + elapsed * self.refill_per_s).min(self.capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.refill_per_s).ceil() as u64)
        }
    }
}

/// CSRF tokens for the pages shown before sign-in, with nothing stored on the
/// server (the signed double-submit cookie of OWASP's CSRF cheat sheet): the
/// browser keeps a random value in the `__Host-mebyo-pre` cookie, and the form
/// carries a MAC of that value under a key only this process holds. A cross-site
/// page can neither read the cookie nor compute the MAC, so a matching pair shows
/// the form came from our page (P4.6(1)). Showing `/login` or `/signup` therefore
/// costs no session, and anonymous visitors cannot fill the session table (issue
/// 22 §4). A restart changes the key: a form left open since then is refused once
/// and works after a reload.
pub struct AnonCsrf {
    key: [u8; 32],
}

pub const PRE_COOKIE: &str = "__Host-mebyo-pre";

impl AnonCsrf {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    /// The form token for a cookie value.
    pub fn token(&self, cookie_value: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"mebyo anonymous csrf v1\0");
        h.update(cookie_value.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize().as_bytes())
    }

    /// Whether `presented` is the token of the cookie value (constant time).
    pub fn check(&self, cookie_value: Option<&str>, presented: &str) -> bool {
        cookie_value
            .filter(|v| well_formed(v))
            .is_some_and(|v| ct_eq(&self.token(v), presented))
    }
}

impl Default for AnonCsrf {
    fn default() -> Self {
        Self::new()
    }
}

/// A value `random_token` could have made: 43 URL-safe base64 characters.
pub fn well_formed(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_idle_and_absolute_p4_6_1() {
        let s = Sessions::new(SessionLimits {
            idle_us: 10,
            absolute_us: 25,
            max_sessions: 10,
        });
        let (t, _) = s.create(Principal::Anonymous, Timestamp(0)).unwrap();
        assert!(s.get(&t, Timestamp(9)).is_ok());
        assert!(s.get(&t, Timestamp(18)).is_ok());
        let e = s.get(&t, Timestamp(26)).unwrap_err();
        assert_eq!(e.body.code, "session.expired");
        assert_eq!(
            s.get(&t, Timestamp(26)).unwrap_err().body.code,
            "auth.required"
        );
        let (t2, _) = s.create(Principal::Anonymous, Timestamp(0)).unwrap();
        assert_eq!(
            s.get(&t2, Timestamp(10)).unwrap_err().body.code,
            "session.expired"
        );
    }

    #[test]
    fn session_capacity_is_bounded() {
        let s = Sessions::new(SessionLimits {
            idle_us: 10,
            absolute_us: 100,
            max_sessions: 2,
        });
        s.create(Principal::Anonymous, Timestamp(0)).unwrap();
        s.create(Principal::Anonymous, Timestamp(0)).unwrap();
        assert!(s.create(Principal::Anonymous, Timestamp(1)).is_err());
        // Once the old ones have ended there is room again.
        assert!(s.create(Principal::Anonymous, Timestamp(20)).is_ok());
    }

    #[test]
    fn rate_limiter_refills_p4_4() {
        let r = RateLimiter::new(2, 60, 100);
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(r.check(ip, Timestamp(0)).is_ok());
        assert!(r.check(ip, Timestamp(0)).is_ok());
        assert_eq!(r.check(ip, Timestamp(0)), Err(1));
        assert!(r.check(ip, Timestamp(1_000_000)).is_ok());
    }

    /// P4.6(1): the anonymous form token matches only its own, well-formed cookie.
    #[test]
    fn anonymous_csrf_tokens_are_bound_to_their_cookie_p4_6_1() {
        let c = AnonCsrf::new();
        let (v, w) = (random_token(), random_token());
        assert!(well_formed(&v));
        assert!(c.check(Some(&v), &c.token(&v)));
        assert!(!c.check(Some(&w), &c.token(&v)));
        assert!(!c.check(None, &c.token(&v)));
        assert!(!c.check(Some(&v), ""));
        assert!(!c.check(Some("short"), &c.token("short")));
        // Another process's key makes other tokens.
        assert!(!AnonCsrf::new().check(Some(&v), &c.token(&v)));
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
    }
}
