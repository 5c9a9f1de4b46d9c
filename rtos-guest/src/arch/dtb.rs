//! The device tree the RTOS was booted with (`x0` at entry): bounds-checked, then parsed by
//! [`crate::dt`].

use crate::board::{RAM_BASE, RAM_MAP_END};
use crate::dt::{self, Backends, HEADER_LEN};

/// The largest device tree read.
const DTB_MAX: usize = 1 << 20;

/// The virtio back-ends the device tree at `dtb` describes; none if `dtb` does not point at a
/// device tree in RAM.
pub fn virtio_backends(dtb: u64) -> Backends {
    let in_ram = |len: usize| {
        dtb >= RAM_BASE.0
            && dtb.is_multiple_of(8)
            && dtb
                .checked_add(len as u64)
                .is_some_and(|end| end <= RAM_MAP_END.0)
    };
    if !in_ram(HEADER_LEN) {
        return Backends::default();
    }
    // SAFETY: the header lies in the RAM block, identity-mapped normal memory; the boot
    // loader (QEMU or Tandem) put the tree there and nothing writes it.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, HEADER_LEN) };
    let Some(size) = dt::total_size(header).filter(|&s| s <= DTB_MAX && in_ram(s)) else {
        return Backends::default();
    };
    // SAFETY: as for the header; `size` bytes from `dtb` were checked to be in the RAM block.
    let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, size) };
    dt::virtio_backends(blob).unwrap_or_default()
}
