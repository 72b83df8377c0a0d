//! The FHIR R4 elements the platform accepts, per resource and datatype, and the
//! checks of R4's primitive types (`date`, `dateTime`, `instant`, `time`, `code`…).
//!
//! A resource is walked whole: every key must be an element of its resource or
//! datatype here, and every value of its type. An element the platform does not
//! know is refused rather than stored unread (P2(1): a record holds what its
//! submitter meant, and a misspelt or foreign element would silently be kept
//! as if it meant something). The tables follow R4 (4.0.1); `contained`,
//! `implicitRules` and `modifierExtension` are refused on purpose
//! ([`NOT_ACCEPTED`]).

/// Types of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
    String,
    Code,
    Uri,
    Id,
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    Date,
    DateTime,
    Instant,
    Time,
    Base64,
    /// A resource in a Bundle entry: checked on its own by the caller.
    Resource,
    Complex(Dt),
}

impl T {
    fn primitive(self) -> bool {
        !matches!(self, T::Complex(_) | T::Resource)
    }
}

/// Complex datatypes and the backbone elements of the supported resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dt {
    /// An element's own base (`id`, `extension`): the `_name` of a primitive.
    Element,
    Extension,
    Coding,
    CodeableConcept,
    Reference,
    Identifier,
    Quantity,
    Period,
    Range,
    Ratio,
    SampledData,
    Annotation,
    Attachment,
    Timing,
    TimingRepeat,
    Dosage,
    DoseAndRate,
    Meta,
    Narrative,
    ObservationReferenceRange,
    ObservationComponent,
    ReportMedia,
    AllergyReaction,
    ConditionStage,
    ConditionEvidence,
    Performer,
    DispenseSubstitution,
    SuspectEntity,
    Causality,
    ImmunizationEducation,
    ImmunizationReaction,
    ProtocolApplied,
    BundleEntry,
    BundleRequest,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    One(T),
    Many(T),
    /// `name[x]`: the variants' suffixes and types, at most one present.
    Choice(&'static [(&'static str, T)]),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct El {
    pub name: &'static str,
    pub shape: Shape,
}

const fn one(name: &'static str, t: T) -> El {
    El {
        name,
        shape: Shape::One(t),
    }
}
const fn many(name: &'static str, t: T) -> El {
    El {
        name,
        shape: Shape::Many(t),
    }
}
const fn choice(name: &'static str, variants: &'static [(&'static str, T)]) -> El {
    El {
        name,
        shape: Shape::Choice(variants),
    }
}

use Dt::*;
use T::Complex as C;

const CC: T = C(CodeableConcept);
const REF: T = C(Reference);
const QTY: T = C(Quantity);

/// Known R4 elements that are refused wherever they appear, and why.
pub(super) const NOT_ACCEPTED: &[(&str, &str)] = &[
    (
        "contained",
        "contained resources are not accepted: submit each resource on its own (a contained Patient would carry identity data, P4.8(3))",
    ),
    (
        "modifierExtension",
        "modifier extensions change the meaning of a resource in ways the platform cannot know, so it refuses them (R4 §2.4)",
    ),
    (
        "implicitRules",
        "resources built under implicit rules cannot be read safely without them",
    ),
];

/// The base of every element of a datatype or backbone element.
const ELEMENT: &[El] = &[one("id", T::String), many("extension", C(Extension))];

/// The base of every resource (DomainResource, R4 §2.36): `resourceType` is
/// checked by the caller.
pub(super) const DOMAIN_RESOURCE: &[El] = &[
    one("id", T::Id),
    one("meta", C(Meta)),
    one("language", T::Code),
    one("text", C(Narrative)),
    many("extension", C(Extension)),
];

/// The value types an extension may carry here.
const EXTENSION_VALUES: &[(&str, T)] = &[
    ("String", T::String),
    ("Code", T::Code),
    ("Uri", T::Uri),
    ("Boolean", T::Boolean),
    ("Integer", T::Integer),
    ("Decimal", T::Decimal),
    ("Date", T::Date),
    ("DateTime", T::DateTime),
    ("Instant", T::Instant),
    ("Time", T::Time),
    ("CodeableConcept", CC),
    ("Coding", C(Coding)),
    ("Quantity", QTY),
    ("Reference", REF),
    ("Identifier", C(Identifier)),
    ("Period", C(Period)),
];

/// The elements of a datatype or backbone element, after its base ([`ELEMENT`]).
pub(super) fn datatype(dt: Dt) -> &'static [El] {
    match dt {
        Element => const { &[] },
        Extension => const { &[one("url", T::Uri), choice("value", EXTENSION_VALUES)] },
        Coding => {
            const {
                &[
                    one("system", T::Uri),
                    one("version", T::String),
                    one("code", T::Code),
                    one("display", T::String),
                    one("userSelected", T::Boolean),
                ]
            }
        }
        CodeableConcept => const { &[many("coding", C(Coding)), one("text", T::String)] },
        Reference => {
            const {
                &[
                    one("reference", T::String),
                    one("type", T::Uri),
                    one("identifier", C(Identifier)),
                    one("display", T::String),
                ]
            }
        }
        Identifier => {
            const {
                &[
                    one("use", T::Code),
                    one("type", CC),
                    one("system", T::Uri),
                    one("value", T::String),
                    one("period", C(Period)),
                    one("assigner", REF),
                ]
            }
        }
        Quantity => {
            const {
                &[
                    one("value", T::Decimal),
                    one("comparator", T::Code),
                    one("unit", T::String),
                    one("system", T::Uri),
                    one("code", T::Code),
                ]
            }
        }
        Period => const { &[one("start", T::DateTime), one("end", T::DateTime)] },
        Range => const { &[one("low", QTY), one("high", QTY)] },
        Ratio => const { &[one("numerator", QTY), one("denominator", QTY)] },
        SampledData => {
            const {
                &[
                    one("origin", QTY),
                    one("period", T::Decimal),
                    one("factor", T::Decimal),
                    one("lowerLimit", T::Decimal),
                    one("upperLimit", T::Decimal),
                    one("dimensions", T::PositiveInt),
                    one("data", T::String),
                ]
            }
        }
        Annotation => {
            const {
                &[
                    choice("author", &[("Reference", REF), ("String", T::String)]),
                    one("time", T::DateTime),
                    one("text", T::String),
                ]
            }
        }
        Attachment => {
            const {
                &[
                    one("contentType", T::Code),
                    one("language", T::Code),
                    one("data", T::Base64),
                    one("url", T::Uri),
                    one("size", T::UnsignedInt),
                    one("hash", T::Base64),
                    one("title", T::String),
                    one("creation", T::DateTime),
                ]
            }
        }
        Timing => {
            const {
                &[
                    many("event", T::DateTime),
                    one("repeat", C(TimingRepeat)),
                    one("code", CC),
                ]
            }
        }
        TimingRepeat => {
            const {
                &[
                    choice(
                        "bounds",
                        &[
                            ("Duration", QTY),
                            ("Range", C(Range)),
                            ("Period", C(Period)),
                        ],
                    ),
                    one("count", T::PositiveInt),
                    one("countMax", T::PositiveInt),
                    one("duration", T::Decimal),
                    one("durationMax", T::Decimal),
                    one("durationUnit", T::Code),
                    one("frequency", T::PositiveInt),
                    one("frequencyMax", T::PositiveInt),
                    one("period", T::Decimal),
                    one("periodMax", T::Decimal),
                    one("periodUnit", T::Code),
                    many("dayOfWeek", T::Code),
                    many("timeOfDay", T::Time),
                    many("when", T::Code),
                    one("offset", T::UnsignedInt),
                ]
            }
        }
        Dosage => {
            const {
                &[
                    one("sequence", T::Integer),
                    one("text", T::String),
                    many("additionalInstruction", CC),
                    one("patientInstruction", T::String),
                    one("timing", C(Timing)),
                    choice(
                        "asNeeded",
                        &[("Boolean", T::Boolean), ("CodeableConcept", CC)],
                    ),
                    one("site", CC),
                    one("route", CC),
                    one("method", CC),
                    many("doseAndRate", C(DoseAndRate)),
                    one("maxDosePerPeriod", C(Ratio)),
                    one("maxDosePerAdministration", QTY),
                    one("maxDosePerLifetime", QTY),
                ]
            }
        }
        DoseAndRate => {
            const {
                &[
                    one("type", CC),
                    choice("dose", &[("Range", C(Range)), ("Quantity", QTY)]),
                    choice(
                        "rate",
                        &[("Ratio", C(Ratio)), ("Range", C(Range)), ("Quantity", QTY)],
                    ),
                ]
            }
        }
        Meta => {
            const {
                &[
                    one("versionId", T::Id),
                    one("lastUpdated", T::Instant),
                    one("source", T::Uri),
                    many("profile", T::Uri),
                    many("security", C(Coding)),
                    many("tag", C(Coding)),
                ]
            }
        }
        Narrative => const { &[one("status", T::Code), one("div", T::String)] },
        ObservationReferenceRange => {
            const {
                &[
                    one("low", QTY),
                    one("high", QTY),
                    one("type", CC),
                    many("appliesTo", CC),
                    one("age", C(Range)),
                    one("text", T::String),
                ]
            }
        }
        ObservationComponent => {
            const {
                &[
                    one("code", CC),
                    choice("value", OBSERVATION_VALUES),
                    one("dataAbsentReason", CC),
                    many("interpretation", CC),
                    many("referenceRange", C(ObservationReferenceRange)),
                ]
            }
        }
        ReportMedia => const { &[one("comment", T::String), one("link", REF)] },
        AllergyReaction => {
            const {
                &[
                    one("substance", CC),
                    many("manifestation", CC),
                    one("description", T::String),
                    one("onset", T::DateTime),
                    one("severity", T::Code),
                    one("exposureRoute", CC),
                    many("note", C(Annotation)),
                ]
            }
        }
        ConditionStage => const { &[one("summary", CC), many("assessment", REF), one("type", CC)] },
        ConditionEvidence => const { &[many("code", CC), many("detail", REF)] },
        Performer => const { &[one("function", CC), one("actor", REF)] },
        DispenseSubstitution => {
            const {
                &[
                    one("wasSubstituted", T::Boolean),
                    one("type", CC),
                    many("reason", CC),
                    many("responsibleParty", REF),
                ]
            }
        }
        SuspectEntity => const { &[one("instance", REF), many("causality", C(Causality))] },
        Causality => {
            const {
                &[
                    one("assessment", CC),
                    one("productRelatedness", T::String),
                    one("author", REF),
                    one("method", CC),
                ]
            }
        }
        ImmunizationEducation => {
            const {
                &[
                    one("documentType", T::String),
                    one("reference", T::Uri),
                    one("publicationDate", T::DateTime),
                    one("presentationDate", T::DateTime),
                ]
            }
        }
        ImmunizationReaction => {
            const {
                &[
                    one("date", T::DateTime),
                    one("detail", REF),
                    one("reported", T::Boolean),
                ]
            }
        }
        ProtocolApplied => {
            const {
                &[
                    one("series", T::String),
                    one("authority", REF),
                    many("targetDisease", CC),
                    choice(
                        "doseNumber",
                        &[("PositiveInt", T::PositiveInt), ("String", T::String)],
                    ),
                    choice(
                        "seriesDoses",
                        &[("PositiveInt", T::PositiveInt), ("String", T::String)],
                    ),
                ]
            }
        }
        BundleEntry => {
            const {
                &[
                    one("fullUrl", T::Uri),
                    one("resource", T::Resource),
                    one("request", C(BundleRequest)),
                ]
            }
        }
        BundleRequest => const { &[one("method", T::Code), one("url", T::Uri)] },
    }
}

/// A Bundle (a Resource, not a DomainResource: no text, no extensions). Only
/// what a submission of several resources needs: no links, totals, searches,
/// responses or signatures.
pub(super) const BUNDLE: &[El] = &[
    one("id", T::Id),
    one("meta", C(Meta)),
    one("language", T::Code),
    one("identifier", C(Identifier)),
    one("type", T::Code),
    one("timestamp", T::Instant),
    many("entry", C(BundleEntry)),
];

const OBSERVATION_VALUES: &[(&str, T)] = &[
    ("Quantity", QTY),
    ("CodeableConcept", CC),
    ("String", T::String),
    ("Boolean", T::Boolean),
    ("Integer", T::Integer),
    ("Range", C(Range)),
    ("Ratio", C(Ratio)),
    ("SampledData", C(SampledData)),
    ("Time", T::Time),
    ("DateTime", T::DateTime),
    ("Period", C(Period)),
];

/// Onset and abatement of AllergyIntolerance and Condition (`Age` is a Quantity).
const ONSET: &[(&str, T)] = &[
    ("DateTime", T::DateTime),
    ("Age", QTY),
    ("Period", C(Period)),
    ("Range", C(Range)),
    ("String", T::String),
];

const MEDICATION: &[(&str, T)] = &[("CodeableConcept", CC), ("Reference", REF)];

/// The elements of each supported resource type, after [`DOMAIN_RESOURCE`].
pub(super) fn resource(rt: &str) -> Option<&'static [El]> {
    Some(match rt {
        "Observation" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    many("basedOn", REF),
                    many("partOf", REF),
                    one("status", T::Code),
                    many("category", CC),
                    one("code", CC),
                    one("subject", REF),
                    many("focus", REF),
                    one("encounter", REF),
                    choice(
                        "effective",
                        &[
                            ("DateTime", T::DateTime),
                            ("Period", C(Period)),
                            ("Timing", C(Timing)),
                            ("Instant", T::Instant),
                        ],
                    ),
                    one("issued", T::Instant),
                    many("performer", REF),
                    choice("value", OBSERVATION_VALUES),
                    one("dataAbsentReason", CC),
                    many("interpretation", CC),
                    many("note", C(Annotation)),
                    one("bodySite", CC),
                    one("method", CC),
                    one("specimen", REF),
                    one("device", REF),
                    many("referenceRange", C(ObservationReferenceRange)),
                    many("hasMember", REF),
                    many("derivedFrom", REF),
                    many("component", C(ObservationComponent)),
                ]
            }
        }
        "DiagnosticReport" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    many("basedOn", REF),
                    one("status", T::Code),
                    many("category", CC),
                    one("code", CC),
                    one("subject", REF),
                    one("encounter", REF),
                    choice(
                        "effective",
                        &[("DateTime", T::DateTime), ("Period", C(Period))],
                    ),
                    one("issued", T::Instant),
                    many("performer", REF),
                    many("resultsInterpreter", REF),
                    many("specimen", REF),
                    many("result", REF),
                    many("imagingStudy", REF),
                    many("media", C(ReportMedia)),
                    one("conclusion", T::String),
                    many("conclusionCode", CC),
                    many("presentedForm", C(Attachment)),
                ]
            }
        }
        "AllergyIntolerance" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    one("clinicalStatus", CC),
                    one("verificationStatus", CC),
                    one("type", T::Code),
                    many("category", T::Code),
                    one("criticality", T::Code),
                    one("code", CC),
                    one("patient", REF),
                    one("encounter", REF),
                    choice("onset", ONSET),
                    one("recordedDate", T::DateTime),
                    one("recorder", REF),
                    one("asserter", REF),
                    one("lastOccurrence", T::DateTime),
                    many("note", C(Annotation)),
                    many("reaction", C(AllergyReaction)),
                ]
            }
        }
        "Condition" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    one("clinicalStatus", CC),
                    one("verificationStatus", CC),
                    many("category", CC),
                    one("severity", CC),
                    one("code", CC),
                    many("bodySite", CC),
                    one("subject", REF),
                    one("encounter", REF),
                    choice("onset", ONSET),
                    choice("abatement", ONSET),
                    one("recordedDate", T::DateTime),
                    one("recorder", REF),
                    one("asserter", REF),
                    many("stage", C(ConditionStage)),
                    many("evidence", C(ConditionEvidence)),
                    many("note", C(Annotation)),
                ]
            }
        }
        "MedicationStatement" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    many("basedOn", REF),
                    many("partOf", REF),
                    one("status", T::Code),
                    many("statusReason", CC),
                    one("category", CC),
                    choice("medication", MEDICATION),
                    one("subject", REF),
                    one("context", REF),
                    choice(
                        "effective",
                        &[("DateTime", T::DateTime), ("Period", C(Period))],
                    ),
                    one("dateAsserted", T::DateTime),
                    one("informationSource", REF),
                    many("derivedFrom", REF),
                    many("reasonCode", CC),
                    many("reasonReference", REF),
                    many("note", C(Annotation)),
                    many("dosage", C(Dosage)),
                ]
            }
        }
        "MedicationDispense" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    many("partOf", REF),
                    one("status", T::Code),
                    choice(
                        "statusReason",
                        &[("CodeableConcept", CC), ("Reference", REF)],
                    ),
                    one("category", CC),
                    choice("medication", MEDICATION),
                    one("subject", REF),
                    one("context", REF),
                    many("supportingInformation", REF),
                    many("performer", C(Performer)),
                    one("location", REF),
                    many("authorizingPrescription", REF),
                    one("type", CC),
                    one("quantity", QTY),
                    one("daysSupply", QTY),
                    one("whenPrepared", T::DateTime),
                    one("whenHandedOver", T::DateTime),
                    one("destination", REF),
                    many("receiver", REF),
                    many("note", C(Annotation)),
                    many("dosageInstruction", C(Dosage)),
                    one("substitution", C(DispenseSubstitution)),
                    many("detectedIssue", REF),
                    many("eventHistory", REF),
                ]
            }
        }
        "AdverseEvent" => {
            const {
                &[
                    one("identifier", C(Identifier)),
                    one("actuality", T::Code),
                    many("category", CC),
                    one("event", CC),
                    one("subject", REF),
                    one("encounter", REF),
                    one("date", T::DateTime),
                    one("detected", T::DateTime),
                    one("recordedDate", T::DateTime),
                    many("resultingCondition", REF),
                    one("location", REF),
                    one("seriousness", CC),
                    one("severity", CC),
                    one("outcome", CC),
                    one("recorder", REF),
                    many("contributor", REF),
                    many("suspectEntity", C(SuspectEntity)),
                    many("subjectMedicalHistory", REF),
                    many("referenceDocument", REF),
                    many("study", REF),
                ]
            }
        }
        "Immunization" => {
            const {
                &[
                    many("identifier", C(Identifier)),
                    one("status", T::Code),
                    one("statusReason", CC),
                    one("vaccineCode", CC),
                    one("patient", REF),
                    one("encounter", REF),
                    choice(
                        "occurrence",
                        &[("DateTime", T::DateTime), ("String", T::String)],
                    ),
                    one("recorded", T::DateTime),
                    one("primarySource", T::Boolean),
                    one("reportOrigin", CC),
                    one("location", REF),
                    one("manufacturer", REF),
                    one("lotNumber", T::String),
                    one("expirationDate", T::Date),
                    one("site", CC),
                    one("route", CC),
                    one("doseQuantity", QTY),
                    many("performer", C(Performer)),
                    many("note", C(Annotation)),
                    many("reasonCode", CC),
                    many("reasonReference", REF),
                    one("isSubpotent", T::Boolean),
                    many("subpotentReason", CC),
                    many("education", C(ImmunizationEducation)),
                    many("programEligibility", CC),
                    one("fundingSource", CC),
                    many("reaction", C(ImmunizationReaction)),
                    many("protocolApplied", C(ProtocolApplied)),
                ]
            }
        }
        _ => return None,
    })
}

/// The shape of `key` among `tables`, with the variant's full name for a choice.
pub(super) fn find(tables: &[&'static [El]], key: &str) -> Option<(&'static El, Shape)> {
    for table in tables {
        for el in table.iter() {
            match el.shape {
                Shape::Choice(variants) => {
                    if let Some(suffix) = key.strip_prefix(el.name)
                        && let Some(&(_, t)) = variants.iter().find(|(v, _)| *v == suffix)
                    {
                        return Some((el, Shape::One(t)));
                    }
                }
                shape if el.name == key => return Some((el, shape)),
                _ => {}
            }
        }
    }
    None
}

/// The tables a complex value of `dt` is read with.
pub(super) fn complex(dt: Dt) -> [&'static [El]; 2] {
    [ELEMENT, datatype(dt)]
}

/// Whether `key` is a primitive element of the tables (so `_key` may carry its
/// id and extensions, R4 §2.6.2).
pub(super) fn is_primitive(tables: &[&'static [El]], key: &str) -> bool {
    matches!(find(tables, key), Some((_, Shape::One(t) | Shape::Many(t))) if t.primitive())
}

/// Whether `key` is the name of an element the platform knows anywhere: only
/// such a name is repeated in an error (a key the platform does not know is
/// the submitter's text, and may be anything, a name included: P4.8(3)).
pub(super) fn known_name(key: &str) -> bool {
    const RESOURCES: [&str; 8] = [
        "Observation",
        "DiagnosticReport",
        "AllergyIntolerance",
        "Condition",
        "MedicationStatement",
        "MedicationDispense",
        "AdverseEvent",
        "Immunization",
    ];
    const DATATYPES: [Dt; 34] = [
        Element,
        Extension,
        Coding,
        CodeableConcept,
        Reference,
        Identifier,
        Quantity,
        Period,
        Range,
        Ratio,
        SampledData,
        Annotation,
        Attachment,
        Timing,
        TimingRepeat,
        Dosage,
        DoseAndRate,
        Meta,
        Narrative,
        ObservationReferenceRange,
        ObservationComponent,
        ReportMedia,
        AllergyReaction,
        ConditionStage,
        ConditionEvidence,
        Performer,
        DispenseSubstitution,
        SuspectEntity,
        Causality,
        ImmunizationEducation,
        ImmunizationReaction,
        ProtocolApplied,
        BundleEntry,
        BundleRequest,
    ];
    let mut tables: Vec<&'static [El]> = vec![ELEMENT, DOMAIN_RESOURCE, BUNDLE];
    tables.extend(RESOURCES.iter().filter_map(|r| resource(r)));
    tables.extend(DATATYPES.iter().map(|d| datatype(*d)));
    find(&tables, key).is_some() || NOT_ACCEPTED.iter().any(|(n, _)| *n == key)
}

// ---- primitive types (R4 §2.24.0.1) ---------------------------------------------

/// A cursor over ASCII text.
struct Cur<'s> {
    b: &'s [u8],
    i: usize,
}

impl Cur<'_> {
    fn new(s: &str) -> Cur<'_> {
        Cur {
            b: s.as_bytes(),
            i: 0,
        }
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn lit(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        if hit {
            self.i += 1;
        }
        hit
    }
    /// Exactly `n` digits.
    fn num(&mut self, n: usize) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    }
    /// One or more digits.
    fn fraction(&mut self) -> Option<()> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (year 0001–9999, a real day); the number of
/// parts read. `full` needs all three.
fn date(c: &mut Cur, full: bool) -> Option<u8> {
    let y = c.num(4).filter(|y| *y > 0)?;
    if !c.lit(b'-') {
        return (!full).then_some(1);
    }
    let m = c.num(2).filter(|m| (1..=12).contains(m))?;
    if !c.lit(b'-') {
        return (!full).then_some(2);
    }
    c.num(2).filter(|d| (1..=days_in(y, m)).contains(d))?;
    Some(3)
}

/// `hh:mm:ss(.s+)?` (a leap second 60 allowed, as R4's pattern does).
fn time(c: &mut Cur) -> Option<()> {
    c.num(2).filter(|h| *h <= 23)?;
    c.lit(b':').then_some(())?;
    c.num(2).filter(|m| *m <= 59)?;
    c.lit(b':').then_some(())?;
    c.num(2).filter(|s| *s <= 60)?;
    if c.lit(b'.') {
        c.fraction()?;
    }
    Some(())
}

/// `Z` or `±hh:mm` from -13:59 to +14:00.
fn zone(c: &mut Cur) -> Option<()> {
    if c.lit(b'Z') {
        return Some(());
    }
    (c.lit(b'+') || c.lit(b'-')).then_some(())?;
    let h = c.num(2)?;
    c.lit(b':').then_some(())?;
    let m = c.num(2)?;
    (h <= 13 && m <= 59 || h == 14 && m == 0).then_some(())
}

/// R4 `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, no time.
pub(super) fn is_date(s: &str) -> bool {
    let mut c = Cur::new(s);
    date(&mut c, false).is_some() && c.done()
}

/// R4 `dateTime`: a `date`, or a full date with a time and a timezone.
pub(super) fn is_date_time(s: &str) -> bool {
    let mut c = Cur::new(s);
    let Some(parts) = date(&mut c, false) else {
        return false;
    };
    c.done()
        || parts == 3 && c.lit(b'T') && time(&mut c).is_some() && zone(&mut c).is_some() && c.done()
}

/// R4 `instant`: a full date, a time to the second and a timezone.
pub(super) fn is_instant(s: &str) -> bool {
    let mut c = Cur::new(s);
    date(&mut c, true).is_some()
        && c.lit(b'T')
        && time(&mut c).is_some()
        && zone(&mut c).is_some()
        && c.done()
}

/// R4 `time`: `hh:mm:ss`, no timezone.
pub(super) fn is_time(s: &str) -> bool {
    let mut c = Cur::new(s);
    time(&mut c).is_some() && c.done()
}

/// R4 `code`: no leading or trailing whitespace, words split by single spaces.
pub(super) fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.split(' ')
            .all(|w| !w.is_empty() && !w.contains(char::is_whitespace))
}

/// R4 `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub(super) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// R4 `base64Binary`: groups of four base64 characters, whitespace allowed.
pub(super) fn is_base64(s: &str) -> bool {
    let chars: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    !chars.is_empty()
        && chars.len().is_multiple_of(4)
        && chars
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}
