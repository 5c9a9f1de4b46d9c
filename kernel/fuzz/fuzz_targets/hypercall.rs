//! libFuzzer entry of the `hypercall` target: see [`tandem_fuzz::hypercall`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::hypercall::run(data));
