//! JAHIS electronic medication notebook (電子版お薬手帳データフォーマット仕様書, JAHIS)
//! to FHIR R4 MedicationStatement.
//!
//! The file is Shift_JIS text, CRLF line ends, a header line `JAHISTCnn,k` (format
//! version `nn`, output kind `k`), then one record per line whose first field is the
//! record number. Text fields never hold an ASCII comma (the format writes commas
//! full-width), so a line splits on `,`. The records this converter reads:
//!
//! | no. | record | fields used (after the number) |
//! | --- | --- | --- |
//! | 1 | 患者情報 patient | none: name, address and birth date are identity data and never enter a health record (P4.8(3)) |
//! | 5 | 調剤等年月日 dispensing date | date `YYYYMMDD`; opens a dispensing group |
//! | 11 | 調剤-医療機関等 dispensing pharmacy | name, prefecture code, fee-table code, institution code |
//! | 51 | 処方-医療機関 prescribing institution | name, prefecture, fee table, code |
//! | 201 | 薬品 medicine | RP number, name, dose, unit, code kind, code |
//! | 281 | 薬品補足 medicine supplement | RP number, text |
//! | 291 | 薬品服用注意 caution | RP number, text |
//! | 301 | 用法 usage | RP number, usage text, quantity, quantity unit, form code, usage code kind, usage code |
//!
//! Records the format defines but this converter does not read (doctor 55,
//! pharmacist 15, notes…, [`KNOWN_UNREAD`]) are skipped and counted. Any other
//! record number is refused with its line: a record the converter does not know
//! could carry a medicine that would silently be lost. A file whose last line
//! does not end with CRLF is refused as truncated (its last text would be stored
//! cut). Each 201 becomes one MedicationStatement (category
//! `medication_notebook`), dated by its group's dispensing date, with provenance
//! Origin::MedicalInstitution and an original identifier naming the pharmacy, the
//! date and the position in the file (P5.1).
//!
//! Errors name the line, the record number and the field, never the file's text:
//! the text is a patient's (names, addresses) and an error is kept in the
//! submission's stored answer (P4.8(3)).

use std::collections::BTreeMap;

use mebyo_domain::{PersonId, Timestamp};
use serde_json::{Value, json};

/// Largest file accepted (a notebook export of many years is far smaller).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Most medicines (201 records) accepted from one file.
pub const MAX_MEDICINES: usize = 200;
pub const MAX_LINE_CHARS: usize = 4096;
/// Years a dispensing date may name. Electronic notebooks exist since the 2010s;
/// the bounds only keep out what cannot be a dispensing (a sign, year 0, five
/// digits), so every accepted date is one the platform can store and format.
pub const DISPENSING_YEARS: std::ops::RangeInclusive<i32> = 1900..=2100;

/// Record numbers of the JAHIS format (Ver. 2.x) that this converter does not
/// read: 2 患者特記, 3 一般用医薬品, 4 手帳メモ, 15 調剤-医師・薬剤師, 55 処方-医師,
/// 311 用法補足, 391 処方服用注意, 401 服用注意, 411 医療機関等提供情報,
/// 421 残薬確認, 501 備考, 601 患者等記入. None of them holds a medicine.
pub const KNOWN_UNREAD: &[&str] = &[
    "2", "3", "4", "15", "55", "311", "391", "401", "411", "421", "501", "601",
];

/// Where a file is wrong and how, with no text of the file in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JAHIS {}: {problem}", self.place())]
pub struct JahisError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    /// The record number, when it is one the format defines.
    pub record: Option<&'static str>,
    /// 1-based field of the line (the record number is field 1).
    pub field: Option<usize>,
    /// What is wrong, in the platform's words only.
    pub problem: String,
}

impl JahisError {
    fn place(&self) -> String {
        let mut s = match self.line {
            0 => "file".to_string(),
            n => format!("line {n}"),
        };
        if let Some(r) = self.record {
            s.push_str(&format!(", record {r}"));
        }
        if let Some(f) = self.field {
            s.push_str(&format!(", field {f}"));
        }
        s
    }
}

fn err<T>(line: usize, problem: impl Into<String>) -> Result<T, JahisError> {
    Err(JahisError {
        line,
        record: None,
        field: None,
        problem: problem.into(),
    })
}

/// An error at a field of a record.
fn field_err<T>(
    line: usize,
    record: &'static str,
    field: usize,
    problem: impl Into<String>,
) -> Result<T, JahisError> {
    Err(JahisError {
        line,
        record: Some(record),
        field: Some(field),
        problem: problem.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Institution {
    pub name: String,
    pub prefecture: String,
    pub fee_table: String,
    pub code: String,
}

impl Institution {
    /// The 10-digit institution number: prefecture (2), fee table (1), code (7).
    pub fn number(&self) -> String {
        format!("{}{}{}", self.prefecture, self.fee_table, self.code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medicine {
    pub line: usize,
    pub rp: u32,
    pub name: String,
    pub dose: String,
    pub unit: String,
    pub code_kind: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub text: String,
    pub quantity: String,
    pub quantity_unit: String,
    pub code_kind: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispensing {
    /// The dispensing date as parsed (checked once, never parsed again).
    pub date: time::Date,
    pub pharmacy: Option<Institution>,
    pub prescriber: Option<Institution>,
    pub medicines: Vec<Medicine>,
    pub usages: BTreeMap<u32, Usage>,
    pub notes: BTreeMap<u32, Vec<String>>,
}

impl Dispensing {
    fn on(date: time::Date) -> Self {
        Self {
            date,
            pharmacy: None,
            prescriber: None,
            medicines: Vec::new(),
            usages: BTreeMap::new(),
            notes: BTreeMap::new(),
        }
    }

    /// `YYYY-MM-DD` (the year is four digits: [`DISPENSING_YEARS`]).
    pub fn iso_date(&self) -> String {
        let d = self.date;
        format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notebook {
    /// e.g. `JAHISTC07`.
    pub version: String,
    pub output_kind: String,
    pub dispensings: Vec<Dispensing>,
    pub skipped_records: usize,
}

/// A dispensing date: exactly eight ASCII digits `YYYYMMDD`, a year in
/// [`DISPENSING_YEARS`], a real calendar day. (`time`'s `[year]` would also take
/// a sign or more digits, which is how `-01010115` once got through.)
fn dispensing_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'));
    let year = num(0..4);
    if !DISPENSING_YEARS.contains(&year) {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(num(4..6)).ok()?).ok()?;
    time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)).ok()?).ok()
}

/// Decodes and parses a JAHIS file. Refuses anything that is not strictly
/// Shift_JIS with CRLF line ends: a wrongly encoded file would store garbled
/// medicine names as if they were right.
pub fn parse(bytes: &[u8]) -> Result<Notebook, JahisError> {
    if bytes.len() > MAX_FILE_BYTES {
        return err(0, format!("file larger than {MAX_FILE_BYTES} bytes"));
    }
    let Some(text) =
        encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes)
    else {
        return err(0, "not valid Shift_JIS");
    };
    if text.is_empty() {
        return err(1, "empty file");
    }
    let Some(text) = text.strip_suffix("\r\n") else {
        // Name the last line: the file was cut there, or written without CRLF.
        let last = text.split("\r\n").count();
        return err(
            last,
            "the last line does not end with CRLF: the file is truncated or not JAHIS",
        );
    };
    let mut lines = text.split("\r\n").enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or(JahisError {
        line: 1,
        record: None,
        field: None,
        problem: "empty file".into(),
    })?;
    if header.contains(['\r', '\n']) {
        return err(1, "line ends must be CRLF");
    }
    let mut hf = header.split(',');
    let version = hf.next().unwrap_or_default();
    let digits = version.strip_prefix("JAHISTC").unwrap_or_default();
    if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err(1, "header must start with JAHISTC and a two-digit version");
    }
    let output_kind = hf.next().unwrap_or_default().to_string();
    let mut nb = Notebook {
        version: version.to_string(),
        output_kind,
        dispensings: Vec::new(),
        skipped_records: 0,
    };
    let mut medicines = 0;
    for (n, line) in lines {
        if line.contains(['\r', '\n']) {
            return err(n, "line ends must be CRLF");
        }
        if line.chars().count() > MAX_LINE_CHARS {
            return err(n, format!("line longer than {MAX_LINE_CHARS} characters"));
        }
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("").trim();
        read_record(&mut nb, &mut medicines, n, &field)?;
    }
    if medicines == 0 {
        return err(0, "no medicine (201) record");
    }
    Ok(nb)
}

/// The dispensing group a record belongs to: the last `5` record's.
fn group<'a>(
    nb: &'a mut Notebook,
    n: usize,
    rec: &'static str,
) -> Result<&'a mut Dispensing, JahisError> {
    match nb.dispensings.last_mut() {
        Some(d) => Ok(d),
        None => Err(JahisError {
            line: n,
            record: Some(rec),
            field: None,
            problem: "record before any 5 (調剤等年月日) record".into(),
        }),
    }
}

/// Reads one record (a line split into fields, `field(0)` its number).
fn read_record<'l>(
    nb: &mut Notebook,
    medicines: &mut usize,
    n: usize,
    field: &dyn Fn(usize) -> &'l str,
) -> Result<(), JahisError> {
    // The record number as the platform's own text (never the file's).
    let Some(rec) = ["1", "5", "11", "51", "201", "281", "291", "301"]
        .into_iter()
        .chain(KNOWN_UNREAD.iter().copied())
        .find(|r| *r == field(0))
    else {
        let problem = if !field(0).is_empty() && field(0).bytes().all(|b| b.is_ascii_digit()) {
            "record number not defined by the JAHIS format: refused, so that nothing is lost silently"
        } else {
            "record number (field 1) is not a number"
        };
        return err(n, problem);
    };
    let rp = |i: usize| -> Result<u32, JahisError> {
        match field(i).parse::<u32>() {
            Ok(r) if (1..=999).contains(&r) => Ok(r),
            _ => field_err(n, rec, i + 1, "RP number must be 1..=999"),
        }
    };
    match rec {
        "1" => {} // identity data: deliberately not read (P4.8(3))
        "5" => {
            let Some(date) = dispensing_date(field(1)) else {
                return field_err(
                    n,
                    rec,
                    2,
                    format!(
                        "dispensing date must be YYYYMMDD (8 digits, a real date, year {}..={})",
                        DISPENSING_YEARS.start(),
                        DISPENSING_YEARS.end()
                    ),
                );
            };
            nb.dispensings.push(Dispensing::on(date));
        }
        "11" | "51" => {
            let inst = Institution {
                name: field(1).to_string(),
                prefecture: field(2).to_string(),
                fee_table: field(3).to_string(),
                code: field(4).to_string(),
            };
            let g = group(nb, n, rec)?;
            if rec == "11" {
                g.pharmacy = Some(inst);
            } else {
                g.prescriber = Some(inst);
            }
        }
        "201" => {
            let rp = rp(1)?;
            if field(2).is_empty() {
                return field_err(n, rec, 3, "medicine name is empty");
            }
            *medicines += 1;
            if *medicines > MAX_MEDICINES {
                return err(
                    n,
                    format!("more than {MAX_MEDICINES} medicines in one file"),
                );
            }
            let m = Medicine {
                line: n,
                rp,
                name: field(2).to_string(),
                dose: field(3).to_string(),
                unit: field(4).to_string(),
                code_kind: field(5).to_string(),
                code: field(6).to_string(),
            };
            group(nb, n, rec)?.medicines.push(m);
        }
        "281" | "291" => {
            let rp = rp(1)?;
            let text = field(2).to_string();
            group(nb, n, rec)?.notes.entry(rp).or_default().push(text);
        }
        "301" => {
            let rp = rp(1)?;
            let u = Usage {
                text: field(2).to_string(),
                quantity: field(3).to_string(),
                quantity_unit: field(4).to_string(),
                code_kind: field(6).to_string(),
                code: field(7).to_string(),
            };
            group(nb, n, rec)?.usages.insert(rp, u);
        }
        _ => nb.skipped_records += 1, // KNOWN_UNREAD
    }
    Ok(())
}

/// FHIR code system of a JAHIS medicine code kind (201 field 6). Kinds without a
/// code (1) or unknown kinds keep the name only.
fn medicine_system(kind: &str) -> Option<&'static str> {
    match kind {
        "2" => Some("urn:oid:1.2.392.100495.20.2.74"), // レセプト電算処理システム用コード
        "3" => Some("urn:oid:1.2.392.100495.20.1.73"), // 厚生労働省薬価基準収載医薬品コード
        "4" => Some("http://capstandard.jp/iyaku.info/CodeSystem/YJ-code"),
        "6" => Some("http://medis.or.jp/CodeSystem/master-HOT9"),
        _ => None,
    }
}

/// One converted medicine.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub effective_at: Timestamp,
    pub original_identifier: String,
    pub resource: Value,
}

/// MedicationStatements for `person`, one per medicine. Empty fields of the file
/// are left out rather than stored as empty strings (FHIR refuses those).
pub fn to_fhir(nb: &Notebook, person: &PersonId) -> Vec<Converted> {
    let mut out = Vec::new();
    for d in &nb.dispensings {
        // The date was checked once while parsing and kept as a `Date`.
        let effective_at = crate::wire::jst_midnight(d.date);
        let date = d.iso_date();
        let pharmacy_no = d
            .pharmacy
            .as_ref()
            .map(|p| p.number())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "unknown".into());
        for (i, m) in d.medicines.iter().enumerate() {
            let original_identifier = format!(
                "jahis:{pharmacy_no}:{}:rp{}:{}",
                date.replace('-', ""),
                m.rp,
                i + 1
            );
            out.push(Converted {
                effective_at,
                resource: statement(nb, d, m, person, &date, &original_identifier),
                original_identifier,
            });
        }
    }
    out
}

/// A plain decimal (digits and at most one point): `f64::from_str` would also
/// take `NaN` or `inf`, which JSON cannot hold.
fn decimal(s: &str) -> Option<f64> {
    let plain = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
        && !s.starts_with('.')
        && !s.ends_with('.');
    plain.then(|| s.parse().ok()).flatten()
}

/// One medicine of a dispensing as a MedicationStatement.
fn statement(
    nb: &Notebook,
    d: &Dispensing,
    m: &Medicine,
    person: &PersonId,
    date: &str,
    original_identifier: &str,
) -> Value {
    let mut med = json!({"text": m.name});
    if let (Some(system), false) = (medicine_system(&m.code_kind), m.code.is_empty()) {
        med["coding"] = json!([{"system": system, "code": m.code, "display": m.name}]);
    }
    let mut dosage = json!({"sequence": m.rp});
    if let Some(v) = decimal(&m.dose) {
        let mut q = json!({"value": v});
        if !m.unit.is_empty() {
            q["unit"] = json!(m.unit);
        }
        dosage["doseAndRate"] = json!([{"doseQuantity": q}]);
    }
    if let Some(u) = d.usages.get(&m.rp) {
        let days = if u.quantity.is_empty() {
            String::new()
        } else {
            format!(" ({}{})", u.quantity, u.quantity_unit)
        };
        let text = format!("{}{days}", u.text);
        if !text.trim().is_empty() {
            dosage["text"] = json!(text.trim());
        }
    }
    let mut r = json!({
        "resourceType": "MedicationStatement",
        "identifier": [{"system": "urn:mebyo:jahis-medication", "value": original_identifier}],
        "status": "unknown",
        "medicationCodeableConcept": med,
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": date,
        "dosage": [dosage],
    });
    if let Some(p) = &d.pharmacy {
        let mut source = json!({});
        if !p.name.is_empty() {
            source["display"] = json!(p.name);
        }
        if !p.number().is_empty() {
            source["identifier"] =
                json!({"system": "urn:mebyo:jp-medical-institution-number", "value": p.number()});
        }
        if source.as_object().is_some_and(|o| !o.is_empty()) {
            r["informationSource"] = source;
        }
    }
    if let Some(notes) = d.notes.get(&m.rp) {
        let notes: Vec<Value> = notes
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| json!({"text": t}))
            .collect();
        if !notes.is_empty() {
            r["note"] = notes.into();
        }
    }
    r["extension"] = json!([{"url": "urn:mebyo:jahis-version", "valueString": nb.version}]);
    r
}

/// Encodes text as a JAHIS file would be: Shift_JIS, CRLF. For tests and samples.
pub fn encode_sjis(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable, "text not representable in Shift_JIS");
    bytes.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mebyo_domain::Category;

    pub(crate) const SAMPLE: &[&str] = &[
        "JAHISTC07,1",
        "1,神奈川 花子,2,19800401,231-8588,横浜市中区日本大通1,045-210-1111,,,,カナガワ ハナコ",
        "5,20261120,1",
        "11,みなと薬局,14,4,1234567,231-0001,横浜市中区新港1-1,045-000-0000,1",
        "51,よこはま内科クリニック,14,1,7654321,1",
        "55,医師 太郎,内科,1",
        "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1",
        "291,1,めまいがあれば連絡してください。,1",
        "301,1,1日1回 朝食後,28,日分,1,1,,1",
        "201,2,メトホルミン塩酸塩錠２５０ｍｇ,2,錠,1,,1",
        "301,2,1日2回 朝夕食後,28,日分,1,1,,1",
    ];

    #[test]
    fn parses_sjis_crlf_and_drops_identity() {
        let bytes = encode_sjis(SAMPLE);
        let nb = parse(&bytes).unwrap();
        assert_eq!(nb.version, "JAHISTC07");
        assert_eq!(nb.dispensings.len(), 1);
        let d = &nb.dispensings[0];
        assert_eq!(d.iso_date(), "2026-11-20");
        assert_eq!(d.pharmacy.as_ref().unwrap().number(), "1441234567");
        assert_eq!(d.medicines.len(), 2);
        assert_eq!(nb.skipped_records, 1, "the doctor record");
        let person = PersonId::new("p1").unwrap();
        let fhir = to_fhir(&nb, &person);
        assert_eq!(fhir.len(), 2);
        let text =
            serde_json::to_string(&fhir.iter().map(|c| &c.resource).collect::<Vec<_>>()).unwrap();
        assert!(
            !text.contains("花子"),
            "no patient name in health records (P4.8(3))"
        );
        assert!(!text.contains("19800401"));
        assert_eq!(
            fhir[0].original_identifier,
            "jahis:1441234567:20261120:rp1:1"
        );
        assert_eq!(
            fhir[0].resource["medicationCodeableConcept"]["coding"][0]["code"],
            "2171022F1093"
        );
        assert_eq!(
            fhir[0].resource["dosage"][0]["text"],
            "1日1回 朝食後 (28日分)"
        );
        for c in &fhir {
            mebyo_domain::fhir::validate(Category::MedicationNotebook, &person, &c.resource)
                .unwrap();
        }
    }

    #[test]
    fn the_shipped_sample_file_converts() {
        let bytes = include_bytes!("../provider-client/samples/okusuri-techo.csv");
        let nb = parse(bytes).unwrap();
        let person = PersonId::new("p1").unwrap();
        assert_eq!(to_fhir(&nb, &person).len(), 2);
    }

    #[test]
    fn refuses_what_is_not_jahis() {
        let utf8 = SAMPLE
            .iter()
            .map(|l| format!("{l}\r\n"))
            .collect::<String>();
        // UTF-8 bytes of Japanese text are not valid Shift_JIS.
        assert_eq!(
            parse(utf8.as_bytes()).unwrap_err().problem,
            "not valid Shift_JIS"
        );
        let lf = encode_sjis(&[&SAMPLE.join("\n")]);
        assert_eq!(parse(&lf).unwrap_err().problem, "line ends must be CRLF");
        let no_header = encode_sjis(&SAMPLE[1..]);
        assert_eq!(parse(&no_header).unwrap_err().line, 1);
        let orphan = encode_sjis(&["JAHISTC07,1", "201,1,薬,1,錠,1,,1"]);
        assert!(parse(&orphan).unwrap_err().problem.contains("before any 5"));
        let bad_date = encode_sjis(&["JAHISTC07,1", "5,2026-11-20,1"]);
        assert_eq!(parse(&bad_date).unwrap_err().line, 2);
        let empty = encode_sjis(&["JAHISTC07,1", "5,20261120,1"]);
        assert!(parse(&empty).is_err());
        assert!(parse(&vec![b'a'; MAX_FILE_BYTES + 1]).is_err());
    }

    /// A patient's name, put where a careless error message would repeat it.
    const NAME: &str = "神奈川 檸檬子";

    /// Given a file, when it is parsed, then it is read (`ok <medicines>`) or
    /// refused with exactly `expect`, and the error holds none of the file's
    /// text (P4.8(3)).
    fn check(bytes: &[u8], expect: &str) {
        let got = match parse(bytes) {
            Ok(nb) => format!(
                "ok {}",
                nb.dispensings
                    .iter()
                    .map(|d| d.medicines.len())
                    .sum::<usize>()
            ),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect);
        for word in NAME.split(' ').chain(["-0101", "250", "２０２６"]) {
            assert!(
                !got.contains(word) || expect.starts_with("ok"),
                "{got} echoes {word}"
            );
        }
    }

    /// A file: the header, a patient record with `NAME`, then `body`.
    fn file(body: &[&str]) -> Vec<u8> {
        let patient = format!("1,{NAME},2,19800401");
        let mut lines = vec!["JAHISTC07,1", patient.as_str()];
        lines.extend_from_slice(body);
        encode_sjis(&lines)
    }

    const MEDICINE: &str = "201,1,アムロジピン錠５ｍｇ,1,錠,4,2171022F1093,1";
    const DATE: &str = "JAHIS line 3, record 5, field 2: dispensing date must be YYYYMMDD (8 digits, a real date, year 1900..=2100)";

    /// Issue 22 §1: `-01010115` passed the date check (a sign before a year)
    /// and later panicked the process. Dates are 8 ASCII digits, a year in
    /// `DISPENSING_YEARS`, a real day.
    #[test]
    fn dispensing_dates_are_eight_digits_of_a_real_day() {
        check(&file(&["5,20261120,1", MEDICINE]), "ok 1");
        check(&file(&["5,20240229,1", MEDICINE]), "ok 1");
        for bad in [
            "-01010115",
            "+0101011",
            "20261320",
            "20260230",
            "20230229",
            "18991231",
            "21010101",
            "202611201",
            "2026112",
            "２０２６１１２０",
            "2026-11-20",
            "",
        ] {
            check(&file(&[&format!("5,{bad},1"), MEDICINE]), DATE);
        }
    }

    /// Issue 22 §8: an unknown record number was skipped silently, and a file
    /// cut short was stored with its last text cut. Both are refused, naming
    /// the line; records the format defines but the converter does not read
    /// are still skipped.
    #[test]
    fn unknown_records_and_truncated_files_are_refused_by_line() {
        check(
            &file(&["5,20261120,1", "55,医師 太郎,内科,1", MEDICINE]),
            "ok 1",
        );
        check(
            &file(&["5,20261120,1", "250,1,何か", MEDICINE]),
            "JAHIS line 4: record number not defined by the JAHIS format: refused, so that nothing is lost silently",
        );
        check(
            &file(&["5,20261120,1", &format!("{NAME},1"), MEDICINE]),
            "JAHIS line 4: record number (field 1) is not a number",
        );
        let mut cut = file(&[
            "5,20261120,1",
            MEDICINE,
            "301,1,1日1回 朝食後,28,日分,1,1,,1",
        ]);
        cut.truncate(cut.len() - 6);
        check(
            &cut,
            "JAHIS line 5: the last line does not end with CRLF: the file is truncated or not JAHIS",
        );
    }

    /// Errors name line, record and field, never the file's text (issue 22 §2).
    #[test]
    fn errors_name_line_record_and_field_only() {
        check(
            &file(&["5,20261120,1", &format!("201,{NAME},薬,1,錠")]),
            "JAHIS line 4, record 201, field 2: RP number must be 1..=999",
        );
        check(
            &file(&["5,20261120,1", "201,1,,1,錠"]),
            "JAHIS line 4, record 201, field 3: medicine name is empty",
        );
        check(
            &file(&[MEDICINE]),
            "JAHIS line 3, record 201: record before any 5 (調剤等年月日) record",
        );
        check(
            &file(&["5,20261120,1", &format!("291,{NAME},注意")]),
            "JAHIS line 4, record 291, field 2: RP number must be 1..=999",
        );
        check(
            &file(&["5,20261120,1"]),
            "JAHIS file: no medicine (201) record",
        );
    }

    /// What the parser accepts converts without a panic, and a dose that is not
    /// a plain decimal (`NaN`, `inf`) is left out rather than stored as null.
    #[test]
    fn conversion_keeps_the_parsed_date_and_plain_doses() {
        let nb = parse(&file(&[
            "5,19000101,1",
            "201,1,薬,NaN,錠,1,,1",
            "201,2,薬,inf,錠,1,,1",
            "201,3,薬,1.5,,1,,1",
        ]))
        .unwrap();
        let person = PersonId::new("p1").unwrap();
        let out = to_fhir(&nb, &person);
        assert_eq!(out[0].resource["effectiveDateTime"], "1900-01-01");
        assert!(out[0].resource["dosage"][0].get("doseAndRate").is_none());
        assert!(out[1].resource["dosage"][0].get("doseAndRate").is_none());
        assert_eq!(
            out[2].resource["dosage"][0]["doseAndRate"][0]["doseQuantity"],
            json!({"value": 1.5})
        );
        for c in &out {
            mebyo_domain::fhir::validate(Category::MedicationNotebook, &person, &c.resource)
                .unwrap();
        }
    }
}
