//! The wire protocol, exactly as `docs/bus.md` specifies it: subjects, headers,
//! the canonical string a provider signs, and the JSON bodies. Anything a
//! provider's engineer needs to interoperate lives here or in that document; the
//! two must agree (the example client in `provider-client/` re-implements this
//! from the document alone, and the end-to-end tests run it against this code).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Protocol version carried in every subject.
pub const DEFAULT_PREFIX: &str = "mebyo.v1";
/// First line of the signed string. `V2` covers the reply subject (issue 22 §6):
/// a captured request cannot be sent again with its answer redirected to another
/// inbox. A request signed the `V1` way is refused with
/// `request.signature_outdated`.
pub const SIGNING_DOMAIN: &str = "MEBYO-BUS-V2";
/// The first signing scheme (eight lines, no reply subject), only recognised to
/// refuse it with a clear code.
pub const SIGNING_DOMAIN_V1: &str = "MEBYO-BUS-V1";

pub const H_PROVIDER: &str = "Mebyo-Provider";
pub const H_CREDENTIAL: &str = "Mebyo-Credential";
pub const H_TIMESTAMP: &str = "Mebyo-Timestamp";
pub const H_NONCE: &str = "Mebyo-Nonce";
pub const H_SIGNATURE: &str = "Mebyo-Signature";
pub const H_IDEMPOTENCY_KEY: &str = "Mebyo-Idempotency-Key";
/// Reply header: `true` when the reply is the stored first answer to an earlier
/// request with the same idempotency key.
pub const H_REPLAYED: &str = "Mebyo-Replayed";
/// Reply header: `ok` or `error` (also visible in the body).
pub const H_STATUS: &str = "Mebyo-Status";
/// Feed header: the ledger position a feed message derives from (absent for
/// notices not derived from one event, such as expiries and maintenance).
pub const H_POSITION: &str = "Mebyo-Position";

/// The services, by the subject suffix after `<prefix>.svc.<provider>.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Submit,
    Query,
    Consents,
    FeedAck,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Submit,
        Service::Query,
        Service::Consents,
        Service::FeedAck,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            Service::Submit => "records.submit",
            Service::Query => "records.query",
            Service::Consents => "consents.list",
            Service::FeedAck => "feed.ack",
        }
    }

    /// Writes need an idempotency key so that a retry cannot write twice.
    pub fn writes(self) -> bool {
        matches!(self, Service::Submit | Service::FeedAck)
    }

    pub fn from_suffix(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|x| x.suffix() == s)
    }
}

/// `<prefix>.svc.<provider>.<service>`.
pub fn service_subject(prefix: &str, provider: &str, service: Service) -> String {
    format!("{prefix}.svc.{provider}.{}", service.suffix())
}

/// Splits a service subject into provider and service.
pub fn parse_service_subject<'a>(prefix: &str, subject: &'a str) -> Option<(&'a str, Service)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix(".svc.")?;
    let (provider, suffix) = rest.split_once('.')?;
    Some((provider, Service::from_suffix(suffix)?))
}

/// `<prefix>.feed.<provider>.<kind>` where kind is e.g. `consent.granted`.
pub fn feed_subject(prefix: &str, provider: &str, kind: &str) -> String {
    format!("{prefix}.feed.{provider}.{kind}")
}

/// The one filter subject of a provider's durable consumer.
pub fn feed_filter(prefix: &str, provider: &str) -> String {
    format!("{prefix}.feed.{provider}.>")
}

/// The durable consumer a provider reads its feed from.
pub fn feed_consumer(provider: &str) -> String {
    format!("feed-{provider}")
}

pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The exact bytes a provider signs with its ed25519 key: nine lines joined by
/// `\n`, no trailing newline. An absent reply subject or idempotency key is the
/// empty string.
#[allow(clippy::too_many_arguments)]
pub fn signing_string(
    subject: &str,
    reply: &str,
    provider: &str,
    credential: &str,
    timestamp_ms: &str,
    nonce: &str,
    idempotency_key: &str,
    body: &[u8],
) -> String {
    [
        SIGNING_DOMAIN,
        subject,
        reply,
        provider,
        credential,
        timestamp_ms,
        nonce,
        idempotency_key,
        &sha256_hex(body),
    ]
    .join("\n")
}

/// The `V1` signed string (no reply subject), to tell an outdated client from a
/// wrong signature.
pub fn signing_string_v1(
    subject: &str,
    provider: &str,
    credential: &str,
    timestamp_ms: &str,
    nonce: &str,
    idempotency_key: &str,
    body: &[u8],
) -> String {
    [
        SIGNING_DOMAIN_V1,
        subject,
        provider,
        credential,
        timestamp_ms,
        nonce,
        idempotency_key,
        &sha256_hex(body),
    ]
    .join("\n")
}

/// 32 to 64 lowercase hex digits: at least 128 bits of randomness.
pub fn valid_nonce(n: &str) -> bool {
    (32..=64).contains(&n.len()) && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 1 to 128 characters of `[A-Za-z0-9._:-]`: the platform's one rule for keys,
/// shared with the JSON API's `Idempotency-Key`.
pub use mebyo_platform::idempotency::valid_key as valid_idempotency_key;

/// The body of every error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    /// Clause of the policy (REQUIREMENTS.md) the refusal rests on.
    pub clause: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: &str, clause: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            clause: clause.into(),
            message: message.into(),
        }
    }

    pub fn from_refusal(r: &mebyo_domain::Refusal) -> Self {
        Self::new(r.code, r.clause, r.message.clone())
    }

    /// `{"error": {...}}`.
    pub fn reply(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self })).expect("json")
    }
}

/// `{"result": ...}`.
pub fn ok_reply<T: Serialize>(result: &T) -> Vec<u8> {
    // Serialised straight from the borrowed result: no copy through a `Value`.
    #[derive(Serialize)]
    struct Ok<'a, T: Serialize> {
        result: &'a T,
    }
    serde_json::to_vec(&Ok { result }).unwrap_or_else(|_| {
        ErrorBody::new(
            "platform.internal",
            mebyo_domain::clause!("P4.4"),
            "the answer could not be written",
        )
        .reply()
    })
}

// ---- request bodies ------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub items: Vec<SubmitItem>,
}

/// One item of a submission, by its `format`.
///
/// Read through [`RawItem`] rather than as an internally tagged enum: serde reads
/// a tagged enum by buffering each item whole and reading it a second time, and
/// for a batch of FHIR resources that buffering was a fifth of the bus's CPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawItem")]
pub enum SubmitItem {
    /// One FHIR R4 resource.
    Fhir {
        person: String,
        category: mebyo_domain::Category,
        /// RFC 3339 date-time, or a date `YYYY-MM-DD` (midnight, Japan time).
        effective_at: String,
        original_identifier: String,
        /// Originating institution, when the provider relays another's data.
        created_by: Option<String>,
        resource: serde_json::Value,
    },
    /// One JAHIS electronic medication-notebook file (Shift_JIS CSV), base64.
    Jahis { person: String, data_base64: String },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    Fhir,
    Jahis,
}

/// Every field either format may carry; [`SubmitItem`] checks which belong.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    format: Format,
    person: String,
    #[serde(default)]
    category: Option<mebyo_domain::Category>,
    #[serde(default)]
    effective_at: Option<String>,
    #[serde(default)]
    original_identifier: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    resource: Option<serde_json::Value>,
    #[serde(default)]
    data_base64: Option<String>,
}

impl TryFrom<RawItem> for SubmitItem {
    type Error = String;

    fn try_from(r: RawItem) -> Result<Self, String> {
        fn need<T>(v: Option<T>, format: &str, field: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("format {format}: missing field `{field}`"))
        }
        fn none<T>(v: &Option<T>, format: &str, field: &str) -> Result<(), String> {
            match v {
                Some(_) => Err(format!("format {format}: field `{field}` does not belong")),
                None => Ok(()),
            }
        }
        match r.format {
            Format::Fhir => {
                none(&r.data_base64, "fhir", "data_base64")?;
                Ok(SubmitItem::Fhir {
                    person: r.person,
                    category: need(r.category, "fhir", "category")?,
                    effective_at: need(r.effective_at, "fhir", "effective_at")?,
                    original_identifier: need(
                        r.original_identifier,
                        "fhir",
                        "original_identifier",
                    )?,
                    created_by: r.created_by,
                    resource: need(r.resource, "fhir", "resource")?,
                })
            }
            Format::Jahis => {
                none(&r.category, "jahis", "category")?;
                none(&r.effective_at, "jahis", "effective_at")?;
                none(&r.original_identifier, "jahis", "original_identifier")?;
                none(&r.created_by, "jahis", "created_by")?;
                none(&r.resource, "jahis", "resource")?;
                Ok(SubmitItem::Jahis {
                    person: r.person,
                    data_base64: need(r.data_base64, "jahis", "data_base64")?,
                })
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub person: String,
    pub categories: Vec<mebyo_domain::Category>,
    pub purpose: mebyo_domain::Purpose,
    pub period: WirePeriod,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WirePeriod {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentsRequest {
    /// `active` (default) or `all`.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub ids: Vec<String>,
}

// ---- replies ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitResult {
    pub items: Vec<ItemResult>,
}

/// One record of a `records.query` reply, borrowed from the platform's state.
#[derive(Serialize)]
pub struct RecordOut<'a> {
    pub record: &'a mebyo_domain::RecordId,
    pub category: mebyo_domain::Category,
    pub effective_at: String,
    pub resource: &'a mebyo_domain::records::Resource,
    pub provenance: &'a mebyo_domain::records::Provenance,
}

#[derive(Serialize)]
pub struct QueryResult<'a> {
    pub records: Vec<RecordOut<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub index: usize,
    /// `added` when every record of the item was stored, `refused` when none was,
    /// `partial` for a JAHIS file some of whose medicines were refused.
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordResult {
    pub record: String,
    /// `added` or `refused`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// RFC 3339 in UTC. A moment outside years 0000–9999 (which RFC 3339 cannot
/// write, and [`parse_time`] never yields) is written as microseconds since the
/// epoch rather than failing.
pub fn rfc3339(at: mebyo_domain::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(at.0 as i128 * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{}us", at.0))
}

/// RFC 3339 date-time, or `YYYY-MM-DD` read as midnight in Japan (UTC+9), the
/// way Japanese clinical systems date things. Years 0001–9999 (in UTC) only: a
/// sign or more digits is refused, so that every time read can be written back.
pub fn parse_time(s: &str) -> Option<mebyo_domain::Timestamp> {
    use time::format_description::well_known::Rfc3339;
    if s.len() > 64 {
        return None;
    }
    let t = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let b = s.as_bytes();
            let shaped = b.len() == 10
                && b.iter().enumerate().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        *c == b'-'
                    } else {
                        c.is_ascii_digit()
                    }
                });
            if !shaped {
                return None;
            }
            let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .ok()?;
            d.with_hms(0, 0, 0)
                .ok()?
                .assume_offset(time::macros::offset!(+9))
        }
    };
    if !(1..=9999).contains(&t.to_offset(time::UtcOffset::UTC).year()) {
        return None;
    }
    Some(mebyo_domain::Timestamp(
        (t.unix_timestamp_nanos() / 1000) as i64,
    ))
}

/// Midnight of `d` in Japan (UTC+9).
pub fn jst_midnight(d: time::Date) -> mebyo_domain::Timestamp {
    let t = d.midnight().assume_offset(time::macros::offset!(+9));
    mebyo_domain::Timestamp((t.unix_timestamp_nanos() / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let s = service_subject("mebyo.v1", "clinic-a", Service::Submit);
        assert_eq!(s, "mebyo.v1.svc.clinic-a.records.submit");
        assert_eq!(
            parse_service_subject("mebyo.v1", &s),
            Some(("clinic-a", Service::Submit))
        );
        assert_eq!(
            parse_service_subject("mebyo.v1", "mebyo.v1.svc.clinic-a.nope"),
            None
        );
        assert_eq!(
            parse_service_subject("mebyo.v1", "other.svc.a.feed.ack"),
            None
        );
    }

    #[test]
    fn signing_string_is_nine_lines() {
        let s = signing_string(
            "subj",
            "_INBOX.x",
            "p",
            "c",
            "1700000000000",
            "ab",
            "",
            b"{}",
        );
        assert_eq!(
            s,
            "MEBYO-BUS-V2\nsubj\n_INBOX.x\np\nc\n1700000000000\nab\n\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let v1 = signing_string_v1("subj", "p", "c", "1700000000000", "ab", "", b"{}");
        assert!(v1.starts_with("MEBYO-BUS-V1\nsubj\np\n"));
    }

    #[test]
    fn times_parse_as_documented() {
        let d = parse_time("2026-11-26").unwrap();
        assert_eq!(d.0, 1_795_651_200_000_000 - 9 * 3_600_000_000);
        assert_eq!(
            parse_time("2026-11-26T00:00:00Z").unwrap().0,
            1_795_651_200_000_000
        );
        assert!(parse_time("yesterday").is_none());
        // Issue 22 §1: a sign or a short year is not a date, and nothing read
        // fails to be written back.
        for bad in [
            "-101-01-15",
            "+2026-11-26",
            "0000-01-01T00:00:00+01:00",
            "2026-1-26",
            "02026-11-26",
            "2026-02-30",
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
        assert_eq!(
            rfc3339(mebyo_domain::Timestamp(i64::MIN)),
            format!("@{}us", i64::MIN)
        );
        assert_eq!(
            rfc3339(mebyo_domain::Timestamp(1_795_651_200_000_000)),
            "2026-11-26T00:00:00Z"
        );
    }

    #[test]
    fn nonces_and_keys() {
        assert!(valid_nonce(&"a".repeat(32)));
        assert!(!valid_nonce(&"A".repeat(32)));
        assert!(!valid_nonce("abc"));
        assert!(valid_idempotency_key("order-1:2"));
        assert!(!valid_idempotency_key("a b"));
        assert!(!valid_idempotency_key(&"k".repeat(129)));
    }

    /// Submission items read as docs/bus.md describes them: each format with its
    /// own fields, and a clear error for a missing, foreign or unknown field.
    #[test]
    fn submit_items_parse_by_format() {
        fn check(item: &str, expect: &str) {
            let got = match serde_json::from_str::<SubmitItem>(item) {
                Ok(SubmitItem::Fhir {
                    resource,
                    created_by,
                    ..
                }) => {
                    format!("fhir {resource} created_by={created_by:?}")
                }
                Ok(SubmitItem::Jahis { data_base64, .. }) => format!("jahis {data_base64}"),
                Err(e) => format!("error: {e}"),
            };
            assert!(
                got.starts_with(expect),
                "{item}\n  got:    {got}\n  wanted: {expect}"
            );
        }
        let fhir = r#""person":"p-1","category":"vitals","effective_at":"2026-11-26","original_identifier":"o-1""#;
        check(
            &format!(r#"{{"format":"fhir",{fhir},"resource":{{"a":1}}}}"#),
            r#"fhir {"a":1} created_by=None"#,
        );
        check(
            &format!(r#"{{{fhir},"resource":{{}},"created_by":"clinic-b","format":"fhir"}}"#),
            r#"fhir {} created_by=Some("clinic-b")"#,
        );
        check(
            &format!(r#"{{"format":"fhir",{fhir}}}"#),
            "error: format fhir: missing field `resource`",
        );
        check(
            &format!(r#"{{"format":"fhir",{fhir},"resource":{{}},"data_base64":"QQ=="}}"#),
            "error: format fhir: field `data_base64` does not belong",
        );
        check(
            r#"{"format":"jahis","person":"p-1","data_base64":"QQ=="}"#,
            "jahis QQ==",
        );
        check(
            r#"{"format":"jahis","person":"p-1","data_base64":"QQ==","resource":{}}"#,
            "error: format jahis: field `resource` does not belong",
        );
        check(
            r#"{"format":"jahis","person":"p-1"}"#,
            "error: format jahis: missing field `data_base64`",
        );
        check(
            r#"{"format":"hl7v2","person":"p-1"}"#,
            "error: unknown variant `hl7v2`, expected `fhir` or `jahis`",
        );
        check(
            &format!(r#"{{"format":"fhir",{fhir},"resource":{{}},"colour":"red"}}"#),
            "error: unknown field `colour`",
        );
        check(r#"{"person":"p-1"}"#, "error: missing field `format`");
    }
}
