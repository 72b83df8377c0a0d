//! Consent (P4.6(2)): deny by default. A consent names one provider, a set of record
//! categories, one purpose, the period of records it covers and a mandatory expiry.
//! It is evaluated against `now` at read time, so expiry and revocation take effect
//! at once without any job.

use crate::records::Category;
use crate::refusal::Refusal;
use crate::{ConsentId, ProviderId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Why a provider reads or delivers data. Stated on every access (P4.11(3)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Care,
    HealthGuidance,
    CheckupFollowUp,
    MedicationReview,
    /// The individual's own use; never the purpose of a consent to a provider.
    PersonalUse,
}

/// Half-open span `[from, to)` of clinical (effective) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    pub fn is_valid(&self) -> bool {
        self.from < self.to
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    pub fn covers(&self, other: &Period) -> bool {
        self.from <= other.from && other.to <= self.to
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: ConsentId,
    pub provider: ProviderId,
    pub categories: BTreeSet<Category>,
    pub purpose: Purpose,
    pub period: Period,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Consent {
    /// In force at `now`: granted, not revoked, not expired.
    pub fn active_at(&self, now: Timestamp) -> Result<(), Refusal> {
        if self.granted_at > now {
            return Err(Refusal::new(
                "consent.none",
                crate::clause!("P4.6(2)"),
                "no consent in force",
            ));
        }
        if self.revoked_at.is_some_and(|r| r <= now) {
            return Err(Refusal::new(
                "consent.revoked",
                crate::clause!("P4.6(2)"),
                "consent was revoked",
            ));
        }
        if now >= self.expires_at {
            return Err(Refusal::new(
                "consent.expired",
                crate::clause!("P4.6(2)"),
                "consent has expired",
            ));
        }
        Ok(())
    }

    /// Covers a read of `categories` for `purpose` over `period` at `now`.
    pub fn covers_read(
        &self,
        categories: &BTreeSet<Category>,
        purpose: Purpose,
        period: &Period,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        self.active_at(now)?;
        if !categories.is_subset(&self.categories) {
            return Err(Refusal::new(
                "consent.category",
                crate::clause!("P4.6(2)"),
                "consent does not cover these categories",
            ));
        }
        if purpose != self.purpose {
            return Err(Refusal::new(
                "consent.purpose",
                crate::clause!("P4.6(2)"),
                "consent was given for another purpose",
            ));
        }
        if !self.period.covers(period) {
            return Err(Refusal::new(
                "consent.period",
                crate::clause!("P4.6(2)"),
                "consent does not cover this data period",
            ));
        }
        Ok(())
    }

    /// Covers delivering one record of `category` dated `effective_at`.
    pub fn covers_write(
        &self,
        category: Category,
        effective_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        self.active_at(now)?;
        if !self.categories.contains(&category) {
            return Err(Refusal::new(
                "consent.category",
                crate::clause!("P4.6(2)"),
                "consent does not cover this category",
            ));
        }
        if !self.period.contains(effective_at) {
            return Err(Refusal::new(
                "consent.period",
                crate::clause!("P4.6(2)"),
                "record date outside the consented period",
            ));
        }
        Ok(())
    }
}

/// Rank of a consent refusal: how far the best consent got. Reporting the best
/// candidate's reason keeps refusals useful without depending on the order consents
/// were granted.
fn rank(code: &str) -> u8 {
    match code {
        "consent.revoked" => 1,
        "consent.expired" => 2,
        "consent.category" => 3,
        "consent.purpose" => 4,
        "consent.period" => 5,
        _ => 0,
    }
}

/// The first consent to `provider` passing `check`, or the most specific refusal
/// (`consent.none` when the provider holds no consent at all).
pub fn find_covering<'c>(
    consents: impl IntoIterator<Item = &'c Consent>,
    provider: &ProviderId,
    check: impl Fn(&Consent) -> Result<(), Refusal>,
) -> Result<&'c Consent, Refusal> {
    let mut best = Refusal::new(
        "consent.none",
        crate::clause!("P4.6(2)"),
        "no consent covers this access",
    );
    for c in consents.into_iter().filter(|c| c.provider == *provider) {
        match check(c) {
            Ok(()) => return Ok(c),
            Err(r) if rank(r.code) > rank(best.code) => best = r,
            Err(_) => {}
        }
    }
    Err(best)
}
