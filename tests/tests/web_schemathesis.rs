//! The OpenAPI document describes the server (issue 22 §7): Schemathesis, with
//! every check on, generates requests from `/api/openapi.json` and sends them to
//! a real `mebyo serve` on a fresh demo directory, signed in as an individual.
//! Any finding fails the test: a status the document does not list, an answer
//! that does not fit its schema, a request valid by the schema that the server
//! refuses or one invalid by it that the server accepts, a 5xx.
//!
//! Schemathesis is a Python tool; `scripts/test` installs the pinned version.
//! Without it this test fails and says so (a missing tool is no pass).

use std::process::{Child, Command, Stdio};

use mebyo_tests::{mebyo, mebyo_bin, path_str};
use serde_json::{Value, json};

/// The version `scripts/test` installs; findings depend on the tool's checks.
const SCHEMATHESIS: &str = "4.32.5";
/// Cases per operation and phase: bounded, so that the run stays near a minute on
/// two cores.
const MAX_EXAMPLES: &str = "25";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn schemathesis_version() -> String {
    let out = Command::new("schemathesis")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "schemathesis is missing ({e}): install it with \
                 `pip install schemathesis=={SCHEMATHESIS}` (scripts/test does)"
            )
        });
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Signs up an individual through the API, signs in and accepts the policy, so
/// that the generated requests reach the routes' own rules.
async fn individual_token(http: &reqwest::Client, url: &str) -> String {
    let (email, password) = ("schemathesis@example.jp", "schemathesis-password-1");
    let r = http
        .post(format!("{url}/api/v1/signup"))
        .json(&json!({
            "name": "神奈川 検査", "address": "神奈川県横浜市中区日本大通1",
            "birth_date": "1980-05-05", "email": email, "password": password
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "signup: {:?}", r.text().await);
    let r = http
        .post(format!("{url}/api/v1/session"))
        .json(&json!({"kind": "individual", "login": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login: {:?}", r.text().await);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{url}/api/v1/me/policy"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "policy: {:?}", r.text().await);
    token
}

/// The ERRORS and FAILURES sections of a report (up to its WARNINGS or SUMMARY),
/// at most a few thousand characters: what a reader of a failed CI run needs first.
fn findings(report: &str) -> String {
    let from = ["ERRORS", "FAILURES"]
        .iter()
        .filter_map(|s| report.find(s))
        .min()
        .unwrap_or(0);
    let to = report[from..]
        .find("SUMMARY")
        .map_or(report.len(), |i| from + i);
    report[from..to].chars().take(4000).collect()
}

/// One Schemathesis run over the operations `filter` selects; its report is the
/// failure message.
fn run(url: &str, cert: &std::path::Path, token: &str, filter: &[&str], seed: u64) {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis.toml");
    let out = Command::new("schemathesis")
        .args(["--no-color", "--config-file", path_str(&config), "run"])
        .arg(format!("{url}/api/openapi.json"))
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        // One worker: with two, Hypothesis parses its own source from two threads
        // at once and CPython 3.11 fails with "AST constructor recursion depth
        // mismatch", a Runtime Error of the tool, not a finding (seen in CI and
        // with MEBYO_TEST_SEED=1514930888).
        .args(["--phases", "examples,coverage,fuzzing", "--workers", "1"])
        .args(["--seed", &seed.to_string()])
        .args(["--tls-verify", path_str(cert)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(filter)
        // Schemathesis replays the failures it cached where it ran; a fresh
        // directory per run keeps each run a function of its seed alone.
        .current_dir(cert.parent().expect("the certificate's directory"))
        .output()
        .expect("running schemathesis");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{report}");
    // CI shows the end of a failure's output: the findings go last, and short.
    assert!(
        out.status.success(),
        "schemathesis found the document and the server disagreeing \
         (replay with MEBYO_TEST_SEED={seed}):\n{report}\n---- the findings ----\n{}",
        findings(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_server() {
    // The report is the failure message: print it without a backtrace after it,
    // so that the end of a failed run's output, which CI shows, is the findings.
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    let version = schemathesis_version();
    assert_eq!(
        version,
        format!("schemathesis, version {SCHEMATHESIS}"),
        "install the pinned version: pip install schemathesis=={SCHEMATHESIS}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let demo = mebyo(&["demo", "--data", path_str(&data), "--people", "3"]);
    assert!(demo.status.success(), "{demo:?}");
    let mut child = Command::new(mebyo_bin())
        .args([
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running mebyo serve");
    let (url, _) = mebyo_tests::wait_for_listening(&mut child);
    let _server = Server(child);
    let cert = data.join("tls/cert.pem");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .tls_built_in_root_certs(false)
        .https_only(true)
        .build()
        .unwrap();
    let token = individual_token(&http, &url).await;
    let seed = mebyo_tests::seed("schemathesis");
    let (cert2, url2, token2) = (cert.clone(), url.clone(), token.clone());
    // Signing out ends the session every other case presents: it runs last, alone.
    tokio::task::spawn_blocking(move || {
        run(
            &url2,
            &cert2,
            &token2,
            &["--exclude-name", "DELETE /api/v1/session"],
            seed,
        )
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || {
        run(
            &url,
            &cert,
            &token,
            &["--include-name", "DELETE /api/v1/session"],
            seed,
        )
    })
    .await
    .unwrap();
}
