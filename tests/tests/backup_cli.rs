//! Backups through the real binary (issue 7 §1, P4.10): init, load, a full
//! backup, more load, a differential, restore into a new directory, and `audit
//! verify` there gives the same head hash as the live ledger had. Also: a
//! corrupted backup is refused naming the file, and a locked ledger is explained.

use std::path::Path;

use mebyo_tests::{mebyo, path_str};

fn ok(args: &[&str]) -> String {
    let out = mebyo(args);
    assert!(
        out.status.success(),
        "mebyo {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn load(data: &Path, appends: &str) {
    ok(&[
        "debug",
        "load",
        "--data",
        path_str(data),
        "--appenders",
        "4",
        "--appends",
        appends,
    ]);
}

/// "intact: N events, head hash H" → (N, H)
fn verified_head(data: &Path) -> (u64, String) {
    let out = ok(&["audit", "verify", "--data", path_str(data)]);
    let line = out
        .lines()
        .find(|l| l.starts_with("intact: "))
        .unwrap_or_else(|| panic!("no intact line in:\n{out}"));
    let n = line["intact: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let h = line.rsplit(' ').next().unwrap().to_string();
    (n, h)
}

fn set_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("backup "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no backup line in:\n{out}"))
        .to_string()
}

#[test]
fn full_then_differential_restores_to_the_same_verified_head() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    let restored = tmp.path().join("restored");
    ok(&["init", "--data", path_str(&data)]);
    load(&data, "20");

    let out = ok(&[
        "backup",
        "run",
        "--data",
        path_str(&data),
        "--kind",
        "full",
        "--to",
        path_str(&backups),
        "--by",
        "op-0001",
    ]);
    let full = set_id(&out);
    assert!(
        out.contains("recorded backup.completed at ledger position"),
        "{out}"
    );

    load(&data, "20");
    let (live_count, live_head) = verified_head(&data);
    let out = ok(&[
        "backup",
        "run",
        "--data",
        path_str(&data),
        "--kind",
        "differential",
        "--to",
        path_str(&backups),
        "--by",
        "op-0001",
    ]);
    let diff = set_id(&out);
    assert!(out.contains(&format!("builds on full {full}")), "{out}");
    assert!(out.contains(&format!("head hash {live_head}")), "{out}");

    let keys = data.join("keys");
    let out = ok(&[
        "backup",
        "restore",
        "--from",
        path_str(&backups),
        "--to",
        path_str(&restored),
        "--keys",
        path_str(&keys),
    ]);
    assert!(
        out.contains(&format!("restored full {full} + differential {diff}")),
        "{out}"
    );
    assert!(out.contains(&live_head), "{out}");

    // The auditor's verifier, on the restored directory: exit 0, same head.
    let (count, head) = verified_head(&restored);
    assert_eq!((count, head), (live_count, live_head));

    // A drill, recorded in the live ledger.
    let out = ok(&[
        "backup",
        "drill",
        "--data",
        path_str(&data),
        "--from",
        path_str(&backups),
        "--by",
        "op-0001",
    ]);
    assert!(out.contains("drill passed"), "{out}");
    assert!(out.contains("recorded backup.verified"), "{out}");

    // Listing shows both sets.
    let out = ok(&["backup", "list", "--from", path_str(&backups)]);
    assert!(out.contains(&full) && out.contains(&diff), "{out}");

    // A corrupted file is refused with its name, exit 1, nothing written.
    let victim = backups.join(&diff).join("events.log.enc");
    let mut b = std::fs::read(&victim).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x01;
    std::fs::write(&victim, &b).unwrap();
    let again = tmp.path().join("again");
    let out = mebyo(&[
        "backup",
        "restore",
        "--from",
        path_str(&backups),
        "--to",
        path_str(&again),
        "--keys",
        path_str(&keys),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path_str(&victim)), "{err}");
    assert!(!again.exists());
}

#[test]
fn a_differential_without_a_full_and_a_locked_ledger_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    ok(&["init", "--data", path_str(&data)]);
    load(&data, "3");
    let out = mebyo(&[
        "backup",
        "run",
        "--data",
        path_str(&data),
        "--kind",
        "differential",
        "--to",
        path_str(&backups),
        "--by",
        "op-0001",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no full backup"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("recorded backup.failed"), "{stdout}");

    // Hold the ledger's lock as a server would.
    let log = std::fs::File::open(data.join("ledger").join("events.log")).unwrap();
    log.try_lock().unwrap();
    let out = mebyo(&[
        "backup",
        "run",
        "--data",
        path_str(&data),
        "--kind",
        "full",
        "--to",
        path_str(&backups),
        "--by",
        "op-0001",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked") && err.contains("server"), "{err}");
    drop(log);
}
