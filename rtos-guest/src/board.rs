//! The machine the guest sees, as data: QEMU `virt`'s memory map, which Tandem mirrors.
//!
//! One binary runs natively on `qemu-system-aarch64 -M virt` and as a Tandem guest because the
//! VM's intermediate physical address (IPA) map is the same as the machine's physical map:
//!
//! ```text
//! 0x0000_0000 ┬──────────────────────────┐
//!             │ flash, GIC, UART, …      │ device (one 1 GiB block, Device-nGnRnE, XN)
//! 0x0800_0000 │   GICv3 distributor      │ 64 KiB
//! 0x080A_0000 │   GICv3 redistributors   │ 128 KiB per CPU (RD frame + SGI frame)
//! 0x0900_0000 │   PL011 UART (native only; Tandem guests use the pv console)
//! 0x4000_0000 ├──────────────────────────┤
//!             │ RAM (≥ 16 MiB under Tandem) │ normal write-back (one 1 GiB block)
//! 0x4008_0000 │   the image (load address) │
//! 0x8000_0000 ├──────────────────────────┤ unmapped
//! 0xC000_0000 ├──────────────────────────┤
//!             │ channel window: shared pools │ normal write-back, execute-never (one 1 GiB block)
//! 0x1_0000_0000 └────────────────────────┘ unmapped above
//! ```
//!
//! Tandem maps each inter-VM channel's shared pool somewhere in the channel window, at the same
//! IPA in both VMs; the device tree says where (`tandem,virtio-backend` nodes).
//!
//! Addresses are [`PhysAddr`] (the guest's physical = Tandem's IPA); the MMU maps them 1:1.
#![forbid(unsafe_code)]

/// A guest physical address (an IPA under Tandem), identity-mapped by the guest's MMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The same address as a pointer-sized integer (valid because the map is the identity).
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }

    /// `self + off`.
    pub const fn offset(self, off: u64) -> PhysAddr {
        PhysAddr(self.0 + off)
    }
}

/// GICv3 distributor (GICD).
pub const GICD_BASE: PhysAddr = PhysAddr(0x0800_0000);
/// First GICv3 redistributor (GICR) frame pair.
pub const GICR_BASE: PhysAddr = PhysAddr(0x080A_0000);
/// Distance between consecutive CPUs' redistributors (RD_base + SGI_base, 64 KiB each).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Most redistributor frames searched for this CPU's.
pub const GICR_MAX_FRAMES: u64 = 8;
/// The PL011 UART (used only when not running on Tandem).
pub const PL011_BASE: PhysAddr = PhysAddr(0x0900_0000);
/// Start of RAM.
pub const RAM_BASE: PhysAddr = PhysAddr(0x4000_0000);
/// The RAM size the guest may assume (Tandem guarantees at least this much).
pub const RAM_MIN_SIZE: u64 = 16 << 20;
/// Where the image is loaded and entered (RAM base + arm64 Image `text_offset`).
pub const LOAD_ADDR: PhysAddr = PhysAddr(0x4008_0000);
/// The 1 GiB identity-mapped as device memory: `[0, DEVICE_END)`.
pub const DEVICE_END: PhysAddr = PhysAddr(0x4000_0000);
/// The 1 GiB identity-mapped as normal memory: `[RAM_BASE, RAM_MAP_END)`.
pub const RAM_MAP_END: PhysAddr = PhysAddr(0x8000_0000);

/// The 1 GiB identity-mapped as normal, never-executable memory for channel pools:
/// `[CHANNEL_WINDOW_BASE, CHANNEL_WINDOW_END)`.
pub const CHANNEL_WINDOW_BASE: PhysAddr = PhysAddr(0xC000_0000);
/// End of the channel window.
pub const CHANNEL_WINDOW_END: PhysAddr = PhysAddr(0x1_0000_0000);

/// The EL1 virtual timer's PPI.
pub const TIMER_VIRT_INTID: u32 = 27;
/// The PL011's SPI on QEMU virt.
pub const UART_INTID: u32 = 33;
/// SGI CPU 0 sends CPU 1 ("ping").
pub const SGI_PING: u32 = 1;
/// SGI CPU 1 answers with ("pong").
pub const SGI_PONG: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every device the guest touches lies in the device-mapped gigabyte.
    #[test]
    fn devices_are_in_the_device_block() {
        let gicr_end = GICR_BASE.offset(GICR_STRIDE * GICR_MAX_FRAMES);
        for a in [GICD_BASE, GICR_BASE, gicr_end, PL011_BASE] {
            assert!(a <= DEVICE_END, "{a:?}");
        }
    }

    /// The image is loaded inside the guaranteed RAM, in the normal-memory block.
    #[test]
    fn image_is_in_guaranteed_ram() {
        assert!(LOAD_ADDR >= RAM_BASE && LOAD_ADDR < RAM_BASE.offset(RAM_MIN_SIZE));
        assert!(RAM_BASE.offset(RAM_MIN_SIZE) <= RAM_MAP_END);
        assert_eq!(
            LOAD_ADDR.0 - RAM_BASE.0,
            0x8_0000,
            "arm64 Image text_offset"
        );
    }
}
