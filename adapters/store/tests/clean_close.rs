//! The clean-close record: an untouched ledger reopens without scanning every
//! frame, and any change to the log since the close sends the open back to the
//! full scan with its checks (issue 4 §9; see `src/clean.rs` and docs/design.md).

use std::fs::OpenOptions as FsOpen;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mebyo_store::contract::event;
use mebyo_store::{
    ActualRevision, AppendError, EmbeddedStore, EventStore, ExpectedRevision, OpenOptions,
    RecordedEvent,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn append(store: &EmbeddedStore, from: u64, n: u64) {
    rt().block_on(async {
        for i in from..from + n {
            store
                .append(
                    &format!("s-{}", i % 5),
                    ExpectedRevision::Any,
                    vec![event(i)],
                )
                .await
                .unwrap();
        }
    });
}

fn all(store: &EmbeddedStore) -> Vec<RecordedEvent> {
    rt().block_on(store.read_all(0, usize::MAX)).unwrap()
}

fn ledger(n: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    EmbeddedStore::create(&dir, [5; 16], 0).unwrap();
    let o = EmbeddedStore::open(&dir, OpenOptions::default()).unwrap();
    assert!(!o.from_clean_close, "a new ledger has no record");
    append(&o.store, 0, n);
    (tmp, dir)
}

fn open(dir: &Path) -> mebyo_store::embedded::Opened {
    EmbeddedStore::open(dir, OpenOptions::default()).unwrap()
}

#[test]
fn an_untouched_ledger_reopens_from_the_record_and_behaves_the_same() {
    let (_tmp, dir) = ledger(200);
    // A scanned open gives the reference.
    std::fs::remove_file(dir.join("events.clean")).unwrap();
    let scanned = open(&dir);
    assert!(!scanned.from_clean_close);
    let (head, events) = (scanned.store.head(), all(&scanned.store));
    drop(scanned);

    let o = open(&dir);
    assert!(o.from_clean_close, "closed cleanly and untouched");
    assert!(
        !dir.join("events.clean").exists(),
        "the record is gone while the store is open"
    );
    assert_eq!(o.store.head(), head);
    assert_eq!(all(&o.store), events);
    // Stream tips came from the record: optimistic concurrency still works.
    let r = rt().block_on(
        o.store
            .append("s-1", ExpectedRevision::Exact(39), vec![event(1000)]),
    );
    assert!(r.is_ok(), "{r:?}");
    let r = rt().block_on(
        o.store
            .append("s-2", ExpectedRevision::Exact(0), vec![event(1001)]),
    );
    assert!(
        matches!(
            r,
            Err(AppendError::WrongExpectedRevision {
                actual: ActualRevision::Revision(39),
                ..
            })
        ),
        "{r:?}"
    );
    let r = rt().block_on(
        o.store
            .append("s-new", ExpectedRevision::NoStream, vec![event(1002)]),
    );
    assert!(r.is_ok(), "{r:?}");
    let head2 = o.store.head();
    drop(o);
    let o = open(&dir);
    assert!(o.from_clean_close);
    assert_eq!(o.store.head(), head2);
    assert_eq!(all(&o.store).len(), 202);
}

#[test]
fn a_flipped_byte_after_the_close_is_found_by_the_scan() {
    let (_tmp, dir) = ledger(50);
    let log = EmbeddedStore::log_path(&dir);
    let f = FsOpen::new().write(true).read(true).open(&log).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 2000).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], 2000).unwrap();
    drop(f);
    // The log's ctime moved: the record is not trusted, the scan finds the damage.
    let e = EmbeddedStore::open(&dir, OpenOptions::default())
        .err()
        .expect("damage refused");
    assert!(e.to_string().contains("position"), "{e}");
}

#[test]
fn a_truncated_or_extended_log_is_scanned() {
    let (_tmp, dir) = ledger(30);
    let log = EmbeddedStore::log_path(&dir);
    let len = std::fs::metadata(&log).unwrap().len();
    // Extend with zeros (as a torn write would): the scan trims it.
    FsOpen::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len + 100)
        .unwrap();
    let o = open(&dir);
    assert!(!o.from_clean_close);
    assert_eq!(o.torn_tail_bytes, 100);
    assert_eq!(o.store.head().count, 30);
}

#[test]
fn a_changed_offsets_file_or_record_is_not_trusted() {
    let (_tmp, dir) = ledger(40);
    // The offsets file edited: scanned, and the scan rebuilds it.
    let idx = dir.join("events.idx");
    let f = FsOpen::new().write(true).open(&idx).unwrap();
    f.write_all_at(&[0xff; 8], 8).unwrap();
    drop(f);
    let o = open(&dir);
    assert!(!o.from_clean_close);
    assert_eq!(all(&o.store).len(), 40);
    drop(o);
    // The record itself damaged: scanned.
    let rec = dir.join("events.clean");
    let mut b = std::fs::read(&rec).unwrap();
    b[20] ^= 1;
    std::fs::write(&rec, &b).unwrap();
    let o = open(&dir);
    assert!(!o.from_clean_close);
    assert_eq!(all(&o.store).len(), 40);
    drop(o);
    // Another ledger's record beside this log: scanned.
    let (_tmp2, other) = ledger(40);
    std::fs::copy(other.join("events.clean"), dir.join("events.clean")).unwrap();
    let o = open(&dir);
    assert!(!o.from_clean_close);
    assert_eq!(o.store.head().count, 40);
}

#[test]
fn a_copy_taken_while_open_has_no_record_and_is_scanned() {
    // As after a crash: the files as they were while the store was open.
    let (tmp, dir) = ledger(20);
    let o = open(&dir);
    append(&o.store, 100, 5);
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["events.log", "events.idx"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    assert!(!copy.join("events.clean").exists());
    drop(o);
    let c = open(&copy);
    assert!(!c.from_clean_close);
    assert_eq!(c.store.head().count, 25);
}
