//! `mebyo serve` through the real binary (issue 6 §1): a missing data directory is
//! created and initialised, a self-signed certificate is made in it, the HTTPS
//! address is printed, staff one-time passwords go to a 0600 file (never the
//! terminal), and Ctrl-C stops it cleanly. A restart keeps the certificate.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mebyo_tests::{mebyo_bin, path_str};
use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    stdout: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is killed and waited for by `Server`'s Drop; clippy cannot see that.
#[allow(clippy::zombie_processes)]
fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running mebyo serve");
    let (url, stdout) = mebyo_tests::wait_for_listening(&mut child);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    Server { child, url, stdout }
}

fn stop(mut s: Server, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "mebyo serve exited with {st}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mebyo serve did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(cert: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .https_only(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_a_platform_speaks_https_and_stops_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = start(&data);
    assert!(s.stdout.contains("created a new platform"), "{}", s.stdout);
    // The one-time passwords never reach the terminal.
    let pw_file = data.join("auth/initial-passwords.txt");
    let pw = std::fs::read_to_string(&pw_file).unwrap();
    assert_eq!(
        std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let office_pw = pw
        .lines()
        .find_map(|l| l.strip_prefix("office-0001 "))
        .expect("office account")
        .to_string();
    assert!(!s.stdout.contains(&office_pw));
    let key_mode = std::fs::metadata(data.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "TLS key is private");
    let cert = std::fs::read_to_string(data.join("tls/cert.pem")).unwrap();
    let http = client(&cert);
    let r = http.get(format!("{}/livez", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    let r = http.get(format!("{}/readyz", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // Staff sign in with the one-time password, which must be replaced before the
    // session acts for anyone (issue 15 §5); sign-up works on a fresh platform.
    let r = http
        .post(format!("{}/api/v1/session", s.url))
        .json(&json!({"kind": "staff", "login": "office-0001", "password": office_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let login: Value = r.json().await.unwrap();
    assert_eq!(login["next"], "change_password", "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{}/api/v1/ops/summary", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "auth.sign_in_incomplete"
    );
    let r = http
        .post(format!("{}/api/v1/me/password", s.url))
        .bearer_auth(&token)
        .json(&json!({"current_password": office_pw, "new_password": "office-own-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    // The one-time password is spent: it signs in no more.
    let r = http
        .post(format!("{}/api/v1/session", s.url))
        .json(&json!({"kind": "staff", "login": "office-0001", "password": office_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/api/v1/signup", s.url))
        .json(&json!({"name": "鈴木 太郎", "address": "神奈川県藤沢市1-2-3", "birth_date": "1975-01-02",
            "email": "taro@example.jp", "password": "a-long-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let summary: Value = http
        .get(format!("{}/api/v1/ops/summary", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The sign-up, and the synthetic person serve's probe reads as (P4.4(2)).
    assert_eq!(summary["registrations"]["registered"], 2, "{summary}");
    stop(s, "-INT");

    // A restart opens the same platform and keeps the certificate.
    let s = start(&data);
    assert!(!s.stdout.contains("created a new platform"), "{}", s.stdout);
    assert_eq!(
        std::fs::read_to_string(data.join("tls/cert.pem")).unwrap(),
        cert
    );
    let r = http.get(format!("{}/livez", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Sessions are in memory only: the old token is gone after a restart.
    let r = http
        .get(format!("{}/api/v1/me", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    stop(s, "-TERM");
}
