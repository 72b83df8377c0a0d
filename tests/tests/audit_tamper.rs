//! Issue 8: tampering of every kind is found by `mebyo audit verify` once the
//! ledger holds signed checkpoints, including what the hash chain alone cannot
//! see: a chain rewritten consistently without the key, truncation, an unsigned
//! extension, and a forked history re-signed with the right key (the last two
//! only against a checkpoint saved earlier).

use std::path::{Path, PathBuf};
use std::process::Output;

use mebyo_store::format::Envelope;
use mebyo_store::log::encode_frame;
use mebyo_tests::{mebyo, path_str, seed};
use rand::{Rng, SeedableRng};

const HEADER: usize = 64;
const FRAME_HEADER: usize = 24;

fn log_path(data: &Path) -> PathBuf {
    data.join("ledger").join("events.log")
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn load(data: &Path, seed: u64) {
    ok(mebyo(&[
        "debug",
        "load",
        "--data",
        path_str(data),
        "--appenders",
        "4",
        "--appends",
        "10",
        "--seed",
        &seed.to_string(),
    ]));
}

fn checkpoint(data: &Path, out: &Path) -> String {
    ok(mebyo(&[
        "audit",
        "checkpoint",
        "--data",
        path_str(data),
        "--out",
        path_str(out),
    ]))
}

fn split(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut at = HEADER;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        frames.push(bytes[at..at + FRAME_HEADER + len].to_vec());
        at += FRAME_HEADER + len;
    }
    (bytes[..HEADER].to_vec(), frames)
}

fn decode(frame: &[u8]) -> (u64, Envelope) {
    let prev_in_stream = u64::from_le_bytes(frame[8..16].try_into().unwrap());
    (
        prev_in_stream,
        Envelope::decode_body(&frame[FRAME_HEADER..]).unwrap().0,
    )
}

/// Re-encodes an event as a careful forger would: fresh hash, fresh crc.
fn encode(prev_in_stream: u64, mut e: Envelope) -> (Vec<u8>, [u8; 32]) {
    e.hash = e.compute_hash();
    let mut canonical = Vec::new();
    e.encode_canonical(&mut canonical);
    let mut f = Vec::new();
    encode_frame(&mut f, prev_in_stream, 0, &canonical, &e.hash);
    (f, e.hash)
}

fn is_checkpoint(frame: &[u8]) -> bool {
    decode(frame).1.event_type == "ledger.checkpoint"
}

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    cp1: PathBuf,
    cp2: PathBuf,
    header: Vec<u8>,
    frames: Vec<Vec<u8>>,
    /// Positions of the two checkpoint events.
    p1: usize,
    p2: usize,
}

impl Fixture {
    /// init, load, checkpoint (saved as cp1), load, checkpoint (cp2): all with
    /// the real binary.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        ok(mebyo(&["init", "--data", path_str(&data)]));
        load(&data, 1);
        let cp1 = tmp.path().join("cp1.note");
        checkpoint(&data, &cp1);
        load(&data, 2);
        let cp2 = tmp.path().join("cp2.note");
        checkpoint(&data, &cp2);
        let (header, frames) = split(&std::fs::read(log_path(&data)).unwrap());
        let cps: Vec<usize> = (0..frames.len())
            .filter(|&i| is_checkpoint(&frames[i]))
            .collect();
        let &[p1, p2] = cps.as_slice() else {
            panic!("expected two checkpoint events, found {cps:?}")
        };
        assert_eq!(p2, frames.len() - 1);
        Self {
            _tmp: tmp,
            data,
            cp1,
            cp2,
            header,
            frames,
            p1,
            p2,
        }
    }

    fn write(&self, frames: &[Vec<u8>]) {
        let mut b = self.header.clone();
        for f in frames {
            b.extend_from_slice(f);
        }
        std::fs::write(log_path(&self.data), b).unwrap();
    }

    fn verify(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let mut args = vec![
            "audit",
            "verify",
            "--data",
            path_str(&self.data),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = mebyo(&args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code().unwrap(), v)
    }
}

#[track_caller]
fn broken(
    fx: &Fixture,
    extra: &[&str],
    what: &str,
    position: usize,
    kind: &str,
) -> serde_json::Value {
    let (code, v) = fx.verify(extra);
    assert_eq!(code, 1, "{what}: verify must exit 1, said {v}");
    assert_eq!(v["status"], "broken", "{what}");
    assert_eq!(v["position"], position as u64, "{what}: position, said {v}");
    assert_eq!(v["kind"], kind, "{what}: {v}");
    assert!(
        v["detail"].as_str().unwrap().len() > 20,
        "{what}: a clear message"
    );
    v
}

#[test]
fn every_kind_of_tampering_is_caught_and_named_by_position() {
    let fx = Fixture::new();
    let n = fx.frames.len();
    let cp1 = path_str(&fx.cp1).to_owned();
    let cp2 = path_str(&fx.cp2).to_owned();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed("audit_tamper"));

    let (code, v) = fx.verify(&["--checkpoint", &cp1, "--checkpoint", &cp2]);
    assert_eq!(code, 0, "the untouched ledger verifies: {v}");
    assert_eq!(v["events"], n as u64);
    assert_eq!(v["checkpoints"], 2);
    assert_eq!(v["latest_checkpoint"]["size"], fx.p2 as u64);
    assert_eq!(v["unsigned_tail"], 0);
    assert_eq!(v["external_checkpoints"], 2);
    // cp2 covers every event but the checkpoint event that stores it.
    assert_eq!(v["end_vouched"], true, "{v}");
    assert_eq!(v["vouched_to"], fx.p2 as u64);

    let k = rng.random_range(1..fx.p1 - 1);

    // Change a payload byte, crc fixed: the event's hash no longer matches.
    let mut frames = fx.frames.clone();
    let len = frames[k].len();
    frames[k][len - 80] ^= 0x01;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&frames[k][4..20]),
        &frames[k][FRAME_HEADER..],
    );
    frames[k][20..24].copy_from_slice(&crc.to_le_bytes());
    fx.write(&frames);
    broken(&fx, &[], "change", k, "HashMismatch");

    // Delete, reorder, insert: the chain links break at k.
    let mut frames = fx.frames.clone();
    frames.remove(k);
    fx.write(&frames);
    broken(&fx, &[], "delete", k, "BrokenLink");
    let mut frames = fx.frames.clone();
    frames.swap(k, k + 1);
    fx.write(&frames);
    broken(&fx, &[], "reorder", k, "BrokenLink");
    let mut frames = fx.frames.clone();
    frames.insert(k, fx.frames[k - 1].clone());
    fx.write(&frames);
    broken(&fx, &[], "insert", k, "BrokenLink");

    // Change event k and re-chain everything after it, without the key: the
    // chain is whole again, but the first checkpoint no longer matches the tree.
    let mut frames = fx.frames.clone();
    let mut prev = None;
    for (i, f) in frames.iter_mut().enumerate().skip(k) {
        let (pis, mut e) = decode(f);
        if i == k {
            e.payload[0] ^= 0x01;
        }
        if let Some(p) = prev {
            e.prev_hash = p;
        }
        let (nf, h) = encode(pis, e);
        *f = nf;
        prev = Some(h);
    }
    fx.write(&frames);
    let v = broken(
        &fx,
        &[],
        "rewrite and re-chain",
        fx.p1,
        "CheckpointRootMismatch",
    );
    assert!(v["expected_hash"].is_string() && v["found_hash"].is_string());

    // Truncate whole frames from the end: the chain cannot tell, the saved
    // checkpoint can.
    let cut = rng.random_range(1..=(n - fx.p1 - 2));
    let frames = fx.frames[..n - cut].to_vec();
    fx.write(&frames);
    let (code, v) = fx.verify(&[]);
    assert_eq!(code, 0, "a truncated chain is still a chain");
    // Issue 19 §8: but verify says plainly that nothing vouches for its end,
    // and what to pass to make it check.
    assert_eq!(v["end_vouched"], false, "{v}");
    let why = v["unvouched_end"].as_str().unwrap();
    assert!(
        why.contains("nothing outside the log vouches for its end") && why.contains("--checkpoint"),
        "{why}"
    );
    let text = String::from_utf8(mebyo(&["audit", "verify", "--data", path_str(&fx.data)]).stdout)
        .unwrap();
    assert!(
        text.contains("WARNING: nothing outside the log vouches for its end")
            && text.contains("--checkpoint FILE"),
        "{text}"
    );
    let v = broken(
        &fx,
        &["--checkpoint", &cp2],
        "truncate",
        n - cut,
        "Truncated",
    );
    assert!(v["detail"].as_str().unwrap().contains(&cp2));

    // Extend with forged, self-consistent events (blake3 and crc recomputed):
    // no one signed them, which a verifier that requires a signed head reports.
    let mut frames = fx.frames.clone();
    let mut last = decode(&frames[n - 1]).1.hash;
    // The newest event that is no checkpoint (the verifier reads a checkpoint's
    // payload as a signed note); only checkpoints follow it, so it is its stream's
    // newest too, and the forged events continue that stream.
    let (t, tip) = (0..n)
        .rev()
        .map(|t| (t, decode(&frames[t]).1))
        .find(|(_, e)| e.stream_id != "ledger-checkpoints")
        .expect("the fixture has events outside the checkpoint stream");
    for i in 0..3u64 {
        // Next revision, linked to the stream's previous event (the verifier
        // checks that link too); time does not go back.
        let mut e = tip.clone();
        let pis = if i == 0 { t as u64 } else { n as u64 + i - 1 };
        e.position = n as u64 + i;
        e.stream_revision = tip.stream_revision + 1 + i;
        e.recorded_at_us = decode(&frames[n - 1]).1.recorded_at_us;
        e.prev_hash = last;
        e.payload = format!("forged {i}").into_bytes();
        let (f, h) = encode(pis, e);
        frames.push(f);
        last = h;
    }
    fx.write(&frames);
    let (code, v) = fx.verify(&["--checkpoint", &cp2]);
    assert_eq!(code, 0, "growth after a checkpoint is normal: {v}");
    assert_eq!(
        v["end_vouched"], false,
        "the forged tail is vouched for by no one: {v}"
    );
    assert!(
        v["unvouched_end"].as_str().unwrap().contains(&format!(
            "nothing vouches for positions {}..{}",
            fx.p2,
            n + 3
        )),
        "{v}"
    );
    assert_eq!(v["unsigned_tail"], 3);
    assert_eq!(v["first_unsigned"], n as u64);
    broken(&fx, &["--require-signed-head"], "extend", n, "UnsignedTail");

    // A forged checkpoint over the forged tail, signed with another key.
    // It continues the checkpoint stream from its newest event, linked to it (the
    // verifier checks the stream link before the signature).
    let mut frames = fx.frames.clone();
    let (c, mut e) = (0..n)
        .rev()
        .map(|c| (c, decode(&frames[c]).1))
        .find(|(_, e)| e.stream_id == "ledger-checkpoints")
        .expect("the fixture signed checkpoints");
    let pis = c as u64;
    e.position = n as u64;
    e.stream_revision += 1;
    e.prev_hash = decode(&frames[n - 1]).1.hash;
    let text = String::from_utf8(e.payload.clone()).unwrap();
    // Keep the origin and size line shape; change the signature bytes.
    let sig_at = text.rfind(' ').unwrap() + 5;
    let mut forged = text.into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    e.payload = forged;
    let (f, _) = encode(pis, e);
    frames.push(f);
    fx.write(&frames);
    broken(&fx, &[], "forged checkpoint", n, "CheckpointSignature");

    fx.write(&fx.frames);
    assert_eq!(
        fx.verify(&["--checkpoint", &cp1, "--checkpoint", &cp2]).0,
        0
    );
}

#[test]
fn a_forked_history_signed_with_the_right_key_is_caught_by_a_saved_checkpoint() {
    let fx = Fixture::new();
    let cp1 = path_str(&fx.cp1).to_owned();
    // Roll back to before the first checkpoint, write another history with the
    // real binary, and have the real key sign it: a perfect fork.
    let k = fx.p1 / 2;
    fx.write(&fx.frames[..k]);
    // A forger also removes what vouches for the old end outside the log: the
    // platform refuses a log shorter than those say (issue 19 §3).
    for f in [
        "ledger/events.clean",
        "projections/models.snap",
        "checkpoints/latest.note",
    ] {
        let _ = std::fs::remove_file(fx.data.join(f));
    }
    load(&fx.data, 99);
    let forked_cp = fx.data.parent().unwrap().join("forked.note");
    checkpoint(&fx.data, &forked_cp);
    let (code, v) = fx.verify(&[]);
    assert_eq!(
        code, 0,
        "the fork is self-consistent and properly signed: {v}"
    );
    assert_eq!(v["checkpoints"], 1);

    let v = broken(&fx, &["--checkpoint", &cp1], "fork", fx.p1, "Forked");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("rewritten") && detail.contains(&cp1),
        "{detail}"
    );
    let text = ok_text(mebyo(&[
        "audit",
        "verify",
        "--data",
        path_str(&fx.data),
        "--checkpoint",
        &cp1,
    ]));
    assert!(
        text.contains(&format!("BROKEN at position {}", fx.p1)),
        "{text}"
    );
}

fn ok_text(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn checkpoint_refuses_a_broken_ledger_and_usage_errors_exit_2() {
    let fx = Fixture::new();
    let k = fx.p1 / 2;
    let mut frames = fx.frames.clone();
    frames.remove(k);
    fx.write(&frames);
    let out = mebyo(&["audit", "checkpoint", "--data", path_str(&fx.data)]);
    // The store refuses to open a corrupt ledger (2) or verify refuses to sign (1).
    assert_ne!(out.status.code(), Some(0));
    fx.write(&fx.frames);

    // An external checkpoint that does not verify is bad input, not a verdict.
    let bad = fx.data.parent().unwrap().join("bad.note");
    std::fs::write(&bad, "not a checkpoint\n").unwrap();
    let (code, _) = fx.verify(&["--checkpoint", path_str(&bad)]);
    assert_eq!(code, 2);
    // A verifier key of another ledger is refused with a clear message.
    let other = tempfile::tempdir().unwrap();
    let od = other.path().join("d");
    ok(mebyo(&["init", "--data", path_str(&od)]));
    load(&od, 5);
    checkpoint(&od, &other.path().join("c.note"));
    let out = mebyo(&[
        "audit",
        "verify",
        "--data",
        path_str(&fx.data),
        "--vkey",
        path_str(&od.join("keys/checkpoint.vkey")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong --vkey"));
    // public-key prints what the vkey file holds.
    let pk = ok(mebyo(&[
        "audit",
        "public-key",
        "--data",
        path_str(&fx.data),
    ]));
    assert_eq!(
        pk.trim(),
        std::fs::read_to_string(fx.data.join("keys/checkpoint.vkey"))
            .unwrap()
            .trim()
    );
    for args in [
        vec!["audit", "checkpoint", "--help"],
        vec!["audit", "prove-inclusion", "--help"],
        vec!["audit", "prove-consistency", "--help"],
        vec!["audit", "check-proof", "--help"],
        vec!["audit", "public-key", "--help"],
    ] {
        assert!(mebyo(&args).status.success(), "{args:?}");
    }
}
