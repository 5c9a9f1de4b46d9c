//! Build-time VM configuration: `platforms/<board>/vms.toml`, parsed and checked.
//!
//! The VMs a board runs are data (STYLE.md §5 point 14): [`Config::parse`]
//! reads the file and checks each VM on its own (names, kind, image, vCPUs,
//! RAM size, bootargs, passthrough devices against the [`Board`]);
//! [`Config::select`] picks the VMs to boot (`--vms`, or the `default = true`
//! ones) and checks them against the emulated machine (`--smp`, `--memory`)
//! and each other (console focus, devices given twice); [`plan`] places a
//! built image in its VM's RAM and checks that it fits. Every problem is one
//! line naming the file, the VM and what is wrong; all problems found are
//! reported together. The keys are documented at the top of
//! `platforms/qemu-virt/vms.toml` and in `docs/vm-config.md`.
//!
//! An `image` is a built-in guest ([`GuestImage`]) or a file ([`ImageFile`],
//! a path relative to vms.toml); [`read_image_file`] reads one and names what
//! is wrong with it (missing, a directory, empty, an ELF where a raw binary is
//! expected, the wrong format for its kind, too large for its RAM).
//! [`GuestArg`] is `--guest PATH[,key=value…]`: a VM described on the command
//! line, checked as a `[[vm]]` table and added to a selection by
//! [`Selection::with_guest`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kernel::vm::package::{MAX_DEVICES, MAX_VCPUS, MAX_VMS, NAME_LEN};

use crate::channels::{Channel, Placed};
use serde::Deserialize;

/// Every VM's RAM starts at this IPA (each VM has its own stage 2).
pub const RAM_IPA: u64 = 0x4000_0000;
/// Machine RAM kept for Tandem itself (image, heap, page tables).
pub const TANDEM_RESERVE: u64 = 64 << 20;
/// Guest RAM must end at or below this IPA (the package format's limit).
pub const RAM_IPA_LIMIT: u64 = 1 << 32;
/// Where a bare image goes: RAM base + this.
pub const BARE_LOAD_OFFSET: u64 = 0x8_0000;
/// Where a Linux Image's 2 MiB-aligned base goes: RAM base + this.
pub const LINUX_LOAD_OFFSET: u64 = 2 << 20;

const MIB: u64 = 1 << 20;
/// Device windows are mapped at stage 2 in pages of this size.
pub const PAGE: u64 = 4096;
/// One past the last SPI a VM's virtual GIC implements (`kernel::hyp::vm::VM_SPIS`
/// = 64 SPIs from INTID 32); a passthrough interrupt keeps its INTID in the VM.
pub const VM_SPI_END: u32 = 96;

/// What a board lets a VM be given: its MMIO window, and what Tandem keeps.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The physical MMIO window `[start, end)`; passthrough devices lie inside.
    pub mmio: (u64, u64),
    /// Ranges no VM may be given: `[start, end)` and what they are.
    pub reserved: &'static [(u64, u64, &'static str)],
    /// INTIDs no device may use, and whose they are.
    pub reserved_irqs: &'static [(u32, &'static str)],
    /// The console UART's base and INTID: where a `console = "pl011"` VM
    /// finds its virtual PL011, as a guest built for the bare board expects.
    pub uart: (u64, u32),
}

impl Board {
    /// QEMU `-M virt`: devices below RAM (flash, GIC, UART, RTC, GPIO, virtio-mmio, PCIe).
    pub const QEMU_VIRT: Board = Board {
        mmio: (0, 0x4000_0000),
        reserved: &[
            (
                0x0800_0000,
                0x0900_0000,
                "the GIC (each VM's emulated GICD/GICR frames sit there)",
            ),
            (0x0900_0000, 0x0900_1000, "Tandem's UART"),
        ],
        reserved_irqs: &[
            (32, "the VM's console interrupt"),
            (33, "Tandem's UART interrupt"),
        ],
        uart: (0x0900_0000, 33),
    };

    /// Raspberry Pi 4 (placeholder port): the low-peripheral window.
    pub const RPI4: Board = Board {
        mmio: (0xfc00_0000, 0x1_0000_0000),
        reserved: &[
            (0xff84_0000, 0xff84_8000, "the GIC-400"),
            (0xfe20_1000, 0xfe20_2000, "Tandem's UART"),
        ],
        reserved_irqs: &[
            (32, "the VM's console interrupt"),
            (153, "Tandem's UART interrupt"),
        ],
        uart: (0xfe20_1000, 153),
    };

    /// The board of `platform`.
    pub fn of(platform: &str) -> Result<&'static Board, String> {
        match platform {
            "qemu-virt" => Ok(&Self::QEMU_VIRT),
            "rpi4" => Ok(&Self::RPI4),
            other => Err(format!(
                "unknown platform \"{other}\" (known: qemu-virt, rpi4)"
            )),
        }
    }
}

/// A physical device a VM owns: mapped at the same IPA, its SPI forwarded as the same INTID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Device-tree node name; `rtc` is a PL031 (see `guest_dt`).
    pub name: String,
    /// Physical base address = IPA (4 KiB aligned).
    pub base: u64,
    /// Window length (a non-zero 4 KiB multiple).
    pub size: u64,
    /// Its SPI (INTID), if it has one.
    pub irq: Option<u32>,
    /// The interrupt is edge-triggered (else level-sensitive, active high).
    pub edge: bool,
}

impl Device {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.base < end && start < self.end()
    }
}

/// A VM's console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Console {
    /// pv-abi CONSOLE_WRITE/CONSOLE_READ, and the Tandem node in the DT.
    #[default]
    Hypercall,
    /// A virtual PL011 at the board's UART address: the VM is transparent
    /// (no Tandem node, Tandem's calls hidden), for unmodified guests.
    Pl011,
}

impl Console {
    const ALL: [(&'static str, Console); 2] =
        [("hypercall", Console::Hypercall), ("pl011", Console::Pl011)];
}

/// How a guest is loaded and entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Raw image at RAM base + 0x80000, x0 = the DTB.
    Bare,
    /// The arm64 Linux boot protocol (Image, DTB, initramfs).
    Linux,
}

impl Kind {
    const ALL: [(&'static str, Kind); 2] = [("bare", Kind::Bare), ("linux", Kind::Linux)];

    /// The name used in vms.toml.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A guest build xtask knows how to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestImage {
    /// rtos-guest.
    Rtos,
    /// rtos-guest with its in-guest self tests.
    RtosSelftest,
    /// Linux with guest-linux-patches and an initramfs.
    Linux,
    /// Debian bookworm's stock arm64 kernel, unmodified, with the Linux
    /// guest's initramfs.
    DebianLinux,
    /// test-guests' `probe` binary.
    TestProbe,
    /// test-guests' `hostile` binary.
    TestHostile,
    /// test-guests' `vhostile` binary: a hostile virtio front-end.
    TestVhostile,
    /// test-guests' `consolecost` binary.
    TestConsoleCost,
    /// test-guests' `pingpong` binary: doorbell round trips over a channel.
    TestPingpong,
    /// test-guests' `chaos` binary: the seeded hostile guest of `--with-hostile`.
    TestChaos,
    /// test-guests' `isolation` binary: register and memory canaries between VMs.
    TestIsolation,
}

impl GuestImage {
    /// Every image, by its vms.toml name.
    pub const ALL: [(&'static str, GuestImage); 11] = [
        ("rtos", GuestImage::Rtos),
        ("rtos-selftest", GuestImage::RtosSelftest),
        ("linux", GuestImage::Linux),
        ("debian-linux", GuestImage::DebianLinux),
        ("test-probe", GuestImage::TestProbe),
        ("test-hostile", GuestImage::TestHostile),
        ("test-vhostile", GuestImage::TestVhostile),
        ("test-consolecost", GuestImage::TestConsoleCost),
        ("test-pingpong", GuestImage::TestPingpong),
        ("test-chaos", GuestImage::TestChaos),
        ("test-isolation", GuestImage::TestIsolation),
    ];

    /// The name used in vms.toml.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, i)| *i == self)
            .map_or("?", |(n, _)| n)
    }

    /// The kind of VM this image needs.
    pub fn kind(self) -> Kind {
        if matches!(self, GuestImage::Linux | GuestImage::DebianLinux) {
            Kind::Linux
        } else {
            Kind::Bare
        }
    }
}

/// What a VM boots: a guest xtask builds, or a file the user gives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Image {
    /// A built-in guest, by its vms.toml name.
    Built(GuestImage),
    /// A file: `image = "path"` in vms.toml (relative to the file) or `--guest PATH`.
    File(ImageFile),
}

/// A guest image the user supplies as a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageFile {
    /// The path as written, for messages.
    pub shown: String,
    /// The path resolved (relative to vms.toml's directory, or to the current directory
    /// for `--guest`).
    pub path: PathBuf,
    /// Kind linux: the initramfs, as written and resolved.
    pub initramfs: Option<(String, PathBuf)>,
}

impl Image {
    /// The name used in messages: the built-in name, or the path as written.
    pub fn name(&self) -> &str {
        match self {
            Image::Built(i) => i.name(),
            Image::File(f) => &f.shown,
        }
    }
}

/// Whether an `image` value is a file path rather than a built-in name: it has a `/` or
/// a `.` (built-in names have neither).
fn is_path(image: &str) -> bool {
    image.contains(['/', '.'])
}

fn names<T>(table: &[(&'static str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// One VM, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vm {
    /// Unique name, 1..=15 bytes of `[a-z0-9_-]`.
    pub name: String,
    /// Booted when `--vms` is not given.
    pub default: bool,
    /// How it is loaded.
    pub kind: Kind,
    /// Which guest it runs.
    pub image: Image,
    /// RAM in MiB (a positive multiple of 2).
    pub memory_mib: u64,
    /// The physical CPU of each vCPU.
    pub pcpus: Vec<u32>,
    /// Receives console input first.
    pub console_focus: bool,
    /// Restarted when it resets.
    pub restart: bool,
    /// Kernel command line (kind linux only).
    pub bootargs: Option<String>,
    /// Passthrough devices.
    pub devices: Vec<Device>,
    /// Scheduling priority of its vCPUs (higher first; 0..=255).
    pub priority: u8,
    /// CPU budget and its period, in µs, if limited.
    pub budget: Option<(u32, u32)>,
    /// How the VM looks in each layout that includes it.
    pub layouts: BTreeMap<String, Placement>,
    /// Restarted (with back-off) when it crashes: `on_crash = "restart"`.
    pub restart_on_crash: bool,
    /// Default paravirtual watchdog timeout in seconds, for the guest's DT.
    pub watchdog_s: Option<u32>,
    /// Its console: the hypercalls, or a virtual PL011 (a transparent VM).
    pub console: Console,
    /// Where it was declared, when not in the configuration file: `--guest PATH`.
    pub origin: Option<String>,
}

/// Where a VM's vCPUs run and how they are scheduled (in one layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The physical CPU of each vCPU.
    pub pcpus: Vec<u32>,
    /// Scheduling priority.
    pub priority: u8,
    /// CPU budget and period in µs.
    pub budget: Option<(u32, u32)>,
}

impl Vm {
    /// RAM size in bytes.
    pub fn ram_size(&self) -> u64 {
        self.memory_mib * MIB
    }

    /// How errors name this VM: `<file>: vm "<name>"`, or `--guest PATH: vm "<name>"`
    /// for a VM declared on the command line.
    pub fn at(&self, file: &str) -> String {
        format!(
            "{}: vm \"{}\"",
            self.origin.as_deref().unwrap_or(file),
            self.name
        )
    }
}

/// The emulated (or real) machine the VMs must fit on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Physical CPUs (`--smp`).
    pub cpus: u32,
    /// RAM in bytes (`--memory`).
    pub ram: u64,
    /// GIC version, 2 or 3 (`--gic`).
    pub gic: u8,
}

impl Machine {
    /// QEMU's defaults in xtask: 4 CPUs, 1 GiB, GICv3.
    pub const DEFAULT: Machine = Machine {
        cpus: 4,
        ram: 1 << 30,
        gic: 3,
    };

    /// The Raspberry Pi 4 as QEMU raspi4b and its firmware describe it: 4 CPUs, the 960 MiB
    /// of RAM below the VideoCore's share in the low gigabyte, a GIC-400.
    pub const RPI4: Machine = Machine {
        cpus: 4,
        ram: 960 << 20,
        gic: 2,
    };

    /// From `--smp N` and `--memory SIZE` (QEMU `-m` syntax), with a GICv3.
    pub fn new(smp: u32, memory: &str) -> Result<Self, String> {
        Ok(Self {
            cpus: smp,
            ram: parse_qemu_size(memory)?,
            gic: 3,
        })
    }

    /// The same machine with a GIC of version `gic`.
    pub fn with_gic(self, gic: u8) -> Self {
        Self { gic, ..self }
    }

    /// The boot image `name` (`tandem….bin`) for this machine on `platform`: qemu-virt's
    /// GICv2 builds end in `-gic2.bin`, so both kinds sit side by side (rpi4 has one GIC).
    pub fn image_file(&self, platform: &str, name: &str) -> String {
        match (platform, self.gic, name.strip_suffix(".bin")) {
            ("qemu-virt", 2, Some(stem)) => format!("{stem}-gic2.bin"),
            _ => name.to_string(),
        }
    }
}

/// Parses a QEMU `-m` size: a number with an optional K/M/G/T suffix; no suffix means MiB.
pub fn parse_qemu_size(text: &str) -> Result<u64, String> {
    let size = text.split(',').next().unwrap_or("").trim();
    let size = size.strip_prefix("size=").unwrap_or(size);
    let bad = || format!("--memory {text}: not a size (examples: 1G, 512M, 2048)");
    let (digits, unit) = match size.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => size.split_at(i),
        None => (size, "M"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(bad)
}

/// The file as written (serde rejects unknown keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    vm: Vec<RawVm>,
    /// Layout name → what it is for.
    #[serde(default)]
    layouts: BTreeMap<String, String>,
    #[serde(default)]
    channel: Vec<crate::channels::RawChannel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    name: String,
    #[serde(default)]
    default: bool,
    kind: String,
    image: String,
    memory_mib: u64,
    pcpus: Vec<u32>,
    #[serde(default)]
    console_focus: bool,
    #[serde(default)]
    restart: bool,
    bootargs: Option<String>,
    /// Kind linux with a file image: the initramfs file.
    initramfs: Option<String>,
    #[serde(default)]
    devices: Vec<RawDevice>,
    priority: Option<i64>,
    budget_us: Option<i64>,
    period_us: Option<i64>,
    /// `[vm.layout.<name>]`: this VM in that layout.
    #[serde(default)]
    layout: BTreeMap<String, RawPlacement>,
    on_crash: Option<String>,
    watchdog_s: Option<i64>,
    console: Option<String>,
}

/// `[vm.layout.<name>]`: overrides of the VM's placement in one layout.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlacement {
    pcpus: Option<Vec<u32>>,
    priority: Option<i64>,
    budget_us: Option<i64>,
    period_us: Option<i64>,
}

/// Checks `priority`, `budget_us` and `period_us` (each possibly inherited
/// from `base`); problems go to `err`.
fn check_sched(
    priority: Option<i64>,
    budget_us: Option<i64>,
    period_us: Option<i64>,
    base: (u8, Option<(u32, u32)>),
    err: &mut dyn FnMut(String),
) -> (u8, Option<(u32, u32)>) {
    let priority = match priority {
        None => base.0,
        Some(p) => u8::try_from(p).unwrap_or_else(|_| {
            err(format!("priority = {p} is not 0..=255 (higher runs first)"));
            0
        }),
    };
    let budget = match (budget_us, period_us) {
        (None, None) => base.1,
        (Some(b), Some(p)) if 0 < b && b <= p && p <= 10_000_000 => Some((b as u32, p as u32)),
        (Some(b), Some(p)) => {
            err(format!(
                "budget_us = {b}, period_us = {p}: want 1 <= budget_us <= period_us <= 10000000 (10 s)"
            ));
            None
        }
        _ => {
            err("budget_us and period_us go together: give both or neither".into());
            None
        }
    };
    (priority, budget)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: String,
    base: u64,
    size: u64,
    irq: Option<u32>,
    trigger: Option<String>,
}

/// Checks one VM's devices against `board`; problems go to `err`.
fn check_devices(board: &Board, raw: Vec<RawDevice>, err: &mut dyn FnMut(String)) -> Vec<Device> {
    if raw.len() > MAX_DEVICES {
        err(format!(
            "{} devices; a VM has at most {MAX_DEVICES}",
            raw.len()
        ));
    }
    let mut devices: Vec<Device> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = format!("devices[{i}] \"{}\"", r.name);
        let mut problems: Vec<String> = Vec::new();
        let name_ok = !r.name.is_empty()
            && r.name.len() <= 31
            && r.name.starts_with(|c: char| c.is_ascii_lowercase())
            && r.name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !name_ok {
            problems
                .push("name must be 1..=31 bytes of a-z, 0-9 and -, starting with a letter".into());
        } else if devices.iter().any(|d| d.name == r.name) {
            problems.push("the name is used by an earlier device of this VM too".into());
        }
        if !r.base.is_multiple_of(PAGE) || r.size == 0 || !r.size.is_multiple_of(PAGE) {
            problems.push(format!(
                "base {:#x} and size {:#x} must be 4 KiB aligned and the size non-zero (stage 2 maps pages)",
                r.base, r.size
            ));
        }
        let end = r.base.checked_add(r.size);
        let (lo, hi) = board.mmio;
        if r.base < lo || end.is_none_or(|e| e > hi) {
            problems.push(format!(
                "window {:#x}..{:#x} is outside the board's MMIO window {lo:#x}..{hi:#x}",
                r.base,
                end.unwrap_or(u64::MAX)
            ));
        } else if let Some(e) = end {
            for &(start, stop, what) in board.reserved {
                if r.base < stop && start < e {
                    problems.push(format!(
                        "window {:#x}..{e:#x} overlaps {what} ({start:#x}..{stop:#x})",
                        r.base
                    ));
                }
            }
        }
        let edge = match r.trigger.as_deref() {
            None | Some("level") => false,
            Some("edge") => true,
            Some(other) => {
                problems.push(format!("unknown trigger \"{other}\" (known: level, edge)"));
                false
            }
        };
        if let Some(irq) = r.irq {
            if !(32..=1019).contains(&irq) {
                problems.push(format!("irq = {irq} is not an SPI (32..=1019)"));
            } else if let Some((_, whose)) = board.reserved_irqs.iter().find(|(n, _)| *n == irq) {
                problems.push(format!("irq = {irq} is {whose}"));
            } else if irq >= VM_SPI_END {
                problems.push(format!(
                    "irq = {irq} is beyond the VM's virtual GIC (SPIs up to INTID {})",
                    VM_SPI_END - 1
                ));
            }
        }
        let device = Device {
            name: r.name,
            base: r.base,
            size: r.size,
            irq: r.irq,
            edge,
        };
        if problems.is_empty() {
            for d in &devices {
                if d.overlaps(device.base, device.end()) {
                    problems.push(format!("window overlaps devices \"{}\"", d.name));
                }
                if device.irq.is_some() && d.irq == device.irq {
                    problems.push(format!(
                        "irq = {} is also devices \"{}\"'s",
                        d.irq.unwrap_or(0),
                        d.name
                    ));
                }
            }
        }
        let ok = problems.is_empty();
        for problem in problems {
            err(format!("{at}: {problem}"));
        }
        if ok {
            devices.push(device);
        }
    }
    devices
}

/// A board's VM configuration, each VM checked on its own.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file, as named in errors (`platforms/<board>/vms.toml`).
    pub file: String,
    /// The VMs in file order.
    pub vms: Vec<Vm>,
    /// Layouts by name, with what each is for.
    pub layouts: BTreeMap<String, String>,
    /// The channels between VMs, in file order.
    pub channels: Vec<Channel>,
}

/// The VMs chosen for one boot image, checked together.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The configuration file, as named in errors.
    pub file: String,
    /// In package order (VM ids follow it).
    pub vms: Vec<Vm>,
    /// The `default = true` set (no `--vms`, or `--vms` naming exactly it).
    pub is_default: bool,
    /// Things worth saying that are not errors (shared pCPUs).
    pub notes: Vec<String>,
    /// The layout the VMs were placed by (`--layout`), if any.
    pub layout: Option<String>,
    /// The boot image's name, when set by [`Selection::with_guest`].
    pub name: Option<String>,
    /// The file's channels (for [`Selection::with_guest`]).
    pub all_channels: Vec<Channel>,
    /// The channels between the selected VMs, placed.
    pub channels: Vec<Placed>,
    /// What the seeded hostile guest (image `test-chaos`) does, if one is selected.
    pub hostile: HostileRun,
}

/// The seeded hostile guest's run, written into its device tree's `/chosen`
/// (`tandem,hostile-seed`, `tandem,hostile-ops`): the same image serves any seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostileRun {
    /// Every act of the guest derives from it.
    pub seed: u64,
    /// Operations of its last boot.
    pub ops: u64,
}

impl HostileRun {
    /// Operations when not told otherwise: the issue's 10^6.
    pub const DEFAULT_OPS: u64 = 1_000_000;
    /// The seed of a `test-chaos` VM selected by name (`--vms …,chaos`) without `--seed`.
    pub const DEFAULT_SEED: u64 = 1;
    /// The VM `--with-hostile` adds (declared in vms.toml).
    pub const VM: &'static str = "chaos";
}

impl Default for HostileRun {
    fn default() -> Self {
        HostileRun {
            seed: Self::DEFAULT_SEED,
            ops: Self::DEFAULT_OPS,
        }
    }
}

impl Selection {
    /// No VM of `file` (`--no-vms`), as the base of [`Selection::with_guest`].
    pub fn none(file: &str) -> Self {
        Selection {
            file: file.to_string(),
            vms: Vec::new(),
            is_default: false,
            notes: Vec::new(),
            layout: None,
            name: Some("tandem-novm.bin".into()),
            all_channels: Vec::new(),
            channels: Vec::new(),
            hostile: HostileRun::default(),
        }
    }

    /// This selection with `guest` (from `--guest`) as its last VM, all checked again
    /// together. The boot image is `<this one's name>-guest-<guest>.bin`.
    pub fn with_guest(&self, guest: Vm, machine: Machine) -> Result<Selection, String> {
        if let Some(other) = self.vms.iter().find(|v| v.name == guest.name) {
            return Err(format!(
                "{}: the name is taken by vm \"{}\" of {}; name the guest with --guest PATH,name=NAME",
                guest.at(&self.file),
                other.name,
                self.file
            ));
        }
        let base = self.image_name();
        let name = format!("{}-guest-{}.bin", base.trim_end_matches(".bin"), guest.name);
        let config = Config {
            file: self.file.clone(),
            vms: self.vms.iter().cloned().chain([guest]).collect(),
            layouts: BTreeMap::new(),
            channels: self.all_channels.clone(),
        };
        let names: Vec<String> = config.vms.iter().map(|v| v.name.clone()).collect();
        let mut selection = config.select(Some(&names), machine)?;
        selection.is_default = false;
        selection.layout = self.layout.clone();
        selection.name = Some(name);
        selection.hostile = self.hostile;
        Ok(selection)
    }

    /// This selection with the seeded hostile guest (vm [`HostileRun::VM`] of `config`) as its
    /// last VM, running `run`, all checked again together (`--with-hostile`). The boot image
    /// is `<this one's name>-hostile-seed<N>[-ops<N>].bin`.
    pub fn with_hostile(
        &self,
        config: &Config,
        run: HostileRun,
        machine: Machine,
    ) -> Result<Selection, String> {
        let Some(vm) = config.vms.iter().find(|v| v.name == HostileRun::VM) else {
            return Err(format!(
                "{}: --with-hostile boots vm \"{}\", which this file does not declare",
                self.file,
                HostileRun::VM
            ));
        };
        if self.vms.iter().any(|v| v.name == vm.name) {
            return Err(format!(
                "{}: --with-hostile adds vm \"{}\", which is already selected; leave it out of --vms",
                self.file, vm.name
            ));
        }
        let base = self.image_name();
        let ops = if run.ops == HostileRun::DEFAULT_OPS {
            String::new()
        } else {
            format!("-ops{}", run.ops)
        };
        let name = format!(
            "{}-hostile-seed{}{ops}.bin",
            base.trim_end_matches(".bin"),
            run.seed
        );
        let all = Config {
            file: self.file.clone(),
            vms: self.vms.iter().cloned().chain([vm.clone()]).collect(),
            layouts: BTreeMap::new(),
            channels: self.all_channels.clone(),
        };
        let names: Vec<String> = all.vms.iter().map(|v| v.name.clone()).collect();
        let mut selection = all.select(Some(&names), machine)?;
        selection.is_default = false;
        selection.layout = self.layout.clone();
        selection.name = Some(name);
        selection.hostile = run;
        Ok(selection)
    }

    /// This selection with `bootarg` (`tandem.stress=2`) added to the command line of its
    /// Linux VMs (those with bootargs). Its boot image is the ordinary one's name with the
    /// argument appended, less `tandem.` and punctuation (`tandem-layout-shared-stress2.bin`),
    /// so that the ordinary images stay as they are.
    pub fn with_bootarg(mut self, bootarg: &str) -> Result<Selection, String> {
        let mut found = false;
        for vm in &mut self.vms {
            if let Some(args) = &mut vm.bootargs {
                args.push(' ');
                args.push_str(bootarg);
                found = true;
            }
        }
        if !found {
            return Err(format!(
                "{}: no VM with bootargs (a Linux VM) among the selected",
                self.file
            ));
        }
        let suffix: String = bootarg
            .trim_start_matches("tandem.")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let base = self.image_name();
        self.name = Some(format!("{}-{suffix}.bin", base.trim_end_matches(".bin")));
        Ok(self)
    }

    /// The boot image's file name: `tandem.bin` for the default set, else `tandem-<vm>-<vm>.bin`.
    pub fn image_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if self.is_default {
            return "tandem.bin".into();
        }
        if let Some(layout) = &self.layout {
            return format!("tandem-layout-{layout}.bin");
        }
        let mut name = String::from("tandem");
        for vm in &self.vms {
            name.push('-');
            name.push_str(&vm.name);
        }
        name + ".bin"
    }
}

/// Joins errors into one message, one problem per line.
fn finish<T>(value: T, errors: Vec<String>) -> Result<T, String> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors.join("\n"))
    }
}

/// Which `[[vm]]` table (1-based) holds byte `at`, and its name if it has one.
fn vm_at(text: &str, at: usize) -> (usize, Option<String>) {
    let mut index = 0;
    let mut name = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("[[vm]]") {
            if offset > at {
                break;
            }
            index += 1;
            name = None;
        } else if name.is_none() {
            let value = trimmed
                .strip_prefix("name")
                .and_then(|rest| rest.trim_start().strip_prefix('='));
            name = value
                .and_then(|v| v.trim().split('"').nth(1))
                .map(str::to_string);
        }
        offset += line.len();
    }
    (index, name)
}

impl Config {
    /// Reads `platforms/<platform>/vms.toml`.
    pub fn load(root: &Path, platform: &str) -> Result<Self, String> {
        let file = format!("platforms/{platform}/vms.toml");
        let path = root.join(&file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let dir = path.parent().unwrap_or(root);
        Self::parse_in(Board::of(platform)?, &file, &text, dir)
    }

    /// Parses and checks `text` for `board`; `file` names it in errors, and image paths
    /// are relative to its directory.
    #[cfg(test)]
    pub fn parse(board: &Board, file: &str, text: &str) -> Result<Self, String> {
        let dir = Path::new(file).parent().unwrap_or(Path::new("."));
        Self::parse_in(board, file, text, dir)
    }

    /// [`Config::parse`] with image paths relative to `dir`.
    pub fn parse_in(board: &Board, file: &str, text: &str, dir: &Path) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    match vm_at(text, span.start) {
                        (0, _) => format!("{file}:{line}: {message}"),
                        (_, Some(name)) => format!("{file}:{line}: vm \"{name}\": {message}"),
                        (n, None) => format!("{file}:{line}: vm #{n}: {message}"),
                    }
                }
                None => format!("{file}: {message}"),
            }
        })?;
        let mut errors = Vec::new();
        let mut vms = Vec::new();
        for (i, r) in raw.vm.into_iter().enumerate() {
            let label = if r.name.is_empty() {
                format!("vm #{}", i + 1)
            } else {
                format!("vm \"{}\"", r.name)
            };
            let mut err = |problem: String| errors.push(format!("{file}: {label}: {problem}"));
            if r.name.is_empty() || r.name.len() >= NAME_LEN {
                err(format!(
                    "name \"{}\" must be 1..={} bytes long",
                    r.name,
                    NAME_LEN - 1
                ));
            } else if !r
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
            {
                err(format!(
                    "name \"{}\" may only use a-z, 0-9, - and _",
                    r.name
                ));
            } else if vms.iter().any(|v: &Vm| v.name == r.name) {
                err("the name is used by an earlier VM too; names must be unique".into());
            }
            let kind = Kind::ALL
                .iter()
                .find(|(n, _)| *n == r.kind)
                .map(|(_, k)| *k);
            if kind.is_none() {
                err(format!(
                    "unknown kind \"{}\" (known: {})",
                    r.kind,
                    names(&Kind::ALL)
                ));
            }
            let image = match GuestImage::ALL.iter().find(|(n, _)| *n == r.image) {
                Some((_, i)) => Some(Image::Built(*i)),
                None if is_path(&r.image) => Some(Image::File(ImageFile {
                    shown: r.image.clone(),
                    path: dir.join(&r.image),
                    initramfs: r.initramfs.as_ref().map(|i| (i.clone(), dir.join(i))),
                })),
                None => {
                    err(format!(
                        "unknown image \"{}\" (known: {}; or a file, as a path relative to this file with a / or a ., e.g. \"./{}.bin\")",
                        r.image,
                        names(&GuestImage::ALL),
                        r.image
                    ));
                    None
                }
            };
            match (kind, &image) {
                (Some(k), Some(Image::Built(i))) if i.kind() != k => {
                    err(format!(
                        "image \"{}\" is loaded as kind \"{}\", not \"{}\"",
                        r.image,
                        i.kind().name(),
                        k.name()
                    ));
                }
                _ => {}
            }
            if let Some(initramfs) = &r.initramfs {
                match (kind, &image) {
                    (Some(Kind::Linux), Some(Image::File(_))) => {}
                    (Some(Kind::Linux), Some(Image::Built(_))) => err(format!(
                        "initramfs = \"{initramfs}\" is for an image given as a file; the built-in \"{}\" image brings its own",
                        r.image
                    )),
                    _ => err(format!(
                        "initramfs = \"{initramfs}\" is for kind = \"linux\"; a bare guest gets no initramfs"
                    )),
                }
            }
            if r.pcpus.is_empty() || r.pcpus.len() > MAX_VCPUS {
                err(format!(
                    "pcpus has {} entries; a VM has 1..={MAX_VCPUS} vCPUs, one pcpus entry each",
                    r.pcpus.len()
                ));
            }
            let max_mib = (RAM_IPA_LIMIT - RAM_IPA) / MIB;
            if r.memory_mib == 0 || !r.memory_mib.is_multiple_of(2) {
                err(format!(
                    "memory_mib = {} is not a positive multiple of 2 (stage 2 maps 2 MiB blocks)",
                    r.memory_mib
                ));
            } else if r.memory_mib > max_mib {
                err(format!(
                    "memory_mib = {} is over {max_mib} (guest RAM must end below 4 GiB of IPA)",
                    r.memory_mib
                ));
            }
            if let Some(args) = &r.bootargs {
                if kind == Some(Kind::Bare) {
                    err(
                        "bootargs is for kind = \"linux\"; a bare guest gets no command line"
                            .into(),
                    );
                }
                if args.contains(['"', '\\', '\n']) {
                    err("bootargs may not contain '\"', '\\' or a newline".into());
                }
            }
            let devices = check_devices(board, r.devices, &mut err);
            let (priority, budget) =
                check_sched(r.priority, r.budget_us, r.period_us, (0, None), &mut err);
            let mut layouts = BTreeMap::new();
            for (name, p) in r.layout {
                let mut err = |problem: String| err(format!("layout \"{name}\": {problem}"));
                if !raw.layouts.contains_key(&name) {
                    err(format!(
                        "not declared in [layouts] (declared: {})",
                        raw.layouts.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                let pcpus = p.pcpus.unwrap_or_else(|| r.pcpus.clone());
                if pcpus.is_empty() || pcpus.len() > MAX_VCPUS {
                    err(format!(
                        "pcpus has {} entries; want 1..={MAX_VCPUS}",
                        pcpus.len()
                    ));
                }
                let (priority, budget) = check_sched(
                    p.priority,
                    p.budget_us,
                    p.period_us,
                    (priority, budget),
                    &mut err,
                );
                layouts.insert(
                    name,
                    Placement {
                        pcpus,
                        priority,
                        budget,
                    },
                );
            }
            let restart_on_crash = match r.on_crash.as_deref() {
                None | Some("stop") => false,
                Some("restart") => true,
                Some(other) => {
                    err(format!(
                        "on_crash = \"{other}\": want \"restart\" or \"stop\""
                    ));
                    false
                }
            };
            let watchdog_s = r.watchdog_s.and_then(|s| {
                let ok = u32::try_from(s).ok().filter(|s| (1..=3600).contains(s));
                if ok.is_none() {
                    err(format!("watchdog_s = {s}: want 1..=3600 seconds"));
                }
                ok
            });
            let console = match r.console.as_deref() {
                None => Console::Hypercall,
                Some(name) => match Console::ALL.iter().find(|(n, _)| *n == name) {
                    Some((_, c)) => *c,
                    None => {
                        err(format!(
                            "console = \"{name}\": want \"hypercall\" or \"pl011\""
                        ));
                        Console::Hypercall
                    }
                },
            };
            if console == Console::Pl011 {
                let (base, intid) = board.uart;
                if intid >= VM_SPI_END {
                    err(format!(
                        "console = \"pl011\": the board's UART interrupt {intid} is beyond the VM's virtual GIC (SPIs up to INTID {})",
                        VM_SPI_END - 1
                    ));
                }
                if watchdog_s.is_some() {
                    err("watchdog_s is for a VM with the hypercall console; a console = \"pl011\" VM sees no Tandem, so it cannot arm the paravirtual watchdog".into());
                }
                if let Some(d) = devices.iter().find(|d| d.overlaps(base, base + PAGE)) {
                    err(format!(
                        "devices \"{}\" overlaps the virtual PL011 at {base:#x}",
                        d.name
                    ));
                }
            }
            if let (Some(kind), Some(image)) = (kind, image) {
                vms.push(Vm {
                    name: r.name,
                    default: r.default,
                    kind,
                    image,
                    memory_mib: r.memory_mib,
                    pcpus: r.pcpus,
                    console_focus: r.console_focus,
                    restart: r.restart,
                    bootargs: r.bootargs,
                    devices,
                    priority,
                    budget,
                    layouts,
                    restart_on_crash,
                    watchdog_s,
                    console,
                    origin: None,
                });
            }
        }
        for name in raw.layouts.keys() {
            let bad = name.is_empty()
                || name == "default"
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            if bad {
                errors.push(format!(
                    "{file}: layouts: name \"{name}\" must be a-z, 0-9 and - (and not \"default\", which is the default = true set)"
                ));
            } else if !vms.iter().any(|v| v.layouts.contains_key(name)) {
                errors.push(format!(
                    "{file}: layouts: \"{name}\" has no VM (add [vm.layout.{name}] to the VMs it places)"
                ));
            }
        }
        let channels = crate::channels::check(file, raw.channel, &vms, &mut |e| errors.push(e));
        finish(
            Self {
                file: file.to_string(),
                vms,
                layouts: raw.layouts,
                channels,
            },
            errors,
        )
    }

    /// The VMs of layout `name` (those with a `[vm.layout.<name>]`), in file
    /// order and placed as it says, checked like a `--vms` selection.
    /// `"default"` is the `default = true` set.
    pub fn select_layout(&self, name: &str, machine: Machine) -> Result<Selection, String> {
        if name == "default" {
            return self.select(None, machine);
        }
        if !self.layouts.contains_key(name) {
            let known: Vec<String> = std::iter::once("default".to_string())
                .chain(self.layouts.keys().cloned())
                .collect();
            return Err(format!(
                "{}: no layout \"{name}\" (known: {})",
                self.file,
                known.join(", ")
            ));
        }
        let placed = Config {
            file: self.file.clone(),
            layouts: self.layouts.clone(),
            channels: self.channels.clone(),
            vms: self
                .vms
                .iter()
                .filter_map(|vm| {
                    let p = vm.layouts.get(name)?;
                    Some(Vm {
                        pcpus: p.pcpus.clone(),
                        priority: p.priority,
                        budget: p.budget,
                        default: false,
                        ..vm.clone()
                    })
                })
                .collect(),
        };
        let names: Vec<String> = placed.vms.iter().map(|v| v.name.clone()).collect();
        let mut selection = placed.select(Some(&names), machine)?;
        selection.is_default = false;
        selection.layout = Some(name.to_string());
        Ok(selection)
    }

    /// Picks the VMs named by `wanted` (in that order), or the default set, and
    /// checks them against `machine` and each other.
    pub fn select(&self, wanted: Option<&[String]>, machine: Machine) -> Result<Selection, String> {
        let file = &self.file;
        let known = || {
            self.vms
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let defaults: Vec<&Vm> = self.vms.iter().filter(|v| v.default).collect();
        let mut errors = Vec::new();
        let chosen: Vec<&Vm> = match wanted {
            None => {
                if defaults.is_empty() {
                    errors.push(format!(
                        "{file}: no VM has default = true; name the VMs with --vms (known: {})",
                        known()
                    ));
                }
                defaults.clone()
            }
            Some(names) => {
                if names.is_empty() {
                    errors.push(format!(
                        "{file}: --vms selects no VM; name at least one (known: {})",
                        known()
                    ));
                }
                let mut chosen = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    if names[..i].contains(name) {
                        errors.push(format!("{file}: --vms names vm \"{name}\" twice"));
                    } else if let Some(vm) = self.vms.iter().find(|v| &v.name == name) {
                        chosen.push(vm);
                    } else {
                        errors.push(format!("{file}: --vms names vm \"{name}\", which this file does not declare (known: {})", known()));
                    }
                }
                chosen
            }
        };
        if chosen.len() > MAX_VMS {
            errors.push(format!(
                "{file}: {} VMs selected; a package holds at most {MAX_VMS}",
                chosen.len()
            ));
        }
        let mut notes = Vec::new();
        for vm in &chosen {
            for (i, &p) in vm.pcpus.iter().enumerate() {
                if p >= machine.cpus {
                    errors.push(format!(
                        "{}: pcpus[{i}] = {p} but the machine has {} CPUs (--smp)",
                        vm.at(file),
                        machine.cpus
                    ));
                }
            }
        }
        for p in 0..machine.cpus {
            let users: Vec<String> = chosen
                .iter()
                .flat_map(|vm| {
                    vm.pcpus
                        .iter()
                        .enumerate()
                        .filter(move |(_, q)| **q == p)
                        .map(|(v, _)| format!("{}/vcpu{v}", vm.name))
                })
                .collect();
            if users.len() > 1 {
                notes.push(format!(
                    "pCPU {p} is shared by {} (they time-share it)",
                    users.join(", ")
                ));
            }
        }
        let focused: Vec<&Vm> = chosen.iter().copied().filter(|v| v.console_focus).collect();
        if focused.len() > 1 {
            errors.push(format!(
                "{}: console_focus = true, but so does vm \"{}\"; at most one selected VM may have it",
                focused[1].at(file),
                focused[0].name
            ));
        }
        for (i, vm) in chosen.iter().enumerate() {
            for d in &vm.devices {
                let earlier = chosen[..i].iter().find_map(|other| {
                    other
                        .devices
                        .iter()
                        .find(|e| {
                            e.overlaps(d.base, d.end()) || (d.irq.is_some() && e.irq == d.irq)
                        })
                        .map(|e| (other, e))
                });
                if let Some((other, e)) = earlier {
                    errors.push(format!(
                        "{}: devices \"{}\" ({:#x}, irq {}) is also given to vm \"{}\" (devices \"{}\"); a device belongs to one VM",
                        vm.at(file),
                        d.name,
                        d.base,
                        d.irq.map_or("none".into(), |n| n.to_string()),
                        other.name,
                        e.name
                    ));
                }
            }
        }
        let total: u64 = chosen.iter().map(|v| v.ram_size()).sum();
        if total + TANDEM_RESERVE > machine.ram {
            errors.push(format!(
                "{file}: the selected VMs need {} MiB of RAM + {} MiB for Tandem = {} MiB, but the machine has {} MiB (--memory)",
                total / MIB,
                TANDEM_RESERVE / MIB,
                (total + TANDEM_RESERVE) / MIB,
                machine.ram / MIB
            ));
        }
        let is_default = !chosen.is_empty()
            && chosen.len() == defaults.len()
            && chosen.iter().zip(&defaults).all(|(a, b)| a.name == b.name);
        let channels =
            crate::channels::place(file, &self.channels, &chosen, &mut |e| errors.push(e));
        let vms = chosen.into_iter().cloned().collect();
        finish(
            Selection {
                file: file.clone(),
                vms,
                is_default,
                notes,
                layout: None,
                name: None,
                all_channels: self.channels.clone(),
                channels,
                hostile: HostileRun::default(),
            },
            errors,
        )
    }
}

/// The arm64 Image header's `(text_offset, image_size)`, if `image` has one.
pub fn arm64_header(image: &[u8]) -> Option<(u64, u64)> {
    let word = |off: usize| {
        Some(u64::from_le_bytes(
            image.get(off..off + 8)?.try_into().ok()?,
        ))
    };
    (image.get(56..60)? == b"ARM\x64").then_some((word(8)?, word(16)?))
}

/// Where a VM's pieces go in its RAM (IPAs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Load address of the image, and vCPU 0's entry point.
    pub image_ipa: u64,
    /// The initramfs `[start, end)` (kind linux).
    pub initrd: Option<(u64, u64)>,
    /// The device tree goes at RAM base and may be at most this long.
    pub dtb_max: u64,
}

fn size(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

/// Places a built image (and initramfs) in `vm`'s RAM, checking that it fits.
pub fn plan(file: &str, vm: &Vm, image: &[u8], initrd_len: Option<u64>) -> Result<Layout, String> {
    // The top page holds the PV time structures (guest_dt::PV_TIME_REGION).
    let ram_end = RAM_IPA + vm.ram_size() - crate::guest_dt::PV_TIME_REGION;
    let mut problem = String::new();
    let layout = match vm.kind {
        Kind::Bare => {
            // A bare image with an arm64 header says how much memory it spans (BSS, stacks).
            let footprint = arm64_header(image)
                .map_or(0, |(_, size)| size)
                .max(image.len() as u64);
            let image_ipa = RAM_IPA + BARE_LOAD_OFFSET;
            if image_ipa + footprint > ram_end {
                let _ = write!(
                    problem,
                    "image \"{}\" spans {} from RAM base + 0x80000, more than the VM's {} MiB of RAM ({})",
                    vm.image.name(),
                    size(footprint),
                    vm.memory_mib,
                    memory_key(vm)
                );
            }
            Layout {
                image_ipa,
                initrd: None,
                dtb_max: BARE_LOAD_OFFSET,
            }
        }
        Kind::Linux => {
            let Some((text_offset, image_size)) = arm64_header(image) else {
                return Err(format!(
                    "{}: image \"{}\" is not an arm64 Image (no ARM\\x64 magic)",
                    vm.at(file),
                    vm.image.name()
                ));
            };
            // Kernels before 3.17 leave image_size 0 and mean text_offset 0x80000.
            let (text_offset, image_size) = if image_size == 0 {
                (0x8_0000, image.len() as u64)
            } else {
                (text_offset, image_size)
            };
            let image_ipa = RAM_IPA + LINUX_LOAD_OFFSET + text_offset;
            let kernel_end = image_ipa + image_size.max(image.len() as u64);
            let start = kernel_end.next_multiple_of(2 * MIB);
            let end = start + initrd_len.unwrap_or(0);
            if end > ram_end {
                let _ = write!(
                    problem,
                    "kernel ({} from RAM base + {}) and initramfs ({}) need {}, more than the VM's {} MiB of RAM ({})",
                    size(image_size),
                    size(image_ipa - RAM_IPA),
                    size(initrd_len.unwrap_or(0)),
                    size(end - RAM_IPA),
                    vm.memory_mib,
                    memory_key(vm)
                );
            }
            Layout {
                image_ipa,
                initrd: initrd_len.map(|_| (start, end)),
                dtb_max: image_ipa - text_offset - RAM_IPA,
            }
        }
    };
    if problem.is_empty() {
        Ok(layout)
    } else {
        Err(format!("{}: {problem}", vm.at(file)))
    }
}

/// Where a VM's RAM size is set, for "too large" messages.
fn memory_key(vm: &Vm) -> &'static str {
    if vm.origin.is_some() {
        "raise it with --guest PATH,memory_mib=N"
    } else {
        "memory_mib"
    }
}

/// The file name `shown` would have as a raw binary: `.elf` (or no extension) becomes `.bin`.
fn raw_name(shown: &str) -> String {
    let path = Path::new(shown);
    match path.extension().and_then(|e| e.to_str()) {
        Some("bin") => format!("{shown}.raw"),
        Some(_) => path.with_extension("bin").display().to_string(),
        None => format!("{shown}.bin"),
    }
}

/// What is wrong with `bytes` as the image of a `kind` VM, if anything: the problem, to
/// follow `image "<shown>" `.
pub fn image_format_problem(kind: Kind, shown: &str, bytes: &[u8]) -> Option<String> {
    let elf = bytes.starts_with(b"\x7fELF");
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let uimage = bytes.starts_with(&[0x27, 0x05, 0x19, 0x56]);
    if bytes.is_empty() {
        return Some("is empty".into());
    }
    match kind {
        Kind::Bare if elf => Some(format!(
            "is an ELF file, but a kind = \"bare\" VM loads a raw binary: Tandem copies the file's bytes to RAM base + 0x80000 (0x4008_0000) and starts at its first byte. \
             Link the guest at 0x4008_0000 and convert it: `llvm-objcopy -O binary {shown} {raw}` (or `aarch64-linux-gnu-objcopy -O binary {shown} {raw}`)",
            raw = raw_name(shown)
        )),
        Kind::Bare if gzip => Some(
            "is gzip-compressed, but a kind = \"bare\" VM loads a raw binary as it is: decompress it first (`gunzip -k`)".into(),
        ),
        Kind::Bare if uimage => Some(
            "is a U-Boot uImage, but a kind = \"bare\" VM loads a raw binary as it is: give the image inside it".into(),
        ),
        Kind::Bare => match arm64_header(bytes) {
            Some((text_offset, _)) if text_offset != BARE_LOAD_OFFSET => Some(format!(
                "has an arm64 Image header with text_offset {text_offset:#x}, but a kind = \"bare\" VM is loaded at RAM base + 0x80000 (text_offset 0x80000); \
                 a Linux kernel Image needs kind = \"linux\""
            )),
            _ => None,
        },
        Kind::Linux if arm64_header(bytes).is_some() => None,
        Kind::Linux if elf => Some(
            "is an ELF file (vmlinux?), but a kind = \"linux\" VM boots the arm64 Image (arch/arm64/boot/Image)".into(),
        ),
        Kind::Linux if gzip => Some(format!(
            "is gzip-compressed (Image.gz?), but a kind = \"linux\" VM boots the uncompressed arm64 Image: `gunzip -k {shown}`"
        )),
        Kind::Linux if uimage => Some(
            "is a U-Boot uImage, but a kind = \"linux\" VM boots the arm64 Image (arch/arm64/boot/Image)".into(),
        ),
        Kind::Linux => Some(
            "is not an arm64 Image (no ARM\\x64 magic at offset 56): a kind = \"linux\" VM boots arch/arm64/boot/Image".into(),
        ),
    }
}

/// Reads one file of a VM (`what` is `image` or `initramfs`), naming it in every error.
fn read_vm_file(at: &str, what: &str, shown: &str, path: &Path) -> Result<Vec<u8>, String> {
    let named = if Path::new(shown) == path {
        format!("{what} \"{shown}\"")
    } else {
        format!("{what} \"{shown}\" ({})", path.display())
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{at}: {named}: no such file"));
        }
        Err(e) => return Err(format!("{at}: {named}: {e}")),
        Ok(m) if m.is_dir() => {
            let hint = if path.join("Cargo.toml").is_file() {
                " (a Cargo package: build it and give its raw binary; the examples: `cargo xtask example NAME` prints the path)"
            } else {
                ""
            };
            return Err(format!(
                "{at}: {named}: is a directory, not an image file{hint}"
            ));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{at}: {named}: {e}"))?;
    if bytes.is_empty() {
        return Err(format!("{at}: {named}: is empty"));
    }
    Ok(bytes)
}

/// Reads a VM's image file (and initramfs) and checks that they are what its kind loads
/// and fit in its RAM. Errors name the configuration (or `--guest`), the VM and the file.
pub fn read_image_file(
    file: &str,
    vm: &Vm,
    image: &ImageFile,
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let at = vm.at(file);
    let bytes = read_vm_file(&at, "image", &image.shown, &image.path)?;
    if let Some(problem) = image_format_problem(vm.kind, &image.shown, &bytes) {
        return Err(format!("{at}: image \"{}\" {problem}", image.shown));
    }
    let initrd = match &image.initramfs {
        Some((shown, path)) => Some(read_vm_file(&at, "initramfs", shown, path)?),
        None => None,
    };
    plan(file, vm, &bytes, initrd.as_ref().map(|i| i.len() as u64))?;
    Ok((bytes, initrd))
}

/// Checks every file image of `selection` (exists, format, fits), all problems together:
/// done before anything is compiled.
pub fn check_image_files(selection: &Selection) -> Result<(), String> {
    let errors: Vec<String> = selection
        .vms
        .iter()
        .filter_map(|vm| match &vm.image {
            Image::File(f) => read_image_file(&selection.file, vm, f).err(),
            Image::Built(_) => None,
        })
        .collect();
    finish((), errors)
}

/// `--guest PATH[,key=value…]`: one image file booted as an extra VM, described on the
/// command line instead of in vms.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestArg {
    /// The whole argument, as given.
    pub text: String,
    /// The image file.
    pub path: String,
    /// `name=`: the VM name (default: from the file name).
    pub name: Option<String>,
    /// `kind=`: `bare` (the default) or `linux`.
    pub kind: Option<String>,
    /// `pcpus=`: the physical CPU of each vCPU (default: 0 and 1).
    pub pcpus: Option<Vec<u32>>,
    /// `memory_mib=`: RAM (default: 16 for bare, 256 for linux).
    pub memory_mib: Option<u64>,
    /// `initramfs=`: kind linux only.
    pub initramfs: Option<String>,
    /// `priority=`: scheduling priority (default 0).
    pub priority: Option<i64>,
    /// `console=`: `hypercall` (the default) or `pl011`.
    pub console: Option<String>,
}

impl GuestArg {
    /// The keys `--guest` takes after the path.
    pub const KEYS: &[&str] = &[
        "pcpus",
        "memory_mib",
        "name",
        "kind",
        "initramfs",
        "priority",
        "console",
    ];

    /// Parses `PATH[,key=value…]`. `pcpus` lists CPUs separated by commas too
    /// (`pcpus=2,3`): a bare number continues the list before it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(',');
        let path = parts.next().unwrap_or("").trim();
        if path.is_empty() {
            return Err("no image file: --guest PATH[,pcpus=N,N…][,memory_mib=N][,name=NAME][,kind=bare|linux][,initramfs=PATH][,priority=N][,console=hypercall|pl011]".into());
        }
        let mut arg = GuestArg {
            text: text.to_string(),
            path: path.to_string(),
            ..GuestArg::default()
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut last_key = "";
        for part in parts {
            let part = part.trim();
            if let Ok(cpu) = part.parse::<u32>() {
                match (last_key, arg.pcpus.as_mut()) {
                    ("pcpus", Some(list)) => {
                        list.push(cpu);
                        continue;
                    }
                    _ => {
                        return Err(format!(
                            "\"{part}\" follows no pcpus=: give options as key=value ({})",
                            Self::KEYS.join(", ")
                        ));
                    }
                }
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "\"{part}\" is not key=value (keys: {})",
                    Self::KEYS.join(", ")
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let Some(&key) = Self::KEYS.iter().find(|k| **k == key) else {
                return Err(format!(
                    "unknown option \"{key}\" (known: {})",
                    Self::KEYS.join(", ")
                ));
            };
            if seen.contains(&key) {
                return Err(format!("{key}= is given twice"));
            }
            seen.push(key);
            last_key = key;
            let number = |value: &str| -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| format!("{key}={value}: not a number"))
            };
            match key {
                "pcpus" => arg.pcpus = Some(vec![number(value)? as u32]),
                "memory_mib" => arg.memory_mib = Some(number(value)?),
                "priority" => {
                    arg.priority = Some(
                        value
                            .parse()
                            .map_err(|_| format!("priority={value}: not a number"))?,
                    )
                }
                "name" => arg.name = Some(value.to_string()),
                "kind" => arg.kind = Some(value.to_string()),
                "initramfs" => arg.initramfs = Some(value.to_string()),
                "console" => arg.console = Some(value.to_string()),
                _ => unreachable!("every key of KEYS is handled"),
            }
        }
        Ok(arg)
    }

    /// The VM name: `name=`, or the file name without its extension, lower-cased, other
    /// characters than a-z, 0-9, - and _ made `-`, cut to 15 bytes.
    pub fn vm_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let stem = Path::new(&self.path)
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut name: String = stem
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(NAME_LEN - 1);
        let name = name.trim_matches('-').to_string();
        if name.is_empty() {
            "guest".into()
        } else {
            name
        }
    }

    /// The VM this argument describes, checked like a `[[vm]]` table of vms.toml; paths
    /// are relative to `cwd`. Default placement: vCPUs on pCPUs 0 and 1 (one vCPU on a
    /// one-CPU machine).
    pub fn to_vm(&self, board: &Board, cwd: &Path, machine: Machine) -> Result<Vm, String> {
        let label = format!("--guest {}", self.text);
        let kind = self.kind.as_deref().unwrap_or("bare");
        let memory = self
            .memory_mib
            .unwrap_or(if kind == "linux" { 256 } else { 16 });
        let pcpus = self.pcpus.clone().unwrap_or_else(|| {
            if machine.cpus >= 2 {
                vec![0, 1]
            } else {
                vec![0]
            }
        });
        // A path for vms.toml has a / or a . (see `is_path`).
        let image = if is_path(&self.path) {
            self.path.clone()
        } else {
            format!("./{}", self.path)
        };
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut text = format!(
            "[[vm]]\nname = {}\nkind = {}\nimage = {}\nmemory_mib = {memory}\npcpus = {pcpus:?}\n",
            quote(&self.vm_name()),
            quote(kind),
            quote(&image)
        );
        if let Some(initramfs) = &self.initramfs {
            let _ = writeln!(text, "initramfs = {}", quote(initramfs));
        }
        if let Some(priority) = self.priority {
            let _ = writeln!(text, "priority = {priority}");
        }
        if let Some(console) = &self.console {
            let _ = writeln!(text, "console = {}", quote(console));
        }
        let mut config = Config::parse_in(board, &label, &text, cwd)?;
        let mut vm = config.vms.remove(0);
        vm.origin = Some(label);
        if let Image::File(f) = &mut vm.image {
            f.shown = self.path.clone();
        }
        Ok(vm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "platforms/test/vms.toml";

    const GOOD: &str = r#"
[[vm]]
name = "linux"
default = true
kind = "linux"
image = "linux"
memory_mib = 256
pcpus = [0, 1]
console_focus = true
bootargs = "console=hvc0"

[[vm]]
name = "rtos"
default = true
kind = "bare"
image = "rtos"
memory_mib = 16
pcpus = [2, 3]

[[vm]]
name = "probe"
kind = "bare"
image = "test-probe"
memory_mib = 16
pcpus = [0, 1]
devices = [{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 34 }]
"#;

    fn parse_err(text: &str) -> String {
        Config::parse(&Board::QEMU_VIRT, FILE, text).unwrap_err()
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(GOOD.contains(replace), "{replace}");
        GOOD.replacen(replace, by, 1)
    }

    fn select_err(text: &str, wanted: Option<&[&str]>, machine: Machine) -> String {
        let wanted: Option<Vec<String>> = wanted.map(|w| w.iter().map(|s| s.to_string()).collect());
        Config::parse(&Board::QEMU_VIRT, FILE, text)
            .unwrap()
            .select(wanted.as_deref(), machine)
            .unwrap_err()
    }

    /// The good file parses, and the default selection is the default set in file order.
    #[test]
    fn good_file() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        assert_eq!(c.vms.len(), 3);
        assert_eq!(c.vms[0].kind, Kind::Linux);
        assert_eq!(c.vms[2].image, Image::Built(GuestImage::TestProbe));
        let s = c.select(None, Machine::DEFAULT).unwrap();
        assert!(s.is_default);
        assert_eq!(s.image_name(), "tandem.bin");
        assert_eq!(
            s.vms.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["linux", "rtos"]
        );
        assert!(s.notes.is_empty());
        let s = c
            .select(Some(&["probe".into(), "rtos".into()]), Machine::DEFAULT)
            .unwrap();
        assert!(!s.is_default);
        assert_eq!(s.image_name(), "tandem-probe-rtos.bin");
    }

    /// The boards' real files parse and their default sets validate on the default machine.
    #[test]
    fn board_files_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for board in ["qemu-virt", "rpi4"] {
            let c = Config::load(&root, board).unwrap();
            let s = c.select(None, Machine::DEFAULT).unwrap();
            assert_eq!(s.vms.len(), 2, "{board}");
            for vm in &c.vms {
                c.select(Some(std::slice::from_ref(&vm.name)), Machine::DEFAULT)
                    .unwrap();
            }
        }
    }

    #[test]
    fn unknown_key() {
        let e = parse_err(&with(
            "memory_mib = 16\n",
            "memory_mib = 16\ncolour = \"red\"\n",
        ));
        assert!(e.starts_with("platforms/test/vms.toml:"), "{e}");
        assert!(
            e.contains("vm \"rtos\"") && e.contains("unknown field `colour`"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = parse_err("[machine]\ncpus = 4\n");
        assert!(e.contains("unknown field `machine`"), "{e}");
    }

    #[test]
    fn missing_key_and_wrong_type() {
        let e = parse_err(&with("image = \"rtos\"\n", ""));
        assert!(e.contains("missing field `image`"), "{e}");
        let e = parse_err(&with("memory_mib = 16", "memory_mib = \"16\""));
        assert!(
            e.contains("vm \"rtos\"") && e.contains("invalid type"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_name() {
        let e = parse_err(&with("name = \"probe\"", "name = \"rtos\""));
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"rtos\": the name is used by an earlier VM too; names must be unique"
        );
    }

    #[test]
    fn bad_names() {
        let e = parse_err(&with("name = \"probe\"", "name = \"a-very-long-name-x\""));
        assert!(e.contains("must be 1..=15 bytes long"), "{e}");
        let e = parse_err(&with("name = \"probe\"", "name = \"\""));
        assert!(
            e.contains("vm #3: name \"\" must be 1..=15 bytes long"),
            "{e}"
        );
        let e = parse_err(&with("name = \"probe\"", "name = \"Probe 1\""));
        assert!(e.contains("may only use a-z, 0-9, - and _"), "{e}");
    }

    #[test]
    fn unknown_image_or_kind() {
        let e = parse_err(&with("image = \"test-probe\"", "image = \"freertos\""));
        assert!(
            e.contains(
                "vm \"probe\": unknown image \"freertos\" (known: rtos, rtos-selftest, linux"
            ),
            "{e}"
        );
        let e = parse_err(&with("kind = \"bare\"", "kind = \"uefi\""));
        assert!(
            e.contains("vm \"rtos\": unknown kind \"uefi\" (known: bare, linux)"),
            "{e}"
        );
        let e = parse_err(&with("kind = \"linux\"", "kind = \"bare\""));
        assert!(
            e.contains("vm \"linux\": image \"linux\" is loaded as kind \"linux\", not \"bare\""),
            "{e}"
        );
    }

    #[test]
    fn vcpu_count() {
        let e = parse_err(&with("pcpus = [2, 3]", "pcpus = []"));
        assert!(
            e.contains("vm \"rtos\": pcpus has 0 entries; a VM has 1..=8 vCPUs"),
            "{e}"
        );
        let e = parse_err(&with(
            "pcpus = [2, 3]",
            "pcpus = [0, 1, 2, 3, 0, 1, 2, 3, 0]",
        ));
        assert!(e.contains("pcpus has 9 entries"), "{e}");
    }

    #[test]
    fn pcpu_out_of_range() {
        let e = select_err(
            &with("pcpus = [2, 3]", "pcpus = [2, 5]"),
            None,
            Machine::DEFAULT,
        );
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"rtos\": pcpus[1] = 5 but the machine has 4 CPUs (--smp)"
        );
        // The same file is fine on a bigger machine, and an unselected VM is not checked.
        let c = Config::parse(
            &Board::QEMU_VIRT,
            FILE,
            &with("pcpus = [2, 3]", "pcpus = [2, 5]"),
        )
        .unwrap();
        c.select(
            None,
            Machine {
                cpus: 8,
                ..Machine::DEFAULT
            },
        )
        .unwrap();
        c.select(Some(&["probe".into()]), Machine::DEFAULT).unwrap();
    }

    /// GICv2 images get their own names; GICv3 ones keep theirs.
    #[test]
    fn gic2_image_names() {
        let m = Machine::DEFAULT;
        assert_eq!(
            m.image_file("qemu-virt", "tandem-probe.bin"),
            "tandem-probe.bin"
        );
        assert_eq!(
            m.with_gic(2).image_file("qemu-virt", "tandem.bin"),
            "tandem-gic2.bin"
        );
        assert_eq!(Machine::RPI4.image_file("rpi4", "tandem.bin"), "tandem.bin");
    }

    #[test]
    fn memory_size() {
        for bad in ["0", "3", "17"] {
            let e = parse_err(&with("memory_mib = 16", &format!("memory_mib = {bad}")));
            assert!(
                e.contains(&format!(
                    "vm \"rtos\": memory_mib = {bad} is not a positive multiple of 2"
                )),
                "{e}"
            );
        }
        let e = parse_err(&with("memory_mib = 16", "memory_mib = 4096"));
        assert!(e.contains("below 4 GiB of IPA"), "{e}");
    }

    #[test]
    fn total_memory() {
        let m = Machine::new(4, "256M").unwrap();
        let e = select_err(GOOD, None, m);
        assert_eq!(
            e,
            "platforms/test/vms.toml: the selected VMs need 272 MiB of RAM + 64 MiB for Tandem = 336 MiB, but the machine has 256 MiB (--memory)"
        );
    }

    #[test]
    fn console_focus_twice() {
        let e = select_err(
            &with(
                "memory_mib = 16\n",
                "memory_mib = 16\nconsole_focus = true\n",
            ),
            None,
            Machine::DEFAULT,
        );
        assert!(
            e.contains("vm \"rtos\": console_focus = true, but so does vm \"linux\""),
            "{e}"
        );
    }

    /// `console = "pl011"` makes a transparent VM; other values, a watchdog
    /// (which it cannot arm) or a board UART beyond the vGIC are errors.
    #[test]
    fn console_key() {
        let text = with(
            "memory_mib = 16\n",
            "memory_mib = 16\nconsole = \"pl011\"\n",
        );
        let c = Config::parse(&Board::QEMU_VIRT, FILE, &text).unwrap();
        let console = |name: &str| c.vms.iter().find(|v| v.name == name).unwrap().console;
        assert_eq!(
            (console("rtos"), console("linux")),
            (Console::Pl011, Console::Hypercall)
        );
        let e = parse_err(&with(
            "memory_mib = 16\n",
            "memory_mib = 16\nconsole = \"uart\"\n",
        ));
        assert!(
            e.contains("vm \"rtos\": console = \"uart\": want \"hypercall\" or \"pl011\""),
            "{e}"
        );
        let e = parse_err(&with(
            "memory_mib = 16\n",
            "memory_mib = 16\nconsole = \"pl011\"\nwatchdog_s = 5\n",
        ));
        assert!(
            e.contains("vm \"rtos\": watchdog_s is for a VM with the hypercall console"),
            "{e}"
        );
        let text = with(
            "memory_mib = 16\n",
            "memory_mib = 16\nconsole = \"pl011\"\n",
        );
        let e = Config::parse(&Board::RPI4, "platforms/rpi4/vms.toml", &text).unwrap_err();
        assert!(
            e.contains(
                "console = \"pl011\": the board's UART interrupt 153 is beyond the VM's virtual GIC"
            ),
            "{e}"
        );
    }

    #[test]
    fn bootargs_on_bare() {
        let e = parse_err(&with(
            "memory_mib = 16\n",
            "memory_mib = 16\nbootargs = \"quiet\"\n",
        ));
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"rtos\": bootargs is for kind = \"linux\"; a bare guest gets no command line"
        );
        let e = parse_err(&with("console=hvc0", "console=\\\"x\\\""));
        assert!(e.contains("may not contain"), "{e}");
    }

    #[test]
    fn selection_errors() {
        let e = select_err(GOOD, Some(&["rtos", "freertos"]), Machine::DEFAULT);
        assert_eq!(
            e,
            "platforms/test/vms.toml: --vms names vm \"freertos\", which this file does not declare (known: linux, rtos, probe)"
        );
        let e = select_err(GOOD, Some(&[]), Machine::DEFAULT);
        assert!(e.contains("--vms selects no VM"), "{e}");
        let e = select_err(
            &GOOD.replace("default = true\n", ""),
            None,
            Machine::DEFAULT,
        );
        assert!(e.contains("no VM has default = true"), "{e}");
        let e = select_err(GOOD, Some(&["rtos", "rtos"]), Machine::DEFAULT);
        assert!(e.contains("--vms names vm \"rtos\" twice"), "{e}");
    }

    /// Several problems are all reported, one per line.
    #[test]
    fn all_errors_reported() {
        let text = with("kind = \"bare\"", "kind = \"uefi\"")
            .replace("memory_mib = 16", "memory_mib = 15");
        let e = parse_err(&text);
        assert_eq!(e.lines().count(), 3, "{e}");
        assert!(e.lines().all(|l| l.starts_with(FILE)), "{e}");
    }

    /// Sharing a pCPU is allowed, with a note.
    #[test]
    fn shared_pcpu_is_a_note() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        let s = c
            .select(Some(&["linux".into(), "probe".into()]), Machine::DEFAULT)
            .unwrap();
        assert_eq!(
            s.notes,
            [
                "pCPU 0 is shared by linux/vcpu0, probe/vcpu0 (they time-share it)",
                "pCPU 1 is shared by linux/vcpu1, probe/vcpu1 (they time-share it)"
            ]
        );
    }

    /// The RTC line of GOOD, to replace in device tests.
    const RTC: &str = r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 34 }"#;

    /// The probe's device error for `device` in place of the RTC.
    fn device_err(device: &str) -> String {
        parse_err(&with(RTC, device))
    }

    /// A passthrough device parses into its fields; level-triggered by default.
    #[test]
    fn device_parses() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        assert_eq!(
            c.vms[2].devices,
            [Device {
                name: "rtc".into(),
                base: 0x0901_0000,
                size: 0x1000,
                irq: Some(34),
                edge: false
            }]
        );
        assert!(c.vms[0].devices.is_empty());
        let c = Config::parse(
            &Board::QEMU_VIRT,
            FILE,
            &with(RTC, r#"{ name = "gpio", base = 0x0903_0000, size = 0x1000, irq = 39, trigger = "edge" }, { name = "flash", base = 0, size = 0x100_0000 }"#),
        )
        .unwrap();
        assert!(c.vms[2].devices[0].edge);
        assert_eq!(c.vms[2].devices[1].irq, None);
    }

    #[test]
    fn device_unaligned() {
        assert_eq!(
            device_err(r#"{ name = "rtc", base = 0x0901_0800, size = 0x1000, irq = 34 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"rtc\": base 0x9010800 and size 0x1000 must be 4 KiB aligned and the size non-zero (stage 2 maps pages)"
        );
        let e = device_err(r#"{ name = "rtc", base = 0x0901_0000, size = 0, irq = 34 }"#);
        assert!(e.contains("the size non-zero"), "{e}");
    }

    #[test]
    fn device_outside_mmio() {
        assert_eq!(
            device_err(r#"{ name = "rtc", base = 0x3fff_f000, size = 0x2000, irq = 34 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"rtc\": window 0x3ffff000..0x40001000 is outside the board's MMIO window 0x0..0x40000000"
        );
        let e = device_err(r#"{ name = "rtc", base = 0x7fff_ffff_ffff_f000, size = 0x2000 }"#);
        assert!(e.contains("outside the board's MMIO window"), "{e}");
    }

    #[test]
    fn device_over_the_gic() {
        assert_eq!(
            device_err(r#"{ name = "gic", base = 0x080a_0000, size = 0x2_0000 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"gic\": window 0x80a0000..0x80c0000 overlaps the GIC (each VM's emulated GICD/GICR frames sit there) (0x8000000..0x9000000)"
        );
    }

    #[test]
    fn device_is_tandems_uart() {
        assert_eq!(
            device_err(r#"{ name = "uart", base = 0x0900_0000, size = 0x1000, irq = 40 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"uart\": window 0x9000000..0x9001000 overlaps Tandem's UART (0x9000000..0x9001000)"
        );
        assert_eq!(
            device_err(r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 33 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"rtc\": irq = 33 is Tandem's UART interrupt"
        );
        let e = device_err(r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 32 }"#);
        assert!(e.ends_with("irq = 32 is the VM's console interrupt"), "{e}");
    }

    #[test]
    fn device_irq_not_an_spi() {
        for irq in [0, 27, 1020] {
            let e = device_err(&format!(
                r#"{{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = {irq} }}"#
            ));
            assert_eq!(
                e,
                format!(
                    "platforms/test/vms.toml: vm \"probe\": devices[0] \"rtc\": irq = {irq} is not an SPI (32..=1019)"
                )
            );
        }
        assert_eq!(
            device_err(r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 96 }"#),
            "platforms/test/vms.toml: vm \"probe\": devices[0] \"rtc\": irq = 96 is beyond the VM's virtual GIC (SPIs up to INTID 95)"
        );
    }

    #[test]
    fn device_given_to_two_vms() {
        let text = with(
            "pcpus = [2, 3]\n",
            &format!("pcpus = [2, 3]\ndevices = [{RTC}]\n"),
        );
        let e = select_err(&text, Some(&["rtos", "probe"]), Machine::DEFAULT);
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"probe\": devices \"rtc\" (0x9010000, irq 34) is also given to vm \"rtos\" (devices \"rtc\"); a device belongs to one VM"
        );
        // Only the selection counts: each VM alone is fine.
        let c = Config::parse(&Board::QEMU_VIRT, FILE, &text).unwrap();
        c.select(Some(&["probe".into()]), Machine::DEFAULT).unwrap();
        c.select(Some(&["rtos".into()]), Machine::DEFAULT).unwrap();
        // Sharing only the interrupt is refused too.
        let text = with(
            "pcpus = [2, 3]\n",
            "pcpus = [2, 3]\ndevices = [{ name = \"gpio\", base = 0x0903_0000, size = 0x1000, irq = 34 }]\n",
        );
        let e = select_err(&text, Some(&["probe", "rtos"]), Machine::DEFAULT);
        assert!(
            e.contains(
                "vm \"rtos\": devices \"gpio\" (0x9030000, irq 34) is also given to vm \"probe\""
            ),
            "{e}"
        );
    }

    #[test]
    fn device_bad_entries() {
        let e = device_err(&format!("{RTC}, {RTC}"));
        assert!(
            e.ends_with("devices[1] \"rtc\": the name is used by an earlier device of this VM too"),
            "{e}"
        );
        let e = device_err(&format!(
            r#"{RTC}, {{ name = "rtc2", base = 0x0901_0000, size = 0x1000 }}"#
        ));
        assert!(
            e.ends_with("devices[1] \"rtc2\": window overlaps devices \"rtc\""),
            "{e}"
        );
        let e = device_err(
            r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 34, trigger = "falling" }"#,
        );
        assert!(
            e.ends_with("unknown trigger \"falling\" (known: level, edge)"),
            "{e}"
        );
        let e = device_err(r#"{ name = "RTC!", base = 0x0901_0000, size = 0x1000 }"#);
        assert!(e.contains("name must be 1..=31 bytes"), "{e}");
        let e = device_err(r#"{ name = "rtc", base = 0x0901_0000, size = 0x1000, colour = 1 }"#);
        assert!(e.contains("unknown field `colour`"), "{e}");
        let nine = (0..9)
            .map(|i| {
                format!(
                    r#"{{ name = "d{i}", base = {}, size = 0x1000 }}"#,
                    0x0a00_0000 + i * 0x1000
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let e = device_err(&nine);
        assert!(e.contains("9 devices; a VM has at most 8"), "{e}");
        assert!(Board::of("pc").is_err());
    }

    #[test]
    fn qemu_sizes() {
        assert_eq!(parse_qemu_size("1G"), Ok(1 << 30));
        assert_eq!(parse_qemu_size("512M"), Ok(512 << 20));
        assert_eq!(parse_qemu_size("2048"), Ok(2048 << 20));
        assert_eq!(parse_qemu_size("2g"), Ok(2 << 30));
        assert_eq!(parse_qemu_size("size=1G,slots=2,maxmem=4G"), Ok(1 << 30));
        assert!(parse_qemu_size("lots").is_err());
        assert!(parse_qemu_size("0").is_err());
    }

    fn header(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut image = vec![0u8; len];
        image[8..16].copy_from_slice(&text_offset.to_le_bytes());
        image[16..24].copy_from_slice(&image_size.to_le_bytes());
        image[56..60].copy_from_slice(b"ARM\x64");
        image
    }

    /// A bare image is checked by its header's image_size (BSS included), else its length.
    #[test]
    fn bare_image_too_big() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        let rtos = &c.vms[1];
        let l = plan(FILE, rtos, &header(0x80000, 1 << 20, 4096), None).unwrap();
        assert_eq!(
            l,
            Layout {
                image_ipa: 0x4008_0000,
                initrd: None,
                dtb_max: 0x80000
            }
        );
        let e = plan(FILE, rtos, &header(0x80000, 16 << 20, 4096), None).unwrap_err();
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"rtos\": image \"rtos\" spans 16 MiB from RAM base + 0x80000, more than the VM's 16 MiB of RAM (memory_mib)"
        );
        assert!(plan(FILE, rtos, &vec![0; 16 << 20], None).is_err());
    }

    /// Linux: Image at RAM + 2 MiB + text_offset, initramfs 2 MiB-aligned after image_size.
    #[test]
    fn linux_layout() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        let linux = &c.vms[0];
        let l = plan(FILE, linux, &header(0, 0x1a3_0000, 4096), Some(0x10_0000)).unwrap();
        assert_eq!(l.image_ipa, 0x4020_0000);
        // 0x4020_0000 + 0x1a3_0000 = 0x41d3_0000, rounded up to 2 MiB.
        assert_eq!(l.initrd, Some((0x41e0_0000, 0x41f0_0000)));
        assert_eq!(l.dtb_max, 2 << 20);
        let e = plan(FILE, linux, &header(0, 0x1a3_0000, 4096), Some(250 << 20)).unwrap_err();
        assert!(
            e.starts_with("platforms/test/vms.toml: vm \"linux\": kernel (")
                && e.contains("more than the VM's 256 MiB"),
            "{e}"
        );
        let e = plan(FILE, linux, &[0; 4096], None).unwrap_err();
        assert!(e.contains("not an arm64 Image"), "{e}");
    }

    #[test]
    fn adds_a_boot_argument_to_the_linux_vm_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let config = Config::load(&root, "qemu-virt").unwrap();
        let shared = config.select_layout("shared", Machine::DEFAULT).unwrap();
        let stressed = shared.with_bootarg("tandem.stress=2").unwrap();
        assert_eq!(stressed.image_name(), "tandem-layout-shared-stress2.bin");
        for vm in &stressed.vms {
            match &vm.bootargs {
                Some(args) => assert!(args.ends_with(" tandem.stress=2"), "{args}"),
                None => assert_ne!(vm.name, "linux"),
            }
        }
        let default = config.select(None, Machine::DEFAULT).unwrap();
        assert_eq!(
            default.with_bootarg("tandem.io").unwrap().image_name(),
            "tandem-io.bin"
        );
        let rtos = config
            .select(Some(&["rtos".to_string()]), Machine::DEFAULT)
            .unwrap();
        assert!(
            rtos.with_bootarg("tandem.stress=2")
                .unwrap_err()
                .contains("no VM with bootargs")
        );
    }

    /// A layout selects the VMs that name it, placed and prioritised as it
    /// says; `default` is the default set; an unknown one lists the known.
    #[test]
    fn layouts_select_and_place() {
        let c = config(GOOD_LAYOUTS).unwrap();
        let s = c.select_layout("solo", Machine::DEFAULT).unwrap();
        assert_eq!(s.image_name(), "tandem-layout-solo.bin");
        let names: Vec<&str> = s.vms.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(s.vms[0].pcpus, [0]);
        assert_eq!((s.vms[1].pcpus.clone(), s.vms[1].priority), (vec![0], 9));
        assert_eq!(s.vms[1].budget, Some((500, 1000)));
        assert!(s.notes.iter().any(|n| n.contains("pCPU 0 is shared")));
        assert!(
            c.select_layout("default", Machine::DEFAULT)
                .unwrap()
                .is_default
        );
        let err = c.select_layout("nope", Machine::DEFAULT).unwrap_err();
        assert!(
            err.contains("no layout \"nope\" (known: default, solo)"),
            "{err}"
        );
    }

    /// Layout and scheduling mistakes are named.
    #[test]
    fn layout_and_sched_errors() {
        let undeclared = GOOD_LAYOUTS.replace(
            "[vm.layout.solo]\npcpus = [0]\n",
            "[vm.layout.duo]\npcpus = [0]\n",
        );
        let err = config(&undeclared).unwrap_err();
        assert!(
            err.contains("layout \"duo\": not declared in [layouts]"),
            "{err}"
        );
        let err = config(&GOOD_LAYOUTS.replace("priority = 9", "priority = 300")).unwrap_err();
        assert!(err.contains("priority = 300 is not 0..=255"), "{err}");
        let err = config(&GOOD_LAYOUTS.replace("budget_us = 500", "budget_us = 5000")).unwrap_err();
        assert!(err.contains("want 1 <= budget_us <= period_us"), "{err}");
        let err = config(&GOOD_LAYOUTS.replace("period_us = 1000\n", "")).unwrap_err();
        assert!(err.contains("budget_us and period_us go together"), "{err}");
        let err = config(&GOOD_LAYOUTS.replace("solo = ", "default = ")).unwrap_err();
        assert!(err.contains("name \"default\""), "{err}");
    }

    const GOOD_LAYOUTS: &str = r#"
[layouts]
solo = "everything on pCPU 0"

[[vm]]
name = "a"
default = true
kind = "bare"
image = "rtos"
memory_mib = 16
pcpus = [0, 1]

[vm.layout.solo]
pcpus = [0]

[[vm]]
name = "b"
default = true
kind = "bare"
image = "rtos"
memory_mib = 16
pcpus = [2]
priority = 9

[vm.layout.solo]
pcpus = [0]
budget_us = 500
period_us = 1000
"#;

    fn config(text: &str) -> Result<Config, String> {
        Config::parse(Board::of("qemu-virt").unwrap(), "vms.toml", text)
    }

    // --- image files and --guest -------------------------------------------------------

    /// A scratch directory of this test's own, emptied.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-vms-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A raw image of `len` bytes (no header).
    fn raw(len: usize) -> Vec<u8> {
        vec![0x1f_u8.wrapping_add(1); len]
    }

    /// `image` may be a path, relative to the file's directory; a name with neither / nor .
    /// must be a built-in one.
    #[test]
    fn image_paths_resolve_relative_to_the_file() {
        let text = with("image = \"test-probe\"", "image = \"../guests/hello.bin\"");
        let c = Config::parse_in(
            &Board::QEMU_VIRT,
            FILE,
            &text,
            Path::new("/w/platforms/test"),
        )
        .unwrap();
        assert_eq!(
            c.vms[2].image,
            Image::File(ImageFile {
                shown: "../guests/hello.bin".into(),
                path: PathBuf::from("/w/platforms/test/../guests/hello.bin"),
                initramfs: None,
            })
        );
        assert_eq!(c.vms[2].image.name(), "../guests/hello.bin");
        let text = with("image = \"test-probe\"", "image = \"/abs/hello.bin\"");
        let c = Config::parse_in(&Board::QEMU_VIRT, FILE, &text, Path::new("/w")).unwrap();
        let Image::File(f) = &c.vms[2].image else {
            panic!()
        };
        assert_eq!(f.path, PathBuf::from("/abs/hello.bin"));
        let e = parse_err(&with("image = \"test-probe\"", "image = \"hello\""));
        assert!(
            e.contains("unknown image \"hello\" (known: rtos, rtos-selftest, linux, debian-linux, test-probe, test-hostile, test-vhostile, test-consolecost, test-pingpong, test-chaos, test-isolation; or a file, as a path relative to this file with a / or a ., e.g. \"./hello.bin\")"),
            "{e}"
        );
    }

    /// `initramfs` goes with a file image of kind linux only.
    #[test]
    fn initramfs_only_with_a_linux_file() {
        let text = with(
            "image = \"linux\"\n",
            "image = \"./Image\"\ninitramfs = \"initramfs.cpio\"\n",
        );
        let c = Config::parse_in(&Board::QEMU_VIRT, FILE, &text, Path::new("/k")).unwrap();
        let Image::File(f) = &c.vms[0].image else {
            panic!()
        };
        assert_eq!(
            f.initramfs,
            Some(("initramfs.cpio".into(), PathBuf::from("/k/initramfs.cpio")))
        );
        let e = parse_err(&with(
            "image = \"linux\"\n",
            "image = \"linux\"\ninitramfs = \"i.cpio\"\n",
        ));
        assert!(
            e.contains("vm \"linux\": initramfs = \"i.cpio\" is for an image given as a file"),
            "{e}"
        );
        let e = parse_err(&with(
            "image = \"rtos\"\n",
            "image = \"./r.bin\"\ninitramfs = \"i.cpio\"\n",
        ));
        assert!(
            e.contains("vm \"rtos\": initramfs = \"i.cpio\" is for kind = \"linux\""),
            "{e}"
        );
    }

    /// Each wrong format is named, with what to do about it.
    #[test]
    fn image_formats() {
        let elf = b"\x7fELF\x02\x01\x01\0rest".to_vec();
        let e = image_format_problem(Kind::Bare, "target/hello.elf", &elf).unwrap();
        assert!(
            e.starts_with("is an ELF file, but a kind = \"bare\" VM loads a raw binary"),
            "{e}"
        );
        assert!(
            e.contains("`llvm-objcopy -O binary target/hello.elf target/hello.bin`")
                && e.contains(
                    "`aarch64-linux-gnu-objcopy -O binary target/hello.elf target/hello.bin`"
                ),
            "{e}"
        );
        let e = image_format_problem(Kind::Bare, "hello", &elf).unwrap();
        assert!(e.contains("-O binary hello hello.bin"), "{e}");
        assert_eq!(
            image_format_problem(Kind::Bare, "x", &[]).as_deref(),
            Some("is empty")
        );
        assert!(
            image_format_problem(Kind::Bare, "x.gz", &[0x1f, 0x8b, 8])
                .unwrap()
                .contains("gzip")
        );
        assert_eq!(image_format_problem(Kind::Bare, "x.bin", &raw(64)), None);
        // A bare image with its own header must say text_offset 0x80000; a Linux Image does not.
        assert_eq!(
            image_format_problem(Kind::Bare, "x.bin", &header(0x80000, 1 << 20, 4096)),
            None
        );
        let e = image_format_problem(Kind::Bare, "Image", &header(0, 1 << 20, 4096)).unwrap();
        assert!(
            e.contains("text_offset 0x0") && e.contains("needs kind = \"linux\""),
            "{e}"
        );
        // Linux: the arm64 Image, not vmlinux, Image.gz or anything else.
        assert_eq!(
            image_format_problem(Kind::Linux, "Image", &header(0, 1 << 20, 4096)),
            None
        );
        let e = image_format_problem(Kind::Linux, "vmlinux", &elf).unwrap();
        assert!(
            e.contains("ELF file (vmlinux?)") && e.contains("arch/arm64/boot/Image"),
            "{e}"
        );
        let e = image_format_problem(Kind::Linux, "Image.gz", &[0x1f, 0x8b, 8, 0]).unwrap();
        assert!(e.contains("`gunzip -k Image.gz`"), "{e}");
        let e = image_format_problem(Kind::Linux, "zImage", &raw(4096)).unwrap();
        assert!(e.contains("not an arm64 Image"), "{e}");
    }

    /// Reading a file image: a missing file, a directory, an ELF, an image too large for
    /// the VM's RAM, each named with the configuration, the VM and the file.
    #[test]
    fn image_file_errors() {
        let dir = scratch("files");
        let text = with("image = \"rtos\"\n", "image = \"./rtos.bin\"\n");
        let c = Config::parse_in(&Board::QEMU_VIRT, FILE, &text, &dir).unwrap();
        let vm = &c.vms[1];
        let Image::File(f) = &vm.image else { panic!() };
        let e = read_image_file(FILE, vm, f).unwrap_err();
        assert_eq!(
            e,
            format!(
                "platforms/test/vms.toml: vm \"rtos\": image \"./rtos.bin\" ({}): no such file",
                dir.join("./rtos.bin").display()
            )
        );
        std::fs::create_dir_all(dir.join("rtos.bin")).unwrap();
        let e = read_image_file(FILE, vm, f).unwrap_err();
        assert!(e.ends_with("is a directory, not an image file"), "{e}");
        std::fs::remove_dir(dir.join("rtos.bin")).unwrap();
        std::fs::write(dir.join("rtos.bin"), b"\x7fELF\x02\x01\x01\0").unwrap();
        let e = read_image_file(FILE, vm, f).unwrap_err();
        assert!(
            e.starts_with(
                "platforms/test/vms.toml: vm \"rtos\": image \"./rtos.bin\" is an ELF file"
            ) && e.contains("llvm-objcopy -O binary ./rtos.bin ./rtos.bin.raw"),
            "{e}"
        );
        std::fs::write(dir.join("rtos.bin"), raw(16 << 20)).unwrap();
        let e = read_image_file(FILE, vm, f).unwrap_err();
        assert_eq!(
            e,
            "platforms/test/vms.toml: vm \"rtos\": image \"./rtos.bin\" spans 16 MiB from RAM base + 0x80000, more than the VM's 16 MiB of RAM (memory_mib)"
        );
        std::fs::write(dir.join("rtos.bin"), raw(4096)).unwrap();
        let (image, initrd) = read_image_file(FILE, vm, f).unwrap();
        assert_eq!((image.len(), initrd), (4096, None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn guest_arg_parses() {
        let g = GuestArg::parse("out/hello.bin").unwrap();
        assert_eq!(
            (g.path.as_str(), g.pcpus.clone(), g.memory_mib),
            ("out/hello.bin", None, None)
        );
        assert_eq!(g.vm_name(), "hello");
        let g = GuestArg::parse("hello.bin,pcpus=2,3,memory_mib=32,name=hi,priority=5").unwrap();
        assert_eq!(g.pcpus, Some(vec![2, 3]));
        assert_eq!((g.memory_mib, g.priority), (Some(32), Some(5)));
        assert_eq!(g.vm_name(), "hi");
        let g = GuestArg::parse("k/Image,kind=linux,initramfs=k/initrd.cpio.gz").unwrap();
        assert_eq!(g.kind.as_deref(), Some("linux"));
        assert_eq!(g.initramfs.as_deref(), Some("k/initrd.cpio.gz"));
        assert_eq!(g.vm_name(), "image");
        assert_eq!(
            GuestArg::parse("/x/My Guest v2.0.bin").unwrap().vm_name(),
            "my-guest-v2-0"
        );
        assert_eq!(
            GuestArg::parse("a-very-long-guest-name.bin")
                .unwrap()
                .vm_name(),
            "a-very-long-gue"
        );
        for (bad, why) in [
            ("", "no image file"),
            (",pcpus=1", "no image file"),
            (
                "h.bin,colour=red",
                "unknown option \"colour\" (known: pcpus, memory_mib, name, kind, initramfs, priority, console)",
            ),
            ("h.bin,pcpus=1,pcpus=2", "pcpus= is given twice"),
            ("h.bin,memory_mib=lots", "memory_mib=lots: not a number"),
            ("h.bin,memory_mib=16,3", "\"3\" follows no pcpus="),
            ("h.bin,fast", "\"fast\" is not key=value"),
        ] {
            let e = GuestArg::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// --guest becomes a VM checked like a [[vm]] table, labelled `--guest …` in errors.
    #[test]
    fn guest_vm() {
        let cwd = Path::new("/home/me");
        let vm = GuestArg::parse("hello.bin")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap();
        assert_eq!(
            (vm.name.as_str(), vm.kind, vm.memory_mib),
            ("hello", Kind::Bare, 16)
        );
        assert_eq!((vm.pcpus.clone(), vm.priority), (vec![0, 1], 0));
        assert_eq!(vm.origin.as_deref(), Some("--guest hello.bin"));
        let Image::File(f) = &vm.image else { panic!() };
        assert_eq!(
            (f.shown.as_str(), f.path.clone()),
            ("hello.bin", cwd.join("hello.bin"))
        );
        let one = Machine {
            cpus: 1,
            ..Machine::DEFAULT
        };
        let vm = GuestArg::parse("hello")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, one)
            .unwrap();
        assert_eq!(vm.pcpus, [0]);
        let Image::File(f) = &vm.image else { panic!() };
        assert_eq!(
            (f.shown.as_str(), f.path.clone()),
            ("hello", cwd.join("./hello"))
        );
        let vm = GuestArg::parse("rtos.bin,console=pl011")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap();
        assert_eq!(vm.console, Console::Pl011);
        let e = GuestArg::parse("rtos.bin,console=serial")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap_err();
        assert!(
            e.starts_with("--guest rtos.bin,console=serial: vm \"rtos\": console = \"serial\""),
            "{e}"
        );
        let vm = GuestArg::parse("/k/Image,kind=linux,initramfs=rd.cpio,pcpus=3")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap();
        assert_eq!(
            (vm.kind, vm.memory_mib, vm.pcpus.clone()),
            (Kind::Linux, 256, vec![3])
        );
        let Image::File(f) = &vm.image else { panic!() };
        assert_eq!(f.initramfs, Some(("rd.cpio".into(), cwd.join("rd.cpio"))));
        let e = GuestArg::parse("hello.bin,memory_mib=3")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap_err();
        assert_eq!(
            e,
            "--guest hello.bin,memory_mib=3: vm \"hello\": memory_mib = 3 is not a positive multiple of 2 (stage 2 maps 2 MiB blocks)"
        );
        let e = GuestArg::parse("hello.bin,kind=uefi")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap_err();
        assert!(
            e.contains("unknown kind \"uefi\" (known: bare, linux)"),
            "{e}"
        );
        let e = GuestArg::parse("hello.bin,name=Hello World")
            .unwrap()
            .to_vm(&Board::QEMU_VIRT, cwd, Machine::DEFAULT)
            .unwrap_err();
        assert!(e.contains("may only use a-z, 0-9, - and _"), "{e}");
    }

    /// The guest joins a selection: checked with it, named after it, placed last.
    #[test]
    fn guest_joins_a_selection() {
        let c = Config::parse(&Board::QEMU_VIRT, FILE, GOOD).unwrap();
        let m = Machine::DEFAULT;
        let guest = |arg: &str| {
            GuestArg::parse(arg)
                .unwrap()
                .to_vm(&Board::QEMU_VIRT, Path::new("/w"), m)
                .unwrap()
        };
        let s = c
            .select(None, m)
            .unwrap()
            .with_guest(guest("hello.bin"), m)
            .unwrap();
        assert_eq!(s.image_name(), "tandem-guest-hello.bin");
        let names: Vec<&str> = s.vms.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["linux", "rtos", "hello"]);
        assert!(!s.is_default);
        assert!(
            s.notes
                .iter()
                .any(|n| n == "pCPU 0 is shared by linux/vcpu0, hello/vcpu0 (they time-share it)"),
            "{:?}",
            s.notes
        );
        let s = c
            .select(Some(&["rtos".into()]), m)
            .unwrap()
            .with_guest(guest("hello.bin"), m)
            .unwrap();
        assert_eq!(s.image_name(), "tandem-rtos-guest-hello.bin");
        assert!(s.notes.is_empty());
        let s = Selection::none(FILE)
            .with_guest(guest("hello.bin"), m)
            .unwrap();
        assert_eq!(s.image_name(), "tandem-novm-guest-hello.bin");
        assert_eq!(s.vms.len(), 1);
        // Problems of the guest are labelled with --guest.
        let e = c
            .select(None, m)
            .unwrap()
            .with_guest(guest("rtos.bin"), m)
            .unwrap_err();
        assert_eq!(
            e,
            "--guest rtos.bin: vm \"rtos\": the name is taken by vm \"rtos\" of platforms/test/vms.toml; name the guest with --guest PATH,name=NAME"
        );
        let e = c
            .select(None, m)
            .unwrap()
            .with_guest(guest("hello.bin,pcpus=1,4"), m)
            .unwrap_err();
        assert_eq!(
            e,
            "--guest hello.bin,pcpus=1,4: vm \"hello\": pcpus[1] = 4 but the machine has 4 CPUs (--smp)"
        );
        let small = Machine {
            ram: 400 << 20,
            ..Machine::DEFAULT
        };
        let e = c
            .select(None, small)
            .unwrap()
            .with_guest(guest("hello.bin,memory_mib=128"), small)
            .unwrap_err();
        assert!(
            e.contains("the selected VMs need 400 MiB of RAM + 64 MiB for Tandem"),
            "{e}"
        );
    }

    /// The guest's file is checked before anything is built: missing, or too large for
    /// the RAM given on the command line.
    #[test]
    fn guest_file_checked() {
        let dir = scratch("guest");
        let m = Machine::DEFAULT;
        let guest = |arg: &str| {
            GuestArg::parse(arg)
                .unwrap()
                .to_vm(&Board::QEMU_VIRT, &dir, m)
                .unwrap()
        };
        let s = Selection::none(FILE)
            .with_guest(guest("hello.bin"), m)
            .unwrap();
        let e = check_image_files(&s).unwrap_err();
        assert_eq!(
            e,
            format!(
                "--guest hello.bin: vm \"hello\": image \"hello.bin\" ({}): no such file",
                dir.join("hello.bin").display()
            )
        );
        std::fs::write(dir.join("hello.bin"), raw(2 << 20)).unwrap();
        let s = Selection::none(FILE)
            .with_guest(guest("hello.bin,memory_mib=2"), m)
            .unwrap();
        let e = check_image_files(&s).unwrap_err();
        assert_eq!(
            e,
            "--guest hello.bin,memory_mib=2: vm \"hello\": image \"hello.bin\" spans 2 MiB from RAM base + 0x80000, more than the VM's 2 MiB of RAM (raise it with --guest PATH,memory_mib=N)"
        );
        let s = Selection::none(FILE)
            .with_guest(guest("hello.bin"), m)
            .unwrap();
        check_image_files(&s).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// --with-hostile adds vm "chaos" of the board's file last (sharing the RTOS's pCPUs),
    /// names the image after the seed, and says so when the VM is already selected or the
    /// file has none.
    #[test]
    fn hostile_selection() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let m = Machine::DEFAULT;
        let c = Config::load(&root, "qemu-virt").unwrap();
        let run = HostileRun { seed: 7, ops: 5 };
        let s = c.select(None, m).unwrap().with_hostile(&c, run, m).unwrap();
        let names: Vec<&str> = s.vms.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["linux", "rtos", "chaos"]);
        assert_eq!(s.hostile, run);
        assert_eq!(s.image_name(), "tandem-hostile-seed7-ops5.bin");
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("rtos/vcpu0, chaos/vcpu0")),
            "{:?}",
            s.notes
        );
        let run = HostileRun {
            seed: 9,
            ..HostileRun::default()
        };
        let s = c
            .select(Some(&["rtos".into()]), m)
            .unwrap()
            .with_hostile(&c, run, m)
            .unwrap();
        assert_eq!(s.image_name(), "tandem-rtos-hostile-seed9.bin");
        let e = c
            .select(Some(&["rtos".into(), "chaos".into()]), m)
            .unwrap()
            .with_hostile(&c, run, m)
            .unwrap_err();
        assert!(
            e.contains("--with-hostile adds vm \"chaos\", which is already selected"),
            "{e}"
        );
        let rpi4 = Config::load(&root, "rpi4").unwrap();
        let e = rpi4
            .select(None, Machine::RPI4)
            .unwrap()
            .with_hostile(&rpi4, run, Machine::RPI4)
            .unwrap_err();
        assert!(
            e.contains("--with-hostile boots vm \"chaos\", which this file does not declare"),
            "{e}"
        );
    }
}
