//! `mebyo keys rotate` and `mebyo erase` from the command line (issue 3 §1, §5):
//! rotation rewraps every key without touching an event and is recorded; a
//! world-readable or wrong KEK is refused and changes nothing (P4.8(1)); erasure
//! needs a withdrawn person and the right witness (P4.9).

use std::os::unix::fs::PermissionsExt;

use mebyo_tests::{mebyo, path_str};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn kek_rotation_and_erasure_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    assert!(
        mebyo(&["demo", "--data", d, "--people", "5", "--seed", "5"])
            .status
            .success()
    );
    let log = data.join("ledger/events.log");
    let kek = data.join("keys/kek");
    let before_log = std::fs::read(&log).unwrap();
    let before_kek = std::fs::read(&kek).unwrap();

    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("no event changed"));
    let after_log = std::fs::read(&log).unwrap();
    assert_eq!(
        &after_log[..before_log.len()],
        &before_log[..],
        "rotation touches no existing event"
    );
    assert!(
        after_log.len() > before_log.len(),
        "rotation is recorded as an event"
    );
    assert_ne!(
        std::fs::read(&kek).unwrap(),
        before_kek,
        "the KEK file was replaced"
    );
    assert_eq!(
        std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v = mebyo(&["audit", "verify", "--data", d]);
    assert!(v.status.success(), "{}", text(&v));

    // The old KEK no longer opens the platform; a world-readable KEK is refused.
    let old = tmp.path().join("old.kek");
    std::fs::write(&old, &before_kek).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keystore_before = std::fs::read(data.join("keys/keystore")).unwrap();
    let r = mebyo(&[
        "erase",
        "--data",
        d,
        "--kek-file",
        path_str(&old),
        "--person",
        "p-0",
        "--witness",
        "soa-0001",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = mebyo(&["keys", "rotate", "--data", d]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r).contains("0644") && text(&r).contains("P4.8(1)"),
        "{}",
        text(&r)
    );
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        std::fs::read(data.join("keys/keystore")).unwrap(),
        keystore_before,
        "refusals change nothing"
    );

    // Erasing a person who has not withdrawn is refused with its clause.
    let demo_person = {
        let b = std::fs::read(&log).unwrap();
        let s = String::from_utf8_lossy(&b);
        let at = s.find("person-p-").expect("a person stream id");
        s[at + 7..at + 7 + 18].to_string()
    };
    let r = mebyo(&[
        "erase",
        "--data",
        d,
        "--person",
        &demo_person,
        "--witness",
        "soa-0001",
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(text(&r).contains("P4.9"), "{}", text(&r));
}
