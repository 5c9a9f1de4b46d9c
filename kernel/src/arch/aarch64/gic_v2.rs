//! The GICv2 as [`Gic`] sees it: this CPU's GICC (physical interrupts) and
//! GICH (the virtual interface Tandem drives for the running vCPU), both
//! MMIO through `drivers::gicv2`.
//!
//! Reading list registers back touches only those still holding an
//! interrupt: GICH_ELRSR0 says which are empty, and an empty LR is the one
//! written before with its state cleared (the hardware changes nothing else).

use crate::arch::Gic;
use crate::drivers::gicv2::{GicV2, HCR_EN, HCR_UIE, IAR_INTID};
use crate::vcpu::regs::VgicCpuRegs;
use crate::vgic::lr::GichLr;

/// This CPU's GICv2 interfaces.
pub struct V2Interface {
    gic: &'static GicV2,
    /// The raw GICC_IAR of the interrupt being handled: ending an SGI needs
    /// its source CPU bits too.
    last_iar: u32,
}

impl V2Interface {
    /// The interfaces of the calling CPU; `None` before the distributor is set up.
    pub fn this_cpu() -> Option<Self> {
        GicV2::get().map(|gic| Self { gic, last_iar: 0 })
    }

    /// The raw IAR value to end `intid` with.
    fn iar_of(&self, intid: u32) -> u32 {
        if self.last_iar & IAR_INTID == intid {
            self.last_iar
        } else {
            intid
        }
    }
}

impl Gic for V2Interface {
    type Lr = GichLr;

    #[inline]
    fn ack(&mut self) -> Option<u32> {
        let iar = self.gic.ack();
        let intid = iar & IAR_INTID;
        self.last_iar = iar;
        (intid < 1020).then_some(intid)
    }

    #[inline]
    fn end(&mut self, intid: u32) {
        let iar = self.iar_of(intid);
        self.gic.priority_drop(iar);
        self.gic.deactivate(iar);
    }

    fn priority_drop(&mut self, intid: u32) {
        self.gic.priority_drop(self.iar_of(intid));
    }

    fn send_sgi(&mut self, sgi: u8, mpidr: u64) {
        self.gic.send_sgi(sgi, mpidr);
    }

    fn enable_spi(&mut self, intid: u32, mpidr: u64, edge: bool) {
        self.gic.enable_spi(intid, mpidr, edge);
    }

    fn disable_spi(&mut self, intid: u32) {
        self.gic.disable_spi(intid);
    }

    fn deactivate_spi(&mut self, intid: u32) {
        self.gic.deactivate_spi(intid);
    }

    fn lr_count(&self) -> usize {
        self.gic.list_register_count()
    }

    fn write_lrs(&mut self, lrs: &[u64]) {
        for (n, &lr) in lrs.iter().enumerate() {
            self.gic.write_lr(n, lr as u32);
        }
    }

    #[inline]
    fn write_lr(&mut self, n: usize, value: u64) {
        self.gic.write_lr(n, value as u32);
    }

    /// `lrs` holds what was written; only LRs that GICH_ELRSR0 does not
    /// report empty are read.
    fn read_lrs(&mut self, lrs: &mut [u64]) {
        let empty = self.gic.empty_lrs();
        for (n, lr) in lrs.iter_mut().enumerate() {
            if empty & (1 << n) != 0 {
                *lr &= !GichLr::STATE_BITS;
            } else {
                *lr = u64::from(self.gic.read_lr(n));
            }
        }
    }

    fn set_virtual_interface(&mut self, underflow: bool) {
        self.gic
            .write_hcr(HCR_EN | if underflow { HCR_UIE } else { 0 });
    }

    fn save_interface(&mut self) -> VgicCpuRegs {
        VgicCpuRegs {
            vmcr: u64::from(self.gic.read_vmcr()),
            ap0r0: u64::from(self.gic.read_apr()),
            ap1r0: 0,
        }
    }

    fn load_interface(&mut self, regs: &VgicCpuRegs) {
        self.gic.write_vmcr(regs.vmcr as u32);
        self.gic.write_apr(regs.ap0r0 as u32);
    }
}
