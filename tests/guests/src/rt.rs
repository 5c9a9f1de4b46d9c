//! The guests' runtime: per-vCPU fault and IRQ records over the shared guest runtime.
//!
//! - `guest_rt` (its `entry.S` and `guest.ld`, shared with rtos-guest and the pv-abi
//!   examples) starts vCPU 0 at `_start` and secondaries at [`secondary_entry`], each on its
//!   own 16 KiB stack with VBAR_EL1 = `guest_vectors`, and calls the binary's functions named
//!   by [`entry!`](crate::entry); every exception comes to [`guest_exception`] here.
//! - A synchronous exception while [`expect_fault`] is armed is recorded (ESR, FAR, ELR) in
//!   the vCPU's slot and the faulting instruction is skipped (ELR += 4), so a test can provoke
//!   an abort or an UNDEFINED instruction and check its syndrome. Any other synchronous
//!   exception is counted ([`unexpected_exceptions`]), printed, and skipped too when it is a
//!   data abort or UNDEFINED (so one bad test does not end the run); else the VM powers off.
//! - [`run_at_el0`] runs code at EL0 (AArch64 or AArch32) until its first exception, which
//!   comes back to the caller as an [`El0Exit`] (which vector took it, ESR, ELR, SPSR).
//! - An IRQ is acknowledged (ICC_IAR1_EL1), recorded with the counter value at vector entry,
//!   and ended (ICC_EOIR1_EL1, EOImode 0). The virtual timer's PPI also disables the timer:
//!   Tandem masks it (CNTV_CTL.IMASK) when it injects, so a handler must reprogram or disable
//!   it, and these tests use one-shot deadlines.
//! - A level-sensitive device interrupt registered with [`set_device_ack`] is quieted at its
//!   source (status register read, clear register written) before it is ended, as a real
//!   driver does; otherwise the still-high line would interrupt again at once.
//!
//! Per-vCPU state is indexed by MPIDR_EL1.Aff0 (0 or 1): Tandem gives vCPU n the MPIDR n.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, compiler_fence};

use aarch64_cpu::registers::{CNTV_CTL_EL0, ESR_EL1, FAR_EL1, MPIDR_EL1, Readable, Writeable};

use crate::esr::{EC_DATA_ABORT_SAME_EL, EC_UNKNOWN, Syndrome};
use crate::{gic, println, timer};

/// vCPUs the runtime has stacks and records for (MPIDR Aff0 0 and 1).
pub const MAX_CPUS: usize = 2;

/// The interrupted context as guest-rt's vectors save it (x0..x30, ELR, SPSR, the counter at
/// vector entry, q0..q31, FPCR, FPSR).
pub use guest_rt::Frame;

/// What a vCPU's exception handlers recorded.
struct PerCpu {
    /// `expect_fault` is running: record and skip the next synchronous exception.
    armed: AtomicBool,
    /// A synchronous exception was recorded since arming.
    taken: AtomicBool,
    esr: AtomicU64,
    far: AtomicU64,
    elr: AtomicU64,
    /// IRQs handled (spurious ones excluded).
    irqs: AtomicU64,
    /// INTID of the last IRQ.
    last_intid: AtomicU64,
    /// Source vCPU of the last IRQ if it was a GICv2 SGI (else 0).
    last_source: AtomicU64,
    /// CNTVCT at vector entry of the last IRQ.
    last_ticks: AtomicU64,
    /// CNTV_CTL_EL0 as the last virtual-timer IRQ found it.
    timer_ctl: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            taken: AtomicBool::new(false),
            esr: AtomicU64::new(0),
            far: AtomicU64::new(0),
            elr: AtomicU64::new(0),
            irqs: AtomicU64::new(0),
            last_intid: AtomicU64::new(u64::MAX),
            last_source: AtomicU64::new(0),
            last_ticks: AtomicU64::new(0),
            timer_ctl: AtomicU64::new(0),
        }
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// A guest's own exception handler, tried before the runtime's: the address of a
/// [`ExceptionHook`], 0 for none.
static HOOK: AtomicUsize = AtomicUsize::new(0);

/// A handler [`set_exception_hook`] installs: it gets every exception first (`kind` as
/// [`guest_exception`] has it) and returns `true` if it dealt with it (the possibly edited
/// frame resumes), `false` to leave it to the runtime.
pub type ExceptionHook = fn(&mut Frame, u64) -> bool;

/// Sends every exception to `hook` first, for a guest that provokes them at random and
/// counts them itself (`chaos`).
pub fn set_exception_hook(hook: ExceptionHook) {
    HOOK.store(hook as usize, Ordering::Release);
}

/// Per vCPU, while [`run_at_el0`] runs: where EL1 resumes (0: no excursion) and with which
/// PSTATE. The assembly of `run_at_el0` writes both (offsets 0 and 8).
static EL0_RETURN: [[AtomicU64; 2]; MAX_CPUS] =
    [const { [AtomicU64::new(0), AtomicU64::new(0)] }; MAX_CPUS];
/// Per vCPU: the last excursion's end, as `[kind, ESR, ELR, SPSR]`.
static EL0_EXIT: [[AtomicU64; 4]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; 4] }; MAX_CPUS];

/// The device interrupt [`set_device_ack`] registered, and what its handler saw.
struct DeviceAck {
    /// Its INTID, `u64::MAX` for none.
    intid: AtomicU64,
    /// Address of its 32-bit status register.
    status: AtomicU64,
    /// Address of its 32-bit clear register, and the value that clears it.
    clear: AtomicU64,
    clear_value: AtomicU64,
    /// Interrupts taken, the status read in the last one, and CNTVCT at its vector entry.
    count: AtomicU64,
    last_status: AtomicU64,
    last_ticks: AtomicU64,
}

static DEVICE: DeviceAck = DeviceAck {
    intid: AtomicU64::new(u64::MAX),
    status: AtomicU64::new(0),
    clear: AtomicU64::new(0),
    clear_value: AtomicU64::new(0),
    count: AtomicU64::new(0),
    last_status: AtomicU64::new(0),
    last_ticks: AtomicU64::new(0),
};

/// Makes the IRQ handler treat `intid` as a level-sensitive device interrupt: read the 32-bit
/// register at `status`, write `clear_value` to the one at `clear`, then end it.
///
/// # Safety
///
/// `status` and `clear` must be 4-byte aligned device registers of this VM (mapped, holding
/// no Rust object) that may be accessed from the IRQ handler at any time.
pub unsafe fn set_device_ack(intid: u32, status: u64, clear: u64, clear_value: u32) {
    DEVICE.status.store(status, Ordering::Relaxed);
    DEVICE.clear.store(clear, Ordering::Relaxed);
    DEVICE
        .clear_value
        .store(u64::from(clear_value), Ordering::Relaxed);
    DEVICE.intid.store(u64::from(intid), Ordering::Release);
}

/// The registered device interrupt: `(interrupts taken, status read in the last one, CNTVCT
/// at the last one's vector entry)`.
pub fn device_irqs() -> (u64, u64, u64) {
    (
        DEVICE.count.load(Ordering::Acquire),
        DEVICE.last_status.load(Ordering::Relaxed),
        DEVICE.last_ticks.load(Ordering::Relaxed),
    )
}

/// Reads the 32-bit device register at `addr` with one `ldr`.
///
/// # Safety
///
/// `addr` must be a 4-byte aligned device register of this VM, or be expected to fault under
/// [`expect_fault`].
pub unsafe fn load32(addr: u64) -> u32 {
    let value: u32;
    // SAFETY: the caller vouches for `addr`; a fault is skipped by the handler.
    unsafe {
        core::arch::asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = lateout(reg) value, options(nostack, preserves_flags))
    };
    value
}

/// Writes the 32-bit device register at `addr` with one `str`.
///
/// # Safety
///
/// As for [`load32`].
pub unsafe fn store32(addr: u64, value: u32) {
    // SAFETY: the caller vouches for `addr`; a fault is skipped by the handler.
    unsafe {
        core::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags))
    };
}

/// Declares the binary's entry points: `main(dtb) -> !` for vCPU 0 and, optionally,
/// `secondary(context_id) -> !` for vCPUs started with [`start_secondary`] (without it, a
/// started secondary reports itself and turns off).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, $crate::rt::no_secondary);
    };
    ($main:path, $secondary:path) => {
        /// vCPU 0's Rust entry, called by `_start` on its stack with x0 = the DTB IPA.
        #[unsafe(no_mangle)]
        pub extern "C" fn guest_main(dtb: u64) -> ! {
            let main: fn(u64) -> ! = $main;
            main(dtb)
        }

        /// A secondary vCPU's Rust entry, called by `guest_secondary_entry` with x0 = the
        /// PSCI CPU_ON context id.
        #[unsafe(no_mangle)]
        pub extern "C" fn guest_secondary_main(context_id: u64) -> ! {
            let secondary: fn(u64) -> ! = $secondary;
            secondary(context_id)
        }
    };
}

/// The IPA of the secondary entry point, for PSCI CPU_ON (the MMU is off: VA = IPA):
/// guest-rt's `guest_secondary_entry`.
pub fn secondary_entry() -> u64 {
    guest_rt::secondary_entry()
}

/// Starts the vCPU with `mpidr` at the binary's secondary entry with `context_id` in x0.
pub fn start_secondary(mpidr: u64, context_id: u64) -> Result<(), pv_abi::psci::Error> {
    pv_abi::guest::cpu_on(
        pv_abi::psci::Mpidr::from_reg(mpidr),
        pv_abi::psci::EntryPoint::new(secondary_entry()),
        context_id,
    )
}

/// The secondary entry of binaries that start no secondary vCPU.
pub fn no_secondary(context_id: u64) -> ! {
    println!(
        "[!] vcpu{} started unexpectedly (context {context_id:#x}): CPU_OFF",
        cpu_index()
    );
    let Err(e) = pv_abi::guest::cpu_off();
    println!("[!] CPU_OFF failed: {e}");
    park()
}

/// This vCPU's index: MPIDR_EL1.Aff0, clamped to the records that exist.
pub fn cpu_index() -> usize {
    ((MPIDR_EL1.get() & 0xff) as usize).min(MAX_CPUS - 1)
}

/// A synchronous exception recorded by [`expect_fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// ESR_EL1.
    pub esr: Syndrome,
    /// FAR_EL1 (meaningful for aborts only).
    pub far: u64,
    /// ELR_EL1: the faulting instruction.
    pub elr: u64,
}

/// Runs `f`; returns the first synchronous exception it raised (the faulting instruction is
/// skipped and `f` continues after it), or `None` if it raised none.
pub fn expect_fault(f: impl FnOnce()) -> Option<Fault> {
    let c = &CPUS[cpu_index()];
    c.taken.store(false, Ordering::Relaxed);
    c.armed.store(true, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    f();
    compiler_fence(Ordering::SeqCst);
    c.armed.store(false, Ordering::Relaxed);
    c.taken.load(Ordering::Relaxed).then(|| Fault {
        esr: Syndrome(c.esr.load(Ordering::Relaxed)),
        far: c.far.load(Ordering::Relaxed),
        elr: c.elr.load(Ordering::Relaxed),
    })
}

/// `kind` of a synchronous exception from EL0 in AArch64 state (VBAR_EL1 + 0x400).
pub const KIND_EL0_AARCH64_SYNC: u64 = 0x20;
/// `kind` of a synchronous exception from EL0 in AArch32 state (VBAR_EL1 + 0x600).
pub const KIND_EL0_AARCH32_SYNC: u64 = 0x30;

/// How a [`run_at_el0`] excursion ended: the first exception taken from EL0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct El0Exit {
    /// The vector that took it (guest-rt's `kind`, e.g. [`KIND_EL0_AARCH32_SYNC`]).
    pub kind: u64,
    /// ESR_EL1.
    pub esr: Syndrome,
    /// ELR_EL1: where EL0 was.
    pub elr: u64,
    /// SPSR_EL1: EL0's PSTATE.
    pub spsr: u64,
}

/// Runs the code at `entry` at EL0 in PSTATE `spsr` (an EL0 mode: AArch64 `0x3c0`, AArch32
/// User A32 `0x1d0` or T32 `0x1f0`, interrupts masked) with `x1` (AArch32: `r1`), until it
/// takes an exception to EL1; returns which one, back at EL1 with this call's PSTATE.
///
/// # Safety
///
/// `entry` must be code that may run at EL0 (the MMU is off: any RAM) and that ends in an
/// exception taken to EL1 (an UNDEFINED instruction, a trap Tandem turns into one, an
/// abort), changing no memory a Rust object lives in.
pub unsafe fn run_at_el0(entry: u64, spsr: u64, x1: u64) -> El0Exit {
    let cpu = cpu_index();
    let slot = EL0_RETURN[cpu].as_ptr();
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller vouches for the EL0 code. The excursion's exception comes back to
    // the label `2:` through `guest_exception` (which restores the EL1 PSTATE saved here),
    // on this stack: SP_EL1 is the same throughout. x18..x30 are kept on the stack here,
    // because AArch32 code leaves the upper halves and the banked registers UNKNOWN; the
    // rest are declared clobbered.
    unsafe {
        core::arch::asm!(
            "stp x18, x19, [sp, #-112]!",
            "stp x20, x21, [sp, #16]",
            "stp x22, x23, [sp, #32]",
            "stp x24, x25, [sp, #48]",
            "stp x26, x27, [sp, #64]",
            "stp x28, x29, [sp, #80]",
            "str x30, [sp, #96]",
            "adr x9, 2f",
            "str x9, [x10]",
            "mrs x9, daif",
            "orr x9, x9, #0x4",         // EL1h (M = 0b0101), with this call's DAIF
            "orr x9, x9, #0x1",
            "str x9, [x10, #8]",
            "msr elr_el1, x11",
            "msr spsr_el1, x12",
            "eret",
            "2:",
            "ldr x30, [sp, #96]",
            "ldp x28, x29, [sp, #80]",
            "ldp x26, x27, [sp, #64]",
            "ldp x24, x25, [sp, #48]",
            "ldp x22, x23, [sp, #32]",
            "ldp x20, x21, [sp, #16]",
            "ldp x18, x19, [sp], #112",
            in("x10") slot,
            in("x11") entry,
            in("x12") spsr,
            in("x1") x1,
            out("x9") _,
            clobber_abi("C"),
        );
    }
    compiler_fence(Ordering::SeqCst);
    let e = &EL0_EXIT[cpu];
    El0Exit {
        kind: e[0].load(Ordering::Relaxed),
        esr: Syndrome(e[1].load(Ordering::Relaxed)),
        elr: e[2].load(Ordering::Relaxed),
        spsr: e[3].load(Ordering::Relaxed),
    }
}

/// An exception from EL0 during [`run_at_el0`]: record it and resume EL1 after the `eret`.
fn el0_return(frame: &mut Frame, kind: u64) -> bool {
    let cpu = cpu_index();
    let resume = EL0_RETURN[cpu][0].swap(0, Ordering::Relaxed);
    if resume == 0 {
        return false;
    }
    let e = &EL0_EXIT[cpu];
    e[0].store(kind, Ordering::Relaxed);
    e[1].store(ESR_EL1.get(), Ordering::Relaxed);
    e[2].store(frame.elr, Ordering::Relaxed);
    e[3].store(frame.spsr, Ordering::Relaxed);
    frame.elr = resume;
    frame.spsr = EL0_RETURN[cpu][1].load(Ordering::Relaxed);
    true
}

/// Synchronous exceptions nobody expected, on any vCPU, since boot.
pub fn unexpected_exceptions() -> u64 {
    UNEXPECTED.load(Ordering::Relaxed)
}

/// IRQs vCPU `cpu` has handled since boot.
pub fn irq_count(cpu: usize) -> u64 {
    CPUS[cpu].irqs.load(Ordering::Acquire)
}

/// The source vCPU GICC_IAR named for vCPU `cpu`'s last IRQ (a GICv2 SGI; 0 otherwise).
pub fn last_sgi_source(cpu: usize) -> u64 {
    CPUS[cpu].last_source.load(Ordering::Relaxed)
}

/// vCPU `cpu`'s last IRQ: `(INTID, CNTVCT at vector entry)`.
pub fn last_irq(cpu: usize) -> (u64, u64) {
    let c = &CPUS[cpu];
    (
        c.last_intid.load(Ordering::Relaxed),
        c.last_ticks.load(Ordering::Relaxed),
    )
}

/// CNTV_CTL_EL0 as vCPU `cpu`'s last virtual-timer IRQ found it (ENABLE, IMASK, ISTATUS).
pub fn timer_ctl_at_irq(cpu: usize) -> u64 {
    CPUS[cpu].timer_ctl.load(Ordering::Relaxed)
}

/// Unmasks IRQs (PSTATE.I = 0).
pub fn irq_enable() {
    // SAFETY: clearing PSTATE.I lets IRQs in; the vectors are installed before any Rust runs
    // and the IRQ handler preserves the whole interrupted context.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags)) };
}

/// Masks IRQs (PSTATE.I = 1).
pub fn irq_disable() {
    // SAFETY: setting PSTATE.I only defers IRQs.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
}

/// Waits with IRQs masked until `cond()` holds or CNTVCT passes `until`, sleeping in `wfi`
/// (which Tandem traps and blocks on) and taking each IRQ that wakes it. Returns `cond()`.
///
/// Masking around the test-then-`wfi` closes the race where the IRQ arrives just before
/// `wfi`: a pending interrupt wakes `wfi` even while masked, and is taken at the unmask.
pub fn wait_for_interrupt_until(until: u64, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        irq_disable();
        if cond() || timer::now() > until {
            irq_enable();
            return cond();
        }
        wfi();
        irq_enable();
    }
}

/// Executes `wfi`.
pub fn wfi() {
    // SAFETY: `wfi` only waits; Tandem traps it and blocks the vCPU until an interrupt.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Parks this vCPU for good.
pub fn park() -> ! {
    loop {
        // SAFETY: `wfe` only waits.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}

/// Powers the VM off with PSCI SYSTEM_OFF (Tandem stops the VM).
pub fn power_off() -> ! {
    let Err(e) = pv_abi::guest::system_off();
    println!("[!] SYSTEM_OFF failed: {e}");
    park()
}

/// Reads the 64-bit word at `addr` with exactly one `ldr`, so a fault is skippable.
///
/// # Safety
///
/// `addr` must be 8-byte aligned and either hold no Rust object or be expected to fault under
/// [`expect_fault`] (then the result is garbage).
pub unsafe fn load64(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: the caller vouches for `addr`; a fault is skipped by the handler (ELR += 4),
    // leaving `value` unspecified but initialised.
    unsafe {
        core::arch::asm!("ldr {v}, [{a}]", a = in(reg) addr, v = lateout(reg) value, options(nostack, preserves_flags))
    };
    value
}

/// Writes the 64-bit word at `addr` with exactly one `str`, so a fault is skippable.
///
/// # Safety
///
/// `addr` must be 8-byte aligned and either hold no Rust object or be expected to fault under
/// [`expect_fault`].
pub unsafe fn store64(addr: u64, value: u64) {
    // SAFETY: the caller vouches for `addr`; a fault is skipped by the handler.
    unsafe {
        core::arch::asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags))
    };
}

/// The Rust side of every exception (guest-rt's vectors): `kind` is the vector index
/// (0 = synchronous, 1 = IRQ, 2 = FIQ, 3 = SError from EL1h; 0x1x, 0x2x, 0x3x other sources).
/// Returns the frame to resume: always the interrupted one (possibly edited).
#[unsafe(no_mangle)]
extern "C" fn guest_exception(frame: &mut Frame, kind: u64, _ticks: u64) -> &mut Frame {
    let hook = HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: HOOK holds 0 or an `ExceptionHook` stored by `set_exception_hook`.
        let hook: ExceptionHook = unsafe { core::mem::transmute::<usize, ExceptionHook>(hook) };
        if hook(frame, kind) {
            return frame;
        }
    }
    match kind {
        guest_rt::KIND_SYNC => synchronous(frame),
        guest_rt::KIND_IRQ => irq(frame),
        KIND_EL0_AARCH64_SYNC | KIND_EL0_AARCH32_SYNC if el0_return(frame, kind) => {}
        _ => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            println!(
                "[!] unexpected exception (vector {kind:#x}) on vcpu{}, ELR={:#x}",
                cpu_index(),
                frame.elr
            );
            power_off();
        }
    }
    frame
}

fn synchronous(frame: &mut Frame) {
    let esr = Syndrome(ESR_EL1.get());
    let far = FAR_EL1.get();
    let c = &CPUS[cpu_index()];
    if c.armed.load(Ordering::Relaxed) && !c.taken.load(Ordering::Relaxed) {
        c.esr.store(esr.0, Ordering::Relaxed);
        c.far.store(far, Ordering::Relaxed);
        c.elr.store(frame.elr, Ordering::Relaxed);
        c.taken.store(true, Ordering::Relaxed);
        frame.elr += 4;
        return;
    }
    UNEXPECTED.fetch_add(1, Ordering::Relaxed);
    println!(
        "[!] unexpected synchronous exception on vcpu{}: ESR={:#x} (EC {:#04x}) FAR={:#x} ELR={:#x}",
        cpu_index(),
        esr.0,
        esr.ec(),
        far,
        frame.elr
    );
    match esr.ec() {
        EC_UNKNOWN | EC_DATA_ABORT_SAME_EL => frame.elr += 4,
        _ => power_off(),
    }
}

fn irq(frame: &mut Frame) {
    let iar = gic::ack();
    let intid = gic::intid(iar);
    if intid >= gic::INTID_SPURIOUS_FIRST {
        return;
    }
    let c = &CPUS[cpu_index()];
    if intid == timer::VTIMER_INTID {
        c.timer_ctl.store(CNTV_CTL_EL0.get(), Ordering::Relaxed);
        // One-shot: Tandem masked the timer to inject it; disabling it ends the condition.
        CNTV_CTL_EL0.set(0);
    }
    if u64::from(intid) == DEVICE.intid.load(Ordering::Acquire) {
        // SAFETY: set_device_ack's caller vouched for both registers.
        let status = unsafe { load32(DEVICE.status.load(Ordering::Relaxed)) };
        let clear_value = DEVICE.clear_value.load(Ordering::Relaxed) as u32;
        // SAFETY: as above.
        unsafe { store32(DEVICE.clear.load(Ordering::Relaxed), clear_value) };
        DEVICE
            .last_status
            .store(u64::from(status), Ordering::Relaxed);
        DEVICE
            .last_ticks
            .store(frame.entry_ticks, Ordering::Relaxed);
        DEVICE
            .count
            .store(DEVICE.count.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
    c.last_intid.store(u64::from(intid), Ordering::Relaxed);
    c.last_source
        .store(u64::from(gic::sgi_source(iar)), Ordering::Relaxed);
    c.last_ticks.store(frame.entry_ticks, Ordering::Relaxed);
    // Only this vCPU writes its count: a plain increment, no exclusive access needed.
    c.irqs
        .store(c.irqs.load(Ordering::Relaxed) + 1, Ordering::Release);
    gic::eoi(iar);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("[!] guest panicked on vcpu{}: {info}", cpu_index());
    power_off()
}
