//! Per-CPU identity, the generic counter, and parking.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, CurrentEL, MPIDR_EL1, Readable, TPIDR_EL2, Writeable,
};

/// Records this CPU's logical index (read back by [`index`]).
pub fn set_index(index: usize) {
    TPIDR_EL2.set(index as u64);
}

/// This CPU's logical index (0 = boot CPU).
pub fn index() -> usize {
    TPIDR_EL2.get() as usize
}

/// This CPU's MPIDR_EL1 value.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get()
}

/// The current exception level.
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// Nanoseconds since the counter started.
pub fn now_ns() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    let ticks = CNTPCT_EL0.get();
    ((u128::from(ticks) * 1_000_000_000) / u128::from(freq)) as u64
}

/// Wakes CPUs waiting in [`wait_for_event`].
pub fn send_event() {
    asm::sev();
}

/// Sleeps until an event (another CPU's [`send_event`]) or an interrupt.
pub fn wait_for_event() {
    asm::wfe();
}

/// Stops this CPU for good (it only wakes to go back to sleep).
pub fn park() -> ! {
    loop {
        asm::wfe();
    }
}
