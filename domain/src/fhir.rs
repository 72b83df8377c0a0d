//! A small FHIR R4 validator for the resources records accept. It checks what the
//! platform relies on (resource type per category, subject, codes, UCUM units) and
//! points at the offending element, e.g. `Observation.component[1].valueQuantity.unit`.
//! Subjects are pseudonymous references only: names belong to the vault (P4.8(3)).
//!
//! Before those checks every element is walked against R4's definitions
//! ([`elements`]): an element R4 does not define there, or a value not of its
//! type (a `dateTime` of `2026/11/20 07:35`, a time without a timezone, 30
//! February), refuses the resource (P2(1): the record keeps what was meant, or
//! nothing). Errors name the element's path, and never repeat text of the
//! resource: an unknown element's name is repeated only if the platform itself
//! knows it as an element name (P4.8(3)).
//!
//! **Subject.** A record belongs to the person its submission names. Every
//! accepted resource must reference that person as `Patient/<person>` in its
//! `subject` (or `patient` for AllergyIntolerance and Immunization), with no
//! display name. A resource without one is refused, as is one naming anyone
//! else: the platform never guesses whose data a resource is, and never
//! rewrites the copy it keeps (P5.1).

mod elements;

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
    let rt = resource_type(category, &top)?;
    check_resource(category, person, rt, &At::root(Step::Root(rt), resource))
}

/// The resource type, if `category` accepts it: always one of the platform's
/// own names, so that it may be repeated in paths.
fn resource_type(category: Category, top: &At) -> Check<&'static str> {
    let allowed: &[&str] = match category {
        Category::Vitals | Category::DailyLifeLog | Category::MeByoIndex => &["Observation"],
        Category::CheckupResult => &["Observation", "DiagnosticReport"],
        Category::Allergy => &["AllergyIntolerance"],
        Category::IllnessHistory => &["Condition"],
        // A dispense (a pharmacy's record of what it handed over) is medication
        // history as a statement is: the same categories accept both.
        Category::MedicationHistory | Category::MedicationNotebook => {
            &["MedicationStatement", "MedicationDispense"]
        }
        Category::SideEffect => &["AdverseEvent"],
        Category::Vaccination => &["Immunization"],
    };
    let rt = top.one_of(allowed)?;
    Ok(allowed
        .iter()
        .copied()
        .find(|a| *a == rt)
        .unwrap_or_default())
}

/// Checks a resource of type `rt` at `root` (the resource itself, or a Bundle
/// entry's).
fn check_resource(
    category: Category,
    person: &PersonId,
    rt: &str,
    root: &At,
) -> Result<Option<VitalKind>, FhirError> {
    let Some(table) = elements::resource(rt) else {
        return root.err("resource type not supported");
    };
    walk(root, &[elements::DOMAIN_RESOURCE, table], true)?;
    let root = *root;
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
            medication(&root)?;
            subject(&root, "subject", person)?;
        }
        (_, "MedicationDispense") => {
            root.req("status")?.one_of(&[
                "preparation",
                "in-progress",
                "cancelled",
                "on-hold",
                "completed",
                "entered-in-error",
                "stopped",
                "declined",
                "unknown",
            ])?;
            medication(&root)?;
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
        _ => return root.err("resource type not supported"),
    }
    Ok(None)
}

/// `medication[x]`: a CodeableConcept or a Reference.
fn medication(root: &At) -> Check<()> {
    let med = root.choice("medication", &["CodeableConcept", "Reference"])?;
    if matches!(med.step, Step::Choice(_, "CodeableConcept")) {
        concept(&med)
    } else {
        med.req("reference")?.str().map(drop)
    }
}

// ---- the element walk (R4 element definitions, `elements`) -----------------------

use elements::{Dt, NOT_ACCEPTED, Shape, T};

/// Every element of the object at `at`, read with `tables`, is defined there and
/// of its type; at most one variant of each `choice[x]`. `resource`: the object
/// is a resource, whose `resourceType` the caller checked.
fn walk(at: &At, tables: &[&'static [elements::El]], resource: bool) -> Check<()> {
    let Some(obj) = at.v.as_object() else {
        return at.err("must be an object");
    };
    if obj.is_empty() {
        return at.err("must not be empty (R4: an element has a value or children)");
    }
    // The choice elements seen so far (no table has more than a few).
    let mut chosen = [""; 8];
    let mut n_chosen = 0;
    for (key, v) in obj {
        if resource && key == "resourceType" {
            continue;
        }
        let child = at.child(Step::Key(key), v);
        // `_name`: the id and extensions of primitive `name` (R4 §2.6.2).
        if let Some(name) = key.strip_prefix('_')
            && elements::is_primitive(tables, name)
        {
            match v.as_array() {
                Some(list) => {
                    for (i, x) in list.iter().enumerate() {
                        if !x.is_null() {
                            complex(&child.child(Step::Index(i), x), Dt::Element)?;
                        }
                    }
                }
                None => complex(&child, Dt::Element)?,
            }
            continue;
        }
        let found = elements::find(tables, key);
        if let Some((el, _)) = found
            && matches!(el.shape, Shape::Choice(_))
        {
            if chosen[..n_chosen].contains(&el.name) {
                return at.err_at(
                    &format!("{}[x]", el.name),
                    "at most one variant of a choice element".into(),
                );
            }
            if n_chosen < chosen.len() {
                chosen[n_chosen] = el.name;
                n_chosen += 1;
            }
        }
        match found {
            Some((_, Shape::One(t))) => value(&child, t)?,
            Some((_, Shape::Many(t))) => {
                for item in child.items()? {
                    value(&item, t)?;
                }
            }
            Some((_, Shape::Choice(_))) | None => return unknown(at, key),
        }
    }
    Ok(())
}

/// An element the tables do not define. Its name is repeated only when it is one
/// the platform knows (then it is the platform's word, not the submitter's).
fn unknown<R>(at: &At, key: &str) -> Check<R> {
    if let Some((name, why)) = NOT_ACCEPTED.iter().find(|(n, _)| *n == key) {
        return at.err_at(name, (*why).into());
    }
    if elements::known_name(key) {
        return at.err_at(key, "is not an element here in FHIR R4; refused".into());
    }
    at.err(
        "holds an element FHIR R4 does not define here; unknown elements are refused \
         (its name is not repeated: the platform never echoes submitted text)",
    )
}

fn complex(at: &At, dt: Dt) -> Check<()> {
    walk(at, &elements::complex(dt), false)?;
    if dt == Dt::Extension {
        at.req("url")?;
        let values =
            at.v.as_object()
                .map_or(0, |o| o.keys().filter(|k| k.starts_with("value")).count());
        if (values == 1) == at.get("extension").is_some() {
            return at.err("an extension has either one value[x] or nested extensions");
        }
    }
    Ok(())
}

/// A value of type `t`.
fn value(at: &At, t: T) -> Check<()> {
    let int = |lo: i64| {
        at.v.as_i64()
            .is_some_and(|n| (lo..=i64::from(i32::MAX)).contains(&n))
    };
    let ok = match t {
        T::Complex(dt) => return complex(at, dt),
        T::Resource => return Ok(()),
        T::Boolean => at.v.is_boolean(),
        T::Integer => int(i64::from(i32::MIN)),
        T::PositiveInt => int(1),
        T::UnsignedInt => int(0),
        T::Decimal => at.v.is_number(),
        _ => {
            let Some(s) = at.v.as_str() else {
                return at.err("must be a string");
            };
            match t {
                T::Code => elements::is_code(s),
                T::Uri => !s.is_empty() && !s.contains(char::is_whitespace),
                T::Id => elements::is_id(s),
                T::Date => elements::is_date(s),
                T::DateTime => elements::is_date_time(s),
                T::Instant => elements::is_instant(s),
                T::Time => elements::is_time(s),
                T::Base64 => elements::is_base64(s),
                _ => !s.trim().is_empty(),
            }
        }
    };
    if ok { Ok(()) } else { at.err(expected(t)) }
}

fn expected(t: T) -> &'static str {
    match t {
        T::String => "must be a non-empty string",
        T::Code => "must be an R4 code: no leading, trailing or repeated whitespace",
        T::Uri => "must be an R4 uri: non-empty, no whitespace",
        T::Id => "must match [A-Za-z0-9\\-\\.]{1,64}",
        T::Boolean => "must be true or false",
        T::Integer => "must be an integer (32-bit)",
        T::PositiveInt => "must be a positive integer",
        T::UnsignedInt => "must be a non-negative integer",
        T::Decimal => "must be a number",
        T::Date => "must be an R4 date: YYYY, YYYY-MM or YYYY-MM-DD, a real calendar day",
        T::DateTime => {
            "must be an R4 dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss(.s) \
             with a timezone (Z or +hh:mm), a real calendar day"
        }
        T::Instant => {
            "must be an R4 instant: YYYY-MM-DDThh:mm:ss(.s) with a timezone (Z or +hh:mm)"
        }
        T::Time => "must be an R4 time: hh:mm:ss(.s), no timezone",
        T::Base64 => "must be base64",
        T::Resource | T::Complex(_) => "must be an object",
    }
}

// ---- Bundle ------------------------------------------------------------------------

/// Most entries of one Bundle. A pharmacy's or clinic's bundle of one visit is a
/// few resources; the request's own limits (items, 512 KiB) bound the rest.
pub const MAX_BUNDLE_ENTRIES: usize = 100;

/// The Bundle types a submission may be: a set of resources (`collection`), or
/// one a FHIR client would POST (`transaction`, `batch`). Each entry becomes one
/// record; the bundle is stored all or nothing.
pub const BUNDLE_TYPES: &[&str] = &["collection", "transaction", "batch"];

/// The resources of a Bundle, each validated exactly as [`validate`] validates
/// one resource (paths such as `Bundle.entry[2].resource.status`). The first
/// error refuses the whole bundle. A transaction's or batch's entries each
/// carry `request` `POST <resourceType>` (a record is always a new entry;
/// corrections are not made through bundles); a collection's carry none.
pub fn bundle_entries<'a>(
    category: Category,
    person: &PersonId,
    bundle: &'a Value,
) -> Result<Vec<(&'a Value, Option<VitalKind>)>, FhirError> {
    let root = At::root(Step::Root("Bundle"), bundle);
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return root.err_at("resourceType", "must be Bundle".into());
    }
    walk(&root, &[elements::BUNDLE], true)?;
    let kind = root.req("type")?.one_of(BUNDLE_TYPES)?;
    let entry = root.req("entry")?;
    let entries = entry.items()?;
    if entries.len() > MAX_BUNDLE_ENTRIES {
        return entry.err(format!("at most {MAX_BUNDLE_ENTRIES} entries per Bundle"));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        let res = e.req("resource")?;
        let top = res
            .get("resourceType")
            .unwrap_or_else(|| res.child(Step::Key("resourceType"), &Value::Null));
        let rt = resource_type(category, &top)?;
        match (kind, e.get("request")) {
            ("collection", Some(r)) => return r.err("a collection's entries carry no request"),
            ("collection", None) => {}
            (_, None) => {
                return e.err_at("request", "is required in a transaction or batch".into());
            }
            (_, Some(r)) => {
                r.req("method")?.one_of(&["POST"])?;
                if r.req("url")?.str()? != rt {
                    return r.err_at("url", format!("must be {rt}, the entry's resource type"));
                }
            }
        }
        let vital = check_resource(category, person, rt, &res)?;
        out.push((res.v, vital));
    }
    Ok(out)
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
