//! AArch64 at EL2: entry, vectors, CPU control, MMU, GIC, timers, world switch.

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:expr) => {{
        let v: u64;
        // SAFETY: reading a system register at EL2 has no effect on memory.
        unsafe { core::arch::asm!(concat!("mrs {0}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register by name.
macro_rules! write_sysreg {
    ($name:expr, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: EL2 owns this register; callers write architecturally valid values.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {0}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
    }};
}

pub mod console;
pub mod cpu;
pub mod crash;
pub mod gic;
pub mod gic_v2;
pub mod hw;
pub mod mem;
pub mod mmu;
pub mod psci;
pub mod vcpu;

core::arch::global_asm!(include_str!("boot.S"), options(raw));
core::arch::global_asm!(include_str!("vectors.S"), options(raw));
core::arch::global_asm!(include_str!("guest.S"), options(raw));

unsafe extern "C" {
    /// Entry point of secondary CPUs (boot.S).
    pub fn secondary_entry();
}
