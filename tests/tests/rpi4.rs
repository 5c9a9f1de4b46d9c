//! The Raspberry Pi 4 platform (`cargo xtask build --platform rpi4`).
//!
//! - Tandem's device-tree reader on the board's real `bcm2711-rpi-4-b.dtb`, which xtask
//!   compiles from the Linux source tree into `target/tandem/rpi4/` (never checked in): the
//!   GIC-400 and the PL011 sit behind `/soc`'s `ranges` (bus 0x7e00_0000 and 0x4000_0000
//!   windows) and must come out at their CPU physical addresses.
//! - One boot of `target/tandem/rpi4/tandem.bin` in QEMU `-M raspi4b` (with that device
//!   tree, under `-icount`): Tandem starts the four CPUs through the spin table, runs its
//!   GICv2 backend, and Linux reaches its shell beside the RTOS, which misses no deadline.

use std::time::Duration;

use kernel::platform::fdt::{self, EnableMethod, GicVersion, Region};
use system_tests::qemu::{MachineConfig, Qemu, built_image};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(120);
const PROMPT: &str = "tandem:/root# ";

/// The GIC-400, the PL011 and the spin-table CPUs of the real tree, translated through
/// `/soc` `ranges`; the firmware's `/memreserve/` page is kept.
#[test]
fn bcm2711_device_tree_translates_ranges() {
    let path = built_image("rpi4", "bcm2711-rpi-4-b.dtb").unwrap_or_else(|e| panic!("{e}"));
    let mut blob = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fdt::sanitize(&mut blob).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = fdt::parse(&blob).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(f.model(), "Raspberry Pi 4 Model B");
    let g = f.gic;
    assert_eq!(g.version, GicVersion::V2);
    let frame = |base| Region { base, size: 0x1000 };
    assert_eq!(g.dist, frame(0xff84_1000), "GICD (bus 0x4004_1000)");
    assert_eq!(g.cpu.base, 0xff84_2000, "GICC (bus 0x4004_2000)");
    assert_eq!(g.hyp.map(|r| r.base), Some(0xff84_4000), "GICH");
    assert_eq!(g.vcpu.map(|r| r.base), Some(0xff84_6000), "GICV");
    assert_eq!(g.maintenance_intid, Some(25));
    let uart = f.uart.expect("a PL011");
    assert_eq!(uart.regs.base, 0xfe20_1000, "uart0 (bus 0x7e20_1000)");
    assert_eq!(uart.intid, Some(153), "SPI 121");
    let cpus = f.cpus.as_slice();
    assert_eq!(cpus.len(), 4);
    for (i, c) in cpus.iter().enumerate() {
        assert_eq!(c.mpidr, i as u64);
        assert_eq!(c.enable, EnableMethod::SpinTable(0xd8 + 8 * i as u64));
    }
    assert_eq!(f.psci, None);
    assert!(
        f.reserved.as_slice().contains(&Region {
            base: 0,
            size: 0x1000
        }),
        "/memreserve/ of the spin tables: {:?}",
        f.reserved.as_slice()
    );
    assert_eq!((f.timer.virt_intid, f.timer.hyp_intid), (27, 26));
}

/// Tandem, the RTOS and Linux in QEMU raspi4b: four CPUs up through the spin table, the
/// GICv2 backend on the GIC-400, Linux's shell with `/sys/hypervisor/type` = `tandem`, and
/// the RTOS beside it with `misses=0`.
#[test]
fn raspi4b_boots_linux_beside_the_rtos() {
    let image = built_image("rpi4", "tandem.bin").unwrap_or_else(|e| panic!("{e}"));
    let mut m = MachineConfig::new("rpi4", image);
    m.icount = true;
    let mut q =
        Qemu::spawn("raspi4b_boots_linux_beside_the_rtos", &m).unwrap_or_else(|e| panic!("{e}"));
    let ok = |r: Result<(), String>| r.unwrap_or_else(|e| panic!("{e}"));
    ok(q.wait_for("on rpi4 (Raspberry Pi 4 Model B): EL2, 4 CPUs", BOOT));
    ok(q.wait_for("all 4 CPUs online", BOOT));
    ok(q.wait_for("rtos-guest: GICv2 (GICD 0x8000000, GICC 0x8010000)", BOOT));
    ok(q.wait_for(PROMPT, BOOT));
    let before = q.log().len();
    ok(q.send("cat /sys/hypervisor/type\n"));
    let deadline = std::time::Instant::now() + STEP;
    while !q.log()[before..]
        .replace('\r', "")
        .contains("linux | tandem\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("/sys/hypervisor/type did not say tandem")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two statistics lines after the shell: Linux booted and idles beside the RTOS.
    let mark = q.log().len();
    let deadline = std::time::Instant::now() + STEP;
    let stats = loop {
        let log = q.log();
        let lines: Vec<&str> = system_tests::log::complete(&log)
            .get(mark..)
            .unwrap_or("")
            .lines()
            .filter(|l| l.contains("rtos-stats:"))
            .collect();
        if lines.len() >= 2 {
            break lines[1].to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            q.failure("no rtos-stats lines after the shell")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        stats.contains(" misses=0 "),
        "{}",
        q.failure(&format!("the RTOS missed deadlines: {stats}"))
    );
    for bad in ["EL2 FAULT", "PANIC", "stays off"] {
        assert!(
            !q.log().contains(bad),
            "{}",
            q.failure(&format!("{bad:?} in the log"))
        );
    }
    eprintln!("{stats}");
}
