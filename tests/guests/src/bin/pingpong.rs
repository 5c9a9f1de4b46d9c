//! `pingpong`: the doorbell between two VMs, measured. Two VMs run this image, joined by a
//! plain channel; the VM named `ping` rings the channel and waits for the answer, the other
//! (`pong`) rings back from its interrupt. Each round trip is two doorbells: a
//! `CHANNEL_NOTIFY`, the peer's interrupt delivered (its vCPU woken from WFI), and its own
//! `CHANNEL_NOTIFY` back. `ping` prints
//!
//! ```text
//! exit-cost: path=doorbell-rtt iterations=1000 ns_per_op=… min_ns=… max_ns=…
//! [T] channel::doorbell_round_trips PASS (…)
//! ```
//!
//! in the probe's `exit-cost:` format (under `-icount shift=0,sleep=off` ns = instructions,
//! counted in the counter's 16 ns ticks); one doorbell VM→VM is half the round trip.
//!
//! # The vCPU switch between two VMs on one pCPU
//!
//! The VMs `switch-a` (priority 10, as the RTOS) and `switch-b` (priority 0) run this image
//! on pCPU 0, joined by a channel whose shared page holds a round number and `switch-a`'s
//! last counter read. Both read CNTPCT_EL0 for it: the physical count is the same in both
//! VMs, while each VM's virtual count has its own offset. Per round:
//!
//! 1. `switch-a` arms its virtual timer 50 µs ahead, reads the counter, stores it and the
//!    round's odd number, and executes WFI: Tandem blocks it and switches to `switch-b`;
//! 2. `switch-b`, always busy polling the round number, resumes in its polling loop, sees
//!    the new round, reads the counter and records the difference: `vcpu-switch`, A's WFI
//!    exit, the block, the scheduler picking B, the world switch between the VMs (stage 2,
//!    EL1 state, vGIC, timers), and at most one round of B's loop. It answers with the
//!    round's even number and polls on;
//! 3. `switch-a`'s deadline passes while `switch-b` runs: the EL2 timer interrupt, the
//!    injection, the preemption of the lower-priority VM, the world switch back. A's
//!    virtual counter read after its WFI, minus the deadline, is `vcpu-preempt` (the
//!    deadline is a tick boundary, so the figure is up to 15 ns above the path).
//!
//! 10 warm-up rounds, then 1,000 measured; each side prints its figure as an `exit-cost:`
//! line with the samples' median, p99, min and max (each a whole number of 16 ns ticks;
//! the mean is of the same samples, so only as exact as their start phases are spread).
//! `switch-a` sleeps with IRQs masked and takes its timer interrupt after its read.
//!
//! `switch-b` polls rather than yielding with WFE (Tandem's yield): QEMU never takes the WFE
//! trap to EL2 (its `HELPER(wfe)` only yields inside the emulator), so under QEMU a WFE loop
//! keeps the pCPU until its 10 ms slice ends.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pingpong: a Tandem test guest; it runs only on aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use test_guests::fdt;
    use test_guests::gic::{self, gicd};
    use test_guests::harness::Harness;
    use test_guests::units::{self, Deci};
    use test_guests::{check, println, rt, timer};

    test_guests::entry!(main);

    const ROUNDS: u64 = 1000;
    const WARM_UP: u64 = 10;
    const PRIORITY: u8 = 0x80;

    fn main(dtb: u64) -> ! {
        // SAFETY: the device tree Tandem placed at `dtb` (at most 64 KiB are read).
        let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, 64 << 10) };
        let model = fdt::root_property(blob, "model")
            .and_then(fdt::as_str)
            .unwrap_or("");
        let Some(ch) = fdt::find_compatible(blob, "tandem,channel") else {
            println!("pingpong: no channel in the device tree ({model})");
            rt::power_off();
        };
        let (Some(id), Some(intid)) = (ch.channel, ch.intid) else {
            println!("pingpong: the channel node has no id or interrupt");
            rt::power_off();
        };
        enable_doorbell(intid);
        if model.ends_with(" switch-a") || model.ends_with(" switch-b") {
            println!("pingpong: {model}, shared page at {:#x}", ch.base);
            switch(ch.base, model.ends_with(" switch-a"));
        }
        let ping = model.ends_with(" ping");
        println!(
            "pingpong: {} on channel {id}, doorbell INTID {intid}",
            if ping { "ping" } else { "pong" }
        );
        if ping {
            measure(u64::from(id));
        }
        answer(u64::from(id))
    }

    /// The channel's SPI: group 1, edge-triggered, enabled, to vCPU 0.
    fn enable_doorbell(intid: u32) {
        gic::distributor_on();
        gic::wake(0);
        let d = gic::distributor();
        let (word, bit) = (4 * (intid as usize / 32), 1u32 << (intid % 32));
        if gic::version() == 3 {
            d.write32(gicd::IGROUPR + word, d.read32(gicd::IGROUPR + word) | bit);
        }
        d.write8(gicd::IPRIORITYR + intid as usize, PRIORITY);
        let cfg = gicd::ICFGR + 4 * (intid as usize / 16);
        d.write32(cfg, d.read32(cfg) | 0b10 << (2 * (intid % 16)));
        d.write32(gicd::ISENABLER + word, bit);
        gic::cpu_interface_on();
        rt::irq_enable();
    }

    fn ring(channel: u64) -> bool {
        pv_abi::guest::channel_notify(channel as u32).is_ok()
    }

    /// Waits in WFI until the doorbell count passes `seen` (or 100 ms pass).
    fn wait_past(seen: u64) -> bool {
        let until = timer::now() + timer::hz() / 10;
        rt::wait_for_interrupt_until(until, || rt::irq_count(0) > seen)
    }

    /// `pong`: ring back every doorbell, forever.
    fn answer(channel: u64) -> ! {
        loop {
            let seen = rt::irq_count(0);
            while !wait_past(seen) {}
            ring(channel);
        }
    }

    /// `ping`: the round trips, then the figure.
    fn measure(channel: u64) {
        let mut h = Harness::new();
        let (mut min, mut max, mut total, mut lost) = (u64::MAX, 0, 0, 0);
        for i in 0..WARM_UP + ROUNDS {
            let seen = rt::irq_count(0);
            let t0 = timer::now();
            if !ring(channel) || !wait_past(seen) {
                lost += 1;
                continue;
            }
            let rtt = timer::now() - t0;
            if i >= WARM_UP {
                min = min.min(rtt);
                max = max.max(rtt);
                total += rtt;
            }
        }
        let ns = |ticks: u64| ticks * 1_000_000_000 / timer::hz();
        let done = ROUNDS.saturating_sub(lost);
        let avg = total.checked_div(done).unwrap_or(0);
        println!(
            "exit-cost: path=doorbell-rtt iterations={done} ns_per_op={}.0 min_ns={} max_ns={}",
            ns(avg),
            ns(min),
            ns(max)
        );
        check!(
            h,
            "channel::doorbell_round_trips",
            lost == 0,
            "{done} of {ROUNDS} round trips, {} ns each: one doorbell VM to VM {} ns",
            ns(avg),
            ns(avg) / 2
        );
        h.summary();
    }

    /// Measured rounds of the vCPU switch, after [`SWITCH_WARM_UP`].
    const SWITCH_ROUNDS: usize = 1000;
    const SWITCH_WARM_UP: usize = 10;
    /// How long `switch-a` sleeps per round: its timer's lead.
    const SWITCH_SLEEP_NS: u64 = 50_000;
    /// The shared page: `switch-b`'s ready word, the round, `switch-a`'s last counter read.
    const READY: u64 = 0;
    const ROUND: u64 = 8;
    const STAMP_A: u64 = 16;
    const READY_MAGIC: u64 = 0x5717_c4ed_0000_000b;

    fn shared(base: u64, offset: u64) -> u64 {
        // SAFETY: the channel's shared page, mapped in both VMs; no Rust object lives there.
        unsafe { rt::load64(base + offset) }
    }

    fn set_shared(base: u64, offset: u64, value: u64) {
        // SAFETY: as in `shared`.
        unsafe { rt::store64(base + offset, value) }
    }

    /// CNTPCT_EL0: the physical count, the same in both VMs (each VM's virtual count has
    /// its own offset). Tandem lets EL1 read it (CNTHCTL_EL2.EL1PCTEN).
    fn physical_count() -> u64 {
        let t: u64;
        // SAFETY: reads a counter register.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) t, options(nomem, nostack))
        };
        t
    }

    /// The vCPU switch between `switch-a` (`a`) and `switch-b` (module doc), then power off.
    fn switch(base: u64, a: bool) -> ! {
        let mut h = Harness::new();
        let mut ticks = [0u16; SWITCH_ROUNDS];
        let total = SWITCH_WARM_UP + SWITCH_ROUNDS;
        let measured_round = |r: usize| (SWITCH_WARM_UP..total).contains(&r);
        let mut measured = 0;
        if a {
            gic::enable_private(0, timer::VTIMER_INTID, PRIORITY);
            let lead = units::ns_to_ticks(SWITCH_SLEEP_NS, timer::hz());
            // `switch-b` runs whenever this VM sleeps.
            while shared(base, READY) != READY_MAGIC {
                let until = timer::now() + lead;
                timer::arm_at(until);
                rt::wait_for_interrupt_until(until, || false);
            }
            for round in 0..total {
                let odd = 2 * round as u64 + 1;
                rt::irq_disable();
                let deadline = timer::now() + lead;
                timer::arm_at(deadline);
                let after: u64;
                // SAFETY: stores to the shared page (no Rust object there), then `wfi`, which
                // Tandem traps and blocks on until the timer armed above fires.
                unsafe {
                    core::arch::asm!(
                        "mrs {t}, cntpct_el0",
                        "str {t}, [{stamp}]",
                        "str {odd}, [{round}]",
                        "wfi",
                        "mrs {t}, cntvct_el0",
                        t = out(reg) after,
                        stamp = in(reg) base + STAMP_A,
                        round = in(reg) base + ROUND,
                        odd = in(reg) odd,
                        options(nostack),
                    )
                };
                let answered = shared(base, ROUND) == odd + 1;
                rt::irq_enable(); // the timer's interrupt; the handler disables the timer
                if answered && measured_round(round) {
                    ticks[measured] =
                        after.saturating_sub(deadline).min(u64::from(u16::MAX)) as u16;
                    measured += 1;
                }
            }
        } else {
            set_shared(base, READY, READY_MAGIC);
            let last = 2 * total as u64 - 1;
            let mut seen = 0;
            // Busy: runnable all the time, so Tandem has it to switch to.
            while seen != last {
                let round = shared(base, ROUND);
                if round % 2 == 1 && round != seen {
                    let now = physical_count();
                    if measured_round((round as usize - 1) / 2) {
                        let a = shared(base, STAMP_A);
                        ticks[measured] = now.saturating_sub(a).min(u64::from(u16::MAX)) as u16;
                        measured += 1;
                    }
                    seen = round;
                    set_shared(base, ROUND, round + 1);
                }
            }
        }
        let hz = timer::hz();
        let got = &mut ticks[..measured];
        let sum: u64 = got.iter().map(|&t| u64::from(t)).sum();
        let (median, p99, max) = units::median_p99_max(got);
        let min = got.first().copied().unwrap_or(0);
        let ns = |t: u16| units::ticks_to_ns(u64::from(t), hz);
        let path = if a { "vcpu-preempt" } else { "vcpu-switch" };
        println!(
            "exit-cost: path={path} iterations={measured} ns_per_op={} median_ns={} p99_ns={} min_ns={} max_ns={}",
            Deci(units::deci_ns_per_call(sum, hz, measured.max(1) as u64)),
            ns(median),
            ns(p99),
            ns(min),
            ns(max)
        );
        check!(
            h,
            "sched::vcpu_switch_rounds",
            measured == SWITCH_ROUNDS,
            "{measured} of {SWITCH_ROUNDS} rounds switched to the other VM and back"
        );
        h.summary();
        rt::power_off()
    }
}
