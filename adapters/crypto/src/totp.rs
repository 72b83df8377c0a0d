//! The second factor of privileged staff (issue 15 §5): TOTP (RFC 6238) by
//! `totp-rs`, in the format every authenticator app reads (SHA-1, 6 digits,
//! 30-second steps). Which steps a code may belong to (skew, single use) is the
//! domain's rule (`mebyo_domain::signin::totp_steps`); this module computes and
//! compares codes. Time comes from the caller (the platform's injected clock),
//! never from the system.

use rand::CryptoRng;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// Seconds per step and digits per code: the format apps assume.
pub const TOTP_STEP_S: u64 = 30;
pub const TOTP_DIGITS: usize = 6;

/// The step holding `unix_s`.
pub fn totp_step(unix_s: u64) -> u64 {
    unix_s / TOTP_STEP_S
}

/// Secret length: 160 bits, RFC 4226's recommendation for HMAC-SHA-1.
pub const TOTP_SECRET_LEN: usize = 20;
/// Who issues the codes, as authenticator apps label them.
const ISSUER: &str = "mebyo";

/// A staff member's TOTP secret. Zeroed on drop; sealed before it is stored.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> TotpSecret {
        let mut b = Zeroizing::new(vec![0u8; TOTP_SECRET_LEN]);
        rng.fill_bytes(&mut b);
        TotpSecret(b)
    }

    /// From stored bytes; `None` unless exactly [`TOTP_SECRET_LEN`] long.
    pub fn from_bytes(b: &[u8]) -> Option<TotpSecret> {
        (b.len() == TOTP_SECRET_LEN).then(|| TotpSecret(Zeroizing::new(b.to_vec())))
    }

    /// From the base32 text an enrolment page showed (spaces and case ignored).
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let bytes = totp_rs::Secret::Encoded(clean).to_bytes().ok()?;
        Self::from_bytes(&bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> TOTP {
        // Cannot fail: the secret is 160 bits and the account (a staff id) has no ':'.
        TOTP::new(
            Algorithm::SHA1,
            TOTP_DIGITS,
            0,
            TOTP_STEP_S,
            self.0.to_vec(),
            Some(ISSUER.to_string()),
            account.replace(':', "_"),
        )
        .expect("a 160-bit secret and an account without ':' make a valid TOTP")
    }

    /// The secret as base32, for typing into an app.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(self.totp("x").get_secret_base32())
    }

    /// The `otpauth://` URI an app scans or opens.
    pub fn uri(&self, account: &str) -> Zeroizing<String> {
        Zeroizing::new(self.totp(account).get_url())
    }

    /// The code of the step holding `unix_s`.
    pub fn code_at(&self, unix_s: u64) -> String {
        self.totp("x").generate(unix_s)
    }

    /// The first of `steps` whose code `code` is (compared in constant time by
    /// `totp-rs`); the caller passes the steps the rule accepts now.
    pub fn verify(&self, code: &str, steps: impl IntoIterator<Item = u64>) -> Option<u64> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let t = self.totp("x");
        steps
            .into_iter()
            .find(|step| t.check(code, step.saturating_mul(TOTP_STEP_S)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1, truncated to 6 digits (the last six of 94287082
    /// and 07081804).
    #[test]
    fn rfc_6238_vectors() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(s.code_at(59), "287082");
        assert_eq!(s.code_at(1_111_111_109), "081804");
        assert_eq!(s.base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let again = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(again.bytes(), s.bytes());
        assert!(
            s.uri("soa-0001")
                .starts_with("otpauth://totp/mebyo:soa-0001?")
        );
    }

    /// A code matches its own step only, and never when malformed.
    #[test]
    fn codes_skew_once_and_shape() {
        let s = TotpSecret::from_bytes(&[7u8; TOTP_SECRET_LEN]).unwrap();
        let now = 1_000 * TOTP_STEP_S + 3;
        assert_eq!(totp_step(now), 1_000);
        let code = s.code_at(now);
        assert_eq!(s.verify(&code, [999, 1_000, 1_001]), Some(1_000));
        assert_eq!(s.verify(&code, [1_001, 1_002]), None);
        assert_eq!(s.verify(" 12345", [1_000]), None);
        assert_eq!(s.verify("12345a", [1_000]), None);
        assert!(TotpSecret::from_bytes(&[0; 10]).is_none());
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }
}
