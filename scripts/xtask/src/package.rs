//! Assembling the boot image: the hypervisor, then the guest package.
//!
//! For each selected VM (`vms.rs`) xtask builds its guest image, places it
//! in the VM's RAM ([`vms::plan`]), generates and compiles its device tree
//! (`guest_dt.rs`), and describes it as a [`VmSpec`]. `kernel::vm::package`
//! encodes the VMs (the format is the kernel's: one encoder and decoder for
//! both sides), and the package is appended to the raw hypervisor image at
//! `__image_end` rounded up to 4 KiB, where the kernel looks for it. The arm64
//! Image header's `image_size` is grown over the package so a loader that
//! honours it keeps the package intact.
//!
//! Outputs, in `target/tandem/<platform>/`:
//! - `tandem-novm.bin`: the hypervisor alone (`image::build_hypervisor`);
//! - `tandem.bin`: the hypervisor and the default VM set;
//! - `tandem-<vm>-<vm>….bin`: the hypervisor and another selection;
//! - `vms/<vm>.dts`, `vms/<vm>.dtb`: each VM's device tree, for inspection.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kernel::vm::package::{
    DEVICE_EDGE, Device, FLAG_CONSOLE_FOCUS, FLAG_RESTART_ON_CRASH, FLAG_RESTART_ON_RESET, Package,
    VmSpec, encode_with_channels,
};
use object::{Object, ObjectSymbol};

use crate::guest_dt::{self, CONSOLE_INTID, ChannelNode, ChannelRole, GuestDt};
use crate::setup::{self, Need};
use crate::util::{cargo, say};
use crate::vms::{
    self, Config, GuestArg, GuestImage, HostileRun, Image, Machine, RAM_IPA, Selection,
    TANDEM_RESERVE,
};
use crate::{image, linux};

/// Page size the package is aligned to.
const PAGE: u64 = 4096;
/// Offset of `image_size` in the arm64 Image header.
const IMAGE_SIZE_OFFSET: usize = 16;

/// A built guest: its image, and (kind linux) its initramfs.
struct Built {
    image: Vec<u8>,
    initrd: Option<Vec<u8>>,
}

/// Whether the workspace has a package named `name`.
fn crate_exists(root: &Path, name: &str) -> bool {
    cargo()
        .current_dir(root)
        .args(["pkgid", "--quiet", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The cargo package, binary and features that build a bare guest image.
fn guest_crate(image: GuestImage) -> Option<(&'static str, &'static str, &'static [&'static str])> {
    match image {
        GuestImage::Rtos => Some(("rtos-guest", "rtos", &[])),
        GuestImage::RtosSelftest => Some(("rtos-guest", "rtos", &["selftest"])),
        GuestImage::TestProbe => Some(("test-guests", "probe", &[])),
        GuestImage::TestHostile => Some(("test-guests", "hostile", &[])),
        GuestImage::TestVhostile => Some(("test-guests", "vhostile", &[])),
        GuestImage::TestConsoleCost => Some(("test-guests", "consolecost", &[])),
        GuestImage::TestPingpong => Some(("test-guests", "pingpong", &[])),
        GuestImage::TestChaos => Some(("test-guests", "chaos", &[])),
        GuestImage::TestIsolation => Some(("test-guests", "isolation", &[])),
        GuestImage::Linux | GuestImage::DebianLinux => None,
    }
}

/// The guest crate `image` needs, if the workspace lacks it.
fn missing_crate(root: &Path, image: &Image) -> Option<&'static str> {
    match image {
        Image::Built(image) => guest_crate(*image)
            .map(|(krate, _, _)| krate)
            .filter(|krate| !crate_exists(root, krate)),
        Image::File(_) => None,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds (or, for a file image, reads and checks) one VM's guest.
fn vm_guest(root: &Path, file: &str, vm: &vms::Vm) -> Result<Built, String> {
    match &vm.image {
        Image::Built(image) => {
            build_guest_image(root, *image).map_err(|e| format!("{}: {e}", vm.at(file)))
        }
        Image::File(f) => {
            let (image, initrd) = vms::read_image_file(file, vm, f)?;
            Ok(Built { image, initrd })
        }
    }
}

fn build_guest_image(root: &Path, image: GuestImage) -> Result<Built, String> {
    if let Some((krate, bin, features)) = guest_crate(image) {
        if !crate_exists(root, krate) {
            return Err(format!(
                "image \"{}\": test guest crate not found (no workspace package `{krate}`)",
                image.name()
            ));
        }
        let path = image::build_guest(root, krate, bin, features)?;
        return Ok(Built {
            image: read(&path)?,
            initrd: None,
        });
    }
    setup::ensure(&[Need::LinuxBuild])?;
    let artifacts = linux::build(root)
        .map_err(|e| format!("image \"linux\": the Linux guest build failed: {e}"))?;
    let kernel = if image == GuestImage::DebianLinux {
        let kernel = linux::debian::kernel()
            .map_err(|e| format!("image \"debian-linux\": Debian's kernel: {e}"))?;
        // Beside the guest images, for booting them natively (tests/tests/transparent.rs).
        let guests = root.join("target").join("tandem").join("guests");
        std::fs::create_dir_all(&guests).map_err(|e| format!("{}: {e}", guests.display()))?;
        for (from, name) in [
            (&kernel, "debian-linux.Image"),
            (&artifacts.initramfs, "linux-initramfs.cpio.gz"),
        ] {
            std::fs::copy(from, guests.join(name))
                .map_err(|e| format!("copying {} to {}: {e}", from.display(), guests.display()))?;
        }
        kernel
    } else {
        artifacts.image
    };
    Ok(Built {
        image: read(&kernel)?,
        initrd: Some(read(&artifacts.initramfs)?),
    })
}

/// Places one VM's pieces, builds its device tree and describes it for the package.
/// VM `index` of `selection`'s ends of channels, as its device tree shows them.
fn channel_nodes(selection: &Selection, index: usize) -> Vec<ChannelNode> {
    selection
        .channels
        .iter()
        .filter_map(|p| {
            let end = p.vms.iter().position(|&v| v == index)?;
            let role = match (p.channel.virtio, p.window, end) {
                (Some(_), Some(window), 0) => ChannelRole::Front { window },
                (Some(kind), _, _) => ChannelRole::Back {
                    device: kind.device_id(),
                },
                (None, _, _) => ChannelRole::Plain,
            };
            Some(ChannelNode {
                id: p.id,
                name: p.channel.name.clone(),
                ipa: p.ipa,
                size: p.channel.size,
                intid: p.intids[end],
                peer: selection.vms[p.vms[1 - end]].name.clone(),
                role,
            })
        })
        .collect()
}

/// VM `index` of `selection`, built as `built`, described for the package (its device tree
/// compiled into `dt_dir`).
fn vm_spec(
    selection: &Selection,
    index: usize,
    board: &vms::Board,
    built: &Built,
    dt_dir: &Path,
    gic: u8,
) -> Result<VmSpec, String> {
    let (file, vm) = (selection.file.as_str(), &selection.vms[index]);
    let channels = &channel_nodes(selection, index);
    let pl011 = (vm.console == vms::Console::Pl011).then_some(board.uart);
    let layout = vms::plan(
        file,
        vm,
        &built.image,
        built.initrd.as_ref().map(|i| i.len() as u64),
    )?;
    let dt = GuestDt {
        name: &vm.name,
        ram_size: vm.ram_size(),
        vcpus: vm.pcpus.len(),
        bootargs: vm.bootargs.as_deref(),
        initrd: layout.initrd,
        devices: &vm.devices,
        watchdog_s: vm.watchdog_s,
        gic,
        channels,
        pl011,
        hostile: (vm.image == Image::Built(GuestImage::TestChaos)).then_some(selection.hostile),
    };
    let dtb = guest_dt::compile(&guest_dt::dts(&dt), &dt_dir.join(&vm.name))?;
    if dtb.len() as u64 > layout.dtb_max {
        return Err(format!(
            "{file}: vm \"{}\": the device tree is {} bytes; at most {} fit below the image",
            vm.name,
            dtb.len(),
            layout.dtb_max
        ));
    }
    let mut flags = 0;
    if vm.console_focus {
        flags |= FLAG_CONSOLE_FOCUS;
    }
    if vm.restart {
        flags |= FLAG_RESTART_ON_RESET;
    }
    if vm.restart_on_crash {
        flags |= FLAG_RESTART_ON_CRASH;
    }
    let mut blobs = vec![(built.image.clone(), layout.image_ipa), (dtb, RAM_IPA)];
    if let (Some(initrd), Some((start, _))) = (&built.initrd, layout.initrd) {
        blobs.push((initrd.clone(), start));
    }
    say(&format!(
        "vm {}: {} guest \"{}\", {} MiB, vCPUs on pCPUs {:?}, entry {:#x}{}",
        vm.name,
        vm.kind.name(),
        vm.image.name(),
        vm.memory_mib,
        vm.pcpus,
        layout.image_ipa,
        layout.initrd.map_or(String::new(), |(s, e)| format!(
            ", initramfs {s:#x}..{e:#x}"
        ))
    ));
    Ok(VmSpec {
        name: vm.name.clone(),
        ram_ipa: RAM_IPA,
        ram_size: vm.ram_size(),
        entry: layout.image_ipa,
        x0: RAM_IPA,
        // Validated against --smp (≤ 8) by `Config::select`.
        pcpus: vm.pcpus.iter().map(|&p| p as u8).collect(),
        flags,
        console_intid: pl011.map_or(CONSOLE_INTID, |(_, intid)| intid),
        blobs,
        devices: vm
            .devices
            .iter()
            .map(|d| Device {
                base: d.base,
                size: d.size,
                intid: d.irq.unwrap_or(0),
                flags: if d.edge { DEVICE_EDGE } else { 0 },
            })
            .collect(),
        priority: vm.priority,
        budget: vm.budget,
        pl011: pl011.map(|(base, _)| base),
    })
}

/// `[__image_start, __image_end)` of the hypervisor ELF.
fn image_span(elf: &Path) -> Result<(u64, u64), String> {
    let data = read(elf)?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let symbol = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .ok_or_else(|| format!("{}: no symbol {name}", elf.display()))
    };
    Ok((symbol("__image_start")?, symbol("__image_end")?))
}

/// Appends `package` to the raw hypervisor image `hyp`, whose in-memory span is
/// `mem_size` bytes: pads to `mem_size` rounded up to 4 KiB, appends, pads the
/// file to 4 KiB and sets the header's `image_size` to the file's length.
pub fn pack(hyp: &[u8], mem_size: u64, package: &[u8]) -> Result<Vec<u8>, String> {
    if vms::arm64_header(hyp).is_none() {
        return Err("the hypervisor image has no arm64 Image header".into());
    }
    let at = mem_size.next_multiple_of(PAGE);
    if hyp.len() as u64 > at {
        return Err(format!(
            "the hypervisor's raw image ({} bytes) is longer than its span ({mem_size} bytes)",
            hyp.len()
        ));
    }
    let mut out = hyp.to_vec();
    out.resize(at as usize, 0);
    out.extend_from_slice(package);
    let total = (out.len() as u64).next_multiple_of(PAGE);
    out.resize(total as usize, 0);
    out[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&total.to_le_bytes());
    Ok(out)
}

/// Builds the guests of `selection` and writes the boot image; the hypervisor
/// (`tandem-novm.bin`, `tandem.elf`) must have been built already.
pub fn assemble(
    root: &Path,
    platform: &str,
    selection: &Selection,
    machine: Machine,
) -> Result<PathBuf, String> {
    let file = &selection.file;
    let out_dir = root.join("target").join("tandem").join(platform);
    let dt_dir = out_dir.join("vms");
    std::fs::create_dir_all(&dt_dir).map_err(|e| format!("{}: {e}", dt_dir.display()))?;

    let mut built: HashMap<Image, Built> = HashMap::new();
    let mut specs = Vec::new();
    for (i, vm) in selection.vms.iter().enumerate() {
        if let Entry::Vacant(slot) = built.entry(vm.image.clone()) {
            slot.insert(vm_guest(root, file, vm)?);
        }
        specs.push(vm_spec(
            selection,
            i,
            vms::Board::of(platform)?,
            &built[&vm.image],
            &dt_dir,
            machine.gic,
        )?);
    }
    for c in &selection.channels {
        say(&format!(
            "channel {}: \"{}\" between {} and {}, {} KiB at {:#x}{}",
            c.id,
            c.channel.name,
            selection.vms[c.vms[0]].name,
            selection.vms[c.vms[1]].name,
            c.channel.size >> 10,
            c.ipa,
            c.channel.virtio.map_or(String::new(), |v| format!(
                ", virtio-{} at {:#x}",
                v.name(),
                c.window.unwrap_or(0)
            ))
        ));
    }
    let descs: Vec<_> = selection.channels.iter().map(|c| c.desc()).collect();
    let package = encode_with_channels(&specs, &descs, machine.gic);
    // Self-check: the kernel's own decoder accepts what we wrote.
    let parsed = Package::parse(&package)
        .map_err(|e| format!("internal error: the package does not decode: {e}"))?;
    if parsed.vm_count() != specs.len() {
        return Err("internal error: the package decodes to the wrong number of VMs".into());
    }

    let guest_ram: u64 = selection.vms.iter().map(|v| v.ram_size()).sum();
    let need = guest_ram + TANDEM_RESERVE + package.len() as u64;
    if need > machine.ram {
        return Err(format!(
            "{file}: the selected VMs need {} MiB of RAM + {} MiB for Tandem + {} MiB for the guest package = {} MiB, but the machine has {} MiB (--memory)",
            guest_ram >> 20,
            TANDEM_RESERVE >> 20,
            (package.len() as u64).div_ceil(1 << 20),
            need.div_ceil(1 << 20),
            machine.ram >> 20
        ));
    }

    let (start, end) = image_span(&out_dir.join("tandem.elf"))?;
    let hyp = read(&out_dir.join(image::NOVM_IMAGE))?;
    let image = pack(&hyp, end - start, &package)?;
    let out = out_dir.join(machine.image_file(platform, &selection.image_name()));
    std::fs::write(&out, &image).map_err(|e| format!("{}: {e}", out.display()))?;
    say(&format!(
        "{} ({} bytes: hypervisor, then {} VM(s) in a {}-byte package at +{:#x})",
        out.display(),
        image.len(),
        specs.len(),
        package.len(),
        (end - start).next_multiple_of(PAGE)
    ));
    Ok(out)
}

/// Which VMs a build boots.
#[derive(Clone, Copy, Debug)]
pub enum Vms<'a> {
    /// The hypervisor alone (`tandem-novm.bin`).
    None,
    /// The `default = true` set (`tandem.bin`).
    Default,
    /// These, in this order.
    Named(&'a [String]),
    /// The VMs of a layout of `vms.toml`, placed as it says.
    Layout(&'a str),
}

/// Checks the configuration, builds the hypervisor and the selected guests, and
/// writes the boot image; returns its path. `guest` (`--guest`) is booted after the
/// selected VMs; its paths are relative to the current directory. `hostile`
/// (`--with-hostile`) adds the seeded hostile guest last.
pub fn build(
    root: &Path,
    platform: &str,
    release: bool,
    vms: Vms<'_>,
    guest: Option<&GuestArg>,
    hostile: Option<HostileRun>,
    machine: Machine,
) -> Result<PathBuf, String> {
    let mut selection = match vms {
        Vms::None => None,
        Vms::Default => Some(Config::load(root, platform)?.select(None, machine)?),
        Vms::Named(names) => Some(Config::load(root, platform)?.select(Some(names), machine)?),
        Vms::Layout(name) => Some(Config::load(root, platform)?.select_layout(name, machine)?),
    };
    if let Some(guest) = guest {
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        let vm = guest.to_vm(vms::Board::of(platform)?, &cwd, machine)?;
        let base = selection
            .take()
            .unwrap_or_else(|| Selection::none(&format!("platforms/{platform}/vms.toml")));
        selection = Some(base.with_guest(vm, machine)?);
    }
    if let Some(run) = hostile {
        let config = Config::load(root, platform)?;
        let base = selection
            .take()
            .unwrap_or_else(|| Selection::none(&config.file));
        selection = Some(base.with_hostile(&config, run, machine)?);
    }
    match selection {
        Some(selection) => build_selection(root, platform, release, &selection, machine),
        None => image::build_hypervisor(root, platform, release),
    }
}

/// Builds the hypervisor and the guests of `selection`, and writes the boot image; returns
/// its path.
pub fn build_selection(
    root: &Path,
    platform: &str,
    release: bool,
    selection: &Selection,
    machine: Machine,
) -> Result<PathBuf, String> {
    // Configuration errors, the image files' included, come before any compiling.
    vms::check_image_files(selection)?;
    image::build_hypervisor(root, platform, release)?;
    for note in &selection.notes {
        say(&format!("note: {note}"));
    }
    setup::ensure(&[Need::Dtc])?;
    assemble(root, platform, selection, machine)
}

/// Builds the boot images the QEMU system tests boot, in `target/tandem/qemu-virt/`:
/// `tandem-novm.bin`, and, when their guest crates exist, `tandem-rtos-selftest.bin`,
/// `tandem-probe.bin`, `tandem-hostile-rtos.bin` and `tandem-probe-shared-rtos-shared.bin` (a
/// missing crate is a printed note), `tandem.bin` (the default set, Linux beside the RTOS),
/// `tandem-linux-rtos-vhostile.bin` (a hostile virtio front-end beside them), the layouts
/// `tandem-layout-{single-core,shared,consolidated}.bin` and the same with Linux stressed
/// from boot (`tandem-layout-single-core-stress2.bin`, `…-shared-stress4.bin`,
/// `…-consolidated-stress2.bin`),
/// `tandem-ping-pong.bin` (doorbell round trips), `tandem-switch-a-switch-b.bin` (the vCPU
/// switch between two VMs on one pCPU), `tandem-hostile-seed7.bin` (the default set
/// and the seeded hostile guest, as `run --with-hostile --seed 7` boots it), `tandem-iso-a-iso-b.bin` (isolation canaries),
/// and the pv-abi examples as `run --guest` boots them: beside the RTOS
/// (`tandem-rtos-guest-hello-rust.bin`, `tandem-rtos-guest-hello-c.bin`) and beside the
/// default set (`tandem-guest-hello-rust.bin`); and for a GICv2 machine
/// `tandem-rtos-selftest-gic2.bin`, `tandem-probe-gic2.bin`, `tandem-hostile-rtos-gic2.bin`,
/// `tandem-rtos-gic2.bin` and `tandem-gic2.bin` (the default set); and in
/// `target/tandem/rpi4/` the rpi4 default set `tandem.bin` and `bcm2711-rpi-4-b.dtb`; and the
/// transparent guests' `tandem-linux-rtos-native.bin`, `tandem-debian-rtos.bin`,
/// `tandem-cost-pv.bin`, `tandem-cost-uart.bin` and `tandem-debian-rtos-native-gic2.bin`.
pub fn build_test_images(root: &Path) -> Result<(), String> {
    const PLATFORM: &str = "qemu-virt";
    const GIC2_SETS: [&[&str]; 5] = [
        &["rtos-selftest"],
        &["probe"],
        &["hostile", "rtos"],
        &["rtos"],
        // Both unmodified guests on the virtual PL011 (tests/tests/transparent.rs).
        &["debian", "rtos-native"],
    ];
    const SETS: [&[&str]; 13] = [
        &["rtos-selftest"],
        &["probe"],
        &["hostile", "rtos"],
        &["probe-shared", "rtos-shared"],
        &["rtos"],
        // Transparent guests (tests/tests/transparent.rs).
        &["linux", "rtos-native"],
        &["debian", "rtos"],
        &["cost-pv"],
        &["cost-uart"],
        // Linux and a hostile virtio front-end, both served by the modem.
        &["linux", "rtos", "vhostile"],
        // Two VMs ringing each other's doorbell: the VM-to-VM figure.
        &["ping", "pong"],
        // Two VMs on one pCPU: the vCPU switch figures.
        &["switch-a", "switch-b"],
        // Two isolation guests time-sharing a pCPU (tests/tests/isolation.rs).
        &["iso-a", "iso-b"],
    ];
    let config = Config::load(root, PLATFORM)?;
    let machine = Machine::DEFAULT;
    let mut selections = Vec::new();
    for set in SETS {
        let names: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let selection = config.select(Some(&names), machine)?;
        let missing: Vec<&str> = selection
            .vms
            .iter()
            .filter_map(|vm| missing_crate(root, &vm.image))
            .collect();
        if let Some(krate) = missing.first() {
            say(&format!(
                "note: not building {}: test guest crate not found (no workspace package `{krate}`)",
                selection.image_name()
            ));
        } else {
            selections.push(selection);
        }
    }
    // The default set (Linux beside the RTOS) and the shared-CPU layouts for
    // the Linux system tests.
    selections.push(config.select(None, machine)?);
    // The default set and the seeded hostile guest (tests/tests/hostile_at_scale.rs), the
    // whole run of `cargo xtask run --with-hostile --seed 7`.
    let hostile = HostileRun {
        seed: 7,
        ops: HostileRun::DEFAULT_OPS,
    };
    selections.push(
        config
            .select(None, machine)?
            .with_hostile(&config, hostile, machine)?,
    );
    for layout in ["single-core", "shared", "consolidated"] {
        selections.push(config.select_layout(layout, machine)?);
    }
    // The same with Linux running `tandem-stress ROUNDS` from boot (tests/tests/linux.rs).
    for (layout, rounds) in [("single-core", 2), ("shared", 4), ("consolidated", 2)] {
        let stress = crate::bench::stress_bootarg(rounds);
        selections.push(
            config
                .select_layout(layout, machine)?
                .with_bootarg(&stress)?,
        );
    }
    // The pv-abi examples, booted as `run --guest` boots them (tests/tests/examples.rs):
    // each beside the RTOS, and hello-rust beside Linux and the RTOS.
    for path in crate::examples::build_all(root)? {
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let guest = GuestArg::parse(&shown)?.to_vm(vms::Board::of(PLATFORM)?, root, machine)?;
        let rtos = config.select(Some(&["rtos".to_string()]), machine)?;
        selections.push(rtos.with_guest(guest.clone(), machine)?);
        if guest.name == "hello-rust" {
            selections.push(config.select(None, machine)?.with_guest(guest, machine)?);
        }
    }
    // The same guests on a GICv2 machine (`…-gic2.bin`).
    let gic2 = machine.with_gic(2);
    let mut gic2_selections = Vec::new();
    for set in GIC2_SETS {
        let names: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let selection = config.select(Some(&names), gic2)?;
        if selection
            .vms
            .iter()
            .all(|vm| missing_crate(root, &vm.image).is_none())
        {
            gic2_selections.push(selection);
        }
    }
    gic2_selections.push(config.select(None, gic2)?);
    for selection in selections.iter().chain(&gic2_selections) {
        vms::check_image_files(selection)?;
    }
    image::build_hypervisor(root, PLATFORM, true)?;
    setup::ensure(&[Need::Dtc, Need::LinuxBuild])?;
    for selection in &selections {
        assemble(root, PLATFORM, selection, machine)?;
    }
    for selection in &gic2_selections {
        assemble(root, PLATFORM, selection, gic2)?;
    }
    // The Raspberry Pi 4: its default set for QEMU raspi4b, and the board's device tree.
    let rpi4 = Config::load(root, "rpi4")?.select(None, Machine::RPI4)?;
    vms::check_image_files(&rpi4)?;
    image::build_hypervisor(root, "rpi4", true)?;
    let image = assemble(root, "rpi4", &rpi4, Machine::RPI4)?;
    crate::rpi4::dtb(root, image.parent().unwrap_or(root))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hyp(len: usize) -> Vec<u8> {
        let mut h = vec![0x11u8; len];
        h[16..24].copy_from_slice(&(len as u64).to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    }

    fn spec() -> VmSpec {
        VmSpec {
            name: "rtos".into(),
            ram_ipa: RAM_IPA,
            ram_size: 16 << 20,
            entry: 0x4008_0000,
            x0: RAM_IPA,
            pcpus: vec![2, 3],
            flags: 0,
            console_intid: CONSOLE_INTID,
            blobs: vec![
                (vec![0xaa; 100], 0x4008_0000),
                (vec![0xd0, 0x0d, 0xfe, 0xed], RAM_IPA),
            ],
            devices: vec![],
            priority: 0,
            budget: None,
            pl011: None,
        }
    }

    /// The package lands at the span rounded up to 4 KiB and image_size covers the file.
    #[test]
    fn pack_places_the_package() {
        let package = kernel::vm::package::encode_for_gic(&[spec()], 3);
        let out = pack(&hyp(5000), 0x1_2345, &package).unwrap();
        let at = 0x1_3000;
        assert!(out[24..5000] == hyp(5000)[24..], "the hypervisor is kept");
        assert!(out[5000..at].iter().all(|&b| b == 0), "zero padding");
        assert!(
            out[at..at + package.len()] == package[..],
            "the package follows"
        );
        assert_eq!(out.len() % 4096, 0);
        let image_size = u64::from_le_bytes(out[16..24].try_into().unwrap());
        assert_eq!(image_size, out.len() as u64);
        let pkg = Package::parse(&out[at..]).unwrap();
        assert_eq!(pkg.vm(0).unwrap().name(), "rtos");
    }

    /// Guest crates are found by package name; a missing one is reported, not built.
    #[test]
    fn finds_guest_crates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(crate_exists(&root, "rtos-guest"));
        assert!(!crate_exists(&root, "no-such-guest-crate"));
        assert_eq!(missing_crate(&root, &Image::Built(GuestImage::Rtos)), None);
        assert_eq!(missing_crate(&root, &Image::Built(GuestImage::Linux)), None);
    }

    #[test]
    fn pack_rejects_bad_input() {
        assert!(pack(&vec![0; 4096], 4096, &[]).is_err(), "no header");
        assert!(
            pack(&hyp(8192), 4096, &[]).is_err(),
            "raw image longer than its span"
        );
    }
}
