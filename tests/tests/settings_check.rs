//! Issue 19 §7: settings are checked when they are loaded. `mebyo serve` on a
//! data directory whose `mebyo.json` holds a zero consent maximum, a zero
//! renewal interval, an unknown field or a business administrator who does not
//! exist, or has no `mebyo.json` at all, refuses to start, and the error names
//! the file and the field.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mebyo_tests::{mebyo, mebyo_bin, path_str};

/// Runs `mebyo serve` and expects it to refuse before listening; returns stderr.
fn refused_start(data: &Path, what: &str) -> String {
    let mut child = Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running mebyo serve");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: mebyo serve started (or hung) instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{what}: {stdout}");
    assert!(!stdout.contains("listening on"), "{what}: {stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn edit(data: &Path, field: &str, value: serde_json::Value) {
    let path = data.join("mebyo.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v[field] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn bad_settings_stop_the_start_naming_the_file_and_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(mebyo(&["init", "--data", path_str(&data)]).status.success());
    let file = data.join("mebyo.json");
    let good = std::fs::read(&file).unwrap();
    let named = file.display().to_string();
    for (field, value, says) in [
        (
            "consent_max_days",
            serde_json::json!(0),
            "consent_max_days is 0; it must be from 1 to 3650 days (P4.6(2))",
        ),
        (
            "credential_renewal_days",
            serde_json::json!(0),
            "credential_renewal_days is 0; it must be from 1 to 3650 days (P4.12(1))",
        ),
        (
            "consent_max_days",
            serde_json::json!(-5),
            "consent_max_days is -5",
        ),
        (
            "credential_renewal_days",
            serde_json::json!(100_000),
            "credential_renewal_days is 100000",
        ),
        (
            "consent_max_dayz",
            serde_json::json!(30),
            "unknown field `consent_max_dayz`",
        ),
        (
            "business_administrator",
            serde_json::json!("ba-0002"),
            "business_administrator is ba-0002, but no staff member of that id holds the business administrator role",
        ),
    ] {
        std::fs::write(&file, &good).unwrap();
        edit(&data, field, value);
        let stderr = refused_start(&data, field);
        assert!(
            stderr.contains(&named) && stderr.contains(says),
            "{field}: {stderr}"
        );
    }
    // A deleted mebyo.json is reported with its name.
    std::fs::remove_file(&file).unwrap();
    let stderr = refused_start(&data, "no mebyo.json");
    assert!(
        stderr.contains(&named) && stderr.contains("No such file"),
        "{stderr}"
    );
    // Restored, the same directory starts (the checks were about the edits).
    std::fs::write(&file, &good).unwrap();
    let mut child = Command::new(mebyo_bin())
        .args([
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    mebyo_tests::wait_for_listening(&mut child);
    let _ = child.kill();
    let _ = child.wait();
}
