//! The provider's walkthrough of docs/bus.md, with the real binaries only: the
//! example client `mebyo-provider` makes a key, the office registers it with
//! `mebyo providers register-key` (P4.12(1)), `mebyo serve --nats` serves the bus
//! over mutual TLS (P4.6(1)) through a real nats-server, and the client submits a
//! FHIR blood-pressure observation and a JAHIS medication-notebook file, reads
//! them back under consent (P4.6(2)), lists its consents and follows its feed.
//! Bad input to the key registration is refused and changes nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mebyo_bus::testkit::{NatsServer, identity};
use mebyo_domain::consent::Purpose;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};
use mebyo_tests::{mebyo, path_str};
use serde_json::Value;

/// The `mebyo-provider` binary, built by cargo once per test process (never a
/// stale one), like `mebyo_tests::mebyo_bin`.
fn provider_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "mebyo-provider",
                "--bin",
                "mebyo-provider",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("running cargo to build mebyo-provider");
        assert!(
            out.status.success(),
            "building mebyo-provider failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["reason"] == "compiler-artifact" && v["target"]["name"] == "mebyo-provider"
            })
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no mebyo-provider executable")
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A platform with the organisation, one VPN-connected provider (no key yet)
/// and one person who consented to it for vitals and the medication notebook.
/// Set up through the real commands, on the system clock and real time, as
/// `mebyo serve` will run it. Returns (provider, credential, person).
async fn set_up(data: &Path) -> (String, String, String) {
    let opts = || Options {
        seed: Some(5),
        ..Default::default()
    };
    Platform::init(data, Settings::default(), opts())
        .await
        .unwrap();
    let p = Platform::open(data, opts()).await.unwrap();
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-a", ConnectionClass::IpsecIkeVpn)
        .await
        .unwrap();
    let hanako = world::enroll_individual(&p, &org, &identity(1))
        .await
        .unwrap();
    world::grant_consent(
        &p,
        &hanako,
        &clinic.id,
        &[Category::Vitals, Category::MedicationNotebook],
        Purpose::Care,
        30,
    )
    .await
    .unwrap();
    assert_eq!(org.office.as_str(), "office-0001");
    (
        clinic.id.to_string(),
        clinic.credential.to_string(),
        hanako.id.to_string(),
    )
}

/// `mebyo serve` as a child process, stopped (and reaped) on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn provider_client_walkthrough_against_mebyo_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = path_str(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, credential, person) = rt.block_on(set_up(&data));
    drop(rt);

    // 1. The provider makes its key pair; the public key is what it hands over.
    let key = tmp.path().join("clinic.key");
    let out = Command::new(provider_bin())
        .args(["keygen", "--out", path_str(&key)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 64, "{public}");
    let public_file = tmp.path().join("clinic.pub");
    std::fs::write(&public_file, format!("{public}\n")).unwrap();

    // 2. The office registers it (P4.12(1)). Bad input first: each is refused
    // with a clear message and leaves the ledger as it was.
    let log = data.join("ledger/events.log");
    let before = std::fs::read(&log).unwrap();
    let garbage = tmp.path().join("garbage.pub");
    std::fs::write(&garbage, "not a key").unwrap();
    let register = |staff: &str, cred: &str, file: &Path| {
        mebyo(&[
            "providers",
            "register-key",
            "--data",
            d,
            "--as",
            staff,
            "--credential",
            cred,
            "--public-key",
            path_str(file),
        ])
    };
    let r = register("office-0001", &credential, &garbage);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(text(&r).contains("P4.12(1)"), "{}", text(&r));
    let r = register("office-0001", "cred-no-such", &public_file);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(
        text(&r).contains("credential.unknown") && text(&r).contains("P4.12(1)"),
        "{}",
        text(&r)
    );
    // The auditor may not register keys: only the prefecture or its office.
    let r = register("audit-0001", &credential, &public_file);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    assert!(text(&r).contains("P4.12(1)"), "{}", text(&r));
    let after = std::fs::read(&log).unwrap();
    assert_eq!(
        after.len(),
        before.len(),
        "refused registrations write nothing"
    );

    let listed = mebyo(&["providers", "list", "--data", d]);
    assert!(listed.status.success(), "{}", text(&listed));
    let row = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.contains(&credential))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert!(
        row(&listed).starts_with(&format!("{provider}\t{credential}\tactive\t-")),
        "{}",
        text(&listed)
    );

    let r = register("office-0001", &credential, &public_file);
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains(&public), "{}", text(&r));
    let listed = mebyo(&["providers", "list", "--data", d]);
    assert!(
        row(&listed).ends_with(&format!("\tactive\t{public}")),
        "{}",
        text(&listed)
    );
    // Registering the same key again is no change, and writes nothing.
    let len = std::fs::metadata(&log).unwrap().len();
    let r = register("office-0001", &credential, &public_file);
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);

    // 3. The platform serves the bus over mutual TLS through a real nats-server.
    let nats = NatsServer::start_tls();
    let pki = nats.tls.clone().expect("TLS server");
    let mut child = Command::new(mebyo_tests::mebyo_bin())
        .args([
            "serve",
            "--data",
            d,
            "--listen",
            "127.0.0.1:0",
            "--nats",
            &nats.url(),
            "--nats-ca",
            path_str(&pki.ca),
            "--nats-cert",
            path_str(&pki.client_cert),
            "--nats-key",
            path_str(&pki.client_key),
        ])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _serve = Serve(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("mebyo serve printed `serving providers on …` within 60 s");
        if line.starts_with("serving providers on ") {
            break;
        }
    }

    // 4. The client, as docs/bus.md shows it.
    let client = |args: &[&str]| {
        let mut all = vec![
            "--url",
            &nats.url(),
            "--ca",
            path_str(&pki.ca),
            "--cert",
            path_str(&pki.client_cert),
            "--cert-key",
            path_str(&pki.client_key),
            "--provider",
            &provider,
            "--credential",
            &credential,
            "--key",
            path_str(&key),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        all.extend(args.iter().map(|s| s.to_string()));
        Command::new(provider_bin()).args(&all).output().unwrap()
    };
    let json = |o: &Output| -> Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: not a JSON answer: {}", text(o)))
    };

    let consents = client(&["consents"]);
    assert!(consents.status.success(), "{}", text(&consents));
    let listed = &json(&consents)["result"]["consents"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["person"], person.as_str());
    assert_eq!(listed[0]["status"], "active");

    // A FHIR blood-pressure observation, exactly once.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let rfc3339 = |us: i64| mebyo_bus::wire::rfc3339(mebyo_domain::Timestamp(us));
    let at = rfc3339(now_us - 3_600_000_000);
    let bp = [
        "submit-bp",
        "--person",
        &person,
        "--systolic",
        "128",
        "--diastolic",
        "82",
        "--at",
        &at,
        "--original-id",
        "lab-2026-000123",
    ];
    let first = client(&bp);
    assert!(first.status.success(), "{}", text(&first));
    let first_body = json(&first);
    let item = &first_body["result"]["items"][0];
    assert_eq!(item["status"], "added", "{first_body}");
    let bp_record = item["records"][0]["record"].as_str().unwrap().to_string();
    assert!(bp_record.starts_with("rec-"), "{bp_record}");
    let again = client(&bp);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(json(&again), first_body, "a retry gets the first answer");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("first answer"),
        "{}",
        text(&again)
    );

    // A JAHIS medication-notebook file: one record per medicine.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../adapters/bus/provider-client/samples/okusuri-techo.csv");
    let jahis = client(&[
        "submit-jahis",
        "--person",
        &person,
        "--file",
        path_str(&sample),
    ]);
    assert!(jahis.status.success(), "{}", text(&jahis));
    let jahis_body = json(&jahis);
    let item = &jahis_body["result"]["items"][0];
    assert_eq!(item["status"], "added", "{jahis_body}");
    let medicines = item["records"].as_array().unwrap();
    assert!(medicines.len() >= 2, "{jahis_body}");

    // Read back under the consent (P4.6(2)): the observation and the medicines.
    // Within the consent's period (the last ten years up to tomorrow, P4.6(2)).
    let (from, to) = (
        rfc3339(now_us - 30 * 86_400_000_000),
        rfc3339(now_us + 60_000_000),
    );
    let query = |cat: &str, purpose: &str| {
        client(&[
            "query",
            "--person",
            &person,
            "--category",
            cat,
            "--purpose",
            purpose,
            "--from",
            &from,
            "--to",
            &to,
        ])
    };
    let q = query("vitals", "care");
    assert!(q.status.success(), "{}", text(&q));
    let records = json(&q)["result"]["records"].clone();
    let bp = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"] == bp_record.as_str())
        .unwrap_or_else(|| panic!("the observation is readable: {records}"));
    assert_eq!(
        bp["resource"]["component"][0]["valueQuantity"]["value"],
        128
    );
    assert_eq!(bp["provenance"]["original_identifier"], "lab-2026-000123");
    let q = query("medication_notebook", "care");
    assert!(q.status.success(), "{}", text(&q));
    let meds = json(&q)["result"]["records"].clone();
    assert_eq!(meds.as_array().unwrap().len(), medicines.len(), "{meds}");
    assert!(
        meds.to_string().contains("アムロジピン"),
        "the medicine's name came through from Shift_JIS: {meds}"
    );
    // Another purpose than the consent's is refused, and says why (P4.6(2)).
    let q = query("vitals", "health_guidance");
    assert!(!q.status.success(), "{}", text(&q));
    assert_eq!(json(&q)["error"]["clause"], "P4.6(2)", "{}", text(&q));

    // The feed: the consent this provider was granted, then acknowledged.
    let follow = client(&["follow", "--idle-exit", "5"]);
    assert!(follow.status.success(), "{}", text(&follow));
    let msgs: Vec<Value> = String::from_utf8_lossy(&follow.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let granted = msgs
        .iter()
        .find(|m| m["type"] == "consent.granted")
        .unwrap_or_else(|| panic!("a consent.granted message: {msgs:?}"));
    assert_eq!(granted["provider"], provider.as_str());
    assert_eq!(granted["data"]["person"], person.as_str());
    // Acknowledged: following again finds nothing new.
    let follow = client(&["follow", "--idle-exit", "5"]);
    assert!(follow.status.success(), "{}", text(&follow));
    assert_eq!(String::from_utf8_lossy(&follow.stdout).trim(), "");
}
