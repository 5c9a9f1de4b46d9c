//! The device tree the RTOS was booted with (`x0` at entry): bounds-checked, then parsed by
//! [`crate::dt`].

use crate::board::{RAM_BASE, RAM_MAP_END};
use crate::dt::{self, Backends, Gic, HEADER_LEN};

/// The largest device tree read.
const DTB_MAX: usize = 1 << 20;

/// The virtio back-ends the device tree at `dtb` describes; none if `dtb` does not point at a
/// device tree in RAM.
pub fn virtio_backends(dtb: u64) -> Backends {
    blob(dtb).map_or_else(Backends::default, |b| {
        dt::virtio_backends(b).unwrap_or_default()
    })
}

/// The console-input interrupt Tandem's node in the device tree at `dtb` names, if any.
pub fn console_intid(dtb: u64) -> Option<u32> {
    dt::tandem_nodes(blob(dtb)?).ok()?.console_intid
}

/// The interrupt controller the device tree at `dtb` describes, if it is a usable tree.
pub fn gic(dtb: u64) -> Option<Gic> {
    dt::find_gic(blob(dtb)?)
}

/// The device tree at `dtb`, if a whole one lies in RAM.
fn blob(dtb: u64) -> Option<&'static [u8]> {
    let in_ram = |len: usize| {
        dtb >= RAM_BASE.0
            && dtb.is_multiple_of(8)
            && dtb
                .checked_add(len as u64)
                .is_some_and(|end| end <= RAM_MAP_END.0)
    };
    if !in_ram(HEADER_LEN) {
        return None;
    }
    // SAFETY: the header lies in the RAM block, identity-mapped normal memory; the boot
    // loader (QEMU or Tandem) put the tree there and nothing writes it.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, HEADER_LEN) };
    let size = dt::total_size(header).filter(|&s| s <= DTB_MAX && in_ram(s))?;
    // SAFETY: as for the header; `size` bytes from `dtb` were checked to be in the RAM block.
    Some(unsafe { core::slice::from_raw_parts(dtb as *const u8, size) })
}
