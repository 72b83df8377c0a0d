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
    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
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

/// The `ops-keys` events of the ledger in `data`, in order: (type, payload).
fn key_events(data: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    use mebyo_store::{EmbeddedStore, EventStore, OpenOptions};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(&data.join("ledger"), OpenOptions::default())
            .unwrap()
            .store;
        store
            .read_stream("ops-keys", 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.event_type.clone(),
                    serde_json::from_slice(&e.payload).unwrap(),
                )
            })
            .collect()
    })
}

/// Issue 19 §6: a rotation cut by a crash leaves `kek.new` (and `keystore.tmp`)
/// behind. The next run rolls it back when the key store was not rewrapped yet,
/// or finishes it when it was, records which, and later rotations work.
#[test]
fn an_interrupted_kek_rotation_is_rolled_back_or_finished_at_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    assert!(
        mebyo(&["demo", "--data", d, "--people", "3", "--seed", "7"])
            .status
            .success()
    );
    let keys = data.join("keys");
    let private = |p: &std::path::Path, bytes: &[u8]| {
        std::fs::write(p, bytes).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };

    // Crash before the rewrapped key store replaced the old one: a new KEK of
    // another platform's making, and a half-written temp key store.
    let other = tmp.path().join("other");
    assert!(
        mebyo(&["init", "--data", path_str(&other)])
            .status
            .success()
    );
    private(
        &keys.join("kek.new"),
        &std::fs::read(other.join("keys/kek")).unwrap(),
    );
    private(&keys.join("keystore.tmp"), b"half a key store");
    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
    assert!(
        r.status.success(),
        "a rotation after the crash: {}",
        text(&r)
    );
    assert!(!keys.join("kek.new").exists() && !keys.join("keystore.tmp").exists());
    let events = key_events(&data);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["keys.kek_rotation_recovered", "keys.kek_rotated"]);
    assert_eq!(events[0].1["outcome"], "rolled_back");
    // And the next one too.
    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
    assert!(r.status.success(), "{}", text(&r));

    // Crash after the key store was rewrapped, before kek.new replaced kek.
    let before = std::fs::read(keys.join("kek")).unwrap();
    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
    assert!(r.status.success(), "{}", text(&r));
    let rewrapped_under = std::fs::read(keys.join("kek")).unwrap();
    private(&keys.join("kek.new"), &rewrapped_under);
    private(&keys.join("kek"), &before);
    let v = mebyo(&["audit", "verify", "--data", d]);
    assert!(v.status.success(), "{}", text(&v));
    let r = mebyo(&["keys", "rotate", "--data", d, "--by", "soa-0001"]);
    assert!(
        r.status.success(),
        "a rotation after the crash: {}",
        text(&r)
    );
    assert!(!keys.join("kek.new").exists());
    let events = key_events(&data);
    let (t, body) = &events[events.len() - 2];
    assert_eq!(t, "keys.kek_rotation_recovered");
    assert_eq!(body["outcome"], "finished", "{body}");
    assert_eq!(events.last().unwrap().0, "keys.kek_rotated");
}
