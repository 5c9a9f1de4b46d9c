//! Device and interrupt passthrough: physical MMIO windows and SPIs that a VM owns.
//!
//! A VM's package record lists its devices (`vm::package::Device`: base, size,
//! physical INTID, trigger). At VM creation [`check`] validates them, `setup`
//! maps each window at the same IPA in the VM's stage 2 (Device-nGnRE,
//! read/write, execute-never), and [`SpiOwners::claim`] records the VM as the
//! owner of the SPI, which is routed to the physical CPU of the VM's vCPU 0.
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
//! released and [`settle`] (called after the vGIC is emulated) deactivates
//! it through the distributor. A VM reset deactivates all of its SPIs
//! ([`reset`]), since the fresh vGIC no longer holds them.
//!
//! Interrupts no VM owns are Tandem's: its UART, its timers and SGIs are
//! handled in `irq`; any other SPI that fires is logged at debug level and
//! disabled, so a stray line can never storm.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU8, Ordering};

use log::debug;

use super::Hypervisor;
use super::vm::{VM_SPIS, Vm};
use crate::arch::Hw;
use crate::platform::fdt::Region;
use crate::vgic::VgicLayout;
use crate::vm::package::VmDesc;

/// First SPI.
const SPI_FIRST: u32 = 32;
/// Last SPI (1020..=1023 are special INTIDs).
const SPI_LAST: u32 = 1019;
const SPI_COUNT: usize = (SPI_LAST - SPI_FIRST + 1) as usize;

/// The VM owning each physical SPI.
pub struct SpiOwners {
    /// Owner VM id by INTID − 32; 0 for none.
    owner: [AtomicU8; SPI_COUNT],
}

impl Default for SpiOwners {
    fn default() -> Self {
        Self {
            owner: [const { AtomicU8::new(0) }; SPI_COUNT],
        }
    }
}

impl SpiOwners {
    fn slot(&self, intid: u32) -> Option<&AtomicU8> {
        self.owner
            .get(usize::try_from(intid.checked_sub(SPI_FIRST)?).ok()?)
    }

    /// The id of the VM owning SPI `intid`.
    pub fn owner(&self, intid: u32) -> Option<u32> {
        let id = self.slot(intid)?.load(Ordering::Acquire);
        (id != 0).then_some(u32::from(id))
    }

    /// Records VM `vm_id` as the owner of `intid`; false if it is not an SPI
    /// or someone else owns it.
    pub fn claim(&self, intid: u32, vm_id: u32) -> bool {
        let (Some(slot), Ok(id)) = (self.slot(intid), u8::try_from(vm_id)) else {
            return false;
        };
        slot.compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Physical regions a device window must stay clear of.
pub struct Forbidden<'a> {
    /// The board's MMIO windows (a device must lie inside one).
    pub mmio: &'a [Region],
    /// The physical GIC's frames.
    pub gic: &'a [(u64, u64)],
    /// Tandem's UART (base, size).
    pub uart: (u64, u64),
    /// The guest GIC's frames.
    pub vgic: VgicLayout,
}

/// Checks VM `desc`'s devices: inside the board's MMIO, clear of the vGIC's
/// frames, the physical GIC and Tandem's UART, and with SPIs the VM's vGIC
/// can carry that nobody else owns yet.
pub fn check(desc: &VmDesc, owners: &SpiOwners, f: &Forbidden<'_>) -> Result<(), &'static str> {
    let vgic = f.vgic.windows(u64::from(desc.vcpus));
    for dev in desc.devices() {
        let in_mmio = f
            .mmio
            .iter()
            .any(|w| dev.base >= w.base && dev.end() <= w.end());
        if !in_mmio {
            return Err("a device window lies outside the board's MMIO windows");
        }
        if vgic.iter().any(|&(b, s)| dev.overlaps(b, s))
            || f.gic.iter().any(|&(b, s)| dev.overlaps(b, s))
        {
            return Err("a device window overlaps the GIC");
        }
        if dev.overlaps(f.uart.0, f.uart.1) {
            return Err("a device window overlaps Tandem's UART");
        }
        if dev.intid != 0 {
            if dev.intid >= SPI_FIRST + VM_SPIS || dev.intid == desc.console_intid {
                return Err("a device interrupt is beyond the VM's virtual GIC or its console's");
            }
            if dev.intid < SPI_FIRST {
                return Err("a device interrupt is not an SPI");
            }
            if owners.owner(dev.intid).is_some() {
                return Err("a device interrupt belongs to another VM");
            }
        }
    }
    Ok(())
}

/// Physical SPI `intid` was acknowledged on this CPU: forward it to its VM,
/// or disable it if no VM owns it. Ends the interrupt itself (the caller must
/// not end it again).
pub fn handle_spi(hv: &Hypervisor, intid: u32, hw: &mut impl Hw) {
    let Some(vm) = hv.spis.owner(intid).and_then(|id| hv.vm_by_id(id)) else {
        debug!("physical SPI {intid} belongs to no VM: disabled");
        hw.disable_spi(intid);
        hw.end(intid);
        return;
    };
    // Priority drop only: the physical interrupt stays active until the guest
    // deactivates the hardware-linked virtual one.
    hw.priority_drop(intid);
    let kick = vm.vgic.lock().inject_hw(intid, intid);
    vm.stats.virqs.fetch_add(1, Ordering::Relaxed);
    hv.notify(vm, kick, hw);
}

/// Deactivates the physical SPIs `vm`'s vGIC released (after the guest
/// changed their state by MMIO). Free for a VM without devices.
pub fn settle(vm: &Vm, hw: &mut impl Hw) {
    if vm.desc.device_count == 0 {
        return;
    }
    vm.vgic
        .lock()
        .take_released(|pintid| hw.deactivate_spi(pintid));
}

/// After `vm`'s vGIC was replaced (VM reset): deactivate its SPIs, which the
/// old vGIC may have held active; a line still high fires again into the new one.
pub fn reset(_hv: &Hypervisor, vm: &Vm, hw: &mut impl Hw) {
    for dev in vm.desc.devices().iter().filter(|d| d.intid != 0) {
        hw.deactivate_spi(dev.intid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SPI has one owner; non-SPIs cannot be claimed.
    #[test]
    fn spi_claims_are_exclusive() {
        let o = SpiOwners::default();
        assert!(o.claim(34, 1));
        assert!(!o.claim(34, 2));
        assert_eq!(o.owner(34), Some(1));
        assert_eq!(o.owner(35), None);
        assert!(!o.claim(27, 1));
        assert!(!o.claim(1020, 1));
    }
}
