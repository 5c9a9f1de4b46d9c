//! rtos-guest natively on QEMU virt (EL1, no hypervisor): the latency baseline.
//!
//! One boot per scenario:
//! - the in-guest self-test (`rtos-selftest.bin`) ends with `0 failed`;
//! - the modem workload (`rtos.bin`, under `-icount`) prints an `rtos-stats:` line with
//!   `periods > 0` and `misses=0`;
//! - the AT-command task answers on the console.
//!
//! The images are built by `cargo xtask test` (or `cargo xtask run --native rtos [--selftest]`).

use std::time::Duration;

// The `rtos-stats:` line is parsed by the RTOS's own reference parser, host-tested beside
// the code that prints it.
use rtos_guest::stats::{ParsedLine as Stats, parse_line as parse_stats};
use system_tests::qemu::{MachineConfig, Qemu, built_image};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A native machine (EL1 entry, no EL2) with `image`.
fn native(image: &str, icount: bool) -> MachineConfig {
    let path = built_image("guests", image).unwrap_or_else(|e| panic!("{e}"));
    let mut config = MachineConfig::new("qemu-virt", path);
    config.virtualization = false;
    config.icount = icount;
    config
}

/// The complete `rtos-stats:` lines printed so far.
fn stats_lines(log: &str) -> Vec<(String, Stats)> {
    system_tests::log::complete(log)
        .lines()
        .filter(|l| l.contains("rtos-stats:"))
        .map(|l| {
            let l = &l[l.find("rtos-stats:").unwrap_or(0)..];
            (
                l.to_string(),
                parse_stats(l).unwrap_or_else(|| panic!("malformed stats line: {l:?}")),
            )
        })
        .collect()
}

/// The in-guest self-test passes every test and powers the machine off.
#[test]
fn rtos_native_selftest_passes() {
    let mut qemu = Qemu::spawn("rtos_native_selftest", &native("rtos-selftest.bin", true)).unwrap();
    qemu.wait_for("rtos-guest: v", TIMEOUT).unwrap();
    qemu.wait_for(" passed, ", TIMEOUT).unwrap();
    qemu.wait_exit(TIMEOUT).unwrap();
    let log = qemu.log();
    assert!(
        log.contains("on native"),
        "{}",
        qemu.failure("banner does not say native")
    );
    let results: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("[T] "))
        .collect();
    let failed: Vec<&&str> = results.iter().filter(|l| !l.ends_with(" PASS")).collect();
    assert!(
        failed.is_empty(),
        "{}",
        qemu.failure(&format!("failing self-tests: {failed:?}"))
    );
    let summary = format!("{} passed, 0 failed", results.len());
    assert!(
        log.lines().any(|l| l.trim_end() == summary),
        "{}",
        qemu.failure(&format!("no {summary:?} line"))
    );
    for test in [
        "rtos::mutex_priority_inheritance",
        "rtos::periodic_release",
        "smp::sgi_roundtrip",
    ] {
        assert!(
            results.contains(&format!("[T] {test} PASS").as_str()),
            "{}",
            qemu.failure(&format!("{test} did not pass"))
        );
    }
}

/// Under `-icount` the modem workload meets every deadline and reports it in the stats line.
#[test]
fn rtos_native_modem_meets_deadlines() {
    let mut qemu = Qemu::spawn("rtos_native_modem", &native("rtos.bin", true)).unwrap();
    qemu.wait_for("rtos-guest: v", TIMEOUT).unwrap();
    qemu.wait_for(" vm=native", TIMEOUT).unwrap();
    qemu.wait_for("cpu1 online", TIMEOUT).unwrap();
    let log = qemu.log();
    let lines = stats_lines(&log);
    let (line, stats) = lines
        .last()
        .unwrap_or_else(|| panic!("{}", qemu.failure("no complete stats line")));
    println!("{line}");
    assert!(
        stats.periods > 0,
        "{}",
        qemu.failure("no periods completed")
    );
    assert_eq!(stats.misses, 0, "{}", qemu.failure("deadline misses"));
    assert!(
        stats.lat_min_ns <= stats.lat_mean_ns
            && stats.lat_mean_ns <= stats.lat_max_ns
            && stats.lat_p99_ns <= stats.lat_max_ns,
        "{}",
        qemu.failure(&format!("inconsistent latency fields {stats:?}"))
    );
}

/// The AT-command task answers `AT`, `AT+CGMI`, `AT+STATS` and rejects unknown commands.
#[test]
fn rtos_native_at_commands() {
    let mut qemu = Qemu::spawn("rtos_native_at", &native("rtos.bin", true)).unwrap();
    qemu.wait_for("AT commands on the console (polled every 10 ms)", TIMEOUT)
        .unwrap();
    qemu.send("AT\r").unwrap();
    qemu.wait_for("OK", TIMEOUT).unwrap();
    qemu.send("AT+CGMI\r").unwrap();
    qemu.wait_for("Tandem\r\nOK", TIMEOUT).unwrap();
    qemu.send("AT+NOPE\r").unwrap();
    qemu.wait_for("ERROR", TIMEOUT).unwrap();
    let before = stats_lines(&qemu.log()).len();
    qemu.send("at+stats\r").unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let log = qemu.log();
        // The answer is a stats line directly followed by OK.
        if let Some(at) = log.rfind("at+stats") {
            let answer = &log[at..];
            if answer.contains(" vm=native\r\nOK") {
                let line = answer
                    .lines()
                    .find(|l| l.starts_with("rtos-stats:"))
                    .unwrap();
                assert!(
                    parse_stats(line).is_some(),
                    "{}",
                    qemu.failure("AT+STATS line malformed")
                );
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            qemu.failure(&format!("no AT+STATS answer ({before} lines before)"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
