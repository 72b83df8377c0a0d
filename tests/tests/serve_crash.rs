//! Crash and restart of the whole platform (issue 19, "So that it stays
//! fixed"): the real `mebyo serve` is killed with SIGKILL at seeded random
//! moments and started again on the same directory, over and over. The kills
//! fall during its first start (from the very first milliseconds on), during
//! later starts (recovery cut short), and, at least 100 times in the default
//! run, while clients sign up and write vitals over HTTPS. After every restart,
//! once `/readyz` answers 200:
//!
//! - every sign-up answered 202 signs in; one left without an answer (the
//!   connection died with the server) either signs in already or, sent again,
//!   is answered 202 and then signs in — never "taken" and unusable (P2(1));
//! - every vital answered 201 is read back exactly once, with its values, and
//!   one left without an answer, sent again with its `Idempotency-Key`, is one
//!   record, not two (P2(1));
//! - the staff accounts of the first start sign in with the one-time passwords
//!   `DATA/auth/initial-passwords.txt` names (P3.1, P4.8(2));
//! - `/metrics` answers only with the token its file names (P4.4(1)).
//!
//! At the end every person and every write is checked once more, the server
//! stops cleanly, and `mebyo audit verify` passes on the directory.
//!
//! Which writes each restart checks: every person the kill put at risk (who
//! signed up or wrote in the lifetime just killed), with all their records,
//! and a rotating share of everyone else. Each check is a sign-in, an argon2id
//! hash on purpose (P4.8(2)), so checking everyone at every restart would not
//! fit the suite's time; the last check covers everyone.
//!
//! Each person, and each staff member, comes from a loopback address of their
//! own (127.1.x.y, 127.2.0.x), as people come from their own: the sign-in limit
//! per source address (P4.4(1)) is not what this test is about.
//!
//! What it does not prove: SIGKILL ends the process, not the kernel, so what
//! was written but not yet synced survives in the page cache. This proves the
//! recovery logic (torn commits, the registration journal, first starts cut
//! short, retries by idempotency key), not that fsync is called in the right
//! places; a test on a simulated disk covers that separately.
//!
//! Replay a failure with `MEBYO_TEST_SEED` (timing still varies from run to
//! run); `MEBYO_SERVE_CRASH_ITERATIONS` sets the number of kills under load.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mebyo_tests::{Served, mebyo, mebyo_bin, path_str, seed};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "crash-person-password-1";
const STAFF: [&str; 6] = mebyo_tests::FIRST_START_STAFF;
/// People writing vitals at once in a lifetime under load.
const WRITERS: usize = 3;
/// A lifetime under load is killed at a moment drawn from 0..LOAD_US after
/// the checks; each writer starts up to WRITE_LEAD_US before it, the sign-up
/// up to SIGN_UP_LEAD_US before it.
const LOAD_US: u64 = 150_000;
const WRITE_LEAD_US: u64 = 40_000;
const SIGN_UP_LEAD_US: u64 = 150_000;
/// People checked at each restart besides those the last kill put at risk.
const ROTATING: usize = 2;
/// Checks run at once (each one a sign-in, so an argon2id hash).
const AT_ONCE: usize = 3;

/// What the client knows of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Answered 2xx.
    Acked,
    /// Sent, and the connection died without an answer.
    InDoubt,
}

#[derive(Debug, Clone)]
struct Vital {
    key: String,
    systolic: u32,
    diastolic: u32,
    answer: Answer,
    /// The record the answer named (none when the answer's body was cut).
    id: Option<String>,
}

impl Vital {
    fn body(&self) -> Value {
        json!({"kind": "blood_pressure", "systolic": self.systolic, "diastolic": self.diastolic})
    }
}

#[derive(Debug)]
struct Person {
    email: String,
    ip: IpAddr,
    signed_up: Answer,
    /// Whether accepting the policy is known to have been answered.
    policy: bool,
    vitals: Vec<Vital>,
}

/// Where a failure happened, for its message.
#[derive(Clone, Copy)]
struct Ctx {
    iteration: u32,
    seed: u64,
}

impl std::fmt::Display for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "iteration {} (seed {}; replay with MEBYO_TEST_SEED={})",
            self.iteration, self.seed, self.seed
        )
    }
}

#[derive(Default)]
struct Stats {
    signups_acked: AtomicU32,
    signups_in_doubt_committed: AtomicU32,
    signups_in_doubt_retried: AtomicU32,
    vitals_acked: AtomicU32,
    vitals_in_doubt_replayed: AtomicU32,
    vitals_in_doubt_written_on_retry: AtomicU32,
    sign_ins: AtomicU32,
}

fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One lifetime of the server, as clients see it.
#[derive(Clone)]
struct Live {
    url: String,
    cert: String,
}

impl Live {
    fn client(&self, ip: IpAddr) -> Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.cert.as_bytes()).expect("certificate"),
            )
            .tls_built_in_root_certs(false)
            .https_only(true)
            .local_address(ip)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

fn person_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (n / 200) as u8, (n % 200 + 1) as u8))
}

fn staff_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 2, 0, n as u8 + 1))
}

async fn sign_up(http: &Client, live: &Live, email: &str) -> reqwest::Result<StatusCode> {
    let r = http
        .post(live.url("/api/v1/signup"))
        .json(&json!({
            "name": "山田 花子", "address": "神奈川県横浜市中区日本大通1",
            "birth_date": "1980-05-05", "email": email, "password": PASSWORD
        }))
        .send()
        .await?;
    Ok(r.status())
}

async fn sign_in(
    http: &Client,
    live: &Live,
    kind: &str,
    login: &str,
    password: &str,
) -> reqwest::Result<(StatusCode, Value)> {
    let r = http
        .post(live.url("/api/v1/session"))
        .json(&json!({"kind": kind, "login": login, "password": password}))
        .send()
        .await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn accept_policy(http: &Client, live: &Live, token: &str) -> reqwest::Result<StatusCode> {
    let r = http
        .post(live.url("/api/v1/me/policy"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(r.status())
}

/// POSTs the vital with its `Idempotency-Key`: the status, whether it was a
/// replay, and the record it names (none if the body was cut).
async fn post_vital(
    http: &Client,
    live: &Live,
    token: &str,
    v: &Vital,
) -> reqwest::Result<(StatusCode, bool, Option<String>)> {
    let r = http
        .post(live.url("/api/v1/me/vitals"))
        .bearer_auth(token)
        .header("Idempotency-Key", &v.key)
        .json(&v.body())
        .send()
        .await?;
    let status = r.status();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|h| h == "true");
    let id = r
        .json::<Value>()
        .await
        .ok()
        .and_then(|b| b["id"].as_str().map(str::to_string));
    Ok((status, replayed, id))
}

/// Checks one person against what their clients were answered, settling what
/// is in doubt by sending it again; returns a session token.
async fn check_person(live: &Live, p: &mut Person, ctx: Ctx, stats: &Stats) -> String {
    let http = live.client(p.ip);
    let email = p.email.clone();
    let no_answer = |what: &str, e: reqwest::Error| -> ! {
        panic!("{ctx}: {email}: {what} got no answer from a server that was ready: {e}")
    };
    bump(&stats.sign_ins);
    let (status, body) = sign_in(&http, live, "individual", &email, PASSWORD)
        .await
        .unwrap_or_else(|e| no_answer("sign-in", e));
    let body = match (status.as_u16(), p.signed_up) {
        (200, Answer::Acked) => body,
        (200, Answer::InDoubt) => {
            bump(&stats.signups_in_doubt_committed);
            body
        }
        (401, Answer::InDoubt) => {
            let again = sign_up(&http, live, &email)
                .await
                .unwrap_or_else(|e| no_answer("the sign-up sent again", e));
            assert_eq!(
                again, 202,
                "{ctx}: {email}: a sign-up in doubt, sent again, is answered {again}"
            );
            bump(&stats.sign_ins);
            let (status, body) = sign_in(&http, live, "individual", &email, PASSWORD)
                .await
                .unwrap_or_else(|e| no_answer("sign-in", e));
            assert_eq!(
                status, 200,
                "{ctx}: {email}: a sign-up in doubt, sent again and answered 202, does not sign in: {body}"
            );
            bump(&stats.signups_in_doubt_retried);
            body
        }
        (_, answer) => panic!(
            "{ctx}: {email}, whose sign-up was {answer:?}, does not sign in: {status} {body}"
        ),
    };
    p.signed_up = Answer::Acked;
    let token = body["token"].as_str().expect("a token").to_string();
    if !p.policy {
        let status = accept_policy(&http, live, &token)
            .await
            .unwrap_or_else(|e| no_answer("accepting the policy", e));
        assert!(
            status == 200 || status == 409,
            "{ctx}: {email}: accepting the policy: {status}"
        );
        p.policy = true;
    }
    for v in p
        .vitals
        .iter_mut()
        .filter(|v| v.answer == Answer::InDoubt || v.id.is_none())
    {
        let (status, replayed, id) = post_vital(&http, live, &token, v)
            .await
            .unwrap_or_else(|e| no_answer("a vital sent again", e));
        assert_eq!(
            status, 201,
            "{ctx}: {email}: vital {} ({:?}) sent again with its key: {status}",
            v.key, v.answer
        );
        let id = id.unwrap_or_else(|| panic!("{ctx}: {email}: vital {}: no id", v.key));
        match v.answer {
            Answer::Acked => assert!(
                replayed,
                "{ctx}: {email}: vital {} was answered 201, yet sent again it is written anew",
                v.key
            ),
            Answer::InDoubt if replayed => bump(&stats.vitals_in_doubt_replayed),
            Answer::InDoubt => bump(&stats.vitals_in_doubt_written_on_retry),
        }
        v.answer = Answer::Acked;
        v.id = Some(id);
    }
    let r = http
        .get(live.url("/api/v1/me/records"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_or_else(|e| no_answer("reading the records", e));
    assert_eq!(r.status(), 200, "{ctx}: {email}: reading the records");
    let records: Vec<Value> = r.json().await.unwrap();
    let mut by_id: BTreeMap<&str, &Value> = BTreeMap::new();
    for rec in &records {
        let id = rec["record"].as_str().expect("a record id");
        assert!(
            by_id.insert(id, rec).is_none(),
            "{ctx}: {email}: record {id} is listed twice"
        );
    }
    for v in &p.vitals {
        let id = v.id.as_deref().expect("settled above");
        let rec = by_id.remove(id).unwrap_or_else(|| {
            panic!(
                "{ctx}: {email}: vital {} (record {id}), acknowledged, is lost",
                v.key
            )
        });
        let component =
            |i: usize| rec["resource"]["component"][i]["valueQuantity"]["value"].as_u64();
        assert_eq!(
            (component(0), component(1)),
            (Some(v.systolic.into()), Some(v.diastolic.into())),
            "{ctx}: {email}: vital {} reads back other values: {rec}",
            v.key
        );
    }
    assert!(
        by_id.is_empty(),
        "{ctx}: {email}: records no client wrote (a duplicate?): {:?}",
        by_id.keys()
    );
    token
}

/// Checks the people at `which`, a few at once; their session tokens.
fn check_people(
    rt: &tokio::runtime::Runtime,
    live: &Live,
    people: &mut [Person],
    which: &BTreeSet<usize>,
    ctx: Ctx,
    stats: &Stats,
) -> BTreeMap<usize, String> {
    rt.block_on(
        futures::stream::iter(
            people
                .iter_mut()
                .enumerate()
                .filter(|(n, _)| which.contains(n)),
        )
        .map(|(n, p)| async move { (n, check_person(live, p, ctx, stats).await) })
        .buffer_unordered(AT_ONCE)
        .collect(),
    )
}

/// The latest one-time password `initial-passwords.txt` names for each staff
/// member (a later line replaces an earlier one).
fn staff_passwords(data: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(data.join("auth/initial-passwords.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(id, pw)| (id.to_string(), pw.trim().to_string()))
        .collect()
}

/// Each staff member in `which` signs in with their one-time password.
fn check_staff(
    rt: &tokio::runtime::Runtime,
    live: &Live,
    data: &Path,
    which: &[usize],
    ctx: Ctx,
    stats: &Stats,
) {
    let passwords = staff_passwords(data);
    rt.block_on(futures::future::join_all(which.iter().map(|&n| {
        let id = STAFF[n];
        let pw = passwords.get(id).cloned();
        async move {
            let pw = pw.unwrap_or_else(|| {
                panic!("{ctx}: initial-passwords.txt names no password for {id}")
            });
            bump(&stats.sign_ins);
            let (status, body) = sign_in(&live.client(staff_ip(n)), live, "staff", id, &pw)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: staff sign-in of {id}: no answer: {e}"));
            assert_eq!(
                status, 200,
                "{ctx}: {id} does not sign in with the one-time password initial-passwords.txt names: {body}"
            );
            assert_eq!(body["next"], "change_password", "{ctx}: {id}: {body}");
        }
    })));
}

/// Starts `mebyo serve` and waits until it listens and `/readyz` answers 200.
fn restart(rt: &tokio::runtime::Runtime, data: &Path, ctx: Ctx) -> (Served, Live) {
    let s = std::panic::catch_unwind(|| mebyo_tests::serve(data, &[])).unwrap_or_else(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{ctx}: the restart after the kill failed: {msg}")
    });
    let live = Live {
        url: s.url.clone(),
        cert: std::fs::read_to_string(data.join("tls/cert.pem"))
            .unwrap_or_else(|e| panic!("{ctx}: serving, yet no certificate: {e}")),
    };
    let http = live.client(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let deadline = Instant::now() + Duration::from_secs(60);
    rt.block_on(async {
        loop {
            let r = http.get(live.url("/readyz")).send().await;
            let last = match r {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{ctx}: not ready a minute after the restart: {last}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // `/metrics` asks for the token its file names, a whole one (P4.4(1)).
    let token = std::fs::read_to_string(data.join("auth/metrics-token")).unwrap_or_default();
    let token = token.trim();
    assert!(
        !token.is_empty(),
        "{ctx}: the metrics token file is empty or missing"
    );
    rt.block_on(async {
        let open = http.get(live.url("/metrics")).send().await.unwrap();
        assert_eq!(open.status(), 401, "{ctx}: /metrics without its token");
        let r = http
            .get(live.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ctx}: /metrics with its token");
    });
    (s, live)
}

/// Starts `mebyo serve` and SIGKILLs it `after` later, whatever it is doing.
fn start_and_kill(data: &Path, after: Duration) {
    let mut child = Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
        .env("MEBYO_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running mebyo serve");
    std::thread::sleep(after);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// What a lifetime's clients sent, and what they were answered.
#[derive(Default)]
struct Load {
    /// Per writer: the vitals it sent.
    written: Vec<(usize, Vec<Vital>)>,
    /// The new person, how their sign-up went, and the vitals they sent.
    signed_up: Option<Person>,
    /// Answers no client should get (the server was up).
    unexpected: Vec<String>,
}

/// One writer: vitals with fresh keys, one after the other, until the server
/// is gone.
async fn write_vitals(
    http: &Client,
    live: &Live,
    token: &str,
    prefix: &str,
    mut rng: ChaCha8Rng,
    limit: usize,
    unexpected: &mut Vec<String>,
) -> Vec<Vital> {
    let mut sent = Vec::new();
    for n in 0..limit {
        let systolic = rng.random_range(100..=180);
        let mut v = Vital {
            key: format!("{prefix}.{n}"),
            systolic,
            diastolic: rng.random_range(50..=systolic - 20),
            answer: Answer::InDoubt,
            id: None,
        };
        match post_vital(http, live, token, &v).await {
            Err(_) => {
                sent.push(v);
                break;
            }
            Ok((status, false, id)) if status == 201 => {
                v.answer = Answer::Acked;
                v.id = id;
                sent.push(v);
            }
            Ok((status, replayed, _)) => {
                unexpected.push(format!("vital {}: {status} (replayed: {replayed})", v.key));
                sent.push(v);
                break;
            }
        }
    }
    sent
}

/// A new person signs up (after `delay`), signs in, accepts the policy and
/// writes a vital or two, until the server is gone.
async fn sign_up_and_write(
    live: &Live,
    mut p: Person,
    delay: Duration,
    prefix: String,
    rng: ChaCha8Rng,
    unexpected: &mut Vec<String>,
) -> Person {
    tokio::time::sleep(delay).await;
    let http = live.client(p.ip);
    match sign_up(&http, live, &p.email).await {
        Err(_) => return p,
        Ok(s) if s == 202 => p.signed_up = Answer::Acked,
        Ok(s) => {
            unexpected.push(format!("sign-up of {}: {s}", p.email));
            return p;
        }
    }
    let token = match sign_in(&http, live, "individual", &p.email, PASSWORD).await {
        Err(_) => return p,
        Ok((s, body)) if s == 200 => body["token"].as_str().unwrap().to_string(),
        Ok((s, body)) => {
            unexpected.push(format!(
                "{}: signed up (202), then sign-in: {s} {body}",
                p.email
            ));
            return p;
        }
    };
    match accept_policy(&http, live, &token).await {
        Err(_) => return p,
        Ok(s) if s == 200 => p.policy = true,
        Ok(s) => {
            unexpected.push(format!("{}: accepting the policy: {s}", p.email));
            return p;
        }
    }
    p.vitals = write_vitals(&http, live, &token, &prefix, rng, 2, unexpected).await;
    p
}

/// Lets writers and a sign-up run against the server, and SIGKILLs it `after`
/// the start of the load. The writers start a little before the kill, each at
/// its own moment, and write one vital after another, so that the kill meets
/// them at any point of a write; the sign-up starts a little earlier, so that
/// the kill meets it anywhere between its hashing and its first vitals.
#[allow(clippy::too_many_arguments)]
fn load_then_kill(
    rt: &tokio::runtime::Runtime,
    mut served: Served,
    live: &Live,
    writers: Vec<(usize, IpAddr, String)>,
    new_person: Option<Person>,
    after: Duration,
    iteration: u32,
    rng: &mut ChaCha8Rng,
) -> Load {
    let lead = |rng: &mut ChaCha8Rng, us: u64| {
        after.saturating_sub(Duration::from_micros(rng.random_range(0..us)))
    };
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (n, ip, token) in writers {
            let (http, live) = (live.client(ip), live.clone());
            let task_rng = ChaCha8Rng::seed_from_u64(rng.random());
            let start = lead(rng, WRITE_LEAD_US);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(start).await;
                let mut unexpected = Vec::new();
                let prefix = format!("i{iteration}.w");
                let sent = write_vitals(
                    &http,
                    &live,
                    &token,
                    &prefix,
                    task_rng,
                    usize::MAX,
                    &mut unexpected,
                )
                .await;
                (Some((n, sent)), None, unexpected)
            }));
        }
        if let Some(p) = new_person {
            let live = live.clone();
            let task_rng = ChaCha8Rng::seed_from_u64(rng.random());
            let start = lead(rng, SIGN_UP_LEAD_US);
            tasks.push(tokio::spawn(async move {
                let mut unexpected = Vec::new();
                let prefix = format!("i{iteration}.s");
                let p = sign_up_and_write(&live, p, start, prefix, task_rng, &mut unexpected).await;
                (None, Some(p), unexpected)
            }));
        }
        tokio::time::sleep(after).await;
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        let mut load = Load::default();
        for t in tasks {
            let (written, signed_up, unexpected) = t.await.expect("a client task");
            load.written.extend(written);
            if signed_up.is_some() {
                load.signed_up = signed_up;
            }
            load.unexpected.extend(unexpected);
        }
        load
    })
}

#[test]
fn sigkill_under_sign_ups_and_writes_keeps_every_acknowledged_one() {
    let seed = seed("serve_crash");
    let under_load: u32 = std::env::var("MEBYO_SERVE_CRASH_ITERATIONS")
        .map(|s| {
            s.parse()
                .expect("MEBYO_SERVE_CRASH_ITERATIONS must be a number")
        })
        .unwrap_or(100);
    mebyo_bin(); // built (or found built) before the clock starts
    let began = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stats = Stats::default();
    let (mut kills_first_start, mut kills_starting, mut kills_under_load) = (0u32, 0u32, 0u32);

    // First starts cut short: the first within its first milliseconds, the
    // others anywhere in a first start (some 0.4 s here), or just after it.
    for f in 0..rng.random_range(3..=5u32) {
        let after = if f == 0 {
            rng.random_range(0..3_000)
        } else {
            rng.random_range(0..600_000)
        };
        start_and_kill(&data, Duration::from_micros(after));
        kills_first_start += 1;
    }

    let mut people: Vec<Person> = Vec::new();
    // Those the last kill put at risk, checked first at the next restart.
    let mut at_risk: BTreeSet<usize> = BTreeSet::new();
    let mut cursor = 0usize;
    for i in 0..under_load {
        let ctx = Ctx { iteration: i, seed };
        let (served, live) = restart(&rt, &data, ctx);
        // The first start has finished: every staff account signs in (then
        // one a restart, in turn).
        if i == 0 {
            check_staff(&rt, &live, &data, &[0, 1, 2, 3, 4, 5], ctx, &stats);
        } else {
            check_staff(&rt, &live, &data, &[i as usize % STAFF.len()], ctx, &stats);
        }
        let mut check = std::mem::take(&mut at_risk);
        let mut added = 0;
        for _ in 0..people.len() {
            if added == ROTATING {
                break;
            }
            cursor = (cursor + 1) % people.len();
            added += usize::from(check.insert(cursor));
        }
        let tokens = check_people(&rt, &live, &mut people, &check, ctx, &stats);

        let mut tokens: Vec<(usize, String)> = tokens.into_iter().collect();
        tokens.sort();
        let writers: Vec<(usize, IpAddr, String)> = tokens
            .choose_multiple(&mut rng, WRITERS)
            .map(|(n, t)| (*n, people[*n].ip, t.clone()))
            .collect();
        let after = Duration::from_micros(rng.random_range(0..LOAD_US));
        // A sign-up most lifetimes, at a moment that the kill may cut.
        let new_person = (people.len() < WRITERS || rng.random_bool(0.6)).then(|| {
            let n = people.len();
            Person {
                email: format!("p{n}@example.jp"),
                ip: person_ip(n),
                signed_up: Answer::InDoubt,
                policy: false,
                vitals: Vec::new(),
            }
        });
        let load = load_then_kill(&rt, served, &live, writers, new_person, after, i, &mut rng);
        kills_under_load += 1;
        assert!(
            load.unexpected.is_empty(),
            "{ctx}: answers no client should get from a running server: {:?}",
            load.unexpected
        );
        for (n, sent) in load.written {
            for v in &sent {
                if v.answer == Answer::Acked {
                    bump(&stats.vitals_acked);
                }
            }
            people[n].vitals.extend(sent);
            at_risk.insert(n);
        }
        if let Some(p) = load.signed_up {
            if p.signed_up == Answer::Acked {
                bump(&stats.signups_acked);
            }
            for v in &p.vitals {
                if v.answer == Answer::Acked {
                    bump(&stats.vitals_acked);
                }
            }
            at_risk.insert(people.len());
            people.push(p);
        }
        // Now and then the next start is cut short too, in its recovery.
        if rng.random_bool(0.1) {
            start_and_kill(&data, Duration::from_micros(rng.random_range(0..150_000)));
            kills_starting += 1;
        }
    }

    // Everyone, and every staff account, once more; then a clean stop, and the
    // chain verifies.
    let ctx = Ctx {
        iteration: under_load,
        seed,
    };
    let (served, live) = restart(&rt, &data, ctx);
    check_staff(&rt, &live, &data, &[0, 1, 2, 3, 4, 5], ctx, &stats);
    let everyone: BTreeSet<usize> = (0..people.len()).collect();
    check_people(&rt, &live, &mut people, &everyone, ctx, &stats);
    mebyo_tests::stop(served);
    let verify = mebyo(&["audit", "verify", "--data", path_str(&data)]);
    assert!(
        verify.status.success(),
        "{ctx}: audit verify after the crashes: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let get = |c: &AtomicU32| c.load(Ordering::Relaxed);
    let in_doubt_vitals =
        get(&stats.vitals_in_doubt_replayed) + get(&stats.vitals_in_doubt_written_on_retry);
    eprintln!(
        "serve_crash: {} kills ({kills_first_start} in first starts, {kills_starting} in later starts, \
         {kills_under_load} under load) in {:.1} s; {} people: {} sign-ups acknowledged, \
         {} in doubt already committed, {} in doubt redone; {} vitals acknowledged, \
         {} in doubt (already written: {}, written on retry: {}); {} sign-ins to check",
        kills_first_start + kills_starting + kills_under_load,
        began.elapsed().as_secs_f64(),
        people.len(),
        get(&stats.signups_acked),
        get(&stats.signups_in_doubt_committed),
        get(&stats.signups_in_doubt_retried),
        get(&stats.vitals_acked),
        in_doubt_vitals,
        get(&stats.vitals_in_doubt_replayed),
        get(&stats.vitals_in_doubt_written_on_retry),
        get(&stats.sign_ins),
    );
    assert!(
        get(&stats.vitals_acked) > under_load && in_doubt_vitals > 0,
        "the load made too little progress, or no kill met a write, to test anything"
    );
}
