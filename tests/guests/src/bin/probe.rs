//! `probe`: proves Tandem's guest path from inside a two-vCPU VM.
//!
//! Suites, in order (each check prints `[T] suite::name PASS|FAIL (detail)`):
//! - `hvc`: discovery (Call UID, Revision) and `VM_INFO`;
//! - `psci`: versions and features, AFFINITY_INFO, CPU_ON of vCPU 1 (which prints
//!   `vcpu1 online ctx=…` and checks `VM_INFO`), ALREADY_ON, bad MPIDR, CPU_OFF, bad entry
//!   point, CPU_ON again;
//! - `vgic`: distributor and redistributor ID registers, byte-wide IPRIORITYR writes,
//!   GICR_WAKER, an SGI to vCPU 1 and one to self;
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
//! | `vtimer-latency` | the virtual timer's condition becoming true while the vCPU runs → the guest's IRQ vector | 64 (4 × 16 start phases) | mean of dithered samples |
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
    use test_guests::gic::{self, GICD_BASE, gicd, gicr, sgi};
    use test_guests::harness::Harness;
    use test_guests::smccc::{hvc, regs, w0};
    use test_guests::units::Deci;
    use test_guests::{PHYS_RTC, PHYS_UART, RAM_END, check, println, rt, timer, units};

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

    fn call(fid: FunctionId, args: &[u64]) -> [u64; 4] {
        hvc(regs(fid.to_reg(), args))
    }

    fn main(_dtb: u64) -> ! {
        let mut h = Harness::new();
        println!(
            "probe: test guest on vcpu{}, counter {} Hz",
            rt::cpu_index(),
            timer::hz()
        );
        discovery(&mut h);
        psci_bring_up(&mut h);
        vgic(&mut h);
        psci_off_and_on(&mut h);
        let deadline_ticks = vtimer(&mut h);
        stage2(&mut h);
        passthrough(&mut h);
        roundtrip(&mut h);
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
            if COMMAND.load(Ordering::Acquire) == CMD_OFF {
                println!("vcpu1: CPU_OFF");
                let e = pv_abi::guest::cpu_off();
                println!("[!] vcpu1: CPU_OFF returned {e:?}");
                rt::park();
            }
            rt::wfi();
            rt::irq_enable();
        }
    }

    fn vgic(h: &mut Harness) {
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
        d.write32(gicd::IGROUPR + word, d.read32(gicd::IGROUPR + word) | bit);
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
    }
}
