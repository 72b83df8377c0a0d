//! libFuzzer entry point of `mebyo_fuzz::tlog_note` (built by `scripts/fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mebyo_fuzz::tlog_note(data));
