//! The FHIR R4 validator (P2(1), P4.8(3)): R4's primitive types, unknown
//! elements, MedicationDispense, Bundles and the subject rule (issue 22 §8).

use crate::fhir::{self, MAX_BUNDLE_ENTRIES};
use crate::testkit::pid;
use crate::*;
use serde_json::{Value, json};

/// A patient's name, put where a careless error message would repeat it.
const NAME: &str = "神奈川 檸檬子";

fn weight() -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-20",
        "valueQuantity": {"value": 61.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}

fn dispense() -> Value {
    json!({
        "resourceType": "MedicationDispense", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.74", "code": "610463147", "display": "アムロジピン錠５ｍｇ"}]},
        "subject": {"reference": "Patient/p1"},
        "quantity": {"value": 28, "unit": "錠"},
        "daysSupply": {"value": 28, "unit": "日", "system": "http://unitsofmeasure.org", "code": "d"},
        "whenHandedOver": "2026-11-20T10:15:00+09:00",
        "dosageInstruction": [{"text": "1日1回 朝食後", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["ACM"]}}}]
    })
}

/// `base` with `path` (keys split by `.`, array indexes as numbers) set to
/// `value`, or removed for `Value::Null`.
fn with(mut base: Value, path: &str, value: Value) -> Value {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().unwrap();
    let mut at = &mut base;
    for k in keys {
        at = match k.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[k],
        };
    }
    match (value, last.parse::<usize>()) {
        (Value::Null, _) => {
            at.as_object_mut().unwrap().remove(last);
        }
        (v, Ok(i)) => at[i] = v,
        (v, Err(_)) => at[last] = v,
    }
    base
}

/// Given a resource of `category` about p1, when it is validated, then the
/// outcome is `ok` or an error starting with `expect` (`<path>: <problem>`),
/// and no error repeats the patient's name put into the resource.
fn check(category: Category, resource: Value, expect: &str) {
    let got = match fhir::validate(category, &pid("p1"), &resource) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        got.starts_with(expect),
        "{resource}\n  got:    {got}\n  wanted: {expect}…"
    );
    for word in NAME.split(' ') {
        assert!(!got.contains(word), "{got} echoes the input");
    }
}

/// Issue 22 §8: `effectiveDateTime` `2026/11/20 07:35` was stored as given.
/// Every date, dateTime, instant and time is R4's: partial dates allowed, a
/// time needs seconds and a timezone, a real calendar day (P2(1)).
#[test]
fn p2_1_dates_and_times_are_r4s() {
    let dt = |v: &str, expect: &str| {
        check(
            Category::Vitals,
            with(weight(), "effectiveDateTime", json!(v)),
            expect,
        )
    };
    for ok in [
        "2026",
        "2026-11",
        "2026-11-20",
        "2024-02-29",
        "2000-02-29",
        "2026-11-20T07:35:00+09:00",
        "2026-11-20T07:35:00Z",
        "2026-11-20T07:35:00.123-03:30",
        "2026-11-20T23:59:60Z",
        "2026-11-20T07:35:00+14:00",
    ] {
        dt(ok, "ok");
    }
    let bad = "Observation.effectiveDateTime: must be an R4 dateTime";
    for v in [
        "2026/11/20 07:35",
        "2026-11-20T07:35:00",
        "2026-11-20T07:35+09:00",
        "2026-11-20T07:35:00+0900",
        "2026-11-20T24:00:00Z",
        "2026-11-20T07:35:00+14:30",
        "2026-11-20T07:35:00.Z",
        "2026-02-30",
        "2023-02-29",
        "1900-02-29",
        "2026-13",
        "2026-00",
        "0000",
        "-2026",
        "26-11-20",
        "２０２６-11-20",
        "2026-11-20 ",
        "",
    ] {
        dt(v, bad);
    }
    check(
        Category::Vitals,
        with(weight(), "effectiveDateTime", json!(20261120)),
        "Observation.effectiveDateTime: must be a string",
    );
    // The same rules wherever the type appears, at any depth.
    check(
        Category::Vitals,
        with(
            with(weight(), "effectiveDateTime", Value::Null),
            "effectivePeriod",
            json!({"start": "2026-11-20T07:35:00+09:00", "end": "2026/11/20"}),
        ),
        "Observation.effectivePeriod.end: must be an R4 dateTime",
    );
    check(
        Category::Vitals,
        with(weight(), "issued", json!("2026-11-20")),
        "Observation.issued: must be an R4 instant",
    );
    check(
        Category::Vitals,
        with(weight(), "issued", json!("2026-11-20T07:35:00.5+09:00")),
        "ok",
    );
    check(
        Category::Vitals,
        with(
            weight(),
            "meta",
            json!({"lastUpdated": "2026-11-20T07:35Z"}),
        ),
        "Observation.meta.lastUpdated: must be an R4 instant",
    );
    let imm = json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "influenza"},
        "patient": {"reference": "Patient/p1"}, "occurrenceDateTime": "2026-10-01", "expirationDate": "2027-01"});
    check(Category::Vaccination, imm.clone(), "ok");
    check(
        Category::Vaccination,
        with(imm.clone(), "expirationDate", json!("2027-01-01T00:00:00Z")),
        "Immunization.expirationDate: must be an R4 date",
    );
    check(
        Category::Vaccination,
        with(imm, "occurrenceDateTime", json!("2026-10-01T09:00")),
        "Immunization.occurrenceDateTime: must be an R4 dateTime",
    );
    let obs_time = |t: &str| {
        with(
            with(weight(), "valueQuantity", Value::Null),
            "valueTime",
            json!(t),
        )
    };
    check(Category::DailyLifeLog, obs_time("07:35:00"), "ok");
    for t in ["07:35", "07:35:00Z", "25:00:00"] {
        check(
            Category::DailyLifeLog,
            obs_time(t),
            "Observation.valueTime: must be an R4 time",
        );
    }
    check(
        Category::MedicationHistory,
        with(
            dispense(),
            "dosageInstruction.0.timing.repeat.timeOfDay",
            json!(["7:30:00"]),
        ),
        "MedicationDispense.dosageInstruction[0].timing.repeat.timeOfDay[0]: must be an R4 time",
    );
}

/// Issue 22 §8: an unknown root element (`scaleSerialNumber`) was stored. An
/// element R4 does not define where it stands is refused, at the root or
/// nested; its name is repeated only if it is an element name the platform
/// knows (a submitter's key may be anything, a name included: P4.8(3)).
#[test]
fn p2_1_unknown_elements_are_refused() {
    let v = Category::Vitals;
    check(
        v,
        with(weight(), "scaleSerialNumber", json!("SN-1234")),
        "Observation: holds an element FHIR R4 does not define here",
    );
    check(
        v,
        with(weight(), NAME, json!(1)),
        "Observation: holds an element FHIR R4 does not define here",
    );
    check(
        v,
        with(weight(), "valueQuantity.precision", json!(1)),
        "Observation.valueQuantity: holds an element",
    );
    check(
        v,
        with(weight(), "code.coding.0.colour", json!("red")),
        "Observation.code.coding[0]: holds an element",
    );
    check(
        v,
        with(weight(), "patient", json!({"reference": "Patient/p1"})),
        "Observation.patient: is not an element here in FHIR R4",
    );
    check(
        v,
        with(weight(), "contained", json!([{"resourceType": "Patient"}])),
        "Observation.contained: contained resources are not accepted",
    );
    check(
        v,
        with(
            weight(),
            "modifierExtension",
            json!([{"url": "urn:x", "valueBoolean": true}]),
        ),
        "Observation.modifierExtension: modifier extensions",
    );
    check(
        v,
        with(weight(), "valueString", json!("61.5 kg")),
        "Observation.value[x]: at most one variant",
    );
    // Extensions: a url and either one value or nested extensions.
    let ext = |e: Value| with(weight(), "extension", json!([e]));
    check(
        v,
        ext(json!({"url": "urn:mebyo:scale", "valueString": "x"})),
        "ok",
    );
    check(
        v,
        ext(json!({"valueString": "x"})),
        "Observation.extension[0].url: is required",
    );
    check(
        v,
        ext(json!({"url": "urn:x"})),
        "Observation.extension[0]: an extension has either",
    );
    check(
        v,
        ext(json!({"url": "urn:x", "valueSignature": {}})),
        "Observation.extension[0]: holds an element",
    );
    // A primitive's id and extensions (`_name`) are allowed, nothing else there.
    check(
        v,
        with(
            weight(),
            "_status",
            json!({"extension": [{"url": "urn:x", "valueCode": "y"}]}),
        ),
        "ok",
    );
    check(
        v,
        with(weight(), "_status", json!({"note": "x"})),
        "Observation._status.note: is not an element here",
    );
    check(
        v,
        with(weight(), "_code", json!({"id": "x"})),
        "Observation: holds an element",
    );
    // Types of values and empty elements.
    check(
        v,
        with(weight(), "status", json!("final ")),
        "Observation.status: must be an R4 code",
    );
    check(
        v,
        with(weight(), "code", json!({})),
        "Observation.code: must not be empty",
    );
    check(
        v,
        with(weight(), "category", json!([])),
        "Observation.category: must be a non-empty array",
    );
    check(
        v,
        with(weight(), "id", json!("obs_1")),
        "Observation.id: must match",
    );
    check(
        Category::MedicationHistory,
        with(dispense(), "substitution", json!({"wasSubstituted": "no"})),
        "MedicationDispense.substitution.wasSubstituted: must be true or false",
    );
    check(
        Category::MedicationHistory,
        with(dispense(), "dosageInstruction.0.sequence", json!(1.5)),
        "MedicationDispense.dosageInstruction[0].sequence: must be an integer",
    );
}

/// Issue 22 §8: pharmacies send MedicationDispense. It is medication history,
/// as MedicationStatement is, with R4's statuses and a medication; the subject
/// rule is every resource's.
#[test]
fn p2_1_medication_dispense_is_medication_history() {
    let m = Category::MedicationHistory;
    check(m, dispense(), "ok");
    check(Category::MedicationNotebook, dispense(), "ok");
    check(
        Category::Vitals,
        dispense(),
        "resourceType: must be one of Observation",
    );
    check(
        m,
        with(dispense(), "status", json!("handed-over")),
        "MedicationDispense.status: must be one of",
    );
    check(
        m,
        with(dispense(), "medicationCodeableConcept", Value::Null),
        "MedicationDispense.medication[x]: exactly one of",
    );
    check(
        m,
        with(dispense(), "whenHandedOver", json!("2026/11/20")),
        "MedicationDispense.whenHandedOver: must be an R4 dateTime",
    );
}

/// The subject is the person the submission names, as `Patient/<person>`,
/// without a display name: a resource without one, or naming anyone else, is
/// refused (P4.8(3); never guessed, never rewritten, P5.1).
#[test]
fn p4_8_3_the_subject_is_the_submissions_person() {
    let m = Category::MedicationHistory;
    check(
        m,
        with(dispense(), "subject", Value::Null),
        "MedicationDispense.subject: is required",
    );
    check(
        m,
        with(dispense(), "subject", json!({"reference": "Patient/p2"})),
        "MedicationDispense.subject.reference: must reference Patient/p1",
    );
    check(
        m,
        with(dispense(), "subject.display", json!(NAME)),
        "MedicationDispense.subject.display: identity data belongs in the identity vault",
    );
    check(
        Category::Vitals,
        with(weight(), "subject", json!({"reference": "urn:uuid:7f1c"})),
        "Observation.subject.reference: must reference Patient/p1",
    );
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn post(resource: Value) -> Value {
    let rt = resource["resourceType"].clone();
    json!({"resource": resource, "request": {"method": "POST", "url": rt}})
}

/// Given a Bundle of `category` about p1, when its entries are read, then it
/// gives `ok <n>` records or an error starting with `expect`.
fn check_bundle(category: Category, b: Value, expect: &str) {
    let got = match fhir::bundle_entries(category, &pid("p1"), &b) {
        Ok(entries) => format!("ok {}", entries.len()),
        Err(e) => e.to_string(),
    };
    assert!(
        got.starts_with(expect),
        "{b}\n  got:    {got}\n  wanted: {expect}…"
    );
    for word in NAME.split(' ') {
        assert!(!got.contains(word), "{got} echoes the input");
    }
}

/// Issue 22 §8: several resources at once as a Bundle (`collection`, or a
/// FHIR client's `transaction`/`batch` of POSTs); each entry validated as
/// strictly as one resource, the first error refusing the bundle, at most
/// `MAX_BUNDLE_ENTRIES` entries (P2(1)).
#[test]
fn p2_1_bundles_are_validated_entry_by_entry() {
    let m = Category::MedicationHistory;
    let statement = json!({"resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"text": "メトホルミン"}, "subject": {"reference": "Patient/p1"}});
    check_bundle(
        m,
        bundle(
            "collection",
            vec![
                json!({"resource": dispense()}),
                json!({"fullUrl": "urn:uuid:1", "resource": statement.clone()}),
            ],
        ),
        "ok 2",
    );
    check_bundle(
        m,
        bundle(
            "transaction",
            vec![post(dispense()), post(statement.clone())],
        ),
        "ok 2",
    );
    check_bundle(m, bundle("batch", vec![post(dispense())]), "ok 1");
    check_bundle(
        m,
        bundle(
            "collection",
            vec![
                json!({"resource": dispense()}),
                json!({"resource": with(dispense(), "whenHandedOver", json!("2026/11/20 07:35"))}),
            ],
        ),
        "Bundle.entry[1].resource.whenHandedOver: must be an R4 dateTime",
    );
    check_bundle(
        m,
        bundle(
            "collection",
            vec![json!({"resource": with(dispense(), "scaleSerialNumber", json!(1))})],
        ),
        "Bundle.entry[0].resource: holds an element",
    );
    check_bundle(
        m,
        bundle("collection", vec![json!({"resource": weight()})]),
        "Bundle.entry[0].resource.resourceType: must be one of MedicationStatement, MedicationDispense",
    );
    check_bundle(
        m,
        bundle(
            "collection",
            vec![json!({"resource": {"resourceType": "Patient", "name": [{"text": NAME}]}})],
        ),
        "Bundle.entry[0].resource.resourceType: must be one of",
    );
    check_bundle(
        m,
        bundle(
            "collection",
            vec![json!({"resource": bundle("collection", vec![json!({"resource": dispense()})])})],
        ),
        "Bundle.entry[0].resource.resourceType: must be one of",
    );
    check_bundle(
        m,
        bundle(
            "collection",
            vec![
                json!({"resource": with(dispense(), "subject", json!({"reference": "Patient/p2"}))}),
            ],
        ),
        "Bundle.entry[0].resource.subject.reference: must reference Patient/p1",
    );
    check_bundle(
        m,
        bundle("document", vec![post(dispense())]),
        "Bundle.type: must be one of collection, transaction, batch",
    );
    check_bundle(
        m,
        bundle("collection", vec![]),
        "Bundle.entry: must be a non-empty array",
    );
    check_bundle(
        m,
        with(bundle("collection", vec![]), "entry", Value::Null),
        "Bundle.entry: is required",
    );
    check_bundle(
        m,
        bundle("collection", vec![post(dispense())]),
        "Bundle.entry[0].request: a collection's entries carry no request",
    );
    check_bundle(
        m,
        bundle("transaction", vec![json!({"resource": dispense()})]),
        "Bundle.entry[0].request: is required in a transaction or batch",
    );
    check_bundle(
        m,
        bundle(
            "transaction",
            vec![with(post(dispense()), "request.method", json!("PUT"))],
        ),
        "Bundle.entry[0].request.method: must be one of POST",
    );
    check_bundle(
        m,
        bundle(
            "transaction",
            vec![with(
                post(dispense()),
                "request.url",
                json!("MedicationStatement"),
            )],
        ),
        "Bundle.entry[0].request.url: must be MedicationDispense",
    );
    check_bundle(
        m,
        with(
            bundle("collection", vec![json!({"resource": dispense()})]),
            "signature",
            json!({}),
        ),
        "Bundle: holds an element",
    );
    check_bundle(
        m,
        with(
            bundle("collection", vec![json!({"resource": dispense()})]),
            "timestamp",
            json!("2026-11-20"),
        ),
        "Bundle.timestamp: must be an R4 instant",
    );
    let many = (0..=MAX_BUNDLE_ENTRIES)
        .map(|_| json!({"resource": dispense()}))
        .collect();
    check_bundle(
        m,
        bundle("collection", many),
        "Bundle.entry: at most 100 entries",
    );
    // A Bundle is never a record by itself.
    check(
        m,
        bundle("collection", vec![json!({"resource": dispense()})]),
        "resourceType: must be one of",
    );
}
