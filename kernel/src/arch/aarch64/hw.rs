//! [`crate::arch::Hw`] on the real CPU: the seam's operations as the
//! instructions and registers of this module's siblings.
//!
//! `Aarch64` is a zero-sized handle; each physical CPU's loop owns one. The
//! GIC operations are GICv3's (system-register CPU interface, `ICH_*` list
//! registers, the distributor through `drivers::gicv3`).

use super::{console, cpu, gic, vcpu};
use crate::arch::{Console, Cpu, Gic, Ram};
use crate::drivers::gicv3::GicV3;
use crate::vcpu::exit::ExitSnapshot;
use crate::vcpu::inject::El1Exception;
use crate::vcpu::regs::{GuestRegs, TimerRegs, VcpuContext, VgicCpuRegs};
use crate::vgic::lr::IchLr;
use crate::vm::console::Terminal;

/// This physical CPU.
pub struct Aarch64 {
    index: usize,
}

impl Aarch64 {
    /// The handle for the calling CPU.
    pub fn this_cpu() -> Self {
        Self {
            index: cpu::index(),
        }
    }
}

impl Cpu for Aarch64 {
    #[inline]
    fn index(&self) -> usize {
        self.index
    }

    #[inline]
    fn now(&self) -> u64 {
        vcpu::counter()
    }

    #[inline]
    fn enter_guest(&mut self, regs: &mut GuestRegs) -> ExitSnapshot {
        vcpu::run(regs)
    }

    fn load_stage2(&mut self, vttbr: u64, cntvoff: u64, vmpidr: u64) {
        vcpu::set_vmpidr(vmpidr);
        vcpu::load_vm(vttbr, cntvoff);
    }

    fn save_context(&mut self, ctx: &mut VcpuContext) {
        vcpu::save_el1(&mut ctx.el1);
        vcpu::save_fp(&mut ctx.fp);
        ctx.timer = vcpu::save_timer();
        vcpu::restore_timer(&TimerRegs { ctl: 0, cval: 0 });
    }

    fn load_context(&mut self, ctx: &VcpuContext) {
        vcpu::restore_el1(&ctx.el1);
        vcpu::restore_fp(&ctx.fp);
        vcpu::restore_timer(&ctx.timer);
    }

    #[inline]
    fn mask_vtimer(&mut self) -> TimerRegs {
        vcpu::mask_vtimer()
    }

    fn set_hyp_timer(&mut self, cval: Option<u64>) {
        vcpu::set_hyp_timer(cval);
    }

    fn inject_sync(&mut self, regs: &mut GuestRegs, e: &El1Exception) {
        vcpu::inject_sync(regs, e);
    }

    fn id_register(&self, crm: u8, op2: u8) -> u64 {
        vcpu::read_id_register(crm, op2)
    }

    fn wait_for_interrupt(&mut self) {
        // SAFETY: sleeps until an interrupt is pending (IRQs stay masked at EL2).
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }

    fn power_off(&mut self) {
        crate::hyp::setup::power_off();
    }
}

impl Gic for Aarch64 {
    type Lr = IchLr;

    #[inline]
    fn ack(&mut self) -> Option<u32> {
        let intid = gic::ack();
        (intid < 1020).then_some(intid)
    }

    #[inline]
    fn end(&mut self, intid: u32) {
        gic::eoi(intid);
    }

    fn priority_drop(&mut self, intid: u32) {
        gic::priority_drop(intid);
    }

    fn send_sgi(&mut self, sgi: u8, mpidr: u64) {
        gic::send_sgi(sgi, mpidr);
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
        gic::list_register_count()
    }

    fn write_lrs(&mut self, lrs: &[u64]) {
        for (n, &lr) in lrs.iter().enumerate() {
            gic::write_lr(n, lr);
        }
    }

    #[inline]
    fn write_lr(&mut self, n: usize, value: u64) {
        gic::write_lr(n, value);
    }

    fn read_lrs(&mut self, lrs: &mut [u64]) {
        for (n, lr) in lrs.iter_mut().enumerate() {
            *lr = gic::read_lr(n);
        }
    }

    fn set_virtual_interface(&mut self, underflow: bool) {
        gic::write_hcr(gic::ICH_HCR_EN | if underflow { gic::ICH_HCR_UIE } else { 0 });
    }

    fn save_interface(&mut self) -> VgicCpuRegs {
        let (ap0r0, ap1r0) = gic::read_apr();
        VgicCpuRegs {
            vmcr: gic::read_vmcr(),
            ap0r0,
            ap1r0,
        }
    }

    fn load_interface(&mut self, regs: &VgicCpuRegs) {
        gic::write_vmcr(regs.vmcr);
        gic::write_apr(regs.ap0r0, regs.ap1r0);
    }
}

impl Ram for Aarch64 {
    fn clear(&mut self, pa: u64, len: u64) {
        // SAFETY: the core clears only RAM it owns for a VM (its RAM block, while
        // no vCPU of that VM runs), identity-mapped read/write at EL2.
        unsafe { crate::mm::frames::zero(pa, len) };
    }

    fn copy_in(&mut self, pa: u64, bytes: &[u8]) {
        // SAFETY: as for `clear`: the destination lies in a VM's RAM block.
        unsafe { crate::mm::frames::copy_to(pa, bytes) };
    }

    fn sync_icache(&mut self, pa: u64, len: u64) {
        vcpu::sync_icache(pa, len);
    }

    fn heap_usage(&self) -> Option<(usize, usize)> {
        let (total, used) = crate::mm::heap::usage();
        Some((used, total))
    }

    fn flush_vm_tlb(&mut self, vttbr: u64) {
        vcpu::load_vm(vttbr, 0);
        vcpu::flush_vm_tlb();
    }
}

impl Console for Aarch64 {
    fn print(&mut self, args: core::fmt::Arguments<'_>) {
        console::write_fmt(args);
    }

    fn with_terminal<R>(
        &mut self,
        f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]), usize) -> R,
    ) -> R {
        console::with_terminal(f)
    }

    fn read_byte(&mut self) -> Option<u8> {
        console::read_byte()
    }

    fn pump(&mut self) {
        console::pump();
    }
}
