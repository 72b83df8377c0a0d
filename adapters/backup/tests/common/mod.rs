//! A data directory laid out as the platform lays it out (ledger, KEK, key
//! store, backup keys), made with the real store and mebyo-crypto APIs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mebyo_backup::{
    BackupJob, BackupOptions, DataPaths, Kind, Manifest, RestoreReport, RestoreRequest, StartedBy,
    ensure_backup_keys,
};
use mebyo_crypto::{DekKind, Kek, KeyStore, Pseudonym};
use mebyo_store::{
    Actor, EmbeddedStore, EventStore, ExpectedRevision, ManualClock, NewEvent, OpenOptions,
    PayloadKind,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const HEALTH_TYPE: &str = "health.recorded";

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub backups: PathBuf,
    pub store: EmbeddedStore,
    pub kek: Kek,
    pub keystore: KeyStore,
    pub clock: ManualClock,
    pub rng: ChaCha8Rng,
    pub opts: BackupOptions,
    revisions: HashMap<String, u64>,
}

pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("MEBYO_TEST_SEED") {
        Ok(s) => s.parse().expect("MEBYO_TEST_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: seed {seed} (replay with MEBYO_TEST_SEED={seed})");
    seed
}

impl Fixture {
    pub fn new(seed: u64) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let backups = tmp.path().join("backups");
        let paths = DataPaths::new(&data);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ledger_id = [0u8; 16];
        rng.fill_bytes(&mut ledger_id);
        EmbeddedStore::create(&paths.ledger(), ledger_id, 1).unwrap();
        std::fs::create_dir_all(paths.keys()).unwrap();
        let kek = Kek::create_file(paths.keys().join("kek"), &mut rng).unwrap();
        let keystore = KeyStore::create(paths.keystore(), &kek, &mut rng).unwrap();
        ensure_backup_keys(&paths.keys(), &mut rng).unwrap();
        let store = EmbeddedStore::open(&paths.ledger(), OpenOptions::default())
            .unwrap()
            .store;
        Self {
            tmp,
            data,
            backups,
            store,
            kek,
            keystore,
            // 2026-11-26T00:00:00Z
            clock: ManualClock::new(1_795_651_200_000_000),
            rng,
            opts: BackupOptions { chunk_bytes: 1024 },
            revisions: HashMap::new(),
        }
    }

    pub fn paths(&self) -> DataPaths {
        DataPaths::new(&self.data)
    }

    pub fn add_person(&mut self, p: &str) -> Pseudonym {
        let p = Pseudonym::new(p).unwrap();
        self.keystore.create_person_keys(&p, &mut self.rng).unwrap();
        p
    }

    pub async fn append_plain(&mut self, n: usize) {
        for _ in 0..n {
            let mut id = [0u8; 16];
            self.rng.fill_bytes(&mut id);
            let mut payload = vec![0u8; 100 + (self.rng.next_u32() % 300) as usize];
            self.rng.fill_bytes(&mut payload);
            let ev = NewEvent::plain("load.tested", Actor::system(), id, payload);
            self.store
                .append("load-0", ExpectedRevision::Any, vec![ev])
                .await
                .unwrap();
        }
    }

    /// Appends `n` health events for `p`, sealed under their health DEK with the
    /// envelope AD of the place they land at.
    pub async fn append_sealed(&mut self, p: &Pseudonym, n: usize) {
        let stream = format!("person-{}", p.as_str());
        for i in 0..n {
            let dek = self.keystore.dek(p, DekKind::Health).unwrap();
            let rev = *self.revisions.get(&stream).unwrap_or(&0);
            let position = self.store.head().count;
            let ad = mebyo_crypto::envelope_ad(&stream, rev, HEALTH_TYPE, position);
            let plain = format!("blood pressure reading {i} of {}", p.as_str());
            let sealed = mebyo_crypto::seal(&dek, &ad, plain.as_bytes()).unwrap();
            let mut id = [0u8; 16];
            self.rng.fill_bytes(&mut id);
            let ev = NewEvent {
                event_type: HEALTH_TYPE.into(),
                schema_version: 1,
                actor: Actor::new("individual", p.as_str()),
                event_id: id,
                correlation_id: id,
                causation_id: id,
                payload_kind: PayloadKind::AesSiv,
                key_ref: dek.key_ref().to_string(),
                payload: sealed,
                seal: false,
            };
            let o = self
                .store
                .append(&stream, ExpectedRevision::Any, vec![ev])
                .await
                .unwrap();
            assert_eq!(o.first_position, position);
            assert_eq!(o.last_revision, rev);
            self.revisions.insert(stream.clone(), rev + 1);
        }
    }

    pub fn backup(&mut self, kind: Kind) -> mebyo_backup::Result<Manifest> {
        self.clock.advance(3_600_000_000);
        let by = StartedBy::operator("op-1").unwrap();
        let job = BackupJob {
            data_dir: &self.data,
            dest: &self.backups,
            started_by: &by,
            clock: &self.clock,
            opts: &self.opts,
        };
        mebyo_backup::create_backup(&job, kind, self.store.head(), &mut self.rng)
    }

    pub fn rotate(&mut self) -> mebyo_backup::EpochRotation {
        self.clock.advance(60_000_000);
        let by = StartedBy::Scheduler;
        let job = BackupJob {
            data_dir: &self.data,
            dest: &self.backups,
            started_by: &by,
            clock: &self.clock,
            opts: &self.opts,
        };
        mebyo_backup::rotate_backup_epoch(&job, &mut self.rng).unwrap()
    }

    pub fn restore_to(&self, name: &str, set: Option<&str>) -> mebyo_backup::Result<RestoreReport> {
        mebyo_backup::restore(&RestoreRequest {
            from: self.backups.clone(),
            set: set.map(String::from),
            to: self.tmp.path().join(name),
            keys_dir: self.paths().keys(),
        })
    }

    pub fn target(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn set_file(&self, m: &Manifest, name: &str) -> PathBuf {
        self.backups.join(&m.backup_id).join(name)
    }

    pub fn clock_arc(&self) -> Arc<ManualClock> {
        Arc::new(self.clock.clone())
    }
}

pub fn head_hex(store: &EmbeddedStore) -> String {
    hex::encode(store.head().hash)
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
