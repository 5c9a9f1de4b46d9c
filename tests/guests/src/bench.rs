//! Timed loops for Tandem's exit-path figures (the probe's `exit-cost:` lines).
//!
//! Written in `asm!` so that the instructions around the exiting one are known exactly.
//! Under `-icount shift=0,sleep=off` one instruction is one nanosecond, but the counter a
//! guest can read (CNTVCT_EL0) ticks only every 16 ns on QEMU's cortex-a72 (62.5 MHz), so:
//!
//! - a round trip (a hypercall, a trapped MMIO read or write) is timed over many iterations
//!   of a loop ([`hvc_loop`], [`load_loop`], [`store_loop`]), and the same loop with the
//!   exiting instruction replaced by an ordinary one ([`hvc_baseline`]; the load or store
//!   on RAM) is timed alike, so the caller can subtract the loop's own instructions;
//! - an interrupt latency happens once per sample and cannot be repeated inside one
//!   measurement, so [`dithered_start`] (and [`vtimer_sample`] on it) dithers instead: it
//!   starts each sample a chosen number
//!   of instructions after a tick boundary, and the mean over one start per instruction of a
//!   tick (see [`crate::units::dither_steps`]) is the exact instruction count, although each
//!   sample is a multiple of 16 ns. (Repeating undithered samples would not help: under
//!   icount every one reads the same whole number of ticks.)

use core::arch::asm;

use crate::{rt, timer};

/// What one timed loop measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Counter ticks from just before the loop to just after it.
    pub ticks: u64,
    /// The loop's accumulator: the sum of what the timed instruction returned (x0 of each
    /// call, each value loaded), for checking every iteration got the right answer.
    pub sum: u64,
}

/// Runs `f` with IRQs masked between two counter reads.
fn timed(f: impl FnOnce() -> u64) -> Timed {
    rt::irq_disable();
    let start = timer::now();
    let sum = f();
    let ticks = timer::now() - start;
    rt::irq_enable();
    Timed { ticks, sum }
}

/// `iterations` (at least 1) calls of function `fid` through `hvc #0`, with IRQs masked.
/// Each iteration is exactly 5 instructions besides what the call runs at EL2:
///
/// ```text
/// 2:  mov  x0, x20              // x20 = fid; x1..x7 hold what the previous call left
///     hvc  #0                   //   (unused by SMCCC_VERSION and Tandem VERSION)
///     add  x21, x21, w0, uxtw   // sum; both calls are SMC32, their result is w0
///     subs x22, x22, #1         // count
///     b.ne 2b
/// ```
pub fn hvc_loop(fid: u32, iterations: u64) -> Timed {
    assert!(iterations > 0);
    timed(|| {
        let sum: u64;
        // SAFETY: `hvc #0` traps to Tandem, which returns results in x0..x3 and, under SMCCC
        // v1.1, preserves x4..x17; all of x0..x17 are declared clobbered anyway
        // (`clobber_abi("C")`), and the loop keeps its own values in callee-saved x20..x22
        // (fid, sum, count). The calls measured touch no guest memory; no stack is used.
        unsafe {
            asm!(
                "2:",
                "mov x0, x20",
                "hvc #0",
                "add x21, x21, w0, uxtw",
                "subs x22, x22, #1",
                "b.ne 2b",
                inout("x20") u64::from(fid) => _,
                inout("x21") 0u64 => sum,
                inout("x22") iterations => _,
                clobber_abi("C"),
                options(nostack),
            )
        };
        sum
    })
}

/// [`hvc_loop`] with `nop` in place of `hvc #0`: the same 5 instructions per iteration, no
/// exit. Its `sum` is `iterations * fid`.
///
/// The difference between the two loops is what the exit adds to an ordinary instruction:
/// the instructions Tandem runs from its exception vector to its `eret`, plus however QEMU
/// accounts for the trapping instruction, the exception entry and the return (each counts
/// at most about one instruction under icount).
pub fn hvc_baseline(fid: u32, iterations: u64) -> Timed {
    assert!(iterations > 0);
    timed(|| {
        let sum: u64;
        // SAFETY: register-only arithmetic; the clobbers mirror `hvc_loop`'s so the compiler
        // allocates registers the same way.
        unsafe {
            asm!(
                "2:",
                "mov x0, x20",
                "nop",
                "add x21, x21, w0, uxtw",
                "subs x22, x22, #1",
                "b.ne 2b",
                inout("x20") u64::from(fid) => _,
                inout("x21") 0u64 => sum,
                inout("x22") iterations => _,
                clobber_abi("C"),
                options(nostack),
            )
        };
        sum
    })
}

/// `iterations` (at least 1) 32-bit loads from `addr`, with IRQs masked. Each iteration is
/// exactly 4 instructions, the load a plain `ldr w, [x]` (a valid instruction syndrome, so
/// Tandem can emulate it when `addr` traps):
///
/// ```text
/// 2:  ldr  <v:w>, [<addr>]
///     add  <sum>, <sum>, <v>
///     subs <n>, <n>, #1
///     b.ne 2b
/// ```
///
/// # Safety
///
/// `addr` must be 4-byte aligned and readable without side effects: a register of a device
/// Tandem emulates (e.g. GICD_TYPER), or RAM that no Rust object is being written through.
pub unsafe fn load_loop(addr: u64, iterations: u64) -> Timed {
    assert!(iterations > 0);
    timed(|| {
        let sum: u64;
        // SAFETY: the caller vouches for `addr`; only registers are written.
        unsafe {
            asm!(
                "2:",
                "ldr {v:w}, [{addr}]",
                "add {sum}, {sum}, {v}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                addr = in(reg) addr,
                v = out(reg) _,
                sum = inout(reg) 0u64 => sum,
                n = inout(reg) iterations => _,
                options(nostack, readonly),
            )
        };
        sum
    })
}

/// `iterations` (at least 1) 32-bit stores of `value` to `addr`, with IRQs masked. Each
/// iteration is exactly 3 instructions, the store a plain `str w, [x]` (a valid instruction
/// syndrome, so Tandem can emulate it when `addr` traps):
///
/// ```text
/// 2:  str  <value:w>, [<addr>]
///     subs <n>, <n>, #1
///     b.ne 2b
/// ```
///
/// # Safety
///
/// `addr` must be 4-byte aligned and writable with `value` any number of times without
/// harm: a register of a device Tandem emulates whose value `value` already is, or RAM that
/// no Rust object lives in.
pub unsafe fn store_loop(addr: u64, value: u32, iterations: u64) -> Timed {
    assert!(iterations > 0);
    timed(|| {
        // SAFETY: the caller vouches for `addr` and `value`.
        unsafe {
            asm!(
                "2:",
                "str {v:w}, [{addr}]",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                addr = in(reg) addr,
                v = in(reg) value,
                n = inout(reg) iterations => _,
                options(nostack),
            )
        };
        0
    })
}

/// The one instruction a dithered sample ([`dithered_start`]) starts its path with.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// `msr cntv_ctl_el0` = ENABLE with CNTV_CVAL = 0 (written right after the `wfi`): the
    /// virtual timer's condition holds at once.
    VtimerEnable,
    /// `msr icc_sgi1r_el1, value`: a GICv3 SGI, trapped by Tandem.
    Sgi1r(u64),
    /// `str value, [addr]` (32-bit): a trapped GICD_SGIR write, or a device register.
    Store32 {
        /// The register's address.
        addr: u64,
        /// What is written.
        value: u32,
    },
}

/// Sleeps until a deadline `lead_ticks` ahead, waits `delay` instructions, reads CNTVCT and
/// runs `trigger` as the very next instruction; returns the counter read. The caller finds
/// the end of the path in the IRQ records of the vCPU that took the interrupt (the counter
/// read at its vector's third instruction, guest-rt's `entry.S`).
///
/// The sequence, in one `asm!` block so nothing between its steps varies:
///
/// 1. a deadline `lead_ticks` ahead, then `wfi`: Tandem blocks the vCPU, the deadline
///    interrupt wakes it and the handler runs (and disables the timer), so execution
///    continues at a fixed number of instructions after a tick boundary (the deadline's);
/// 2. `delay` instructions (`delay & 1` `nop`, `delay >> 1` two-instruction loop rounds);
/// 3. `mrs start, cntvct_el0`, then the trigger.
///
/// Needs the virtual timer's PPI enabled in the vGIC, the CPU interface on and IRQs
/// unmasked. Calling this with `delay` = 0, 1, .. `dither_steps - 1` starts the sample once
/// at every instruction of a tick, so the mean over those calls is the exact number of
/// instructions, although each sample is a whole number of ticks.
///
/// # Safety
///
/// A [`Trigger::Store32`] address must be a 4-byte aligned device register of this VM that
/// may be written with its value at any time.
pub unsafe fn dithered_start(delay: u64, lead_ticks: u64, trigger: Trigger) -> u64 {
    timer::arm_at(timer::now() + lead_ticks);
    let start: u64;
    // One asm body per trigger; everything before the trigger is the same instructions.
    macro_rules! sample {
        ($after_wfi:literal, $trigger:literal, $($operands:tt)*) => {
            // SAFETY: `wfi` waits for the deadline's interrupt; CNTV_CVAL/CNTV_CTL are this
            // vCPU's own virtual timer; an SGI only interrupts this VM's vCPUs; the caller
            // vouches for a store's address. The interrupts taken inside are handled by the
            // runtime's vector, which preserves every register; the handler writes memory
            // (its IRQ records), hence no `nomem`.
            unsafe { asm!(
                "wfi",
                $after_wfi,
                "cbz {odd}, 2f",
                "nop",
                "2:",
                "cbz {pairs}, 4f",
                "3:",
                "subs {pairs}, {pairs}, #1",
                "b.ne 3b",
                "4:",
                "mrs {start}, cntvct_el0",
                $trigger,
                "isb",
                odd = in(reg) delay & 1,
                pairs = inout(reg) delay >> 1 => _,
                start = out(reg) start,
                $($operands)*
                options(nostack),
            ) }
        };
    }
    match trigger {
        Trigger::VtimerEnable => sample!(
            "msr cntv_cval_el0, xzr",
            "msr cntv_ctl_el0, {t}",
            t = in(reg) 1u64,
        ),
        Trigger::Sgi1r(value) => sample!("nop", "msr icc_sgi1r_el1, {t}", t = in(reg) value,),
        Trigger::Store32 { addr, value } => sample!(
            "nop",
            "str {t:w}, [{a}]",
            t = in(reg) value,
            a = in(reg) addr,
        ),
    }
    start
}

/// One dithered sample of the virtual-timer path ([`dithered_start`] with
/// [`Trigger::VtimerEnable`]): the counter ticks from a read taken one instruction before
/// the timer condition becomes true to the read at the IRQ vector, or `None` if the sample
/// went wrong. The physical virtual-timer PPI takes the same path through Tandem as a
/// deadline reached while the vCPU runs. The runtime's handler disables the timer on each
/// of its interrupts.
pub fn vtimer_sample(delay: u64, lead_ticks: u64) -> Option<u64> {
    let cpu = rt::cpu_index();
    let before = rt::irq_count(cpu);
    // SAFETY: no store.
    let start = unsafe { dithered_start(delay, lead_ticks, Trigger::VtimerEnable) };
    let (intid, entry) = rt::last_irq(cpu);
    let ok = rt::irq_count(cpu) == before + 2
        && intid == u64::from(timer::VTIMER_INTID)
        && entry >= start;
    timer::disable();
    ok.then(|| entry - start)
}
