//! Setting up a working platform through its real commands: the staff chain, the
//! policy in force, approved providers with credentials, enrolled individuals.
//! Used by `mebyo demo`, the end-to-end tests and the benchmarks, so all of them
//! exercise the same rules operators do — nothing is written behind the deciders.

use std::collections::BTreeSet;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::credential::{CredentialCommand, Holder};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::policy::PolicyCommand;
use mebyo_domain::provider::{AttestationKind, Basis, ConnectionClass, ProviderCommand};
use mebyo_domain::records::{Category, Origin, RecordCommand, Submission};
use mebyo_domain::staff::{Rank, Role, StaffCommand};
use mebyo_domain::{
    Actor, ConsentId, CredentialId, Duration, PersonId, PolicyId, PolicyVersion, ProviderId,
    RecordId, Refusal, StaffId, Timestamp,
};
use serde_json::{Value, json};

use crate::{Outcome, Platform, PlatformError};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("{step} was refused: {refusal}")]
    Refused {
        step: &'static str,
        refusal: Refusal,
    },
}

fn done<T>(step: &'static str, o: Outcome<T>) -> Result<T, SetupError> {
    o?.map_err(|refusal| SetupError::Refused { step, refusal })
}

/// As [`done`], a refusal with code `already` meaning the step was done before:
/// what lets a set-up cut short be run again to its end (issue 19 §2).
fn done_or<T>(step: &'static str, o: Outcome<T>, already: &str) -> Result<(), SetupError> {
    match o? {
        Ok(_) => Ok(()),
        Err(r) if r.code == already => Ok(()),
        Err(refusal) => Err(SetupError::Refused { step, refusal }),
    }
}

/// The staff who run the platform, one per role of the chain (P3.1).
#[derive(Debug, Clone)]
pub struct Org {
    pub business_administrator: StaffId,
    pub operations_manager: StaffId,
    pub system_operations_administrator: StaffId,
    pub office: StaffId,
    pub prefecture: StaffId,
    pub auditor: StaffId,
}

impl Org {
    pub fn actor(id: &StaffId) -> Actor {
        Actor::Staff { staff: id.clone() }
    }
}

const YEAR: Duration = Duration::days(365);

/// The first policy version: in force from 2020-11-16, applying from 2020-11-01 (P9).
pub fn policy_v1() -> PolicyVersion {
    PolicyVersion {
        id: PolicyId::new("v2020-11-16").expect("valid id"),
        in_force_from: Timestamp(1_605_484_800_000_000),
        applies_from: Timestamp(1_604_188_800_000_000),
    }
}

/// Appoints the staff chain with current privacy training (P3.1, P3.4) and
/// publishes the policy in force (P7, P8). Resumable: run again after it was cut
/// short, it skips the appointments and the publication already made and
/// records training again (issue 19 §2).
pub async fn bootstrap_org(p: &Platform) -> Result<Org, SetupError> {
    let now = p.now();
    let ba = p.config().business_administrator.clone();
    let id = |s: &str| StaffId::new(s).expect("valid id");
    let org = Org {
        business_administrator: ba.clone(),
        operations_manager: id("om-0001"),
        system_operations_administrator: id("soa-0001"),
        office: id("office-0001"),
        prefecture: id("pref-0001"),
        auditor: id("audit-0001"),
    };
    let train = StaffCommand::RecordTraining {
        completed_at: now,
        valid_until: now + YEAR,
    };
    let ba_actor = Org::actor(&ba);
    done(
        "business administrator training",
        p.staff(&ba_actor, &ba, train.clone()).await,
    )?;
    for (staff, role) in [
        (
            &org.operations_manager,
            Role::OperationsManager(Rank::Primary),
        ),
        (&org.prefecture, Role::Prefecture),
        (&org.auditor, Role::Auditor),
    ] {
        done_or(
            "appointment by the business administrator",
            p.staff(
                &ba_actor,
                staff,
                StaffCommand::Appoint {
                    staff: staff.clone(),
                    role,
                },
            )
            .await,
            "staff.already_appointed",
        )?;
        done("training", p.staff(&ba_actor, staff, train.clone()).await)?;
    }
    let om_actor = Org::actor(&org.operations_manager);
    for (staff, role) in [
        (
            &org.system_operations_administrator,
            Role::SystemOperationsAdministrator,
        ),
        (&org.office, Role::OperationsOffice),
    ] {
        done_or(
            "appointment by the operations manager",
            p.staff(
                &om_actor,
                staff,
                StaffCommand::Appoint {
                    staff: staff.clone(),
                    role,
                },
            )
            .await,
            "staff.already_appointed",
        )?;
        done("training", p.staff(&om_actor, staff, train.clone()).await)?;
    }
    done_or(
        "policy publication",
        p.policy(
            &Org::actor(&org.prefecture),
            PolicyCommand::Publish {
                version: policy_v1(),
            },
        )
        .await,
        "policy.version_exists",
    )?;
    Ok(org)
}

/// An approved provider and its connection credential.
#[derive(Debug, Clone)]
pub struct OnboardedProvider {
    pub id: ProviderId,
    pub responsible: StaffId,
    pub credential: CredentialId,
    pub connection: ConnectionClass,
}

impl OnboardedProvider {
    pub fn actor(&self) -> Actor {
        Actor::Provider {
            provider: self.id.clone(),
            credential: self.credential.clone(),
        }
    }
}

/// Apply, attest (training, anti-virus), approve by the prefecture, issue the
/// connection credential to the responsible person (P2(3), P4.11, P4.12).
pub async fn onboard_provider(
    p: &Platform,
    org: &Org,
    slug: &str,
    connection: ConnectionClass,
) -> Result<OnboardedProvider, SetupError> {
    let now = p.now();
    let id = ProviderId::new(slug).map_err(|e| PlatformError::Settings(e.to_string()))?;
    let responsible =
        StaffId::new(format!("{slug}-lead")).map_err(|e| PlatformError::Settings(e.to_string()))?;
    let pref = Org::actor(&org.prefecture);
    done(
        "provider application",
        p.provider(
            &Actor::Applicant,
            &id,
            ProviderCommand::Apply {
                provider: id.clone(),
                responsible: responsible.clone(),
                connection,
                basis: Basis::Commissioned,
            },
        )
        .await,
    )?;
    for kind in [
        AttestationKind::MembersTrained,
        AttestationKind::AntivirusCurrent,
    ] {
        done(
            "provider attestation",
            p.provider(
                &pref,
                &id,
                ProviderCommand::Attest {
                    kind,
                    attested_on: now,
                    valid_until: now + YEAR,
                },
            )
            .await,
        )?;
    }
    done(
        "provider approval",
        p.provider(&pref, &id, ProviderCommand::Approve).await,
    )?;
    let credential = CredentialId::new(p.new_id("cred")).expect("valid id");
    done(
        "provider credential",
        p.credential(
            &pref,
            &credential,
            CredentialCommand::Issue {
                credential: credential.clone(),
                holder: Holder::Provider {
                    provider: id.clone(),
                    responsible: responsible.clone(),
                },
                replaces: None,
            },
        )
        .await,
    )?;
    Ok(OnboardedProvider {
        id,
        responsible,
        credential,
        connection,
    })
}

/// A registered individual with connection information, who accepted the policy.
#[derive(Debug, Clone)]
pub struct Individual {
    pub id: PersonId,
    pub credential: CredentialId,
}

impl Individual {
    pub fn actor(&self) -> Actor {
        Actor::Individual {
            person: self.id.clone(),
            credential: self.credential.clone(),
        }
    }
}

/// Self-service registration, credential issued by the office, policy accepted.
pub async fn enroll_individual(
    p: &Platform,
    org: &Org,
    identity: &IdentityRecord,
) -> Result<Individual, SetupError> {
    let id = done(
        "registration",
        p.register_person(&Actor::Applicant, identity).await,
    )?;
    let credential = CredentialId::new(p.new_id("cred")).expect("valid id");
    done(
        "individual credential",
        p.credential(
            &Org::actor(&org.office),
            &credential,
            CredentialCommand::Issue {
                credential: credential.clone(),
                holder: Holder::Individual { person: id.clone() },
                replaces: None,
            },
        )
        .await,
    )?;
    let me = Individual { id, credential };
    done(
        "policy acceptance",
        p.person(
            &me.actor(),
            &me.id,
            PersonCommand::AcceptPolicy {
                policy: policy_v1().id,
            },
        )
        .await,
    )?;
    Ok(me)
}

/// Grants `provider` a consent over `categories` for `purpose`, covering records
/// of the last ten years, expiring in `days` days.
pub async fn grant_consent(
    p: &Platform,
    who: &Individual,
    provider: &ProviderId,
    categories: &[Category],
    purpose: Purpose,
    days: i64,
) -> Result<ConsentId, SetupError> {
    let now = p.now();
    let consent = ConsentId::new(p.new_id("consent")).expect("valid id");
    done(
        "consent grant",
        p.person(
            &who.actor(),
            &who.id,
            PersonCommand::GrantConsent {
                consent: consent.clone(),
                provider: provider.clone(),
                categories: categories.iter().copied().collect::<BTreeSet<_>>(),
                purpose,
                period: Period {
                    from: Timestamp(now.0 - Duration::days(3650).0),
                    to: now + Duration::days(1),
                },
                expires_at: now + Duration::days(days),
            },
        )
        .await,
    )?;
    Ok(consent)
}

/// A self-entered blood pressure reading (FHIR R4 Observation, LOINC 85354-9).
pub async fn record_blood_pressure(
    p: &Platform,
    who: &Individual,
    systolic: u32,
    diastolic: u32,
    at: Timestamp,
) -> Result<RecordId, SetupError> {
    let record = RecordId::new(p.new_id("rec")).expect("valid id");
    done(
        "blood pressure record",
        p.records(
            &who.actor(),
            &who.id,
            RecordCommand::Submit(Submission {
                record: record.clone(),
                category: Category::Vitals,
                effective_at: at,
                resource: blood_pressure(&who.id, systolic, diastolic, at),
                origin: Origin::SelfEntered,
                created_by: None,
                original_identifier: None,
            }),
        )
        .await,
    )?;
    Ok(record)
}

/// RFC 3339 in Japan time (UTC+9), as Japanese systems write clinical times.
pub fn rfc3339_jst(at: Timestamp) -> String {
    let secs = at.0.div_euclid(1_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+9));
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

pub fn blood_pressure(person: &PersonId, systolic: u32, diastolic: u32, at: Timestamp) -> Value {
    let loinc = "http://loinc.org";
    let ucum = "http://unitsofmeasure.org";
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": loinc, "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": rfc3339_jst(at),
        "component": [
            {"code": {"coding": [{"system": loinc, "code": "8480-6"}]},
             "valueQuantity": {"value": systolic, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": loinc, "code": "8462-4"}]},
             "valueQuantity": {"value": diastolic, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}}
        ]
    })
}

pub fn body_weight(person: &PersonId, kg: f64, at: Timestamp) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": rfc3339_jst(at),
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    })
}
