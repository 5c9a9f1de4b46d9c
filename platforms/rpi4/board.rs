//! Raspberry Pi 4 (BCM2711) — PLACEHOLDER: the rpi4 port is a later issue.
//!
//! The addresses below are the measured ones (QEMU raspi4b and the BCM2711
//! DT after `ranges` translation); the port itself (spin-table CPUs, GICv2
//! backend, firmware config) is not done yet, and xtask refuses to build it.

use crate::platform::desc::{BoardDesc, Reserved};
use crate::platform::fdt::Region;

/// The rpi4 board.
pub const BOARD: BoardDesc = BoardDesc {
    name: "rpi4",
    // The firmware loads kernel8.img at 0x80000.
    load_addr: 0x8_0000,
    // PL011 UART0 at bus address 0x7e20_1000.
    early_uart: 0xfe20_1000,
    // Peripherals and the GIC-400 in the "low peripheral" mode.
    mmio_windows: &[Region {
        base: 0xfc00_0000,
        size: 0x400_0000,
    }],
    reserved: &[Reserved {
        // Spin-table release addresses and the firmware's stub live in the first page.
        region: Region {
            base: 0,
            size: 0x1000,
        },
        why: "firmware stub and spin tables",
    }],
    emulator_tick_ns: None,
};
