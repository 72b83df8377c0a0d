//! Service providers (P2(3), P4.5(3), P4.11, P4.13(2)): lifecycle state, connection
//! class, attestations with their dates, guidance and warnings. Providers number in
//! the thousands, so rows are plain structs.

use crate::compact::{Interner, ensure_len};
use crate::event::{AnyEvent, Applied};
use mebyo_domain::credential::GuidanceKind;
use mebyo_domain::provider::{
    Attestation, AttestationKind, Basis, ConnectionClass, ProviderEvent, ProviderStatus,
    provider_check,
};
use mebyo_domain::{ProviderId, ProviderState, Refusal, StaffId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRow {
    pub status: ProviderStatus,
    pub responsible: Option<StaffId>,
    pub connection: Option<ConnectionClass>,
    pub basis: Option<Basis>,
    pub applied_at: Option<Timestamp>,
    /// Last status change (approval, rejection, suspension, reinstatement, revocation).
    pub status_since: Option<Timestamp>,
    /// Latest attestation per kind; a new one replaces the old, as in the domain.
    pub attestations: Vec<(AttestationKind, Attestation)>,
    pub guidance: u32,
    pub warnings: u32,
    pub last_guidance_at: Option<Timestamp>,
}

impl Default for ProviderRow {
    fn default() -> Self {
        Self {
            status: ProviderStatus::Unknown,
            responsible: None,
            connection: None,
            basis: None,
            applied_at: None,
            status_since: None,
            attestations: Vec::new(),
            guidance: 0,
            warnings: 0,
            last_guidance_at: None,
        }
    }
}

impl ProviderRow {
    /// Attestation of `kind` in force at `now` (P4.11(1), P4.11(5)).
    pub fn attestation_current(&self, kind: AttestationKind, now: Timestamp) -> bool {
        self.attestations
            .iter()
            .any(|(k, a)| *k == kind && a.attested_on <= now && now < a.valid_until)
    }

    /// Why nothing may reach this provider at `now`, by the domain's own rule, so the
    /// dashboard and the gateway cannot disagree (P2(3), P4.11).
    pub fn check(&self, id: &str, now: Timestamp) -> Result<(), Refusal> {
        let state = ProviderState {
            id: ProviderId::new(id).ok(),
            status: self.status,
            responsible: self.responsible.clone(),
            connection: self.connection,
            attestations: self.attestations.iter().copied().collect(),
            guidance: Vec::new(),
        };
        provider_check(&state, now)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Providers {
    ids: Interner,
    rows: Vec<ProviderRow>,
}

/// A provider's attestation as the dashboard lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AttestationView {
    pub kind: AttestationKind,
    pub attested_on: Timestamp,
    pub valid_until: Timestamp,
    pub current: bool,
}

impl Providers {
    pub fn apply(&mut self, e: &Applied) {
        let AnyEvent::Provider(p) = e.event else {
            return;
        };
        let (provider, at) = match p {
            ProviderEvent::Applied { provider, at, .. }
            | ProviderEvent::Approved { provider, at, .. }
            | ProviderEvent::Rejected { provider, at, .. }
            | ProviderEvent::Suspended { provider, at, .. }
            | ProviderEvent::Reinstated { provider, at, .. }
            | ProviderEvent::Revoked { provider, at, .. }
            | ProviderEvent::Attested { provider, at, .. }
            | ProviderEvent::GuidanceGiven { provider, at, .. } => (provider, *at),
        };
        let ix = self.ids.intern(provider.as_str());
        ensure_len(&mut self.rows, ix, ProviderRow::default());
        let row = &mut self.rows[ix as usize];
        let mut status = |s| {
            row.status = s;
            row.status_since = Some(at);
        };
        match p {
            ProviderEvent::Applied {
                responsible,
                connection,
                basis,
                ..
            } => {
                status(ProviderStatus::Applied);
                row.responsible = Some(responsible.clone());
                row.connection = Some(*connection);
                row.basis = Some(*basis);
                row.applied_at = Some(at);
            }
            ProviderEvent::Approved { .. } | ProviderEvent::Reinstated { .. } => {
                status(ProviderStatus::Approved)
            }
            ProviderEvent::Rejected { .. } => status(ProviderStatus::Rejected),
            ProviderEvent::Suspended { .. } => status(ProviderStatus::Suspended),
            ProviderEvent::Revoked { .. } => status(ProviderStatus::Revoked),
            ProviderEvent::Attested {
                kind, attestation, ..
            } => match row.attestations.iter_mut().find(|(k, _)| k == kind) {
                Some((_, a)) => *a = *attestation,
                None => row.attestations.push((*kind, *attestation)),
            },
            ProviderEvent::GuidanceGiven { kind, .. } => {
                match kind {
                    GuidanceKind::Guidance => row.guidance += 1,
                    GuidanceKind::Warning => row.warnings += 1,
                }
                row.last_guidance_at = Some(at);
            }
        }
    }

    pub fn get(&self, provider: &str) -> Option<&ProviderRow> {
        self.rows.get(self.ids.find(provider)? as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ProviderRow)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| (self.ids.get(i as u32), r))
    }

    pub fn attestations(&self, provider: &str, now: Timestamp) -> Vec<AttestationView> {
        let Some(row) = self.get(provider) else {
            return Vec::new();
        };
        let mut v: Vec<_> = row
            .attestations
            .iter()
            .map(|(kind, a)| AttestationView {
                kind: *kind,
                attested_on: a.attested_on,
                valid_until: a.valid_until,
                current: row.attestation_current(*kind, now),
            })
            .collect();
        v.sort_by_key(|a| a.kind);
        v
    }

    /// Whether anything may reach `provider` at `now`; the refusal names the clause.
    pub fn can_receive(&self, provider: &str, now: Timestamp) -> Result<(), Refusal> {
        let row = self.get(provider).cloned().unwrap_or_default();
        row.check(provider, now)
    }

    /// Providers per status, in [`ProviderStatus`] order.
    pub fn status_counts(&self) -> Vec<(ProviderStatus, u32)> {
        use ProviderStatus::*;
        [Applied, Approved, Rejected, Suspended, Revoked]
            .into_iter()
            .map(|s| (s, self.rows.iter().filter(|r| r.status == s).count() as u32))
            .collect()
    }

    /// Approved providers that may not receive at `now` because an attestation lapsed
    /// (P4.11(1), P4.11(5)): the prefecture's follow-up list.
    pub fn lapsed_attestations(&self, now: Timestamp) -> Vec<&str> {
        self.iter()
            .filter(|(id, r)| r.status == ProviderStatus::Approved && r.check(id, now).is_err())
            .map(|(id, _)| id)
            .collect()
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.rows.len() > self.ids.len() {
            return Err("provider rows without ids");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    #[test]
    fn lifecycle_attestations_and_guidance() {
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.provider_approved("app", ConnectionClass::TlsInternet);
        log.push(ProviderEvent::Suspended {
            provider: prid("app"),
            by: sid("pref"),
            at: days(1),
        });
        log.push(ProviderEvent::GuidanceGiven {
            provider: prid("app"),
            kind: GuidanceKind::Warning,
            by: sid("pref"),
            at: days(1),
        });
        let m = log.fold();
        let p = &m.providers();
        let clinic = p.get("clinic").unwrap();
        assert_eq!(clinic.status, ProviderStatus::Approved);
        assert_eq!(clinic.connection, Some(ConnectionClass::ClosedIpVpn));
        assert!(p.can_receive("clinic", days(0)).is_ok());
        // Attestations run a year from day -30 (testkit): lapsed at day 400 (P4.11(5)).
        let views = p.attestations("clinic", days(400));
        assert_eq!(views.len(), 2);
        assert!(views.iter().all(|a| !a.current));
        let r = p.can_receive("clinic", days(400)).unwrap_err();
        assert_eq!(
            (r.code, r.clause),
            ("provider.attestation_lapsed", "P4.11(1)")
        );
        assert_eq!(p.lapsed_attestations(days(400)), vec!["clinic"]);
        let app = p.get("app").unwrap();
        assert_eq!(
            (app.status, app.warnings, app.guidance),
            (ProviderStatus::Suspended, 1, 0)
        );
        assert_eq!(p.can_receive("app", days(2)).unwrap_err().clause, "P2(3)");
        assert_eq!(
            p.can_receive("nobody", days(2)).unwrap_err().code,
            "provider.not_approved"
        );
        let counts = p.status_counts();
        assert!(counts.contains(&(ProviderStatus::Approved, 1)));
        assert!(counts.contains(&(ProviderStatus::Suspended, 1)));
    }
}
