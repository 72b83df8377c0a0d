//! Memory and snapshot cost of the read models at scale (issue 6 §3, issue 8).
//!
//! Synthesises PEOPLE people and EVENTS events (registrations, policy acceptance,
//! consents and revocations, records and corrections, provider and individual reads)
//! through `ReadModels::apply`, then reports resident memory (VmRSS, VmHWM from
//! /proc/self/status), snapshot size and time, and restore time.
//!
//! cargo run --release -p mebyo-projections --example projection_memory -- [PEOPLE] [EVENTS]
//!
//! Defaults: 1,000,000 people, 10,000,000 events. Target: ≤ 2 GiB resident.

use mebyo_domain::access::{AccessEvent, Outcome};
use mebyo_domain::fhir::VitalKind;
use mebyo_domain::person::{PersonEvent, Registrar};
use mebyo_domain::policy::PolicyEvent;
use mebyo_domain::provider::{Attestation, AttestationKind, Basis, ConnectionClass, ProviderEvent};
use mebyo_domain::records::{Origin, Party, Provenance, RecordEntry, RecordEvent};
use mebyo_domain::*;
use mebyo_projections::{AnyEvent, Applied, ReadModels};
use std::collections::BTreeSet;
use std::time::Instant;

const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00Z
const DAY: i64 = 86_400_000_000;
const PROVIDERS: u64 = 1_000;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

struct Feed {
    models: ReadModels,
    prev: [u8; 32],
    recorded: i64,
}

impl Feed {
    fn push(&mut self, e: impl Into<AnyEvent>) {
        let event = e.into();
        let position = self.models.position();
        // A stand-in chain hash: cheap, distinct, and chained like the store's.
        let mut hash = self.prev;
        hash[..8].copy_from_slice(&(position + 1).to_le_bytes());
        self.recorded += 1;
        self.models
            .apply(&Applied {
                position,
                recorded_at_us: self.recorded,
                stream_id: "synthetic",
                prev_hash: self.prev,
                hash,
                event: &event,
            })
            .expect("synthetic log is in order");
        self.prev = hash;
    }
}

fn person(i: u64) -> PersonId {
    PersonId::new(format!("p{i:07}")).unwrap()
}
fn provider(i: u64) -> ProviderId {
    ProviderId::new(format!("prov{i:04}")).unwrap()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.replace('_', "").parse().expect("numeric arguments"))
        .collect();
    let people = args.first().copied().unwrap_or(1_000_000);
    let events = args.get(1).copied().unwrap_or(10_000_000);
    println!("synthesising {people} people, {events} events");
    println!("baseline VmRSS {}", status("VmRSS:"));

    let mut feed = Feed {
        models: ReadModels::new(),
        prev: [0; 32],
        recorded: T0,
    };
    let mut rng = Rng(42);
    let started = Instant::now();
    let pref = StaffId::new("pref").unwrap();
    let policy = PolicyId::new("2020-11-16").unwrap();
    feed.push(PolicyEvent::VersionPublished {
        version: PolicyVersion {
            id: policy.clone(),
            in_force_from: Timestamp(T0 - 2000 * DAY),
            applies_from: Timestamp(T0 - 2015 * DAY),
        },
        by: pref.clone(),
        at: Timestamp(T0 - 2000 * DAY),
    });
    for p in 0..PROVIDERS {
        let at = Timestamp(T0 - 30 * DAY);
        feed.push(ProviderEvent::Applied {
            provider: provider(p),
            responsible: StaffId::new(format!("lead{p}")).unwrap(),
            connection: if p % 3 == 0 {
                ConnectionClass::TlsInternet
            } else {
                ConnectionClass::ClosedIpVpn
            },
            basis: Basis::Certified,
            at,
        });
        for kind in [
            AttestationKind::MembersTrained,
            AttestationKind::AntivirusCurrent,
        ] {
            feed.push(ProviderEvent::Attested {
                provider: provider(p),
                kind,
                attestation: Attestation {
                    attested_on: at,
                    valid_until: Timestamp(T0 + 335 * DAY),
                },
                at,
            });
        }
        feed.push(ProviderEvent::Approved {
            provider: provider(p),
            by: pref.clone(),
            at,
        });
    }

    // Registrations spread over the first 100 days, two events each.
    let span = 365 * DAY;
    for i in 0..people {
        let at = Timestamp(T0 + (i as i64 * 100 * DAY) / people as i64);
        feed.push(PersonEvent::Registered {
            person: person(i),
            registrar: Registrar::SelfService,
            identity: VaultRef::new(format!("v{i}")).unwrap(),
            email_index: None,
            password: true,
            at,
        });
        feed.push(PersonEvent::PolicyAccepted {
            person: person(i),
            policy: policy.clone(),
            at,
        });
    }

    // Everything else, interleaved over the year as on a live platform: per 100 events
    // ~17 consents (2 revoked), ~41 records (4 corrections), ~40 reads.
    let mut consents: Vec<(u32, u32)> = Vec::new(); // (person, provider) per consent id
    let mut records_per_person = 0u64;
    let start = feed.models.position();
    let rest = events.saturating_sub(start);
    let cats: BTreeSet<Category> = [Category::Vitals, Category::MedicationHistory].into();
    for n in 0..rest {
        let at = Timestamp(T0 + 100 * DAY + (n as i64 * (span - 100 * DAY)) / rest as i64);
        let who = rng.below(people);
        let roll = rng.below(100);
        if roll < 15 {
            let prov = rng.below(PROVIDERS);
            let k = consents.len();
            consents.push((who as u32, prov as u32));
            feed.push(PersonEvent::ConsentGranted {
                person: person(who),
                consent: ConsentId::new(format!("k{k}")).unwrap(),
                provider: provider(prov),
                categories: cats.clone(),
                purpose: Purpose::Care,
                period: Period {
                    from: Timestamp(T0 - span),
                    to: Timestamp(T0 + span),
                },
                expires_at: Timestamp(at.0 + (30 + rng.below(335) as i64) * DAY),
                by: person(who),
                at,
            });
        } else if roll < 17 && !consents.is_empty() {
            let k = rng.below(consents.len() as u64);
            let (p, _) = consents[k as usize];
            feed.push(PersonEvent::ConsentRevoked {
                person: person(p as u64),
                consent: ConsentId::new(format!("k{k}")).unwrap(),
                by: person(p as u64),
                at,
            });
        } else if roll < 58 {
            records_per_person += 1;
            let clinic = rng.below(4) == 0;
            let party = if clinic {
                Party::Provider {
                    provider: provider(rng.below(PROVIDERS)),
                }
            } else {
                Party::Person {
                    person: person(who),
                }
            };
            let entry = RecordEntry {
                record: RecordId::new(format!("r{n}")).unwrap(),
                category: Category::Vitals,
                vital: Some(VitalKind::Weight),
                effective_at: Timestamp(at.0 - DAY),
                // Content is irrelevant to the index and not retained by it.
                resource: serde_json::Value::Null.into(),
                provenance: Provenance {
                    origin: if clinic {
                        Origin::MedicalInstitution
                    } else {
                        Origin::SelfEntered
                    },
                    created_by: party.clone(),
                    delivered_by: party,
                    original_identifier: None,
                },
            };
            // One in ten corrects the person's previous record id guess: harmless if
            // absent (the projection ignores an unknown supersedes).
            if roll < 22 {
                feed.push(RecordEvent::Corrected {
                    person: person(who),
                    supersedes: RecordId::new(format!("r{}", n.saturating_sub(1))).unwrap(),
                    entry,
                    at,
                });
            } else {
                feed.push(RecordEvent::Added {
                    person: person(who),
                    entry,
                    at,
                });
            }
        } else {
            let (subject, actor, consent, outcome, code) = if roll < 88 && !consents.is_empty() {
                let k = rng.below(consents.len() as u64);
                let (p, prov) = consents[k as usize];
                let refused = rng.below(20) == 0;
                (
                    p as u64,
                    Actor::Provider {
                        provider: provider(prov as u64),
                        credential: CredentialId::new(format!("pc{prov}")).unwrap(),
                    },
                    (!refused).then(|| ConsentId::new(format!("k{k}")).unwrap()),
                    if refused {
                        Outcome::Refused
                    } else {
                        Outcome::Granted
                    },
                    refused.then_some(("consent.expired", "P4.6(2)")),
                )
            } else {
                (
                    who,
                    Actor::Individual {
                        person: person(who),
                        credential: CredentialId::new(format!("c{who}")).unwrap(),
                    },
                    None,
                    Outcome::Granted,
                    None,
                )
            };
            let channel = if matches!(actor, Actor::Provider { .. }) {
                Channel::ProviderGateway
            } else {
                Channel::App
            };
            feed.push(AccessEvent::AccessRecorded {
                actor,
                person: person(subject),
                categories: cats.clone(),
                purpose: Purpose::Care,
                channel,
                period: Period {
                    from: Timestamp(T0 - span),
                    to: at,
                },
                consent,
                outcome,
                refusal_code: code.map(|c| c.0.to_owned()),
                refusal_clause: code.map(|c| c.1.to_owned()),
                at,
            });
        }
    }
    drop(consents);
    let fold_secs = started.elapsed().as_secs_f64();
    let m = &mut feed.models;
    println!(
        "applied {} events in {fold_secs:.1} s ({:.2} M events/s, event synthesis included)",
        m.position(),
        m.position() as f64 / fold_secs / 1e6
    );
    println!(
        "registry {:?}; records {records_per_person}; consents at year end {:?}",
        m.registry().counts(),
        m.consents().counts(Timestamp(T0 + span))
    );
    println!(
        "after apply      VmRSS {}  VmHWM {}",
        status("VmRSS:"),
        status("VmHWM:")
    );
    m.shrink_to_fit();
    println!("after shrink     VmRSS {}", status("VmRSS:"));

    let t = Instant::now();
    let snap = m.snapshot();
    let snap_secs = t.elapsed().as_secs_f64();
    println!(
        "snapshot         {:.1} MiB in {snap_secs:.2} s   VmRSS {}",
        mib(snap.len()),
        status("VmRSS:")
    );
    let (position, hash) = (m.position(), m.last_hash());
    let counts = m.registry().counts();
    let sample = m.access().of_person("p0000000").count();
    drop(feed);
    println!("models dropped   VmRSS {}", status("VmRSS:"));

    let t = Instant::now();
    let restored = ReadModels::restore(&snap, position, hash).expect("own snapshot restores");
    let restore_secs = t.elapsed().as_secs_f64();
    assert_eq!(restored.registry().counts(), counts);
    assert_eq!(restored.access().of_person("p0000000").count(), sample);
    println!(
        "restore          {restore_secs:.2} s (checksum, decode, index rebuild, consistency check)   VmRSS {}",
        status("VmRSS:")
    );
    drop(snap);
    println!(
        "restored only    VmRSS {}  peak VmHWM {}",
        status("VmRSS:"),
        status("VmHWM:")
    );
}
