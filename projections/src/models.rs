//! All read models behind one strictly ordered `apply`, and their snapshots (issue 8:
//! a restart serves again from a snapshot plus the log's tail instead of a full replay).

use crate::access::AccessLog;
use crate::consents::Consents;
use crate::credentials::Credentials;
use crate::event::Applied;
use crate::operations::Operations;
use crate::providers::Providers;
use crate::records::RecordsIndex;
use crate::registry::Registry;
use crate::staff::StaffRoster;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadModels {
    registry: Registry,
    providers: Providers,
    consents: Consents,
    credentials: Credentials,
    records: RecordsIndex,
    access: AccessLog,
    staff: StaffRoster,
    operations: Operations,
    /// Position of the next event to apply.
    next: u64,
    /// Chain hash of the last applied event; `None` before the first.
    last_hash: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A gap or a duplicate: the models would silently miss or double-count events.
    #[error("expected log position {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    /// The event does not follow the one applied before it: another log, or a
    /// tampered one.
    #[error("event at position {position} does not chain to the previous event's hash")]
    ChainBroken { position: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a projection snapshot")]
    NotASnapshot,
    #[error("snapshot format version {0} is not supported")]
    Version(u8),
    #[error("snapshot checksum mismatch: the file is damaged")]
    Checksum,
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot is internally inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The log has moved on or been rewound since: replaying from it would double-count
    /// or skip events.
    #[error("snapshot is at position {snapshot}, the log says {expected}")]
    Position { snapshot: u64, expected: u64 },
    /// Same position, different history: the snapshot belongs to another log.
    #[error("snapshot's chain hash at position {position} differs from the log's")]
    Hash { position: u64 },
}

const MAGIC: &[u8; 8] = b"mebyoRM\0";
/// Bumped whenever any model's serialised shape or what it keeps changes (3: an
/// erasure also removes the person's credentials); an old snapshot is then refused
/// and the models are rebuilt from the log.
pub const SNAPSHOT_VERSION: u8 = 3;
const HEADER: usize = MAGIC.len() + 1;
const CHECKSUM: usize = 32;

impl ReadModels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the event at `e.position`, which must be exactly [`Self::position`], and
    /// must chain to the previously applied event's hash. On error nothing changes.
    pub fn apply(&mut self, e: &Applied) -> Result<(), ApplyError> {
        if e.position != self.next {
            return Err(ApplyError::OutOfOrder {
                expected: self.next,
                got: e.position,
            });
        }
        if self.last_hash.is_some_and(|h| h != e.prev_hash) {
            return Err(ApplyError::ChainBroken {
                position: e.position,
            });
        }
        self.registry.apply(e);
        self.providers.apply(e);
        self.consents.apply(e);
        self.credentials.apply(e);
        self.records.apply(e);
        self.access.apply(e);
        self.staff.apply(e);
        self.operations.apply(e);
        self.next += 1;
        self.last_hash = Some(e.hash);
        Ok(())
    }

    /// The next position expected; equally, how many events have been applied.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Chain hash of the last applied event (`None` at position 0).
    pub fn last_hash(&self) -> Option<[u8; 32]> {
        self.last_hash
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
    pub fn providers(&self) -> &Providers {
        &self.providers
    }
    pub fn consents(&self) -> &Consents {
        &self.consents
    }
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    pub fn records(&self) -> &RecordsIndex {
        &self.records
    }
    pub fn access(&self) -> &AccessLog {
        &self.access
    }
    pub fn staff(&self) -> &StaffRoster {
        &self.staff
    }
    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// Releases spare capacity of the large tables (e.g. after a replay, before
    /// serving): `Vec` growth leaves up to half of each unused.
    pub fn shrink_to_fit(&mut self) {
        self.registry.shrink_to_fit();
        self.consents.shrink_to_fit();
        self.credentials.shrink_to_fit();
        self.records.shrink_to_fit();
        self.access.shrink_to_fit();
    }

    /// `magic | version | postcard(models, position, last hash) | blake3(all before)`.
    /// The position and hash travel inside, so [`Self::restore`] can hold them against
    /// the log.
    pub fn snapshot(&self) -> Vec<u8> {
        // Sized first so the buffer is allocated once: growing a half-GiB Vec by doubling
        // would briefly need twice the memory.
        let size = postcard::experimental::serialized_size(self).expect("models serialise");
        let mut out = Vec::with_capacity(HEADER + size + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.push(SNAPSHOT_VERSION);
        let mut out = postcard::to_extend(self, out).expect("models serialise");
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Loads a snapshot, refusing it unless it stands exactly where the log says:
    /// `expected_position` is the log position to resume from and `expected_hash` the
    /// chain hash of the event at `expected_position - 1` as read from the store
    /// (`None` when resuming from 0). Feed events from `expected_position` on.
    pub fn restore(
        bytes: &[u8],
        expected_position: u64,
        expected_hash: Option<[u8; 32]>,
    ) -> Result<ReadModels, SnapshotError> {
        if bytes.len() < HEADER + CHECKSUM || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        if bytes[MAGIC.len()] != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(bytes[MAGIC.len()]));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if blake3::hash(body).as_bytes() != sum {
            return Err(SnapshotError::Checksum);
        }
        let models: ReadModels = postcard::from_bytes(&body[HEADER..])?;
        if models.next != expected_position {
            return Err(SnapshotError::Position {
                snapshot: models.next,
                expected: expected_position,
            });
        }
        if models.last_hash != expected_hash {
            return Err(SnapshotError::Hash {
                position: expected_position,
            });
        }
        models.check().map_err(SnapshotError::Inconsistent)?;
        Ok(models)
    }

    /// Every index a query follows points inside its table, so a snapshot that passed
    /// the checksum but was written by a buggy build cannot make a query panic.
    fn check(&self) -> Result<(), &'static str> {
        if self.last_hash.is_some() != (self.next > 0) {
            return Err("position and hash disagree");
        }
        self.registry.check()?;
        self.providers.check()?;
        self.consents.check()?;
        self.credentials.check()?;
        self.records.check()?;
        self.access.check()?;
        self.staff.check()?;
        self.operations.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AnyEvent;
    use crate::testkit::*;
    use proptest::prelude::*;

    /// P4.9: the person's own `person.erasure_completed` is sealed under the key the
    /// erasure destroys, so a follower that reaches it late reads it as `Other`. The
    /// platform's erasure record (audit key) must then erase the person from every
    /// model all the same, and where both were read, the second changes nothing.
    #[test]
    fn p4_9_the_erasure_record_erases_when_the_persons_own_event_is_unreadable() {
        let mut log = Log::scenario();
        log.withdraw_and_erase("p1", days(4));
        let record = serde_json::json!({
            "person": "p1", "witness": "sysadm", "destroyed_keys": ["dek:h:p1:1"],
            "kek_id": "00", "keystore_digest": "00", "at": days(4),
        });
        let record = AnyEvent::decode("erasure.completed", record.to_string().as_bytes()).unwrap();
        log.push_on("ops-erasures", record);
        let fold = |unreadable: bool, with_record: bool| {
            let mut m = ReadModels::new();
            for mut e in log.entries() {
                let own = matches!(
                    &e.event,
                    AnyEvent::Person(mebyo_domain::person::PersonEvent::ErasureCompleted { person, .. })
                        if person.as_str() == "p1"
                ) && e.stream != "ops-erasures";
                if (own && unreadable) || (e.stream == "ops-erasures" && !with_record) {
                    e.event = AnyEvent::Other {
                        event_type: "unreadable".into(),
                    };
                }
                m.apply(&e.applied()).unwrap();
            }
            m
        };
        let both = fold(false, true);
        let record_only = fold(true, true);
        let neither = fold(true, false);
        assert_eq!(both.registry().counts().erased, 2);
        assert_eq!(
            record_only.snapshot(),
            both.snapshot(),
            "the record alone erases"
        );
        assert_eq!(
            fold(false, false).snapshot(),
            both.snapshot(),
            "twice = once"
        );
        assert_eq!(
            neither.registry().counts().erased,
            1,
            "without it p1 would stay"
        );
        assert_ne!(neither.snapshot(), both.snapshot());
    }

    #[test]
    fn gaps_duplicates_and_foreign_chains_are_refused() {
        let log = Log::scenario();
        let entries = log.entries();
        let mut m = ReadModels::new();
        m.apply(&entries[0].applied()).unwrap();
        assert_eq!(
            m.apply(&entries[0].applied()),
            Err(ApplyError::OutOfOrder {
                expected: 1,
                got: 0
            }),
            "duplicate"
        );
        assert_eq!(
            m.apply(&entries[2].applied()),
            Err(ApplyError::OutOfOrder {
                expected: 1,
                got: 2
            }),
            "gap"
        );
        let mut forged = entries[1].applied();
        forged.prev_hash = [7; 32];
        assert_eq!(
            m.apply(&forged),
            Err(ApplyError::ChainBroken { position: 1 })
        );
        assert_eq!(m.position(), 1, "refused events change nothing");
        m.apply(&entries[1].applied()).unwrap();
        assert_eq!(m.position(), 2);
    }

    #[test]
    fn operational_events_advance_the_position_only() {
        let mut log = Log::default();
        let before = log.fold();
        log.push(AnyEvent::Other {
            event_type: "backup.completed".into(),
        });
        let after = log.fold();
        assert_eq!(after.position(), before.position() + 1);
        let mut a = after.clone();
        a.next = before.next;
        a.last_hash = before.last_hash;
        assert_eq!(a, before);
    }

    #[test]
    fn snapshot_restores_only_at_the_logs_position_and_hash() {
        let log = Log::scenario();
        let m = log.fold();
        let bytes = m.snapshot();
        let (pos, hash) = (m.position(), m.last_hash());
        assert_eq!(ReadModels::restore(&bytes, pos, hash).unwrap(), m);
        assert!(matches!(
            ReadModels::restore(&bytes, pos + 1, hash),
            Err(SnapshotError::Position { .. })
        ));
        assert!(matches!(
            ReadModels::restore(&bytes, pos, Some([0; 32])),
            Err(SnapshotError::Hash { .. })
        ));
        let mut damaged = bytes.clone();
        damaged[HEADER + 10] ^= 1;
        assert!(matches!(
            ReadModels::restore(&damaged, pos, hash),
            Err(SnapshotError::Checksum)
        ));
        let mut newer = bytes.clone();
        newer[MAGIC.len()] = SNAPSHOT_VERSION + 1;
        assert!(matches!(
            ReadModels::restore(&newer, pos, hash),
            Err(SnapshotError::Version(_))
        ));
        assert!(matches!(
            ReadModels::restore(b"hello", pos, hash),
            Err(SnapshotError::NotASnapshot)
        ));
        let empty = ReadModels::new().snapshot();
        assert_eq!(
            ReadModels::restore(&empty, 0, None).unwrap(),
            ReadModels::new()
        );
    }

    #[test]
    fn inconsistent_snapshot_is_refused_even_with_a_valid_checksum() {
        let log = Log::scenario();
        let mut m = log.fold();
        m.records_mut_for_test().corrupt_head_for_test();
        let bytes = m.snapshot();
        assert!(matches!(
            ReadModels::restore(&bytes, m.position(), m.last_hash()),
            Err(SnapshotError::Inconsistent(_))
        ));
    }

    #[test]
    fn payloads_round_trip_through_decode() {
        // Feeding from the store: the payload bytes are the domain event's JSON.
        let log = Log::scenario();
        let mut m = ReadModels::new();
        for e in log.entries() {
            let decoded = match e.event.encode() {
                Some(json) => AnyEvent::decode(e.event.event_type(), &json).unwrap(),
                None => e.event.clone(),
            };
            assert_eq!(decoded, e.event);
            let mut a = e.applied();
            a.event = &decoded;
            m.apply(&a).unwrap();
        }
        assert_eq!(m, log.fold());
    }

    #[test]
    fn random_logs_exercise_every_model() {
        let mut types = std::collections::BTreeSet::new();
        let mut granted_and_refused = (false, false);
        for seed in 0..16 {
            let log = Log::random(seed);
            for e in log.entries() {
                types.insert(e.event.event_type().to_owned());
            }
            let m = log.fold();
            let (g, r) = m.access().provider_totals("clinic");
            granted_and_refused.0 |= g > 0;
            granted_and_refused.1 |= r > 0;
        }
        for t in [
            "person.registered",
            "person.consent_granted",
            "person.consent_revoked",
            "person.erasure_completed",
            "person.representative_granted",
            "record.added",
            "record.corrected",
            "access.recorded",
            "credential.issued",
            "provider.approved",
            "staff.appointed",
            "policy.version_published",
            "backup.completed",
            "ledger.checkpoint",
            "incident.reported",
            "incident.step_recorded",
        ] {
            assert!(types.contains(t), "{t} never generated");
        }
        assert_eq!(granted_and_refused, (true, true));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Issue 8: folding in one go equals folding a prefix, snapshotting, restoring
        /// against the log's position and hash, and folding the rest.
        #[test]
        fn split_via_snapshot_equals_one_go(seed in any::<u64>(), split in 0.0f64..=1.0) {
            let log = Log::random(seed);
            let entries = log.entries();
            let cut = ((entries.len() as f64) * split) as usize;
            let whole = log.fold();
            let mut first = ReadModels::new();
            for e in &entries[..cut] {
                first.apply(&e.applied()).unwrap();
            }
            let hash = cut.checked_sub(1).map(|i| entries[i].hash);
            let mut resumed = ReadModels::restore(&first.snapshot(), cut as u64, hash).unwrap();
            for e in &entries[cut..] {
                resumed.apply(&e.applied()).unwrap();
            }
            prop_assert_eq!(&resumed, &whole);
            // Shrinking changes capacity only, never content.
            let mut shrunk = whole.clone();
            shrunk.shrink_to_fit();
            prop_assert_eq!(&shrunk, &whole);
        }
    }

    impl ReadModels {
        fn records_mut_for_test(&mut self) -> &mut RecordsIndex {
            &mut self.records
        }
    }
}
