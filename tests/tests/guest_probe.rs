//! The `probe` test guest under Tandem (`tests/guests/src/bin/probe.rs`): PSCI, vGIC, virtual
//! timer, stage 2, device passthrough, the null-hypercall round trip and the exit-path
//! figures, each checked from inside the VM; the figures are held to the committed ones in
//! `tests/figures/exit-costs.toml`.
//!
//! One QEMU boot of `tandem-probe.bin` (`cargo xtask build --vms probe`) under `-icount
//! shift=0,sleep=off` (so the figures count instructions) serves every test here, and one
//! of `tandem-probe-gic2.bin` (`cargo xtask build --vms probe --gic 2`, booted with
//! `gic-version=2`) every `gicv2_` test, whose figures are held to
//! `tests/figures/exit-costs-gicv2.toml`; by hand:
//!
//! ```text
//! qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 1G \
//!   -nographic -nic none -no-reboot -icount shift=0,sleep=off \
//!   -rtc base=2025-01-01T00:00:00,clock=vm -kernel target/tandem/qemu-virt/tandem-probe.bin
//! ```
//!
//! The PL031 RTC passed through to the probe follows the virtual clock (`-rtc clock=vm`) from
//! a fixed date, so its one-second alarms cost no real time and the log is the same run to
//! run. Each test checks its own suite's `[T] suite::name PASS|FAIL (detail)` markers in
//! that log: every line of the suite must pass, and the checks named here must be among
//! them.

use std::sync::OnceLock;
use std::time::Duration;

use system_tests::figures;
use system_tests::log::{fail, vm_lines};
use system_tests::qemu::{MachineConfig, Qemu, built_image};

/// The probe image for a machine with GIC version `gic`.
fn image(gic: u8) -> &'static str {
    if gic == 2 {
        "tandem-probe-gic2.bin"
    } else {
        "tandem-probe.bin"
    }
}
const TIMEOUT: Duration = Duration::from_secs(120);
/// The RTC on the virtual clock (deterministic under -icount) from a fixed date.
const RTC_ARGS: [&str; 2] = ["-rtc", "base=2025-01-01T00:00:00,clock=vm"];
/// The probe's VM name, as Tandem tags its console lines (`" probe | …"`).
const TAG: &str = "probe | ";

/// The console log of the one probe boot on a GICv`gic` machine, or why it failed (with
/// the log).
fn boot(gic: u8) -> Result<&'static str, &'static str> {
    static BOOTS: [OnceLock<Result<String, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let result = BOOTS[usize::from(gic == 2)].get_or_init(|| {
        let image = built_image("qemu-virt", image(gic))?;
        let mut m = MachineConfig::new("qemu-virt", image);
        m.gic = gic;
        m.icount = true;
        m.extra = RTC_ARGS.iter().map(|a| a.to_string()).collect();
        let mut q = Qemu::spawn(&format!("guest_probe_gicv{gic}"), &m)?;
        q.wait_for(&format!("{TAG}[T] hvc::roundtrip"), TIMEOUT)?;
        q.wait_for(&format!("{TAG}[T] exit_cost::vtimer_latency"), TIMEOUT)?;
        q.wait_for(" failed", TIMEOUT)?;
        // SYSTEM_OFF stops the only VM, and Tandem powers the machine off.
        let _ = q.wait_exit(Duration::from_secs(20));
        Ok(q.log())
    });
    result.as_deref().map_err(|e| e.as_str())
}

fn log() -> &'static str {
    log_on(3)
}

fn log_on(gic: u8) -> &'static str {
    boot(gic).unwrap_or_else(|e| panic!("{e}"))
}

/// The probe's own lines, without Tandem's tag.
fn guest_lines(log: &str) -> impl Iterator<Item = &str> {
    vm_lines(log, TAG)
}

/// Every `[T] <suite>::` line passes, and each of `required` is one of them.
fn assert_suite(suite: &str, required: &[&str]) {
    assert_suite_on(3, suite, required);
}

/// [`assert_suite`] on the GICv`gic` machine's boot.
fn assert_suite_on(gic: u8, suite: &str, required: &[&str]) {
    let log = log_on(gic);
    let prefix = format!("[T] {suite}::");
    let lines: Vec<&str> = guest_lines(log)
        .filter(|l| l.starts_with(&prefix))
        .collect();
    let failed: Vec<&&str> = lines.iter().filter(|l| !l.contains(" PASS")).collect();
    if !failed.is_empty() {
        fail(
            &format!(
                "{suite}: failed checks:\n  {}",
                failed
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
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

/// vCPU 1 comes up with CPU_ON (context id and VM_INFO checked), AFFINITY_INFO follows it,
/// CPU_ON errors (already on, bad MPIDR, entry outside RAM) are right, and CPU_OFF then
/// CPU_ON again works.
#[test]
fn psci_cpu_on_off_affinity() {
    assert_suite(
        "psci",
        &[
            "version",
            "features_cpu_on",
            "features_cpu_suspend",
            "smccc_version",
            "affinity_info_off",
            "cpu_on",
            "secondary_runs",
            "affinity_info_on",
            "cpu_on_already_on",
            "cpu_on_bad_mpidr",
            "cpu_off",
            "cpu_on_entry_outside_ram",
            "cpu_on_after_off",
        ],
    );
    let log = log();
    for ctx in ["0x5ec00001cafef00d", "0x5ec00002beefd00d"] {
        let line = format!("vcpu1 online ctx={ctx} vcpu_id=1");
        if !guest_lines(log).any(|l| l == line) {
            fail(&format!("missing {line:?}"), log);
        }
    }
}

/// The vGIC's ID registers are sane, byte writes to IPRIORITYR touch one byte, GICR_WAKER
/// wakes, and SGIs reach the other vCPU and the sender itself.
#[test]
fn vgic_sgi_and_registers() {
    assert_suite(
        "vgic",
        &[
            "gicd_typer",
            "gicd_pidr2_archrev",
            "gicd_ctlr",
            "gicr_ipriorityr_byte_write",
            "gicr_waker",
            "gicr_typer_affinity",
            "sgi_to_vcpu1",
            "sgi_to_self",
            "more_pending_than_lrs",
        ],
    );
}

/// Ten 1 ms virtual-timer deadlines interrupt on time (never early), and one wakes the
/// vCPU from WFI; the latencies are printed.
#[test]
fn vtimer_interrupts_arrive_on_time() {
    assert_suite(
        "vtimer",
        &[
            "frequency",
            "ten_deadlines_fire",
            "never_early",
            "wakes_vcpu_from_wfi",
        ],
    );
    let log = log();
    let samples = guest_lines(log)
        .filter(|l| l.starts_with("vtimer-latency: n="))
        .count();
    if samples != 10 {
        fail(&format!("{samples} vtimer-latency samples, want 10"), log);
    }
    match guest_lines(log).find(|l| l.starts_with("vtimer-latency: deadlines=")) {
        Some(summary) => eprintln!("{summary}"),
        None => fail("no vtimer-latency summary", log),
    }
}

/// The last word of RAM works; loads and stores just past RAM and to the physical UART get
/// Tandem's injected synchronous external abort with the right FAR.
#[test]
fn stage2_bounds_enforced() {
    assert_suite(
        "stage2",
        &[
            "ram_last_word",
            "load_past_ram",
            "store_past_ram",
            "load_phys_uart",
            "store_phys_uart",
        ],
    );
}

/// The PL031 RTC passed through to the probe is mapped at its physical address, and its
/// level-sensitive SPI (INTID 34) is forwarded: two one-second alarms each interrupt the
/// guest once, never before the match, and the line stays quiet once the guest clears it —
/// which needs the guest's deactivation to reach the physical SPI (HW = 1 list registers).
/// The forwarding latency is printed.
#[test]
fn passthrough_rtc_interrupt_forwarded() {
    assert_suite(
        "passthrough",
        &[
            "rtc_mapped",
            "rtc_time_plausible",
            "rtc_interrupt_round1",
            "rtc_quiet_after_clear_round1",
            "rtc_interrupt_round2",
            "rtc_quiet_after_clear_round2",
        ],
    );
    let log = log();
    if !log.contains("'probe': device 0x9010000..0x9011000 passed through, INTID 34 (level)") {
        fail("Tandem did not report the RTC passthrough", log);
    }
    let samples: Vec<&str> = guest_lines(log)
        .filter(|l| l.starts_with("passthrough-latency: "))
        .collect();
    if samples.is_empty() {
        fail("no passthrough-latency line", log);
    }
    for line in samples {
        eprintln!("{line}");
    }
}

/// 100,000 null hypercalls succeed and their round trip is reported
/// (`hvc-roundtrip: calls=100000 ticks=T ns_per_call=X`; under -icount, ns = instructions).
#[test]
fn hvc_roundtrip_is_reported() {
    assert_suite("hvc", &["discovery", "vm_info", "roundtrip"]);
    let log = log();
    let Some(line) = guest_lines(log).find(|l| l.starts_with("hvc-roundtrip: ")) else {
        fail("no hvc-roundtrip line", log)
    };
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("{line:?}: no {key}<number>"), log))
    };
    let (calls, ticks, ns) = (field("calls="), field("ticks="), field("ns_per_call="));
    if calls != 100_000.0 || ticks <= 0.0 || !(ns > 0.0 && ns < 100_000.0) {
        fail(&format!("implausible round trip: {line:?}"), log);
    }
    // The calibration loop (2 instructions per iteration) shows what a nanosecond is worth:
    // exactly one instruction under -icount shift=0.
    let Some(cal) = guest_lines(log).find(|l| l.starts_with("hvc-roundtrip-calibration: ")) else {
        fail("no hvc-roundtrip-calibration line", log)
    };
    let cal_field = |key: &str| -> f64 {
        cal.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("{cal:?}: no {key}<number>"), log))
    };
    let (insns, cal_ns) = (cal_field("loop_instructions="), cal_field("ns="));
    if (cal_ns - insns).abs() > insns / 100.0 {
        fail(
            &format!(
                "under -icount shift=0 the calibration loop should take 1 ns per instruction: {cal:?}"
            ),
            log,
        );
    }
    eprintln!("{line}\n{cal}\n=> about {ns:.0} instructions per null-hypercall round trip");
}

/// Tandem's exit-path figures (issue 8) are measured and none exceeds its committed figure
/// in `tests/figures/exit-costs.toml` by more than 10 %; every committed path is measured and
/// every measured path committed. Under -icount the figures are instruction counts, the same
/// every run, so this is no timing test: a failure means the path got longer.
#[test]
fn exit_costs_within_committed_figures() {
    exit_costs_on(3);
}

/// The exit-path figures on a GICv2 machine, held to `tests/figures/exit-costs-gicv2.toml`
/// in the same way.
#[test]
fn gicv2_exit_costs_within_committed_figures() {
    exit_costs_on(2);
}

fn exit_costs_on(gic: u8) {
    assert_suite_on(
        gic,
        "exit_cost",
        &[
            "smccc_version",
            "tandem_version",
            "gicd_read",
            "gicd_write",
            "vtimer_latency",
            "sgi_self",
            "virtual_ipi",
            "passthrough_irq",
        ],
    );
    let log = log_on(gic);
    let file = system_tests::paths::workspace_root().join(figures::exit_costs_file_for(gic));
    let committed = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|text| figures::parse_committed(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let measured = figures::parse_log(guest_lines(log)).unwrap_or_else(|e| fail(&e, log));
    for line in guest_lines(log).filter(|l| l.starts_with("exit-cost: ")) {
        eprintln!("{line}");
    }
    let rows = figures::compare(&measured, &committed);
    let table = figures::table(&rows);
    if rows.iter().any(|r| r.verdict.fails()) {
        fail(
            &format!(
                "exit-path figures against {}:\n{table}\nIf the change is meant to lengthen a path, \
                 commit its new figure there (see the file's header).",
                figures::exit_costs_file_for(gic)
            ),
            log,
        );
    }
    eprintln!("{table}");
}

/// The probe ran to its end with no failure, and Tandem neither faulted nor panicked.
#[test]
fn probe_guest_completes() {
    completes_on(3);
}

/// On a GICv2 machine too: every suite ran to its end with no failure.
#[test]
fn gicv2_probe_guest_completes() {
    completes_on(2);
}

/// The GICv2 vGIC: the emulated distributor's ID, banked SGI/PPI registers and ITARGETSR,
/// and SGIs through the trapped GICD_SGIR to the other vCPU (its source in GICC_IAR), to
/// the sender by list and by the self filter; then every other suite as on a GICv3 (PSCI,
/// virtual timer, stage 2, passthrough with hardware-linked list registers, hypercalls).
#[test]
fn gicv2_vgic_and_suites() {
    assert_suite_on(
        2,
        "vgic",
        &[
            "gicd_typer",
            "gicd_pidr2_archrev",
            "gicd_ctlr",
            "gicd_ipriorityr_byte_write",
            "gicd_banked_ipriorityr_byte_write",
            "gicd_itargetsr",
            "sgi_to_vcpu1",
            "sgi_to_self",
            "sgi_source_in_iar",
            "sgir_self_filter",
            "more_pending_than_lrs",
        ],
    );
    assert_suite_on(2, "psci", &["cpu_on", "cpu_off", "cpu_on_after_off"]);
    assert_suite_on(
        2,
        "vtimer",
        &["ten_deadlines_fire", "never_early", "wakes_vcpu_from_wfi"],
    );
    assert_suite_on(2, "stage2", &["load_past_ram", "store_phys_uart"]);
    assert_suite_on(
        2,
        "passthrough",
        &[
            "rtc_interrupt_round1",
            "rtc_quiet_after_clear_round1",
            "rtc_interrupt_round2",
            "rtc_quiet_after_clear_round2",
        ],
    );
    assert_suite_on(2, "hvc", &["discovery", "roundtrip"]);
    let log = log_on(2);
    if !log.contains("GICv2") || !log.contains("gic      v2: GICD 0x8000000, GICC 0x8010000") {
        fail("Tandem did not report the GICv2", log);
    }
}

fn completes_on(gic: u8) {
    let log = log_on(gic);
    if !guest_lines(log).any(|l| l.ends_with(" passed, 0 failed")) {
        fail("the probe did not finish with `N passed, 0 failed`", log);
    }
    for bad in ["EL2 FAULT", "PANIC", "[!]"] {
        if log.contains(bad) {
            fail(&format!("{bad:?} in the log"), log);
        }
    }
}
