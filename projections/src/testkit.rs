//! A small in-memory log for the tests. Where convenient the events come from the
//! domain's own deciders (staff appointments along the chain, provider approval,
//! registration, credential issue, withdrawal and witnessed erasure, read decisions),
//! so the projections are tested against what the platform really emits.

use crate::event::{AnyEvent, Applied};
use crate::models::ReadModels;
use crate::operations::incident_of;
use mebyo_domain::access::{AccessEvent, AccessRequest, access_recorded, decide_access};
use mebyo_domain::credential::{self, CredentialCommand, CredentialEvent, Holder};
use mebyo_domain::person::{self, PersonCommand, PersonEvent};
use mebyo_domain::policy::{self, PolicyCommand, PolicyState};
use mebyo_domain::provider::{
    self, AttestationKind, Basis, ConnectionClass, ProviderCommand, ProviderEvent,
};
use mebyo_domain::records::{Origin, Party, Provenance, RecordEntry, RecordEvent};
use mebyo_domain::staff::{self, Rank, StaffCommand};
use mebyo_domain::*;
use mebyo_operations::incident::{self as incident, Incident, IncidentCommand, IncidentEvent};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub const T0: Timestamp = Timestamp(1_767_225_600_000_000); // 2026-01-01T00:00Z
pub const POLICY: &str = "2020-11-16";

pub fn days(n: i64) -> Timestamp {
    T0 + Duration::days(n)
}
pub fn hours(n: i64) -> Duration {
    Duration(n * 3_600_000_000)
}
pub fn pid(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}
pub fn prid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}
pub fn sid(s: &str) -> StaffId {
    StaffId::new(s).unwrap()
}
pub fn cid(s: &str) -> CredentialId {
    CredentialId::new(s).unwrap()
}

pub fn represented_by(person: &str, rep: &str) -> PersonEvent {
    PersonEvent::RepresentativeGranted {
        person: pid(person),
        representative: pid(rep),
        at: days(-1),
    }
}

/// One log entry with a made-up but consistent hash chain.
#[derive(Debug, Clone)]
pub struct Entry {
    pub position: u64,
    pub stream: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub event: AnyEvent,
}

impl Entry {
    pub fn applied(&self) -> Applied<'_> {
        Applied {
            position: self.position,
            recorded_at_us: T0.0 + self.position as i64,
            stream_id: &self.stream,
            prev_hash: self.prev_hash,
            hash: self.hash,
            event: &self.event,
        }
    }
}

fn stream_of(e: &AnyEvent) -> String {
    match e {
        AnyEvent::Person(e) => match e {
            PersonEvent::Registered { person, .. }
            | PersonEvent::PolicyAccepted { person, .. }
            | PersonEvent::IdentityUpdated { person, .. }
            | PersonEvent::RepresentativeGranted { person, .. }
            | PersonEvent::RepresentativeRevoked { person, .. }
            | PersonEvent::ConsentGranted { person, .. }
            | PersonEvent::ConsentRevoked { person, .. }
            | PersonEvent::GuidanceGiven { person, .. }
            | PersonEvent::Withdrawn { person, .. }
            | PersonEvent::ErasureRequested { person, .. }
            | PersonEvent::ErasureCompleted { person, .. } => person.stream(),
        },
        AnyEvent::Provider(e) => match e {
            ProviderEvent::Applied { provider, .. }
            | ProviderEvent::Approved { provider, .. }
            | ProviderEvent::Rejected { provider, .. }
            | ProviderEvent::Suspended { provider, .. }
            | ProviderEvent::Reinstated { provider, .. }
            | ProviderEvent::Revoked { provider, .. }
            | ProviderEvent::Attested { provider, .. }
            | ProviderEvent::GuidanceGiven { provider, .. } => provider.stream(),
        },
        AnyEvent::Credential(e) => match e {
            CredentialEvent::Issued { credential, .. }
            | CredentialEvent::Renewed { credential, .. }
            | CredentialEvent::LossReported { credential, .. }
            | CredentialEvent::Revoked { credential, .. } => credential.stream(),
        },
        AnyEvent::Staff(e) => e.staff().stream(),
        AnyEvent::Record(RecordEvent::Added { person, .. })
        | AnyEvent::Record(RecordEvent::Corrected { person, .. }) => format!("records-{person}"),
        AnyEvent::Access(AccessEvent::AccessRecorded { person, .. }) => format!("access-{person}"),
        AnyEvent::Policy(_) => "policy-main".into(),
        AnyEvent::Incident(e) => format!("incident-{}", incident_of(e)),
        AnyEvent::Backup(_) => crate::operations::BACKUP_STREAM.into(),
        AnyEvent::Checkpoint(_) => crate::operations::CHECKPOINT_STREAM.into(),
        AnyEvent::Other { .. } => "ops".into(),
    }
}

/// Domain states tracked alongside the log so deciders can be asked.
pub struct Log {
    events: Vec<AnyEvent>,
    /// Streams other than the event's own, for events written where they do not
    /// belong.
    streams: BTreeMap<usize, String>,
    cfg: Config,
    staff: BTreeMap<String, StaffState>,
    people: BTreeMap<String, PersonState>,
    providers: BTreeMap<String, ProviderState>,
    creds: BTreeMap<String, CredentialState>,
    policy: PolicyState,
}

impl Default for Log {
    /// Staff appointed along the chain of authority (P3.1) and trained (P3.4), and the
    /// first policy version published by the prefecture (P8).
    fn default() -> Self {
        let mut log = Log {
            events: Vec::new(),
            streams: BTreeMap::new(),
            cfg: Config {
                consent_max: Duration::days(365),
                credential_renewal: Duration::days(90),
                business_administrator: sid("ba"),
            },
            staff: BTreeMap::new(),
            people: BTreeMap::new(),
            providers: BTreeMap::new(),
            creds: BTreeMap::new(),
            policy: PolicyState::default(),
        };
        let s = days(-400);
        log.staff_cmd(
            None,
            "ba",
            StaffCommand::Appoint {
                staff: sid("ba"),
                role: Role::BusinessAdministrator,
            },
            s,
        );
        log.train("ba", "ba", s);
        for (who, role, by) in [
            ("om", Role::OperationsManager(Rank::Primary), "ba"),
            ("pref", Role::Prefecture, "ba"),
            ("office", Role::OperationsOffice, "om"),
            ("sysadm", Role::SystemOperationsAdministrator, "om"),
        ] {
            log.staff_cmd(
                Some(by),
                who,
                StaffCommand::Appoint {
                    staff: sid(who),
                    role,
                },
                s,
            );
            log.train(who, if by == "om" { "om" } else { "ba" }, s);
        }
        let version = PolicyVersion {
            id: PolicyId::new(POLICY).unwrap(),
            in_force_from: days(-1000),
            applies_from: days(-1015),
        };
        let actor = Actor::Staff { staff: sid("pref") };
        let ctx = Ctx::new(s, &actor, &log.cfg).staff(&log.staff["pref"]);
        let events = policy::decide(&log.policy, &PolicyCommand::Publish { version }, &ctx)
            .expect("the prefecture publishes the policy");
        log.push_all(events);
        log
    }
}

impl Log {
    pub fn push(&mut self, e: impl Into<AnyEvent>) -> u64 {
        let e = e.into();
        match &e {
            AnyEvent::Person(p) => {
                let id = stream_of(&e)["person-".len()..].to_owned();
                let st = self.people.remove(&id).unwrap_or_default();
                self.people.insert(id, person::evolve(st, p));
            }
            AnyEvent::Provider(p) => {
                let id = stream_of(&e)["provider-".len()..].to_owned();
                let st = self.providers.remove(&id).unwrap_or_default();
                self.providers.insert(id, provider::evolve(st, p));
            }
            AnyEvent::Credential(c) => {
                let id = stream_of(&e)["credential-".len()..].to_owned();
                let st = self.creds.remove(&id).unwrap_or_default();
                self.creds.insert(id, credential::evolve(st, c));
            }
            AnyEvent::Staff(s) => {
                let id = stream_of(&e)["staff-".len()..].to_owned();
                let st = self.staff.remove(&id).unwrap_or_default();
                self.staff.insert(id, staff::evolve(st, s));
            }
            AnyEvent::Policy(p) => {
                self.policy = policy::evolve(std::mem::take(&mut self.policy), p);
            }
            _ => {}
        }
        self.events.push(e);
        self.events.len() as u64 - 1
    }

    fn push_all<E: Into<AnyEvent>>(&mut self, events: Vec<E>) -> u64 {
        let mut last = 0;
        for e in events {
            last = self.push(e);
        }
        last
    }

    pub fn entries(&self) -> Vec<Entry> {
        let mut prev = *blake3::hash(b"genesis").as_bytes();
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut h = blake3::Hasher::new();
                h.update(&prev);
                h.update(&(i as u64).to_le_bytes());
                h.update(e.event_type().as_bytes());
                let hash = *h.finalize().as_bytes();
                let entry = Entry {
                    position: i as u64,
                    stream: self
                        .streams
                        .get(&i)
                        .cloned()
                        .unwrap_or_else(|| stream_of(e)),
                    prev_hash: prev,
                    hash,
                    event: e.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    pub fn fold(&self) -> ReadModels {
        let mut m = ReadModels::new();
        for e in self.entries() {
            m.apply(&e.applied()).unwrap();
        }
        m
    }

    fn staff_cmd(&mut self, by: Option<&str>, target: &str, cmd: StaffCommand, at: Timestamp) {
        let actor = by.map_or(Actor::System, |b| Actor::Staff { staff: sid(b) });
        let by_state = by.map(|b| self.staff[b].clone());
        let mut ctx = Ctx::new(at, &actor, &self.cfg);
        if let Some(s) = &by_state {
            ctx = ctx.staff(s);
        }
        let target = self.staff.get(target).cloned().unwrap_or_default();
        let events = staff::decide(&target, &cmd, &ctx).expect("staff command accepted");
        self.push_all(events);
    }

    fn train(&mut self, who: &str, by: &str, at: Timestamp) {
        self.staff_cmd(
            Some(by),
            who,
            StaffCommand::RecordTraining {
                completed_at: at,
                valid_until: days(335),
            },
            at,
        );
    }

    fn as_staff<T>(&self, staff: &str, at: Timestamp, f: impl FnOnce(&Ctx) -> T) -> T {
        let actor = Actor::Staff { staff: sid(staff) };
        let ctx = Ctx::new(at, &actor, &self.cfg).staff(&self.staff[staff]);
        f(&ctx)
    }

    /// Applied, attested (a year from day -30) and approved by the prefecture (P2(3)).
    pub fn provider_approved(&mut self, id: &str, class: ConnectionClass) {
        let at = days(-30);
        let apply = ProviderCommand::Apply {
            provider: prid(id),
            responsible: sid(&format!("{id}-lead")),
            connection: class,
            basis: Basis::Commissioned,
        };
        let ctx = Ctx::new(at, &Actor::Applicant, &self.cfg);
        let events = provider::decide(&ProviderState::default(), &apply, &ctx).unwrap();
        self.push_all(events);
        for kind in [
            AttestationKind::MembersTrained,
            AttestationKind::AntivirusCurrent,
        ] {
            let cmd = ProviderCommand::Attest {
                kind,
                attested_on: at,
                valid_until: days(335),
            };
            let events = self.as_staff("pref", at, |ctx| {
                provider::decide(&self.providers[id], &cmd, ctx).unwrap()
            });
            self.push_all(events);
        }
        let events = self.as_staff("pref", at, |ctx| {
            provider::decide(&self.providers[id], &ProviderCommand::Approve, ctx).unwrap()
        });
        self.push_all(events);
    }

    /// Registered through the office (P3.2), then accepting the policy in force (P8).
    pub fn person_registered(&mut self, id: &str, at: Timestamp) -> u64 {
        let cmd = PersonCommand::Register {
            person: pid(id),
            identity: VaultRef::new(format!("v-{id}")).unwrap(),
            email_index: None,
            password: false,
        };
        let events = self.as_staff("office", at, |ctx| {
            person::decide(&PersonState::default(), &cmd, ctx).unwrap()
        });
        let pos = self.push_all(events);
        self.push(PersonEvent::PolicyAccepted {
            person: pid(id),
            policy: PolicyId::new(POLICY).unwrap(),
            at,
        });
        pos
    }

    /// Vitals and medication history for care, covering records of the year before T0.
    pub fn consent(
        &mut self,
        person: &str,
        consent: &str,
        provider: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> u64 {
        self.push(PersonEvent::ConsentGranted {
            person: pid(person),
            consent: ConsentId::new(consent).unwrap(),
            provider: prid(provider),
            categories: [Category::Vitals, Category::MedicationHistory].into(),
            purpose: Purpose::Care,
            period: Period {
                from: days(-365),
                to: days(0),
            },
            expires_at,
            by: pid(person),
            at,
        })
    }

    pub fn revoke_consent(&mut self, person: &str, consent: &str, at: Timestamp) -> u64 {
        self.push(PersonEvent::ConsentRevoked {
            person: pid(person),
            consent: ConsentId::new(consent).unwrap(),
            by: pid(person),
            at,
        })
    }

    /// Withdrawal through the office, erasure witnessed by the system operations
    /// administrator (P4.9).
    pub fn withdraw_and_erase(&mut self, person: &str, at: Timestamp) {
        let events = self.as_staff("office", at, |ctx| {
            person::decide(&self.people[person], &PersonCommand::Withdraw, ctx).unwrap()
        });
        self.push_all(events);
        let events = self.as_staff("sysadm", at, |ctx| {
            person::decide(&self.people[person], &PersonCommand::ConfirmErasure, ctx).unwrap()
        });
        self.push_all(events);
    }

    pub fn credential_for_person(
        &mut self,
        id: &str,
        person: &str,
        at: Timestamp,
        replaces: Option<&str>,
    ) -> u64 {
        let cmd = CredentialCommand::Issue {
            credential: cid(id),
            holder: Holder::Individual {
                person: pid(person),
            },
            replaces: replaces.map(cid),
        };
        let events = self.as_staff("office", at, |ctx| {
            let mut ctx = ctx.person(&self.people[person]);
            if let Some(r) = replaces {
                ctx = ctx.replaced(&self.creds[r]);
            }
            credential::decide(&CredentialState::default(), &cmd, &ctx).unwrap()
        });
        self.push_all(events)
    }

    pub fn credential_for_provider(&mut self, id: &str, provider: &str, at: Timestamp) -> u64 {
        let cmd = CredentialCommand::Issue {
            credential: cid(id),
            holder: Holder::Provider {
                provider: prid(provider),
                responsible: sid(&format!("{provider}-lead")),
            },
            replaces: None,
        };
        let events = self.as_staff("pref", at, |ctx| {
            let ctx = ctx.provider(&self.providers[provider]);
            credential::decide(&CredentialState::default(), &cmd, &ctx).unwrap()
        });
        self.push_all(events)
    }

    fn entry(
        person: &str,
        record: &str,
        effective_at: Timestamp,
        clinic: Option<&str>,
    ) -> RecordEntry {
        let party = |p: Option<&str>| match p {
            Some(p) => Party::Provider { provider: prid(p) },
            None => Party::Person {
                person: pid(person),
            },
        };
        RecordEntry {
            record: RecordId::new(record).unwrap(),
            category: Category::Vitals,
            vital: Some(mebyo_domain::fhir::VitalKind::Weight),
            effective_at,
            resource: json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": format!("Patient/{person}")},
                "effectiveDateTime": "2025-12-31",
                "valueQuantity": {"value": 61.5, "unit": "kg",
                    "system": "http://unitsofmeasure.org", "code": "kg"}
            })
            .into(),
            provenance: Provenance {
                origin: if clinic.is_some() {
                    Origin::MedicalInstitution
                } else {
                    Origin::SelfEntered
                },
                created_by: party(clinic),
                delivered_by: party(clinic),
                original_identifier: clinic.map(|_| format!("urn:oid:1.2.392|{record}")),
            },
        }
    }

    pub fn self_vital(&mut self, person: &str, record: &str, effective_at: Timestamp) -> u64 {
        self.push(RecordEvent::Added {
            person: pid(person),
            entry: Self::entry(person, record, effective_at, None),
            at: effective_at + hours(1),
        })
    }

    pub fn clinic_vital(
        &mut self,
        person: &str,
        record: &str,
        clinic: &str,
        effective_at: Timestamp,
    ) -> u64 {
        self.push(RecordEvent::Added {
            person: pid(person),
            entry: Self::entry(person, record, effective_at, Some(clinic)),
            at: effective_at + hours(1),
        })
    }

    pub fn correct_self_vital(
        &mut self,
        person: &str,
        record: &str,
        supersedes: &str,
        effective_at: Timestamp,
    ) -> u64 {
        self.push(RecordEvent::Corrected {
            person: pid(person),
            supersedes: RecordId::new(supersedes).unwrap(),
            entry: Self::entry(person, record, effective_at, None),
            at: effective_at + hours(2),
        })
    }

    fn read(&mut self, req: AccessRequest, credential: Option<&str>, at: Timestamp) -> u64 {
        let provider = match &req.actor {
            Actor::Provider { provider, .. } => self.providers.get(provider.as_str()),
            _ => None,
        };
        let person = self
            .people
            .get(req.person.as_str())
            .cloned()
            .unwrap_or_default();
        let cred = credential.and_then(|c| self.creds.get(c));
        let decision = decide_access(&req, &person, provider, cred, at);
        let event = access_recorded(&req, &decision, at);
        self.push(event)
    }

    fn request(
        actor: Actor,
        person: &str,
        cats: &[Category],
        purpose: Purpose,
        channel: Channel,
    ) -> AccessRequest {
        AccessRequest {
            actor,
            person: pid(person),
            categories: cats.iter().copied().collect::<BTreeSet<_>>(),
            purpose,
            channel,
            period: Period {
                from: days(-100),
                to: days(-1),
            },
        }
    }

    /// A provider's read for care, decided by the domain (P4.6(2)).
    pub fn read_as_provider(
        &mut self,
        provider: &str,
        credential: &str,
        person: &str,
        cats: &[Category],
        at: Timestamp,
    ) -> u64 {
        let actor = Actor::Provider {
            provider: prid(provider),
            credential: cid(credential),
        };
        let req = Self::request(actor, person, cats, Purpose::Care, Channel::ProviderGateway);
        self.read(req, Some(credential), at)
    }

    pub fn read_as_individual(
        &mut self,
        reader: &str,
        credential: &str,
        person: &str,
        at: Timestamp,
    ) -> u64 {
        let actor = Actor::Individual {
            person: pid(reader),
            credential: cid(credential),
        };
        let req = Self::request(
            actor,
            person,
            &[Category::Vitals],
            Purpose::PersonalUse,
            Channel::App,
        );
        self.read(req, Some(credential), at)
    }

    pub fn read_as_staff(&mut self, staff: &str, person: &str, at: Timestamp) -> u64 {
        let actor = Actor::Staff { staff: sid(staff) };
        let req = Self::request(
            actor,
            person,
            &[Category::Vitals],
            Purpose::Care,
            Channel::Portal,
        );
        self.read(req, None, at)
    }

    /// `e` appended to `stream` rather than its own.
    pub fn push_on(&mut self, stream: &str, e: AnyEvent) -> u64 {
        let pos = self.push(e);
        self.streams.insert(pos as usize, stream.to_owned());
        pos
    }

    /// A `backup.completed` as `mebyo_backup::jobs::record_completed` writes it,
    /// read back through [`AnyEvent::decode`].
    pub fn backup_event(kind: &str, id: &str, started: Timestamp, range: (u64, u64)) -> AnyEvent {
        let payload = json!({
            "operation": "backup", "kind": kind, "backup_id": id, "ledger_id": "00ff",
            "range": {"from": range.0, "to": range.1, "byte_from": 0, "byte_to": 4096,
                      "head_hash": "ab".repeat(32), "base": null},
            "files": [], "manifest_blake3": null, "epoch_key_id": null,
            "started_by": "scheduler",
            "started_at": rfc3339(started), "finished_at": rfc3339(started + hours(1)),
        });
        decoded("backup.completed", &payload)
    }

    pub fn backup_completed(
        &mut self,
        kind: &str,
        id: &str,
        started: Timestamp,
        range: (u64, u64),
    ) -> u64 {
        self.push(Self::backup_event(kind, id, started, range))
    }

    pub fn backup_failed(
        &mut self,
        operation: &str,
        kind: Option<&str>,
        at: Timestamp,
        error: &str,
    ) -> u64 {
        let payload = json!({"operation": operation, "kind": kind,
            "started_by": "scheduler", "at": rfc3339(at), "error": error});
        self.push(decoded("backup.failed", &payload))
    }

    pub fn backup_verified(
        &mut self,
        full: &str,
        diff: Option<&str>,
        events: u64,
        at: Timestamp,
    ) -> u64 {
        let payload = json!({"operation": "drill", "full": full, "differential": diff,
            "ledger_id": "00ff", "events": events, "head_hash": "cd".repeat(32),
            "live_hash_at_head": "cd".repeat(32), "keystore_set": null,
            "epoch_key_id": null, "started_by": "scheduler", "at": rfc3339(at)});
        self.push(decoded("backup.verified", &payload))
    }

    pub fn epoch_rotated(&mut self, new_key: &str, at: Timestamp) -> u64 {
        let payload = json!({"operation": "epoch_rotation", "old_epoch_key_id": "old",
            "new_epoch_key_id": new_key, "keystore_set": "keys-1", "manifest_blake3": null,
            "method": "cryptographic erase", "started_by": "scheduler", "at": rfc3339(at)});
        self.push(decoded("backup.epoch_rotated", &payload))
    }

    /// A `ledger.checkpoint` whose signed note covers `size` events.
    pub fn checkpoint_event(size: u64) -> AnyEvent {
        let note = format!(
            "mebyo.example/ledger\n{size}\nq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n\n\u{2014} mebyo.example/ledger AAAA\n"
        );
        AnyEvent::decode("ledger.checkpoint", note.as_bytes()).expect("a signed note")
    }

    pub fn checkpoint(&mut self, size: u64) -> u64 {
        self.push(Self::checkpoint_event(size))
    }

    /// The events of incident `id` so far, in order.
    pub fn incident_events(&self, id: &str) -> Vec<IncidentEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AnyEvent::Incident(i) if incident_of(i) == id => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    /// An incident command decided by the operations domain for `staff` (P4.14).
    pub fn incident(&mut self, staff: &str, id: &str, at: Timestamp, cmd: IncidentCommand) -> u64 {
        let state = <Incident as Decider>::fold(&self.incident_events(id));
        let events = self.as_staff(staff, at, |ctx| {
            incident::decide(&state, &cmd, ctx).expect("incident command accepted")
        });
        self.push_all(events)
    }

    /// An `incident.reported` made up directly (for events on the wrong stream).
    pub fn incident_reported_event(id: &str, at: Timestamp) -> AnyEvent {
        AnyEvent::Incident(IncidentEvent::Reported {
            incident: mebyo_operations::IncidentId::new(id).unwrap(),
            kind: incident::IncidentKind::Other,
            detected_at: at,
            vpn_used: false,
            contractor: None,
            source: incident::Source::Staff,
            by: incident::Reporter::System,
            at,
        })
    }

    /// A bit of everything, in a plausible order.
    pub fn scenario() -> Log {
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.person_registered("p1", days(-30));
        log.person_registered("p2", days(-29));
        log.push(represented_by("p1", "p2"));
        log.consent("p1", "k1", "clinic", days(-20), days(60));
        log.credential_for_person("c-p1", "p1", days(-10), None);
        log.credential_for_provider("c-clinic", "clinic", days(-10));
        log.self_vital("p1", "r1", days(-5));
        log.clinic_vital("p1", "r2", "clinic", days(-4));
        log.correct_self_vital("p1", "r3", "r1", days(-5));
        log.push(AnyEvent::Other {
            event_type: "ledger.checkpoint".into(),
        });
        log.read_as_provider("clinic", "c-clinic", "p1", &[Category::Vitals], days(0));
        log.read_as_individual("p1", "c-p1", "p1", days(0));
        log.revoke_consent("p1", "k1", days(1));
        log.read_as_provider("clinic", "c-clinic", "p1", &[Category::Vitals], days(2));
        log.withdraw_and_erase("p2", days(3));
        log
    }

    /// A random but well-formed history: every kind of event the models fold,
    /// erasures included, driven by `seed`.
    pub fn random(seed: u64) -> Log {
        let mut rng = SplitMix(seed);
        let mut log = Log::default();
        log.provider_approved("clinic", ConnectionClass::ClosedIpVpn);
        log.provider_approved("app", ConnectionClass::TlsInternet);
        // Issued before the first read below, or every read is refused.
        log.credential_for_provider("c-clinic", "clinic", days(-28));
        log.credential_for_provider("c-app", "app", days(-28));
        let n = 20 + rng.below(60);
        let mut people: Vec<String> = Vec::new();
        let mut erased: BTreeSet<String> = BTreeSet::new();
        for step in 0..n {
            let at = days(-25) + hours(step as i64);
            let live: Vec<&String> = people.iter().filter(|p| !erased.contains(*p)).collect();
            let pick = live
                .get(rng.below(live.len().max(1) as u64) as usize)
                .map(|s| s.to_string());
            match (rng.below(10), pick) {
                (0 | 1, _) | (_, None) => {
                    let p = format!("p{}", people.len());
                    log.person_registered(&p, at);
                    people.push(p);
                }
                (2, Some(p)) => {
                    let k = format!("k{step}");
                    let provider = if rng.below(2) == 0 { "clinic" } else { "app" };
                    log.consent(
                        &p,
                        &k,
                        provider,
                        at,
                        at + Duration::days(rng.below(60) as i64 + 1),
                    );
                    if rng.below(3) == 0 {
                        log.revoke_consent(&p, &k, at + hours(1));
                    }
                }
                (3, Some(p)) => {
                    let r = format!("r{step}");
                    log.self_vital(&p, &r, at);
                    if rng.below(3) == 0 {
                        log.correct_self_vital(&p, &format!("r{step}-fix"), &r, at);
                    }
                }
                (4, Some(p)) => {
                    log.clinic_vital(&p, &format!("r{step}"), "clinic", at);
                }
                (5 | 6, Some(p)) => {
                    let (provider, cred) = if rng.below(2) == 0 {
                        ("clinic", "c-clinic")
                    } else {
                        ("app", "c-app")
                    };
                    // Mostly what consents cover (vitals), sometimes anything.
                    let cats = [Category::ALL[rng.below(20).saturating_sub(10) as usize]];
                    log.read_as_provider(provider, cred, &p, &cats, at + hours(2));
                }
                (7, Some(p)) => {
                    let c = format!("c-{step}");
                    log.credential_for_person(&c, &p, at, None);
                    if rng.below(2) == 0 {
                        log.read_as_individual(&p, &c, &p, at + hours(1));
                    }
                }
                (8, Some(p)) => {
                    if rng.below(3) == 0 {
                        log.withdraw_and_erase(&p, at);
                        erased.insert(p);
                    } else if let Some(rep) = live.iter().find(|r| ***r != p) {
                        let rep = rep.to_string();
                        log.push(represented_by(&p, &rep));
                    }
                }
                (_, Some(_)) => match rng.below(4) {
                    0 => {
                        let kind = if rng.below(2) == 0 {
                            "full"
                        } else {
                            "differential"
                        };
                        log.backup_completed(kind, &format!("set-{step}"), at, (0, step));
                    }
                    1 => {
                        log.checkpoint(step);
                    }
                    2 => {
                        let id = format!("i-{step}");
                        log.incident(
                            "sysadm",
                            &id,
                            at,
                            IncidentCommand::Report {
                                incident: mebyo_operations::IncidentId::new(&id).unwrap(),
                                kind: incident::IncidentKind::Other,
                                detected_at: at,
                                vpn_used: false,
                                contractor: None,
                                source: incident::Source::Staff,
                            },
                        );
                        if rng.below(2) == 0 {
                            log.incident(
                                "sysadm",
                                &id,
                                at,
                                IncidentCommand::RecordStep {
                                    step: incident::Step::ReportToSoa,
                                    done_at: None,
                                    reference: None,
                                },
                            );
                        }
                    }
                    _ => {
                        log.push(AnyEvent::Other {
                            event_type: "load.tested".into(),
                        });
                    }
                },
            }
        }
        log
    }
}

fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.0 as i128 * 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn decoded(event_type: &str, payload: &serde_json::Value) -> AnyEvent {
    AnyEvent::decode(event_type, &serde_json::to_vec(payload).unwrap()).expect("payload decodes")
}

/// Deterministic generator for [`Log::random`] (the crate takes no `rand`).
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}
