//! An operator works the platform in headless Chromium while it serves (issue
//! 15, its browser test): the operations manager's first sign-in replaces the
//! one-time password and enrols a second factor (TOTP), then reports a stolen
//! device, records the police report and takes a backup; the prefecture signs
//! in with its second factor and changes the stolen device's connection
//! information (P4.14(4)). All the while a clinic keeps submitting over the bus,
//! and every one of its submissions is accepted.

use crate::browser_support;
use crate::bus_support;
use crate::web_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use browser_support::*;
use bus_support::{Scene, World, jahis_sample};
use fantoccini::{Client, Locator};
use mebyo_crypto::{TOTP_STEP_S, TotpSecret};
use mebyo_domain::provider::ConnectionClass;
use mebyo_platform::auth::Subject;
use mebyo_web::WebConfig;

const OM_ONE_TIME: &str = "om-one-time-password";
const OM_OWN: &str = "om-own-password-1";
const PREF_PASSWORD: &str = "prefecture-password-1";

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"));
    e.send_keys(value).await.unwrap();
}

async fn inner(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"))
        .text()
        .await
        .unwrap()
}

fn code_now(w: &World, secret: &TotpSecret) -> String {
    let step = (w.clock_now() / 1_000_000) as u64 / TOTP_STEP_S;
    secret.code_at(step * TOTP_STEP_S)
}

async fn sign_in(c: &Client, url: &str, login: &str, password: &str) {
    c.goto(&format!("{url}/ops/login")).await.unwrap();
    fill(c, "login", login).await;
    fill(c, "password", password).await;
    submit(c, "/ops/login").await;
    assert_eq!(path(c).await, "/ops/sign-in", "{}", text(c).await);
}

/// The operations manager: first sign-in, the theft reported, the police report
/// recorded, a backup taken. Returns the incident's id.
async fn manager(w: &World, c: &Client, url: &str) -> String {
    sign_in(c, url, w.org.operations_manager.as_str(), OM_ONE_TIME).await;
    fill(c, "current_password", OM_ONE_TIME).await;
    fill(c, "new_password", OM_OWN).await;
    submit(c, "/ops/sign-in/password").await;
    assert_eq!(path(c).await, "/ops/sign-in", "{}", text(c).await);
    let secret = TotpSecret::from_base32(&inner(c, "#totp-secret").await).expect("a base32 key");
    assert!(
        inner(c, "#totp-uri")
            .await
            .starts_with("otpauth://totp/mebyo:om-")
    );
    fill(c, "code", &code_now(w, &secret)).await;
    submit(c, "/ops/sign-in/code").await;
    assert_eq!(path(c).await, "/ops", "{}", text(c).await);

    click(
        c,
        "#incident-form select[name=kind] option[value='theft-or-loss']",
    )
    .await;
    click(c, "#incident-form input[name=vpn_used]").await;
    submit(c, "/ops/incidents").await;
    let id = inner(c, "#outcome code.made").await;
    assert!(id.starts_with("inc-"), "{}", text(c).await);
    c.goto(&format!("{url}/ops/incidents/{id}")).await.unwrap();
    click(
        c,
        "#step-form select[name=step] option[value='police-report']",
    )
    .await;
    type_into(c, "#step-form input[name=reference]", "kp-2026-0042").await;
    click(c, "#step-form input[name=confirm]").await;
    submit(c, &format!("/ops/incidents/{id}/steps")).await;
    assert!(inner(c, "#event-link").await.len() > 1, "{}", text(c).await);

    c.goto(&format!("{url}/ops")).await.unwrap();
    click(c, "#backup-form select[name=kind] option[value='full']").await;
    click(c, "#backup-form input[name=confirm]").await;
    submit(c, "/ops/backups").await;
    let link = c
        .find(Locator::Id("event-link"))
        .await
        .expect("the backup's event")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    c.goto(&format!("{url}{link}")).await.unwrap();
    assert!(
        text(c).await.contains("backup.completed"),
        "{}",
        text(c).await
    );
    submit(c, "/logout").await;
    id
}

/// The prefecture, in English: its second factor, then the stolen device's
/// credential revoked and reissued from the incident's page.
async fn prefecture(w: &World, c: &Client, url: &str, id: &str, stolen: &str) {
    c.goto(&format!("{url}/lang/en?back=/ops/login"))
        .await
        .unwrap();
    sign_in(c, url, w.org.prefecture.as_str(), PREF_PASSWORD).await;
    assert!(
        text(c).await.contains("authenticator app"),
        "{}",
        text(c).await
    );
    fill(c, "code", &code_now(w, &web_common::totp_secret())).await;
    submit(c, "/ops/sign-in/code").await;
    assert_eq!(path(c).await, "/ops", "{}", text(c).await);
    // The prefecture does not see the incidents panel: its credentials panel
    // names the incident.
    type_into(c, "#incident-rotation-form input[name=incident]", id).await;
    type_into(c, "#incident-rotation-form input[name=credential]", stolen).await;
    click(c, "#incident-rotation-form input[name=confirm]").await;
    submit(c, "/ops/rotations").await;
    let done = text(c).await;
    assert!(done.contains("revoked and reissued"), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_14_4_an_operator_works_a_theft_and_backs_up_in_the_browser_while_providers_submit() {
    let w = Arc::new(World::new("web_browser_operate").await);
    let nats = mebyo_bus::testkit::NatsServer::start();
    let Scene {
        hanako,
        bus: _bus,
        client,
        ..
    } = w.clinic_and_hanako(&nats).await;
    // The stolen device is a pharmacy's; the clinic is not affected.
    let (pharmacy, _) = w.provider("pharmacy-b", ConnectionClass::TlsInternet).await;
    let mut cfg = WebConfig::new(w.tmp.path());
    cfg.bind = "127.0.0.1:0".parse().unwrap();
    let web = mebyo_web::serve(w.platform.clone(), cfg).await.unwrap();
    let om = Subject::Staff(w.org.operations_manager.clone());
    web.set_one_time_password(&om, OM_ONE_TIME).await.unwrap();
    let pref = Subject::Staff(w.org.prefecture.clone());
    web.set_password(&pref, PREF_PASSWORD, None).await.unwrap();
    web.enrol_second_factor(&pref, &web_common::totp_secret())
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (stop, person) = (stop.clone(), hanako.id.to_string());
        async move {
            let mut answers = Vec::new();
            let file = jahis_sample();
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let item = mebyo_provider::jahis_item(&person, &file);
                let a = client
                    .submit(vec![item], &format!("during-ops-{n}"), 1)
                    .await
                    .expect("the bus answers");
                answers.push(a.error().map(|e| e.0.to_string()));
            }
            answers
        }
    });

    let driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path(), false).await;
    let url = web.url();
    let stolen = pharmacy.credential.to_string();
    let r = tokio::spawn({
        let (w, c, url) = (w.clone(), c.clone(), url.clone());
        async move {
            let id = manager(&w, &c, &url).await;
            prefecture(&w, &c, &url, &id, &stolen).await;
        }
    })
    .await;
    let _ = c.close().await;
    stop.store(true, Ordering::SeqCst);
    let answers = traffic.await.unwrap();
    if let Err(e) = r {
        std::panic::resume_unwind(e.into_panic());
    }
    assert!(
        !answers.is_empty(),
        "the clinic submitted while staff worked"
    );
    let refused: Vec<_> = answers.iter().flatten().collect();
    assert!(refused.is_empty(), "every submission accepted: {refused:?}");
    assert!(w.count("backup.completed").await >= 1);
    assert!(w.count("credential.revoked").await >= 1);
    println!(
        "{} submissions accepted while the operator worked the incident",
        answers.len()
    );
}
