//! libFuzzer entry of the `ring` target: see [`tandem_fuzz::ring`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::ring::run(data));
