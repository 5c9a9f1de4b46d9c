//! Boot scenarios on qemu-virt: one QEMU boot per test, checked by console markers.

use std::time::Duration;

use system_tests::qemu::{MachineConfig, Qemu, built_image};

const TIMEOUT: Duration = Duration::from_secs(60);

fn machine() -> MachineConfig {
    let image = built_image("qemu-virt", "tandem-novm.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    m
}

fn boot(name: &str, m: &MachineConfig, markers: &[&str]) -> Qemu {
    let mut q = Qemu::spawn(name, m).unwrap_or_else(|e| panic!("{e}"));
    for marker in markers {
        q.wait_for(marker, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    q
}

/// The banner names version, platform, EL2, CPUs and RAM, and every CPU comes online.
#[test]
fn boot_banner_el2_four_cpus() {
    let q = boot(
        "boot_banner_el2_four_cpus",
        &machine(),
        &[
            "Tandem v",
            "on qemu-virt (linux,dummy-virt): EL2, 4 CPUs, 1024 MiB RAM, GICv3",
            "cpu1 online, MPIDR 0x80000001",
            "cpu2 online, MPIDR 0x80000002",
            "cpu3 online, MPIDR 0x80000003",
            "all 4 CPUs online",
        ],
    );
    let log = q.log();
    for fact in [
        "memory   0x40000000..0x80000000 (1024 MiB)",
        "gic      v3: GICD 0x8000000, GICR 0x80a0000",
        "uart     pl011 at 0x9000000, INTID Some(33)",
        "timer    INTIDs: EL1 phys 30, virt 27, EL2 phys 26; maintenance Some(25)",
        "psci     Some(Smc)",
    ] {
        assert!(
            log.contains(fact),
            "{}",
            q.failure(&format!("missing DT fact {fact:?}"))
        );
    }
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "{}",
        q.failure("unexpected warning")
    );
}

/// GICv2 (the Raspberry Pi 4's kind) is recognised with its four frames.
#[test]
fn boot_gicv2_frames() {
    let mut m = machine();
    m.gic = 2;
    m.smp = 2;
    boot(
        "boot_gicv2_frames",
        &m,
        &[
            "EL2, 2 CPUs, 1024 MiB RAM, GICv2",
            "GICC 0x8010000, GICH 0x8030000, GICV 0x8040000",
            "all 2 CPUs online",
        ],
    );
}

/// A package built for the other GIC version is refused with the fix named, in both
/// directions, and Tandem idles instead of starting guests that would not find their GIC.
#[test]
fn package_for_the_other_gic_is_refused() {
    for (image, machine_gic, built_for) in [
        ("tandem-rtos.bin", 2u8, 3u8),
        ("tandem-rtos-gic2.bin", 3, 2),
    ] {
        let image = built_image("qemu-virt", image).unwrap_or_else(|e| panic!("{e}"));
        let mut m = MachineConfig::new("qemu-virt", image);
        m.gic = machine_gic;
        m.icount = true;
        let q = boot(
            &format!("package_for_the_other_gic_is_refused_{machine_gic}"),
            &m,
            &[
                &format!(
                    "WARN  the guest package was built for a GICv{built_for} (cargo xtask --gic \
                     {built_for}), but this machine has a GICv{machine_gic}: no VMs will run"
                ),
                "no VMs to run: Tandem idles",
            ],
        );
        assert!(!q.log().contains("rtos |"), "{}", q.failure("a guest ran"));
    }
}

/// Other CPU models and memory sizes boot too.
#[test]
fn boot_cortex_a53_and_max() {
    for (cpu, mem, mib) in [("cortex-a53", "512M", 512), ("max", "2G", 2048)] {
        let mut m = machine();
        m.cpu = cpu.into();
        m.memory = mem.into();
        boot(
            &format!("boot_{cpu}"),
            &m,
            &[&format!("EL2, 4 CPUs, {mib} MiB RAM"), "all 4 CPUs online"],
        );
    }
}

/// W^X at EL2 (issue 13, item 3): Tandem walks its live EL2 tables at boot and finds no
/// page both writable and executable, its text read-only and executable, every stack guard
/// page (two per CPU slot) unmapped, and SCTLR_EL2.WXN on.
#[test]
fn el2_map_is_w_xor_x_with_stack_guards() {
    let q = boot(
        "el2_map_w_xor_x",
        &machine(),
        &["EL2 map: ", "all 4 CPUs online"],
    );
    let log = q.log();
    let line = log
        .lines()
        .find(|l| l.contains("EL2 map: "))
        .unwrap_or_default();
    let (_, summary) = line.split_once("EL2 map: ").unwrap();
    let rx: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        line.contains(" INFO ") && rx > 16,
        "{}",
        q.failure(&format!("no executable text in {line:?}"))
    );
    for fact in [
        " 0 W+X;",
        " 16 stack guard pages unmapped, 0 mapped;",
        "SCTLR_EL2.WXN on",
    ] {
        assert!(
            summary.contains(fact),
            "{}",
            q.failure(&format!("{fact:?} missing from {line:?}"))
        );
    }
}

/// An EL2 stack overflow trips cleanly: the fault on the guard page below CPU 0's stack is
/// named as a stack overflow, reported from the emergency stack once, and the CPU parks;
/// nothing else (no nested fault, no panic, no garbage) follows.
#[test]
fn el2_stack_overflow_trips_cleanly() {
    let mut m = machine();
    m.smp = 1;
    m.extra = vec!["-append".into(), "tandem.crash=stack-overflow".into()];
    let q = boot(
        "el2_stack_overflow",
        &m,
        &[
            "EL2 stack overflow on CPU 0: ",
            "is in the guard page below CPU 0's main stack",
            "CPU parked.",
        ],
    );
    // Anything printed after the report would be in the log by now.
    std::thread::sleep(Duration::from_secs(2));
    let log = q.log();
    let from = log.find("triggering a deliberate EL2 fault").unwrap();
    let tail = &log[from..];
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines[1].starts_with("EL2 stack overflow on CPU 0: ")
            && lines[2].starts_with("EL2 FAULT on CPU 0: Sync exception")
            && lines[3].contains("EC=0x25 (data abort at EL2) write translation fault")
            && lines.last().is_some_and(|l| l.trim_end() == "CPU parked."),
        "{}",
        q.failure("the overflow report is not one clean block")
    );
    assert_eq!(
        lines.len(),
        4 + 1 + 8 + 1,
        "{}",
        q.failure("lines after the report")
    );
    assert!(
        tail.chars()
            .all(|c| c == '\n' || c == '\r' || (' '..='~').contains(&c)),
        "{}",
        q.failure("non-printable output")
    );
    assert_eq!(
        tail.matches("EL2 FAULT").count(),
        1,
        "{}",
        q.failure("nested fault")
    );
}

/// Without virtualization=on QEMU starts the image at EL1: a clear error, then power off.
#[test]
fn boot_without_el2_is_a_clear_error() {
    let mut m = machine();
    m.virtualization = false;
    let mut q = boot(
        "boot_without_el2",
        &m,
        &[
            "started at EL1, but a hypervisor needs EL2",
            "virtualization=on",
        ],
    );
    let code = q.wait_exit(TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{}", q.failure("QEMU should power off cleanly"));
}

/// Under -icount the whole boot log is identical run to run.
#[test]
fn boot_is_deterministic_under_icount() {
    let m = machine();
    let a = boot("boot_deterministic_a", &m, &["all 4 CPUs online"]).log();
    let b = boot("boot_deterministic_b", &m, &["all 4 CPUs online"]).log();
    let upto = |s: &str| s[..s.find("all 4 CPUs online").unwrap()].to_string();
    assert_eq!(upto(&a), upto(&b));
}

/// Each deliberate EL2 fault gives a decoded report and parks the CPU; nothing hangs silently.
#[test]
fn el2_faults_are_reported() {
    for (kind, expect) in [
        (
            "data-abort",
            "EC=0x25 (data abort at EL2) read translation fault",
        ),
        ("undef", "EC=0x00 (unknown/undefined instruction)"),
        (
            "stack-overflow",
            "EC=0x25 (data abort at EL2) write translation fault",
        ),
        ("panic", "Tandem PANIC on CPU 0: panicked at"),
    ] {
        let mut m = machine();
        m.smp = 1;
        m.extra = vec!["-append".into(), format!("tandem.crash={kind}")];
        let q = boot(&format!("el2_fault_{kind}"), &m, &[expect, "CPU parked."]);
        if kind != "panic" {
            let log = q.log();
            assert!(
                log.contains("ELR=0x") && log.contains("x30="),
                "{}",
                q.failure("registers missing")
            );
        }
    }
}
