//! A hostile guest at scale: the seeded `chaos` guest (`cargo xtask run --with-hostile
//! --seed 7`) beside Linux and the RTOS, sharing pCPUs 2 and 3 with the RTOS below its
//! priority. Tandem never faults or complains of its own, the RTOS keeps `misses=0`, Linux
//! is never reset and answers at its shell and over virtio, and the guest's counts show that
//! every kind of act was tried.

use std::time::{Duration, Instant};

use system_tests::log::vm_lines;
use system_tests::qemu::{MachineConfig, Qemu, built_image};
use system_tests::shell::{PROMPT, field, rtos_stats_after, run};

/// The boot image `cargo xtask test` builds: the default set and the hostile guest, seed 7,
/// as `cargo xtask run --with-hostile --seed 7` boots it.
const IMAGE: &str = "tandem-hostile-seed7.bin";
/// Operations the guest's last boot runs in this image (the default count).
const OPS: u64 = 1_000_000;
const BOOT: Duration = Duration::from_secs(240);
/// The run itself, on a loaded host.
const RUN: Duration = Duration::from_secs(900);

/// The value of `key=` in `line`, or a failure with the log.
fn count(q: &Qemu, line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", q.failure(&format!("no {key}= in {line:?}"))))
}

#[test]
fn hostile_guest_at_scale_leaves_linux_and_the_rtos_alone() {
    let image = built_image("qemu-virt", IMAGE).unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    let mut q = Qemu::spawn("hostile_guest_at_scale", &m).unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(" chaos | hostile: seed=7 ops=1000000 boot=0/", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    // The guest powers off right after its last line: the whole line is there by then.
    q.wait_for(
        "VM 3 'chaos' stopped: powered off by the guest (PSCI SYSTEM_OFF)",
        RUN,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // Linux answers at its shell and reaches the modem; the RTOS goes on meeting deadlines.
    q.wait_for(PROMPT, BOOT).unwrap_or_else(|e| panic!("{e}"));
    run(&mut q, "echo alive-$((6 * 7))", "alive-42");
    run(
        &mut q,
        "ping -c 3 169.254.77.1",
        "3 packets transmitted, 3 packets received, 0% packet loss",
    );
    // One more statistics line after Linux answered.
    let from = q.log().len();
    let deadline = Instant::now() + BOOT;
    while rtos_stats_after(&q.log(), from).is_none() {
        assert!(
            Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line after the shell commands")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = q.log();
    let stats: Vec<&str> = vm_lines(&log, "rtos | ")
        .filter(|l| l.starts_with("rtos-stats:"))
        .collect();
    assert!(
        stats.len() >= 2,
        "{}",
        q.failure("too few rtos-stats lines")
    );
    for line in &stats {
        assert_eq!(field(line, "misses"), 0, "{}", q.failure(line));
    }

    // Tandem: no fault, panic or error; its only warning is the guest's own power-off; Linux
    // and the RTOS were never reset, stopped or restarted.
    let tandem: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("] cpu"))
        .collect();
    for line in &tandem {
        let loud = line.contains(" ERROR ") || line.contains(" WARN ");
        let expected =
            line.ends_with("VM 3 'chaos' stopped: powered off by the guest (PSCI SYSTEM_OFF)");
        assert!(!loud || expected, "{}", q.failure(line));
        for vm in ["'linux'", "'rtos'"] {
            assert!(
                !(line.contains(vm)
                    && ["reset", "restart", "stopped", "crash"]
                        .iter()
                        .any(|w| line.contains(w))),
                "{}",
                q.failure(line)
            );
        }
    }
    for bad in ["EL2 FAULT", "PANIC", "[!]"] {
        assert!(!log.contains(bad), "{}", q.failure(bad));
    }

    // The guest's counts: every kind of act, and the resets it survived.
    let lines: Vec<&str> = vm_lines(&log, "chaos | ").collect();
    let line = |prefix: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l.starts_with(prefix))
            .copied()
            .unwrap_or_else(|| panic!("{}", q.failure(&format!("no {prefix:?} line"))))
    };
    let done = line("hostile: done ");
    assert!(
        done.starts_with("hostile: done seed=7 "),
        "{}",
        q.failure(done)
    );
    assert!(count(&q, done, "ops") >= OPS, "{}", q.failure(done));
    for key in [
        "hvc",
        "mmio_reads",
        "mmio_writes",
        "aborts",
        "sysreg",
        "undef",
        "odd",
        "power",
        "resets",
    ] {
        assert!(count(&q, done, key) > 0, "{}", q.failure(done));
    }
    let hvc = line("hostile: hvc ");
    for key in ["ok", "not_supported", "invalid", "positive"] {
        assert!(count(&q, hvc, key) > 0, "{}", q.failure(hvc));
    }
    let exceptions = line("hostile: exceptions ");
    for key in ["brk", "svc", "irqs", "wfi", "cpu_off"] {
        assert!(count(&q, exceptions, key) > 0, "{}", q.failure(exceptions));
    }
    let resets = count(&q, done, "resets");
    let reset_lines = lines
        .iter()
        .filter(|l| l.starts_with("hostile: boot ") && l.contains("then SYSTEM_RESET"))
        .count() as u64;
    assert_eq!(reset_lines, resets, "{}", q.failure(done));
}
