//! The dashboard's panels and which roles see each (P3.1, P4.6(2)): a rule, so it
//! lives here; the web asks [`shown`] for the HTML and the JSON alike.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Role;

/// A part of the dashboard. Which ones a staff member gets depends on the roles
/// they hold (issue 6 §3 "for staff, by role"; the chain of roles of P3.1), decided
/// here and asked server-side, for the HTML and the JSON alike. No panel holds health
/// content for anyone (P4.6(2)): counts, pseudonymous ids, times and hashes.
///
/// | panel | business admin. | impl. manager | operations manager | system ops admin. | office | prefecture | auditor |
/// | --- | --- | --- | --- | --- | --- | --- | --- |
/// | registrations, consents (counts) | ✓ | ✓ | ✓ | | ✓ | | ✓ |
/// | providers, reads and refusals per provider | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |
/// | credentials: expiry, revocations | ✓ | | ✓ | ✓ | ✓ | ✓ | |
/// | chain: head, checkpoint, verification | ✓ | ✓ | ✓ | ✓ | | | ✓ |
/// | backups (P4.10) | ✓ | | ✓ | ✓ | | | ✓ |
/// | incidents and their reports (P4.14) | ✓ | ✓ | ✓ | ✓ | | | ✓ |
/// | staff training due (P3.4) | ✓ | | ✓ | | | | |
/// | routine operations: media, disposals, maintenance, firewall reviews (P4.3, P4.4, P4.7, P4.9) | ✓ | | ✓ | ✓ | | | |
///
/// The business administrator heads the system and the operations manager runs
/// it: both see everything. The system operations administrator runs the
/// machines (monitoring, backups, incidents, connection information). The office
/// registers people and issues their connection information; the prefecture
/// approves providers and revokes connection information; auditors check the
/// record (chain, backups, incidents) and act on nothing. A member holding
/// several roles sees the union.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Panel {
    Registrations,
    Consents,
    Providers,
    Access,
    Credentials,
    Chain,
    Backups,
    Incidents,
    Staff,
    Operations,
}

impl Panel {
    pub const ALL: [Panel; 10] = [
        Panel::Registrations,
        Panel::Consents,
        Panel::Providers,
        Panel::Access,
        Panel::Credentials,
        Panel::Chain,
        Panel::Backups,
        Panel::Incidents,
        Panel::Staff,
        Panel::Operations,
    ];

    /// The table above, one role at a time.
    pub fn seen_by(self, role: Role) -> bool {
        use Panel::*;
        match role {
            Role::BusinessAdministrator | Role::OperationsManager(_) => true,
            Role::BusinessImplementationManager(_) => matches!(
                self,
                Registrations | Consents | Providers | Access | Chain | Incidents
            ),
            Role::SystemOperationsAdministrator => matches!(
                self,
                Providers | Access | Credentials | Chain | Backups | Incidents | Operations
            ),
            Role::OperationsOffice => matches!(
                self,
                Registrations | Consents | Providers | Access | Credentials
            ),
            Role::Prefecture => matches!(self, Providers | Access | Credentials),
            Role::Auditor => matches!(
                self,
                Registrations | Consents | Providers | Access | Chain | Backups | Incidents
            ),
        }
    }
}

/// The panels shown to a holder of `roles`: the union of each role's.
pub fn shown(roles: &[Role]) -> BTreeSet<Panel> {
    Panel::ALL
        .into_iter()
        .filter(|p| roles.iter().any(|r| p.seen_by(*r)))
        .collect()
}

/// Whether a staff member sees the page of one event of the log (its metadata
/// and hashes, never its payload): whoever sees the chain panel sees any; anyone
/// else the events they recorded themselves, so every action's outcome can link
/// to its event for the one who acted (issue 15 §2).
pub fn event_visible(shown: &BTreeSet<Panel>, recorded_by_viewer: bool) -> bool {
    recorded_by_viewer || shown.contains(&Panel::Chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P3.1, P4.6(2): the business administrator and the operations manager see
    /// every panel; nobody else sees staff training; the office never sees the
    /// incidents or backups.
    #[test]
    fn p3_1_panels_by_role() {
        for r in Role::ALL {
            let all = Panel::ALL.iter().all(|p| p.seen_by(r));
            assert_eq!(
                all,
                matches!(r, Role::BusinessAdministrator | Role::OperationsManager(_)),
                "{r:?}"
            );
            // Everyone on the staff sees the providers.
            assert!(Panel::Providers.seen_by(r));
        }
        assert!(!Panel::Backups.seen_by(Role::OperationsOffice));
        assert!(!Panel::Incidents.seen_by(Role::OperationsOffice));
        assert!(!Panel::Registrations.seen_by(Role::Prefecture));
        assert!(Panel::Incidents.seen_by(Role::Auditor));
        assert!(!Panel::Credentials.seen_by(Role::Auditor));
    }

    #[test]
    fn p3_1_several_roles_see_the_union() {
        let office_and_auditor = shown(&[Role::OperationsOffice, Role::Auditor]);
        assert!(office_and_auditor.contains(&Panel::Credentials));
        assert!(office_and_auditor.contains(&Panel::Incidents));
        assert!(!office_and_auditor.contains(&Panel::Staff));
        assert!(shown(&[]).is_empty());
    }

    #[test]
    fn p3_1_an_event_page_is_the_chain_viewers_or_its_actors() {
        let office = shown(&[Role::OperationsOffice]);
        assert!(!event_visible(&office, false));
        assert!(event_visible(&office, true));
        assert!(event_visible(&shown(&[Role::Auditor]), false));
    }
}
