//! rtos-guest as a Tandem guest: the in-guest self-test, ABI conformance suite included.
//!
//! Boots `tandem-rtos-selftest.bin` (Tandem packaged with the `rtos-selftest` VM of
//! `platforms/qemu-virt/vms.toml`, built by `cargo xtask test`) under `-icount`. The guest runs
//! its `abi::*`, `rtos::*` and `smp::*` tests, prints `N passed, N failed` and powers its VM off,
//! after which Tandem powers the machine off. Tandem prefixes each guest console line with
//! `<vm name> | `. Tandem's own last lines, logged just before SYSTEM_OFF, must reach the
//! console whole.

use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu, built_image};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A guest console line without Tandem's `<vm> | ` prefix.
fn guest_line(line: &str) -> Option<&str> {
    let (vm, rest) = line.split_once(" | ")?;
    (vm.trim() == "rtos-selftest").then(|| rest.trim_end())
}

/// Every self-test passes under Tandem, including the ABI conformance suite.
#[test]
fn rtos_tandem_selftest_passes() {
    selftest_on(3);
}

/// The same on a GICv2 machine: the RTOS finds the GIC-400 in its device tree and drives
/// it (SGIs through GICD_SGIR, the CPU interface through Tandem's GICV mapping).
#[test]
fn rtos_tandem_selftest_passes_on_gicv2() {
    selftest_on(2);
}

fn selftest_on(gic: u8) {
    let name = if gic == 2 {
        "tandem-rtos-selftest-gic2.bin"
    } else {
        "tandem-rtos-selftest.bin"
    };
    let image = built_image("qemu-virt", name).unwrap_or_else(|e| panic!("{e}"));
    let mut config = MachineConfig::new("qemu-virt", image);
    config.gic = gic;
    config.icount = true;
    let mut qemu = Qemu::spawn(&format!("rtos_tandem_selftest_gicv{gic}"), &config).unwrap();
    qemu.wait_for("rtos-guest: v", TIMEOUT).unwrap();
    qemu.wait_for(" passed, ", TIMEOUT).unwrap();
    qemu.wait_exit(TIMEOUT).unwrap();
    let log = qemu.log();
    let lines: Vec<&str> = log.lines().filter_map(guest_line).collect();
    assert!(
        lines.iter().any(|l| l.contains(" on tandem ")),
        "{}",
        qemu.failure("banner does not say tandem")
    );
    let gic_line = format!("rtos-guest: GICv{gic} (GICD 0x8000000, ");
    assert!(
        lines.iter().any(|l| l.starts_with(&gic_line)),
        "{}",
        qemu.failure(&format!(
            "the RTOS did not find its GICv{gic} in its device tree"
        ))
    );
    let results: Vec<&&str> = lines.iter().filter(|l| l.starts_with("[T] ")).collect();
    let failed: Vec<&&&str> = results.iter().filter(|l| !l.ends_with(" PASS")).collect();
    assert!(
        failed.is_empty(),
        "{}",
        qemu.failure(&format!("failing self-tests: {failed:?}"))
    );
    let summary = format!("{} passed, 0 failed", results.len());
    assert!(
        lines.contains(&summary.as_str()),
        "{}",
        qemu.failure(&format!("no {summary:?} line"))
    );
    // The console is drained before SYSTEM_OFF: the stop line and the power-off line are
    // whole and last (QEMU's own messages go to stderr, never into these lines).
    let tail: Vec<&str> = log.trim_end().lines().rev().take(2).collect();
    assert!(
        log.ends_with('\n')
            && tail.len() == 2
            && tail[0].ends_with(" INFO  all VMs have stopped: powering off")
            && tail[1].ends_with(
                " WARN  VM 1 'rtos-selftest' stopped: powered off by the guest (PSCI SYSTEM_OFF)"
            ),
        "{}",
        qemu.failure(&format!(
            "the log does not end with Tandem's whole power-off lines: {tail:?}"
        ))
    );
    for test in [
        "abi::is_tandem",
        "abi::discover_1_2",
        "abi::channel_calls_without_channel",
        "abi::watchdog_arm_disarm",
        "abi::console_write_49_invalid",
        "abi::unknown_call_not_supported",
        "rtos::mutex_priority_inheritance",
        "rtos::periodic_release",
        "smp::sgi_roundtrip",
    ] {
        assert!(
            results.iter().any(|l| **l == format!("[T] {test} PASS")),
            "{}",
            qemu.failure(&format!("{test} did not pass"))
        );
    }
}

/// Twenty restarts of a VM in a row from the monitor leave Tandem's heap
/// exactly as it was (a reset allocates a fresh vGIC and frees the old one),
/// and the RTOS comes back after them.
#[test]
fn twenty_restarts_leave_the_heap_unchanged() {
    let image = built_image("qemu-virt", "tandem-rtos.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut config = MachineConfig::new("qemu-virt", image);
    config.icount = true;
    let mut q = Qemu::spawn("twenty_restarts", &config).unwrap();
    q.wait_for("rtos-stats:", TIMEOUT).unwrap();
    // The RTOS has the console; Ctrl-] moves input to the monitor.
    q.send("\x1d").unwrap();
    q.wait_for("tandem> ", TIMEOUT).unwrap();
    let heap = |q: &mut Qemu| -> String {
        let from = q.log().len();
        q.send("vms\n").unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let log = q.log();
            let whole = system_tests::log::complete(&log).get(from..).unwrap_or("");
            if let Some(line) = whole.lines().find(|l| l.contains("tandem heap: ")) {
                return line.trim().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                q.failure("no heap line from `vms`")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let before = heap(&mut q);
    for n in 1..=20 {
        q.send("reset rtos\n").unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        while q.log().matches("'rtos' restarted").count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                q.failure(&format!("restart {n} did not complete"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // After the last restart the RTOS is up and doing its work again.
    let mark = q.log().len();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !q.log()[mark..].contains("rtos-stats:") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("the RTOS did not come back after the restarts")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = heap(&mut q);
    eprintln!("before: {before}\nafter 20 restarts: {after}");
    assert_eq!(before, after, "{}", q.failure("the heap changed"));
}

/// Under Tandem the console AT task sleeps until Tandem's console-input interrupt (the
/// `tandem,hypervisor` node's SPI) says input is waiting, and answers each command.
#[test]
fn rtos_tandem_at_commands_by_interrupt() {
    let image = built_image("qemu-virt", "tandem-rtos.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut config = MachineConfig::new("qemu-virt", image);
    config.icount = true;
    let mut q = Qemu::spawn("rtos_tandem_at", &config).unwrap();
    q.wait_for(
        "AT commands on the console (input interrupt INTID 32)",
        TIMEOUT,
    )
    .unwrap();
    q.wait_for("rtos-stats:", TIMEOUT).unwrap();
    for (command, answer) in [
        ("AT", "OK"),
        ("AT+CGMI", "Tandem"),
        ("AT+CSQ", "+CSQ: "),
        ("AT+NOPE", "ERROR"),
    ] {
        let from = q.log().len();
        q.send(&format!("{command}\r")).unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !q.log()[from..]
            .lines()
            .any(|l| guest_line_of(l, "rtos").is_some_and(|l| l.starts_with(answer)))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                q.failure(&format!("no {answer:?} after {command}"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let stats = q.log();
    let last = system_tests::log::complete(&stats)
        .lines()
        .filter(|l| l.contains("rtos-stats:"))
        .last()
        .unwrap_or_default();
    assert!(last.contains(" misses=0 "), "{}", q.failure(last));
}

/// A console line of VM `vm` without Tandem's `<vm> | ` prefix.
fn guest_line_of<'a>(line: &'a str, vm: &str) -> Option<&'a str> {
    let (name, rest) = line.split_once(" | ")?;
    (name.trim() == vm).then(|| rest.trim())
}
