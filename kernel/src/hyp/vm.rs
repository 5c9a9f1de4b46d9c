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
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::hypercall::PowerState;
use crate::sync::Lock;
use crate::vgic::{Vgic, VgicLayout};
use crate::vm::console::VmConsole;
use crate::vm::package::{FLAG_RESTART_ON_RESET, Package, VmDesc};

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
    /// Powered off or stopped by Tandem; stays off.
    Stopped = 3,
}

impl VmState {
    fn from_raw(raw: u8) -> Self {
        match raw {
            0 => Self::Running,
            1 => Self::Resetting,
            2 => Self::Clearing,
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
    /// Counters.
    pub stats: VmStats,
    state: AtomicU8,
    /// Incremented at every completed reset; vCPU contexts of an older epoch are stale.
    pub epoch: AtomicU32,
}

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
            vgic: Lock::new(Self::fresh_vgic(&mpidrs)),
            vcpus,
            console: Lock::new(VmConsole::default()),
            stats: VmStats::default(),
            state: AtomicU8::new(VmState::Running as u8),
            epoch: AtomicU32::new(0),
        }
    }

    fn fresh_vgic(mpidrs: &[u64]) -> Vgic {
        match Vgic::try_new(mpidrs, VM_SPIS, VgicLayout::QEMU_VIRT) {
            Ok(v) => v,
            Err(e) => panic!("VM description gives no vGIC: {e:?}"),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.desc.name()
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

    /// Whether a crash should restart the VM rather than stop it.
    pub fn restarts(&self) -> bool {
        self.desc.has(FLAG_RESTART_ON_RESET)
    }

    /// Puts everything but RAM back to power-on state: vCPUs off, a fresh
    /// vGIC, an empty console. Called by the CPU that won `Clearing`.
    pub(super) fn reset_devices(&self) {
        for v in &self.vcpus {
            v.set_power(PowerState::Off);
            *v.start.lock() = None;
            v.vgic_dirty.store(false, Ordering::Relaxed);
        }
        let mpidrs: Vec<u64> = self.vcpus.iter().map(|v| v.mpidr).collect();
        *self.vgic.lock() = Self::fresh_vgic(&mpidrs);
        *self.console.lock() = VmConsole::default();
    }
}
