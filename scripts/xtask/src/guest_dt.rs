//! Each VM's device tree: generated as DTS text, compiled with `dtc`.
//!
//! The tree describes what Tandem gives every VM (docs/vm-config.md): RAM at
//! 0x4000_0000, one `cpu@n` per vCPU (MPIDR Aff0 = n, started with PSCI over
//! `hvc`), the emulated GICv3 (distributor at 0x0800_0000, one 128 KiB
//! redistributor frame pair per vCPU from 0x080a_0000) or, on a GICv2 machine,
//! an `arm,gic-400` (distributor at 0x0800_0000, CPU interface at
//! 0x0801_0000), the architected timer,
//! and the `tandem,hypervisor` node whose SPI 0 (INTID 32) says console input
//! is waiting. A transparent VM (`console = "pl011"`) gets no Tandem node but
//! the board's PL011 as QEMU describes it (Tandem's virtual PL011), which
//! `/chosen/stdout-path` names. `/chosen` carries fixed `rng-seed` and `kaslr-seed` values so
//! a guest boots identically run to run under `-icount`
//! (/work/shared/notes/determinism.md), plus, for Linux, the command line and
//! the initramfs range.
//!
//! Passthrough devices (`devices` in vms.toml) appear at their physical
//! address, which is also their IPA. A device named `rtc` is QEMU virt's
//! PL031 and gets the node QEMU gives it (`arm,pl031`, `arm,primecell`, with
//! the 24 MHz `apb_pclk` fixed clock); any other name gets a generic node,
//! `compatible = "tandem,passthrough"`, with its `reg` and `interrupts` only.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::vms::{Device, HostileRun, RAM_IPA};

/// The GICv3 distributor's IPA and size.
pub const GICD_IPA: u64 = 0x0800_0000;
/// Size of the distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;
/// The first redistributor's IPA.
pub const GICR_IPA: u64 = 0x080a_0000;
/// Redistributor stride: RD_base + SGI_base frames, 64 KiB each.
pub const GICR_STRIDE: u64 = 0x2_0000;
/// The GICv2 distributor's size (its IPA is [`GICD_IPA`]).
pub const GICD_V2_SIZE: u64 = 0x1000;
/// The GICv2 CPU interface's IPA (Tandem maps the hardware GICV there).
pub const GICC_IPA: u64 = 0x0801_0000;
/// Size of the GICv2 CPU interface (GICC_DIR at 0x1000 included).
pub const GICC_SIZE: u64 = 0x2000;
/// The console-input interrupt: SPI 0.
pub const CONSOLE_INTID: u32 = 32;
/// The top page of RAM, reserved for the Arm PV time structures (the
/// kernel's `hyp::vm::PV_TIME_REGION`).
pub const PV_TIME_REGION: u64 = 4096;

/// What a VM's device tree says.
#[derive(Clone, Debug)]
pub struct GuestDt<'a> {
    /// VM name (for `model` and the seeds).
    pub name: &'a str,
    /// RAM size in bytes (RAM starts at [`RAM_IPA`]).
    pub ram_size: u64,
    /// Number of vCPUs.
    pub vcpus: usize,
    /// Kernel command line (`/chosen/bootargs`).
    pub bootargs: Option<&'a str>,
    /// Initramfs `[start, end)` IPAs.
    pub initrd: Option<(u64, u64)>,
    /// Passthrough devices.
    pub devices: &'a [Device],
    /// Default timeout of the paravirtual watchdog in seconds (`timeout-sec`).
    pub watchdog_s: Option<u32>,
    /// GIC version (2 or 3) the VM gets, as the machine's.
    pub gic: u8,
    /// The VM's ends of channels.
    pub channels: &'a [ChannelNode],
    /// A virtual PL011 (base, INTID) instead of the Tandem node: a transparent VM.
    pub pl011: Option<(u64, u32)>,
    /// The seeded hostile guest's run (`/chosen/tandem,hostile-seed` and `-ops`).
    pub hostile: Option<HostileRun>,
}

/// The emulated GIC: a GICv3 (distributor and one redistributor per vCPU), or
/// a GICv2 as a GIC-400 (distributor, and the CPU interface that Tandem backs
/// with the hardware's virtual CPU interface).
fn gic_node(w: &mut String, dt: &GuestDt<'_>) {
    let _ = writeln!(w, "\tgic: interrupt-controller@{GICD_IPA:x} {{");
    let (compatible, frames) = if dt.gic == 2 {
        (
            "arm,gic-400",
            [(GICD_IPA, GICD_V2_SIZE), (GICC_IPA, GICC_SIZE)],
        )
    } else {
        (
            "arm,gic-v3",
            [
                (GICD_IPA, GICD_SIZE),
                (GICR_IPA, GICR_STRIDE * dt.vcpus as u64),
            ],
        )
    };
    let _ = writeln!(w, "\t\tcompatible = \"{compatible}\";");
    let _ = writeln!(
        w,
        "\t\t#interrupt-cells = <3>;\n\t\t#address-cells = <2>;\n\t\t#size-cells = <2>;"
    );
    let _ = writeln!(w, "\t\tinterrupt-controller;");
    let _ = writeln!(
        w,
        "\t\treg = <{} {}>, <{} {}>;",
        cells(frames[0].0),
        cells(frames[0].1),
        cells(frames[1].0),
        cells(frames[1].1)
    );
    let _ = writeln!(w, "\t}};\n");
}

/// One end of a channel, as its VM's device tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelNode {
    /// The id `CHANNEL_NOTIFY` and the virtio calls take (`tandem,channel`).
    pub id: u32,
    /// The channel's name (`label`).
    pub name: String,
    /// The shared region (the same IPA in both VMs).
    pub ipa: u64,
    /// Its size.
    pub size: u64,
    /// The doorbell the peer rings (INTID, edge).
    pub intid: u32,
    /// The VM at the other end (`tandem,peer`).
    pub peer: String,
    /// What this end is.
    pub role: ChannelRole,
}

/// What a VM is at its end of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRole {
    /// A plain channel: shared memory and doorbells (`tandem,channel`).
    Plain,
    /// A virtio device's front-end: a standard `virtio,mmio` node at
    /// `window` whose DMA is restricted to the shared region.
    Front {
        /// The register window's IPA.
        window: u64,
    },
    /// A virtio device's back-end (`tandem,virtio-backend`).
    Back {
        /// The virtio device ID it serves.
        device: u32,
    },
}

/// The channel nodes (and, for virtio front-ends, the memory, DMA pool and
/// `virtio,mmio` nodes).
fn channel_nodes(w: &mut String, channels: &[ChannelNode]) {
    for c in channels {
        let reg = format!("reg = <{} {}>;", cells(c.ipa), cells(c.size));
        let irq = spi_cells(c.intid, true);
        let common = format!(
            "\t\tinterrupts = <{irq}>;\n\t\ttandem,channel = <{}>;\n\t\ttandem,peer = \"{}\";\n\t\tlabel = \"{}\";",
            c.id, c.peer, c.name
        );
        match c.role {
            ChannelRole::Front { window } => {
                let _ = writeln!(
                    w,
                    "\n\t/* Channel {} \"{}\": a virtio device served by VM \"{}\"; its DMA stays in the shared region. */",
                    c.id, c.name, c.peer
                );
                let _ = writeln!(
                    w,
                    "\tmemory@{:x} {{\n\t\tdevice_type = \"memory\";\n\t\t{reg}\n\t}};",
                    c.ipa
                );
                let _ = writeln!(
                    w,
                    "\n\tvirtio_mmio@{window:x} {{\n\t\tcompatible = \"virtio,mmio\";\n\t\treg = <{} 0x0 0x200>;\n\t\tdma-coherent;\n\t\tmemory-region = <&channel{}>;\n{common}\n\t}};",
                    cells(window),
                    c.id
                );
            }
            ChannelRole::Back { .. } | ChannelRole::Plain => {
                let (compatible, device) = match c.role {
                    ChannelRole::Back { device } => (
                        pv_abi::virtio::DT_VIRTIO_BACKEND,
                        format!("\t\ttandem,virtio-device = <{device}>;\n"),
                    ),
                    _ => (pv_abi::virtio::DT_CHANNEL, String::new()),
                };
                let _ = writeln!(
                    w,
                    "\n\t/* Channel {}: shared with VM \"{}\"; the interrupt is its doorbell. */\n\tchannel@{:x} {{\n\t\tcompatible = \"{compatible}\";\n\t\t{reg}\n{device}{common}\n\t}};",
                    c.id, c.peer, c.ipa
                );
            }
        }
    }
}

/// The `interrupts` cells of an SPI: `<0 spi flags>`, flags 1 = edge rising, 4 = level high.
fn spi_cells(intid: u32, edge: bool) -> String {
    format!("0 {} {}", intid - 32, if edge { 1 } else { 4 })
}

/// The nodes of the passthrough devices and the virtual PL011 (and the clock
/// the PrimeCells need).
fn device_nodes(w: &mut String, devices: &[Device], pl011: Option<(u64, u32)>) {
    if pl011.is_some() || devices.iter().any(|d| d.name == "rtc") {
        let _ = writeln!(
            w,
            "
	apb_pclk: apb-pclk {{
		compatible = \"fixed-clock\";\n\t\t#clock-cells = <0>;"
        );
        let _ = writeln!(
            w,
            "		clock-frequency = <24000000>;\n\t\tclock-output-names = \"clk24mhz\";\n\t}};"
        );
    }
    if let Some((base, intid)) = pl011 {
        let _ = writeln!(
            w,
            "\n\t/* The console: Tandem's virtual PL011, as on the bare board. */\n\tpl011@{base:x} {{\n\t\tcompatible = \"arm,pl011\", \"arm,primecell\";\n\t\treg = <{} {}>;\n\t\tinterrupts = <{}>;",
            cells(base),
            cells(0x1000),
            spi_cells(intid, false)
        );
        let _ = writeln!(
            w,
            "\t\tclocks = <&apb_pclk>, <&apb_pclk>;\n\t\tclock-names = \"uartclk\", \"apb_pclk\";\n\t}};"
        );
    }
    for d in devices {
        let interrupts = d
            .irq
            .map(|i| format!("\t\tinterrupts = <{}>;\n", spi_cells(i, d.edge)))
            .unwrap_or_default();
        let reg = format!("reg = <{} {}>;", cells(d.base), cells(d.size));
        if d.name == "rtc" {
            let _ = write!(
                w,
                "\n\t/* Passed through: the PL031 real-time clock. */\n\tpl031@{:x} {{\n\t\tcompatible = \"arm,pl031\", \"arm,primecell\";\n\t\t{reg}\n{interrupts}",
                d.base
            );
            let _ = writeln!(
                w,
                "\t\tclocks = <&apb_pclk>;\n\t\tclock-names = \"apb_pclk\";\n\t}};"
            );
        } else {
            let _ = writeln!(
                w,
                "\n\t/* Passed through. */\n\t{}@{:x} {{\n\t\tcompatible = \"tandem,passthrough\";\n\t\t{reg}\n{interrupts}\t}};",
                d.name, d.base
            );
        }
    }
}

/// Eight fixed 32-bit words derived from the VM name (FNV-1a, then splitmix64).
pub fn rng_seed(name: &str) -> [u32; 8] {
    let mut x = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut out = [0u32; 8];
    for pair in out.chunks_mut(2) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        pair[0] = (z >> 32) as u32;
        pair[1] = z as u32;
    }
    out
}

/// `<0xHI 0xLO>` cells for a 64-bit value.
fn cells(v: u64) -> String {
    format!("0x{:x} 0x{:x}", v >> 32, v & 0xffff_ffff)
}

/// Renders the DTS source.
pub fn dts(dt: &GuestDt<'_>) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// Generated by `cargo xtask` for VM \"{}\" (scripts/xtask/src/guest_dt.rs).",
        dt.name
    );
    let _ = writeln!(w, "/dts-v1/;\n\n/ {{");
    let _ = writeln!(w, "\tcompatible = \"tandem,vm\";");
    let _ = writeln!(w, "\tmodel = \"Tandem VM {}\";", dt.name);
    let _ = writeln!(
        w,
        "\t#address-cells = <2>;\n\t#size-cells = <2>;\n\tinterrupt-parent = <&gic>;\n"
    );

    let _ = writeln!(w, "\tchosen {{");
    if let Some(args) = dt.bootargs {
        let _ = writeln!(w, "\t\tbootargs = \"{args}\";");
    }
    let stdout = dt.pl011.map_or("/hypervisor".to_string(), |(base, _)| {
        format!("/pl011@{base:x}")
    });
    let _ = writeln!(w, "\t\tstdout-path = \"{stdout}\";");
    if let Some((start, end)) = dt.initrd {
        let _ = writeln!(w, "\t\tlinux,initrd-start = <{}>;", cells(start));
        let _ = writeln!(w, "\t\tlinux,initrd-end = <{}>;", cells(end));
    }
    let seed = rng_seed(dt.name).map(|x| format!("0x{x:08x}")).join(" ");
    let _ = writeln!(w, "\t\t/* Fixed, so runs are identical under -icount. */");
    let _ = writeln!(w, "\t\trng-seed = <{seed}>;");
    let _ = writeln!(w, "\t\tkaslr-seed = <0x0 0x0>;");
    if let Some(run) = dt.hostile {
        let _ = writeln!(
            w,
            "\t\t/* What the hostile guest does (cargo xtask run --with-hostile). */"
        );
        let _ = writeln!(w, "\t\ttandem,hostile-seed = <{}>;", cells(run.seed));
        let _ = writeln!(w, "\t\ttandem,hostile-ops = <{}>;", cells(run.ops));
    }
    let _ = writeln!(w, "\t}};\n");

    let _ = writeln!(w, "\tmemory@{RAM_IPA:x} {{");
    let _ = writeln!(w, "\t\tdevice_type = \"memory\";");
    let _ = writeln!(w, "\t\treg = <{} {}>;", cells(RAM_IPA), cells(dt.ram_size));
    let _ = writeln!(w, "\t}};\n");

    // Arm PV time: the vCPUs' stolen-time structures live in the top page of
    // RAM (the kernel's `Vm::stolen_time_ipa`), kept out of the guest's hands.
    let pv_time = RAM_IPA + dt.ram_size - PV_TIME_REGION;
    let _ = writeln!(
        w,
        "\treserved-memory {{\n\t\t#address-cells = <2>;\n\t\t#size-cells = <2>;\n\t\tranges;\n"
    );
    let _ = writeln!(w, "\t\tpv-time@{pv_time:x} {{");
    let _ = writeln!(
        w,
        "\t\t\treg = <{} {}>;",
        cells(pv_time),
        cells(PV_TIME_REGION)
    );
    let _ = writeln!(w, "\t\t\tno-map;\n\t\t}};");
    // A virtio front-end's DMA goes through a pool in the shared region only
    // (Linux: restricted DMA), so its back-end sees nothing else of this VM.
    for c in dt.channels {
        if let ChannelRole::Front { .. } = c.role {
            let _ = writeln!(
                w,
                "\n\t\tchannel{}: {}@{:x} {{\n\t\t\tcompatible = \"restricted-dma-pool\";\n\t\t\treg = <{} {}>;\n\t\t}};",
                c.id,
                c.name,
                c.ipa,
                cells(c.ipa),
                cells(c.size)
            );
        }
    }
    let _ = writeln!(w, "\t}};\n");

    let _ = writeln!(
        w,
        "\tcpus {{\n\t\t#address-cells = <1>;\n\t\t#size-cells = <0>;"
    );
    for n in 0..dt.vcpus {
        let _ = writeln!(w, "\n\t\tcpu@{n} {{");
        let _ = writeln!(w, "\t\t\tdevice_type = \"cpu\";");
        let _ = writeln!(w, "\t\t\tcompatible = \"arm,cortex-a72\";");
        let _ = writeln!(w, "\t\t\treg = <0x{n:x}>;");
        let _ = writeln!(w, "\t\t\tenable-method = \"psci\";");
        let _ = writeln!(w, "\t\t}};");
    }
    let _ = writeln!(w, "\t}};\n");

    let _ = writeln!(
        w,
        "\tpsci {{\n\t\tcompatible = \"arm,psci-1.0\", \"arm,psci-0.2\";\n\t\tmethod = \"hvc\";\n\t}};\n"
    );

    gic_node(w, dt);
    // PPIs: secure physical (13), non-secure physical (14), virtual (11), hypervisor (10) timers;
    // level-triggered, active high, as QEMU describes them (with GICv2's CPU mask in [15:8]).
    let flags = if dt.gic == 2 {
        ((1u32 << dt.vcpus.min(8)) - 1) << 8 | 4
    } else {
        4
    };
    let _ = writeln!(w, "\ttimer {{\n\t\tcompatible = \"arm,armv8-timer\";");
    let _ = writeln!(
        w,
        "\t\tinterrupts = <1 13 {flags:#x}>, <1 14 {flags:#x}>, <1 11 {flags:#x}>, <1 10 {flags:#x}>;"
    );
    let _ = writeln!(w, "\t\talways-on;\n\t}};\n");

    // A transparent VM sees no Tandem.
    if dt.pl011.is_none() {
        let _ = writeln!(
            w,
            "\thypervisor {{\n\t\tcompatible = \"tandem,hypervisor\";"
        );
        let _ = writeln!(
            w,
            "\t\t/* Console input is waiting: SPI {} = INTID {CONSOLE_INTID}, edge rising. */",
            CONSOLE_INTID - 32
        );
        let _ = writeln!(w, "\t\tinterrupts = <0 {} 1>;", CONSOLE_INTID - 32);
        if let Some(s) = dt.watchdog_s {
            let _ = writeln!(w, "\t\t/* Default timeout of the paravirtual watchdog. */");
            let _ = writeln!(w, "\t\ttimeout-sec = <{s}>;");
        }
        let _ = writeln!(w, "\t}};");
    }
    device_nodes(w, dt.devices, dt.pl011);
    channel_nodes(w, dt.channels);
    let _ = writeln!(w, "}};");
    s
}

/// Writes `dts` to `<out>.dts` and compiles it to `<out>.dtb` with dtc; returns the DTB.
/// dtc's warnings are errors: the generated tree must be clean.
pub fn compile(dts: &str, out: &Path) -> Result<Vec<u8>, String> {
    let src = out.with_extension("dts");
    let dtb = out.with_extension("dtb");
    std::fs::write(&src, dts).map_err(|e| format!("{}: {e}", src.display()))?;
    let output = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(&src)
        .output()
        .map_err(|e| {
            format!(
                "cannot run dtc (install device-tree-compiler, or run `cargo xtask setup`): {e}"
            )
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!("dtc {}: {}", src.display(), stderr.trim()));
    }
    std::fs::read(&dtb).map_err(|e| format!("{}: {e}", dtb.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> GuestDt<'static> {
        GuestDt {
            name: "linux",
            ram_size: 256 << 20,
            vcpus: 2,
            bootargs: Some("console=hvc0 earlycon=tandem"),
            initrd: Some((0x41c0_0000, 0x41d2_3456)),
            devices: &[],
            watchdog_s: None,
            gic: 3,
            channels: &[],
            pl011: None,
            hostile: None,
        }
    }

    fn rtos() -> GuestDt<'static> {
        GuestDt {
            name: "rtos",
            ram_size: 16 << 20,
            vcpus: 4,
            bootargs: None,
            initrd: None,
            devices: &[],
            watchdog_s: None,
            gic: 3,
            channels: &[],
            pl011: None,
            hostile: None,
        }
    }

    fn devices() -> Vec<Device> {
        vec![
            Device {
                name: "rtc".into(),
                base: 0x0901_0000,
                size: 0x1000,
                irq: Some(34),
                edge: false,
            },
            Device {
                name: "gpio".into(),
                base: 0x0903_0000,
                size: 0x1000,
                irq: Some(39),
                edge: true,
            },
            Device {
                name: "flash".into(),
                base: 0,
                size: 0x400_0000,
                irq: None,
                edge: false,
            },
        ]
    }

    /// The RTC gets QEMU's PL031 node with its clock; others a generic node.
    /// A GICv2 machine's VMs get a GIC-400 (distributor, CPU interface) and timer
    /// interrupts with the GICv2 CPU mask.
    #[test]
    fn gicv2_node() {
        let s = dts(&GuestDt { gic: 2, ..rtos() });
        assert!(s.contains("compatible = \"arm,gic-400\";"), "{s}");
        assert!(
            s.contains("reg = <0x0 0x8000000 0x0 0x1000>, <0x0 0x8010000 0x0 0x2000>;"),
            "{s}"
        );
        assert!(s.contains("<1 11 0xf04>"), "{s}");
        let v3 = dts(&rtos());
        assert!(
            v3.contains("compatible = \"arm,gic-v3\";") && v3.contains("<1 11 0x4>"),
            "{v3}"
        );
    }

    #[test]
    fn device_nodes() {
        let devs = devices();
        let s = dts(&GuestDt {
            devices: &devs,
            ..rtos()
        });
        assert!(s.contains("pl031@9010000 {"), "{s}");
        assert!(s.contains("compatible = \"arm,pl031\", \"arm,primecell\";"));
        assert!(s.contains("reg = <0x0 0x9010000 0x0 0x1000>;"));
        assert!(s.contains("interrupts = <0 2 4>;"), "SPI 2, level high");
        assert!(s.contains("clocks = <&apb_pclk>;") && s.contains("clock-names = \"apb_pclk\";"));
        assert!(
            s.contains("compatible = \"fixed-clock\";")
                && s.contains("clock-frequency = <24000000>;")
        );
        assert!(s.contains("gpio@9030000 {") && s.contains("interrupts = <0 7 1>;"));
        assert!(s.contains("flash@0 {") && s.contains("compatible = \"tandem,passthrough\";"));
        assert!(
            !dts(&rtos()).contains("apb_pclk"),
            "no clock without a PL031"
        );
    }

    /// A transparent VM gets the board's PL011 (QEMU's node: its SPI, level
    /// high, and the apb_pclk clock as both clocks) as stdout, and no Tandem node.
    #[test]
    fn transparent_tree() {
        let s = dts(&GuestDt {
            pl011: Some((0x0900_0000, 33)),
            ..linux()
        });
        assert!(s.contains("pl011@9000000 {"), "{s}");
        assert!(s.contains("compatible = \"arm,pl011\", \"arm,primecell\";"));
        assert!(s.contains("reg = <0x0 0x9000000 0x0 0x1000>;"));
        assert!(s.contains("interrupts = <0 1 4>;"), "SPI 1, level high");
        assert!(s.contains("clocks = <&apb_pclk>, <&apb_pclk>;"));
        assert!(s.contains("clock-names = \"uartclk\", \"apb_pclk\";"));
        assert!(s.contains("clock-frequency = <24000000>;"));
        assert!(s.contains("stdout-path = \"/pl011@9000000\";"));
        assert!(!s.contains("tandem,hypervisor") && !s.contains("hypervisor {"));
        assert!(s.contains("method = \"hvc\";"), "PSCI stays");
        assert!(!dts(&linux()).contains("pl011"));
    }

    #[test]
    fn linux_tree() {
        let s = dts(&linux());
        assert!(s.contains("model = \"Tandem VM linux\";"));
        assert!(s.contains("bootargs = \"console=hvc0 earlycon=tandem\";"));
        assert!(s.contains("linux,initrd-start = <0x0 0x41c00000>;"));
        assert!(s.contains("linux,initrd-end = <0x0 0x41d23456>;"));
        assert!(s.contains("reg = <0x0 0x40000000 0x0 0x10000000>;"));
        assert!(s.contains("cpu@1 {") && !s.contains("cpu@2"));
        assert!(
            s.contains(
                "pv-time@4ffff000 {\n\t\t\treg = <0x0 0x4ffff000 0x0 0x1000>;\n\t\t\tno-map;"
            ),
            "the top page is the PV time region: {s}"
        );
        assert!(
            s.contains("<0x0 0x80a0000 0x0 0x40000>"),
            "two redistributors"
        );
        assert!(s.contains("interrupts = <0 0 1>;"));
        assert!(s.contains("method = \"hvc\";"));
    }

    #[test]
    fn bare_tree() {
        let s = dts(&rtos());
        assert!(!s.contains("bootargs") && !s.contains("initrd"));
        assert!(s.contains("reg = <0x0 0x40000000 0x0 0x1000000>;"));
        assert!(s.contains("cpu@3 {") && s.contains("reg = <0x3>;"));
        assert!(
            s.contains("<0x0 0x80a0000 0x0 0x80000>"),
            "four redistributors"
        );
    }

    /// Seeds are fixed per VM name (deterministic) and differ between VMs.
    #[test]
    fn seeds_are_fixed() {
        assert_eq!(rng_seed("rtos"), rng_seed("rtos"));
        assert_ne!(rng_seed("rtos"), rng_seed("linux"));
        assert_eq!(dts(&rtos()), dts(&rtos()));
    }

    /// With dtc installed, both trees compile without a warning.
    #[test]
    fn compiles_with_dtc() {
        if Command::new("dtc").arg("--version").output().is_err() {
            eprintln!("dtc not installed: skipping the compile check");
            return;
        }
        let dir = std::env::temp_dir().join(format!("tandem-guest-dt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let devs = devices();
        let with_devices = GuestDt {
            devices: &devs,
            ..rtos()
        };
        let (front, back) = channel_ends();
        let linux_front = GuestDt {
            channels: &front,
            ..linux()
        };
        let rtos_back = GuestDt {
            channels: &back,
            ..rtos()
        };
        let transparent = GuestDt {
            pl011: Some((0x0900_0000, 33)),
            ..linux()
        };
        for (dt, name) in [
            (linux(), "linux"),
            (rtos(), "rtos"),
            (with_devices, "devices"),
            (linux_front, "front"),
            (rtos_back, "back"),
            (transparent, "transparent"),
        ] {
            let dtb = compile(&dts(&dt), &dir.join(name)).unwrap();
            assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Both ends of a virtio-net channel and a plain one, as linux and rtos see them.
    fn channel_ends() -> (Vec<ChannelNode>, Vec<ChannelNode>) {
        let net = |role, peer: &str| ChannelNode {
            id: 0,
            name: "modem-net".into(),
            ipa: 0xC000_0000,
            size: 1 << 20,
            intid: 95,
            peer: peer.into(),
            role,
        };
        let plain = |peer: &str| ChannelNode {
            id: 1,
            name: "plain".into(),
            ipa: 0xC020_0000,
            size: 0x1000,
            intid: 94,
            peer: peer.into(),
            role: ChannelRole::Plain,
        };
        (
            vec![
                net(
                    ChannelRole::Front {
                        window: 0x0a00_0000,
                    },
                    "rtos",
                ),
                plain("rtos"),
            ],
            vec![
                net(ChannelRole::Back { device: 1 }, "linux"),
                plain("linux"),
            ],
        )
    }

    /// A virtio front-end gets memory, a restricted DMA pool and a virtio,mmio node that
    /// uses it; the back-end and plain ends get channel nodes with their ids and doorbells.
    #[test]
    fn channel_trees() {
        let (front, back) = channel_ends();
        let f = dts(&GuestDt {
            channels: &front,
            ..linux()
        });
        for want in [
            "memory@c0000000 {\n\t\tdevice_type = \"memory\";\n\t\treg = <0x0 0xc0000000 0x0 0x100000>;",
            "channel0: modem-net@c0000000 {\n\t\t\tcompatible = \"restricted-dma-pool\";",
            "virtio_mmio@a000000 {\n\t\tcompatible = \"virtio,mmio\";\n\t\treg = <0x0 0xa000000 0x0 0x200>;\n\t\tdma-coherent;\n\t\tmemory-region = <&channel0>;\n\t\tinterrupts = <0 63 1>;\n\t\ttandem,channel = <0>;",
            "channel@c0200000 {\n\t\tcompatible = \"tandem,channel\";\n\t\treg = <0x0 0xc0200000 0x0 0x1000>;\n\t\tinterrupts = <0 62 1>;\n\t\ttandem,channel = <1>;\n\t\ttandem,peer = \"rtos\";\n\t\tlabel = \"plain\";",
        ] {
            assert!(f.contains(want), "missing {want:?} in\n{f}");
        }
        let b = dts(&GuestDt {
            channels: &back,
            ..rtos()
        });
        assert!(
            b.contains("channel@c0000000 {\n\t\tcompatible = \"tandem,virtio-backend\";\n\t\treg = <0x0 0xc0000000 0x0 0x100000>;\n\t\ttandem,virtio-device = <1>;\n\t\tinterrupts = <0 63 1>;"),
            "{b}"
        );
        assert!(!b.contains("virtio,mmio") && !b.contains("restricted-dma-pool"));
    }

    /// The hostile guest's seed and count are in its /chosen only, as 64-bit cells, and dtc
    /// accepts them.
    #[test]
    fn hostile_run_in_chosen() {
        let run = HostileRun {
            seed: 0x1_0000_0007,
            ops: 1_000_000,
        };
        let s = dts(&GuestDt {
            hostile: Some(run),
            ..rtos()
        });
        let chosen = &s[s.find("chosen {").unwrap()..s.find("memory@").unwrap()];
        assert!(
            chosen.contains("tandem,hostile-seed = <0x1 0x7>;"),
            "{chosen}"
        );
        assert!(
            chosen.contains("tandem,hostile-ops = <0x0 0xf4240>;"),
            "{chosen}"
        );
        assert!(!dts(&rtos()).contains("hostile"));
    }
}
