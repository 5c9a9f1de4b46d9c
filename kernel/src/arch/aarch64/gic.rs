//! The GICv3 CPU interface at EL2: physical interrupts (ICC_*) and the
//! virtual interface Tandem drives for the running vCPU (ICH_*).

use core::arch::asm;

use crate::arch::Gic;
use crate::drivers::gicv3::GicV3;
use crate::vcpu::regs::VgicCpuRegs;
use crate::vgic::lr::IchLr;

/// INTID returned by an acknowledge when nothing is pending.
pub const SPURIOUS: u32 = 1023;

/// Enables this CPU's interface: system registers, all priorities, split EOI.
pub fn init_cpu_interface() {
    // ICC_SRE_EL2: SRE | DFB | DIB | Enable (EL1 may use the system-register interface).
    write_sysreg!("icc_sre_el2", 0xf);
    isb();
    write_sysreg!("icc_pmr_el1", 0xff);
    write_sysreg!("icc_bpr1_el1", 0);
    // EOImode = 1: EOIR only drops priority; DIR deactivates.
    write_sysreg!("icc_ctlr_el1", 1 << 1);
    write_sysreg!("icc_igrpen1_el1", 1);
    isb();
}

fn isb() {
    // SAFETY: a barrier.
    unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
}

/// Acknowledges the highest-priority pending group-1 interrupt.
pub fn ack() -> u32 {
    read_sysreg!("icc_iar1_el1") as u32 & 0xff_ffff
}

/// Drops the running priority, then deactivates `intid`.
pub fn eoi(intid: u32) {
    write_sysreg!("icc_eoir1_el1", u64::from(intid));
    write_sysreg!("icc_dir_el1", u64::from(intid));
}

/// Drops the running priority only (EOImode = 1): `intid` stays active, so
/// it cannot fire again until something deactivates it — for a passthrough
/// SPI, the guest's deactivation of the hardware-linked virtual interrupt.
pub fn priority_drop(intid: u32) {
    write_sysreg!("icc_eoir1_el1", u64::from(intid));
}

/// Sends SGI `sgi` to the CPU with affinity `mpidr`.
pub fn send_sgi(sgi: u8, mpidr: u64) {
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let target = 1u64 << (mpidr & 0xf);
    let rs = (mpidr & 0xf0) >> 4;
    let value = target
        | (aff1 << 16)
        | (u64::from(sgi & 0xf) << 24)
        | (aff2 << 32)
        | (rs << 44)
        | (aff3 << 48);
    // SAFETY: make prior stores (pending interrupt state) visible before the SGI.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    write_sysreg!("icc_sgi1r_el1", value);
    isb();
}

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    (read_sysreg!("ich_vtr_el2") & 0x1f) as usize + 1
}

/// Reads ICH_LR<n>_EL2 (n < 16).
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => read_sysreg!("ich_lr0_el2"),
        1 => read_sysreg!("ich_lr1_el2"),
        2 => read_sysreg!("ich_lr2_el2"),
        3 => read_sysreg!("ich_lr3_el2"),
        4 => read_sysreg!("ich_lr4_el2"),
        5 => read_sysreg!("ich_lr5_el2"),
        6 => read_sysreg!("ich_lr6_el2"),
        7 => read_sysreg!("ich_lr7_el2"),
        8 => read_sysreg!("ich_lr8_el2"),
        9 => read_sysreg!("ich_lr9_el2"),
        10 => read_sysreg!("ich_lr10_el2"),
        11 => read_sysreg!("ich_lr11_el2"),
        12 => read_sysreg!("ich_lr12_el2"),
        13 => read_sysreg!("ich_lr13_el2"),
        14 => read_sysreg!("ich_lr14_el2"),
        15 => read_sysreg!("ich_lr15_el2"),
        _ => 0,
    }
}

/// Writes ICH_LR<n>_EL2 (n < 16).
pub fn write_lr(n: usize, v: u64) {
    match n {
        0 => write_sysreg!("ich_lr0_el2", v),
        1 => write_sysreg!("ich_lr1_el2", v),
        2 => write_sysreg!("ich_lr2_el2", v),
        3 => write_sysreg!("ich_lr3_el2", v),
        4 => write_sysreg!("ich_lr4_el2", v),
        5 => write_sysreg!("ich_lr5_el2", v),
        6 => write_sysreg!("ich_lr6_el2", v),
        7 => write_sysreg!("ich_lr7_el2", v),
        8 => write_sysreg!("ich_lr8_el2", v),
        9 => write_sysreg!("ich_lr9_el2", v),
        10 => write_sysreg!("ich_lr10_el2", v),
        11 => write_sysreg!("ich_lr11_el2", v),
        12 => write_sysreg!("ich_lr12_el2", v),
        13 => write_sysreg!("ich_lr13_el2", v),
        14 => write_sysreg!("ich_lr14_el2", v),
        15 => write_sysreg!("ich_lr15_el2", v),
        _ => {}
    }
}

/// ICH_HCR_EL2.En: the virtual CPU interface is enabled.
pub const ICH_HCR_EN: u64 = 1 << 0;
/// ICH_HCR_EL2.UIE: maintenance interrupt when at most one LR holds an interrupt.
pub const ICH_HCR_UIE: u64 = 1 << 1;

/// Writes ICH_HCR_EL2.
pub fn write_hcr(v: u64) {
    write_sysreg!("ich_hcr_el2", v);
}

/// Reads ICH_VMCR_EL2.
pub fn read_vmcr() -> u64 {
    read_sysreg!("ich_vmcr_el2")
}

/// Writes ICH_VMCR_EL2.
pub fn write_vmcr(v: u64) {
    write_sysreg!("ich_vmcr_el2", v);
}

/// Reads (ICH_AP0R0_EL2, ICH_AP1R0_EL2).
pub fn read_apr() -> (u64, u64) {
    (read_sysreg!("ich_ap0r0_el2"), read_sysreg!("ich_ap1r0_el2"))
}

/// Writes ICH_AP0R0_EL2 and ICH_AP1R0_EL2.
pub fn write_apr(ap0: u64, ap1: u64) {
    write_sysreg!("ich_ap0r0_el2", ap0);
    write_sysreg!("ich_ap1r0_el2", ap1);
}

/// The GICv3 as [`Gic`] sees it: this CPU's system-register interfaces and
/// the distributor (`drivers::gicv3`).
pub struct V3Interface;

impl Gic for V3Interface {
    type Lr = IchLr;

    #[inline]
    fn ack(&mut self) -> Option<u32> {
        let intid = ack();
        (intid < 1020).then_some(intid)
    }

    #[inline]
    fn end(&mut self, intid: u32) {
        eoi(intid);
    }

    fn priority_drop(&mut self, intid: u32) {
        priority_drop(intid);
    }

    fn send_sgi(&mut self, sgi: u8, mpidr: u64) {
        send_sgi(sgi, mpidr);
    }

    fn enable_spi(&mut self, intid: u32, mpidr: u64, edge: bool) {
        if let Some(g) = GicV3::get() {
            g.enable_spi(intid, mpidr, edge);
        }
    }

    fn disable_spi(&mut self, intid: u32) {
        if let Some(g) = GicV3::get() {
            g.disable_spi(intid);
        }
    }

    fn deactivate_spi(&mut self, intid: u32) {
        if let Some(g) = GicV3::get() {
            g.deactivate_spi(intid);
        }
    }

    fn lr_count(&self) -> usize {
        list_register_count()
    }

    fn write_lrs(&mut self, lrs: &[u64]) {
        for (n, &lr) in lrs.iter().enumerate() {
            write_lr(n, lr);
        }
    }

    #[inline]
    fn write_lr(&mut self, n: usize, value: u64) {
        write_lr(n, value);
    }

    fn read_lrs(&mut self, lrs: &mut [u64]) {
        for (n, lr) in lrs.iter_mut().enumerate() {
            *lr = read_lr(n);
        }
    }

    fn set_virtual_interface(&mut self, underflow: bool) {
        write_hcr(ICH_HCR_EN | if underflow { ICH_HCR_UIE } else { 0 });
    }

    fn save_interface(&mut self) -> VgicCpuRegs {
        let (ap0r0, ap1r0) = read_apr();
        VgicCpuRegs {
            vmcr: read_vmcr(),
            ap0r0,
            ap1r0,
        }
    }

    fn load_interface(&mut self, regs: &VgicCpuRegs) {
        write_vmcr(regs.vmcr);
        write_apr(regs.ap0r0, regs.ap1r0);
    }
}
