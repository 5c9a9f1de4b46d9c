//! `probe`: proves Tandem's guest path from inside a two-vCPU VM.
//!
//! Suites, in order (each check prints `[T] suite::name PASS|FAIL (detail)`):
//! - `hvc`: discovery (Call UID, Revision) and `VM_INFO`;
//! - `psci`: versions and features, AFFINITY_INFO, CPU_ON of vCPU 1 (which prints
//!   `vcpu1 online ctx=…` and checks `VM_INFO`), ALREADY_ON, bad MPIDR, CPU_OFF, bad entry
//!   point, CPU_ON again;
//! - `vgic`: distributor and redistributor ID registers, byte-wide IPRIORITYR writes,
//!   GICR_WAKER, an SGI to vCPU 1 and one to self; on a GICv2 machine instead the GICv2
//!   distributor's ID, banked SGI/PPI registers and ITARGETSR, and SGIs through GICD_SGIR
//!   (to vCPU 1 with its source in GICC_IAR, to self by list and by the self filter);
//! - `vtimer`: ten 1 ms deadlines (arrival, never early, latency), then one while in WFI;
//! - `stage2`: the last word of RAM works; loads and stores past RAM and to the UART get an
//!   injected synchronous external abort;
//! - `passthrough`: the PL031 RTC Tandem passes through (vms.toml) is really there (PrimeCell
//!   IDs, a plausible time); two rounds of "match in 1 s" each deliver its level-sensitive
//!   SPI (INTID 34) through the vGIC once, and not again after the handler clears it
//!   (`passthrough-latency: round=N ticks=T ns=X` after the match instant);
//! - the null-hypercall round trip: `hvc-roundtrip: calls=100000 ticks=T ns_per_call=X`
//!   (Tandem VERSION through `pv_abi`'s Rust call, loop included; kept for continuity);
//! - `exit_cost`: Tandem's exit-path figures (issue 8), see below.
//!
//! Then `N passed, N failed` and PSCI SYSTEM_OFF.
//!
//! # The shared layout: restarts and resets over three boots
//!
//! When its device tree's `model` says it runs as the `probe-shared` VM
//! (platforms/qemu-virt/vms.toml: vCPU 1's pCPU is time-shared with another VM), the probe
//! skips `exit_cost` (the other VM's instructions advance the same `-icount` clock, so the
//! figures would not be Tandem's alone) and, instead of powering off, checks Tandem's
//! restarts (issue 8, item 5; `tests/tests/guest_restarts.rs`):
//! - boot 1, `restart`: vCPU 1 writes markers into state Tandem switches between vCPUs
//!   ([`el1`]: EL1 thread registers, the virtual timer, the vGIC CPU interface, FPCR), turns
//!   itself off, and vCPU 0 starts it again, at once (its old state may still be in the
//!   pCPU) or 20 ms later (the other VM ran there meanwhile): each new life must read all
//!   of it as 0 at entry. Then both vCPUs, markers written, call SYSTEM_RESET at once;
//! - boot 2, `reset`: there was one reset (Tandem's log says so), RAM was cleared after both
//!   vCPUs stopped (canaries written just before the calls, and again if a call returned,
//!   are gone), vCPU 1 is off, and both vCPUs enter fresh. Then vCPU 1 is turned off, and
//!   vCPU 0 calls CPU_ON(vCPU 1) and at once SYSTEM_RESET;
//! - boot 3, `race`: the CPU_ON did not survive the reset (vCPU 1 stays off and never
//!   reports in); vCPU 1 starts fresh when asked again. Then `N passed, N failed` over all
//!   three boots.
//!
//! A VM reset clears RAM but leaves the passed-through PL031 alone, so its match register
//! (RTCMR; harmless while RTCIMSC masks the alarm) carries the boot number, the check
//! counts and two hypercall counts across the resets ([`Phase`]); the probe zeroes it at the
//! end. The `reset-race:` lines say whether vCPU 1's SYSTEM_RESET reached Tandem before the
//! reset stopped it (then Tandem coalesced the two requests) and whether the racing CPU_ON
//! started vCPU 1 before the reset took it: which way each race went depends on where the
//! emulator switched CPUs, so these lines inform and do not check.
//!
//! # Exit-cost lines
//!
//! One line per figure, machine-readable:
//!
//! ```text
//! exit-cost: path=<path> iterations=<N> ns_per_op=<X.Y>[ <key>=<value>]...
//! ```
//!
//! `path` names the exit path, `iterations` is how many operations the figure averages over,
//! `ns_per_op` is the figure in nanoseconds with one decimal, truncated. Further `key=value`
//! fields explain it and may change; tools key on `path` and `ns_per_op` only. Under the
//! system tests' `-icount shift=0,sleep=off` one instruction is one nanosecond, so a figure
//! is a path length in instructions (cortex-a72: the counter ticks every 16 instructions,
//! hence the averaging). `tests/figures/exit-costs.toml` holds the committed figures that
//! `tests/tests/guest_probe.rs` holds them to.
//!
//! | `path` | operation | `iterations` | `ns_per_op` |
//! |---|---|---|---|
//! | `smccc-version` | `hvc #0` with x0 = SMCCC_VERSION (0x8000_0000), answered by Tandem | 100,000 | `gross_ns_per_op - loop_ns_per_op` |
//! | `tandem-version` | `hvc #0` with x0 = Tandem's VERSION (0xc600_0000) | 100,000 | as above |
//! | `gicd-read` | a 32-bit load of GICD_TYPER (0x0800_0004), a stage-2 data abort Tandem emulates | 20,000 | as above |
//! | `gicd-write` | a 32-bit store to GICD_IPRIORITYR (INTIDs 32..35) of the value it holds, a stage-2 data abort Tandem emulates | 20,000 | as above |
//! | `vtimer-latency` | the virtual timer's condition becoming true while the vCPU runs → the guest's IRQ vector | 64 (4 × 16 start phases) | mean of dithered samples |
//! | `sgi-self` | an SGI to the sending vCPU (ICC_SGI1R_EL1; GICD_SGIR on a GICv2), trapped → its IRQ vector | 1,024 (64 × 16) | as above |
//! | `virtual-ipi` | an SGI from vCPU 0 to vCPU 1, asleep in WFI on the other pCPU → vCPU 1's IRQ vector | 1,024 | as above |
//! | `passthrough-irq` | the passed-through PL031 raising its SPI while the vCPU runs → the guest's IRQ vector | 1,024 | as above |
//!
//! The sampled paths also print `median_ns`, `p99_ns`, `min_ns` and `max_ns`: statistics of
//! the samples, each a whole number of 16 ns ticks, so they bracket the exact mean.
//!
//! The round trips are timed over `asm!` loops of fixed shape (`test_guests::bench`), IRQs
//! masked: `gross_ns_per_op` is the loop's time per iteration, which includes the loop's own
//! instructions (5 for the hypercalls: `mov x0`, `hvc`, `add`, `subs`, `b.ne`; 4 for the
//! load: `ldr`, `add`, `subs`, `b.ne`), and `loop_ns_per_op` is the same loop with the
//! exiting instruction replaced by an ordinary one (`nop`; a load from RAM), timed the same
//! way (5.0 and 4.0 under icount). `ns_per_op` is their difference: what the exit adds to
//! one ordinary instruction, that is Tandem's instructions from its vector to its `eret`
//! plus QEMU's accounting of the trap, the exception entry and the return (at most about
//! one instruction each).
//!
//! An interrupt's latency cannot be looped, and repeating it does not refine a 16 ns counter
//! under icount (every sample reads the same whole number of ticks; the `vtimer` suite's ten
//! deadlines all print the same `ticks`). So `vtimer-latency` dithers: each sample first
//! sleeps in WFI until a deadline (which leaves it a fixed number of instructions past a
//! tick boundary), waits `k` more instructions, reads the counter, and enables the timer
//! with its compare value in the past; the guest's IRQ vector reads the counter again as its
//! third instruction. Samples with `k` = 0..15, four times over, start once at every
//! instruction of a tick per sweep, so their mean is the exact instruction count although
//! each sample is a multiple of 16 (`min_ns`, `max_ns`). It counts from one instruction
//! before the condition holds (the enabling `msr`) to the vector's counter read (after two
//! vector instructions), through the same Tandem path as a deadline reached while the vCPU
//! runs; the `exit_cost::vtimer_latency` check confirms it lies within the `vtimer` suite's
//! deadline latencies (`deadline_ns`, 16 ns resolution) give or take a tick.
//!
//! The other interrupt paths are sampled the same way ([`bench::dithered_start`]), with a
//! different instruction starting them:
//!
//! - `sgi-self`: the SGI register write. Tandem traps it, makes the SGI pending for the
//!   sender and returns; the guest takes the IRQ through a list register.
//! - `virtual-ipi`: the same write naming vCPU 1, which sleeps in WFI in `secondary`'s loop
//!   (it wakes with IRQs masked and unmasks them with its next instruction). The counter read
//!   at vCPU 1's vector ends the sample: Tandem's trap on pCPU 0, the vGIC and the kick SGI
//!   to pCPU 1, pCPU 1 leaving its idle WFI, entering vCPU 1 with the SGI in a list
//!   register. Under -icount QEMU runs the pCPUs in turn on one timeline, so whatever pCPU 0
//!   executes between the kick and QEMU's switch to pCPU 1 is counted too; on hardware the
//!   two run in parallel.
//! - `passthrough-irq`: a store of RTCDR's value to the passed-through PL031's RTCMR. QEMU's
//!   PL031 raises its interrupt within that store when the match equals the count
//!   (`pl031_set_alarm`, hw/rtc/pl031.c), so the store is the device's raise instant: the
//!   physical SPI 34 at EL2 while the vCPU runs, Tandem's injection of it as a
//!   hardware-linked list register, the return, the guest's exception entry. (A sample whose
//!   RTCDR ticked between its read and the store gets no interrupt and is taken again.)
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "probe: a Tandem test guest; it runs only on aarch64-unknown-none (cargo xtask build --vms probe)"
    );
}

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use pv_abi::psci::{self, AFFINITY_INFO, CPU_ON, CPU_SUSPEND, PSCI_FEATURES, PSCI_VERSION};
    use pv_abi::smccc::{SMCCC_VERSION, SMCCC_VERSION_1_1};
    use pv_abi::{FunctionId, HvcArgs, HypercallId, StatId};
    use test_guests::bench::{self, Timed};
    use test_guests::esr::EC_DATA_ABORT_SAME_EL;
    use test_guests::gic::{self, GICD_BASE, gicd, gicd2, gicr, sgi};
    use test_guests::harness::Harness;
    use test_guests::smccc::{hvc, regs, w0};
    use test_guests::units::Deci;
    use test_guests::{
        PHYS_RTC, PHYS_UART, RAM_BASE, RAM_END, check, fdt, println, rt, timer, units,
    };

    test_guests::entry!(main, secondary);

    /// vCPU 1's MPIDR (Aff0 = 1).
    const VCPU1: u64 = 1;
    /// Context ids given to vCPU 1's first and second CPU_ON.
    const CTX_FIRST: u64 = 0x5ec0_0001_cafe_f00d;
    const CTX_SECOND: u64 = 0x5ec0_0002_beef_d00d;
    /// The SGI vCPU 0 sends vCPU 1 (also its doorbell), and the one it sends itself.
    const SGI_TO_VCPU1: u32 = 5;
    const SGI_TO_SELF: u32 = 3;
    /// Priority for every interrupt the probe enables (any value below PMR 0xff).
    const PRIORITY: u8 = 0x80;
    /// Hypercalls timed for the round trip.
    const ROUNDTRIP_CALLS: u64 = 100_000;
    /// Iterations of the two-instruction calibration loop.
    const CALIBRATION_ITERATIONS: u64 = 1_000_000;
    /// Hypercalls timed for each of the `smccc-version` and `tandem-version` figures.
    const EXIT_HVC_ITERATIONS: u64 = 100_000;
    /// Trapped GICD_TYPER reads timed for the `gicd-read` figure.
    const EXIT_GICD_ITERATIONS: u64 = 20_000;
    /// Dither sweeps for the `vtimer-latency` figure (each one sample per instruction of a
    /// counter tick).
    const EXIT_VTIMER_SWEEPS: u64 = 4;
    /// How far ahead (ns) each `vtimer-latency` sample's WFI deadline is: far beyond
    /// Tandem's WFI trap path, so the vCPU is asleep when it passes.
    const EXIT_VTIMER_LEAD_NS: u64 = 20_000;
    /// What the `gicd-read` baseline loop loads instead of GICD_TYPER: a word of RAM.
    static RAM_WORD: AtomicU32 = AtomicU32::new(0x5a5a_5a5a);
    /// Trapped GICD_IPRIORITYR writes timed for the `gicd-write` figure.
    const EXIT_GICD_WRITE_ITERATIONS: u64 = 20_000;
    /// What the `gicd-write` baseline loop stores to instead of GICD_IPRIORITYR: RAM.
    static RAM_SINK: AtomicU32 = AtomicU32::new(0);
    /// Dithered samples for each of the `sgi-self`, `virtual-ipi` and `passthrough-irq`
    /// figures: 64 sweeps of the 16 start phases of a 62.5 MHz counter tick.
    const EXIT_IRQ_SAMPLES: usize = 1024;

    // vCPU 0 <-> vCPU 1 mailbox. Single writer each, so plain stores suffice.
    /// Incremented by vCPU 1 each time it comes online (after its GIC set-up).
    static ONLINE_SEQ: AtomicU64 = AtomicU64::new(0);
    /// The context id vCPU 1 received.
    static ONLINE_CTX: AtomicU64 = AtomicU64::new(0);
    /// The vCPU id `VM_INFO` told vCPU 1.
    static ONLINE_VCPU_ID: AtomicU64 = AtomicU64::new(u64::MAX);
    /// vCPU 0's order to vCPU 1: [`CMD_NONE`] or [`CMD_OFF`].
    static COMMAND: AtomicU64 = AtomicU64::new(CMD_NONE);
    const CMD_NONE: u64 = 0;
    const CMD_OFF: u64 = 1;
    /// Shared layout only: write the [`el1`] markers, then CPU_OFF.
    const CMD_MARK_OFF: u64 = 2;
    /// Shared layout only: write the markers, say [`READY`], call SYSTEM_RESET on [`GO`].
    const CMD_RESET: u64 = 3;
    /// GICv2: send [`SGI_TO_SELF`] to vCPU 0 (which checks that GICC_IAR names vCPU 1).
    const CMD_SGI_TO_VCPU0: u64 = 4;

    fn call(fid: FunctionId, args: &[u64]) -> [u64; 4] {
        hvc(regs(fid.to_reg(), args))
    }

    fn main(dtb: u64) -> ! {
        // First of all: the state Tandem started this vCPU with.
        let at_entry = el1::read();
        let shared = vm_model(dtb) == Some(SHARED_MODEL);
        // The boot's first hypercall: the shared layout counts them across resets.
        let hypercalls_at_entry = if shared { hypercalls() } else { 0 };
        let mut h = Harness::new();
        println!(
            "probe: test guest on vcpu{}, counter {} Hz",
            rt::cpu_index(),
            timer::hz()
        );
        if shared {
            match Phase::load() {
                Some(p) if p.boot == 2 => boot2(p, &at_entry, hypercalls_at_entry),
                Some(p) => boot3(p, &at_entry, hypercalls_at_entry),
                None => println!(
                    "probe: VM probe-shared, boot 1 of 3: the suites, then restarts and resets"
                ),
            }
        }
        discovery(&mut h);
        psci_bring_up(&mut h);
        vgic(&mut h);
        psci_off_and_on(&mut h);
        let deadline_ticks = vtimer(&mut h);
        stage2(&mut h);
        passthrough(&mut h);
        roundtrip(&mut h);
        if shared {
            // The other VM's instructions advance the same -icount clock: beside it the
            // figures would not be Tandem's alone (the `probe` VM measures them alone).
            println!("probe: exit_cost skipped beside another VM");
            boot1_end(h, &at_entry);
        }
        exit_costs(&mut h, deadline_ticks);
        h.summary();
        rt::power_off()
    }

    fn discovery(h: &mut Harness) {
        let probed = pv_abi::guest::probe();
        check!(
            h,
            "hvc::discovery",
            matches!(probed, Ok((1, _))),
            "Call UID + Revision: {probed:?}"
        );
        let info = pv_abi::guest::vm_info();
        check!(
            h,
            "hvc::vm_info",
            matches!(info, Ok(i) if i.vcpu_id == 0 && i.vcpu_count == 2 && i.vm_id != 0),
            "{info:?}"
        );
    }

    /// Waits (up to 1 s) for vCPU 1's `n`th online report.
    fn wait_online(n: u64) -> bool {
        let until = timer::now() + timer::hz();
        timer::spin_until(until, || ONLINE_SEQ.load(Ordering::Acquire) >= n)
    }

    fn affinity(mpidr: u64) -> i64 {
        w0(call(AFFINITY_INFO, &[mpidr, 0]))
    }

    fn psci_bring_up(h: &mut Harness) {
        let v = w0(call(PSCI_VERSION, &[]));
        check!(
            h,
            "psci::version",
            v == i64::from(psci::VERSION_1_1),
            "PSCI_VERSION={v:#x}"
        );
        let f = w0(call(PSCI_FEATURES, &[CPU_ON.to_reg()]));
        check!(
            h,
            "psci::features_cpu_on",
            f == 0,
            "PSCI_FEATURES(CPU_ON)={f}"
        );
        let f = w0(call(PSCI_FEATURES, &[CPU_SUSPEND.to_reg()]));
        check!(
            h,
            "psci::features_cpu_suspend",
            f == -1,
            "PSCI_FEATURES(CPU_SUSPEND)={f}"
        );
        let s = w0(call(SMCCC_VERSION, &[]));
        check!(
            h,
            "psci::smccc_version",
            s == 0x10001,
            "SMCCC_VERSION={s:#x}"
        );
        let a = affinity(VCPU1);
        check!(
            h,
            "psci::affinity_info_off",
            a == 1,
            "AFFINITY_INFO(1)={a} before CPU_ON"
        );

        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), CTX_FIRST]));
        check!(
            h,
            "psci::cpu_on",
            r == 0,
            "CPU_ON(1, {:#x}, {CTX_FIRST:#x})={r}",
            rt::secondary_entry()
        );
        let online = wait_online(1);
        let (ctx, id) = (
            ONLINE_CTX.load(Ordering::Relaxed),
            ONLINE_VCPU_ID.load(Ordering::Relaxed),
        );
        check!(
            h,
            "psci::secondary_runs",
            online && ctx == CTX_FIRST && id == 1,
            "online={online} ctx={ctx:#x} VM_INFO.vcpu_id={id}"
        );
        let a = affinity(VCPU1);
        check!(
            h,
            "psci::affinity_info_on",
            a == 0,
            "AFFINITY_INFO(1)={a} after CPU_ON"
        );
        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), 0]));
        check!(h, "psci::cpu_on_already_on", r == -4, "CPU_ON(1) again={r}");
        let r = w0(call(CPU_ON, &[2, rt::secondary_entry(), 0]));
        check!(
            h,
            "psci::cpu_on_bad_mpidr",
            r == -2,
            "CPU_ON(MPIDR 2, no such vCPU)={r}"
        );
    }

    fn psci_off_and_on(h: &mut Harness) {
        // Order vCPU 1 off and ring its doorbell (it sleeps in WFI).
        COMMAND.store(CMD_OFF, Ordering::Release);
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let off = timer::spin_until(until, || affinity(VCPU1) == 1);
        check!(
            h,
            "psci::cpu_off",
            off,
            "AFFINITY_INFO(1)={} after vCPU 1's CPU_OFF",
            affinity(VCPU1)
        );

        let r = w0(call(CPU_ON, &[VCPU1, 0x8000_0000, 0]));
        check!(
            h,
            "psci::cpu_on_entry_outside_ram",
            r == -9,
            "CPU_ON(1, 0x80000000)={r}"
        );

        COMMAND.store(CMD_NONE, Ordering::Release);
        let seq = ONLINE_SEQ.load(Ordering::Acquire);
        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), CTX_SECOND]));
        let online = r == 0 && wait_online(seq + 1);
        let ctx = ONLINE_CTX.load(Ordering::Relaxed);
        check!(
            h,
            "psci::cpu_on_after_off",
            online && ctx == CTX_SECOND && affinity(VCPU1) == 0,
            "CPU_ON={r} online={online} ctx={ctx:#x}"
        );
    }

    /// vCPU 1: reports in, sets up its GIC for [`SGI_TO_VCPU1`], then sleeps in WFI taking
    /// interrupts until vCPU 0 orders it off.
    fn secondary(ctx: u64) -> ! {
        // First of all: the state Tandem started this life with.
        store_all(&ENTRY_STATE, &el1::read());
        let id = pv_abi::guest::vm_info().map_or(u64::MAX, |i| i.vcpu_id);
        println!("vcpu1 online ctx={ctx:#x} vcpu_id={id}");
        let me = rt::cpu_index();
        gic::wake(me);
        gic::enable_private(me, SGI_TO_VCPU1, PRIORITY);
        gic::cpu_interface_on();
        rt::irq_enable();
        ONLINE_CTX.store(ctx, Ordering::Relaxed);
        ONLINE_VCPU_ID.store(id, Ordering::Relaxed);
        ONLINE_SEQ.store(ONLINE_SEQ.load(Ordering::Relaxed) + 1, Ordering::Release);
        loop {
            rt::irq_disable();
            match COMMAND.load(Ordering::Acquire) {
                CMD_OFF => {
                    println!("vcpu1: CPU_OFF");
                    let e = pv_abi::guest::cpu_off();
                    println!("[!] vcpu1: CPU_OFF returned {e:?}");
                    rt::park();
                }
                CMD_MARK_OFF => mark_and_off(),
                CMD_RESET => vcpu1_reset(),
                CMD_SGI_TO_VCPU0 => {
                    COMMAND.store(CMD_NONE, Ordering::Release);
                    gic::send_sgi(SGI_TO_SELF, 1 << 0);
                }
                _ => {}
            }
            rt::wfi();
            rt::irq_enable();
        }
    }

    fn vgic(h: &mut Harness) {
        if gic::version() == 2 {
            return vgic_v2(h);
        }
        let d = gic::distributor();
        let typer = d.read32(gicd::TYPER);
        let lines = (typer & 0x1f) + 1;
        let id_bits = ((typer >> 19) & 0x1f) + 1;
        check!(
            h,
            "vgic::gicd_typer",
            typer != u32::MAX && lines * 32 <= 1024 && id_bits >= 10,
            "GICD_TYPER={typer:#x}: {} INTIDs, {id_bits} ID bits",
            lines * 32
        );
        let pidr2 = d.read32(gicd::PIDR2);
        check!(
            h,
            "vgic::gicd_pidr2_archrev",
            (pidr2 >> 4) & 0xf == 3,
            "GICD_PIDR2={pidr2:#x}"
        );
        d.write32(gicd::CTLR, gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1);
        let ctlr = d.read32(gicd::CTLR);
        let want = gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1;
        check!(
            h,
            "vgic::gicd_ctlr",
            ctlr & want == want,
            "GICD_CTLR={ctlr:#x} after writing {want:#x}"
        );

        // Byte writes to IPRIORITYR change one byte: SPIs 40..43 in the distributor (if the
        // VM has them), SGIs 8..11 in vCPU 0's redistributor.
        if lines >= 2 {
            d.write32(gicd::IPRIORITYR + 40, 0xa0a0_a0a0);
            d.write8(gicd::IPRIORITYR + 41, 0x80);
            let (w, b) = (
                d.read32(gicd::IPRIORITYR + 40),
                d.read8(gicd::IPRIORITYR + 41),
            );
            check!(
                h,
                "vgic::gicd_ipriorityr_byte_write",
                w == 0xa0a0_80a0 && b == 0x80,
                "word {w:#010x} byte {b:#x} (want 0xa0a080a0, 0x80)"
            );
            d.write32(gicd::IPRIORITYR + 40, 0);
        }
        let s0 = gic::sgi_frame(0);
        s0.write32(sgi::IPRIORITYR + 8, 0x9090_9090);
        s0.write8(sgi::IPRIORITYR + 10, 0x40);
        let w = s0.read32(sgi::IPRIORITYR + 8);
        check!(
            h,
            "vgic::gicr_ipriorityr_byte_write",
            w == 0x9040_9090,
            "word {w:#010x} (want 0x90409090)"
        );

        let (before, after) = gic::wake(0);
        check!(
            h,
            "vgic::gicr_waker",
            after & (gicr::WAKER_CHILDREN_ASLEEP | gicr::WAKER_PROCESSOR_SLEEP) == 0,
            "GICR_WAKER {before:#x} -> {after:#x}"
        );
        let (t0, t1) = (
            gic::redistributor(0).read64(gicr::TYPER),
            gic::redistributor(1).read64(gicr::TYPER),
        );
        check!(
            h,
            "vgic::gicr_typer_affinity",
            t0 >> 32 == 0
                && t0 & gicr::TYPER_LAST == 0
                && t1 >> 32 == 1
                && t1 & gicr::TYPER_LAST != 0,
            "GICR_TYPER vcpu0={t0:#x} vcpu1={t1:#x} (64-bit reads)"
        );

        gic::cpu_interface_on();
        rt::irq_enable();
        let (mine, theirs) = (rt::irq_count(0), rt::irq_count(1));
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let got = timer::spin_until(until, || rt::irq_count(1) > theirs);
        let (intid, _) = rt::last_irq(1);
        check!(
            h,
            "vgic::sgi_to_vcpu1",
            got && intid == u64::from(SGI_TO_VCPU1) && rt::irq_count(0) == mine,
            "vcpu1 took INTID {intid} ({} IRQs), vcpu0 took {}",
            rt::irq_count(1) - theirs,
            rt::irq_count(0) - mine
        );

        gic::enable_private(0, SGI_TO_SELF, PRIORITY);
        gic::send_sgi(SGI_TO_SELF, 1 << 0);
        let until = timer::now() + timer::hz();
        let got = rt::wait_for_interrupt_until(until, || rt::irq_count(0) > mine);
        let (intid, _) = rt::last_irq(0);
        check!(
            h,
            "vgic::sgi_to_self",
            got && intid == u64::from(SGI_TO_SELF),
            "vcpu0 took INTID {intid}"
        );
        more_pending_than_lrs(h);
    }

    /// SPIs made pending at once, more than the CPU has list registers, while vCPU 0
    /// spins without exiting: all arrive, so the underflow maintenance interrupt refilled
    /// the list registers (a WFI or another exit would refill them too, so there is none).
    fn more_pending_than_lrs(h: &mut Harness) {
        const FIRST: u32 = 40;
        const COUNT: u32 = 6;
        let d = gic::distributor();
        for intid in FIRST..FIRST + COUNT {
            let (word, bit) = (4 * (intid as usize / 32), 1u32 << (intid % 32));
            if gic::version() == 3 {
                d.write32(gicd::IGROUPR + word, d.read32(gicd::IGROUPR + word) | bit);
            }
            d.write8(gicd::IPRIORITYR + intid as usize, PRIORITY);
            let cfg = gicd::ICFGR + 4 * (intid as usize / 16);
            d.write32(cfg, d.read32(cfg) | 0b10 << (2 * (intid % 16)));
            d.write32(gicd::ISENABLER + word, bit);
        }
        rt::irq_disable();
        let before = rt::irq_count(0);
        let word = 4 * (FIRST as usize / 32);
        d.write32(gicd::ISPENDR + word, ((1 << COUNT) - 1) << (FIRST % 32));
        rt::irq_enable();
        let until = timer::now() + timer::hz() / 10;
        let all = timer::spin_until(until, || rt::irq_count(0) >= before + u64::from(COUNT));
        check!(
            h,
            "vgic::more_pending_than_lrs",
            all && rt::irq_count(0) == before + u64::from(COUNT),
            "{} of {COUNT} SPIs (INTIDs {FIRST}..{}) taken without an exit",
            rt::irq_count(0) - before,
            FIRST + COUNT - 1
        );
    }

    /// The `vgic` suite on a GICv2 machine: the distributor Tandem emulates (banked SGI/PPI
    /// registers, ITARGETSR, GICD_SGIR) and the hardware's virtual CPU interface.
    fn vgic_v2(h: &mut Harness) {
        let d = gic::distributor();
        let typer = d.read32(gicd::TYPER);
        let lines = (typer & 0x1f) + 1;
        check!(
            h,
            "vgic::gicd_typer",
            lines * 32 <= 1024 && (typer >> 5) & 7 == 1 && typer & 1 << 10 == 0,
            "GICD_TYPER={typer:#x}: {} INTIDs, {} CPU interfaces, SecurityExtn {}",
            lines * 32,
            ((typer >> 5) & 7) + 1,
            (typer >> 10) & 1
        );
        let pidr2 = d.read32(gicd2::PIDR2);
        check!(
            h,
            "vgic::gicd_pidr2_archrev",
            (pidr2 >> 4) & 0xf == 2,
            "GICD_PIDR2={pidr2:#x}"
        );
        gic::distributor_on();
        let ctlr = d.read32(gicd::CTLR);
        check!(
            h,
            "vgic::gicd_ctlr",
            ctlr == 0b11,
            "GICD_CTLR={ctlr:#x} after writing 0x3"
        );
        d.write32(gicd::IPRIORITYR + 40, 0xa0a0_a0a0);
        d.write8(gicd::IPRIORITYR + 41, 0x80);
        let (w, b) = (
            d.read32(gicd::IPRIORITYR + 40),
            d.read8(gicd::IPRIORITYR + 41),
        );
        check!(
            h,
            "vgic::gicd_ipriorityr_byte_write",
            w == 0xa0a0_80a0 && b == 0x80,
            "word {w:#010x} byte {b:#x} (want 0xa0a080a0, 0x80)"
        );
        d.write32(gicd::IPRIORITYR + 40, 0);
        // SGIs 8..11 are banked: vCPU 0's copy.
        d.write32(gicd::IPRIORITYR + 8, 0x9090_9090);
        d.write8(gicd::IPRIORITYR + 10, 0x40);
        let w = d.read32(gicd::IPRIORITYR + 8);
        check!(
            h,
            "vgic::gicd_banked_ipriorityr_byte_write",
            w == 0x9040_9090,
            "word {w:#010x} (want 0x90409090)"
        );
        let own = d.read8(gicd2::ITARGETSR);
        d.write8(gicd2::ITARGETSR + 44, 0b10);
        let spi = d.read8(gicd2::ITARGETSR + 44);
        d.write8(gicd2::ITARGETSR + 44, 0xff);
        let all = d.read8(gicd2::ITARGETSR + 44);
        d.write8(gicd2::ITARGETSR + 44, 1);
        check!(
            h,
            "vgic::gicd_itargetsr",
            own == 1 && spi == 0b10 && all == 0b11,
            "own mask {own:#x} (want 0x1), SPI 44 -> {spi:#x} (want 0x2), all -> {all:#x} (want 0x3)"
        );

        gic::cpu_interface_on();
        rt::irq_enable();
        let (mine, theirs) = (rt::irq_count(0), rt::irq_count(1));
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let got = timer::spin_until(until, || rt::irq_count(1) > theirs);
        let (intid, _) = rt::last_irq(1);
        let source = rt::last_sgi_source(1);
        check!(
            h,
            "vgic::sgi_to_vcpu1",
            got && intid == u64::from(SGI_TO_VCPU1) && source == 0 && rt::irq_count(0) == mine,
            "vcpu1 took INTID {intid} from vcpu{source} ({} IRQs), vcpu0 took {}",
            rt::irq_count(1) - theirs,
            rt::irq_count(0) - mine
        );

        gic::enable_private(0, SGI_TO_SELF, PRIORITY);
        gic::send_sgi(SGI_TO_SELF, 1 << 0);
        let until = timer::now() + timer::hz();
        let got = rt::wait_for_interrupt_until(until, || rt::irq_count(0) > mine);
        let (intid, _) = rt::last_irq(0);
        check!(
            h,
            "vgic::sgi_to_self",
            got && intid == u64::from(SGI_TO_SELF),
            "vcpu0 took INTID {intid}"
        );
        // From vCPU 1: GICC_IAR names it as the source, and the EOI with that value ends it
        // (else SGI 3 would stay active and the next check would get nothing).
        let before = rt::irq_count(0);
        COMMAND.store(CMD_SGI_TO_VCPU0, Ordering::Release);
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let got = rt::wait_for_interrupt_until(until, || rt::irq_count(0) > before);
        let (intid, _) = rt::last_irq(0);
        let source = rt::last_sgi_source(0);
        check!(
            h,
            "vgic::sgi_source_in_iar",
            got && intid == u64::from(SGI_TO_SELF) && source == 1,
            "vcpu0 took INTID {intid} from vcpu{source} (want INTID {SGI_TO_SELF} from vcpu1)"
        );
        let theirs = rt::irq_count(1);
        // TargetListFilter 2: this vCPU only, whatever the list says.
        let before = rt::irq_count(0);
        d.write32(gicd2::SGIR, 2 << 24 | 0b10 << 16 | SGI_TO_SELF);
        let until = timer::now() + timer::hz();
        let got = rt::wait_for_interrupt_until(until, || rt::irq_count(0) > before);
        let (intid, _) = rt::last_irq(0);
        check!(
            h,
            "vgic::sgir_self_filter",
            got && intid == u64::from(SGI_TO_SELF) && rt::irq_count(1) == theirs,
            "vcpu0 took INTID {intid}; vcpu1 took {} more",
            rt::irq_count(1) - theirs
        );
        more_pending_than_lrs(h);
    }

    /// The `vtimer` suite; returns the shortest and longest deadline latency in ticks, if
    /// any deadline interrupted on time.
    fn vtimer(h: &mut Harness) -> Option<(u64, u64)> {
        let hz = timer::hz();
        check!(h, "vtimer::frequency", hz != 0, "CNTFRQ_EL0={hz} Hz");
        if hz == 0 {
            return None;
        }
        gic::enable_private(0, timer::VTIMER_INTID, PRIORITY);
        gic::cpu_interface_on();
        rt::irq_enable();

        // Ten 1 ms deadlines, spinning (the vCPU keeps running: direct injection).
        let period = units::ns_to_ticks(1_000_000, hz);
        let (mut arrived, mut early, mut lat_sum, mut lat_min, mut lat_max) =
            (0, 0, 0, u64::MAX, 0);
        let mut ctl = 0;
        for i in 0..10 {
            let before = rt::irq_count(0);
            let deadline = timer::now() + period;
            timer::arm_at(deadline);
            let ok = timer::spin_until(deadline + hz, || rt::irq_count(0) > before);
            let (intid, at) = rt::last_irq(0);
            if !ok || intid != u64::from(timer::VTIMER_INTID) {
                println!("vtimer: deadline {i}: no interrupt (last INTID {intid})");
                timer::disable();
                continue;
            }
            arrived += 1;
            if at < deadline {
                early += 1;
                println!(
                    "vtimer: deadline {i}: interrupt {} ticks EARLY",
                    deadline - at
                );
                continue;
            }
            let lat = at - deadline;
            println!(
                "vtimer-latency: n={i} ticks={lat} ns={}",
                units::ticks_to_ns(lat, hz)
            );
            lat_sum += lat;
            lat_min = lat_min.min(lat);
            lat_max = lat_max.max(lat);
            ctl = rt::timer_ctl_at_irq(0);
        }
        let on_time = arrived - early;
        let avg = lat_sum.checked_div(on_time).unwrap_or(0);
        check!(
            h,
            "vtimer::ten_deadlines_fire",
            arrived == 10,
            "{arrived}/10 interrupts (INTID 27); CNTV_CTL in handler {ctl:#x} (ISTATUS {}, IMASK {})",
            (ctl >> 2) & 1,
            (ctl >> 1) & 1
        );
        check!(
            h,
            "vtimer::never_early",
            early == 0 && arrived > 0,
            "{early} early"
        );
        println!(
            "vtimer-latency: deadlines=10 min_ticks={} avg_ticks={avg} max_ticks={lat_max} min_ns={} avg_ns={} max_ns={}",
            if on_time > 0 { lat_min } else { 0 },
            units::ticks_to_ns(if on_time > 0 { lat_min } else { 0 }, hz),
            units::ticks_to_ns(avg, hz),
            units::ticks_to_ns(lat_max, hz)
        );

        // A 5 ms deadline while the vCPU sleeps in WFI: Tandem must block it, keep the
        // deadline on its own timer and wake it.
        let wfi_before = pv_abi::guest::stats(StatId::WfiExits).unwrap_or(0);
        let before = rt::irq_count(0);
        let deadline = timer::now() + units::ns_to_ticks(5_000_000, hz);
        timer::arm_at(deadline);
        let ok = rt::wait_for_interrupt_until(deadline + hz, || rt::irq_count(0) > before);
        let (intid, at) = rt::last_irq(0);
        let wfi_exits = pv_abi::guest::stats(StatId::WfiExits).unwrap_or(0) - wfi_before;
        let lat = at.wrapping_sub(deadline) as i64;
        check!(
            h,
            "vtimer::wakes_vcpu_from_wfi",
            ok && intid == u64::from(timer::VTIMER_INTID) && lat >= 0 && wfi_exits >= 1,
            "INTID {intid}, latency {lat} ticks ({} ns), {wfi_exits} WFI exits",
            units::ticks_to_ns(lat.max(0) as u64, hz)
        );
        timer::disable();
        (on_time > 0).then_some((lat_min, lat_max))
    }

    /// Checks that an access to `addr` gets Tandem's injected external abort.
    fn expect_external_abort(h: &mut Harness, name: &str, addr: u64, write: bool) {
        let fault = rt::expect_fault(|| {
            if write {
                // SAFETY: `addr` is outside guest RAM: no Rust object lives there, and the
                // access is expected to fault (then it is skipped).
                unsafe { rt::store64(addr, 0x0bad_0bad) }
            } else {
                // SAFETY: as for the store.
                unsafe { rt::load64(addr) };
            }
        });
        match fault {
            Some(f) => check!(
                h,
                name,
                f.esr.is_external_abort(write) && f.far == addr,
                "ESR={:#x} EC={:#04x} (want {EC_DATA_ABORT_SAME_EL:#04x}) DFSC={:#04x} WnR={} FAR={:#x}",
                f.esr.0,
                f.esr.ec(),
                f.esr.dfsc(),
                f.esr.wnr() as u8,
                f.far
            ),
            None => check!(
                h,
                name,
                false,
                "no abort for {} {addr:#x}",
                if write { "store to" } else { "load from" }
            ),
        };
    }

    fn stage2(h: &mut Harness) {
        let last = RAM_END - 8;
        let pattern = 0x1234_5678_9abc_def0;
        let mut read = 0;
        let fault = rt::expect_fault(|| {
            // SAFETY: the last word of RAM holds no Rust object: the image, its .bss and its
            // stacks end far below (link.ld).
            unsafe { rt::store64(last, pattern) };
            // SAFETY: as for the store.
            read = unsafe { rt::load64(last) };
        });
        check!(
            h,
            "stage2::ram_last_word",
            fault.is_none() && read == pattern,
            "{last:#x}: wrote {pattern:#x}, read {read:#x}, fault {fault:?}"
        );
        expect_external_abort(h, "stage2::load_past_ram", RAM_END, false);
        expect_external_abort(h, "stage2::store_past_ram", RAM_END, true);
        expect_external_abort(h, "stage2::load_phys_uart", PHYS_UART, false);
        expect_external_abort(h, "stage2::store_phys_uart", PHYS_UART, true);
    }

    /// The PL031 real-time clock's registers (ARM DDI 0224), from [`PHYS_RTC`].
    mod rtc {
        /// RTCDR: the current time in seconds.
        pub const DR: u64 = 0x00;
        /// RTCMR: match value; RTCRIS sets when RTCDR reaches it.
        pub const MR: u64 = 0x04;
        /// RTCIMSC: interrupt mask set (bit 0 = the match interrupt is enabled).
        pub const IMSC: u64 = 0x10;
        /// RTCRIS: raw interrupt status.
        pub const RIS: u64 = 0x14;
        /// RTCMIS: masked interrupt status (what drives the line).
        pub const MIS: u64 = 0x18;
        /// RTCICR: write 1 to clear the interrupt.
        pub const ICR: u64 = 0x1c;
        /// RTCPeriphID0..1 (0x31, 0x10) and RTCPCellID0..3 (0x0d, 0xf0, 0x05, 0xb1).
        pub const PERIPH_ID0: u64 = 0xfe0;
        pub const CELL_ID0: u64 = 0xff0;
        /// Its interrupt on QEMU virt: SPI 2, level-high.
        pub const INTID: u32 = 34;
    }

    fn rtc_read(offset: u64) -> u32 {
        // SAFETY: the RTC is this VM's passthrough device (stage 2 maps it); no Rust object
        // lives there.
        unsafe { rt::load32(PHYS_RTC + offset) }
    }

    fn rtc_write(offset: u64, value: u32) {
        // SAFETY: as in `rtc_read`.
        unsafe { rt::store32(PHYS_RTC + offset, value) }
    }

    fn passthrough(h: &mut Harness) {
        let mut id = [0u32; 6];
        let fault = rt::expect_fault(|| {
            for (i, word) in id.iter_mut().enumerate() {
                let offset = if i < 2 {
                    rtc::PERIPH_ID0 + 4 * i as u64
                } else {
                    rtc::CELL_ID0 + 4 * (i as u64 - 2)
                };
                *word = rtc_read(offset);
            }
        });
        let cell = id[2..]
            .iter()
            .rev()
            .fold(0, |acc, &b| acc << 8 | (b & 0xff));
        check!(
            h,
            "passthrough::rtc_mapped",
            fault.is_none() && id[0] & 0xff == 0x31 && id[1] & 0xff == 0x10 && cell == 0xb105_f00d,
            "PL031 at {PHYS_RTC:#x}: PeriphID0/1 {:#x} {:#x}, CellID {cell:#x}, fault {fault:?}",
            id[0],
            id[1]
        );
        if fault.is_some() {
            return;
        }
        let now = rtc_read(rtc::DR);
        // 2023-11-14 .. 2096: whatever `-rtc base` says, a real date.
        check!(
            h,
            "passthrough::rtc_time_plausible",
            (1_700_000_000..4_000_000_000).contains(&now),
            "RTCDR = {now} s since 1970"
        );

        // The SPI in the vGIC: group 1, priority, level-sensitive, to vCPU 0 (IROUTER reset
        // value), enabled.
        let d = gic::distributor();
        let (word, bit) = (4 * (rtc::INTID as usize / 32), 1u32 << (rtc::INTID % 32));
        if gic::version() == 3 {
            d.write32(gicd::IGROUPR + word, d.read32(gicd::IGROUPR + word) | bit);
        }
        d.write8(gicd::IPRIORITYR + rtc::INTID as usize, PRIORITY);
        let cfg = gicd::ICFGR + 4 * (rtc::INTID as usize / 16);
        let field = 0b11 << (2 * (rtc::INTID % 16));
        d.write32(cfg, d.read32(cfg) & !field);
        d.write32(gicd::ISENABLER + word, bit);
        gic::cpu_interface_on();
        rt::irq_enable();
        // SAFETY: RTCMIS and RTCICR are registers of this VM's passthrough RTC.
        unsafe {
            rt::set_device_ack(rtc::INTID, PHYS_RTC + rtc::MIS, PHYS_RTC + rtc::ICR, 1);
        }
        rtc_write(rtc::IMSC, 1);
        for round in 1..=2usize {
            rtc_round(h, round);
        }
        rtc_write(rtc::IMSC, 0);
    }

    /// One "match in a second" round: the interrupt arrives once, no earlier than the match,
    /// and not again once the handler cleared it.
    fn rtc_round(h: &mut Harness, round: usize) {
        let hz = timer::hz();
        let (before, _, _) = rt::device_irqs();
        let dr = rtc_read(rtc::DR);
        let t_match = timer::now() + hz;
        rtc_write(rtc::MR, dr.wrapping_add(1));
        // The alarm is one second after the MR write unless RTCDR ticked since it was read
        // (then it fires at once).
        let whole_second = rtc_read(rtc::DR) == dr;
        let until = t_match + 2 * hz;
        timer::arm_at(until); // Watchdog: WFI must end even if the RTC stays silent.
        let got = rt::wait_for_interrupt_until(until, || rt::device_irqs().0 > before);
        timer::disable();
        let (count, status, at) = rt::device_irqs();
        let lat = at.wrapping_sub(t_match) as i64;
        check!(
            h,
            [
                "passthrough::rtc_interrupt_round1",
                "passthrough::rtc_interrupt_round2"
            ][round - 1],
            got && count == before + 1 && status & 1 == 1 && (!whole_second || lat >= 0),
            "INTID {} x{} (RTCMIS {status:#x} in the handler), {lat} ticks after the match instant{}",
            rtc::INTID,
            count - before,
            if whole_second {
                ""
            } else {
                " (RTCDR ticked: immediate match)"
            }
        );
        if whole_second && got {
            println!(
                "passthrough-latency: round={round} ticks={lat} ns={}",
                units::ticks_to_ns(lat.max(0) as u64, hz)
            );
        }
        // Quiet for 100 ms: the handler cleared the RTC, so the line is low and the guest's
        // EOI (which deactivated the physical SPI too) must not bring it back.
        let quiet_until = timer::now() + hz / 10;
        timer::arm_at(quiet_until);
        let vtimer_before = rt::irq_count(0);
        rt::wait_for_interrupt_until(quiet_until + hz, || rt::irq_count(0) > vtimer_before);
        timer::disable();
        let (again, _, _) = rt::device_irqs();
        let (ris, mis) = (rtc_read(rtc::RIS), rtc_read(rtc::MIS));
        check!(
            h,
            [
                "passthrough::rtc_quiet_after_clear_round1",
                "passthrough::rtc_quiet_after_clear_round2"
            ][round - 1],
            again == count && ris == 0 && mis == 0,
            "{} more RTC interrupts in 100 ms; RTCRIS {ris:#x} RTCMIS {mis:#x}",
            again - count
        );
    }

    fn roundtrip(h: &mut Harness) {
        let args = HvcArgs::new(HypercallId::Version.fid());
        let mut failures = 0u64;
        let start = timer::now();
        for _ in 0..ROUNDTRIP_CALLS {
            if pv_abi::guest::hvc_call(args).x[0] != 0 {
                failures += 1;
            }
        }
        let ticks = timer::now() - start;
        let hz = timer::hz().max(1);
        let deci = units::deci_ns_per_call(ticks, hz, ROUNDTRIP_CALLS);
        println!(
            "hvc-roundtrip: calls={ROUNDTRIP_CALLS} ticks={ticks} ns_per_call={}.{}",
            deci / 10,
            deci % 10
        );
        check!(
            h,
            "hvc::roundtrip",
            failures == 0,
            "{failures} of {ROUNDTRIP_CALLS} VERSION calls failed"
        );

        // Calibration: a loop of exactly 2 instructions per iteration, timed the same way.
        // Under -icount shift=0 it shows 1 ns per instruction (and so that ns_per_call above
        // counts the round trip's instructions), whatever else the machine runs meanwhile.
        let iterations = CALIBRATION_ITERATIONS;
        let start = timer::now();
        // SAFETY: a register-only countdown loop.
        unsafe {
            core::arch::asm!(
                "1: subs {n}, {n}, #1",
                "b.ne 1b",
                n = inout(reg) iterations => _,
                options(nomem, nostack)
            )
        };
        let ticks = timer::now() - start;
        let instructions = 2 * CALIBRATION_ITERATIONS;
        println!(
            "hvc-roundtrip-calibration: loop_instructions={instructions} ticks={ticks} ns={}",
            units::ticks_to_ns(ticks, hz)
        );
    }

    /// Prints a looped figure's `exit-cost:` line: `exit` timed the exiting loop, `base` the
    /// same loop without the exit.
    fn print_loop_figure(path: &str, iterations: u64, exit: Timed, base: Timed, hz: u64) {
        let gross = units::deci_ns_per_call(exit.ticks, hz, iterations);
        let lp = units::deci_ns_per_call(base.ticks, hz, iterations);
        println!(
            "exit-cost: path={path} iterations={iterations} ns_per_op={} gross_ns_per_op={} loop_ns_per_op={}",
            Deci(gross.saturating_sub(lp)),
            Deci(gross),
            Deci(lp)
        );
    }

    /// The exit-path figures (module doc, "Exit-cost lines"). `deadline_ticks`: the `vtimer`
    /// suite's shortest and longest deadline latency, to check `vtimer-latency` against.
    fn exit_costs(h: &mut Harness, deadline_ticks: Option<(u64, u64)>) {
        let hz = timer::hz().max(1);

        let n = EXIT_HVC_ITERATIONS;
        for (path, name, fid, w0_want) in [
            (
                "smccc-version",
                "exit_cost::smccc_version",
                SMCCC_VERSION,
                SMCCC_VERSION_1_1,
            ),
            (
                "tandem-version",
                "exit_cost::tandem_version",
                HypercallId::Version.fid(),
                0,
            ),
        ] {
            let exit = bench::hvc_loop(fid.raw(), n);
            let base = bench::hvc_baseline(fid.raw(), n);
            print_loop_figure(path, n, exit, base, hz);
            check!(
                h,
                name,
                exit.sum == n * u64::from(w0_want),
                "{n} calls of {:#x}: w0 summed to {:#x}, want {n} x {w0_want:#x}",
                fid.raw(),
                exit.sum
            );
        }

        let n = EXIT_GICD_ITERATIONS;
        let typer = gic::distributor().read32(gicd::TYPER);
        // SAFETY: GICD_TYPER is a read-only register of the VM's emulated distributor.
        let exit = unsafe { bench::load_loop(GICD_BASE + gicd::TYPER as u64, n) };
        // SAFETY: RAM_WORD is a static nobody writes; reading its storage is harmless.
        let base = unsafe { bench::load_loop(RAM_WORD.as_ptr() as u64, n) };
        print_loop_figure("gicd-read", n, exit, base, hz);
        let word = u64::from(RAM_WORD.load(Ordering::Relaxed));
        check!(
            h,
            "exit_cost::gicd_read",
            exit.sum == n * u64::from(typer) && base.sum == n * word,
            "{n} reads of GICD_TYPER summed to {:#x}, want {n} x {typer:#x}; baseline {:#x}",
            exit.sum,
            base.sum
        );

        // A 32-bit write of GICD_IPRIORITYR for INTIDs 32..35 (the passed-through RTC's SPI
        // 34 among them), writing back the value it holds.
        let n = EXIT_GICD_WRITE_ITERATIONS;
        let priorities = gicd::IPRIORITYR + 4 * (rtc::INTID as usize / 4);
        let before = gic::distributor().read32(priorities);
        // SAFETY: an emulated distributor register, rewritten with its own value.
        let exit = unsafe { bench::store_loop(GICD_BASE + priorities as u64, before, n) };
        // SAFETY: RAM_SINK is a static word nobody reads through a reference.
        let base = unsafe { bench::store_loop(RAM_SINK.as_ptr() as u64, before, n) };
        print_loop_figure("gicd-write", n, exit, base, hz);
        let after = gic::distributor().read32(priorities);
        check!(
            h,
            "exit_cost::gicd_write",
            after == before && RAM_SINK.load(Ordering::Relaxed) == before,
            "{n} writes of {before:#x} to GICD_IPRIORITYR(32..35): it reads {after:#x}"
        );

        // As the vtimer suite left them, to be sure: the timer's PPI enabled, the CPU
        // interface on, IRQs unmasked.
        gic::enable_private(0, timer::VTIMER_INTID, PRIORITY);
        gic::cpu_interface_on();
        rt::irq_enable();
        let steps = units::dither_steps(hz);
        let samples = EXIT_VTIMER_SWEEPS * steps;
        let lead = units::ns_to_ticks(EXIT_VTIMER_LEAD_NS, hz);
        let (mut sum, mut min, mut max, mut good) = (0, u64::MAX, 0, 0);
        for i in 0..samples {
            if let Some(t) = bench::vtimer_sample(i % steps, lead) {
                sum += t;
                min = min.min(t);
                max = max.max(t);
                good += 1;
            }
        }
        let mean = units::deci_ns_per_call(sum, hz, good.max(1));
        let (min, max) = if good == 0 { (0, 0) } else { (min, max) };
        let (dl_min, dl_max) = deadline_ticks.unwrap_or((0, 0));
        let tick_deci = 10 * units::ticks_to_ns(1, hz);
        let (dl_min_deci, dl_max_deci) = (
            10 * units::ticks_to_ns(dl_min, hz),
            10 * units::ticks_to_ns(dl_max, hz),
        );
        println!(
            "exit-cost: path=vtimer-latency iterations={samples} ns_per_op={} min_ns={} max_ns={} deadline_ns={}..{}",
            Deci(mean),
            units::ticks_to_ns(min, hz),
            units::ticks_to_ns(max, hz),
            dl_min_deci / 10,
            dl_max_deci / 10
        );
        // The deadline latencies L satisfy 16 * ticks <= L < 16 * (ticks + 1); the dithered
        // mean adds the enabling `msr`. One tick of slack either way.
        check!(
            h,
            "exit_cost::vtimer_latency",
            good == samples
                && deadline_ticks.is_some()
                && mean + tick_deci >= dl_min_deci
                && mean <= dl_max_deci + 2 * tick_deci,
            "{good}/{samples} dithered samples ({steps} start phases x {EXIT_VTIMER_SWEEPS}), mean {} ns; deadline latencies {}..{} ns",
            Deci(mean),
            dl_min_deci / 10,
            dl_max_deci / 10
        );

        irq_paths(h, hz, lead);
    }

    /// The interrupt paths sampled [`EXIT_IRQ_SAMPLES`] times each, dithered like
    /// `vtimer-latency` ([`bench::dithered_start`]): an SGI to the sender itself, an SGI to
    /// vCPU 1 (asleep in WFI on the other pCPU), and the passed-through RTC's interrupt.
    fn irq_paths(h: &mut Harness, hz: u64, lead: u64) {
        let v3 = gic::version() == 3;
        let sgi = |intid: u32, targets: u16| {
            if v3 {
                bench::Trigger::Sgi1r((u64::from(intid) << 24) | u64::from(targets))
            } else {
                bench::Trigger::Store32 {
                    addr: GICD_BASE + gicd2::SGIR as u64,
                    value: u32::from(targets as u8) << 16 | intid,
                }
            }
        };

        gic::enable_private(0, SGI_TO_SELF, PRIORITY);
        let to_self = sgi(SGI_TO_SELF, 1 << 0);
        let (good, tries) = sampled_figure("sgi-self", hz, |delay| {
            let before = rt::irq_count(0);
            // SAFETY: a GICD_SGIR store (GICv2) is a register of the emulated distributor.
            let start = unsafe { bench::dithered_start(delay, lead, to_self) };
            let (intid, entry) = rt::last_irq(0);
            (rt::irq_count(0) == before + 2 && intid == u64::from(SGI_TO_SELF) && entry >= start)
                .then(|| entry - start)
        });
        check!(
            h,
            "exit_cost::sgi_self",
            good == EXIT_IRQ_SAMPLES,
            "{good}/{EXIT_IRQ_SAMPLES} SGIs to self reached the handler ({tries} tries)"
        );

        // vCPU 1 sleeps in WFI in `secondary`'s loop; each SGI wakes it for one turn.
        let to_vcpu1 = sgi(SGI_TO_VCPU1, 1 << 1);
        let (good, tries) = sampled_figure("virtual-ipi", hz, |delay| {
            let before = rt::irq_count(1);
            // SAFETY: as above.
            let start = unsafe { bench::dithered_start(delay, lead, to_vcpu1) };
            let until = timer::now() + timer::hz() / 1000;
            timer::arm_at(until);
            let got = rt::wait_for_interrupt_until(until, || rt::irq_count(1) > before);
            timer::disable();
            let (intid, entry) = rt::last_irq(1);
            (got && rt::irq_count(1) == before + 1
                && intid == u64::from(SGI_TO_VCPU1)
                && entry >= start)
                .then(|| entry - start)
        });
        check!(
            h,
            "exit_cost::virtual_ipi",
            good == EXIT_IRQ_SAMPLES,
            "{good}/{EXIT_IRQ_SAMPLES} SGIs to vCPU 1 reached its handler within 1 ms ({tries} tries)"
        );

        // The RTC raises its interrupt the moment RTCMR is written with RTCDR's value
        // (QEMU's pl031_set_alarm: no whole second left to wait). A sample whose RTCDR
        // ticked between the read and the write gets no interrupt and is tried again.
        rtc_write(rtc::IMSC, 1);
        let (good, tries) = sampled_figure("passthrough-irq", hz, |delay| {
            let (before, _, _) = rt::device_irqs();
            let store = bench::Trigger::Store32 {
                addr: PHYS_RTC + rtc::MR,
                value: rtc_read(rtc::DR),
            };
            // SAFETY: RTCMR of this VM's passthrough RTC.
            let start = unsafe { bench::dithered_start(delay, lead, store) };
            let (count, status, at) = rt::device_irqs();
            (count == before + 1 && status & 1 == 1 && at >= start).then(|| at - start)
        });
        rtc_write(rtc::IMSC, 0);
        check!(
            h,
            "exit_cost::passthrough_irq",
            good == EXIT_IRQ_SAMPLES && tries <= good + 2,
            "{good}/{EXIT_IRQ_SAMPLES} RTC match interrupts reached the handler ({tries} tries)"
        );
    }

    /// Takes [`EXIT_IRQ_SAMPLES`] dithered samples of `sample` (its argument the start
    /// delay; `None` for a sample that went wrong, tried again with the same delay, up to
    /// twice as many tries in all) and prints the `exit-cost:` line: the exact mean, then
    /// the median, p99, min and max of the samples, each a whole number of counter ticks.
    /// Returns (good samples, tries).
    fn sampled_figure(
        path: &str,
        hz: u64,
        mut sample: impl FnMut(u64) -> Option<u64>,
    ) -> (usize, usize) {
        let steps = units::dither_steps(hz);
        let mut ticks = [0u16; EXIT_IRQ_SAMPLES];
        let (mut good, mut tries, mut sum) = (0, 0, 0);
        while good < EXIT_IRQ_SAMPLES && tries < 2 * EXIT_IRQ_SAMPLES {
            tries += 1;
            if let Some(t) = sample(good as u64 % steps) {
                ticks[good] = t.min(u64::from(u16::MAX)) as u16;
                sum += t;
                good += 1;
            }
        }
        let got = &mut ticks[..good];
        let (median, p99, max) = units::median_p99_max(got);
        let min = got.first().copied().unwrap_or(0);
        let ns = |t: u16| units::ticks_to_ns(u64::from(t), hz);
        println!(
            "exit-cost: path={path} iterations={good} ns_per_op={} median_ns={} p99_ns={} min_ns={} max_ns={}",
            Deci(units::deci_ns_per_call(sum, hz, good.max(1) as u64)),
            ns(median),
            ns(p99),
            ns(min),
            ns(max)
        );
        (good, tries)
    }

    // ---- The shared layout: restarts and resets over three boots (module doc) ----------

    /// The `model` of the probe's device tree when it runs as the `probe-shared` VM.
    const SHARED_MODEL: &str = "Tandem VM probe-shared";
    /// Context ids of vCPU 1's lives in the shared layout: the `restart` rounds (+ round),
    /// after the first reset, in the race with the second reset, after it.
    const CTX_RESTART: u64 = 0x5ec0_0003_0000_0000;
    const CTX_AFTER_RESET: u64 = 0x5ec0_0004_0000_0000;
    const CTX_RACE: u64 = 0x5ec0_0005_dead_2ace;
    const CTX_AFTER_RACE: u64 = 0x5ec0_0006_0000_0000;
    /// Where each vCPU writes a canary word just before its SYSTEM_RESET (vCPU n at
    /// `+ 8 n`): far above the image, its .bss and stacks (link.ld ends them below
    /// 0x40F0_0000) and below the word the `stage2` suite writes.
    const CANARY: u64 = RAM_END - 0x8_0000;
    const CANARY_BEFORE: u64 = 0xca4a_0000_0000_0000;
    const CANARY_AFTER: u64 = 0xca4a_0bad_0000_0000;

    /// vCPU 1's [`el1`] state at its latest entry, stored before [`ONLINE_SEQ`].
    static ENTRY_STATE: [AtomicU64; el1::N] = [const { AtomicU64::new(0) }; el1::N];
    /// vCPU 1's [`el1`] state right after it wrote its markers, stored before
    /// [`MARKED_SEQ`], which counts how often it did.
    static MARKED: [AtomicU64; el1::N] = [const { AtomicU64::new(0) }; el1::N];
    static MARKED_SEQ: AtomicU64 = AtomicU64::new(0);
    /// vCPU 1 waits to call SYSTEM_RESET; vCPU 0 tells it when ([`reset_at`]).
    static READY: AtomicU64 = AtomicU64::new(0);
    static GO: AtomicU64 = AtomicU64::new(0);
    /// How long before the emulator's timer deadline both vCPUs call SYSTEM_RESET, in
    /// counter ticks ([`reset_at`]).
    const RESET_LEAD_TICKS: u64 = 2;

    fn store_all(slots: &[AtomicU64; el1::N], values: &el1::State) {
        for (slot, &v) in slots.iter().zip(values) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    fn load_all(slots: &[AtomicU64; el1::N]) -> el1::State {
        core::array::from_fn(|i| slots[i].load(Ordering::Relaxed))
    }

    /// State Tandem switches between the vCPUs of a pCPU and must reset when a vCPU restarts
    /// (`VcpuContext::reset`: all 0): EL1 thread registers, the virtual timer, the vGIC CPU
    /// interface (ICH_VMCR_EL2 as the guest sees it) and FPCR. `entry.S` touches none of
    /// them, so the first Rust code of a vCPU reads them as Tandem started it.
    mod el1 {
        /// Registers read.
        pub const N: usize = 9;
        /// Their names, in [`read`]'s order.
        pub const NAMES: [&str; N] = [
            "TPIDR_EL1",
            "TPIDRRO_EL0",
            "TPIDR_EL0",
            "CONTEXTIDR_EL1",
            "CNTV_CVAL_EL0",
            "CNTV_CTL_EL0",
            "ICC_PMR_EL1/GICC_PMR",
            "ICC_IGRPEN1_EL1/GICC_CTLR",
            "FPCR",
        ];
        /// Their values.
        pub type State = [u64; N];

        macro_rules! mrs {
            ($reg:literal) => {{
                let v: u64;
                // SAFETY: reading a register of this vCPU's own EL1/EL0 state has no side
                // effect.
                unsafe {
                    core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags))
                };
                v
            }};
        }

        macro_rules! msr {
            ($reg:literal, $v:expr) => {
                // SAFETY: the markers below change nothing the probe relies on: thread ID
                // registers it never uses, a virtual timer left disabled and masked,
                // FPCR's DN and FZ (no floating point follows), and CONTEXTIDR_EL1.
                unsafe {
                    core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) ($v as u64), options(nomem, nostack, preserves_flags))
                }
            };
        }

        /// The registers as they are now (CNTV_CTL_EL0: ENABLE and IMASK only); on a GICv2
        /// the CPU interface's PMR and CTLR instead of the ICC registers.
        pub fn read() -> State {
            let (pmr, enable) = if test_guests::gic::version() == 2 {
                let c = test_guests::gic::cpu_interface();
                (
                    u64::from(c.read32(test_guests::gic::gicc::PMR)),
                    u64::from(c.read32(test_guests::gic::gicc::CTLR)),
                )
            } else {
                (mrs!("icc_pmr_el1"), mrs!("icc_igrpen1_el1"))
            };
            [
                mrs!("tpidr_el1"),
                mrs!("tpidrro_el0"),
                mrs!("tpidr_el0"),
                mrs!("contextidr_el1"),
                mrs!("cntv_cval_el0"),
                mrs!("cntv_ctl_el0") & 0b11,
                pmr,
                enable,
                mrs!("fpcr"),
            ]
        }

        /// Writes a non-zero marker into every register: what no later life may find.
        pub fn mark() {
            msr!("tpidr_el1", 0x7e57_0001_7e57_0001u64);
            msr!("tpidrro_el0", 0x7e57_0002_7e57_0002u64);
            msr!("tpidr_el0", 0x7e57_0003_7e57_0003u64);
            msr!("contextidr_el1", 0x7e57_0004u64);
            // Disabled and masked first, so the marker deadline can never fire.
            msr!("cntv_ctl_el0", 0b10u64);
            msr!("cntv_cval_el0", 0x7e57_0005_7e57_0005u64);
            // DN | FZ.
            msr!("fpcr", 0x0300_0000u64);
            // PMR 0xff and IGRPEN1 1 (and SRE).
            test_guests::gic::cpu_interface_on();
        }
    }

    /// An [`el1::State`] shown as the registers that are not 0 (how many first: a long
    /// line is cut).
    struct NonZero<'a>(&'a el1::State);

    impl core::fmt::Display for NonZero<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let n = self.0.iter().filter(|&&v| v != 0).count();
            if n == 0 {
                return write!(f, "all {} registers 0", el1::N);
            }
            write!(f, "{n} of {} registers not 0:", el1::N)?;
            for (name, &v) in el1::NAMES.iter().zip(self.0) {
                if v != 0 {
                    write!(f, " {name}={v:#x}")?;
                }
            }
            Ok(())
        }
    }

    fn is_fresh(state: &el1::State) -> bool {
        state.iter().all(|&v| v == 0)
    }

    /// The VM's device tree `model`, if `dtb` holds a device tree in RAM.
    fn vm_model(dtb: u64) -> Option<&'static str> {
        if !(RAM_BASE..RAM_END - 8).contains(&dtb) {
            return None;
        }
        // SAFETY: 8 bytes at `dtb` lie in this VM's RAM, where Tandem put the device tree
        // (below the image at RAM_BASE + 0x8_0000); no Rust object lives there and nothing
        // writes it.
        let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
        let size = fdt::total_size(header)?;
        if size as u64 > RAM_END - dtb {
            return None;
        }
        // SAFETY: as for the header; `size` bytes from `dtb` are the tree, inside RAM.
        let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, size) };
        fdt::root_property(blob, "model").and_then(fdt::as_str)
    }

    /// Hypercalls this VM made (Tandem's STATS; the count survives a VM reset), this one
    /// included.
    fn hypercalls() -> u32 {
        pv_abi::guest::stats(StatId::Hypercalls).unwrap_or(0) as u32
    }

    /// Where the shared-layout run is, carried across VM resets in the RTC's match register:
    /// bits 31..28 0xb, 27..26 `boot`, 25 `cpu_on_ok`, 24..21 `hypercalls`, 20..10 `passed`,
    /// 9..0 `failed`. A fresh QEMU's RTCMR is 0, and the `passthrough` suite leaves a date
    /// there (top nibble 6 until 2038): neither decodes.
    #[derive(Clone, Copy, Debug)]
    struct Phase {
        /// The boot that finds it: 2 or 3.
        boot: u32,
        /// Checks passed and failed so far.
        passed: u32,
        failed: u32,
        /// [`hypercalls`] just before the reset, mod 16.
        hypercalls: u32,
        /// Boot 2's racing CPU_ON returned SUCCESS.
        cpu_on_ok: bool,
    }

    impl Phase {
        const MAGIC: u32 = 0xb;

        fn encode(&self) -> u32 {
            (Self::MAGIC << 28)
                | ((self.boot & 3) << 26)
                | (u32::from(self.cpu_on_ok) << 25)
                | ((self.hypercalls & 0xf) << 21)
                | (self.passed.min(0x7ff) << 10)
                | self.failed.min(0x3ff)
        }

        fn decode(mr: u32) -> Option<Self> {
            let boot = (mr >> 26) & 3;
            (mr >> 28 == Self::MAGIC && boot >= 2).then_some(Self {
                boot,
                cpu_on_ok: (mr >> 25) & 1 == 1,
                hypercalls: (mr >> 21) & 0xf,
                passed: (mr >> 10) & 0x7ff,
                failed: mr & 0x3ff,
            })
        }

        fn load() -> Option<Self> {
            Self::decode(rtc_read(rtc::MR))
        }

        fn store(&self) {
            rtc_write(rtc::MR, self.encode());
        }
    }

    /// Starts vCPU 1 with `ctx` and checks, as `name`, that it entered with fresh state.
    fn vcpu1_life(h: &mut Harness, name: &str, ctx: u64) {
        let seq = ONLINE_SEQ.load(Ordering::Acquire);
        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), ctx]));
        let online = r == 0 && wait_online(seq + 1);
        let got = ONLINE_CTX.load(Ordering::Relaxed);
        let entry = load_all(&ENTRY_STATE);
        check!(
            h,
            name,
            online && got == ctx && is_fresh(&entry),
            "CPU_ON={r} online={online} ctx={got:#x}; vcpu1 at entry: {}",
            NonZero(&entry)
        );
    }

    /// Enables the (reset) distributor as the `vgic` suite does, so that vCPU 1's doorbell SGI
    /// is delivered.
    fn distributor_on() {
        gic::distributor_on();
    }

    /// Orders vCPU 1 off with `command` (it is asleep in WFI); true once it is off.
    fn order_off(command: u64) -> bool {
        COMMAND.store(command, Ordering::Release);
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let off = timer::spin_until(until, || affinity(VCPU1) == 1);
        COMMAND.store(CMD_NONE, Ordering::Release);
        off
    }

    /// vCPU 1, on [`CMD_MARK_OFF`].
    fn mark_and_off() -> ! {
        println!("vcpu1: markers in its registers, CPU_OFF");
        el1::mark();
        store_all(&MARKED, &el1::read());
        MARKED_SEQ.store(MARKED_SEQ.load(Ordering::Relaxed) + 1, Ordering::Release);
        let e = pv_abi::guest::cpu_off();
        println!("[!] vcpu1: CPU_OFF returned {e:?}");
        rt::park()
    }

    /// vCPU 1, on [`CMD_RESET`].
    fn vcpu1_reset() -> ! {
        println!("vcpu1: markers in its registers, SYSTEM_RESET with vcpu0's");
        el1::mark();
        READY.store(1, Ordering::Release);
        let mut at = 0;
        while at == 0 {
            at = GO.load(Ordering::Acquire);
        }
        reset_at(1, at)
    }

    /// Writes vCPU `cpu`'s canary, calls SYSTEM_RESET once CNTVCT reaches `at` (at once for
    /// 0), and writes the canary again if the call returns (it must not).
    ///
    /// Calls "at once" from two vCPUs: QEMU's `-icount` runs the CPUs in turn, each up to
    /// its share of the time left to the next timer deadline, so one vCPU's call is usually
    /// handled whole, kick to the other CPU included, before the other vCPU runs again. Both
    /// reach Tandem when they spin to the same `at` just before a deadline (vCPU 0 arms its
    /// masked virtual timer there): near it the turns shrink to a few instructions, and both
    /// vCPUs trap before either handler gets far; the deadline passed, the turns are long.
    fn reset_at(cpu: u64, at: u64) -> ! {
        let canary = CANARY + 8 * cpu;
        // SAFETY: CANARY's words hold no Rust object (see there).
        unsafe { rt::store64(canary, CANARY_BEFORE | cpu) };
        while timer::now() < at {}
        let e = pv_abi::guest::system_reset();
        // SAFETY: as above.
        unsafe { rt::store64(canary, CANARY_AFTER | cpu) };
        println!("[!] vcpu{cpu}: SYSTEM_RESET returned {e:?}");
        rt::park()
    }

    /// One `restart` round: vCPU 1 writes its markers and turns off; after `wait` ticks
    /// vCPU 0 starts it again, and its new life must find none of the markers.
    fn restart_round(h: &mut Harness, name: &str, wait: u64, ctx: u64) {
        let marked_before = MARKED_SEQ.load(Ordering::Acquire);
        let off = order_off(CMD_MARK_OFF);
        let marked = MARKED_SEQ.load(Ordering::Acquire) > marked_before;
        let markers = load_all(&MARKED);
        if wait > 0 {
            let until = timer::now() + wait;
            timer::spin_until(until, || false);
        }
        let seq = ONLINE_SEQ.load(Ordering::Acquire);
        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), ctx]));
        let online = r == 0 && wait_online(seq + 1);
        let got = ONLINE_CTX.load(Ordering::Relaxed);
        let entry = load_all(&ENTRY_STATE);
        let all_marked = marked && markers.iter().all(|&v| v != 0);
        check!(
            h,
            name,
            off && all_marked && online && got == ctx && is_fresh(&entry),
            "off={off} marked={all_marked}, {} us later CPU_ON={r} online={online}; vcpu1 at entry: {}",
            units::ticks_to_ns(wait, timer::hz()) / 1000,
            NonZero(&entry)
        );
    }

    /// Boot 1 after the suites: the `restart` rounds, then SYSTEM_RESET from both vCPUs.
    fn boot1_end(mut h: Harness, at_entry: &el1::State) -> ! {
        check!(
            h,
            "restart::vcpu0_fresh_at_boot",
            is_fresh(at_entry),
            "vcpu0 at entry: {}",
            NonZero(at_entry)
        );
        // vCPU 1 is on (psci_off_and_on), asleep in WFI.
        restart_round(&mut h, "restart::cpu_on_at_once_round1", 0, CTX_RESTART + 1);
        restart_round(&mut h, "restart::cpu_on_at_once_round2", 0, CTX_RESTART + 2);
        let later = units::ns_to_ticks(20_000_000, timer::hz());
        restart_round(
            &mut h,
            "restart::cpu_on_after_other_vm_ran",
            later,
            CTX_RESTART + 3,
        );

        READY.store(0, Ordering::Relaxed);
        GO.store(0, Ordering::Release);
        COMMAND.store(CMD_RESET, Ordering::Release);
        gic::send_sgi(SGI_TO_VCPU1, 1 << 1);
        let until = timer::now() + timer::hz();
        let ready = timer::spin_until(until, || READY.load(Ordering::Acquire) != 0);
        check!(
            h,
            "reset::vcpu1_ready",
            ready,
            "vcpu1 {} to call SYSTEM_RESET, markers in its registers",
            if ready { "waits" } else { "does NOT wait" }
        );
        println!("probe: boot 1 ends: SYSTEM_RESET from vcpu0 and vcpu1 at once");
        el1::mark();
        Phase {
            boot: 2,
            passed: h.passed(),
            failed: h.failed(),
            hypercalls: hypercalls(),
            cpu_on_ok: false,
        }
        .store();
        // Both call at `at`, just before the deadline of vCPU 0's virtual timer, enabled but
        // masked (CNTV_CTL = ENABLE | IMASK: no interrupt, a marker as good as the others).
        let at = timer::now() + units::ns_to_ticks(2_000_000, timer::hz());
        // SAFETY: the timer stays masked (IMASK): setting its deadline raises no interrupt.
        unsafe {
            core::arch::asm!(
                "msr cntv_ctl_el0, {ctl}",
                "msr cntv_cval_el0, {cval}",
                "isb",
                ctl = in(reg) 0b11u64,
                cval = in(reg) at + RESET_LEAD_TICKS,
                options(nomem, nostack, preserves_flags)
            )
        };
        GO.store(at, Ordering::Release);
        reset_at(0, at)
    }

    /// Boot 2: after the concurrent reset; ends with CPU_ON(vCPU 1) racing SYSTEM_RESET.
    fn boot2(p: Phase, at_entry: &el1::State, hypercalls_at_entry: u32) -> ! {
        println!("probe: VM probe-shared, boot 2 of 3: after SYSTEM_RESET from both vCPUs at once");
        let mut h = Harness::resume(p.passed, p.failed);
        distributor_on();
        // Since boot 1's count: vcpu0's SYSTEM_RESET, vcpu1's if it reached Tandem before the
        // reset stopped vcpu1, and this boot's STATS call.
        let calls = hypercalls_at_entry
            .wrapping_sub(p.hypercalls)
            .wrapping_sub(1)
            & 0xf;
        println!(
            "reset-race: SYSTEM_RESET calls that reached Tandem: {calls} ({})",
            match calls {
                1 => "vcpu0's; vcpu1 was stopped before its call",
                2 => "vcpu0's and vcpu1's: Tandem coalesced them",
                _ => "unexpected",
            }
        );
        check!(
            h,
            "restart::vcpu0_fresh_after_reset",
            is_fresh(at_entry),
            "vcpu0 at entry: {}",
            NonZero(at_entry)
        );
        // SAFETY: the canaries and the last RAM word hold no Rust object (CANARY; the
        // `stage2` suite).
        let canaries = [0, 8].map(|off| unsafe { rt::load64(CANARY + off) });
        // SAFETY: as above.
        let last = unsafe { rt::load64(RAM_END - 8) };
        check!(
            h,
            "reset::ram_cleared_after_both_stopped",
            canaries == [0, 0] && last == 0,
            "canaries {:#x} {:#x}, last RAM word {last:#x}",
            canaries[0],
            canaries[1]
        );
        let a = affinity(VCPU1);
        check!(
            h,
            "reset::vcpu1_off_after_reset",
            a == 1,
            "AFFINITY_INFO(1)={a}"
        );
        vcpu1_life(&mut h, "restart::vcpu1_fresh_after_reset", CTX_AFTER_RESET);
        let off = order_off(CMD_OFF);
        check!(
            h,
            "race::vcpu1_off_before",
            off,
            "AFFINITY_INFO(1)={}",
            affinity(VCPU1)
        );

        println!("probe: boot 2 ends: CPU_ON(vcpu1), then at once SYSTEM_RESET");
        el1::mark();
        let next = Phase {
            boot: 3,
            passed: h.passed(),
            failed: h.failed(),
            hypercalls: hypercalls(),
            cpu_on_ok: false,
        };
        next.store();
        let accepted = Phase {
            cpu_on_ok: true,
            ..next
        }
        .encode();
        let r = w0(call(CPU_ON, &[VCPU1, rt::secondary_entry(), CTX_RACE]));
        if r == 0 {
            rtc_write(rtc::MR, accepted);
        }
        reset_at(0, 0)
    }

    /// Boot 3: after CPU_ON(vCPU 1) raced SYSTEM_RESET; prints the summary of all boots.
    fn boot3(p: Phase, at_entry: &el1::State, hypercalls_at_entry: u32) -> ! {
        println!("probe: VM probe-shared, boot 3 of 3: after CPU_ON(vcpu1) raced SYSTEM_RESET");
        let mut h = Harness::resume(p.passed, p.failed);
        distributor_on();
        // Since boot 2's count: its CPU_ON and SYSTEM_RESET, vcpu1's calls if it started
        // before the reset took it (VM_INFO, its console line), and this boot's STATS call.
        let vcpu1_calls = hypercalls_at_entry
            .wrapping_sub(p.hypercalls)
            .wrapping_sub(3)
            & 0xf;
        println!(
            "reset-race: vcpu1 made {vcpu1_calls} hypercalls between the racing CPU_ON and the reset ({})",
            if vcpu1_calls == 0 {
                "it never started"
            } else {
                "it started, and the reset stopped it"
            }
        );
        check!(
            h,
            "race::cpu_on_accepted",
            p.cpu_on_ok,
            "boot 2's CPU_ON(1) just before SYSTEM_RESET {}",
            if p.cpu_on_ok { "succeeded" } else { "FAILED" }
        );
        check!(
            h,
            "restart::vcpu0_fresh_after_race",
            is_fresh(at_entry),
            "vcpu0 at entry: {}",
            NonZero(at_entry)
        );
        // Time for a start that survived the reset to show: vcpu1 would report in.
        let until = timer::now() + units::ns_to_ticks(50_000_000, timer::hz());
        timer::spin_until(until, || ONLINE_SEQ.load(Ordering::Acquire) > 0);
        let (a, seq) = (affinity(VCPU1), ONLINE_SEQ.load(Ordering::Acquire));
        check!(
            h,
            "race::cpu_on_undone",
            a == 1 && seq == 0,
            "50 ms after the restart: AFFINITY_INFO(1)={a}, vcpu1 reported in {seq} times"
        );
        vcpu1_life(&mut h, "restart::vcpu1_fresh_after_race", CTX_AFTER_RACE);
        rtc_write(rtc::MR, 0);
        h.summary();
        rt::power_off()
    }
}
