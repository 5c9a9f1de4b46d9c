//! Per-INTID interrupt state, independent of any register layout.
//!
//! The distributor and redistributors of a GICv3 (and the distributor of a
//! GICv2) are views onto one table: for each INTID, its enable, pending,
//! active, priority, group, trigger and routing state. SGIs and PPIs
//! (INTIDs 0..32) are banked per vCPU; SPIs are shared. The register decoders
//! (`dist.rs` for the v3 MMIO layout) translate offsets into the calls here,
//! always naming the accessing or owning vCPU (`cpu`) for the banked range.
//!
//! List-register bookkeeping: while an interrupt sits in a vCPU's list
//! register, its pending latch and active bit have been *moved* into that LR
//! (`lr_*` fields remember what was written). The model keeps only what
//! happened afterwards (a new edge, a software set or clear), and `sync`
//! merges the two when the LR is read back.
//!
//! Candidate sets: the table keeps, beside the per-INTID state, a bitmap of
//! the interrupts that are *queued* ([`Irq::queued`]: pending or active in the
//! model, not in an LR): one `u32` per vCPU for its banked INTIDs and one set
//! for the SPIs. Every mutation goes through [`IrqTable::update`], which
//! recomputes the INTID's bit, so the sets always equal a full scan. Only
//! queued interrupts can be placed in an LR, so `flush`/`has_deliverable`
//! walk [`IrqTable::queued`] instead of every INTID; enable, group, priority
//! and routing are then checked per candidate and need no bookkeeping.
//!
//! Hardware-backed SPIs (passthrough): an SPI injected with a physical INTID
//! ([`Irq::pintid`]) holds that physical interrupt active ([`Irq::hw_active`])
//! until the guest is done with the virtual one. Its list register carries
//! HW = 1, so the guest's deactivation deactivates the physical interrupt in
//! hardware. When the virtual interrupt goes idle any other way (ICPENDR or
//! ICACTIVER writes while Tandem holds it), [`IrqTable::update`] — the one
//! mutation point — notices and records the physical INTID as *released*; the
//! caller deactivates it ([`super::Vgic::take_released`]), so a line still
//! high fires again, as a level-sensitive interrupt must.

/// Most vCPUs per VM (the width of the banked tables and of target masks).
pub const MAX_VCPUS: usize = 8;
/// Most SPIs per VM (INTIDs 32..32 + MAX_SPIS).
pub const MAX_SPIS: usize = 256;
/// Implemented priority bits (the top five, as ICH_VTR_EL2.PRIbits on QEMU
/// and Cortex-A cores); unimplemented low bits are RAZ/WI.
pub const PRIORITY_MASK: u8 = 0xf8;

/// INTIDs banked per vCPU (SGIs 0..16, PPIs 16..32).
pub const PRIVATE_INTIDS: u32 = 32;
/// SGIs are INTIDs 0..16.
pub const SGIS: u32 = 16;

/// The state of one interrupt.
#[derive(Clone, Copy, Debug)]
pub struct Irq {
    /// Forwarding enabled (ISENABLER/ICENABLER).
    pub enabled: bool,
    /// Pending latch: an edge, an SGI, an inject or an ISPENDR write.
    pub latch: bool,
    /// Input line level (level-sensitive sources only).
    pub level: bool,
    /// Active (acknowledged, not yet deactivated).
    pub active: bool,
    /// Group 1 (true) or group 0.
    pub group1: bool,
    /// Edge-triggered (true) or level-sensitive.
    pub edge: bool,
    /// Priority, masked with [`PRIORITY_MASK`].
    pub priority: u8,
    /// The vCPU whose list registers hold this interrupt.
    pub in_lr: Option<u8>,
    /// The LR was written with the pending bit.
    pub lr_pending: bool,
    /// That pending bit came from the latch (so it returns to the latch if
    /// the LR still shows pending at sync).
    pub lr_latched: bool,
    /// The LR was written with the active bit.
    pub lr_active: bool,
    /// Software cleared the pending state while the interrupt was in an LR.
    pub drop_pending: bool,
    /// Software cleared the active state while the interrupt was in an LR.
    pub drop_active: bool,
    /// The vCPU that last held it in an LR: an active SPI stays with it.
    pub owner: u8,
    /// Physical INTID backing this SPI (passthrough), 0 for none.
    pub pintid: u16,
    /// That physical interrupt is active (acknowledged and priority-dropped by
    /// Tandem) and waits for the guest to deactivate this virtual one.
    pub hw_active: bool,
    /// The LR was written with HW = 1 (linked to `pintid`).
    pub lr_hw: bool,
    /// GICv2 SGIs: the vCPU that sent it last (GICC_IAR.CPUID).
    pub source: u8,
}

impl Irq {
    /// Reset state: disabled, idle, priority 0, group 1, level-sensitive.
    ///
    /// Group 1 at reset (IMPLEMENTATION DEFINED in the spec) lets guests
    /// that never write IGROUPR still receive IRQs; Linux writes it anyway.
    const RESET: Self = Self {
        enabled: false,
        latch: false,
        level: false,
        active: false,
        group1: true,
        edge: false,
        priority: 0,
        in_lr: None,
        lr_pending: false,
        lr_latched: false,
        lr_active: false,
        drop_pending: false,
        drop_active: false,
        owner: 0,
        pintid: 0,
        hw_active: false,
        lr_hw: false,
        source: 0,
    };

    /// Reset state of an SGI: as [`Irq::RESET`] but edge-triggered (fixed).
    const RESET_SGI: Self = Self {
        edge: true,
        ..Self::RESET
    };

    /// Pending in the model (outside any LR).
    pub fn pending(&self) -> bool {
        self.latch || (!self.edge && self.level)
    }

    /// Pending as the guest observes it through ISPENDR: the model's state
    /// plus what sits in an LR (as of the last flush).
    pub fn pending_view(&self) -> bool {
        self.pending() || (self.in_lr.is_some() && self.lr_pending && !self.drop_pending)
    }

    /// Waiting in the model for a list register: pending or active, and not
    /// in one. The candidate sets of [`IrqTable`] hold exactly these.
    pub fn queued(&self) -> bool {
        self.in_lr.is_none() && (self.pending() || self.active)
    }

    /// Active as the guest observes it through ISACTIVER.
    pub fn active_view(&self) -> bool {
        self.active || (self.in_lr.is_some() && self.lr_active && !self.drop_active)
    }

    /// Fold a read-back LR state into the model and forget the LR.
    pub fn fold_lr(&mut self, v: u8, pending: bool, active: bool) {
        if pending && self.lr_latched && !self.drop_pending {
            self.latch = true;
        }
        if active && !self.drop_active {
            self.active = true;
        }
        self.in_lr = None;
        self.lr_pending = false;
        self.lr_latched = false;
        self.lr_active = false;
        self.drop_pending = false;
        self.drop_active = false;
        self.lr_hw = false;
        self.owner = v;
    }

    /// Holds its physical interrupt active although nothing virtual is left
    /// to deactivate it: not in an LR, neither pending nor active.
    fn hw_orphaned(&self) -> bool {
        self.hw_active && self.in_lr.is_none() && !self.pending() && !self.active
    }
}

/// The lowest vCPU in a target mask.
pub fn lowest(mask: u8) -> Option<usize> {
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// A one-bit-per-INTID property, as the IGROUPR/IS*R/IC*R families see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitReg {
    /// IGROUPR: group 1.
    Group,
    /// ISENABLER/ICENABLER.
    Enable,
    /// ISPENDR/ICPENDR.
    Pending,
    /// ISACTIVER/ICACTIVER.
    Active,
}

/// How a write applies to a [`BitReg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    /// Write-1-to-set (IS*R).
    Set,
    /// Write-1-to-clear (IC*R).
    Clear,
    /// Plain write (IGROUPR).
    Assign,
}

/// The interrupt table of one VM, with the distributor-wide enables.
#[derive(Clone, Debug)]
pub struct IrqTable {
    /// Banked SGIs and PPIs, per vCPU.
    private: [[Irq; PRIVATE_INTIDS as usize]; MAX_VCPUS],
    /// SPIs, INTID 32 + index.
    spis: [Irq; MAX_SPIS],
    /// SPI targets: vCPU bitmask (one bit for a direct route, all for 1-of-N,
    /// none when the route matches no vCPU).
    targets: [u8; MAX_SPIS],
    /// Per vCPU, its banked INTIDs that are [`Irq::queued`] (bit n: INTID n).
    queued_private: [u32; MAX_VCPUS],
    /// The SPIs that are [`Irq::queued`] (bit n of word w: INTID 32 + 64w + n).
    queued_spis: [u64; MAX_SPIS / 64],
    /// Hardware-backed SPIs whose physical interrupt Tandem must deactivate
    /// (same bit layout as `queued_spis`).
    released: [u64; MAX_SPIS / 64],
    /// Number of vCPUs.
    vcpus: usize,
    /// Number of SPIs.
    spi_count: u32,
    /// Distributor group 0 forwarding enabled.
    pub enable_grp0: bool,
    /// Distributor group 1 forwarding enabled.
    pub enable_grp1: bool,
}

impl IrqTable {
    /// A reset table for `vcpus` vCPUs and `spi_count` SPIs; every SPI
    /// targets vCPU 0, and every interrupt is in group 1 if `group1` (GICv3)
    /// else group 0 (GICv2). The caller checks the bounds.
    pub fn new(vcpus: usize, spi_count: u32, group1: bool) -> Self {
        let reset = Irq {
            group1,
            ..Irq::RESET
        };
        let mut bank = [reset; PRIVATE_INTIDS as usize];
        bank[..SGIS as usize].fill(Irq {
            group1,
            ..Irq::RESET_SGI
        });
        Self {
            private: [bank; MAX_VCPUS],
            spis: [reset; MAX_SPIS],
            targets: [1; MAX_SPIS],
            queued_private: [0; MAX_VCPUS],
            queued_spis: [0; MAX_SPIS / 64],
            released: [0; MAX_SPIS / 64],
            vcpus,
            spi_count,
            enable_grp0: false,
            enable_grp1: false,
        }
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// One past the last implemented INTID.
    pub fn intid_limit(&self) -> u32 {
        PRIVATE_INTIDS + self.spi_count
    }

    /// The interrupt `intid` as seen by vCPU `cpu` (the bank for INTIDs < 32).
    pub fn get(&self, cpu: usize, intid: u32) -> Option<&Irq> {
        if intid < PRIVATE_INTIDS {
            self.private[..self.vcpus].get(cpu)?.get(intid as usize)
        } else {
            self.spis[..self.spi_count as usize].get((intid - PRIVATE_INTIDS) as usize)
        }
    }

    /// Change the interrupt `intid` as seen by vCPU `cpu` with `f` and keep
    /// the candidate sets in step; `None` (and `f` not called) if it does not exist.
    pub fn update<R>(
        &mut self,
        cpu: usize,
        intid: u32,
        f: impl FnOnce(&mut Irq) -> R,
    ) -> Option<R> {
        let irq = self.get_mut(cpu, intid)?;
        let result = f(irq);
        let queued = irq.queued();
        let released = irq.hw_orphaned();
        if released {
            irq.hw_active = false;
        }
        if intid < PRIVATE_INTIDS {
            let bit = 1u32 << intid;
            let word = &mut self.queued_private[cpu];
            *word = if queued { *word | bit } else { *word & !bit };
        } else {
            let i = (intid - PRIVATE_INTIDS) as usize;
            let bit = 1u64 << (i % 64);
            let word = &mut self.queued_spis[i / 64];
            *word = if queued { *word | bit } else { *word & !bit };
            if released {
                self.released[i / 64] |= bit;
            }
        }
        Some(result)
    }

    /// Calls `f` with the physical INTID of each SPI released since the last
    /// call (see the module documentation), and forgets them.
    pub fn take_released(&mut self, mut f: impl FnMut(u32)) {
        for w in 0..self.released.len() {
            let mut bits = core::mem::take(&mut self.released[w]);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(irq) = self.spis.get(i) {
                    f(u32::from(irq.pintid));
                }
            }
        }
    }

    /// The [`Irq::queued`] INTIDs vCPU `cpu` can see (its bank, then all
    /// SPIs), ascending (no banked ones for a `cpu` that is not a vCPU).
    /// Costs one step per set bit plus one per 64-bit word (at most
    /// `1 + MAX_SPIS / 64` words).
    pub fn queued(&self, cpu: usize) -> Queued<'_> {
        Queued {
            bits: self.queued_private[..self.vcpus]
                .get(cpu)
                .map_or(0, |&w| u64::from(w)),
            base: 0,
            rest: &self.queued_spis[..(self.spi_count as usize).div_ceil(64)],
            next_base: PRIVATE_INTIDS,
        }
    }

    /// Mutable [`IrqTable::get`]; callers go through [`IrqTable::update`].
    fn get_mut(&mut self, cpu: usize, intid: u32) -> Option<&mut Irq> {
        if intid < PRIVATE_INTIDS {
            self.private[..self.vcpus]
                .get_mut(cpu)?
                .get_mut(intid as usize)
        } else {
            self.spis[..self.spi_count as usize].get_mut((intid - PRIVATE_INTIDS) as usize)
        }
    }

    /// The target mask of SPI `intid` (0 for other INTIDs).
    pub fn targets(&self, intid: u32) -> u8 {
        intid
            .checked_sub(PRIVATE_INTIDS)
            .and_then(|i| self.targets[..self.spi_count as usize].get(i as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Retarget SPI `intid`; returns the vCPUs to kick.
    pub fn set_targets(&mut self, intid: u32, mask: u8) -> u32 {
        let valid = ((1u32 << self.vcpus) - 1) as u8;
        let Some(slot) = intid
            .checked_sub(PRIVATE_INTIDS)
            .and_then(|i| self.targets[..self.spi_count as usize].get_mut(i as usize))
        else {
            return 0;
        };
        let old = *slot;
        *slot = mask & valid;
        if old == *slot {
            0
        } else {
            self.kick_for(0, intid)
        }
    }

    /// The distributor forwards this interrupt's group.
    pub fn group_enabled(&self, irq: &Irq) -> bool {
        if irq.group1 {
            self.enable_grp1
        } else {
            self.enable_grp0
        }
    }

    /// The interrupt could be acknowledged now (pending, enabled, group
    /// enabled, not active) if it reached a CPU interface.
    pub fn signalable(&self, irq: &Irq) -> bool {
        irq.pending() && !irq.active && irq.enabled && self.group_enabled(irq)
    }

    /// The vCPU a pending `intid` (seen from `cpu`'s bank) goes to when it is
    /// not in an LR: the bank owner, or the lowest target of an SPI.
    pub fn pending_target(&self, cpu: usize, intid: u32) -> Option<usize> {
        if intid < PRIVATE_INTIDS {
            return (cpu < self.vcpus).then_some(cpu);
        }
        lowest(self.targets(intid))
    }

    /// Whether pending `intid` may be delivered to vCPU `v`.
    pub fn deliverable_to(&self, v: usize, intid: u32) -> bool {
        intid < PRIVATE_INTIDS || self.targets(intid) & (1 << v) != 0
    }

    /// The vCPUs to kick after `intid` (in `cpu`'s bank) changed: the one
    /// holding it in an LR (that LR is now stale), and the one it is now
    /// signalable to (the owner if it is also active, since the vCPU that
    /// deactivates it must see the pending half).
    pub fn kick_for(&self, cpu: usize, intid: u32) -> u32 {
        let Some(irq) = self.get(cpu, intid) else {
            return 0;
        };
        let mut kick = irq.in_lr.map_or(0, |v| 1u32 << v);
        if irq.pending_view() && irq.enabled && self.group_enabled(irq) {
            let to = if irq.active_view() {
                Some(self.active_owner(cpu, intid, irq))
            } else {
                self.pending_target(cpu, intid)
            };
            kick |= to.map_or(0, |v| 1 << v);
        }
        kick
    }

    /// The vCPU an active interrupt belongs to (bank owner, or the SPI's owner).
    pub fn active_owner(&self, cpu: usize, intid: u32, irq: &Irq) -> usize {
        if intid < PRIVATE_INTIDS {
            cpu
        } else {
            irq.owner as usize
        }
    }

    /// Read 32 bits of `reg` for INTIDs `first..first + 32` (unimplemented INTIDs read 0).
    pub fn read_bits(&self, reg: BitReg, cpu: usize, first: u32) -> u32 {
        let mut value = 0;
        for bit in 0..32 {
            let Some(irq) = first.checked_add(bit).and_then(|i| self.get(cpu, i)) else {
                continue;
            };
            let set = match reg {
                BitReg::Group => irq.group1,
                BitReg::Enable => irq.enabled,
                BitReg::Pending => irq.pending_view(),
                BitReg::Active => irq.active_view(),
            };
            value |= (set as u32) << bit;
        }
        value
    }

    /// Apply a 32-bit write of `reg` for INTIDs `first..first + 32`; every
    /// bit of `value` is honoured, unimplemented INTIDs ignore theirs.
    /// Returns the vCPUs to kick.
    pub fn write_bits(
        &mut self,
        reg: BitReg,
        op: BitOp,
        cpu: usize,
        first: u32,
        value: u32,
    ) -> u32 {
        let mut kick = 0;
        for bit in 0..32 {
            let one = value & (1 << bit) != 0;
            let to = match op {
                BitOp::Set if one => true,
                BitOp::Clear if one => false,
                BitOp::Assign => one,
                _ => continue,
            };
            let Some(intid) = first.checked_add(bit) else {
                continue;
            };
            if self.write_bit(reg, cpu, intid, to) {
                kick |= self.kick_for(cpu, intid);
            }
        }
        kick
    }

    /// Set one property of one interrupt; returns whether anything changed.
    fn write_bit(&mut self, reg: BitReg, cpu: usize, intid: u32, to: bool) -> bool {
        let targets = self.targets(intid);
        self.update(cpu, intid, |irq| {
            Self::apply_bit(irq, reg, cpu, intid, to, targets)
        })
        .unwrap_or(false)
    }

    /// [`IrqTable::write_bit`] on the interrupt itself (`targets`: the SPI's).
    fn apply_bit(
        irq: &mut Irq,
        reg: BitReg,
        cpu: usize,
        intid: u32,
        to: bool,
        targets: u8,
    ) -> bool {
        let before = *irq;
        match reg {
            BitReg::Group => irq.group1 = to,
            BitReg::Enable => irq.enabled = to,
            BitReg::Pending if to => irq.latch = true,
            BitReg::Pending => {
                // Clears the latch only: a level-sensitive line still high
                // keeps the interrupt pending (IHI 0069, `GICD_ICPENDR<n>`).
                irq.latch = false;
                irq.drop_pending |= irq.in_lr.is_some() && irq.lr_pending;
            }
            BitReg::Active if to => {
                if !irq.active_view() && irq.in_lr.is_none() {
                    // The vCPU that will have to deactivate it.
                    irq.owner = if intid < PRIVATE_INTIDS {
                        cpu as u8
                    } else {
                        lowest(targets).unwrap_or(0) as u8
                    };
                }
                irq.active = true;
            }
            BitReg::Active => {
                irq.active = false;
                irq.drop_active |= irq.in_lr.is_some() && irq.lr_active;
            }
        }
        let after = *irq;
        (
            before.group1,
            before.enabled,
            before.pending_view(),
            before.active_view(),
        ) != (
            after.group1,
            after.enabled,
            after.pending_view(),
            after.active_view(),
        )
    }

    /// Priority byte of `intid` (0 when unimplemented).
    pub fn priority(&self, cpu: usize, intid: u32) -> u8 {
        self.get(cpu, intid).map_or(0, |i| i.priority)
    }

    /// Write the priority byte of `intid`; returns the vCPUs to kick.
    pub fn set_priority(&mut self, cpu: usize, intid: u32, priority: u8) -> u32 {
        let new = priority & PRIORITY_MASK;
        let changed = self.update(cpu, intid, |irq| {
            let changed = irq.priority != new;
            irq.priority = new;
            changed
        });
        if changed != Some(true) {
            return 0;
        }
        self.kick_for(cpu, intid)
    }

    /// The 2-bit ICFGR field of `intid`: 0b10 edge, 0b00 level (0 when unimplemented).
    pub fn config(&self, cpu: usize, intid: u32) -> u32 {
        self.get(cpu, intid)
            .map_or(0, |i| if i.edge { 0b10 } else { 0b00 })
    }

    /// Write the 2-bit ICFGR field of `intid` (bit 1 = edge); SGIs are fixed edge.
    /// Returns the vCPUs to kick.
    pub fn set_config(&mut self, cpu: usize, intid: u32, field: u32) -> u32 {
        if intid < SGIS {
            return 0;
        }
        let edge = field & 0b10 != 0;
        let changed = self.update(cpu, intid, |irq| {
            let changed = irq.edge != edge;
            irq.edge = edge;
            changed
        });
        if changed != Some(true) {
            return 0;
        }
        self.kick_for(cpu, intid)
    }

    /// Panic unless the candidate sets equal a full scan of the table.
    #[cfg(test)]
    pub fn assert_queued_consistent(&self) {
        for cpu in 0..self.vcpus {
            let scan = (0..PRIVATE_INTIDS)
                .filter(|&i| self.private[cpu][i as usize].queued())
                .fold(0u32, |m, i| m | 1 << i);
            assert_eq!(self.queued_private[cpu], scan, "vCPU {cpu} private set");
        }
        assert!(self.queued_private[self.vcpus..].iter().all(|&w| w == 0));
        for (w, &word) in self.queued_spis.iter().enumerate() {
            let scan = (0..64)
                .filter(|&b| {
                    self.spis[..self.spi_count as usize]
                        .get(w * 64 + b)
                        .is_some_and(Irq::queued)
                })
                .fold(0u64, |m, b| m | 1 << b);
            assert_eq!(word, scan, "SPI set word {w}");
        }
        for (i, irq) in self.spis.iter().enumerate() {
            assert!(
                !irq.hw_orphaned(),
                "SPI {} holds its physical interrupt for nothing",
                i + 32
            );
        }
    }
}

/// Iterator over set bits of the candidate sets; see [`IrqTable::queued`].
pub struct Queued<'a> {
    /// Bits not yet returned of the current word.
    bits: u64,
    /// INTID of bit 0 of the current word.
    base: u32,
    /// SPI words still to visit.
    rest: &'a [u64],
    /// INTID of bit 0 of `rest[0]`.
    next_base: u32,
}

impl Iterator for Queued<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.bits == 0 {
            let (&word, rest) = self.rest.split_first()?;
            self.bits = word;
            self.base = self.next_base;
            self.rest = rest;
            self.next_base += 64;
        }
        let bit = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(self.base + bit)
    }
}
