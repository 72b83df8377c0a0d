//! docs/bus.md is true (issue 22 §8): its NATS server configuration, exactly as
//! written, runs the platform's bus and isolates providers; its table of reply
//! codes lists every code the bus can answer.

use crate::bus_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_support::*;
use futures::StreamExt;
use mebyo_bus::testkit::{NatsServer, async_nats};
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_provider::{ProviderClient, blood_pressure, fhir_item};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn guide() -> String {
    std::fs::read_to_string(repo().join("docs/bus.md")).expect("reading docs/bus.md")
}

/// The fenced block after the guide's `<!-- nats-server.conf` marker, as it is.
fn guide_nats_config() -> String {
    let text = guide();
    let marker = text
        .find("<!-- nats-server.conf")
        .expect("docs/bus.md §10 has a block marked `<!-- nats-server.conf`");
    let rest = &text[marker..];
    let start = rest.find("```\n").expect("a fenced block after the marker") + 4;
    let end = rest[start..].find("```").expect("the fenced block ends") + start;
    rest[start..end].to_string()
}

/// A raw NATS connection with this test PKI's certificate `name`, recording the
/// server's errors (permission violations are reported that way).
async fn raw(
    nats: &NatsServer,
    name: &str,
    inbox: &str,
) -> (async_nats::Client, Arc<Mutex<Vec<String>>>) {
    let tls = nats.tls.as_ref().unwrap().named_tls(name);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let c = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(tls.ca)
        .add_client_certificate(tls.cert, tls.key)
        .custom_inbox_prefix(inbox)
        .event_callback(move |e| {
            let seen = seen.clone();
            async move {
                if let async_nats::Event::ServerError(e) = e {
                    seen.lock().unwrap().push(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("{name} could not connect: {e}\n{}", nats.log()));
    (c, errors)
}

/// Waits (bounded) until the server has reported a permission violation
/// naming `subject`.
async fn violation(errors: &Mutex<Vec<String>>, subject: &str) {
    for _ in 0..500 {
        if errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.to_lowercase().contains("permissions violation") && e.contains(subject))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no permissions violation for {subject} within 10 s; errors: {:?}",
        errors.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_6_1_the_guides_nats_configuration_serves_and_isolates_providers() {
    let w = World::new("p4_6_1_the_guides_nats_configuration_serves_and_isolates_providers").await;
    let nats = NatsServer::start_configured(
        &["mebyo-platform", "clinic-a", "clinic-b"],
        &guide_nats_config(),
    );
    let pki = nats.tls.clone().unwrap();
    let (clinic, key) = w.provider("clinic-a", ConnectionClass::IpsecIkeVpn).await;
    let (_other, _other_key) = w.provider("clinic-b", ConnectionClass::IpsecIkeVpn).await;
    let hanako = w.person(1).await;
    w.consent(&hanako, &clinic, &[Category::Vitals], 30).await;

    // The platform serves with its own user's permissions (it died at start
    // with the guide's earlier ones).
    let mut cfg = w.bus_config(&nats);
    cfg.tls = Some(pki.named_tls("mebyo-platform"));
    let bus = mebyo_bus::serve(w.platform.clone(), cfg)
        .await
        .unwrap_or_else(|e| panic!("serve: {e}\n{}", nats.log()));

    // clinic-a submits, queries and reads its feed with its certificate.
    let tls = pki.named_tls("clinic-a");
    let clock = w.clock.clone();
    let c = ProviderClient::connect(
        &nats.url(),
        Some(&mebyo_provider::Tls {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
        }),
        clinic.id.as_str(),
        clinic.credential.as_str(),
        key,
    )
    .await
    .unwrap()
    .with_clock(Arc::new(move || {
        use mebyo_store::Clock;
        (clock.now_us() / 1000) as u64
    }));
    let person = hanako.id.as_str();
    let when = w.at(1);
    let a = c
        .submit(
            vec![fhir_item(
                person,
                "vitals",
                &when,
                "x-1",
                blood_pressure(person, 120, 80, &when),
            )],
            "k-1",
            3,
        )
        .await
        .unwrap();
    assert!(a.is_ok(), "{:?}\n{}", a.body, nats.log());
    let q = c
        .query(person, &["vitals"], "care", "2026-01-01", "2026-11-27")
        .await
        .unwrap();
    assert_eq!(q.result().unwrap()["records"].as_array().unwrap().len(), 1);
    let mut feed = Vec::new();
    for _ in 0..50 {
        feed.extend(
            c.feed("MEBYO_FEED", 10, Duration::from_millis(200))
                .await
                .unwrap_or_else(|e| panic!("feed: {e}\n{}", nats.log())),
        );
        if !feed.is_empty() {
            break;
        }
    }
    assert_eq!(feed[0]["type"], "consent.granted", "{feed:?}");

    // Anyone with a provider's certificate hears the checkpoints (§9a).
    let (a_raw, a_errors) = raw(&nats, "clinic-a", "_INBOX.clinic-a").await;
    let mut checkpoints = a_raw.subscribe("mebyo.v1.checkpoints").await.unwrap();
    a_raw.flush().await.unwrap();
    let note = bytes_of("mebyo.example/ledger\n1\nAAAA\n");
    // Published by the platform's own connection, as `serve` does; repeated
    // until heard, since the subscription reaches the server asynchronously.
    let mut heard = None;
    for _ in 0..100 {
        bus.client()
            .publish("mebyo.v1.checkpoints", note.clone())
            .await
            .unwrap();
        bus.client().flush().await.unwrap();
        if let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(100), checkpoints.next()).await
        {
            heard = Some(m);
            break;
        }
    }
    assert_eq!(heard.expect("a checkpoint heard").payload, note);

    // ... and nothing of another provider's: not its requests, answers or feed.
    for subject in [
        "mebyo.v1.svc.clinic-b.>",
        "_INBOX.clinic-b.>",
        "mebyo.v1.feed.clinic-b.>",
        "_INBOX_MEBYO.>",
    ] {
        let _sub = a_raw.subscribe(subject).await.unwrap();
        violation(&a_errors, subject).await;
    }
    for subject in [
        "mebyo.v1.svc.clinic-b.records.query",
        "$JS.API.CONSUMER.INFO.MEBYO_FEED.feed-clinic-b",
        "mebyo.v1.checkpoints",
    ] {
        a_raw.publish(subject, bytes_of("{}")).await.unwrap();
        a_raw.flush().await.unwrap();
        violation(&a_errors, subject).await;
    }
    // A certificate that maps to no user gets nowhere.
    let stranger = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.ca.clone())
        .add_client_certificate(pki.client_cert.clone(), pki.client_key.clone())
        .connect(nats.url())
        .await;
    let stranger_works = match stranger {
        Err(_) => false,
        Ok(s) => tokio::time::timeout(Duration::from_secs(2), s.flush())
            .await
            .is_ok_and(|r| r.is_ok()),
    };
    assert!(!stranger_works, "a certificate of no user got in");
    bus.shutdown().await;
}

fn bytes_of(s: &str) -> mebyo_bus::testkit::bytes::Bytes {
    mebyo_bus::testkit::bytes::Bytes::from(s.as_bytes().to_vec())
}

// ---- §5: every code the bus can answer is documented -------------------------------

/// String literals shaped like refusal codes (`area.name`) in `text`.
fn codes_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find('"') {
        rest = &rest[i + 1..];
        let Some(j) = rest.find('"') else { break };
        let lit = &rest[..j];
        rest = &rest[j + 1..];
        let shaped = lit.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && lit.bytes().filter(|c| *c == b'.').count() == 1
                && lit
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_' || c == b'.')
        });
        if shaped {
            out.insert(lit.to_string());
        }
    }
    out
}

/// The codes of the refusals constructed in `text` by `ErrorBody::new(`.
fn error_body_codes(text: &str) -> BTreeSet<String> {
    text.split("ErrorBody::new(")
        .skip(1)
        .filter_map(|after| {
            let after = after.trim_start();
            let lit = after.strip_prefix('"')?;
            Some(lit[..lit.find('"')?].to_string())
        })
        .collect()
}

/// The body of `fn name` in `text` (braces matched; the domain's sources have
/// no braces in strings within these functions).
fn function(text: &str, name: &str) -> String {
    let at = [format!("fn {name}("), format!("fn {name}<")]
        .iter()
        .find_map(|f| text.find(f.as_str()))
        .unwrap_or_else(|| panic!("fn {name} not found"));
    let open = at + text[at..].find('{').expect("a body");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return text[open..open + i + 1].to_string();
                }
            }
            _ => {}
        }
    }
    panic!("fn {name}: unbalanced braces")
}

#[test]
fn p4_4_every_code_the_bus_answers_is_in_the_guide() {
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).expect(p);
    let mut codes = BTreeSet::new();
    // The bus's own refusals, in every source file of the crate.
    for entry in std::fs::read_dir(repo().join("adapters/bus/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("testkit.rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            codes.extend(error_body_codes(text));
        }
    }
    // What the bus answers when the machinery fails or a handler panics.
    codes.extend(codes_in(&function(
        &read("adapters/bus/src/lib.rs"),
        "caught",
    )));
    // The domain's deciders on the bus's paths: credential and provider checks
    // (every request), record submission, consent coverage and read access.
    let domain = [
        ("domain/src/credential.rs", "authenticate"),
        ("domain/src/provider.rs", "provider_check"),
        ("domain/src/records.rs", "provenance"),
        ("domain/src/records.rs", "entry"),
        ("domain/src/consent.rs", "active_at"),
        ("domain/src/consent.rs", "covers_read"),
        ("domain/src/consent.rs", "covers_write"),
        ("domain/src/consent.rs", "find_covering"),
        ("domain/src/access.rs", "decide"),
    ];
    for (file, f) in domain {
        codes.extend(codes_in(&function(&read(file), f)));
    }
    // Codes on those paths that a request over the bus cannot meet, and why.
    let unreachable = [
        // Other actors and channels: the bus's actor is always a provider on
        // the provider gateway.
        "access.channel",
        "access.not_own",
        "access.staff",
        "access.unauthenticated",
        "record.no_health_access",
        // The bus always submits medical-institution data.
        "record.origin_mismatch",
        // Record streams are per person by construction.
        "record.stream_mismatch",
        // Answered `added`: the request's own earlier attempt wrote it.
        "record.exists",
    ];
    for u in unreachable {
        assert!(codes.remove(u), "{u} is no longer on the bus's paths");
    }
    assert!(codes.len() > 30, "the scan found too little: {codes:?}");
    let text = guide();
    let s5 = &text[text.find("## 5. Replies").expect("§5")..text.find("## 6.").expect("§6")];
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| !s5.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/bus.md §5 does not list {missing:?}"
    );
}
