//! Turns on the EL1 MMU with the identity map of [`crate::mmu`] (called once per CPU, first).

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{MAIR_EL1, ReadWriteable, SCTLR_EL1, TCR_EL1, TTBR0_EL1, Writeable};

use crate::mmu::{ENTRIES, T0SZ, identity_l1};

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// The level-1 table, built at compile time and shared by every CPU (read-only).
static L1: Table = Table(identity_l1());

/// Enables the MMU and caches. Must run before any code that needs normal memory (atomics,
/// unaligned accesses); safe to call on every CPU.
pub fn enable() {
    MAIR_EL1.write(
        // Index 0 (MAIR_IDX_DEVICE): Device-nGnRnE, for the GIC and UART.
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_noEarlyWriteAck
            // Index 1 (MAIR_IDX_NORMAL): normal write-back read/write-allocate, for RAM.
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    TTBR0_EL1.set_baddr(L1.0.as_ptr() as u64);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(T0SZ)
            + TCR_EL1::TG0::KiB_4
            // Table walks are cacheable and coherent between the CPUs.
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD0::EnableTTBR0Walks
            // Nothing lives in the upper half: TTBR1 walks fault.
            + TCR_EL1::EPD1::DisableTTBR1Walks
            // 40 bits covers every address used; smaller implementations clamp it.
            + TCR_EL1::IPS::Bits_40,
    );
    barrier::isb(barrier::SY);
    // SAFETY: invalidates stale EL1 TLB entries (there are none yet); no memory is touched.
    unsafe { core::arch::asm!("tlbi vmalle1", options(nostack, preserves_flags)) };
    barrier::dsb(barrier::NSH);
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(
        SCTLR_EL1::M::Enable
            + SCTLR_EL1::C::Cacheable
            + SCTLR_EL1::I::Cacheable
            // Unaligned accesses to normal memory are fine (Rust emits them in memcpy).
            + SCTLR_EL1::A::Disable,
    );
    barrier::isb(barrier::SY);
}
