//! Locks that wait politely.
//!
//! A spinning CPU executes `yield` between attempts: under QEMU's
//! round-robin TCG (and `-icount`) that hands the host thread to the vCPU
//! holding the lock instead of burning virtual time; on hardware it is a hint
//! to SMT siblings.

/// How a waiting CPU relaxes between attempts.
pub struct CpuRelax;

impl spin::RelaxStrategy for CpuRelax {
    #[inline(always)]
    fn relax() {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        // SAFETY: `yield` is a hint with no architectural effect.
        unsafe {
            core::arch::asm!("yield", options(nomem, nostack, preserves_flags))
        };
        #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
        core::hint::spin_loop();
    }
}

/// A spin lock whose waiters yield and are served in arrival order.
pub type Lock<T> = spin::mutex::TicketMutex<T, CpuRelax>;
