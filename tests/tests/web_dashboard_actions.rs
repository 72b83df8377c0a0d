//! The dashboard acts (issue 15 §2): each panel shows the forms its viewer's roles
//! may use, decided by the same rules as the deciders; a destructive form asks
//! for confirmation and refuses without it; each outcome page links to the event
//! it recorded, whose page shows its metadata and never its payload. In Japanese
//! by default and in English with the `lang` cookie.

use crate::web_common;

use web_common::*;

async fn page(env: &Env, s: &Session, path: &str, lang: &str) -> (u16, String) {
    let r = env
        .http
        .get(env.url(path))
        .header("cookie", format!("{}; lang={lang}", s.cookie()))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn form(env: &Env, s: &Session, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("csrf", s.csrf.as_str())];
    all.extend_from_slice(fields);
    let r = env
        .http
        .post(env.url(path))
        .header("cookie", format!("{}; lang=en", s.cookie()))
        .form(&all)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The event page an outcome page links to (the `href` of its `#event-link`).
fn event_link(html: &str) -> String {
    let at = html
        .find("id=\"event-link\"")
        .expect("the outcome links to its event");
    let tag_start = html[..at].rfind("<a").expect("a link");
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let start = tag.find("href=\"").expect("an href") + 6;
    tag[start..start + tag[start..].find('"').unwrap()].to_string()
}

async fn staff(env: &Env, id: &mebyo_domain::StaffId) -> Session {
    env.staff_account(id).await;
    env.login("staff", id.as_str(), STAFF_PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_10_back_up_from_the_dashboard_with_confirmation() {
    let env = start().await;
    let office = env.staff_login().await;
    let (_, html) = page(&env, &office, "/ops", "en").await;
    assert!(
        !html.contains("id=\"backup-form\""),
        "the office may not back up"
    );
    let sysadm = staff(&env, &env.org.system_operations_administrator).await;
    let (status, html) = page(&env, &sysadm, "/ops", "ja").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"backup-form\""), "{html}");
    assert!(html.contains("今すぐバックアップ"), "Japanese first");

    // Without the confirmation (a hand-made or replayed form): refused, nothing written.
    let head = env.platform.head().count;
    let (status, html) = form(&env, &sysadm, "/ops/backups", &[("kind", "full")]).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("P4.4"), "{html}");
    assert_eq!(env.platform.head().count, head);
    // Without the CSRF field: refused.
    let r = env
        .http
        .post(env.url("/ops/backups"))
        .header("cookie", sysadm.cookie())
        .form(&[("kind", "full"), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(env.platform.head().count, head);

    let (status, html) = form(
        &env,
        &sysadm,
        "/ops/backups",
        &[("kind", "full"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("The backup is taken."), "{html}");
    let link = event_link(&html);
    let (status, event) = page(&env, &sysadm, &link, "en").await;
    assert_eq!(status, 200, "{event}");
    assert!(event.contains("backup.completed"), "{event}");
    assert!(event.contains("operational (no personal data)"), "{event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_13_p4_14_revoke_and_work_a_runbook_from_the_dashboard() {
    let env = start().await;
    let office = env.staff_login().await;
    let prefecture = env
        .login("staff", env.org.prefecture.as_str(), STAFF_PASSWORD)
        .await;
    let (_, html) = page(&env, &prefecture, "/ops", "en").await;
    assert!(html.contains("id=\"revoke-form\""), "{html}");
    let (_, html) = page(&env, &office, "/ops", "en").await;
    assert!(
        !html.contains("id=\"revoke-form\""),
        "only the prefecture revokes"
    );

    // The office reports a theft and records the police report from the incident page.
    let manager = env
        .login("staff", env.org.operations_manager.as_str(), STAFF_PASSWORD)
        .await;
    let (status, html) = form(
        &env,
        &manager,
        "/ops/incidents",
        &[("kind", "theft-or-loss"), ("vpn_used", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let made = html
        .split("class=\"made\">")
        .nth(1)
        .and_then(|s| s.split('<').next());
    let id = made.expect("the incident id").to_string();
    assert!(id.starts_with("inc-"), "{html}");
    let (_, incident) = page(&env, &manager, &format!("/ops/incidents/{id}"), "en").await;
    assert!(incident.contains("id=\"step-form\""), "{incident}");
    assert!(incident.contains("id=\"rotation-form\""), "{incident}");
    let (status, html) = form(
        &env,
        &manager,
        &format!("/ops/incidents/{id}/steps"),
        &[
            ("step", "police-report"),
            ("reference", "kp-0001"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(event_link(&html).starts_with("/ops/events/"));

    // The prefecture changes the stolen device's connection information.
    let old = env.provider.credential.to_string();
    let (status, html) = form(
        &env,
        &prefecture,
        &format!("/ops/incidents/{id}/rotations"),
        &[("credential", old.as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("revoked and reissued"), "{html}");
    // Revoking it again from the credentials panel: a conflict, shown with its clause.
    let (status, html) = form(
        &env,
        &prefecture,
        "/ops/credentials/revoke",
        &[
            ("credential", old.as_str()),
            ("reason", "judged-risk"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("credential.not_active"), "{html}");
}

/// The forms of `ops_forms` (issue 15 §2), over HTTPS as the browser sends them:
/// each shown by its decider's rule, refused without its confirmation or by the
/// decider with its clause (nothing written), and each outcome linked to its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_12_p4_8_1_p4_6_2_the_panels_forms_for_credentials_keys_and_grants() {
    let env = start().await;
    let office = env.staff_login().await;
    let (_, html) = page(&env, &office, "/ops", "en").await;
    for id in [
        "issue-credential",
        "renew-credential",
        "credential-loss",
        "signing-key",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}-form\"")),
            "office sees {id}"
        );
    }
    for id in [
        "kek-rotation",
        "erasure",
        "audit-grant",
        "media-approval",
        "provider-decision",
    ] {
        assert!(
            !html.contains(&format!("id=\"{id}-form\"")),
            "office does not see {id}"
        );
    }

    // Renewal (P4.12(1)): the outcome names its event, whose page says what it is.
    let credential = env.provider.credential.to_string();
    let (status, html) = form(
        &env,
        &office,
        "/ops/act/renew-credential",
        &[("credential", &credential)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("The credential is renewed."), "{html}");
    let (_, event) = page(&env, &office, &event_link(&html), "en").await;
    assert!(event.contains("credential.renewed"), "{event}");
    // A signing key: the ed25519 base point is a valid public key.
    let key = format!("58{}", "66".repeat(31));
    let (status, html) = form(
        &env,
        &office,
        "/ops/act/signing-key",
        &[("credential", &credential), ("public_key", &key)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    // Bad input changes nothing: a field left empty, a key that is no key, a
    // loss report without its confirmation, a form that does not exist.
    let head = env.platform.head().count;
    let (status, html) = form(
        &env,
        &office,
        "/ops/act/renew-credential",
        &[("credential", "")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("P4.12(1)"), "{html}");
    let (status, _) = form(
        &env,
        &office,
        "/ops/act/signing-key",
        &[("credential", &credential), ("public_key", "abc")],
    )
    .await;
    assert_eq!(status, 422);
    let (status, html) = form(
        &env,
        &office,
        "/ops/act/credential-loss",
        &[("credential", &credential)],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    let (status, _) = form(&env, &office, "/ops/act/no-such-form", &[]).await;
    assert_eq!(status, 404);
    // A hand-made form for another role's command: the decider refuses it.
    let (status, html) = form(
        &env,
        &office,
        "/ops/act/kek-rotation",
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 403, "{html}");
    assert!(
        html.contains("staff.role_required") && html.contains("P4.8(1)"),
        "{html}"
    );
    // Without the CSRF field: refused before anything is read.
    let r = env
        .http
        .post(env.url("/ops/act/renew-credential"))
        .header("cookie", office.cookie())
        .form(&[("credential", credential.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(env.platform.head().count, head);

    // The system operations administrator rotates the KEK while serving (P4.8(1)).
    let sysadm = staff(&env, &env.org.system_operations_administrator).await;
    let (_, html) = page(&env, &sysadm, "/ops", "ja").await;
    assert!(
        html.contains("id=\"kek-rotation-form\"") && html.contains("鍵暗号化鍵の更新"),
        "{html}"
    );
    assert!(
        html.contains("id=\"panel-operations\"") && html.contains("id=\"media-approval-form\""),
        "{html}"
    );
    let (status, html) = form(
        &env,
        &sysadm,
        "/ops/act/kek-rotation",
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let (_, event) = page(&env, &sysadm, &event_link(&html), "en").await;
    assert!(event.contains("keys.kek_rotated"), "{event}");
    let (status, html) = form(
        &env,
        &sysadm,
        "/ops/act/erasure",
        &[("person", "nobody-here"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 404, "{html}");
    assert!(html.contains("person.unknown"), "{html}");

    // The business administrator lets the auditor decrypt for a week (P4.6(2)).
    let head_admin = staff(&env, &env.org.business_administrator).await;
    let auditor = env.org.auditor.to_string();
    let (status, html) = form(
        &env,
        &head_admin,
        "/ops/act/audit-grant",
        &[("auditor", &auditor), ("days", "7"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let (_, event) = page(&env, &head_admin, &event_link(&html), "en").await;
    assert!(event.contains("audit.key_granted"), "{event}");
    // Granting to someone who is not an auditor: refused with its clause.
    let office_id = env.org.office.to_string();
    let (status, html) = form(
        &env,
        &head_admin,
        "/ops/act/audit-grant",
        &[("auditor", &office_id), ("days", "7"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("audit_grant.not_auditor"), "{html}");
}
