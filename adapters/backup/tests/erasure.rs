//! P4.9 through backups: after a person is erased, no backup, old or new, gives
//! back their DEK, and their payloads in restored logs stay ciphertext.

mod common;

use std::str::FromStr;

use common::{Fixture, HEALTH_TYPE, files_under, seed};
use mebyo_backup::manifest::KEYSTORE_FILE;
use mebyo_backup::{BackupError, Kind};
use mebyo_crypto::{CryptoError, KeyRef, KeyStore, PersonKeyStatus, Pseudonym};
use mebyo_store::EmbeddedStore;
use mebyo_store::EventStore;

/// Reads every health event of a restored ledger and tries to open it with the
/// restored key store: returns (opened, refused) per person.
async fn decrypt_all(dir: &std::path::Path, ks: &KeyStore, p: &Pseudonym) -> (usize, usize) {
    let store = EmbeddedStore::open(&dir.join("ledger"), Default::default())
        .unwrap()
        .store;
    let evs = store.read_all(0, 100_000).await.unwrap();
    let (mut ok, mut refused) = (0, 0);
    for e in evs.iter().filter(|e| e.event_type == HEALTH_TYPE) {
        let r = KeyRef::from_str(&e.key_ref).unwrap();
        if &r.person != p {
            continue;
        }
        let ad =
            mebyo_crypto::envelope_ad(&e.stream_id, e.stream_revision, HEALTH_TYPE, e.position);
        match ks.dek_for_ref(&r) {
            Ok(dek) => {
                let plain = mebyo_crypto::open(&dek, &ad, &e.payload).unwrap();
                assert!(plain.starts_with(b"blood pressure"));
                ok += 1;
            }
            Err(CryptoError::PersonErased { .. }) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    (ok, refused)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_erasure_between_two_backups_is_effective_in_both() {
    let mut f = Fixture::new(seed("erasure"));
    let alice = f.add_person("p-alice");
    let bob = f.add_person("p-bob");
    f.append_sealed(&alice, 6).await;
    f.append_sealed(&bob, 4).await;
    f.append_plain(20).await;
    let full = f.backup(Kind::Full).unwrap();

    // Before the erasure, the backup does hold Alice's key (the test has teeth).
    let r0 = f.restore_to("r0", None).unwrap();
    let ks0 = KeyStore::open(f.target("r0").join("keys/keystore"), &f.kek).unwrap();
    assert_eq!(ks0.status(&alice), PersonKeyStatus::Active);
    assert_eq!(decrypt_all(&f.target("r0"), &ks0, &alice).await, (6, 0));
    assert_eq!(r0.keystore.as_ref().unwrap().set, full.backup_id);
    std::fs::remove_dir_all(f.target("r0")).unwrap();

    let old_epoch_file = std::fs::read(f.paths().key_paths().epoch_key()).unwrap();
    let old_epoch_key = old_epoch_file[26..].to_vec();
    let old_epoch_id = full.epoch_key_id.clone().unwrap();

    // The erasure, then the rotation the platform runs right after it.
    f.keystore.erase_person(&alice).unwrap();
    let rot = f.rotate();
    assert_eq!(rot.old_epoch_key_id.as_deref(), Some(old_epoch_id.as_str()));
    assert_ne!(rot.new_epoch_key_id, old_epoch_id);

    // The old epoch key exists nowhere any more: not in the keys directory, not in
    // the backups (it never was), not under another name.
    for p in files_under(&f.tmp.path().join("data"))
        .into_iter()
        .chain(files_under(&f.backups))
    {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !contains(&bytes, &old_epoch_key),
            "old epoch key found in {}",
            p.display()
        );
    }
    assert!(
        !f.paths()
            .key_paths()
            .epoch_key()
            .with_extension("key.next")
            .exists()
    );

    // The old key-store backup cannot be decrypted with any key there is.
    let e = mebyo_backup::restore(&mebyo_backup::RestoreRequest {
        from: f.backups.clone(),
        set: None,
        to: f.target("never"),
        keys_dir: f.paths().keys(),
    })
    .map(|r| r.keystore.unwrap().set)
    .unwrap();
    assert_ne!(
        e, full.backup_id,
        "the old key-store backup is never picked"
    );
    std::fs::remove_dir_all(f.target("never")).unwrap();

    f.append_sealed(&bob, 3).await;
    f.append_plain(5).await;
    let diff = f.backup(Kind::Differential).unwrap();
    assert_eq!(
        diff.epoch_key_id.as_deref(),
        Some(rot.new_epoch_key_id.as_str())
    );

    // Restore the latest (full + differential), and the full alone: in both, the
    // key store is a post-erasure one, Alice's payloads stay ciphertext, Bob's open.
    // "r-old" is the full alone: the differential is moved aside for it.
    let aside = f.tmp.path().join("aside");
    for (name, set) in [
        ("r-latest", None),
        ("r-diff", Some(diff.backup_id.as_str())),
        ("r-old", None),
    ] {
        if name == "r-old" {
            std::fs::rename(f.backups.join(&diff.backup_id), &aside).unwrap();
        }
        let r = f.restore_to(name, set).unwrap();
        if name == "r-old" {
            std::fs::rename(&aside, f.backups.join(&diff.backup_id)).unwrap();
            assert_eq!(r.full, full.backup_id);
            assert_eq!(r.differential, None);
        }
        let k = r.keystore.as_ref().unwrap();
        assert_ne!(k.set, full.backup_id, "{name}");
        assert!(k.older_epochs_skipped >= 1, "{name}");
        let ks = KeyStore::open(f.target(name).join("keys/keystore"), &f.kek).unwrap();
        assert_eq!(ks.status(&alice), PersonKeyStatus::Erased, "{name}");
        assert!(matches!(
            ks.dek(&alice, mebyo_crypto::DekKind::Health),
            Err(CryptoError::PersonErased { .. })
        ));
        let (ok, refused) = decrypt_all(&f.target(name), &ks, &alice).await;
        assert_eq!((ok, refused), (0, 6), "{name}");
        let (ok, _) = decrypt_all(&f.target(name), &ks, &bob).await;
        assert!(ok >= 4, "{name}: Bob's payloads still open");
        // The chain verifies (restore checked it; check again, independently).
        match mebyo_store::verify::verify_file(
            &EmbeddedStore::log_path(&f.target(name).join("ledger")),
            mebyo_store::verify::Options {
                progress: &mut |_, _| {},
                person_related: None,
            },
        )
        .unwrap()
        {
            mebyo_store::verify::Outcome::Intact(i) => {
                assert_eq!(hex::encode(i.head_hash), r.head_hash)
            }
            mebyo_store::verify::Outcome::Broken(b) => panic!("{name}: {b}"),
        }
    }

    // With only pre-erasure key-store backups left, restore refuses rather than
    // bring back a key store it cannot (and must not) read.
    std::fs::remove_dir_all(f.backups.join(&diff.backup_id)).unwrap();
    std::fs::remove_dir_all(f.backups.join(&rot.keystore_set.backup_id)).unwrap();
    let e = f.restore_to("r-none", None).unwrap_err();
    assert!(
        matches!(e, BackupError::NoReadableKeystore { tried: 1, .. }),
        "{e}"
    );
    assert!(!f.target("r-none").exists());
    // And the old key-store file itself fails under the current epoch key.
    assert!(f.set_file(&full, KEYSTORE_FILE).exists());
}

#[tokio::test]
async fn an_interrupted_rotation_leaves_a_usable_epoch() {
    let mut f = Fixture::new(seed("rotation_crash"));
    let p = f.add_person("p-carol");
    f.append_sealed(&p, 2).await;
    f.backup(Kind::Full).unwrap();
    let keys = f.paths().key_paths();
    let current = std::fs::read(keys.epoch_key()).unwrap();
    // A crash after staging the next key: a stale `.next` file.
    let next = keys.dir.join("backup.key.next");
    std::fs::write(&next, b"stale").unwrap();
    // A rotation whose key-store backup cannot be written fails and changes nothing.
    let saved = std::fs::read(f.paths().keystore()).unwrap();
    std::fs::write(f.paths().keystore(), b"garbage").unwrap();
    let by = mebyo_backup::StartedBy::Scheduler;
    let job = mebyo_backup::BackupJob {
        data_dir: &f.data,
        dest: &f.backups,
        started_by: &by,
        clock: &f.clock,
        opts: &f.opts,
    };
    let e = mebyo_backup::rotate_backup_epoch(&job, &mut f.rng).unwrap_err();
    assert!(matches!(e, BackupError::Ledger { .. }), "{e}");
    assert_eq!(std::fs::read(keys.epoch_key()).unwrap(), current);
    assert!(
        !next.exists(),
        "the stale and the new staged keys are destroyed"
    );
    std::fs::write(f.paths().keystore(), saved).unwrap();
    // Retried, it completes.
    let rot = f.rotate();
    assert_ne!(std::fs::read(keys.epoch_key()).unwrap(), current);
    let r = f.restore_to("r", None).unwrap();
    assert_eq!(r.keystore.unwrap().set, rot.keystore_set.backup_id);
}
