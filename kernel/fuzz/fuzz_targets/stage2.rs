//! libFuzzer entry of the `stage2` target: see [`tandem_fuzz::stage2`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::stage2::run(data));
