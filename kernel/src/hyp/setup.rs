//! Target glue: builds the VMs of the boot package (RAM, stage 2,
//! passthrough), publishes the one [`Hypervisor`], and gives each physical
//! CPU its loop over [`Aarch64`].

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use log::{info, warn};

use super::passthrough::{self, Forbidden, SpiOwners};
use super::pcpu::{Pcpu, Vcpu};
use super::vm::Vm;
use super::{Hypervisor, MAX_PCPUS};
use crate::aarch64::pte::{MemType, Perms, stage2_attrs};
use crate::arch::aarch64::gic::V3Interface;
use crate::arch::aarch64::gic_v2::V2Interface;
use crate::arch::aarch64::hw::Aarch64;
use crate::arch::aarch64::{console, cpu, psci, vcpu as hwv};
use crate::arch::{Gic, Hw};
use crate::drivers::gicv2::GicV2;
use crate::drivers::gicv3::GicV3;
use crate::mm::frames::{self, HeapTables};
use crate::mm::pagetable::PageTable;
use crate::platform::BOARD;
use crate::platform::fdt::{GicVersion, MachineFacts, PsciConduit};
use crate::sync::Lock;
use crate::vgic::VgicLayout;
use crate::vm::package::{ChannelDesc, Package};

static HV: spin::Once<Hypervisor> = spin::Once::new();
static PSCI_CONDUIT: Lock<Option<PsciConduit>> = Lock::new(None);
static UART_INTID: AtomicU32 = AtomicU32::new(0);
/// MPIDR of each physical CPU by index, as CPUs come online (before the hypervisor exists).
static ONLINE_MPIDR: [AtomicU64; MAX_PCPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_PCPUS];
/// vCPUs waiting to be handed to their physical CPU's loop, by CPU index.
static HANDOFF: [Lock<Vec<Vcpu>>; MAX_PCPUS] = [const { Lock::new(Vec::new()) }; MAX_PCPUS];

/// Per-CPU EL2 setup, after this CPU's GIC interface is up; every CPU
/// calls it once before [`run`].
pub fn init_cpu(uart_intid: Option<u32>) {
    let me = cpu::index();
    ONLINE_MPIDR[me % MAX_PCPUS].store(cpu::mpidr() & 0xff_00ff_ffff, Ordering::Release);
    // VTCR_EL2: 32-bit IPA from level 1, 4 KiB granule, inner-shareable write-back walks,
    // PS = 40 bits or what the CPU supports if less.
    let parange = hwv::read_id_register(7, 0) & 0xf;
    let vtcr =
        (1 << 31) | (parange.min(2) << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 32;
    hwv::init_cpu(vtcr);
    if me == 0
        && let Some(i) = uart_intid
    {
        UART_INTID.store(i, Ordering::Relaxed);
    }
}

/// Powers the machine off through firmware.
///
/// Drains the console first: the lines just logged ("VM n '…' stopped: …", "powering off")
/// are still in its ring, and SYSTEM_OFF would cut them short.
pub fn power_off() -> ! {
    let conduit = *PSCI_CONDUIT.lock();
    console::flush_then(|| {
        if let Some(c) = conduit {
            psci::call(c, pv_abi::psci::SYSTEM_OFF, 0, 0, 0);
        }
    });
    cpu::park()
}

/// The machine's GIC version as a number.
fn version_number(v: GicVersion) -> u8 {
    match v {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
    }
}

/// Creates every VM of the package (boot CPU, after the other CPUs are
/// online), then runs this CPU's loop.
pub fn create_vms_and_run(pkg: Option<Package<'static>>, online: usize, facts: &MachineFacts) -> ! {
    match facts.gic.version {
        GicVersion::V3 => {
            create_vms(pkg, online, facts, &mut Aarch64::this_cpu(V3Interface));
        }
        GicVersion::V2 => {
            if let Some(i) = V2Interface::this_cpu() {
                create_vms(pkg, online, facts, &mut Aarch64::this_cpu(i));
            }
        }
    }
    run(facts.gic.version)
}

/// Creates every VM of the package.
fn create_vms(
    pkg: Option<Package<'static>>,
    online: usize,
    facts: &MachineFacts,
    hw: &mut impl Hw,
) {
    *PSCI_CONDUIT.lock() = facts.psci;
    if let Some(c) = facts.psci {
        let needed = psci::probe_bp_hardening(c);
        info!(
            "branch predictor between VMs: {}",
            if needed {
                "invalidated by firmware (SMCCC_ARCH_WORKAROUND_1) at each switch"
            } else {
                "no firmware call needed or offered"
            }
        );
    }
    let spis = SpiOwners::default();
    let mut vms = Vec::new();
    let machine_gic = version_number(facts.gic.version);
    let pkg = pkg.filter(|p| {
        let ok = p.gic_version() == machine_gic;
        if !ok {
            warn!(
                "the guest package was built for a GICv{0} (cargo xtask --gic {0}), but this machine has a GICv{machine_gic}: no VMs will run",
                p.gic_version()
            );
        }
        ok
    });
    let mut channels = Vec::new();
    if let Some(pkg) = pkg {
        let shared = allocate_channels(pkg, hw);
        // Package index → index in `vms`, for the VMs that could be built.
        let mut built = [None; crate::vm::package::MAX_VMS];
        for i in 0..pkg.vm_count() {
            let started = hw.now();
            match build_vm(pkg, i, vms.len(), online, &spis, &shared, hw) {
                Ok(vm) => {
                    built[i] = Some(vms.len());
                    info!(
                        "VM {} '{}': {} MiB at {:#x}, {} vCPU(s) on pCPU {:?}, RAM ready in {} us",
                        vm.id,
                        vm.name(),
                        vm.desc.ram_size >> 20,
                        vm.ram_pa,
                        vm.desc.vcpus,
                        &vm.desc.pcpus[..vm.desc.vcpus as usize],
                        crate::sched::ticks_to_ns(hw.now() - started, hwv::counter_frequency())
                            / 1000
                    );
                    vms.push(vm);
                }
                Err(e) => warn!("VM #{i} not started: {e}"),
            }
        }
        for (mut desc, pa) in shared.into_iter().flatten() {
            let ends = desc.vms.map(|v| built[usize::from(v)]);
            let [Some(a), Some(b)] = ends else {
                warn!(
                    "channel '{}': one of its VMs did not start; dropped",
                    desc.name()
                );
                continue;
            };
            desc.vms = [a as u8, b as u8];
            info!(
                "channel {} '{}': {} KiB at IPA {:#x} between '{}' and '{}'{}",
                channels.len(),
                desc.name(),
                desc.size >> 10,
                desc.ipa,
                vms[a].name(),
                vms[b].name(),
                if desc.is_virtio() { " (virtio)" } else { "" }
            );
            channels.push(crate::channel::Channel::new(desc, pa));
        }
    }
    if vms.is_empty() {
        info!("no VMs to run: Tandem idles (leave QEMU with Ctrl-A X)");
    }
    let hz = hwv::counter_frequency();
    let mut hv = Hypervisor::new(vms, spis, hz);
    hv.channels = channels;
    hv.color = facts.bootarg("tandem.color") == Some("on");
    hv.uart_intid = UART_INTID.load(Ordering::Relaxed);
    hv.console_cpu = crate::sched::console_cpu(
        online,
        hv.vms
            .iter()
            .flat_map(|vm| vm.vcpus.iter().map(|v| (v.pcpu, vm.desc.priority))),
    );
    // Only where VMs run on several pCPUs at once: a lone VM's measurements,
    // and VMs sharing one pCPU, stay undisturbed.
    let pcpus_used = hv
        .vms
        .iter()
        .flat_map(|vm| vm.vcpus.iter().map(|v| v.pcpu))
        .fold(0u32, |m, p| m | 1 << p);
    // The board's, or on an emulated board that has none (QEMU raspi4b runs the Pi's own
    // device tree) the one `tandem.emulator_tick_us` asks for.
    let tick_ns = BOARD.emulator_tick_ns.or_else(|| {
        let arg = facts.bootarg("tandem.emulator_tick_us")?;
        match arg.parse::<u64>() {
            Ok(us) if (1..=1_000_000).contains(&us) => Some(us * 1000),
            _ => {
                warn!("tandem.emulator_tick_us={arg}: not 1..=1000000 microseconds: no tick");
                None
            }
        }
    });
    hv.emulator_tick = tick_ns
        .filter(|_| hv.vms.len() > 1 && pcpus_used.count_ones() > 1)
        .map(|ns| crate::sched::ns_to_ticks(ns, hz));
    for (p, m) in hv.pcpus.iter().zip(&ONLINE_MPIDR) {
        p.mpidr.store(m.load(Ordering::Acquire), Ordering::Release);
    }
    for vm in &hv.vms {
        let started = hw.now();
        hv.load_images(vm, hw);
        info!(
            "VM {} '{}': images loaded in {} us",
            vm.id,
            vm.name(),
            crate::sched::ticks_to_ns(hw.now() - started, hz) / 1000
        );
        for i in 0..vm.vcpus.len() {
            HANDOFF[vm.vcpus[i].pcpu]
                .lock()
                .push(Vcpu::new(vm.index, i));
        }
    }
    let hv = HV.call_once(|| hv);
    super::console::announce(hv);
    cpu::send_event();
}

/// Each channel of the package with its shared region's physical address
/// (zeroed), or `None` where memory ran out.
fn allocate_channels(pkg: Package<'static>, hw: &mut impl Hw) -> Vec<Option<(ChannelDesc, u64)>> {
    (0..pkg.channel_count())
        .map(|i| {
            let desc = pkg.channel(i).ok()?;
            let Some(pa) = frames::alloc_frames(desc.size as usize, 4096) else {
                warn!(
                    "channel '{}': not enough memory for its region; dropped",
                    desc.name()
                );
                return None;
            };
            hw.clear(pa, desc.size);
            Some((desc, pa))
        })
        .collect()
}

/// Builds VM `pkg_index` of the package as the `index`th VM: RAM, stage 2,
/// devices, and the shared regions of its channels.
#[allow(clippy::too_many_arguments)]
fn build_vm(
    pkg: Package<'static>,
    pkg_index: usize,
    index: usize,
    online_cpus: usize,
    spis: &SpiOwners,
    channels: &[Option<(ChannelDesc, u64)>],
    hw: &mut impl Hw,
) -> Result<Vm, &'static str> {
    let desc = pkg.vm(pkg_index).map_err(|_| "invalid VM record")?;
    for (i, &p) in desc.pcpus[..desc.vcpus as usize].iter().enumerate() {
        if usize::from(p) >= online_cpus {
            warn!(
                "VM '{}': vCPU {i} wants physical CPU {p}, but only {online_cpus} are online",
                desc.name()
            );
            return Err("a vCPU's physical CPU is not online");
        }
    }
    let gic_frames = match (GicV3::get(), GicV2::get()) {
        (Some(g), _) => {
            let [d, r] = g.frames();
            [d, r, (0, 0), (0, 0)]
        }
        (None, Some(g)) => g.frames(),
        (None, None) => [(0, 0); 4],
    };
    let vgic = VgicLayout::qemu_virt(pkg.gic_version());
    let forbidden = Forbidden {
        mmio: BOARD.mmio_windows,
        gic: &gic_frames,
        uart: (BOARD.early_uart, 0x1000),
        vgic,
    };
    passthrough::check(&desc, spis, &forbidden)?;
    let vcpu0_mpidr = ONLINE_MPIDR[usize::from(desc.pcpus[0]) % MAX_PCPUS].load(Ordering::Acquire);
    if !desc.devices().is_empty() && vcpu0_mpidr == u64::MAX {
        return Err("vCPU 0's physical CPU is not online");
    }
    let ram_pa = frames::alloc_frames(desc.ram_size as usize, 2 << 20)
        .ok_or("not enough memory for its RAM")?;
    let id = index as u32 + 1;
    let mut tables = HeapTables;
    let mut s2 = PageTable::new(&mut tables, 1, 32).map_err(|_| "no memory for stage-2 tables")?;
    s2.map(
        &mut tables,
        desc.ram_ipa,
        ram_pa,
        desc.ram_size,
        stage2_attrs(Perms::RWX, MemType::Normal),
    )
    .map_err(|_| "cannot map its RAM at stage 2")?;
    for dev in desc.devices() {
        s2.map(
            &mut tables,
            dev.base,
            dev.base,
            dev.size,
            stage2_attrs(Perms::RW, MemType::Device),
        )
        .map_err(|_| "cannot map a device window at stage 2")?;
    }
    // GICv2: the guest's CPU interface is the hardware GICV frame.
    if let (VgicLayout::V2 { cpu_base, .. }, Some(g)) = (vgic, GicV2::get()) {
        let (gicv, size) = g.vcpu_frame();
        if size < VgicLayout::GICV_SIZE {
            return Err("the GICV frame in the device tree is smaller than 8 KiB");
        }
        s2.map(
            &mut tables,
            cpu_base,
            gicv,
            VgicLayout::GICV_SIZE,
            stage2_attrs(Perms::RW, MemType::Device),
        )
        .map_err(|_| "cannot map the GICV frame at stage 2")?;
    }
    for (c, pa) in channels.iter().flatten() {
        if c.end_of(pkg_index).is_some() {
            s2.map(
                &mut tables,
                c.ipa,
                *pa,
                c.size,
                stage2_attrs(Perms::RW, MemType::Normal),
            )
            .map_err(|_| "cannot map a channel's shared region at stage 2")?;
        }
    }
    let vttbr = s2.root() | (u64::from(id) << 48);
    // No stale translations for this VMID may survive from firmware or a former owner.
    hw.flush_vm_tlb(vttbr);
    for dev in desc.devices() {
        if dev.intid != 0 && spis.claim(dev.intid, id) {
            hw.enable_spi(dev.intid, vcpu0_mpidr, dev.edge());
        }
        let pcpu = desc.pcpus[0];
        match dev.intid {
            0 => info!(
                "VM {id} '{}': device {:#x}..{:#x} passed through, no interrupt",
                desc.name(),
                dev.base,
                dev.end()
            ),
            intid => info!(
                "VM {id} '{}': device {:#x}..{:#x} passed through, INTID {intid} ({}) to pCPU {pcpu}",
                desc.name(),
                dev.base,
                dev.end(),
                if dev.edge() { "edge" } else { "level" }
            ),
        }
    }
    Ok(Vm::new(index, desc, pkg, ram_pa, vttbr, hw.now()))
}

/// This CPU's loop over the GIC of `version`: never returns.
pub fn run(version: GicVersion) -> ! {
    match version {
        GicVersion::V3 => run_on(Aarch64::this_cpu(V3Interface)),
        GicVersion::V2 => match V2Interface::this_cpu() {
            Some(i) => run_on(Aarch64::this_cpu(i)),
            None => cpu::park(),
        },
    }
}

fn run_on<G: Gic>(mut hw: Aarch64<G>) -> ! {
    while !HV.is_completed() {
        cpu::wait_for_event();
    }
    let Some(hv) = HV.get() else { cpu::park() };
    let me = cpu::index();
    let vcpus = core::mem::take(&mut *HANDOFF[me % MAX_PCPUS].lock());
    let lr_count = hw.lr_count();
    let mut p = Pcpu::new(me, vcpus, lr_count, hv);
    if me == hv.console_cpu && hv.uart_intid != 0 {
        // From here this CPU takes the UART interrupt: input, and transmission
        // that writers leave behind.
        hw.enable_spi(hv.uart_intid, cpu::mpidr(), false);
        console::enable_interrupts();
    }
    loop {
        p.step(hv, &mut hw);
    }
}
