//! The `hostile` test guest beside the RTOS (`tests/guests/src/bin/hostile.rs`): every
//! hostile act has its defined outcome, the one Tandem cannot emulate stops that VM with a
//! report naming it, and Tandem and the other VM carry on.

use std::thread;
use std::time::{Duration, Instant};

use system_tests::qemu::{MachineConfig, Qemu, built_image};

const IMAGE: &str = "tandem-hostile-rtos.bin";
const TIMEOUT: Duration = Duration::from_secs(120);
/// The hostile VM's console tag.
const TAG: &str = "hostile | ";
/// The stop report's fixed part (`VM <id> 'hostile' stopped: …`).
const STOPPED: &str = "'hostile' stopped:";
/// The hostile acts whose outcome the guest checks (items 1–8).
const CHECKS: &[&str] = &[
    "write_past_ram",
    "write_high_ipa",
    "write_phys_uart",
    "write_rtc",
    "write_gich",
    "write_phys_gicv",
    "write_past_gicd",
    "write_other_vcpu_gicr",
    "read_phys_uart",
    "el2_read_ich_hcr",
    "el2_write_ich_lr0",
    "el2_read_ich_vtr",
    "el2_write_vttbr",
    "hvc_unknown_id",
    "hvc_reserved_channel",
    "channel_notify_not_an_end",
    "virtio_poll_not_a_back_end",
    "virtio_reply_forged",
    "hvc_console_write_too_long",
    "hvc_stats_bad_id",
    "hvc_sip_service",
    "hvc_cpu_on_missing_vcpu",
    "hvc_garbage_upper_half",
    "hvc_still_served",
    "smc_unknown_id",
    "smc_psci_version",
    "udf",
    "id_sve_hidden",
    "pmu_pmcr_undefined",
    "trace_trcidr0_undefined",
    "amu_amcr_undefined",
    "ras_erridr_undefined",
    "lor_lorid_undefined",
    "far_with_mmu_on",
    "aarch32_cp15_undefined",
    "aarch32_t32_length",
];

/// Waits until `log()` has `marker` somewhere after byte `from`; returns where.
fn wait_after(q: &Qemu, from: usize, marker: &str, deadline: Instant) -> Result<usize, String> {
    loop {
        let log = q.log();
        if let Some(at) = log.get(from..).and_then(|rest| rest.find(marker)) {
            return Ok(from + at);
        }
        if Instant::now() > deadline {
            return Err(q.failure(&format!(
                "timed out waiting for {marker:?} after the stop report"
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Items 1–8 each have their outcome, the fatal access stops only the hostile VM with a
/// report naming it, the RTOS keeps running afterwards, and Tandem does not fault.
#[test]
fn hostile_guest_is_contained() {
    contained(IMAGE, 3, CHECKS);
}

/// The same on a GICv2 machine (`tandem-hostile-rtos-gic2.bin`), where the guest also
/// sends SGIs through GICD_SGIR to CPU interfaces it does not have.
#[test]
fn hostile_guest_is_contained_on_gicv2() {
    let checks: Vec<&str> = CHECKS
        .iter()
        .copied()
        .chain(["sgir_foreign_targets"])
        .collect();
    contained("tandem-hostile-rtos-gic2.bin", 2, &checks);
}

fn contained(image: &str, gic: u8, checks: &[&str]) {
    let image = built_image("qemu-virt", image).unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.gic = gic;
    m.icount = true;
    let mut q = Qemu::spawn(&format!("hostile_guest_is_contained_gicv{gic}"), &m)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + TIMEOUT;
    let ok = |r: Result<(), String>| r.unwrap_or_else(|e| panic!("{e}"));
    ok(q.wait_for(&format!("{TAG}[T] hostile::fatal about to happen"), TIMEOUT));
    ok(q.wait_for(STOPPED, TIMEOUT));
    // The whole report line, not just its start, before the log is read.
    let at = q.log().find(STOPPED).expect("waited for it");
    wait_after(&q, at, "\n", deadline).unwrap_or_else(|e| panic!("{e}"));
    let log = q.log();
    let stop_at = log.find(STOPPED).expect("waited for it");

    // Items 1-8, each checked from inside, and the count before the fatal act.
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(TAG).map(|(_, r)| r))
        .collect();
    for line in lines.iter().filter(|l| l.starts_with("[T] hostile::")) {
        eprintln!("{line}");
    }
    let failed: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            l.starts_with("[T] hostile::")
                && !l.contains(" PASS")
                && !l.ends_with("about to happen")
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{}",
        q.failure(&format!(
            "failed checks:\n  {}",
            failed
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    );
    for name in checks {
        let marker = format!("[T] hostile::{name} PASS");
        assert!(
            lines.iter().any(|l| l.starts_with(&marker)),
            "{}",
            q.failure(&format!("check {name} did not pass"))
        );
    }
    let summary = lines.iter().position(|l| l.ends_with(" failed"));
    let fatal = lines
        .iter()
        .position(|l| *l == "[T] hostile::fatal about to happen");
    assert!(
        matches!((summary, fatal), (Some(s), Some(f)) if s < f && lines[s] == format!("{} passed, 0 failed", checks.len())),
        "{}",
        q.failure(&format!(
            "want `{} passed, 0 failed` before the fatal act",
            checks.len()
        ))
    );
    // Nothing of the hostile guest runs after the fatal access.
    assert_eq!(
        lines.last(),
        Some(&"[T] hostile::fatal about to happen"),
        "{}",
        q.failure("the hostile guest ran on")
    );

    // The report names the VM and the reason.
    let report = log[..stop_at].rfind('\n').map_or(0, |n| n + 1);
    let report = log[report..].lines().next().unwrap_or("");
    eprintln!("stop report: {report}");
    assert!(
        report.contains("VM ") && report.contains("no syndrome") && report.contains("0x8000000"),
        "{}",
        q.failure(&format!(
            "stop report {report:?} should name the VM, the vGIC address and `no syndrome`"
        ))
    );

    // The RTOS carries on: a fresh statistics line after the report.
    let at = wait_after(&q, stop_at, "rtos-stats:", deadline).unwrap_or_else(|e| panic!("{e}"));
    let log = q.log();
    eprintln!("after the stop: {}", log[at..].lines().next().unwrap_or(""));
    for bad in ["EL2 FAULT", "PANIC", "all VMs have stopped"] {
        assert!(
            !log.contains(bad),
            "{}",
            q.failure(&format!("{bad:?} in the log"))
        );
    }
}
