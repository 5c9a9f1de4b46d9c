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
}
