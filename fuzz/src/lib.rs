//! # mebyo-fuzz
//!
//! One function per fuzz target, each feeding arbitrary bytes to the platform's
//! public parsing and checking API as the server calls it, and asserting what
//! must hold whatever the input (no panic; a few round-trip and agreement
//! properties, named where they are checked). The same functions are driven
//! three ways (see `fuzz/README.md`):
//!
//! - coverage-guided by libFuzzer (`fuzz_targets/*.rs`, built by `scripts/fuzz`
//!   with `--features libfuzzer` and sancov instrumentation on stable Rust);
//! - every committed seed and corpus file replayed, plus deterministic random
//!   mutations of them, by `tests/replay.rs` in the ordinary test suite;
//! - seeds made from real valid inputs by [`seeds::write_all`]
//!   (`cargo run -p mebyo-fuzz --bin fuzz-seeds`).
//!
//! Targets stay thin: they call the public API, never copies of its logic.
#![forbid(unsafe_code)]

pub mod seeds;
mod targets;

pub use targets::*;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name: the name of its `fuzz_targets/` binary and of its
/// `seeds/` and `corpus/` folders.
pub const TARGETS: &[(&str, Target)] = &[
    ("jahis", jahis),
    ("fhir", fhir),
    ("bus_request", bus_request),
    ("store_frame", store_frame),
    ("store_log", store_log),
    ("tlog_note", tlog_note),
    ("tlog_bundle", tlog_bundle),
    ("backup_manifest", backup_manifest),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
