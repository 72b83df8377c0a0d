//! The CLI as a client of a running server (issue 15 §3), through the real
//! binary against a real `mebyo serve`: a staff member signs in once (the token
//! kept 0600 in the config folder, never printed), works an incident's runbook,
//! takes a backup and runs a restore drill, keeps the media ledger and announces
//! maintenance over `--server`, with the server's refusals printed like the
//! local commands' (exit 1, code and clause on stderr). The same command on the
//! data directory while the server holds it fails as before and points to
//! `--server`. Signing out removes the session file. The sign-in steps the
//! server may ask for next (a TOTP code, or the browser) are met against a
//! stand-in that answers as the contract says.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use mebyo_store::EventStore;
use mebyo_tests::{in_days, mebyo_bin, path_str, serve, stop};

/// `mebyo ARGS` as an operator on this machine: the session kept under `config`,
/// the server's self-signed certificate trusted, `stdin` piped in.
struct Operator {
    config: PathBuf,
    ca: Option<PathBuf>,
}

impl Operator {
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(mebyo_bin());
        cmd.args(args)
            .env("MEBYO_LOG", "error")
            .env("MEBYO_CONFIG_DIR", &self.config)
            .env_remove("MEBYO_CA")
            .env_remove("MEBYO_SERVER");
        if let Some(ca) = &self.ca {
            cmd.env("MEBYO_CA", ca);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running mebyo");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn session(&self) -> PathBuf {
        self.config.join("session.json")
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: Output, what: &str) -> String {
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{what}: {stdout}\n{stderr}");
    stdout
}

/// The one-time password `serve` wrote for a staff member of a fresh platform.
fn initial_password(data: &Path, staff: &str) -> String {
    let pw = std::fs::read_to_string(data.join("auth/initial-passwords.txt")).unwrap();
    pw.lines()
        .find_map(|l| l.strip_prefix(&format!("{staff} ")))
        .unwrap_or_else(|| panic!("no initial password for {staff}"))
        .to_string()
}

/// Signs `staff` in with `password` on standard input. The one place that knows
/// what a staff sign-in takes, so a forced password change or a TOTP step
/// (issue 15 §5) changes only this.
fn sign_in(op: &Operator, url: &str, staff: &str, password: &str) -> Output {
    op.run(
        &["login", "--server", url, "--as", staff, "--password-stdin"],
        &format!("{password}\n"),
    )
}

/// The same, with the code of the second factor for the step after this one
/// (the server accepts one step ahead; this step's code went to the enrolment).
fn sign_in_with_code(
    op: &Operator,
    url: &str,
    staff: &str,
    password: &str,
    secret: &mebyo_crypto::TotpSecret,
) -> Output {
    let code = secret.code_at(unix_s() + mebyo_crypto::TOTP_STEP_S);
    op.run(
        &[
            "login",
            "--server",
            url,
            "--as",
            staff,
            "--password-stdin",
            "--totp",
            &code,
        ],
        &format!("{password}\n"),
    )
}

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A staff member's first sign-in, done once in the browser's way over HTTPS
/// (issue 15 §5): the one-time password replaced, a second factor enrolled.
/// Returns the new password and the enrolled secret.
fn first_sign_in(
    url: &str,
    data: &Path,
    staff: &str,
    one_time: &str,
) -> (String, mebyo_crypto::TotpSecret) {
    use serde_json::{Value, json};
    let http = mebyo_tests::served_client(data);
    let own = format!("{staff}-own-password");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secret = rt.block_on(async {
        let login: Value = http
            .post(format!("{url}/api/v1/session"))
            .json(&json!({"kind": "staff", "login": staff, "password": one_time}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(login["next"], "change_password", "{login}");
        let token = login["token"].as_str().unwrap();
        let r = http
            .post(format!("{url}/api/v1/me/password"))
            .bearer_auth(token)
            .json(&json!({"current_password": one_time, "new_password": own}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let e: Value = http
            .get(format!("{url}/api/v1/session/second-factor"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = mebyo_crypto::TotpSecret::from_base32(e["secret"].as_str().unwrap()).unwrap();
        let r = http
            .post(format!("{url}/api/v1/session/second-factor"))
            .bearer_auth(token)
            .json(&json!({"code": secret.code_at(unix_s())}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        secret
    });
    (own, secret)
}

/// The ledger position and event hash a `--server` command printed.
fn position(stdout: &str) -> (u64, String) {
    let rest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("recorded at ledger position "))
        .unwrap_or_else(|| panic!("no position printed: {stdout}"));
    let (at, rest) = rest.split_once(", hash ").expect("a hash");
    let hash = rest.split_whitespace().next().unwrap();
    (at.parse().unwrap(), hash.to_string())
}

#[test]
fn staff_work_an_incident_and_take_a_backup_on_the_running_server_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = serve(&data, &[]);
    let url = server.url.clone();
    let op = Operator {
        config: tmp.path().join("config").join("mebyo"),
        ca: Some(data.join("tls/cert.pem")),
    };
    let staff = "soa-0001";
    signs_in_once(&op, &url, &data, staff);
    let on_server = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--server", url.as_str()]);
        op.run(&v, "")
    };

    // A theft of a device that never used the VPN, reported over --server.
    let open = ["ops", "incident", "open", "--kind", "theft-or-loss"];
    let stdout = ok(on_server(&open), "incident open");
    let id = stdout.lines().next().unwrap().to_string();
    assert!(id.starts_with("inc-"), "{stdout}");
    let reported_at = position(&stdout);

    // Out of the runbook's order: refused by the server's decider.
    let err = fails(
        on_server(&["ops", "incident", "step", &id, "report-to-soa"]),
        1,
    );
    assert!(
        err.contains("refused: incident.step_out_of_order (P4.14(4)): police-report must be done before report-to-soa"),
        "{err}"
    );
    // In order: recorded, and the answer names its event.
    let stdout = ok(
        on_server(&["ops", "incident", "step", &id, "police-report"]),
        "police-report",
    );
    let step_at = position(&stdout);
    assert!(step_at.0 > reported_at.0, "{stdout}");
    let link = format!("{url}/ops/events/{}", step_at.0);
    assert!(stdout.contains(&link), "{stdout}");

    // A backup now and a restore drill, on the server (its own backups folder).
    let stdout = ok(
        on_server(&["backup", "run", "--kind", "full"]),
        "backup run",
    );
    assert!(stdout.contains(" completed (full)"), "{stdout}");
    let backup_at = position(&stdout);
    let stdout = ok(on_server(&["backup", "drill"]), "backup drill");
    assert!(stdout.contains("drill passed"), "{stdout}");
    let drill_at = position(&stdout);
    // Revoking is the prefecture's (P4.13): the server says so, in the CLI's words.
    let revoke = ["providers", "revoke", "--credential", "cred-0000"];
    let err = fails(
        on_server(&[&revoke[..], &["--reason", "judged-risk"]].concat()),
        1,
    );
    assert!(
        err.starts_with("refused: staff.role_required (P4.13(3)): "),
        "{err}"
    );

    let routine = routine_on_the_server(&on_server);
    let keys = keys_on_the_server(&on_server, tmp.path());

    local_commands_point_to_the_server(&op, &data, staff, &id, &tmp.path().join("by-hand"));

    // Signing out ends the session on the server and removes the file.
    let stdout = ok(op.run(&["logout"], ""), "logout");
    assert!(stdout.contains("signed out"), "{stdout}");
    assert!(!op.session().exists());
    let err = fails(on_server(&open), 2);
    assert!(err.contains("not signed in"), "{err}");

    // The positions printed are the events of the log.
    stop(server);
    check_events(
        &data,
        &[
            (reported_at, "incident.reported"),
            (step_at, "incident.step_recorded"),
            (backup_at, "backup.completed"),
            (drill_at, "backup.verified"),
        ]
        .into_iter()
        .chain(routine)
        .chain(keys)
        .collect::<Vec<_>>(),
    );
}

/// The routine of operations over `--server` (P4.3, P4.7, P4.9): a medium
/// approved, refused a disposal short of destruction without a reason, destroyed;
/// a maintenance window announced a month ahead. The events printed.
fn routine_on_the_server(
    on_server: &dyn Fn(&[&str]) -> Output,
) -> Vec<((u64, String), &'static str)> {
    let digest = "ab".repeat(32);
    let approve = [
        "ops",
        "media",
        "approve",
        "--kind",
        "usb-memory",
        "--digest",
        &digest,
        "--custodian",
        "soa-0001",
        "--storage",
        "cabinet-a1",
        "--purpose",
        "annual-report",
    ];
    let stdout = ok(on_server(&approve), "media approve");
    let id = stdout.lines().next().unwrap().to_string();
    assert!(id.starts_with("med-"), "{stdout}");
    let approved = position(&stdout);
    let dispose = ["ops", "media", "dispose", "--id", &id, "--method"];
    let err = fails(on_server(&[&dispose[..], &["purge"]].concat()), 1);
    assert!(
        err.starts_with("refused: disposal.not_destroyed (P4.9(2)): "),
        "{err}"
    );
    let stdout = ok(on_server(&[&dispose[..], &["destroy"]].concat()), "dispose");
    let disposed = position(&stdout);
    let shown = ok(on_server(&["ops", "media", "show", "--id", &id]), "show");
    let entry: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(entry["status"], "disposed", "{entry}");

    let (starts, ends) = (in_days(30), in_days(31));
    let schedule = [
        "ops",
        "maintenance",
        "schedule",
        "--id",
        "mw-cli",
        "--starts",
        &starts,
        "--ends",
        &ends,
        "--affects",
        "portal",
        "--summary",
        "OS updates",
    ];
    let stdout = ok(on_server(&schedule), "maintenance schedule");
    assert!(stdout.contains("window mw-cli announced"), "{stdout}");
    let announced = position(&stdout);
    vec![
        (approved, "media.export_approved"),
        (disposed, "media.disposed"),
        (announced, "maintenance.scheduled"),
    ]
}

/// Keys and erasure over `--server` (P4.8(1), P4.9, P3.1(1), P4.12(1)), as the
/// system operations administrator: the KEK rotated while serving; an erasure of
/// nobody, a grant and a key registration (other roles' work) refused by the
/// server with their clauses; a malformed id refused before anything is sent.
fn keys_on_the_server(
    on_server: &dyn Fn(&[&str]) -> Output,
    dir: &Path,
) -> Vec<((u64, String), &'static str)> {
    let stdout = ok(on_server(&["keys", "rotate"]), "keys rotate");
    assert!(stdout.contains("rotated the KEK "), "{stdout}");
    assert!(stdout.contains("no event changed"), "{stdout}");
    let rotated = position(&stdout);

    let err = fails(
        on_server(&["erase", "--person", "p-00000000000000000000000000000000"]),
        1,
    );
    assert!(
        err.starts_with("refused: person.unknown (P2(1)): "),
        "{err}"
    );
    let err = fails(on_server(&["erase", "--person", "no such/person"]), 2);
    assert!(err.contains("--person is not a person id"), "{err}");
    // The witness is who signed in: naming another is refused before sending.
    let err = fails(
        on_server(&["erase", "--person", "p-1", "--witness", "soa-0002"]),
        2,
    );
    assert!(err.contains("not as soa-0002"), "{err}");

    let grant = ["audit", "grant", "--auditor", "aud-0001", "--days", "7"];
    let err = fails(on_server(&grant), 1);
    assert!(
        err.starts_with("refused: audit_grant.not_business_administrator (P3.1(1)): "),
        "{err}"
    );

    let key = dir.join("provider.pub");
    // The ed25519 base point: a valid public key.
    let base_point = format!("58{}", "66".repeat(31));
    std::fs::write(&key, format!("{base_point}\n")).unwrap();
    let register = [
        "providers",
        "register-key",
        "--credential",
        "cred-0000",
        "--public-key",
        path_str(&key),
    ];
    let err = fails(on_server(&register), 1);
    assert!(err.starts_with("refused: "), "{err}");
    assert!(err.contains("(P4.12(1))"), "{err}");
    std::fs::write(&key, "not hex").unwrap();
    let err = fails(on_server(&register), 2);
    assert!(err.contains("provider.pub"), "{err}");
    vec![(rotated, "keys.kek_rotated")]
}

/// Exit `code`; its stderr.
fn fails(out: Output, code: i32) -> String {
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    stderr
}

/// A wrong password leaves no session; the right one keeps a session file only
/// its owner reads, and prints neither the password nor the token.
fn signs_in_once(op: &Operator, url: &str, data: &Path, staff: &str) {
    let err = fails(sign_in(op, url, staff, "not-the-password"), 1);
    assert!(err.contains("refused: auth.failed (P4.8(2))"), "{err}");
    assert!(!op.session().exists());

    // The one-time password must be replaced first, in the browser: the CLI
    // says so and keeps no session.
    let one_time = initial_password(data, staff);
    let err = fails(sign_in(op, url, staff, &one_time), 1);
    assert!(err.contains("/ops/login"), "{err}");
    assert!(!op.session().exists());
    let (password, secret) = first_sign_in(url, data, staff, &one_time);
    // A wrong code: refused, no session.
    let bad = op.run(
        &[
            "login",
            "--server",
            url,
            "--as",
            staff,
            "--password-stdin",
            "--totp",
            "000000",
        ],
        &format!("{password}\n"),
    );
    let err = fails(bad, 1);
    assert!(err.contains("auth.second_factor_invalid"), "{err}");
    assert!(!op.session().exists());
    let out = sign_in_with_code(op, url, staff, &password, &secret);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let want = format!("signed in to {url} as {staff}");
    assert!(stdout.contains(&want), "{stdout}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&op.session()), 0o600);
    assert_eq!(mode(&op.config), 0o700);
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(op.session()).unwrap()).unwrap();
    assert_eq!(session["server"], url);
    assert_eq!(session["staff"], staff);
    let token = session["token"].as_str().unwrap();
    assert!(!stdout.contains(token) && !stderr.contains(token));
    assert!(!stdout.contains(&password) && !stderr.contains(&password));
}

/// The same commands on the data directory while the server holds it fail as
/// before, and name the way to the server.
fn local_commands_point_to_the_server(
    op: &Operator,
    data: &Path,
    staff: &str,
    id: &str,
    backups: &Path,
) {
    let d = path_str(data);
    let step = ["ops", "incident", "step", "--data", d, "--as", staff, id];
    let err = fails(op.run(&[&step[..], &["check-stored-data"]].concat(), ""), 2);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(err.contains("--server URL"), "{err}");
    let backup = [
        "backup", "run", "--kind", "full", "--data", d, "--by", staff,
    ];
    let err = fails(
        op.run(&[&backup[..], &["--to", path_str(backups)]].concat(), ""),
        2,
    );
    assert!(
        err.contains("locked") && err.contains("--server URL"),
        "{err}"
    );
}

/// Each printed position holds an event of that type with the printed hash.
fn check_events(data: &Path, want: &[((u64, String), &str)]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let p = mebyo_platform::Platform::open(data, Default::default())
            .await
            .unwrap();
        for ((at, hash), event_type) in want {
            let page = p.store().read_all(*at, 1).await.unwrap();
            assert_eq!(page[0].event_type, *event_type, "at {at}");
            assert_eq!(&hex::encode(page[0].hash), hash, "at {at}");
        }
    });
}

/// One request the stand-in server was sent.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    authorization: Option<String>,
    body: String,
}

/// A stand-in for the sign-in steps being added to the server (issue 15 §5):
/// over plain HTTP on loopback, it answers each request in turn with the next
/// status and JSON, and keeps what it was sent.
fn stand_in(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (stream, _) = listener.accept().unwrap();
            kept.lock().unwrap().push(exchange(stream, status, body));
        }
    });
    (url, seen)
}

fn exchange(stream: std::net::TcpStream, status: u16, answer: &str) -> Seen {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (mut length, mut authorization) = (0, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )
    .unwrap();
    Seen {
        line: line.trim_end().to_string(),
        authorization,
        body: String::from_utf8(body).unwrap(),
    }
}

const SIGNED_IN_TOTP: &str =
    r#"{"token":"tok-1","csrf_token":"c","kind":"staff","id":"soa-0001","next":"second_factor"}"#;
const SIGNED_IN_CHANGE: &str =
    r#"{"token":"tok-2","csrf_token":"c","kind":"staff","id":"soa-0001","next":"change_password"}"#;

#[test]
fn a_sign_in_that_asks_for_a_totp_code_sends_it_with_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let op = Operator {
        config: tmp.path().join("mebyo"),
        ca: None,
    };
    let (url, seen) = stand_in(vec![(200, SIGNED_IN_TOTP), (200, r#"{"kind":"staff"}"#)]);
    let args = [
        "login",
        "--server",
        &url,
        "--as",
        "soa-0001",
        "--password-stdin",
        "--totp",
        "123456",
    ];
    let stdout = ok(op.run(&args, "pw-1\n"), "login with a code");
    assert!(stdout.contains("signed in"), "{stdout}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].line, "POST /api/v1/session HTTP/1.1");
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"kind": "staff", "login": "soa-0001", "password": "pw-1"})
    );
    assert_eq!(seen[1].line, "POST /api/v1/session/second-factor HTTP/1.1");
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-1"));
    assert_eq!(seen[1].body, r#"{"code":"123456"}"#);
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(op.session()).unwrap()).unwrap();
    assert_eq!(session["token"], "tok-1");
}

#[test]
fn a_sign_in_that_needs_the_browser_says_where_and_keeps_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let op = Operator {
        config: tmp.path().join("mebyo"),
        ca: None,
    };
    let (url, seen) = stand_in(vec![(200, SIGNED_IN_CHANGE), (204, "")]);
    let out = op.run(
        &[
            "login",
            "--server",
            &url,
            "--as",
            "soa-0001",
            "--password-stdin",
        ],
        "pw-2\n",
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("choose a new password"), "{err}");
    assert!(err.contains(&format!("{url}/ops/login")), "{err}");
    assert!(!op.session().exists());
    // The half-made session is ended rather than left behind.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[1].line, "DELETE /api/v1/session HTTP/1.1");
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok-2"));
}
