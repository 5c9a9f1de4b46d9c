//! Virtual GIC (v3 or v2): the emulated distributor (and, on v3, redistributors) of one VM, and
//! the list-register management that feeds the hardware virtual CPU interface.
//!
//! The guest programs its interrupt controller through trapped MMIO
//! ([`Vgic::mmio_read`]/[`Vgic::mmio_write`]); it acknowledges and completes
//! interrupts through the hardware's ICV_* registers, which show it whatever
//! Tandem placed in the vCPU's `ICH_LR<n>_EL2` registers. Around each guest
//! run the arch layer calls:
//!
//! 1. [`Vgic::flush`] before entering vCPU `v`: fill `lrs` and write them to
//!    `ICH_LR0..n-1_EL2`; if it returns `true`, set `ICH_HCR_EL2.UIE`.
//! 2. [`Vgic::sync`] after *every* exit of `v` (before handling the exit):
//!    read back the same `n` LRs and pass them in.
//!
//! LRs are a cache: the model here is authoritative between a sync and the
//! next flush. While an interrupt is in an LR, its pending latch and active
//! bit live in the LR, and it is never offered to a second LR or vCPU.
//!
//! These three calls sit on every guest exit and entry, so they cost in
//! proportion to the interrupts actually pending or active (see the
//! candidate sets in `state`), never to the number of INTIDs.
//!
//! Layout: `state` holds per-INTID state independent of any register map,
//! [`dist`] decodes the GICv3 GICD/GICR MMIO layout onto it, [`dist_v2`] the
//! GICv2 GICD layout (chosen by [`VgicLayout`]), and [`lr`] encodes list
//! registers (GICv3 `ICH_LR` and GICv2 `GICH_LR`, through
//! [`Vgic::flush_with`]/[`Vgic::sync_with`]).
//!
//! Passthrough SPIs are *hardware-backed*: [`Vgic::inject_hw`] marks the
//! virtual SPI pending on behalf of a physical interrupt that Tandem
//! acknowledged and priority-dropped but left active; flush gives it an LR
//! with HW = 1 and the physical INTID, so the guest's deactivation deactivates
//! the physical interrupt too (IHI 0069, "Virtual interrupts linked to
//! physical interrupts"), and a level-sensitive line still high fires again
//! only then. If the guest makes such an interrupt idle another way (ICPENDR,
//! ICACTIVER), [`Vgic::take_released`] reports the physical INTID to deactivate.
//!
//! Single security state (GICD_CTLR.DS = 1), affinity routing always on
//! (ARE RAO/WI), no LPIs, no ITS. Reference: Arm IHI 0069 (GICv3/v4
//! architecture specification): interrupt states, affinity routing, virtual
//! CPU interface and the GICD/GICR/ICH register descriptions.
#![forbid(unsafe_code)]

pub mod dist;
pub mod dist_v2;
pub mod lr;
mod state;

use alloc::boxed::Box;

use lr::{Backing, IchLr, ListReg, LrFormat, LrState};
use state::{IrqTable, PRIVATE_INTIDS};
pub use state::{MAX_SPIS, MAX_VCPUS, PRIORITY_MASK};

/// Most list registers a vCPU interface has (ICH_VTR_EL2.ListRegs ≤ 15 → 16).
pub const MAX_LRS: usize = 16;

/// Which GIC the guest sees and where its frames sit in its IPA space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicLayout {
    /// GICv3: an emulated distributor (64 KiB) and one emulated
    /// redistributor per vCPU; the CPU interface is the ICV system registers.
    V3 {
        /// IPA of the distributor.
        dist_base: u64,
        /// IPA of redistributor 0; vCPU `n`'s is at `redist_base + n * REDIST_STRIDE`.
        redist_base: u64,
    },
    /// GICv2: an emulated distributor (4 KiB); the CPU interface is the
    /// hardware GICV frame, which stage 2 maps at `cpu_base`.
    V2 {
        /// IPA of the distributor.
        dist_base: u64,
        /// IPA of the guest's GICC (GICV_SIZE bytes).
        cpu_base: u64,
    },
}

impl VgicLayout {
    /// The QEMU `virt` machine's GICv3 map, which guest device trees expect.
    pub const QEMU_VIRT: Self = Self::V3 {
        dist_base: 0x0800_0000,
        redist_base: 0x080a_0000,
    };
    /// The QEMU `virt` machine's GICv2 map (GICD, GICC).
    pub const QEMU_VIRT_V2: Self = Self::V2 {
        dist_base: 0x0800_0000,
        cpu_base: 0x0801_0000,
    };
    /// Size of the GICv3 distributor frame.
    pub const DIST_SIZE: u64 = 0x1_0000;
    /// Size of one redistributor: RD_base then SGI_base, 64 KiB each.
    pub const REDIST_STRIDE: u64 = 0x2_0000;
    /// Size of the GICv2 guest CPU interface (GICV, with GICV_DIR at 0x1000).
    pub const GICV_SIZE: u64 = 0x2000;

    /// The layout of `version` (2 or 3) at QEMU virt's addresses.
    pub fn qemu_virt(version: u8) -> Self {
        if version == 2 {
            Self::QEMU_VIRT_V2
        } else {
            Self::QEMU_VIRT
        }
    }

    /// IPA of the distributor.
    pub fn dist_base(&self) -> u64 {
        match *self {
            Self::V3 { dist_base, .. } | Self::V2 { dist_base, .. } => dist_base,
        }
    }

    /// The IPA windows (base, size) the GIC takes in a guest with `vcpus`
    /// vCPUs: no passthrough device may overlap them.
    pub fn windows(&self, vcpus: u64) -> [(u64, u64); 2] {
        match *self {
            Self::V3 {
                dist_base,
                redist_base,
            } => [
                (dist_base, Self::DIST_SIZE),
                (redist_base, Self::REDIST_STRIDE * vcpus),
            ],
            Self::V2 {
                dist_base,
                cpu_base,
            } => [(dist_base, Self::DIST_SIZE), (cpu_base, Self::GICV_SIZE)],
        }
    }
}

/// An emulated register frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The distributor (GICD).
    Dist,
    /// The redistributor of a vCPU (GICR; offsets 0x1_0000.. are SGI_base).
    Redist(usize),
    /// The GICv2 distributor as vCPU `n` sees it (SGI/PPI registers banked).
    CpuDist(usize),
}

/// Why an MMIO access cannot be emulated; the caller injects a synchronous
/// external abort into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// The access size is not one the register supports (or not 1/2/4/8).
    BadWidth,
    /// The address is not a multiple of the access size.
    Misaligned,
    /// `Frame::Redist(n)` or `Frame::CpuDist(n)` with `n` not a vCPU of this VM.
    NoSuchFrame,
}

/// Why a vGIC cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicConfigError {
    /// No vCPUs, or more than [`MAX_VCPUS`].
    VcpuCount,
    /// The SPI count is not a multiple of 32 or exceeds [`MAX_SPIS`].
    SpiCount,
    /// Two vCPUs share an affinity (MPIDR Aff3.Aff2.Aff1.Aff0).
    DuplicateMpidr,
}

/// Debug counters (guest-caused oddities, never errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VgicStats {
    /// Accesses to reserved or unimplemented offsets (RAZ/WI).
    pub reserved_accesses: u64,
}

/// A read-only view of one interrupt's state, for debugging and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqView {
    /// Enabled.
    pub enabled: bool,
    /// Pending as ISPENDR shows it (model or LR as of the last flush).
    pub pending: bool,
    /// Active as ISACTIVER shows it.
    pub active: bool,
    /// Priority byte.
    pub priority: u8,
    /// Group 1.
    pub group1: bool,
    /// Edge-triggered.
    pub edge: bool,
    /// The vCPU whose LRs hold it.
    pub in_lr: Option<usize>,
    /// SPI target vCPU mask (0 for SGIs/PPIs).
    pub targets: u8,
    /// Hardware-backed and holding its physical interrupt active.
    pub hw_active: bool,
}

/// Affinity bits of an MPIDR_EL1 / GICD_IROUTER value: Aff3 `[39:32]`, Aff2..Aff0 `[23:0]`.
const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// Which interrupts sit in one vCPU's list registers, by LR index.
#[derive(Clone, Copy, Debug)]
struct LrSlots {
    intid: [u16; MAX_LRS],
    used: usize,
}

/// Redistributor registers that are not interrupt state.
#[derive(Clone, Copy, Debug)]
struct RedistRegs {
    /// GICR_WAKER.ProcessorSleep (ChildrenAsleep follows it at once).
    sleep: bool,
}

/// The virtual GIC of one VM.
#[derive(Clone, Debug)]
pub struct Vgic {
    /// On the heap: the table is most of a vGIC's ~13 KiB, and a `Vgic` is
    /// built and moved on EL2's 64 KiB stacks (VM creation and reset).
    table: Box<IrqTable>,
    layout: VgicLayout,
    /// MPIDR affinity of each vCPU.
    mpidr: [u64; MAX_VCPUS],
    /// GICD_IROUTER<32 + i> (valid bits only).
    irouter: [u64; MAX_SPIS],
    redist: [RedistRegs; MAX_VCPUS],
    slots: [LrSlots; MAX_VCPUS],
    stats: VgicStats,
    /// Interrupts examined by flush/has_deliverable (cost measure for tests).
    #[cfg(test)]
    examined: core::cell::Cell<u64>,
}

impl Vgic {
    /// A reset vGIC for `vcpus` vCPUs whose MPIDR_EL1 values are
    /// `mpidrs[..vcpus]`, with `spis` SPIs (INTIDs 32..32 + spis), at the
    /// QEMU `virt` addresses ([`VgicLayout::QEMU_VIRT`]).
    ///
    /// # Panics
    ///
    /// If the configuration is invalid (see [`Vgic::try_new`]): the VM
    /// description is the hypervisor's, never the guest's.
    pub fn new(vcpus: usize, spis: u32, mpidrs: &[u64]) -> Self {
        let mpidrs = mpidrs.get(..vcpus).unwrap_or(&[]);
        match Self::try_new(mpidrs, spis, VgicLayout::QEMU_VIRT) {
            Ok(vgic) => vgic,
            Err(e) => panic!("invalid vGIC configuration: {e:?}"),
        }
    }

    /// A reset vGIC for vCPUs with the given MPIDR_EL1 values (vCPU `n` is
    /// `mpidrs[n]`), `spis` SPIs (INTIDs 32..32 + spis), at `layout`.
    ///
    /// Every SPI initially routes to affinity 0.0.0.0 (IROUTER reset value 0).
    pub fn try_new(mpidrs: &[u64], spis: u32, layout: VgicLayout) -> Result<Self, VgicConfigError> {
        if mpidrs.is_empty() || mpidrs.len() > MAX_VCPUS {
            return Err(VgicConfigError::VcpuCount);
        }
        if !spis.is_multiple_of(32) || spis as usize > MAX_SPIS {
            return Err(VgicConfigError::SpiCount);
        }
        let mut mpidr = [0; MAX_VCPUS];
        for (i, m) in mpidrs.iter().enumerate() {
            mpidr[i] = m & AFFINITY_MASK;
            if mpidr[..i].contains(&mpidr[i]) {
                return Err(VgicConfigError::DuplicateMpidr);
            }
        }
        let mut vgic = Self {
            table: Box::new(IrqTable::new(
                mpidrs.len(),
                spis,
                matches!(layout, VgicLayout::V3 { .. }),
            )),
            layout,
            mpidr,
            irouter: [0; MAX_SPIS],
            redist: [RedistRegs { sleep: true }; MAX_VCPUS],
            slots: [LrSlots {
                intid: [0; MAX_LRS],
                used: 0,
            }; MAX_VCPUS],
            stats: VgicStats::default(),
            #[cfg(test)]
            examined: core::cell::Cell::new(0),
        };
        let reset_route = vgic.route_mask(0);
        for intid in PRIVATE_INTIDS..vgic.table.intid_limit() {
            vgic.table.set_targets(intid, reset_route);
        }
        Ok(vgic)
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.table.vcpus()
    }

    /// Debug counters.
    pub fn stats(&self) -> VgicStats {
        self.stats
    }

    /// Guest physical address → frame and offset, if it is a vGIC register,
    /// for an access by vCPU `vcpu`.
    pub fn decode_ipa(&self, ipa: u64, vcpu: usize) -> Option<(Frame, u64)> {
        match self.layout {
            VgicLayout::V2 { dist_base, .. } => {
                let off = ipa
                    .checked_sub(dist_base)
                    .filter(|&o| o < dist_v2::FRAME_SIZE)?;
                Some((Frame::CpuDist(vcpu), off))
            }
            VgicLayout::V3 {
                dist_base,
                redist_base,
            } => {
                if let Some(off) = ipa
                    .checked_sub(dist_base)
                    .filter(|&o| o < VgicLayout::DIST_SIZE)
                {
                    return Some((Frame::Dist, off));
                }
                let rel = ipa.checked_sub(redist_base)?;
                let n = usize::try_from(rel / VgicLayout::REDIST_STRIDE).ok()?;
                (n < self.vcpus()).then_some((Frame::Redist(n), rel % VgicLayout::REDIST_STRIDE))
            }
        }
    }

    /// The layout it was built with.
    pub fn layout(&self) -> VgicLayout {
        self.layout
    }

    /// Emulate a guest read of `width` bytes (1, 2, 4 or 8) at `offset` in
    /// `frame`; the value is zero-extended (the caller sign-extends if the
    /// load asked for it).
    pub fn mmio_read(&mut self, frame: Frame, offset: u64, width: u8) -> Result<u64, MmioError> {
        self.check_access(frame, offset, width)?;
        match frame {
            Frame::CpuDist(cpu) => self.v2_read(cpu, offset, width),
            _ => self.v3_read(frame, offset, width),
        }
    }

    /// Emulate a guest write of the low `width` bytes of `value`. Returns the
    /// vCPUs to kick (bit `n` = vCPU `n`): an interrupt became deliverable to
    /// them, or state they hold in LRs changed. The bit of the writing vCPU
    /// may be set; it is refreshed by its own next flush anyway.
    pub fn mmio_write(
        &mut self,
        frame: Frame,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<u32, MmioError> {
        self.check_access(frame, offset, width)?;
        let value = value & width_mask(width);
        match frame {
            Frame::CpuDist(cpu) => self.v2_write(cpu, offset, width, value),
            _ => self.v3_write(frame, offset, width, value),
        }
    }

    fn check_access(&self, frame: Frame, offset: u64, width: u8) -> Result<(), MmioError> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(MmioError::BadWidth);
        }
        if !offset.is_multiple_of(u64::from(width)) {
            return Err(MmioError::Misaligned);
        }
        match frame {
            Frame::Redist(n) | Frame::CpuDist(n) if n >= self.vcpus() => {
                Err(MmioError::NoSuchFrame)
            }
            _ => Ok(()),
        }
    }

    /// An interrupt source fires (an edge, or a software-generated event):
    /// latch `intid` pending. SGIs and PPIs need the vCPU; SPIs ignore it and
    /// follow their route. Returns the vCPUs to kick; 0 for an unknown INTID
    /// or vCPU.
    pub fn inject(&mut self, intid: u32, vcpu: Option<usize>) -> u32 {
        let Some(cpu) = self.bank_of(intid, vcpu) else {
            return 0;
        };
        let newly = self
            .table
            .update(cpu, intid, |irq| !core::mem::replace(&mut irq.latch, true));
        if newly != Some(true) {
            return 0;
        }
        self.table.kick_for(cpu, intid)
    }

    /// Physical SPI `pintid`, which Tandem acknowledged and priority-dropped
    /// but left active, is forwarded as SPI `intid`: latch it pending, linked
    /// to `pintid` (its LR gets HW = 1, so the guest's deactivation deactivates
    /// `pintid`). Returns the vCPUs to kick; 0 (and nothing changes) unless
    /// `intid` is an SPI of this VM and `pintid` one of 32..=1019.
    ///
    /// While the physical interrupt is active it cannot fire again, so each
    /// call stands for one assertion the guest has not yet handled.
    pub fn inject_hw(&mut self, intid: u32, pintid: u32) -> u32 {
        if intid < PRIVATE_INTIDS || !(32..=1019).contains(&pintid) {
            return 0;
        }
        let latched = self.table.update(0, intid, |irq| {
            irq.pintid = pintid as u16;
            irq.hw_active = true;
            !core::mem::replace(&mut irq.latch, true)
        });
        match latched {
            Some(true) => self.table.kick_for(0, intid),
            _ => 0,
        }
    }

    /// Calls `f` with each physical INTID that a hardware-backed SPI left
    /// active although the guest no longer holds the virtual one (it cleared
    /// its pending or active state by MMIO): the caller deactivates it, so a
    /// line still high fires again. Each release is reported once.
    pub fn take_released(&mut self, f: impl FnMut(u32)) {
        self.table.take_released(f);
    }

    /// Drive the input line of a PPI or SPI (SGIs have none and are ignored).
    /// A level-sensitive interrupt is pending while the line is high; an
    /// edge-triggered one latches on the rising edge. Returns the vCPUs to kick.
    pub fn set_level(&mut self, intid: u32, vcpu: Option<usize>, high: bool) -> u32 {
        if intid < state::SGIS {
            return 0;
        }
        let Some(cpu) = self.bank_of(intid, vcpu) else {
            return 0;
        };
        let changed = self.table.update(cpu, intid, |irq| {
            if irq.level == high {
                return false;
            }
            irq.level = high;
            if irq.edge && high {
                irq.latch = true;
            }
            true
        });
        if changed != Some(true) {
            return 0;
        }
        self.table.kick_for(cpu, intid)
    }

    /// The banked-table index for `intid` raised at `vcpu`.
    fn bank_of(&self, intid: u32, vcpu: Option<usize>) -> Option<usize> {
        if intid < PRIVATE_INTIDS {
            vcpu.filter(|&v| v < self.vcpus())
        } else {
            Some(0)
        }
    }

    /// A trapped write of ICC_SGI1R_EL1 by vCPU `from`: make the SGI pending
    /// on each target whose copy of it is group 1. Returns the vCPUs to kick.
    ///
    /// Fields: TargetList `[15:0]`, Aff1 `[23:16]`, INTID `[27:24]`, Aff2 `[39:32]`,
    /// IRM `[40]` (all but self), RS `[47:44]` (TargetList bit n = Aff0 RS·16 + n),
    /// Aff3 `[55:48]`. Targets that match no vCPU are ignored.
    pub fn sgi1r_write(&mut self, from: usize, value: u64) -> u32 {
        self.sgi_write(from, value, true)
    }

    /// A trapped write of ICC_SGI0R_EL1 (same layout, group 0 SGIs).
    pub fn sgi0r_write(&mut self, from: usize, value: u64) -> u32 {
        self.sgi_write(from, value, false)
    }

    fn sgi_write(&mut self, from: usize, value: u64, group1: bool) -> u32 {
        if from >= self.vcpus() {
            return 0;
        }
        let field = |shift: u32, bits: u32| (value >> shift) & ((1 << bits) - 1);
        let intid = field(24, 4) as u32;
        let targets: u32 = if field(40, 1) != 0 {
            ((1u32 << self.vcpus()) - 1) & !(1 << from)
        } else {
            let cluster = field(48, 8) << 32 | field(32, 8) << 16 | field(16, 8) << 8;
            let base = field(44, 4) * 16;
            let list = field(0, 16);
            (0..self.vcpus())
                .filter(|&v| {
                    let aff0 = self.mpidr[v] & 0xff;
                    self.mpidr[v] & !0xff == cluster
                        && (base..base + 16).contains(&aff0)
                        && list & 1 << (aff0 - base) != 0
                })
                .fold(0, |m, v| m | 1 << v)
        };
        let mut kick = 0;
        for v in (0..self.vcpus()).filter(|&v| targets & 1 << v != 0) {
            // With GICD_CTLR.DS = 1, SGI1R forwards only to SGIs configured as
            // group 1 on the target, SGI0R only to group 0 (IHI 0069,
            // "Forwarding an SGI to a target PE").
            let latched = self.table.update(v, intid, |irq| {
                if irq.group1 != group1 || irq.latch {
                    return false;
                }
                irq.latch = true;
                true
            });
            if latched == Some(true) {
                kick |= self.table.kick_for(v, intid);
            }
        }
        kick
    }

    /// The vCPU mask an IROUTER value selects: all vCPUs for IRM = 1 (1-of-N),
    /// else the vCPU with that affinity, else none (the SPI stays pending).
    fn route_mask(&self, irouter: u64) -> u8 {
        if irouter & dist::IROUTER_IRM != 0 {
            return ((1u32 << self.vcpus()) - 1) as u8;
        }
        let aff = irouter & AFFINITY_MASK;
        self.mpidr[..self.vcpus()]
            .iter()
            .position(|&m| m == aff)
            .map_or(0, |v| 1 << v)
    }

    /// Fill `lrs` with GICv3 `ICH_LR<n>_EL2` values for vCPU `v`; see
    /// [`Vgic::flush_with`].
    pub fn flush(&mut self, v: usize, lrs: &mut [u64]) -> bool {
        self.flush_with::<IchLr>(v, lrs)
    }

    /// The fast path beside [`Vgic::flush_with`]: puts `intid` into the next
    /// free list register of vCPU `v` (index = the LRs its last flush or
    /// append filled), if it is a candidate for `v` and fewer than `limit`
    /// LRs are in use. Returns the LR index and its value in format `F`;
    /// `None` (nothing changed) otherwise, and the caller refills in full.
    ///
    /// Sound only while nothing else waits for an LR: the caller uses it when
    /// its last flush did not ask for an underflow refill, so every other
    /// candidate of `v` already sits in an LR.
    pub fn append_with<F: LrFormat>(
        &mut self,
        v: usize,
        intid: u32,
        limit: usize,
    ) -> Option<(usize, u64)> {
        if v >= self.vcpus() {
            return None;
        }
        let used = self.slots[v].used;
        if used >= limit.min(MAX_LRS) {
            return None;
        }
        self.rank(v, intid)?;
        let lr = self.place(v, intid);
        self.slots[v].intid[used] = intid as u16;
        self.slots[v].used = used + 1;
        Some((used, F::encode(&lr)))
    }

    /// Fold back the `ICH_LR<n>_EL2` values read after vCPU `v` ran; see
    /// [`Vgic::sync_with`].
    pub fn sync(&mut self, v: usize, lrs: &[u64]) {
        self.sync_with::<IchLr>(v, lrs)
    }

    /// Before entering vCPU `v`: write up to `min(lrs.len(), MAX_LRS)`
    /// interrupts into `lrs` in format `F` (unused entries are 0 = Invalid).
    ///
    /// Order: first active interrupts of `v` (the guest must be able to
    /// deactivate them), then pending ones that are enabled, whose group is
    /// enabled in GICD_CTLR and that may go to `v`; each pass by priority
    /// (lower value first), then INTID. Returns whether deliverable or
    /// active interrupts for `v` did not fit: the caller then sets
    /// `ICH_HCR_EL2.UIE` so the underflow maintenance interrupt brings `v`
    /// back for a refill. It only returns `true` after filling every LR, so
    /// with two or more LRs underflow cannot already hold at entry (with a
    /// single LR, UIE would fire at once: leave it clear and rely on kicks).
    ///
    /// If the previous flush of `v` was not followed by a sync, its LRs are
    /// taken back unchanged first (as if the guest had not run).
    pub fn flush_with<F: LrFormat>(&mut self, v: usize, lrs: &mut [u64]) -> bool {
        lrs.fill(0);
        if v >= self.vcpus() {
            return false;
        }
        self.sync_with::<F>(v, &[]);
        let n = lrs.len().min(MAX_LRS);
        // The `n` most urgent candidates by key, ascending, out of `total`.
        // Placing one interrupt never changes whether another is a
        // candidate, so one walk over the queued set decides the whole fill.
        let mut top = [0u32; MAX_LRS];
        let (mut kept, mut total) = (0, 0);
        for intid in self.table.queued(v) {
            let Some(key) = self.rank(v, intid) else {
                continue;
            };
            total += 1;
            if kept < n {
                kept += 1;
            } else if kept == 0 || key >= top[kept - 1] {
                continue;
            }
            let mut i = kept - 1;
            while i > 0 && top[i - 1] > key {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = key;
        }
        for (used, &key) in top[..kept].iter().enumerate() {
            let intid = key & RANK_INTID_MASK;
            let lr = self.place(v, intid);
            lrs[used] = F::encode(&lr);
            self.slots[v].intid[used] = intid as u16;
        }
        self.slots[v].used = kept;
        total > kept
    }

    /// After an exit of vCPU `v`: `lrs[i]` is the value read back from the
    /// LR that the last flush filled at index `i` (pass the same `n`; missing
    /// entries count as unchanged). Pending/active state returns to the
    /// model and the LRs are forgotten. An LR the guest completed reads
    /// Invalid, which deactivates the interrupt. The hardware never changes
    /// an LR's vINTID; an entry whose vINTID differs from what flush wrote
    /// (a caller bug, such as passing zeros) also counts as unchanged.
    pub fn sync_with<F: LrFormat>(&mut self, v: usize, lrs: &[u64]) {
        if v >= self.vcpus() {
            return;
        }
        let slots = self.slots[v];
        self.slots[v].used = 0;
        for (i, &intid) in slots.intid[..slots.used].iter().enumerate() {
            let intid = u32::from(intid);
            let read = lrs
                .get(i)
                .map(|&raw| F::decode(raw))
                .filter(|lr| lr.vintid == intid);
            self.table.update(v, intid, |irq| {
                let (pending, active) = match read {
                    Some(lr) => (lr.state.pending(), lr.state.active()),
                    None => (irq.lr_pending, irq.lr_active),
                };
                if irq.lr_hw && read.is_some() && !pending && !active {
                    // The guest deactivated it: with HW = 1 the hardware
                    // deactivated the physical interrupt at the same time.
                    irq.hw_active = false;
                }
                irq.fold_lr(v as u8, pending, active);
            });
        }
    }

    /// Whether vCPU `v` has an interrupt it could take now (to wake it from
    /// WFI): pending, enabled, group enabled, not active, routed to `v`.
    pub fn has_deliverable(&self, v: usize) -> bool {
        if v >= self.vcpus() {
            return false;
        }
        let in_own_lr = self.slots[v].intid[..self.slots[v].used].iter().any(|&i| {
            self.table
                .get(v, u32::from(i))
                .is_some_and(|irq| irq.lr_pending && !irq.drop_pending && !irq.lr_active)
        });
        in_own_lr
            || self
                .table
                .queued(v)
                .any(|intid| self.rank(v, intid).is_some_and(|k| k & RANK_PENDING != 0))
    }

    /// The state of `intid` as vCPU `v` sees it (`v` selects the SGI/PPI bank).
    pub fn irq(&self, v: usize, intid: u32) -> Option<IrqView> {
        let irq = self.table.get(v, intid)?;
        Some(IrqView {
            enabled: irq.enabled,
            pending: irq.pending_view(),
            active: irq.active_view(),
            priority: irq.priority,
            group1: irq.group1,
            edge: irq.edge,
            in_lr: irq.in_lr.map(usize::from),
            targets: self.table.targets(intid),
            hw_active: irq.hw_active,
        })
    }

    /// Whether `intid` goes into an LR of vCPU `v` at its next flush, and if
    /// so its sort key: active ones of `v` first, then pending ones that are
    /// signalable and may go to `v`; each by priority, then INTID.
    #[inline(always)]
    fn rank(&self, v: usize, intid: u32) -> Option<u32> {
        #[cfg(test)]
        self.examined.set(self.examined.get() + 1);
        let irq = self.table.get(v, intid)?;
        if irq.in_lr.is_some() {
            return None;
        }
        let pass = if irq.active && self.table.active_owner(v, intid, irq) == v {
            0
        } else if self.table.signalable(irq) && self.table.deliverable_to(v, intid) {
            RANK_PENDING
        } else {
            return None;
        };
        Some(pass | u32::from(irq.priority) << RANK_PRIORITY_SHIFT | intid)
    }

    /// Move `intid`'s pending latch and active bit into an LR for `v`.
    #[inline(always)]
    fn place(&mut self, v: usize, intid: u32) -> ListReg {
        let deliver = self
            .table
            .get(v, intid)
            .is_some_and(|irq| irq.pending() && irq.enabled && self.table.group_enabled(irq));
        self.table
            .update(v, intid, |irq| Self::place_irq(v, intid, irq, deliver))
            .unwrap_or(ListReg::EMPTY)
    }

    /// [`Vgic::place`] on the interrupt itself.
    fn place_irq(v: usize, intid: u32, irq: &mut state::Irq, deliver: bool) -> ListReg {
        // Linked to its physical interrupt while that is active. Such an LR is
        // never pending and active at once (the physical interrupt cannot be
        // both on the guest's behalf): a software pend of an active one waits
        // in the model until the guest deactivates it.
        let hw = irq.hw_active && irq.pintid != 0;
        let deliver = deliver && !(hw && irq.active);
        irq.lr_hw = hw;
        irq.lr_pending = deliver;
        irq.lr_latched = deliver && irq.latch;
        irq.lr_active = irq.active;
        if deliver {
            irq.latch = false;
        }
        irq.active = false;
        irq.in_lr = Some(v as u8);
        irq.owner = v as u8;
        ListReg {
            vintid: intid,
            state: LrState::new(irq.lr_pending, irq.lr_active),
            priority: irq.priority,
            group1: irq.group1,
            backing: if hw {
                Backing::Hardware {
                    pintid: u32::from(irq.pintid),
                }
            } else {
                // Level-sensitive: ask for a maintenance interrupt on
                // deactivation so the still-high line is seen again.
                Backing::Virtual {
                    eoi: !irq.edge,
                    // Only a GICv2 SGI ever has a source; 0 otherwise.
                    source: irq.source,
                }
            },
        }
    }

    /// The vCPUs that have something deliverable or hold LRs (after a global
    /// change such as GICD_CTLR).
    fn kick_all(&self) -> u32 {
        (0..self.vcpus())
            .filter(|&v| self.slots[v].used > 0 || self.has_deliverable(v))
            .fold(0, |m, v| m | 1 << v)
    }
}

/// Sort key of a flush candidate ([`Vgic::rank`]): INTID in bits `[9:0]`
/// (INTIDs stay below 32 + MAX_SPIS ≤ 1024), priority in `[17:10]`, and
/// this bit for the pending pass, so active interrupts sort first.
const RANK_PENDING: u32 = 1 << 18;
/// Shift of the priority byte in a sort key.
const RANK_PRIORITY_SHIFT: u32 = 10;
/// The INTID bits of a sort key.
const RANK_INTID_MASK: u32 = (1 << RANK_PRIORITY_SHIFT) - 1;
const _: () = assert!(PRIVATE_INTIDS as usize + MAX_SPIS <= RANK_INTID_MASK as usize + 1);

/// The original full-scan selection, kept as the reference the candidate
/// sets are checked against (and for cost comparisons).
#[cfg(test)]
impl Vgic {
    /// INTIDs examined so far by flush and has_deliverable.
    fn examined(&self) -> u64 {
        self.examined.get()
    }

    /// [`Vgic::flush`] by scanning every INTID for each LR.
    fn flush_by_scan(&mut self, v: usize, lrs: &mut [u64]) -> bool {
        lrs.fill(0);
        if v >= self.vcpus() {
            return false;
        }
        self.sync(v, &[]);
        let n = lrs.len().min(MAX_LRS);
        let mut used = 0;
        for active in [true, false] {
            while used < n {
                let Some(intid) = self.best_by_scan(v, active) else {
                    break;
                };
                let lr = self.place(v, intid);
                lrs[used] = IchLr::encode(&lr);
                self.slots[v].intid[used] = intid as u16;
                used += 1;
            }
        }
        self.slots[v].used = used;
        self.best_by_scan(v, true).is_some() || self.best_by_scan(v, false).is_some()
    }

    /// [`Vgic::has_deliverable`] by scanning every INTID.
    fn has_deliverable_by_scan(&self, v: usize) -> bool {
        if v >= self.vcpus() {
            return false;
        }
        let in_own_lr = self.slots[v].intid[..self.slots[v].used].iter().any(|&i| {
            self.table
                .get(v, u32::from(i))
                .is_some_and(|irq| irq.lr_pending && !irq.drop_pending && !irq.lr_active)
        });
        in_own_lr || self.best_by_scan(v, false).is_some()
    }

    /// The most urgent active (or pending) candidate for `v`, by (priority, INTID).
    fn best_by_scan(&self, v: usize, active: bool) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for intid in 0..self.table.intid_limit() {
            self.examined.set(self.examined.get() + 1);
            let Some(irq) = self.table.get(v, intid) else {
                continue;
            };
            if irq.in_lr.is_some() {
                continue;
            }
            let candidate = if active {
                irq.active && self.table.active_owner(v, intid, irq) == v
            } else {
                self.table.signalable(irq) && self.table.deliverable_to(v, intid)
            };
            if candidate && best.is_none_or(|(p, _)| irq.priority < p) {
                best = Some((irq.priority, intid));
            }
        }
        best.map(|(_, intid)| intid)
    }
}

/// The low `width` bytes.
fn width_mask(width: u8) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(width))) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::dist::*;
    use super::*;

    /// MPIDR_EL1 of vCPU `i`: RES1 bit 31 set, Aff0 = i.
    fn mpidr(i: usize) -> u64 {
        0x8000_0000 | i as u64
    }

    /// A VM with `n` vCPUs, 64 SPIs, the distributor enabled for both groups.
    fn vm(n: usize) -> Vgic {
        let mpidrs: [u64; MAX_VCPUS] = core::array::from_fn(mpidr);
        let mut g = Vgic::new(n, 64, &mpidrs);
        g.mmio_write(Frame::Dist, GICD_CTLR, 4, 3).unwrap();
        g
    }

    /// Enable `intid` (banked in `v` for SGIs/PPIs) with `priority`.
    fn enable(g: &mut Vgic, v: usize, intid: u32, priority: u8) {
        let bit = 1u64 << (intid % 32);
        if intid < 32 {
            g.mmio_write(
                Frame::Redist(v),
                GICR_IPRIORITYR + u64::from(intid),
                1,
                priority.into(),
            )
            .unwrap();
            g.mmio_write(Frame::Redist(v), GICR_ISENABLER0, 4, bit)
                .unwrap();
        } else {
            g.mmio_write(
                Frame::Dist,
                GICD_IPRIORITYR + u64::from(intid),
                1,
                priority.into(),
            )
            .unwrap();
            g.mmio_write(
                Frame::Dist,
                GICD_ISENABLER + u64::from(intid / 32) * 4,
                4,
                bit,
            )
            .unwrap();
        }
    }

    fn lr_with(raw: u64, state: LrState) -> u64 {
        IchLr::encode(&ListReg {
            state,
            ..IchLr::decode(raw)
        })
    }

    fn view(g: &Vgic, v: usize, intid: u32) -> IrqView {
        g.irq(v, intid).unwrap()
    }

    /// An injected PPI lands in LR 0 with its priority, group 1, HW = 0.
    #[test]
    fn inject_ppi_flushes_into_lr() {
        let mut g = vm(2);
        enable(&mut g, 1, 27, 0xa0);
        assert_eq!(g.inject(27, Some(1)), 0b10);
        let mut lrs = [0; 4];
        assert!(!g.flush(1, &mut lrs));
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(lr.vintid, 27);
        assert_eq!(lr.state, LrState::Pending);
        assert_eq!(lr.priority, 0xa0);
        assert!(lr.group1);
        // PPIs reset level-sensitive: deactivation must trap for a re-sample.
        assert_eq!(
            lr.backing,
            Backing::Virtual {
                eoi: true,
                source: 0
            }
        );
        assert_eq!(&lrs[1..], &[0, 0, 0]);
        let mut other = [0; 4];
        assert!(!g.flush(0, &mut other));
        assert_eq!(other, [0; 4]);
    }

    /// Appending gives the LR a full flush would, after the LRs already in
    /// use; a sync then reads it back like any flushed LR. It refuses what is
    /// already in an LR, what is not a candidate, and a full set of LRs.
    #[test]
    fn append_matches_flush() {
        let mut a = vm(1);
        enable(&mut a, 0, 27, 0xa0);
        enable(&mut a, 0, 40, 0x80);
        let mut b = a.clone();
        a.inject(40, None);
        let mut lrs = [0; 4];
        a.flush(0, &mut lrs);
        a.inject(27, Some(0));
        let (n, raw) = a.append_with::<IchLr>(0, 27, 4).unwrap();
        assert_eq!(n, 1);
        lrs[1] = raw;
        assert_eq!(a.append_with::<IchLr>(0, 27, 4), None, "already in an LR");
        assert_eq!(a.append_with::<IchLr>(0, 41, 4), None, "not pending");
        b.inject(40, None);
        b.inject(27, Some(0));
        let mut full = [0; 4];
        b.flush(0, &mut full);
        let sorted = |l: &[u64]| {
            let mut v = l.to_vec();
            v.sort();
            v
        };
        assert_eq!(sorted(&lrs), sorted(&full));
        // The guest takes and completes INTID 27: the sync folds it like a flushed LR.
        lrs[1] = lr_with(lrs[1], LrState::Invalid);
        a.sync(0, &lrs);
        assert!(!view(&a, 0, 27).pending && !view(&a, 0, 27).active);
        assert_eq!(view(&a, 0, 27).in_lr, None);
        assert_eq!(a.append_with::<IchLr>(0, 27, 0), None, "no free LR");
    }

    /// An edge-triggered interrupt gets no EOI maintenance request.
    #[test]
    fn edge_lr_has_no_eoi() {
        let mut g = vm(1);
        enable(&mut g, 0, 5, 0x80);
        g.inject(5, Some(0));
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        assert_eq!(
            IchLr::decode(lrs[0]).backing,
            Backing::Virtual {
                eoi: false,
                source: 0
            }
        );
    }

    /// An LR read back Invalid completes the interrupt.
    #[test]
    fn sync_invalid_completes() {
        let mut g = vm(1);
        enable(&mut g, 0, 27, 0xa0);
        g.inject(27, Some(0));
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        assert_eq!(view(&g, 0, 27).in_lr, Some(0));
        g.sync(0, &[lr_with(lrs[0], LrState::Invalid), 0, 0, 0]);
        let s = view(&g, 0, 27);
        assert!(!s.pending && !s.active && s.in_lr.is_none());
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(lrs, [0; 4]);
        assert!(!g.has_deliverable(0));
    }

    /// An LR read back Active is rewritten Active by the next flush, ahead of pending ones.
    #[test]
    fn active_lr_stays_across_flush() {
        let mut g = vm(1);
        enable(&mut g, 0, 27, 0xa0);
        g.inject(27, Some(0));
        let mut lrs = [0; 1];
        g.flush(0, &mut lrs);
        g.sync(0, &[lr_with(lrs[0], LrState::Active)]);
        assert!(view(&g, 0, 27).active);
        // A more urgent pending interrupt must not evict the active one.
        enable(&mut g, 0, 3, 0x00);
        g.inject(3, Some(0));
        assert!(g.flush(0, &mut lrs), "the pending SGI is left over");
        let lr = IchLr::decode(lrs[0]);
        assert_eq!((lr.vintid, lr.state), (27, LrState::Active));
        // A new edge while active shows up as pending+active.
        g.sync(0, &lrs);
        g.inject(27, Some(0));
        let mut four = [0; 4];
        g.flush(0, &mut four);
        assert_eq!(IchLr::decode(four[0]).state, LrState::PendingActive);
        assert_eq!(IchLr::decode(four[1]).vintid, 3);
    }

    /// With 5 pending and 4 LRs, the 4 most urgent go first and flush reports more.
    #[test]
    fn lr_overflow_prefers_priority() {
        let mut g = vm(1);
        let prios = [(40, 0x80), (41, 0x10), (42, 0x90), (43, 0x10), (44, 0x08)];
        for (intid, p) in prios {
            enable(&mut g, 0, intid, p);
            g.inject(intid, None);
        }
        let mut lrs = [0; 4];
        assert!(g.flush(0, &mut lrs));
        let got: [u32; 4] = core::array::from_fn(|i| IchLr::decode(lrs[i]).vintid);
        assert_eq!(got, [44, 41, 43, 40]);
        // The guest takes all four; the fifth comes next.
        let done: [u64; 4] = core::array::from_fn(|i| lr_with(lrs[i], LrState::Invalid));
        g.sync(0, &done);
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(IchLr::decode(lrs[0]).vintid, 42);
    }

    /// SGI1R TargetList selects vCPUs by Aff0 within the Aff3.Aff2.Aff1 cluster.
    #[test]
    fn sgi1r_target_list() {
        let mut g = vm(4);
        for v in 0..4 {
            enable(&mut g, v, 5, 0x80);
        }
        let value = 5 << 24 | 0b1010;
        assert_eq!(g.sgi1r_write(0, value), 0b1010);
        let pending: [bool; 4] = core::array::from_fn(|v| view(&g, v, 5).pending);
        assert_eq!(pending, [false, true, false, true]);
        // Another cluster (Aff1 = 1) matches nobody.
        assert_eq!(g.sgi1r_write(0, 6 << 24 | 1 << 16 | 0xffff), 0);
        assert!((0..4).all(|v| !view(&g, v, 6).pending));
        // An out-of-range sender is ignored.
        assert_eq!(g.sgi1r_write(9, 7 << 24 | 1 << 40), 0);
    }

    /// SGI1R IRM = 1 targets every vCPU except the sender.
    #[test]
    fn sgi1r_irm_all_but_self() {
        let mut g = vm(4);
        for v in 0..4 {
            enable(&mut g, v, 1, 0x80);
        }
        assert_eq!(g.sgi1r_write(2, 1 << 40 | 1 << 24 | 0b0100), 0b1011);
        let pending: [bool; 4] = core::array::from_fn(|v| view(&g, v, 1).pending);
        assert_eq!(pending, [true, true, false, true]);
    }

    /// SGI1R RS selects Aff0 16..32, and Aff3/Aff2 must match.
    #[test]
    fn sgi1r_range_selector_and_high_affinity() {
        let mpidrs = [0x8000_0000, 0x12_8003_0211];
        let mut g = Vgic::try_new(&mpidrs, 32, VgicLayout::QEMU_VIRT).unwrap();
        g.mmio_write(Frame::Dist, GICD_CTLR, 4, 2).unwrap();
        enable(&mut g, 1, 9, 0x80);
        // Aff3 0x12, Aff2 0x03, Aff1 0x02, Aff0 0x11 = RS 1, bit 1.
        let value = 0x12 << 48 | 1 << 44 | 0x03 << 32 | 9 << 24 | 0x02 << 16 | 0b10;
        assert_eq!(g.sgi1r_write(0, value), 0b10);
        assert!(view(&g, 1, 9).pending);
        assert_eq!(
            g.sgi1r_write(0, value & !(0xff << 48)),
            0,
            "Aff3 must match"
        );
    }

    /// SGI1R only pends SGIs that are group 1 on the target; SGI0R only group 0.
    #[test]
    fn sgi_group_filter() {
        let mut g = vm(2);
        g.mmio_write(
            Frame::Redist(1),
            GICR_IGROUPR0,
            4,
            !(1u64 << 4) & 0xffff_ffff,
        )
        .unwrap();
        g.sgi1r_write(0, 4 << 24 | 0b10);
        assert!(!view(&g, 1, 4).pending);
        g.sgi0r_write(0, 4 << 24 | 0b10);
        assert!(view(&g, 1, 4).pending);
    }

    /// A 64-bit IROUTER write moves an SPI to the vCPU with that affinity.
    #[test]
    fn spi_routing_via_irouter() {
        let mut g = vm(2);
        enable(&mut g, 0, 40, 0x80);
        assert_eq!(view(&g, 0, 40).targets, 0b01, "reset route is affinity 0");
        g.mmio_write(Frame::Dist, GICD_IROUTER + 8 * 40, 8, 1)
            .unwrap();
        assert_eq!(view(&g, 0, 40).targets, 0b10);
        assert_eq!(g.inject(40, None), 0b10);
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        assert_eq!(lrs, [0; 4]);
        g.flush(1, &mut lrs);
        assert_eq!(IchLr::decode(lrs[0]).vintid, 40);
        // An affinity that matches no vCPU leaves the SPI undeliverable.
        g.mmio_write(Frame::Dist, GICD_IROUTER + 8 * 41, 8, 0x7)
            .unwrap();
        enable(&mut g, 0, 41, 0x80);
        assert_eq!(g.inject(41, None), 0);
        assert_eq!(view(&g, 0, 41).targets, 0);
        assert!(!g.has_deliverable(0));
    }

    /// A 1-of-N SPI goes to whichever vCPU flushes first, never to two.
    #[test]
    fn one_of_n_spi_in_one_lr_only() {
        let mut g = vm(2);
        enable(&mut g, 0, 50, 0x80);
        g.mmio_write(Frame::Dist, GICD_IROUTER + 8 * 50, 8, IROUTER_IRM)
            .unwrap();
        assert_eq!(g.inject(50, None), 0b01, "kicks the lowest target");
        let (mut a, mut b) = ([0; 4], [0; 4]);
        g.flush(1, &mut a);
        g.flush(0, &mut b);
        assert_eq!(IchLr::decode(a[0]).vintid, 50);
        assert_eq!(b, [0; 4]);
        assert!(!g.has_deliverable(0));
    }

    /// ICPENDR of an SPI held in another vCPU's LR kicks it and drops the pending state at sync.
    #[test]
    fn icpendr_of_interrupt_in_lr() {
        let mut g = vm(2);
        enable(&mut g, 0, 33, 0x80);
        g.mmio_write(Frame::Dist, GICD_IROUTER + 8 * 33, 8, 1)
            .unwrap();
        g.inject(33, None);
        let mut lrs = [0; 4];
        g.flush(1, &mut lrs);
        assert!(
            view(&g, 0, 33).pending,
            "ISPENDR shows the LR's pending state"
        );
        let kick = g
            .mmio_write(Frame::Dist, GICD_ICPENDR + 4, 4, 1 << 1)
            .unwrap();
        assert_eq!(kick, 0b10);
        assert!(!view(&g, 0, 33).pending);
        g.sync(1, &lrs); // The guest did not get to it: the LR still says Pending.
        assert!(!view(&g, 0, 33).pending);
        assert!(!g.flush(1, &mut lrs));
        assert_eq!(lrs, [0; 4]);
    }

    /// ICACTIVER while the guest holds an interrupt active in an LR deactivates it at sync.
    #[test]
    fn icactiver_of_interrupt_in_lr() {
        let mut g = vm(1);
        enable(&mut g, 0, 20, 0x80);
        g.inject(20, Some(0));
        let mut lrs = [0; 1];
        g.flush(0, &mut lrs);
        g.sync(0, &[lr_with(lrs[0], LrState::Active)]);
        g.flush(0, &mut lrs);
        g.mmio_write(Frame::Redist(0), GICR_ICACTIVER0, 4, 1 << 20)
            .unwrap();
        g.sync(0, &lrs);
        assert!(!view(&g, 0, 20).active);
    }

    /// Disabled interrupts, and interrupts of a disabled group, are not delivered.
    #[test]
    fn disabled_not_delivered() {
        let mut g = vm(1);
        g.inject(27, Some(0));
        let mut lrs = [0; 4];
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(lrs, [0; 4]);
        assert!(!g.has_deliverable(0));
        enable(&mut g, 0, 27, 0x80);
        assert!(g.has_deliverable(0));
        g.mmio_write(Frame::Dist, GICD_CTLR, 4, CTLR_ENABLE_GRP0.into())
            .unwrap();
        assert!(!g.has_deliverable(0), "group 1 disabled");
        g.flush(0, &mut lrs);
        assert_eq!(lrs, [0; 4]);
        // Group 0 interrupts follow EnableGrp0 and are flagged group 0 in the LR.
        g.mmio_write(Frame::Redist(0), GICR_IGROUPR0, 4, 0).unwrap();
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!((lr.vintid, lr.group1), (27, false));
    }

    /// Re-enabling the distributor kicks the vCPUs that now have work.
    #[test]
    fn ctlr_enable_kicks() {
        let mut g = vm(2);
        g.mmio_write(Frame::Dist, GICD_CTLR, 4, 0).unwrap();
        enable(&mut g, 1, 27, 0x80);
        assert_eq!(g.inject(27, Some(1)), 0);
        assert_eq!(g.mmio_write(Frame::Dist, GICD_CTLR, 4, 2).unwrap(), 0b10);
    }

    /// A level-sensitive line stays pending until it drops, and comes back after EOI if still high.
    #[test]
    fn level_sensitive_follows_line() {
        let mut g = vm(1);
        enable(&mut g, 0, 48, 0x80);
        assert_eq!(g.set_level(48, None, true), 1);
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(
            lr.backing,
            Backing::Virtual {
                eoi: true,
                source: 0
            }
        );
        // Acknowledged and deactivated while the line is still high: pending again.
        g.sync(0, &[lr_with(lrs[0], LrState::Invalid)]);
        assert!(view(&g, 0, 48).pending);
        // ICPENDR cannot clear a high line.
        g.mmio_write(Frame::Dist, GICD_ICPENDR + 4, 4, 1 << 16)
            .unwrap();
        assert!(view(&g, 0, 48).pending);
        g.set_level(48, None, false);
        assert!(!view(&g, 0, 48).pending);
        assert!(!g.has_deliverable(0));
    }

    /// An edge-configured line latches on the rising edge only.
    #[test]
    fn edge_line_latches_rising_edge() {
        let mut g = vm(1);
        enable(&mut g, 0, 48, 0x80);
        g.mmio_write(Frame::Dist, GICD_ICFGR + 12, 4, 0b10).unwrap();
        g.set_level(48, None, true);
        g.set_level(48, None, false);
        assert!(view(&g, 0, 48).pending);
    }

    /// Flushing twice without a sync never duplicates an interrupt.
    #[test]
    fn flush_without_sync_reclaims() {
        let mut g = vm(2);
        enable(&mut g, 0, 35, 0x80);
        g.inject(35, None);
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        g.flush(0, &mut lrs);
        let n = lrs
            .iter()
            .filter(|&&r| IchLr::decode(r).vintid == 35)
            .count();
        assert_eq!(n, 1);
        let mut other = [0; 4];
        g.mmio_write(Frame::Dist, GICD_IROUTER + 8 * 35, 8, 1)
            .unwrap();
        g.flush(1, &mut other);
        assert_eq!(other, [0; 4], "still in vCPU 0's LRs");
        g.sync(0, &lrs);
        g.flush(1, &mut other);
        assert_eq!(IchLr::decode(other[0]).vintid, 35);
    }

    /// An LR read back still Pending returns the interrupt to the model.
    #[test]
    fn sync_pending_keeps_pending() {
        let mut g = vm(1);
        enable(&mut g, 0, 27, 0x80);
        g.inject(27, Some(0));
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        g.sync(0, &lrs);
        let s = view(&g, 0, 27);
        assert!(s.pending && s.in_lr.is_none());
        assert!(g.has_deliverable(0));
    }

    /// More than MAX_LRS slots, or none, are handled.
    #[test]
    fn lr_slice_lengths() {
        let mut g = vm(1);
        for i in 32..96 {
            enable(&mut g, 0, i, 0x80);
            g.inject(i, None);
        }
        let mut many = [u64::MAX; 20];
        assert!(g.flush(0, &mut many));
        assert!(many[..MAX_LRS].iter().all(|&r| r != 0));
        assert_eq!(&many[MAX_LRS..], &[0; 4]);
        g.sync(0, &many);
        assert!(g.flush(0, &mut []));
        g.sync(0, &[]);
        assert!((32..96).all(|i| view(&g, 0, i).pending));
    }

    /// The GICv2 LR format plugs into the same flush.
    #[test]
    fn flush_with_gich_lr() {
        let mut g = vm(1);
        enable(&mut g, 0, 40, 0xa8);
        g.inject(40, None);
        let mut lrs = [0; 4];
        g.flush_with::<lr::GichLr>(0, &mut lrs);
        let lr = lr::GichLr::decode(lrs[0]);
        assert_eq!(
            (lr.vintid, lr.priority, lr.state),
            (40, 0xa8, LrState::Pending)
        );
        let done = lr::GichLr::encode(&ListReg {
            state: LrState::Invalid,
            ..lr
        });
        g.sync_with::<lr::GichLr>(0, &[done]);
        assert!(!view(&g, 0, 40).pending);
    }

    /// Frames decode from IPAs; anything outside is not the vGIC.
    #[test]
    fn decode_ipa_frames() {
        let g = vm(2);
        assert_eq!(g.decode_ipa(0x0800_0000, 0), Some((Frame::Dist, 0)));
        assert_eq!(g.decode_ipa(0x0800_ffe8, 0), Some((Frame::Dist, 0xffe8)));
        assert_eq!(g.decode_ipa(0x0801_0000, 0), None);
        assert_eq!(g.decode_ipa(0x080a_0008, 0), Some((Frame::Redist(0), 8)));
        assert_eq!(
            g.decode_ipa(0x080d_0100, 0),
            Some((Frame::Redist(1), 0x1_0100))
        );
        assert_eq!(
            g.decode_ipa(0x080e_0000, 0),
            None,
            "only two redistributors"
        );
        assert_eq!(g.decode_ipa(0, 0), None);
        assert_eq!(g.decode_ipa(u64::MAX, 0), None);
        // GICv2: one 4 KiB distributor, banked by the accessing vCPU; GICC is not emulated.
        let v2 = Vgic::try_new(&[0, 1], 64, VgicLayout::QEMU_VIRT_V2).unwrap();
        assert_eq!(
            v2.decode_ipa(0x0800_0f00, 1),
            Some((Frame::CpuDist(1), 0xf00))
        );
        assert_eq!(v2.decode_ipa(0x0800_1000, 0), None);
        assert_eq!(v2.decode_ipa(0x0801_0000, 0), None);
    }

    /// Bad configurations are refused.
    #[test]
    fn new_rejects_bad_config() {
        let l = VgicLayout::QEMU_VIRT;
        let err = |m: &[u64], spis| Vgic::try_new(m, spis, l).err();
        assert_eq!(err(&[], 32), Some(VgicConfigError::VcpuCount));
        assert_eq!(err(&[0; 9], 32), Some(VgicConfigError::VcpuCount));
        assert_eq!(err(&[0], 33), Some(VgicConfigError::SpiCount));
        assert_eq!(err(&[0], 288), Some(VgicConfigError::SpiCount));
        assert_eq!(
            err(&[0, 0x8000_0000], 32),
            Some(VgicConfigError::DuplicateMpidr)
        );
        assert_eq!(err(&[0], 0), None);
        assert_eq!(Vgic::new(2, 64, &[0, 1, 2]).vcpus(), 2);
    }

    /// Out-of-range vCPUs and INTIDs are ignored, never a panic.
    #[test]
    fn out_of_range_is_ignored() {
        let mut g = vm(2);
        assert_eq!(g.inject(27, Some(2)), 0);
        assert_eq!(g.inject(27, None), 0);
        assert_eq!(g.inject(96, None), 0);
        assert_eq!(g.inject(u32::MAX, None), 0);
        assert_eq!(g.set_level(3, Some(0), true), 0);
        assert_eq!(g.set_level(1019, None, true), 0);
        let mut lrs = [0; 4];
        assert!(!g.flush(7, &mut lrs));
        g.sync(usize::MAX, &lrs);
        assert!(!g.has_deliverable(2));
        assert!(g.irq(2, 27).is_none());
    }

    /// An idle vCPU's flush, sync and WFI check examine no interrupt at all,
    /// even with interrupts enabled and other vCPUs busy; a pending PPI costs one.
    #[test]
    fn idle_flush_examines_nothing() {
        let mut g = vm(2);
        for i in [3, 27, 40, 90] {
            enable(&mut g, 0, i, 0x80);
            enable(&mut g, 1, i, 0x80);
        }
        g.inject(5, Some(1)); // Pending on vCPU 1 but disabled.
        let mut lrs = [0; 4];
        let before = g.examined();
        assert!(!g.flush(0, &mut lrs));
        g.sync(0, &lrs);
        assert!(!g.has_deliverable(0));
        assert_eq!(lrs, [0; 4]);
        assert_eq!(g.examined() - before, 0);
        g.set_level(27, Some(0), true);
        let before = g.examined();
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(g.examined() - before, 1);
        assert_eq!(IchLr::decode(lrs[0]).vintid, 27);
    }

    /// Physical INTIDs released since the last call.
    fn released(g: &mut Vgic) -> std::vec::Vec<u32> {
        let mut out = std::vec::Vec::new();
        g.take_released(|p| out.push(p));
        out
    }

    /// A hardware-backed SPI goes into an LR with HW = 1 and its physical INTID.
    #[test]
    fn inject_hw_gives_hw_lr() {
        let mut g = vm(2);
        enable(&mut g, 0, 34, 0x80);
        assert_eq!(g.inject_hw(34, 34), 0b01);
        assert!(view(&g, 0, 34).hw_active && view(&g, 0, 34).pending);
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(
            (lr.vintid, lr.state, lr.backing),
            (34, LrState::Pending, Backing::Hardware { pintid: 34 })
        );
        g.table.assert_queued_consistent();
    }

    /// The guest's deactivation (LR read back Invalid) ends the physical
    /// interrupt too: nothing is left for Tandem to deactivate.
    #[test]
    fn hw_guest_deactivation_ends_physical() {
        let mut g = vm(1);
        enable(&mut g, 0, 40, 0x80);
        g.inject_hw(40, 40);
        let mut lrs = [0; 1];
        g.flush(0, &mut lrs);
        // Acknowledged: the LR reads Active, comes back HW and Active.
        g.sync(0, &[lr_with(lrs[0], LrState::Active)]);
        assert!(view(&g, 0, 40).active && view(&g, 0, 40).hw_active);
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(
            (lr.state, lr.backing),
            (LrState::Active, Backing::Hardware { pintid: 40 })
        );
        g.sync(0, &[lr_with(lrs[0], LrState::Invalid)]);
        let s = view(&g, 0, 40);
        assert!(!s.active && !s.pending && !s.hw_active);
        assert!(released(&mut g).is_empty());
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(lrs, [0]);
        // The physical interrupt may fire again: a new assertion, a new LR.
        assert_eq!(g.inject_hw(40, 40), 1);
        g.flush(0, &mut lrs);
        assert_eq!(
            IchLr::decode(lrs[0]).backing,
            Backing::Hardware { pintid: 40 }
        );
    }

    /// A hardware-backed SPI the guest has not enabled keeps the physical interrupt
    /// active (no storm) until it is enabled and handled.
    #[test]
    fn hw_disabled_waits() {
        let mut g = vm(1);
        assert_eq!(g.inject_hw(34, 34), 0);
        let mut lrs = [0; 2];
        assert!(!g.flush(0, &mut lrs));
        assert!(view(&g, 0, 34).hw_active);
        assert!(released(&mut g).is_empty());
        enable(&mut g, 0, 34, 0x80);
        g.flush(0, &mut lrs);
        assert_eq!(
            IchLr::decode(lrs[0]).backing,
            Backing::Hardware { pintid: 34 }
        );
    }

    /// ICPENDR of a pending hardware-backed SPI, outside or inside an LR, releases
    /// its physical interrupt once, for Tandem to deactivate (a high line fires again).
    #[test]
    fn hw_icpendr_releases_physical() {
        let mut g = vm(1);
        g.inject_hw(34, 34); // Not enabled: waits in the model.
        g.mmio_write(Frame::Dist, GICD_ICPENDR + 4, 4, 1 << 2)
            .unwrap();
        assert_eq!(released(&mut g), [34]);
        assert!(released(&mut g).is_empty(), "reported once");
        assert!(!view(&g, 0, 34).hw_active);
        g.table.assert_queued_consistent();

        enable(&mut g, 0, 34, 0x80);
        g.inject_hw(34, 34);
        let mut lrs = [0; 1];
        g.flush(0, &mut lrs);
        g.mmio_write(Frame::Dist, GICD_ICPENDR + 4, 4, 1 << 2)
            .unwrap();
        assert!(released(&mut g).is_empty(), "still in the LR");
        g.sync(0, &lrs); // The guest did not get to it.
        assert_eq!(released(&mut g), [34]);
        assert!(!view(&g, 0, 34).pending);
    }

    /// ICACTIVER of an acknowledged hardware-backed SPI releases its physical interrupt.
    #[test]
    fn hw_icactiver_releases_physical() {
        let mut g = vm(1);
        enable(&mut g, 0, 34, 0x80);
        g.inject_hw(34, 34);
        let mut lrs = [0; 1];
        g.flush(0, &mut lrs);
        g.sync(0, &[lr_with(lrs[0], LrState::Active)]);
        g.flush(0, &mut lrs);
        g.mmio_write(Frame::Dist, GICD_ICACTIVER + 4, 4, 1 << 2)
            .unwrap();
        g.sync(0, &lrs);
        assert_eq!(released(&mut g), [34]);
        let s = view(&g, 0, 34);
        assert!(!s.active && !s.hw_active);
    }

    /// A software pend of an active hardware-backed SPI is never pending+active in a HW
    /// LR; after the guest deactivates, it is delivered as a plain virtual interrupt.
    #[test]
    fn hw_never_pending_and_active() {
        let mut g = vm(1);
        enable(&mut g, 0, 34, 0x80);
        g.inject_hw(34, 34);
        let mut lrs = [0; 2];
        g.flush(0, &mut lrs);
        g.sync(0, &[lr_with(lrs[0], LrState::Active)]);
        g.mmio_write(Frame::Dist, GICD_ISPENDR + 4, 4, 1 << 2)
            .unwrap();
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(
            (lr.state, lr.backing),
            (LrState::Active, Backing::Hardware { pintid: 34 })
        );
        assert_eq!(lrs[1], 0);
        g.sync(0, &[lr_with(lrs[0], LrState::Invalid), 0]);
        assert!(view(&g, 0, 34).pending && !view(&g, 0, 34).hw_active);
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!(lr.state, LrState::Pending);
        assert!(matches!(lr.backing, Backing::Virtual { .. }));
        assert!(released(&mut g).is_empty());
    }

    /// Only SPIs can be hardware-backed, by physical SPIs.
    #[test]
    fn inject_hw_rejects_bad_intids() {
        let mut g = vm(1);
        enable(&mut g, 0, 27, 0x80);
        enable(&mut g, 0, 34, 0x80);
        assert_eq!(g.inject_hw(27, 27), 0);
        assert_eq!(g.inject_hw(34, 1020), 0);
        assert_eq!(g.inject_hw(34, 20), 0);
        assert_eq!(g.inject_hw(96, 96), 0, "beyond the VM's SPIs");
        assert!(!view(&g, 0, 34).pending && !view(&g, 0, 34).hw_active);
    }

    /// Host micro-measure of the entry/exit hot path: interrupts examined
    /// per flush+sync round trip and per WFI check, and host time per round
    /// trip, with the full scan this replaced side by side. Run with
    /// `--nocapture` to see the numbers.
    #[test]
    fn hot_path_cost_report() {
        /// Examined per flush+sync and per has_deliverable (candidate sets,
        /// or the full scan), and host ns per round trip.
        fn measure(g: &Vgic, scan: bool) -> (u64, u64, f64) {
            let mut g = g.clone();
            let mut lrs = [0; 4];
            let trip = |g: &mut Vgic, lrs: &mut [u64; 4]| {
                if scan {
                    g.flush_by_scan(0, lrs);
                } else {
                    g.flush(0, lrs);
                }
                g.sync(0, core::hint::black_box(&lrs[..]));
            };
            let before = g.examined();
            trip(&mut g, &mut lrs);
            let per_trip = g.examined() - before;
            let before = g.examined();
            if scan {
                g.has_deliverable_by_scan(0);
            } else {
                g.has_deliverable(0);
            }
            let per_wfi = g.examined() - before;
            let iters = 20_000u32;
            let t = std::time::Instant::now();
            for _ in 0..iters {
                trip(&mut g, &mut lrs);
            }
            let ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
            (per_trip, per_wfi, ns)
        }
        let mut g = vm(2);
        let idle = g.clone();
        enable(&mut g, 0, 27, 0xa0);
        g.set_level(27, Some(0), true); // The timer, left pending across exits.
        let ppi = g;
        for (name, g) in [("idle vCPU", &idle), ("one pending PPI", &ppi)] {
            let (old_trip, old_wfi, old_ns) = measure(g, true);
            let (new_trip, new_wfi, new_ns) = measure(g, false);
            std::println!(
                "vgic {name} (2 vCPUs, 64 SPIs): INTIDs examined per flush+sync \
                 {old_trip} -> {new_trip}, per has_deliverable {old_wfi} -> {new_wfi}; \
                 host time per round trip {old_ns:.0} ns -> {new_ns:.0} ns"
            );
            assert!(new_trip <= 1 && new_wfi <= 1);
        }
    }
}
