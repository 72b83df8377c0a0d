//! Every run, drill and failure is an event on `ops-backups` (P4.10).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{Fixture, seed};
use mebyo_backup::jobs::{self, EVENT_COMPLETED, EVENT_FAILED, EVENT_VERIFIED, STREAM};
use mebyo_backup::{BackupOptions, BackupSchedule, Kind, StartedBy};
use mebyo_store::{Clock, EventStore};

async fn ops_events(f: &Fixture) -> Vec<(String, serde_json::Value, String)> {
    f.store
        .read_stream(STREAM, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.event_type.clone(),
                serde_json::from_slice(&e.payload).unwrap(),
                format!("{}/{}", e.actor.role, e.actor.id),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_failures_and_drills_are_recorded_in_the_ledger() {
    let mut f = Fixture::new(seed("jobs"));
    let p = f.add_person("p-0003");
    f.append_sealed(&p, 3).await;
    f.append_plain(10).await;
    let clock: Arc<dyn Clock> = f.clock_arc();
    let by = StartedBy::operator("op-7").unwrap();
    let opts = || BackupOptions { chunk_bytes: 4096 };
    let (data, dest): (PathBuf, PathBuf) = (f.data.clone(), f.backups.clone());

    // A differential with no full: refused, and the refusal is an event.
    let r = jobs::run_backup(
        &f.store,
        data.clone(),
        dest.clone(),
        Kind::Differential,
        by.clone(),
        clock.clone(),
        opts(),
    )
    .await;
    assert!(r.result.is_err());
    r.event_position.unwrap();

    let head_before = f.store.head();
    let r = jobs::run_backup(
        &f.store,
        data.clone(),
        dest.clone(),
        Kind::Full,
        by.clone(),
        clock.clone(),
        opts(),
    )
    .await;
    let m = r.result.unwrap();
    let pos = r.event_position.unwrap();
    assert_eq!(
        pos, head_before.count,
        "the event follows the backed-up head"
    );

    let d = jobs::drill(
        &f.store,
        data.clone(),
        dest.clone(),
        StartedBy::Scheduler,
        clock.clone(),
    )
    .await;
    let report = d.result.unwrap();
    assert_eq!(report.restore.head_hash, hex::encode(head_before.hash));
    assert_eq!(report.live_hash, report.restore.head_hash);

    let evs = ops_events(&f).await;
    let types: Vec<&str> = evs.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(types, [EVENT_FAILED, EVENT_COMPLETED, EVENT_VERIFIED]);

    let failed = &evs[0].1;
    assert_eq!(failed["kind"], "differential");
    assert_eq!(failed["started_by"], "operator:op-7");
    assert!(failed["error"].as_str().unwrap().contains("no full backup"));
    assert_eq!(evs[0].2, "operator/op-7");

    let done = &evs[1].1;
    assert_eq!(done["kind"], "full");
    assert_eq!(done["backup_id"], m.backup_id);
    assert_eq!(done["range"]["from"], 0);
    assert_eq!(done["range"]["to"], head_before.count);
    assert_eq!(done["range"]["head_hash"], hex::encode(head_before.hash));
    assert_eq!(done["started_by"], "operator:op-7");
    for file in &m.files {
        let e = done["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == file.name.as_str())
            .unwrap();
        assert_eq!(e["blake3"], file.blake3.as_str());
    }
    assert_eq!(done["manifest_blake3"].as_str().unwrap().len(), 64);

    let verified = &evs[2].1;
    assert_eq!(verified["full"], m.backup_id);
    assert_eq!(verified["head_hash"], hex::encode(head_before.hash));
    assert_eq!(evs[2].2, "system/scheduler");

    // A drill against backups of another history fails, and says so in the ledger.
    let other = tempfile::tempdir().unwrap();
    let d = jobs::drill(
        &f.store,
        data.clone(),
        other.path().to_path_buf(),
        StartedBy::Scheduler,
        clock.clone(),
    )
    .await;
    assert!(d.result.is_err());
    let evs = ops_events(&f).await;
    assert_eq!(evs.last().unwrap().0, EVENT_FAILED);
    assert_eq!(evs.last().unwrap().1["operation"], "drill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_due_takes_what_the_schedule_says() {
    let mut f = Fixture::new(seed("run_due"));
    f.append_plain(5).await;
    let clock: Arc<dyn Clock> = f.clock_arc();
    let s = BackupSchedule::default();
    macro_rules! go {
        ($f:expr) => {
            jobs::run_due(
                &$f.store,
                $f.data.clone(),
                $f.backups.clone(),
                &s,
                clock.clone(),
                BackupOptions::default(),
            )
        };
    }
    // Nothing ever backed up: a full now, and then nothing more is due.
    let o = go!(f).await.unwrap();
    assert_eq!(o.ran.unwrap().result.unwrap().kind, Kind::Full);
    assert!(o.flags.is_empty(), "{:?}", o.flags);
    assert!(go!(f).await.unwrap().ran.is_none());
    // A day later, a differential.
    f.clock.advance(mebyo_backup::MICROS_PER_DAY);
    let o = go!(f).await.unwrap();
    assert_eq!(o.ran.unwrap().result.unwrap().kind, Kind::Differential);
    assert_eq!(
        f.store.read_stream(STREAM, 0, 10).await.unwrap().len(),
        2,
        "both runs recorded"
    );
}
