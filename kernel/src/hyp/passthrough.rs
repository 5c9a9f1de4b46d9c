//! Device and interrupt passthrough: physical MMIO windows and SPIs that a VM owns.
//!
//! A VM's package record lists its devices (`vm::package::Device`: base, size,
//! physical INTID, trigger). At VM creation [`attach`] maps each window at the
//! same IPA in the VM's stage 2 (Device-nGnRE, read/write, execute-never) and
//! routes the physical SPI to the physical CPU of the VM's vCPU 0, enabled
//! with the trigger the package gives.
//!
//! Forwarding keeps level-sensitive interrupts correct the hardware way
//! (Arm IHI 0069, "Virtual interrupts linked to physical interrupts"): when
//! the SPI fires, [`handle_spi`] only drops the running priority (Tandem runs
//! with EOImode = 1) and leaves the physical interrupt *active*, so it cannot
//! fire again; `Vgic::inject_hw` makes the same INTID pending in the VM, and
//! flush writes its list register with HW = 1 and the physical INTID. When
//! the guest deactivates the virtual interrupt, the GIC deactivates the
//! physical one; if the device still asserts its line, it fires again. No
//! maintenance interrupt and no trap is on the path.
//!
//! If the guest makes such an interrupt idle without deactivating it (an
//! ICPENDR or ICACTIVER write), the vGIC reports the physical INTID as
//! released and [`settle`] (called after every exit's LR sync) deactivates it
//! through the distributor. A VM reset deactivates all of its SPIs
//! ([`reset`]), since the fresh vGIC no longer holds them.
//!
//! Interrupts no VM owns are Tandem's: its UART, its timers and SGIs are
//! handled in `hyp::handle_irqs`; any other SPI that fires is logged at debug
//! level and disabled, so a stray line can never storm.

use core::sync::atomic::{AtomicU32, Ordering};

use log::{debug, info};

use super::vm::{PCPU_MPIDR, VM_SPIS, VMS, Vm};
use crate::aarch64::pte::{MemType, Perms, stage2_attrs};
use crate::arch::aarch64::gic;
use crate::drivers::gicv3::GicV3;
use crate::mm::frames::HeapTables;
use crate::mm::pagetable::PageTable;
use crate::platform::BOARD;
use crate::vgic::VgicLayout;
use crate::vm::package::VmDesc;

/// First SPI.
const SPI_FIRST: u32 = 32;
/// Last SPI (1020..=1023 are special INTIDs).
const SPI_LAST: u32 = 1019;

/// The id of the VM owning each physical SPI (index INTID − 32), 0 for none.
static OWNER: [AtomicU32; (SPI_LAST - SPI_FIRST + 1) as usize] =
    [const { AtomicU32::new(0) }; (SPI_LAST - SPI_FIRST + 1) as usize];

fn owner_slot(intid: u32) -> Option<&'static AtomicU32> {
    OWNER.get(usize::try_from(intid.checked_sub(SPI_FIRST)?).ok()?)
}

/// Maps VM `id`'s devices (`desc`) into its stage 2 `s2` and routes their SPIs
/// to the physical CPU of vCPU 0. Refuses a window outside the board's MMIO,
/// over the vGIC's frames, the physical GIC or Tandem's UART, and an SPI the
/// VM's vGIC cannot carry or another VM owns.
pub fn attach(
    id: u32,
    desc: &VmDesc,
    s2: &mut PageTable,
    tables: &mut HeapTables,
) -> Result<(), &'static str> {
    if desc.devices().is_empty() {
        return Ok(());
    }
    let gic = GicV3::get().ok_or("no GIC to route device interrupts")?;
    let layout = VgicLayout::QEMU_VIRT;
    let redist_size = VgicLayout::REDIST_STRIDE * u64::from(desc.vcpus);
    for dev in desc.devices() {
        let in_mmio = BOARD
            .mmio_windows
            .iter()
            .any(|w| dev.base >= w.base && dev.end() <= w.base + w.size);
        if !in_mmio {
            return Err("a device window lies outside the board's MMIO windows");
        }
        if dev.overlaps(layout.dist_base, VgicLayout::DIST_SIZE)
            || dev.overlaps(layout.redist_base, redist_size)
            || gic.overlaps(dev.base, dev.size)
        {
            return Err("a device window overlaps the GIC");
        }
        if dev.overlaps(BOARD.early_uart, 0x1000) {
            return Err("a device window overlaps Tandem's UART");
        }
        if dev.intid != 0 {
            if dev.intid >= SPI_FIRST + VM_SPIS || dev.intid == desc.console_intid {
                return Err("a device interrupt is beyond the VM's virtual GIC or its console's");
            }
            let slot = owner_slot(dev.intid).ok_or("a device interrupt is not an SPI")?;
            if slot.load(Ordering::Acquire) != 0 {
                return Err("a device interrupt belongs to another VM");
            }
        }
    }
    let pcpu = usize::from(desc.pcpus[0]);
    let mpidr = PCPU_MPIDR
        .get(pcpu)
        .map_or(u64::MAX, |m| m.load(Ordering::Acquire));
    if mpidr == u64::MAX {
        return Err("vCPU 0's physical CPU is not online");
    }
    for dev in desc.devices() {
        s2.map(
            tables,
            dev.base,
            dev.base,
            dev.size,
            stage2_attrs(Perms::RW, MemType::Device),
        )
        .map_err(|_| "cannot map a device window at stage 2")?;
    }
    for dev in desc.devices() {
        if let Some(slot) = owner_slot(dev.intid) {
            slot.store(id, Ordering::Release);
            gic.enable_spi(dev.intid, mpidr, dev.edge());
        }
        let trigger = if dev.edge() { "edge" } else { "level" };
        if dev.intid == 0 {
            info!(
                "VM {id} '{}': device {:#x}..{:#x} passed through, no interrupt",
                desc.name(),
                dev.base,
                dev.end()
            );
        } else {
            info!(
                "VM {id} '{}': device {:#x}..{:#x} passed through, INTID {} ({trigger}) to pCPU {pcpu}",
                desc.name(),
                dev.base,
                dev.end(),
                dev.intid
            );
        }
    }
    Ok(())
}

/// Physical SPI `intid` was acknowledged on this CPU: forward it to its VM,
/// or disable it if no VM owns it. Ends the interrupt itself (the caller must
/// not EOI it again).
pub fn handle_spi(intid: u32) {
    let owner = owner_slot(intid).map_or(0, |s| s.load(Ordering::Acquire));
    let vm = VMS
        .get()
        .and_then(|vms| vms.iter().copied().find(|vm| owner != 0 && vm.id == owner));
    let Some(vm) = vm else {
        debug!("physical SPI {intid} belongs to no VM: disabled");
        if let Some(g) = GicV3::get() {
            g.disable_spi(intid);
        }
        gic::eoi(intid);
        return;
    };
    // Priority drop only: the physical interrupt stays active until the guest
    // deactivates the hardware-linked virtual one.
    gic::priority_drop(intid);
    let kick = vm.vgic.lock().inject_hw(intid, intid);
    vm.stats.virqs.fetch_add(1, Ordering::Relaxed);
    vm.kick(kick);
}

/// Deactivates the physical SPIs `vm`'s vGIC released (after an LR sync; see
/// the module documentation). Free for a VM without devices.
pub fn settle(vm: &Vm) {
    if vm.desc.device_count == 0 {
        return;
    }
    let Some(g) = GicV3::get() else { return };
    vm.vgic
        .lock()
        .take_released(|pintid| g.deactivate_spi(pintid));
}

/// After `vm`'s vGIC was replaced (VM reset): deactivate its SPIs, which the
/// old vGIC may have held active; a line still high fires again into the new one.
pub fn reset(vm: &Vm) {
    let Some(g) = GicV3::get() else { return };
    for dev in vm.desc.devices().iter().filter(|d| d.intid != 0) {
        g.deactivate_spi(dev.intid);
    }
}
