//! The hypervisor proper: the VMs, what physical CPUs share about them, and
//! each physical CPU's loop.
//!
//! - [`Hypervisor`] (this module): the VM list, per-CPU shared slots
//!   (attention flag, the VM a CPU is inside), notifications between CPUs,
//!   VM lifecycle (reset, stop) and image loading.
//! - [`pcpu`]: one physical CPU's loop: scheduling, world switch, list
//!   registers, the preemption timer.
//! - [`exits`]: what each kind of exit does (calls, MMIO, system registers,
//!   aborts).
//! - [`irq`]: physical interrupts taken while a guest ran or the CPU idled.
//! - [`console`]: console input focus and Tandem's monitor.
//! - [`passthrough`]: devices and SPIs a VM owns.
//! - [`uart`]: the virtual PL011 of a transparent VM.
//! - `setup` (target only): building VMs from the boot package.
//!
//! Everything here but `setup` reaches the hardware only through
//! [`crate::arch::Hw`], so `cargo test` drives it against
//! [`crate::arch::fake`]. The target wires one [`Hypervisor`] (a `static`)
//! and one [`pcpu::Pcpu`] per CPU to `arch::aarch64`.
#![forbid(unsafe_code)]

pub mod channel;
pub mod console;
pub mod exits;
pub mod irq;
pub mod passthrough;
pub mod pcpu;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod setup;
#[cfg(test)]
mod tests;
pub mod uart;
pub mod vm;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use log::{debug, info, warn};

use crate::arch::Hw;
use crate::hypercall::PowerState;
use crate::monitor::Focus;
use crate::sync::Lock;
use passthrough::SpiOwners;
use vm::{Vm, VmState};

/// Most physical CPUs Tandem runs on.
pub const MAX_PCPUS: usize = 8;
/// The SGI Tandem uses to make another physical CPU look at its vCPUs.
pub const KICK_SGI: u8 = 0;
/// Maintenance interrupt (PPI 9).
pub const INTID_MAINTENANCE: u32 = 25;
/// EL2 physical timer (PPI 10).
pub const INTID_HYP_TIMER: u32 = 26;
/// EL1 virtual timer (PPI 11).
pub const INTID_VTIMER: u32 = 27;
/// EL1 physical timer (PPI 14): Tandem's emulator tick. Guests cannot reach
/// this timer (CNTHCTL_EL2.EL1PCEN = 0).
pub const INTID_TICK: u32 = 30;
/// The INTIDs (SGIs/PPIs) each CPU enables at its redistributor.
pub const CPU_INTIDS: u32 = (1 << KICK_SGI)
    | (1 << INTID_MAINTENANCE)
    | (1 << INTID_HYP_TIMER)
    | (1 << INTID_VTIMER)
    | (1 << INTID_TICK);
/// Long work on guest memory at boot goes in steps of this many bytes.
const STEP: u64 = 1 << 20;
/// Bytes of RAM a reset clears in one piece (images are copied in quarters
/// of it): about 2 µs of a Cortex-A72, the longest a reset makes a
/// higher-priority vCPU on the same CPU wait.
pub const RELOAD_PIECE: u64 = 64 << 10;

/// How far [`Hypervisor::reset_step`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetProgress {
    /// Nothing for this CPU to do.
    Idle,
    /// This CPU owns the reload and has more pieces to do.
    Working,
    /// The reload is complete: the VM runs again.
    Finished,
}

/// What physical CPUs share about each other.
pub struct PcpuShared {
    /// MPIDR affinity once the CPU is online (`u64::MAX` before).
    pub mpidr: AtomicU64,
    /// The VM id whose vCPU this CPU is inside (0: none). Set before the CPU
    /// checks that the VM runs, cleared after it left: a VM's RAM is cleared
    /// only while no CPU shows its id here.
    pub inside: AtomicU32,
    /// Something changed that this CPU must look at before it next enters a
    /// guest (power, reset, a vGIC change of one of its vCPUs).
    pub attention: AtomicBool,
}

impl PcpuShared {
    const fn new() -> Self {
        Self {
            mpidr: AtomicU64::new(u64::MAX),
            inside: AtomicU32::new(0),
            attention: AtomicBool::new(false),
        }
    }
}

/// Who gets console input, and the monitor's line.
pub struct ConsoleSwitch {
    /// The input target.
    pub focus: Focus,
    /// The monitor's line editor.
    pub editor: Option<crate::monitor::LineEditor>,
}

/// The hypervisor's shared state.
pub struct Hypervisor {
    /// The VMs, in package order (VM id = index + 1).
    pub vms: Vec<Vm>,
    /// Per physical CPU.
    pub pcpus: [PcpuShared; MAX_PCPUS],
    /// Which VM owns each physical SPI.
    pub spis: SpiOwners,
    /// Console input target and the monitor's line.
    pub console: Lock<ConsoleSwitch>,
    /// Colour VM tags (the console is a terminal).
    pub color: bool,
    /// Tandem's UART interrupt (0: none), taken on [`Hypervisor::console_cpu`].
    pub uart_intid: u32,
    /// The physical CPU that takes the UART interrupt ([`crate::sched::console_cpu`]).
    pub console_cpu: usize,
    /// Counter ticks of the emulator tick, if the board asks for one and VMs compete.
    pub emulator_tick: Option<u64>,
    /// Counter frequency in Hz.
    pub counter_hz: u64,
    /// Some VM's virtual PL011 holds bytes the console ring had no room for.
    pub uart_backlog: AtomicBool,
    /// The channels between VMs (`CHANNEL_NOTIFY` ids are indices).
    pub channels: Vec<crate::channel::Channel>,
}

/// Resets after which a VM's lifecycle lines (resetting, restarted, restarting after a
/// crash) drop to debug: a guest resetting or crashing in a loop must not flood the
/// console. The monitor's `vms` counts every one (resets=, crashes=).
const LOUD_RESETS: u64 = 3;

/// The reason of a reset asked for at the monitor (`reset <vm>`).
pub const MONITOR_RESET: &str = "monitor command";

/// `loud` for a VM's first [`LOUD_RESETS`] resets and for those the operator
/// asked for, else debug.
fn lifecycle_level(vm: &Vm, loud: log::Level) -> log::Level {
    if vm.stats.resets.load(Ordering::Relaxed) < LOUD_RESETS
        || vm.operator_reset.load(Ordering::Relaxed)
    {
        loud
    } else {
        log::Level::Debug
    }
}

impl Hypervisor {
    /// A hypervisor for `vms` (their ids must follow their order).
    pub fn new(vms: Vec<Vm>, spis: SpiOwners, counter_hz: u64) -> Self {
        let focus = vms
            .iter()
            .position(|vm| vm.desc.has(crate::vm::package::FLAG_CONSOLE_FOCUS))
            .map_or(
                if vms.is_empty() {
                    Focus::Monitor
                } else {
                    Focus::Vm(0)
                },
                Focus::Vm,
            );
        Self {
            vms,
            pcpus: [const { PcpuShared::new() }; MAX_PCPUS],
            spis,
            console: Lock::new(ConsoleSwitch {
                focus,
                editor: None,
            }),
            color: false,
            uart_intid: 0,
            console_cpu: 0,
            emulator_tick: None,
            counter_hz: counter_hz.max(1),
            uart_backlog: AtomicBool::new(false),
            channels: Vec::new(),
        }
    }

    /// The VM with id `id`.
    pub fn vm_by_id(&self, id: u32) -> Option<&Vm> {
        self.vms.get((id as usize).checked_sub(1)?)
    }

    /// The VM named `name`.
    pub fn vm_by_name(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|vm| vm.name() == name)
    }

    /// Asks physical CPU `pcpu` to look at its vCPUs before it next enters
    /// a guest. The kick SGI goes only to another CPU, and only when its flag
    /// was clear: a CPU that has not yet consumed a request needs no second one.
    pub fn attention(&self, pcpu: usize, hw: &mut impl Hw) {
        let Some(p) = self.pcpus.get(pcpu) else {
            return;
        };
        let was = p.attention.swap(true, Ordering::SeqCst);
        if !was && pcpu != hw.index() {
            let mpidr = p.mpidr.load(Ordering::Acquire);
            if mpidr != u64::MAX {
                hw.send_sgi(KICK_SGI, mpidr);
            }
        }
    }

    /// The vGIC of `vm` changed for the vCPUs in `mask`: mark them for a
    /// list-register refill and get their CPUs to look.
    pub fn notify(&self, vm: &Vm, mask: u32, hw: &mut impl Hw) {
        for (i, v) in vm.vcpus.iter().enumerate() {
            if mask & (1 << i) != 0 {
                v.vgic_dirty.store(true, Ordering::Release);
                self.attention(v.pcpu, hw);
            }
        }
    }

    /// Injects an edge interrupt into `vm` and wakes whoever must see it.
    pub fn inject(&self, vm: &Vm, intid: u32, vcpu: Option<usize>, hw: &mut impl Hw) {
        let kick = vm.vgic.lock().inject(intid, vcpu);
        vm.stats.virqs.fetch_add(1, Ordering::Relaxed);
        self.notify(vm, kick, hw);
    }

    /// Makes every CPU running `vm` re-examine it.
    fn attention_all(&self, vm: &Vm, hw: &mut impl Hw) {
        let mask = vm.pcpu_mask();
        for p in (0..MAX_PCPUS).filter(|p| mask & (1 << p) != 0) {
            self.attention(p, hw);
        }
    }

    /// vCPU `vcpu` of `vm` starts at `entry` with x0 = `context` (PSCI CPU_ON).
    pub fn start_vcpu(&self, vm: &Vm, vcpu: usize, entry: u64, context: u64, hw: &mut impl Hw) {
        let Some(v) = vm.vcpus.get(vcpu) else { return };
        v.request_start(entry, context);
        self.attention(v.pcpu, hw);
    }

    /// Requests a restart of `vm` from its pristine images. Coalesces with a
    /// reset already under way; ignored for a stopped VM.
    pub fn request_reset(&self, vm: &Vm, why: &str, hw: &mut impl Hw) {
        if !vm.transition(VmState::Running, VmState::Resetting) {
            debug!(
                "VM {} '{}': reset ({why}) while {:?}: nothing more to do",
                vm.id,
                vm.name(),
                vm.state()
            );
            return;
        }
        vm.operator_reset
            .store(why == MONITOR_RESET, Ordering::Relaxed);
        log::log!(
            lifecycle_level(vm, log::Level::Info),
            "VM {} '{}' resetting ({why})",
            vm.id,
            vm.name()
        );
        for v in &vm.vcpus {
            v.set_power(PowerState::Off);
        }
        channel::vm_down(self, vm, hw);
        self.attention_all(vm, hw);
    }

    /// Stops `vm` for good, naming why; powers the machine off when nothing
    /// runs any more. A VM declared with `restart = true` is reset instead.
    pub fn stop(&self, vm: &Vm, why: core::fmt::Arguments<'_>, hw: &mut impl Hw) {
        if vm.restarts() {
            log::log!(
                lifecycle_level(vm, log::Level::Warn),
                "VM {} '{}': {}",
                vm.id,
                vm.name(),
                why
            );
            self.request_reset(vm, "restart = true", hw);
            return;
        }
        self.stop_for_good(vm, why, hw);
    }

    /// Pauses `vm` (monitor `pause`): its vCPUs leave their CPUs and stay
    /// out, with their state and memory, until [`Hypervisor::resume`].
    pub fn pause(&self, vm: &Vm, hw: &mut impl Hw) -> Result<(), &'static str> {
        if !vm.transition(VmState::Running, VmState::Paused) {
            return Err("it is not running");
        }
        info!("VM {} '{}' paused", vm.id, vm.name());
        self.attention_all(vm, hw);
        Ok(())
    }

    /// Resumes a paused `vm` where it stopped (monitor `resume`).
    pub fn resume(&self, vm: &Vm, hw: &mut impl Hw) -> Result<(), &'static str> {
        if !vm.transition(VmState::Paused, VmState::Running) {
            return Err("it is not paused");
        }
        info!("VM {} '{}' resumed", vm.id, vm.name());
        self.attention_all(vm, hw);
        Ok(())
    }

    /// Starts a stopped `vm` afresh from its pristine images (monitor `start`).
    pub fn start(&self, vm: &Vm, hw: &mut impl Hw) -> Result<(), &'static str> {
        if !vm.transition(VmState::Stopped, VmState::Resetting) {
            return Err("it is not stopped");
        }
        info!("VM {} '{}' starting", vm.id, vm.name());
        vm.restart_at.store(0, Ordering::Release);
        self.attention_all(vm, hw);
        Ok(())
    }

    /// `vm` failed: the guest reported a crash, its watchdog expired, it
    /// stormed stage 2 with faults, or it made an exit Tandem cannot serve. A
    /// VM with `on_crash = "restart"` (or `restart = true`) restarts after a
    /// back-off that doubles with
    /// each crash within a minute, and is stopped at the fifth; any other VM
    /// is stopped.
    pub fn crash(&self, vm: &Vm, why: core::fmt::Arguments<'_>, hw: &mut impl Hw) {
        vm.stats.crashes.fetch_add(1, Ordering::Relaxed);
        if !vm.restarts_on_crash() {
            self.stop_for_good(vm, why, hw);
            return;
        }
        let now = hw.now();
        let decision = vm.crash_history.lock().record(now, self.counter_hz);
        match decision {
            vm::CrashDecision::Restart { delay } => {
                log::log!(
                    lifecycle_level(vm, log::Level::Warn),
                    "VM {} '{}' crashed: {why}; restarting it in {} ms",
                    vm.id,
                    vm.name(),
                    crate::sched::ticks_to_ns(delay, self.counter_hz) / 1_000_000
                );
                vm.restart_at.store(now + delay, Ordering::Release);
                self.request_reset(vm, "crashed", hw);
            }
            vm::CrashDecision::GiveUp { count } => self.stop_for_good(
                vm,
                format_args!(
                    "{why}; it crashed {count} times within {} s, so it stays stopped",
                    vm::CrashHistory::WINDOW_S
                ),
                hw,
            ),
        }
    }

    /// Arms (or, with 0, disarms) `vm`'s paravirtual watchdog for
    /// `timeout_ms` from now, and has vCPU 0's CPU re-plan its timer.
    pub fn arm_watchdog(&self, vm: &Vm, timeout_ms: u32, hw: &mut impl Hw) {
        let deadline = match timeout_ms {
            0 => 0,
            ms => hw.now() + crate::sched::ns_to_ticks(u64::from(ms) * 1_000_000, self.counter_hz),
        };
        vm.watchdog_ms.store(timeout_ms, Ordering::Relaxed);
        vm.watchdog_deadline.store(deadline, Ordering::Release);
        self.attention(vm.vcpus[0].pcpu, hw);
    }

    fn stop_for_good(&self, vm: &Vm, why: core::fmt::Arguments<'_>, hw: &mut impl Hw) {
        if vm.set_state(VmState::Stopped) == VmState::Stopped {
            return;
        }
        for v in &vm.vcpus {
            v.set_power(PowerState::Off);
        }
        warn!("VM {} '{}' stopped: {}", vm.id, vm.name(), why);
        channel::vm_down(self, vm, hw);
        self.attention_all(vm, hw);
        if self.vms.iter().all(|vm| vm.state() == VmState::Stopped) {
            info!("all VMs have stopped: powering off");
            hw.power_off();
        }
    }

    /// Advances a requested reset of `vm` by one bounded piece of work, on
    /// CPU `hw.index()`:
    /// - once no CPU is inside the VM (and its crash back-off is over), the
    ///   one CPU that wins `Resetting → Clearing` resets its vGIC,
    ///   passthrough interrupts and console, and owns the reload;
    /// - the owner then clears RAM and copies the pristine images in pieces
    ///   of at most [`RELOAD_PIECE`] bytes (a few µs each), so that a
    ///   higher-priority vCPU sharing the CPU runs between pieces;
    /// - after the last piece vCPU 0 starts and the VM runs again.
    pub fn reset_step(&self, vm: &Vm, hw: &mut impl Hw) -> ResetProgress {
        let me = hw.index() + 1;
        if vm.state() == VmState::Resetting {
            if hw.now() < vm.restart_at.load(Ordering::Acquire)
                || self
                    .pcpus
                    .iter()
                    .any(|p| p.inside.load(Ordering::SeqCst) == vm.id)
                || !vm.transition(VmState::Resetting, VmState::Clearing)
            {
                return ResetProgress::Idle;
            }
            vm.reset_devices();
            passthrough::reset(self, vm, hw);
            channel::vm_down(self, vm, hw);
            vm.reload_done.store(0, Ordering::Relaxed);
            vm.reload_owner.store(me, Ordering::Release);
            return ResetProgress::Working;
        }
        if vm.state() != VmState::Clearing || vm.reload_owner.load(Ordering::Acquire) != me {
            return ResetProgress::Idle;
        }
        let done = vm.reload_done.load(Ordering::Relaxed);
        let ram = vm.desc.ram_size;
        if done < ram {
            let n = RELOAD_PIECE.min(ram - done);
            hw.clear(vm.ram_pa + done, n);
            // The VM starts with its caches off: no dirty line of these zeroes
            // may later land on its own writes.
            hw.clean_to_poc(vm.ram_pa + done, n);
            vm.reload_done.store(done + n, Ordering::Relaxed);
            return ResetProgress::Working;
        }
        // Then the images, back to back after the RAM in the count.
        let mut at = ram;
        for (pa, data) in vm.images() {
            let len = data.len() as u64;
            if done < at + len {
                let off = done - at;
                let n = (RELOAD_PIECE / 4).min(len - off);
                hw.copy_in(pa + off, &data[off as usize..(off + n) as usize]);
                hw.clean_to_poc(pa + off, n);
                hw.sync_icache(pa + off, n);
                vm.reload_done.store(done + n, Ordering::Relaxed);
                return ResetProgress::Working;
            }
            at += len;
        }
        vm.reload_owner.store(0, Ordering::Relaxed);
        vm.vcpus[0].request_start(vm.desc.entry, vm.desc.x0);
        vm.epoch.fetch_add(1, Ordering::AcqRel);
        let level = lifecycle_level(vm, log::Level::Info);
        vm.stats.resets.fetch_add(1, Ordering::Relaxed);
        vm.set_state(VmState::Running);
        log::log!(level, "VM {} '{}' restarted", vm.id, vm.name());
        vm.operator_reset.store(false, Ordering::Relaxed);
        self.attention_all(vm, hw);
        ResetProgress::Finished
    }

    /// Copies `vm`'s pristine images into its RAM and queues vCPU 0's start.
    pub fn load_images(&self, vm: &Vm, hw: &mut impl Hw) {
        for (pa, data) in vm.images() {
            self.in_steps(hw, data.len() as u64, |hw, off, n| {
                hw.copy_in(pa + off, &data[off as usize..(off + n) as usize]);
            });
            // The VM starts with its caches off: its images must be in memory.
            self.in_steps(hw, data.len() as u64, |hw, off, n| {
                hw.clean_to_poc(pa + off, n);
                hw.sync_icache(pa + off, n);
            });
        }
        vm.vcpus[0].request_start(vm.desc.entry, vm.desc.x0);
    }

    /// Does `len` bytes of long work in [`STEP`]s, re-arming the emulator
    /// tick between them so that it does not starve other CPUs under QEMU's
    /// round-robin `-icount` (see `BoardDesc::emulator_tick_ns`).
    fn in_steps<H: Hw>(&self, hw: &mut H, len: u64, mut f: impl FnMut(&mut H, u64, u64)) {
        let mut done = 0;
        while done < len {
            let n = STEP.min(len - done);
            f(hw, done, n);
            done += n;
            self.rearm_emulator_tick(hw);
        }
    }

    /// Re-arms this CPU's emulator tick during long work at EL2.
    pub fn rearm_emulator_tick(&self, hw: &mut impl Hw) {
        if let Some(t) = self.emulator_tick {
            let next = hw.now() + t;
            hw.set_tick_timer(Some(next));
        }
    }
}
