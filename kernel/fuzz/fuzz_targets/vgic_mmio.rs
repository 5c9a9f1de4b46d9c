//! libFuzzer entry of the `vgic_mmio` target: see [`tandem_fuzz::vgic_mmio`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::vgic_mmio::run(data));
