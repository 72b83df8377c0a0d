//! Every staff command of the API against every role (issue 15, Tests): each
//! `POST /api/v1/ops/…` in the served OpenAPI document is sent by a holder of
//! each staff role, over real HTTPS, with a body that is valid for it.
//!
//! - Without the CSRF token on the cookie session: refused (`csrf.invalid`,
//!   P4.6(1)), and the log does not grow.
//! - With the bearer token: either refused for the role, with a clause of the
//!   catalogue, or let past the role check. Which roles get past is the
//!   decider's own rule, asked through the dashboard's form for the endpoint
//!   (`mebyo_web::ops_forms::FORMS`'s `shown_to`) or the rule named in
//!   [`EXPECT`]: so a form shown to a role the decider refuses, or hidden from
//!   one it accepts, fails here.
//!
//! An endpoint added to the API without a row in [`request`] fails the test.

use crate::web_common;

use mebyo_domain::credential::{CredentialCommand, Holder};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::staff::StaffCommand;
use mebyo_domain::{Actor, CredentialId, Role, StaffId};
use serde_json::{Value, json};
use web_common::*;

/// Codes that mean "not this role" (the staff decider's, and the grant's).
const ROLE_CODES: [&str; 2] = [
    "staff.role_required",
    "audit_grant.not_business_administrator",
];

/// The role rule of endpoints without a form in `ops_forms`.
fn expect(template: &str) -> Option<fn(Role) -> bool> {
    // The form is shown to whoever appoints anyone; the decider asks about the
    // role in the body (a prefecture official, an auditor: the head's to appoint).
    if template.ends_with("/appointments") || template.ends_with("/dismissals") {
        return Some(|r| Role::Prefecture.appointable_by(r) && Role::Auditor.appointable_by(r));
    }
    if let Some(f) = mebyo_web::ops_forms::FORMS
        .iter()
        .find(|f| f.api == template)
    {
        return Some(f.shown_to);
    }
    Some(match template {
        "/api/v1/ops/credentials/{credential}/revoke" => mebyo_domain::credential::revokes,
        "/api/v1/ops/backups" => |r| mebyo_domain::duty::Duty::Backup.allowed(r),
        "/api/v1/ops/incidents" => |r| mebyo_operations::incident::Level::Reporter.held_by(r),
        "/api/v1/ops/staff/{staff}/sign-in-reset" => |r| Role::Auditor.appointable_by(r),
        // The runbook's steps, rotations, escalations and closing depend on the
        // step and the incident (`incident::decide`); web_staff_commands covers them.
        _ => return None,
    })
}

/// The fixtures the requests name.
struct Ids {
    credential: String,
    lost: String,
    provider: String,
    responsible: String,
    incident: String,
    person: String,
    staff: String,
    /// The platform's clock (a test clock), in Unix seconds.
    now_s: i64,
}

/// The concrete path and body of one endpoint: valid input, naming things that exist.
fn request(t: &str, ids: &Ids) -> (String, Option<Value>) {
    let soa = "soa-0001";
    let in_days = |d: i64| mebyo_tests::rfc3339_s(ids.now_s + d * 86_400);
    let body = match t {
        "/api/v1/ops/credentials/{credential}/revoke" => Some(json!({"reason": "judged-risk"})),
        "/api/v1/ops/credentials/{credential}/renew"
        | "/api/v1/ops/credentials/{credential}/loss" => None,
        "/api/v1/ops/credentials/{credential}/signing-key" => {
            Some(json!({"public_key": format!("58{}", "66".repeat(31))}))
        }
        "/api/v1/ops/credentials" => {
            Some(json!({"provider": ids.provider, "responsible": ids.responsible}))
        }
        "/api/v1/ops/backups" => Some(json!({"kind": "full"})),
        "/api/v1/ops/backups/drill" | "/api/v1/ops/keys/kek-rotation" => None,
        "/api/v1/ops/incidents" => Some(json!({"kind": "other"})),
        "/api/v1/ops/incidents/{id}/steps" => Some(json!({"step": "contain"})),
        "/api/v1/ops/incidents/{id}/rotations" => Some(json!({"credentials": [ids.credential]})),
        "/api/v1/ops/incidents/{id}/escalations" => Some(json!({"to": "business-administrator"})),
        "/api/v1/ops/incidents/{id}/close" => None,
        "/api/v1/ops/staff/{staff}/sign-in-reset" => Some(json!({})),
        "/api/v1/ops/staff/{staff}/appointments" => Some(json!({"role": "prefecture"})),
        "/api/v1/ops/staff/{staff}/dismissals" => Some(json!({"role": "auditor"})),
        "/api/v1/ops/staff/{staff}/training" => {
            Some(json!({"completed_at": in_days(-1), "valid_until": in_days(300)}))
        }
        "/api/v1/ops/maintenance" => Some(
            json!({"window": "mw-every", "starts_at": in_days(30), "ends_at": in_days(31), "affects": ["portal"], "summary": "OS updates"}),
        ),
        "/api/v1/ops/maintenance/{window}/cancel" => None,
        "/api/v1/ops/firewall-reviews" => Some(json!({"from": in_days(-2), "to": in_days(-1)})),
        "/api/v1/ops/media" => Some(
            json!({"id": "med-every", "kind": "usb-memory", "digest": "ab".repeat(32), "custodian": soa, "storage": "cabinet-a1", "purpose": "annual-report"}),
        ),
        "/api/v1/ops/media/{media}/issue" => Some(json!({"digest": "ab".repeat(32)})),
        "/api/v1/ops/media/{media}/return" => Some(json!({"storage": "cabinet-a1"})),
        "/api/v1/ops/media/{media}/disposal" => Some(json!({"method": "destroy"})),
        "/api/v1/ops/disposals" => {
            Some(json!({"subject": "paper", "item": "forms", "method": "shred"}))
        }
        "/api/v1/ops/providers/{provider}/decisions" => Some(json!({"decision": "approve"})),
        "/api/v1/ops/providers" => Some(
            json!({"provider": "clinic-every", "responsible": "clinic-every-lead", "connection": "tls-internet", "basis": "commissioned"}),
        ),
        "/api/v1/ops/providers/{provider}/attestations" => Some(
            json!({"kind": "members-trained", "attested_on": in_days(-1), "valid_until": in_days(300)}),
        ),
        "/api/v1/ops/persons/{person}/erasure" => None,
        "/api/v1/ops/audit-grants" => Some(json!({"auditor": "aud-0001", "days": 7})),
        other => panic!("{other} is a staff command with no row here: add one"),
    };
    let credential = if t.ends_with("/loss") {
        &ids.lost
    } else {
        &ids.credential
    };
    let path = t
        .replace("{credential}", credential)
        .replace("{provider}", &ids.provider)
        .replace("{id}", &ids.incident)
        .replace("{person}", &ids.person)
        .replace("{staff}", &ids.staff)
        .replace("{window}", "mw-every")
        .replace("{media}", "med-every");
    (path, body)
}

async fn send(
    env: &Env,
    s: &Session,
    path: &str,
    body: &Option<Value>,
    bearer: bool,
) -> (u16, Value) {
    let mut req = env.http.post(env.url(path));
    req = if bearer {
        req.bearer_auth(&s.token)
    } else {
        req.header("cookie", s.cookie())
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The staff commands of the served OpenAPI document.
async fn commands(env: &Env) -> Vec<String> {
    let doc: Value = env
        .http
        .get(env.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    let mut out: Vec<String> = paths
        .iter()
        .filter(|(p, item)| p.starts_with("/api/v1/ops/") && item["post"].is_object())
        .map(|(p, _)| p.clone())
        .collect();
    // Those that end something go last, so the others meet it still going (an
    // issue before a disposal, a step before the close).
    let ends = |t: &String| {
        [
            "/disposal",
            "/loss",
            "/cancel",
            "/close",
            "/dismissals",
            "/erasure",
        ]
        .iter()
        .any(|e| t.ends_with(e))
    };
    out.sort_by_key(|t| (ends(t), t.clone()));
    assert!(out.len() >= 25, "{out:?}");
    out
}

async fn fixtures(env: &Env) -> Ids {
    let p = &env.platform;
    let office = Actor::Staff {
        staff: env.org.office.clone(),
    };
    let lost = CredentialId::new(p.new_id("cred")).unwrap();
    let issue = CredentialCommand::Issue {
        credential: lost.clone(),
        holder: Holder::Provider {
            provider: env.provider.id.clone(),
            responsible: env.provider.responsible.clone(),
        },
        replaces: None,
    };
    p.credential(&office, &lost, issue).await.unwrap().unwrap();
    let om = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let (status, made) = send(
        env,
        &om,
        "/api/v1/ops/incidents",
        &Some(json!({"kind": "other"})),
        true,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let identity = mebyo_crypto::IdentityRecord {
        name: "Every Role".into(),
        address: "Yokohama".into(),
        birth_date: "1980-01-01".into(),
        phone: None,
        email: Some("every@example.jp".into()),
    };
    let person = mebyo_platform::world::enroll_individual(p, &env.org, &identity)
        .await
        .unwrap();
    p.person(&person.actor(), &person.id, PersonCommand::Withdraw)
        .await
        .unwrap()
        .unwrap();
    let staff = StaffId::new("aud-every").unwrap();
    let ba = Actor::Staff {
        staff: env.org.business_administrator.clone(),
    };
    let appoint = StaffCommand::Appoint {
        staff: staff.clone(),
        role: Role::Auditor,
    };
    p.staff(&ba, &staff, appoint).await.unwrap().unwrap();
    Ids {
        credential: env.provider.credential.to_string(),
        lost: lost.to_string(),
        provider: env.provider.id.to_string(),
        responsible: env.provider.responsible.to_string(),
        incident: made["made"][0]
            .as_str()
            .expect("the incident id")
            .to_string(),
        person: person.id.to_string(),
        staff: staff.to_string(),
        now_s: p.now().0 / 1_000_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_1_p4_6_1_every_staff_command_against_every_role() {
    let env = start().await;
    let ids = fixtures(&env).await;
    let org = &env.org;
    let holders = [
        (Role::BusinessAdministrator, &org.business_administrator),
        (
            Role::OperationsManager(mebyo_domain::staff::Rank::Primary),
            &org.operations_manager,
        ),
        (
            Role::SystemOperationsAdministrator,
            &org.system_operations_administrator,
        ),
        (Role::OperationsOffice, &org.office),
        (Role::Prefecture, &org.prefecture),
        (Role::Auditor, &org.auditor),
    ];
    let mut sessions = Vec::new();
    for (role, id) in holders {
        env.staff_account(id).await;
        sessions.push((role, env.login("staff", id.as_str(), STAFF_PASSWORD).await));
    }
    let mut seen = Vec::new();
    for t in commands(&env).await {
        let (path, body) = request(&t, &ids);
        let rule = expect(&t);
        // Refused roles first: an allowed one may change what the next one meets
        // (a second approval is a conflict, an erased person is gone).
        let mut order: Vec<&(Role, Session)> = sessions.iter().collect();
        order.sort_by_key(|(r, _)| rule.is_some_and(|may| may(*r)));
        for (role, s) in order {
            let head = env.platform.head().count;
            let (status, answer) = send(&env, s, &path, &body, false).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (403, Some("csrf.invalid")),
                "{t} as {role:?} without CSRF: {answer}"
            );
            assert_eq!(
                env.platform.head().count,
                head,
                "{t}: a refused request wrote"
            );
            let (status, answer) = send(&env, s, &path, &body, true).await;
            assert!(status < 500, "{t} as {role:?}: {status} {answer}");
            let code = answer["error"]["code"].as_str().unwrap_or("");
            let role_refused = status == 403 && ROLE_CODES.contains(&code);
            if status >= 400 {
                let clause = answer["error"]["clause"].as_str().unwrap_or("");
                assert!(
                    clause_exists(clause),
                    "{t} as {role:?}: clause {clause:?} of {answer}"
                );
            }
            assert_ne!(
                status, 404,
                "{t} as {role:?}: a fixture is missing: {answer}"
            );
            if let Some(may) = rule {
                assert_eq!(
                    role_refused,
                    !may(*role),
                    "{t} as {role:?}: {status} {answer}"
                );
            }
            seen.push((t.clone(), *role, status));
        }
    }
    // Every role was let through somewhere and refused somewhere.
    for (role, _) in &sessions {
        let mine: Vec<_> = seen.iter().filter(|(_, r, _)| r == role).collect();
        assert!(
            mine.iter().any(|(_, _, s)| *s == 403),
            "{role:?} was refused nothing"
        );
    }
}
