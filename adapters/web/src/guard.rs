//! Sign-in attempts under `mebyo_domain::signin`'s rule (P4.8(2), P4.4(1)): a
//! reservation per (account, source group) taken before argon2 runs and settled
//! after, and a rate limit per account across all sources. Both are keyed by the
//! login as typed (a keyed hash of it: memory holds no e-mail addresses), never
//! by whether the account exists, so known and unknown logins get the same
//! answers.
//!
//! Counts live in memory only. Writing them to disk would put attacker-chosen
//! logins and source addresses into a file and cost a durable write per guess
//! (the old per-failure rewrite of `passwords.json` was itself a lever); a restart,
//! which no request can cause, starts the counts again.

use std::collections::HashMap;
use std::net::IpAddr;

use mebyo_domain::Timestamp;
use mebyo_domain::signin::{Attempts, SigninRule, source_group};
use parking_lot::Mutex;
use rand::RngCore;

use crate::error::ApiError;
use crate::session::RateLimiter;

type Account = [u8; 16];
type Pair = (Account, u128);

pub struct SigninGuard {
    rule: SigninRule,
    key: [u8; 32],
    max_pairs: usize,
    pairs: Mutex<HashMap<Pair, Attempts>>,
    accounts: RateLimiter<Account>,
}

/// A reserved attempt. Settle it with the hash's verdict; dropped unsettled (the
/// request was cancelled mid-hash) it counts as a failure.
pub struct Ticket<'a> {
    guard: &'a SigninGuard,
    pair: Pair,
    at: Timestamp,
    settled: bool,
}

impl SigninGuard {
    pub fn new(rule: SigninRule, max_pairs: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            rule,
            key,
            max_pairs,
            pairs: Mutex::new(HashMap::new()),
            accounts: RateLimiter::new(rule.account_burst, rule.account_per_minute, max_pairs),
        }
    }

    /// The account a login names, whether or not it exists: `kind` keeps the
    /// namespaces apart; case and surrounding space do not make a new account.
    fn account(&self, kind: &str, login: &str) -> Account {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(kind.as_bytes());
        h.update(b"\0");
        h.update(login.trim().to_lowercase().as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }

    /// Reserves one attempt of `login` from `ip`, before any hashing: refused if
    /// the pair is locked or has every try in flight (`auth.locked`), or if the
    /// account has had too many attempts from all sources (`rate.limited`).
    pub fn reserve(
        &self,
        kind: &str,
        login: &str,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Ticket<'_>, ApiError> {
        let pair = (self.account(kind, login), source_group(ip));
        let mut pairs = self.pairs.lock();
        if pairs.len() >= self.max_pairs && !pairs.contains_key(&pair) {
            pairs.retain(|_, a| !a.idle(now, &self.rule));
            if pairs.len() >= self.max_pairs {
                return Err(ApiError::rate_limited(60));
            }
        }
        let attempts = pairs.entry(pair).or_default();
        // A locked pair is answered before the account's budget is touched, so a
        // source that locked itself out cannot drain the account's limit too.
        let mut trial = *attempts;
        trial
            .reserve(now, &self.rule)
            .map_err(|until| locked(until, now))?;
        self.accounts
            .check(pair.0, now)
            .map_err(ApiError::rate_limited)?;
        *attempts = trial;
        Ok(Ticket {
            guard: self,
            pair,
            at: now,
            settled: false,
        })
    }

    fn settle(&self, pair: &Pair, verified: bool, now: Timestamp) -> Option<Timestamp> {
        self.pairs
            .lock()
            .get_mut(pair)
            .and_then(|a| a.settle(verified, now, &self.rule))
    }
}

impl Ticket<'_> {
    /// Settles with the hash's verdict. A failure that locks the pair answers
    /// `auth.locked`; any other failure `auth.failed`.
    pub fn settle(mut self, verified: bool, now: Timestamp) -> Result<(), ApiError> {
        self.settled = true;
        match self.guard.settle(&self.pair, verified, now) {
            _ if verified => Ok(()),
            Some(until) => Err(locked(until, now)),
            None => Err(ApiError::bad_credentials()),
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.guard.settle(&self.pair, false, self.at);
        }
    }
}

fn locked(until: Timestamp, now: Timestamp) -> ApiError {
    ApiError::locked(
        ((until.0 - now.0).max(0) / 1_000_000) as u64,
        &mebyo_platform::world::rfc3339_jst(until),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// P4.8(2): the lock is per account and source group; the account's owner
    /// elsewhere is not locked out, and an unknown login behaves the same.
    #[test]
    fn p4_8_2_a_lock_holds_one_account_from_one_source_group() {
        let g = SigninGuard::new(SigninRule::default(), 1000);
        let t = Timestamp(0);
        let attacker = ip("2001:db8:1:2::1");
        for login in ["office-0001", "nobody-9999"] {
            for i in 0..4 {
                let r = g
                    .reserve("staff", login, attacker, t)
                    .unwrap()
                    .settle(false, t);
                assert_eq!(r.unwrap_err().body.code, "auth.failed", "{login} {i}");
            }
            let r = g
                .reserve("staff", login, attacker, t)
                .unwrap()
                .settle(false, t);
            assert_eq!(r.unwrap_err().body.code, "auth.locked");
            // Another address in the same /64 is the same source.
            let e = g
                .reserve("staff", login, ip("2001:db8:1:2::ffff"), t)
                .err()
                .unwrap();
            assert_eq!(e.body.code, "auth.locked");
            // Case does not make another account.
            let e = g
                .reserve("staff", &login.to_uppercase(), attacker, t)
                .err()
                .unwrap();
            assert_eq!(e.body.code, "auth.locked");
            // The owner, from elsewhere, still signs in.
            g.reserve("staff", login, ip("192.0.2.7"), t)
                .unwrap()
                .settle(true, t)
                .unwrap();
        }
    }

    /// P4.4(1): many sources against one account meet the account's limit.
    #[test]
    fn p4_4_1_an_account_is_rate_limited_across_sources() {
        let rule = SigninRule::default();
        let g = SigninGuard::new(rule, 1000);
        let t = Timestamp(0);
        let mut limited = 0u32;
        for i in 0..25u8 {
            match g.reserve(
                "individual",
                "a@example.jp",
                ip(&format!("198.51.100.{i}")),
                t,
            ) {
                Ok(ticket) => drop(ticket.settle(false, t)),
                Err(e) => {
                    assert_eq!(e.body.code, "rate.limited");
                    limited += 1;
                }
            }
        }
        assert_eq!(limited, 25 - rule.account_burst);
    }

    /// P4.8(2): an attempt abandoned mid-hash counts as a failure.
    #[test]
    fn p4_8_2_an_abandoned_attempt_counts() {
        let g = SigninGuard::new(SigninRule::default(), 1000);
        let t = Timestamp(0);
        for _ in 0..5 {
            drop(g.reserve("staff", "x", ip("192.0.2.1"), t).unwrap());
        }
        let e = g.reserve("staff", "x", ip("192.0.2.1"), t).err().unwrap();
        assert_eq!(e.body.code, "auth.locked");
    }
}
