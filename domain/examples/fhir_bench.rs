//! Cost of validating one FHIR blood-pressure observation (the bus and the
//! portal validate every submitted record). Not a test: prints µs per call.
//!
//! cargo run --release -p mebyo-domain --example fhir_bench

use mebyo_domain::PersonId;
use mebyo_domain::fhir::{LOINC, UCUM, validate};
use mebyo_domain::records::Category;
fn main() {
    let p = PersonId::new("p1").unwrap();
    let bp = serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-01-01T09:00:00+09:00",
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
             "valueQuantity": {"value": 128, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
             "valueQuantity": {"value": 82, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}
        ]
    });
    let n = 300_000;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(validate(Category::Vitals, &p, std::hint::black_box(&bp)).is_ok());
        }
        println!(
            "{:.2} µs per blood-pressure validation",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
