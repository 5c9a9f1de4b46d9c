//! Tandem: a paravirtualization microhypervisor for ARMv8-A at EL2.
//!
//! Crate map:
//! - [`aarch64`]: pure AArch64 formats (ESR, translation descriptors), host-tested.
//! - [`mm`]: translation-table building and physical memory bookkeeping.
//! - [`platform`]: board descriptions and device-tree facts.
//! - [`fault`]: fault reports for exceptions taken at EL2.
//! - `arch` (target only): everything that executes privileged instructions.
//!
//! Only `arch/aarch64`, `drivers` and `main.rs` touch hardware; the rest builds
//! and runs under `cargo test` on the host.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod aarch64;
pub mod arch;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod boot;
pub mod channel;
pub mod drivers;
pub mod fault;
pub mod hyp;
pub mod hypercall;
pub mod mm;
pub mod monitor;
pub mod platform;
pub mod sched;
pub mod sync;
pub mod vcpu;
pub mod vgic;
pub mod vm;
