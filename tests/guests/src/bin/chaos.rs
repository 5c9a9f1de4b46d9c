//! `chaos`: a two-vCPU guest that attacks Tandem at random, driven by a seed, for as long as
//! it is told (`cargo xtask run --with-hostile --seed N`).
//!
//! Its device tree's `/chosen` gives `tandem,hostile-seed` and `tandem,hostile-ops`; from the
//! seed alone (splitmix64, one stream per boot and vCPU) it derives every act:
//!
//! - hypercalls: random function IDs from every SMCCC owner (Tandem's, PSCI, the Arm
//!   architecture calls, PV time, random ones, garbage upper halves) with random arguments,
//!   counted by result class;
//! - MMIO: loads and stores of 1, 2, 4 and 8 bytes, now and then unaligned, over its whole
//!   IPA space: the vGIC distributor and redistributors, its own RAM (stores only above its
//!   image, stack and vectors), the board's devices, the virtio and channel windows it does
//!   not have, past RAM and far above it;
//! - system registers: ID, debug, PMU, timer, GIC CPU-interface, trace, RAS, EL2 ones, read
//!   and (those that cannot wreck its own execution) written with random values;
//! - odd instructions: `hvc`/`smc`/`svc`/`brk`/`udf` with random immediates and unallocated
//!   encodings (written into a code slot and run), `wfi` on a short timer, `wfe`, cache, TLB
//!   and address-translation maintenance on random addresses;
//! - power calls: CPU_ON of its other vCPU racing that vCPU's own CPU_OFF, CPU_ON of itself,
//!   of vCPUs it does not have, with bad entry points, AFFINITY_INFO, PSCI_FEATURES;
//! - resets: boots 0..R-1 run a short burst on both vCPUs and end in PSCI SYSTEM_RESET from
//!   one vCPU while the other is busy; the boot number survives in the passed-through PL031's
//!   match register (Tandem clears RAM on a reset, not a passthrough device). The last boot runs
//!   the full count and prints the totals.
//!
//! Every exception it provokes comes to its own handler ([`rt::set_exception_hook`]), which
//! counts it and resumes after the instruction (an SVC's return address is already past it).
//! Interrupts stay masked except for a short window after each `wfi`.
//!
//! Output: `hostile: seed=N ops=N boot=K/R`, for a reset boot `hostile: boot K/R ... then
//! SYSTEM_RESET from vcpuN`, and at the end `hostile: counts ...` and `hostile: done ...`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "chaos: a Tandem test guest; it runs only on aarch64-unknown-none (cargo xtask run --with-hostile)"
    );
}

#[cfg(target_os = "none")]
mod guest {
    use core::arch::asm;
    use core::sync::atomic::{AtomicU64, Ordering};

    use aarch64_cpu::registers::{ESR_EL1, Readable};
    use pv_abi::psci;
    use test_guests::gic::{self, GICD_BASE, GICR_BASE, GICR_STRIDE};
    use test_guests::rt::{self, Frame};
    use test_guests::smccc::{hvc, regs, smc};
    use test_guests::{PHYS_RTC, RAM_BASE, RAM_END, fdt, println, timer};

    test_guests::entry!(main, secondary);

    /// Runs one act's instruction(s) (`asm!`'s arguments). Each use names, in a `Safe:`
    /// comment, why the act leaves every Rust object of this guest alone.
    macro_rules! act {
        ($($t:tt)*) => {
            // SAFETY: the acts are cache, TLB and address-translation maintenance (no data
            // changed) and loads and stores that `mmio` keeps off this guest's own memory;
            // a fault is counted and skipped by `on_exception`.
            unsafe { asm!($($t)*) }
        };
    }

    /// Marks the RTC match register as carrying a boot number (low 16 bits): "HS".
    const BOOT_MAGIC: u32 = 0x4853_0000;
    /// PL031 RTCMR: the match register.
    const RTC_MR: u64 = 0x04;
    /// Resets before the last boot (from the seed: 1..=MAX_RESETS).
    const MAX_RESETS: u64 = 3;

    /// What is counted, per vCPU (each vCPU writes only its own row).
    #[derive(Clone, Copy)]
    #[repr(usize)]
    enum C {
        Ops,
        HvcOk,
        HvcNotSupported,
        HvcInvalid,
        HvcOtherError,
        HvcPositive,
        MmioRead,
        MmioWrite,
        SysregRead,
        SysregWrite,
        Odd,
        Wfi,
        Power,
        CpuOnStarted,
        CpuOnRefused,
        CpuOff,
        Abort,
        Undefined,
        Brk,
        Svc,
        OtherException,
        Irq,
        SError,
    }
    const COUNTERS: usize = C::SError as usize + 1;

    static COUNTS: [[AtomicU64; COUNTERS]; 2] =
        [const { [const { AtomicU64::new(0) }; COUNTERS] }; 2];

    fn bump(c: C) {
        let slot = &COUNTS[rt::cpu_index()][c as usize];
        // Only this vCPU writes its row: no exclusive access needed (the MMU is off).
        slot.store(slot.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn total(c: C) -> u64 {
        COUNTS
            .iter()
            .map(|row| row[c as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// This boot's parameters, set by vCPU 0 before vCPU 1 first starts.
    static SEED: AtomicU64 = AtomicU64::new(0);
    static BOOT: AtomicU64 = AtomicU64::new(0);
    /// vCPU 1 stops at its next operation (1), or resets the VM there (2).
    static REQUEST: AtomicU64 = AtomicU64::new(0);
    const STOP: u64 = 1;
    const RESET: u64 = 2;
    /// Lowest RAM address a random store may hit: past the image, stacks and vectors.
    static SCRATCH: AtomicU64 = AtomicU64::new(RAM_END);
    /// Whether the VM has the PL031 (the boot number's keeper).
    static HAS_RTC: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C" {
        static __image_end: u8;
    }

    /// splitmix64: small, full-period, good enough to pick acts.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64, boot: u64, cpu: u64) -> Self {
            let mut r = Rng(seed ^ boot.wrapping_mul(0xa076_1d64_78bd_642f) ^ cpu << 56);
            r.next();
            r
        }
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn one_in(&mut self, n: u64) -> bool {
            self.below(n) == 0
        }
    }

    fn main(dtb: u64) -> ! {
        rt::set_exception_hook(on_exception);
        // SAFETY: Tandem puts the device tree at `dtb` (RAM base), whole, before the image;
        // only its header is read first, then `totalsize` bytes of it.
        let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
        let len = fdt::total_size(header).unwrap_or(0).min(64 * 1024);
        // SAFETY: as above: the whole tree, at most 64 KiB, below the image.
        let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, len) };
        let chosen = |name| fdt::child_property(blob, "chosen", name).and_then(fdt::as_u64);
        let (Some(seed), Some(ops)) = (chosen("tandem,hostile-seed"), chosen("tandem,hostile-ops"))
        else {
            println!("hostile: no tandem,hostile-seed/-ops in /chosen of the device tree");
            rt::power_off()
        };
        let has_rtc = fdt::find_compatible(blob, "arm,pl031").is_some();
        HAS_RTC.store(u64::from(has_rtc), Ordering::Relaxed);
        let image_end = (&raw const __image_end) as u64;
        SCRATCH.store(
            (image_end + 0x1_0000).next_multiple_of(0x1_0000),
            Ordering::Relaxed,
        );
        let resets = if has_rtc { 1 + seed % MAX_RESETS } else { 0 };
        let boot = if has_rtc {
            // SAFETY: the PL031 is this VM's passthrough device.
            let mr = unsafe { rt::load32(PHYS_RTC + RTC_MR) };
            if mr & 0xffff_0000 == BOOT_MAGIC {
                u64::from(mr & 0xffff).min(resets)
            } else {
                0
            }
        } else {
            0
        };
        SEED.store(seed, Ordering::Relaxed);
        BOOT.store(boot, Ordering::Relaxed);
        println!(
            "hostile: seed={seed} ops={ops} boot={boot}/{resets}{}",
            if has_rtc {
                ""
            } else {
                " (no PL031 to carry a boot number: no resets)"
            }
        );
        gic::distributor_on();
        let mut rng = Rng::new(seed, boot, 0);
        let start = timer::now();
        if boot < resets {
            reset_boot(&mut rng, boot, resets)
        }
        // The last boot: the full count, both vCPUs.
        start_other(&mut rng);
        while total(C::Ops) < ops {
            one_op(&mut rng, 0);
        }
        let ticks = timer::now() - start;
        stop_other();
        report(seed, resets, ticks);
        rt::power_off()
    }

    /// A reset boot: a short burst on both vCPUs, then SYSTEM_RESET from one of them while
    /// the other is busy.
    fn reset_boot(rng: &mut Rng, boot: u64, resets: u64) -> ! {
        start_other(rng);
        let burst = 2_000 + rng.below(3_000);
        while total(C::Ops) < burst {
            one_op(rng, 0);
        }
        // SAFETY: the PL031 is this VM's passthrough device; RTCMR only sets when its
        // (masked) alarm would fire.
        unsafe { rt::store32(PHYS_RTC + RTC_MR, BOOT_MAGIC | (boot + 1) as u32) };
        let from_other = boot % 2 == 1;
        println!(
            "hostile: boot {boot}/{resets} ops={} aborts={} undef={} then SYSTEM_RESET from vcpu{}",
            total(C::Ops),
            total(C::Abort),
            total(C::Undefined),
            u8::from(from_other)
        );
        if from_other {
            REQUEST.store(RESET, Ordering::Release);
            // Busy until vCPU 1 resets the VM (or, if it is off, turned on to do it).
            loop {
                if rng.one_in(64) {
                    start_other(rng);
                }
                one_op(rng, 0);
            }
        }
        let Err(e) = pv_abi::guest::system_reset();
        println!("hostile: SYSTEM_RESET failed: {e}");
        rt::power_off()
    }

    /// vCPU 1: random acts until told to stop or reset (or it turns itself off at random).
    fn secondary(_context: u64) -> ! {
        let boot = BOOT.load(Ordering::Relaxed);
        // A new stream on each start: its operations so far pick it.
        let done = COUNTS[1][C::Ops as usize].load(Ordering::Relaxed);
        let mut rng = Rng::new(SEED.load(Ordering::Relaxed) ^ done, boot, 1);
        loop {
            match REQUEST.load(Ordering::Acquire) {
                STOP => cpu_off(),
                RESET => {
                    let Err(e) = pv_abi::guest::system_reset();
                    println!("hostile: SYSTEM_RESET failed: {e}");
                    rt::power_off()
                }
                _ => {}
            }
            one_op(&mut rng, 1);
        }
    }

    fn cpu_off() -> ! {
        bump(C::CpuOff);
        let Err(e) = pv_abi::guest::cpu_off();
        println!("hostile: CPU_OFF failed: {e}");
        rt::park()
    }

    /// CPU_ON of vCPU 1 at the real entry point: started, or refused (already on, pending).
    fn start_other(rng: &mut Rng) {
        bump(C::Power);
        let ctx = rng.next();
        match rt::start_secondary(1, ctx) {
            Ok(()) => bump(C::CpuOnStarted),
            Err(_) => bump(C::CpuOnRefused),
        }
    }

    /// Asks vCPU 1 to stop and waits until it is off.
    fn stop_other() {
        REQUEST.store(STOP, Ordering::Release);
        for _ in 0..100_000 {
            let r = hvc(regs(psci::AFFINITY_INFO.to_reg(), &[1, 0]));
            if r[0] == 1 {
                return;
            }
            let _ = pv_abi::guest::yield_now();
        }
        println!("hostile: vcpu1 did not turn off");
    }

    fn report(seed: u64, resets: u64, ticks: u64) {
        let us = ticks * 1_000_000 / timer::hz().max(1);
        let hvc_classes = [
            C::HvcOk,
            C::HvcNotSupported,
            C::HvcInvalid,
            C::HvcOtherError,
            C::HvcPositive,
        ];
        let [ok, not_supported, invalid, other_error, positive] = hvc_classes.map(total);
        println!(
            "hostile: hvc ok={ok} not_supported={not_supported} invalid={invalid} \
             other_error={other_error} positive={positive}"
        );
        println!(
            "hostile: exceptions brk={} svc={} other={} serror={} irqs={} wfi={} \
             cpu_on={}/{} (started/refused) cpu_off={} time_us={us}",
            total(C::Brk),
            total(C::Svc),
            total(C::OtherException),
            total(C::SError),
            total(C::Irq),
            total(C::Wfi),
            total(C::CpuOnStarted),
            total(C::CpuOnRefused),
            total(C::CpuOff),
        );
        println!(
            "hostile: done seed={seed} ops={} hvc={} mmio_reads={} mmio_writes={} aborts={} \
             sysreg={} undef={} odd={} power={} resets={resets}",
            total(C::Ops),
            ok + not_supported + invalid + other_error + positive,
            total(C::MmioRead),
            total(C::MmioWrite),
            total(C::Abort),
            total(C::SysregRead) + total(C::SysregWrite),
            total(C::Undefined),
            total(C::Odd),
            total(C::Power),
        );
    }

    /// Aborts one vCPU may take per second of its own: Tandem stops a VM that takes
    /// `FAULT_STORM` (10 000) aborts on unmapped IPAs within one second (its defence, which
    /// this guest does not test); any 1-s window of Tandem's overlaps at most two of each
    /// vCPU's, so the VM stays under 2 × 2 × 2 400 = 9 600.
    const ABORTS_PER_SECOND: u64 = 2_400;

    /// Per vCPU: the start of its current second (counter ticks) and its aborts before it.
    static PACE: [[AtomicU64; 2]; 2] = [const { [const { AtomicU64::new(0) }; 2] }; 2];

    /// Sleeps to the end of this vCPU's second when it has used its abort budget.
    fn pace(cpu: usize) {
        let [start, base] = &PACE[cpu];
        let aborts = COUNTS[cpu][C::Abort as usize].load(Ordering::Relaxed);
        let (now, hz) = (timer::now(), timer::hz());
        let since = start.load(Ordering::Relaxed);
        if now.saturating_sub(since) >= hz {
            start.store(now, Ordering::Relaxed);
            base.store(aborts, Ordering::Relaxed);
        } else if aborts - base.load(Ordering::Relaxed) >= ABORTS_PER_SECOND {
            sleep_until(cpu, since + hz);
            start.store(timer::now(), Ordering::Relaxed);
            base.store(aborts, Ordering::Relaxed);
        }
    }

    /// WFI on the virtual timer until CNTVCT reaches `deadline`.
    fn sleep_until(cpu: usize, deadline: u64) {
        while timer::now() < deadline {
            repair_interrupts(cpu);
            timer::arm_at(deadline);
            rt::wfi();
            take_pending();
        }
        timer::disable();
    }

    /// A short window with interrupts unmasked: the pending ones are taken.
    fn take_pending() {
        rt::irq_enable();
        // SAFETY: a pause for pending interrupts to be taken.
        unsafe { asm!("isb", "nop", "nop", options(nomem, nostack)) };
        rt::irq_disable();
    }

    /// One random act of vCPU `cpu`.
    fn one_op(rng: &mut Rng, cpu: usize) {
        pace(cpu);
        bump(C::Ops);
        match rng.below(100) {
            0..=29 => mmio(rng),
            30..=54 => hypercall(rng),
            55..=79 => sysreg(rng),
            80..=94 => odd(rng, cpu),
            _ => power(rng, cpu),
        }
    }

    // --- the exception handler -------------------------------------------------------

    /// Every exception: counted; a synchronous one resumes after the instruction.
    fn on_exception(frame: &mut Frame, kind: u64) -> bool {
        match kind {
            guest_rt::KIND_SYNC => {
                let ec = (ESR_EL1.get() >> 26) & 0x3f;
                match ec {
                    // SVC: ELR_EL1 is already the next instruction.
                    0x15 => {
                        bump(C::Svc);
                        return true;
                    }
                    0x00 => bump(C::Undefined),
                    0x24 | 0x25 => bump(C::Abort),
                    0x3c => bump(C::Brk),
                    _ => bump(C::OtherException),
                }
                frame.elr += 4;
                true
            }
            guest_rt::KIND_IRQ => {
                irq();
                true
            }
            guest_rt::KIND_FIQ => {
                // A group-0 interrupt (random GIC writes can make one): acknowledge, end.
                let iar: u64;
                // SAFETY: acknowledges and ends the group-0 interrupt that was signalled.
                unsafe {
                    asm!("mrs {0}, icc_iar0_el1", "msr icc_eoir0_el1, {0}", "isb", out(reg) iar, options(nomem, nostack));
                }
                let _ = iar;
                bump(C::Irq);
                true
            }
            guest_rt::KIND_SERROR => {
                bump(C::SError);
                true
            }
            _ => false,
        }
    }

    fn irq() {
        let iar: u64;
        // SAFETY: acknowledges the signalled interrupt; it is ended below.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nomem, nostack)) };
        let intid = iar & 0xff_ffff;
        if intid >= 1020 {
            return;
        }
        if intid == u64::from(timer::VTIMER_INTID) {
            // The virtual timer is level: off, or it would fire again at once.
            // SAFETY: disables this vCPU's virtual timer.
            unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
        }
        // SAFETY: ends the interrupt acknowledged above (EOImode 0: also deactivates it).
        unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nomem, nostack)) };
        bump(C::Irq);
    }

    // --- hypercalls ------------------------------------------------------------------

    /// A random SMCCC function ID, never one that would end the act's meaning: CPU_OFF,
    /// CPU_ON, SYSTEM_OFF/RESET/RESET2 and CRASH are the power acts' and the resets' own.
    fn random_fid(rng: &mut Rng) -> u64 {
        loop {
            let n = rng.below(0x20);
            let fid = match rng.below(9) {
                0 | 1 => 0xC600_0000 + n,
                2 => 0x8600_0000 + n,
                3 => 0x8400_0000 + n,
                4 => 0xC400_0000 + n,
                5 => [
                    0x8000_0000,
                    0x8000_0001,
                    0x8000_8000,
                    0x8000_7fff,
                    0x8000_3fff,
                    0xC500_0020,
                    0xC500_0021,
                    0x8000_0002,
                ][rng.below(8) as usize],
                6 => rng.next(),
                7 => rng.next() << 32 | (0xC600_0000 + n),
                _ => {
                    (0x8000_0000 | rng.below(0x40) << 24 | rng.below(0x10000)) | rng.below(2) << 30
                }
            };
            let w = (fid as u32 | 0x4000_0000) & 0xff00_ffff;
            let forbidden = [
                0xC400_0002, // CPU_OFF
                0xC400_0003, // CPU_ON
                0xC400_0008, // SYSTEM_OFF
                0xC400_0009, // SYSTEM_RESET
                0xC400_0012, // SYSTEM_RESET2
                0xC600_0006, // CRASH
            ];
            if !forbidden.contains(&w) {
                return fid;
            }
        }
    }

    /// Arguments for `fid`: random, but CONSOLE_WRITE never prints (length 0 or too long)
    /// and WATCHDOG is only ever disarmed.
    fn random_args(rng: &mut Rng, fid: u64) -> [u64; 8] {
        let mut x = [0u64; 8];
        x[0] = fid;
        for a in &mut x[1..] {
            *a = match rng.below(4) {
                0 => 0,
                1 => rng.below(16),
                2 => RAM_BASE + rng.below(RAM_END - RAM_BASE),
                _ => rng.next(),
            };
        }
        match (fid as u32 | 0x4000_0000) & 0xff00_ffff {
            0xC600_0002 if x[1] <= 48 => x[1] = 0,
            0xC600_0007 => x[1] = 0,
            _ => {}
        }
        x
    }

    fn count_result(r: [u64; 4]) {
        match r[0] as u32 as i32 {
            0 => bump(C::HvcOk),
            -1 => bump(C::HvcNotSupported),
            -2 | -3 => bump(C::HvcInvalid),
            e if e < 0 => bump(C::HvcOtherError),
            _ => bump(C::HvcPositive),
        }
    }

    fn hypercall(rng: &mut Rng) {
        let fid = random_fid(rng);
        count_result(hvc(random_args(rng, fid)));
    }

    // --- MMIO --------------------------------------------------------------------------

    /// A random IPA: the vGIC, its RAM, the board's devices, windows it does not have.
    fn random_ipa(rng: &mut Rng) -> u64 {
        match rng.below(10) {
            0 | 1 => GICD_BASE + rng.below(0x1_0000),
            // Both vCPUs' redistributors, and the frames of one more that does not exist.
            2 | 3 => GICR_BASE + rng.below(3 * GICR_STRIDE),
            4 => RAM_BASE + rng.below(RAM_END - RAM_BASE),
            5 => {
                let scratch = SCRATCH.load(Ordering::Relaxed);
                scratch + rng.below(RAM_END - scratch)
            }
            // Flash, the UART, the RTC, GPIO, virtio-mmio, PCIe windows ...
            6 => rng.below(0x4000_0000),
            7 => 0x0900_0000 + rng.below(0x0200_0000),
            // The channel area (no channel here), and the rest below 4 GiB.
            8 => RAM_END + rng.below(0x1_0000_0000 - RAM_END),
            _ => rng.next() & ((1 << (32 + rng.below(17))) - 1),
        }
    }

    /// Whether a store to `addr` leaves this guest's own code, data and stacks alone and
    /// the boot number in the RTC's match register.
    fn may_store(addr: u64) -> bool {
        let in_ram = (RAM_BASE..RAM_END).contains(&addr);
        let rtc =
            (PHYS_RTC..PHYS_RTC + 0x1000).contains(&addr) && HAS_RTC.load(Ordering::Relaxed) != 0;
        !rtc && (!in_ram || addr >= SCRATCH.load(Ordering::Relaxed))
    }

    fn mmio(rng: &mut Rng) {
        let size_log = rng.below(4);
        let mut addr = random_ipa(rng);
        if !rng.one_in(8) {
            addr &= !((1 << size_log) - 1);
        }
        let store = rng.one_in(2) && may_store(addr & !7);
        if store {
            bump(C::MmioWrite);
            let v = rng.next();
            // Safe: `may_store` keeps stores off this guest's image, data, stacks and
            // vectors and off the RTC; anywhere else the store either lands in scratch RAM
            // or a device (no Rust object) or faults, and the handler skips it.
            match size_log {
                0 => {
                    act!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack))
                }
                1 => {
                    act!("strh {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack))
                }
                2 => {
                    act!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack))
                }
                _ => act!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)),
            }
        } else {
            bump(C::MmioRead);
            let v: u64;
            // Safe: a load changes no memory (a read of a device register may change the
            // device: only the vGIC's and the RTC's are reachable); a fault is skipped.
            match size_log {
                0 => {
                    act!("ldrb {v:w}, [{a}]", a = in(reg) addr, v = lateout(reg) v, options(nostack, readonly))
                }
                1 => {
                    act!("ldrh {v:w}, [{a}]", a = in(reg) addr, v = lateout(reg) v, options(nostack, readonly))
                }
                2 => {
                    act!("ldr {v:w}, [{a}]", a = in(reg) addr, v = lateout(reg) v, options(nostack, readonly))
                }
                _ => {
                    act!("ldr {v}, [{a}]", a = in(reg) addr, v = lateout(reg) v, options(nostack, readonly))
                }
            }
            let _ = v;
        }
    }

    // --- system registers --------------------------------------------------------------

    macro_rules! reads {
        ($($reg:literal),* $(,)?) => {
            [$(
                (|| {
                    let v: u64;
                    // SAFETY: a read of a system register changes nothing (ICC_IAR1 is not in
                    // this list); an UNDEFINED one is counted and skipped by the handler.
                    unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
                    v
                }) as fn() -> u64
            ),*]
        };
    }

    macro_rules! writes {
        ($($reg:literal),* $(,)?) => {
            [$(
                (|v: u64| {
                    // SAFETY: none of these registers steers this guest's own execution
                    // (translation, vectors, FP access, debug enables); the GIC CPU-interface
                    // ones are put back by `repair_interrupts` before interrupts are let in;
                    // an UNDEFINED one is counted and skipped by the handler.
                    unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nomem, nostack)) };
                }) as fn(u64)
            ),*]
        };
    }

    /// Registers read at random: ID, cache, timer, debug, PMU, GIC CPU interface, trace,
    /// AMU, RAS, LOR, SPE, SVE ID, IMPLEMENTATION DEFINED, EL2 and EL3 ones.
    const READS: [fn() -> u64; 56] = reads!(
        "midr_el1",
        "mpidr_el1",
        "revidr_el1",
        "id_aa64pfr0_el1",
        "id_aa64pfr1_el1",
        "id_aa64dfr0_el1",
        "id_aa64dfr1_el1",
        "id_aa64isar0_el1",
        "id_aa64isar1_el1",
        "s3_0_c0_c6_2",
        "id_aa64mmfr0_el1",
        "id_aa64mmfr1_el1",
        "s3_0_c0_c7_2",
        "s3_0_c0_c4_4",
        "s3_0_c0_c3_7",
        "id_pfr0_el1",
        "id_dfr0_el1",
        "ctr_el0",
        "dczid_el0",
        "clidr_el1",
        "ccsidr_el1",
        "aidr_el1",
        "cntfrq_el0",
        "cntvct_el0",
        "cntpct_el0",
        "cntv_ctl_el0",
        "cntp_ctl_el0",
        "cntp_cval_el0",
        "cntp_tval_el0",
        "cntkctl_el1",
        "actlr_el1",
        "par_el1",
        "mdscr_el1",
        "mdccsr_el0",
        "oslsr_el1",
        "dbgbvr0_el1",
        "dbgwcr1_el1",
        "dbgauthstatus_el1",
        "mdrar_el1",
        "pmcr_el0",
        "pmccntr_el0",
        "pmuserenr_el0",
        "icc_pmr_el1",
        "icc_rpr_el1",
        "icc_hppir1_el1",
        "icc_ctlr_el1",
        "icc_sre_el1",
        "s2_1_c0_c8_7",
        "s3_3_c13_c2_0",
        "s3_0_c5_c3_0",
        "s3_0_c10_c4_7",
        "s3_0_c9_c10_7",
        "s3_1_c15_c0_0",
        "ich_vtr_el2",
        "hcr_el2",
        "scr_el3",
    );

    /// Registers written at random values. ICC_BPR1_EL1 is written apart, with its RES0 bits
    /// clear: QEMU 10.0 keeps the low 3 bits of a write's low 32 (not the minimum it
    /// enforces) and later aborts on the resulting BPR of 0 (`icv_gprio_mask: Assertion
    /// 'bpr > 0'`), an emulator bug no CPU has.
    const WRITES: [fn(u64); 33] = writes!(
        "tpidr_el0",
        "tpidr_el1",
        "tpidrro_el0",
        "contextidr_el1",
        "par_el1",
        "afsr0_el1",
        "afsr1_el1",
        "far_el1",
        "cntv_cval_el0",
        "cntv_ctl_el0",
        "cntp_ctl_el0",
        "cntp_cval_el0",
        "cntp_tval_el0",
        "cntkctl_el1",
        "actlr_el1",
        "dbgbvr0_el1",
        "dbgbcr0_el1",
        "dbgwvr0_el1",
        "dbgwcr0_el1",
        "oslar_el1",
        "dbgclaimset_el1",
        "pmcr_el0",
        "pmcntenset_el0",
        "pmuserenr_el0",
        "icc_pmr_el1",
        "icc_sgi1r_el1",
        "icc_asgi1r_el1",
        "icc_sgi0r_el1",
        "icc_eoir1_el1",
        "icc_dir_el1",
        "s3_3_c13_c2_0",
        "ich_lr0_el2",
        "vttbr_el2",
    );

    fn sysreg(rng: &mut Rng) {
        match rng.below(8) {
            0..=3 => {
                bump(C::SysregRead);
                let _ = READS[rng.below(READS.len() as u64) as usize]();
            }
            4..=6 => {
                bump(C::SysregWrite);
                let v = match rng.below(3) {
                    0 => rng.below(2),
                    1 => rng.below(0x100),
                    _ => rng.next(),
                };
                if rng.one_in(WRITES.len() as u64 + 1) {
                    // SAFETY: the binary point only groups priorities; `repair_interrupts`
                    // sets it back before interrupts are let in.
                    unsafe {
                        asm!("msr icc_bpr1_el1, {}", "isb", in(reg) v & 7, options(nomem, nostack))
                    };
                } else {
                    WRITES[rng.below(WRITES.len() as u64) as usize](v);
                }
            }
            _ => {
                // Acknowledge whatever is pending (with interrupts masked) and end it.
                bump(C::SysregRead);
                bump(C::SysregWrite);
                // SAFETY: ICC_IAR1 then ICC_EOIR1 with its value: an acknowledged interrupt
                // is ended at once; a spurious INTID's EOI is ignored.
                unsafe {
                    asm!("mrs {0}, icc_iar1_el1", "msr icc_eoir1_el1, {0}", "isb", out(reg) _, options(nomem, nostack));
                }
            }
        }
    }

    // --- odd instructions --------------------------------------------------------------

    /// One code slot per vCPU: a random instruction, then `ret`.
    #[repr(C, align(64))]
    struct Slot([u32; 16]);
    static mut SLOTS: [Slot; 2] = [const { Slot([0; 16]) }; 2];

    const RET: u32 = 0xd65f_03c0;

    /// Runs `word` (one instruction that ends in an exception or falls through) with
    /// `x0 = x0`; returns x0 afterwards.
    fn run_word(word: u32, x0: u64) -> u64 {
        let slot = (&raw mut SLOTS)
            .cast::<Slot>()
            .wrapping_add(rt::cpu_index())
            .cast::<u32>();
        // SAFETY: this vCPU's own slot, which only it writes and runs.
        unsafe { slot.write_volatile(word) };
        // SAFETY: as above: `ret` after the instruction.
        unsafe { slot.wrapping_add(1).write_volatile(RET) };
        // SAFETY: both words made visible to instruction fetch before the branch (cache
        // maintenance of this guest's own slot).
        unsafe {
            asm!(
                "dc cvau, {s}",
                "dsb ish",
                "ic ivau, {s}",
                "dsb ish",
                "isb",
                s = in(reg) slot,
                options(nostack),
            );
        }
        let mut x0 = x0;
        // SAFETY: the slot holds one of `odd`'s instructions (an exception the handler
        // resumes after, a hypercall with a permitted ID and x1 = 0, so that CONSOLE_WRITE
        // prints nothing and WATCHDOG disarms) and `ret`; the call clobbers what a C call may.
        unsafe {
            asm!("blr {s}", s = in(reg) slot, inout("x0") x0, inout("x1") 0u64 => _, clobber_abi("C"), options(nostack));
        }
        x0
    }

    fn odd(rng: &mut Rng, cpu: usize) {
        bump(C::Odd);
        let imm = rng.below(0x1_0000) as u32;
        match rng.below(16) {
            0 => {
                let fid = random_fid(rng);
                count_result(smc(random_args(rng, fid)));
            }
            // HVC #imm / SMC #imm, imm random: answered or UNDEFINED.
            1 => {
                let fid = random_fid(rng);
                count_result([run_word(0xd400_0002 | imm << 5, fid), 0, 0, 0]);
            }
            2 => {
                let fid = random_fid(rng);
                count_result([run_word(0xd400_0003 | imm << 5, fid), 0, 0, 0]);
            }
            3 => {
                run_word(0xd400_0001 | imm << 5, 0); // SVC #imm
            }
            4 => {
                run_word(0xd420_0000 | imm << 5, 0); // BRK #imm
            }
            5 => {
                run_word(imm, 0); // UDF #imm
            }
            // The unallocated top-level encoding space (op0 = 0b0001 in bits 28:25).
            6 => {
                let w = (rng.next() as u32 & !(0xf << 25)) | 0b0001 << 25;
                run_word(w, 0);
            }
            7 | 8 => wait_for_timer(rng, cpu),
            9 => {
                // SAFETY: SEVL then WFE: the event is set, so WFE returns (or traps).
                unsafe { asm!("sevl", "wfe", "yield", options(nomem, nostack)) };
            }
            10 => {
                let a = random_ipa(rng);
                // Safe: cache maintenance by address: clean (and invalidate, which with
                // stage 2 on is clean+invalidate) of whatever is there; a fault is skipped.
                match rng.below(3) {
                    0 => act!("dc civac, {}", in(reg) a, options(nostack)),
                    1 => act!("dc cvac, {}", in(reg) a, options(nostack)),
                    _ => act!("dc ivac, {}", in(reg) a, options(nostack)),
                }
            }
            11 => {
                let scratch = SCRATCH.load(Ordering::Relaxed);
                let a = scratch + rng.below(RAM_END - scratch);
                // SAFETY: zeroes a block of scratch RAM (no Rust object) or faults (Device
                // memory with the MMU off), which the handler skips.
                unsafe { asm!("dc zva, {}", in(reg) a, options(nostack)) };
            }
            12 => {
                let a = random_ipa(rng);
                // Safe: instruction-cache invalidation changes no data.
                match rng.below(3) {
                    0 => act!("ic ivau, {}", in(reg) a, options(nostack)),
                    1 => act!("ic iallu", options(nostack)),
                    _ => act!("ic ialluis", options(nostack)),
                }
            }
            13 => {
                let a = rng.next();
                // Safe: TLB invalidation with the MMU off changes nothing this guest uses.
                match rng.below(4) {
                    0 => act!("tlbi vmalle1", "dsb ish", options(nostack)),
                    1 => act!("tlbi vae1, {}", "dsb ish", in(reg) a, options(nostack)),
                    2 => act!("tlbi vmalle1is", "dsb ish", options(nostack)),
                    _ => act!("tlbi aside1is, {}", "dsb ish", in(reg) a, options(nostack)),
                }
            }
            14 => {
                let a = rng.next();
                // Safe: address translation only writes PAR_EL1.
                match rng.below(3) {
                    0 => act!("at s1e1r, {}", "isb", in(reg) a, options(nostack)),
                    1 => act!("at s1e1w, {}", "isb", in(reg) a, options(nostack)),
                    _ => act!("at s1e0r, {}", "isb", in(reg) a, options(nostack)),
                }
            }
            _ => {
                let sw = rng.next() & 0xffff_fffe;
                // Safe: set/way maintenance (Tandem makes it a no-op): cleans or
                // invalidates a line of a cache this guest does not use (MMU off).
                match rng.below(3) {
                    0 => act!("dc isw, {}", in(reg) sw, options(nostack)),
                    1 => act!("dc csw, {}", in(reg) sw, options(nostack)),
                    _ => act!("dc cisw, {}", in(reg) sw, options(nostack)),
                }
            }
        }
    }

    /// Puts back what random GIC writes may have taken away from this vCPU's virtual
    /// timer interrupt: the distributor on, the redistributor awake, the PPI group 1,
    /// enabled, not active, with a priority the mask lets through.
    fn repair_interrupts(cpu: usize) {
        gic::distributor_on();
        let rd = gic::redistributor(cpu);
        rd.write32(0x0014, 0); // GICR_WAKER
        let sgi = gic::sgi_frame(cpu);
        sgi.write32(0x0380, u32::MAX); // GICR_ICACTIVER0
        gic::enable_private(cpu, timer::VTIMER_INTID, 0x80);
        gic::cpu_interface_on();
        // SAFETY: no active priority left from random writes.
        unsafe { asm!("msr icc_ap1r0_el1, xzr", "isb", options(nomem, nostack)) };
    }

    /// WFI until the virtual timer fires a few µs ahead, then the interrupts that are
    /// pending are taken (a short unmasked window).
    fn wait_for_timer(rng: &mut Rng, cpu: usize) {
        bump(C::Wfi);
        repair_interrupts(cpu);
        let ticks = 1 + rng.below(timer::hz() / 10_000 + 1);
        timer::arm_at(timer::now() + ticks);
        rt::wfi();
        take_pending();
        timer::disable();
    }

    // --- power -------------------------------------------------------------------------

    fn power(rng: &mut Rng, cpu: usize) {
        bump(C::Power);
        let entry = rt::secondary_entry();
        let r = match rng.below(10) {
            0..=2 if cpu == 0 => {
                start_other(rng);
                return;
            }
            // vCPU 1 turns itself off (vCPU 0 turns it back on).
            0..=1 => cpu_off(),
            3 => hvc(regs(psci::CPU_ON.to_reg(), &[cpu as u64, entry, 0])),
            4 => hvc(regs(
                psci::CPU_ON.to_reg(),
                &[2 + rng.below(1 << 20), entry, 0],
            )),
            // Entry points outside RAM, or unaligned: refused before anything starts.
            5 => {
                let bad = if rng.one_in(2) {
                    RAM_END + rng.below(1 << 30)
                } else {
                    entry + 1 + rng.below(3)
                };
                hvc(regs(psci::CPU_ON.to_reg(), &[1, bad, 0]))
            }
            6 => hvc(regs(
                psci::AFFINITY_INFO.to_reg(),
                &[rng.below(3), rng.below(2)],
            )),
            7 => hvc(regs(psci::PSCI_FEATURES.to_reg(), &[random_fid(rng)])),
            // CPU_SUSPEND (standby): not offered.
            8 => hvc(regs(0xC400_0001, &[0, entry, 0])),
            // The SMC32 CPU_ON with garbage in the upper halves of its arguments.
            _ => hvc(regs(
                0x8400_0003,
                &[0xdead_0000_0000_0000 | (cpu as u64), entry, 0],
            )),
        };
        count_result(r);
    }
}
