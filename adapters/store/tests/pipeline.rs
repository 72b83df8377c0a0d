//! The pipelined group commit and the zeros written ahead of the log's end
//! (docs/design.md, "Appending"): what they must not change.

use std::path::Path;
use std::sync::Arc;

use mebyo_store::contract::event;
use mebyo_store::{
    ActualRevision, AppendError, EmbeddedStore, EventStore, ExpectedRevision, OpenOptions,
};

fn open(dir: &Path) -> mebyo_store::embedded::Opened {
    EmbeddedStore::open(dir, OpenOptions::default()).unwrap()
}

/// A new, empty ledger in a scratch directory (kept while the `TempDir` lives).
fn new_ledger(id: u8) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    EmbeddedStore::create(&dir, [id; 16], 0).unwrap();
    (tmp, dir)
}

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(EmbeddedStore::log_path(dir))
        .unwrap()
        .len()
}

/// The log's length once it reaches `len_min` (zeros are written in the
/// background); fails after 10 s.
fn wait_for_len(dir: &Path, len_min: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let len = log_len(dir);
        if len >= len_min {
            return len;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no zeros written ahead after 10 s: the log is {len} bytes, expected at least {len_min}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// While the store is open the log carries zeros after its last frame; a copy of
/// the files taken then (what a crash leaves) reopens with every event and the
/// zeros trimmed; a clean close trims them itself, so the clean-close record
/// holds and the next open does not scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeros_written_ahead_are_trimmed_by_a_clean_close_and_by_recovery() {
    let (tmp, dir) = new_ledger(9);
    let o = open(&dir);
    for i in 0..50 {
        o.store
            .append(
                &format!("s-{}", i % 7),
                ExpectedRevision::Any,
                vec![event(i)],
            )
            .await
            .unwrap();
    }
    let head = o.store.head();
    assert_eq!(head.count, 50);
    // The zeros are written by a thread of their own, after the appends asked.
    wait_for_len(&dir, 2 << 20);

    // What a crash leaves: the files as they are now.
    let crashed = tmp.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), crashed.join(entry.file_name())).unwrap();
    }
    let r = open(&crashed);
    assert!(!r.from_clean_close);
    assert_eq!(r.store.head(), head, "every event back, same head");
    assert!(r.torn_tail_bytes > 0, "the zeros were trimmed");
    let all = r.store.read_all(0, usize::MAX).await.unwrap();
    assert_eq!(all.len(), 50);
    drop(r);

    drop(o);
    let len_closed = log_len(&dir);
    assert!(
        len_closed < 1 << 20,
        "a clean close trims the zeros: {len_closed} bytes left"
    );
    let again = open(&dir);
    assert!(again.from_clean_close, "the trimmed log matches its record");
    assert_eq!(again.store.head(), head);
}

/// A conflict is answered only once the write it conflicts with is visible to
/// readers: an appender that gets `WrongExpectedRevision { actual: n }` and reads
/// the stream at once finds revision n. Otherwise a retry loop (reload, decide,
/// append) could spin through its attempts against state it cannot see yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_reported_only_once_the_conflicting_write_is_visible() {
    let (_tmp, dir) = new_ledger(8);
    let store = Arc::new(open(&dir).store);
    let appenders_n = 16u64;
    let increments_per_appender = 20u64;
    let mut tasks = Vec::new();
    for a in 0..appenders_n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for i in 0..increments_per_appender {
                loop {
                    let seen = store.read_stream("counter", 0, usize::MAX).await.unwrap();
                    let expected = match seen.last() {
                        Some(e) => ExpectedRevision::Exact(e.stream_revision),
                        None => ExpectedRevision::NoStream,
                    };
                    match store
                        .append("counter", expected, vec![event(a * 1000 + i)])
                        .await
                    {
                        Ok(_) => break,
                        Err(AppendError::WrongExpectedRevision { actual, .. }) => {
                            conflicts += 1;
                            let now = store.read_stream("counter", 0, usize::MAX).await.unwrap();
                            if let ActualRevision::Revision(n) = actual {
                                assert!(
                                    now.last().is_some_and(|e| e.stream_revision >= n),
                                    "conflict with revision {n} reported before it was visible"
                                );
                            }
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let all = store.read_stream("counter", 0, usize::MAX).await.unwrap();
    assert_eq!(all.len() as u64, appenders_n * increments_per_appender);
    assert!(
        conflicts > 0,
        "the appenders never raced: the test tested nothing"
    );
}

/// The zeros are written while the writer goes on appending: many ranges of them
/// over 40 MiB of log written by 8 appenders at once, and not one byte of any
/// frame is overwritten by zeros (docs/design.md, "Zeros written ahead").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeros_written_ahead_never_overwrite_a_frame() {
    let (_tmp, dir) = new_ledger(7);
    let store = Arc::new(open(&dir).store);
    let payload_bytes = 32 << 10;
    let appenders_n = 8u64;
    let events_per_appender = 160u64;
    let payload = move |n: u64| -> Vec<u8> {
        // Never zero, so a zeroed piece anywhere would show.
        (0..payload_bytes)
            .map(|i| (n as usize + i) as u8 | 1)
            .collect()
    };
    let mut tasks = Vec::new();
    for a in 0..appenders_n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..events_per_appender {
                let n = a * 1000 + i;
                let mut e = event(n);
                e.payload = payload(n);
                store
                    .append(&format!("s-{a}"), ExpectedRevision::Any, vec![e])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.head();
    drop(store);
    let again = open(&dir);
    assert!(again.from_clean_close);
    assert_eq!(again.store.head(), head);
    // read_all pages by bytes as well as by count.
    let mut all = Vec::new();
    loop {
        let page = again
            .store
            .read_all(all.len() as u64, usize::MAX)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    assert_eq!(all.len() as u64, appenders_n * events_per_appender);
    for e in &all {
        let n = u64::from_le_bytes(e.event_id[..8].try_into().unwrap());
        assert!(e.payload == payload(n), "event {n} was overwritten");
    }
    let verified = mebyo_store::verify::verify_file(
        &EmbeddedStore::log_path(&dir),
        mebyo_store::verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    )
    .unwrap();
    match verified {
        mebyo_store::verify::Outcome::Intact(i) => {
            assert_eq!(i.count, appenders_n * events_per_appender);
            assert_eq!(i.torn_tail_bytes, 0);
        }
        broken => panic!("{broken:?}"),
    }
}
