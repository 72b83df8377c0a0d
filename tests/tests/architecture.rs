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

/// Issue 15 §6: every clause id cited outside tests goes through
/// `mebyo_domain::clause!`, which refuses at compile time an id that is not in
/// the catalogue (`domain::refusal::KNOWN_CLAUSES`). A bare `"P4.13(2)"` in
/// product code would escape that check, so none may be left: this lists them.
#[test]
fn every_clause_cited_outside_tests_is_compiler_checked() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut bare = Vec::new();
    for dir in ["domain/src", "domain/operations/src", "adapters", "ops/src"] {
        walk(&root.join(dir), &mut |path, text| {
            bare.extend(bare_clauses(text).into_iter().map(|(n, lit)| {
                format!(
                    "{}:{n}: \"{lit}\"",
                    path.strip_prefix(&root).unwrap().display()
                )
            }));
        });
    }
    assert!(
        bare.is_empty(),
        "clause ids cited without clause!(…):\n{}",
        bare.join("\n")
    );
}

/// Issue 19: the store's simulation covers every file operation only if every
/// one goes through `mebyo_store::disk` (its one way to the disk). A direct
/// `std::fs` or `File` call in the store's own modules would bypass the simulated
/// disk's faults unnoticed: this lists them.
#[test]
fn the_store_reaches_the_disk_only_through_its_disk_seam() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters/store/src");
    let mut direct = Vec::new();
    for name in ["embedded.rs", "log.rs", "clean.rs", "zeros.rs"] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let product = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in product.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            if ["std::fs", "fs::", "File::", "FileExt", "libc::"]
                .iter()
                .any(|p| code.contains(p))
            {
                direct.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        direct.is_empty(),
        "file operations past mebyo_store::disk:\n{}",
        direct.join("\n")
    );
}

/// Rust sources of product code under `dir`: no tests, test kits, benches or
/// examples, no build output.
fn walk(dir: &std::path::Path, f: &mut dyn FnMut(&std::path::Path, &str)) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !["tests", "target", "benches", "examples"].contains(&name.as_str()) {
                walk(&path, f);
            }
        } else if name.ends_with(".rs") && name != "testkit.rs" {
            f(&path, &std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// `(line, literal)` of each clause-like string literal (`"P4.13(2)"`) not in a
/// `clause!`, a comment, an attribute, the catalogue itself, a match pattern or
/// the file's test module.
fn bare_clauses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut catalogue = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        catalogue |= t.contains("pub const KNOWN_CLAUSES");
        if catalogue {
            catalogue = !t.starts_with("];");
            continue;
        }
        if t.starts_with("//") || t.starts_with("#[") {
            continue;
        }
        for (i, _) in line.match_indices("\"P") {
            let lit = &line[i + 1..];
            let Some(end) = lit.find('"') else { continue };
            let lit = &lit[..end];
            let is_clause = lit.len() > 1
                && lit[1..].starts_with(|c: char| c.is_ascii_digit())
                && lit[1..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".()".contains(c));
            let checked = line[..i].ends_with("clause!(");
            let pattern = line[i + end + 2..].trim_start().starts_with("=>")
                || line[i + end + 2..].trim_start().starts_with('|');
            if is_clause && !checked && !pattern {
                found.push((n + 1, lit.to_string()));
            }
        }
    }
    found
}
