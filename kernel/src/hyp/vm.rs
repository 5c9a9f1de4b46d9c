//! A running VM: its description, vGIC, vCPUs' shared state, console and
//! counters, and its lifecycle (run, reset, stop).
//!
//! Lifecycle, as a state machine every physical CPU can observe:
//!
//! ```text
//!  Running --request_reset--> Resetting --(no pCPU inside the VM)--> Clearing --> Running (epoch + 1)
//!     |                           |
//!     +-------- stop ------------>+--> Stopped (for good)
//! ```
//!
//! A reset request only flips the state and asks the VM's physical CPUs to
//! leave it; whichever of them next finds no CPU inside the VM wins the
//! `Resetting → Clearing` exchange and reloads it. Requests while one is in
//! progress coalesce, RAM is cleared only when no vCPU of the VM can run, and
//! no CPU ever waits for another (so the logic runs on a host fake).
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::hypercall::PowerState;
use crate::sync::Lock;
use crate::vgic::{Vgic, VgicLayout};
use crate::vm::console::VmConsole;
use crate::vm::package::{FLAG_RESTART_ON_CRASH, FLAG_RESTART_ON_RESET, Package, VmDesc};
use crate::vm::vpl011::Vpl011;

/// SPIs each VM's distributor offers (INTIDs 32..96).
pub const VM_SPIS: u32 = 64;

/// VM lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmState {
    /// Running (some vCPU may be off or blocked).
    Running = 0,
    /// A reset was requested: its vCPUs are leaving their CPUs.
    Resetting = 1,
    /// One CPU is clearing and reloading it.
    Clearing = 2,
    /// Powered off or stopped by Tandem; stays off (until a monitor `start`).
    Stopped = 3,
    /// Paused from the monitor: its vCPUs do not run, its memory and state stay.
    Paused = 4,
}

impl VmState {
    fn from_raw(raw: u8) -> Self {
        match raw {
            0 => Self::Running,
            1 => Self::Resetting,
            2 => Self::Clearing,
            4 => Self::Paused,
            _ => Self::Stopped,
        }
    }
}

/// Per-VM counters (pv-abi STATS).
#[derive(Default)]
pub struct VmStats {
    /// Traps into Tandem.
    pub exits: AtomicU64,
    /// Hypercalls.
    pub hypercalls: AtomicU64,
    /// Virtual interrupts injected.
    pub virqs: AtomicU64,
    /// MMIO accesses emulated.
    pub mmio: AtomicU64,
    /// WFI exits.
    pub wfi: AtomicU64,
    /// Completed resets.
    pub resets: AtomicU64,
    /// Crashes (guest-reported, watchdog, fault storms, fatal exits).
    pub crashes: AtomicU64,
    /// Exits for a physical interrupt.
    pub irq_exits: AtomicU64,
    /// Trapped system-register accesses.
    pub sysreg: AtomicU64,
    /// Aborts injected for accesses to unmapped IPAs.
    pub aborts: AtomicU64,
    /// Accesses to its virtual PL011 (each one exit).
    pub uart: AtomicU64,
    /// CONSOLE_WRITE calls.
    pub console_writes: AtomicU64,
    /// `CHANNEL_NOTIFY` calls that rang the peer.
    pub doorbells: AtomicU64,
    /// `CHANNEL_NOTIFY` calls refused: the peer was not running.
    pub doorbells_denied: AtomicU64,
    /// Accesses to its virtio windows that went to the back-end.
    pub virtio_forwarded: AtomicU64,
    /// `QueueNotify` writes to its virtio windows.
    pub virtio_notifies: AtomicU64,
}

/// What other CPUs can see of a vCPU.
pub struct VcpuShared {
    /// The physical CPU index it runs on.
    pub pcpu: usize,
    /// Its MPIDR as the guest sees it.
    pub mpidr: u64,
    power: AtomicU8,
    /// A pending start: (entry, x0).
    pub start: Lock<Option<(u64, u64)>>,
    /// Its vGIC state changed (injection, MMIO, SGI): its list registers
    /// must be refilled before it next runs.
    pub vgic_dirty: AtomicBool,
    /// CPU time charged to it, in counter ticks.
    pub cpu_ticks: AtomicU64,
    /// When its CPU last charged it while it runs (0: not running).
    pub running_since: AtomicU64,
    /// Time it could run but waited for its CPU, in ns (Arm PV stolen time).
    pub stolen_ns: AtomicU64,
    /// The guest asked for its stolen-time structure (`PV_TIME_ST`): Tandem
    /// keeps it up to date in guest memory.
    pub pv_time: AtomicBool,
}

impl VcpuShared {
    /// A powered-off vCPU on physical CPU `pcpu` with MPIDR `mpidr`.
    pub fn new(pcpu: usize, mpidr: u64) -> Self {
        Self {
            pcpu,
            mpidr,
            power: AtomicU8::new(0),
            start: Lock::new(None),
            vgic_dirty: AtomicBool::new(false),
            cpu_ticks: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
            stolen_ns: AtomicU64::new(0),
            pv_time: AtomicBool::new(false),
        }
    }

    /// The PSCI power state.
    pub fn power(&self) -> PowerState {
        match self.power.load(Ordering::Acquire) {
            0 => PowerState::Off,
            1 => PowerState::OnPending,
            _ => PowerState::On,
        }
    }

    /// Sets the PSCI power state.
    pub fn set_power(&self, p: PowerState) {
        let v = match p {
            PowerState::Off => 0,
            PowerState::OnPending => 1,
            PowerState::On => 2,
        };
        self.power.store(v, Ordering::Release);
    }

    /// Queues a start at `entry` with `x0`.
    pub fn request_start(&self, entry: u64, x0: u64) {
        *self.start.lock() = Some((entry, x0));
        self.set_power(PowerState::OnPending);
    }
}

/// A VM.
pub struct Vm {
    /// VM id (1-based; also its VMID).
    pub id: u32,
    /// Index in the hypervisor's VM list.
    pub index: usize,
    /// The description from the package.
    pub desc: VmDesc,
    pkg: Package<'static>,
    /// Host physical address of guest RAM.
    pub ram_pa: u64,
    /// VTTBR_EL2 value: stage-2 root and VMID.
    pub vttbr: u64,
    /// CNTVOFF_EL2: guests count time from their own start.
    pub cntvoff: u64,
    /// The virtual GIC.
    pub vgic: Lock<Vgic>,
    /// The vCPUs' shared state.
    pub vcpus: Vec<VcpuShared>,
    /// Console buffers.
    pub console: Lock<VmConsole>,
    /// The virtual PL011 of a transparent VM (`VmDesc::pl011`).
    pub uart: Option<Lock<Vpl011>>,
    /// Its transmit FIFO holds bytes Tandem's console ring had no room for.
    pub uart_backlog: AtomicBool,
    /// Its console line tag, plain and coloured, and their lengths.
    tags: [([u8; super::console::TAG_MAX], usize); 2],
    /// Counters.
    pub stats: VmStats,
    state: AtomicU8,
    /// Incremented at every completed reset; vCPU contexts of an older epoch are stale.
    pub epoch: AtomicU32,
    /// Recent crashes, for back-off and giving up.
    pub crash_history: Lock<CrashHistory>,
    /// Counter value before which a pending reset is not completed (back-off).
    pub restart_at: AtomicU64,
    /// The paravirtual watchdog: counter value it expires at (0: disarmed).
    pub watchdog_deadline: AtomicU64,
    /// Its timeout in ms, as last armed.
    pub watchdog_ms: AtomicU32,
    /// Aborts injected for accesses to unmapped IPAs in the current window.
    aborts: AtomicU32,
    /// Start of that window (counter value).
    aborts_since: AtomicU64,
    /// The CPU reloading the VM after a reset (index + 1; 0: none).
    pub reload_owner: AtomicUsize,
    /// Bytes of the reload done: RAM cleared, then images copied.
    pub reload_done: AtomicU64,
    /// The reset under way was asked for at the monitor: its lines are always logged.
    pub operator_reset: AtomicBool,
}

/// What to do about a crash of a VM that restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashDecision {
    /// Restart it after `delay` counter ticks.
    Restart {
        /// Back-off before the restart, in counter ticks.
        delay: u64,
    },
    /// It keeps failing: `count` crashes within [`CrashHistory::WINDOW_S`]; stop it.
    GiveUp {
        /// Crashes in the window.
        count: usize,
    },
}

/// The times of a VM's recent crashes: restarts back off exponentially
/// (0.1 s, 0.2 s, 0.4 s, … for consecutive crashes within a minute), and the
/// VM is stopped at the [`CrashHistory::LIMIT`]th crash within a minute.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrashHistory {
    times: [u64; CrashHistory::LIMIT],
    len: usize,
}

impl CrashHistory {
    /// Crashes within [`CrashHistory::WINDOW_S`] after which the VM is stopped.
    pub const LIMIT: usize = 5;
    /// The window crashes are counted in, in seconds.
    pub const WINDOW_S: u64 = 60;
    /// The back-off after the first crash in the window, in ms.
    pub const FIRST_DELAY_MS: u64 = 100;

    /// Records a crash at counter value `now` (`hz` ticks a second) and decides.
    pub fn record(&mut self, now: u64, hz: u64) -> CrashDecision {
        let window = Self::WINDOW_S.saturating_mul(hz);
        let recent: usize = self.times[..self.len]
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window)
            .count();
        // Keep the newest LIMIT - 1 recent ones, then this one.
        let mut kept = [0u64; Self::LIMIT];
        let mut n = 0;
        for &t in self.times[..self.len]
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window)
            .skip(recent.saturating_sub(Self::LIMIT - 1))
        {
            kept[n] = t;
            n += 1;
        }
        kept[n] = now;
        self.times = kept;
        self.len = n + 1;
        let count = recent + 1;
        if count >= Self::LIMIT {
            return CrashDecision::GiveUp { count };
        }
        let ms = Self::FIRST_DELAY_MS << (count - 1);
        CrashDecision::Restart {
            delay: crate::sched::ns_to_ticks(ms * 1_000_000, hz),
        }
    }
}

/// Bytes at the top of a VM's RAM that hold its vCPUs' stolen-time
/// structures (Arm PV time); xtask reserves them in the guest's device tree.
pub const PV_TIME_REGION: u64 = 4096;

/// Aborts on unmapped IPAs within one second that make a fault storm.
pub const FAULT_STORM: u32 = 10_000;

impl Vm {
    /// A VM with RAM at `ram_pa` and stage 2 `vttbr` already set up (by
    /// `hyp::setup` on the target, by tests on the host). Nothing is loaded
    /// yet: [`Vm::load`] does that.
    ///
    /// # Panics
    /// If the description cannot give a vGIC (checked when the package is
    /// parsed: more vCPUs than a vGIC carries).
    pub fn new(
        index: usize,
        desc: VmDesc,
        pkg: Package<'static>,
        ram_pa: u64,
        vttbr: u64,
        cntvoff: u64,
    ) -> Self {
        let mpidrs: Vec<u64> = (0..u64::from(desc.vcpus)).map(|i| (1 << 31) | i).collect();
        let vcpus = mpidrs
            .iter()
            .enumerate()
            .map(|(i, &m)| VcpuShared::new(usize::from(desc.pcpus[i]), m))
            .collect();
        Self {
            id: index as u32 + 1,
            index,
            desc,
            pkg,
            ram_pa,
            vttbr,
            cntvoff,
            vgic: Lock::new(Self::fresh_vgic(&mpidrs, pkg.gic_version())),
            vcpus,
            console: Lock::new(VmConsole::default()),
            uart: desc.pl011().map(|_| Lock::new(Vpl011::new())),
            uart_backlog: AtomicBool::new(false),
            tags: [false, true].map(|color| {
                let mut buf = [0; super::console::TAG_MAX];
                let n = super::console::make_tag(
                    index as u32 + 1,
                    desc.name().as_bytes(),
                    color,
                    &mut buf,
                );
                (buf, n)
            }),
            stats: VmStats::default(),
            state: AtomicU8::new(VmState::Running as u8),
            epoch: AtomicU32::new(0),
            crash_history: Lock::new(CrashHistory::default()),
            restart_at: AtomicU64::new(0),
            watchdog_deadline: AtomicU64::new(0),
            watchdog_ms: AtomicU32::new(0),
            aborts: AtomicU32::new(0),
            aborts_since: AtomicU64::new(0),
            reload_owner: AtomicUsize::new(0),
            reload_done: AtomicU64::new(0),
            operator_reset: AtomicBool::new(false),
        }
    }

    /// A reset vGIC of the version the guest's device tree describes, at
    /// the IPAs it names (xtask writes both).
    fn fresh_vgic(mpidrs: &[u64], gic_version: u8) -> Vgic {
        match Vgic::try_new(mpidrs, VM_SPIS, VgicLayout::qemu_virt(gic_version)) {
            Ok(v) => v,
            Err(e) => panic!("VM description gives no vGIC: {e:?}"),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.desc.name()
    }

    /// The tag its console lines start with, coloured on a terminal.
    pub fn tag(&self, color: bool) -> &[u8] {
        let (buf, n) = &self.tags[usize::from(color)];
        &buf[..*n]
    }

    /// The pristine images: (host physical address, bytes) each.
    pub fn images(&self) -> impl Iterator<Item = (u64, &'static [u8])> + '_ {
        self.desc.blobs().iter().map(|b| {
            (
                self.ram_pa + (b.load_ipa - self.desc.ram_ipa),
                self.pkg.blob_bytes(b),
            )
        })
    }

    /// Current lifecycle state.
    pub fn state(&self) -> VmState {
        VmState::from_raw(self.state.load(Ordering::Acquire))
    }

    /// Whether its vCPUs may run.
    pub fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == VmState::Running as u8
    }

    /// Moves `from` → `to`; false if the state was not `from`.
    pub(super) fn transition(&self, from: VmState, to: VmState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Sets the state unconditionally; returns the old one.
    pub(super) fn set_state(&self, to: VmState) -> VmState {
        VmState::from_raw(self.state.swap(to as u8, Ordering::SeqCst))
    }

    /// Whether `ipa` lies in guest RAM.
    pub fn is_ram(&self, ipa: u64) -> bool {
        ipa >= self.desc.ram_ipa && ipa - self.desc.ram_ipa < self.desc.ram_size
    }

    /// The vCPU with MPIDR affinity `mpidr`.
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize> {
        let aff = mpidr & 0xff_00ff_ffff;
        self.vcpus
            .iter()
            .position(|v| v.mpidr & 0xff_00ff_ffff == aff)
    }

    /// The physical CPUs its vCPUs run on, as a mask.
    pub fn pcpu_mask(&self) -> u32 {
        self.vcpus.iter().fold(0, |m, v| m | 1 << v.pcpu)
    }

    /// Whether the VM sees no Tandem: its console is a virtual PL011 and
    /// Tandem's vendor hypervisor service is hidden from it.
    pub fn transparent(&self) -> bool {
        self.uart.is_some()
    }

    /// Whether a power-off or reset by the guest restarts the VM (`restart = true`).
    pub fn restarts(&self) -> bool {
        self.desc.has(FLAG_RESTART_ON_RESET)
    }

    /// Whether a crash restarts the VM rather than stopping it.
    pub fn restarts_on_crash(&self) -> bool {
        self.desc.has(FLAG_RESTART_ON_RESET) || self.desc.has(FLAG_RESTART_ON_CRASH)
    }

    /// The IPA of vCPU `vcpu`'s Arm PV stolen-time structure: 64 bytes each
    /// in the last [`PV_TIME_REGION`] bytes of RAM, which the guest's device
    /// tree reserves (`no-map`). `None` for a vCPU the VM does not have.
    pub fn stolen_time_ipa(&self, vcpu: usize) -> Option<u64> {
        (vcpu < self.vcpus.len() && self.desc.ram_size >= 2 * PV_TIME_REGION)
            .then(|| self.desc.ram_ipa + self.desc.ram_size - PV_TIME_REGION + 64 * vcpu as u64)
    }

    /// Counts an abort injected for an unmapped IPA at `now`; true when it
    /// completes a fault storm ([`FAULT_STORM`] within one second).
    pub fn note_abort(&self, now: u64, hz: u64) -> bool {
        let since = self.aborts_since.load(Ordering::Relaxed);
        if now.saturating_sub(since) >= hz {
            self.aborts_since.store(now, Ordering::Relaxed);
            self.aborts.store(0, Ordering::Relaxed);
        }
        self.aborts.fetch_add(1, Ordering::Relaxed) + 1 == FAULT_STORM
    }

    /// Puts everything but RAM back to power-on state: vCPUs off, a fresh
    /// vGIC, an empty console. Called by the CPU that won `Clearing`.
    pub(super) fn reset_devices(&self) {
        for v in &self.vcpus {
            v.set_power(PowerState::Off);
            *v.start.lock() = None;
            v.vgic_dirty.store(false, Ordering::Relaxed);
            v.pv_time.store(false, Ordering::Relaxed);
            v.stolen_ns.store(0, Ordering::Relaxed);
        }
        let mpidrs: Vec<u64> = self.vcpus.iter().map(|v| v.mpidr).collect();
        *self.vgic.lock() = Self::fresh_vgic(&mpidrs, self.pkg.gic_version());
        *self.console.lock() = VmConsole::default();
        super::uart::reset(self);
        self.watchdog_deadline.store(0, Ordering::Release);
        self.aborts.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1000;

    /// Consecutive crashes back off 0.1, 0.2, 0.4, 0.8 s; the fifth within
    /// a minute gives up; crashes a minute apart start over.
    #[test]
    fn crashes_back_off_then_give_up() {
        let mut h = CrashHistory::default();
        let delays: Vec<CrashDecision> = (0..4).map(|i| h.record(i * 1000, HZ)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(|d| CrashDecision::Restart { delay: d })
        );
        assert_eq!(h.record(5000, HZ), CrashDecision::GiveUp { count: 5 });
        let mut h = CrashHistory::default();
        for i in 0..10 {
            assert_eq!(
                h.record(i * 61_000, HZ),
                CrashDecision::Restart { delay: 100 },
                "crash {i}"
            );
        }
    }

    /// A storm is 10,000 aborts within a second; slower faults never make one.
    #[test]
    fn fault_storms_need_rate() {
        let bytes: &'static [u8] = alloc::boxed::Box::leak(
            crate::vm::package::encode(&[crate::vm::package::VmSpec {
                name: "v".into(),
                ram_ipa: 0x4000_0000,
                ram_size: 2 << 20,
                entry: 0x4008_0000,
                pcpus: alloc::vec![0],
                ..Default::default()
            }])
            .into_boxed_slice(),
        );
        let pkg = Package::parse(bytes).unwrap();
        let vm = Vm::new(0, pkg.vm(0).unwrap(), pkg, 0, 0, 0);
        let storms = (0..20_000u64)
            .filter(|&i| vm.note_abort(i / 20, HZ))
            .count();
        assert_eq!(storms, 1, "10,000 within the first second");
        let vm = Vm::new(0, pkg.vm(0).unwrap(), pkg, 0, 0, 0);
        assert!(
            !(0..30_000u64).any(|i| vm.note_abort(i, HZ)),
            "one per ms is no storm"
        );
    }
}
