//! Bare-metal EL1 test guests that prove Tandem's guest path from the inside.
//!
//! Two binaries share this runtime: `probe` (PSCI, vGIC, virtual timer, stage 2, the
//! null-hypercall round trip and the exit-path figures) and `hostile` (every act a hostile
//! guest may try, each with its defined outcome, ending in one Tandem cannot emulate). The
//! system tests in `tests/tests/guest_*.rs` boot them under Tandem and read their console.
//!
//! # The guest environment
//!
//! A "bare" Tandem VM enters the image at IPA 0x4008_0000 at EL1h with the MMU off, DAIF
//! masked and x0 = the DTB IPA; RAM is 0x4000_0000..0x4100_0000. The guests keep the MMU off
//! (every data access is Device-nGnRnE, hence the target's `+strict-align`), talk to Tandem
//! with `hvc #0` through [`pv_abi`], and see an emulated GICv3 ([`gic`]) and the virtual timer
//! ([`timer`]).
//!
//! # Crate map
//!
//! | Module      | Contents                                                                  |
//! |-------------|---------------------------------------------------------------------------|
//! | [`esr`]     | [`esr::Syndrome`]: pure ESR_EL1 decoding (host-tested)                   |
//! | [`fdt`]     | a root property of the device tree, e.g. the VM's `model` (host-tested)  |
//! | [`units`]   | counter-tick arithmetic (host-tested)                                   |
//! | `rt`        | entry, stacks, vectors, per-vCPU fault and IRQ records, `expect_fault`, CPU_ON of a secondary |
//! | `console`   | `println!` over `CONSOLE_WRITE`, one whole line per call                |
//! | `harness`   | `[T] suite::name PASS|FAIL (detail)` lines and `N passed, N failed`     |
//! | `gic`       | GICv3 distributor/redistributor offsets and ICC_* system registers      |
//! | `timer`     | CNTVCT and the CNTV_* virtual timer                                     |
//! | `smccc`     | raw `hvc #0` / `smc #0` with arbitrary registers (malformed calls too)  |
//! | `bench`     | timed `asm!` loops and the dithered interrupt samples behind `exit-cost:` lines |
//!
//! Everything but [`esr`], [`fdt`] and [`units`] exists only on `aarch64-unknown-none`; on
//! the host the crate is just those three modules and their tests.
#![cfg_attr(not(test), no_std)]

pub mod esr;
pub mod fdt;
pub mod units;

#[cfg(target_os = "none")]
pub mod bench;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod gic;
#[cfg(target_os = "none")]
pub mod harness;
#[cfg(target_os = "none")]
pub mod rt;
#[cfg(target_os = "none")]
pub mod smccc;
#[cfg(target_os = "none")]
pub mod timer;

/// Guest RAM as Tandem gives it to a "bare" VM: `[RAM_BASE, RAM_END)`.
pub const RAM_BASE: u64 = 0x4000_0000;
/// End of guest RAM (exclusive): 16 MiB.
pub const RAM_END: u64 = 0x4100_0000;
/// The QEMU virt PL011 UART's address, which Tandem keeps for itself.
pub const PHYS_UART: u64 = 0x0900_0000;
/// The QEMU virt PL031 RTC's address: passed through to the `probe` (or `probe-shared`) VM only.
pub const PHYS_RTC: u64 = 0x0901_0000;
