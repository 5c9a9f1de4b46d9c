//! The hypervisor proper: VMs created from the guest package, and each
//! physical CPU's loop running the vCPUs pinned to it.
//!
//! Exit path: `arch::vcpu::run` returns a snapshot → `vcpu::exit::decode`
//! (pure) → a handler decides (hypercall dispatch, vGIC emulation, injection)
//! → the loop applies the decision and re-enters.

pub mod passthrough;
pub mod vm;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sync::Lock as Mutex;
use log::{debug, info, warn};

use crate::arch::aarch64::{console, cpu, gic, psci, vcpu as hw};
use crate::hypercall::{self, CallAction, CallEnv, PowerState};
use crate::monitor::{self, Command, Focus, Input, LineEditor};
use crate::platform::fdt::{MachineFacts, PsciConduit};
use crate::sched::{self, RoundRobin};
use crate::vcpu::exit::{self, MmioAccess, VmExit};
use crate::vcpu::inject;
use crate::vcpu::regs::{El1Regs, FpRegs, GuestRegs, TimerRegs, VgicCpuRegs};
use crate::vcpu::sysreg::{self, SysRegAction};
use crate::vm::package::{FLAG_CONSOLE_FOCUS, Package};
use vm::{PCPU_MPIDR, PCPU_RUNNING_VM, VMS, Vm, VmState};

/// Maintenance interrupt (PPI 9).
const INTID_MAINTENANCE: u32 = 25;
/// EL2 physical timer (PPI 10).
const INTID_HYP_TIMER: u32 = 26;
/// EL1 virtual timer (PPI 11).
const INTID_VTIMER: u32 = 27;

static READY: AtomicBool = AtomicBool::new(false);
static PSCI_CONDUIT: Mutex<Option<PsciConduit>> = Mutex::new(None);
static UART_INTID: AtomicU64 = AtomicU64::new(0);
static SWITCH: Mutex<ConsoleSwitch> = Mutex::new(ConsoleSwitch {
    focus: Focus::Monitor,
    editor: None,
});
/// Colour VM tags (the console is a terminal).
pub static COLOR: AtomicBool = AtomicBool::new(false);

/// Who gets console input, and the monitor's line.
struct ConsoleSwitch {
    focus: Focus,
    editor: Option<LineEditor>,
}

/// vCPUs waiting to be handed to their physical CPU, by CPU index.
static PCPU_VCPUS: [Mutex<Vec<Vcpu>>; 8] = [const { Mutex::new(Vec::new()) }; 8];

/// A vCPU as its physical CPU holds it.
pub struct Vcpu {
    vm: &'static Vm,
    index: usize,
    epoch: u32,
    regs: GuestRegs,
    el1: El1Regs,
    timer: TimerRegs,
    gicv: VgicCpuRegs,
    fp: FpRegs,
    lrs: [u64; 16],
    blocked: bool,
    /// Just (re)started: its EL1, FP, timer and vGIC state must be loaded
    /// into the CPU even if it was the last vCPU there.
    fresh: bool,
}

impl Vcpu {
    fn new(vm: &'static Vm, index: usize) -> Self {
        Self {
            vm,
            index,
            epoch: 0,
            regs: GuestRegs::default(),
            el1: El1Regs::reset(),
            timer: TimerRegs::default(),
            gicv: VgicCpuRegs::default(),
            fp: FpRegs::default(),
            lrs: [0; 16],
            blocked: false,
            fresh: true,
        }
    }

    fn shared(&self) -> &vm::VcpuShared {
        &self.vm.vcpus[self.index]
    }

    /// Applies starts, stops and resets requested by other CPUs. Returns whether it may run.
    fn sync_power(&mut self) -> bool {
        let epoch = self.vm.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.epoch = epoch;
            self.blocked = false;
        }
        if self.vm.state() == VmState::Stopped {
            return false;
        }
        if self.shared().power() == PowerState::OnPending {
            let start = self.shared().start.lock().take();
            if let Some((entry, x0)) = start {
                self.regs = GuestRegs::at_entry(entry, x0);
                self.el1 = El1Regs::reset();
                self.timer = TimerRegs::default();
                self.gicv = VgicCpuRegs::default();
                self.fp = FpRegs::default();
                self.blocked = false;
                self.fresh = true;
                self.shared().set_power(PowerState::On);
                debug!(
                    "VM '{}' vCPU {} starts at {:#x}",
                    self.vm.name(),
                    self.index,
                    entry
                );
                return true;
            }
        }
        self.shared().power() == PowerState::On
    }

    fn runnable(&self) -> bool {
        self.vm.state() == VmState::Running
            && match self.shared().power() {
                PowerState::On => !self.blocked || self.vm.vgic.lock().has_deliverable(self.index),
                PowerState::OnPending => self.shared().start.lock().is_some(),
                PowerState::Off => false,
            }
    }
}

/// Everything a physical CPU keeps for its loop.
struct PcpuState {
    me: usize,
    vcpus: Vec<Vcpu>,
    loaded: Option<usize>,
    rr: RoundRobin,
    lr_count: usize,
    /// Counter ticks of the emulator-slicing tick on this CPU (see `BoardDesc::emulator_tick_ns`).
    tick: Option<u64>,
}

/// Creates every VM of the package (boot CPU, after the other CPUs are online).
pub fn create_vms(pkg: Option<Package<'static>>, online: usize, facts: &MachineFacts) {
    *PSCI_CONDUIT.lock() = facts.psci;
    let mut vms = Vec::new();
    if let Some(pkg) = pkg {
        for i in 0..pkg.vm_count() {
            match Vm::create(pkg, i, online) {
                Ok(vm) => vms.push(vm),
                Err(e) => warn!("VM #{i} not started: {e}"),
            }
        }
    }
    COLOR.store(
        facts.bootarg("tandem.color") == Some("on"),
        Ordering::Relaxed,
    );
    let mut focus = if vms.is_empty() {
        Focus::Monitor
    } else {
        Focus::Vm(0)
    };
    for (n, vm) in vms.iter().enumerate() {
        if vm.desc.has(FLAG_CONSOLE_FOCUS) {
            focus = Focus::Vm(n);
        }
        for i in 0..vm.vcpus.len() {
            let pcpu = vm.vcpus[i].pcpu;
            PCPU_VCPUS[pcpu].lock().push(Vcpu::new(vm, i));
        }
    }
    if vms.is_empty() {
        info!("no VMs to run: Tandem idles (leave QEMU with Ctrl-A X)");
    }
    VMS.call_once(|| vms);
    SWITCH.lock().focus = focus;
    info!(
        "console input goes to {}; Ctrl-] switches between VMs and the Tandem monitor",
        focus_name(focus)
    );
    READY.store(true, Ordering::Release);
    // SAFETY: wakes the other CPUs waiting in WFE for READY; no memory effect.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) };
}

/// Per-CPU interrupt and EL2 setup; every CPU calls it once before [`run`].
pub fn init_cpu(uart_intid: Option<u32>) {
    let me = cpu::index();
    PCPU_MPIDR[me].store(cpu::mpidr() & 0xff_00ff_ffff, Ordering::Release);
    gic::init_cpu_interface();
    // VTCR_EL2: 32-bit IPA from level 1, 4 KiB granule, inner-shareable write-back walks,
    // PS = 40 bits or what the CPU supports if less.
    let parange = read_parange();
    let vtcr =
        (1 << 31) | (parange.min(2) << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 32;
    hw::init_cpu(vtcr);
    if me == 0
        && let Some(i) = uart_intid
    {
        UART_INTID.store(u64::from(i), Ordering::Relaxed);
    }
}

fn read_parange() -> u64 {
    hw::read_id_register(7, 0) & 0xf
}

/// The INTIDs (SGIs/PPIs) each CPU enables at its redistributor.
pub const CPU_INTIDS: u32 =
    (1 << vm::KICK_SGI) | (1 << INTID_MAINTENANCE) | (1 << INTID_HYP_TIMER) | (1 << INTID_VTIMER);

/// Each CPU's emulator tick in counter ticks (0: none).
static EMULATOR_TICK: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Re-arms this CPU's emulator tick during long work at EL2.
pub fn rearm_emulator_tick() {
    let tick = EMULATOR_TICK[cpu::index() % 8].load(Ordering::Relaxed);
    if tick != 0 {
        hw::set_hyp_timer(Some(hw::counter() + tick));
    }
}

/// Powers the machine off through firmware.
pub fn power_off() -> ! {
    if let Some(c) = *PSCI_CONDUIT.lock() {
        psci::call(c, pv_abi::psci::SYSTEM_OFF, 0, 0, 0);
    }
    cpu::park()
}

/// This CPU's loop: never returns.
pub fn run() -> ! {
    while !READY.load(Ordering::Acquire) {
        // SAFETY: waits for an event (the boot CPU's SEV).
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
    let me = cpu::index();
    let vcpus = core::mem::take(&mut *PCPU_VCPUS[me].lock());
    // Only where VMs compete: a lone VM's measurements stay undisturbed.
    let competing = VMS.get().is_some_and(|v| v.len() > 1);
    let tick = crate::platform::BOARD
        .emulator_tick_ns
        .filter(|_| me == 0 && competing)
        .map(|ns| (ns * hw::counter_frequency() / 1_000_000_000).max(1));
    EMULATOR_TICK[me].store(tick.unwrap_or(0), Ordering::Relaxed);
    let mut p = PcpuState {
        me,
        vcpus,
        loaded: None,
        rr: RoundRobin::default(),
        lr_count: gic::list_register_count().min(16),
        tick,
    };
    update_hyp_timer(&p);
    if me == 0 && UART_INTID.load(Ordering::Relaxed) != 0 {
        // From here CPU 0 takes the UART interrupt: input, and transmission
        // that writers leave behind.
        console::enable_interrupts();
    }
    loop {
        for v in p.vcpus.iter_mut() {
            v.sync_power();
        }
        let count = p.vcpus.len();
        let pick = p.rr.pick(count, |i| p.vcpus[i].runnable());
        match pick {
            Some(i) => run_vcpu(&mut p, i),
            None => {
                PCPU_RUNNING_VM[me].store(0, Ordering::Release);
                if me == 0 {
                    console::pump();
                }
                // SAFETY: sleeps until an interrupt is pending (IRQs stay masked at EL2).
                unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
                handle_irqs(&mut p);
            }
        }
    }
}

/// Switches this CPU to vCPU `i` if another one is loaded.
fn switch_to(p: &mut PcpuState, i: usize) {
    let fresh = core::mem::take(&mut p.vcpus[i].fresh);
    if p.loaded == Some(i) && !fresh {
        return;
    }
    // A restarted vCPU's old hardware state is discarded, not saved.
    if let Some(old) = p.loaded.filter(|&old| old != i) {
        let v = &mut p.vcpus[old];
        hw::save_el1(&mut v.el1);
        hw::save_fp(&mut v.fp);
        v.timer = hw::save_timer();
        hw::restore_timer(&TimerRegs { ctl: 0, cval: 0 });
        v.gicv.vmcr = gic::read_vmcr();
        (v.gicv.ap0r0, v.gicv.ap1r0) = gic::read_apr();
    }
    let v = &mut p.vcpus[i];
    hw::load_vm(v.vm.vttbr, v.vm.cntvoff);
    hw::set_vmpidr(v.shared().mpidr);
    hw::restore_el1(&v.el1);
    hw::restore_fp(&v.fp);
    hw::restore_timer(&v.timer);
    gic::write_vmcr(v.gicv.vmcr);
    gic::write_apr(v.gicv.ap0r0, v.gicv.ap1r0);
    p.loaded = Some(i);
    update_hyp_timer(p);
}

/// Arms the EL2 timer for the earliest virtual-timer deadline of this CPU's unloaded vCPUs.
fn update_hyp_timer(p: &PcpuState) {
    let next = p
        .vcpus
        .iter()
        .enumerate()
        .filter(|(i, v)| {
            Some(*i) != p.loaded && v.timer.armed() && v.shared().power() == PowerState::On
        })
        .map(|(_, v)| v.timer.cval.wrapping_add(v.vm.cntvoff))
        .min();
    let tick = p.tick.map(|t| hw::counter() + t);
    let next = match (next, tick) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    hw::set_hyp_timer(next);
}

/// Runs vCPU `i` until it blocks, yields, stops or its slice ends.
fn run_vcpu(p: &mut PcpuState, i: usize) {
    switch_to(p, i);
    let slice_start = cpu::now_ns();
    PCPU_RUNNING_VM[p.me].store(p.vcpus[i].vm.id, Ordering::Release);
    loop {
        let v = &mut p.vcpus[i];
        if !v.sync_power() || v.vm.epoch.load(Ordering::Acquire) != v.epoch {
            break;
        }
        let lrs = &mut v.lrs[..p.lr_count];
        let more = v.vm.vgic.lock().flush(v.index, lrs);
        for (n, lr) in lrs.iter().enumerate() {
            gic::write_lr(n, *lr);
        }
        gic::write_hcr(gic::ICH_HCR_EN | if more { gic::ICH_HCR_UIE } else { 0 });
        let snap = hw::run(&mut v.regs);
        gic::write_hcr(0);
        for (n, lr) in lrs.iter_mut().enumerate() {
            *lr = gic::read_lr(n);
        }
        v.vm.vgic.lock().sync(v.index, lrs);
        passthrough::settle(v.vm);
        v.vm.stats.exits.fetch_add(1, Ordering::Relaxed);
        let outcome = handle_exit(v, exit::decode(&snap));
        if matches!(outcome, Outcome::Irq) {
            handle_irqs(p);
        }
        let v = &p.vcpus[i];

        match outcome {
            Outcome::Continue | Outcome::Irq => {}
            Outcome::Block | Outcome::Yield | Outcome::Leave => break,
        }
        if v.vm.state() == VmState::Stopped {
            break;
        }
        let others =
            p.vcpus.len() > 1 && (0..p.vcpus.len()).any(|k| k != i && p.vcpus[k].runnable());
        if sched::should_preempt(slice_start, cpu::now_ns(), others) {
            break;
        }
    }
    PCPU_RUNNING_VM[p.me].store(0, Ordering::Release);
}

/// What the loop does after an exit.
enum Outcome {
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

struct Env<'a> {
    v: &'a Vcpu,
}

impl CallEnv for Env<'_> {
    fn vm_info(&self) -> pv_abi::VmInfo {
        pv_abi::VmInfo {
            vm_id: u64::from(self.v.vm.id),
            vcpu_id: self.v.index as u64,
            vcpu_count: self.v.vm.vcpus.len() as u64,
        }
    }
    fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize> {
        self.v.vm.vcpu_by_mpidr(mpidr)
    }
    fn power_state(&self, i: usize) -> PowerState {
        self.v
            .vm
            .vcpus
            .get(i)
            .map_or(PowerState::Off, |s| s.power())
    }
    fn is_ram(&self, ipa: u64) -> bool {
        self.v.vm.is_ram(ipa)
    }
    fn console_write(&mut self, bytes: &[u8]) -> usize {
        self.v.vm.console_write(bytes)
    }
    fn console_read(&mut self, out: &mut [u8]) -> usize {
        self.v.vm.console.lock().read_input(out)
    }
    fn stat(&self, id: pv_abi::StatId) -> u64 {
        let s = &self.v.vm.stats;
        match id {
            pv_abi::StatId::Exits => s.exits.load(Ordering::Relaxed),
            pv_abi::StatId::Hypercalls => s.hypercalls.load(Ordering::Relaxed),
            pv_abi::StatId::VirqsInjected => s.virqs.load(Ordering::Relaxed),
            pv_abi::StatId::MmioEmulated => s.mmio.load(Ordering::Relaxed),
            pv_abi::StatId::WfiExits => s.wfi.load(Ordering::Relaxed),
            pv_abi::StatId::UptimeNs => cpu::now_ns(),
        }
    }
}

fn handle_exit(v: &mut Vcpu, e: VmExit) -> Outcome {
    match e {
        VmExit::Irq => Outcome::Irq,
        VmExit::Hvc(_) => smccc_call(v),
        VmExit::Smc(_) => {
            // Trapped SMC: the PC still points at it. Same service as HVC.
            v.regs.pc += 4;
            smccc_call(v)
        }
        VmExit::Wfi => {
            v.regs.pc += 4;
            v.vm.stats.wfi.fetch_add(1, Ordering::Relaxed);
            if v.vm.vgic.lock().has_deliverable(v.index) {
                Outcome::Continue
            } else {
                v.blocked = true;
                Outcome::Block
            }
        }
        VmExit::Wfe => {
            v.regs.pc += 4;
            Outcome::Yield
        }
        VmExit::Mmio(a) => mmio(v, &a),
        VmExit::MmioNoSyndrome { ipa, write } => {
            if v.vm.vgic.lock().decode_ipa(ipa).is_some() {
                let pc = v.regs.pc;
                v.vm.stop(format_args!(
                    "vCPU {} accessed the vGIC at {ipa:#x} with an instruction Tandem cannot emulate \
                     (no syndrome: use plain loads/stores), PC {pc:#x}",
                    v.index
                ));
                Outcome::Leave
            } else {
                inject_abort(v, ipa, write);
                Outcome::Continue
            }
        }
        VmExit::InstrAbort { ipa } => {
            debug!(
                "VM '{}' vCPU {}: instruction fetch from unmapped IPA {ipa:#x}",
                v.vm.name(),
                v.index
            );
            let esr = inject::instr_abort_esr(v.regs.pstate);
            hw::inject_sync(
                &mut v.regs,
                &hw::El1Exception {
                    esr,
                    far: Some(ipa),
                },
            );
            Outcome::Continue
        }
        VmExit::SysReg(a) => sysreg_access(v, &a),
        VmExit::FpTrap => {
            hw::inject_sync(
                &mut v.regs,
                &hw::El1Exception {
                    esr: inject::undefined_esr(),
                    far: None,
                },
            );
            Outcome::Continue
        }
        VmExit::SError => {
            let pc = v.regs.pc;
            v.vm.stop(format_args!("SError from vCPU {} at PC {pc:#x}", v.index));
            Outcome::Leave
        }
        VmExit::Other(ec) => {
            let pc = v.regs.pc;
            v.vm.stop(format_args!(
                "unexpected exit (exception class {ec:#04x}) from vCPU {} at PC {pc:#x}",
                v.index
            ));
            Outcome::Leave
        }
    }
}

fn inject_abort(v: &mut Vcpu, ipa: u64, write: bool) {
    debug!(
        "VM '{}' vCPU {}: {} of unmapped IPA {ipa:#x}: external abort injected",
        v.vm.name(),
        v.index,
        if write { "write" } else { "read" }
    );
    let esr = inject::data_abort_esr(v.regs.pstate, write);
    hw::inject_sync(
        &mut v.regs,
        &hw::El1Exception {
            esr,
            far: Some(ipa),
        },
    );
}

fn smccc_call(v: &mut Vcpu) -> Outcome {
    v.vm.stats.hypercalls.fetch_add(1, Ordering::Relaxed);
    let mut args = pv_abi::HvcArgs { x: [0; 8] };
    args.x.copy_from_slice(&v.regs.x[..8]);
    let (ret, action) = hypercall::dispatch(&args, &mut Env { v });
    if action != CallAction::CpuOff {
        v.regs.x[..4].copy_from_slice(&ret.x);
    }
    match action {
        CallAction::Resume => Outcome::Continue,
        CallAction::Yield => Outcome::Yield,
        CallAction::CpuOn {
            vcpu,
            entry,
            context,
        } => {
            let target = &v.vm.vcpus[vcpu];
            *target.start.lock() = Some((entry, context));
            target.set_power(PowerState::OnPending);
            vm::kick_pcpu(target.pcpu);
            Outcome::Continue
        }
        CallAction::CpuOff => {
            v.shared().set_power(PowerState::Off);
            Outcome::Leave
        }
        CallAction::SystemOff => {
            v.vm.stop(format_args!("powered off by the guest (PSCI SYSTEM_OFF)"));
            Outcome::Leave
        }
        CallAction::SystemReset => {
            v.vm.reset("PSCI SYSTEM_RESET");
            Outcome::Leave
        }
    }
}

fn mmio(v: &mut Vcpu, a: &MmioAccess) -> Outcome {
    let decoded = v.vm.vgic.lock().decode_ipa(a.ipa);
    let Some((frame, offset)) = decoded else {
        inject_abort(v, a.ipa, a.write);
        return Outcome::Continue;
    };
    v.vm.stats.mmio.fetch_add(1, Ordering::Relaxed);
    if a.write {
        let value = exit::store_value(v.regs.get(a.reg), a);
        let result = v.vm.vgic.lock().mmio_write(frame, offset, a.size, value);
        match result {
            Ok(kick) => v.vm.kick(kick),
            Err(_) => {
                inject_abort(v, a.ipa, true);
                return Outcome::Continue;
            }
        }
    } else {
        let result = v.vm.vgic.lock().mmio_read(frame, offset, a.size);
        match result {
            Ok(raw) => v.regs.set(a.reg, exit::load_value(raw, a)),
            Err(_) => {
                inject_abort(v, a.ipa, false);
                return Outcome::Continue;
            }
        }
    }
    v.regs.pc += 4;
    Outcome::Continue
}

fn sysreg_access(v: &mut Vcpu, a: &crate::aarch64::esr::SysRegAccess) -> Outcome {
    match sysreg::classify(a) {
        SysRegAction::IdRead { crm, op2 } => {
            v.regs.set(
                a.rt,
                sysreg::sanitize_id(crm, op2, hw::read_id_register(crm, op2)),
            );
        }
        SysRegAction::Sgi1r => {
            let value = v.regs.get(a.rt);
            let kick = v.vm.vgic.lock().sgi1r_write(v.index, value);
            v.vm.stats
                .virqs
                .fetch_add(u64::from(kick.count_ones()), Ordering::Relaxed);
            v.vm.kick(kick);
        }
        SysRegAction::RazWi => {
            if a.is_read {
                v.regs.set(a.rt, 0);
            }
        }
        SysRegAction::Undefined => {
            debug!(
                "VM '{}' vCPU {}: {:?} is not available: UNDEFINED injected",
                v.vm.name(),
                v.index,
                a
            );
            hw::inject_sync(
                &mut v.regs,
                &hw::El1Exception {
                    esr: inject::undefined_esr(),
                    far: None,
                },
            );
            return Outcome::Continue;
        }
    }
    v.regs.pc += 4;
    Outcome::Continue
}

/// Acknowledges and handles every pending physical interrupt on this CPU.
fn handle_irqs(p: &mut PcpuState) {
    loop {
        let intid = gic::ack();
        if intid >= 1020 {
            break;
        }
        match intid {
            INTID_VTIMER => {
                // The loaded vCPU's timer fired: mask it at the source, inject the virtual PPI.
                if let Some(i) = p.loaded {
                    let v = &mut p.vcpus[i];
                    v.timer = hw::mask_vtimer();
                    v.vm.inject(INTID_VTIMER, Some(v.index));
                } else {
                    hw::mask_vtimer();
                }
            }
            INTID_HYP_TIMER => {
                let now = hw::counter();
                for (k, v) in p.vcpus.iter_mut().enumerate() {
                    if Some(k) != p.loaded
                        && v.timer.armed()
                        && v.timer.cval.wrapping_add(v.vm.cntvoff) <= now
                    {
                        v.timer.ctl |= 0b10;
                        v.vm.inject(INTID_VTIMER, Some(v.index));
                    }
                }
                update_hyp_timer(p);
            }
            INTID_MAINTENANCE => {}
            i if u64::from(i) == UART_INTID.load(Ordering::Relaxed) && i != 0 => {
                console_input();
                console::pump();
            }
            // Forwarded to its VM, or disabled: the module ends the interrupt itself.
            i @ 32..=1019 => {
                passthrough::handle_spi(i);
                continue;
            }
            i if i < 16 => {}
            other => debug!("unexpected physical interrupt {other} on cpu{}", p.me),
        }
        gic::eoi(intid);
    }
}

/// Whether VM `id` has the console focus (its output is streamed, not line-buffered).
pub fn has_focus(id: u32) -> bool {
    match SWITCH.lock().focus {
        Focus::Vm(i) => VMS
            .get()
            .and_then(|v| v.get(i))
            .is_some_and(|vm| vm.id == id),
        Focus::Monitor => false,
    }
}

fn focus_name(f: Focus) -> &'static str {
    match f {
        Focus::Vm(i) => VMS.get().and_then(|v| v.get(i)).map_or("?", |vm| vm.name()),
        Focus::Monitor => "the Tandem monitor",
    }
}

/// Routes UART input: to the focused VM, to the monitor, or switches focus.
fn console_input() {
    let mut to_vm = [0u8; 64];
    let mut to_vm_len = 0;
    let vm_count = VMS.get().map_or(0, |v| v.len());
    let mut sw = SWITCH.lock();
    let mut target = sw.focus;
    for _ in 0..256 {
        let Some(b) = console::read_byte() else { break };
        let input = match sw.focus {
            Focus::Vm(_) => monitor::vm_input(b),
            Focus::Monitor => sw.editor.get_or_insert_with(LineEditor::default).feed(b),
        };
        match input {
            Input::Switch => {
                deliver(target, &to_vm[..to_vm_len]);
                to_vm_len = 0;
                sw.focus = sw.focus.next(vm_count);
                target = sw.focus;
                console::write_fmt(format_args!(
                    "\n[tandem] console input: {} (Ctrl-] switches)\n",
                    focus_name(sw.focus)
                ));
                if sw.focus == Focus::Monitor {
                    console::write_fmt(format_args!("tandem> "));
                }
            }
            Input::ToVm(b) => {
                if to_vm_len == to_vm.len() {
                    deliver(target, &to_vm);
                    to_vm_len = 0;
                }
                to_vm[to_vm_len] = b;
                to_vm_len += 1;
            }
            Input::Echo(b) => console::write_fmt(format_args!("{}", b as char)),
            Input::Erase => console::write_fmt(format_args!("\x08 \x08")),
            Input::Line => {
                console::write_fmt(format_args!("\n"));
                let mut line = [0u8; monitor::LINE_MAX];
                let text = sw.editor.as_ref().map_or("", |e| e.line());
                let n = text.len();
                line[..n].copy_from_slice(text.as_bytes());
                drop(sw);
                run_command(core::str::from_utf8(&line[..n]).unwrap_or(""));
                console::write_fmt(format_args!("tandem> "));
                sw = SWITCH.lock();
            }
            Input::None => {}
        }
    }
    drop(sw);
    deliver(target, &to_vm[..to_vm_len]);
}

fn deliver(target: Focus, bytes: &[u8]) {
    let Focus::Vm(i) = target else { return };
    let Some(vm) = VMS.get().and_then(|v| v.get(i)) else {
        return;
    };
    if bytes.is_empty() || vm.state() != VmState::Running {
        return;
    }
    let accepted = vm.console.lock().push_input(bytes);
    if accepted > 0 && vm.desc.console_intid != 0 {
        vm.inject(vm.desc.console_intid, None);
    }
}

fn find_vm(name: &str) -> Option<&'static Vm> {
    VMS.get()?.iter().copied().find(|vm| vm.name() == name)
}

fn run_command(line: &str) {
    match monitor::parse(line) {
        Command::Help => console::write_fmt(format_args!("{}\n", monitor::HELP)),
        Command::Vms => {
            for vm in VMS.get().map_or(&[][..], |v| v.as_slice()) {
                let s = &vm.stats;
                console::write_fmt(format_args!(
                    "  {} {:<12} {:<8} {} vCPU(s) {:>5} MiB  exits={} hypercalls={} virqs={} mmio={} wfi={}\n",
                    vm.id,
                    vm.name(),
                    if vm.state() == VmState::Running {
                        "running"
                    } else {
                        "stopped"
                    },
                    vm.vcpus.len(),
                    vm.desc.ram_size >> 20,
                    s.exits.load(Ordering::Relaxed),
                    s.hypercalls.load(Ordering::Relaxed),
                    s.virqs.load(Ordering::Relaxed),
                    s.mmio.load(Ordering::Relaxed),
                    s.wfi.load(Ordering::Relaxed),
                ));
            }
        }
        Command::Reset(name) => match find_vm(name) {
            Some(vm) => vm.reset("monitor command"),
            None => console::write_fmt(format_args!("no VM named '{name}'\n")),
        },
        Command::Stop(name) => match find_vm(name) {
            Some(vm) => vm.stop(format_args!("monitor command")),
            None => console::write_fmt(format_args!("no VM named '{name}'\n")),
        },
        Command::Empty => {}
        Command::Unknown(what) => console::write_fmt(format_args!(
            "unknown command '{what}'; {}\n",
            monitor::HELP
        )),
    }
}
