//! libFuzzer entry of the `dtb` target: see [`tandem_fuzz::dtb`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::dtb::run(data));
