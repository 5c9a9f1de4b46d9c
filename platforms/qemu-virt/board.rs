//! QEMU `-M virt` (virtualization=on): what its device tree does not say.

use crate::platform::desc::{BoardDesc, Reserved};
use crate::platform::fdt::Region;

/// The qemu-virt board.
pub const BOARD: BoardDesc = BoardDesc {
    name: "qemu-virt",
    // QEMU loads a raw arm64 Image at RAM base (0x4000_0000) + text_offset.
    load_addr: 0x4008_0000,
    // PL011 UART0; /chosen/stdout-path points here too.
    early_uart: 0x0900_0000,
    // Everything below RAM is devices (flash, GIC, UART, RTC, virtio-mmio, PCIe ECAM/MMIO).
    mmio_windows: &[Region {
        base: 0,
        size: 0x4000_0000,
    }],
    reserved: &[Reserved {
        // QEMU's boot stub (loads x0 with the DTB address and jumps to the image).
        region: Region {
            base: 0x4000_0000,
            size: 0x1000,
        },
        why: "QEMU boot stub",
    }],
    // Under `-icount` QEMU runs all CPUs on one virtual timeline, each for a
    // share of the time up to the next timer deadline: a 20 µs deadline keeps
    // a busy CPU from holding the others (the RTOS) for up to a period.
    // Costs each busy CPU one short exit per 20 µs (about 2 % of it).
    emulator_tick_ns: Some(20_000),
};
