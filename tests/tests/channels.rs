//! Channels between VMs, end to end: Linux's upstream virtio drivers reach the modem (the
//! RTOS) over the two virtio channels of the default set — the IP data path (`ping`, UDP
//! echo) and the AT control port (`modem-at`) — while the RTOS keeps its deadlines; a
//! hostile virtio front-end (`vhostile`) is refused without hurting the RTOS or Linux; and
//! doorbells to a stopped peer are refused while forwarded reads return 0 at once.

use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu, built_image};
use system_tests::shell::{PROMPT, field, rtos_stats_after, run};

const BOOT: Duration = Duration::from_secs(240);

fn machine(image: &str) -> MachineConfig {
    let image = built_image("qemu-virt", image).unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    m
}

/// The newest `rtos-stats:` line after `from`, with misses=0, after at least one more period.
fn rtos_keeps_deadlines(q: &mut Qemu, from: usize) -> String {
    let stats = rtos_stats_after(&q.log(), from).unwrap_or_else(|| {
        q.wait_for("rtos-stats:", BOOT)
            .unwrap_or_else(|e| panic!("{e}"));
        rtos_stats_after(&q.log(), from).unwrap()
    });
    assert_eq!(field(&stats, "misses"), 0, "{}", q.failure(&stats));
    stats
}

/// `ping`, `modem-at` and `udp-echo` from the Linux shell of the default run reach the modem:
/// three echo replies from 169.254.77.1, `+CSQ: ` and OK for AT+CSQ (exit 0), ERROR for a
/// command the modem does not know (exit 1), 100 UDP datagrams echoed intact; the RTOS
/// reports misses=0 throughout.
#[test]
fn linux_reaches_the_modem_over_virtio() {
    let mut q = Qemu::spawn(
        "linux_reaches_the_modem_over_virtio",
        &machine("tandem.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("eth0 169.254.77.2/24, modem at 169.254.77.1", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    let from = q.log().len();
    run(
        &mut q,
        "ping -c 3 169.254.77.1",
        "3 packets transmitted, 3 packets received, 0% packet loss",
    );
    let csq = run(&mut q, "modem-at AT+CSQ; echo csq=$?", "csq=0");
    assert!(
        csq.contains("+CSQ: ") && csq.contains("csq=0"),
        "{}",
        q.failure(&csq)
    );
    let bogus = run(&mut q, "modem-at AT+BOGUS; echo bogus=$?", "bogus=1");
    assert!(
        bogus.contains("ERROR") && bogus.contains("bogus=1"),
        "{}",
        q.failure(&bogus)
    );
    let udp = run(&mut q, "udp-echo 100 1024; echo udp=$?", "udp=0");
    assert!(
        udp.contains("udp-echo: 100/100 echoed") && udp.contains("udp=0"),
        "{}",
        q.failure(&udp)
    );
    q.wait_for("rtos-stats:", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    rtos_keeps_deadlines(&mut q, from);
}

/// The lines of VM `vhostile` after byte `from`.
fn vhostile_lines(log: &str) -> Vec<String> {
    system_tests::log::vm_lines(log, "vhostile | ")
        .map(str::to_string)
        .collect()
}

/// A hostile virtio front-end (rings and buffers outside its pool, a descriptor loop, a huge
/// length, a notify storm) is refused by the modem's back-end, which recovers on each reset
/// and keeps serving Linux (ping) while the RTOS misses nothing. With the modem stopped from
/// the monitor, the front-end's doorbells are DENIED at once and its register reads return 0
/// without waiting; once the modem starts again, both work again.
#[test]
fn hostile_front_end_is_refused_and_peer_stop_is_seen() {
    let mut q = Qemu::spawn(
        "hostile_front_end_is_refused_and_peer_stop_is_seen",
        &machine("tandem-linux-rtos-vhostile.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("vhostile: doorbell SUCCESS magic 0x74726976", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let lines = vhostile_lines(&q.log());
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains(" FAIL")).collect();
    assert!(
        failed.is_empty() && lines.iter().any(|l| l == "7 passed, 0 failed"),
        "{}",
        q.failure(&format!("vhostile checks: {failed:?}"))
    );
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    let from = q.log().len();
    run(
        &mut q,
        "ping -c 3 169.254.77.1",
        "3 packets transmitted, 3 packets received",
    );
    q.wait_for("rtos-stats:", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    rtos_keeps_deadlines(&mut q, from);
    // Console focus: linux -> rtos -> vhostile -> the monitor.
    for _ in 0..3 {
        q.send("\x1d").unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(300));
    }
    q.send("stop rtos\n").unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("vhostile: doorbell DENIED magic 0x0", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    q.send("start rtos\n").unwrap_or_else(|e| panic!("{e}"));
    let restarted = q.log().len();
    q.wait_for("'rtos' restarted", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + BOOT;
    while !q.log()[restarted..].contains("vhostile: doorbell SUCCESS magic 0x74726976") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("the front-end never saw the restarted modem")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The doorbell between two VMs on two pCPUs (`--vms ping,pong`): 1,000 round trips all
/// arrive, and the round trip stays within 10 % of its committed figure in
/// tests/figures/doorbell.toml (under `-icount shift=0` a path length in instructions).
#[test]
fn doorbell_round_trip_within_committed_figure() {
    use system_tests::figures;
    use system_tests::log::{fail, vm_lines};

    let mut q = Qemu::spawn(
        "doorbell_round_trip_within_committed_figure",
        &machine("tandem-ping-pong.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for("ping | 1 passed, 0 failed", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let log = q.log();
    let lines: Vec<&str> = vm_lines(&log, "ping | ").collect();
    let measured = figures::parse_log(lines.iter().copied()).unwrap_or_else(|e| fail(&e, &log));
    let file = system_tests::paths::workspace_root().join("tests/figures/doorbell.toml");
    let committed = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|text| figures::parse_committed(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let rows = figures::compare(&measured, &committed);
    let table = figures::table(&rows);
    if rows.iter().any(|r| r.verdict.fails()) {
        fail(
            &format!("doorbell figure against tests/figures/doorbell.toml:\n{table}"),
            &log,
        );
    }
    eprintln!("{table}");
}

/// The vCPU switch between two VMs on one pCPU (`--vms switch-a,switch-b`): 1,000 rounds
/// each way, and both figures (a blocking VM to the busy one, and the busy one preempted by
/// the other's timer) stay within 10 % of tests/figures/vcpu-switch.toml.
#[test]
fn vcpu_switch_within_committed_figures() {
    use system_tests::figures;
    use system_tests::log::{fail, vm_lines};

    let mut q = Qemu::spawn(
        "vcpu_switch_within_committed_figures",
        &machine("tandem-switch-a-switch-b.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for vm in ["switch-a", "switch-b"] {
        q.wait_for(&format!("{vm} | 1 passed, 0 failed"), BOOT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let log = q.log();
    let lines: Vec<&str> = vm_lines(&log, "switch-a | ")
        .chain(vm_lines(&log, "switch-b | "))
        .collect();
    let measured = figures::parse_log(lines.iter().copied()).unwrap_or_else(|e| fail(&e, &log));
    let file = system_tests::paths::workspace_root().join("tests/figures/vcpu-switch.toml");
    let committed = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|text| figures::parse_committed(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let rows = figures::compare(&measured, &committed);
    let table = figures::table(&rows);
    if rows.iter().any(|r| r.verdict.fails()) {
        fail(
            &format!("vCPU switch figures against tests/figures/vcpu-switch.toml:\n{table}"),
            &log,
        );
    }
    eprintln!("{table}");
}
