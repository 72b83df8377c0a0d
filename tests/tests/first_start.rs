//! A first start cut short is finished by the next one (issue 19 §2). The real
//! binary is stopped at each step of a new directory's set-up as a crash would
//! stop it (`MEBYO_FAULT_POINT`: an exit with nothing undone), then started
//! again: it must serve, with the whole staff organisation appointed, the policy
//! published, a one-time password for every staff member, and a chain that
//! verifies. A directory whose init was cut short is refused by everything that
//! only opens it, naming what to do.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use mebyo_platform::{Platform, PlatformError, fault};
use mebyo_tests::{mebyo_bin, path_str};

const STAFF: [&str; 6] = mebyo_tests::FIRST_START_STAFF;

fn mebyo(args: &[&str], fault_point: Option<&str>) -> Output {
    let mut cmd = Command::new(mebyo_bin());
    cmd.args(args).env("MEBYO_LOG", "error");
    match fault_point {
        Some(p) => cmd.env(fault::VAR, p),
        None => cmd.env_remove(fault::VAR),
    };
    cmd.stdin(Stdio::null()).output().expect("running mebyo")
}

/// `mebyo serve` on `data` until it listens, then stopped with SIGTERM: what
/// it printed.
fn serve_once(data: &Path) -> String {
    let s = mebyo_tests::serve(data, &[]);
    let printed = s.printed.clone();
    mebyo_tests::stop(s);
    printed
}

/// The directory holds a whole platform: every staff member appointed, the
/// policy in force, a one-time password each, a chain that verifies.
fn whole(data: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let p = Platform::open(data, Default::default())
            .await
            .expect("opens");
        for id in STAFF {
            let staff = mebyo_domain::StaffId::new(id).unwrap();
            let state = p.staff_state(&staff).await.unwrap();
            assert!(!state.roles.is_empty(), "{id} holds no role");
        }
        assert!(
            p.policy_in_force().await.unwrap().is_some(),
            "no policy in force"
        );
    });
    let passwords = std::fs::read_to_string(data.join("auth/initial-passwords.txt")).unwrap();
    for id in STAFF {
        let lines = passwords
            .lines()
            .filter(|l| l.starts_with(&format!("{id} ")))
            .count();
        assert_eq!(lines, 1, "{id}: one one-time password in {passwords}");
    }
    let verify = mebyo(&["audit", "verify", "--data", path_str(data)], None);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn p3_1_a_first_start_cut_short_at_any_step_is_finished_by_the_next() {
    for point in [
        "init.after_keystore",
        "init.after_ledger",
        "serve.before_org",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let args = [
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ];
        let cut = mebyo(&args, Some(point));
        assert_eq!(
            cut.status.code(),
            Some(fault::EXIT_STATUS),
            "{point}: {cut:?}"
        );
        if point == "init.after_ledger" {
            // Half made: refused by whatever only opens it, saying what to do.
            let rt = tokio::runtime::Runtime::new().unwrap();
            let opened = rt.block_on(Platform::open(&data, Default::default()));
            assert!(
                matches!(opened, Err(PlatformError::InitInterrupted(_))),
                "{point}"
            );
            let verify = mebyo(&["audit", "verify", "--data", path_str(&data)], None);
            assert!(
                !verify.status.success(),
                "{point}: verify of a half-made platform"
            );
        }
        let printed = serve_once(&data);
        assert!(
            printed.contains("one-time passwords of 6 staff accounts"),
            "{point}: {printed}"
        );
        whole(&data);
        assert!(!data.join("init.pending").exists() && !data.join("first-start.pending").exists());
        // And a second start changes nothing of it.
        let printed = serve_once(&data);
        assert!(
            !printed.contains("one-time passwords"),
            "{point}: {printed}"
        );
    }
}

#[test]
fn p3_1_an_init_cut_short_is_redone_and_a_finished_one_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let init = ["init", "--data", path_str(&data)];
    let cut = mebyo(&init, Some("init.after_ledger"));
    assert_eq!(cut.status.code(), Some(fault::EXIT_STATUS), "{cut:?}");
    assert!(data.join("init.pending").exists());
    let again = mebyo(&init, None);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(!data.join("init.pending").exists());
    // A finished one is never touched again.
    let third = mebyo(&init, None);
    assert!(!third.status.success());
    assert!(String::from_utf8_lossy(&third.stderr).contains("already holds a ledger"));
}

/// A first start cut short while it gives the staff their one-time passwords
/// (issue 19): each password is in `initial-passwords.txt` before it is set, so
/// every staff member signs in with the latest one the file names. The other
/// way round, the one set before the cut was named nowhere, and its holder was
/// locked out for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_1_a_first_start_cut_while_giving_staff_passwords_locks_nobody_out() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let args = [
        "serve",
        "--data",
        path_str(&data),
        "--listen",
        "127.0.0.1:0",
    ];
    let cut = mebyo(&args, Some("serve.staff_passwords"));
    assert_eq!(cut.status.code(), Some(fault::EXIT_STATUS), "{cut:?}");
    let s = mebyo_tests::serve(&data, &[]);
    let http = mebyo_tests::served_client(&data);
    // A later line for an account replaces an earlier one.
    let passwords: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(data.join("auth/initial-passwords.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .map(|(id, pw)| (id.to_string(), pw.to_string()))
            .collect();
    for id in STAFF {
        let pw = passwords
            .get(id)
            .unwrap_or_else(|| panic!("no password for {id}"));
        let r = http
            .post(format!("{}/api/v1/session", s.url))
            .json(&serde_json::json!({"kind": "staff", "login": id, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}: {:?}", r.text().await);
    }
    mebyo_tests::stop(s);
}
