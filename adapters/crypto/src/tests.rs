//! Cross-module tests. Deterministic: every rng is a seeded ChaCha20.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::*;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn p(s: &str) -> Pseudonym {
    Pseudonym::new(s).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    kek: Kek,
    store: KeyStore,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut r = rng(seed);
        let kek = Kek::create_file(path.join("kek.bin"), &mut r).unwrap();
        let store = KeyStore::create(path.join("keys.mks"), &kek, &mut r).unwrap();
        Fixture {
            _dir: dir,
            dir: path,
            kek,
            store,
        }
    }
    fn store_path(&self) -> PathBuf {
        self.dir.join("keys.mks")
    }
    fn vault_path(&self) -> PathBuf {
        self.dir.join("identity.miv")
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

mod kek {
    use super::*;

    #[test]
    fn create_and_load_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.bin");
        let kek = Kek::create_file(&path, &mut rng(1)).unwrap();
        // P4.8(1): key file readable by the owner only.
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), 89);
        let loaded = Kek::load_file(&path).unwrap();
        assert_eq!(loaded.id(), kek.id());
        assert_eq!(loaded.raw_key(), kek.raw_key());
        // Deterministic given the seed.
        assert_eq!(Kek::generate(&mut rng(1)).id(), kek.id());
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.bin");
        let kek = Kek::create_file(&path, &mut rng(1)).unwrap();
        let err = Kek::create_file(&path, &mut rng(2)).unwrap_err();
        assert!(matches!(err, CryptoError::Io { .. }), "{err}");
        assert_eq!(Kek::load_file(&path).unwrap().id(), kek.id());
    }

    // P4.8(1): "key file ... readable by other users" is refused.
    #[test]
    fn world_and_group_readable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.bin");
        Kek::create_file(&path, &mut rng(1)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = Kek::load_file(&path).unwrap_err();
            match &err {
                CryptoError::KekFilePermissions { path: ep, mode: m } => {
                    assert_eq!(ep, &path);
                    assert_eq!(*m, mode);
                }
                other => panic!("expected permission error, got {other}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        Kek::load_file(&path).unwrap();
    }

    #[test]
    fn corrupt_or_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.bin");
        Kek::create_file(&path, &mut rng(1)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[60] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = Kek::load_file(&path).unwrap_err();
        assert!(matches!(err, CryptoError::KekFileFormat { .. }), "{err}");
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Kek::load_file(&path).unwrap_err(),
            CryptoError::KekFileFormat { .. }
        ));
        assert!(matches!(
            Kek::load_file(dir.path().join("missing")).unwrap_err(),
            CryptoError::Io { .. }
        ));
    }

    #[test]
    fn from_env_hex() {
        let kek = Kek::generate(&mut rng(3));
        let hexed = hex::encode(kek.raw_key());
        let again = Kek::from_env_hex(&format!(" {hexed}\n")).unwrap();
        assert_eq!(again.id(), kek.id());
        let bad = "zz".repeat(64);
        let err = Kek::from_env_hex(&bad).unwrap_err();
        // The rejected value is never echoed (it might be a real key with a typo).
        assert!(!err.to_string().contains("zzzz"));
        assert!(Kek::from_env_hex(&hexed[..64]).is_err());
    }

    // P4.8(1): key material never in Debug output.
    #[test]
    fn debug_shows_no_key_bytes() {
        let kek = Kek::generate(&mut rng(4));
        let dbg = format!("{kek:?} {kek:#?}");
        assert!(dbg.contains("[redacted]"));
        assert!(dbg.contains(&kek.id().to_hex()));
        assert!(!dbg.contains(&hex::encode(&kek.raw_key()[..8])));
        assert!(!dbg.contains(&format!("{}, {}", kek.raw_key()[0], kek.raw_key()[1])));
    }
}

mod keystore {
    use super::*;

    #[test]
    fn create_open_round_trip() {
        let mut f = Fixture::new(10);
        let alice = p("psn-alice");
        let refs = f.store.create_person_keys(&alice, &mut rng(11)).unwrap();
        assert_eq!(refs.health.to_string(), "dek:h:psn-alice:1");
        assert_eq!(refs.identity.to_string(), "dek:i:psn-alice:1");
        let h = f.store.dek(&alice, DekKind::Health).unwrap();
        let i = f.store.dek(&alice, DekKind::Identity).unwrap();
        // P4.8(3): separate keys for separate data areas.
        assert_ne!(h.key_bytes(), i.key_bytes());
        assert_eq!(mode_of(&f.store_path()), 0o600);

        let reopened = KeyStore::open(f.store_path(), &f.kek).unwrap();
        assert_eq!(
            reopened.dek(&alice, DekKind::Health).unwrap().key_bytes(),
            h.key_bytes()
        );
        let by_ref = reopened
            .dek_for_ref(&"dek:i:psn-alice:1".parse().unwrap())
            .unwrap();
        assert_eq!(by_ref.key_bytes(), i.key_bytes());
        assert!(
            reopened
                .dek_for_ref(&"dek:i:psn-alice:2".parse().unwrap())
                .is_err()
        );
        assert_eq!(reopened.person_count(), 1);
        assert_eq!(
            reopened.blind_index().unwrap().key_id(),
            f.store.blind_index().unwrap().key_id()
        );
    }

    #[test]
    fn create_refuses_existing_and_open_refuses_missing() {
        let f = Fixture::new(12);
        let err = KeyStore::create(f.store_path(), &f.kek, &mut rng(1)).unwrap_err();
        assert!(matches!(err, CryptoError::AlreadyExists { .. }), "{err}");
        assert!(matches!(
            KeyStore::open(f.dir.join("nope.mks"), &f.kek).unwrap_err(),
            CryptoError::Io { .. }
        ));
    }

    #[test]
    fn wrong_kek_is_refused_and_changes_nothing() {
        let mut f = Fixture::new(13);
        f.store
            .create_person_keys(&p("psn-1"), &mut rng(14))
            .unwrap();
        let before = fs::read(f.store_path()).unwrap();
        let other = Kek::generate(&mut rng(999));
        let err = KeyStore::open(f.store_path(), &other).unwrap_err();
        match &err {
            CryptoError::WrongKek {
                expected, given, ..
            } => {
                assert_eq!(*expected, f.kek.id());
                assert_eq!(*given, other.id());
            }
            e => panic!("expected WrongKek, got {e}"),
        }
        assert!(err.to_string().contains(&f.kek.id().to_hex()));
        assert_eq!(fs::read(f.store_path()).unwrap(), before);
    }

    #[test]
    fn tampering_is_detected() {
        let mut f = Fixture::new(15);
        f.store
            .create_person_keys(&p("psn-1"), &mut rng(16))
            .unwrap();
        let good = fs::read(f.store_path()).unwrap();
        // Flip a byte of the last wrapped DEK without fixing the checksum.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 32 - 4 - 10] ^= 0x40;
        fs::write(f.store_path(), &bad).unwrap();
        assert!(matches!(
            KeyStore::open(f.store_path(), &f.kek).unwrap_err(),
            CryptoError::ChecksumMismatch { .. }
        ));
        // Same flip with a recomputed checksum: AES-SIV catches it.
        let body = &bad[..n - 32];
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(blake3::hash(body).as_bytes());
        fs::write(f.store_path(), &fixed).unwrap();
        assert!(matches!(
            KeyStore::open(f.store_path(), &f.kek).unwrap_err(),
            CryptoError::UnwrapFailed { .. }
        ));
    }

    // A wrapped key moved to another person's slot must not unwrap.
    #[test]
    fn wrapped_key_moved_to_other_person_fails() {
        let mut f = Fixture::new(17);
        let (a, b) = (p("psn-aaaa"), p("psn-bbbb"));
        f.store.create_person_keys(&a, &mut rng(18)).unwrap();
        f.store.create_person_keys(&b, &mut rng(19)).unwrap();
        let wa = f.store.wrapped_bytes(&a, DekKind::Health).unwrap();
        let wb = f.store.wrapped_bytes(&b, DekKind::Health).unwrap();
        let mut bytes = fs::read(f.store_path()).unwrap();
        let pos = bytes.windows(wb.len()).position(|w| w == wb).unwrap();
        bytes[pos..pos + wa.len()].copy_from_slice(&wa);
        let n = bytes.len();
        let sum = *blake3::hash(&bytes[..n - 32]).as_bytes();
        bytes[n - 32..].copy_from_slice(&sum);
        fs::write(f.store_path(), &bytes).unwrap();
        assert!(matches!(
            KeyStore::open(f.store_path(), &f.kek).unwrap_err(),
            CryptoError::UnwrapFailed { .. }
        ));
    }

    #[test]
    fn duplicate_creation_is_refused_and_changes_nothing() {
        let mut f = Fixture::new(20);
        let a = p("psn-a");
        f.store.create_person_keys(&a, &mut rng(21)).unwrap();
        let before = fs::read(f.store_path()).unwrap();
        let dek = f.store.dek(&a, DekKind::Health).unwrap();
        assert!(matches!(
            f.store.create_person_keys(&a, &mut rng(22)).unwrap_err(),
            CryptoError::PersonKeysExist { .. }
        ));
        assert_eq!(fs::read(f.store_path()).unwrap(), before);
        assert_eq!(
            f.store.dek(&a, DekKind::Health).unwrap().key_bytes(),
            dek.key_bytes()
        );
    }

    // P4.9: erased persons are distinguishable from unknown ones and never come back.
    #[test]
    fn erase_tombstones_the_person() {
        let mut f = Fixture::new(23);
        let (a, b) = (p("psn-a"), p("psn-b"));
        f.store.create_person_keys(&a, &mut rng(24)).unwrap();
        f.store.create_person_keys(&b, &mut rng(25)).unwrap();
        let receipt = f.store.erase_person(&a).unwrap();
        assert_eq!(receipt.destroyed.len(), 2);
        assert_eq!(receipt.kek_id, f.kek.id());
        assert_eq!(
            receipt.store_digest,
            blake3::hash(&fs::read(f.store_path()).unwrap())
                .to_hex()
                .to_string()
        );
        assert_eq!(f.store.status(&a), PersonKeyStatus::Erased);
        assert!(f.store.is_erased(&a));
        assert_eq!(f.store.status(&p("psn-zz")), PersonKeyStatus::Unknown);
        assert!(matches!(
            f.store.dek(&a, DekKind::Health).unwrap_err(),
            CryptoError::PersonErased { .. }
        ));
        assert!(matches!(
            f.store.dek(&p("psn-zz"), DekKind::Health).unwrap_err(),
            CryptoError::UnknownPerson { .. }
        ));
        assert!(matches!(
            f.store.create_person_keys(&a, &mut rng(26)).unwrap_err(),
            CryptoError::PersonErased { .. }
        ));
        assert!(matches!(
            f.store.erase_person(&a).unwrap_err(),
            CryptoError::PersonErased { .. }
        ));
        assert!(matches!(
            f.store.erase_person(&p("psn-zz")).unwrap_err(),
            CryptoError::UnknownPerson { .. }
        ));
        let reopened = KeyStore::open(f.store_path(), &f.kek).unwrap();
        assert!(reopened.is_erased(&a));
        assert_eq!(reopened.status(&b), PersonKeyStatus::Active);
        let snap = reopened.export_snapshot();
        assert_eq!(snap.persons, vec![b.clone()]);
        assert_eq!(snap.erased, vec![a.clone()]);
        assert_eq!(snap.bytes, fs::read(f.store_path()).unwrap());
    }

    #[test]
    fn rotation_rewraps_every_dek() {
        let mut f = Fixture::new(27);
        let people: Vec<_> = (0..5).map(|i| p(&format!("psn-{i}"))).collect();
        let mut r = rng(28);
        for person in &people {
            f.store.create_person_keys(person, &mut r).unwrap();
        }
        f.store.erase_person(&people[4]).unwrap();
        let before: Vec<_> = people[..4]
            .iter()
            .flat_map(|x| DekKind::ALL.map(|k| *f.store.dek(x, k).unwrap().key_bytes()))
            .collect();
        let refs_before = f.store.key_refs(&people[0]).unwrap();
        let blind_before = f
            .store
            .blind_index()
            .unwrap()
            .index_phone("0452101111")
            .unwrap();
        let dek0 = f.store.dek(&people[0], DekKind::Health).unwrap();
        let ad = envelope_ad("person-psn-0", 3, "HealthObserved", 42);
        let payload = seal(&dek0, &ad, b"blood pressure 120/80").unwrap();

        let new_kek = Kek::generate(&mut rng(29));
        let report = f.store.rotate_kek(&new_kek).unwrap();
        assert_eq!(report.old_kek_id, f.kek.id());
        assert_eq!(report.new_kek_id, new_kek.id());
        assert_eq!(report.persons, 4);
        assert_eq!(report.rewrapped_deks, 8);
        assert_eq!(report.erased_persons, 1);

        // The old KEK no longer opens the store; the new one does, with the same DEKs.
        assert!(matches!(
            KeyStore::open(f.store_path(), &f.kek).unwrap_err(),
            CryptoError::WrongKek { .. }
        ));
        let reopened = KeyStore::open(f.store_path(), &new_kek).unwrap();
        let after: Vec<_> = people[..4]
            .iter()
            .flat_map(|x| DekKind::ALL.map(|k| *reopened.dek(x, k).unwrap().key_bytes()))
            .collect();
        assert_eq!(before, after);
        // Nothing in the event log changes: same key refs, old payloads still open.
        assert_eq!(reopened.key_refs(&people[0]).unwrap(), refs_before);
        let dek0_new = reopened.dek_for_ref(&refs_before.health).unwrap();
        assert_eq!(
            &open(&dek0_new, &ad, &payload).unwrap()[..],
            b"blood pressure 120/80"
        );
        assert!(reopened.is_erased(&people[4]));
        assert_eq!(
            reopened
                .blind_index()
                .unwrap()
                .index_phone("0452101111")
                .unwrap(),
            blind_before
        );
    }

    #[test]
    fn key_refs_parse_and_reject() {
        let r: KeyRef = "dek:h:psn-1:7".parse().unwrap();
        assert_eq!(r.kind, DekKind::Health);
        assert_eq!(r.version, 7);
        assert_eq!(r.to_string(), "dek:h:psn-1:7");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"dek:h:psn-1:7\"");
        assert_eq!(serde_json::from_str::<KeyRef>(&json).unwrap(), r);
        for bad in [
            "dek:x:psn-1:1",
            "dek:h:psn-1:0",
            "dek:h:psn-1:01",
            "dek:h::1",
            "dek:h:a:b:1",
            "kek:h:psn-1:1",
            "dek:h:山田:1",
        ] {
            assert!(bad.parse::<KeyRef>().is_err(), "{bad}");
        }
        assert!(Pseudonym::new("has space").is_err());
        assert!(Pseudonym::new("a:b").is_err());
        assert!(Pseudonym::new("x".repeat(129)).is_err());
        assert!(Pseudonym::new("x".repeat(128)).is_ok());
    }

    #[test]
    fn debug_of_keys_shows_no_bytes() {
        let mut f = Fixture::new(30);
        let a = p("psn-a");
        f.store.create_person_keys(&a, &mut rng(31)).unwrap();
        let dek = f.store.dek(&a, DekKind::Identity).unwrap();
        let dbg = format!("{dek:?} {dek:#?} {:?}", f.store);
        assert!(dbg.contains("[redacted]"));
        assert!(dbg.contains("dek:i:psn-a:1"));
        assert!(!dbg.contains(&hex::encode(&dek.key_bytes()[..8])));
        let k = dek.key_bytes();
        assert!(!dbg.contains(&format!("{}, {}, {}", k[0], k[1], k[2])));
    }
}

mod payload {
    use super::*;

    fn dek(seed: u64, person: &str) -> Dek {
        let key_ref = KeyRef {
            kind: DekKind::Health,
            person: p(person),
            version: 1,
        };
        Dek::for_test(key_ref, &mut rng(seed))
    }

    #[test]
    fn round_trip_and_overhead() {
        let d = dek(40, "psn-a");
        let ad = envelope_ad("person-psn-a", 0, "Registered", 1);
        for pt in [&b""[..], b"x", &[0xAB; 256]] {
            let sealed = seal(&d, &ad, pt).unwrap();
            assert_eq!(sealed.len(), pt.len() + SEAL_OVERHEAD);
            assert_eq!(&open(&d, &ad, &sealed).unwrap()[..], pt);
            if !pt.is_empty() {
                assert!(!contains(&sealed, pt));
            }
        }
    }

    // P4.8(1): a payload copied to another place in the log fails to decrypt.
    #[test]
    fn associated_data_mismatch_fails() {
        let d = dek(41, "psn-a");
        let ad = envelope_ad("person-psn-a", 5, "WeightRecorded", 1000);
        let sealed = seal(&d, &ad, b"62.5 kg").unwrap();
        for other in [
            envelope_ad("person-psn-a", 5, "WeightRecorded", 1001), // position
            envelope_ad("person-psn-b", 5, "WeightRecorded", 1000), // stream
            envelope_ad("person-psn-a", 5, "HeightRecorded", 1000), // event type
            envelope_ad("person-psn-a", 6, "WeightRecorded", 1000), // revision
            Vec::new(),
        ] {
            assert!(matches!(
                open(&d, &other, &sealed).unwrap_err(),
                CryptoError::Decrypt
            ));
        }
        // Another person's key, a flipped bit, truncation: all the same error.
        assert!(open(&dek(42, "psn-b"), &ad, &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&d, &ad, &flipped).is_err());
        assert!(open(&d, &ad, &sealed[..10]).is_err());
        assert!(open(&d, &ad, &[]).is_err());
        let mut wrong_version = sealed.clone();
        wrong_version[0] = 2;
        assert!(open(&d, &ad, &wrong_version).is_err());
    }

    #[test]
    fn envelope_ad_is_unambiguous() {
        assert_ne!(envelope_ad("ab", 1, "c", 2), envelope_ad("a", 1, "bc", 2));
        assert_ne!(envelope_ad("a", 1, "", 2), envelope_ad("", 1, "a", 2));
        assert_ne!(envelope_ad("s", 1, "t", 2), envelope_ad("s", 2, "t", 1));
    }

    // Vault records and event payloads live in separate domains (P4.8(3)).
    #[test]
    fn identity_domain_is_separate() {
        let d = dek(43, "psn-a");
        let sealed =
            crate::payload::seal_in_domain(&d, crate::payload::DOMAIN_IDENTITY, b"psn-a", b"{}")
                .unwrap();
        assert!(open(&d, b"psn-a", &sealed).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        // P4.8(1): seal/open is a round trip for any payload and header.
        #[test]
        fn seal_open_round_trip(
            pt in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            stream in "[a-z0-9-]{0,40}",
            rev in proptest::num::u64::ANY,
            pos in proptest::num::u64::ANY,
            seed in proptest::num::u64::ANY,
        ) {
            let d = dek(seed, "psn-prop");
            let ad = envelope_ad(&stream, rev, "Evt", pos);
            let sealed = seal(&d, &ad, &pt).unwrap();
            proptest::prop_assert_eq!(&open(&d, &ad, &sealed).unwrap()[..], &pt[..]);
            let other = envelope_ad(&stream, rev, "Evt", pos.wrapping_add(1));
            proptest::prop_assert!(open(&d, &other, &sealed).is_err());
        }
    }
}

mod vault {
    use super::*;

    fn record(n: u32) -> IdentityRecord {
        IdentityRecord {
            name: format!("山田 太郎{n}"),
            address: format!("神奈川県横浜市中区日本大通{n}"),
            birth_date: "1980-04-01".into(),
            phone: Some(format!("090-1234-{:04}", 5000 + n)),
            email: Some(format!("Taro{n}@Example.jp")),
        }
    }

    fn setup(seed: u64, people: &[&str]) -> (Fixture, IdentityVault) {
        let mut f = Fixture::new(seed);
        let mut r = rng(seed + 1);
        for person in people {
            f.store.create_person_keys(&p(person), &mut r).unwrap();
        }
        let vault = IdentityVault::create(f.vault_path(), f.store.blind_index().unwrap()).unwrap();
        (f, vault)
    }

    #[test]
    fn put_get_find_round_trip() {
        let (f, mut v) = setup(50, &["psn-a", "psn-b"]);
        let (a, b) = (p("psn-a"), p("psn-b"));
        let da = f.store.dek(&a, DekKind::Identity).unwrap();
        let db = f.store.dek(&b, DekKind::Identity).unwrap();
        v.put(&a, &record(1), &da).unwrap();
        v.put(&b, &record(2), &db).unwrap();
        assert_eq!(v.get(&a, &da).unwrap(), record(1));
        assert_eq!(mode_of(&f.vault_path()), 0o600);

        let v2 = IdentityVault::open(f.vault_path(), f.store.blind_index().unwrap()).unwrap();
        assert_eq!(v2.len(), 2);
        assert_eq!(v2.get(&b, &db).unwrap(), record(2));
        assert_eq!(
            v2.find_by_email(" taro1@EXAMPLE.JP").unwrap(),
            vec![a.clone()]
        );
        assert_eq!(
            v2.find_by_phone("+81 90 1234 5002").unwrap(),
            vec![b.clone()]
        );
        assert!(v2.find_by_email("nobody@example.jp").unwrap().is_empty());

        // Vault file holds no plaintext identity values (P4.8(3)).
        let raw = fs::read(f.vault_path()).unwrap();
        for s in [
            "山田",
            "横浜",
            "1980-04-01",
            "taro1@example.jp",
            "Taro1",
            "5001",
        ] {
            assert!(!contains(&raw, s.as_bytes()), "{s} in vault file");
        }
    }

    #[test]
    fn shared_phone_finds_both_and_replace_updates_index() {
        let (f, mut v) = setup(51, &["psn-a", "psn-b"]);
        let (a, b) = (p("psn-a"), p("psn-b"));
        let da = f.store.dek(&a, DekKind::Identity).unwrap();
        let db = f.store.dek(&b, DekKind::Identity).unwrap();
        let mut ra = record(1);
        ra.phone = Some("045-210-1111".into());
        let mut rb = record(2);
        rb.phone = Some("+81 45 210 1111".into());
        v.put(&a, &ra, &da).unwrap();
        v.put(&b, &rb, &db).unwrap();
        assert_eq!(
            v.find_by_phone("0452101111").unwrap(),
            vec![a.clone(), b.clone()]
        );
        let mut ra2 = record(1);
        ra2.email = Some("new@example.jp".into());
        ra2.phone = None;
        v.put(&a, &ra2, &da).unwrap();
        assert_eq!(v.find_by_phone("0452101111").unwrap(), vec![b.clone()]);
        assert!(v.find_by_email("taro1@example.jp").unwrap().is_empty());
        assert_eq!(v.find_by_email("NEW@example.jp").unwrap(), vec![a.clone()]);
    }

    // P4.8(3): identity records only under the person's own identity DEK.
    #[test]
    fn wrong_keys_are_refused() {
        let (f, mut v) = setup(52, &["psn-a", "psn-b"]);
        let (a, b) = (p("psn-a"), p("psn-b"));
        let health = f.store.dek(&a, DekKind::Health).unwrap();
        assert!(matches!(
            v.put(&a, &record(1), &health).unwrap_err(),
            CryptoError::WrongDekKind { .. }
        ));
        let db = f.store.dek(&b, DekKind::Identity).unwrap();
        assert!(matches!(
            v.put(&a, &record(1), &db).unwrap_err(),
            CryptoError::DekPersonMismatch { .. }
        ));
        assert!(v.is_empty());
        let da = f.store.dek(&a, DekKind::Identity).unwrap();
        v.put(&a, &record(1), &da).unwrap();
        assert!(matches!(
            v.get(&b, &db).unwrap_err(),
            CryptoError::NoIdentityRecord { .. }
        ));
    }

    #[test]
    fn bad_input_changes_nothing() {
        let (f, mut v) = setup(53, &["psn-a"]);
        let a = p("psn-a");
        let da = f.store.dek(&a, DekKind::Identity).unwrap();
        v.put(&a, &record(1), &da).unwrap();
        let before = fs::read(f.vault_path()).unwrap();
        let mut bad = record(2);
        bad.email = Some("not an email".into());
        assert!(matches!(
            v.put(&a, &bad, &da).unwrap_err(),
            CryptoError::InvalidEmail { .. }
        ));
        assert_eq!(fs::read(f.vault_path()).unwrap(), before);
        assert_eq!(v.get(&a, &da).unwrap(), record(1));
    }

    #[test]
    fn record_moved_to_other_person_fails() {
        let (f, mut v) = setup(54, &["psn-aaaa", "psn-bbbb"]);
        let (a, b) = (p("psn-aaaa"), p("psn-bbbb"));
        let da = f.store.dek(&a, DekKind::Identity).unwrap();
        let db = f.store.dek(&b, DekKind::Identity).unwrap();
        v.put(&a, &record(1), &da).unwrap();
        v.put(&b, &record(2), &db).unwrap();
        // Rename b's entry to a in the file (same length pseudonyms), fix the checksum,
        // and drop a's own entry: a's key must not open the moved record.
        let mut bytes = fs::read(f.vault_path()).unwrap();
        let pos = bytes.windows(8).rposition(|w| w == b"psn-bbbb").unwrap();
        bytes[pos..pos + 8].copy_from_slice(b"psn-aaaa");
        let first = bytes.windows(8).position(|w| w == b"psn-aaaa").unwrap();
        let second = pos;
        let mut edited = bytes[..first - 1].to_vec();
        edited.extend_from_slice(&bytes[second - 1..bytes.len() - 32]);
        // count field: one entry now
        edited[26..30].copy_from_slice(&1u32.to_be_bytes());
        let sum = *blake3::hash(&edited).as_bytes();
        edited.extend_from_slice(&sum);
        fs::write(f.vault_path(), &edited).unwrap();
        let v2 = IdentityVault::open(f.vault_path(), f.store.blind_index().unwrap()).unwrap();
        assert!(v2.contains(&a) && !v2.contains(&b));
        assert!(matches!(v2.get(&a, &da).unwrap_err(), CryptoError::Decrypt));
    }

    #[test]
    fn wrong_blind_key_and_corruption_refused() {
        let (f, v) = setup(55, &[]);
        drop(v);
        let err = IdentityVault::open(f.vault_path(), BlindIndex::new(&[9u8; 32])).unwrap_err();
        assert!(
            matches!(err, CryptoError::WrongBlindIndexKey { .. }),
            "{err}"
        );
        let mut bytes = fs::read(f.vault_path()).unwrap();
        bytes[3] ^= 1;
        fs::write(f.vault_path(), &bytes).unwrap();
        assert!(matches!(
            IdentityVault::open(f.vault_path(), f.store.blind_index().unwrap()).unwrap_err(),
            CryptoError::ChecksumMismatch { .. }
        ));
        assert!(matches!(
            IdentityVault::create(f.vault_path(), f.store.blind_index().unwrap()).unwrap_err(),
            CryptoError::AlreadyExists { .. }
        ));
    }

    #[test]
    fn record_debug_is_redacted() {
        let dbg = format!("{:?}", record(1));
        assert!(!dbg.contains("山田") && !dbg.contains("example"));
    }
}

/// P4.9: after erasure no copy of the keys or the identity plaintext remains.
mod erasure {
    use super::*;

    #[test]
    fn erase_leaves_no_trace_in_key_store_or_vault() {
        let mut f = Fixture::new(60);
        let (alice, bob) = (p("psn-alice"), p("psn-bob"));
        let mut r = rng(61);
        f.store.create_person_keys(&alice, &mut r).unwrap();
        f.store.create_person_keys(&bob, &mut r).unwrap();
        let blind = f.store.blind_index().unwrap();
        let mut vault = IdentityVault::create(f.vault_path(), blind.clone()).unwrap();

        let alice_record = IdentityRecord {
            name: "Hanako Kanagawa".into(),
            address: "1 Nihon-odori, Naka-ku, Yokohama".into(),
            birth_date: "1975-11-16".into(),
            phone: Some("+81 80 9876 5432".into()),
            email: Some("hanako@example.jp".into()),
        };
        let bob_record = IdentityRecord {
            name: "Ichiro Sagami".into(),
            address: "2 Sagamihara".into(),
            birth_date: "1990-01-01".into(),
            phone: None,
            email: Some("ichiro@example.jp".into()),
        };
        let alice_id = f.store.dek(&alice, DekKind::Identity).unwrap();
        vault.put(&alice, &alice_record, &alice_id).unwrap();
        vault
            .put(
                &bob,
                &bob_record,
                &f.store.dek(&bob, DekKind::Identity).unwrap(),
            )
            .unwrap();

        let mut secrets: Vec<Vec<u8>> = Vec::new();
        for kind in DekKind::ALL {
            secrets.push(f.store.dek(&alice, kind).unwrap().key_bytes().to_vec());
            secrets.push(f.store.wrapped_bytes(&alice, kind).unwrap());
        }
        let vault_before = fs::read(f.vault_path()).unwrap();
        let store_before = fs::read(f.store_path()).unwrap();
        // Sanity: the scan does find the wrapped keys and sealed record before erasure.
        assert!(contains(&store_before, &secrets[1]));
        let email_token = blind.index_email("hanako@example.jp").unwrap();
        assert!(contains(&vault_before, &email_token.0));

        let ad = envelope_ad("person-psn-alice", 0, "Registered", 7);
        let health = f.store.dek(&alice, DekKind::Health).unwrap();
        let sealed = seal(&health, &ad, b"HbA1c 5.4%").unwrap();
        drop(health);

        f.store.erase_person(&alice).unwrap();
        assert!(vault.erase(&alice).unwrap());
        assert!(!vault.erase(&alice).unwrap());

        let store_after = fs::read(f.store_path()).unwrap();
        let vault_after = fs::read(f.vault_path()).unwrap();
        for (i, s) in secrets.iter().enumerate() {
            assert!(!contains(&store_after, s), "secret {i} still in key store");
            assert!(!contains(&vault_after, s), "secret {i} in vault");
        }
        for value in [
            "Hanako",
            "Nihon-odori",
            "1975-11-16",
            "9876",
            "hanako@example.jp",
        ] {
            assert!(!contains(&store_after, value.as_bytes()));
            assert!(!contains(&vault_after, value.as_bytes()), "{value}");
        }
        assert!(!contains(&vault_after, &email_token.0));
        assert!(!contains(&vault_after, b"psn-alice"));
        // The sealed identity ciphertext itself is gone from the vault file.
        let alice_sealed_prefix = &vault_before[vault_before
            .windows(9)
            .position(|w| w == b"psn-alice")
            .unwrap()..][..40];
        assert!(!contains(&vault_after, alice_sealed_prefix));
        // Bob is untouched.
        assert!(contains(
            &store_after,
            &f.store.wrapped_bytes(&bob, DekKind::Health).unwrap()
        ));
        assert_eq!(
            vault.find_by_email("ichiro@example.jp").unwrap(),
            vec![bob.clone()]
        );
        assert!(vault.find_by_email("hanako@example.jp").unwrap().is_empty());
        // No temp files left with old contents.
        let names: Vec<_> = fs::read_dir(&f.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        // The payload in the log is now undecryptable: no key can be had for it.
        let reopened = KeyStore::open(f.store_path(), &f.kek).unwrap();
        assert!(matches!(
            reopened.dek(&alice, DekKind::Health).unwrap_err(),
            CryptoError::PersonErased { .. }
        ));
        assert!(!sealed.is_empty());
    }
}

mod passwords {
    use std::sync::Arc;

    use argon2::password_hash::{PasswordHasher as _, SaltString};

    use super::*;

    fn weak_hash(pw: &str) -> String {
        let params = argon2::Params::new(4096, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(&[1u8; 16]).unwrap();
        a.hash_password(pw.as_bytes(), &salt).unwrap().to_string()
    }

    // P4.8(2): argon2id, at least m=19456 KiB, t=2, p=1, PHC string.
    #[test]
    fn hash_and_verify() {
        let params = PasswordParams::default();
        let phc = hash_password("correct horse", &params, &mut rng(70)).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert_eq!(
            phc,
            hash_password("correct horse", &params, &mut rng(70)).unwrap()
        );
        let ok = verify_password("correct horse", &phc, &params).unwrap();
        assert_eq!(
            ok,
            Verification {
                valid: true,
                needs_rehash: false
            }
        );
        assert!(!verify_password("wrong horse", &phc, &params).unwrap().valid);
        assert!(!verify_password("", &phc, &params).unwrap().valid);
        // Stronger current settings: valid, but asks for a rehash.
        let stronger = PasswordParams {
            m_cost_kib: 32_768,
            ..params
        };
        assert!(
            verify_password("correct horse", &phc, &stronger)
                .unwrap()
                .needs_rehash
        );
    }

    #[test]
    fn weak_stored_hash_needs_rehash_and_weak_params_refused() {
        let phc = weak_hash("pw123456");
        let v = verify_password("pw123456", &phc, &PasswordParams::default()).unwrap();
        assert!(v.valid && v.needs_rehash);
        for weak in [
            PasswordParams {
                m_cost_kib: 19_455,
                t_cost: 2,
                p_cost: 1,
            },
            PasswordParams {
                m_cost_kib: 19_456,
                t_cost: 1,
                p_cost: 1,
            },
        ] {
            assert!(matches!(
                hash_password("pw", &weak, &mut rng(1)).unwrap_err(),
                CryptoError::WeakPasswordParams { .. }
            ));
        }
        assert!(hash_password("", &PasswordParams::default(), &mut rng(1)).is_err());
        assert!(hash_password(&"x".repeat(1025), &PasswordParams::default(), &mut rng(1)).is_err());
        assert!(matches!(
            verify_password("pw", "not-a-phc", &PasswordParams::default()).unwrap_err(),
            CryptoError::MalformedPasswordHash { .. }
        ));
    }

    async fn flood(hasher: PasswordHasher, n: usize) {
        let mut handles = Vec::new();
        for i in 0..n {
            let h = hasher.clone();
            handles.push(tokio::spawn(async move {
                let pw = format!("password-{i}");
                let phc = h.hash(Zeroizing::new(pw.clone())).await.unwrap();
                let v = h.verify(Zeroizing::new(pw), phc.clone()).await.unwrap();
                assert!(v.valid && !v.needs_rehash);
                let bad = h.verify(Zeroizing::new("nope".into()), phc).await.unwrap();
                assert!(!bad.valid);
            }));
        }
        // The runtime stays responsive while hashing is in progress: a trivial task
        // completes before the flood does.
        let light = tokio::spawn(async { 42 });
        assert_eq!(light.await.unwrap(), 42);
        assert!(handles.iter().any(|h| !h.is_finished()));
        for h in handles {
            h.await.unwrap();
        }
        assert!(hasher.peak_in_flight() >= 1);
        assert!(hasher.peak_in_flight() <= hasher.max_concurrent());
    }

    fn hasher(max: usize, seed: u64) -> PasswordHasher {
        PasswordHasher::new(
            PasswordHasherConfig {
                params: PasswordParams::default(),
                max_concurrent: max,
            },
            Box::new(rng(seed)),
        )
        .unwrap()
    }

    #[test]
    fn async_hasher_on_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(flood(hasher(1, 71), 3));
    }

    #[test]
    fn async_hasher_on_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let h = hasher(2, 72);
        rt.block_on(flood(h.clone(), 4));
        assert!(h.peak_in_flight() <= 2);
    }

    #[test]
    fn async_hasher_config() {
        assert!(
            PasswordHasher::new(
                PasswordHasherConfig {
                    max_concurrent: 0,
                    ..Default::default()
                },
                Box::new(rng(1))
            )
            .is_err()
        );
        let d = PasswordHasherConfig::default();
        assert!(d.max_concurrent >= 1);
        assert_eq!(d.params, PasswordParams::MINIMUM);
        let _shared: Arc<PasswordHasher> = Arc::new(hasher(1, 2));
    }
}
