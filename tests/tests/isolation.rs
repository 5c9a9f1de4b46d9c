//! Isolation between VMs and from Tandem (issue 13, item 3), checked from inside two guests.
//!
//! One QEMU boot of `tandem-iso-a-iso-b.bin` (`cargo xtask build --vms iso-a,iso-b`) under
//! `-icount shift=0,sleep=off`: two instances of the `isolation` test guest
//! (`tests/guests/src/bin/isolation.rs`) time-share pCPU 0. Each boot of each VM checks
//!
//! - `isolation::entry_registers_reset`: 81 registers read their reset values at entry
//!   (24 GPRs, q0..q31, FPCR, FPSR, 23 EL1/EL0 system, timer and vGIC CPU interface
//!   registers): nothing of the other VM, nor of its own previous boot;
//! - `isolation::registers_kept`: 89 registers keep the VM's own values while the other VM
//!   runs on the pCPU with its own values in the same registers;
//! - `isolation::reads_outside_ram` / `writes_outside_ram` / `canary_intact`: ~6,100 pages
//!   outside its RAM probed with loads (only the emulated GIC answers; neither the other VM's
//!   canary nor Tandem's is ever read) and ~5,900 with stores (all abort), and its own RAM
//!   canary (15 MiB) is whole after the other VM's stores.
//!
//! Each VM then resets itself; the test reads two boots of each (the second one checks the
//! registers after a run of its own) and ends QEMU.

use std::sync::OnceLock;
use std::time::Duration;

use system_tests::log::fail;
use system_tests::qemu::{MachineConfig, Qemu, built_image};

const IMAGE: &str = "tandem-iso-a-iso-b.bin";
const TIMEOUT: Duration = Duration::from_secs(180);
const VMS: [&str; 2] = ["iso-a", "iso-b"];
/// Checks each boot of each VM prints.
const CHECKS: [&str; 5] = [
    "isolation::entry_registers_reset",
    "isolation::registers_kept",
    "isolation::reads_outside_ram",
    "isolation::writes_outside_ram",
    "isolation::canary_intact",
];

/// The console log of the one boot, once both VMs finished their second boot.
fn boot() -> Result<&'static str, &'static str> {
    static BOOT: OnceLock<Result<String, String>> = OnceLock::new();
    let result = BOOT.get_or_init(|| {
        let image = built_image("qemu-virt", IMAGE)?;
        let mut m = MachineConfig::new("qemu-virt", image);
        m.icount = true;
        let mut q = Qemu::spawn("isolation", &m)?;
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let log = q.log();
            let done = VMS.iter().all(|vm| summaries(&log, vm).len() >= 2);
            if done {
                return Ok(log);
            }
            if std::time::Instant::now() > deadline {
                return Err(q.failure("timed out waiting for two boots of each VM"));
            }
            // A pause of a second that fails only if QEMU exits (the marker never comes).
            if let Err(e) = q.wait_for("\u{0}never\u{0}", Duration::from_secs(1))
                && !e.contains("timed out")
            {
                return Err(e);
            }
        }
    });
    result.as_deref().map_err(|e| e.as_str())
}

fn log() -> &'static str {
    boot().unwrap_or_else(|e| panic!("{e}"))
}

/// A VM's own lines, without Tandem's tag.
fn lines<'a>(log: &'a str, vm: &str) -> Vec<&'a str> {
    let tag = format!("{vm} | ");
    log.lines()
        .filter_map(|l| l.split_once(tag.as_str()).map(|(_, rest)| rest.trim_end()))
        .collect()
}

/// A VM's `N passed, N failed` lines.
fn summaries<'a>(log: &'a str, vm: &str) -> Vec<&'a str> {
    lines(log, vm)
        .into_iter()
        .filter(|l| l.contains(" passed, ") && l.ends_with(" failed"))
        .collect()
}

/// A VM's lines of check `name`, one per boot, in order.
fn check_lines<'a>(log: &'a str, vm: &str, name: &str) -> Vec<&'a str> {
    let prefix = format!("[T] {name} ");
    lines(log, vm)
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

/// Every check of both boots of both VMs passed, with nothing else failing.
#[test]
fn every_check_passes_in_both_boots_of_both_vms() {
    let log = log();
    for vm in VMS {
        for name in CHECKS {
            let lines = check_lines(log, vm, name);
            if lines.len() < 2 {
                fail(
                    &format!("{vm}: {name} ran {} times, not 2", lines.len()),
                    log,
                );
            }
            for line in &lines[..2] {
                if !line.contains(" PASS (") {
                    fail(&format!("{vm}: {line}"), log);
                }
            }
        }
        for s in &summaries(log, vm)[..2] {
            if !s.ends_with(" 0 failed") {
                fail(&format!("{vm}: {s}"), log);
            }
        }
    }
    assert!(
        !log.contains("[!]"),
        "a guest reported an unexpected event:\n{log}"
    );
}

/// The register checks cover the whole set: 81 registers at entry, 89 kept.
#[test]
fn register_checks_cover_every_register() {
    let log = log();
    for vm in VMS {
        for line in check_lines(log, vm, "isolation::entry_registers_reset") {
            assert!(line.contains("(81 of 81 registers"), "{vm}: {line}");
        }
        for line in check_lines(log, vm, "isolation::registers_kept") {
            assert!(line.contains("(89 of 89 registers"), "{vm}: {line}");
        }
    }
}

/// In the first boot each VM's spin was time-shared: the other VM ran on the pCPU, with its
/// own values in the registers, while the first held its own (else `registers_kept` proves
/// nothing). And iso-b entered after iso-a had written its values.
#[test]
fn the_register_spin_is_time_shared() {
    let log = log();
    for vm in VMS {
        let line = lines(log, vm)
            .into_iter()
            .find(|l| l.starts_with("isolation: the spin took "))
            .unwrap_or_else(|| fail(&format!("{vm}: no spin line"), log));
        let nums: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let (elapsed, own) = (nums[0], nums[1]);
        // The other VM ran at least half a 10 ms slice.
        assert!(
            elapsed >= own + 5,
            "{vm}: the other VM did not run during the spin: {line}"
        );
    }
    let a_boots = log.find("iso-a | isolation: VM iso-a boots").unwrap();
    let b_boots = log.find("iso-b | isolation: VM iso-b boots").unwrap();
    assert!(a_boots < b_boots, "iso-b entered before iso-a ran");
}

/// The memory probes cover what the guest documents, each boot: at least 6,000 pages read
/// and 5,800 written outside RAM, and 15 MiB of canary.
#[test]
fn memory_probes_cover_the_ipa_space() {
    let log = log();
    for vm in VMS {
        for line in check_lines(log, vm, "isolation::reads_outside_ram") {
            let probed: u64 = line
                .split_once('(')
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(probed >= 6_000, "{vm}: {line}");
        }
        for line in check_lines(log, vm, "isolation::writes_outside_ram") {
            let stored: u64 = line
                .split_once('(')
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(stored >= 5_800, "{vm}: {line}");
        }
        for line in check_lines(log, vm, "isolation::canary_intact") {
            let kib: u64 = line
                .split_once('(')
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(kib >= 15 << 10, "{vm}: {line}");
        }
    }
}
