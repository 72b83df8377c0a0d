//! `append_then`: a stream's events and, in the same commit right after them,
//! events on other streams — all or nothing (fail closed: an answer recorded
//! with the fact it reports, never without it), durable and readable after a
//! reopen.
use std::sync::Arc;

use mebyo_store::{
    Actor, ActualRevision, AppendError, EmbeddedStore, EventStore, ExpectedRevision, NewEvent,
    OpenOptions, SealPlace, Sealer,
};

/// Seals by reversing the bytes; refuses keys named `erased`.
struct Reverse;

impl Sealer for Reverse {
    fn seal(&self, key_ref: &str, _: &SealPlace<'_>, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        if key_ref.contains("erased") {
            return Err(format!("key {key_ref} was erased"));
        }
        Ok(plaintext.iter().rev().copied().collect())
    }
}

fn plain(t: &str) -> NewEvent {
    NewEvent::plain("bus.noted", Actor::system(), [1; 16], t.as_bytes().to_vec())
}

fn sealed(key: &str, t: &str) -> NewEvent {
    NewEvent::to_seal(
        "record.added",
        Actor::system(),
        [2; 16],
        key,
        t.as_bytes().to_vec(),
    )
}

fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open(
        dir,
        OpenOptions {
            sealer: Some(Arc::new(Reverse)),
            ..Default::default()
        },
    )
    .unwrap()
    .store
}

#[tokio::test]
async fn a_fact_and_its_answer_are_appended_together_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    EmbeddedStore::create(&dir, [3; 16], 0).unwrap();
    let store = open(&dir);

    // Together: contiguous positions, the first part first, revisions per stream.
    let out = store
        .append_then(
            "records-p1",
            ExpectedRevision::NoStream,
            vec![sealed("k-p1", "bp 128/82")],
            vec![("bus-requests-a".into(), vec![plain("answer 1")])],
        )
        .await
        .unwrap();
    assert_eq!((out.first_position, out.last_revision), (0, 0));
    assert_eq!(store.head().count, 2);
    let all = store.read_all(0, 10).await.unwrap();
    assert_eq!(all[0].stream_id, "records-p1");
    assert_eq!(all[0].payload, b"28/821 pb".to_vec(), "sealed in place");
    assert_eq!(all[1].stream_id, "bus-requests-a");
    assert_eq!(all[1].payload, b"answer 1".to_vec());

    // A conflict on the first part writes neither.
    let err = store
        .append_then(
            "records-p1",
            ExpectedRevision::NoStream,
            vec![sealed("k-p1", "again")],
            vec![("bus-requests-a".into(), vec![plain("answer 2")])],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::WrongExpectedRevision {
                actual: ActualRevision::Revision(0),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.head().count, 2, "nothing written");

    // A sealing failure in a later part undoes the first part too, even when
    // other appends share the commit.
    let (bad, good) = tokio::join!(
        store.append_then(
            "records-p1",
            ExpectedRevision::Exact(0),
            vec![sealed("k-p1", "second")],
            vec![("records-p2".into(), vec![sealed("erased-p2", "x")])],
        ),
        store.append(
            "records-p3",
            ExpectedRevision::Any,
            vec![sealed("k-p3", "y")]
        ),
    );
    assert!(matches!(bad, Err(AppendError::Seal(_))), "{bad:?}");
    good.unwrap();
    assert_eq!(store.head().count, 3);
    assert!(
        store
            .read_stream("records-p2", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.read_stream("records-p1", 0, 10).await.unwrap().len(),
        1
    );
    // The undone tip is not left behind: the stream continues at revision 1.
    store
        .append_then(
            "records-p1",
            ExpectedRevision::Exact(0),
            vec![sealed("k-p1", "second")],
            vec![("bus-requests-a".into(), vec![plain("answer 2")])],
        )
        .await
        .unwrap();

    // Bad input is refused before the writer: an empty part, too many events.
    assert!(matches!(
        store
            .append_then(
                "records-p1",
                ExpectedRevision::Any,
                vec![plain("x")],
                vec![("bus-requests-a".into(), vec![])],
            )
            .await,
        Err(AppendError::Empty)
    ));
    let many = (0..1024).map(|_| plain("x")).collect();
    assert!(matches!(
        store
            .append_then(
                "records-p1",
                ExpectedRevision::Any,
                vec![plain("x")],
                vec![("bus-requests-a".into(), many)],
            )
            .await,
        Err(AppendError::TooManyEvents { count: 1025, .. })
    ));
    let head = store.head();
    assert_eq!(head.count, 5);
    drop(store);

    // Durable: a reopen finds every acknowledged event, chained.
    let store = open(&dir);
    assert_eq!(store.head(), head);
    let a = store.read_stream("bus-requests-a", 0, 10).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].payload, b"answer 2".to_vec());
    assert_eq!(a[1].stream_revision, 1);
    let p1 = store.read_stream("records-p1", 0, 10).await.unwrap();
    assert_eq!(
        p1[1].position + 1,
        a[1].position,
        "the answer follows its fact"
    );
}
