//! Tandem's own address space: EL2 stage 1, identity mapped, W^X.
//!
//! Device windows from the board description are Device-nGnRE; RAM is Normal
//! write-back, never executable; the image's text is the only executable
//! memory and is read-only; rodata is read-only; stack guard pages are unmapped.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::ID_AA64MMFR0_EL1;
use aarch64_cpu::registers::{
    MAIR_EL2, ReadWriteable, Readable, SCTLR_EL2, TCR_EL2, TTBR0_EL2, Writeable,
};

use crate::aarch64::pte;
use crate::mm::el2map;
use crate::mm::pagetable::{ENTRIES, MapError, PageTable, TableMemory};
use crate::platform::desc::BoardDesc;
use crate::platform::fdt::MachineFacts;

/// Input address bits of the EL2 map (T0SZ = 25: three levels from level 1).
const VA_BITS: u32 = 39;
const POOL_TABLES: usize = 48;

#[repr(C, align(4096))]
struct Pool([[u64; ENTRIES]; POOL_TABLES]);

static mut POOL: Pool = Pool([[0; ENTRIES]; POOL_TABLES]);
static POOL_USED: AtomicUsize = AtomicUsize::new(0);
static ROOT: AtomicU64 = AtomicU64::new(0);

/// Translation tables carved from a static pool, accessed by physical address
/// (identity mapped, so the same before and after the MMU is on).
struct BootTables;

impl TableMemory for BootTables {
    fn alloc_table(&mut self) -> Option<u64> {
        let i = POOL_USED.fetch_add(1, Ordering::Relaxed);
        if i >= POOL_TABLES {
            return None;
        }
        // The pool is zeroed BSS; each table is handed out once.
        Some((&raw const POOL) as u64 + (i * 4096) as u64)
    }

    fn read(&self, table_pa: u64, idx: usize) -> u64 {
        let entry = (table_pa as *const u64).wrapping_add(idx);
        // SAFETY: table_pa came from alloc_table: an identity-mapped pool table; idx < 512.
        unsafe { core::ptr::read_volatile(entry) }
    }

    fn write(&mut self, table_pa: u64, idx: usize, desc: u64) {
        let entry = (table_pa as *mut u64).wrapping_add(idx);
        // SAFETY: as in `read`; the tables are only written during single-CPU boot.
        unsafe { core::ptr::write_volatile(entry, desc) }
    }
}

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __stacks_start: u8;
    static __image_end: u8;
    static __cpu_stack_stride: u8;
    static __emergency_stack_size: u8;
    static __max_cpus: u8;
}

pub use crate::mm::el2map::ImageLayout;

/// The image layout from the linker script.
pub fn layout() -> ImageLayout {
    ImageLayout {
        start: (&raw const __image_start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        stacks_start: (&raw const __stacks_start) as u64,
        end: (&raw const __image_end) as u64,
        stack_stride: (&raw const __cpu_stack_stride) as u64,
        emergency_size: (&raw const __emergency_stack_size) as u64,
        max_cpus: (&raw const __max_cpus) as usize,
    }
}

/// Builds the EL2 map for this machine (`mm::el2map::build`). Boot CPU only, before
/// [`enable`].
pub fn build(board: &BoardDesc, facts: &MachineFacts) -> Result<(), MapError> {
    let mut mem = BootTables;
    let mut pt = PageTable::new(&mut mem, 1, VA_BITS)?;
    el2map::build(
        &mut pt,
        &mut mem,
        VA_BITS,
        board.mmio_windows,
        facts.memory.as_slice(),
        &layout(),
    )?;
    ROOT.store(pt.root(), Ordering::Release);
    Ok(())
}

/// The live EL2 map walked: pages by permission and the stack guard pages, and whether
/// SCTLR_EL2.WXN is on. After [`enable`].
pub fn audit() -> (el2map::Summary, bool) {
    let pt = PageTable::from_root(ROOT.load(Ordering::Acquire), 1, VA_BITS);
    let summary = el2map::summarize(&pt, &BootTables, &layout());
    (summary, SCTLR_EL2.is_set(SCTLR_EL2::WXN))
}

/// Turns the EL2 MMU and caches on with the map [`build`] made. Every CPU calls this.
pub fn enable() {
    let root = ROOT.load(Ordering::Acquire);
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    // The output size: what the CPU supports, capped at 48 bits.
    let ps = pa_range.min(0b101);
    MAIR_EL2.set(pte::MAIR_EL2_VALUE);
    // Bits 31 and 23 of TCR_EL2 are RES1 in the non-VHE EL2 regime.
    const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
    let tcr = TCR_EL2::PS.val(ps)
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(u64::from(64 - VA_BITS));
    TCR_EL2.set(tcr.value | TCR_EL2_RES1);
    TTBR0_EL2.set(root);
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    // SAFETY: invalidates EL2 TLB entries left by firmware; no memory is accessed.
    unsafe { core::arch::asm!("tlbi alle2", "dsb ish", "isb", options(nostack)) };
    // WXN makes any writable mapping execute-never in hardware too.
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::WXN::Enable
            + SCTLR_EL2::SA::Enable,
    );
    barrier::isb(barrier::SY);
}

/// Translation tables used from the pool (for the boot report).
pub fn tables_used() -> usize {
    POOL_USED.load(Ordering::Relaxed).min(POOL_TABLES)
}
