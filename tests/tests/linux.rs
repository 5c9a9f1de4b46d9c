//! The default machine: paravirtualized Linux beside the RTOS, driven through
//! the Linux shell on hvc0. One boot for the whole scenario (a Linux boot is
//! the expensive part), each step checked by console markers.

use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu, built_image};
use system_tests::shell::{PROMPT, STEP, field, rtos_stats_after, run};

const BOOT: Duration = Duration::from_secs(240);

fn machine() -> MachineConfig {
    let image = built_image("qemu-virt", "tandem.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    m
}

/// On a GICv2 machine (`tandem-gic2.bin`, `gic-version=2`) Linux finds its GIC-400 and
/// boots to the shell (its timer and console interrupts through the GICv2 driver, IPIs
/// through GICD_SGIR), sees Tandem, and the RTOS beside it misses no deadline.
#[test]
fn linux_beside_rtos_on_gicv2() {
    let image = built_image("qemu-virt", "tandem-gic2.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.gic = 2;
    m.icount = true;
    let mut q = Qemu::spawn("linux_beside_rtos_on_gicv2", &m).unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("rtos-guest: GICv2 (GICD 0x8000000, GICC 0x8010000)", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    run(
        &mut q,
        "cat /sys/hypervisor/type",
        "linux | tandem
",
    );
    run(
        &mut q,
        "nproc",
        "linux | 2
",
    );
    // The GICv2 driver (irq-gic: "GIC-0") carries the timer and the console input.
    run(
        &mut q,
        "grep -c -e 'GIC-0  27 Level' -e 'GIC-0  32 Edge' /proc/interrupts",
        "linux | 2
",
    );
    // IPIs between the two vCPUs (trapped GICD_SGIR writes) arrive.
    run(
        &mut q,
        "(i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo loop-done) & (i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done) & wait; awk '/Function call/ { print ($2 > 0 && $3 > 0) ? \"ipis-ok\" : \"no-ipis\" }' /proc/interrupts",
        "linux | ipis-ok\n",
    );
    let mark = q.log().len();
    q.wait_for("rtos-stats:", STEP)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + STEP;
    let stats = loop {
        if let Some(line) = rtos_stats_after(&q.log(), mark) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(field(&stats, "periods") > 0, "{stats}");
    assert_eq!(
        field(&stats, "misses"),
        0,
        "{}",
        q.failure(&format!("the RTOS missed deadlines beside Linux: {stats}"))
    );
    eprintln!("{stats}");
}

/// Linux boots to a shell on Tandem's console, sees Tandem, uses both vCPUs,
/// reboots and powers off as a VM, while the RTOS beside it keeps every deadline.
#[test]
fn linux_beside_rtos_lifecycle() {
    let mut q =
        Qemu::spawn("linux_beside_rtos_lifecycle", &machine()).unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("tandem: Tandem hypervisor detected, ABI 1.2", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));

    run(&mut q, "cat /sys/hypervisor/type", "linux | tandem\n");
    run(&mut q, "cat /sys/hypervisor/version", "linux | 1.2\n");
    run(&mut q, "nproc", "linux | 2\n");
    run(
        &mut q,
        "dmesg | grep -c -e 'tandem: Tandem hypervisor detected' -e 'hvc_tandem: console on hvc0'",
        "linux | 2\n",
    );
    run(
        &mut q,
        "test $(cat /sys/hypervisor/stats/hypercalls) -gt 0 && echo stats-ok",
        "linux | stats-ok\n",
    );
    // The channel counters of ABI 1.2 are there and read as numbers.
    run(
        &mut q,
        "n=0; for s in channel_doorbells channel_denied virtio_forwarded virtio_notifies; \
         do test $(cat /sys/hypervisor/stats/$s) -ge 0 && n=$((n+1)); done; echo channel-stats-$n",
        "linux | channel-stats-4\n",
    );
    // The default set gives Linux virtio devices over channels: probing them was forwarded
    // to the modem, and their queues were notified.
    run(
        &mut q,
        "cd /sys/hypervisor/stats && test $(cat virtio_forwarded) -gt 0 && \
         test $(cat virtio_notifies) -gt 0 && echo virtio-stats-ok; cd",
        "linux | virtio-stats-ok\n",
    );
    // A small workload on both vCPUs.
    run(
        &mut q,
        "(dd if=/dev/zero bs=64k count=64 2>/dev/null | md5sum) & (i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo loop-done) & wait",
        "linux | loop-done\n",
    );

    // From here on — Linux at its shell, then working, rebooting and powering off —
    // the RTOS must not miss a single deadline.
    let baseline = rtos_stats_after(&q.log(), 0).map_or(0, |l| field(&l, "misses"));
    let mark = q.log().len();
    q.wait_for("rtos-stats:", STEP)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + STEP;
    let stats = loop {
        if let Some(line) = rtos_stats_after(&q.log(), mark) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line after the workload")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(field(&stats, "periods") > 0, "{stats}");
    assert_eq!(
        field(&stats, "misses"),
        baseline,
        "{}",
        q.failure(&format!(
            "RTOS missed deadlines while Linux worked: {stats}"
        ))
    );

    // Reboot: Tandem restarts the Linux VM from its pristine image.
    let boots = q.log().matches("Run /init as init process").count();
    q.send("reboot -f\n").unwrap();
    q.wait_for("'linux' resetting (PSCI SYSTEM_RESET)", STEP)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + BOOT;
    while q.log().matches("Run /init as init process").count() <= boots {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("Linux did not come back after reboot")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_reboot = q.log().len();
    let deadline = std::time::Instant::now() + BOOT;
    while !q.log()[after_reboot..].contains(PROMPT) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no shell after reboot")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run(&mut q, "cat /sys/hypervisor/type", "linux | tandem\n");

    // Power off: only the Linux VM stops; the RTOS carries on.
    q.send("poweroff -f\n").unwrap();
    q.wait_for("'linux' stopped: powered off by the guest", STEP)
        .unwrap_or_else(|e| panic!("{e}"));
    let off = q.log().len();
    let deadline = std::time::Instant::now() + STEP;
    while rtos_stats_after(&q.log(), off).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("the RTOS stopped with Linux")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = rtos_stats_after(&q.log(), off).unwrap();
    assert_eq!(
        field(&last, "misses"),
        baseline,
        "{}",
        q.failure(&format!("RTOS missed deadlines: {last}"))
    );
    let log = q.log();
    assert!(
        !log.contains("EL2 FAULT") && !log.contains("PANIC"),
        "{}",
        q.failure("Tandem faulted")
    );
}

/// The single-core handset: the RTOS (priority 10) and Linux share physical
/// CPU 0. Under a Linux CPU, fork/exec and memory load, and through a Linux
/// crash and its reload, the RTOS preempts Linux (and Tandem's reload work)
/// on every deadline: no miss. Its CPU switches to it ahead of its deadline,
/// and it waits for its timer in place, so under stress its mean release
/// latency stays within `SHARED_LAT_MEAN_NS` (measured 0.80 µs) and its worst
/// case within `SHARED_LAT_MAX_NS`, issue 11's target (measured 1.07 µs), the
/// same every run: the stress starts from Linux's command line and nothing is
/// typed before the report.
#[test]
fn single_core_rtos_preempts_linux() {
    const SHARED_LAT_MAX_NS: u64 = 3_000;
    const SHARED_LAT_MEAN_NS: u64 = 1_000;
    let (mut q, stats) = boot_stressed("single-core", "single_core_rtos_preempts_linux", 2, 1);
    let stats = &stats[0];
    // Arm PV time: Linux found it and counts the RTOS's runs while it was
    // busy as steal (the 8th /proc/stat column, in 10 ms ticks; 4 here).
    assert!(
        q.log().contains("arm-pv: using stolen time PV"),
        "{}",
        q.failure("Linux did not take up Arm PV time")
    );
    let steal = proc_stat_steal(&mut q, "cpu");
    assert!(
        steal > 0,
        "{}",
        q.failure("no steal time in /proc/stat after a stressed Linux shared its CPU")
    );
    let lat_mean = field(stats, "lat_mean_ns");
    assert!(
        lat_mean <= SHARED_LAT_MEAN_NS,
        "{}",
        q.failure(&format!(
            "RTOS mean latency {lat_mean} ns > {SHARED_LAT_MEAN_NS} ns on the shared pCPU: {stats}"
        ))
    );
    let lat_max = field(stats, "lat_max_ns");
    assert!(
        lat_max <= SHARED_LAT_MAX_NS,
        "{}",
        q.failure(&format!(
            "RTOS worst-case latency {lat_max} ns > {SHARED_LAT_MAX_NS} ns on the shared pCPU: {stats}"
        ))
    );

    // Linux crashes: Tandem reloads it on the same pCPU, in pieces between
    // which the RTOS keeps running. Tandem's own work on the crash (its log
    // lines, a fresh vGIC) delays a release by a few µs once; none is missed.
    // The reloaded Linux has the same command line, so it runs the stress again.
    let mark = q.log().len();
    q.send("echo c > /proc/sysrq-trigger\n").unwrap();
    wait_after(&mut q, mark, "'linux' restarted", STEP);
    wait_after(&mut q, mark, PROMPT, BOOT);
    let stats = next_rtos_stats(&mut q);
    eprintln!("after the crash: {stats}");
    assert_eq!(
        field(&stats, "misses"),
        0,
        "{}",
        q.failure(&format!(
            "the RTOS missed deadlines while Linux was reloaded: {stats}"
        ))
    );
}

/// Boots `tandem-layout-<layout>-stress<rounds>.bin` under -icount: its Linux runs
/// `tandem-stress rounds` as its shell starts (`tandem.stress=ROUNDS`), so with nothing
/// typed the stress begins at the same point of virtual time every run. Returns each
/// RTOS's first `rtos-stats:` line after `stress-done`, checked for no misses (figures
/// that repeat run to run), once Linux is at its prompt with `cpus` CPUs.
fn boot_stressed(layout: &str, test: &str, rounds: u32, cpus: u32) -> (Qemu, Vec<String>) {
    let image = built_image(
        "qemu-virt",
        &format!("tandem-layout-{layout}-stress{rounds}.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    let mut q = Qemu::spawn(test, &m).unwrap_or_else(|e| panic!("{e}"));
    let tags: &[&str] = if layout == "consolidated" {
        &["rtos", "rtos2"]
    } else {
        &["rtos"]
    };
    q.wait_for("linux | stress-done", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + STEP;
    let stats = loop {
        let log = q.log();
        // From the end of the stress's line, not from how much log has been read by now.
        let first = |tag: &str| {
            let at = log.find("linux | stress-done")?;
            let done = at + log[at..].find('\n')?;
            let marker = format!(" {tag} | rtos-stats:");
            let at = done + log[done..].find(&marker)?;
            let end = at + log[at..].find('\n')?;
            Some(log[at..end].trim().to_string())
        };
        if let Some(lines) = tags.iter().map(|t| first(t)).collect::<Option<Vec<_>>>() {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line after the stress")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for line in &stats {
        eprintln!("after the stress: {line}");
        assert!(
            field(line, "periods") > 0 && field(line, "misses") == 0,
            "{}",
            q.failure(&format!(
                "the RTOS missed deadlines beside a stressed Linux: {line}"
            ))
        );
    }
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    run(&mut q, "nproc", &format!("linux | {cpus}\n"));
    (q, stats)
}

/// The steal column of `/proc/stat`'s line for `cpu`
/// (`cpu` is the total, `cpu0` the first CPU).
fn proc_stat_steal(q: &mut Qemu, cpu: &str) -> u64 {
    let mark = q.log().len();
    run(
        q,
        &format!("set -- $(grep '^{cpu} ' /proc/stat); echo steal=$9."),
        "linux | steal=",
    );
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let log = q.log();
        // The trailing dot tells a complete number from one still arriving.
        if let Some(value) = log[mark..]
            .lines()
            .find_map(|l| l.split("linux | steal=").nth(1))
            .and_then(|v| v.split_once('.'))
        {
            return value.0.parse().unwrap_or_else(|_| {
                panic!("{}", q.failure(&format!("bad steal value {:?}", value.0)))
            });
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no steal value")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `shared` layout: the RTOS on pCPU 0 beside Linux vCPU 0, Linux vCPU 1
/// alone on pCPU 1. Under stress the RTOS misses nothing, 99 % of its releases
/// come within [`SHARED_STRESSED_P99_NS`] (measured 1.6 µs) and the worst
/// within [`BUSY_PCPUS_LAT_MAX_NS`] (measured 6.4 µs); Linux's CPU 0 shows
/// steal time (Arm PV time) while its CPU 1, which shares with nobody, shows
/// none (measured: 8 ticks, and 0).
#[test]
fn shared_layout_steal_only_where_shared() {
    /// Before the RTOS's way in stopped losing other CPUs' turns: 2.4 µs.
    const SHARED_STRESSED_P99_NS: u64 = 2_000;
    let (mut q, stats) = boot_stressed("shared", "shared_layout_steal_only_where_shared", 4, 2);
    assert_busy_latency(&q, &stats[0]);
    let p99 = field(&stats[0], "lat_p99_ns");
    assert!(
        p99 <= SHARED_STRESSED_P99_NS,
        "{}",
        q.failure(&format!(
            "RTOS p99 latency {p99} ns > {SHARED_STRESSED_P99_NS} ns beside stressed Linux: {}",
            stats[0]
        ))
    );
    let (cpu0, cpu1) = (
        proc_stat_steal(&mut q, "cpu0"),
        proc_stat_steal(&mut q, "cpu1"),
    );
    eprintln!("steal: cpu0 {cpu0}, cpu1 {cpu1}");
    assert!(
        cpu0 > 0 && cpu1 == 0,
        "{}",
        q.failure(&format!(
            "steal should show on CPU 0 (shared with the RTOS) only: cpu0 {cpu0}, cpu1 {cpu1}"
        ))
    );
}

/// The `consolidated` layout: two uniprocessor RTOS instances, each on its
/// own pCPU, beside an SMP Linux. Under Linux stress both keep every deadline
/// (worst cases measured: 6.2 and 10.6 µs).
#[test]
fn consolidated_layout_two_rtos_instances_keep_deadlines() {
    let (q, stats) = boot_stressed(
        "consolidated",
        "consolidated_layout_two_rtos_instances_keep_deadlines",
        2,
        2,
    );
    for line in &stats {
        assert_busy_latency(&q, line);
    }
}

/// An RTOS's worst-case release latency, under -icount, where two or more
/// pCPUs are busy. QEMU runs busy CPUs in turn, each turn ending at the next
/// timer deadline of any CPU, which Tandem's emulator tick keeps within 20 µs
/// of virtual time: so an RTOS may wait for other CPUs' turns, up to about a
/// tick, on top of Tandem's own path. Measured 6 to 11 µs under stress, in
/// `shared` and for both `consolidated` instances (before the tick had a timer
/// of its own: 0.3 to 0.9 ms, and misses).
const BUSY_PCPUS_LAT_MAX_NS: u64 = 25_000;

fn assert_busy_latency(q: &Qemu, stats: &str) {
    let lat_max = field(stats, "lat_max_ns");
    assert!(
        lat_max <= BUSY_PCPUS_LAT_MAX_NS,
        "{}",
        q.failure(&format!(
            "RTOS worst-case latency {lat_max} ns > {BUSY_PCPUS_LAT_MAX_NS} ns with busy pCPUs: {stats}"
        ))
    );
}

/// The next `rtos-stats:` line printed from now on.
fn next_rtos_stats(q: &mut Qemu) -> String {
    let after = q.log().len();
    let deadline = std::time::Instant::now() + STEP;
    loop {
        if let Some(line) = rtos_stats_after(&q.log(), after) {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `text` appears in the log after byte `from`.
fn wait_after(q: &mut Qemu, from: usize, text: &str, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while !q.log()[from..].contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure(&format!("no {text:?}"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fault recovery in the default layout: a Linux panic (sysrq `c`) is
/// reported to Tandem by the panic notifier, a hung Linux (its watchdog
/// daemon stopped) is caught by the paravirtual watchdog, and a stage-2 fault
/// storm (`fault-storm`: 10,000 aborts within a second) is handled as a crash;
/// each time Tandem restarts Linux from its pristine image back to a shell,
/// the monitor counts the crashes, and the RTOS misses no deadline throughout.
#[test]
fn linux_recovers_from_panic_and_hang() {
    let mut q = Qemu::spawn("linux_recovers_from_panic_and_hang", &machine())
        .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    run(
        &mut q,
        "dmesg | grep -c -e 'panics are reported to the hypervisor' -e 'tandem_wdt: timeout 10 s'",
        "linux | 2\n",
    );
    run(
        &mut q,
        "pidof watchdog >/dev/null && echo wdt-up",
        "linux | wdt-up\n",
    );
    let baseline = rtos_stats_after(&q.log(), 0).map_or(0, |l| field(&l, "misses"));

    // A kernel panic.
    let mark = q.log().len();
    q.send("echo c > /proc/sysrq-trigger\n").unwrap();
    wait_after(
        &mut q,
        mark,
        "'linux' crashed: the guest reported: sysrq triggered crash",
        STEP,
    );
    wait_after(&mut q, mark, "'linux' restarted", STEP);
    wait_after(&mut q, mark, PROMPT, BOOT);

    // A hang: nothing pets the watchdog any more.
    let mark = q.log().len();
    q.send("kill -STOP $(pidof watchdog)\n").unwrap();
    wait_after(
        &mut q,
        mark,
        "'linux' crashed: watchdog expired: not petted for 10000 ms",
        BOOT,
    );
    wait_after(&mut q, mark, "'linux' restarted", STEP);
    wait_after(&mut q, mark, PROMPT, BOOT);
    run(&mut q, "cat /sys/hypervisor/type", "linux | tandem\n");

    // A stage-2 fault storm: loads from an address Tandem maps nothing at,
    // each an external abort that Linux turns into SIGBUS for the tool.
    let mark = q.log().len();
    q.send("fault-storm\n").unwrap();
    wait_after(
        &mut q,
        mark,
        "'linux' crashed: stage-2 fault storm: 10000 aborts on unmapped IPAs within 1 s",
        STEP,
    );
    wait_after(&mut q, mark, "'linux' restarted", STEP);
    wait_after(&mut q, mark, PROMPT, BOOT);

    // The monitor shows the three crashes; the RTOS kept every deadline.
    let mark = q.log().len();
    q.send("\x1d\x1d").unwrap();
    wait_after(&mut q, mark, "tandem> ", STEP);
    q.send("vms\n").unwrap();
    wait_after(&mut q, mark, "resets=3 crashes=3", STEP);
    let after = q.log().len();
    q.wait_for("rtos-stats:", STEP)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + STEP;
    let stats = loop {
        if let Some(line) = rtos_stats_after(&q.log(), after) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        field(&stats, "misses"),
        baseline,
        "{}",
        q.failure(&format!(
            "the RTOS missed deadlines while Linux crashed: {stats}"
        ))
    );
}
