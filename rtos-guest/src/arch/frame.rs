//! The saved context of an interrupted task, as `entry.S` lays it out on the task's stack.
//!
//! Offsets are fixed by the assembly (`FRAME_*` in `entry.S`); the `const` asserts below keep
//! the two in step.

use core::mem::{offset_of, size_of};

/// `SPSR_EL1.M` = EL1h: run at EL1 on SP_EL1.
const SPSR_EL1H: u64 = 0b0101;

/// General-purpose, exception and FP/SIMD registers of an interrupted context.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// x0..x30.
    pub x: [u64; 31],
    /// Where to resume (ELR_EL1).
    pub elr: u64,
    /// The saved PSTATE (SPSR_EL1).
    pub spsr: u64,
    _pad: u64,
    /// q0..q31.
    pub q: [u128; 32],
    /// FP control.
    pub fpcr: u64,
    /// FP status.
    pub fpsr: u64,
}

const _: () = {
    assert!(size_of::<Frame>() == 800);
    assert!(offset_of!(Frame, x) == 0);
    assert!(offset_of!(Frame, elr) == 248);
    assert!(offset_of!(Frame, spsr) == 256);
    assert!(offset_of!(Frame, q) == 272);
    assert!(offset_of!(Frame, fpcr) == 784);
    assert!(size_of::<Frame>().is_multiple_of(16));
};

impl Frame {
    /// The first frame of a task: resume at `pc` on EL1h with interrupts unmasked and
    /// `x0`, `x1` = `a0`, `a1`.
    pub const fn new_task(pc: u64, a0: u64, a1: u64) -> Self {
        let mut x = [0; 31];
        x[0] = a0;
        x[1] = a1;
        // DAIF = 0: IRQs are enabled as soon as the task runs.
        Self {
            x,
            elr: pc,
            spsr: SPSR_EL1H,
            _pad: 0,
            q: [0; 32],
            fpcr: 0,
            fpsr: 0,
        }
    }
}
