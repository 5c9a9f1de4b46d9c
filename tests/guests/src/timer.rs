//! The virtual counter and the EL1 virtual timer (CNTV_*), which guests use directly.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0, Readable, Writeable,
};

/// The virtual timer's PPI.
pub const VTIMER_INTID: u32 = 27;

/// CNTVCT_EL0, not read early (ISB first).
pub fn now() -> u64 {
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// The counter frequency in Hz (CNTFRQ_EL0).
pub fn hz() -> u64 {
    CNTFRQ_EL0.get()
}

/// Arms the virtual timer to fire when CNTVCT reaches `deadline`.
pub fn arm_at(deadline: u64) {
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    barrier::isb(barrier::SY);
}

/// Disables the virtual timer.
pub fn disable() {
    CNTV_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
}

/// Spins until `cond()` holds or CNTVCT passes `until`; returns `cond()`.
pub fn spin_until(until: u64, mut cond: impl FnMut() -> bool) -> bool {
    while !cond() {
        if now() > until {
            return cond();
        }
        core::hint::spin_loop();
    }
    true
}
