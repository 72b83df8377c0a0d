//! libFuzzer entry point of `mebyo_fuzz::store_log` (built by `scripts/fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mebyo_fuzz::store_log(data));
