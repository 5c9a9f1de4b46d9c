//! AArch64 at EL2: entry, vectors, CPU control, MMU, PSCI and the console.

pub mod console;
pub mod crash;
pub mod cpu;
pub mod mmu;
pub mod psci;

core::arch::global_asm!(include_str!("boot.S"), options(raw));
core::arch::global_asm!(include_str!("vectors.S"), options(raw));

unsafe extern "C" {
    /// Entry point of secondary CPUs (boot.S).
    pub fn secondary_entry();
}
