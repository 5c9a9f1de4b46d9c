//! One physical CPU's loop: which vCPU runs, the world switch around it, its
//! list registers, and the EL2 (preemption) timer.
//!
//! [`Pcpu::step`] is one iteration: look at what changed if asked to, then
//! either enter the chosen vCPU once and handle its exit, or idle until an
//! interrupt. The target calls it forever; host tests call it step by step.
//!
//! What an exit costs is what it needs. On the common path (a hypercall, a
//! trapped register) the loop reads one flag of its own CPU and one of the
//! vCPU, and touches no lock, no list register and no clock:
//! - list registers are read back only when the last flush left some in use
//!   or the exit needs the vGIC model, and refilled only when the vGIC
//!   changed for this vCPU (`VcpuShared::vgic_dirty`) or was read back;
//! - power, reset and runnability are re-examined only when another CPU (or
//!   an interrupt handler here) raised this CPU's attention flag;
//! - the slice clock exists only on a shared CPU, and the EL2 timer, not a
//!   clock read per exit, ends a slice.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::exits::{self, Outcome};
use super::vm::Vm;
use super::{Hypervisor, ResetProgress, irq};
use crate::arch::Hw;
use crate::hypercall::PowerState;
use crate::sched::{self, Budget, FixedPriority, Params, Policy};
use crate::vcpu::exit;
use crate::vcpu::regs::{GuestRegs, VcpuContext};
use crate::vgic::{MAX_LRS, Vgic};

/// A front-end vCPU's register access forwarded to a virtio back-end.
#[derive(Clone, Copy, Debug)]
pub struct Awaiting {
    /// The channel (index in [`Hypervisor::channels`]).
    pub channel: usize,
    /// The access's sequence number.
    pub seq: u32,
    /// The trapped access, completed when the answer comes.
    pub access: crate::vcpu::exit::MmioAccess,
    /// Counter value after which it completes without an answer.
    pub deadline: u64,
}

/// A vCPU as its physical CPU holds it.
pub struct Vcpu {
    /// Its VM's index in [`Hypervisor::vms`].
    pub vm: usize,
    /// Its index in the VM.
    pub index: usize,
    /// The VM epoch its state belongs to.
    epoch: u32,
    /// General-purpose registers, PC and PSTATE.
    pub regs: GuestRegs,
    /// State kept in the CPU while loaded.
    pub ctx: VcpuContext,
    /// The list-register values of the last flush (read back into on sync).
    lrs: [u64; MAX_LRS],
    /// How many list registers the last flush filled; while loaded they are
    /// live in the hardware until synced.
    lr_used: usize,
    /// `lrs[..lr_used]` were read back from the hardware at a switch and wait
    /// to be folded into the model (its vGIC was busy then).
    lrs_saved: bool,
    /// The list registers must be (re)filled before the next entry.
    need_flush: bool,
    /// Waiting in WFI for an interrupt.
    pub blocked: bool,
    /// Stopped on a forwarded register access until the back-end answers.
    pub awaiting: Option<Awaiting>,
    /// Since when it could run but waits for this CPU (its stolen time).
    waiting_since: Option<u64>,
    /// Woken ahead of its timer deadline ([`WAKE_LEAD_NS`]): it waits for
    /// its timer in place before it is entered, still in its WFI.
    early: bool,
}

impl Vcpu {
    /// vCPU `index` of the VM at `vm`.
    pub fn new(vm: usize, index: usize) -> Self {
        Self {
            vm,
            index,
            epoch: 0,
            regs: GuestRegs::default(),
            ctx: VcpuContext::reset(),
            lrs: [0; MAX_LRS],
            lr_used: 0,
            lrs_saved: false,
            need_flush: true,
            blocked: false,
            awaiting: None,
            waiting_since: None,
            early: false,
        }
    }

    /// Folds the list registers the guest may have changed back into the
    /// vGIC model (`vgic` locked by the caller). Afterwards the model is
    /// authoritative and the LRs must be refilled before the next entry.
    pub fn sync_lrs<H: Hw>(&mut self, vgic: &mut Vgic, hw: &mut H) {
        if self.lr_used > 0 {
            if !self.lrs_saved {
                hw.read_lrs(&mut self.lrs[..self.lr_used]);
            }
            vgic.sync_with::<H::Lr>(self.index, &self.lrs[..self.lr_used]);
            self.lr_used = 0;
            self.lrs_saved = false;
        }
        self.need_flush = true;
    }

    /// Leaves the CPU: its list registers are folded into the model if its
    /// vGIC is free, else read back and kept until its next refill. The CPU
    /// may be on its way to a more urgent vCPU, which must not wait for a
    /// lock that another of this VM's vCPUs holds. Until folded, the model
    /// sees them as it does while the vCPU runs: still in its LRs.
    fn leave_lrs<H: Hw>(&mut self, vm: &Vm, hw: &mut H) {
        if self.lr_used > 0 {
            match vm.vgic.try_lock() {
                Some(mut vgic) => self.sync_lrs(&mut vgic, hw),
                None if !self.lrs_saved => {
                    hw.read_lrs(&mut self.lrs[..self.lr_used]);
                    self.lrs_saved = true;
                }
                None => {}
            }
        }
        self.need_flush = true;
    }

    /// Forgets its list registers (its VM was reloaded, or it starts afresh).
    fn clear_lrs(&mut self) {
        self.lr_used = 0;
        self.lrs_saved = false;
        self.need_flush = true;
    }
}

/// What the CPU's list registers and virtual interface control hold.
struct LrHardware {
    /// Number of list registers.
    count: usize,
    /// List registers holding non-zero values.
    in_use: usize,
    /// The underflow request as last written (`None`: the interface was not
    /// enabled yet).
    underflow: Option<bool>,
}

impl LrHardware {
    /// Reads back and refills the list registers of `v` (loaded) from `vm`'s vGIC.
    fn refill<H: Hw>(&mut self, v: &mut Vcpu, vm: &Vm, hw: &mut H) {
        let n = self.count;
        let more = {
            let mut vgic = vm.vgic.lock();
            v.sync_lrs(&mut vgic, hw);
            let more = vgic.flush_with::<H::Lr>(v.index, &mut v.lrs[..n]);
            v.lr_used = v.lrs[..n].iter().take_while(|&&lr| lr != 0).count();
            more
        };
        v.need_flush = false;
        let write = v.lr_used.max(self.in_use);
        if write > 0 {
            hw.write_lrs(&v.lrs[..write]);
        }
        self.in_use = v.lr_used;
        if self.underflow != Some(more) {
            hw.set_virtual_interface(more);
            self.underflow = Some(more);
        }
    }
}

/// The scheduling parameters of `vm`'s vCPUs, in counter ticks at `hz`.
fn sched_params(vm: &Vm, hz: u64) -> Params {
    let us = |n: u32| sched::ns_to_ticks(u64::from(n) * 1000, hz);
    Params {
        priority: vm.desc.priority,
        budget: (vm.desc.budget_us > 0).then(|| Budget {
            budget: us(vm.desc.budget_us),
            period: us(vm.desc.period_us),
        }),
    }
}

/// The highest priority among `vcpus`, if it is above some other's there.
fn urgent_priority(vcpus: &[Vcpu], hv: &Hypervisor) -> Option<u8> {
    let priorities = || vcpus.iter().map(|v| hv.vms[v.vm].desc.priority);
    let top = priorities().max()?;
    priorities().any(|p| p < top).then_some(top)
}

/// Everything a physical CPU keeps for its loop.
pub struct Pcpu {
    me: usize,
    /// The vCPUs pinned to this CPU.
    pub vcpus: Vec<Vcpu>,
    /// Whose context is in the CPU (EL1, FP, timer, vGIC CPU interface).
    loaded: Option<usize>,
    /// The VM (index) whose vCPU last ran here, for [`Hw::isolate_branch_predictor`].
    last_vm: Option<usize>,
    /// The vCPU this CPU runs until something changes.
    current: Option<usize>,
    policy: FixedPriority,
    /// When the current vCPU's CPU time was last charged to it.
    charged_at: u64,
    /// The list registers as the hardware holds them.
    lr_hw: LrHardware,
    /// When the running slice ends (only while another vCPU waits here).
    slice_end: Option<u64>,
    /// The slice ran out: pick again.
    preempt: bool,
    /// Re-examine power, resets and the choice of vCPU before entering.
    resched: bool,
    /// The EL2 timer must be re-planned.
    timer_dirty: bool,
    /// What the EL2 timer is armed for: a write that changes nothing is
    /// skipped (under `-icount` a timer write may end this CPU's turn).
    hyp_timer: Option<u64>,
    /// This CPU's emulator tick is armed, or needs none (while it runs vCPUs).
    ticking: bool,
    /// The priority of the vCPUs here that outrank every other one here, if
    /// some do: they run without this CPU's emulator tick.
    urgent_priority: Option<u8>,
    /// When paused console output continues (the console CPU only).
    console_resume: Option<u64>,
    /// The VMs whose vCPU 0 runs here: this CPU's timer serves their
    /// watchdogs and held-back restarts.
    own_vms: Vec<usize>,
    /// The VM this CPU is reloading after a reset, piece by piece.
    reloading: Option<usize>,
}

/// A vCPU's timer deadline is served this early when it outranks the vCPU in
/// its CPU: the CPU switches to it ahead of time, so that the switch (about
/// 2.5 µs under `-icount`) is not in its latency, and the vCPU then waits for
/// its timer in place ([`Pcpu::wait_in_place`]). The vCPU it preempts loses
/// at most this much per deadline.
const WAKE_LEAD_NS: u64 = 5_000;

/// A vCPU that shares its CPU and blocks with its timer due within this keeps
/// the CPU and waits for the timer in place ([`Pcpu::wait_in_place`]): a vCPU
/// switched in instead would be switched out again [`WAKE_LEAD_NS`] before the
/// deadline, and get less than the two switches cost. (A vCPU alone on its CPU
/// blocks: it stays loaded, and the idle CPU is woken early for it.)
const STAY_NS: u64 = 2 * WAKE_LEAD_NS;

/// Between two FIFO loads of a console backlog: 32 bytes per 4 µs is about
/// 8 MB/s, far beyond a real UART, at about a fifth of the console CPU.
const CONSOLE_PACE_NS: u64 = 4_000;

impl Pcpu {
    /// The loop state of CPU `me` for `vcpus`, with `lr_count` list registers.
    pub fn new(me: usize, vcpus: Vec<Vcpu>, lr_count: usize, hv: &Hypervisor) -> Self {
        Self {
            me,
            loaded: None,
            last_vm: None,
            current: None,
            policy: FixedPriority::new(
                vcpus
                    .iter()
                    .map(|v| sched_params(&hv.vms[v.vm], hv.counter_hz))
                    .collect(),
                sched::ns_to_ticks(sched::SLICE_NS, hv.counter_hz),
                0,
            ),
            charged_at: 0,
            lr_hw: LrHardware {
                count: lr_count.min(MAX_LRS),
                in_use: 0,
                underflow: None,
            },
            slice_end: None,
            preempt: false,
            resched: true,
            timer_dirty: true,
            hyp_timer: None,
            ticking: false,
            urgent_priority: urgent_priority(&vcpus, hv),
            console_resume: None,
            own_vms: vcpus
                .iter()
                .filter(|v| v.index == 0)
                .map(|v| v.vm)
                .collect(),
            reloading: None,
            vcpus,
        }
    }

    /// The vCPU that runs next (after a step), by local index.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The vCPU whose context is in the CPU.
    pub fn loaded(&self) -> Option<usize> {
        self.loaded
    }

    /// One iteration of the loop: examine changes if asked to, then run the
    /// chosen vCPU until its next exit, or idle until an interrupt.
    pub fn step(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        if let Some(i) = self.reloading {
            // One piece of a VM's reload, then whatever has priority.
            if hv.reset_step(&hv.vms[i], hw) != ResetProgress::Working {
                self.reloading = None;
                self.resched = true;
                self.timer_dirty = true;
            }
        }
        let shared = &hv.pcpus[self.me];
        if shared.attention.load(Ordering::Relaxed) {
            shared.attention.store(false, Ordering::SeqCst);
            self.resched = true;
        }
        if self.resched || self.current.is_none() {
            self.resched = false;
            self.reschedule(hv, hw);
        }
        if self.timer_dirty {
            self.plan_timer(hv, hw);
        }
        match self.current {
            Some(i) => {
                // An urgent vCPU runs without this CPU's tick (see `tick_fired`).
                match (self.ticking, self.urgent(i, hv)) {
                    (false, false) => self.tick(hv, hw),
                    (true, true) => self.untick(hv, hw),
                    _ => {}
                }
                // Woken early: its WFI completes with its timer's interrupt, not before.
                if core::mem::take(&mut self.vcpus[i].early) && !self.wait_in_place(i, hv, hw) {
                    self.vcpus[i].blocked = true;
                    self.stop_current(hv, hw);
                    return;
                }
                self.run_once(i, hv, hw);
            }
            None => self.idle(hv, hw),
        }
    }

    /// Arms this CPU's emulator tick one period from now, if the board has
    /// one (see `BoardDesc::emulator_tick_ns`).
    ///
    /// Under QEMU's `-icount`, each CPU runs in turn for a share of the time
    /// up to the next timer deadline of any CPU. The tick keeps that deadline
    /// near while this CPU is busy: otherwise, while this CPU's EL2 timer has
    /// fired and waits for its handler, another CPU's turn could last until
    /// some guest's distant timer, and hold this CPU (its RTOS) back by as
    /// much. It has a timer of its own for that reason: the EL2 timer is
    /// empty exactly when it matters.
    #[cold]
    fn tick(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        if let Some(t) = hv.emulator_tick {
            hw.set_tick_timer(Some(hw.now() + t));
        }
        // Without a tick (one VM, or a board that needs none) there is nothing to arm.
        self.ticking = true;
    }

    /// The emulator tick fired: re-armed, unless an urgent vCPU is this CPU's
    /// current one. Such a vCPU runs without the tick: under `-icount` every
    /// timer write may end this CPU's turn, and another busy CPU then runs up
    /// to a quarter tick (5 µs) between the urgent vCPU and its deadline, as
    /// QEMU traces of the `shared` layout showed. The other busy CPUs' ticks
    /// still bound the turns; this one is armed again before a lower priority
    /// is entered.
    #[cold]
    pub(super) fn tick_fired(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        if self.current.is_some_and(|i| self.urgent(i, hv)) {
            self.untick(hv, hw);
        } else {
            self.tick(hv, hw);
        }
    }

    /// Turns this CPU's emulator tick off (clearing the timer is no deadline,
    /// so it never ends a turn).
    #[cold]
    fn untick(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        if hv.emulator_tick.is_some() {
            hw.set_tick_timer(None);
        }
        self.ticking = false;
    }

    fn idle(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        // An idle CPU takes no turns: it needs no tick.
        if self.ticking {
            self.untick(hv, hw);
        }
        // A reload in progress is this CPU's background work: no sleeping.
        if self.reloading.is_none() {
            hw.wait_for_interrupt();
        }
        irq::handle(self, hv, hw);
    }

    /// Runs vCPU `i` until an exit needs more than its handler: an
    /// interrupt at EL2, a block, a yield, leaving, or this CPU's attention
    /// raised. Everything the inner loop needs is looked up once.
    fn run_once(&mut self, i: usize, hv: &Hypervisor, hw: &mut impl Hw) {
        loop {
            match self.run_guest(i, hv, hw) {
                Outcome::Continue => return,
                Outcome::Irq => {
                    if !self.after_irq(i, hv, hw) {
                        return;
                    }
                }
                Outcome::Block => {
                    if self.wait_in_place(i, hv, hw) {
                        continue;
                    }
                    self.vcpus[i].blocked = true;
                    self.stop_current(hv, hw);
                    return;
                }
                Outcome::Yield => {
                    self.preempt = true;
                    self.resched = true;
                    return;
                }
                Outcome::Leave => {
                    self.stop_current(hv, hw);
                    return;
                }
            }
        }
    }

    /// Handles the interrupts that made vCPU `i` exit; returns whether it goes
    /// straight back into the guest (the interrupts changed nothing this CPU
    /// must do).
    // Out of line: the exit loop's code stays as small as it was.
    #[inline(never)]
    fn after_irq(&mut self, i: usize, hv: &Hypervisor, hw: &mut impl Hw) -> bool {
        irq::handle(self, hv, hw);
        hw.reenter()
            && !self.resched
            && !self.timer_dirty
            && self.current == Some(i)
            && !hv.pcpus[self.me].attention.load(Ordering::Relaxed)
    }

    /// Enters vCPU `i` and handles its exits until one needs the loop.
    fn run_guest(&mut self, i: usize, hv: &Hypervisor, hw: &mut impl Hw) -> Outcome {
        let attention = &hv.pcpus[self.me].attention;
        let lr_hw = &mut self.lr_hw;
        let v = &mut self.vcpus[i];
        let vm = &hv.vms[v.vm];
        let dirty = &vm.vcpus[v.index].vgic_dirty;
        loop {
            if dirty.load(Ordering::Relaxed) {
                dirty.store(false, Ordering::SeqCst);
                v.need_flush = true;
            }
            if v.need_flush {
                lr_hw.refill(v, vm, hw);
            }
            let snap = hw.enter_guest(&mut v.regs);
            vm.stats.exits.fetch_add(1, Ordering::Relaxed);
            match exits::handle(hv, vm, v, hw, exit::decode(&snap)) {
                Outcome::Continue if hw.reenter() && !attention.load(Ordering::Relaxed) => {}
                outcome => return outcome,
            }
        }
    }

    /// The running vCPU `i` waits for an interrupt (WFI, or switched in
    /// early) and its own timer falls due within [`STAY_NS`] (alone on this
    /// CPU, [`WAKE_LEAD_NS`]): it keeps
    /// the CPU, which idles at EL2 with the vCPU's state in place until an
    /// interrupt. Returns whether the vCPU has an interrupt to take (enter
    /// it); `false` if something else needs the scheduler first (or the timer
    /// is not near), and the vCPU then blocks as usual.
    ///
    /// Switching away and back would cost the vCPU the world switch twice and
    /// put one of them between its deadline and its handler.
    // Out of line and cold: it must not cost the exit path (see `plan_timer`).
    #[cold]
    #[inline(never)]
    fn wait_in_place(&mut self, i: usize, hv: &Hypervisor, hw: &mut impl Hw) -> bool {
        let v = &self.vcpus[i];
        let vm = &hv.vms[v.vm];
        let timer = hw.loaded_vtimer();
        // Alone here, it loses no switch by blocking: it stays loaded, and is woken
        // early as the CPU's loaded sleeper.
        let stay = if self.vcpus.len() > 1 {
            STAY_NS
        } else {
            WAKE_LEAD_NS
        };
        let stay = sched::ns_to_ticks(stay, hv.counter_hz);
        let deadline = timer.cval.saturating_add(vm.cntvoff);
        if v.awaiting.is_some()
            || self.loaded != Some(i)
            || !timer.armed()
            || deadline > hw.now().saturating_add(stay)
        {
            return false;
        }
        loop {
            hw.wait_for_interrupt();
            irq::handle(self, hv, hw);
            // Something the scheduler must see first: a vCPU of higher priority (or
            // this one's budget) needs the CPU, or the VM stops. The vCPU blocks as
            // usual; an interrupt it has waits in its vGIC. A vCPU of lower priority
            // woken meanwhile waits for this one (the flags stay set for the next exit).
            if self.current != Some(i) || !vm.is_running() {
                return false;
            }
            if (self.resched || hv.pcpus[self.me].attention.load(Ordering::Relaxed))
                && self.must_give_way(i, hv)
            {
                return false;
            }
            if hw.now() >= deadline && hw.loaded_vtimer().armed() {
                // Due, but its interrupt has not come yet (another came first): take it
                // as if it had.
                self.vtimer_fired(hv, hw);
            }
            let v = &self.vcpus[i];
            let ready = vm.vcpus[v.index].vgic_dirty.load(Ordering::Acquire)
                || vm.vgic.lock().has_deliverable(v.index);
            if ready {
                return true;
            }
            // The timer fired (or the guest turned it off) and brought nothing the vCPU
            // takes (its guest disabled the interrupt): it blocks, and lower priorities run.
            if !hw.loaded_vtimer().armed() {
                return false;
            }
        }
    }

    /// Applies what other CPUs and interrupt handlers changed, then picks
    /// the vCPU to run.
    fn reschedule(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        // Leave the VM while deciding: a reset waiting for this CPU may then complete.
        hv.pcpus[self.me].inside.store(0, Ordering::SeqCst);
        for k in 0..self.vcpus.len() {
            self.sync_power(k, hv);
        }
        for k in 0..self.vcpus.len() {
            let vm = &hv.vms[self.vcpus[k].vm];
            if self.reloading.is_none() && hv.reset_step(vm, hw) == ResetProgress::Working {
                self.reloading = Some(vm.index);
            }
        }
        let now = hw.now();
        for v in &mut self.vcpus {
            if v.awaiting.is_some() && super::channel::complete(hv, v, now) {
                v.blocked = false;
            }
        }
        self.charge(now, hv);
        let count = self.vcpus.len().min(64);
        let mask = (0..count)
            .filter(|&k| self.runnable(k, hv))
            .fold(0u64, |m, k| m | 1 << k);
        let can_run = |k: usize| mask & (1 << k) != 0;
        let keep = self
            .current
            .filter(|&c| can_run(c) && !self.policy.must_yield(c, self.preempt, &can_run));
        let pick = match keep {
            Some(c) => Some(c),
            None => self.policy.pick(now, &can_run),
        };
        self.preempt = false;
        if pick != self.current || keep.is_none() {
            self.slice_end = None;
        }
        if pick != self.current
            && let Some(old) = self.current
        {
            let v = &self.vcpus[old];
            hv.vms[v.vm].vcpus[v.index]
                .running_since
                .store(0, Ordering::Relaxed);
        }
        self.account_waiting(pick, mask, now, hv, hw);
        self.current = pick;
        let Some(i) = pick else {
            self.timer_dirty = true;
            return;
        };
        let vm = &hv.vms[self.vcpus[i].vm];
        hv.pcpus[self.me].inside.store(vm.id, Ordering::SeqCst);
        if !vm.is_running() {
            // A reset or stop raced the choice; its attention request follows.
            hv.pcpus[self.me].inside.store(0, Ordering::SeqCst);
            self.current = None;
            return;
        }
        self.vcpus[i].blocked = false;
        if self.vcpus.len() > 1 && self.slice_end.is_none() {
            self.slice_end = Some(now + self.policy.slice(i));
        }
        self.switch_to(i, hv, hw);
        self.timer_dirty = true;
    }

    /// Applies starts and resets requested for local vCPU `k`.
    fn sync_power(&mut self, k: usize, hv: &Hypervisor) {
        let v = &mut self.vcpus[k];
        let vm = &hv.vms[v.vm];
        let epoch = vm.epoch.load(Ordering::Acquire);
        if epoch != v.epoch {
            // The VM was reloaded: this vCPU's state, LRs included, is gone.
            v.epoch = epoch;
            v.blocked = false;
            v.early = false;
            v.awaiting = None;
            v.clear_lrs();
        }
        if !vm.is_running() {
            return;
        }
        let shared = &vm.vcpus[v.index];
        if shared.power() != PowerState::OnPending {
            return;
        }
        let start = shared.start.lock().take();
        if let Some((entry, x0)) = start {
            v.regs = GuestRegs::at_entry(entry, x0);
            v.ctx = VcpuContext::reset();
            v.blocked = false;
            v.early = false;
            v.clear_lrs();
            if self.loaded == Some(k) {
                // The CPU holds the old life's state: never save it over the fresh one.
                self.loaded = None;
            }
            shared.set_power(PowerState::On);
            log::debug!("VM '{}' vCPU {} starts at {:#x}", vm.name(), v.index, entry);
        }
    }

    /// Whether local vCPU `k` can run. It never waits for its VM's vGIC:
    /// whoever holds that lock is the VM's business, and this CPU may be on
    /// its way to a higher-priority vCPU. A vGIC locked elsewhere counts as
    /// "it may run": a vCPU entered for nothing blocks again at its next WFI.
    fn runnable(&self, k: usize, hv: &Hypervisor) -> bool {
        let v = &self.vcpus[k];
        let vm = &hv.vms[v.vm];
        if !vm.is_running() {
            return false;
        }
        let shared = &vm.vcpus[v.index];
        match shared.power() {
            PowerState::On if v.awaiting.is_some() => false,
            PowerState::On => {
                !v.blocked
                    || shared.vgic_dirty.load(Ordering::Acquire)
                    || vm
                        .vgic
                        .try_lock()
                        .is_none_or(|vgic| vgic.has_deliverable(v.index))
            }
            // Held only while a CPU_ON stores or a start takes the entry point.
            PowerState::OnPending => shared.start.lock().is_some(),
            PowerState::Off => false,
        }
    }

    /// Whether local vCPU `k` has a higher priority than the one running here,
    /// or nothing runs: its timer deadlines are then served [`WAKE_LEAD_NS`]
    /// early (an idle CPU loses nothing by it).
    fn outranks_current(&self, k: usize, hv: &Hypervisor) -> bool {
        let priority = |k: usize| hv.vms[self.vcpus[k].vm].desc.priority;
        match self.current {
            Some(c) => c != k && priority(k) > priority(c),
            None => true,
        }
    }

    /// Whether the running vCPU `c` must leave the CPU to another one now.
    // Out of line and cold: see `wait_in_place`.
    #[cold]
    #[inline(never)]
    fn must_give_way(&self, c: usize, hv: &Hypervisor) -> bool {
        self.policy
            .must_yield(c, self.preempt, &|k| k != c && self.runnable(k, hv))
    }

    fn others_runnable(&self, c: usize, hv: &Hypervisor) -> bool {
        (0..self.vcpus.len()).any(|k| k != c && self.runnable(k, hv))
    }

    /// Makes vCPU `i`'s state the CPU's.
    fn switch_to(&mut self, i: usize, hv: &Hypervisor, hw: &mut impl Hw) {
        if self.loaded == Some(i) {
            return;
        }
        if let Some(old) = self.loaded {
            let v = &mut self.vcpus[old];
            v.leave_lrs(&hv.vms[v.vm], hw);
            hw.save_context(&mut v.ctx);
            v.ctx.gicv = hw.save_interface();
        }
        let last_vm = self.last_vm.replace(self.vcpus[i].vm);
        if let Some(last) = last_vm.filter(|&last| last != self.vcpus[i].vm) {
            // An SError the last VM left pending would be taken at the next entry,
            // blaming whoever that is: take it now, as the last VM's.
            if hw.take_pending_serror() {
                let vm = &hv.vms[last];
                hv.crash(
                    vm,
                    format_args!("SError (asynchronous, pending after its exit)"),
                    hw,
                );
            }
            hw.isolate_branch_predictor();
        }
        let v = &mut self.vcpus[i];
        let vm = &hv.vms[v.vm];
        hw.load_stage2(vm.vttbr, vm.cntvoff, vm.vcpus[v.index].mpidr);
        hw.load_context(&v.ctx);
        hw.load_interface(&v.ctx.gicv);
        v.need_flush = true;
        self.loaded = Some(i);
    }

    /// Arms the EL2 timer for the earliest of: the slice end when another
    /// vCPU waits, the virtual-timer deadlines of vCPUs not in the CPU,
    /// budgets, per-VM deadlines, forwarded accesses' timeouts and paused
    /// console output.
    // Out of line: inlined into its one caller it lengthened every exit (by 14
    // instructions on GICv2), though it runs only on a reschedule.
    #[inline(never)]
    pub(super) fn plan_timer(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        self.timer_dirty = false;
        let now = hw.now();
        let slice_end = match (self.slice_end, self.current) {
            (Some(end), Some(c)) if self.others_runnable(c, hv) => Some(end),
            _ => None,
        };
        let loaded = self.loaded;
        let lead = sched::ns_to_ticks(WAKE_LEAD_NS, hv.counter_hz);
        let unloaded = self.vcpus.iter().enumerate().filter_map(|(k, v)| {
            let vm = &hv.vms[v.vm];
            (Some(k) != loaded
                && v.ctx.timer.armed()
                && vm.vcpus[v.index].power() == PowerState::On)
                .then(|| {
                    let deadline = v.ctx.timer.cval.saturating_add(vm.cntvoff);
                    if self.outranks_current(k, hv) {
                        deadline.saturating_sub(lead)
                    } else {
                        deadline
                    }
                })
        });
        let policy = self
            .policy
            .next_event(self.current.map(|c| (c, self.charged_at)));
        let vms = self.vm_deadlines(hv, now);
        let accesses = self
            .vcpus
            .iter()
            .filter_map(|v| v.awaiting.map(|w| w.deadline));
        // The sleeping vCPU still in an idle CPU: its own timer would wake the CPU at its
        // deadline and put the way from idle to its entry into its latency. Woken
        // [`WAKE_LEAD_NS`] early, it waits for that timer in place instead.
        let in_place = self
            .loaded_sleeper_deadline(hv, hw)
            .map(|d| d.saturating_sub(lead));
        let next = sched::next_deadline(
            slice_end,
            unloaded
                .chain(in_place)
                .chain(policy)
                .chain(vms)
                .chain(accesses)
                .chain(self.console_resume),
        );
        if next != self.hyp_timer {
            hw.set_hyp_timer(next);
            self.hyp_timer = next;
        }
    }

    /// The EL2 timer fired: deliver due virtual-timer deadlines of vCPUs not
    /// in the CPU, end an expired slice, and re-arm the timer.
    pub(super) fn hyp_timer_fired(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        let now = hw.now();
        let lead = sched::ns_to_ticks(WAKE_LEAD_NS, hv.counter_hz);
        // The highest priority woken ahead of its deadline.
        let mut woken = None;
        for k in 0..self.vcpus.len() {
            let early = self.outranks_current(k, hv);
            let v = &mut self.vcpus[k];
            let vm = &hv.vms[v.vm];
            let deadline = v.ctx.timer.cval.saturating_add(vm.cntvoff);
            if Some(k) != self.loaded
                && v.ctx.timer.armed()
                && deadline > now
                && early
                && deadline <= now.saturating_add(lead)
                && v.blocked
            {
                // Its deadline is near: switch to it now; it waits for its timer in place.
                self.wake_early(k);
                woken = woken.max(Some(vm.desc.priority));
            } else if Some(k) != self.loaded && v.ctx.timer.armed() && deadline <= now {
                // Fired while out of the CPU: the guest finds it masked, as if Tandem had
                // taken the interrupt (see `irq`).
                v.ctx.timer.ctl |= 0b10;
                hv.inject(vm, super::INTID_VTIMER, Some(v.index), hw);
                self.resched = true;
            }
        }
        if let Some(k) = self.loaded
            && self
                .loaded_sleeper_deadline(hv, hw)
                .is_some_and(|d| d > now && d <= now.saturating_add(lead))
        {
            self.wake_early(k);
            woken = woken.max(Some(hv.vms[self.vcpus[k].vm].desc.priority));
        }
        if let Some(priority) = woken {
            self.wake_higher_due_soon(priority, now, hv, hw);
        }
        if self.slice_end.is_some_and(|end| end <= now) {
            self.slice_end = None;
            self.preempt = true;
            self.resched = true;
        }
        // Budgets: charge the running vCPU, refill ended periods; a vCPU out
        // of budget gives way, one refilled may take the CPU back.
        let due = self
            .policy
            .next_event(self.current.map(|c| (c, self.charged_at)))
            .is_some_and(|t| t <= now);
        self.charge(now, hv);
        if due {
            self.resched = true;
        }
        if self.console_resume.is_some_and(|t| t <= now) {
            self.console_resume = None;
            hw.resume_output();
        }
        for v in &mut self.vcpus {
            if v.awaiting.is_some_and(|w| w.deadline <= now) && super::channel::complete(hv, v, now)
            {
                v.blocked = false;
                self.resched = true;
            }
        }
        self.check_vm_deadlines(hv, hw, now);
        // The timer's interrupt stays asserted while its deadline is past: disarm it
        // now, and plan it before the next entry (once, after any reschedule).
        hw.set_hyp_timer(None);
        self.hyp_timer = None;
        self.timer_dirty = true;
    }

    /// Blocked vCPU `k` becomes runnable ahead of its timer deadline: the CPU
    /// switches to it (if it outranks the rest) and it waits for the timer in place.
    fn wake_early(&mut self, k: usize) {
        self.vcpus[k].blocked = false;
        self.vcpus[k].early = true;
        self.resched = true;
    }

    /// The CPU wakes early for a vCPU of priority `priority`: a sleeping vCPU
    /// of higher priority whose deadline follows within [`STAY_NS`] is woken
    /// with it. The CPU then goes straight to that one, which waits for its
    /// timer in place, instead of into the lower vCPU and out again just
    /// before the deadline that matters more.
    #[cold]
    fn wake_higher_due_soon(&mut self, priority: u8, now: u64, hv: &Hypervisor, hw: &impl Hw) {
        let soon = now.saturating_add(sched::ns_to_ticks(STAY_NS, hv.counter_hz));
        for k in 0..self.vcpus.len() {
            let v = &self.vcpus[k];
            let vm = &hv.vms[v.vm];
            if vm.desc.priority <= priority || !v.blocked {
                continue;
            }
            let deadline = if Some(k) == self.loaded {
                self.loaded_sleeper_deadline(hv, hw)
            } else {
                v.ctx
                    .timer
                    .armed()
                    .then(|| v.ctx.timer.cval.saturating_add(vm.cntvoff))
            };
            if deadline.is_some_and(|d| d > now && d <= soon) {
                self.wake_early(k);
            }
        }
    }

    /// The timer deadline of the vCPU whose state is in this CPU, while the CPU
    /// idles and that vCPU sleeps in WFI with its timer armed.
    fn loaded_sleeper_deadline(&self, hv: &Hypervisor, hw: &impl Hw) -> Option<u64> {
        let k = self.loaded?;
        let v = &self.vcpus[k];
        let vm = &hv.vms[v.vm];
        if self.current.is_some()
            || !v.blocked
            || v.awaiting.is_some()
            || !vm.is_running()
            || vm.vcpus[v.index].power() != PowerState::On
        {
            return None;
        }
        let timer = hw.loaded_vtimer();
        timer.armed().then(|| timer.cval.saturating_add(vm.cntvoff))
    }

    /// Whether local vCPU `k` has the urgent priority here (see [`urgent_priority`]).
    fn urgent(&self, k: usize, hv: &Hypervisor) -> bool {
        Some(hv.vms[self.vcpus[k].vm].desc.priority) == self.urgent_priority
    }

    /// Console output waits after a UART interrupt sent a FIFO's worth: the
    /// UART continues after [`CONSOLE_PACE_NS`], so that a backlog takes at
    /// most a small share of this CPU and never holds a deadline back.
    #[cold]
    pub(super) fn pace_console(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        self.console_resume = Some(hw.now() + sched::ns_to_ticks(CONSOLE_PACE_NS, hv.counter_hz));
        self.timer_dirty = true;
    }

    /// Per-VM deadlines this CPU's timer serves, for the VMs whose vCPU 0
    /// runs here: armed watchdogs, and restarts held back after a crash.
    fn vm_deadlines(&self, hv: &Hypervisor, now: u64) -> Option<u64> {
        let mut earliest = u64::MAX;
        for &i in &self.own_vms {
            let vm = &hv.vms[i];
            let watchdog = vm.watchdog_deadline.load(Ordering::Relaxed);
            if watchdog != 0 {
                earliest = earliest.min(watchdog);
            }
            let restart = vm.restart_at.load(Ordering::Relaxed);
            if restart > now && restart < earliest && vm.state() == super::vm::VmState::Resetting {
                earliest = restart;
            }
        }
        (earliest != u64::MAX).then_some(earliest)
    }

    /// Crashes VMs whose watchdog expired; re-examines held-back restarts.
    fn check_vm_deadlines(&mut self, hv: &Hypervisor, hw: &mut impl Hw, now: u64) {
        for k in 0..self.own_vms.len() {
            let vm = &hv.vms[self.own_vms[k]];
            let deadline = vm.watchdog_deadline.load(Ordering::Acquire);
            if deadline != 0
                && deadline <= now
                && vm
                    .watchdog_deadline
                    .compare_exchange(deadline, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                hv.crash(
                    vm,
                    format_args!(
                        "watchdog expired: not petted for {} ms",
                        vm.watchdog_ms.load(Ordering::Relaxed)
                    ),
                    hw,
                );
                self.resched = true;
            }
            let restart = vm.restart_at.load(Ordering::Relaxed);
            if restart != 0 && restart <= now && vm.state() == super::vm::VmState::Resetting {
                self.resched = true;
            }
        }
    }

    /// Stolen time: a vCPU that can run but is not picked starts waiting; the
    /// picked one stops, and what it waited is added and published.
    fn account_waiting(
        &mut self,
        pick: Option<usize>,
        runnable: u64,
        now: u64,
        hv: &Hypervisor,
        hw: &mut impl Hw,
    ) {
        for k in 0..self.vcpus.len().min(64) {
            let v = &mut self.vcpus[k];
            if Some(k) == pick {
                if let Some(since) = v.waiting_since.take() {
                    let vm = &hv.vms[v.vm];
                    let ns = crate::sched::ticks_to_ns(now.saturating_sub(since), hv.counter_hz);
                    vm.vcpus[v.index].stolen_ns.fetch_add(ns, Ordering::Relaxed);
                    publish_stolen_time(vm, v.index, hw);
                }
            } else if runnable & (1 << k) != 0 {
                v.waiting_since.get_or_insert(now);
            } else {
                v.waiting_since = None;
            }
        }
    }

    /// The running vCPU stops running here (it blocked or left): charge it
    /// up to now, and the CPU has no current vCPU until the next pick.
    fn stop_current(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        self.charge(hw.now(), hv);
        if let Some(c) = self.current.take() {
            let v = &self.vcpus[c];
            hv.vms[v.vm].vcpus[v.index]
                .running_since
                .store(0, Ordering::Relaxed);
        }
    }

    /// Charges the running vCPU for the CPU time since the last charge.
    fn charge(&mut self, now: u64, hv: &Hypervisor) {
        let ran = now.saturating_sub(self.charged_at);
        self.charged_at = now;
        match self.current {
            Some(c) => {
                self.policy.charge(c, ran, now);
                let v = &self.vcpus[c];
                let shared = &hv.vms[v.vm].vcpus[v.index];
                shared.cpu_ticks.fetch_add(ran, Ordering::Relaxed);
                shared.running_since.store(now, Ordering::Relaxed);
            }
            None => self.policy.advance(now),
        }
    }

    /// The loaded vCPU's virtual timer fired: mask it at the source and make
    /// the virtual PPI pending, without going through the scheduler.
    pub(super) fn vtimer_fired<H: Hw>(&mut self, hv: &Hypervisor, hw: &mut H) {
        let Some(k) = self.loaded else {
            hw.mask_vtimer();
            return;
        };
        let v = &mut self.vcpus[k];
        let vm = &hv.vms[v.vm];
        v.ctx.timer = hw.mask_vtimer();
        let mut vgic = vm.vgic.lock();
        let kick = vgic.inject(super::INTID_VTIMER, Some(v.index));
        vm.stats.virqs.fetch_add(1, Ordering::Relaxed);
        if kick & (1 << v.index) == 0 {
            return;
        }
        if self.current != Some(k) {
            self.resched = true;
        }
        // The running vCPU with a free LR and nothing else waiting for one
        // (no underflow request): place the interrupt directly.
        let lr = &mut self.lr_hw;
        let appended = (self.current == Some(k) && !v.need_flush && lr.underflow == Some(false))
            .then(|| {
                vgic.append_with::<<H as crate::arch::Gic>::Lr>(
                    v.index,
                    super::INTID_VTIMER,
                    lr.count,
                )
            })
            .flatten();
        drop(vgic);
        match appended {
            Some((n, raw)) => {
                v.lrs[n] = raw;
                v.lr_used = n + 1;
                lr.in_use = lr.in_use.max(n + 1);
                hw.write_lr(n, raw);
            }
            None => v.need_flush = true,
        }
    }

    /// The maintenance interrupt: the loaded vCPU's list registers ran low
    /// or a level-sensitive interrupt was deactivated. Refill them now: the
    /// interrupt stays asserted until the list registers change.
    pub(super) fn maintenance(&mut self, hv: &Hypervisor, hw: &mut impl Hw) {
        if let Some(k) = self.loaded {
            let v = &mut self.vcpus[k];
            self.lr_hw.refill(v, &hv.vms[v.vm], hw);
        }
    }
}

/// Writes vCPU `vcpu`'s stolen-time structure into `vm`'s memory (revision
/// 0, attributes 0, stolen time in ns, little-endian), if the guest asked
/// for it.
pub(super) fn publish_stolen_time(vm: &Vm, vcpu: usize, hw: &mut impl Hw) {
    let (Some(shared), Some(ipa)) = (vm.vcpus.get(vcpu), vm.stolen_time_ipa(vcpu)) else {
        return;
    };
    if !shared.pv_time.load(Ordering::Acquire) {
        return;
    }
    let mut record = [0u8; 16];
    record[8..].copy_from_slice(&shared.stolen_ns.load(Ordering::Relaxed).to_le_bytes());
    hw.copy_in(vm.ram_pa + (ipa - vm.desc.ram_ipa), &record);
}
