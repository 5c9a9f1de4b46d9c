//! libFuzzer entry of the `package` target: see [`tandem_fuzz::package`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::package::run(data));
