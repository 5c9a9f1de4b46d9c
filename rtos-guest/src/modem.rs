//! The modem workload (the `rtos` binary's normal mode).
//!
//! | Task    | Prio | Release                    | Work per job                                    |
//! |---------|------|----------------------------|-------------------------------------------------|
//! | `lte`   | 6    | every 1 ms (LTE subframe)  | 256-point Q15 FFT of a tone, check the peak bin |
//! | `gsm`   | 5    | every 4.615 ms (TDMA frame)| CRC-32 over a 2 KiB transport block              |
//! | `stats` | 3    | every 2 s                  | print the `rtos-stats:` line, ping CPU 1        |
//! | `at`    | 2    | console input (Tandem: its SPI; natively: polls each 10 ms) | AT-command interpreter |
//!
//! Priorities are rate-monotonic. Each periodic job's deadline is its period. Every job
//! measures its release latency (ideal release → running) and completion time (release →
//! done) from the counter; the kernel counts misses.

use core::fmt::Write;

use core::sync::atomic::{AtomicU32, Ordering};

use rtos_guest::arch::channel::Doorbell;
use rtos_guest::arch::console::{self, Backend};
use rtos_guest::arch::cpu::{self, IrqLock};
use rtos_guest::arch::{gic, kernel, smp, timer};
use rtos_guest::at::{self, LineEditor, Modem};
use rtos_guest::dsp;
use rtos_guest::fmt::LineBuf;
use rtos_guest::gic::PRIO_OTHER;
use rtos_guest::println;
use rtos_guest::stats::{Histogram, Report};
use rtos_guest::time::Ticks;

/// Workload statistics, shared by the periodic tasks and the reporters.
struct Shared {
    jobs: u64,
    misses: u64,
    release: Histogram,
    lte_resp_max_ns: u64,
    gsm_resp_max_ns: u64,
}

static SHARED: IrqLock<Shared> = IrqLock::new(Shared {
    jobs: 0,
    misses: 0,
    release: Histogram::new(),
    lte_resp_max_ns: 0,
    gsm_resp_max_ns: 0,
});

/// The statistics report, assembled from every source.
pub fn report() -> Report {
    let mut r = Report {
        irq_latency: timer::latency(),
        switches: kernel::switches(),
        ipi: smp::roundtrips(),
        vm: platform(),
        ..Report::default()
    };
    SHARED.with(|s| {
        r.periods = s.jobs;
        r.misses = s.misses;
        r.release = s.release.clone();
        r.response_max = [("lte", s.lte_resp_max_ns), ("gsm", s.gsm_resp_max_ns)];
    });
    r
}

/// `native` or `tandem`.
pub fn platform() -> &'static str {
    match console::backend() {
        Backend::Tandem => "tandem",
        Backend::Pl011 => "native",
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Lte,
    Gsm,
}

fn record(kind: Kind, release_latency: Ticks, response: Ticks, missed: bool) {
    let clock = cpu::clock();
    let (rel, resp) = (clock.to_ns(release_latency), clock.to_ns(response));
    SHARED.with(|s| {
        s.jobs += 1;
        s.misses += u64::from(missed);
        s.release.record(rel);
        let max = match kind {
            Kind::Lte => &mut s.lte_resp_max_ns,
            Kind::Gsm => &mut s.gsm_resp_max_ns,
        };
        *max = (*max).max(resp);
    });
}

/// When the periodic tasks release their first job: shortly after boot, on a common grid.
fn first_release() -> Ticks {
    static FIRST: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let _ = FIRST.compare_exchange(
        0,
        kernel::now().plus(cpu::clock().from_ms(10)).0,
        core::sync::atomic::Ordering::AcqRel,
        core::sync::atomic::Ordering::Acquire,
    );
    Ticks(FIRST.load(core::sync::atomic::Ordering::Acquire))
}

fn lte_task(_: usize) {
    let period = cpu::clock().from_us(1000);
    let mut latency = kernel::start_periodic(first_release(), period, period);
    let mut subframe = 0usize;
    loop {
        // One OFDM symbol's worth of FFT: a tone on a bin that moves every subframe.
        let bin = 1 + subframe % 100;
        let mut x = dsp::tone(bin, 12_000);
        dsp::fft_q15(&mut x);
        if dsp::peak_bin(&x) != bin {
            println!("rtos-guest: lte: FFT peak wrong in subframe {subframe}");
        }
        subframe += 1;
        let (end, next_latency) = kernel::wait_next_period();
        record(Kind::Lte, latency, end.response, end.missed);
        latency = next_latency;
    }
}

fn gsm_task(_: usize) {
    let period = cpu::clock().from_us(4615);
    let mut latency = kernel::start_periodic(first_release(), period, period);
    let mut block = [0u8; 2048];
    let mut frame = 0u32;
    loop {
        // A transport block that changes every TDMA frame, and its CRC computed twice
        // (whole and in bursts) as a self-check.
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(31).wrapping_add(frame) as u8;
        }
        let whole = dsp::crc32(&block);
        let mut crc = 0xFFFF_FFFF;
        for burst in block.chunks(114) {
            crc = dsp::crc32_update(crc, burst);
        }
        if crc ^ 0xFFFF_FFFF != whole {
            println!("rtos-guest: gsm: CRC mismatch in frame {frame}");
        }
        frame = frame.wrapping_add(1);
        let (end, next_latency) = kernel::wait_next_period();
        record(Kind::Gsm, latency, end.response, end.missed);
        latency = next_latency;
    }
}

fn print_stats() {
    let r = report();
    let (mut line, mut detail) = (LineBuf::<256>::new(), LineBuf::<256>::new());
    let mut hist = LineBuf::<256>::new();
    let _ = r.write_line(&mut line);
    let _ = r.write_detail(&mut detail);
    let _ = r.write_hist(&mut hist);
    let mut virtio = LineBuf::<512>::new();
    let _ = crate::backends::write_lines(&mut virtio, "", "\n");
    // One line per print: a print is formatted into 512 bytes, which the group no longer
    // fits in.
    for l in [line.as_str(), detail.as_str(), hist.as_str()] {
        println!("{l}");
    }
    console::write_str(virtio.as_str());
}

fn stats_task(_: usize) {
    let period = cpu::clock().from_ms(2000);
    kernel::start_periodic(first_release().plus(period), period, period);
    loop {
        smp::ping();
        print_stats();
        kernel::wait_next_period();
    }
}

/// The modem as the AT interpreter sees it (on the console and on the virtio AT port).
pub struct Handset;

impl Modem for Handset {
    /// The `rtos-stats:` line, then the back-ends' lines if there are any.
    fn stats_line(&self, w: &mut dyn Write) -> core::fmt::Result {
        let mut line = LineBuf::<256>::new();
        report().write_line(&mut line)?;
        w.write_str(line.as_str())?;
        crate::backends::write_lines(w, "\r\n", "")
    }

    fn signal_quality(&self) -> (u8, u8) {
        // rssi 0..=31 from the 99th-percentile release latency: a clean schedule is a strong
        // signal. (Not the worst one: a single late release at boot would read as no signal
        // for the rest of the run.)
        let p99_us = SHARED.with(|s| s.release.percentile(99)) / 1000;
        (31u64.saturating_sub(p99_us).min(31) as u8, 99)
    }

    fn platform(&self) -> &'static str {
        platform()
    }
}

/// The console-input interrupt (Tandem's, from the device tree), or 0: poll.
static CONSOLE_INTID: AtomicU32 = AtomicU32::new(0);

fn at_task(_: usize) {
    let poll = cpu::clock().from_ms(10);
    // On Tandem, input raises an edge SPI: sleep until it does. Natively, poll the PL011.
    let input = match CONSOLE_INTID.load(Ordering::Relaxed) {
        0 => None,
        intid => {
            gic::enable_spi(intid, PRIO_OTHER, cpu::mpidr());
            Doorbell::new(intid).ok()
        }
    };
    let mut editor = LineEditor::new();
    let mut bytes = [0u8; 32];
    loop {
        let n = console::read(&mut bytes);
        for &b in &bytes[..n] {
            match editor.feed(b) {
                at::Feed::Nothing => {}
                at::Feed::Echo(c) => {
                    let mut s = [0u8; 4];
                    console::write_str(char::from(c).encode_utf8(&mut s));
                }
                at::Feed::Erase => console::write_str("\x08 \x08"),
                at::Feed::Line => {
                    console::write_str("\n");
                    let mut out = LineBuf::<640>::new();
                    let _ = at::respond(editor.take(), &Handset, &mut out);
                    console::write_str(out.as_str());
                }
            }
        }
        if n == 0 {
            // Input arriving after the empty read rings the doorbell: the wait returns at once.
            match &input {
                Some(doorbell) => doorbell.wait(),
                None => kernel::sleep(poll),
            }
        }
    }
}

/// Creates the workload's tasks. The AT task waits for console input on `console_intid`
/// (Tandem's console-input SPI) if there is one, else polls every 10 ms.
pub fn spawn(console_intid: Option<u32>) {
    if pv_abi::guest::is_tandem() {
        CONSOLE_INTID.store(console_intid.unwrap_or(0), Ordering::Relaxed);
    }
    type Entry = fn(usize);
    let tasks: [(&str, u8, Entry); 4] = [
        ("lte", 6, lte_task),
        ("gsm", 5, gsm_task),
        ("stats", 3, stats_task),
        ("at", 2, at_task),
    ];
    for (name, prio, entry) in tasks {
        kernel::spawn(name, prio, entry, 0).expect("room for the workload's tasks");
    }
    let intid = CONSOLE_INTID.load(Ordering::Relaxed);
    let mut input = LineBuf::<32>::new();
    let _ = match intid {
        0 => write!(input, "polled every 10 ms"),
        n => write!(input, "input interrupt INTID {n}"),
    };
    println!(
        "rtos-guest: modem workload: lte 1 ms (prio 6), gsm 4.615 ms (prio 5), stats every 2 s, AT commands on the console ({})",
        input.as_str()
    );
}
