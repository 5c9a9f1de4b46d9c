//! hello-rust: the smallest complete Tandem guest in Rust, from first instruction to power-off.
//!
//! vCPU 0 discovers Tandem (SMCCC Call UID and Revision), prints through CONSOLE_WRITE, reads
//! VM_INFO, takes three virtual-timer interrupts through the vGIC, starts vCPU 1 with PSCI
//! CPU_ON (which prints and turns itself off) and powers the VM off with PSCI SYSTEM_OFF.
//! Entry, stacks and exception vectors come from `guest-rt` (its `entry.S` and `guest.ld`).
//!
//! Build: `cargo xtask example hello-rust`; boot: `cargo xtask run --guest
//! target/tandem/examples/hello-rust.bin`. See README.md and docs/porting.md.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "hello-rust runs only as a Tandem guest: build it with `cargo xtask example hello-rust`"
    );
}

#[cfg(target_os = "none")]
mod guest {
    use core::arch::asm;
    use core::fmt::Write;
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use guest_rt::{Frame, KIND_IRQ};
    use pv_abi::guest;
    use pv_abi::psci::{EntryPoint, Mpidr};

    /// The vGICv3 every Tandem VM sees (IPAs): distributor, and vCPU n's redistributor at
    /// `GICR + n * GICR_STRIDE` with its SGI/PPI frame `SGI_FRAME` above it.
    const GICD: u64 = 0x0800_0000;
    const GICR: u64 = 0x080a_0000;
    const GICR_STRIDE: u64 = 0x2_0000;
    const SGI_FRAME: u64 = 0x1_0000;
    /// The EL1 virtual timer's PPI.
    const VTIMER_INTID: u32 = 27;
    /// Timer interrupts vCPU 0 waits for, and their period.
    const TICKS: u32 = 3;
    const PERIOD_MS: u64 = 10;

    static TIMER_IRQS: AtomicU32 = AtomicU32::new(0);
    static VCPU1_DONE: AtomicBool = AtomicBool::new(false);

    /// One 32-bit MMIO read. The vGIC is emulated on stage-2 faults, so every access must be
    /// a single `ldr`/`str` without writeback (Tandem needs the instruction syndrome): `asm!`
    /// guarantees it, where a volatile pointer access leaves the instruction to the compiler.
    fn mmio_read(addr: u64) -> u32 {
        let value: u32;
        // SAFETY: `addr` is a vGIC register of this VM (the constants above); no Rust object.
        unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack)) };
        value
    }

    fn mmio_write(addr: u64, value: u32) {
        // SAFETY: as in `mmio_read`.
        unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack)) };
    }

    /// GICv3 set-up for the virtual timer on vCPU `cpu`: affinity routing and group 1 on in
    /// the distributor, the redistributor awake, PPI 27 group 1 and enabled, and the CPU
    /// interface (ICC_* system registers) letting every priority through.
    fn gic_init(cpu: u64) {
        mmio_write(GICD, (1 << 4) | (1 << 1)); // GICD_CTLR: ARE_NS | EnableGrp1NS
        let rd = GICR + cpu * GICR_STRIDE;
        mmio_write(rd + 0x14, mmio_read(rd + 0x14) & !(1 << 1)); // GICR_WAKER.ProcessorSleep = 0
        while mmio_read(rd + 0x14) & (1 << 2) != 0 {} // wait for ChildrenAsleep = 0
        let sgi = rd + SGI_FRAME;
        let bit = 1 << VTIMER_INTID;
        mmio_write(sgi + 0x080, mmio_read(sgi + 0x080) | bit); // GICR_IGROUPR0: group 1
        let prio = sgi + 0x400 + u64::from(VTIMER_INTID / 4) * 4; // GICR_IPRIORITYR6
        let shift = (VTIMER_INTID % 4) * 8;
        mmio_write(prio, (mmio_read(prio) & !(0xff << shift)) | (0x80 << shift));
        mmio_write(sgi + 0x100, bit); // GICR_ISENABLER0
        // SAFETY: ICC_PMR_EL1 = 0xff (no priority masking) and ICC_IGRPEN1_EL1 = 1 (signal
        // group 1) only decide which interrupts reach this vCPU; the vectors are installed.
        unsafe {
            asm!("msr icc_pmr_el1, {}", "msr icc_igrpen1_el1, {}", "isb", in(reg) 0xffu64, in(reg) 1u64)
        };
    }

    /// Fires the virtual timer once, `PERIOD_MS` from now (CNTV_TVAL counts down).
    fn timer_arm() {
        let hz: u64;
        // SAFETY: reading CNTFRQ_EL0 has no side effect.
        unsafe { asm!("mrs {}, cntfrq_el0", out(reg) hz) };
        // SAFETY: programming this vCPU's own virtual timer; ENABLE = 1, IMASK = 0.
        unsafe {
            asm!("msr cntv_tval_el0, {}", "msr cntv_ctl_el0, {}", "isb", in(reg) hz * PERIOD_MS / 1000, in(reg) 1u64)
        };
    }

    fn power_off() -> ! {
        let Err(e) = guest::system_off();
        let _ = writeln!(guest::console(), "SYSTEM_OFF failed: {e}");
        loop {
            // SAFETY: `wfe` only waits.
            unsafe { asm!("wfe") };
        }
    }

    /// vCPU 0, from guest-rt's `_start` on its own stack (x0 = the device tree's IPA).
    #[unsafe(no_mangle)]
    extern "C" fn guest_main(dtb: u64) -> ! {
        // Discovery: Call UID must be Tandem's, then Revision's major must be 1. Before
        // that, nothing else may be called (on another hypervisor it would mean something else).
        let Ok(version) = guest::discover() else {
            power_off()
        };
        let mut out = guest::console(); // core::fmt::Write over CONSOLE_WRITE, every byte
        let _ = writeln!(
            out,
            "hello from Rust: Tandem ABI {version} (UUID {})",
            pv_abi::TANDEM_UUID
        );
        let Ok(me) = guest::vm_info() else {
            power_off()
        };
        let _ = writeln!(
            out,
            "VM {}, vCPU {} of {}, device tree at {dtb:#x}",
            me.vm_id, me.vcpu_id, me.vcpu_count
        );

        gic_init(0);
        timer_arm();
        while TIMER_IRQS.load(Ordering::Acquire) < TICKS {
            // SAFETY: unmask IRQs, then sleep until one (Tandem blocks the vCPU in WFI).
            unsafe { asm!("msr daifclr, #2", "wfi") };
        }
        // SAFETY: mask IRQs again: the timer is off and nothing else is expected.
        unsafe { asm!("msr daifset, #2") };
        let _ = writeln!(
            out,
            "{TICKS} virtual timer interrupts (INTID {VTIMER_INTID}), {PERIOD_MS} ms apart"
        );

        if me.vcpu_count > 1 {
            let started = guest::cpu_on(
                Mpidr::new(0, 0, 0, 1), // vCPU n has MPIDR Aff0 = n
                EntryPoint::new(guest_rt::secondary_entry()),
                0x1234, // arrives in x0, and as guest_secondary_main's argument
            );
            match started {
                Ok(()) => {
                    while !VCPU1_DONE.load(Ordering::Acquire) {
                        let _ = guest::yield_now(); // let vCPU 1 run if it shares our pCPU
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "CPU_ON failed: {e}");
                }
            }
        }
        let _ = writeln!(out, "bye: SYSTEM_OFF");
        power_off()
    }

    /// vCPU 1, started by CPU_ON at guest-rt's `guest_secondary_entry`, on its own stack.
    #[unsafe(no_mangle)]
    extern "C" fn guest_secondary_main(context_id: u64) -> ! {
        let vcpu = guest::vm_info().map_or(u64::MAX, |me| me.vcpu_id);
        let _ = writeln!(
            guest::console(),
            "hello from vCPU {vcpu} (PSCI CPU_ON, context id {context_id:#x})"
        );
        VCPU1_DONE.store(true, Ordering::Release);
        let Err(e) = guest::cpu_off(); // returns only if it failed
        let _ = writeln!(guest::console(), "CPU_OFF failed: {e}");
        power_off()
    }

    /// Every exception, from guest-rt's vectors: IRQs are acknowledged and ended at the
    /// vGIC's CPU interface; anything else is a bug, reported before powering off.
    #[unsafe(no_mangle)]
    extern "C" fn guest_exception(frame: *mut Frame, kind: u64, _ticks: u64) -> *mut Frame {
        if kind != KIND_IRQ {
            // SAFETY: the vectors pass the frame they saved on this stack.
            let elr = unsafe { (*frame).elr };
            let _ = writeln!(
                guest::console(),
                "unexpected exception (vector {kind:#x}) at {elr:#x}"
            );
            power_off();
        }
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the highest-priority pending interrupt.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
        if intid == u64::from(VTIMER_INTID) {
            // Tandem masked the timer (CNTV_CTL.IMASK) to inject it: re-arm, or turn it off.
            let n = TIMER_IRQS.load(Ordering::Relaxed) + 1;
            TIMER_IRQS.store(n, Ordering::Release);
            if n < TICKS {
                timer_arm();
            } else {
                // SAFETY: disables this vCPU's virtual timer.
                unsafe { asm!("msr cntv_ctl_el0, xzr", "isb") };
            }
        }
        if intid < 1020 {
            // SAFETY: ends (drops priority and deactivates) the interrupt acknowledged above.
            unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) intid) };
        }
        frame
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let _ = writeln!(guest::console(), "panic: {info}");
        power_off()
    }
}
