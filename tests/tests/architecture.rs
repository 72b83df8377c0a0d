//! The dependency graph keeps its shape (rust-analyzer style): the pure core
//! (`domain/`, `domain/operations/`, `projections/`) never depends, even
//! transitively, on an async runtime, a network or storage crate. If this test
//! fails, move the IO to `adapters/` or `ops/` instead of loosening the list.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const PURE: [&str; 3] = ["mebyo-domain", "mebyo-operations", "mebyo-projections"];
const FORBIDDEN: [&str; 14] = [
    "tokio",
    "async-nats",
    "mio",
    "axum",
    "hyper",
    "reqwest",
    "rusqlite",
    "redb",
    "kurrentdb",
    "eventstore",
    "postgres",
    "tokio-postgres",
    "rustls",
    "mebyo-store",
];

#[test]
fn the_pure_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only the platform we ship (Linux): the lock file also names Windows-only
    // crates that are never downloaded here, and `--offline` cannot fetch them.
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &platform])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Normal (non-dev) dependency edges only: tests may use anything.
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_string();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap().to_string())
            .collect();
        edges.insert(id, deps);
    }
    for pure in PURE {
        let Some(root) = names
            .iter()
            .find(|(_, n)| n.as_str() == pure)
            .map(|(id, _)| id.clone())
        else {
            panic!("{pure} is not in the workspace");
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone()) {
                stack.extend(edges.get(&id).cloned().unwrap_or_default());
            }
        }
        let bad: Vec<&str> = seen
            .iter()
            .map(|id| names[id].as_str())
            .filter(|n| FORBIDDEN.contains(n))
            .collect();
        assert!(
            bad.is_empty(),
            "{pure} depends on IO crates {bad:?}: the pure core must stay pure"
        );
    }
}
