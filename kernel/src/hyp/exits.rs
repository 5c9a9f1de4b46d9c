//! What each kind of exit does: SMCCC calls, emulated MMIO (the vGIC, the
//! virtual PL011),
//! trapped system registers, WFI/WFE, aborts and the exits that stop a VM.
//!
//! Handlers get the VM and the vCPU as its CPU holds it, decide, and return
//! an [`Outcome`] for the loop. Guest input never panics here; what each
//! hostile case gets is listed in docs/design.md.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use log::debug;

use super::Hypervisor;
use super::pcpu::Vcpu;
use super::vm::Vm;
use crate::aarch64::esr::SysRegAccess;
use crate::arch::Hw;
use crate::hypercall::{self, CallAction, CallEnv, PowerState};
use crate::vcpu::exit::{self, MmioAccess, VmExit};
use crate::vcpu::inject::{self, El1Exception};
use crate::vcpu::sysreg::{self, SysRegAction};

/// What the loop does after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Re-enter the guest.
    Continue,
    /// A physical interrupt is pending at EL2: handle it, then re-enter.
    Irq,
    /// The vCPU waits for an interrupt.
    Block,
    /// Let others run.
    Yield,
    /// The vCPU or its VM is no longer running here.
    Leave,
}

/// Handles exit `e` of vCPU `v` of `vm`.
pub fn handle(hv: &Hypervisor, vm: &Vm, v: &mut Vcpu, hw: &mut impl Hw, e: VmExit) -> Outcome {
    match e {
        VmExit::Hvc(_) => smccc_call(hv, vm, v, hw),
        VmExit::Irq => {
            vm.stats.irq_exits.fetch_add(1, Ordering::Relaxed);
            Outcome::Irq
        }
        VmExit::Smc(_) => {
            // Trapped SMC: the PC still points at it. Same service as HVC.
            v.regs.skip(4);
            smccc_call(hv, vm, v, hw)
        }
        VmExit::Wfi(t) => {
            let passed = v.regs.condition_passed(t.cond);
            v.regs.skip(t.len);
            if !passed {
                return Outcome::Continue;
            }
            vm.stats.wfi.fetch_add(1, Ordering::Relaxed);
            let mut vgic = vm.vgic.lock();
            v.sync_lrs(&mut vgic, hw);
            if vgic.has_deliverable(v.index) {
                Outcome::Continue
            } else {
                Outcome::Block
            }
        }
        VmExit::Wfe(t) => {
            let passed = v.regs.condition_passed(t.cond);
            v.regs.skip(t.len);
            if passed {
                Outcome::Yield
            } else {
                Outcome::Continue
            }
        }
        VmExit::Mmio(a) => mmio(hv, vm, v, hw, &a),
        VmExit::MmioNoSyndrome { ipa, va, write } => {
            if vm.vgic.lock().decode_ipa(ipa, v.index).is_some() {
                let pc = v.regs.pc;
                hv.crash(
                    vm,
                    format_args!(
                        "vCPU {} accessed the vGIC at {ipa:#x} with an instruction Tandem cannot emulate \
                         (no syndrome: use plain loads/stores), PC {pc:#x}",
                        v.index
                    ),
                    hw,
                );
                Outcome::Leave
            } else {
                inject_abort(hv, vm, v, hw, ipa, va, write)
            }
        }
        VmExit::InstrAbort { ipa, va } => {
            debug!(
                "VM '{}' vCPU {}: instruction fetch from unmapped IPA {ipa:#x}",
                vm.name(),
                v.index
            );
            let esr = inject::instr_abort_esr(v.regs.pstate, va.is_some());
            hw.inject_sync(&mut v.regs, &El1Exception { esr, far: va });
            Outcome::Continue
        }
        VmExit::SysReg(a) => sysreg_access(hv, vm, v, hw, &a),
        VmExit::FpTrap | VmExit::Unoffered => {
            undefined(v, hw);
            Outcome::Continue
        }
        VmExit::Aarch32Trap(t) => {
            // A coprocessor access whose condition failed does nothing.
            if v.regs.condition_passed(t.cond) {
                undefined(v, hw);
            } else {
                v.regs.skip(t.len);
            }
            Outcome::Continue
        }
        VmExit::SError => {
            let pc = v.regs.pc;
            hv.crash(
                vm,
                format_args!("SError from vCPU {} at PC {pc:#x}", v.index),
                hw,
            );
            Outcome::Leave
        }
        VmExit::Other(ec) => {
            let pc = v.regs.pc;
            hv.crash(
                vm,
                format_args!(
                    "unexpected exit (exception class {ec:#04x}) from vCPU {} at PC {pc:#x}",
                    v.index
                ),
                hw,
            );
            Outcome::Leave
        }
    }
}

fn undefined(v: &mut Vcpu, hw: &mut impl Hw) {
    hw.inject_sync(
        &mut v.regs,
        &El1Exception {
            esr: inject::undefined_esr(),
            far: None,
        },
    );
}

/// Injects a synchronous external abort for an access to `ipa`, which is
/// not mapped, made through virtual address `va` (FAR_EL2, when valid: the
/// guest's FAR_EL1 gets it, as the guest's own MMU sees the fault); a storm
/// of them is handled as a crash.
#[cold]
#[inline(never)]
fn inject_abort(
    hv: &Hypervisor,
    vm: &Vm,
    v: &mut Vcpu,
    hw: &mut impl Hw,
    ipa: u64,
    va: Option<u64>,
    write: bool,
) -> Outcome {
    vm.stats.aborts.fetch_add(1, Ordering::Relaxed);
    if vm.note_abort(hw.now(), hv.counter_hz) {
        hv.crash(
            vm,
            format_args!(
                "stage-2 fault storm: {} aborts on unmapped IPAs within 1 s (the last at {ipa:#x})",
                super::vm::FAULT_STORM
            ),
            hw,
        );
        return Outcome::Leave;
    }
    debug!(
        "VM '{}' vCPU {}: {} of unmapped IPA {ipa:#x}: external abort injected",
        vm.name(),
        v.index,
        if write { "write" } else { "read" }
    );
    let esr = inject::data_abort_esr(v.regs.pstate, write, va.is_some());
    hw.inject_sync(&mut v.regs, &El1Exception { esr, far: va });
    Outcome::Continue
}

/// The VM as a call handler sees it.
struct Env<'a, H> {
    hv: &'a Hypervisor,
    vm: &'a Vm,
    vcpu: usize,
    hw: &'a mut H,
}

impl<H: Hw> CallEnv for Env<'_, H> {
    fn vm_info(&self) -> pv_abi::VmInfo {
        pv_abi::VmInfo {
            vm_id: u64::from(self.vm.id),
            vcpu_id: self.vcpu as u64,
            vcpu_count: self.vm.vcpus.len() as u64,
        }
    }
    fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize> {
        self.vm.vcpu_by_mpidr(mpidr)
    }
    fn power_state(&self, i: usize) -> PowerState {
        self.vm.vcpus.get(i).map_or(PowerState::Off, |s| s.power())
    }
    fn is_ram(&self, ipa: u64) -> bool {
        self.vm.is_ram(ipa)
    }
    fn hides_tandem(&self) -> bool {
        self.vm.transparent()
    }
    fn console_write(&mut self, bytes: &[u8]) -> usize {
        self.vm.stats.console_writes.fetch_add(1, Ordering::Relaxed);
        super::console::vm_output(self.hv, self.vm, bytes, self.hw)
    }
    fn console_read(&mut self, out: &mut [u8]) -> usize {
        self.vm.console.lock().read_input(out)
    }
    #[inline(never)]
    fn stolen_time(&mut self) -> Option<u64> {
        let ipa = self.vm.stolen_time_ipa(self.vcpu)?;
        let shared = &self.vm.vcpus[self.vcpu];
        shared.pv_time.store(true, Ordering::Release);
        super::pcpu::publish_stolen_time(self.vm, self.vcpu, self.hw);
        Some(ipa)
    }
    // Out of line: inlined, it would cost every hypercall registers.
    #[inline(never)]
    fn watchdog(&mut self, timeout_ms: u32) {
        self.hv.arm_watchdog(self.vm, timeout_ms, self.hw);
    }
    #[inline(never)]
    fn channel(&mut self, call: pv_abi::Call) -> Result<[u64; 3], pv_abi::Status> {
        super::channel::call(self.hv, self.vm, call, self.hw)
    }
    fn stat(&self, id: pv_abi::StatId) -> u64 {
        let s = &self.vm.stats;
        match id {
            pv_abi::StatId::Exits => s.exits.load(Ordering::Relaxed),
            pv_abi::StatId::Hypercalls => s.hypercalls.load(Ordering::Relaxed),
            pv_abi::StatId::VirqsInjected => s.virqs.load(Ordering::Relaxed),
            pv_abi::StatId::MmioEmulated => s.mmio.load(Ordering::Relaxed),
            pv_abi::StatId::WfiExits => s.wfi.load(Ordering::Relaxed),
            pv_abi::StatId::UptimeNs => {
                crate::sched::ticks_to_ns(self.hw.now(), self.hv.counter_hz)
            }
            pv_abi::StatId::ChannelDoorbells => s.doorbells.load(Ordering::Relaxed),
            pv_abi::StatId::ChannelDenied => s.doorbells_denied.load(Ordering::Relaxed),
            pv_abi::StatId::VirtioForwarded => s.virtio_forwarded.load(Ordering::Relaxed),
            pv_abi::StatId::VirtioNotifies => s.virtio_notifies.load(Ordering::Relaxed),
        }
    }
}

/// Every hypercall's path: inline in the loop, the rest ([`call_action`],
/// the calls that move data) out of line.
#[inline(always)]
fn smccc_call(hv: &Hypervisor, vm: &Vm, v: &mut Vcpu, hw: &mut impl Hw) -> Outcome {
    vm.stats.hypercalls.fetch_add(1, Ordering::Relaxed);
    let mut env = Env {
        hv,
        vm,
        vcpu: v.index,
        hw,
    };
    let action = hypercall::dispatch_in_place(&mut v.regs.args, &mut env);
    let hw = env.hw;
    if action == CallAction::Resume {
        return Outcome::Continue;
    }
    call_action(hv, vm, v, hw, action)
}

/// The rarer results of a call: power changes, yields, crashes.
#[cold]
#[inline(never)]
fn call_action(
    hv: &Hypervisor,
    vm: &Vm,
    v: &mut Vcpu,
    hw: &mut impl Hw,
    action: CallAction,
) -> Outcome {
    if action == CallAction::Crash {
        let reason = hypercall::crash_reason(&v.regs.args);
        let bytes = reason.as_ref().map_or(&[][..], |r| r.as_bytes());
        // The guest's words go into Tandem's log line: sanitised.
        let text = crate::vm::console::Printable(bytes.trim_ascii_end());
        hv.crash(vm, format_args!("the guest reported: {text}"), hw);
        return Outcome::Leave;
    }
    match action {
        CallAction::Resume => Outcome::Continue,
        CallAction::Yield => Outcome::Yield,
        CallAction::CpuOn {
            vcpu,
            entry,
            context,
        } => {
            hv.start_vcpu(vm, vcpu, entry, context, hw);
            Outcome::Continue
        }
        CallAction::CpuOff => {
            vm.vcpus[v.index].set_power(PowerState::Off);
            Outcome::Leave
        }
        CallAction::SystemOff => {
            hv.stop(
                vm,
                format_args!("powered off by the guest (PSCI SYSTEM_OFF)"),
                hw,
            );
            Outcome::Leave
        }
        CallAction::SystemReset => {
            hv.request_reset(vm, "PSCI SYSTEM_RESET", hw);
            Outcome::Leave
        }
        CallAction::Crash => Outcome::Leave,
    }
}

fn mmio(hv: &Hypervisor, vm: &Vm, v: &mut Vcpu, hw: &mut impl Hw, a: &MmioAccess) -> Outcome {
    let mut vgic = vm.vgic.lock();
    let Some((frame, offset)) = vgic.decode_ipa(a.ipa, v.index) else {
        drop(vgic);
        if super::uart::claims(vm, a.ipa) {
            super::uart::access(hv, vm, v, hw, a);
            return Outcome::Continue;
        }
        if let Some(outcome) = super::channel::front_access(hv, vm, v, hw, a) {
            return outcome;
        }
        return inject_abort(hv, vm, v, hw, a.ipa, a.va, a.write);
    };
    vm.stats.mmio.fetch_add(1, Ordering::Relaxed);
    if a.write {
        // The guest's LRs may hold state the write changes: fold them in first.
        v.sync_lrs(&mut vgic, hw);
        let value = exit::store_value(v.regs.get(a.reg), a);
        let result = vgic.mmio_write(frame, offset, a.size, value);
        drop(vgic);
        match result {
            Ok(kick) => {
                hv.notify(vm, kick, hw);
                super::passthrough::settle(vm, hw);
            }
            Err(_) => return inject_abort(hv, vm, v, hw, a.ipa, a.va, true),
        }
    } else {
        // Pending and active state of interrupts in this vCPU's LRs is read
        // from the model: fold them in first (only if any are in use).
        if is_state_register(frame, offset) {
            v.sync_lrs(&mut vgic, hw);
        }
        let result = vgic.mmio_read(frame, offset, a.size);
        drop(vgic);
        match result {
            Ok(raw) => v.regs.set(a.reg, exit::load_value(raw, a)),
            Err(_) => return inject_abort(hv, vm, v, hw, a.ipa, a.va, false),
        }
    }
    v.regs.skip(a.len);
    Outcome::Continue
}

/// Whether a read at `offset` of `frame` shows pending or active state
/// (GICD/GICR ISPENDR..ICACTIVER, 0x200..0x400 of the distributor and of
/// a redistributor's SGI frame; GICv2 also GICD_CPENDSGIR/SPENDSGIR),
/// which list registers may hold.
fn is_state_register(frame: crate::vgic::Frame, offset: u64) -> bool {
    let off = match frame {
        crate::vgic::Frame::Dist => offset,
        crate::vgic::Frame::Redist(_) => offset.wrapping_sub(0x1_0000),
        crate::vgic::Frame::CpuDist(_) => {
            if (0xf10..0xf30).contains(&offset) {
                return true;
            }
            offset
        }
    };
    (0x200..0x400).contains(&off)
}

fn sysreg_access(
    hv: &Hypervisor,
    vm: &Vm,
    v: &mut Vcpu,
    hw: &mut impl Hw,
    a: &SysRegAccess,
) -> Outcome {
    vm.stats.sysreg.fetch_add(1, Ordering::Relaxed);
    match sysreg::classify(a) {
        SysRegAction::IdRead { crm, op2 } => {
            v.regs.set(
                a.rt,
                sysreg::sanitize_id(crm, op2, hw.id_register(crm, op2)),
            );
        }
        SysRegAction::Sgi1r => {
            let value = v.regs.get(a.rt);
            let kick = vm.vgic.lock().sgi1r_write(v.index, value);
            vm.stats
                .virqs
                .fetch_add(u64::from(kick.count_ones()), Ordering::Relaxed);
            hv.notify(vm, kick, hw);
        }
        SysRegAction::RazWi => {
            if a.is_read {
                v.regs.set(a.rt, 0);
            }
        }
        SysRegAction::Undefined => {
            debug!(
                "VM '{}' vCPU {}: {:?} is not available: UNDEFINED injected",
                vm.name(),
                v.index,
                a
            );
            undefined(v, hw);
            return Outcome::Continue;
        }
    }
    v.regs.skip(4);
    Outcome::Continue
}
