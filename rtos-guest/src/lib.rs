//! rtos-guest: a small fixed-priority real-time OS for AArch64 EL1.
//!
//! It plays a handset's modem OS beside Linux on Tandem, and runs unchanged natively on
//! `qemu-system-aarch64 -M virt` (the latency baseline).
//!
//! Crate map (everything but `arch` is plain Rust, tested on the host):
//! - [`time`]: counter ticks and ns conversion.
//! - [`sched`]: the scheduler core (tasks, ready choice, timer queue, periodic release) and
//!   [`sched::sync`] (semaphores, mutexes with priority inheritance, message queues).
//! - [`stats`]: latency histograms and the `rtos-stats:` line.
//! - [`dsp`]: the modem workload's computation (CRC-32, fixed-point FFT).
//! - [`at`]: the AT-command line editor and interpreter.
//! - [`board`]: the memory map and interrupt numbers (QEMU virt = a Tandem VM's IPA map).
//! - [`dt`]: reads the device tree the guest is booted with: its virtio back-ends and its GIC.
//! - [`gic`], [`mmu`], [`pl011`]: register maps and bit formats of the hardware it drives.
//! - [`fmt`]: a fixed-size text buffer for building console lines without allocation.
//! - [`virtio`]: virtio devices served to another VM (shared pool, split virtqueues, the
//!   virtio-mmio registers, virtio-net and the virtio-console AT port).
//! - [`inet`]: ARP, IPv4, ICMP echo and UDP echo for the modem's own address.
//! - `arch` (bare-metal target only): boot, exception vectors, context switch, GIC, timer,
//!   console, PSCI, and the task-facing kernel API.
//!
//! The `rtos` binary (`main.rs`) adds the modem workload (`modem.rs`) and the virtio back-ends
//! its device tree names (`backends.rs`), or, with the `selftest` feature, the in-guest tests
//! (`selftest.rs`).
#![cfg_attr(not(test), no_std)]

pub mod at;
pub mod board;
pub mod dsp;
pub mod dt;
pub mod fmt;
pub mod gic;
pub mod inet;
pub mod mmu;
pub mod pl011;
pub mod sched;
pub mod stats;
pub mod time;
pub mod virtio;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod arch;
