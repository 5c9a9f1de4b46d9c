//! The pv-abi example guests (`pv-abi/examples/hello-rust`, `pv-abi/examples/hello-c`), booted
//! as `cargo xtask run --guest target/tandem/examples/<name>.bin` boots them: one more VM after
//! the selected ones. `cargo xtask test` builds the images (`package::build_test_images`):
//!
//! - `tandem-rtos-guest-hello-rust.bin`, `tandem-rtos-guest-hello-c.bin`: the RTOS (VM 1) and
//!   the example (VM 2), like `cargo xtask run --vms rtos --guest …`;
//! - `tandem-guest-hello-rust.bin`: Linux (VM 1), the RTOS (VM 2) and hello-rust (VM 3), like
//!   `cargo xtask run --guest …`.
//!
//! Each example prints its lines (those its README shows), powers its own VM off, and the
//! other VMs run on: the RTOS keeps its deadlines, Linux reaches its shell.

use std::time::{Duration, Instant};

use system_tests::qemu::{MachineConfig, Qemu, built_image};

const TIMEOUT: Duration = Duration::from_secs(60);
const LINUX_BOOT: Duration = Duration::from_secs(240);

fn boot(name: &str, image: &str) -> Qemu {
    let image = built_image("qemu-virt", image).unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("qemu-virt", image);
    m.icount = true;
    Qemu::spawn(name, &m).unwrap_or_else(|e| panic!("{e}"))
}

/// The lines VM `vm` printed, without Tandem's `<vm> | ` tag.
fn lines_of<'a>(log: &'a str, vm: &str) -> Vec<&'a str> {
    log.lines()
        .filter_map(|l| l.split_once(" | "))
        .filter(|(tag, _)| tag.trim() == vm)
        .map(|(_, rest)| rest.trim_end())
        .collect()
}

/// Waits for the example's whole run, checks its lines and its clean power-off; returns the
/// log offset of Tandem's stop line.
fn check_example(q: &mut Qemu, vm: &str, language: &str, vm_id: u32) -> usize {
    let stopped = format!("VM {vm_id} '{vm}' stopped: powered off by the guest (PSCI SYSTEM_OFF)");
    q.wait_for(&format!("{vm} | bye: SYSTEM_OFF"), TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    q.wait_for(&stopped, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let log = q.log();
    let want = [
        format!("hello from {language}: Tandem ABI {}", pv_abi::ABI_VERSION),
        format!("VM {vm_id}, vCPU 0 of 2, device tree at 0x40000000"),
        "3 virtual timer interrupts (INTID 27), 10 ms apart".to_string(),
        "hello from vCPU 1 (PSCI CPU_ON, context id 0x1234)".to_string(),
        "bye: SYSTEM_OFF".to_string(),
    ];
    let have = lines_of(&log, vm);
    let mut at = 0;
    for line in &want {
        match have[at..].iter().position(|h| h.starts_with(line.as_str())) {
            Some(i) => at += i + 1,
            None => panic!(
                "{}",
                q.failure(&format!(
                    "{vm} did not print {line:?} (in order); it printed {have:#?}"
                ))
            ),
        }
    }
    assert_eq!(
        have.len(),
        want.len(),
        "{}",
        q.failure(&format!("{vm} printed other lines too: {have:#?}"))
    );
    log.find(&stopped).expect("waited for it")
}

/// Waits for an `rtos-stats:` line printed after byte `from`; checks that the RTOS
/// (`rtos_vm`) has missed no deadline.
fn rtos_runs_on(q: &mut Qemu, rtos_vm: &str, from: usize) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = q.log();
        let complete = system_tests::log::complete(&log);
        let stats = complete.get(from..).unwrap_or("").lines().find_map(|l| {
            let (tag, rest) = l.split_once(" | ")?;
            (tag.trim() == rtos_vm).then_some(())?;
            rtos_guest::stats::parse_line(rest)
        });
        if let Some(stats) = stats {
            assert!(stats.periods > 0, "{}", q.failure(&format!("{stats:?}")));
            assert_eq!(
                stats.misses,
                0,
                "{}",
                q.failure("the RTOS missed deadlines beside the example")
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats line after the example powered off")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// hello-rust beside the RTOS: its lines, SYSTEM_OFF of its VM only, the RTOS carries on.
#[test]
fn hello_rust_beside_rtos() {
    let mut q = boot("hello_rust_beside_rtos", "tandem-rtos-guest-hello-rust.bin");
    let stopped = check_example(&mut q, "hello-rust", "Rust", 2);
    rtos_runs_on(&mut q, "rtos", stopped);
}

/// hello-c beside the RTOS: the same lines from C.
#[test]
fn hello_c_beside_rtos() {
    let mut q = boot("hello_c_beside_rtos", "tandem-rtos-guest-hello-c.bin");
    let stopped = check_example(&mut q, "hello-c", "C", 2);
    rtos_runs_on(&mut q, "rtos", stopped);
}

/// hello-rust beside the default set, as plain `cargo xtask run --guest …` boots it: the
/// example finishes while Linux boots, and Linux reaches its shell, the RTOS on time.
#[test]
fn hello_rust_beside_linux_and_rtos() {
    let mut q = boot(
        "hello_rust_beside_linux_and_rtos",
        "tandem-guest-hello-rust.bin",
    );
    let stopped = check_example(&mut q, "hello-rust", "Rust", 3);
    q.wait_for("tandem:/root# ", LINUX_BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let log = q.log();
    assert!(
        !log.contains("all VMs have stopped"),
        "{}",
        q.failure("Tandem stopped the machine")
    );
    rtos_runs_on(&mut q, "rtos", stopped);
}
