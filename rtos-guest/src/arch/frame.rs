//! The saved context of an interrupted task: guest-rt's [`Frame`], which its vectors lay out on
//! the task's stack (every task not running has a complete one on top of its stack).

pub use guest_rt::Frame;

/// `SPSR_EL1.M` = EL1h: run at EL1 on SP_EL1.
const SPSR_EL1H: u64 = 0b0101;

/// The first frame of a task: resume at `pc` on EL1h with interrupts unmasked and
/// `x0`, `x1` = `a0`, `a1`.
pub const fn new_task(pc: u64, a0: u64, a1: u64) -> Frame {
    let mut x = [0; 31];
    x[0] = a0;
    x[1] = a1;
    // DAIF = 0: IRQs are enabled as soon as the task runs.
    Frame {
        x,
        elr: pc,
        spsr: SPSR_EL1H,
        entry_ticks: 0,
        q: [0; 32],
        fpcr: 0,
        fpsr: 0,
    }
}
