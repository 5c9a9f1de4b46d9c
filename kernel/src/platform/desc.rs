//! Board descriptions: what the device tree cannot say.
#![forbid(unsafe_code)]

use crate::platform::fdt::Region;

/// A region Tandem must never hand out, with the reason.
#[derive(Clone, Copy, Debug)]
pub struct Reserved {
    /// The range.
    pub region: Region,
    /// Why it is reserved (shown at boot).
    pub why: &'static str,
}

/// A board, as data.
#[derive(Clone, Copy, Debug)]
pub struct BoardDesc {
    /// Platform name (`qemu-virt`, `rpi4`).
    pub name: &'static str,
    /// Where the boot loader places the image (must match link.ld).
    pub load_addr: u64,
    /// PL011 used before the device tree is read.
    pub early_uart: u64,
    /// Physical windows mapped as device memory at EL2.
    pub mmio_windows: &'static [Region],
    /// RAM the device tree does not reserve but Tandem must not use.
    pub reserved: &'static [Reserved],
    /// Emulators only: a periodic tick with this period (ns) on each CPU while
    /// it runs a vCPU, on a timer of its own (the EL1 physical timer, which
    /// guests cannot reach), so that an emulator sharing one virtual timeline
    /// between CPUs (QEMU `-icount`, round robin up to the next timer deadline
    /// of any CPU) hands each CPU short turns. Only armed when VMs run on more
    /// than one CPU. `None` on hardware.
    pub emulator_tick_ns: Option<u64>,
}

/// A problem in a board description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// The load address is not 2 MiB-aligned plus the arm64 text offset.
    LoadAddress(u64),
    /// Two MMIO windows overlap.
    OverlappingWindows(usize, usize),
    /// A window or reservation is not 4 KiB aligned.
    Unaligned(u64),
    /// The early UART is outside every MMIO window.
    UartUnmapped(u64),
}

impl BoardDesc {
    /// Checks the description's internal consistency.
    pub fn validate(&self) -> Result<(), BoardError> {
        if self.load_addr % 0x20_0000 != 0x8_0000 {
            return Err(BoardError::LoadAddress(self.load_addr));
        }
        let aligned = |r: &Region| r.base.is_multiple_of(4096) && r.size.is_multiple_of(4096);
        for (i, a) in self.mmio_windows.iter().enumerate() {
            if !aligned(a) {
                return Err(BoardError::Unaligned(a.base));
            }
            for (j, b) in self.mmio_windows.iter().enumerate().skip(i + 1) {
                if a.base < b.end() && b.base < a.end() {
                    return Err(BoardError::OverlappingWindows(i, j));
                }
            }
        }
        if let Some(r) = self.reserved.iter().find(|r| !aligned(&r.region)) {
            return Err(BoardError::Unaligned(r.region.base));
        }
        if !self
            .mmio_windows
            .iter()
            .any(|w| self.early_uart >= w.base && self.early_uart < w.end())
        {
            return Err(BoardError::UartUnmapped(self.early_uart));
        }
        Ok(())
    }
}
