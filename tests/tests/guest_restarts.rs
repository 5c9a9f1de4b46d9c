//! Restarts and resets on a shared physical CPU (issue 8, item 5), checked from inside the
//! `probe` test guest and from Tandem's log:
//! 1. a restarted vCPU enters with reset state, whatever ran on its pCPU in between;
//! 2. resets of one VM are serialized, and RAM is never cleared while one of its vCPUs can
//!    run: SYSTEM_RESET from both vCPUs at once is one reset, and the VM boots again;
//! 3. a CPU_ON that races a reset does not survive it.
//!
//! One QEMU boot of `tandem-probe-shared-rtos-shared.bin` (`cargo xtask build --vms
//! probe-shared,rtos-shared`) under `-icount shift=0,sleep=off`, so every run is the same.
//! The `probe-shared` VM runs the probe guest with its vCPU 1 on pCPU 1, which it time-shares
//! with the RTOS (`rtos-shared`, priority 10, like the `rtos` VM; see
//! `platforms/qemu-virt/vms.toml`). The probe finds its VM name in its device tree, runs its
//! usual suites but `exit_cost` (the RTOS's instructions advance the same `-icount` clock;
//! the figures are `guest_probe.rs`'s business), then boots its VM three times
//! (`tests/guests/src/bin/probe.rs`, "The shared layout"):
//!
//! - boot 1: vCPU 1 writes markers into the state Tandem switches (EL1 thread registers, the
//!   virtual timer, the vGIC CPU interface, FPCR), turns itself off and is started again,
//!   at once or after the RTOS ran on its pCPU: `[T] restart::*` checks that it reads none
//!   of them. Then both vCPUs call SYSTEM_RESET at once;
//! - boot 2: `[T] reset::*` checks RAM was cleared after both stopped and vCPU 1 is off;
//!   both vCPUs enter fresh. Then CPU_ON(vCPU 1) and at once SYSTEM_RESET;
//! - boot 3: `[T] race::*` checks the CPU_ON did not survive the reset; `N passed, N failed`
//!   over all boots.
//!
//! The boot number survives the resets in the RTC's match register (passed through to the
//! probe; a VM reset does not touch the device). By hand:
//!
//! ```text
//! qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 1G \
//!   -nographic -nic none -no-reboot -icount shift=0,sleep=off \
//!   -rtc base=2025-01-01T00:00:00,clock=vm \
//!   -kernel target/tandem/qemu-virt/tandem-probe-shared-rtos-shared.bin
//! ```
//!
//! (the RTOS runs on after the probe's SYSTEM_OFF: leave with Ctrl-A X).

use std::sync::OnceLock;
use std::time::Duration;

use system_tests::log::{fail, vm_lines};
use system_tests::qemu::{MachineConfig, Qemu, built_image};

const IMAGE: &str = "tandem-probe-shared-rtos-shared.bin";
const TIMEOUT: Duration = Duration::from_secs(120);
/// The RTC on the virtual clock (deterministic under -icount) from a fixed date.
const RTC_ARGS: [&str; 2] = ["-rtc", "base=2025-01-01T00:00:00,clock=vm"];
/// The probe's VM name, as Tandem tags its console lines.
const TAG: &str = "probe-shared | ";
/// The VM beside it on pCPU 1.
const OTHER: &str = "rtos-shared";
/// The context id of boot 2's CPU_ON that races SYSTEM_RESET (probe.rs `CTX_RACE`).
const CTX_RACE: &str = "0x5ec00005dead2ace";

/// What the probe prints at each step, and what Tandem logs for the VM, in the only order a
/// correct run has them (see [`events`]).
const EXPECTED_EVENTS: [&str; 11] = [
    "boot 1",
    "boot 1 ends",
    "resetting",
    "restarted",
    "boot 2",
    "boot 2 ends",
    "resetting",
    "restarted",
    "boot 3",
    "summary",
    "stopped",
];

/// The console log of the one boot, or why it failed (with the log).
fn boot() -> Result<&'static str, &'static str> {
    static BOOT: OnceLock<Result<String, String>> = OnceLock::new();
    let result = BOOT.get_or_init(|| {
        let image = built_image("qemu-virt", IMAGE)?;
        let mut m = MachineConfig::new("qemu-virt", image);
        m.icount = true;
        m.extra = RTC_ARGS.iter().map(|a| a.to_string()).collect();
        let mut q = Qemu::spawn("guest_restarts", &m)?;
        for boot in 1..=3 {
            q.wait_for(
                &format!("{TAG}probe: VM probe-shared, boot {boot} of 3"),
                TIMEOUT,
            )?;
        }
        q.wait_for(" passed, ", TIMEOUT)?;
        // SYSTEM_OFF stops the probe's VM; the RTOS runs on, so QEMU is ended (dropped) here.
        q.wait_for("'probe-shared' stopped", Duration::from_secs(20))?;
        Ok(q.log())
    });
    result.as_deref().map_err(|e| e.as_str())
}

fn log() -> &'static str {
    boot().unwrap_or_else(|e| panic!("{e}"))
}

/// The probe's own lines, without Tandem's tag.
fn guest_lines(log: &str) -> impl Iterator<Item = &str> {
    vm_lines(log, TAG)
}

/// The steps of the run, from the probe's lines and Tandem's log, in log order.
fn events(log: &str) -> Vec<&'static str> {
    let mut events = Vec::new();
    for line in log.lines() {
        let event = if let Some((_, guest)) = line.split_once(TAG) {
            match guest.trim_end() {
                g if g.starts_with("probe: VM probe-shared, boot 1 of 3") => "boot 1",
                g if g.starts_with("probe: VM probe-shared, boot 2 of 3") => "boot 2",
                g if g.starts_with("probe: VM probe-shared, boot 3 of 3") => "boot 3",
                g if g.starts_with("probe: boot 1 ends") => "boot 1 ends",
                g if g.starts_with("probe: boot 2 ends") => "boot 2 ends",
                g if g.ends_with(" failed") && g.contains(" passed, ") => "summary",
                _ => continue,
            }
        } else if line.contains("'probe-shared' resetting (") {
            "resetting"
        } else if line.contains("'probe-shared' restarted") {
            "restarted"
        } else if line.contains("'probe-shared' stopped") {
            "stopped"
        } else {
            continue;
        };
        events.push(event);
    }
    events
}

/// Every `[T] <suite>::` line passes, and each of `required` is one of them.
fn assert_suite(suite: &str, required: &[&str]) {
    let log = log();
    let prefix = format!("[T] {suite}::");
    let lines: Vec<&str> = guest_lines(log)
        .filter(|l| l.starts_with(&prefix))
        .collect();
    let failed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains(" PASS"))
        .collect();
    if !failed.is_empty() {
        fail(
            &format!("{suite}: failed checks:\n  {}", failed.join("\n  ")),
            log,
        );
    }
    for name in required {
        let marker = format!("[T] {suite}::{name} PASS");
        if !lines.iter().any(|l| l.starts_with(&marker)) {
            fail(&format!("{suite}: check {name} did not run"), log);
        }
    }
    for line in lines {
        eprintln!("{line}");
    }
}

/// The line starting with `prefix` among the probe's, printed.
fn show(log: &str, prefix: &str) {
    match guest_lines(log).find(|l| l.starts_with(prefix)) {
        Some(line) => eprintln!("{line}"),
        None => fail(&format!("no {prefix:?} line"), log),
    }
}

/// The layout really shares pCPU 1: the probe's vCPU 1 and the other VM's only vCPU.
#[test]
fn vcpu1_shares_its_pcpu() {
    let log = log();
    for (vm, placed) in [
        ("probe-shared", "2 vCPU(s) on pCPU [0, 1]"),
        (OTHER, "1 vCPU(s) on pCPU [1]"),
    ] {
        let want = format!("'{vm}': 16 MiB at ");
        let Some(line) = log.lines().find(|l| l.contains(&want)) else {
            fail(&format!("Tandem did not report {want:?}"), log)
        };
        if !line.contains(placed) {
            fail(&format!("{line:?} does not say {placed:?}"), log);
        }
        eprintln!("{}", line.trim_end());
    }
}

/// A vCPU restarted by CPU_OFF → CPU_ON or by a VM reset enters with none of the markers its
/// earlier life wrote into the state Tandem switches: vCPU 1 started again at once (its old
/// life's state may still be in pCPU 1), again, and 20 ms later (the RTOS ran on pCPU 1 in
/// between); vCPU 0 and vCPU 1 after each reset; vCPU 0 also at the first boot.
#[test]
fn restarted_vcpu_enters_with_reset_state() {
    assert_suite(
        "restart",
        &[
            "vcpu0_fresh_at_boot",
            "cpu_on_at_once_round1",
            "cpu_on_at_once_round2",
            "cpu_on_after_other_vm_ran",
            "vcpu0_fresh_after_reset",
            "vcpu1_fresh_after_reset",
            "vcpu0_fresh_after_race",
            "vcpu1_fresh_after_race",
        ],
    );
}

/// SYSTEM_RESET from both vCPUs at once is one reset: Tandem logs one `resetting` and one
/// `restarted` for it, the probe's second boot follows, RAM was cleared after both vCPUs
/// stopped (their canaries, written just before their calls, are gone) and vCPU 1 is off.
/// The probe says whether vCPU 1's call reached Tandem too (then Tandem coalesced them).
#[test]
fn concurrent_resets_are_one_reset() {
    let log = log();
    let events = events(log);
    if events != EXPECTED_EVENTS {
        fail(
            &format!(
                "the run's steps are\n  {events:?}\nwant\n  {EXPECTED_EVENTS:?}\n(one `resetting` \
                 and one `restarted` per reset, each boot once)"
            ),
            log,
        );
    }
    let banners = guest_lines(log)
        .filter(|l| l.starts_with("probe: test guest on vcpu0"))
        .count();
    if banners != 3 {
        fail(&format!("the probe started {banners} times, want 3"), log);
    }
    assert_suite(
        "reset",
        &[
            "vcpu1_ready",
            "ram_cleared_after_both_stopped",
            "vcpu1_off_after_reset",
        ],
    );
    show(log, "reset-race: SYSTEM_RESET calls");
}

/// CPU_ON(vCPU 1) at once followed by SYSTEM_RESET: the CPU_ON was accepted, yet after the
/// restart vCPU 1 is off (AFFINITY_INFO) and never reports in with the racing context id;
/// it then starts normally.
#[test]
fn cpu_on_racing_a_reset_does_not_survive() {
    assert_suite(
        "race",
        &["vcpu1_off_before", "cpu_on_accepted", "cpu_on_undone"],
    );
    let log = log();
    let Some((_, after)) = log.rsplit_once("'probe-shared' restarted") else {
        fail("no restart", log)
    };
    let online = format!("vcpu1 online ctx={CTX_RACE}");
    if guest_lines(after).any(|l| l.starts_with(&online)) {
        fail(
            &format!("vCPU 1 came up with the racing CPU_ON's context after the reset: {online:?}"),
            log,
        );
    }
    show(log, "reset-race: vcpu1 made");
}

/// The probe ran all three boots to the end with no failure (its summary counts every check
/// of every boot), Tandem neither faulted nor panicked, and the VM beside it was never reset
/// or stopped.
#[test]
fn shared_run_completes() {
    let log = log();
    let checks = guest_lines(log).filter(|l| l.starts_with("[T] ")).count();
    let summary = format!("{checks} passed, 0 failed");
    if !guest_lines(log).any(|l| l == summary) {
        fail(
            &format!("the probe did not end with {summary:?} ({checks} checks in the log)"),
            log,
        );
    }
    for bad in ["EL2 FAULT", "PANIC", "[!]"] {
        if log.contains(bad) {
            fail(&format!("{bad:?} in the log"), log);
        }
    }
    for event in ["resetting", "restarted", "stopped"] {
        if log.contains(&format!("'{OTHER}' {event}")) {
            fail(&format!("{OTHER} {event}: it should run undisturbed"), log);
        }
    }
    match log
        .lines()
        .rev()
        .find(|l| l.contains("rtos-stats: periods="))
    {
        Some(line) => eprintln!("{}", line.trim_end()),
        None => fail(&format!("{OTHER} never reported its statistics"), log),
    }
    eprintln!("{summary}");
}
