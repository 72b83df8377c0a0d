//! Scenario tests, one file per decider, plus the clause catalogue check.

mod anomaly;
mod incident;
mod maintenance;
mod media;
mod monitoring;
mod report;

/// Every clause literal in the sources is in a catalogue, so no rule cites a clause
/// that does not exist (the operational twin of the core's test).
#[test]
fn every_cited_clause_is_in_the_catalogue() {
    let sources = [
        include_str!("../anomaly.rs"),
        include_str!("../incident.rs"),
        include_str!("../maintenance.rs"),
        include_str!("../media.rs"),
        include_str!("../monitoring.rs"),
        include_str!("../report.rs"),
        include_str!("anomaly.rs"),
        include_str!("incident.rs"),
        include_str!("maintenance.rs"),
        include_str!("media.rs"),
        include_str!("monitoring.rs"),
        include_str!("report.rs"),
    ];
    let mut cited = 0;
    for src in sources {
        for (i, _) in src.match_indices("\"P") {
            let lit = &src[i + 1..];
            let lit = &lit[..lit.find('"').unwrap()];
            if lit[1..].starts_with(|c: char| c.is_ascii_digit()) {
                assert!(crate::clause::known(lit), "unknown clause {lit}");
                cited += 1;
            }
        }
    }
    assert!(cited > 60, "{cited}");
}
