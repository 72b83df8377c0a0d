//! A small FHIR R4 validator for the resources records accept. It checks what the
//! platform relies on (resource type per category, subject, codes, UCUM units) and
//! points at the offending element, e.g. `Observation.component[1].valueQuantity.unit`.
//! Subjects are pseudonymous references only: names belong to the vault (P4.8(3)).

use crate::PersonId;
use crate::records::Category;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FhirError {
    pub path: String,
    pub problem: String,
}

/// Vital-sign kinds, identified by LOINC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalKind {
    Height,
    Weight,
    BloodPressure,
    Temperature,
    SpO2,
    Steps,
}

impl VitalKind {
    pub const ALL: [VitalKind; 6] = [
        VitalKind::Height,
        VitalKind::Weight,
        VitalKind::BloodPressure,
        VitalKind::Temperature,
        VitalKind::SpO2,
        VitalKind::Steps,
    ];

    pub fn loinc(self) -> &'static str {
        match self {
            VitalKind::Height => "8302-2",
            VitalKind::Weight => "29463-7",
            VitalKind::BloodPressure => "85354-9",
            VitalKind::Temperature => "8310-5",
            VitalKind::SpO2 => "59408-5",
            VitalKind::Steps => "55423-8",
        }
    }

    /// UCUM code, accepted `unit` spellings, and a plausible value range.
    fn quantity(self) -> (&'static [&'static str], &'static [&'static str], f64, f64) {
        match self {
            VitalKind::Height => (&["cm"], &["cm"], 20.0, 300.0),
            VitalKind::Weight => (&["kg"], &["kg"], 0.2, 500.0),
            VitalKind::BloodPressure => (&["mm[Hg]"], &["mm[Hg]", "mmHg"], 10.0, 350.0),
            VitalKind::Temperature => (&["Cel"], &["Cel", "°C"], 25.0, 45.0),
            VitalKind::SpO2 => (&["%"], &["%"], 0.0, 100.0),
            VitalKind::Steps => (
                &["{steps}", "/d"],
                &["{steps}", "steps", "/d"],
                0.0,
                300_000.0,
            ),
        }
    }
}

/// Blood-pressure components: systolic and diastolic.
const BP_COMPONENTS: [(&str, &str); 2] = [("8480-6", "systolic"), ("8462-4", "diastolic")];

/// One step from a node to its child.
#[derive(Clone, Copy)]
enum Step<'p> {
    /// The resource itself, named by its type (or `resourceType` before that is
    /// known).
    Root(&'p str),
    Key(&'p str),
    /// A `choice[x]` element: its name and the variant present, e.g. `effective`
    /// and `DateTime`.
    Choice(&'p str, &'p str),
    Index(usize),
}

/// A JSON node and how it was reached from the root. Its FHIRPath-like location
/// (`Observation.component[1].valueQuantity.unit`) is spelled out only for an
/// error: formatting it at every step was most of the validator's cost, and
/// almost every resource is valid.
#[derive(Clone, Copy)]
struct At<'p, 'a> {
    up: Option<&'p At<'p, 'a>>,
    step: Step<'p>,
    v: &'a Value,
}

type Check<T> = Result<T, FhirError>;

impl<'p, 'a> At<'p, 'a> {
    fn root(step: Step<'p>, v: &'a Value) -> Self {
        At { up: None, step, v }
    }

    fn path(&self) -> String {
        use std::fmt::Write;
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            steps.push(a.step);
            at = a.up;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Root(name) => out.push_str(name),
                Step::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Choice(name, variant) => {
                    out.push('.');
                    out.push_str(name);
                    out.push_str(variant);
                }
                Step::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }

    fn err<T>(&self, problem: impl Into<String>) -> Check<T> {
        Err(FhirError {
            path: self.path(),
            problem: problem.into(),
        })
    }

    fn child(&'p self, step: Step<'p>, v: &'a Value) -> At<'p, 'a> {
        At {
            up: Some(self),
            step,
            v,
        }
    }

    fn get(&'p self, key: &'p str) -> Option<At<'p, 'a>> {
        self.v.get(key).map(|v| self.child(Step::Key(key), v))
    }

    fn req(&'p self, key: &'p str) -> Check<At<'p, 'a>> {
        match self.get(key) {
            Some(at) => Ok(at),
            None => self.err_at(key, "is required".into()),
        }
    }

    /// Exactly one of the `choice[x]` variants, e.g. `effective[x]`.
    fn choice(&'p self, name: &'p str, variants: &[&'p str]) -> Check<At<'p, 'a>> {
        let mut key = String::new();
        let mut present = variants.iter().filter_map(|&variant| {
            key.clear();
            key.push_str(name);
            key.push_str(variant);
            self.v.get(key.as_str()).map(|v| (variant, v))
        });
        match (present.next(), present.next()) {
            (Some((variant, v)), None) => Ok(self.child(Step::Choice(name, variant), v)),
            _ => self.err_at(
                &format!("{name}[x]"),
                format!(
                    "exactly one of {name}{}",
                    variants.join(&format!("|{name}"))
                ),
            ),
        }
    }

    fn err_at<T>(&self, key: &str, problem: String) -> Check<T> {
        Err(FhirError {
            path: format!("{}.{key}", self.path()),
            problem,
        })
    }

    fn str(&self) -> Check<&'a str> {
        match self.v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => self.err("must be a non-empty string"),
        }
    }

    fn items(&'p self) -> Check<Vec<At<'p, 'a>>> {
        match self.v.as_array() {
            Some(a) if !a.is_empty() => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| self.child(Step::Index(i), v))
                .collect()),
            _ => self.err("must be a non-empty array"),
        }
    }

    fn one_of(&self, allowed: &[&str]) -> Check<&'a str> {
        let s = self.str()?;
        if allowed.contains(&s) {
            Ok(s)
        } else {
            self.err(format!("must be one of {}", allowed.join(", ")))
        }
    }
}

/// Codings of a CodeableConcept; each coding needs a system and a code.
fn codings<'a>(cc: &At<'_, 'a>) -> Check<Vec<(&'a str, &'a str)>> {
    cc.req("coding")?
        .items()?
        .iter()
        .map(|c| Ok((c.req("system")?.str()?, c.req("code")?.str()?)))
        .collect()
}

/// A CodeableConcept with codings or at least text.
fn concept(cc: &At) -> Check<()> {
    match (cc.get("coding"), cc.get("text")) {
        (None, Some(t)) => t.str().map(drop),
        _ => codings(cc).map(drop),
    }
}

fn has_loinc(cc: &At, code: &str) -> bool {
    codings(cc).is_ok_and(|cs| cs.iter().any(|&(s, c)| s == LOINC && c == code))
}

/// The subject reference must name this person pseudonymously and carry no display
/// name (identity data lives in the vault, P4.8(3)).
fn subject(root: &At, field: &str, person: &PersonId) -> Check<()> {
    let r = root.req(field)?;
    if let Some(d) = r.get("display") {
        return d.err("identity data belongs in the identity vault, not in health records");
    }
    let reference = r.req("reference")?;
    if reference.str()? != format!("Patient/{person}") {
        return reference.err(format!(
            "must reference Patient/{person}, the record's person"
        ));
    }
    Ok(())
}

fn quantity(q: &At, kind: VitalKind) -> Check<()> {
    let (codes, units, min, max) = kind.quantity();
    let value = q.req("value")?;
    match value.v.as_f64() {
        Some(x) if (min..=max).contains(&x) => {}
        Some(_) => return value.err(format!("outside the plausible range {min}..={max}")),
        None => return value.err("must be a number"),
    }
    q.req("unit")?.one_of(units)?;
    q.req("system")?.one_of(&[UCUM])?;
    q.req("code")?.one_of(codes)?;
    Ok(())
}

const OBSERVATION_STATUS: &[&str] = &[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];

fn observation(root: &At, person: &PersonId) -> Check<()> {
    root.req("status")?.one_of(OBSERVATION_STATUS)?;
    concept(&root.req("code")?)?;
    subject(root, "subject", person)?;
    root.choice("effective", &["DateTime", "Period", "Instant", "Timing"])?;
    Ok(())
}

fn vital(root: &At, person: &PersonId) -> Check<VitalKind> {
    observation(root, person)?;
    let code = root.req("code")?;
    let Some(kind) = VitalKind::ALL
        .into_iter()
        .find(|k| has_loinc(&code, k.loinc()))
    else {
        return code.err_at(
            "coding",
            "needs a LOINC vital-sign code (8302-2, 29463-7, 85354-9, 8310-5, 59408-5, 55423-8)"
                .into(),
        );
    };
    if kind != VitalKind::BloodPressure {
        return quantity(&root.req("valueQuantity")?, kind).map(|()| kind);
    }
    let component = root.req("component")?;
    let components = component.items()?;
    for (loinc, name) in BP_COMPONENTS {
        let Some(c) = components
            .iter()
            .find(|c| c.get("code").is_some_and(|cc| has_loinc(&cc, loinc)))
        else {
            return root.err_at(
                "component",
                format!("missing the {name} component ({loinc})"),
            );
        };
        quantity(&c.req("valueQuantity")?, kind)?;
    }
    Ok(kind)
}

/// Validates `resource` as the FHIR R4 form of a `category` record about `person`.
/// Returns the vital-sign kind for vitals.
pub fn validate(
    category: Category,
    person: &PersonId,
    resource: &Value,
) -> Result<Option<VitalKind>, FhirError> {
    let top = At::root(
        Step::Root("resourceType"),
        resource.get("resourceType").unwrap_or(&Value::Null),
    );
    let rt = top.str()?;
    let allowed: &[&str] = match category {
        Category::Vitals | Category::DailyLifeLog | Category::MeByoIndex => &["Observation"],
        Category::CheckupResult => &["Observation", "DiagnosticReport"],
        Category::Allergy => &["AllergyIntolerance"],
        Category::IllnessHistory => &["Condition"],
        Category::MedicationHistory | Category::MedicationNotebook => &["MedicationStatement"],
        Category::SideEffect => &["AdverseEvent"],
        Category::Vaccination => &["Immunization"],
    };
    top.one_of(allowed)?;
    let root = At::root(Step::Root(rt), resource);
    if let Some(id) = root.get("id") {
        let s = id.str()?;
        if s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return id.err("must match [A-Za-z0-9\\-\\.]{1,64}");
        }
    }
    match (category, rt) {
        (Category::Vitals, _) => return vital(&root, person).map(Some),
        (_, "Observation") => observation(&root, person)?,
        (_, "DiagnosticReport") => {
            root.req("status")?.one_of(&[
                "registered",
                "partial",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "appended",
                "cancelled",
                "entered-in-error",
                "unknown",
            ])?;
            concept(&root.req("code")?)?;
            subject(&root, "subject", person)?;
        }
        (_, "AllergyIntolerance") => {
            concept(&root.req("code")?)?;
            subject(&root, "patient", person)?;
        }
        (_, "Condition") => {
            concept(&root.req("code")?)?;
            subject(&root, "subject", person)?;
        }
        (_, "MedicationStatement") => {
            root.req("status")?.one_of(&[
                "active",
                "completed",
                "entered-in-error",
                "intended",
                "stopped",
                "on-hold",
                "unknown",
                "not-taken",
            ])?;
            let med = root.choice("medication", &["CodeableConcept", "Reference"])?;
            if matches!(med.step, Step::Choice(_, "CodeableConcept")) {
                concept(&med)?;
            } else {
                med.req("reference")?.str()?;
            }
            subject(&root, "subject", person)?;
        }
        (_, "AdverseEvent") => {
            root.req("actuality")?.one_of(&["actual", "potential"])?;
            subject(&root, "subject", person)?;
        }
        (_, "Immunization") => {
            root.req("status")?
                .one_of(&["completed", "entered-in-error", "not-done"])?;
            concept(&root.req("vaccineCode")?)?;
            subject(&root, "patient", person)?;
            root.choice("occurrence", &["DateTime", "String"])?;
        }
        _ => unreachable!("resource types are limited per category above"),
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p() -> PersonId {
        PersonId::new("p1").unwrap()
    }

    fn bp(sys_unit: &str, dia_unit: &str) -> Value {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-01-01T09:00:00+09:00",
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                 "valueQuantity": {"value": 128, "unit": sys_unit, "system": UCUM, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                 "valueQuantity": {"value": 82, "unit": dia_unit, "system": UCUM, "code": "mm[Hg]"}}
            ]
        })
    }

    fn simple(code: &str, value: f64, unit: &str) -> Value {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-01-01",
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}
        })
    }

    fn path(r: Result<Option<VitalKind>, FhirError>) -> String {
        r.unwrap_err().path
    }

    #[test]
    fn vitals_by_loinc_with_ucum_units() {
        let v = |c, x, u| validate(Category::Vitals, &p(), &simple(c, x, u));
        assert_eq!(
            validate(Category::Vitals, &p(), &bp("mm[Hg]", "mmHg")),
            Ok(Some(VitalKind::BloodPressure))
        );
        assert_eq!(v("29463-7", 61.5, "kg"), Ok(Some(VitalKind::Weight)));
        assert_eq!(v("8302-2", 170.0, "cm"), Ok(Some(VitalKind::Height)));
        assert_eq!(v("8310-5", 36.6, "Cel"), Ok(Some(VitalKind::Temperature)));
        assert_eq!(v("59408-5", 98.0, "%"), Ok(Some(VitalKind::SpO2)));
        assert_eq!(v("55423-8", 8000.0, "{steps}"), Ok(Some(VitalKind::Steps)));
        assert_eq!(
            path(v("29463-7", 61.5, "[lb_av]")),
            "Observation.valueQuantity.unit"
        );
        assert_eq!(
            path(v("59408-5", 120.0, "%")),
            "Observation.valueQuantity.value"
        );
        assert_eq!(path(v("1234-5", 1.0, "kg")), "Observation.code.coding");
    }

    #[test]
    fn errors_point_at_the_offending_element() {
        let r = validate(Category::Vitals, &p(), &bp("mm[Hg]", "kPa"));
        assert_eq!(
            r.unwrap_err().path,
            "Observation.component[1].valueQuantity.unit"
        );
        let mut no_dia = bp("mm[Hg]", "mm[Hg]");
        no_dia["component"].as_array_mut().unwrap().pop();
        assert_eq!(
            path(validate(Category::Vitals, &p(), &no_dia)),
            "Observation.component"
        );
        let mut no_time = bp("mm[Hg]", "mm[Hg]");
        no_time.as_object_mut().unwrap().remove("effectiveDateTime");
        assert_eq!(
            path(validate(Category::Vitals, &p(), &no_time)),
            "Observation.effective[x]"
        );
        assert_eq!(
            path(validate(Category::Allergy, &p(), &bp("mm[Hg]", "mm[Hg]"))),
            "resourceType"
        );
    }

    #[test]
    fn subject_is_pseudonymous_and_this_person_p4_8_3() {
        let mut named = bp("mm[Hg]", "mm[Hg]");
        named["subject"]["display"] = json!("山田 太郎");
        assert_eq!(
            path(validate(Category::Vitals, &p(), &named)),
            "Observation.subject.display"
        );
        let other = PersonId::new("p2").unwrap();
        assert_eq!(
            path(validate(Category::Vitals, &other, &bp("mm[Hg]", "mm[Hg]"))),
            "Observation.subject.reference"
        );
    }

    #[test]
    fn other_resources() {
        let ok = |c, v: Value| validate(c, &p(), &v);
        assert_eq!(
            ok(
                Category::Allergy,
                json!({"resourceType": "AllergyIntolerance", "code": {"text": "そば"}, "patient": {"reference": "Patient/p1"}})
            ),
            Ok(None)
        );
        assert_eq!(
            ok(
                Category::IllnessHistory,
                json!({"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]}, "subject": {"reference": "Patient/p1"}})
            ),
            Ok(None)
        );
        let med = json!({"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": {"text": "メトホルミン"}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(ok(Category::MedicationNotebook, med.clone()), Ok(None));
        let mut bad = med;
        bad["status"] = json!("taking");
        assert_eq!(
            path(ok(Category::MedicationHistory, bad)),
            "MedicationStatement.status"
        );
        let imm = json!({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "influenza"}, "patient": {"reference": "Patient/p1"}});
        assert_eq!(
            path(ok(Category::Vaccination, imm)),
            "Immunization.occurrence[x]"
        );
        let ae = json!({"resourceType": "AdverseEvent", "subject": {"reference": "Patient/p1"}});
        assert_eq!(path(ok(Category::SideEffect, ae)), "AdverseEvent.actuality");
        let cond = json!({"resourceType": "Condition", "code": {"coding": [{"code": "E11"}]}, "subject": {"reference": "Patient/p1"}});
        assert_eq!(
            path(ok(Category::IllnessHistory, cond)),
            "Condition.code.coding[0].system"
        );
        // A chosen medication[x] variant is named in full and checked as what it
        // is; two variants at once are refused at the choice.
        for (medication, expected) in [
            (
                json!({"medicationCodeableConcept": {"coding": [{"system": "urn:oid:1.2.392.100495.20.2.74"}]}}),
                "MedicationStatement.medicationCodeableConcept.coding[0].code",
            ),
            (
                json!({"medicationReference": {"display": "x"}}),
                "MedicationStatement.medicationReference.reference",
            ),
            (
                json!({"medicationReference": {"reference": "Medication/m1"}, "medicationCodeableConcept": {"text": "x"}}),
                "MedicationStatement.medication[x]",
            ),
        ] {
            let mut m = json!({"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"}});
            m.as_object_mut()
                .unwrap()
                .extend(medication.as_object().unwrap().clone());
            assert_eq!(path(ok(Category::MedicationHistory, m)), expected);
        }
    }
}
