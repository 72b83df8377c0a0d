//! The store contract: what every [`EventStore`] backend must do, as checks that
//! any backend's tests run through [`store_contract_tests!`](crate::store_contract_tests).
//!
//! Each check takes a fresh, empty store and panics with a message on failure.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;

use crate::format::Actor;
use crate::{ActualRevision, AppendError, EventStore, ExpectedRevision, NewEvent, PayloadKind};

/// A distinct event with a recognisable payload.
pub fn event(n: u64) -> NewEvent {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8] = 0xe7;
    NewEvent {
        event_type: "test.happened".into(),
        schema_version: 1,
        actor: Actor::new("system", "contract"),
        event_id: id,
        correlation_id: id,
        causation_id: [0; 16],
        payload_kind: PayloadKind::AesSiv,
        key_ref: "dek:h:test:1".into(),
        payload: format!("payload-{n}").into_bytes(),
        seal: false,
    }
}

pub async fn append_then_read_stream(s: Arc<dyn EventStore>) {
    let out = s
        .append(
            "person-a",
            ExpectedRevision::NoStream,
            vec![event(0), event(1), event(2)],
        )
        .await
        .expect("append to a new stream");
    assert_eq!(out.first_position, 0);
    assert_eq!(out.last_revision, 2);
    let evs = s.read_stream("person-a", 0, 100).await.unwrap();
    assert_eq!(evs.len(), 3);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.stream_revision, i as u64);
        assert_eq!(e.position, i as u64);
        assert_eq!(e.payload, format!("payload-{i}").into_bytes());
        assert_eq!(e.stream_id, "person-a");
        assert_eq!(
            e.hash,
            e.compute_hash(),
            "stored hash is the hash of the event"
        );
    }
    assert_eq!(
        s.read_stream("person-a", 1, 1).await.unwrap()[0].stream_revision,
        1
    );
    assert_eq!(s.read_stream("person-a", 3, 10).await.unwrap().len(), 0);
    assert_eq!(s.read_stream("person-none", 0, 10).await.unwrap().len(), 0);
    assert_eq!(s.head().hash, out.last_hash);
    assert_eq!(s.head().count, 3);
}

pub async fn expected_revision_conflicts_name_both_sides(s: Arc<dyn EventStore>) {
    s.append(
        "person-a",
        ExpectedRevision::NoStream,
        vec![event(0), event(1)],
    )
    .await
    .unwrap();
    let check = |r: Result<_, AppendError>,
                 want_expected: ExpectedRevision,
                 want_actual: ActualRevision| match r {
        Err(AppendError::WrongExpectedRevision {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, "person-a");
            assert_eq!(expected, want_expected);
            assert_eq!(actual, want_actual);
        }
        other => panic!("expected a conflict, got {other:?}"),
    };
    check(
        s.append("person-a", ExpectedRevision::NoStream, vec![event(2)])
            .await,
        ExpectedRevision::NoStream,
        ActualRevision::Revision(1),
    );
    check(
        s.append("person-a", ExpectedRevision::Exact(0), vec![event(2)])
            .await,
        ExpectedRevision::Exact(0),
        ActualRevision::Revision(1),
    );
    match s
        .append("person-b", ExpectedRevision::Exact(0), vec![event(2)])
        .await
    {
        Err(AppendError::WrongExpectedRevision { actual, .. }) => {
            assert_eq!(actual, ActualRevision::NoStream)
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.head().count, 2, "a conflict writes nothing");
    s.append("person-a", ExpectedRevision::Exact(1), vec![event(3)])
        .await
        .unwrap();
    let out = s
        .append("person-a", ExpectedRevision::Any, vec![event(4)])
        .await
        .unwrap();
    assert_eq!(out.last_revision, 3);
}

pub async fn bad_input_is_refused_and_changes_nothing(s: Arc<dyn EventStore>) {
    s.append("person-a", ExpectedRevision::Any, vec![event(0)])
        .await
        .unwrap();
    let before = s.head();
    assert!(matches!(
        s.append(
            "Taro.Yamada@example.jp",
            ExpectedRevision::Any,
            vec![event(1)]
        )
        .await,
        Err(AppendError::Invalid(_))
    ));
    assert!(matches!(
        s.append("person-a", ExpectedRevision::Any, vec![]).await,
        Err(AppendError::Empty)
    ));
    let mut bad_type = event(2);
    bad_type.event_type = "Person Registered".into();
    assert!(matches!(
        s.append("person-a", ExpectedRevision::Any, vec![event(3), bad_type])
            .await,
        Err(AppendError::Invalid(_))
    ));
    let mut plain_with_key = event(4);
    plain_with_key.payload_kind = PayloadKind::Plain;
    assert!(
        s.append("person-a", ExpectedRevision::Any, vec![plain_with_key])
            .await
            .is_err()
    );
    assert_eq!(s.head(), before, "nothing was written");
    assert_eq!(s.read_stream("person-a", 0, 10).await.unwrap().len(), 1);
}

pub async fn read_all_pages_in_order_and_chains(s: Arc<dyn EventStore>) {
    for i in 0..30u64 {
        let stream = format!("stream-{}", i % 4);
        s.append(&stream, ExpectedRevision::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    let mut from = 0;
    loop {
        let page = s.read_all(from, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        from += page.len() as u64;
        all.extend(page);
    }
    assert_eq!(all.len(), 30);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64);
        assert_eq!(e.hash, e.compute_hash());
        if i > 0 {
            assert_eq!(
                e.prev_hash,
                all[i - 1].hash,
                "each event links to the one before"
            );
        }
        assert!(i == 0 || e.recorded_at_us >= all[i - 1].recorded_at_us);
    }
    assert_eq!(s.read_all(30, 10).await.unwrap().len(), 0);
    assert_eq!(s.read_all(29, 10).await.unwrap().len(), 1);
}

/// Concurrent multi-event appends: each append's events are contiguous in the
/// global order and in its stream, and concurrent `Exact` appends to one stream
/// let exactly one writer win each revision.
pub async fn concurrent_appends_are_atomic(s: Arc<dyn EventStore>) {
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("stream-{t}");
            let mut outs = Vec::new();
            for k in 0..5u64 {
                let evs = (0..3).map(|j| event(t * 1000 + k * 10 + j)).collect();
                outs.push(s.append(&stream, ExpectedRevision::Any, evs).await.unwrap());
            }
            outs
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.unwrap());
    }
    let all = s.read_all(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 32 * 5 * 3);
    for o in &outcomes {
        let slice = &all[o.first_position as usize..o.first_position as usize + 3];
        assert!(
            slice.iter().all(|e| e.stream_id == slice[0].stream_id),
            "an append is contiguous"
        );
        assert_eq!(slice[2].stream_revision, o.last_revision);
        assert_eq!(slice[2].hash, o.last_hash);
    }

    // Racing writers on one stream with Exact: one winner per revision.
    s.append("race", ExpectedRevision::NoStream, vec![event(1)])
        .await
        .unwrap();
    let mut racers = Vec::new();
    for r in 0..16u64 {
        let s = s.clone();
        racers.push(tokio::spawn(async move {
            s.append("race", ExpectedRevision::Exact(0), vec![event(500 + r)])
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for r in racers {
        wins += r.await.unwrap() as u32;
    }
    assert_eq!(wins, 1, "exactly one racer wins revision 1");
    assert_eq!(s.read_stream("race", 0, 10).await.unwrap().len(), 2);
}

/// Subscribe from a position: catch up on stored events, then receive live ones,
/// with no gap and no duplicate at the switch.
pub async fn subscribe_catches_up_then_goes_live(s: Arc<dyn EventStore>) {
    for i in 0..10 {
        s.append("a", ExpectedRevision::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let mut sub = s.subscribe_all(3);
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 10..60 {
                s.append(
                    &format!("b-{}", i % 3),
                    ExpectedRevision::Any,
                    vec![event(i)],
                )
                .await
                .unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 57 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended")
            .expect("subscription failed");
        seen.push(e.position);
    }
    writer.await.unwrap();
    let want: Vec<u64> = (3..60).collect();
    assert_eq!(seen, want, "no gap, no duplicate");
    let set: HashSet<_> = seen.iter().collect();
    assert_eq!(set.len(), seen.len());

    // A subscription from beyond the head waits for the events to come.
    let mut future = s.subscribe_all(61);
    s.append("c", ExpectedRevision::Any, vec![event(900)])
        .await
        .unwrap();
    s.append("c", ExpectedRevision::Any, vec![event(901)])
        .await
        .unwrap();
    let e = tokio::time::timeout(std::time::Duration::from_secs(10), future.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.position, 61);
}

/// Expands into one `#[tokio::test]` per contract check. `$make` is an async
/// expression producing a fresh, empty `Arc<dyn EventStore>` (it may use `?`-free
/// setup and keep guards alive by leaking them into the store's lifetime).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            append_then_read_stream,
            expected_revision_conflicts_name_both_sides,
            bad_input_is_refused_and_changes_nothing,
            read_all_pages_in_order_and_chains,
            concurrent_appends_are_atomic,
            subscribe_catches_up_then_goes_live
        );
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                $crate::contract::$name(store).await;
            }
        )*
    };
}
