//! CPU-level primitives: the counter, IRQ masking, CPU identity, the GIC CPU interface
//! system registers, and [`IrqLock`].

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, DAIF, MPIDR_EL1, Readable, Writeable};

use crate::gic::Mpidr;
use crate::time::{Clock, Ticks};

static CLOCK_HZ: AtomicU64 = AtomicU64::new(0);

/// Reads `CNTFRQ_EL0` once at boot.
pub fn init_clock() {
    CLOCK_HZ.store(CNTFRQ_EL0.get(), Ordering::Relaxed);
}

/// The counter's frequency.
pub fn clock() -> Clock {
    Clock::new(CLOCK_HZ.load(Ordering::Relaxed))
}

/// Now, from `CNTVCT_EL0` (after an ISB, so it is not read early).
pub fn now() -> Ticks {
    barrier::isb(barrier::SY);
    Ticks(CNTVCT_EL0.get())
}

/// This CPU's affinity.
pub fn mpidr() -> Mpidr {
    Mpidr(MPIDR_EL1.get() & 0xFF_00FF_FFFF)
}

/// This CPU's index: `MPIDR_EL1.Aff0` (0 = the boot CPU).
pub fn index() -> usize {
    (MPIDR_EL1.get() & 0xFF) as usize
}

/// Whether IRQs are masked (exception context or inside an [`IrqLock`]).
pub fn irqs_masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// Masks IRQs and returns the previous DAIF for [`irq_restore`].
pub fn irq_save() -> u64 {
    let daif = DAIF.get();
    // SAFETY: setting PSTATE.I only masks IRQs; no memory or register is affected.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
    daif
}

/// Restores the DAIF saved by [`irq_save`].
pub fn irq_restore(daif: u64) {
    DAIF.set(daif);
}

/// Waits for an interrupt (the idle loop: under Tandem this returns the pCPU).
pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

macro_rules! sysreg_rw {
    ($(#[$m:meta])* $read:ident, $write:ident, $reg:literal) => {
        $(#[$m])*
        #[allow(dead_code)]
        pub fn $read() -> u64 {
            let v: u64;
            // SAFETY: reading this GIC CPU-interface register has no side effect on memory.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }
        $(#[$m])*
        #[allow(dead_code)]
        pub fn $write(v: u64) {
            // SAFETY: writing this GIC CPU-interface register affects interrupt delivery only,
            // never memory the compiler knows about.
            unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
        }
    };
}

/// GICv3 CPU interface (IHI 0069 §12.2): accessors per register.
pub mod icc {
    sysreg_rw!(
        /// ICC_SRE_EL1: system register interface enable.
        sre, set_sre, "icc_sre_el1");
    sysreg_rw!(
        /// ICC_PMR_EL1: priority mask.
        pmr, set_pmr, "icc_pmr_el1");
    sysreg_rw!(
        /// ICC_BPR1_EL1: binary point (preemption grouping).
        bpr1, set_bpr1, "icc_bpr1_el1");
    sysreg_rw!(
        /// ICC_IGRPEN1_EL1: group 1 enable.
        igrpen1, set_igrpen1, "icc_igrpen1_el1");
    sysreg_rw!(
        /// ICC_CTLR_EL1: control (EOImode).
        ctlr, set_ctlr, "icc_ctlr_el1");

    /// ICC_IAR1_EL1: acknowledges the highest-priority pending group 1 interrupt.
    pub fn iar1() -> u64 {
        let v: u64;
        // SAFETY: acknowledging changes GIC state only (the interrupt becomes active).
        unsafe {
            core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }

    /// ICC_EOIR1_EL1: ends the interrupt `iar` (as read from [`iar1`]).
    pub fn eoir1(iar: u64) {
        // SAFETY: ends an active interrupt in the GIC; no memory is affected.
        unsafe {
            core::arch::asm!("msr icc_eoir1_el1, {}", in(reg) iar, options(nomem, nostack, preserves_flags))
        };
    }

    /// ICC_SGI1R_EL1: generates a group 1 SGI.
    pub fn sgi1r(v: u64) {
        // SAFETY: sends an interrupt; the ordering with earlier stores is the caller's
        // barrier (a DSB before, see `arch::gic::send_sgi`).
        unsafe {
            core::arch::asm!("msr icc_sgi1r_el1, {}", in(reg) v, options(nostack, preserves_flags))
        };
    }
}

/// A lock for data shared between tasks and interrupt handlers (and CPUs): masks IRQs on the
/// local CPU, then spins on a flag. Never hold it across anything that blocks.
pub struct IrqLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `locked` (acquire/release), on every CPU.
unsafe impl<T: Send> Sync for IrqLock<T> {}

impl<T> IrqLock<T> {
    /// A new, unlocked lock.
    pub const fn new(data: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    /// Runs `f` with exclusive access, IRQs masked. Re-entering the same lock deadlocks.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let daif = irq_save();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: `locked` is held, so this is the only reference to `data` until released;
        // IRQs are masked, so no handler on this CPU can try to take it meanwhile.
        let r = f(unsafe { &mut *self.data.get() });
        self.locked.store(false, Ordering::Release);
        irq_restore(daif);
        r
    }
}
