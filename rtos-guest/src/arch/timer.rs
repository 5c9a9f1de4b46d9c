//! The tickless EL1 virtual timer (`CNTV_*`, PPI 27) and the interrupt-latency histogram.
//!
//! The timer holds at most one deadline: the scheduler's earliest wake instant, written to
//! `CNTV_CVAL_EL0` only when it changes ([`program`]). There is no periodic tick. When the
//! interrupt fires, the handler entry timestamp (taken by guest-rt's `entry.S` before saving
//! anything) minus the programmed deadline is the timer-interrupt latency, recorded in ns.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTV_CTL_EL0, CNTV_CVAL_EL0, Writeable};

use super::cpu::{self, IrqLock};
use crate::stats::Histogram;
use crate::time::Ticks;

/// The programmed deadline, or `u64::MAX` when the timer is off. Only CPU 0 uses the timer.
static PROGRAMMED: AtomicU64 = AtomicU64::new(u64::MAX);

static LATENCY: IrqLock<Histogram> = IrqLock::new(Histogram::new());

/// Turns the timer off.
pub fn init() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    PROGRAMMED.store(u64::MAX, Ordering::Relaxed);
}

/// Programs the next deadline (`None`: no deadline, timer off). Writes only on change.
pub fn program(deadline: Option<Ticks>) {
    let want = deadline.map_or(u64::MAX, |t| t.0);
    if PROGRAMMED.load(Ordering::Relaxed) == want {
        return;
    }
    PROGRAMMED.store(want, Ordering::Relaxed);
    match deadline {
        None => CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR),
        Some(t) => {
            CNTV_CVAL_EL0.set(t.0);
            CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
        }
    }
}

/// The timer interrupt: records the latency and turns the (level-triggered) timer off before
/// the EOI; the scheduler then programs the next deadline on the way out.
pub fn on_irq(entry: Ticks) {
    let programmed = PROGRAMMED.swap(u64::MAX, Ordering::Relaxed);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    if programmed != u64::MAX && entry.0 >= programmed {
        let ns = cpu::clock().to_ns(entry.since(Ticks(programmed)));
        LATENCY.with(|h| h.record(ns));
    }
}

/// A copy of the latency histogram.
pub fn latency() -> Histogram {
    LATENCY.with(|h| h.clone())
}
