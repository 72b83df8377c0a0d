//! Signing checkpoints while the platform runs.
//!
//! A [`Checkpointing`] keeps the Merkle tree of the whole log in memory, fed in
//! position order from `subscribe_all` ([`Checkpointing::observe`]), and on
//! [`Checkpointing::tick`] signs the head when tlog's [`SigningPolicy`] says so
//! (every N events or T seconds, time passed in) and appends the signed note as
//! a `ledger.checkpoint` event. Signing goes through tlog's [`Checkpointer`],
//! which refuses to sign anything inconsistent with what it signed before.
//!
//! Restart: the checkpoints already in the log are checked against the tree as
//! they stream past, and the newest becomes the Checkpointer's starting point
//! (`Checkpointer::resume`), so fork protection survives restarts. No signing
//! happens before the stream has caught up with the head as of start, since a
//! checkpoint still ahead in the log would otherwise be unknown to it.
//!
//! Published copy: with [`Checkpointing::publish_to`], each checkpoint, once
//! durable in the log, is also written to a file outside it
//! (`DATA/checkpoints/latest.note`, [`published_path`]). A log cut back at a frame
//! boundary loses its checkpoints with it; that file does not, so the platform
//! refuses to start on a log shorter than it (issue 19 §3), and no checkpoint
//! smaller than it is ever signed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mebyo_store::{
    Actor, AppendError, Clock, EventStore, ExpectedRevision, NewEvent, RecordedEvent, StoreError,
};
use mebyo_tlog::checkpointer::CheckpointerError;
use mebyo_tlog::{
    Checkpointer, MerkleTree, NoteSigner, NoteVerifier, SignedCheckpoint, SigningPolicy,
};

use crate::scan::{LedgerCheckpoint, Problem, check_checkpoint, checkpoint_note};
use crate::{CHECKPOINT_EVENT_TYPE, CHECKPOINT_STREAM};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointingError {
    #[error("event at position {found} arrived where {expected} was due; the tree would be wrong")]
    OutOfOrder { expected: u64, found: u64 },
    /// The log holds a checkpoint that does not hold up: tampering, or a key
    /// mix-up. Signing stops; an operator must look.
    #[error("the log holds a bad checkpoint, refusing to sign on top of it: {0}")]
    BadCheckpoint(Box<Problem>),
    /// A valid checkpoint newer than anything this signer signed: another
    /// process signs with the same key. Two signers could fork the log.
    #[error(
        "checkpoint at position {position} (size {size}) was signed by someone else with this key"
    )]
    ForeignCheckpoint { position: u64, size: u64 },
    #[error(transparent)]
    Refused(#[from] CheckpointerError),
    #[error("storing the checkpoint failed: {0}")]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event stream ended")]
    StreamEnded,
    /// The log is shorter than the checkpoint published outside it: signing it
    /// would sign a history without events already vouched for.
    #[error(
        "the log holds {size} events but the checkpoint published at {path} covers {published}: refusing to sign a shorter history"
    )]
    BehindPublished {
        path: PathBuf,
        size: u64,
        published: u64,
    },
}

/// A checkpoint this signer signed and stored.
#[derive(Debug, Clone)]
pub struct Signed {
    pub signed: SignedCheckpoint,
    /// Where the checkpoint event landed in the log.
    pub position: u64,
}

/// Outcome of [`Checkpointing::checkpoint_now`].
#[derive(Debug, Clone)]
pub enum Now {
    Signed(Signed),
    /// Nothing but checkpoints was appended since this one: it is the head.
    UpToDate(SignedCheckpoint),
}

pub struct Checkpointing {
    store: Arc<dyn EventStore>,
    policy: SigningPolicy,
    verifier: NoteVerifier,
    /// Held until the first signature, when the Checkpointer is built from the
    /// newest checkpoint seen in the log.
    signer: Option<NoteSigner>,
    checkpointer: Option<Checkpointer>,
    tree: MerkleTree,
    /// Newest valid checkpoint seen in the log, with its recorded time (seconds).
    latest_in_log: Option<(SignedCheckpoint, u64)>,
    /// Tree size after the last event that is not a checkpoint. Only such growth
    /// is worth signing: counting our own checkpoint events would make every
    /// checkpoint trigger the next one.
    content_size: u64,
    /// Head of the log when this started; no signing before the tree reaches it.
    start_head: u64,
    /// Where each checkpoint is also written once durable ([`Self::publish_to`]).
    published: Option<PathBuf>,
}

/// Where the newest checkpoint is published outside the log, in a data directory.
pub fn published_path(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoints").join("latest.note")
}

/// The published checkpoint at `path`, if there is one that verifies with `vkey`.
/// A file that is there but does not verify is an error: it is not evidence of
/// anything, and it must not be mistaken for the absence of evidence silently.
pub fn read_published(
    path: &Path,
    vkey: &NoteVerifier,
) -> Result<Option<mebyo_tlog::Checkpoint>, String> {
    let Some(note) = read_published_note(path)? else {
        return Ok(None);
    };
    mebyo_tlog::parse_and_verify_checkpoint_for_origin(&note, vkey, vkey.name())
        .map(Some)
        .map_err(|e| format!("{} does not verify: {e}", path.display()))
}

/// The published checkpoint's text as it is, unverified (bounded, UTF-8): what
/// `GET /checkpoint` serves for witnesses, who verify it themselves.
pub fn read_published_note(path: &Path) -> Result<Option<String>, String> {
    let note = match std::fs::read(path) {
        Ok(b) if b.len() <= mebyo_tlog::note::MAX_NOTE_BYTES => b,
        Ok(_) => {
            return Err(format!(
                "{} is larger than a checkpoint can be",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    String::from_utf8(note)
        .map(Some)
        .map_err(|_| format!("{} is not UTF-8", path.display()))
}

impl Checkpointing {
    /// A checkpointer with an empty tree: feed it every event from position 0
    /// (what [`Checkpointing::run`] does).
    pub fn new(store: Arc<dyn EventStore>, signer: NoteSigner, policy: SigningPolicy) -> Self {
        let start_head = store.head().count;
        Self {
            store,
            policy,
            verifier: signer.verifier(),
            signer: Some(signer),
            checkpointer: None,
            tree: MerkleTree::new(),
            latest_in_log: None,
            content_size: 0,
            start_head,
            published: None,
        }
    }

    /// Also writes each checkpoint, once durable in the log, to `path` (see the
    /// module doc), and refuses to sign a tree smaller than the one there.
    pub fn publish_to(mut self, path: PathBuf) -> Self {
        self.published = Some(path);
        self
    }

    /// Starts from a tree already built by a scan of the same store's log (the
    /// CLI: the store is open and locked by the caller, the file is stable).
    pub fn from_scan(
        store: Arc<dyn EventStore>,
        signer: NoteSigner,
        policy: SigningPolicy,
        tree: MerkleTree,
        checkpoints: &[LedgerCheckpoint],
    ) -> Self {
        let mut c = Self::new(store, signer, policy);
        let size = tree.size();
        c.tree = tree;
        // Positions of checkpoint events are known; every other event is content.
        let mut content = size;
        let mut cps = checkpoints.iter().rev().peekable();
        while content > 0 && cps.peek().is_some_and(|cp| cp.position == content - 1) {
            cps.next();
            content -= 1;
        }
        c.content_size = content;
        c.latest_in_log = checkpoints
            .last()
            .map(|cp| (cp.signed.clone(), secs(cp.recorded_at_us)));
        c
    }

    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The newest checkpoint known (signed here or found in the log).
    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        match &self.checkpointer {
            Some(c) => c.last(),
            None => self.latest_in_log.as_ref().map(|(s, _)| s),
        }
    }

    /// Takes in the next event of the log (position order, no gaps).
    pub fn observe(&mut self, ev: &RecordedEvent) -> Result<(), CheckpointingError> {
        let expected = self.tree.size();
        if ev.position != expected {
            return Err(CheckpointingError::OutOfOrder {
                expected,
                found: ev.position,
            });
        }
        if ev.event_type == CHECKPOINT_EVENT_TYPE {
            self.observe_checkpoint(ev)?;
        }
        self.tree.append_event(&ev.hash);
        if ev.event_type != CHECKPOINT_EVENT_TYPE {
            self.content_size = self.tree.size();
        }
        Ok(())
    }

    fn observe_checkpoint(&mut self, ev: &RecordedEvent) -> Result<(), CheckpointingError> {
        let bad = |f: crate::scan::Fault| {
            CheckpointingError::BadCheckpoint(Box::new(f.at(ev.position, None, ev.position)))
        };
        let note = checkpoint_note(ev).map_err(bad)?;
        // Its root must be the tree's at its size; any two checkpoints that pass
        // this are consistent with each other, since they describe one tree.
        let cp =
            check_checkpoint(&self.tree, ev.position, note, &self.verifier, None).map_err(bad)?;
        let last = self.last_size();
        if self.checkpointer.is_some() {
            if cp.size > last.unwrap_or(0) {
                return Err(CheckpointingError::ForeignCheckpoint {
                    position: ev.position,
                    size: cp.size,
                });
            }
            return Ok(());
        }
        if let Some(last) = last
            && cp.size < last
        {
            return Err(CheckpointingError::BadCheckpoint(Box::new(Problem {
                position: ev.position,
                offset: None,
                kind: crate::ProblemKind::CheckpointInconsistent,
                detail: format!("checkpoint of size {} follows one of size {last}", cp.size),
                expected: None,
                found: None,
                verified: ev.position,
            })));
        }
        self.latest_in_log = Some((
            SignedCheckpoint {
                checkpoint: cp,
                note: note.to_owned(),
            },
            secs(ev.recorded_at_us),
        ));
        Ok(())
    }

    fn last_size(&self) -> Option<u64> {
        self.latest().map(|s| s.checkpoint.size)
    }

    /// Whether anything but checkpoints was appended since the newest checkpoint.
    fn grown(&self) -> bool {
        match self.last_size() {
            None => self.content_size > 0,
            Some(s) => self.content_size > s,
        }
    }

    fn checkpointer(&mut self) -> Result<&mut Checkpointer, CheckpointingError> {
        if self.checkpointer.is_none() {
            let signer = self
                .signer
                .take()
                .expect("the signer is held until the checkpointer exists");
            let c = match &self.latest_in_log {
                Some((s, at)) => Checkpointer::resume(signer, self.policy, &s.note, *at)?,
                None => Checkpointer::new(signer, self.policy),
            };
            self.checkpointer = Some(c);
        }
        Ok(self.checkpointer.as_mut().expect("just set"))
    }

    /// Signs and stores a checkpoint if one is due at `now_secs` (unix seconds).
    pub async fn tick(&mut self, now_secs: u64) -> Result<Option<Signed>, CheckpointingError> {
        if self.tree.size() < self.start_head || !self.grown() {
            return Ok(None);
        }
        let size = self.tree.size();
        if !self.checkpointer()?.is_due(size, now_secs) {
            return Ok(None);
        }
        self.sign_and_store(now_secs).await.map(Some)
    }

    /// Signs the current head now, whatever the schedule (`mebyo audit checkpoint`).
    pub async fn checkpoint_now(&mut self, now_secs: u64) -> Result<Now, CheckpointingError> {
        if !self.grown()
            && let Some(latest) = self.latest()
        {
            return Ok(Now::UpToDate(latest.clone()));
        }
        self.sign_and_store(now_secs).await.map(Now::Signed)
    }

    async fn sign_and_store(&mut self, now_secs: u64) -> Result<Signed, CheckpointingError> {
        let size = self.tree.size();
        if let Some(path) = &self.published
            && let Ok(Some(p)) = read_published(path, &self.verifier)
            && p.size > size
        {
            return Err(CheckpointingError::BehindPublished {
                path: path.clone(),
                size,
                published: p.size,
            });
        }
        let tree = std::mem::take(&mut self.tree);
        // The Checkpointer records what it signed even if storing fails below:
        // a signed head exists from that moment on, and every later one must be
        // consistent with it.
        let signed = self.checkpointer()?.sign_at(&tree, size, now_secs);
        self.tree = tree;
        let signed = signed?;
        // The event id is derived from the note, so no randomness is needed and a
        // retried append of the same checkpoint carries the same id.
        let digest = blake3::hash(signed.note.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.as_bytes()[..16]);
        let event = NewEvent::plain(
            CHECKPOINT_EVENT_TYPE,
            Actor::system(),
            id,
            signed.note.clone().into_bytes(),
        );
        let out = self
            .store
            .append(CHECKPOINT_STREAM, ExpectedRevision::Any, vec![event])
            .await?;
        tracing::info!(
            size,
            position = out.first_position,
            "signed and stored a ledger checkpoint"
        );
        if let Some(path) = &self.published {
            // A copy: the checkpoint is durable in the log already. Failing to
            // write it loses evidence, not data; say so and go on.
            if let Err(e) = mebyo_store::fsio::write_atomic(path, signed.note.as_bytes()) {
                tracing::warn!(error = %e, path = %path.display(), "publishing the checkpoint");
            }
        }
        Ok(Signed {
            signed,
            position: out.first_position,
        })
    }

    /// The server loop: follows the log from where the tree ends, and signs
    /// when due, checking the schedule after every event and every `poll`.
    /// Returns when `shutdown` completes, or on the first error (which the
    /// server should surface: it means checkpoints stopped).
    pub async fn run(
        mut self,
        clock: Arc<dyn Clock>,
        poll: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), CheckpointingError> {
        let mut events = self.store.subscribe_all(self.tree.size());
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                ev = events.next() => match ev {
                    None => return Err(CheckpointingError::StreamEnded),
                    Some(ev) => self.observe(&ev?)?,
                },
                _ = interval.tick() => {}
            }
            self.tick(secs(clock.now_us())).await?;
        }
    }
}

fn secs(us: i64) -> u64 {
    u64::try_from(us / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_store::{EmbeddedStore, ManualClock, OpenOptions};

    fn signer() -> NoteSigner {
        NoteSigner::from_seed(&crate::checkpoint_origin(&[1; 16]), &[3; 32]).unwrap()
    }

    fn ev(i: u32) -> NewEvent {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        NewEvent::plain("test.happened", Actor::system(), id, vec![1, 2, 3])
    }

    async fn open(dir: &std::path::Path, clock: &ManualClock) -> Arc<dyn EventStore> {
        if !EmbeddedStore::exists(dir) {
            EmbeddedStore::create(dir, [1; 16], 0).unwrap();
        }
        let opened = EmbeddedStore::open(
            dir,
            OpenOptions {
                clock: Arc::new(clock.clone()),
                ..OpenOptions::default()
            },
        )
        .unwrap();
        Arc::new(opened.store)
    }

    async fn feed(c: &mut Checkpointing, store: &Arc<dyn EventStore>) {
        let from = c.tree().size();
        for e in store.read_all(from, 10_000).await.unwrap() {
            c.observe(&e).unwrap();
        }
    }

    #[tokio::test]
    async fn signs_by_count_and_time_never_on_its_own_checkpoints_and_resumes() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000_000);
        let store = open(tmp.path(), &clock).await;
        let policy = SigningPolicy {
            every_leaves: 10,
            every_secs: 60,
        };
        let mut c = Checkpointing::new(store.clone(), signer(), policy);
        assert!(
            c.tick(1000).await.unwrap().is_none(),
            "empty log: nothing to sign"
        );
        for i in 0..10 {
            store
                .append("s-a", ExpectedRevision::Any, vec![ev(i)])
                .await
                .unwrap();
        }
        feed(&mut c, &store).await;
        let first = c
            .tick(1000)
            .await
            .unwrap()
            .expect("first checkpoint is due");
        assert_eq!(first.signed.checkpoint.size, 10);
        assert_eq!(first.position, 10);
        // Its own checkpoint event comes past and must not trigger another.
        feed(&mut c, &store).await;
        assert_eq!(c.tree().size(), 11);
        assert!(c.tick(100_000).await.unwrap().is_none());
        // One more event: not enough by count, enough by time.
        store
            .append("s-a", ExpectedRevision::Any, vec![ev(10)])
            .await
            .unwrap();
        feed(&mut c, &store).await;
        assert!(c.tick(1030).await.unwrap().is_none());
        let second = c.tick(1060).await.unwrap().unwrap();
        assert_eq!(second.signed.checkpoint.size, 12);
        feed(&mut c, &store).await;
        drop(c);

        // A restarted signer learns the log's checkpoints and continues from them.
        let mut r = Checkpointing::new(store.clone(), signer(), policy);
        for i in 0..3 {
            store
                .append("s-b", ExpectedRevision::Any, vec![ev(100 + i)])
                .await
                .unwrap();
        }
        feed(&mut r, &store).await;
        assert_eq!(r.latest().unwrap().checkpoint.size, 12);
        match r.checkpoint_now(2000).await.unwrap() {
            Now::Signed(s) => assert_eq!(s.signed.checkpoint.size, 16),
            Now::UpToDate(_) => panic!("three events were added"),
        }
        feed(&mut r, &store).await;
        assert!(matches!(
            r.checkpoint_now(2001).await.unwrap(),
            Now::UpToDate(_)
        ));
    }

    #[tokio::test]
    async fn a_second_signer_with_the_same_key_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let store = open(tmp.path(), &clock).await;
        let policy = SigningPolicy {
            every_leaves: 1,
            every_secs: 0,
        };
        store
            .append("s", ExpectedRevision::Any, vec![ev(0)])
            .await
            .unwrap();
        let mut a = Checkpointing::new(store.clone(), signer(), policy);
        let mut b = Checkpointing::new(store.clone(), signer(), policy);
        feed(&mut a, &store).await;
        feed(&mut b, &store).await;
        a.tick(1).await.unwrap().unwrap();
        store
            .append("s", ExpectedRevision::Any, vec![ev(1)])
            .await
            .unwrap();
        feed(&mut b, &store).await;
        b.tick(1).await.unwrap().unwrap();
        // a sees b's newer checkpoint: signed with its key, not by it.
        let from = a.tree().size();
        let evs = store.read_all(from, 100).await.unwrap();
        let err = evs.iter().try_for_each(|e| a.observe(e)).unwrap_err();
        assert!(
            matches!(err, CheckpointingError::ForeignCheckpoint { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_checkpoint_from_another_key_stops_signing() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let store = open(tmp.path(), &clock).await;
        store
            .append("s", ExpectedRevision::Any, vec![ev(0)])
            .await
            .unwrap();
        let other = NoteSigner::from_seed(&crate::checkpoint_origin(&[1; 16]), &[4; 32]).unwrap();
        let policy = SigningPolicy {
            every_leaves: 1,
            every_secs: 0,
        };
        let mut forger = Checkpointing::new(store.clone(), other, policy);
        feed(&mut forger, &store).await;
        forger.tick(1).await.unwrap().unwrap();
        let mut c = Checkpointing::new(store.clone(), signer(), policy);
        let evs = store.read_all(0, 100).await.unwrap();
        let err = evs.iter().try_for_each(|e| c.observe(e)).unwrap_err();
        assert!(matches!(err, CheckpointingError::BadCheckpoint(_)), "{err}");
    }
}
