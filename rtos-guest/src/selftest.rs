//! In-guest self-test (`--features selftest`): ABI conformance and RTOS tests.
//!
//! A controller task (priority 10) runs the tests one after another, spawning helper tasks
//! above or below its own priority as each test needs. Each test prints
//! `[T] <suite>::<test> PASS|FAIL`; the run ends with `N passed, N failed` and PSCI
//! SYSTEM_OFF, so QEMU exits. The ABI suite needs Tandem; natively it only checks that the
//! guest correctly finds itself *not* on Tandem, and says the rest was skipped.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pv_abi::{AbiVersion, FunctionId, HvcArgs, StatId, Status};
use rtos_guest::arch::cpu::{self, IrqLock};
use rtos_guest::arch::kernel::{self, Mutex, Queue, Semaphore};
use rtos_guest::arch::{smp, timer};
use rtos_guest::println;
use rtos_guest::sched::Error;
use rtos_guest::time::Ticks;

const CONTROLLER_PRIO: u8 = 10;

struct Runner {
    passed: u32,
    failed: u32,
}

impl Runner {
    fn check(&mut self, suite: &str, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        println!("[T] {suite}::{name} {}", if ok { "PASS" } else { "FAIL" });
    }
}

/// The objects the helper tasks share with the controller.
#[derive(Clone, Copy)]
struct Objs {
    sem: Semaphore,
    done: Semaphore,
    gate: Semaphore,
    mutex: Mutex,
    queue: Queue,
}

static OBJS: IrqLock<Option<Objs>> = IrqLock::new(None);

fn objs() -> Objs {
    OBJS.with(|o| o.expect("objects created before helpers run"))
}

/// An ordered record of events (small integers) written by the tasks under test.
static EVENTS: IrqLock<([u8; 16], usize)> = IrqLock::new(([0; 16], 0));

fn event(e: u8) {
    EVENTS.with(|(log, n)| {
        if *n < log.len() {
            log[*n] = e;
            *n += 1;
        }
    });
}

fn take_events() -> ([u8; 16], usize) {
    EVENTS.with(core::mem::take)
}

fn events_are(expected: &[u8]) -> bool {
    let (log, n) = take_events();
    let ok = &log[..n] == expected;
    if !ok {
        println!("    events {:?}, expected {:?}", &log[..n], expected);
    }
    ok
}

fn ms(n: u64) -> Ticks {
    cpu::clock().from_ms(n)
}

fn us(n: u64) -> Ticks {
    cpu::clock().from_us(n)
}

/// Waits (sleeping 1 ms at a time, at most `limit_ms`) until `cond` holds.
fn wait_until(limit_ms: u64, cond: impl Fn() -> bool) -> bool {
    for _ in 0..limit_ms {
        if cond() {
            return true;
        }
        kernel::sleep(ms(1));
    }
    cond()
}

// ---- ABI conformance (Tandem only) ----

fn raw_hvc(fid: u32, args: &[u64]) -> [u64; 4] {
    let mut a = HvcArgs::new(FunctionId::new(fid));
    for (i, &v) in args.iter().enumerate() {
        a = a.with(i + 1, v);
    }
    pv_abi::guest::hvc_call(a).x
}

fn console_write_raw(bytes: &[u8]) -> [u64; 4] {
    let (regs, _) = pv_abi::pack_bytes(bytes);
    let mut args = [0u64; 7];
    args[0] = bytes.len() as u64;
    args[1..].copy_from_slice(&regs);
    raw_hvc(0xC600_0002, &args)
}

fn abi_suite(r: &mut Runner) {
    if !pv_abi::guest::is_tandem() {
        // Natively the SMCCC vendor-hypervisor UID query must come back NOT_SUPPORTED.
        let uid = raw_hvc(pv_abi::smccc::VENDOR_HYP_CALL_UID.raw(), &[]);
        r.check("abi", "native_not_tandem", uid[0] as u32 == u32::MAX);
        println!("note: not running on Tandem: the ABI conformance tests are skipped");
        return;
    }
    r.check("abi", "is_tandem", true);
    r.check(
        "abi",
        "revision_1_2",
        pv_abi::guest::abi_version() == AbiVersion::new(1, 2),
    );
    r.check(
        "abi",
        "discover_1_2",
        pv_abi::guest::discover() == Ok(AbiVersion::new(1, 2)),
    );
    // ABI 1.1: the watchdog arms, pets and disarms; an hour and a millisecond is refused.
    r.check(
        "abi",
        "watchdog_arm_disarm",
        pv_abi::guest::watchdog(60_000).is_ok()
            && pv_abi::guest::watchdog(60_000).is_ok()
            && pv_abi::guest::watchdog(0).is_ok()
            && pv_abi::guest::watchdog(3_600_001) == Err(pv_abi::Status::InvalidParameter),
    );
    r.check(
        "abi",
        "version_1_2",
        pv_abi::guest::version() == Ok(AbiVersion::new(1, 2)),
    );
    // ABI 1.2: this VM is no end of any channel, so every channel call is refused.
    let invalid = Err(pv_abi::Status::InvalidParameter);
    r.check(
        "abi",
        "channel_calls_without_channel",
        pv_abi::guest::channel_notify(0) == invalid
            && pv_abi::guest::virtio_poll(0).map(|_| ()) == invalid
            && pv_abi::guest::virtio_interrupt(0, 1) == invalid,
    );
    let info = pv_abi::guest::vm_info();
    // VM ids start at 1 (as in Tandem's log); vCPU ids at 0.
    r.check(
        "abi",
        "vm_info",
        matches!(info, Ok(i) if i.vm_id >= 1 && i.vcpu_id == cpu::index() as u64 && (1..=64).contains(&i.vcpu_count)),
    );
    let w0 = console_write_raw(b"");
    r.check("abi", "console_write_0", w0[0] == 0 && w0[1] == 0);
    let w1 = console_write_raw(b"\n");
    r.check("abi", "console_write_1", w1[0] == 0 && w1[1] == 1);
    let line48: &[u8; 48] = b"[abi] a console write of exactly 48 bytes .....\n";
    let w48 = console_write_raw(line48);
    r.check("abi", "console_write_48", w48[0] == 0 && w48[1] == 48);
    let w49 = raw_hvc(0xC600_0002, &[49]);
    r.check(
        "abi",
        "console_write_49_invalid",
        w49[0] == Status::InvalidParameter.to_reg(),
    );
    let unknown = raw_hvc(0xC600_00FF, &[]);
    r.check(
        "abi",
        "unknown_call_not_supported",
        unknown[0] == Status::NotSupported.to_reg(),
    );
    let stats_ok = StatId::iter().all(|s| pv_abi::guest::stats(s).is_ok());
    let bad_stat = raw_hvc(0xC600_0005, &[StatId::COUNT as u64]);
    r.check(
        "abi",
        "stats_ids",
        stats_ok && bad_stat[0] == Status::InvalidParameter.to_reg(),
    );
    let uptime = (
        pv_abi::guest::stats(StatId::UptimeNs),
        pv_abi::guest::stats(StatId::UptimeNs),
    );
    r.check(
        "abi",
        "stats_uptime_monotonic",
        matches!(uptime, (Ok(a), Ok(b)) if b >= a && a > 0),
    );
    r.check("abi", "yield", pv_abi::guest::yield_now().is_ok());
    let mut buf = [0u8; 16];
    r.check(
        "abi",
        "console_read_empty",
        pv_abi::guest::console_read(&mut buf).is_ok(),
    );
}

// ---- RTOS ----

fn sem_waiter(_: usize) {
    let o = objs();
    o.sem.wait();
    event(1);
    let _ = o.done.post();
}

fn test_semaphore_wakes_waiter(r: &mut Runner) {
    let o = objs();
    let ok_spawn = kernel::spawn("waiter", CONTROLLER_PRIO + 1, sem_waiter, 0).is_ok();
    // The waiter ran at once (more urgent) and is now blocked.
    let blocked = events_are(&[]);
    let _ = o.sem.post();
    // Posting made it ready, and being more urgent it ran before `post` returned.
    let ran = events_are(&[1]);
    o.done.wait();
    r.check("rtos", "semaphore_wakes_waiter", ok_spawn && blocked && ran);
}

fn test_semaphore_counts(r: &mut Runner) {
    let ok = match Semaphore::new(0, 3) {
        Ok(s) => {
            let posts = (0..3).all(|_| s.post().is_ok());
            let full = s.post() == Err(Error::Full);
            let count = s.count() == 3;
            let takes = (0..3).all(|_| s.try_wait());
            posts && full && count && takes && !s.try_wait()
        }
        Err(_) => false,
    };
    r.check("rtos", "semaphore_counts", ok);
}

fn pi_low(_: usize) {
    let o = objs();
    let guard = o.mutex.lock();
    let _ = o.done.post(); // "I hold the mutex"
    o.gate.wait(); // hold it until the controller has set the scene
    event(1); // L runs (boosted to H's priority) before M
    drop(guard); // H takes the mutex and runs at once; L is back at priority 2
    event(4); // so this comes after H and M
    let _ = o.done.post();
}

fn pi_high(_: usize) {
    let o = objs();
    let guard = o.mutex.lock();
    event(2);
    drop(guard);
    let _ = o.done.post();
}

fn pi_medium(_: usize) {
    event(3);
    let _ = objs().done.post();
}

fn test_mutex_priority_inheritance(r: &mut Runner) {
    let o = objs();
    let low = kernel::spawn("pi-low", 2, pi_low, 0);
    o.done.wait(); // low holds the mutex and waits on the gate
    let high = kernel::spawn("pi-high", 8, pi_high, 0);
    kernel::sleep(ms(1)); // let high run and block on the mutex
    // high is blocked on the mutex, so low must now have high's priority.
    let prio = low.map(kernel::priority);
    let boosted = prio == Ok((2, 8));
    let owner_ok = o.mutex.owner() == low.ok();
    if !boosted || !owner_ok {
        println!("    low's priority {prio:?}, owner {:?}", o.mutex.owner());
    }
    let medium = kernel::spawn("pi-medium", 5, pi_medium, 0);
    let _ = o.gate.post(); // low and medium are both ready now
    for _ in 0..3 {
        o.done.wait();
    }
    // With inheritance: low (boosted) 1, high 2, medium 3, low 4. Without it, medium (5)
    // would run before low (2) and so delay high (8): 3, 1, 2, 4.
    let order = events_are(&[1, 2, 3, 4]);
    r.check(
        "rtos",
        "mutex_priority_inheritance",
        boosted && owner_ok && order && high.is_ok() && medium.is_ok(),
    );
}

fn queue_consumer(_: usize) {
    let o = objs();
    for _ in 0..3 {
        let m = o.queue.recv();
        event(m as u8);
    }
    let _ = o.done.post();
}

fn test_queue(r: &mut Runner) {
    let o = objs();
    // FIFO and capacity, no blocking.
    let q = Queue::new(4);
    let fifo = match q {
        Ok(q) => {
            let sent = (1..=4).all(|m| q.try_send(m).is_ok());
            let full = q.try_send(5) == Err(Error::Full);
            let order = (1..=4).all(|m| q.try_recv() == Ok(m));
            sent && full && order && q.try_recv() == Err(Error::Empty)
        }
        Err(_) => false,
    };
    r.check("rtos", "queue_fifo_capacity", fifo);
    // A blocked receiver gets each message as it is sent.
    let spawned = kernel::spawn("consumer", CONTROLLER_PRIO + 1, queue_consumer, 0).is_ok();
    let mut stepwise = true;
    for m in [7u64, 8, 9] {
        o.queue.send(m);
        let (log, n) = EVENTS.with(|ev| *ev);
        stepwise &= n > 0 && log[n - 1] == m as u8;
    }
    o.done.wait();
    r.check(
        "rtos",
        "queue_blocking_handoff",
        spawned && stepwise && events_are(&[7, 8, 9]),
    );
}

static WAKE_ERRORS: AtomicU32 = AtomicU32::new(0);

fn sleeper(delay_ms: usize) {
    let deadline = kernel::now().plus(ms(delay_ms as u64));
    kernel::sleep_until(deadline);
    if kernel::now() < deadline {
        WAKE_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
    event(delay_ms as u8);
    let _ = objs().done.post();
}

fn test_timer_ordering(r: &mut Runner) {
    let o = objs();
    WAKE_ERRORS.store(0, Ordering::Relaxed);
    let spawned = [3usize, 1, 2, 5, 4]
        .iter()
        .all(|&d| kernel::spawn("sleeper", CONTROLLER_PRIO + 1, sleeper, d).is_ok());
    for _ in 0..5 {
        o.done.wait();
    }
    let ordered = events_are(&[1, 2, 3, 4, 5]);
    r.check(
        "rtos",
        "timer_ordering",
        spawned && ordered && WAKE_ERRORS.load(Ordering::Relaxed) == 0,
    );
}

fn test_sleep_accuracy(r: &mut Runner) {
    let deadline = kernel::now().plus(ms(5));
    kernel::sleep_until(deadline);
    let late = kernel::now().since(deadline);
    r.check(
        "rtos",
        "sleep_not_early_not_late",
        kernel::now() >= deadline && late < ms(1),
    );
}

const PERIODIC_JOBS: u64 = 10;
static PERIODIC_BAD: AtomicU32 = AtomicU32::new(0);
static PERIODIC_MAX_LAT: AtomicU64 = AtomicU64::new(0);

fn periodic_task(_: usize) {
    let period = ms(2);
    let first = kernel::now().plus(ms(1));
    let mut latency = kernel::start_periodic(first, period, period);
    for job in 0..PERIODIC_JOBS {
        PERIODIC_MAX_LAT.fetch_max(latency.0, Ordering::Relaxed);
        if latency >= period {
            PERIODIC_BAD.fetch_add(1, Ordering::Relaxed);
        }
        let (end, next) = kernel::wait_next_period();
        let grid = first.plus(Ticks(period.0 * (job + 1)));
        if end.missed || end.next_release != grid {
            PERIODIC_BAD.fetch_add(1, Ordering::Relaxed);
        }
        latency = next;
    }
    let _ = objs().done.post();
}

fn test_periodic_release(r: &mut Runner) {
    PERIODIC_BAD.store(0, Ordering::Relaxed);
    let spawned = kernel::spawn("periodic", CONTROLLER_PRIO + 2, periodic_task, 0).is_ok();
    objs().done.wait();
    let lat_ns = cpu::clock().to_ns(Ticks(PERIODIC_MAX_LAT.load(Ordering::Relaxed)));
    println!("    {PERIODIC_JOBS} jobs of 2 ms, worst release latency {lat_ns} ns");
    r.check(
        "rtos",
        "periodic_release",
        spawned && PERIODIC_BAD.load(Ordering::Relaxed) == 0,
    );
}

fn marker(e: usize) {
    event(e as u8);
    let _ = objs().done.post();
}

fn test_preemption(r: &mut Runner) {
    let o = objs();
    let lower = kernel::spawn("lower", CONTROLLER_PRIO - 1, marker, 1).is_ok();
    let higher = kernel::spawn("higher", CONTROLLER_PRIO + 1, marker, 2).is_ok();
    event(3);
    o.done.wait();
    o.done.wait();
    // The more urgent task ran inside `spawn`; the less urgent one only once we blocked.
    r.check(
        "rtos",
        "fixed_priority_preemption",
        lower && higher && events_are(&[2, 3, 1]),
    );
}

static FP_BAD: AtomicU32 = AtomicU32::new(0);

fn fp_burner(seed: usize) {
    // Floating-point work interleaved with preemptions: a corrupted FP register would change
    // the result.
    let mut acc = 0.0f64;
    let x = core::hint::black_box(seed as f64 + 0.5);
    for i in 0..20_000 {
        acc = core::hint::black_box(acc * 0.999 + x * (i % 7) as f64);
    }
    let mut reference = 0.0f64;
    for i in 0..20_000 {
        reference = reference * 0.999 + x * (i % 7) as f64;
    }
    if acc.to_bits() != reference.to_bits() {
        FP_BAD.fetch_add(1, Ordering::Relaxed);
    }
    let _ = objs().done.post();
}

fn fp_interrupter(_: usize) {
    let period = us(50);
    kernel::start_periodic(kernel::now().plus(period), period, period);
    for i in 0..40 {
        let v = core::hint::black_box(i as f64 * 3.25 - 1.0);
        core::hint::black_box(v * v + 7.0);
        kernel::wait_next_period();
    }
    let _ = objs().done.post();
}

fn test_fp_preserved(r: &mut Runner) {
    FP_BAD.store(0, Ordering::Relaxed);
    let a = kernel::spawn("fp-a", 4, fp_burner, 1).is_ok();
    let b = kernel::spawn("fp-b", 4, fp_burner, 2).is_ok();
    let c = kernel::spawn("fp-irq", CONTROLLER_PRIO + 1, fp_interrupter, 0).is_ok();
    for _ in 0..3 {
        objs().done.wait();
    }
    r.check(
        "rtos",
        "fp_simd_preserved_across_switches",
        a && b && c && FP_BAD.load(Ordering::Relaxed) == 0,
    );
}

fn test_timer_latency(r: &mut Runner) {
    let h = timer::latency();
    println!(
        "    timer irq latency over {} irqs: min {} ns, mean {} ns, p99 {} ns, max {} ns",
        h.count(),
        h.min(),
        h.mean(),
        h.percentile(99),
        h.max()
    );
    r.check(
        "rtos",
        "timer_irq_latency_recorded",
        h.count() > 0 && h.max() < 1_000_000,
    );
}

fn smp_suite(r: &mut Runner, cpu1_started: bool) {
    if !cpu1_started {
        println!("note: CPU 1 was not started: the SMP tests are skipped");
        return;
    }
    r.check("smp", "cpu1_online", wait_until(200, smp::online));
    let before = smp::roundtrips().0;
    smp::ping();
    let arrived = wait_until(200, || smp::roundtrips().0 > before);
    let (_, rtt) = smp::roundtrips();
    println!("    SGI round trip cpu0 -> cpu1 -> cpu0: {rtt} ns");
    r.check("smp", "sgi_roundtrip", arrived && smp::pings_received() > 0);
}

static CPU1_STARTED: AtomicU32 = AtomicU32::new(0);

fn controller(_: usize) {
    let objs_ok = (|| -> Result<Objs, Error> {
        Ok(Objs {
            sem: Semaphore::new(0, 8)?,
            done: Semaphore::new(0, 8)?,
            gate: Semaphore::new(0, 1)?,
            mutex: Mutex::new()?,
            queue: Queue::new(1)?,
        })
    })();
    let mut r = Runner {
        passed: 0,
        failed: 0,
    };
    match objs_ok {
        Ok(o) => {
            OBJS.with(|slot| *slot = Some(o));
            abi_suite(&mut r);
            test_semaphore_wakes_waiter(&mut r);
            test_semaphore_counts(&mut r);
            test_mutex_priority_inheritance(&mut r);
            test_queue(&mut r);
            test_timer_ordering(&mut r);
            test_sleep_accuracy(&mut r);
            test_periodic_release(&mut r);
            test_preemption(&mut r);
            test_fp_preserved(&mut r);
            test_timer_latency(&mut r);
            smp_suite(&mut r, CPU1_STARTED.load(Ordering::Relaxed) != 0);
        }
        Err(e) => {
            println!("selftest: cannot create kernel objects: {e:?}");
            r.failed += 1;
        }
    }
    println!("{} passed, {} failed", r.passed, r.failed);
    let _ = pv_abi::guest::system_off();
}

/// Creates the controller task. `cpu1_started`: whether CPU 1 was brought up.
pub fn spawn(cpu1_started: bool) {
    CPU1_STARTED.store(u32::from(cpu1_started), Ordering::Relaxed);
    kernel::spawn("selftest", CONTROLLER_PRIO, controller, 0)
        .expect("room for the self-test controller");
}
