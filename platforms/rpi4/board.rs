//! Raspberry Pi 4 (BCM2711): what its device tree does not say.
//!
//! The rest (RAM, the GIC-400 frames, the PL011 and its interrupt, the
//! spin-table CPUs) comes from the device tree the firmware (or QEMU raspi4b
//! with `-dtb`) passes, through `/soc` `ranges`: platforms/rpi4/README.md.

use crate::platform::desc::{BoardDesc, Reserved};
use crate::platform::fdt::Region;

/// The rpi4 board.
pub const BOARD: BoardDesc = BoardDesc {
    name: "rpi4",
    // The firmware loads kernel8.img at 0x80000.
    load_addr: 0x8_0000,
    // PL011 UART0 at bus address 0x7e20_1000.
    early_uart: 0xfe20_1000,
    // Peripherals (0xfe00_0000..) and the GIC-400 (0xff84_0000..) in the "low
    // peripheral" mode the firmware sets up.
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
    // Hardware. QEMU raspi4b asks for a tick with `tandem.emulator_tick_us`.
    emulator_tick_ns: None,
};
