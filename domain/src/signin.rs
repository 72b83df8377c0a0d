//! The sign-in rule (P4.8(2), P4.4(1)): how many password guesses an account and a
//! source get, and when they stop. Pure: the caller brings the time and keeps the
//! state (the web face, in memory).
//!
//! - **Attempts are reserved before the hash runs.** A reservation counts as a
//!   failure unless the password verifies, so twenty guesses sent at once get at
//!   most `max_failures` verifications, not twenty (issue 22 §3: the lock was
//!   checked, then argon2 ran, then the failure was counted).
//! - **The hard lock is per account *and* source group.** Staff ids are
//!   predictable (`office-0001`) and e-mail addresses are known to others; a lock
//!   of the account from everywhere is a switch anyone can flip. Locking the pair
//!   stops a guesser at `max_failures` per `lock_for` from each source group, and
//!   leaves the account's owner, elsewhere, able to sign in.
//! - **Across sources the account is rate limited, not locked**
//!   (`account_burst`, `account_per_minute`): guessing from many sources is bounded
//!   per account, and the limit lifts as soon as the flood stops — no lock that
//!   outlives the attack.
//! - **A source group is an IPv4 address or an IPv6 /64** (`source_group`): one
//!   host holds a whole /64, so counting its addresses one by one would give it
//!   2^64 fresh budgets.
//! - **Unknown logins are treated exactly like known ones**: the caller keys the
//!   counts by the login as typed (never by whether it exists) and hashes against a
//!   dummy, so no answer tells which accounts exist.

use std::net::IpAddr;

use crate::{Refusal, Timestamp};

/// The rule's values. The defaults are the platform's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigninRule {
    /// Failed attempts (reserved or counted) of one account from one source group
    /// before that pair is locked.
    pub max_failures: u32,
    /// How long a locked pair stays locked (µs).
    pub lock_for_us: i64,
    /// Attempts on one account from all sources together: burst, then per minute.
    pub account_burst: u32,
    pub account_per_minute: u32,
}

impl Default for SigninRule {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_for_us: 15 * 60 * 1_000_000,
            account_burst: 20,
            account_per_minute: 10,
        }
    }
}

/// The rule for a password being set (sign-up, change, reset) (P4.8(2)): long
/// enough to resist guessing with the lockout in place, short enough to bound the
/// hashing. Counted in characters, as the API schema's `minLength`/`maxLength`
/// count them (issue 22 §7).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Four bytes at most per character: 1,024 bytes, the hasher's input limit.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Refused unless `new` follows the password rule and differs from `current`
/// (when the caller knows it).
pub fn check_new_password(new: &str, current: Option<&str>) -> Result<(), Refusal> {
    let n = new.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(Refusal::new(
            "password.rule",
            crate::clause!("P4.8(2)"),
            format!("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if current == Some(new) {
        return Err(Refusal::new(
            "password.unchanged",
            crate::clause!("P4.8(2)"),
            "the new password must differ from the current one",
        ));
    }
    Ok(())
}

/// Which TOTP steps (RFC 6238) a second factor accepts a code from (issue 15 §5):
/// the current step and one either side, for clocks that drift; and a code is
/// used once: a step at or before the last one accepted (`used`) is refused, so a
/// code seen over a shoulder or in a replayed form is worth nothing.
pub const TOTP_SKEW_STEPS: u64 = 1;

/// The steps a code presented during step `now` may belong to, oldest first.
pub fn totp_steps(now: u64, used: Option<u64>) -> impl Iterator<Item = u64> {
    (now.saturating_sub(TOTP_SKEW_STEPS)..=now.saturating_add(TOTP_SKEW_STEPS))
        .filter(move |s| used.is_none_or(|u| *s > u))
}

/// One (account, source group) pair's attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Failures since the last success or lock.
    pub failures: u32,
    /// Attempts reserved whose hash has not finished: failures until proven.
    pub in_flight: u32,
    pub locked_until: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Attempts {
    /// Reserves one attempt, or says until when the pair is locked. Call before
    /// hashing; every reservation must be settled once.
    pub fn reserve(&mut self, now: Timestamp, rule: &SigninRule) -> Result<(), Timestamp> {
        if let Some(until) = self.locked_until {
            if now < until {
                return Err(until);
            }
            // A lock that has run out starts a fresh count.
            self.locked_until = None;
            self.failures = 0;
        }
        self.last = Some(now);
        if self.failures.saturating_add(self.in_flight) >= rule.max_failures {
            // Every remaining try is in flight: wait for them, as if locked.
            return Err(Timestamp(now.0 + rule.lock_for_us));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Settles a reservation: a verified password clears the count; anything else
    /// (a wrong password, an abandoned attempt) is a failure. Returns the lock's
    /// end if this failure locked the pair.
    pub fn settle(
        &mut self,
        verified: bool,
        now: Timestamp,
        rule: &SigninRule,
    ) -> Option<Timestamp> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if verified {
            self.failures = 0;
            self.locked_until = None;
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= rule.max_failures {
            let until = Timestamp(now.0 + rule.lock_for_us);
            self.locked_until = Some(until);
            return Some(until);
        }
        None
    }

    /// Whether forgetting this pair changes nothing a later attempt would see.
    pub fn idle(&self, now: Timestamp, rule: &SigninRule) -> bool {
        self.in_flight == 0
            && self.locked_until.is_none_or(|u| now >= u)
            && self.last.is_none_or(|l| now.0 - l.0 >= rule.lock_for_us)
    }
}

/// The group a source address is counted in: an IPv4 address (IPv4-mapped IPv6
/// included), or the /64 prefix of an IPv6 address.
pub fn source_group(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            // Bit 32 keeps IPv6 groups apart from IPv4 addresses (all below 2^32).
            None => (u128::from(v6) & !((1u128 << 64) - 1)) | (1 << 32),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P4.8(2): reservations count as failures until settled, so concurrent guesses
    /// cannot outrun the count; a success clears it; a lock runs out.
    #[test]
    fn p4_8_2_reservations_bound_concurrent_guesses() {
        let rule = SigninRule::default();
        let mut a = Attempts::default();
        let t = Timestamp(1_000);
        for _ in 0..5 {
            a.reserve(t, &rule).unwrap();
        }
        // A sixth, even the right password, waits for the five in flight.
        assert!(a.reserve(t, &rule).is_err());
        for _ in 0..4 {
            assert_eq!(a.settle(false, t, &rule), None);
        }
        let until = a
            .settle(false, t, &rule)
            .expect("locked at the fifth failure");
        assert_eq!(until, Timestamp(t.0 + rule.lock_for_us));
        assert_eq!(a.reserve(Timestamp(until.0 - 1), &rule), Err(until));
        a.reserve(until, &rule).unwrap();
        a.settle(true, until, &rule);
        assert_eq!((a.failures, a.in_flight), (0, 0));
        assert!(!a.idle(until, &rule));
        assert!(a.idle(Timestamp(until.0 + rule.lock_for_us), &rule));
    }

    /// P4.8(2): the password rule, in characters, and a change must change it.
    #[test]
    fn p4_8_2_password_rule() {
        assert_eq!(
            check_new_password("short", None).unwrap_err().code,
            "password.rule"
        );
        assert!(check_new_password(&"é".repeat(MAX_PASSWORD_CHARS), None).is_ok());
        assert!(check_new_password(&"é".repeat(MAX_PASSWORD_CHARS + 1), None).is_err());
        let same = check_new_password("long-enough-1", Some("long-enough-1")).unwrap_err();
        assert_eq!((same.code, same.clause), ("password.unchanged", "P4.8(2)"));
    }

    /// Issue 15 §5: a code is taken from the current step or one either side, and
    /// never from a step already used.
    #[test]
    fn p4_8_2_totp_steps_skew_and_single_use() {
        assert_eq!(
            totp_steps(1000, None).collect::<Vec<_>>(),
            [999, 1000, 1001]
        );
        assert_eq!(totp_steps(1000, Some(1000)).collect::<Vec<_>>(), [1001]);
        assert_eq!(totp_steps(1000, Some(1001)).count(), 0);
        assert_eq!(totp_steps(0, None).collect::<Vec<_>>(), [0, 1]);
    }

    /// P4.4(1): an IPv6 /64 is one source; IPv4 addresses are each their own.
    #[test]
    fn p4_4_1_source_groups() {
        let g = |s: &str| source_group(s.parse().unwrap());
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
        assert_ne!(g("192.0.2.1"), g("192.0.2.2"));
        assert_eq!(g("192.0.2.1"), g("::ffff:192.0.2.1"));
        assert_ne!(g("::"), g("0.0.0.0"));
        assert_ne!(g("::1"), g("0.0.0.1"));
    }
}
