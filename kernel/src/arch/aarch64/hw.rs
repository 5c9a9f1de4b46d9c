//! [`crate::arch::Hw`] on the real CPU: the seam's operations as the
//! instructions and registers of this module's siblings.
//!
//! Each physical CPU's loop owns one `Aarch64`. Its GIC operations are those
//! of the generation found at boot: [`super::gic::V3Interface`] (system-register CPU
//! interface, `ICH_*` list registers) or [`super::gic_v2::V2Interface`] (GICC and
//! GICH MMIO), so the loop is built once for each.

use super::{console, cpu, vcpu};
use crate::arch::{Console, Cpu, Gic, Ram};
use crate::vcpu::exit::ExitSnapshot;
use crate::vcpu::inject::El1Exception;
use crate::vcpu::regs::{GuestRegs, TimerRegs, VcpuContext, VgicCpuRegs};
use crate::vm::console::Terminal;
use crate::vm::txring::Owner;

/// This physical CPU, with the GIC generation `G` it drives.
pub struct Aarch64<G> {
    index: usize,
    gic: G,
}

impl<G: Gic> Aarch64<G> {
    /// The handle for the calling CPU, driving its GIC through `gic`.
    pub fn this_cpu(gic: G) -> Self {
        Self {
            index: cpu::index(),
            gic,
        }
    }
}

impl<G> Cpu for Aarch64<G> {
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

    fn take_pending_serror(&mut self) -> bool {
        vcpu::take_serror()
    }

    fn isolate_branch_predictor(&mut self) {
        super::psci::isolate_branch_predictor();
    }

    fn load_stage2(&mut self, vttbr: u64, cntvoff: u64, vmpidr: u64) {
        vcpu::set_vmpidr(vmpidr);
        vcpu::load_vm(vttbr, cntvoff);
    }

    fn save_context(&mut self, ctx: &mut VcpuContext) {
        vcpu::save_el1(&mut ctx.el1);
        vcpu::save_fp(&mut ctx.fp);
        ctx.timer = vcpu::save_timer();
        vcpu::disable_timer();
    }

    fn load_context(&mut self, ctx: &VcpuContext) {
        vcpu::restore_el1(&ctx.el1);
        vcpu::restore_fp(&ctx.fp);
        vcpu::restore_timer(&ctx.timer);
    }

    fn loaded_vtimer(&self) -> TimerRegs {
        vcpu::save_timer()
    }

    #[inline]
    fn mask_vtimer(&mut self) -> TimerRegs {
        vcpu::mask_vtimer()
    }

    fn set_hyp_timer(&mut self, cval: Option<u64>) {
        vcpu::set_hyp_timer(cval);
    }

    fn set_tick_timer(&mut self, cval: Option<u64>) {
        vcpu::set_tick_timer(cval);
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

impl<G: Gic> Gic for Aarch64<G> {
    type Lr = G::Lr;

    #[inline]
    fn ack(&mut self) -> Option<u32> {
        self.gic.ack()
    }

    #[inline]
    fn end(&mut self, intid: u32) {
        self.gic.end(intid);
    }

    fn priority_drop(&mut self, intid: u32) {
        self.gic.priority_drop(intid);
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
        self.gic.lr_count()
    }

    fn write_lrs(&mut self, lrs: &[u64]) {
        self.gic.write_lrs(lrs);
    }

    #[inline]
    fn write_lr(&mut self, n: usize, value: u64) {
        self.gic.write_lr(n, value);
    }

    #[inline]
    fn read_lrs(&mut self, lrs: &mut [u64]) {
        self.gic.read_lrs(lrs);
    }

    fn set_virtual_interface(&mut self, underflow: bool) {
        self.gic.set_virtual_interface(underflow);
    }

    fn save_interface(&mut self) -> VgicCpuRegs {
        self.gic.save_interface()
    }

    fn load_interface(&mut self, regs: &VgicCpuRegs) {
        self.gic.load_interface(regs);
    }
}

impl<G> Ram for Aarch64<G> {
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

    fn clean_to_poc(&mut self, pa: u64, len: u64) {
        vcpu::clean_to_poc(pa, len);
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

impl<G> Console for Aarch64<G> {
    fn print(&mut self, args: core::fmt::Arguments<'_>) {
        console::write_fmt(args);
    }

    fn with_terminal<R>(
        &mut self,
        owner: Owner,
        vms: usize,
        f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]), usize) -> R,
    ) -> R {
        console::with_terminal(owner, vms, f)
    }

    fn read_byte(&mut self) -> Option<u8> {
        console::read_byte()
    }

    fn pump(&mut self) -> bool {
        console::pump()
    }

    fn resume_output(&mut self) {
        console::resume_output();
    }
}
