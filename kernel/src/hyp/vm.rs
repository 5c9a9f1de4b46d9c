//! A running VM: its memory, stage 2, vGIC, vCPUs and console, shared by the
//! physical CPUs that run its vCPUs.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::sync::Lock as Mutex;
use log::{info, warn};

use crate::aarch64::pte::{MemType, Perms, stage2_attrs};
use crate::arch::aarch64::{console, cpu, gic, vcpu as hw};
use crate::hypercall::PowerState;
use crate::mm::frames::{self, HeapTables};
use crate::mm::pagetable::PageTable;
use crate::vgic::Vgic;
use crate::vm::console::VmConsole;
use crate::vm::package::{FLAG_RESTART_ON_RESET, Package, VmDesc};

/// SPIs each VM's distributor offers (INTIDs 32..96).
pub const VM_SPIS: u32 = 64;
/// Console ring bytes kept free for each other VM.
const RING_SHARE: usize = 1024;
/// The SGI Tandem uses to make another physical CPU look at its vCPUs.
pub const KICK_SGI: u8 = 0;

/// VM lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmState {
    /// Running (some vCPU may be off or blocked).
    Running = 0,
    /// Powered off or stopped by Tandem; stays off.
    Stopped = 1,
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
}

/// What other CPUs can see of a vCPU.
pub struct VcpuShared {
    /// The physical CPU index it runs on.
    pub pcpu: usize,
    /// Its MPIDR as the guest sees it.
    pub mpidr: u64,
    power: AtomicU8,
    /// A pending start: (entry, x0).
    pub start: Mutex<Option<(u64, u64)>>,
}

impl VcpuShared {
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
}

/// A VM.
pub struct Vm {
    /// VM id (1-based; also its VMID).
    pub id: u32,
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
    pub vgic: Mutex<Vgic>,
    /// The vCPUs' shared state.
    pub vcpus: Vec<VcpuShared>,
    /// Console buffers.
    pub console: Mutex<VmConsole>,
    /// Counters.
    pub stats: VmStats,
    state: AtomicU8,
    /// Incremented at every reset; vCPUs of an older epoch stop.
    pub epoch: AtomicU32,
}

/// All VMs, created once at boot.
pub static VMS: spin::Once<Vec<&'static Vm>> = spin::Once::new();

/// MPIDR of each physical CPU by index (filled as CPUs come online).
pub static PCPU_MPIDR: [AtomicU64; 8] = [const { AtomicU64::new(u64::MAX) }; 8];

impl Vm {
    /// Builds VM `index` of the package: RAM, stage 2, vGIC, images loaded, vCPU 0 pending start.
    pub fn create(
        pkg: Package<'static>,
        index: usize,
        online_cpus: usize,
    ) -> Result<&'static Vm, &'static str> {
        let desc = pkg.vm(index).map_err(|_| "invalid VM record")?;
        for (i, &p) in desc.pcpus[..desc.vcpus as usize].iter().enumerate() {
            if usize::from(p) >= online_cpus {
                warn!(
                    "VM '{}': vCPU {i} wants physical CPU {p}, but only {online_cpus} are online",
                    desc.name()
                );
                return Err("a vCPU's physical CPU is not online");
            }
        }
        let ram_pa = frames::alloc_frames(desc.ram_size as usize, 2 << 20)
            .ok_or("not enough memory for its RAM")?;
        let id = index as u32 + 1;
        let mut tables = HeapTables;
        let mut s2 =
            PageTable::new(&mut tables, 1, 32).map_err(|_| "no memory for stage-2 tables")?;
        s2.map(
            &mut tables,
            desc.ram_ipa,
            ram_pa,
            desc.ram_size,
            stage2_attrs(Perms::RWX, MemType::Normal),
        )
        .map_err(|_| "cannot map its RAM at stage 2")?;
        super::passthrough::attach(id, &desc, &mut s2, &mut tables)?;
        let vttbr = s2.root() | (u64::from(id) << 48);
        // No stale translations for this VMID may survive from firmware or a former owner.
        hw::load_vm(vttbr, 0);
        hw::flush_vm_tlb();
        let mpidrs: Vec<u64> = (0..desc.vcpus as u64).map(|i| (1 << 31) | i).collect();
        let vcpus = (0..desc.vcpus as usize)
            .map(|i| VcpuShared {
                pcpu: usize::from(desc.pcpus[i]),
                mpidr: mpidrs[i],
                power: AtomicU8::new(0),
                start: Mutex::new(None),
            })
            .collect();
        let vm = Box::leak(Box::new(Vm {
            id,
            desc,
            pkg,
            ram_pa,
            vttbr,
            cntvoff: hw::counter(),
            vgic: Mutex::new(Vgic::new(desc.vcpus as usize, VM_SPIS, &mpidrs)),
            vcpus,
            console: Mutex::new(VmConsole::default()),
            stats: VmStats::default(),
            state: AtomicU8::new(VmState::Running as u8),
            epoch: AtomicU32::new(0),
        }));
        vm.load_images();
        info!(
            "VM {} '{}': {} MiB at {:#x}, {} vCPU(s) on pCPU {:?}",
            id,
            desc.name(),
            desc.ram_size >> 20,
            ram_pa,
            desc.vcpus,
            &desc.pcpus[..desc.vcpus as usize]
        );
        Ok(vm)
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.desc.name()
    }

    /// Copies the pristine images into RAM and queues vCPU 0's start.
    fn load_images(&self) {
        for b in self.desc.blobs() {
            let data = self.pkg.blob_bytes(b);
            let pa = self.ram_pa + (b.load_ipa - self.desc.ram_ipa);
            in_steps(pa, data.len() as u64, |a, n| {
                let from = (a - pa) as usize;
                // SAFETY: the blob lies within the VM's RAM (checked by Package::vm), which this
                // VM owns exclusively and no vCPU of it is running.
                unsafe { frames::copy_to(a, &data[from..from + n as usize]) };
            });
        }
        // Only the images hold code; sync them (in steps, see `in_steps`).
        for b in self.desc.blobs() {
            let pa = self.ram_pa + (b.load_ipa - self.desc.ram_ipa);
            in_steps(pa, b.size, hw::sync_icache);
        }
        *self.vcpus[0].start.lock() = Some((self.desc.entry, self.desc.x0));
        self.vcpus[0].set_power(PowerState::OnPending);
    }

    /// Current lifecycle state.
    pub fn state(&self) -> VmState {
        if self.state.load(Ordering::Acquire) == VmState::Stopped as u8 {
            VmState::Stopped
        } else {
            VmState::Running
        }
    }

    /// Whether `ipa` lies in guest RAM.
    pub fn is_ram(&self, ipa: u64) -> bool {
        ipa >= self.desc.ram_ipa && ipa < self.desc.ram_ipa + self.desc.ram_size
    }

    /// The vCPU with MPIDR affinity `mpidr`.
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<usize> {
        let aff = mpidr & 0xff_00ff_ffff;
        self.vcpus
            .iter()
            .position(|v| v.mpidr & 0xff_00ff_ffff == aff)
    }

    /// Makes the physical CPUs running the vCPUs in `mask` look at them again.
    pub fn kick(&self, mask: u32) {
        let me = cpu::index();
        for (i, v) in self.vcpus.iter().enumerate() {
            if mask & (1 << i) != 0 && v.pcpu != me {
                kick_pcpu(v.pcpu);
            }
        }
    }

    /// Injects an edge interrupt and wakes whoever must see it.
    pub fn inject(&self, intid: u32, vcpu: Option<usize>) {
        let kick = self.vgic.lock().inject(intid, vcpu);
        self.stats.virqs.fetch_add(1, Ordering::Relaxed);
        self.kick(kick);
    }

    /// Takes guest console output: streamed if this VM has the console focus, else by whole
    /// lines. It only ever copies into Tandem's transmit ring (never waits for the UART);
    /// when the ring is nearly full it accepts fewer bytes and the guest retries the rest.
    pub fn console_write(&self, bytes: &[u8]) -> usize {
        let mut tag = [0u8; 40];
        let tag = self.tag(&mut tag);
        let focused = crate::hyp::has_focus(self.id);
        // Every other VM keeps a share of the ring, so one VM's flood of output
        // never makes another VM's console writes wait.
        let others = VMS.get().map_or(0, |v| v.len().saturating_sub(1));
        console::with_terminal(|term, out, free| {
            // Room for the bytes, CR before each newline, and a tag per line.
            let take = bytes
                .len()
                .min(free.saturating_sub(256 + others * RING_SHARE) / 2);
            let bytes = &bytes[..take];
            if focused {
                term.stream(self.id, tag, bytes, &mut |b| out(b));
                take
            } else {
                self.console
                    .lock()
                    .write(bytes, |line| term.line(tag, line, &mut |b| out(b)))
            }
        })
    }

    /// The line tag, e.g. ` linux | `, coloured per VM on a terminal (bootarg tandem.color=on).
    fn tag<'a>(&self, buf: &'a mut [u8; 40]) -> &'a [u8] {
        let name = self.name().as_bytes();
        let color = crate::hyp::COLOR.load(Ordering::Relaxed);
        let on: &[u8] =
            [b"\x1b[36m", b"\x1b[33m", b"\x1b[35m", b"\x1b[32m"][(self.id as usize - 1) % 4];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if n < buf.len() {
                    buf[n] = b;
                    n += 1;
                }
            }
        };
        if color {
            put(on);
        }
        for _ in name.len()..6 {
            put(b" ");
        }
        put(name);
        put(b" |");
        if color {
            put(b"\x1b[0m");
        }
        put(b" ");
        &buf[..n]
    }

    /// Stops the VM for good, naming why; powers the machine off when nothing runs.
    /// A VM declared with `restart = true` is restarted instead.
    pub fn stop(&self, why: core::fmt::Arguments<'_>) {
        if self.restarts() {
            warn!("VM {} '{}': {}", self.id, self.name(), why);
            self.reset("restart = true");
            return;
        }
        if self.state.swap(VmState::Stopped as u8, Ordering::AcqRel) == VmState::Stopped as u8 {
            return;
        }
        for v in &self.vcpus {
            v.set_power(PowerState::Off);
        }
        warn!("VM {} '{}' stopped: {}", self.id, self.name(), why);
        self.kick(u32::MAX);
        let all_stopped = VMS
            .get()
            .is_some_and(|vms| vms.iter().all(|vm| vm.state() == VmState::Stopped));
        if all_stopped {
            info!("all VMs have stopped: powering off");
            crate::hyp::power_off();
        }
    }

    /// Restarts the VM from its pristine images (PSCI SYSTEM_RESET, or a crash with restart set).
    pub fn reset(&self, why: &str) {
        info!("VM {} '{}' resetting ({why})", self.id, self.name());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for v in &self.vcpus {
            v.set_power(PowerState::Off);
            *v.start.lock() = None;
        }
        self.kick(u32::MAX);
        // Wait (bounded) for the other physical CPUs to leave this VM's vCPUs.
        let me = cpu::index();
        for v in self.vcpus.iter().filter(|v| v.pcpu != me) {
            let start = cpu::now_ns();
            while PCPU_RUNNING_VM[v.pcpu].load(Ordering::Acquire) == self.id
                && cpu::now_ns() - start < 100_000_000
            {
                // Let the emulator run that CPU (and keep slicing short meanwhile).
                crate::hyp::rearm_emulator_tick();
                <crate::sync::CpuRelax as spin::RelaxStrategy>::relax();
            }
        }
        // SAFETY: the VM's RAM belongs to it alone and none of its vCPUs runs now.
        in_steps(self.ram_pa, self.desc.ram_size, |a, n| unsafe {
            frames::zero(a, n)
        });
        *self.vgic.lock() = Vgic::new(
            self.vcpus.len(),
            VM_SPIS,
            &self.vcpus.iter().map(|v| v.mpidr).collect::<Vec<_>>(),
        );
        super::passthrough::reset(self);
        *self.console.lock() = VmConsole::default();
        self.load_images();
        self.kick(1);
        if self.vcpus[0].pcpu == me {
            // Picked up by this CPU's loop.
        }
    }

    /// Whether a crash should restart the VM rather than stop it.
    pub fn restarts(&self) -> bool {
        self.desc.has(FLAG_RESTART_ON_RESET)
    }
}

/// Does long work on guest memory in 1 MiB steps, re-arming the emulator tick
/// between them so that a long reset does not starve other CPUs under QEMU's
/// round-robin `-icount` (see `BoardDesc::emulator_tick_ns`).
fn in_steps(pa: u64, len: u64, mut f: impl FnMut(u64, u64)) {
    const STEP: u64 = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = STEP.min(len - done);
        f(pa + done, n);
        done += n;
        crate::hyp::rearm_emulator_tick();
    }
}

/// The VM id whose vCPU each physical CPU is running right now (0: none).
pub static PCPU_RUNNING_VM: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];

/// Sends the kick SGI to physical CPU `pcpu`.
pub fn kick_pcpu(pcpu: usize) {
    if let Some(m) = PCPU_MPIDR.get(pcpu).map(|m| m.load(Ordering::Acquire))
        && m != u64::MAX
    {
        gic::send_sgi(KICK_SGI, m);
    }
}
