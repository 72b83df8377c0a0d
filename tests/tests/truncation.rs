//! Issue 19 §3: a log cut back at a frame boundary is never served as if nothing
//! happened. After a clean stop of the real `mebyo serve`, the last whole frames
//! are cut off `events.log`: the next start refuses, naming the clean-close
//! record, the snapshot and the last signed checkpoint with their positions;
//! `mebyo store accept-loss` records the operator's decision as an event; then
//! the start serves, ready, and the acceptance is in the log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mebyo_store::{EmbeddedStore, EventStore, OpenOptions};
use mebyo_tests::{mebyo, mebyo_bin, path_str};

const HEADER: usize = 64;
const FRAME_HEADER: usize = 24;

fn serve(data: &Path) -> Child {
    Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
        .args(["--checkpoint-secs", "1", "--tick-secs", "3600"])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running mebyo serve")
}

/// Waits for `child` to exit, for at most `secs`; kills it and fails otherwise.
fn wait_exit(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: mebyo serve did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let st = wait_exit(child, 60, "SIGTERM");
    assert!(st.success(), "mebyo serve exited with {st}");
}

fn frame_ends(log: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = HEADER;
    while at < log.len() {
        let len = u32::from_le_bytes(log[at + 4..at + 8].try_into().unwrap()) as usize;
        at += FRAME_HEADER + len;
        ends.push(at);
    }
    ends
}

fn checkpoint_size(data: &Path) -> Option<u64> {
    let note = std::fs::read_to_string(data.join("checkpoints/latest.note")).ok()?;
    note.lines().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_back_at_a_frame_boundary_is_refused_until_the_loss_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);

    // A platform that served, signed a checkpoint (published outside the log)
    // and stopped cleanly: events.clean and models.snap are written at the stop.
    let mut child = serve(&data);
    let (url, _) = mebyo_tests::wait_for_listening(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoint_size(&data).is_none_or(|s| s < 3) {
        assert!(
            Instant::now() < deadline,
            "no checkpoint published within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(&mut child);
    let signed = checkpoint_size(&data).unwrap();
    for f in [
        "ledger/events.clean",
        "projections/models.snap",
        "checkpoints/latest.note",
    ] {
        assert!(data.join(f).exists(), "{f} after a clean stop");
    }

    // Cut the log back to one frame short of what the checkpoint signed.
    let log_path = data.join("ledger/events.log");
    let log = std::fs::read(&log_path).unwrap();
    let ends = frame_ends(&log);
    let held = ends.len() as u64;
    let keep = signed - 1;
    assert!(keep < held && keep > 0, "{keep} of {held}");
    std::fs::write(&log_path, &log[..ends[keep as usize - 1]]).unwrap();

    // The start refuses, naming every piece of evidence and its position.
    let mut child = serve(&data);
    let st = wait_exit(&mut child, 120, "the refused start");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!st.success(), "a shortened log must not start: {stdout}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(
        stderr.contains(&format!("holds {keep} events")),
        "names where the log ends: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "events.clean (the clean-close record says it held) {held} events"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("projections/models.snap (the read models' snapshot covers)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "checkpoints/latest.note (the last signed checkpoint covers) {signed} events"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("mebyo store accept-loss --data {d} --to {keep}")),
        "says how to accept: {stderr}"
    );
    // Refusing changed nothing: it refuses again.
    let mut again = serve(&data);
    assert!(!wait_exit(&mut again, 120, "the second refused start").success());

    // The operator's decision: the wrong position is refused, the right one recorded.
    let wrong = mebyo(&[
        "store",
        "accept-loss",
        "--data",
        d,
        "--to",
        "1",
        "--by",
        "soa-0001",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains(&format!("holds {keep} events, not 1")),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let accepted = mebyo(&[
        "store",
        "accept-loss",
        "--data",
        d,
        "--to",
        &keep.to_string(),
        "--by",
        "soa-0001",
    ]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(
        data.join(format!("checkpoints/lost-{signed}.note"))
            .exists()
    );

    // Now it serves, and is ready.
    let mut child = serve(&data);
    let (url2, _) = mebyo_tests::wait_for_listening(&mut child);
    assert_ne!(url, "");
    let http = mebyo_tests::served_client(&data);
    let r = http.get(format!("{url2}/readyz")).send().await.unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{:?}", r.text().await);
    stop(&mut child);

    // The decision is an event, right where the log was cut, naming the evidence.
    let store = EmbeddedStore::open(&data.join("ledger"), OpenOptions::default())
        .unwrap()
        .store;
    let events = store.read_stream("ledger-recovery", 0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "one acceptance");
    let e = &events[0];
    assert_eq!(e.event_type, "ledger.loss_accepted");
    assert_eq!(e.position, keep);
    assert_eq!(
        (e.actor.role.as_str(), e.actor.id.as_str()),
        ("staff", "soa-0001")
    );
    let body: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
    assert_eq!(body["to"], keep);
    let files: Vec<&str> = body["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "ledger/events.clean",
            "projections/models.snap",
            "checkpoints/latest.note"
        ]
    );
}
