//! Aggregate state caches and the facts a decision needs from other streams.

// Keys are stream names the platform makes itself, not attacker-chosen: a fast
// non-keyed hash is fine (the cache is on every read's path).
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use mebyo_domain::credential::Credential;
use mebyo_domain::person::Person;
use mebyo_domain::policy::Policy;
use mebyo_domain::provider::Provider;
use mebyo_domain::records::Records;
use mebyo_domain::staff::Staff;
use mebyo_domain::{
    Actor, Config, CredentialState, Ctx, Decider, PersonId, PersonState, PolicyVersion,
    ProviderState, Refusal, StaffState, Timestamp,
};
use parking_lot::Mutex;

/// All policy versions live in one stream, so "the version in force" is one fold.
pub const POLICY_STREAM: &str = "policy-versions";

/// Facts from other streams, loaded by the shell and lent to the pure decision.
/// Shared with the state caches, not copied: every record a provider submits
/// loads its credential, provider and person, and copying those states (a
/// person's consents) was a few per cent of a bus batch's CPU.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub staff: Option<Arc<StaffState>>,
    pub credential: Option<Arc<CredentialState>>,
    pub provider: Option<Arc<ProviderState>>,
    pub person: Option<Arc<PersonState>>,
    pub policy: Option<Arc<PolicyVersion>>,
    pub replaced: Option<Arc<CredentialState>>,
}

impl Facts {
    pub fn decide<D: Decider>(
        &self,
        state: &D::State,
        cmd: &D::Command,
        actor: &Actor,
        config: &Config,
        now: Timestamp,
    ) -> Result<Vec<D::Event>, Refusal> {
        let mut ctx = Ctx::new(now, actor, config);
        ctx.staff = self.staff.as_deref();
        ctx.credential = self.credential.as_deref();
        ctx.provider = self.provider.as_deref();
        ctx.person = self.person.as_deref();
        ctx.policy = self.policy.as_deref();
        ctx.replaced = self.replaced.as_deref();
        D::decide(state, cmd, &ctx)
    }
}

/// States by stream with the revision they include, at most [`STATES_CACHED_MAX`]
/// per kind and at most the cache's byte budget in all ([`Weigh`]). States are
/// shared (`Arc`): a read must not pay for copying a person's whole record history.
///
/// Why bounded: a server that runs for months touches every aggregate; one entry
/// each would grow without limit (TigerBeetle: limits on everything). A count
/// alone does not bound memory, since one person's records grow with every
/// submission (issue 19 §9: the server's memory grew by about 1.7 KiB per record
/// written and never came back), so the bytes are bounded too. A miss is only
/// slower (the state is folded again from its stream), never wrong, so the
/// eviction can be crude: while over either bound, an arbitrary entry goes. A
/// state larger than the whole budget is not kept at all.
pub struct Cache<S> {
    inner: Mutex<Entries<S>>,
    capacity: usize,
    budget_bytes: usize,
}

struct Entries<S> {
    map: HashMap<String, (u64, Arc<S>, usize)>,
    /// The sum of the entries' weights (their third field).
    bytes: usize,
}

/// Aggregate states kept per kind (people, providers, credentials, ...).
pub const STATES_CACHED_MAX: usize = 65_536;

/// Bytes of states kept per kind but records: 64 MiB. Consents and guidance make
/// a person's state grow; the others are a few hundred bytes each.
pub const STATE_BYTES_CACHED_MAX: usize = 64 << 20;

/// Bytes of record states kept: 256 MiB, so that the records cache, the one that
/// grows with every submission, stays a fixed part of a server's memory
/// (ARCHITECTURE.md, Limits, adds the bounds up).
pub const RECORD_BYTES_CACHED_MAX: usize = 256 << 20;

/// A state's approximate size in memory: its own size and what it holds on the
/// heap, counted from its contents, never exactly (allocator slack is not
/// counted). Enough to bound the cache by bytes within a small factor.
pub trait Weigh {
    fn weight_bytes(&self) -> usize;
}

/// Per entry of a map or list in a state, beyond its own text: the node and
/// the ids and times it holds.
const ENTRY_OVERHEAD_BYTES: usize = 256;

impl Weigh for mebyo_domain::records::RecordState {
    fn weight_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.records.len() * ENTRY_OVERHEAD_BYTES + self.text_bytes
    }
}

impl Weigh for PersonState {
    fn weight_bytes(&self) -> usize {
        let entries = self.consents.len() + self.guidance.len() + self.representatives.len();
        std::mem::size_of::<Self>() + entries * ENTRY_OVERHEAD_BYTES
    }
}

macro_rules! weigh_fixed {
    ($($t:ty),*) => {$(
        impl Weigh for $t {
            fn weight_bytes(&self) -> usize {
                std::mem::size_of::<Self>() + ENTRY_OVERHEAD_BYTES
            }
        }
    )*};
}

weigh_fixed!(
    ProviderState,
    CredentialState,
    mebyo_domain::policy::PolicyState,
    u32
);

impl Weigh for StaffState {
    fn weight_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + (1 + self.roles.len()) * ENTRY_OVERHEAD_BYTES
    }
}

impl<S: Clone> Default for Cache<S> {
    fn default() -> Self {
        Self::with_bounds(STATES_CACHED_MAX, STATE_BYTES_CACHED_MAX)
    }
}

impl<S: Clone> Cache<S> {
    pub fn with_bounds(capacity: usize, budget_bytes: usize) -> Self {
        assert!(capacity > 0 && budget_bytes > 0);
        Self {
            inner: Mutex::new(Entries {
                map: HashMap::default(),
                bytes: 0,
            }),
            capacity,
            budget_bytes,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

impl<S: Clone + Weigh> Cache<S> {
    pub fn get(&self, stream: &str) -> Option<(Option<u64>, Arc<S>)> {
        self.inner
            .lock()
            .map
            .get(stream)
            .map(|(r, s, _)| (Some(*r), s.clone()))
    }
    /// Keeps the newer of what is cached and what is offered.
    pub fn put(&self, stream: &str, revision: u64, state: Arc<S>) {
        let weight = state.weight_bytes();
        let mut e = self.inner.lock();
        if e.map.get(stream).is_some_and(|(r, _, _)| *r >= revision) {
            return;
        }
        e.remove(stream);
        if weight > self.budget_bytes {
            return;
        }
        while e.map.len() >= self.capacity || e.bytes + weight > self.budget_bytes {
            let victim = e
                .map
                .keys()
                .next()
                .cloned()
                .expect("over a bound, so not empty");
            e.remove(&victim);
        }
        e.bytes += weight;
        e.map.insert(stream.to_string(), (revision, state, weight));
        debug_assert!(e.map.len() <= self.capacity && e.bytes <= self.budget_bytes);
    }
    /// Removes and returns the entry (so a writer can evolve it without a copy).
    pub fn take(&self, stream: &str) -> Option<(u64, Arc<S>)> {
        self.inner.lock().remove(stream)
    }
    pub fn remove(&self, stream: &str) {
        self.inner.lock().remove(stream);
    }
}

impl<S> Entries<S> {
    fn remove(&mut self, stream: &str) -> Option<(u64, Arc<S>)> {
        let (r, s, weight) = self.map.remove(stream)?;
        self.bytes -= weight;
        Some((r, s))
    }
}

/// One async lock per stream, held by a command across load, decide and append,
/// so that two commands on one stream in this process never race (issue 22 §9):
/// 16 submissions for one person in flight used to exhaust their optimistic
/// retries. The optimistic check at append stays, for writers in other processes.
///
/// Self-cleaning: an entry lives only while a command holds or awaits its lock,
/// so the map is bounded by the commands in flight (which the servers bound), not
/// by the streams ever touched. Uncontended, it costs one short map lock and one
/// small allocation per command.
#[derive(Default)]
pub struct StreamLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds a stream's lock; releasing it removes the map entry if nobody waits.
pub struct StreamGuard<'a> {
    locks: &'a StreamLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl StreamLocks {
    /// Waits for the stream's lock (fair: waiters get it in arrival order).
    pub async fn lock(&self, key: &str) -> StreamGuard<'_> {
        let m = self.map.lock().entry(key.to_string()).or_default().clone();
        let guard = m.lock_owned().await;
        StreamGuard {
            locks: self,
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Streams with a lock held or awaited (for tests of the bound).
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.map.lock().len()
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.map.lock();
        // The map's reference and our guard's: nobody else holds or awaits it. A
        // newcomer must take the map lock first, so this check cannot race; the
        // lock is released under the map lock, so two holders never overlap.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 2)
        {
            map.remove(&self.key);
        }
        drop(self.guard.take());
    }
}

pub struct Caches {
    person: Cache<PersonState>,
    provider: Cache<ProviderState>,
    credential: Cache<CredentialState>,
    staff: Cache<StaffState>,
    records: Cache<mebyo_domain::records::RecordState>,
    policy: Cache<mebyo_domain::policy::PolicyState>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            person: Cache::default(),
            provider: Cache::default(),
            credential: Cache::default(),
            staff: Cache::default(),
            records: Cache::with_bounds(STATES_CACHED_MAX, RECORD_BYTES_CACHED_MAX),
            policy: Cache::default(),
        }
    }
}

impl Caches {
    /// After an erasure, cached plaintext state of the person must go too.
    pub fn forget_person(&self, person: &PersonId) {
        self.person.remove(&person.stream());
        self.records.remove(&mebyo_domain::records::stream(person));
    }
}

/// A decider whose states the platform caches.
pub trait Cached: Decider<State: Weigh> {
    fn cache(c: &Caches) -> &Cache<Self::State>;
}

macro_rules! cached {
    ($($d:ty => $field:ident),*) => {$(
        impl Cached for $d {
            fn cache(c: &Caches) -> &Cache<Self::State> { &c.$field }
        }
    )*};
}

cached!(Person => person, Provider => provider, Credential => credential, Staff => staff, Records => records, Policy => policy);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_locks_exclude_per_stream_and_clean_up_after_themselves() {
        let locks = Arc::new(StreamLocks::default());
        // Holders inside, per stream: never more than one.
        let inside: Arc<[std::sync::atomic::AtomicUsize; 2]> = Arc::new(Default::default());
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let s = i % 2;
                let _g = locks.lock(["records-a", "records-b"][s]).await;
                let n = inside[s].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(n, 0, "two holders of one stream's lock at once");
                tokio::task::yield_now().await;
                inside[s].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.in_use(), 0, "every entry goes with its last holder");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity_and_keeps_the_newest() {
        let c: Cache<u32> = Cache::with_bounds(3, 1 << 20);
        for i in 0..10u32 {
            c.put(&format!("s-{i}"), 1, Arc::new(i));
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        // The newest insert is always kept.
        assert_eq!(c.get("s-9").map(|(r, s)| (r, *s)), Some((Some(1), 9)));
        // An older revision never replaces a newer one; a newer one does.
        c.put("s-9", 0, Arc::new(0));
        assert_eq!(*c.get("s-9").unwrap().1, 9);
        c.put("s-9", 2, Arc::new(99));
        assert_eq!(*c.get("s-9").unwrap().1, 99);
        assert_eq!(c.len(), 3);
    }

    /// Issue 19 §9: the bytes held stay within the budget however big the
    /// states grow; a state bigger than the whole budget is not kept.
    #[test]
    fn the_cache_never_holds_more_bytes_than_its_budget() {
        #[derive(Clone)]
        struct Blob(usize);
        impl Weigh for Blob {
            fn weight_bytes(&self) -> usize {
                self.0
            }
        }
        let c: Cache<Blob> = Cache::with_bounds(1000, 10_000);
        for i in 0..500usize {
            c.put(
                &format!("s-{}", i % 50),
                i as u64,
                Arc::new(Blob(100 + 7 * i)),
            );
            assert!(c.bytes() <= 10_000, "{} bytes after {i}", c.bytes());
        }
        let held: usize = (0..50)
            .filter_map(|i| c.get(&format!("s-{i}")))
            .map(|(_, b)| b.0)
            .sum();
        assert_eq!(held, c.bytes(), "the count matches what is held");
        c.put("big", 1, Arc::new(Blob(10_001)));
        assert!(c.get("big").is_none());
        // Replacing an entry releases its old weight; taking one releases it all.
        c.put("s-x", 1, Arc::new(Blob(5000)));
        c.put("s-x", 2, Arc::new(Blob(10)));
        assert!(c.bytes() <= 10_000);
        let before = c.bytes();
        c.take("s-x");
        assert_eq!(c.bytes(), before - 10);
    }
}
