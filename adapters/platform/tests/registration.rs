//! A sign-up commits whole or leaves nothing behind, across crashes (issue 19 §1,
//! P2(1), P4.8(2), P4.8(3)). A fault hook stops the registration after each of its
//! durable steps — failing (the undo runs) or as a simulated crash (nothing after
//! the step runs; the platform is then opened again) — and the test checks that
//! the same e-mail can then sign up and sign in, and that no key, vault entry or
//! password is left without a registration event.

use std::path::Path;
use std::sync::Arc;

use mebyo_crypto::{IdentityRecord, IdentityVault};
use mebyo_domain::{Actor, StaffId};
use mebyo_platform::auth::{AuthStore, Subject};
use mebyo_platform::world::{self, Org};
use mebyo_platform::{
    Fault, Options, Platform, PlatformError, RegistrationStep, Settings, SignUp, SignedUp,
};
use mebyo_store::ManualClock;

const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z
const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
const EMAIL: &str = "hanako@example.jp";
/// Key-store entries of the platform's own keys (audit, credentials).
const PLATFORM_KEYS: usize = 2;

fn identity() -> IdentityRecord {
    IdentityRecord {
        name: "神奈川 花子".into(),
        address: "横浜市中区日本大通1".into(),
        birth_date: "1980-04-01".into(),
        phone: None,
        email: Some(EMAIL.into()),
    }
}

fn opts(clock: &ManualClock, seed: u64) -> Options {
    Options {
        clock: Arc::new(clock.clone()),
        // A new seed at each open, as a restarted process draws new randomness.
        seed: Some(seed),
        ..Default::default()
    }
}

async fn new_platform(dir: &Path, clock: &ManualClock) -> (Platform, Org) {
    Platform::init(dir, Settings::default(), opts(clock, 1))
        .await
        .unwrap();
    let p = Platform::open(dir, opts(clock, 2)).await.unwrap();
    let org = world::bootstrap_org(&p).await.unwrap();
    (p, org)
}

async fn sign_up(
    p: &Platform,
    auth: &AuthStore,
    office: &StaffId,
) -> Result<Result<SignedUp, mebyo_domain::Refusal>, PlatformError> {
    p.sign_up(
        auth,
        SignUp {
            identity: &identity(),
            office,
            password_phc: PHC,
        },
    )
    .await
}

/// Keys, vault entries and passwords of people: exactly `registered` of each, so
/// nothing is left of a registration that did not commit.
fn assert_nothing_dangling(p: &Platform, registered: usize, when: &str) {
    let keys = p.keys().with_store(|k| k.person_count());
    assert_eq!(
        keys,
        PLATFORM_KEYS + registered,
        "{when}: key-store entries"
    );
    let blind = p.keys().with_store(|k| k.blind_index()).unwrap();
    let vault = IdentityVault::open(p.dir.vault(), blind).unwrap();
    assert_eq!(vault.len(), registered, "{when}: vault entries");
    let passwords = std::fs::read_to_string(p.dir.root.join("auth/passwords.json"))
        .unwrap_or_default()
        .matches("\"person:")
        .count();
    assert_eq!(passwords, registered, "{when}: person password entries");
}

/// What signing in checks, short of argon2id: the e-mail finds one person, whose
/// password entry is the one chosen, naming a credential the ledger says is valid.
async fn assert_can_sign_in(p: &Platform, auth: &AuthStore, s: &SignedUp, when: &str) {
    assert_eq!(
        p.find_by_email(EMAIL).unwrap(),
        vec![s.person.clone()],
        "{when}"
    );
    let entry = auth.get(&Subject::Person(s.person.clone())).expect(when);
    assert_eq!(entry.phc, PHC, "{when}");
    assert_eq!(entry.credential.as_ref(), Some(&s.credential), "{when}");
    let state = p.credential_state(&s.credential).await.unwrap();
    let actor = Actor::Individual {
        person: s.person.clone(),
        credential: s.credential.clone(),
    };
    mebyo_domain::credential::authenticate(&actor, Some(&state), p.now())
        .unwrap_or_else(|r| panic!("{when}: credential refused: {r}"));
    assert!(p.person_active(&s.person).await.unwrap(), "{when}");
    assert!(p.email_registered(EMAIL).await.unwrap(), "{when}");
}

const STEPS: [RegistrationStep; 5] = [
    RegistrationStep::Journal,
    RegistrationStep::Keys,
    RegistrationStep::Vault,
    RegistrationStep::Password,
    RegistrationStep::Committed,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_cut_by_a_crash_after_any_step_is_settled_at_the_next_start_p2_1() {
    for step in STEPS {
        let when = format!("crash after {step:?}");
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOW_US);
        let (p, org) = new_platform(tmp.path(), &clock).await;
        let auth = AuthStore::open(tmp.path()).unwrap();
        p.inject_registration_faults(move |s| (s == step).then_some(Fault::Crash));
        let r = sign_up(&p, &auth, &org.office).await;
        assert!(
            matches!(r, Err(PlatformError::Injected(s)) if s == step),
            "{when}: {r:?}"
        );
        // The process dies: nothing of it survives but its files.
        drop((p, auth));
        let p = Platform::open(tmp.path(), opts(&clock, 3)).await.unwrap();
        let auth = AuthStore::open(tmp.path()).unwrap();
        if step == RegistrationStep::Committed {
            // Committed before the crash: the registration stands, whole.
            assert_nothing_dangling(&p, 1, &when);
            let again = sign_up(&p, &auth, &org.office).await.unwrap();
            assert_eq!(
                again.unwrap_err().code,
                "person.email_taken",
                "{when}: the address is registered"
            );
            let person = p.find_by_email(EMAIL).unwrap().pop().expect(&when);
            let entry = auth.get(&Subject::Person(person.clone())).expect(&when);
            let s = SignedUp {
                person,
                credential: entry.credential.expect(&when),
            };
            assert_can_sign_in(&p, &auth, &s, &when).await;
            continue;
        }
        // Not committed: the next start removed everything it had written.
        assert_nothing_dangling(&p, 0, &format!("{when}, reopened"));
        assert!(p.find_by_email(EMAIL).unwrap().is_empty(), "{when}");
        assert!(!p.email_registered(EMAIL).await.unwrap(), "{when}");
        let s = sign_up(&p, &auth, &org.office)
            .await
            .unwrap()
            .unwrap_or_else(|r| panic!("{when}: the same e-mail signs up again: {r}"));
        assert_can_sign_in(&p, &auth, &s, &when).await;
        assert_nothing_dangling(&p, 1, &format!("{when}, signed up again"));
        // And across one more restart, with nothing left to settle.
        drop((p, auth));
        let p = Platform::open(tmp.path(), opts(&clock, 4)).await.unwrap();
        let auth = AuthStore::open(tmp.path()).unwrap();
        assert_can_sign_in(&p, &auth, &s, &when).await;
        assert_nothing_dangling(&p, 1, &format!("{when}, reopened again"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_that_fails_after_any_step_leaves_nothing_and_can_be_retried_p2_1() {
    for step in &STEPS[..4] {
        let step = *step;
        let when = format!("failure after {step:?}");
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOW_US);
        let (p, org) = new_platform(tmp.path(), &clock).await;
        let auth = AuthStore::open(tmp.path()).unwrap();
        p.inject_registration_faults(move |s| (s == step).then_some(Fault::Fail));
        let r = sign_up(&p, &auth, &org.office).await;
        assert!(
            matches!(r, Err(PlatformError::Injected(_))),
            "{when}: {r:?}"
        );
        let head = p.head().count;
        assert_nothing_dangling(&p, 0, &when);
        // Retried in the same process, at once: accepted.
        p.clear_registration_faults();
        let s = sign_up(&p, &auth, &org.office).await.unwrap().unwrap();
        assert_eq!(
            p.head().count,
            head + 2,
            "{when}: registration and credential"
        );
        assert_can_sign_in(&p, &auth, &s, &when).await;
        assert_nothing_dangling(&p, 1, &format!("{when}, retried"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_step_writes_nothing_p4_12_1() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let (p, org) = new_platform(tmp.path(), &clock).await;
    let auth = AuthStore::open(tmp.path()).unwrap();
    let head = p.head().count;
    // An auditor may not issue connection information (P4.12(1)): the credential
    // step is refused — and it is decided before anything is written.
    let r = sign_up(&p, &auth, &org.auditor).await.unwrap();
    assert!(r.is_err(), "issued by the wrong desk: {r:?}");
    assert_eq!(p.head().count, head, "a refusal appends nothing");
    assert_nothing_dangling(&p, 0, "credential refused");
    assert!(!p.email_registered(EMAIL).await.unwrap());
    let s = sign_up(&p, &auth, &org.office).await.unwrap().unwrap();
    assert_can_sign_in(&p, &auth, &s, "after the refusal").await;
    assert_nothing_dangling(&p, 1, "after the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_without_a_journal_entry_do_not_lock_the_address_out_p2_1() {
    // What a cut sign-up of the old code left: keys and a vault entry, no event.
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let (p, org) = new_platform(tmp.path(), &clock).await;
    let auth = AuthStore::open(tmp.path()).unwrap();
    p.inject_registration_faults(|s| (s == RegistrationStep::Vault).then_some(Fault::Crash));
    let _ = sign_up(&p, &auth, &org.office).await;
    drop((p, auth));
    std::fs::remove_file(tmp.path().join("keys/registrations.pending")).unwrap();
    let p = Platform::open(tmp.path(), opts(&clock, 3)).await.unwrap();
    let auth = AuthStore::open(tmp.path()).unwrap();
    assert!(
        !p.email_registered(EMAIL).await.unwrap(),
        "not a registration"
    );
    // The retry settles the leftover of its address, then registers.
    let s = sign_up(&p, &auth, &org.office).await.unwrap().unwrap();
    assert_can_sign_in(&p, &auth, &s, "retried over a leftover").await;
    assert_nothing_dangling(&p, 1, "retried over a leftover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ups_of_one_address_register_it_once_p2_1() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW_US);
    let (p, org) = new_platform(tmp.path(), &clock).await;
    let p = Arc::new(p);
    let auth = Arc::new(AuthStore::open(tmp.path()).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (p, auth, office) = (p.clone(), auth.clone(), org.office.clone());
            tokio::spawn(async move { sign_up(&p, &auth, &office).await.unwrap() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(r) => assert_eq!(r.code, "person.email_taken"),
        }
    }
    assert_eq!(ok, 1, "one registration per address");
    assert_nothing_dangling(&p, 1, "concurrent sign-ups");
}
