//! Issue 8: proof bundles written by `mebyo audit prove-*` verify with tlog's
//! independent verifier and with `mebyo audit check-proof`, as a third party
//! holding only the published verifier key would check them; any flipped byte
//! makes them fail.

use std::path::Path;
use std::process::Output;

use mebyo_tests::{mebyo, path_str};
use mebyo_tlog::bundle::{ConsistencyBundle, InclusionBundle, ProofBundle};
use mebyo_tlog::{
    NoteVerifier, event_leaf_hash, parse_and_verify_checkpoint, verify_consistency,
    verify_inclusion,
};

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

fn setup(data: &Path) -> (u64, u64) {
    ok(mebyo(&["init", "--data", path_str(data)]));
    let mut sizes = Vec::new();
    for seed in [1, 2] {
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
        let note = ok(mebyo(&["audit", "checkpoint", "--data", path_str(data)]));
        sizes.push(note.lines().nth(1).unwrap().parse::<u64>().unwrap());
    }
    (sizes[0], sizes[1])
}

fn check_proof(vkey: &Path, proof: &Path) -> (i32, serde_json::Value) {
    let out = mebyo(&[
        "audit",
        "check-proof",
        "--vkey",
        path_str(vkey),
        "--proof",
        path_str(proof),
        "--format",
        "json",
    ]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap(), v)
}

fn hash(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn bundles_verify_independently_and_a_flipped_byte_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (s1, s2) = setup(&data);
    assert!(s1 < s2);
    let vkey_path = data.join("keys/checkpoint.vkey");
    let vkey =
        NoteVerifier::from_vkey(std::fs::read_to_string(&vkey_path).unwrap().trim()).unwrap();

    // Inclusion of an early event in the newest checkpoint, and in the first.
    let inc = tmp.path().join("inc.json");
    ok(mebyo(&[
        "audit",
        "prove-inclusion",
        "--data",
        path_str(&data),
        "--position",
        "5",
        "--out",
        path_str(&inc),
    ]));
    let b = InclusionBundle::from_json(&std::fs::read_to_string(&inc).unwrap()).unwrap();
    assert_eq!(b.leaf_index, 5);
    assert_eq!(b.tree_size, s2);
    // tlog's independent verifier, step by step, as proofs.md tells an auditor.
    let cp = parse_and_verify_checkpoint(&b.checkpoint, &vkey).unwrap();
    assert_eq!(cp.size, b.tree_size);
    let path: Vec<[u8; 32]> = b.proof.iter().map(|h| hash(h)).collect();
    verify_inclusion(
        &event_leaf_hash(&hash(&b.event_hash)),
        5,
        cp.size,
        &path,
        &cp.root,
    )
    .unwrap();
    // The event hash is the one stored in the log at position 5.
    let verify = ok(mebyo(&[
        "audit",
        "verify",
        "--data",
        path_str(&data),
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&verify).unwrap();
    assert_eq!(v["status"], "intact");
    let (c, v) = check_proof(&vkey_path, &inc);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["kind"], "inclusion");
    assert_eq!(v["position"], 5);

    let inc1 = tmp.path().join("inc1.json");
    ok(mebyo(&[
        "audit",
        "prove-inclusion",
        "--data",
        path_str(&data),
        "--position",
        "0",
        "--checkpoint-at",
        &s1.to_string(),
        "--out",
        path_str(&inc1),
    ]));
    assert_eq!(check_proof(&vkey_path, &inc1).0, 0);
    // A position no checkpoint covers, and a size never signed: usage errors.
    let out = mebyo(&[
        "audit",
        "prove-inclusion",
        "--data",
        path_str(&data),
        "--position",
        &s2.to_string(),
        "--out",
        path_str(&tmp.path().join("x.json")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not covered"));
    let out = mebyo(&[
        "audit",
        "prove-inclusion",
        "--data",
        path_str(&data),
        "--position",
        "0",
        "--checkpoint-at",
        "3",
        "--out",
        path_str(&tmp.path().join("x.json")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no checkpoint in the log has tree size 3")
    );

    // Consistency between the two checkpoints.
    let con = tmp.path().join("con.json");
    ok(mebyo(&[
        "audit",
        "prove-consistency",
        "--data",
        path_str(&data),
        "--from",
        &s1.to_string(),
        "--to",
        &s2.to_string(),
        "--out",
        path_str(&con),
    ]));
    let b = ConsistencyBundle::from_json(&std::fs::read_to_string(&con).unwrap()).unwrap();
    let old = parse_and_verify_checkpoint(&b.old_checkpoint, &vkey).unwrap();
    let new = parse_and_verify_checkpoint(&b.new_checkpoint, &vkey).unwrap();
    assert_eq!((old.size, new.size), (s1, s2));
    let path: Vec<[u8; 32]> = b.proof.iter().map(|h| hash(h)).collect();
    verify_consistency(old.size, new.size, &old.root, &new.root, &path).unwrap();
    let (c, v) = check_proof(&vkey_path, &con);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["kind"], "consistency");

    // Flip every byte of both bundles in turn: never accepted.
    for file in [&inc, &con] {
        let orig = std::fs::read(file).unwrap();
        assert!(ProofBundle::read_file(file).is_ok());
        let flipped = tmp.path().join("flipped.json");
        // Every byte would be slow through the binary; stride through the file,
        // always including the proof hashes and the signature line.
        let stride = (orig.len() / 60).max(1);
        let mut checked = 0;
        for at in (0..orig.len()).step_by(stride) {
            let mut b = orig.clone();
            b[at] ^= 0x01;
            std::fs::write(&flipped, &b).unwrap();
            let (c, v) = check_proof(&vkey_path, &flipped);
            // No flip can pass: JSON whitespace flips to a non-whitespace byte
            // (' ' -> '!', '\n' -> 0x0b), and every value is signed or hashed.
            assert_ne!(
                c,
                0,
                "flipped byte {at} of {} accepted: {v}",
                file.display()
            );
            assert_eq!(c, 1, "a bad proof is exit 1, said {v}");
            checked += 1;
        }
        assert!(checked >= 50);
    }

    // The wrong key rejects a good proof.
    let other = tmp.path().join("other");
    setup(&other);
    let (c, _) = check_proof(&other.join("keys/checkpoint.vkey"), &inc);
    assert_eq!(c, 1);
    // Unreadable input is exit 2.
    let (c, _) = check_proof(&vkey_path, &tmp.path().join("missing.json"));
    assert_eq!(c, 2);
}
