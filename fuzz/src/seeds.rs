//! Seed inputs made from real valid inputs through the real APIs: the sample
//! JAHIS file of the provider client, the FHIR examples of the validator's tests
//! and of `world`, signed bus requests of every service, a small real ledger
//! written by the embedded store, its checkpoints and proof bundles, and a real
//! backup manifest. Deterministic (fixed clock, keys and rng), so rerunning
//! `cargo run -p mebyo-fuzz --bin fuzz-seeds` after a format change shows the
//! change as a diff of `fuzz/seeds/`.

use std::path::Path;

use base64::Engine;
use ed25519_dalek::Signer;
use mebyo_bus::{jahis, wire};
use mebyo_domain::{PersonId, Timestamp};
use mebyo_store::{Actor, EmbeddedStore, EventStore, ExpectedRevision, ManualClock, NewEvent};
use rand::SeedableRng;
use serde_json::{Value, json};

use crate::targets::*;

/// The provider client's sample notebook (Shift_JIS, CRLF), a real JAHIS file.
pub const SAMPLE_JAHIS: &[u8] =
    include_bytes!("../../adapters/bus/provider-client/samples/okusuri-techo.csv");

/// Every target's seeds: (target, file name, bytes).
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |t: &'static str, name: &str, bytes: Vec<u8>| out.push((t, name.into(), bytes));
    for (n, b) in jahis_seeds() {
        add("jahis", n, b);
    }
    for (n, v) in fhir_seeds() {
        add("fhir", n, serde_json::to_vec_pretty(&v).expect("json"));
    }
    for (n, b) in bus_seeds() {
        add("bus_request", n, b);
    }
    let ledger = ledger_seed();
    add("store_log", "ledger.log", ledger.log.clone());
    // A crash mid-write: the last frame cut short (a torn tail).
    let torn = ledger.log[..ledger.log.len() - 20].to_vec();
    add("store_log", "ledger-torn.log", torn);
    add("store_frame", "header", ledger.log[..64].to_vec());
    for (i, body) in ledger.bodies.iter().enumerate() {
        add("store_frame", &format!("frame-{i}"), body.clone());
    }
    for (n, b) in tlog_seeds(&ledger.hashes) {
        let target = if n.ends_with(".json") {
            "tlog_bundle"
        } else {
            "tlog_note"
        };
        add(target, n, b);
    }
    add("backup_manifest", "full.json", ledger.manifest);
    out
}

/// Writes every seed under `dir/<target>/<name>`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    for (target, name, bytes) in all() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)?;
    }
    Ok(())
}

fn jahis_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let two_days = jahis::encode_sjis(&[
        "JAHISTC07,1",
        "5,20261101,1",
        "11,みなと薬局,14,4,1234567,231-0001,横浜市中区新港1-1,045-000-0000,1",
        "201,1,ロキソプロフェンナトリウム錠６０ｍｇ,3,錠,2,620098801,1",
        "281,1,胃の不調があれば中止,1",
        "301,1,1日3回 毎食後,5,日分,1,1,,1",
        "5,20261120,1",
        "51,よこはま内科クリニック,14,1,7654321,1",
        "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1",
        "301,1,1日1回 朝食後,28,日分,1,1,,1",
    ]);
    vec![
        ("sample.csv", SAMPLE_JAHIS.to_vec()),
        ("two-days.csv", two_days),
    ]
}

fn fhir_seeds() -> Vec<(&'static str, Value)> {
    let p = PersonId::new(PERSON).expect("valid id");
    let at = Timestamp(NOW_US);
    let subject = json!({"reference": format!("Patient/{PERSON}")});
    vec![
        (
            "blood-pressure.json",
            mebyo_platform::world::blood_pressure(&p, 128, 82, at),
        ),
        (
            "body-weight.json",
            mebyo_platform::world::body_weight(&p, 61.5, at),
        ),
        (
            "allergy.json",
            json!({"resourceType": "AllergyIntolerance", "code": {"text": "そば"}, "patient": subject}),
        ),
        (
            "condition.json",
            json!({"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]}, "subject": subject}),
        ),
        (
            "medication-statement.json",
            json!({"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": {"text": "メトホルミン"}, "subject": subject, "effectiveDateTime": "2026-11-20"}),
        ),
        (
            "immunization.json",
            json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "influenza"}, "patient": subject, "occurrenceDateTime": "2026-10-01"}),
        ),
        (
            "adverse-event.json",
            json!({"resourceType": "AdverseEvent", "actuality": "actual", "subject": subject, "date": "2026-11-02T10:00:00+09:00"}),
        ),
    ]
}

/// A request line set as [`bus_request`] reads it, signed with the provider key.
fn bus_line(service: wire::Service, nonce: &str, idem: &str, body: &[u8], sign: bool) -> Vec<u8> {
    let subject = wire::service_subject(wire::DEFAULT_PREFIX, PROVIDER, service);
    let ts = (NOW_US / 1000).to_string();
    let sig = if sign {
        let s = wire::signing_string(
            &subject, REPLY, PROVIDER, CREDENTIAL, &ts, nonce, idem, body,
        );
        hex::encode(provider_key().sign(s.as_bytes()).to_bytes())
    } else {
        SIGN_HERE.into()
    };
    let mut out = [
        subject.as_str(),
        PROVIDER,
        CREDENTIAL,
        &ts,
        nonce,
        &sig,
        idem,
    ]
    .join("\n")
    .into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn bus_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let p = PersonId::new(PERSON).expect("valid id");
    let submit = json!({"items": [
        {"format": "fhir", "person": PERSON, "category": "vitals",
         "effective_at": "2026-11-25T09:00:00+09:00", "original_identifier": "bp-1",
         "resource": mebyo_platform::world::blood_pressure(&p, 128, 82, Timestamp(NOW_US))},
        {"format": "jahis", "person": PERSON,
         "data_base64": base64::engine::general_purpose::STANDARD.encode(SAMPLE_JAHIS)},
    ]});
    let query = json!({"person": PERSON, "categories": ["vitals"], "purpose": "care",
        "period": {"from": "2026-01-01", "to": "2026-12-01T00:00:00+09:00"}});
    let bodies = [
        (wire::Service::Submit, "submit", submit, "order-1"),
        (wire::Service::Query, "query", query, ""),
        (
            wire::Service::Consents,
            "consents",
            json!({"status": "all"}),
            "",
        ),
        (
            wire::Service::FeedAck,
            "ack",
            json!({"ids": ["evt-1"]}),
            "ack-1",
        ),
    ];
    let mut out = Vec::new();
    for (i, (service, name, body, idem)) in bodies.into_iter().enumerate() {
        let body = serde_json::to_vec(&body).expect("json");
        let nonce = format!("{:032x}", i + 1);
        let signed: &'static str = Box::leak(format!("{name}.signed").into_boxed_str());
        let open: &'static str = Box::leak(format!("{name}.sign-here").into_boxed_str());
        out.push((signed, bus_line(service, &nonce, idem, &body, true)));
        out.push((open, bus_line(service, &nonce, idem, &body, false)));
    }
    out
}

/// A small real ledger and what is made from it.
pub struct LedgerSeed {
    pub log: Vec<u8>,
    /// Each frame's body (canonical bytes + hash), in order.
    pub bodies: Vec<Vec<u8>>,
    pub hashes: Vec<[u8; 32]>,
    /// The manifest of a full backup of it.
    pub manifest: Vec<u8>,
}

/// Appends a few plain events to a new ledger with the real store, then backs it
/// up with the real backup job.
pub fn ledger_seed() -> LedgerSeed {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let paths = mebyo_backup::DataPaths::new(&data);
    EmbeddedStore::create(&paths.ledger(), [3u8; 16], NOW_US).expect("create ledger");
    let clock = ManualClock::new(NOW_US);
    let store = EmbeddedStore::open(
        &paths.ledger(),
        mebyo_store::OpenOptions {
            clock: std::sync::Arc::new(clock.clone()),
            ..Default::default()
        },
    )
    .expect("open ledger")
    .store;
    let streams = ["ops-backups", "ledger-checkpoints", "ops-backups"];
    for (i, stream) in streams.iter().enumerate() {
        clock.advance(1_000_000);
        let id = [i as u8 + 1; 16];
        let payload = serde_json::to_vec(&json!({"n": i})).expect("json");
        let ev = NewEvent::plain("seed.recorded", Actor::system(), id, payload);
        futures::executor::block_on(store.append(stream, ExpectedRevision::Any, vec![ev]))
            .expect("append");
    }
    let events =
        futures::executor::block_on(store.read_all(0, usize::MAX)).expect("read the seed ledger");
    let head = store.head();
    drop(store);
    let log = std::fs::read(EmbeddedStore::log_path(&paths.ledger())).expect("read log");
    let bodies = frame_bodies(&log);
    let hashes = events.iter().map(|e| e.hash).collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(BACKUP_KEY_SEED);
    mebyo_backup::ensure_backup_keys(&paths.keys(), &mut rng).expect("backup keys");
    let dest = tmp.path().join("backups");
    let by = mebyo_backup::StartedBy::Scheduler;
    let job = mebyo_backup::BackupJob {
        data_dir: &data,
        dest: &dest,
        started_by: &by,
        clock: &clock,
        opts: &mebyo_backup::BackupOptions::default(),
    };
    let m = mebyo_backup::create_backup(&job, mebyo_backup::Kind::Full, head, &mut rng)
        .expect("full backup");
    let manifest =
        std::fs::read(dest.join(&m.backup_id).join("manifest.json")).expect("read manifest");
    LedgerSeed {
        log,
        bodies,
        hashes,
        manifest,
    }
}

/// The frame bodies of a log, read with the store's own frame reader.
fn frame_bodies(log: &[u8]) -> Vec<Vec<u8>> {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(tmp.path(), log).expect("write");
    let file = std::fs::File::open(tmp.path()).expect("open");
    let mut r =
        mebyo_store::log::FrameReader::new(&file, mebyo_store::log::HEADER_BYTES, log.len() as u64);
    let mut out = Vec::new();
    while let Some(Ok(f)) = r.next_frame().expect("read") {
        out.push(f.body.to_vec());
    }
    out
}

fn tlog_seeds(hashes: &[[u8; 32]]) -> Vec<(&'static str, Vec<u8>)> {
    use mebyo_tlog::{Checkpoint, ConsistencyBundle, InclusionBundle, MerkleTree};
    let signer = note_signer();
    let tree = MerkleTree::from_events(hashes.iter());
    let sign = |size: u64| {
        let cp = Checkpoint::new(signer.name(), size, tree.root(size).expect("root"));
        mebyo_tlog::checkpoint::sign_checkpoint(&cp, &signer).expect("sign")
    };
    let n = hashes.len() as u64;
    let (old, new) = (sign(1), sign(n));
    let inclusion = InclusionBundle::build(&tree, 1, &hashes[1], &new).expect("inclusion");
    let consistency = ConsistencyBundle::build(&tree, &old, &new).expect("consistency");
    vec![
        ("checkpoint.note", new.note.clone().into_bytes()),
        (
            "checkpoint.body",
            new.checkpoint.to_body().expect("body").into_bytes(),
        ),
        ("verifier.vkey", signer.verifier().to_vkey().into_bytes()),
        ("inclusion.json", inclusion.to_json().into_bytes()),
        ("consistency.json", consistency.to_json().into_bytes()),
    ]
}
