//! The hypervisor heap: every byte of RAM Tandem does not reserve.
//!
//! Guest RAM is carved from it too (2 MiB-aligned allocations), so there is
//! one owner of free memory.

use buddy_system_allocator::LockedHeap;

use crate::platform::fdt::Region;

#[global_allocator]
static HEAP: LockedHeap<33> = LockedHeap::empty();

/// Hands the usable RAM ranges to the allocator.
///
/// # Safety
/// The ranges must be mapped read/write, unused by anything else, and not
/// overlap each other; call once, on the boot CPU, before any allocation.
pub unsafe fn init(usable: &[Region]) {
    let mut heap = HEAP.lock();
    for r in usable {
        // SAFETY: forwarded from the caller: the range is free, mapped RAM.
        unsafe { heap.add_to_heap(r.base as usize, r.end() as usize) };
    }
}

/// (bytes managed, bytes allocated).
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_total_bytes(), heap.stats_alloc_actual())
}
