//! Tamper test (issue 2 §4): change, delete, reorder or insert events by editing
//! the log file itself, then run the real `mebyo audit verify` and check that it
//! exits 1 naming the first bad position, with expected and found hash.

use std::path::{Path, PathBuf};

use mebyo_tests::{mebyo, path_str, seed};
use rand::{Rng, SeedableRng};

const HEADER: usize = 64;
const FRAME_HEADER: usize = 24;

/// A ledger built by the real binary, and its frames as raw bytes.
struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    header: Vec<u8>,
    frames: Vec<Vec<u8>>,
}

fn log_path(data: &Path) -> PathBuf {
    data.join("ledger").join("events.log")
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(mebyo(&["init", "--data", path_str(&data)]).status.success());
    let load = mebyo(&[
        "debug",
        "load",
        "--data",
        path_str(&data),
        "--appenders",
        "4",
        "--appends",
        "10",
    ]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let bytes = std::fs::read(log_path(&data)).unwrap();
    let mut frames = Vec::new();
    let mut at = HEADER;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        frames.push(bytes[at..at + FRAME_HEADER + len].to_vec());
        at += FRAME_HEADER + len;
    }
    assert!(frames.len() >= 40);
    Fixture {
        header: bytes[..HEADER].to_vec(),
        frames,
        data,
        _tmp: tmp,
    }
}

impl Fixture {
    fn write(&self, frames: &[Vec<u8>]) {
        let mut b = self.header.clone();
        for f in frames {
            b.extend_from_slice(f);
        }
        std::fs::write(log_path(&self.data), b).unwrap();
    }
    fn hash_of(&self, k: usize) -> String {
        hex::encode(&self.frames[k][self.frames[k].len() - 32..])
    }
    fn verify(&self) -> (i32, serde_json::Value) {
        let out = mebyo(&[
            "audit",
            "verify",
            "--data",
            path_str(&self.data),
            "--format",
            "json",
        ]);
        let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code().unwrap(), v)
    }
}

/// Recomputes the crc of a frame, as a careful tamperer would.
fn fix_crc(f: &mut [u8]) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&f[4..20]), &f[FRAME_HEADER..]);
    f[20..24].copy_from_slice(&crc.to_le_bytes());
}

#[track_caller]
fn check(
    fx: &Fixture,
    what: &str,
    position: usize,
    kind: &str,
    expected: Option<String>,
    found: Option<String>,
) {
    let (code, v) = fx.verify();
    assert_eq!(code, 1, "{what}: verify must exit 1, said {v}");
    assert_eq!(v["status"], "broken", "{what}");
    assert_eq!(
        v["position"], position as u64,
        "{what}: first bad position, said {v}"
    );
    assert_eq!(v["kind"], kind, "{what}: {v}");
    if let Some(e) = expected {
        assert_eq!(v["expected_hash"], e, "{what}");
    }
    if let Some(f) = found {
        assert_eq!(v["found_hash"], f, "{what}");
    }
}

#[test]
fn every_kind_of_tampering_is_reported_at_its_first_bad_position() {
    let fx = fixture();
    let n = fx.frames.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed("tamper"));
    let (code, v) = fx.verify();
    assert_eq!(code, 0, "the untouched ledger verifies: {v}");
    assert_eq!(v["events"], n as u64);
    assert_eq!(v["head_hash"], fx.hash_of(n - 1));

    for _round in 0..5 {
        // From 2: the insertion below copies an event from before k - 1.
        let k = rng.random_range(2..n - 2);

        // Change a payload byte; the stored hash no longer matches (crc left stale).
        let mut frames = fx.frames.clone();
        let len = frames[k].len();
        let at = rng.random_range(len - 100..len - 70);
        frames[k][at] ^= 0x01;
        fx.write(&frames);
        check(&fx, "change", k, "HashMismatch", None, Some(fx.hash_of(k)));

        // The same change with the frame checksum recomputed: still caught by the hash.
        fix_crc(&mut frames[k]);
        fx.write(&frames);
        check(
            &fx,
            "change with crc fixed",
            k,
            "HashMismatch",
            None,
            Some(fx.hash_of(k)),
        );

        // Change and re-hash the event itself: the next event's link breaks.
        let canonical_end = frames[k].len() - 32;
        let h = {
            let mut hasher =
                blake3::Hasher::new_derive_key(mebyo_store::format::EVENT_HASH_CONTEXT);
            hasher.update(&frames[k][FRAME_HEADER..canonical_end]);
            *hasher.finalize().as_bytes()
        };
        frames[k][canonical_end..].copy_from_slice(&h);
        fix_crc(&mut frames[k]);
        fx.write(&frames);
        check(
            &fx,
            "change and rehash",
            k + 1,
            "BrokenLink",
            Some(hex::encode(h)),
            Some(fx.hash_of(k)),
        );

        // Delete event k: the event after it no longer links.
        let mut frames = fx.frames.clone();
        frames.remove(k);
        fx.write(&frames);
        check(
            &fx,
            "delete",
            k,
            "BrokenLink",
            Some(fx.hash_of(k - 1)),
            Some(fx.hash_of(k)),
        );

        // Reorder k and k+1.
        let mut frames = fx.frames.clone();
        frames.swap(k, k + 1);
        fx.write(&frames);
        check(
            &fx,
            "reorder",
            k,
            "BrokenLink",
            Some(fx.hash_of(k - 1)),
            Some(fx.hash_of(k)),
        );

        // Insert a copy of an earlier event before k.
        let j = rng.random_range(0..k - 1);
        let mut frames = fx.frames.clone();
        frames.insert(k, fx.frames[j].clone());
        fx.write(&frames);
        check(
            &fx,
            "insert",
            k,
            "BrokenLink",
            Some(fx.hash_of(k - 1)),
            None,
        );
    }

    // The first event too: its previous hash must be the genesis value.
    let mut frames = fx.frames.clone();
    frames.remove(0);
    fx.write(&frames);
    check(
        &fx,
        "delete the first event",
        0,
        "BrokenLink",
        None,
        Some(fx.hash_of(0)),
    );

    // Restored, it verifies again: the checks above were about the edits alone.
    fx.write(&fx.frames);
    assert_eq!(fx.verify().0, 0);
}

/// What the store says about the ledger as it is now: `Some(position)` when it
/// refuses to open it as corrupt.
fn store_refuses(fx: &Fixture) -> Option<u64> {
    use mebyo_store::embedded::OpenError;
    use mebyo_store::{EmbeddedStore, OpenOptions, StoreError};
    match EmbeddedStore::open(&fx.data.join("ledger"), OpenOptions::default()) {
        Ok(_) => None,
        Err(OpenError::Store(StoreError::Corrupt { position, .. })) => Some(position),
        Err(e) => panic!("the store failed otherwise: {e}"),
    }
}

/// Issue 19 §8: the verifier checks everything the store checks (one home,
/// `mebyo_store::check`). The frame header's fields outside the hash (the
/// previous position in stream, a durable lag past the position), edited with the crc redone,
/// are refused by both, at the same position.
#[test]
fn the_verifier_refuses_what_the_store_refuses_frame_fields_outside_the_hash() {
    let fx = fixture();
    let n = fx.frames.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed("tamper-outside-hash"));
    for round in 0..6 {
        let k = rng.random_range(1..n - 1);
        let mut frames = fx.frames.clone();
        let (at, kind) = if round % 2 == 0 {
            // prev-in-stream: bytes 8..16; flip one bit.
            (8 + rng.random_range(0..8), "StreamLinkBroken")
        } else {
            // durable lag: bytes 16..20. A lag within the position is not
            // evidence of anything (it only guides recovery after a crash); one
            // larger than the position cannot have been written: the top byte.
            (19, "DamagedFrame")
        };
        frames[k][at] ^= 1 << rng.random_range(0..8);
        fix_crc(&mut frames[k]);
        fx.write(&frames);
        check(&fx, "a frame field outside the hash", k, kind, None, None);
        assert_eq!(
            store_refuses(&fx),
            Some(k as u64),
            "the store refuses the same frame (round {round}, byte {at})"
        );
    }
    fx.write(&fx.frames);
    assert_eq!(fx.verify().0, 0);
    assert_eq!(store_refuses(&fx), None);
}

/// Issue 19 §8: damage to the file header is a break with its byte offset
/// (exit 1), not unreadable input; a file that is no ledger at all stays exit 2.
#[test]
fn a_damaged_file_header_is_a_break_with_its_offset() {
    let fx = fixture();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed("tamper-header"));
    let cases: [(usize, u64); 4] = [
        (rng.random_range(0..8), 0),    // magic
        (rng.random_range(8..12), 8),   // format version
        (rng.random_range(12..36), 12), // ledger id, creation time
        (rng.random_range(60..64), 12), // the crc itself
    ];
    for (at, offset) in cases {
        let mut header = fx.header.clone();
        header[at] ^= 0x10;
        let mut b = header;
        for f in &fx.frames {
            b.extend_from_slice(f);
        }
        std::fs::write(log_path(&fx.data), &b).unwrap();
        let (code, v) = fx.verify();
        assert_eq!(code, 1, "header byte {at}: {v}");
        assert_eq!(v["kind"], "DamagedHeader", "header byte {at}: {v}");
        assert_eq!(v["position"], 0);
        assert_eq!(v["offset"], offset, "header byte {at}: {v}");
        let text = mebyo(&["audit", "verify", "--data", path_str(&fx.data)]);
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert!(
            stdout.contains(&format!("BROKEN at position 0 (byte offset {offset})")),
            "{stdout}"
        );
    }
    // A non-zero reserved byte is named exactly.
    let mut b = fx.header.clone();
    b[40] = 7;
    let crc = crc32c::crc32c(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b[41] = 1; // and the crc no longer matches
    for f in &fx.frames {
        b.extend_from_slice(f);
    }
    std::fs::write(log_path(&fx.data), &b).unwrap();
    let (code, v) = fx.verify();
    assert_eq!((code, v["offset"].as_u64()), (1, Some(40)), "{v}");
    // Cut inside the header.
    std::fs::write(log_path(&fx.data), &fx.header[..30]).unwrap();
    let (code, v) = fx.verify();
    assert_eq!((code, v["offset"].as_u64()), (1, Some(30)), "{v}");
    fx.write(&fx.frames);
    assert_eq!(fx.verify().0, 0);
}

#[test]
fn unreadable_input_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        mebyo(&["audit", "verify", "--data", path_str(tmp.path())])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(mebyo(&["audit", "verify"]).status.code(), Some(2));
    // A file that is not a ledger.
    std::fs::create_dir_all(tmp.path().join("ledger")).unwrap();
    std::fs::write(tmp.path().join("ledger/events.log"), b"hello, not a ledger").unwrap();
    let out = mebyo(&["audit", "verify", "--data", path_str(tmp.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ledger"));
}

#[test]
fn init_refuses_a_directory_that_holds_a_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let d = path_str(tmp.path());
    assert!(mebyo(&["init", "--data", d]).status.success());
    let before = std::fs::read(tmp.path().join("ledger/events.log")).unwrap();
    let again = mebyo(&["init", "--data", d]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a ledger"));
    assert_eq!(
        std::fs::read(tmp.path().join("ledger/events.log")).unwrap(),
        before
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["demo", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
    ] {
        let out = mebyo(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}
