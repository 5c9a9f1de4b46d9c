//! The physical GICv3 distributor and redistributors (Arm IHI 0069), as Tandem owns them.
//!
//! Tandem runs the GIC with affinity routing, a single security state as
//! QEMU and firmware give it to EL2, every interrupt in group 1, and
//! `EOImode = 1` at the CPU interface (priority drop and deactivation split,
//! see `arch::aarch64::gic`).
//!
//! The boot CPU creates the driver and sets up the distributor
//! ([`GicV3::init_distributor`], which also registers the instance for
//! [`GicV3::get`]); passthrough (`hyp::passthrough`) then routes, enables,
//! disables and deactivates the SPIs assigned to VMs.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

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
        (0x0400 => ipriorityr: [ReadWrite<u32>; 256]),
        (0x0800 => _reserved2),
        (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => _reserved3),
        (0x6100 => irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => _reserved4),
        (0x8000 => @END),
    }
}

register_structs! {
    #[allow(missing_docs)]
    /// Redistributor RD_base frame.
    pub RedistRd {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _reserved0),
        (0x0014 => waker: ReadWrite<u32>),
        (0x0018 => _reserved1),
        (0x10000 => @END),
    }
}

register_structs! {
    #[allow(missing_docs)]
    /// Redistributor SGI_base frame (SGIs and PPIs).
    pub RedistSgi {
        (0x0000 => _reserved0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x0420 => _reserved4),
        (0x0c04 => icfgr1: ReadWrite<u32>),
        (0x0c08 => _reserved5),
        (0x10000 => @END),
    }
}

/// GICR_TYPER.Last: this is the last redistributor frame.
const TYPER_LAST: u64 = 1 << 4;
/// GICR_WAKER.ProcessorSleep.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICD_CTLR: EnableGrp0, EnableGrp1, ARE.
const CTLR_ENABLE: u32 = 0b1 | 0b10 | (1 << 4);
/// GICD_CTLR.RWP: a register write is still taking effect.
const CTLR_RWP: u32 = 1 << 31;
/// Default priority of every interrupt Tandem handles.
pub const PRIORITY: u8 = 0xa0;
/// Priority of Tandem's console UART: below its timers and kicks, so a
/// console backlog never delays a deadline.
pub const CONSOLE_PRIORITY: u8 = 0xc0;

/// The driver instance, once the distributor is set up.
static INSTANCE: spin::Once<&'static GicV3> = spin::Once::new();

/// The GIC, by its register windows.
pub struct GicV3 {
    dist: &'static Distributor,
    redist_base: usize,
    redist_size: usize,
}

// SAFETY: the driver holds addresses of device registers; callers serialise
// distributor access, and each CPU only touches its own redistributor.
unsafe impl Sync for GicV3 {}
// SAFETY: as above.
unsafe impl Send for GicV3 {}

impl GicV3 {
    /// Creates the driver.
    ///
    /// # Safety
    /// `dist` and `[redist, redist + redist_size)` must be the GICv3 windows,
    /// mapped as device memory, driven by nothing else.
    pub unsafe fn new(dist: usize, redist: usize, redist_size: usize) -> Self {
        // SAFETY: forwarded from the caller.
        let dist = unsafe { &*(dist as *const Distributor) };
        Self {
            dist,
            redist_base: redist,
            redist_size,
        }
    }

    /// Number of SPI lines plus 32 (GICD_TYPER.ITLinesNumber).
    pub fn lines(&self) -> u32 {
        ((self.dist.typer.get() & 0x1f) + 1) * 32
    }

    fn wait_rwp(&self) {
        for _ in 0..1_000_000 {
            if self.dist.ctlr.get() & CTLR_RWP == 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// The driver, once [`GicV3::init_distributor`] has run.
    pub fn get() -> Option<&'static GicV3> {
        INSTANCE.get().copied()
    }

    /// Distributor setup (boot CPU): SPIs group 1, default priority, disabled,
    /// routed to CPU 0. Registers `self` for [`GicV3::get`].
    pub fn init_distributor(&'static self, boot_mpidr: u64) {
        INSTANCE.call_once(|| self);
        self.dist.ctlr.set(0);
        self.wait_rwp();
        let lines = self.lines().min(1020) as usize;
        for i in 1..lines / 32 {
            self.dist.icenabler[i].set(u32::MAX);
            self.dist.igroupr[i].set(u32::MAX);
        }
        let prio = u32::from_ne_bytes([PRIORITY; 4]);
        for i in 8..lines / 4 {
            self.dist.ipriorityr[i].set(prio);
        }
        for n in 0..lines.saturating_sub(32) {
            self.dist.irouter[n].set(boot_mpidr & 0xff_00ff_ffff);
        }
        self.dist.ctlr.set(CTLR_ENABLE);
        self.wait_rwp();
    }

    /// Routes SPI `intid` to the CPU with `mpidr` and enables it (edge or level).
    pub fn enable_spi(&self, intid: u32, mpidr: u64, edge: bool) {
        if !(32..self.lines()).contains(&intid) {
            return;
        }
        let n = intid as usize;
        self.dist.irouter[n - 32].set(mpidr & 0xff_00ff_ffff);
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

    /// The distributor and redistributor windows as (base, size).
    pub fn frames(&self) -> [(u64, u64); 2] {
        [
            (self.dist as *const Distributor as u64, 0x1_0000),
            (self.redist_base as u64, self.redist_size as u64),
        ]
    }

    /// Whether `[base, base + size)` meets the distributor (64 KiB) or the
    /// redistributor window: physical ranges no guest may be given.
    pub fn overlaps(&self, base: u64, size: u64) -> bool {
        let meets = |start: u64, len: u64| base < start + len && start < base.saturating_add(size);
        meets(self.dist as *const Distributor as u64, 0x1_0000)
            || meets(self.redist_base as u64, self.redist_size as u64)
    }

    /// Disables SPI `intid` (GICD_ICENABLER): it is no longer signalled.
    pub fn disable_spi(&self, intid: u32) {
        if (32..self.lines()).contains(&intid) {
            let n = intid as usize;
            self.dist.icenabler[n / 32].set(1 << (n % 32));
        }
    }

    /// Deactivates SPI `intid` (GICD_ICACTIVER), from any CPU. Tandem runs
    /// with split EOI: this is the deactivation a priority drop
    /// (`gic::priority_drop`) left for later. No effect if it is not active.
    pub fn deactivate_spi(&self, intid: u32) {
        if (32..self.lines()).contains(&intid) {
            let n = intid as usize;
            self.dist.icactiver[n / 32].set(1 << (n % 32));
        }
    }

    /// The redistributor frames (RD_base) of the CPU with affinity `mpidr`.
    fn redistributor(&self, mpidr: u64) -> Option<usize> {
        let aff = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
        let mut base = self.redist_base;
        while base + 0x20000 <= self.redist_base + self.redist_size {
            // SAFETY: `base` is inside the redistributor window given to `new`.
            let rd = unsafe { &*(base as *const RedistRd) };
            let typer = rd.typer.get();
            if typer >> 32 == aff {
                return Some(base);
            }
            if typer & TYPER_LAST != 0 {
                break;
            }
            base += 0x20000;
        }
        None
    }

    /// Per-CPU setup: wake this CPU's redistributor, put SGIs/PPIs in group 1
    /// at the default priority, enable the PPIs and SGIs in `enable` (bitmask of INTIDs 0..31).
    pub fn init_cpu(&self, mpidr: u64, enable: u32) -> bool {
        let Some(rd_base) = self.redistributor(mpidr) else {
            return false;
        };
        // SAFETY: rd_base and rd_base + 64 KiB are this CPU's frames inside the window.
        let rd = unsafe { &*(rd_base as *const RedistRd) };
        // SAFETY: as above.
        let sgi = unsafe { &*((rd_base + 0x10000) as *const RedistSgi) };
        rd.waker.set(rd.waker.get() & !WAKER_PROCESSOR_SLEEP);
        for _ in 0..1_000_000 {
            if rd.waker.get() & WAKER_CHILDREN_ASLEEP == 0 {
                break;
            }
            core::hint::spin_loop();
        }
        sgi.igroupr0.set(u32::MAX);
        sgi.icenabler0.set(u32::MAX);
        let prio = u32::from_ne_bytes([PRIORITY; 4]);
        for r in &sgi.ipriorityr {
            r.set(prio);
        }
        // PPIs level-sensitive (timers).
        sgi.icfgr1.set(0);
        sgi.isenabler0.set(enable);
        true
    }
}
