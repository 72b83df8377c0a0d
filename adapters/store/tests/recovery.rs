//! Recovery after damage to the log file, injected byte by byte: a torn tail is
//! repaired (losing only unacknowledged bytes); any other damage stops the open
//! with its position and is never skipped.

use std::fs::OpenOptions as FsOpen;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mebyo_store::contract::event;
use mebyo_store::verify::{self, Outcome};
use mebyo_store::{
    EmbeddedStore, EventStore, ExpectedRevision, OpenOptions, StoreError, embedded::OpenError,
};

fn ledger_with(n: u64) -> (tempfile::TempDir, PathBuf, Vec<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    EmbeddedStore::create(&dir, [3; 16], 0).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = EmbeddedStore::open(&dir, OpenOptions::default())
        .unwrap()
        .store;
    rt.block_on(async {
        for i in 0..n {
            store
                .append(
                    &format!("s-{}", i % 3),
                    ExpectedRevision::Any,
                    vec![event(i)],
                )
                .await
                .unwrap();
        }
    });
    drop(store);
    let offsets = frame_offsets(&EmbeddedStore::log_path(&dir));
    (tmp, dir, offsets)
}

/// Frame offsets, found by walking the length fields (independent of the store).
fn frame_offsets(log: &Path) -> Vec<u64> {
    let b = std::fs::read(log).unwrap();
    let mut at = 64usize;
    let mut out = Vec::new();
    while at < b.len() {
        out.push(at as u64);
        at += 24 + u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    out
}

fn open(dir: &Path) -> Result<(u64, u64), OpenError> {
    let o = EmbeddedStore::open(dir, OpenOptions::default())?;
    Ok((o.store.head().count, o.torn_tail_bytes))
}

fn verify(dir: &Path) -> Outcome {
    verify::verify_file(
        &EmbeddedStore::log_path(dir),
        verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    )
    .unwrap()
}

/// What a crash leaves: no clean-close record (it is removed at open and written
/// only at a clean close). A cut after a clean close is a loss, not a torn tail.
fn crash(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("events.clean"));
}

/// Issue 19 §3: frames cut off at a boundary after a clean close are refused,
/// with both positions, and stay refused; only the operator's acceptance of that
/// exact end opens the log.
#[test]
fn a_log_shorter_than_its_clean_close_record_is_refused_until_accepted() {
    let (_tmp, dir, offsets) = ledger_with(5);
    let log = EmbeddedStore::log_path(&dir);
    let full = std::fs::read(&log).unwrap();
    std::fs::write(&log, &full[..offsets[3] as usize]).unwrap();
    for _ in 0..2 {
        match EmbeddedStore::open(&dir, OpenOptions::default()) {
            Err(mebyo_store::embedded::OpenError::Shorter {
                count,
                clean_close_count,
                ..
            }) => assert_eq!((count, clean_close_count), (3, 5)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a shortened log opened"),
        }
    }
    let wrong = OpenOptions {
        accept_loss_to: Some(4),
        ..Default::default()
    };
    assert!(EmbeddedStore::open(&dir, wrong).is_err());
    let accept = OpenOptions {
        accept_loss_to: Some(3),
        ..Default::default()
    };
    let o = EmbeddedStore::open(&dir, accept).unwrap();
    assert_eq!((o.store.head().count, o.accepted_loss_from), (3, Some(5)));
    drop(o);
    assert_eq!(open(&dir).unwrap().0, 3, "accepted once, it opens");
}

#[test]
fn a_cut_at_every_byte_of_the_last_frame_is_a_torn_tail() {
    let (_tmp, dir, offsets) = ledger_with(5);
    let log = EmbeddedStore::log_path(&dir);
    let full = std::fs::read(&log).unwrap();
    let last = *offsets.last().unwrap() as usize;
    for cut in last + 1..full.len() {
        crash(&dir);
        std::fs::write(&log, &full[..cut]).unwrap();
        assert!(
            matches!(verify(&dir), Outcome::Intact(i) if i.count == 4 && i.torn_tail_bytes > 0)
        );
        let (count, torn) = open(&dir).unwrap();
        assert_eq!((count, torn), (4, (cut - last) as u64), "cut at {cut}");
        assert_eq!(
            std::fs::metadata(&log).unwrap().len(),
            last as u64,
            "tail removed"
        );
    }
}

#[test]
fn unwritten_zero_sectors_at_the_end_are_a_torn_tail() {
    let (_tmp, dir, offsets) = ledger_with(5);
    let log = EmbeddedStore::log_path(&dir);
    let mut b = std::fs::read(&log).unwrap();
    // The file grew but the data never reached the disk: zeros where a frame was.
    b.extend_from_slice(&[0u8; 4096]);
    crash(&dir);
    std::fs::write(&log, &b).unwrap();
    assert_eq!(open(&dir).unwrap().0, 5);
    // A whole last frame whose body was not written (zero from a sector boundary).
    let full = std::fs::read(&log).unwrap();
    let last = offsets[4] as usize;
    let mut z = full.clone();
    let boundary = (last + 24).div_ceil(512) * 512;
    if boundary < z.len() {
        z[boundary..].fill(0);
    } else {
        z[last + 24..].fill(0);
    }
    crash(&dir);
    std::fs::write(&log, &z).unwrap();
    assert!(open(&dir).is_ok());
}

#[test]
fn a_flipped_byte_anywhere_is_reported_never_skipped_or_truncated() {
    let (_tmp, dir, offsets) = ledger_with(6);
    let log = EmbeddedStore::log_path(&dir);
    let full = std::fs::read(&log).unwrap();
    for (k, &off) in offsets.iter().enumerate() {
        // Flip a byte in the middle of frame k: its payload region.
        let at = off as usize + 24 + 60;
        let mut b = full.clone();
        b[at] ^= 0x40;
        std::fs::write(&log, &b).unwrap();
        match open(&dir) {
            Err(OpenError::Store(StoreError::Corrupt { position, .. })) => {
                assert_eq!(position, k as u64, "damage in frame {k}")
            }
            other => panic!(
                "frame {k}: expected corruption, got {:?}",
                other.map(|_| ())
            ),
        }
        assert_eq!(
            std::fs::read(&log).unwrap(),
            b,
            "a refused open changes nothing"
        );
        match verify(&dir) {
            Outcome::Broken(br) => assert_eq!(br.position, k as u64),
            o => panic!("frame {k}: verify said {o:?}"),
        }
    }
}

#[test]
fn damage_in_a_length_field_mid_log_is_not_mistaken_for_a_tail() {
    let (_tmp, dir, offsets) = ledger_with(6);
    let log = EmbeddedStore::log_path(&dir);
    let f = FsOpen::new().write(true).open(&log).unwrap();
    // A huge length makes frame 2 look like it runs past the end of the file.
    f.write_all_at(&0x00ff_ffffu32.to_le_bytes(), offsets[2] + 4)
        .unwrap();
    match open(&dir) {
        Err(OpenError::Store(StoreError::Corrupt { position, .. })) => assert_eq!(position, 2),
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_second_process_cannot_open_the_ledger_for_writing() {
    let (_tmp, dir, _) = ledger_with(1);
    let first = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert!(matches!(
        EmbeddedStore::open(&dir, OpenOptions::default()),
        Err(OpenError::Locked(_))
    ));
    drop(first);
}

#[test]
fn recorded_at_never_goes_back_when_the_clock_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    EmbeddedStore::create(&dir, [1; 16], 0).unwrap();
    let clock = mebyo_store::ManualClock::new(2_000_000);
    let store = EmbeddedStore::open(
        &dir,
        OpenOptions {
            clock: std::sync::Arc::new(clock.clone()),
            sealer: None,
            ..Default::default()
        },
    )
    .unwrap()
    .store;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        store
            .append("a", ExpectedRevision::Any, vec![event(1)])
            .await
            .unwrap();
        clock.set(1_000_000);
        store
            .append("a", ExpectedRevision::Any, vec![event(2)])
            .await
            .unwrap();
        let evs = store.read_all(0, 10).await.unwrap();
        assert_eq!(evs[0].recorded_at_us, 2_000_000);
        assert_eq!(evs[1].recorded_at_us, 2_000_000);
    });
}
