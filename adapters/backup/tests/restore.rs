//! Backups restore to the same verified history; damaged or incomplete backups
//! are refused, naming what is wrong, and leave nothing behind (P4.10).

mod common;

use common::{Fixture, head_hex, seed};
use mebyo_backup::manifest::{KEYSTORE_FILE, LOG_FILE, MANIFEST_FILE};
use mebyo_backup::{BackupError, Kind};
use mebyo_store::EventStore;

#[tokio::test]
async fn full_and_differentials_restore_to_the_live_head() {
    let mut f = Fixture::new(seed("restore_equal"));
    let p = f.add_person("p-0001");
    f.append_plain(30).await;
    f.append_sealed(&p, 5).await;
    let full = f.backup(Kind::Full).unwrap();
    let head_full = head_hex(&f.store);
    assert_eq!(full.log.as_ref().unwrap().head_hash, head_full);

    f.append_plain(20).await;
    let d1 = f.backup(Kind::Differential).unwrap();
    let head_d1 = head_hex(&f.store);
    f.append_sealed(&p, 7).await;
    f.append_plain(15).await;
    let d2 = f.backup(Kind::Differential).unwrap();
    let head_d2 = head_hex(&f.store);

    // Differential means relative to the last full, not to the last differential.
    for d in [&d1, &d2] {
        let l = d.log.as_ref().unwrap();
        assert_eq!(l.base.as_ref().unwrap().backup_id, full.backup_id);
        assert_eq!(l.from, full.log.as_ref().unwrap().to);
        assert_eq!(l.byte_from, full.log.as_ref().unwrap().byte_to);
    }
    assert!(full.files.iter().any(|x| x.name == KEYSTORE_FILE));
    assert!(
        full.files
            .iter()
            .all(|x| x.chunks >= 1 && x.blake3.len() == 64)
    );

    // Default: the latest full + its latest differential.
    let r = f.restore_to("r-latest", None).unwrap();
    assert_eq!(r.full, full.backup_id);
    assert_eq!(r.differential.as_deref(), Some(d2.backup_id.as_str()));
    assert_eq!(r.head_hash, head_d2);
    assert_eq!(r.events, f.store.head().count);
    // The restored directory opens as a store with the same head.
    let reopened =
        mebyo_store::EmbeddedStore::open(&f.target("r-latest").join("ledger"), Default::default())
            .unwrap()
            .store;
    assert_eq!(reopened.head(), f.store.head());
    drop(reopened);
    // The key store came back byte for byte and opens under the KEK.
    let ks = std::fs::read(f.target("r-latest").join("keys/keystore")).unwrap();
    assert_eq!(ks, std::fs::read(f.paths().keystore()).unwrap());
    mebyo_crypto::KeyStore::open(f.target("r-latest").join("keys/keystore"), &f.kek).unwrap();

    // A named set: the full alone is... its latest differential; a differential, its full + it.
    let r = f.restore_to("r-d1", Some(&d1.backup_id)).unwrap();
    assert_eq!(r.head_hash, head_d1);
    let r = f.restore_to("r-full", Some(&full.backup_id)).unwrap();
    assert_eq!(r.differential.as_deref(), Some(d2.backup_id.as_str()));
    assert_eq!(r.head_hash, head_d2);
    let _ = head_full;

    // Restoring into a non-empty directory is refused and touches nothing there.
    let e = f.restore_to("r-latest", None).unwrap_err();
    assert!(matches!(e, BackupError::TargetNotEmpty { .. }), "{e}");
}

#[tokio::test]
async fn an_empty_differential_and_an_empty_ledger_restore() {
    let mut f = Fixture::new(seed("restore_empty"));
    let full = f.backup(Kind::Full).unwrap();
    assert_eq!(full.log.as_ref().unwrap().to, 0);
    let d = f.backup(Kind::Differential).unwrap();
    assert_eq!(d.log.as_ref().unwrap().from, 0);
    let r = f.restore_to("r", None).unwrap();
    assert_eq!(r.events, 0);
    assert_eq!(r.head_hash, head_hex(&f.store));
}

/// Damage of every kind, to each file of a set: refused with that file named, and
/// the target directory is left absent.
#[tokio::test]
async fn corrupted_backup_files_are_refused_with_the_file_named() {
    let mut f = Fixture::new(seed("restore_corrupt"));
    let p = f.add_person("p-0002");
    // Enough persons that the key store spans several 1 KiB chunks.
    for i in 0..12 {
        f.add_person(&format!("p-extra-{i:04}"));
    }
    f.append_plain(40).await;
    f.append_sealed(&p, 5).await;
    let full = f.backup(Kind::Full).unwrap();
    f.append_plain(25).await;
    let diff = f.backup(Kind::Differential).unwrap();
    const C: usize = 1024 + 16;
    const H: usize = 29;

    let targets = [
        f.set_file(&full, LOG_FILE),
        f.set_file(&diff, LOG_FILE),
        f.set_file(&diff, KEYSTORE_FILE),
    ];
    for path in &targets {
        let orig = std::fs::read(path).unwrap();
        let chunks = (orig.len() - H).div_ceil(C);
        assert!(chunks >= 2, "{} has {chunks} chunks", path.display());
        let chunk = |i: usize| orig[H + i * C..(H + (i + 1) * C).min(orig.len())].to_vec();
        let mut variants: Vec<(&str, Option<Vec<u8>>)> = vec![
            ("flip a byte", {
                let mut b = orig.clone();
                let at = H + (orig.len() - H) / 2;
                b[at] ^= 0x20;
                Some(b)
            }),
            ("truncate", Some(orig[..orig.len() - 7].to_vec())),
            ("truncate at a chunk boundary", Some(orig[..H + C].to_vec())),
            ("delete a chunk", {
                let mut b = orig[..H].to_vec();
                b.extend((1..chunks).flat_map(chunk));
                Some(b)
            }),
            ("swap two chunks", {
                let mut b = orig[..H].to_vec();
                b.extend(chunk(1));
                b.extend(chunk(0));
                b.extend((2..chunks).flat_map(chunk));
                Some(b)
            }),
            ("delete the file", None),
        ];
        for (what, bytes) in variants.drain(..) {
            match bytes {
                Some(b) => std::fs::write(path, b).unwrap(),
                None => std::fs::remove_file(path).unwrap(),
            }
            let target = f.target("r");
            let e = f.restore_to("r", None).unwrap_err();
            match &e {
                BackupError::Corrupt { file, .. } => assert_eq!(file, path, "{what}: {e}"),
                other => panic!("{what} on {}: unexpected {other}", path.display()),
            }
            assert!(
                e.to_string().contains(path.to_str().unwrap()),
                "{what}: the message names the file: {e}"
            );
            assert!(!target.exists(), "{what}: a refused restore leaves nothing");
            std::fs::write(path, &orig).unwrap();
        }
    }
    // Editing a file *and* its digest in the manifest, without the key: the MAC fails.
    let mpath = f.backups.join(&diff.backup_id).join(MANIFEST_FILE);
    let orig_manifest = std::fs::read_to_string(&mpath).unwrap();
    let log_path = f.set_file(&diff, LOG_FILE);
    let mut b = std::fs::read(&log_path).unwrap();
    b[H + 3] ^= 1;
    std::fs::write(&log_path, &b).unwrap();
    let new_digest = blake3::hash(&b).to_hex().to_string();
    let entry = diff.files.iter().find(|x| x.name == LOG_FILE).unwrap();
    std::fs::write(&mpath, orig_manifest.replace(&entry.blake3, &new_digest)).unwrap();
    let e = f.restore_to("r", Some(&diff.backup_id)).unwrap_err();
    assert!(
        matches!(e, BackupError::Manifest { ref path, .. } if path == &mpath),
        "{e}"
    );
    assert!(!f.target("r").exists());
    // Nothing damaged any more: the restore works again.
    std::fs::write(&mpath, orig_manifest).unwrap();
    std::fs::write(&log_path, {
        b[H + 3] ^= 1;
        b
    })
    .unwrap();
    f.restore_to("r", None).unwrap();
}

#[tokio::test]
async fn a_differential_without_its_full_is_refused() {
    let mut f = Fixture::new(seed("restore_no_full"));
    f.append_plain(10).await;
    // No full yet: a differential cannot even be taken.
    let e = f.backup(Kind::Differential).unwrap_err();
    assert!(matches!(e, BackupError::NoFullBackup { .. }), "{e}");
    assert_eq!(
        std::fs::read_dir(&f.backups)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );

    let full = f.backup(Kind::Full).unwrap();
    f.append_plain(10).await;
    let diff = f.backup(Kind::Differential).unwrap();
    std::fs::remove_dir_all(f.backups.join(&full.backup_id)).unwrap();
    for set in [None, Some(diff.backup_id.as_str())] {
        let e = f.restore_to("r", set).unwrap_err();
        match &e {
            BackupError::MissingBase {
                differential, base, ..
            } => {
                assert_eq!(differential, &diff.backup_id);
                assert_eq!(base, &full.backup_id);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(
            e.to_string()
                .contains("a differential alone cannot be restored")
        );
        assert!(!f.target("r").exists());
    }
    // Unknown and hostile set names.
    let e = f.restore_to("r", Some("full-nope")).unwrap_err();
    assert!(matches!(e, BackupError::UnknownSet { .. }), "{e}");
    let e = f.restore_to("r", Some("../data")).unwrap_err();
    assert!(matches!(e, BackupError::InvalidInput { .. }), "{e}");
}

#[tokio::test]
async fn an_interrupted_backup_is_ignored() {
    let mut f = Fixture::new(seed("restore_partial"));
    f.append_plain(10).await;
    let full = f.backup(Kind::Full).unwrap();
    // A crash before the manifest: the set directory exists, with files, no manifest.
    let partial = f.backups.join("full-29991231t000000z-00000000");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join(LOG_FILE), b"half").unwrap();
    let listing = mebyo_backup::manifest::list(&f.backups).unwrap();
    assert_eq!(listing.incomplete, vec![partial]);
    let r = f.restore_to("r", None).unwrap();
    assert_eq!(r.full, full.backup_id);
}

#[tokio::test]
async fn the_backup_reads_only_up_to_the_stores_head() {
    let mut f = Fixture::new(seed("restore_head"));
    f.append_plain(10).await;
    let head = f.store.head();
    f.append_plain(10).await;
    // A head from before the last appends (as if they were not yet durable).
    let by = mebyo_backup::StartedBy::Scheduler;
    let job = mebyo_backup::BackupJob {
        data_dir: &f.data,
        dest: &f.backups,
        started_by: &by,
        clock: &f.clock,
        opts: &f.opts,
    };
    let m = mebyo_backup::create_backup(&job, Kind::Full, head, &mut f.rng).unwrap();
    assert_eq!(m.log.as_ref().unwrap().to, 10);
    let r = f.restore_to("r", None).unwrap();
    assert_eq!(r.events, 10);
    assert_eq!(r.head_hash, hex::encode(head.hash));
    // A head that is not this ledger's chain is refused, and leaves no set behind.
    let bogus = mebyo_store::Head {
        count: 5,
        hash: [7; 32],
    };
    let before = std::fs::read_dir(&f.backups).unwrap().count();
    let e = mebyo_backup::create_backup(&job, Kind::Full, bogus, &mut f.rng).unwrap_err();
    assert!(matches!(e, BackupError::Ledger { .. }), "{e}");
    assert_eq!(std::fs::read_dir(&f.backups).unwrap().count(), before);
}
