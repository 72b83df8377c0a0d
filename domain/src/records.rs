//! Health records (P2(1), P5.1): an immutable per-person history. Each entry keeps its
//! provenance; a correction is a new entry superseding an old id, never an edit.
//! Medical-institution data arrives only over a VPN connection (P4.5(3)).

use crate::consent::find_covering;
use crate::credential::authenticate;
use crate::fhir::{self, VitalKind};
use crate::person::{PersonStatus, acting_individual};
use crate::provider::provider_check;
use crate::refusal::{ensure, refuse};
use crate::{Actor, Ctx, Decider, DomainEvent, PersonId, ProviderId, RecordId, Refusal, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds of health information the platform keeps; consents are given per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Height, weight, blood pressure, temperature, SpO2, steps ([`VitalKind`]).
    Vitals,
    Allergy,
    IllnessHistory,
    MedicationHistory,
    MedicationNotebook,
    SideEffect,
    Vaccination,
    CheckupResult,
    DailyLifeLog,
    MeByoIndex,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Vitals,
        Category::Allergy,
        Category::IllnessHistory,
        Category::MedicationHistory,
        Category::MedicationNotebook,
        Category::SideEffect,
        Category::Vaccination,
        Category::CheckupResult,
        Category::DailyLifeLog,
        Category::MeByoIndex,
    ];
}

/// Where the information originally came from (P5.1: the platform holds a copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    SelfEntered,
    MedicalInstitution,
}

/// A party that creates or delivers records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Party {
    Person { person: PersonId },
    Provider { provider: ProviderId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub origin: Origin,
    /// Who holds the original: the entering individual or the originating institution.
    pub created_by: Party,
    /// Who submitted this copy.
    pub delivered_by: Party,
    /// The original's identifier at its creator (required for medical origin).
    pub original_identifier: Option<String>,
}

/// A stored FHIR resource: its JSON text, written once (keys sorted, no spaces)
/// when the submission is decided, then shared by the event and the state.
///
/// Text, not a parsed tree: a blood-pressure observation is ~0.9 KB of text and
/// ~10 KB as a `serde_json::Value` of B-tree maps, and a cached person's state
/// holds every one of their records. A read copies the text into its answer
/// instead of writing a tree out again; the event's bytes are the same as when
/// the tree was serialised in place, so the stored format does not change.
#[derive(Clone)]
pub struct Resource(std::sync::Arc<serde_json::value::RawValue>);

impl Resource {
    pub fn from_value(value: &serde_json::Value) -> Self {
        // `to_raw_value` keeps the text it wrote without parsing it again.
        let raw = serde_json::value::to_raw_value(value).expect("a JSON value always serialises");
        Self(raw.into())
    }

    /// The resource's JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The resource parsed (for the few readers that look inside it).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.json()).expect("a Resource holds valid JSON")
    }
}

impl From<serde_json::Value> for Resource {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

/// Equal text is an equal resource: both sides were written by one serialiser.
impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json())
    }
}

impl Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Written back to compact text from whatever the input is. Not through
/// `RawValue`'s own `Deserialize`: an event is an internally tagged enum, which
/// serde buffers before reading its fields, and `RawValue` cannot be read from
/// that buffer (nor from a `serde_json::Value`). Keys keep their input order,
/// which for a stored event is the sorted order they were written in.
impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = serde_json::value::to_raw_value(&serde_transcode::Transcoder::new(d))
            .map_err(D::Error::custom)?;
        Ok(Self(raw.into()))
    }
}

/// One stored entry as carried by its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEntry {
    pub record: RecordId,
    pub category: Category,
    pub vital: Option<VitalKind>,
    /// Clinical date of the information.
    pub effective_at: Timestamp,
    /// FHIR R4 resource, validated by [`fhir::validate`], as text shared by the
    /// event and the state ([`Resource`]).
    pub resource: Resource,
    pub provenance: Provenance,
}

/// What a submitter sends, for a new entry or a correction.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub record: RecordId,
    pub category: Category,
    pub effective_at: Timestamp,
    /// Parsed, for validation; the entry keeps it as text.
    pub resource: serde_json::Value,
    pub origin: Origin,
    /// Originating institution when a provider relays another's data; defaults to the
    /// delivering provider.
    pub created_by: Option<ProviderId>,
    pub original_identifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordCommand {
    Submit(Submission),
    /// Several new entries of one person, all or nothing: the first refusal
    /// refuses them all (a FHIR Bundle is stored whole or not at all).
    SubmitAll(Vec<Submission>),
    Correct {
        supersedes: RecordId,
        submission: Submission,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordEvent {
    #[serde(rename = "record.added")]
    Added {
        person: PersonId,
        entry: RecordEntry,
        at: Timestamp,
    },
    #[serde(rename = "record.corrected")]
    Corrected {
        person: PersonId,
        supersedes: RecordId,
        entry: RecordEntry,
        at: Timestamp,
    },
}

impl DomainEvent for RecordEvent {
    fn event_type(&self) -> &'static str {
        match self {
            RecordEvent::Added { .. } => "record.added",
            RecordEvent::Corrected { .. } => "record.corrected",
        }
    }

    fn person_related(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub entry: RecordEntry,
    pub supersedes: Option<RecordId>,
    pub superseded_by: Option<RecordId>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    pub person: Option<PersonId>,
    pub records: BTreeMap<RecordId, StoredRecord>,
    /// The FHIR text the records hold, in bytes, kept up as they come so that
    /// weighing the state for a cache is not a walk over every record.
    pub text_bytes: usize,
}

impl RecordState {
    /// Entries not superseded by a correction.
    pub fn current(&self) -> impl Iterator<Item = &RecordEntry> {
        self.records
            .values()
            .filter(|r| r.superseded_by.is_none())
            .map(|r| &r.entry)
    }
}

/// The records stream of a person.
pub fn stream(person: &PersonId) -> String {
    format!("records-{person}")
}

pub struct Records;

impl Decider for Records {
    type State = RecordState;
    type Command = RecordCommand;
    type Event = RecordEvent;

    fn decide(
        state: &RecordState,
        cmd: &RecordCommand,
        ctx: &Ctx,
    ) -> Result<Vec<RecordEvent>, Refusal> {
        decide(state, cmd, ctx)
    }

    fn evolve(state: RecordState, event: &RecordEvent) -> RecordState {
        evolve(state, event)
    }
}

/// Who may write to this person's records, and the provenance that follows.
fn provenance(s: &Submission, ctx: &Ctx) -> Result<Provenance, Refusal> {
    let person = ctx.person.cloned().unwrap_or_default();
    match ctx.actor {
        Actor::Individual { .. } => {
            let by = acting_individual(&person, ctx)?;
            // An individual's entry is self-entered by definition (P5.1).
            ensure(
                s.origin == Origin::SelfEntered && s.created_by.is_none(),
                "record.origin_mismatch",
                crate::clause!("P5.1"),
                "individuals enter self-entered data only",
            )?;
            let party = Party::Person { person: by };
            Ok(Provenance {
                origin: s.origin,
                created_by: party.clone(),
                delivered_by: party,
                original_identifier: s.original_identifier.clone(),
            })
        }
        Actor::Provider { provider, .. } => {
            authenticate(ctx.actor, ctx.credential, ctx.now)?;
            let p = ctx
                .provider
                .filter(|p| p.id.as_ref() == Some(provider))
                .cloned()
                .unwrap_or_default();
            provider_check(&p, ctx.now)?;
            ensure(
                s.origin == Origin::MedicalInstitution,
                "record.origin_mismatch",
                crate::clause!("P5.1"),
                "providers deliver institution data, not self-entered data",
            )?;
            ensure(
                p.connection_is_vpn(),
                "record.connection_not_vpn",
                crate::clause!("P4.5(3)"),
                "medical-institution data only over a closed IP-VPN or IPsec+IKE VPN",
            )?;
            ensure(
                s.original_identifier.is_some(),
                "record.original_identifier_missing",
                crate::clause!("P5.1"),
                "medical-institution data names its original at the creator",
            )?;
            // Deny by default: delivery into a person's record needs their consent.
            find_covering(person.consents.values(), provider, |c| {
                c.covers_write(s.category, s.effective_at, ctx.now)
            })?;
            Ok(Provenance {
                origin: s.origin,
                created_by: Party::Provider {
                    provider: s.created_by.clone().unwrap_or_else(|| provider.clone()),
                },
                delivered_by: Party::Provider {
                    provider: provider.clone(),
                },
                original_identifier: s.original_identifier.clone(),
            })
        }
        _ => refuse(
            "record.no_health_access",
            crate::clause!("P4.6(2)"),
            "staff neither read nor write health content",
        ),
    }
}

fn entry(
    state: &RecordState,
    s: &Submission,
    ctx: &Ctx,
) -> Result<(PersonId, RecordEntry), Refusal> {
    let person = match ctx.person {
        Some(p) if p.status == PersonStatus::Active => {
            p.id.clone().expect("active person has an id")
        }
        Some(p) if p.id.is_some() => {
            return refuse(
                "person.withdrawn",
                crate::clause!("P4.9"),
                "withdrawn: no further records",
            );
        }
        _ => return refuse("person.unknown", crate::clause!("P2(1)"), "no such person"),
    };
    ensure(
        state.person.as_ref().is_none_or(|p| *p == person),
        "record.stream_mismatch",
        crate::clause!("P2(1)"),
        "records are kept per individual",
    )?;
    let provenance = provenance(s, ctx)?;
    ensure(
        !state.records.contains_key(&s.record),
        "record.exists",
        crate::clause!("P2(1)"),
        "record ids are never reused",
    )?;
    ensure(
        s.effective_at <= ctx.now,
        "record.effective_in_future",
        crate::clause!("P2(1)"),
        "clinical date lies in the future",
    )?;
    if let Some(id) = &s.original_identifier {
        ensure(
            (1..=256).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()),
            "record.original_identifier_invalid",
            crate::clause!("P5.1"),
            "original identifier must be 1..=256 printable ASCII characters",
        )?;
    }
    let vital = fhir::validate(s.category, &person, &s.resource).map_err(|e| {
        Refusal::new(
            "record.fhir_invalid",
            crate::clause!("P2(1)"),
            e.to_string(),
        )
    })?;
    Ok((
        person,
        RecordEntry {
            record: s.record.clone(),
            category: s.category,
            vital,
            effective_at: s.effective_at,
            resource: Resource::from_value(&s.resource),
            provenance,
        },
    ))
}

pub fn decide(
    state: &RecordState,
    cmd: &RecordCommand,
    ctx: &Ctx,
) -> Result<Vec<RecordEvent>, Refusal> {
    let at = ctx.now;
    match cmd {
        RecordCommand::Submit(s) => {
            let (person, entry) = entry(state, s, ctx)?;
            Ok(vec![RecordEvent::Added { person, entry, at }])
        }
        // No submissions: nothing to store, nothing refused (the bus never
        // sends an empty Bundle: it refuses one before deciding).
        RecordCommand::SubmitAll(subs) => {
            let mut ids = std::collections::BTreeSet::new();
            subs.iter()
                .map(|s| {
                    ensure(
                        ids.insert(&s.record),
                        "record.exists",
                        crate::clause!("P2(1)"),
                        "record ids are never reused",
                    )?;
                    let (person, entry) = entry(state, s, ctx)?;
                    Ok(RecordEvent::Added { person, entry, at })
                })
                .collect()
        }
        RecordCommand::Correct {
            supersedes,
            submission,
        } => {
            let (person, entry) = entry(state, submission, ctx)?;
            let Some(old) = state.records.get(supersedes) else {
                return refuse(
                    "record.unknown",
                    crate::clause!("P2(1)"),
                    "no such record to correct",
                );
            };
            ensure(
                old.superseded_by.is_none(),
                "record.already_superseded",
                crate::clause!("P2(1)"),
                "correct the latest version",
            )?;
            ensure(
                old.entry.category == entry.category,
                "record.category_changed",
                crate::clause!("P2(1)"),
                "a correction keeps the category",
            )?;
            // The original stays with its creator, so only its side corrects it (P5.1):
            // self-entered data by the person's side, institution data by its deliverer.
            let same_side = match (
                &old.entry.provenance.delivered_by,
                &entry.provenance.delivered_by,
            ) {
                (Party::Person { .. }, Party::Person { .. }) => {
                    old.entry.provenance.origin == Origin::SelfEntered
                }
                (a, b) => a == b,
            };
            ensure(
                same_side,
                "record.not_creator",
                crate::clause!("P5.1"),
                "only the record's creator side corrects it",
            )?;
            Ok(vec![RecordEvent::Corrected {
                person,
                supersedes: supersedes.clone(),
                entry,
                at,
            }])
        }
    }
}

pub fn evolve(mut state: RecordState, event: &RecordEvent) -> RecordState {
    let (person, entry, supersedes) = match event {
        RecordEvent::Added { person, entry, .. } => (person, entry, None),
        RecordEvent::Corrected {
            person,
            supersedes,
            entry,
            ..
        } => (person, entry, Some(supersedes.clone())),
    };
    state.person = Some(person.clone());
    if let Some(old) = supersedes.as_ref().and_then(|id| state.records.get_mut(id)) {
        old.superseded_by = Some(entry.record.clone());
    }
    state.text_bytes += entry.resource.json().len();
    let replaced = state.records.insert(
        entry.record.clone(),
        StoredRecord {
            entry: entry.clone(),
            supersedes,
            superseded_by: None,
        },
    );
    if let Some(old) = replaced {
        state.text_bytes -= old.entry.resource.json().len();
    }
    state
}
