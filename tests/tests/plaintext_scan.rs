//! Plaintext scan (issue 3 §6, P4.8(1)(3)): drive realistic activity with known,
//! distinctive personal data through the platform, then scan every byte of every
//! file it wrote — event log, offsets, key store, KEK, vault, settings, and the
//! logs — for those values in UTF-8 and common encodings. Found nowhere.
//! Then erase the person and check their payloads no longer decrypt and the chain
//! still verifies.
//! A second test sends, through the bus, JAHIS files whose refusal once repeated
//! a patient's name into the answer kept in the ledger (issue 22 §2), and scans
//! the same way.

use crate::bus_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use mebyo_crypto::IdentityRecord;
use mebyo_domain::access::AccessRequest;
use mebyo_domain::consent::{Period, Purpose};
use mebyo_domain::person::PersonCommand;
use mebyo_domain::provider::ConnectionClass;
use mebyo_domain::records::{Category, Origin, RecordCommand, Submission};
use mebyo_domain::{Channel, Duration, RecordId, Timestamp};
use mebyo_platform::world;
use mebyo_platform::{Options, Platform, Settings};
use mebyo_store::{EventStore, ManualClock};

const NOW_US: i64 = 1_795_651_200_000_000;

/// Values chosen to be found nowhere by chance.
const NAME: &str = "走査 確認子";
const ADDRESS: &str = "神奈川県足柄下郡箱根町仙石原九九九番地";
const PHONE: &str = "090-7531-8642";
const EMAIL: &str = "scan.sentinel.7q3x@example.jp";
const BIRTH: &str = "1961-07-23";
const NOTE: &str = "SENTINEL-HEALTH-NOTE-kq8z 血圧が高めです";
/// A patient's name in a JAHIS file a provider sends (issue 22 §2).
const LEMON: &str = "神奈川 檸檬子";

/// A log writer that appends to a file, so the scan covers the logs too.
#[derive(Clone)]
struct FileLog(Arc<Mutex<std::fs::File>>);
impl Write for FileLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

fn encodings(value: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("utf-8".to_string(), value.as_bytes().to_vec())];
    out.push((
        "utf-16le".into(),
        value.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
    ));
    out.push((
        "utf-16be".into(),
        value.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
    ));
    for enc in [
        encoding_rs::SHIFT_JIS,
        encoding_rs::EUC_JP,
        encoding_rs::ISO_2022_JP,
    ] {
        let (b, _, _) = enc.encode(value);
        out.push((enc.name().to_string(), b.into_owned()));
    }
    out.push((
        "base64".into(),
        base64::engine::general_purpose::STANDARD
            .encode(value)
            .into_bytes(),
    ));
    out.push((
        "json-escaped".into(),
        serde_json::to_string(value)
            .unwrap()
            .trim_matches('"')
            .as_bytes()
            .to_vec(),
    ));
    let escaped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    out.push(("\\u-escaped".into(), escaped.into_bytes()));
    // Also the distinctive ASCII fragment alone, where there is one.
    if let Some(ascii) = value.split(' ').find(|w| w.len() >= 8 && w.is_ascii()) {
        out.push(("ascii fragment".into(), ascii.as_bytes().to_vec()));
    }
    out
}

fn scan(root: &Path, values: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(
        files.len() >= 6,
        "expected the ledger, offsets, kek, key store, vault, settings and log: {files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for v in values {
            for (enc, needle) in encodings(v) {
                if needle.len() >= 4 && bytes.windows(needle.len()).any(|w| w == needle.as_slice())
                {
                    found.push(format!("{v:?} ({enc}) in {}", f.display()));
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_found_in_no_file_and_erasure_makes_it_unrecoverable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(data.join("mebyo.log")).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let w = FileLog(Arc::new(Mutex::new(log)));
            move || w.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(NOW_US);
    let opts = || Options {
        clock: Arc::new(clock.clone()),
        seed: Some(42),
        ..Default::default()
    };
    Platform::init(&data, Settings::default(), opts())
        .await
        .unwrap();
    let p = Platform::open(&data, opts()).await.unwrap();
    let org = world::bootstrap_org(&p).await.unwrap();
    let clinic = world::onboard_provider(&p, &org, "clinic-scan", ConnectionClass::ClosedIpVpn)
        .await
        .unwrap();
    let identity = IdentityRecord {
        name: NAME.into(),
        address: ADDRESS.into(),
        birth_date: BIRTH.into(),
        phone: Some(PHONE.into()),
        email: Some(EMAIL.into()),
    };
    let me = world::enroll_individual(&p, &org, &identity).await.unwrap();
    // Some neighbours, so the sentinel person is not alone in the files.
    for n in 0..5 {
        let mut other = identity.clone();
        other.name = format!("隣人 {n}");
        other.email = Some(format!("neighbour{n}@example.jp"));
        other.phone = Some(format!("045-000-{n:04}"));
        other.address = format!("横浜市{n}");
        world::enroll_individual(&p, &org, &other).await.unwrap();
    }
    let at = Timestamp(NOW_US - 86_400_000_000);
    let mut bp = world::blood_pressure(&me.id, 172, 104, at);
    bp["note"] = serde_json::json!([{ "text": NOTE }]);
    p.records(
        &me.actor(),
        &me.id,
        RecordCommand::Submit(Submission {
            record: RecordId::new("rec-scan-1").unwrap(),
            category: Category::Vitals,
            effective_at: at,
            resource: bp,
            origin: Origin::SelfEntered,
            created_by: None,
            original_identifier: None,
        }),
    )
    .await
    .unwrap()
    .expect("the record is accepted");
    world::grant_consent(&p, &me, &clinic.id, &[Category::Vitals], Purpose::Care, 30)
        .await
        .unwrap();
    let req = AccessRequest {
        actor: clinic.actor(),
        person: me.id.clone(),
        categories: [Category::Vitals].into_iter().collect::<BTreeSet<_>>(),
        purpose: Purpose::Care,
        channel: Channel::ProviderGateway,
        period: Period {
            from: Timestamp(NOW_US - Duration::days(30).0),
            to: Timestamp(NOW_US),
        },
    };
    let got = p.read_records(&req).await.unwrap().unwrap();
    assert_eq!(
        got[0].resource.value()["note"][0]["text"],
        NOTE,
        "the platform itself can read it back"
    );
    assert_eq!(
        p.identity(&me.id).unwrap().unwrap().email.as_deref(),
        Some(EMAIL)
    );

    let values = [NAME, ADDRESS, PHONE, EMAIL, BIRTH, NOTE];
    let found = scan(&data, &values);
    assert!(
        found.is_empty(),
        "plaintext personal data at rest (P4.8(1)(3)):\n{}",
        found.join("\n")
    );

    // Erasure (P4.9): withdraw, then the witnessed cryptographic erase.
    let records = p
        .store()
        .read_stream(&format!("records-{}", me.id), 0, 10)
        .await
        .unwrap();
    let key_ref = records[0].key_ref.clone();
    p.person(&me.actor(), &me.id, PersonCommand::Withdraw)
        .await
        .unwrap()
        .unwrap();
    p.erase(&me.id, &org.system_operations_administrator)
        .await
        .unwrap()
        .unwrap();
    assert!(
        p.keys().dek(&key_ref).is_err(),
        "the person's DEK is destroyed"
    );
    let place = mebyo_store::SealPlace {
        stream_id: &records[0].stream_id,
        stream_revision: records[0].stream_revision,
        event_type: &records[0].event_type,
        position: records[0].position,
    };
    assert!(
        p.keys()
            .open(&key_ref, &place, &records[0].payload)
            .is_err(),
        "their payloads fail to decrypt"
    );
    assert!(p.identity(&me.id).unwrap().is_none());
    let keystore = std::fs::read(data.join("keys/keystore")).unwrap();
    assert!(
        !keystore
            .windows(key_ref.len())
            .any(|w| w == key_ref.as_bytes()),
        "no key reference of the erased person remains in the key store"
    );
    let found = scan(&data, &values);
    assert!(found.is_empty(), "after erasure:\n{}", found.join("\n"));
    drop(p);
    let out = mebyo_tests::mebyo(&["audit", "verify", "--data", mebyo_tests::path_str(&data)]);
    assert!(
        out.status.success(),
        "the chain still verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Issue 22 §2: a JAHIS error repeated the file's text (a patient's name), and
/// the answer of a partly refused submission is kept in the ledger. The error
/// names line, record and field only; the stored answer and every file the
/// platform wrote hold no trace of the name, in any encoding (P4.8(3)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_jahis_file_leaves_no_trace_of_its_text() {
    use bus_support::{Scene, World};
    use mebyo_bus::jahis::encode_sjis;
    use mebyo_provider::{blood_pressure, fhir_item, jahis_item};
    const NAME: &str = LEMON;
    const MEDICINE: &str = "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1";
    let file = |body: &[&str]| {
        let patient = format!("1,{NAME},2,19800401,231-8588");
        let mut lines = vec!["JAHISTC07,1", patient.as_str()];
        lines.extend_from_slice(body);
        encode_sjis(&lines)
    };
    let w = World::new("a_refused_jahis_file_leaves_no_trace_of_its_text").await;
    let nats = mebyo_bus::testkit::NatsServer::start();
    let Scene {
        hanako,
        bus,
        client: c,
        ..
    } = w.clinic_and_hanako(&nats).await;
    let person = hanako.id.as_str();
    let when = w.at(2);
    // The name where the old messages repeated a field: the date, the record
    // number, the RP number.
    let date = format!("5,{NAME},1");
    let record = format!("{NAME},1");
    let rp = format!("201,{NAME},薬,1,錠");
    let files = [
        file(&[&date, MEDICINE]),
        file(&["5,20261125,1", &record, MEDICINE]),
        file(&["5,20261125,1", &rp]),
    ];
    let mut items = vec![fhir_item(
        person,
        "vitals",
        &when,
        "lab-1",
        blood_pressure(person, 128, 82, &when),
    )];
    items.extend(files.iter().map(|f| jahis_item(person, f)));
    let a = c.submit(items, "mixed-1", 1).await.unwrap();
    let result = a.result().unwrap_or_else(|| panic!("{:?}", a.body));
    assert_eq!(result["items"][0]["status"], "added");
    for i in 1..=3 {
        let item = &result["items"][i];
        assert_eq!(item["status"], "refused", "{item}");
        assert_eq!(item["error"]["code"], "jahis.invalid");
    }
    assert_eq!(
        result["items"][1]["error"]["message"],
        "JAHIS line 3, record 5, field 2: dispensing date must be YYYYMMDD (8 digits, a real date, year 1900..=2100)"
    );
    assert_eq!(
        result["items"][2]["error"]["message"],
        "JAHIS line 4: record number (field 1) is not a number"
    );
    assert_eq!(
        result["items"][3]["error"]["message"],
        "JAHIS line 4, record 201, field 2: RP number must be 1..=999"
    );
    let reply = a.body.to_string();
    let stored: Vec<serde_json::Value> = w
        .platform
        .store()
        .read_all(0, 1_000_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "bus.request_completed")
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect();
    assert_eq!(stored.len(), 1, "the partly refused answer is kept");
    let stored = stored[0].to_string();
    for word in NAME.split(' ') {
        assert!(!reply.contains(word), "the reply repeats the file: {reply}");
        assert!(!stored.contains(word), "the stored answer does: {stored}");
    }
    let found = scan(w.tmp.path(), &[NAME, "檸檬子"]);
    assert!(
        found.is_empty(),
        "the file's text at rest (P4.8(3)):\n{}",
        found.join("\n")
    );
    bus.shutdown().await;
}
