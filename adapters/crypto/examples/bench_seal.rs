//! AES-256-SIV seal/open throughput on 256-byte payloads (P4.8(1) cost check).
//!
//! `cargo run -p mebyo-crypto --example bench_seal [seconds]` (default 2 s, capped
//! at 8 s so it never turns into a long benchmark on the shared machine).

use std::time::{Duration, Instant};

use mebyo_crypto::{DekKind, Kek, KeyStore, Pseudonym, envelope_ad, open, seal};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0_f64)
        .clamp(0.1, 8.0);
    let budget = Duration::from_secs_f64(secs / 2.0);

    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let kek = Kek::generate(&mut rng);
    let mut store = KeyStore::create(dir.path().join("keys.mks"), &kek, &mut rng)?;
    let person = Pseudonym::new("psn-bench")?;
    store.create_person_keys(&person, &mut rng)?;
    let dek = store.dek(&person, DekKind::Health)?;
    let payload = [0x5Au8; 256];

    let start = Instant::now();
    let mut n: u64 = 0;
    let mut last = Vec::new();
    let mut last_ad = Vec::new();
    while start.elapsed() < budget {
        // Fresh AD per message, as in the log (position increases).
        for _ in 0..1000 {
            last_ad = envelope_ad("person-psn-bench", n, "HealthObserved", n);
            last = seal(&dek, &last_ad, &payload)?;
            n += 1;
        }
    }
    let seal_secs = start.elapsed().as_secs_f64();
    assert_eq!(&open(&dek, &last_ad, &last)?[..], &payload[..]);

    let ad = envelope_ad("person-psn-bench", 0, "HealthObserved", 0);
    let sealed = seal(&dek, &ad, &payload)?;
    let start = Instant::now();
    let mut m: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            std::hint::black_box(open(&dek, &ad, std::hint::black_box(&sealed))?);
            m += 1;
        }
    }
    let open_secs = start.elapsed().as_secs_f64();

    let seal_rate = n as f64 / seal_secs;
    let open_rate = m as f64 / open_secs;
    println!(
        "AES-256-SIV seal, 256-byte messages: {:.0} messages/s ({:.1} MiB/s), {n} in {seal_secs:.2} s",
        seal_rate,
        seal_rate * 256.0 / (1024.0 * 1024.0)
    );
    println!(
        "AES-256-SIV open, 256-byte messages: {:.0} messages/s ({:.1} MiB/s), {m} in {open_secs:.2} s",
        open_rate,
        open_rate * 256.0 / (1024.0 * 1024.0)
    );
    Ok(())
}
