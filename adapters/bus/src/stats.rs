//! What the bus counts instead of recording (issue 22 §2): messages that never
//! authenticated (unsigned, badly signed, stale, replayed, malformed, unknown
//! subject) and handler panics.
//!
//! Anyone who can reach the broker can publish such messages, as fast as they
//! like and with any text in the subject. Writing each one to the ledger would
//! let them fill it and put their text at rest (principle 3), so they are
//! counted per reason here (shown by `/metrics`), answered and logged at a
//! bounded rate, and never written. What a signed request's provider is refused
//! is still recorded, from validated fields only (`service.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Every code the bus refuses an unauthenticated message with; the index of a
/// code is its counter.
pub const NOISE_CODES: [&str; 11] = [
    "request.unsigned",
    "request.malformed_header",
    "request.wrong_provider",
    "request.stale",
    "request.key_unknown",
    "request.signature_invalid",
    "request.signature_outdated",
    "request.replayed",
    "request.busy",
    "request.too_large",
    "request.unknown_service",
];

/// Most answers to unauthenticated messages per second (a token bucket on the
/// platform's clock): enough for a provider debugging its signatures, too few to
/// make the platform an amplifier for whoever floods the broker.
pub const NOISE_ANSWERS_PER_SECOND: u64 = 100;
/// How often, at most, the counters are logged (microseconds).
const LOG_EVERY_US: i64 = 10_000_000;

#[derive(Default)]
pub struct BusStats {
    unauthenticated: [AtomicU64; NOISE_CODES.len()],
    /// Unauthenticated messages not answered because the answer rate was spent.
    unanswered: AtomicU64,
    /// Requests whose handler panicked (answered `platform.internal`).
    handler_panics: AtomicU64,
    bucket: Mutex<Bucket>,
    last_log_us: Mutex<Option<i64>>,
}

#[derive(Default)]
struct Bucket {
    tokens: u64,
    at_us: Option<i64>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// `(refusal code, messages)` for every code of [`NOISE_CODES`].
    pub unauthenticated: Vec<(&'static str, u64)>,
    pub unanswered: u64,
    pub handler_panics: u64,
}

impl StatsSnapshot {
    pub fn unauthenticated_total(&self) -> u64 {
        self.unauthenticated.iter().map(|(_, n)| n).sum()
    }

    /// The counters as OpenMetrics text (without `# EOF`), for `/metrics`.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP mebyo_bus_unauthenticated_messages Bus messages refused before authentication, by refusal code (counted, not recorded).\n");
        out.push_str("# TYPE mebyo_bus_unauthenticated_messages counter\n");
        for (code, n) in &self.unauthenticated {
            out.push_str(&format!(
                "mebyo_bus_unauthenticated_messages_total{{code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP mebyo_bus_unanswered_messages Unauthenticated bus messages left unanswered (answer rate spent).\n");
        out.push_str("# TYPE mebyo_bus_unanswered_messages counter\n");
        out.push_str(&format!(
            "mebyo_bus_unanswered_messages_total {}\n",
            self.unanswered
        ));
        out.push_str("# HELP mebyo_bus_handler_panics Bus requests whose handler panicked (answered platform.internal).\n");
        out.push_str("# TYPE mebyo_bus_handler_panics counter\n");
        out.push_str(&format!(
            "mebyo_bus_handler_panics_total {}\n",
            self.handler_panics
        ));
        out
    }
}

impl BusStats {
    /// Counts one unauthenticated message refused with `code`; returns whether
    /// it may be answered (the answer rate is not spent). Logs the counters at
    /// most every 10 s, never the message's subject or contents.
    pub fn unauthenticated(&self, code: &str, now_us: i64) -> bool {
        let i = NOISE_CODES
            .iter()
            .position(|c| *c == code)
            // Every refusal before authentication uses a listed code (tested);
            // an unlisted one still counts, as the first.
            .unwrap_or(0);
        self.unauthenticated[i].fetch_add(1, Ordering::Relaxed);
        self.log(now_us);
        let answer = self.take_token(now_us);
        if !answer {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    pub fn handler_panicked(&self) {
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            unauthenticated: NOISE_CODES
                .iter()
                .zip(&self.unauthenticated)
                .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                .collect(),
            unanswered: self.unanswered.load(Ordering::Relaxed),
            handler_panics: self.handler_panics.load(Ordering::Relaxed),
        }
    }

    fn take_token(&self, now_us: i64) -> bool {
        let mut b = self.bucket.lock();
        let elapsed = b.at_us.map_or(i64::MAX, |t| now_us.saturating_sub(t));
        let refill = (elapsed.max(0) as u64).saturating_mul(NOISE_ANSWERS_PER_SECOND) / 1_000_000;
        if refill > 0 || b.at_us.is_none() {
            b.tokens = b
                .tokens
                .saturating_add(refill)
                .min(NOISE_ANSWERS_PER_SECOND);
            b.at_us = Some(now_us);
        }
        if b.tokens == 0 {
            return false;
        }
        b.tokens -= 1;
        true
    }

    fn log(&self, now_us: i64) {
        {
            let mut last = self.last_log_us.lock();
            if last.is_some_and(|t| now_us.saturating_sub(t) < LOG_EVERY_US) {
                return;
            }
            *last = Some(now_us);
        }
        let s = self.snapshot();
        let counts: Vec<String> = s
            .unauthenticated
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        tracing::warn!(
            total = s.unauthenticated_total(),
            unanswered = s.unanswered,
            counts = %counts.join(" "),
            "unauthenticated bus messages refused since start (counted, not recorded)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_counted_per_code_and_answered_at_a_bounded_rate() {
        let s = BusStats::default();
        let t0 = 1_000_000_000;
        let answered = (0..250)
            .filter(|_| s.unauthenticated("request.unsigned", t0))
            .count();
        assert_eq!(answered as u64, NOISE_ANSWERS_PER_SECOND);
        assert!(s.unauthenticated("request.stale", t0 + 20_000), "refilled");
        let snap = s.snapshot();
        assert_eq!(snap.unauthenticated_total(), 251);
        assert_eq!(snap.unauthenticated[0], ("request.unsigned", 250));
        assert_eq!(snap.unauthenticated[3], ("request.stale", 1));
        assert_eq!(snap.unanswered, 150);
        assert!(
            snap.openmetrics().contains(
                "mebyo_bus_unauthenticated_messages_total{code=\"request.unsigned\"} 250\n"
            )
        );
    }
}
