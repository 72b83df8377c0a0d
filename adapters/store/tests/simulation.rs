//! The store on a simulated disk with seeded faults, against a model (issue 19,
//! "so that it stays fixed").
//!
//! Each seed runs rounds of concurrent appends (some with wrong expectations,
//! some with a second part in another stream, `append_then`) while the disk
//! (`mebyo_store::simdisk`) fails fsyncs with EIO, fills up (ENOSPC after a
//! partial write), loses the power at the n-th changing call or between rounds
//! (unsynced writes kept, torn by sector or lost), and has its log rolled back to
//! an older copy after a clean close. After every reopen it checks:
//! - every acknowledged event is there, at the position it was acknowledged at,
//!   with its stream, revision and bytes;
//! - every other event there was in doubt (its append failed or had no answer),
//!   and of each such append a prefix survives; refused appends never appear; an
//!   event in doubt that a reopen did not find never appears later;
//! - the chain links and hashes, the offline verifier says intact, and the
//!   store's read models (stream reads, stream list, head) agree with the model;
//! - a log rolled back behind its clean-close record is refused, not served;
//! - after faults end, a reopen works and appends are acknowledged again.
//!
//! Seeds 1..=N in CI (`MEBYO_SIM_SEEDS`, default 200); a failure names its seed,
//! and `MEBYO_SIM_SEED=<seed>` replays it. The fault schedule and the commands
//! follow from the seed; the interleaving of the store's threads does not (a
//! failure that does not replay is still a failure: run it again in a loop).
//! The long run is in `adapters/store/docs/design.md`, "Simulation".

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use mebyo_store::embedded::{OpenError, Opened};
use mebyo_store::simdisk::{Faults, SimDisk};
use mebyo_store::verify::{self, Outcome};
use mebyo_store::{
    Actor, AppendError, EmbeddedStore, EventStore, ExpectedRevision, Id128, NewEvent, OpenOptions,
    RecordedEvent, StoreError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const STREAMS: usize = 6;
/// Marks a seed whose reopen refused a crash's damage as corruption. Recovery
/// reads damage followed by frames of its own batch as torn only if it has a
/// crash's shape (a sector of zeros), so that a flipped byte in the last batch
/// is never taken for a torn write; the simulated disk can tear in shapes that
/// rule does not recognise (about one seed in 500 in the long run). Such a
/// refusal loses nothing silently, but it stops the store until an operator
/// restores: the test bounds how often (`REFUSED_AS_CORRUPT_PER_MILLE_MAX`).
const REFUSED_AS_CORRUPT: &str = "refused as corruption: ";
const REFUSED_AS_CORRUPT_PER_MILLE_MAX: usize = 10;
const ROUNDS_PER_SEED: usize = 40;

fn dir() -> PathBuf {
    PathBuf::from("/sim/ledger")
}

/// One event the model knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ev {
    id: Id128,
    stream: String,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Model {
    /// What the log must hold from position 0: acknowledged events, and events in
    /// doubt that a reopen found (durable now).
    log: Vec<Ev>,
    /// Acknowledged positions not yet confirmed by a reopen (filled in `log`).
    acked: BTreeMap<u64, Ev>,
    /// Events of appends that failed or got no answer: request id → its events.
    doubt: HashMap<u64, Vec<Ev>>,
    refused: HashSet<Id128>,
    /// In doubt once, not found by a reopen: must never appear.
    gone: HashSet<Id128>,
    /// Streams with events in doubt: their revision is unknown until a reopen.
    unsure: BTreeSet<String>,
}

impl Model {
    fn revision(&self, stream: &str) -> Option<u64> {
        let in_log = self.log.iter().filter(|e| e.stream == stream).count();
        let acked = self.acked.values().filter(|e| e.stream == stream).count();
        (in_log + acked).checked_sub(1).map(|n| n as u64)
    }
}

struct Sim {
    seed: u64,
    rng: ChaCha8Rng,
    disk: SimDisk,
    model: Model,
    next_event: u64,
    next_request: u64,
    /// A copy of the log and the count it held, from an earlier clean close.
    old_log: Option<(Vec<u8>, u64)>,
    reopens: u64,
    rollbacks_refused: u64,
    cache_suspect: u64,
}

fn actor() -> Actor {
    Actor::new("system", "sim")
}

impl Sim {
    fn fail(&self, what: impl std::fmt::Display) -> String {
        format!(
            "seed {} (replay: MEBYO_SIM_SEED={}): {what}",
            self.seed, self.seed
        )
    }

    fn event(&mut self, stream: &str) -> (NewEvent, Ev) {
        self.next_event += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.seed.to_le_bytes());
        id[8..].copy_from_slice(&self.next_event.to_le_bytes());
        // Sizes that cross sector boundaries, so torn writes cut frames.
        let len = self.rng.random_range(0..900);
        let payload: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        let ev = Ev {
            id,
            stream: stream.to_string(),
            payload: payload.clone(),
        };
        (NewEvent::plain("sim.appended", actor(), id, payload), ev)
    }

    fn open(&mut self) -> Result<Option<EmbeddedStore>, String> {
        self.reopens += 1;
        let opts = OpenOptions {
            disk: Arc::new(self.disk.process()),
            ..OpenOptions::default()
        };
        match EmbeddedStore::open(&dir(), opts) {
            Ok(Opened { store, .. }) => Ok(Some(store)),
            // The disk still failing (faults on): not the store's fault.
            Err(OpenError::Store(StoreError::Io(_))) => Ok(None),
            // A failed fsync left the cache untrustworthy: the machine restarts.
            Err(OpenError::CacheSuspect(_)) => {
                self.cache_suspect += 1;
                self.disk.crash();
                Ok(None)
            }
            // Safe (nothing is lost silently, an operator decides) but not live:
            // counted apart and bounded by the test, not a pass.
            Err(e @ OpenError::Store(StoreError::Corrupt { .. })) => Err(format!(
                "{REFUSED_AS_CORRUPT}{}",
                self.fail(format!("reopen refused: {e}"))
            )),
            Err(e) => Err(self.fail(format!("reopen refused: {e}"))),
        }
    }

    /// Opens, retrying with the faults off: once the disk works, so must the store.
    fn reopen(&mut self) -> Result<EmbeddedStore, String> {
        // At most: a failure with the faults on, a restart of the machine, then
        // an open that must work.
        for _ in 0..3 {
            if let Some(s) = self.open()? {
                return Ok(s);
            }
            self.disk.set_faults(Faults::default());
        }
        Err(self.fail("reopen failed with the faults off after a restart"))
    }

    async fn round(&mut self, store: &EmbeddedStore) {
        let n = self.rng.random_range(1..=4);
        let mut reqs = Vec::new();
        for _ in 0..n {
            let stream = format!("s-{}", self.rng.random_range(0..STREAMS));
            let expected = if self.model.unsure.contains(&stream) {
                ExpectedRevision::Any
            } else {
                match (self.rng.random_range(0..10), self.model.revision(&stream)) {
                    (0, _) => ExpectedRevision::Any,
                    (1, r) => ExpectedRevision::Exact(r.map_or(7, |r| r + 3)),
                    (_, None) => ExpectedRevision::NoStream,
                    (_, Some(r)) => ExpectedRevision::Exact(r),
                }
            };
            let k = self.rng.random_range(1..=3);
            let (events, evs): (Vec<_>, Vec<_>) = (0..k).map(|_| self.event(&stream)).unzip();
            let then_stream = format!("s-{}", self.rng.random_range(0..STREAMS));
            let then = if self.rng.random_bool(0.2) && then_stream != stream {
                let (e, ev) = self.event(&then_stream);
                Some((then_stream, e, ev))
            } else {
                None
            };
            self.next_request += 1;
            reqs.push((self.next_request, stream, expected, events, evs, then));
        }
        // Sometimes the power goes in the middle of the round's commits.
        if self.rng.random_bool(0.15) {
            self.disk.crash_after(self.rng.random_range(1..30));
        }
        let futs = reqs.iter().map(|(_, stream, expected, events, _, then)| {
            let store = store.clone();
            let (stream, expected, events) = (stream.clone(), *expected, events.clone());
            let then = then.clone();
            async move {
                match then {
                    Some((s, e, _)) => {
                        store
                            .append_then(&stream, expected, events, vec![(s, vec![e])])
                            .await
                    }
                    None => store.append(&stream, expected, events).await,
                }
            }
        });
        let answers = futures::future::join_all(futs).await;
        self.disk.crash_after(0);
        for ((req, _, _, _, mut evs, then), answer) in reqs.into_iter().zip(answers) {
            if let Some((_, _, ev)) = then {
                evs.push(ev);
            }
            match answer {
                Ok(o) => {
                    for (i, ev) in evs.into_iter().enumerate() {
                        self.model.acked.insert(o.first_position + i as u64, ev);
                    }
                }
                Err(
                    AppendError::WrongExpectedRevision { .. }
                    | AppendError::Empty
                    | AppendError::Invalid(_)
                    | AppendError::TooManyEvents { .. },
                ) => self.model.refused.extend(evs.iter().map(|e| e.id)),
                Err(_) => {
                    for e in &evs {
                        self.model.unsure.insert(e.stream.clone());
                    }
                    self.model.doubt.insert(req, evs);
                }
            }
        }
    }

    /// Everything the reopened store holds, checked against the model, which
    /// then learns which events in doubt survived.
    async fn check(&mut self, store: &EmbeddedStore) -> Result<(), String> {
        let all = read_everything(store).await.map_err(|e| self.fail(e))?;
        // Acknowledged events first: each at its position.
        for (p, ev) in std::mem::take(&mut self.model.acked) {
            if p < self.model.log.len() as u64 {
                return Err(self.fail(format!("position {p} acknowledged twice")));
            }
            self.model.log.resize(p as usize, placeholder());
            self.model.log.push(ev);
        }
        let doubt_of: HashMap<Id128, (u64, usize)> = self
            .model
            .doubt
            .iter()
            .flat_map(|(r, evs)| evs.iter().enumerate().map(move |(i, e)| (e.id, (*r, i))))
            .collect();
        let mut found: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
        if all.len() < self.model.log.len() {
            return Err(self.fail(format!(
                "the store holds {} events, but {} were acknowledged or found before",
                all.len(),
                self.model.log.len()
            )));
        }
        for (p, e) in all.iter().enumerate() {
            let got = Ev {
                id: e.event_id,
                stream: e.stream_id.clone(),
                payload: e.payload.clone(),
            };
            if let Some(want) = self.model.log.get(p) {
                if want.id == [0; 16] {
                    // A hole between acknowledged positions: only an event in doubt.
                    let Some(d) = doubt_of.get(&got.id) else {
                        return Err(self.fail(format!("position {p}: an event never appended")));
                    };
                    found.entry(d.0).or_default().push((p as u64, d.1));
                    self.model.log[p] = got;
                } else if *want != got {
                    return Err(self.fail(format!(
                        "position {p}: acknowledged {want:?}, found {got:?}"
                    )));
                }
                continue;
            }
            if self.model.refused.contains(&got.id) {
                return Err(self.fail(format!("position {p}: a refused append is in the log")));
            }
            if self.model.gone.contains(&got.id) {
                return Err(self.fail(format!(
                    "position {p}: an event lost at an earlier reopen came back"
                )));
            }
            let Some(d) = doubt_of.get(&got.id) else {
                return Err(self.fail(format!("position {p}: an event never appended: {got:?}")));
            };
            found.entry(d.0).or_default().push((p as u64, d.1));
            self.model.log.push(got);
        }
        if let Some(p) = self.model.log.iter().position(|e| e.id == [0; 16]) {
            return Err(self.fail(format!(
                "position {p}: missing (before an acknowledged event)"
            )));
        }
        // Of each append in doubt, a prefix survives, at consecutive positions.
        for (req, evs) in std::mem::take(&mut self.model.doubt) {
            let parts = found.remove(&req).unwrap_or_default();
            for (i, (p, k)) in parts.iter().enumerate() {
                if *k != i || *p != parts[0].0 + i as u64 {
                    return Err(self.fail(format!(
                        "append {req} survived in part, not as a prefix: {parts:?}"
                    )));
                }
            }
            self.model
                .gone
                .extend(evs[parts.len()..].iter().map(|e| e.id));
        }
        self.model.unsure.clear();
        self.check_chain_and_models(store, &all).await
    }

    async fn check_chain_and_models(
        &self,
        store: &EmbeddedStore,
        all: &[RecordedEvent],
    ) -> Result<(), String> {
        let mut prev = store.genesis();
        for e in all {
            if e.prev_hash != prev || e.compute_hash() != e.hash {
                return Err(self.fail(format!("position {}: the chain breaks", e.position)));
            }
            prev = e.hash;
        }
        let head = store.head();
        if head.count != all.len() as u64 || head.hash != prev {
            return Err(self.fail(format!(
                "head {} differs from the log's {}",
                head.count,
                all.len()
            )));
        }
        let mut streams: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
        for e in &self.model.log {
            streams.entry(e.stream.as_str()).or_default().push(e);
        }
        let listed: BTreeSet<String> = store.streams_with_prefix("s-").into_iter().collect();
        let want: BTreeSet<String> = streams.keys().map(|s| s.to_string()).collect();
        if listed != want {
            return Err(self.fail(format!("streams {listed:?}, the model has {want:?}")));
        }
        for (s, evs) in streams {
            let got = store
                .read_stream(s, 0, usize::MAX)
                .await
                .map_err(|e| self.fail(e))?;
            let ids: Vec<Id128> = got.iter().map(|e| e.event_id).collect();
            let want: Vec<Id128> = evs.iter().map(|e| e.id).collect();
            if ids != want
                || got
                    .iter()
                    .enumerate()
                    .any(|(i, e)| e.stream_revision != i as u64)
            {
                return Err(self.fail(format!("stream {s} reads back otherwise than the model")));
            }
        }
        let file = mebyo_store::disk::Disk::open(
            &self.disk.process(),
            &EmbeddedStore::log_path(&dir()),
            mebyo_store::disk::Open::Read,
        )
        .map_err(|e| self.fail(e))?;
        let opts = verify::Options {
            progress: &mut |_, _| {},
            person_related: None,
        };
        match verify::verify_open(&*file, opts).map_err(|e| self.fail(e))? {
            Outcome::Intact(i) if i.count == all.len() as u64 => Ok(()),
            other => Err(self.fail(format!("the offline verifier says {other:?}"))),
        }
    }

    /// Events known to be in the log: found by the last reopen, or acknowledged since.
    fn known_count(&self) -> u64 {
        let acked_end = self.model.acked.keys().next_back().map_or(0, |p| p + 1);
        acked_end.max(self.model.log.len() as u64)
    }

    /// A clean close, then the log put back as it was at an earlier clean close:
    /// the open must refuse it (the clean-close record says more was written),
    /// and open again once the right log is back.
    fn roll_back(&mut self) -> Result<(), String> {
        let log = EmbeddedStore::log_path(&dir());
        let now = self.disk.durable_copy(&log).expect("the log exists");
        let clean = self.disk.exists(&dir().join("events.clean"));
        self.disk.set_faults(Faults::default());
        if let Some((old, old_count)) = self.old_log.clone()
            && clean
            && old_count < self.known_count()
        {
            self.disk.put_back(&log, &old);
            let opts = OpenOptions {
                disk: Arc::new(self.disk.process()),
                ..OpenOptions::default()
            };
            match EmbeddedStore::open(&dir(), opts) {
                Err(OpenError::Shorter {
                    count,
                    clean_close_count,
                    ..
                }) if count < clean_close_count => {}
                Err(e) => return Err(self.fail(format!("a rolled-back log: {e}"))),
                Ok(_) => return Err(self.fail("a rolled-back log was served")),
            }
            self.rollbacks_refused += 1;
            self.disk.put_back(&log, &now);
        }
        self.old_log = Some((now, self.known_count()));
        Ok(())
    }
}

fn placeholder() -> Ev {
    Ev {
        id: [0; 16],
        stream: String::new(),
        payload: Vec::new(),
    }
}

async fn read_everything(store: &EmbeddedStore) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut all = Vec::new();
    loop {
        let more = store.read_all(all.len() as u64, 1000).await?;
        if more.is_empty() {
            return Ok(all);
        }
        all.extend(more);
    }
}

#[derive(Default)]
struct Report {
    reopens: u64,
    events: u64,
    rollbacks_refused: u64,
    cache_suspect: u64,
    disk: mebyo_store::simdisk::Stats,
}

async fn run(seed: u64) -> Result<Report, String> {
    let disk = SimDisk::new(seed);
    EmbeddedStore::create_on(&disk, &dir(), [7; 16], 1).map_err(|e| e.to_string())?;
    let mut sim = Sim {
        seed,
        rng: ChaCha8Rng::seed_from_u64(seed),
        disk,
        model: Model::default(),
        next_event: 0,
        next_request: 0,
        old_log: None,
        reopens: 0,
        rollbacks_refused: 0,
        cache_suspect: 0,
    };
    let mut store = sim.reopen()?;
    for _ in 0..ROUNDS_PER_SEED {
        let crashes = sim.disk.stats().crashes;
        sim.round(&store).await;
        let action = sim.rng.random_range(0..100);
        if action < 10 {
            let on = sim.rng.random_bool(0.5);
            let p = sim.rng.random_range(0.02..0.3);
            sim.disk.set_faults(if on {
                Faults {
                    fsync_eio: p,
                    write_enospc: p,
                }
            } else {
                Faults::default()
            });
        }
        let crashed = sim.disk.stats().crashes > crashes;
        let crash_now = !crashed && (10..18).contains(&action);
        let clean_close = !crashed && (18..26).contains(&action);
        let stopped = store.stopped().is_some();
        if std::env::var_os("MEBYO_SIM_TRACE").is_some() {
            eprintln!(
                "round: acked {} doubt {} refused {}; crashed {crashed} crash_now {crash_now} clean_close {clean_close} stopped {:?}; disk {:?}",
                sim.model.acked.len(),
                sim.model.doubt.len(),
                sim.model.refused.len(),
                store.stopped(),
                sim.disk.stats()
            );
        }
        if !(crashed || crash_now || clean_close || stopped) {
            continue;
        }
        if crash_now {
            sim.disk.crash();
        }
        drop(store);
        if clean_close && sim.rng.random_bool(0.5) {
            sim.roll_back()?;
        }
        // A store that stopped after a failure says so until it is reopened;
        // once the disk works again, the reopen must too (issue 19 §5).
        if stopped && sim.rng.random_bool(0.7) {
            sim.disk.set_faults(Faults::default());
        }
        store = sim.reopen()?;
        sim.check(&store).await?;
    }
    // Faults off, one more round must be acknowledged, and survive a crash.
    sim.disk.set_faults(Faults::default());
    drop(store);
    let store = sim.reopen()?;
    sim.check(&store).await?;
    let before = sim.model.log.len();
    sim.round(&store).await;
    sim.disk.crash_after(0);
    let acked_now = sim.model.acked.len() + sim.model.refused.len();
    if acked_now == 0 {
        return Err(sim.fail("with the faults off, the last round got no answer at all"));
    }
    sim.disk.crash();
    drop(store);
    let store = sim.reopen()?;
    sim.check(&store).await?;
    assert!(sim.model.log.len() >= before);
    Ok(Report {
        reopens: sim.reopens,
        events: sim.model.log.len() as u64,
        rollbacks_refused: sim.rollbacks_refused,
        cache_suspect: sim.cache_suspect,
        disk: sim.disk.stats(),
    })
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("MEBYO_SIM_SEED") {
        return vec![s.parse().expect("MEBYO_SIM_SEED must be a u64")];
    }
    let first: u64 = std::env::var("MEBYO_SIM_FIRST_SEED").map_or(1, |s| s.parse().expect("a u64"));
    let n: u64 = std::env::var("MEBYO_SIM_SEEDS").map_or(200, |s| s.parse().expect("a u64"));
    (first..first + n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_keep_every_acknowledged_event_and_nothing_else() {
    let seeds = seeds();
    let mut t = Report::default();
    let mut refused = Vec::new();
    for &seed in &seeds {
        let r = match run(seed).await {
            Ok(r) => r,
            Err(why) if why.starts_with(REFUSED_AS_CORRUPT) => {
                eprintln!("{why}");
                refused.push(seed);
                continue;
            }
            Err(why) => panic!("{why}"),
        };
        t.reopens += r.reopens;
        t.events += r.events;
        t.rollbacks_refused += r.rollbacks_refused;
        t.cache_suspect += r.cache_suspect;
        let (d, x) = (&mut t.disk, r.disk);
        d.crashes += x.crashes;
        d.fsync_failures += x.fsync_failures;
        d.enospc_writes += x.enospc_writes;
        d.torn_changes += x.torn_changes;
        d.lost_changes += x.lost_changes;
    }
    // Printed, so a run shows the faults it met; zero of a kind means the
    // simulation stopped testing it.
    eprintln!(
        "simulation: {} seeds, {} reopens, {} events checked, {} rolled-back logs refused, {} opens refused until a restart after a failed fsync; disk: {:?}",
        seeds.len(),
        t.reopens,
        t.events,
        t.rollbacks_refused,
        t.cache_suspect,
        t.disk
    );
    eprintln!(
        "simulation: {} seeds of {} stopped at a reopen that refused a crash's damage as corruption: {refused:?}",
        refused.len(),
        seeds.len()
    );
    assert!(
        refused.len() * 1000 <= seeds.len().max(100) * REFUSED_AS_CORRUPT_PER_MILLE_MAX,
        "recovery refused a crash's damage as corruption for {} of {} seeds, more than {}‰: {refused:?}",
        refused.len(),
        seeds.len(),
        REFUSED_AS_CORRUPT_PER_MILLE_MAX
    );
    if seeds.len() >= 50 {
        let d = t.disk;
        assert!(
            d.crashes > 0
                && d.fsync_failures > 0
                && d.enospc_writes > 0
                && d.torn_changes > 0
                && t.rollbacks_refused > 0,
            "the seeds met every kind of fault: {:?}, {} rollbacks",
            d,
            t.rollbacks_refused
        );
    }
}
