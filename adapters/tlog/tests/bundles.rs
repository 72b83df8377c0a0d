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
