//! Issue 19 §4: an older copy of the key store or of the identity vault (a
//! restored volume, a rolled-back snapshot) is refused at open, naming the file
//! and how many of the ledger's people it lacks, instead of starting and telling
//! those people their data or password is wrong. Nothing is changed, and putting
//! the right copy back opens again. The two files are apart from the log because
//! identity and health data live in separate areas (P4.8(3)); a restore that puts
//! back copies of different ages (P4.10) is what this catches.

use std::sync::Arc;

use mebyo_crypto::IdentityRecord;
use mebyo_platform::world;
use mebyo_platform::{DataDir, Options, Platform, PlatformError, Settings};
use mebyo_store::ManualClock;

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z

fn identity(n: u32) -> IdentityRecord {
    IdentityRecord {
        name: format!("神奈川 花子{n}"),
        address: format!("横浜市中区日本大通{n}"),
        birth_date: "1980-05-05".into(),
        phone: None,
        email: Some(format!("hanako{n}@example.jp")),
    }
}

fn opts(clock: &ManualClock, seed: u64) -> Options {
    Options {
        clock: Arc::new(clock.clone()),
        seed: Some(seed),
        ..Default::default()
    }
}

fn refused(opened: Result<Platform, PlatformError>) -> String {
    match opened {
        Err(PlatformError::FilesBehindLedger(why)) => why,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("an older file beside the ledger was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_8_3_an_older_key_store_or_vault_is_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = DataDir::new(root);
    let clock = ManualClock::new(NOW_US);
    Platform::init(root, Settings::default(), opts(&clock, 1))
        .await
        .unwrap();
    let org = {
        let p = Platform::open(root, opts(&clock, 2)).await.unwrap();
        let org = world::bootstrap_org(&p).await.unwrap();
        world::enroll_individual(&p, &org, &identity(1))
            .await
            .unwrap();
        org
    };
    // The copies a rolled-back volume would bring back.
    let old_keys = std::fs::read(dir.keystore()).unwrap();
    let old_vault = std::fs::read(dir.vault()).unwrap();
    let later = {
        let p = Platform::open(root, opts(&clock, 3)).await.unwrap();
        world::enroll_individual(&p, &org, &identity(2))
            .await
            .unwrap()
            .id
    };
    let new_keys = std::fs::read(dir.keystore()).unwrap();
    let new_vault = std::fs::read(dir.vault()).unwrap();

    std::fs::write(dir.keystore(), &old_keys).unwrap();
    let why = refused(Platform::open(root, opts(&clock, 4)).await);
    assert!(why.contains(&dir.keystore().display().to_string()), "{why}");
    assert!(why.contains("no keys for 1 of the people"), "{why}");
    assert!(why.contains("P4.8(3)"), "cites its clause: {why}");
    assert!(why.contains(later.as_str()), "names the pseudonym: {why}");
    assert!(
        !why.contains("花子"),
        "no personal data in the error: {why}"
    );
    // Refused, not repaired: the file is as it was put back.
    assert_eq!(std::fs::read(dir.keystore()).unwrap(), old_keys);

    std::fs::write(dir.keystore(), &new_keys).unwrap();
    std::fs::write(dir.vault(), &old_vault).unwrap();
    let why = refused(Platform::open(root, opts(&clock, 5)).await);
    assert!(why.contains(&dir.vault().display().to_string()), "{why}");
    assert!(why.contains("no identity for 1 of the people"), "{why}");

    std::fs::write(dir.vault(), &new_vault).unwrap();
    let p = Platform::open(root, opts(&clock, 6)).await.unwrap();
    assert!(p.identity(&later).unwrap().is_some());
}

const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

async fn sign_up(p: &Platform, office: &mebyo_domain::StaffId, n: u32) -> mebyo_domain::PersonId {
    let auth = mebyo_platform::auth::AuthStore::open(&p.dir.root).unwrap();
    auth.bind_ledger(p.ledger_count());
    let s = p
        .sign_up(
            &auth,
            mebyo_platform::SignUp {
                identity: &identity(n),
                office,
                password_phc: PHC,
            },
        )
        .await
        .unwrap()
        .unwrap();
    s.person
}

/// Issue 19 §4 (P4.8(2), P4.10): an older copy of the password file lacks the
/// sign-ups after it; those people would be told their password is wrong. The
/// file records the ledger's count at each write, and the open checks every
/// sign-up changed since against it. A file that saw more than the ledger holds
/// is refused too. Nothing is changed; the right copy opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_8_2_an_older_password_file_is_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let clock = ManualClock::new(NOW_US);
    Platform::init(root, Settings::default(), opts(&clock, 1))
        .await
        .unwrap();
    let passwords = root.join("auth/passwords.json");
    let office = {
        let p = Platform::open(root, opts(&clock, 2)).await.unwrap();
        let org = world::bootstrap_org(&p).await.unwrap();
        sign_up(&p, &org.office, 1).await;
        org.office
    };
    let old = std::fs::read(&passwords).unwrap();
    let later = {
        let p = Platform::open(root, opts(&clock, 3)).await.unwrap();
        sign_up(&p, &office, 2).await
    };
    let new = std::fs::read(&passwords).unwrap();
    // The current file opens, however much the ledger moved on since it.
    drop(Platform::open(root, opts(&clock, 4)).await.unwrap());

    std::fs::write(&passwords, &old).unwrap();
    let why = refused(Platform::open(root, opts(&clock, 5)).await);
    assert!(why.contains(&passwords.display().to_string()), "{why}");
    assert!(why.contains("no passwords for 1 of the people"), "{why}");
    assert!(why.contains(later.as_str()), "names the pseudonym: {why}");
    assert!(why.contains("P4.8(2)"), "cites its clause: {why}");
    assert!(
        !why.contains("花子") && !why.contains("hanako"),
        "no personal data: {why}"
    );
    assert_eq!(
        std::fs::read(&passwords).unwrap(),
        old,
        "refused, not repaired"
    );

    // A file that saw a longer ledger than this one.
    let mut ahead: serde_json::Value = serde_json::from_slice(&new).unwrap();
    ahead["ledger_count"] = serde_json::json!(1_000_000);
    std::fs::write(&passwords, serde_json::to_vec(&ahead).unwrap()).unwrap();
    let why = refused(Platform::open(root, opts(&clock, 6)).await);
    assert!(why.contains("ledger held 1000000 events"), "{why}");

    std::fs::write(&passwords, &new).unwrap();
    drop(Platform::open(root, opts(&clock, 7)).await.unwrap());
}
