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
    /// Spin-table entry points (boot.S): element n - 1 starts logical CPU n.
    static spin_entries: [u64; 7];
}

/// Releases a CPU parked in the firmware's spin table at `release_addr` to start as
/// logical CPU `index` (1..=7); false if `index` has no entry or the address is not
/// 8-byte aligned.
pub fn spin_table_release(release_addr: u64, index: usize) -> bool {
    // SAFETY: a table of seven code addresses in boot.S, read-only.
    let entries = unsafe { &*core::ptr::addr_of!(spin_entries) };
    let Some(&entry) = index.checked_sub(1).and_then(|i| entries.get(i)) else {
        return false;
    };
    if release_addr == 0 || !release_addr.is_multiple_of(8) {
        return false;
    }
    // SAFETY: the device tree names `release_addr` as this CPU's cpu-release-addr, in the
    // firmware's reserved first page, which the EL2 map covers as RAM; nothing else writes it.
    unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry) };
    // SAFETY: the parked CPU reads the slot with its MMU and caches off: clean the line to
    // the point of coherency, complete it, then wake the CPU from its WFE.
    unsafe {
        core::arch::asm!(
            "dc civac, {a}",
            "dsb sy",
            "sev",
            a = in(reg) release_addr,
            options(nostack, preserves_flags)
        )
    };
    true
}
