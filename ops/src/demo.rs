//! `mebyo demo`: realistic activity through the real commands, so a newcomer sees
//! the platform work — staff chain, policy, providers, people, records, consents,
//! reads granted and refused, a revocation, a lost credential, an erasure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::credential::{CredentialCommand, Holder, RevocationReason};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::{Category, Origin, RecordCommand, Submission};
use mebyo_domain::{Channel, CredentialId, Duration, RecordId, Timestamp};
use mebyo_platform::world::{self, Org};
use mebyo_platform::{Options, Platform, Settings};
use rand::{Rng, SeedableRng};

use crate::paths::runtime;

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (a platform is created there if there is none).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// How many individuals to simulate.
    #[arg(long, default_value_t = 20)]
    pub people: u32,
    /// Seed for the simulated people and their activity, so a demo's story can be
    /// replayed. Key material never comes from it: every demo draws its KEK and keys
    /// from the operating system, so two demo directories share no key.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The file that marks a data directory made by `mebyo demo`; `serve` warns when
/// it finds one (simulated people, made to be shown, not for real data).
pub const DEMO_MARKER: &str = "DEMO";

/// Whether `data` holds a demo installation.
pub fn is_demo(data: &Path) -> bool {
    data.join(DEMO_MARKER).exists()
}

fn mark_demo(data: &Path) -> std::io::Result<()> {
    mebyo_store::fsio::write_atomic(
        &data.join(DEMO_MARKER),
        b"This data directory was made by `mebyo demo`: its people and records are\n\
          simulated. Do not serve it to real users or put real data in it.\n",
    )
}

const FAMILY: [&str; 12] = [
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田",
];
const GIVEN: [&str; 12] = [
    "花子",
    "太郎",
    "陽菜",
    "蓮",
    "結衣",
    "大翔",
    "美咲",
    "悠真",
    "さくら",
    "翔太",
    "葵",
    "湊",
];
const CITIES: [&str; 6] = [
    "横浜市中区",
    "川崎市幸区",
    "相模原市中央区",
    "藤沢市",
    "横須賀市",
    "小田原市",
];

fn identity(rng: &mut impl Rng, n: u32) -> IdentityRecord {
    IdentityRecord {
        name: format!(
            "{} {}",
            FAMILY[rng.random_range(0..FAMILY.len())],
            GIVEN[rng.random_range(0..GIVEN.len())]
        ),
        address: format!(
            "神奈川県{}{}-{}-{}",
            CITIES[rng.random_range(0..CITIES.len())],
            rng.random_range(1..9),
            rng.random_range(1..30),
            rng.random_range(1..20)
        ),
        birth_date: format!(
            "{}-{:02}-{:02}",
            rng.random_range(1940..2010),
            rng.random_range(1..13),
            rng.random_range(1..29)
        ),
        phone: Some(format!("090-{:04}-{:04}", rng.random_range(0..10000), n)),
        email: Some(format!("user{n:05}.{:04x}@example.jp", rng.random::<u16>())),
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(demo(a))?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(a: Args) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let fresh = !mebyo_store::EmbeddedStore::exists(&a.data.join("ledger"));
    // Options::default(): the KEK, keys and ids come from the operating system's
    // randomness, never from --seed (issue 22: demos used to share their KEK).
    if fresh {
        Platform::init(&a.data, Settings::default(), Options::default()).await?;
        println!("created a new platform in {}", a.data.display());
    }
    let p = Platform::open(&a.data, Options::default()).await?;
    let org = if fresh
        || p.staff_state(&mebyo_domain::StaffId::new("om-0001")?)
            .await?
            .roles
            .is_empty()
    {
        mark_demo(&a.data)?;
        world::bootstrap_org(&p).await?
    } else {
        anyhow::bail!(
            "{} already ran a demo; use a new --data directory",
            a.data.display()
        );
    };
    println!(
        "staff chain appointed and trained; policy {} published",
        world::policy_v1().id
    );

    let tag = format!("{:04x}", rng.random::<u16>());
    let clinic = world::onboard_provider(
        &p,
        &org,
        &format!("clinic-yokohama-{tag}"),
        ConnectionClass::ClosedIpVpn,
    )
    .await?;
    let pharmacy = world::onboard_provider(
        &p,
        &org,
        &format!("pharmacy-kawasaki-{tag}"),
        ConnectionClass::IpsecIkeVpn,
    )
    .await?;
    let app = world::onboard_provider(
        &p,
        &org,
        &format!("app-mebyo-{tag}"),
        ConnectionClass::TlsInternet,
    )
    .await?;
    println!(
        "3 providers approved: {} (IP-VPN), {} (IPsec VPN), {} (TLS)",
        clinic.id, pharmacy.id, app.id
    );

    let bar = std::io::stdout()
        .is_terminal()
        .then(|| indicatif::ProgressBar::new(a.people as u64));
    let now = p.now();
    let mut people = Vec::new();
    let (mut granted, mut refused) = (0u32, 0u32);
    for n in 0..a.people {
        let me = world::enroll_individual(&p, &org, &identity(&mut rng, n)).await?;
        for d in 0..rng.random_range(3..8) {
            let at = Timestamp(
                now.0 - Duration::days(d * 4 + 1).0 - rng.random_range(0..36_000_000_000),
            );
            world::record_blood_pressure(
                &p,
                &me,
                rng.random_range(105..165),
                rng.random_range(62..100),
                at,
            )
            .await?;
        }
        let record = RecordId::new(p.new_id("rec"))?;
        let at = Timestamp(now.0 - Duration::days(2).0);
        p.records(
            &me.actor(),
            &me.id,
            RecordCommand::Submit(Submission {
                record,
                category: Category::Vitals,
                effective_at: at,
                resource: world::body_weight(&me.id, rng.random_range(450..900) as f64 / 10.0, at),
                origin: Origin::SelfEntered,
                created_by: None,
                original_identifier: None,
            }),
        )
        .await?
        .map_err(|r| anyhow::anyhow!("weight record refused: {r}"))?;
        if rng.random_bool(0.8) {
            world::grant_consent(&p, &me, &clinic.id, &[Category::Vitals], Purpose::Care, 180)
                .await?;
        }
        if rng.random_bool(0.4) {
            world::grant_consent(
                &p,
                &me,
                &app.id,
                &[Category::Vitals],
                Purpose::HealthGuidance,
                90,
            )
            .await?;
        }
        // Providers read: the clinic and the app try everyone; consent decides.
        for prov in [&clinic, &app] {
            let req = AccessRequest {
                actor: prov.actor(),
                person: me.id.clone(),
                categories: [Category::Vitals].into_iter().collect(),
                purpose: if prov.id == clinic.id {
                    Purpose::Care
                } else {
                    Purpose::HealthGuidance
                },
                channel: Channel::ProviderGateway,
                period: Period {
                    from: Timestamp(now.0 - Duration::days(60).0),
                    to: now,
                },
            };
            match p.read_records(&req).await? {
                Ok(_) => granted += 1,
                Err(_) => refused += 1,
            }
        }
        // The individual looks at their own records.
        let own = AccessRequest {
            actor: me.actor(),
            person: me.id.clone(),
            categories: Platform::all_categories(),
            purpose: Purpose::PersonalUse,
            channel: Channel::Portal,
            period: Period {
                from: Timestamp(now.0 - Duration::days(365).0),
                to: now + Duration::days(1),
            },
        };
        p.read_records(&own)
            .await?
            .map_err(|r| anyhow::anyhow!("own read refused: {r}"))?;
        granted += 1;
        people.push(me);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    println!(
        "{} people enrolled with records and consents; provider reads: {granted} granted, {refused} refused (each one an event)",
        people.len()
    );

    // A consent revoked (takes effect at once).
    if let Some(me) = people.first() {
        let first = p
            .person_state(&me.id)
            .await?
            .consents
            .keys()
            .next()
            .cloned();
        if let Some(c) = first {
            p.person(
                &me.actor(),
                &me.id,
                PersonCommand::RevokeConsent { consent: c.clone() },
            )
            .await?
            .map_err(|r| anyhow::anyhow!("{r}"))?;
            println!("{} revoked consent {c}", me.id);
        }
    }
    // A lost credential: reported, revoked at once, reissued (P4.12(2)).
    if let Some(me) = people.get(1) {
        p.credential(&me.actor(), &me.credential, CredentialCommand::ReportLoss)
            .await?
            .map_err(|r| anyhow::anyhow!("{r}"))?;
        let new = CredentialId::new(p.new_id("cred"))?;
        p.credential(
            &Org::actor(&org.office),
            &new,
            CredentialCommand::Issue {
                credential: new.clone(),
                holder: Holder::Individual {
                    person: me.id.clone(),
                },
                replaces: Some(me.credential.clone()),
            },
        )
        .await?
        .map_err(|r| anyhow::anyhow!("{r}"))?;
        println!(
            "{} reported credential {} lost; reissued as {new}",
            me.id, me.credential
        );
    }
    // The prefecture revokes the app's connection information for judged risk (P4.13(3)).
    p.credential(
        &Org::actor(&org.prefecture),
        &app.credential,
        CredentialCommand::Revoke {
            reason: RevocationReason::JudgedRisk,
        },
    )
    .await?
    .map_err(|r| anyhow::anyhow!("{r}"))?;
    println!(
        "prefecture revoked {}'s credential {} (P4.13(3))",
        app.id, app.credential
    );
    // A withdrawal and a witnessed cryptographic erase (P4.9).
    if let Some(me) = people.get(2) {
        p.person(&me.actor(), &me.id, PersonCommand::Withdraw)
            .await?
            .map_err(|r| anyhow::anyhow!("{r}"))?;
        p.erase(&me.id, &org.system_operations_administrator)
            .await?
            .map_err(|r| anyhow::anyhow!("{r}"))?;
        println!(
            "{} withdrew; their keys were destroyed, witnessed by {}",
            me.id, org.system_operations_administrator
        );
    }
    let head = p.head();
    println!(
        "ledger: {} events, head hash {}",
        head.count,
        hex::encode(head.hash)
    );
    println!("next: mebyo audit verify --data {}", a.data.display());
    println!(
        "staff sign in: mebyo serve --data {d}, then https://127.0.0.1:8443/ops/login with a staff id and its one-time password from {d}/auth/initial-passwords.txt (written at that first start); the first sign-in replaces it and, for every role but the office, enrols a second factor (TOTP)",
        d = a.data.display()
    );
    Ok(())
}
