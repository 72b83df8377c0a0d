//! Health records: P2(1), P4.5(3), P4.6(2), P4.9, P5.1.

use crate::fhir::VitalKind;
use crate::person::{Person, PersonEvent};
use crate::provider::ConnectionClass::{self, *};
use crate::records::{
    Origin, Party, Provenance, RecordCommand as C, RecordEntry, RecordEvent, RecordState, Records,
    Resource, Submission,
};
use crate::staff::Role;
use crate::testkit::*;
use crate::*;
use serde_json::{Value, json};

pub fn weight(person: &str, kg: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": "2025-06-01",
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

pub fn submission(record: &str, origin: Origin) -> Submission {
    Submission {
        record: rid(record),
        category: Category::Vitals,
        effective_at: days(-200),
        resource: weight("p1", 61.5),
        origin,
        created_by: None,
        original_identifier: (origin == Origin::MedicalInstitution)
            .then(|| "urn:oid:1.2.392.100495|obs-77".into()),
    }
}

struct Fx {
    cfg: Config,
    actor: Actor,
    cred: CredentialState,
    provider: ProviderState,
    person: PersonState,
}

impl Fx {
    fn individual() -> Self {
        Self::with(individual("p1", "c1"), person_holder("p1"), TlsInternet)
    }

    fn provider(class: ConnectionClass) -> Self {
        Self::with(
            provider_actor("clinic", "pc1"),
            provider_holder("clinic"),
            class,
        )
    }

    fn with(actor: Actor, holder: credential::Holder, class: ConnectionClass) -> Self {
        let cred_id = match &actor {
            Actor::Individual { credential, .. } | Actor::Provider { credential, .. } => {
                credential.as_str().to_string()
            }
            _ => "none".into(),
        };
        let mut history = registered("p1");
        history.push(consent_granted("p1", "k1", "clinic"));
        history.push(represented_by("p1", "p2"));
        Self {
            cfg: config(),
            cred: credential(&cred_id, holder, Cred::Valid),
            actor,
            provider: provider("clinic", class),
            person: Person::fold(&history),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(T0, &self.actor, &self.cfg)
            .credential(&self.cred)
            .provider(&self.provider)
            .person(&self.person)
    }
}

fn added(s: &Submission, provenance: Provenance) -> RecordEvent {
    RecordEvent::Added {
        person: pid("p1"),
        entry: RecordEntry {
            record: s.record.clone(),
            category: s.category,
            vital: Some(VitalKind::Weight),
            effective_at: s.effective_at,
            resource: s.resource.clone().into(),
            provenance,
        },
        at: T0,
    }
}

fn me() -> Party {
    Party::Person { person: pid("p1") }
}

fn clinic() -> Party {
    Party::Provider {
        provider: prid("clinic"),
    }
}

#[test]
fn p5_1_self_entered_record_keeps_its_provenance() {
    let fx = Fx::individual();
    let s = submission("r1", Origin::SelfEntered);
    let provenance = Provenance {
        origin: Origin::SelfEntered,
        created_by: me(),
        delivered_by: me(),
        original_identifier: None,
    };
    let after = check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(s.clone()),
        Events(vec![added(&s, provenance)]),
    );
    assert_eq!(after.current().count(), 1);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::MedicalInstitution)),
        Refused("record.origin_mismatch", "P5.1"),
    );
}

#[test]
fn p5_1_medical_record_from_a_vpn_provider_names_its_original() {
    let fx = Fx::provider(IpsecIkeVpn);
    let s = submission("r1", Origin::MedicalInstitution);
    let provenance = Provenance {
        origin: Origin::MedicalInstitution,
        created_by: clinic(),
        delivered_by: clinic(),
        original_identifier: s.original_identifier.clone(),
    };
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(s.clone()),
        Events(vec![added(&s, provenance)]),
    );
    let relayed = Submission {
        created_by: Some(prid("hospital")),
        ..s.clone()
    };
    let after = check::<Records>(&fx.ctx(), &[], C::Submit(relayed), Types(&["record.added"]));
    assert_eq!(
        after.records[&rid("r1")].entry.provenance.created_by,
        Party::Provider {
            provider: prid("hospital")
        }
    );
    let anonymous = Submission {
        original_identifier: None,
        ..s.clone()
    };
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(anonymous),
        Refused("record.original_identifier_missing", "P5.1"),
    );
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::SelfEntered)),
        Refused("record.origin_mismatch", "P5.1"),
    );
}

#[test]
fn p4_5_3_medical_origin_over_a_non_vpn_connection_is_refused() {
    let fx = Fx::provider(TlsInternet);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::MedicalInstitution)),
        Refused("record.connection_not_vpn", "P4.5(3)"),
    );
    let fx = Fx::provider(ClosedIpVpn);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::MedicalInstitution)),
        Types(&["record.added"]),
    );
}

#[test]
fn p4_6_2_provider_delivery_needs_a_covering_consent() {
    let fx = Fx::provider(ClosedIpVpn);
    let mut s = submission("r1", Origin::MedicalInstitution);
    s.effective_at = days(10); // after the consented period... and in the future
    check::<Records>(
        &Ctx {
            now: days(20),
            ..fx.ctx()
        },
        &[],
        C::Submit(s),
        Refused("consent.period", "P4.6(2)"),
    );
    let mut s = submission("r1", Origin::MedicalInstitution);
    s.category = Category::Allergy;
    s.resource = json!({"resourceType": "AllergyIntolerance", "code": {"text": "egg"}, "patient": {"reference": "Patient/p1"}});
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(s),
        Refused("consent.category", "P4.6(2)"),
    );
    let later = Ctx {
        now: days(90),
        ..fx.ctx()
    };
    check::<Records>(
        &later,
        &[],
        C::Submit(submission("r1", Origin::MedicalInstitution)),
        Refused("credential.expired", "P4.12(1)"),
    );
}

#[test]
fn p4_6_2_staff_never_write_health_content() {
    let cfg = config();
    let fx = Fx::individual();
    for role in Role::ALL {
        let (s, a) = (staff("x", role, true), staff_actor("x"));
        let ctx = Ctx::new(T0, &a, &cfg).staff(&s).person(&fx.person);
        check::<Records>(
            &ctx,
            &[],
            C::Submit(submission("r1", Origin::SelfEntered)),
            Refused("record.no_health_access", "P4.6(2)"),
        );
    }
}

#[test]
fn p4_6_2_a_representative_enters_data_for_the_family_member() {
    let fx = Fx::with(individual("p2", "c2"), person_holder("p2"), TlsInternet);
    let after = check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::SelfEntered)),
        Types(&["record.added"]),
    );
    assert_eq!(
        after.records[&rid("r1")].entry.provenance.created_by,
        Party::Person { person: pid("p2") }
    );
    let fx = Fx::with(individual("p3", "c3"), person_holder("p3"), TlsInternet);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::SelfEntered)),
        Refused("person.not_self", "P4.6(2)"),
    );
}

#[test]
fn p2_1_records_are_validated_fhir_for_this_person() {
    let fx = Fx::individual();
    let mut s = submission("r1", Origin::SelfEntered);
    s.resource["valueQuantity"]["unit"] = json!("lb");
    let refusal = records::decide(&RecordState::default(), &C::Submit(s), &fx.ctx()).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.clause),
        ("record.fhir_invalid", "P2(1)")
    );
    assert!(
        refusal.message.contains("Observation.valueQuantity.unit"),
        "{refusal}"
    );
    let mut s = submission("r1", Origin::SelfEntered);
    s.resource = weight("p2", 60.0);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(s),
        Refused("record.fhir_invalid", "P2(1)"),
    );
    let mut s = submission("r1", Origin::SelfEntered);
    s.effective_at = days(1);
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(s),
        Refused("record.effective_in_future", "P2(1)"),
    );
}

#[test]
fn p2_1_corrections_supersede_and_never_edit() {
    let fx = Fx::individual();
    let s = submission("r1", Origin::SelfEntered);
    let given = [added(
        &s,
        Provenance {
            origin: Origin::SelfEntered,
            created_by: me(),
            delivered_by: me(),
            original_identifier: None,
        },
    )];
    check::<Records>(
        &fx.ctx(),
        &given,
        C::Submit(s.clone()),
        Refused("record.exists", "P2(1)"),
    );
    let fixed = Submission {
        record: rid("r2"),
        resource: weight("p1", 60.5),
        ..s.clone()
    };
    let correct = C::Correct {
        supersedes: rid("r1"),
        submission: fixed.clone(),
    };
    let after = check::<Records>(
        &fx.ctx(),
        &given,
        correct.clone(),
        Types(&["record.corrected"]),
    );
    assert_eq!(after.records[&rid("r1")].superseded_by, Some(rid("r2")));
    assert_eq!(
        after.records[&rid("r1")].entry.resource.value(),
        weight("p1", 61.5),
        "the original stays as it was"
    );
    assert_eq!(
        after
            .current()
            .map(|e| e.record.clone())
            .collect::<Vec<_>>(),
        vec![rid("r2")]
    );
    // The text held is counted as records come (what the cache weighs, issue 19 §9).
    let text: usize = after
        .records
        .values()
        .map(|r| r.entry.resource.json().len())
        .sum();
    assert_eq!(after.text_bytes, text);
    let mut history = given.to_vec();
    history.extend(records::decide(&records::Records::fold(&given), &correct, &fx.ctx()).unwrap());
    let again = C::Correct {
        supersedes: rid("r1"),
        submission: Submission {
            record: rid("r3"),
            ..fixed
        },
    };
    check::<Records>(
        &fx.ctx(),
        &history,
        again,
        Refused("record.already_superseded", "P2(1)"),
    );
    check::<Records>(
        &fx.ctx(),
        &given,
        C::Correct {
            supersedes: rid("r9"),
            submission: Submission {
                record: rid("r3"),
                ..s
            },
        },
        Refused("record.unknown", "P2(1)"),
    );
}

#[test]
fn p5_1_only_the_creating_side_corrects() {
    let fx = Fx::provider(ClosedIpVpn);
    let s = submission("r1", Origin::MedicalInstitution);
    let from_clinic = [added(
        &s,
        Provenance {
            origin: Origin::MedicalInstitution,
            created_by: clinic(),
            delivered_by: clinic(),
            original_identifier: s.original_identifier.clone(),
        },
    )];
    let fix = |id: &str, origin| C::Correct {
        supersedes: rid("r1"),
        submission: submission(id, origin),
    };
    check::<Records>(
        &fx.ctx(),
        &from_clinic,
        fix("r2", Origin::MedicalInstitution),
        Types(&["record.corrected"]),
    );
    let me_fx = Fx::individual();
    check::<Records>(
        &me_fx.ctx(),
        &from_clinic,
        fix("r2", Origin::SelfEntered),
        Refused("record.not_creator", "P5.1"),
    );
}

#[test]
fn p4_9_no_records_after_withdrawal() {
    let mut fx = Fx::individual();
    fx.person = person::evolve(
        fx.person,
        &PersonEvent::Withdrawn {
            person: pid("p1"),
            at: days(-1),
        },
    );
    check::<Records>(
        &fx.ctx(),
        &[],
        C::Submit(submission("r1", Origin::SelfEntered)),
        Refused("person.withdrawn", "P4.9"),
    );
}

/// P2(1): a record's resource is kept as the JSON text a parsed tree would
/// write, so events stored before and after the change read the same, and the
/// text survives an event's round trip unchanged.
#[test]
fn p2_1_a_resource_is_kept_as_the_text_its_tree_would_write() {
    let tree = weight("p1", 61.5);
    let resource = Resource::from_value(&tree);
    assert_eq!(resource.json(), serde_json::to_string(&tree).unwrap());
    assert_eq!(resource.value(), tree);
    let event = RecordEvent::Added {
        person: PersonId::new("p1").unwrap(),
        entry: RecordEntry {
            record: rid("r1"),
            category: Category::Vitals,
            vital: Some(VitalKind::Weight),
            effective_at: Timestamp(1),
            resource: resource.clone(),
            provenance: Provenance {
                origin: Origin::SelfEntered,
                created_by: Party::Person {
                    person: PersonId::new("p1").unwrap(),
                },
                delivered_by: Party::Person {
                    person: PersonId::new("p1").unwrap(),
                },
                original_identifier: None,
            },
        },
        at: Timestamp(2),
    };
    let text = serde_json::to_string(&event).unwrap();
    let inline = format!(
        r#""resource":{},"provenance""#,
        serde_json::to_string(&tree).unwrap()
    );
    assert!(
        text.contains(&inline),
        "the stored text is the tree's: {text}"
    );
    let back: RecordEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(back, event);
    let back: RecordEvent = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
    assert_eq!(back, event);
    // Text with spaces (as an export might pretty-print it) reads back compact.
    let pretty: RecordEvent =
        serde_json::from_str(&serde_json::to_string_pretty(&event).unwrap()).unwrap();
    assert_eq!(pretty, event);
}

/// Several records at once (a FHIR Bundle, issue 22 §8) are stored all or
/// nothing: one refused submission refuses them all, ids are never repeated
/// within the command either (P2(1)).
#[test]
fn p2_1_several_records_are_stored_all_or_nothing() {
    let fx = Fx::individual();
    let a = submission("r1", Origin::SelfEntered);
    let b = submission("r2", Origin::SelfEntered);
    let after = check::<Records>(
        &fx.ctx(),
        &[],
        C::SubmitAll(vec![a.clone(), b.clone()]),
        Types(&["record.added", "record.added"]),
    );
    assert_eq!(after.records.len(), 2);
    let mut bad = submission("r3", Origin::SelfEntered);
    bad.resource["effectiveDateTime"] = json!("2026/11/20 07:35");
    check::<Records>(
        &fx.ctx(),
        &[],
        C::SubmitAll(vec![a.clone(), bad]),
        Refused("record.fhir_invalid", "P2(1)"),
    );
    check::<Records>(
        &fx.ctx(),
        &[],
        C::SubmitAll(vec![a.clone(), a.clone()]),
        Refused("record.exists", "P2(1)"),
    );
    check::<Records>(&fx.ctx(), &[], C::SubmitAll(vec![]), Events(vec![]));
}
