//! The fuzz targets. Each takes any bytes; none may panic. Fixed keys and times
//! (below) let seeds carry valid signatures and MACs, so that fuzzing starts
//! past the checks instead of bouncing off them.

use std::path::Path;

use mebyo_bus::{jahis, wire};
use mebyo_domain::{Category, CredentialId, PersonId, ProviderId, Timestamp, fhir};
use mebyo_store::EventStore;
use rand::SeedableRng;
use serde_json::Value;

/// The person every FHIR resource and JAHIS conversion is checked against.
pub const PERSON: &str = "p1";
/// The bus harness's provider and credential, whose key signs the seeds.
pub const PROVIDER: &str = "clinic-fuzz";
pub const CREDENTIAL: &str = "cred-fuzz";
/// The reply subject every fuzzed request is signed for and "sent" with (the
/// signed string covers it, docs/bus.md §3).
pub const REPLY: &str = "_INBOX.clinic-fuzz.0001";
/// The bus harness's clock: 2026-11-26T00:00:00Z, in microseconds.
pub const NOW_US: i64 = 1_795_651_200_000_000;
/// The bus's default freshness window.
pub const WINDOW_US: i64 = 60_000_000;
/// `Signature` line value that asks the harness to sign the request itself, so
/// that the fuzzer reaches what lies behind the signature check.
pub const SIGN_HERE: &str = "sign-here";

/// The provider's ed25519 signing key (fixed: seeds are signed with it).
pub fn provider_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// The log's checkpoint signer (fixed: seed notes and bundles are signed by it).
pub fn note_signer() -> mebyo_tlog::NoteSigner {
    mebyo_tlog::NoteSigner::from_seed("mebyo.fuzz/ledger", &[9u8; 32]).expect("valid key name")
}

/// Seed of the rng that makes the backup keys of the seed data directory; the
/// log key is its first draw (`ensure_backup_keys`), so this recreates it.
pub const BACKUP_KEY_SEED: u64 = 22;

pub fn backup_log_key() -> mebyo_backup::BackupKey {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(BACKUP_KEY_SEED);
    mebyo_backup::BackupKey::generate(mebyo_backup::KeyPurpose::Log, &mut rng)
}

fn person() -> PersonId {
    PersonId::new(PERSON).expect("valid id")
}

/// A JAHIS file as the bus receives it: parsed, converted to FHIR, and each
/// resource validated as the records decider does.
pub fn jahis(data: &[u8]) {
    jahis_notebook(data);
}

fn jahis_notebook(data: &[u8]) {
    let Ok(nb) = jahis::parse(data) else { return };
    let p = person();
    for c in jahis::to_fhir(&nb, &p) {
        let _ = fhir::validate(Category::MedicationNotebook, &p, &c.resource);
    }
}

/// Any JSON as a FHIR resource of every category.
pub fn fhir(data: &[u8]) {
    let Ok(resource) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let p = person();
    for category in Category::ALL {
        let _ = fhir::validate(category, &p, &resource);
    }
}

/// A bus request: subject, signed headers and body, one per line, the body last
/// (it may hold newlines). Line order: subject, provider, credential, timestamp,
/// nonce, signature, idempotency key, body. An empty line leaves its header out;
/// a signature of [`SIGN_HERE`] is replaced by a valid one.
///
/// Checks the envelope and signature as `Services::handle` does, then that the
/// same request is refused as a replay (same-process replay, P4.11(4)), then
/// reads the body as its service does.
pub fn bus_request(data: &[u8]) {
    let mut parts = data.splitn(8, |b| *b == b'\n');
    let mut line = || parts.next().and_then(|l| std::str::from_utf8(l).ok());
    let (Some(subject), Some(pv), Some(cr), Some(ts), Some(nonce), Some(sig), Some(idem)) =
        (line(), line(), line(), line(), line(), line(), line())
    else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let signature;
    let sig = if sig == SIGN_HERE {
        use ed25519_dalek::Signer;
        let s = wire::signing_string(subject, REPLY, pv, cr, ts, nonce, idem, body);
        signature = hex::encode(provider_key().sign(s.as_bytes()).to_bytes());
        signature.as_str()
    } else {
        sig
    };
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in [
        (wire::H_PROVIDER, pv),
        (wire::H_CREDENTIAL, cr),
        (wire::H_TIMESTAMP, ts),
        (wire::H_NONCE, nonce),
        (wire::H_SIGNATURE, sig),
        (wire::H_IDEMPOTENCY_KEY, idem),
    ] {
        // A NATS header value cannot hold CR or LF (the protocol ends a header
        // line there, and async-nats panics on building one): such input never
        // reaches the platform, so it is not a case here.
        if value.contains(['\r', '\n']) {
            return;
        }
        if !value.is_empty() {
            headers.insert(name, value);
        }
    }
    let claimed = mebyo_bus::auth::Claimed::read(Some(&headers));
    let Some((provider, service)) = wire::parse_service_subject(wire::DEFAULT_PREFIX, subject)
    else {
        return;
    };
    let nonces = mebyo_bus::auth::NonceCache::new(WINDOW_US, 1024);
    let key_of = |c: &CredentialId| {
        (c.as_str() == CREDENTIAL).then(|| {
            (
                ProviderId::new(PROVIDER).expect("valid id"),
                provider_key().verifying_key(),
            )
        })
    };
    let verify = || {
        mebyo_bus::auth::verify(
            subject,
            REPLY,
            provider,
            &claimed,
            body,
            Timestamp(NOW_US),
            WINDOW_US,
            key_of,
            &nonces,
        )
    };
    if verify().is_err() {
        return;
    }
    let again = verify().expect_err("the same request twice is a replay");
    assert_eq!(again.code, "request.replayed");
    match service {
        wire::Service::Submit => submit_body(body),
        wire::Service::Query => {
            let _ = serde_json::from_slice::<wire::QueryRequest>(body);
        }
        wire::Service::Consents => {
            let _ = serde_json::from_slice::<wire::ConsentsRequest>(body);
        }
        wire::Service::FeedAck => {
            let _ = serde_json::from_slice::<wire::AckRequest>(body);
        }
    }
}

/// A submission's items, each read as the bus reads it.
fn submit_body(body: &[u8]) {
    let Ok(req) = serde_json::from_slice::<wire::SubmitRequest>(body) else {
        return;
    };
    for item in req.items {
        match item {
            wire::SubmitItem::Fhir {
                person,
                category,
                effective_at,
                resource,
                ..
            } => {
                let _ = wire::parse_time(&effective_at);
                if let Ok(p) = PersonId::new(person) {
                    let _ = fhir::validate(category, &p, &resource);
                }
            }
            wire::SubmitItem::Jahis { data_base64, .. } => {
                use base64::Engine;
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data_base64) {
                    jahis_notebook(&bytes);
                }
            }
        }
    }
}

/// A frame body (canonical event + hash) and a file header, decoded. A body that
/// decodes re-encodes to the same canonical bytes (one spelling per event), and
/// the in-place reader used by recovery agrees with the full decoder.
pub fn store_frame(data: &[u8]) {
    let _ = mebyo_store::log::FileHeader::decode(data);
    let peeked = mebyo_store::format::peek(data);
    let Ok((env, canonical_len)) = mebyo_store::Envelope::decode_body(data) else {
        return;
    };
    let mut again = Vec::new();
    env.encode_canonical(&mut again);
    assert_eq!(again, data[..canonical_len], "canonical round trip");
    let p = peeked.expect("a decodable body can be peeked");
    assert_eq!(
        (
            p.position,
            p.stream_id,
            p.stream_revision,
            p.event_type,
            p.recorded_at_us,
            p.payload_kind
        ),
        (
            env.position,
            env.stream_id.as_str(),
            env.stream_revision,
            env.event_type.as_str(),
            env.recorded_at_us,
            env.payload_kind as u8
        ),
        "peek agrees with decode"
    );
}

/// Scratch space for targets that need files: tmpfs when the machine has one,
/// so that the store's fsyncs cost nothing.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// A whole log file: verified offline as an auditor does, then opened (recovery)
/// as the server does. What verification calls intact, with or without a torn
/// tail, opens with that tail removed and every event readable.
pub fn store_log(data: &[u8]) {
    use mebyo_store::verify::{Options, Outcome, verify_file};
    let dir = scratch();
    let ledger = dir.path().join("ledger");
    std::fs::create_dir(&ledger).expect("scratch dir");
    let path = mebyo_store::EmbeddedStore::log_path(&ledger);
    std::fs::write(&path, data).expect("scratch file");
    let verified = verify_file(
        &path,
        Options {
            progress: &mut |_, _| {},
            person_related: None,
        },
    );
    let opened = mebyo_store::EmbeddedStore::open(&ledger, Default::default());
    if let Ok(Outcome::Intact(i)) = verified {
        let o = opened.expect("a log that verifies intact opens");
        assert_eq!(o.torn_tail_bytes, i.torn_tail_bytes, "torn tail agrees");
        assert_eq!(o.store.head().count, i.count, "event count agrees");
        assert_eq!(o.store.head().hash, i.head_hash, "head hash agrees");
        let all = futures::executor::block_on(EventStore::read_all(&o.store, 0, usize::MAX))
            .expect("every event of an intact log reads");
        assert_eq!(all.len() as u64, i.count);
    }
}

/// A C2SP signed note, checkpoint body, verifier key or signer key, as text.
pub fn tlog_note(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = note_signer().verifier();
    let _ = mebyo_tlog::open_note(text, &verifier);
    if let Ok(cp) = mebyo_tlog::parse_and_verify_checkpoint(text, &verifier) {
        // A verified checkpoint's body is the one the log signed.
        assert_eq!(
            cp.to_body().ok().as_deref(),
            mebyo_tlog::open_note(text, &verifier).ok()
        );
    }
    let _ = mebyo_tlog::Checkpoint::parse_body(text);
    let _ = mebyo_tlog::NoteVerifier::from_vkey(text);
    let _ = mebyo_tlog::NoteSigner::from_skey(text);
}

/// A proof bundle file, parsed and verified with the log's key.
pub fn tlog_bundle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(bundle) = mebyo_tlog::ProofBundle::from_json(text) else {
        return;
    };
    let _ = mebyo_tlog::verify_bundle(&bundle, &note_signer().verifier());
    let again = mebyo_tlog::ProofBundle::from_json(&bundle.to_json()).expect("re-parses");
    assert_eq!(again, bundle, "bundle JSON round trip");
}

/// A backup set's `manifest.json`, read as restore and listing read it, its MAC
/// checked with the log key.
pub fn backup_manifest(data: &[u8]) {
    // A set lies in the directory its manifest names (checked by `read`).
    let id = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.get("backup_id")?.as_str().map(String::from))
        .filter(|id| mebyo_backup::manifest::check_backup_id(id).is_ok())
        .unwrap_or_else(|| "full-fuzz".into());
    let dir = scratch();
    let set = dir.path().join(id);
    std::fs::create_dir(&set).expect("scratch dir");
    std::fs::write(set.join("manifest.json"), data).expect("scratch file");
    if let Ok(m) = mebyo_backup::manifest::read(&set) {
        let _ = m.verify_mac(&backup_log_key(), &set);
    }
    let _ = mebyo_backup::manifest::list(dir.path());
}
