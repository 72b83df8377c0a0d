//! Helpers for the end-to-end tests: find (and build) the real `mebyo` binary,
//! run it in a temporary directory, and pick seeds that a failure prints so it
//! can be replayed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `mebyo` binary, built once per test process with the same profile as the
/// tests. Building through cargo (rather than assuming a path) means a test never
/// runs a stale binary.
pub fn mebyo_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "mebyo",
                "--bin",
                "mebyo",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("running cargo to build the mebyo binary");
        assert!(
            out.status.success(),
            "building the mebyo binary failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "mebyo")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no mebyo executable")
    })
}

/// Runs `mebyo ARGS` and returns its output.
pub fn mebyo(args: &[&str]) -> Output {
    Command::new(mebyo_bin())
        .args(args)
        .env("MEBYO_LOG", "error")
        .output()
        .expect("running mebyo")
}

/// `mebyo audit grant --data DATA --auditor AUDITOR --by BY` and any `extra`
/// arguments (the grant tests' one spelling of it).
pub fn audit_grant(data: &str, auditor: &str, by: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "audit",
        "grant",
        "--data",
        data,
        "--auditor",
        auditor,
        "--by",
        by,
    ];
    args.extend_from_slice(extra);
    mebyo(&args)
}

/// A seed from `MEBYO_TEST_SEED`, or a fresh one; printed so a failure replays.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("MEBYO_TEST_SEED") {
        Ok(s) => s.parse().expect("MEBYO_TEST_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: seed {seed} (replay with MEBYO_TEST_SEED={seed})");
    seed
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Reads a spawned `mebyo serve`'s stdout until it prints `listening on URL`;
/// returns the URL and everything printed until then, and keeps draining stdout
/// afterwards so the server never blocks on a full pipe. Fails, saying what was
/// printed, if the server exits first or prints no address within two minutes.
pub fn wait_for_listening(child: &mut std::process::Child) -> (String, String) {
    use std::io::{BufRead, BufReader};
    let mut out = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut stdout = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no address printed: {stdout}"
        );
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("mebyo serve exited early: {stdout}");
        }
        stdout.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("listening on ") {
            let url = url.to_string();
            std::thread::spawn(move || for _ in out.lines() {});
            return (url, stdout);
        }
    }
}

/// RFC 3339 (UTC, minutes) `days` from now, computed without a date crate.
pub fn in_days(days: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(days * 86_400);
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    rfc3339_s(secs)
}

/// RFC 3339 (UTC, minutes) of a Unix time in seconds, for tests on a test clock.
pub fn rfc3339_s(secs: i64) -> String {
    let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = d + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:00Z",
        s / 3600,
        (s % 3600) / 60
    )
}

/// An HTTPS client for a served data directory: it trusts exactly the
/// certificate `serve` made there (`DATA/tls/cert.pem`) and nothing else.
pub fn served_client(data: &Path) -> reqwest::Client {
    let cert = std::fs::read_to_string(data.join("tls/cert.pem")).expect("DATA/tls/cert.pem");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("a PEM"))
        .tls_built_in_root_certs(false)
        .https_only(true)
        .build()
        .expect("client")
}

/// The staff `serve` appoints on a new directory (its first start).
pub const FIRST_START_STAFF: [&str; 6] = [
    "ba-0001",
    "om-0001",
    "soa-0001",
    "office-0001",
    "pref-0001",
    "audit-0001",
];

/// A running `mebyo serve`: killed and reaped when dropped, unless [`stop`]ped.
pub struct Served {
    pub child: std::process::Child,
    /// `https://127.0.0.1:PORT`, as the server printed it.
    pub url: String,
    /// What it printed up to and with the `listening on` line.
    pub printed: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mebyo serve --data DATA` on a free port, with `extra` arguments, once it
/// listens. The one way the tests start the real server from its binary.
// The child is killed and waited for by `Served`'s Drop, or by `stop`.
#[allow(clippy::zombie_processes)]
pub fn serve(data: &std::path::Path, extra: &[&str]) -> Served {
    use std::process::{Command, Stdio};
    let mut child = Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running mebyo serve");
    let (url, printed) = wait_for_listening(&mut child);
    Served {
        child,
        url,
        printed,
    }
}

/// SIGTERM, then at most 30 s for the server to stop, which it must do cleanly
/// (exit 0: the tick, the bus it holds and the web ended, the ledger let go).
pub fn stop(mut s: Served) {
    use std::time::{Duration, Instant};
    let pid = s.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "mebyo serve exited with {st}");
            return;
        }
        assert!(Instant::now() < deadline, "mebyo serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
