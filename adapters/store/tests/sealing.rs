//! The sealing seam: payloads marked `seal` are encrypted by the store's sealer,
//! bound to the exact place each event takes; a sealing failure refuses the whole
//! append and writes nothing.
use std::sync::Arc;

use mebyo_store::{
    Actor, AppendError, EmbeddedStore, EventStore, ExpectedRevision, NewEvent, OpenOptions,
    SealPlace, Sealer,
};

/// A stand-in sealer that writes the place it was given into the "ciphertext", so
/// the test can see what the store bound each payload to.
struct PlaceEcho;

impl Sealer for PlaceEcho {
    fn seal(&self, key_ref: &str, p: &SealPlace<'_>, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        if key_ref.contains("erased") {
            return Err(format!("key {key_ref} was erased"));
        }
        let mut out = format!(
            "{}|{}|{}|{}|",
            p.stream_id, p.stream_revision, p.event_type, p.position
        )
        .into_bytes();
        out.extend(plaintext.iter().map(|b| b ^ 0x55));
        Ok(out)
    }
}

fn ev(key: &str, text: &str) -> NewEvent {
    NewEvent::to_seal(
        "record.added",
        Actor::system(),
        [1; 16],
        key,
        text.as_bytes().to_vec(),
    )
}

#[tokio::test]
async fn sealed_payloads_are_bound_to_their_place_and_failures_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    EmbeddedStore::create(&dir, [2; 16], 0).unwrap();
    let store = EmbeddedStore::open(
        &dir,
        OpenOptions {
            sealer: Some(Arc::new(PlaceEcho)),
            ..Default::default()
        },
    )
    .unwrap()
    .store;
    store
        .append(
            "other",
            ExpectedRevision::Any,
            vec![NewEvent::plain(
                "ops.noted",
                Actor::system(),
                [0; 16],
                vec![],
            )],
        )
        .await
        .unwrap();
    store
        .append(
            "records-p1",
            ExpectedRevision::NoStream,
            vec![ev("dek:h:p1:1", "a"), ev("dek:h:p1:1", "b")],
        )
        .await
        .unwrap();
    let evs = store.read_stream("records-p1", 0, 10).await.unwrap();
    assert!(evs[0].payload.starts_with(b"records-p1|0|record.added|1|"));
    assert!(evs[1].payload.starts_with(b"records-p1|1|record.added|2|"));
    assert!(
        !evs[1].payload.ends_with(b"b"),
        "plaintext never reaches the log"
    );

    let before = store.head();
    let r = store
        .append(
            "records-p1",
            ExpectedRevision::Any,
            vec![ev("dek:h:p1:1", "c"), ev("dek:h:erased:1", "d")],
        )
        .await;
    assert!(matches!(r, Err(AppendError::Seal(_))), "{r:?}");
    assert_eq!(store.head(), before, "a failed seal writes nothing");

    // Without a sealer, a payload to seal is refused rather than stored in plaintext.
    drop(store);
    let plain = EmbeddedStore::open(&dir, OpenOptions::default())
        .unwrap()
        .store;
    let r = plain
        .append(
            "records-p1",
            ExpectedRevision::Any,
            vec![ev("dek:h:p1:1", "e")],
        )
        .await;
    assert!(matches!(r, Err(AppendError::Seal(_))));
}
