//! libFuzzer entry of the `vm_config` target: see [`tandem_fuzz::vm_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::vm_config::run(data));
