//! End to end: events -> tree -> signed checkpoints -> JSON proof files ->
//! third-party verification, plus tampering.

use mebyo_tlog::bundle::{BundleError, MAX_BUNDLE_BYTES};
use mebyo_tlog::{
    Checkpointer, ConsistencyBundle, InclusionBundle, MerkleTree, NoteSigner, NoteVerifier,
    ProofBundle, SigningPolicy, Verified, verify_bundle,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const ORIGIN: &str = "example.mebyo/tlog";

fn event(i: u64) -> [u8; 32] {
    *blake3::hash(format!("event {i}").as_bytes()).as_bytes()
}

struct Fixture {
    tree: MerkleTree,
    vkey: NoteVerifier,
    inclusion: InclusionBundle,
    consistency: ConsistencyBundle,
}

/// Deterministic: seeded key, fixed events, fixed times.
fn fixture() -> Fixture {
    let signer = NoteSigner::generate(ORIGIN, &mut ChaCha20Rng::seed_from_u64(2024)).unwrap();
    let vkey = signer.verifier();
    let mut cp = Checkpointer::new(
        signer,
        SigningPolicy {
            every_leaves: 4,
            every_secs: 3600,
        },
    );
    let mut tree = MerkleTree::new();
    let mut signed = Vec::new();
    for i in 0..11 {
        tree.append_event(&event(i));
        if let Some(s) = cp.maybe_sign(&tree, 1_700_000_000 + i).unwrap() {
            signed.push(s);
        }
    }
    // Sizes 1, 5, 9 were signed (first, then every 4 leaves).
    let sizes: Vec<u64> = signed.iter().map(|s| s.checkpoint.size).collect();
    assert_eq!(sizes, [1, 5, 9]);
    let inclusion = InclusionBundle::build(&tree, 6, &event(6), &signed[2]).unwrap();
    let consistency = ConsistencyBundle::build(&tree, &signed[1], &signed[2]).unwrap();
    Fixture {
        tree,
        vkey,
        inclusion,
        consistency,
    }
}

#[test]
fn bundles_roundtrip_and_verify() {
    let f = fixture();
    let json = f.inclusion.to_json();
    let parsed = ProofBundle::from_json(&json).unwrap();
    match verify_bundle(&parsed, &f.vkey).unwrap() {
        Verified::Inclusion(v) => {
            assert_eq!(v.leaf_index, 6);
            assert_eq!(v.event_hash, event(6));
            assert_eq!(v.checkpoint.size, 9);
            assert_eq!(v.checkpoint.origin, ORIGIN);
            assert_eq!(v.checkpoint.root, f.tree.root(9).unwrap());
        }
        other => panic!("{other:?}"),
    }
    let parsed = ProofBundle::from_json(&f.consistency.to_json()).unwrap();
    match verify_bundle(&parsed, &f.vkey).unwrap() {
        Verified::Consistency(v) => {
            assert_eq!((v.old.size, v.new.size), (5, 9));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bundle_files() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proof.json");
    let b = ProofBundle::Inclusion(f.inclusion.clone());
    b.write_file(&path).unwrap();
    assert_eq!(ProofBundle::read_file(&path).unwrap(), b);
    std::fs::write(&path, " ".repeat(MAX_BUNDLE_BYTES + 10)).unwrap();
    assert!(matches!(
        ProofBundle::read_file(&path),
        Err(BundleError::TooLarge)
    ));
}

#[test]
fn tampered_inclusion_bundles_fail() {
    let f = fixture();
    let ok = f.inclusion.clone();
    let mut cases: Vec<(&str, InclusionBundle)> = Vec::new();
    let mut b = ok.clone();
    b.leaf_index = 5;
    cases.push(("index", b));
    let mut b = ok.clone();
    b.event_hash = hex::encode(event(5));
    cases.push(("event", b));
    let mut b = ok.clone();
    b.tree_size = 10;
    cases.push(("size", b));
    let mut b = ok.clone();
    b.proof[1] = hex::encode([0u8; 32]);
    cases.push(("proof hash", b));
    let mut b = ok.clone();
    b.proof.pop();
    cases.push(("proof truncated", b));
    let mut b = ok.clone();
    b.proof[0] = b.proof[0].to_uppercase();
    cases.push(("non-canonical hex", b));
    let mut b = ok.clone();
    b.checkpoint = b.checkpoint.replacen("\n9\n", "\n10\n", 1);
    cases.push(("checkpoint size", b));
    let mut b = ok.clone();
    b.format = "mebyo-tlog-inclusion-v2".into();
    cases.push(("format", b));
    let mut b = ok.clone();
    b.proof = vec![b.proof[0].clone(); 65];
    cases.push(("too long", b));
    for (what, b) in cases {
        assert!(b.verify(&f.vkey).is_err(), "tampered {what} verified");
    }
    // Right bundle, wrong key.
    let other = NoteSigner::generate(ORIGIN, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
    assert!(ok.verify(&other.verifier()).is_err());
    // Unknown fields are rejected rather than silently ignored.
    let json = ok.to_json().replacen('{', "{\"extra\": 1,", 1);
    assert!(ProofBundle::from_json(&json).is_err());
    assert!(ProofBundle::from_json("{\"format\": \"nope\"}").is_err());
}

#[test]
fn tampered_consistency_bundles_fail() {
    let f = fixture();
    let ok = f.consistency.clone();
    let mut b = ok.clone();
    std::mem::swap(&mut b.old_checkpoint, &mut b.new_checkpoint);
    assert!(b.verify(&f.vkey).is_err());
    let mut b = ok.clone();
    b.proof[0] = hex::encode([1u8; 32]);
    assert!(b.verify(&f.vkey).is_err());
    let mut b = ok.clone();
    b.proof.clear();
    assert!(b.verify(&f.vkey).is_err());
    // A checkpoint of another log with the same key is refused.
    let signer = NoteSigner::generate(ORIGIN, &mut ChaCha20Rng::seed_from_u64(2024)).unwrap();
    let other = mebyo_tlog::Checkpoint::new("other.log", 9, f.tree.root(9).unwrap());
    let mut b = ok.clone();
    b.new_checkpoint = mebyo_tlog::sign_checkpoint(&other, &signer).unwrap().note;
    assert!(b.verify(&f.vkey).is_err());
}

#[test]
fn builder_refuses_mismatched_inputs() {
    let f = fixture();
    let signer = NoteSigner::generate(ORIGIN, &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
    let cp = mebyo_tlog::Checkpoint::new(ORIGIN, 9, [0; 32]);
    let signed = mebyo_tlog::sign_checkpoint(&cp, &signer).unwrap();
    assert!(InclusionBundle::build(&f.tree, 6, &event(6), &signed).is_err());
    let good = mebyo_tlog::sign_checkpoint(
        &mebyo_tlog::Checkpoint::new(ORIGIN, 9, f.tree.root(9).unwrap()),
        &signer,
    )
    .unwrap();
    assert!(InclusionBundle::build(&f.tree, 6, &event(7), &good).is_err());
    assert!(InclusionBundle::build(&f.tree, 9, &event(9), &good).is_err());
}

/// The worked example in docs/proofs.md must be exactly what this code produces
/// and verifies, so auditors can test their own implementation against it.
#[test]
fn docs_example_is_current() {
    let f = fixture();
    let docs = include_str!("../docs/proofs.md");
    let vkey = f.vkey.to_vkey();
    let inc = f.inclusion.to_json();
    let con = f.consistency.to_json();
    if std::env::var_os("PRINT_DOC_EXAMPLE").is_some() {
        println!("VKEY\n{vkey}\nINCLUSION\n{inc}\nCONSISTENCY\n{con}");
    }
    assert!(docs.contains(&vkey), "docs vkey out of date");
    assert!(docs.contains(&inc), "docs inclusion example out of date");
    assert!(docs.contains(&con), "docs consistency example out of date");
}

/// The reference script must refuse what the Rust verifier refuses, under
/// `python3 -O` too (which strips `assert`: issue 19 §8). Every case is one
/// corruption of a valid bundle; the valid ones must still pass.
#[test]
fn the_reference_script_refuses_corrupted_bundles_even_under_python_dash_o() {
    use serde_json::{Value, json};
    let f = fixture();
    let vkey = f.vkey.to_vkey();
    let inc: Value = serde_json::from_str(&f.inclusion.to_json()).unwrap();
    let con: Value = serde_json::from_str(&f.consistency.to_json()).unwrap();
    let edit = |base: &Value, change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = base.clone();
        change(v.as_object_mut().unwrap());
        v.to_string()
    };
    let note = inc["checkpoint"].as_str().unwrap().to_owned();
    let with_note = |n: String| edit(&inc, &move |o| _ = o.insert("checkpoint".into(), json!(n)));
    let sig_at = note.rfind(' ').unwrap() + 10;
    let mut bad_sig = note.clone().into_bytes();
    bad_sig[sig_at] = if bad_sig[sig_at] == b'A' { b'B' } else { b'A' };
    let upper = |s: &str| s.to_uppercase();
    let cases: Vec<(&str, String)> = vec![
        (
            "leaf index",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!(5))),
        ),
        (
            "leaf index past the tree",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!(9))),
        ),
        (
            "leaf index negative",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!(-1))),
        ),
        (
            "leaf index a string",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!("6"))),
        ),
        (
            "leaf index a bool",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!(true))),
        ),
        (
            "leaf index a float",
            edit(&inc, &|o| _ = o.insert("leaf_index".into(), json!(6.0))),
        ),
        (
            "event hash",
            edit(&inc, &|o| {
                _ = o.insert("event_hash".into(), json!(hex::encode(event(5))))
            }),
        ),
        (
            "event hash upper-case",
            edit(&inc, &|o| {
                let h = upper(o["event_hash"].as_str().unwrap());
                o.insert("event_hash".into(), json!(h));
            }),
        ),
        (
            "event hash short",
            edit(&inc, &|o| _ = o.insert("event_hash".into(), json!("00"))),
        ),
        (
            "tree size",
            edit(&inc, &|o| _ = o.insert("tree_size".into(), json!(10))),
        ),
        (
            "proof hash",
            edit(&inc, &|o| o["proof"][1] = json!(hex::encode([0u8; 32]))),
        ),
        (
            "proof hash upper-case",
            edit(&inc, &|o| {
                let h = upper(o["proof"][0].as_str().unwrap());
                o["proof"][0] = json!(h);
            }),
        ),
        (
            "proof truncated",
            edit(&inc, &|o| _ = o["proof"].as_array_mut().unwrap().pop()),
        ),
        (
            "proof extended",
            edit(&inc, &|o| {
                o["proof"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(hex::encode([1u8; 32])))
            }),
        ),
        (
            "proof too long",
            edit(&inc, &|o| {
                let h = o["proof"][0].clone();
                o.insert("proof".into(), json!(vec![h; 65]));
            }),
        ),
        (
            "proof not a list",
            edit(&inc, &|o| _ = o.insert("proof".into(), json!("x"))),
        ),
        (
            "unknown field",
            edit(&inc, &|o| _ = o.insert("extra".into(), json!(1))),
        ),
        ("missing field", edit(&inc, &|o| _ = o.remove("tree_size"))),
        (
            "unknown format",
            edit(&inc, &|o| {
                _ = o.insert("format".into(), json!("mebyo-tlog-inclusion-v2"))
            }),
        ),
        (
            "duplicate field",
            f.inclusion
                .to_json()
                .replacen('{', "{\"leaf_index\": 5,", 1),
        ),
        (
            "checkpoint size",
            with_note(note.replacen("\n9\n", "\n10\n", 1)),
        ),
        (
            "checkpoint size with a leading zero",
            with_note(note.replacen("\n9\n", "\n09\n", 1)),
        ),
        (
            "checkpoint signature",
            with_note(String::from_utf8(bad_sig).unwrap()),
        ),
        (
            "checkpoint without signatures",
            with_note(note[..note.rfind("\n\n").unwrap() + 2].to_owned()),
        ),
        (
            "checkpoint with a control character",
            with_note(note.replacen("\n9\n", "\n9\r\n", 1)),
        ),
        (
            "checkpoint over 16 KiB",
            with_note(format!("{}{}", "x".repeat(16_400), note)),
        ),
        ("not JSON", "{\"format\": ".to_owned()),
        (
            "consistency: checkpoints swapped",
            edit(&con, &|o| {
                let (a, b) = (o["old_checkpoint"].clone(), o["new_checkpoint"].clone());
                o.insert("old_checkpoint".into(), b);
                o.insert("new_checkpoint".into(), a);
            }),
        ),
        (
            "consistency: proof hash",
            edit(&con, &|o| o["proof"][0] = json!(hex::encode([1u8; 32]))),
        ),
        (
            "consistency: proof empty",
            edit(&con, &|o| _ = o.insert("proof".into(), json!([]))),
        ),
        (
            "consistency: proof upper-case",
            edit(&con, &|o| {
                let h = upper(o["proof"][2].as_str().unwrap());
                o["proof"][2] = json!(h);
            }),
        ),
        (
            "consistency: unknown field",
            edit(&con, &|o| _ = o.insert("note".into(), json!("hi"))),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify_bundle.py");
    let run = |name: &str, text: &str| {
        let path = dir
            .path()
            .join(format!("{}.json", name.replace([' ', ':'], "_")));
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-O")
            .arg(script)
            .arg(&vkey)
            .arg(&path)
            .output()
            .expect("python3 must be installed to run the reference verifier (proofs.md)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (name, text) in [
        ("valid inclusion", inc.to_string()),
        ("valid consistency", con.to_string()),
    ] {
        let (code, stdout, stderr) = run(name, &text);
        assert_eq!(code, Some(0), "{name}: {stdout}{stderr}");
        assert!(stdout.starts_with("OK:"), "{name}: {stdout}");
    }
    assert!(cases.len() >= 29, "{} cases", cases.len());
    for (name, text) in &cases {
        let (code, stdout, stderr) = run(name, text);
        assert_eq!(code, Some(1), "{name}: the script said {stdout}{stderr}");
        assert!(stderr.starts_with("INVALID: "), "{name}: {stderr}");
        assert!(!stdout.contains("OK"), "{name}: {stdout}");
        // The Rust verifier agrees.
        let rust =
            ProofBundle::from_json(text).and_then(|b| verify_bundle(&b, &f.vkey).map(|_| ()));
        assert!(rust.is_err(), "{name}: the Rust verifier accepted it");
    }
}
