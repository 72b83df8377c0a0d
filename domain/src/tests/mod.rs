//! Scenario tests, one file per decider, the authorization matrix and properties.

mod access;
mod audit_grant;
mod credential;
mod fhir;
mod matrix;
mod person;
mod policy;
mod props;
mod provider;
mod records;
mod staff;

/// Every clause literal in the sources is one REQUIREMENTS.md defines (the catalogue
/// in `refusal.rs`), so no rule cites a clause that does not exist.
#[test]
fn every_cited_clause_is_in_the_catalogue() {
    let sources = [
        include_str!("../access.rs"),
        include_str!("../audit_grant.rs"),
        include_str!("../consent.rs"),
        include_str!("../credential.rs"),
        include_str!("../fhir.rs"),
        include_str!("../fhir/elements.rs"),
        include_str!("../person.rs"),
        include_str!("../policy.rs"),
        include_str!("../provider.rs"),
        include_str!("../records.rs"),
        include_str!("../staff.rs"),
        include_str!("access.rs"),
        include_str!("audit_grant.rs"),
        include_str!("credential.rs"),
        include_str!("fhir.rs"),
        include_str!("matrix.rs"),
        include_str!("person.rs"),
        include_str!("policy.rs"),
        include_str!("provider.rs"),
        include_str!("records.rs"),
        include_str!("staff.rs"),
    ];
    let mut cited = 0;
    for src in sources {
        for (i, _) in src.match_indices("\"P") {
            let lit = &src[i + 1..];
            let lit = &lit[..lit.find('"').unwrap()];
            if lit[1..].starts_with(|c: char| c.is_ascii_digit()) {
                assert!(
                    crate::refusal::KNOWN_CLAUSES.contains(&lit),
                    "unknown clause {lit}"
                );
                cited += 1;
            }
        }
    }
    assert!(cited > 100, "{cited}");
}

/// The catalogue the refusals cite from is the repository's own
/// (`docs/policy/catalogue.md`): every clause a refusal may name has its row there, so a
/// fresh clone is complete and no refusal points at a clause nobody can read.
#[test]
fn every_known_clause_has_a_row_in_the_repository_catalogue() {
    const CATALOGUE: &str = include_str!("../../../docs/policy/catalogue.md");
    for clause in crate::refusal::KNOWN_CLAUSES {
        assert!(
            CATALOGUE.contains(&format!("| `{clause}` |")),
            "{clause} has no row in docs/policy/catalogue.md"
        );
    }
}
