//! FHIR R4 `AuditEvent` export of access records, following the IHE Basic Audit
//! Log Patterns (BALP) "PatientRead" and "PatientQuery" profiles.
//!
//! Pure: the caller decodes (decrypts) the `access.recorded` domain event and
//! passes it with the platform's identity; nothing here reads the ledger, a
//! clock or a key. Only pseudonymous ids leave: the patient is `Patient/<person
//! id>`, never a name (principle 3).
//!
//! Mapping, and why:
//! - `type` = audit-event-type `rest`; `subtype` = restful-interaction `read`
//!   (action `R`) or `search-type` (action `E`), as the caller's API did.
//!   An access names categories and a data period, which is a search by
//!   patient; a read of named records is the `Read` pattern.
//! - `outcome`: 0 when granted; 4 (minor failure) when refused, `outcomeDesc`
//!   citing the clause; 8 (serious failure) for refusals that point at misuse
//!   rather than a missing permission (see [`SERIOUS_REFUSALS`]). BALP fixes
//!   `outcome` = 0 in its profiles ("failures are recorded differently"), so
//!   `meta.profile` claims the BALP profile only for granted accesses.
//! - Agents: the client (the channel the request came through), the server (this
//!   platform) and the user (who asked, with role, purpose of use, and the
//!   consent relied on as `policy`). The access record has no IP address, so the
//!   client's `network` is the channel as a URI.
//! - `source.observer` = the platform; entity `patient` (type 1 Person, role 1
//!   Patient); plus the query (role 24, base64 of the request) or one data entity
//!   per category read (role 4 Domain Resource); `purposeOfEvent` from the
//!   stated purpose.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mebyo_domain::access::{AccessEvent, Outcome};
use mebyo_domain::{Actor, Category, Channel, Purpose, Timestamp};
use serde_json::{Value, json};

pub const BALP_PATIENT_READ: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead";
pub const BALP_PATIENT_QUERY: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery";

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";

/// Refusal codes that signal possible misuse (a credential reported lost or
/// revoked being presented, staff reaching for health content): outcome 8, so
/// that an audit consumer can alert on them apart from ordinary refusals.
pub const SERIOUS_REFUSALS: &[&str] = &["credential.lost", "credential.revoked", "access.staff"];

/// Bound on one NDJSON line; an AuditEvent is a few KiB.
pub const NDJSON_LINE_BYTES_MAX: usize = 1 << 20;

/// How the request reached the platform's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// A read of the records of the named categories (BALP PatientRead).
    Read,
    /// A search by patient, categories and period (BALP PatientQuery).
    Search,
}

/// Who records the event: this platform.
#[derive(Debug, Clone)]
pub struct Platform {
    /// Identifier of this platform instance (e.g. `mebyo.example.jp`).
    pub name: String,
    /// The enterprise or site (`source.site`).
    pub site: String,
    /// The server's network address (host name), for `agent[server].network`.
    pub address: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error("{0:?} is not a FHIR id ([A-Za-z0-9.-], 1..=64 characters)")]
    BadId(String),
    #[error("timestamp {0} µs is outside the range FHIR instants can express")]
    BadTime(i64),
    #[error("an NDJSON line of {0} bytes exceeds the limit")]
    LineTooLong(usize),
}

fn valid_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn instant(t: Timestamp) -> Result<String, ExportError> {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1000)
        .map_err(|_| ExportError::BadTime(t.0))?;
    dt.format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| ExportError::BadTime(t.0))
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::from("unknown"),
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn purpose_concept(p: Purpose) -> Value {
    // Every purpose a provider may state is provision of health care (TREAT);
    // the individual's own use is a patient request. The exact purpose travels
    // alongside in mebyo's own code system.
    let (code, display) = match p {
        Purpose::PersonalUse => ("PATRQT", "patient requested"),
        _ => ("TREAT", "treatment"),
    };
    json!({"coding": [
        coding(ACT_REASON, code, display),
        {"system": "urn:mebyo:purpose", "code": snake(&p)},
    ]})
}

fn identifier(system: &str, value: &str) -> Value {
    json!({"identifier": {"system": system, "value": value}})
}

/// The user agent: who asked, as a pseudonymous identifier with its role.
fn user_agent(actor: &Actor, purpose: Purpose, consent: Option<&str>) -> Value {
    let (who, role, alt) = match actor {
        Actor::Individual { person, credential } => (
            identifier("urn:mebyo:person", person.as_str()),
            "individual",
            Some(credential.as_str()),
        ),
        Actor::Provider {
            provider,
            credential,
        } => (
            identifier("urn:mebyo:provider", provider.as_str()),
            "provider",
            Some(credential.as_str()),
        ),
        Actor::Staff { staff } => (identifier("urn:mebyo:staff", staff.as_str()), "staff", None),
        Actor::Applicant => (
            identifier("urn:mebyo:actor", "applicant"),
            "applicant",
            None,
        ),
        Actor::System => (identifier("urn:mebyo:actor", "system"), "system", None),
    };
    let mut a = json!({
        "type": {"coding": [coding(PARTICIPATION, "IRCP", "information recipient")]},
        "role": [{"coding": [{"system": "urn:mebyo:actor-role", "code": role}]}],
        "who": who,
        "requestor": true,
        "purposeOfUse": [purpose_concept(purpose)],
    });
    if let Some(alt) = alt {
        // The connection information presented: which credential, not its secret.
        a["altId"] = json!(alt);
    }
    if let Some(c) = consent {
        a["policy"] = json!([format!("urn:mebyo:consent:{c}")]);
    }
    a
}

fn channel_uri(c: Channel) -> String {
    format!("urn:mebyo:channel:{}", snake(&c).replace('_', "-"))
}

/// Maps one `access.recorded` event to a FHIR R4 AuditEvent. `id` becomes the
/// resource id (e.g. the ledger event id in hex).
pub fn access_audit_event(
    event: &AccessEvent,
    id: &str,
    interaction: Interaction,
    platform: &Platform,
) -> Result<Value, ExportError> {
    if !valid_fhir_id(id) {
        return Err(ExportError::BadId(id.chars().take(80).collect()));
    }
    let AccessEvent::AccessRecorded {
        actor,
        person,
        categories,
        purpose,
        channel,
        period,
        consent,
        outcome,
        refusal_code,
        refusal_clause,
        at,
    } = event;
    let (subtype, action, profile, client_role, server_role) = match interaction {
        // DICOM roles follow BALP: for a read the client is the destination of
        // the data; for a query the client is the source of the query.
        Interaction::Read => (
            "read",
            "R",
            BALP_PATIENT_READ,
            ("110152", "Destination Role ID"),
            ("110153", "Source Role ID"),
        ),
        Interaction::Search => (
            "search-type",
            "E",
            BALP_PATIENT_QUERY,
            ("110153", "Source Role ID"),
            ("110152", "Destination Role ID"),
        ),
    };
    let (code, desc) = match outcome {
        Outcome::Granted => ("0", None),
        Outcome::Refused => {
            let code = refusal_code.as_deref().unwrap_or("unspecified");
            let clause = refusal_clause.as_deref().unwrap_or("unspecified clause");
            let severity = if SERIOUS_REFUSALS.contains(&code) {
                "8"
            } else {
                "4"
            };
            (severity, Some(format!("refused under {clause}: {code}")))
        }
    };
    let channel_uri = channel_uri(*channel);
    let mut entities = vec![json!({
        "what": {"reference": format!("Patient/{}", person.as_str())},
        "type": coding(ENTITY_TYPE, "1", "Person"),
        "role": coding(OBJECT_ROLE, "1", "Patient"),
    })];
    let cats: Vec<String> = categories.iter().map(|c: &Category| snake(c)).collect();
    match interaction {
        Interaction::Search => {
            // Our canonical spelling of what was asked; base64 as BALP requires, so
            // the element preserves the request exactly.
            let q = format!(
                "patient={}&category={}&date=ge{}&date=lt{}&purpose={}",
                person.as_str(),
                cats.join(","),
                instant(period.from)?,
                instant(period.to)?,
                snake(purpose),
            );
            entities.push(json!({
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "24", "Query"),
                "description": q,
                "query": B64.encode(q.as_bytes()),
            }));
        }
        Interaction::Read => {
            for c in &cats {
                entities.push(json!({
                    "what": identifier("urn:mebyo:category", c),
                    "type": coding(ENTITY_TYPE, "2", "System Object"),
                    "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
                }));
            }
        }
    }
    let mut ae = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "type": coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation"),
        "subtype": [coding(RESTFUL, subtype, subtype)],
        "action": action,
        "recorded": instant(*at)?,
        "outcome": code,
        "purposeOfEvent": [purpose_concept(*purpose)],
        "agent": [
            {
                "type": {"coding": [coding(DCM, client_role.0, client_role.1)]},
                "who": identifier("urn:mebyo:channel", &snake(channel)),
                "requestor": false,
                "network": {"address": channel_uri, "type": "5"},
            },
            {
                "type": {"coding": [coding(DCM, server_role.0, server_role.1)]},
                "who": identifier("urn:mebyo:platform", &platform.name),
                "requestor": false,
                "network": {"address": platform.address, "type": "1"},
            },
            user_agent(actor, *purpose, consent.as_ref().map(|c| c.as_str())),
        ],
        "source": {
            "site": platform.site,
            "observer": {
                "display": platform.name,
                "identifier": {"system": "urn:mebyo:platform", "value": platform.name},
            },
            "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        },
        "entity": entities,
    });
    if let Some(d) = desc {
        ae["outcomeDesc"] = json!(d);
    }
    if *outcome == Outcome::Granted {
        ae["meta"] = json!({"profile": [profile]});
    }
    Ok(ae)
}

/// Writes AuditEvents as NDJSON (one compact JSON object per line), the bulk
/// format FHIR servers import.
pub struct NdjsonWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> NdjsonWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    pub fn write(&mut self, resource: &Value) -> std::io::Result<()> {
        let line = serde_json::to_string(resource)?;
        if line.len() > NDJSON_LINE_BYTES_MAX {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                ExportError::LineTooLong(line.len()),
            ));
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_domain::consent::Period;
    use mebyo_domain::{ConsentId, CredentialId, PersonId, ProviderId, StaffId};
    use std::collections::BTreeSet;

    fn platform() -> Platform {
        Platform {
            name: "mebyo.example.jp".into(),
            site: "kanagawa".into(),
            address: "mebyo.example.jp".into(),
        }
    }

    fn event(actor: Actor, outcome: Outcome, refusal: Option<(&str, &str)>) -> AccessEvent {
        AccessEvent::AccessRecorded {
            actor,
            person: PersonId::new("p-3f2a").unwrap(),
            categories: BTreeSet::from([Category::Vitals, Category::Allergy]),
            purpose: Purpose::Care,
            channel: Channel::ProviderGateway,
            period: Period {
                from: Timestamp(1_700_000_000_000_000),
                to: Timestamp(1_760_000_000_000_000),
            },
            consent: (outcome == Outcome::Granted).then(|| ConsentId::new("c-1").unwrap()),
            outcome,
            refusal_code: refusal.map(|r| r.0.to_string()),
            refusal_clause: refusal.map(|r| r.1.to_string()),
            at: Timestamp(1_790_000_000_123_456),
        }
    }

    fn provider() -> Actor {
        Actor::Provider {
            provider: ProviderId::new("clinic-1").unwrap(),
            credential: CredentialId::new("cred-9").unwrap(),
        }
    }

    fn has_coding(v: &Value, system: &str, code: &str) -> bool {
        let list = v["coding"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]);
        list.iter()
            .any(|c| c["system"] == system && c["code"] == code)
    }

    /// The required elements of IHE BALP Read/PatientRead and Query/PatientQuery
    /// (profiles' FSH, BALP 1.1.x), plus FHIR R4 AuditEvent's own 1..1 elements.
    fn assert_balp(ae: &Value, interaction: Interaction) {
        assert_eq!(ae["resourceType"], "AuditEvent");
        // R4 base cardinalities: type, recorded, agent (with requestor), source.observer.
        assert!(has_coding(
            &ae["type"],
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "rest"
        ));
        let recorded = ae["recorded"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(recorded, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
        assert!(ae["source"]["observer"].is_object());
        let agents = ae["agent"].as_array().unwrap();
        assert!(agents.len() >= 2);
        for a in agents {
            assert!(a["requestor"].is_boolean(), "R4: agent.requestor is 1..1");
        }
        let (sub, action, client, server) = match interaction {
            Interaction::Read => ("read", "R", "110152", "110153"),
            Interaction::Search => ("search-type", "E", "110153", "110152"),
        };
        assert!(
            ae["subtype"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["system"] == RESTFUL && c["code"] == sub)
        );
        assert_eq!(ae["action"], action);
        let agent = |code: &str| {
            agents
                .iter()
                .find(|a| has_coding(&a["type"], DCM, code))
                .unwrap_or_else(|| panic!("no agent {code}"))
        };
        for code in [client, server] {
            let a = agent(code);
            assert!(a["who"].is_object(), "agent {code}: who 1..1");
            assert!(
                a["network"]["address"].is_string(),
                "agent {code}: network 1..1"
            );
            assert!(a.get("media").is_none());
        }
        let user = agents
            .iter()
            .find(|a| has_coding(&a["type"], PARTICIPATION, "IRCP"))
            .expect("user agent");
        assert_eq!(user["requestor"], true);
        assert!(user["who"].is_object());
        assert!(
            user.get("network").is_none(),
            "users are not network devices"
        );
        let entities = ae["entity"].as_array().unwrap();
        let patient = entities
            .iter()
            .find(|e| e["type"]["code"] == "1" && e["type"]["system"] == ENTITY_TYPE)
            .expect("entity:patient");
        assert_eq!(patient["role"]["system"], OBJECT_ROLE);
        assert_eq!(patient["role"]["code"], "1");
        assert!(
            patient["what"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Patient/")
        );
        match interaction {
            Interaction::Search => {
                let q = entities
                    .iter()
                    .find(|e| e["role"]["code"] == "24")
                    .expect("entity:query");
                assert_eq!(q["type"]["code"], "2");
                assert!(q.get("what").is_none(), "query entity: what 0..0");
                let raw = B64.decode(q["query"].as_str().unwrap()).unwrap();
                assert_eq!(String::from_utf8(raw).unwrap(), q["description"]);
            }
            Interaction::Read => {
                let data: Vec<_> = entities
                    .iter()
                    .filter(|e| e["type"]["code"] == "2")
                    .collect();
                assert!(!data.is_empty(), "entity:data 1..");
                for d in data {
                    assert!(["4", "3", "20"].contains(&d["role"]["code"].as_str().unwrap()));
                    assert!(d["what"].is_object());
                }
            }
        }
    }

    #[test]
    fn granted_search_and_read_follow_balp() {
        for (interaction, profile) in [
            (Interaction::Search, BALP_PATIENT_QUERY),
            (Interaction::Read, BALP_PATIENT_READ),
        ] {
            let ae = access_audit_event(
                &event(provider(), Outcome::Granted, None),
                "0a1b2c",
                interaction,
                &platform(),
            )
            .unwrap();
            assert_balp(&ae, interaction);
            assert_eq!(ae["outcome"], "0");
            assert_eq!(ae["meta"]["profile"][0], profile);
            assert!(ae.get("outcomeDesc").is_none());
            assert_eq!(ae["recorded"], "2026-09-21T14:13:20.123456Z");
            assert!(has_coding(&ae["purposeOfEvent"][0], ACT_REASON, "TREAT"));
            let user = &ae["agent"][2];
            assert_eq!(user["who"]["identifier"]["value"], "clinic-1");
            assert_eq!(user["policy"][0], "urn:mebyo:consent:c-1");
            assert_eq!(user["altId"], "cred-9");
            assert_eq!(ae["entity"][0]["what"]["reference"], "Patient/p-3f2a");
        }
    }

    #[test]
    fn refusals_are_failures_citing_the_clause() {
        let ae = access_audit_event(
            &event(
                provider(),
                Outcome::Refused,
                Some(("consent.none", "P4.6(2)")),
            ),
            "x1",
            Interaction::Search,
            &platform(),
        )
        .unwrap();
        assert_eq!(ae["outcome"], "4");
        assert_eq!(ae["outcomeDesc"], "refused under P4.6(2): consent.none");
        assert!(
            ae.get("meta").is_none(),
            "BALP profiles are for successes only"
        );
        assert!(ae["agent"][2].get("policy").is_none());
        let staff = Actor::Staff {
            staff: StaffId::new("s-1").unwrap(),
        };
        let ae = access_audit_event(
            &event(staff, Outcome::Refused, Some(("access.staff", "P4.6(2)"))),
            "x2",
            Interaction::Read,
            &platform(),
        )
        .unwrap();
        assert_eq!(ae["outcome"], "8");
        assert_eq!(ae["agent"][2]["role"][0]["coding"][0]["code"], "staff");
    }

    #[test]
    fn bad_ids_and_times_are_errors_not_panics() {
        let e = event(provider(), Outcome::Granted, None);
        for bad in ["", "a b", "ä", &"a".repeat(65)] {
            assert!(access_audit_event(&e, bad, Interaction::Read, &platform()).is_err());
        }
        let AccessEvent::AccessRecorded { mut at, .. } = e.clone();
        at.0 = i64::MAX;
        let mut e2 = e;
        let AccessEvent::AccessRecorded { at: a, .. } = &mut e2;
        *a = at;
        assert_eq!(
            access_audit_event(&e2, "ok", Interaction::Read, &platform()),
            Err(ExportError::BadTime(i64::MAX))
        );
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let mut w = NdjsonWriter::new(Vec::new());
        for (i, o) in [Outcome::Granted, Outcome::Refused].into_iter().enumerate() {
            let ae = access_audit_event(
                &event(provider(), o, Some(("consent.none", "P4.6(2)"))),
                &format!("e{i}"),
                Interaction::Search,
                &platform(),
            )
            .unwrap();
            w.write(&ae).unwrap();
        }
        assert_eq!(w.written(), 2);
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        for l in lines {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["resourceType"], "AuditEvent");
        }
    }
}
