//! The physical GICv2 (Arm IHI 0048B; the Raspberry Pi 4's GIC-400, QEMU
//! `gic-version=2`) as Tandem owns it: the distributor (GICD), this CPU's
//! interface (GICC) and the virtual interface control (GICH).
//!
//! Tandem puts every interrupt in group 0 and enables both groups at the
//! CPU interface with `EOImode = 1` (priority drop on GICC_EOIR,
//! deactivation on GICC_DIR), as on GICv3. Under a secure GIC-400 seen from
//! the non-secure side (a Raspberry Pi with `enable_gic=1`), the firmware
//! has made everything group 1 and the same bits mean EnableGrp1 and
//! EOImodeNS. The GICV frame is not driven here: it is the guest's GICC,
//! mapped through stage 2.
//!
//! The boot CPU creates the driver ([`GicV2::init_distributor`] registers it
//! for [`GicV2::get`]); every CPU then calls [`GicV2::init_cpu`].

use core::sync::atomic::{AtomicU8, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    #[allow(missing_docs)]
    /// Distributor registers used by Tandem.
    pub Distributor {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x07fc => _reserved2),
        (0x0800 => itargetsr: [ReadWrite<u8>; 1020]),
        (0x0bfc => _reserved3),
        (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => _reserved4),
        (0x0f00 => sgir: WriteOnly<u32>),
        (0x0f04 => _reserved5),
        (0x1000 => @END),
    }
}

register_structs! {
    #[allow(missing_docs)]
    /// CPU interface registers (banked per CPU).
    pub CpuInterface {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => pmr: ReadWrite<u32>),
        (0x0008 => bpr: ReadWrite<u32>),
        (0x000c => iar: ReadOnly<u32>),
        (0x0010 => eoir: WriteOnly<u32>),
        (0x0014 => _reserved0),
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => @END),
    }
}

register_structs! {
    #[allow(missing_docs)]
    /// Virtual interface control registers (banked per CPU).
    pub HypInterface {
        (0x0000 => hcr: ReadWrite<u32>),
        (0x0004 => vtr: ReadOnly<u32>),
        (0x0008 => vmcr: ReadWrite<u32>),
        (0x000c => _reserved0),
        (0x0010 => misr: ReadOnly<u32>),
        (0x0014 => _reserved1),
        // GICH_EISR0 is not read: an LR it flags (deactivated with an EOI request) is
        // empty, so GICH_ELRSR0 flags it too.
        (0x0020 => _eisr0: ReadOnly<u32>),
        (0x0024 => _reserved2),
        (0x0030 => elrsr0: ReadOnly<u32>),
        (0x0034 => _reserved3),
        (0x00f0 => apr: ReadWrite<u32>),
        (0x00f4 => _reserved4),
        (0x0100 => lr: [ReadWrite<u32>; 64]),
        (0x0200 => @END),
    }
}

/// GICD_CTLR: EnableGrp0 and EnableGrp1 (the non-secure view has only bit 0).
const DIST_ENABLE: u32 = 0b11;
/// GICC_CTLR: EnableGrp0, EnableGrp1 (non-secure view: bit 0 = EnableGrp1),
/// EOImode (bit 9; EOImodeNS in the non-secure view).
const CPU_CTLR: u32 = 0b11 | (1 << 9);
/// GICH_HCR.En: the virtual CPU interface is enabled.
pub const HCR_EN: u32 = 1 << 0;
/// GICH_HCR.UIE: maintenance interrupt when at most one LR holds an interrupt.
pub const HCR_UIE: u32 = 1 << 1;
/// Default priority of every interrupt Tandem handles.
pub const PRIORITY: u8 = 0xa0;
/// Priority of Tandem's console UART: below its timers and kicks, so a
/// console backlog never delays a deadline.
pub const CONSOLE_PRIORITY: u8 = 0xc0;
/// GICC_IAR: the INTID bits (the source CPU of an SGI sits in `[12:10]`).
pub const IAR_INTID: u32 = 0x3ff;
/// Most CPU interfaces a GICv2 has.
const MAX_CPUS: usize = 8;

/// The driver instance, once the distributor is set up.
static INSTANCE: spin::Once<&'static GicV2> = spin::Once::new();
/// Each CPU's interface mask (its banked GICD_ITARGETSR0 byte), by MPIDR Aff0.
static CPU_MASK: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

/// The GICv2, by its register frames.
pub struct GicV2 {
    dist: &'static Distributor,
    cpu: &'static CpuInterface,
    hyp: &'static HypInterface,
    frames: [(u64, u64); 4],
}

// SAFETY: the driver holds addresses of device registers; GICC and GICH are
// banked per CPU, and distributor writes touch disjoint bits or are serialised
// by their callers (boot, VM creation).
unsafe impl Sync for GicV2 {}
// SAFETY: as above.
unsafe impl Send for GicV2 {}

impl GicV2 {
    /// Creates the driver over the GICD, GICC, GICH and GICV frames (base, size).
    ///
    /// # Safety
    /// The frames must be the GICv2's, mapped as device memory, driven by nothing else.
    pub unsafe fn new(dist: u64, cpu: u64, hyp: u64, frames: [(u64, u64); 4]) -> Self {
        // SAFETY: forwarded from the caller.
        let dist = unsafe { &*(dist as *const Distributor) };
        // SAFETY: forwarded from the caller.
        let cpu = unsafe { &*(cpu as *const CpuInterface) };
        // SAFETY: forwarded from the caller.
        let hyp = unsafe { &*(hyp as *const HypInterface) };
        Self {
            dist,
            cpu,
            hyp,
            frames,
        }
    }

    /// The driver, once [`GicV2::init_distributor`] has run.
    pub fn get() -> Option<&'static GicV2> {
        INSTANCE.get().copied()
    }

    /// The GICD, GICC, GICH and GICV frames as (base, size): no guest may be
    /// given them (the guest's GICC is GICV through stage 2, at its own IPA).
    pub fn frames(&self) -> [(u64, u64); 4] {
        self.frames
    }

    /// The GICV frame (base, size).
    pub fn vcpu_frame(&self) -> (u64, u64) {
        self.frames[3]
    }

    /// Number of SPI lines plus 32 (GICD_TYPER.ITLinesNumber).
    pub fn lines(&self) -> u32 {
        (((self.dist.typer.get() & 0x1f) + 1) * 32).min(1020)
    }

    /// Distributor setup (boot CPU): SPIs group 0, default priority,
    /// disabled, targeted at this CPU. Registers `self` for [`GicV2::get`].
    pub fn init_distributor(&'static self) {
        INSTANCE.call_once(|| self);
        self.dist.ctlr.set(0);
        let lines = self.lines() as usize;
        for i in 1..lines / 32 {
            self.dist.icenabler[i].set(u32::MAX);
            self.dist.igroupr[i].set(0);
        }
        let prio = u32::from_ne_bytes([PRIORITY; 4]);
        for i in 8..lines / 4 {
            self.dist.ipriorityr[i].set(prio);
        }
        let me = self.own_mask();
        for t in &self.dist.itargetsr[32..lines] {
            t.set(me);
        }
        self.dist.ctlr.set(DIST_ENABLE);
    }

    /// This CPU's interface mask, from its banked GICD_ITARGETSR0..7.
    fn own_mask(&self) -> u8 {
        self.dist.itargetsr[0].get()
    }

    /// Per-CPU setup (CPU with `mpidr`): SGIs/PPIs group 0 at the default
    /// priority, those in `enable` (bitmask of INTIDs 0..31) enabled, the
    /// CPU interface on with split EOI. False if the GIC does not answer
    /// with an interface mask for this CPU.
    pub fn init_cpu(&self, mpidr: u64, enable: u32) -> bool {
        let mask = self.own_mask();
        let aff0 = (mpidr & 0xff) as usize;
        if mask == 0 || aff0 >= MAX_CPUS {
            return false;
        }
        CPU_MASK[aff0].store(mask, Ordering::Relaxed);
        self.dist.igroupr[0].set(0);
        self.dist.icenabler[0].set(u32::MAX);
        let prio = u32::from_ne_bytes([PRIORITY; 4]);
        for r in &self.dist.ipriorityr[..8] {
            r.set(prio);
        }
        self.dist.isenabler[0].set(enable);
        self.cpu.pmr.set(0xff);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(CPU_CTLR);
        true
    }

    /// Routes SPI `intid` to the CPU with `mpidr` and enables it (edge or level).
    pub fn enable_spi(&self, intid: u32, mpidr: u64, edge: bool) {
        if !(32..self.lines()).contains(&intid) {
            return;
        }
        let n = intid as usize;
        self.dist.itargetsr[n].set(cpu_mask(mpidr));
        let cfg = &self.dist.icfgr[n / 16];
        let bit = 2 * (n % 16) + 1;
        cfg.set((cfg.get() & !(1 << bit)) | (u32::from(edge) << bit));
        self.dist.isenabler[n / 32].set(1 << (n % 32));
    }

    /// Sets SPI `intid`'s priority (lower is more urgent): a pending interrupt
    /// of higher priority is acknowledged first.
    pub fn set_spi_priority(&self, intid: u32, priority: u8) {
        if !(32..self.lines()).contains(&intid) {
            return;
        }
        let n = intid as usize;
        let shift = 8 * (n % 4);
        let r = &self.dist.ipriorityr[n / 4];
        r.set((r.get() & !(0xff << shift)) | (u32::from(priority) << shift));
    }

    /// Disables SPI `intid`.
    pub fn disable_spi(&self, intid: u32) {
        if (32..self.lines()).contains(&intid) {
            let n = intid as usize;
            self.dist.icenabler[n / 32].set(1 << (n % 32));
        }
    }

    /// Deactivates SPI `intid` (GICD_ICACTIVER), from any CPU.
    pub fn deactivate_spi(&self, intid: u32) {
        if (32..self.lines()).contains(&intid) {
            let n = intid as usize;
            self.dist.icactiver[n / 32].set(1 << (n % 32));
        }
    }

    /// Sends SGI `sgi` to the CPU with affinity `mpidr` (GICD_SGIR, target list).
    pub fn send_sgi(&self, sgi: u8, mpidr: u64) {
        let targets = u32::from(cpu_mask(mpidr));
        // Prior stores (pending interrupt state) are visible before the SGI
        // (a `dmb ish`, as Linux's GICv2 driver does before GICD_SGIR).
        core::sync::atomic::fence(Ordering::SeqCst);
        self.dist.sgir.set(targets << 16 | u32::from(sgi & 0xf));
    }

    /// GICC_IAR: the raw value (INTID in `[9:0]`, an SGI's source in `[12:10]`).
    #[inline]
    pub fn ack(&self) -> u32 {
        self.cpu.iar.get()
    }

    /// GICC_EOIR: drops the running priority of `iar` (the raw IAR value).
    #[inline]
    pub fn priority_drop(&self, iar: u32) {
        self.cpu.eoir.set(iar);
    }

    /// GICC_DIR: deactivates `iar` (the raw IAR value).
    #[inline]
    pub fn deactivate(&self, iar: u32) {
        self.cpu.dir.set(iar);
    }

    /// Number of list registers (GICH_VTR.ListRegs + 1).
    pub fn list_register_count(&self) -> usize {
        (self.hyp.vtr.get() & 0x3f) as usize + 1
    }

    /// Reads GICH_LR<n>.
    #[inline]
    pub fn read_lr(&self, n: usize) -> u32 {
        self.hyp.lr.get(n).map_or(0, |r| r.get())
    }

    /// Writes GICH_LR<n>.
    #[inline]
    pub fn write_lr(&self, n: usize, v: u32) {
        if let Some(r) = self.hyp.lr.get(n) {
            r.set(v);
        }
    }

    /// GICH_ELRSR0: bit n set when LR n holds no interrupt.
    #[inline]
    pub fn empty_lrs(&self) -> u32 {
        self.hyp.elrsr0.get()
    }

    /// Writes GICH_HCR.
    pub fn write_hcr(&self, v: u32) {
        self.hyp.hcr.set(v);
    }

    /// Reads GICH_VMCR.
    pub fn read_vmcr(&self) -> u32 {
        self.hyp.vmcr.get()
    }

    /// Writes GICH_VMCR.
    pub fn write_vmcr(&self, v: u32) {
        self.hyp.vmcr.set(v);
    }

    /// Reads GICH_APR.
    pub fn read_apr(&self) -> u32 {
        self.hyp.apr.get()
    }

    /// Writes GICH_APR.
    pub fn write_apr(&self, v: u32) {
        self.hyp.apr.set(v);
    }
}

/// The interface mask of the CPU with `mpidr`, as it reported at
/// [`GicV2::init_cpu`] (else the usual `1 << Aff0`).
fn cpu_mask(mpidr: u64) -> u8 {
    let aff0 = (mpidr & 0xff) as usize;
    match CPU_MASK.get(aff0).map(|m| m.load(Ordering::Relaxed)) {
        Some(m) if m != 0 => m,
        _ => 1u8.checked_shl(aff0 as u32).unwrap_or(0),
    }
}
