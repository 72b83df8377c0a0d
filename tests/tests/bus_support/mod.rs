//! Shared set-up of the bus end-to-end tests: a platform on a simulated clock
//! with the organisation, providers whose signing keys are registered, people
//! with consents; a private nats-server; the bus serving through it; clients that
//! sign on the platform's clock.
#![allow(dead_code)]

use std::sync::Arc;

use mebyo_bus::testkit::{NatsServer, identity};
use mebyo_bus::{BusConfig, BusHandle};
use mebyo_domain::consent::Purpose;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::Category;
use mebyo_domain::{Duration, Timestamp};
use mebyo_platform::world::{self, Individual, OnboardedProvider, Org};
use mebyo_platform::{Options, Platform, Settings};
use mebyo_provider::{ProviderClient, SigningKey};
use mebyo_store::{EventStore, ManualClock};

pub const NOW_US: i64 = 1_795_651_200_000_000; // 2026-11-26T00:00:00Z

/// What [`World::clinic_and_hanako`] sets up.
pub struct Scene {
    pub clinic: OnboardedProvider,
    pub hanako: Individual,
    pub bus: BusHandle,
    pub client: ProviderClient,
}

pub struct World {
    pub tmp: tempfile::TempDir,
    pub clock: ManualClock,
    pub platform: Arc<Platform>,
    pub org: Org,
}

impl World {
    pub async fn new(test: &str) -> World {
        let seed = mebyo_tests::seed(test);
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOW_US);
        let opts = || Options {
            clock: Arc::new(clock.clone()),
            seed: Some(seed),
            ..Default::default()
        };
        Platform::init(tmp.path(), Settings::default(), opts())
            .await
            .unwrap();
        let platform = Arc::new(Platform::open(tmp.path(), opts()).await.unwrap());
        let org = world::bootstrap_org(&platform).await.unwrap();
        World {
            tmp,
            clock,
            platform,
            org,
        }
    }

    /// An approved provider whose signing key the office registered.
    pub async fn provider(
        &self,
        slug: &str,
        class: ConnectionClass,
    ) -> (OnboardedProvider, SigningKey) {
        let p = world::onboard_provider(&self.platform, &self.org, slug, class)
            .await
            .unwrap();
        let key = mebyo_provider::generate_key();
        mebyo_bus::register_provider_key(
            &self.platform,
            &Org::actor(&self.org.office),
            &p.credential,
            &key.verifying_key(),
        )
        .await
        .unwrap()
        .unwrap();
        (p, key)
    }

    pub async fn person(&self, n: u32) -> Individual {
        world::enroll_individual(&self.platform, &self.org, &identity(n))
            .await
            .unwrap()
    }

    pub async fn consent(
        &self,
        who: &Individual,
        p: &OnboardedProvider,
        cats: &[Category],
        days: i64,
    ) -> mebyo_domain::ConsentId {
        world::grant_consent(&self.platform, who, &p.id, cats, Purpose::Care, days)
            .await
            .unwrap()
    }

    pub fn bus_config(&self, nats: &NatsServer) -> BusConfig {
        let mut cfg = BusConfig::new(nats.url());
        if let Some(pki) = &nats.tls {
            cfg.tls = Some(pki.client_tls());
        }
        cfg.feed.memory = false;
        cfg.feed.expiry_tick = std::time::Duration::from_millis(100);
        cfg
    }

    pub async fn serve(&self, nats: &NatsServer) -> BusHandle {
        mebyo_bus::serve(self.platform.clone(), self.bus_config(nats))
            .await
            .unwrap()
    }

    /// The scene most bus tests start from: clinic-a over an IPsec VPN, Hanako
    /// (person 1) consenting to its reading her vitals and medication notebook for
    /// 30 days, the bus serving through `nats`, and clinic-a's client.
    pub async fn clinic_and_hanako(&self, nats: &NatsServer) -> Scene {
        let (clinic, key) = self
            .provider("clinic-a", ConnectionClass::IpsecIkeVpn)
            .await;
        let hanako = self.person(1).await;
        self.consent(
            &hanako,
            &clinic,
            &[Category::Vitals, Category::MedicationNotebook],
            30,
        )
        .await;
        let bus = self.serve(nats).await;
        let client = self.client(nats, &clinic, &key).await;
        Scene {
            clinic,
            hanako,
            bus,
            client,
        }
    }

    /// A provider client signing on the platform's clock.
    pub async fn client(
        &self,
        nats: &NatsServer,
        p: &OnboardedProvider,
        key: &SigningKey,
    ) -> ProviderClient {
        let tls = nats.tls.as_ref().map(|pki| mebyo_provider::Tls {
            ca: pki.ca.clone(),
            cert: pki.client_cert.clone(),
            key: pki.client_key.clone(),
        });
        let clock = self.clock.clone();
        ProviderClient::connect(
            &nats.url(),
            tls.as_ref(),
            p.id.as_str(),
            p.credential.as_str(),
            key.clone(),
        )
        .await
        .unwrap()
        .with_clock(Arc::new(move || {
            use mebyo_store::Clock;
            (clock.now_us() / 1000) as u64
        }))
    }

    /// Events of these types in the whole ledger.
    pub async fn count(&self, event_type: &str) -> usize {
        let all = self.platform.store().read_all(0, 1_000_000).await.unwrap();
        all.iter().filter(|e| e.event_type == event_type).count()
    }

    pub fn head(&self) -> u64 {
        self.platform.head().count
    }

    pub fn at(&self, minus_hours: i64) -> String {
        mebyo_bus::wire::rfc3339(Timestamp(self.clock_now() - minus_hours * 3_600_000_000))
    }

    pub fn clock_now(&self) -> i64 {
        use mebyo_store::Clock;
        self.clock.now_us()
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(Duration::days(days).0);
    }
}

/// A sample JAHIS file (Shift_JIS, CRLF) dispensed the day before `NOW_US`.
pub fn jahis_sample() -> Vec<u8> {
    mebyo_bus::jahis::encode_sjis(&[
        "JAHISTC07,1",
        "1,神奈川 花子,2,19800401,231-8588,横浜市中区日本大通1,045-210-1111,,,,カナガワ ハナコ",
        "5,20261125,1",
        "11,みなと薬局,14,4,1234567,231-0001,横浜市中区新港1-1,045-000-0000,1",
        "51,よこはま内科クリニック,14,1,7654321,1",
        "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1",
        "301,1,1日1回 朝食後,28,日分,1,1,,1",
        "201,2,メトホルミン塩酸塩錠２５０ｍｇ,2,錠,1,,1",
        "301,2,1日2回 朝夕食後,28,日分,1,1,,1",
    ])
}
