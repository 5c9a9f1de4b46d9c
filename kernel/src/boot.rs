//! The boot sequence, from the first Rust instruction to secondary CPUs online.
//!
//! Boot CPU: console → device tree → EL2 MMU → heap → banner → secondaries.
//! Secondaries: MMU → report → wait for work.

use core::sync::atomic::{AtomicUsize, Ordering};

use log::{error, info, warn};

use crate::aarch64::esr::{ExceptionClass, Syndrome};
use crate::arch::aarch64::{console, cpu, crash, gic, mmu, psci};
use crate::drivers::gicv2::GicV2;
use crate::drivers::gicv3::GicV3;
use crate::fault::{TrapFrame, VectorKind, write_report};
use crate::hyp;
use crate::mm::el2map::Guard;
use crate::mm::{heap, ranges};
use crate::platform::fdt::{self, EnableMethod, GicVersion, MachineFacts, PsciConduit, Region};
use crate::platform::{BOARD, desc::Reserved};
use crate::vm::package::{self, Package, PackageError};

/// Hypervisor version string.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static CPUS_ONLINE: AtomicUsize = AtomicUsize::new(0);

/// Called from boot.S when the image was started below EL2.
#[unsafe(no_mangle)]
extern "C" fn rust_wrong_el(el: u64) -> ! {
    // SAFETY: the board's early UART is a PL011 and the MMU is off (device access).
    unsafe { console::init(BOARD.early_uart as usize) };
    console::write_fmt(format_args!(
        "\nTandem: FATAL: started at EL{el}, but a hypervisor needs EL2.\n\
         Tandem: on QEMU use -M virt,virtualization=on; on hardware, start it from firmware at EL2.\n\
         Tandem: halting.\n"
    ));
    // Without EL2 there is nothing to run; power off so a test harness sees the end at once.
    psci::call(PsciConduit::Hvc, pv_abi::psci::SYSTEM_OFF, 0, 0, 0);
    cpu::park()
}

/// First Rust code on the boot CPU: MMU off, BSS zeroed, on CPU 0's stack.
#[unsafe(no_mangle)]
extern "C" fn rust_primary_main(dtb: u64, cpu_index: u64) -> ! {
    cpu::set_index(cpu_index as usize);
    // SAFETY: the board's early UART is a PL011 and the MMU is off (device access).
    unsafe { console::init(BOARD.early_uart as usize) };
    console::init_logger();
    match primary(dtb) {
        Ok(()) => {}
        Err(e) => error!("boot failed: {e}"),
    }
    idle()
}

fn primary(dtb: u64) -> Result<(), &'static str> {
    let (facts, dtb_size) = read_device_tree(dtb)?;
    let image = mmu::layout();
    mmu::build(&BOARD, &facts).map_err(|_| "cannot build the EL2 page tables")?;
    mmu::enable();

    let package = find_package(&image);
    let package_region = package.map(|p| Region {
        base: p.bytes().as_ptr() as u64,
        size: p.bytes().len() as u64,
    });
    let usable = usable_ram(
        &facts,
        Region {
            base: dtb,
            size: dtb_size,
        },
        &image,
        package_region,
    );
    // SAFETY: `usable` is RAM that the DT, the board and the image layout leave free,
    // mapped read/write by the EL2 map just enabled; this is the only call.
    unsafe { heap::init(usable.as_slice()) };
    let (heap_bytes, _) = heap::usage();

    info!(
        "Tandem v{VERSION} on {} ({}): EL{}, {} CPUs, {} MiB RAM, GICv{}",
        BOARD.name,
        facts.model(),
        cpu::current_el(),
        facts.cpus.len(),
        facts.ram_bytes() >> 20,
        match facts.gic.version {
            GicVersion::V2 => 2,
            GicVersion::V3 => 3,
        }
    );
    report_facts(&facts, &image, heap_bytes, mmu::tables_used());
    let (map, wxn) = mmu::audit();
    if map.wx == 0 && map.guards_mapped == 0 && wxn {
        info!("  {map}; SCTLR_EL2.WXN on");
    } else {
        error!("  {map}; SCTLR_EL2.WXN {}", if wxn { "on" } else { "off" });
    }
    let gic_ready = init_gic(&facts);
    CPUS_ONLINE.fetch_add(1, Ordering::AcqRel);
    info!("cpu0 online, MPIDR {:#x}", cpu::mpidr());
    start_secondaries(&facts, image.max_cpus);
    if let Some(kind) = facts.bootarg("tandem.crash") {
        crash::trigger(kind);
    }
    let online = CPUS_ONLINE.load(Ordering::Acquire);
    if gic_ready {
        hyp::setup::create_vms_and_run(package, online, &facts);
    }
    Ok(())
}

/// The physical GIC, of the generation the device tree names.
enum PhysGic {
    V3(GicV3),
    V2(GicV2),
}

static GIC: spin::Once<PhysGic> = spin::Once::new();

impl PhysGic {
    /// The calling CPU's interface; false if the GIC has none for it.
    fn init_cpu(&self) -> bool {
        match self {
            PhysGic::V3(g) => {
                let ok = g.init_cpu(cpu::mpidr(), hyp::CPU_INTIDS);
                if ok {
                    gic::init_cpu_interface();
                }
                ok
            }
            PhysGic::V2(g) => g.init_cpu(cpu::mpidr(), hyp::CPU_INTIDS),
        }
    }

    fn version(&self) -> GicVersion {
        match self {
            PhysGic::V3(_) => GicVersion::V3,
            PhysGic::V2(_) => GicVersion::V2,
        }
    }
}

/// Sets up the physical GIC (distributor once, then this CPU). False when VMs cannot run.
fn init_gic(facts: &MachineFacts) -> bool {
    let g = &facts.gic;
    let gic = match (g.version, g.hyp, g.vcpu) {
        // SAFETY: the DT names these windows as the GICv3; the EL2 map covers them as device memory.
        (GicVersion::V3, _, _) => GIC.call_once(|| unsafe {
            PhysGic::V3(GicV3::new(
                g.dist.base as usize,
                g.cpu.base as usize,
                g.cpu.size as usize,
            ))
        }),
        // SAFETY: the DT names these windows as the GICv2's GICD, GICC, GICH and GICV;
        // the EL2 map covers them as device memory.
        (GicVersion::V2, Some(h), Some(v)) => GIC.call_once(|| unsafe {
            PhysGic::V2(GicV2::new(
                g.dist.base,
                g.cpu.base,
                h.base,
                [
                    (g.dist.base, g.dist.size),
                    (g.cpu.base, g.cpu.size),
                    (h.base, h.size),
                    (v.base, v.size),
                ],
            ))
        }),
        (GicVersion::V2, _, _) => {
            warn!(
                "the GICv2 in the device tree has no virtualization extensions (no GICH/GICV frames): no VMs will run"
            );
            return false;
        }
    };
    match gic {
        PhysGic::V3(g) => g.init_distributor(cpu::mpidr()),
        PhysGic::V2(g) => g.init_distributor(),
    }
    if !gic.init_cpu() {
        error!("the GIC has no CPU interface for MPIDR {:#x}", cpu::mpidr());
        return false;
    }
    let uart_intid = facts.uart.and_then(|u| u.intid);
    hyp::setup::init_cpu(uart_intid);
    if let Some(intid) = uart_intid {
        match gic {
            PhysGic::V3(g) => {
                g.set_spi_priority(intid, crate::drivers::gicv3::CONSOLE_PRIORITY);
                g.enable_spi(intid, cpu::mpidr(), false);
            }
            PhysGic::V2(g) => {
                g.set_spi_priority(intid, crate::drivers::gicv2::CONSOLE_PRIORITY);
                g.enable_spi(intid, cpu::mpidr(), false);
            }
        }
    }
    true
}

fn read_device_tree(dtb: u64) -> Result<(MachineFacts, u64), &'static str> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        error!(
            "no device tree: x0 = {dtb:#x} (boot with a raw Image so the loader passes the DTB)"
        );
        return Err("no device tree");
    }
    // The DT header gives its size; read it before building a slice over the blob.
    // SAFETY: the boot protocol puts a DTB at x0 in RAM; 8 bytes of header are readable.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
    let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !(40..=(2 << 20)).contains(&total) {
        error!("device tree at {dtb:#x}: implausible size {total} bytes");
        return Err("bad device tree");
    }
    // SAFETY: the blob is `total` bytes of RAM owned by Tandem until boot completes;
    // nothing else aliases it while the facts are read.
    let blob = unsafe { core::slice::from_raw_parts_mut(dtb as *mut u8, total) };
    let sanitized = fdt::sanitize(blob).and_then(|_| fdt::parse(blob));
    match sanitized {
        Ok(f) => Ok((f, total as u64)),
        Err(e) => {
            error!("device tree at {dtb:#x} rejected: {e}");
            Err("bad device tree")
        }
    }
}

/// The guest package xtask appended after the image, if there is one.
fn find_package(image: &mmu::ImageLayout) -> Option<Package<'static>> {
    let base = image.end.next_multiple_of(4096);
    // SAFETY: the 64 header bytes after the image are RAM the boot loader filled (or left
    // untouched); they are read before anything allocates there.
    let header = unsafe { core::slice::from_raw_parts(base as *const u8, package::HEADER_SIZE) };
    let size = match Package::peek_size(header) {
        Ok(size) if size <= 1 << 30 => size,
        Ok(size) => {
            error!("guest package claims {size} bytes: ignored");
            return None;
        }
        Err(PackageError::Missing) => return None,
        Err(e) => {
            error!("{e}");
            return None;
        }
    };
    // SAFETY: the package occupies `size` bytes from `base`; that region is excluded from the
    // heap below and never written, so a shared 'static slice over it stays valid.
    let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, size as usize) };
    match Package::parse(bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            error!("{e}: no VMs will run");
            None
        }
    }
}

fn usable_ram(
    facts: &MachineFacts,
    dtb: Region,
    image: &mmu::ImageLayout,
    package: Option<Region>,
) -> ranges::Ranges {
    let mut reserved: fdt::List<Region, 48> = fdt::List::default();
    if let Some(p) = package {
        reserved.push(p);
    }
    reserved.push(Region {
        base: image.start,
        size: image.end - image.start,
    });
    reserved.push(dtb);
    for r in facts.reserved.as_slice() {
        reserved.push(*r);
    }
    for Reserved { region, .. } in BOARD.reserved {
        reserved.push(*region);
    }
    ranges::subtract(facts.memory.as_slice(), reserved.as_slice(), 4096)
}

fn report_facts(facts: &MachineFacts, image: &mmu::ImageLayout, heap_bytes: usize, tables: usize) {
    for r in facts.memory.as_slice() {
        info!(
            "  memory   {:#010x}..{:#010x} ({} MiB)",
            r.base,
            r.end(),
            r.size >> 20
        );
    }
    info!(
        "  image    {:#010x}..{:#010x} ({} KiB incl. stacks), {} EL2 tables",
        image.start,
        image.end,
        (image.end - image.start) >> 10,
        tables
    );
    info!(
        "  heap     {} MiB free for Tandem and guests",
        heap_bytes >> 20
    );
    let g = &facts.gic;
    match g.version {
        GicVersion::V3 => info!(
            "  gic      v3: GICD {:#x}, GICR {:#x} (+{:#x})",
            g.dist.base, g.cpu.base, g.cpu.size
        ),
        GicVersion::V2 => info!(
            "  gic      v2: GICD {:#x}, GICC {:#x}, GICH {:#x}, GICV {:#x}",
            g.dist.base,
            g.cpu.base,
            g.hyp.map_or(0, |r| r.base),
            g.vcpu.map_or(0, |r| r.base)
        ),
    }
    if let Some(u) = facts.uart {
        info!(
            "  uart     pl011 at {:#x}, INTID {:?}",
            u.regs.base, u.intid
        );
    }
    info!(
        "  timer    INTIDs: EL1 phys {}, virt {}, EL2 phys {}; maintenance {:?}",
        facts.timer.phys_intid,
        facts.timer.virt_intid,
        facts.timer.hyp_intid,
        facts.gic.maintenance_intid
    );
    info!("  psci     {:?}", facts.psci);
}

fn start_secondaries(facts: &MachineFacts, max_cpus: usize) {
    let me = cpu::mpidr() & 0xff_00ff_ffff;
    let mut next_index = 1;
    for c in facts.cpus.as_slice() {
        if c.mpidr == me {
            continue;
        }
        if next_index >= max_cpus {
            warn!(
                "CPU with MPIDR {:#x} not started: this build has stacks for {max_cpus} CPUs",
                c.mpidr
            );
            continue;
        }
        match (c.enable, facts.psci) {
            (EnableMethod::Psci, Some(PsciConduit::Smc)) => {
                let entry = crate::arch::aarch64::secondary_entry as *const () as u64;
                let ret = psci::call(
                    PsciConduit::Smc,
                    pv_abi::psci::CPU_ON,
                    c.mpidr,
                    entry,
                    next_index as u64,
                );
                if ret != 0 {
                    warn!("PSCI CPU_ON for MPIDR {:#x} failed: {ret}", c.mpidr);
                    continue;
                }
            }
            (EnableMethod::Psci, Some(PsciConduit::Hvc)) => {
                warn!("PSCI method is hvc, which is unusable from EL2: secondary CPUs stay off");
                return;
            }
            (EnableMethod::Psci, None) => {
                warn!("CPUs use PSCI but the DT has no /psci node: secondary CPUs stay off");
                return;
            }
            (EnableMethod::SpinTable(release), _) => {
                if !crate::arch::aarch64::spin_table_release(release, next_index) {
                    warn!(
                        "MPIDR {:#x}: spin-table release address {release:#x} unusable: it stays off",
                        c.mpidr
                    );
                    continue;
                }
            }
        }
        next_index += 1;
    }
    // Wait (bounded) for the started CPUs to report in.
    let expected = next_index;
    let start = cpu::now_ns();
    while CPUS_ONLINE.load(Ordering::Acquire) < expected && cpu::now_ns() - start < 1_000_000_000 {
        core::hint::spin_loop();
    }
    let online = CPUS_ONLINE.load(Ordering::Acquire);
    if online == expected {
        info!("all {online} CPUs online");
    } else {
        warn!("{online} of {expected} CPUs online after 1 s");
    }
}

/// First Rust code on a secondary CPU (started by PSCI CPU_ON).
#[unsafe(no_mangle)]
extern "C" fn rust_secondary_main(cpu_index: u64) -> ! {
    cpu::set_index(cpu_index as usize);
    mmu::enable();
    let gic = GIC.get().filter(|g| g.init_cpu());
    if gic.is_some() {
        hyp::setup::init_cpu(None);
    }
    info!("cpu{cpu_index} online, MPIDR {:#x}", cpu::mpidr());
    CPUS_ONLINE.fetch_add(1, Ordering::AcqRel);
    if let Some(g) = gic {
        hyp::setup::run(g.version());
    }
    idle()
}

fn idle() -> ! {
    cpu::park()
}

/// Called by the vector stubs for exceptions Tandem cannot handle.
#[unsafe(no_mangle)]
extern "C" fn rust_el2_fault(kind: u64, frame: &TrapFrame) -> ! {
    struct Forced;
    impl core::fmt::Write for Forced {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            console::write_fmt_forced(format_args!("{s}"));
            Ok(())
        }
    }
    let cpu = cpu::index();
    // A data abort on a guard page: a stack ran out (SP_EL2 is now the emergency stack).
    let abort = Syndrome::new(frame.esr).class() == ExceptionClass::DataAbortSame;
    if let Some((owner, guard)) = mmu::layout().guard_at(frame.far).filter(|_| abort) {
        console::write_fmt_forced(format_args!(
            "\nEL2 stack overflow on CPU {cpu}: {:#x} is in the guard page below CPU {owner}'s {} stack (SP {:#x})\n",
            frame.far,
            match guard {
                Guard::Main => "main",
                Guard::Emergency => "emergency",
            },
            frame.sp
        ));
    }
    let mut report = heapless_report::Buffer::new();
    let _ = write_report(&mut report, cpu, VectorKind::from_index(kind), frame);
    let _ = core::fmt::Write::write_str(&mut Forced, report.as_str());
    let _ = core::fmt::Write::write_str(&mut Forced, "CPU parked.\n");
    cpu::park()
}

/// Reports a Rust panic with its location and message, then parks this CPU.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::write_fmt_forced(format_args!(
        "\nTandem PANIC on CPU {}: {}\nCPU parked.\n",
        cpu::index(),
        info
    ));
    cpu::park()
}

mod heapless_report {
    //! A fixed buffer so a fault report is written to the console in one piece.

    /// Up to 2 KiB of text.
    pub struct Buffer {
        bytes: [u8; 2048],
        len: usize,
    }

    impl Buffer {
        pub fn new() -> Self {
            Self {
                bytes: [0; 2048],
                len: 0,
            }
        }
        pub fn as_str(&self) -> &str {
            core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("<report not UTF-8>")
        }
    }

    impl core::fmt::Write for Buffer {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
}
