//! Physically contiguous memory from the heap: translation tables and guest RAM.
//!
//! Tandem's EL2 map is the identity, so a heap address is the physical address.

use alloc::alloc::{Layout, alloc_zeroed};

use crate::mm::pagetable::TableMemory;

/// Allocates `size` zeroed bytes aligned to `align`; returns the physical address.
pub fn alloc_frames(size: usize, align: usize) -> Option<u64> {
    let layout = Layout::from_size_align(size, align).ok()?;
    // SAFETY: the layout has a non-zero size (callers never ask for 0 bytes).
    let p = unsafe { alloc_zeroed(layout) };
    (!p.is_null()).then_some(p as u64)
}

/// Translation tables allocated from the heap (stage 2 of every VM).
pub struct HeapTables;

impl TableMemory for HeapTables {
    fn alloc_table(&mut self) -> Option<u64> {
        alloc_frames(4096, 4096)
    }

    fn read(&self, table_pa: u64, idx: usize) -> u64 {
        let entry = (table_pa as *const u64).wrapping_add(idx);
        // SAFETY: table_pa came from alloc_table (a live, identity-mapped 4 KiB table), idx < 512.
        unsafe { core::ptr::read_volatile(entry) }
    }

    fn write(&mut self, table_pa: u64, idx: usize, desc: u64) {
        let entry = (table_pa as *mut u64).wrapping_add(idx);
        // SAFETY: as in `read`; stage-2 tables are only written while their VM is built.
        unsafe { core::ptr::write_volatile(entry, desc) }
    }
}

/// Copies `data` to physical address `pa` (identity mapped RAM Tandem owns).
///
/// # Safety
/// `[pa, pa + data.len())` must be RAM owned by Tandem (a VM's backing memory)
/// and not aliased by any live reference.
pub unsafe fn copy_to(pa: u64, data: &[u8]) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) };
}

/// Zeroes `len` bytes at physical address `pa`.
///
/// # Safety
/// As for [`copy_to`].
pub unsafe fn zero(pa: u64, len: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len as usize) };
}
