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
//! Other records (doctor's name 55, pharmacist 15, notes...) are skipped and
//! counted. Each 201 becomes one MedicationStatement (category
//! `medication_notebook`), dated by its group's dispensing date, with provenance
//! Origin::MedicalInstitution and an original identifier naming the pharmacy, the
//! date and the position in the file (P5.1).

use std::collections::BTreeMap;

use mebyo_domain::{PersonId, Timestamp};
use serde_json::{Value, json};

/// Largest file accepted (a notebook export of many years is far smaller).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Most medicines (201 records) accepted from one file.
pub const MAX_MEDICINES: usize = 200;
pub const MAX_LINE_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JAHIS line {line}: {problem}")]
pub struct JahisError {
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    pub problem: String,
}

fn err<T>(line: usize, problem: impl Into<String>) -> Result<T, JahisError> {
    Err(JahisError {
        line,
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

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dispensing {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub pharmacy: Option<Institution>,
    pub prescriber: Option<Institution>,
    pub medicines: Vec<Medicine>,
    pub usages: BTreeMap<u32, Usage>,
    pub notes: BTreeMap<u32, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notebook {
    /// e.g. `JAHISTC07`.
    pub version: String,
    pub output_kind: String,
    pub dispensings: Vec<Dispensing>,
    pub skipped_records: usize,
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
    let text = text.strip_suffix("\r\n").unwrap_or(&text);
    let mut lines = text.split("\r\n").enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or(JahisError {
        line: 1,
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
        fn group<'a>(
            nb: &'a mut Notebook,
            n: usize,
            rec: &str,
        ) -> Result<&'a mut Dispensing, JahisError> {
            match nb.dispensings.last_mut() {
                Some(d) => Ok(d),
                None => err(
                    n,
                    format!("record {rec} before any 5 (調剤等年月日) record"),
                ),
            }
        }
        let rp = |i: usize| -> Result<u32, JahisError> {
            field(i)
                .parse::<u32>()
                .ok()
                .filter(|r| (1..=999).contains(r))
                .ok_or(JahisError {
                    line: n,
                    problem: "RP number must be 1..=999".into(),
                })
        };
        match field(0) {
            "1" => {} // identity data: deliberately not read (P4.8(3))
            "5" => {
                let d = field(1);
                let date =
                    time::Date::parse(d, time::macros::format_description!("[year][month][day]"))
                        .map_err(|_| JahisError {
                        line: n,
                        problem: format!("dispensing date {d:?} is not YYYYMMDD"),
                    })?;
                nb.dispensings.push(Dispensing {
                    date: format!(
                        "{:04}-{:02}-{:02}",
                        date.year(),
                        date.month() as u8,
                        date.day()
                    ),
                    ..Default::default()
                });
            }
            "11" | "51" => {
                let inst = Institution {
                    name: field(1).to_string(),
                    prefecture: field(2).to_string(),
                    fee_table: field(3).to_string(),
                    code: field(4).to_string(),
                };
                let g = group(&mut nb, n, field(0))?;
                if field(0) == "11" {
                    g.pharmacy = Some(inst);
                } else {
                    g.prescriber = Some(inst);
                }
            }
            "201" => {
                let rp = rp(1)?;
                if field(2).is_empty() {
                    return err(n, "medicine name (201 field 3) is empty");
                }
                medicines += 1;
                if medicines > MAX_MEDICINES {
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
                group(&mut nb, n, field(0))?.medicines.push(m);
            }
            "281" | "291" => {
                let rp = rp(1)?;
                let text = field(2).to_string();
                group(&mut nb, n, field(0))?
                    .notes
                    .entry(rp)
                    .or_default()
                    .push(text);
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
                group(&mut nb, n, field(0))?.usages.insert(rp, u);
            }
            no if !no.is_empty() && no.bytes().all(|b| b.is_ascii_digit()) => {
                nb.skipped_records += 1
            }
            other => return err(n, format!("record number {other:?} is not a number")),
        }
    }
    if medicines == 0 {
        return err(0, "no medicine (201) record");
    }
    Ok(nb)
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

/// MedicationStatements for `person`, one per medicine.
pub fn to_fhir(nb: &Notebook, person: &PersonId) -> Vec<Converted> {
    let mut out = Vec::new();
    for d in &nb.dispensings {
        let effective_at =
            crate::wire::parse_time(&d.date).expect("dates were checked while parsing");
        let pharmacy_no = d
            .pharmacy
            .as_ref()
            .map(|p| p.number())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "unknown".into());
        for (i, m) in d.medicines.iter().enumerate() {
            let original_identifier = format!(
                "jahis:{pharmacy_no}:{}:rp{}:{}",
                d.date.replace('-', ""),
                m.rp,
                i + 1
            );
            let mut med = json!({"text": m.name});
            if let (Some(system), false) = (medicine_system(&m.code_kind), m.code.is_empty()) {
                med["coding"] = json!([{"system": system, "code": m.code, "display": m.name}]);
            }
            let mut dosage = json!({"sequence": m.rp});
            if let Ok(v) = m.dose.parse::<f64>() {
                dosage["doseAndRate"] = json!([{"doseQuantity": {"value": v, "unit": m.unit}}]);
            }
            if let Some(u) = d.usages.get(&m.rp) {
                let days = if u.quantity.is_empty() {
                    String::new()
                } else {
                    format!(" ({}{})", u.quantity, u.quantity_unit)
                };
                dosage["text"] = json!(format!("{}{days}", u.text));
            }
            let mut r = json!({
                "resourceType": "MedicationStatement",
                "identifier": [{"system": "urn:mebyo:jahis-medication", "value": original_identifier}],
                "status": "unknown",
                "medicationCodeableConcept": med,
                "subject": {"reference": format!("Patient/{person}")},
                "effectiveDateTime": d.date,
                "dosage": [dosage],
            });
            if let Some(p) = &d.pharmacy {
                r["informationSource"] = json!({
                    "display": p.name,
                    "identifier": {"system": "urn:mebyo:jp-medical-institution-number", "value": p.number()},
                });
            }
            if let Some(notes) = d.notes.get(&m.rp) {
                r["note"] = notes.iter().map(|t| json!({"text": t})).collect();
            }
            r["extension"] = json!([{"url": "urn:mebyo:jahis-version", "valueString": nb.version}]);
            out.push(Converted {
                effective_at,
                original_identifier,
                resource: r,
            });
        }
    }
    out
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
        assert_eq!(d.date, "2026-11-20");
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
}
