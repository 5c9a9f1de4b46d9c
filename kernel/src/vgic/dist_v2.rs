//! GICv2 distributor emulation (Arm IHI 0048B, "Distributor register
//! descriptions"): one 4 KiB frame, SGI/PPI registers banked per vCPU,
//! SPI targets in GICD_ITARGETSR, SGIs sent through GICD_SGIR.
//!
//! Like `dist`, decoding maps an offset to a `Reg` and the read and write
//! paths call the layout-free state in `super::state`; the vCPU making the
//! access selects the bank. The guest's CPU interface is not emulated: it is
//! the hardware GICV frame, mapped by stage 2.
//!
//! Choices where the spec leaves room:
//! - no Security Extensions (GICD_TYPER.SecurityExtn = 0): GICD_CTLR has
//!   EnableGrp0 and EnableGrp1, NSACR is RAZ/WI; interrupts reset to group 0,
//!   which a guest's GICC_CTLR.EnableGrp0 delivers as IRQs;
//! - the CPU interface number of vCPU `n` is `n` (GICD_ITARGETSR0..7 read `1 << n`);
//! - an SGI keeps one pending state per target, with the source of its last
//!   send (GICC_IAR.CPUID shows it); sends from two sources before the guest
//!   acknowledges merge into one;
//! - ISPENDR0/ICPENDR0 ignore writes to SGI bits (GICD_SPENDSGIR/CPENDSGIR
//!   set and clear them); GICD_ICFGR0 (SGIs) is read-only edge;
//! - access sizes: 32-bit everywhere, plus byte for IPRIORITYR, ITARGETSR,
//!   CPENDSGIR and SPENDSGIR; reserved offsets accept any size and are RAZ/WI,
//!   counted in [`super::VgicStats::reserved_accesses`].

use super::state::{BitOp, BitReg, PRIVATE_INTIDS, SGIS};
use super::{MmioError, Vgic};

/// GICD_CTLR: control.
pub const GICD_CTLR: u64 = 0x000;
/// GICD_TYPER: implemented features.
pub const GICD_TYPER: u64 = 0x004;
/// GICD_IIDR: implementer identification.
pub const GICD_IIDR: u64 = 0x008;
/// `GICD_IGROUPR<n>`.
pub const GICD_IGROUPR: u64 = 0x080;
/// `GICD_ISENABLER<n>`.
pub const GICD_ISENABLER: u64 = 0x100;
/// `GICD_ICENABLER<n>`.
pub const GICD_ICENABLER: u64 = 0x180;
/// `GICD_ISPENDR<n>`.
pub const GICD_ISPENDR: u64 = 0x200;
/// `GICD_ICPENDR<n>`.
pub const GICD_ICPENDR: u64 = 0x280;
/// `GICD_ISACTIVER<n>`.
pub const GICD_ISACTIVER: u64 = 0x300;
/// `GICD_ICACTIVER<n>`.
pub const GICD_ICACTIVER: u64 = 0x380;
/// `GICD_IPRIORITYR<n>`: one byte per INTID.
pub const GICD_IPRIORITYR: u64 = 0x400;
/// `GICD_ITARGETSR<n>`: one CPU-mask byte per INTID.
pub const GICD_ITARGETSR: u64 = 0x800;
/// `GICD_ICFGR<n>`: two bits per INTID.
pub const GICD_ICFGR: u64 = 0xc00;
/// GICD_SGIR: software-generated interrupts.
pub const GICD_SGIR: u64 = 0xf00;
/// `GICD_CPENDSGIR<n>`: SGI clear-pending, one byte per SGI.
pub const GICD_CPENDSGIR: u64 = 0xf10;
/// `GICD_SPENDSGIR<n>`: SGI set-pending, one byte per SGI.
pub const GICD_SPENDSGIR: u64 = 0xf20;
/// GICD_PIDR2: ArchRev in bits `[7:4]`.
pub const PIDR2: u64 = 0xfe8;
/// Size of the distributor frame.
pub const FRAME_SIZE: u64 = 0x1000;

/// GICD_CTLR.EnableGrp0.
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR.EnableGrp1.
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_IIDR: ProductID 'T' (0x54), as the v3 model.
const IIDR: u32 = 0x5400_0000;

/// Identification registers at 0xfd0..0x1000 (PIDR4..7, PIDR0..3, CIDR0..3).
fn id_reg(off: u64) -> u32 {
    match off {
        0xfd0 => 0x04,
        PIDR2 => 0x2b, // ArchRev 2 (GICv2), JEP106 used, Arm's JEP106 id [6:4].
        0xfe4 => 0xb0,
        0xff0 => 0x0d,
        0xff4 => 0xf0,
        0xff8 => 0x05,
        0xffc => 0xb1,
        _ => 0,
    }
}

/// A register the decoder recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    /// One bit per INTID for `first..first + 32`.
    Bits {
        reg: BitReg,
        op: BitOp,
        first: u32,
    },
    /// IPRIORITYR word for `first..first + 4`.
    Priority {
        first: u32,
    },
    /// ITARGETSR word for `first..first + 4`.
    Targets {
        first: u32,
    },
    /// ICFGR word for `first..first + 16`.
    Config {
        first: u32,
    },
    Sgir,
    /// SPENDSGIR (`set`) or CPENDSGIR word for SGIs `first..first + 4`.
    SgiPending {
        set: bool,
        first: u32,
    },
    Id(u32),
    RazWi,
    Reserved,
}

impl Reg {
    /// Whether an access of `width` bytes is allowed.
    fn allows(self, width: u8) -> bool {
        match self {
            Reg::Priority { .. } | Reg::Targets { .. } | Reg::SgiPending { .. } => {
                matches!(width, 1 | 4)
            }
            Reg::Reserved => true,
            _ => width == 4,
        }
    }
}

/// The bit-per-INTID blocks, in offset order from GICD_IGROUPR.
const BIT_BLOCKS: [(BitReg, BitOp); 7] = [
    (BitReg::Group, BitOp::Assign),
    (BitReg::Enable, BitOp::Set),
    (BitReg::Enable, BitOp::Clear),
    (BitReg::Pending, BitOp::Set),
    (BitReg::Pending, BitOp::Clear),
    (BitReg::Active, BitOp::Set),
    (BitReg::Active, BitOp::Clear),
];

fn classify(off: u64) -> Reg {
    let word = off & !3;
    match off {
        GICD_CTLR => Reg::Ctlr,
        GICD_TYPER => Reg::Typer,
        GICD_IIDR => Reg::Iidr,
        GICD_IGROUPR..GICD_IPRIORITYR => {
            let (reg, op) = BIT_BLOCKS[((off - GICD_IGROUPR) / 0x80) as usize];
            let first = ((word - GICD_IGROUPR) % 0x80 * 8) as u32;
            Reg::Bits { reg, op, first }
        }
        GICD_IPRIORITYR..0x7fc => Reg::Priority {
            first: (word - GICD_IPRIORITYR) as u32,
        },
        GICD_ITARGETSR..0xbfc => Reg::Targets {
            first: (word - GICD_ITARGETSR) as u32,
        },
        GICD_ICFGR..0xd00 => Reg::Config {
            first: ((word - GICD_ICFGR) * 4) as u32,
        },
        // PPI/SPI status (implementation defined) and NSACR.
        0xd00..0xd80 | 0xe00..0xf00 => Reg::RazWi,
        GICD_SGIR => Reg::Sgir,
        GICD_CPENDSGIR..GICD_SPENDSGIR => Reg::SgiPending {
            set: false,
            first: ((word - GICD_CPENDSGIR) as u32),
        },
        GICD_SPENDSGIR..0xf30 => Reg::SgiPending {
            set: true,
            first: ((word - GICD_SPENDSGIR) as u32),
        },
        0xfd0..FRAME_SIZE => Reg::Id(id_reg(word)),
        _ => Reg::Reserved,
    }
}

impl Vgic {
    /// A validated read by vCPU `cpu` (width 1/2/4/8, aligned, vCPU exists).
    pub(super) fn v2_read(&mut self, cpu: usize, off: u64, width: u8) -> Result<u64, MmioError> {
        let reg = classify(off);
        if !reg.allows(width) {
            return Err(MmioError::BadWidth);
        }
        if reg == Reg::Reserved {
            self.note_reserved();
            return Ok(0);
        }
        let shift = 8 * (off & 3);
        Ok((u64::from(self.v2_read_reg(cpu, reg)) >> shift) & super::width_mask(width))
    }

    /// The whole 32-bit register as vCPU `cpu` sees it.
    fn v2_read_reg(&self, cpu: usize, reg: Reg) -> u32 {
        let t = &self.table;
        match reg {
            Reg::Ctlr => {
                (u32::from(t.enable_grp0) * CTLR_ENABLE_GRP0)
                    | (u32::from(t.enable_grp1) * CTLR_ENABLE_GRP1)
            }
            Reg::Typer => {
                let it_lines = t.intid_limit() / 32 - 1;
                it_lines | (self.vcpus() as u32 - 1) << 5
            }
            Reg::Iidr => IIDR,
            Reg::Bits { reg, first, .. } => t.read_bits(reg, cpu, first),
            Reg::Priority { first } => (0..4).fold(0, |w, i| {
                w | u32::from(t.priority(cpu, first + i)) << (8 * i)
            }),
            Reg::Targets { first } => (0..4).fold(0, |w, i| {
                w | u32::from(self.v2_targets(cpu, first + i)) << (8 * i)
            }),
            Reg::Config { first } => {
                (0..16).fold(0, |w, i| w | t.config(cpu, first + i) << (2 * i))
            }
            Reg::SgiPending { first, .. } => (0..4).fold(0, |w, i| {
                let byte = t
                    .get(cpu, first + i)
                    .filter(|irq| irq.pending_view())
                    .map_or(0, |irq| 1u32 << (irq.source & 7));
                w | byte << (8 * i)
            }),
            Reg::Id(v) => v,
            Reg::Sgir | Reg::RazWi | Reg::Reserved => 0,
        }
    }

    /// GICD_ITARGETSR byte of `intid`: the reader's own mask for SGIs and PPIs.
    fn v2_targets(&self, cpu: usize, intid: u32) -> u8 {
        if intid < PRIVATE_INTIDS {
            1 << cpu
        } else {
            self.table.targets(intid)
        }
    }

    /// A validated write of `value` (already masked to `width`) by vCPU `cpu`.
    /// Returns the vCPUs to kick.
    pub(super) fn v2_write(
        &mut self,
        cpu: usize,
        off: u64,
        width: u8,
        value: u64,
    ) -> Result<u32, MmioError> {
        let reg = classify(off);
        if !reg.allows(width) {
            return Err(MmioError::BadWidth);
        }
        let lane = (off & 3) as u32;
        let bytes = u32::from(width).min(4);
        let byte = |i: u32| (value >> (8 * i)) as u8;
        let kick = match reg {
            Reg::Ctlr => {
                let before = (self.table.enable_grp0, self.table.enable_grp1);
                self.table.enable_grp0 = value as u32 & CTLR_ENABLE_GRP0 != 0;
                self.table.enable_grp1 = value as u32 & CTLR_ENABLE_GRP1 != 0;
                if before == (self.table.enable_grp0, self.table.enable_grp1) {
                    0
                } else {
                    self.kick_all()
                }
            }
            Reg::Bits { reg, op, first } => {
                let mut bits = value as u32;
                if first == 0 && reg == BitReg::Pending {
                    bits &= !((1 << SGIS) - 1);
                }
                self.table.write_bits(reg, op, cpu, first, bits)
            }
            Reg::Priority { first } => (0..bytes).fold(0, |m, i| {
                m | self.table.set_priority(cpu, first + lane + i, byte(i))
            }),
            Reg::Targets { first } => (0..bytes)
                .filter(|&i| first + lane + i >= PRIVATE_INTIDS)
                .fold(0, |m, i| {
                    m | self.table.set_targets(first + lane + i, byte(i))
                }),
            Reg::Config { first } => (0..16).fold(0, |m, i| {
                m | self
                    .table
                    .set_config(cpu, first + i, (value as u32 >> (2 * i)) & 3)
            }),
            Reg::Sgir => self.sgir_write(cpu, value as u32),
            Reg::SgiPending { set, first } => (0..bytes).fold(0, |m, i| {
                m | self.sgi_pending_write(cpu, first + lane + i, byte(i), set)
            }),
            Reg::Reserved => {
                self.note_reserved();
                0
            }
            Reg::Typer | Reg::Iidr | Reg::Id(_) | Reg::RazWi => 0,
        };
        Ok(kick)
    }

    /// A GICD_SGIR write by vCPU `from`: TargetListFilter `[25:24]` (0: the
    /// list, 1: all but `from`, 2: `from` only, 3: reserved, ignored),
    /// CPUTargetList `[23:16]`, SGIINTID `[3:0]`. Returns the vCPUs to kick.
    pub fn sgir_write(&mut self, from: usize, value: u32) -> u32 {
        let all = ((1u32 << self.vcpus()) - 1) as u8;
        let targets = match (value >> 24) & 3 {
            0 => (value >> 16) as u8 & all,
            1 => all & !(1 << from),
            2 => 1 << from,
            _ => 0,
        };
        let intid = value & 0xf;
        let mut kick = 0;
        for v in (0..self.vcpus()).filter(|&v| targets & (1 << v) != 0) {
            let latched = self.table.update(v, intid, |irq| {
                if irq.latch {
                    return false;
                }
                irq.latch = true;
                irq.source = from as u8;
                true
            });
            if latched == Some(true) {
                kick |= self.table.kick_for(v, intid);
            }
        }
        kick
    }

    /// One byte of SPENDSGIR (`set`) or CPENDSGIR for SGI `intid` of vCPU
    /// `cpu`: each set bit names a source CPU.
    fn sgi_pending_write(&mut self, cpu: usize, intid: u32, sources: u8, set: bool) -> u32 {
        if intid >= SGIS || sources == 0 {
            return 0;
        }
        if set {
            let source = sources.trailing_zeros() as u8;
            let latched = self.table.update(cpu, intid, |irq| {
                let newly = !irq.latch;
                irq.latch = true;
                irq.source = source;
                newly
            });
            if latched == Some(true) {
                return self.table.kick_for(cpu, intid);
            }
            0
        } else {
            let ours = self
                .table
                .get(cpu, intid)
                .is_some_and(|irq| sources & (1 << (irq.source & 7)) != 0);
            if !ours {
                return 0;
            }
            self.table
                .write_bits(BitReg::Pending, BitOp::Clear, cpu, intid, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lr::{Backing, GichLr, LrFormat, LrState};
    use super::super::{Frame, VgicLayout};
    use super::*;

    fn vm(n: usize) -> Vgic {
        let mpidrs: [u64; 8] = core::array::from_fn(|i| 0x8000_0000 | i as u64);
        Vgic::try_new(&mpidrs[..n], 64, VgicLayout::QEMU_VIRT_V2).unwrap()
    }

    fn rd(g: &mut Vgic, cpu: usize, off: u64, w: u8) -> u64 {
        g.mmio_read(Frame::CpuDist(cpu), off, w).unwrap()
    }

    fn wr(g: &mut Vgic, cpu: usize, off: u64, w: u8, v: u64) -> u32 {
        g.mmio_write(Frame::CpuDist(cpu), off, w, v).unwrap()
    }

    /// Linux 6.12 irq-gic's probe, gic_dist_init and gic_cpu_init leave what they expect:
    /// GICv2 ID, interrupts in group 0 forwarded by EnableGrp0, SPIs targeted, PPIs enabled.
    #[test]
    fn linux_init_sequence() {
        let mut g = vm(2);
        assert_eq!(rd(&mut g, 0, PIDR2, 4) & 0xf0, 0x20, "ArchRev 2");
        let typer = rd(&mut g, 0, GICD_TYPER, 4);
        assert_eq!((typer & 0x1f) + 1, 96 / 32, "ITLinesNumber");
        assert_eq!((typer >> 5) & 7, 1, "CPUNumber: two CPU interfaces");
        assert_eq!(typer & 1 << 10, 0, "no Security Extensions");
        // gic_dist_init: disable, target the boot CPU, level, priorities, disable SPIs.
        wr(&mut g, 0, GICD_CTLR, 4, 0);
        let mask = rd(&mut g, 0, GICD_ITARGETSR, 4) & 0xff;
        assert_eq!(mask, 1, "CPU interface 0 reads its own mask");
        assert_eq!(rd(&mut g, 1, GICD_ITARGETSR, 4) & 0xff, 2);
        for i in (32..96).step_by(4) {
            wr(&mut g, 0, GICD_ITARGETSR + i, 4, mask * 0x0101_0101);
            wr(&mut g, 0, GICD_IPRIORITYR + i, 4, 0xa0a0_a0a0);
        }
        for i in (32..96).step_by(32) {
            wr(&mut g, 0, GICD_ICENABLER + i / 8, 4, 0xffff_ffff);
        }
        wr(&mut g, 0, GICD_CTLR, 4, 1);
        assert_eq!(rd(&mut g, 0, GICD_CTLR, 4), 1);
        // gic_cpu_init on CPU 1: banked SGI/PPI enables and priorities.
        wr(&mut g, 1, GICD_ICENABLER, 4, 0xffff_0000);
        wr(&mut g, 1, GICD_ISENABLER, 4, 0x0000_ffff | 1 << 27);
        wr(&mut g, 1, GICD_IPRIORITYR + 24, 4, 0xa0a0_a0a0);
        assert_eq!(rd(&mut g, 1, GICD_ISENABLER, 4), 0x0800_ffff);
        assert_eq!(rd(&mut g, 0, GICD_ISENABLER, 4), 0, "banked per CPU");
        assert_eq!(rd(&mut g, 0, GICD_IGROUPR, 4), 0, "group 0 at reset");
        // The timer PPI reaches CPU 1 as a group 0 LR.
        assert_eq!(g.inject(27, Some(1)), 0b10);
        let mut lrs = [0; 4];
        g.flush_with::<GichLr>(1, &mut lrs);
        let lr = GichLr::decode(lrs[0]);
        assert_eq!(
            (lr.vintid, lr.state, lr.group1),
            (27, LrState::Pending, false)
        );
        assert_eq!(lr.priority, 0xa0);
    }

    /// GICD_SGIR: the target list, all-but-self and self-only filters; the LR of an SGI
    /// names its source CPU.
    #[test]
    fn sgir_filters_and_source() {
        let mut g = vm(3);
        wr(&mut g, 0, GICD_CTLR, 4, 1);
        for cpu in 0..3 {
            wr(&mut g, cpu, GICD_ISENABLER, 4, 0xffff);
        }
        assert_eq!(wr(&mut g, 2, GICD_SGIR, 4, 0b010 << 16 | 5), 0b010);
        let mut lrs = [0; 4];
        g.flush_with::<GichLr>(1, &mut lrs);
        let lr = GichLr::decode(lrs[0]);
        assert_eq!(lr.vintid, 5);
        assert_eq!(
            lr.backing,
            Backing::Virtual {
                eoi: false,
                source: 2
            }
        );
        assert_eq!(
            wr(&mut g, 0, GICD_SGIR, 4, 1 << 24 | 3),
            0b110,
            "all but self"
        );
        assert_eq!(wr(&mut g, 1, GICD_SGIR, 4, 2 << 24 | 4), 0b010, "self only");
        assert_eq!(
            wr(&mut g, 1, GICD_SGIR, 4, 3 << 24 | 4),
            0,
            "reserved filter"
        );
        assert_eq!(
            wr(&mut g, 0, GICD_SGIR, 4, 0xf8 << 16 | 6),
            0,
            "CPUs the VM does not have"
        );
        assert_eq!(rd(&mut g, 0, GICD_SGIR, 4), 0, "write-only");
    }

    /// ITARGETSR routes SPIs; only the VM's CPUs count; SGI/PPI targets are read-only.
    #[test]
    fn itargetsr_routes_spis() {
        let mut g = vm(2);
        wr(&mut g, 0, GICD_CTLR, 4, 1);
        wr(&mut g, 0, GICD_ITARGETSR + 40, 1, 0xff);
        assert_eq!(rd(&mut g, 0, GICD_ITARGETSR + 40, 1), 0b11);
        wr(&mut g, 0, GICD_ITARGETSR + 41, 1, 0b10);
        wr(&mut g, 0, GICD_ISENABLER + 4, 4, 1 << 9);
        assert_eq!(g.inject(41, None), 0b10);
        wr(&mut g, 0, GICD_ITARGETSR + 27, 1, 0xff);
        assert_eq!(rd(&mut g, 0, GICD_ITARGETSR + 27, 1), 1);
    }

    /// SPENDSGIR/CPENDSGIR set and clear an SGI by source; ISPENDR0 ignores SGI bits.
    #[test]
    fn sgi_pending_registers() {
        let mut g = vm(2);
        wr(&mut g, 0, GICD_ISPENDR, 4, 1 << 3);
        assert_eq!(rd(&mut g, 0, GICD_ISPENDR, 4), 0);
        wr(&mut g, 0, GICD_SPENDSGIR, 1, 0b10);
        assert_eq!(rd(&mut g, 0, GICD_SPENDSGIR, 4), 0b10);
        assert_eq!(rd(&mut g, 0, GICD_ISPENDR, 4), 1);
        wr(&mut g, 0, GICD_CPENDSGIR, 1, 0b01);
        assert_eq!(rd(&mut g, 0, GICD_CPENDSGIR, 4), 0b10, "other source: kept");
        wr(&mut g, 0, GICD_CPENDSGIR, 1, 0b10);
        assert_eq!(rd(&mut g, 0, GICD_SPENDSGIR, 4), 0);
    }

    /// Bad widths and misalignment are errors (the guest gets an abort); reserved offsets
    /// are RAZ/WI and counted; a vCPU the VM lacks is no frame.
    #[test]
    fn hostile_accesses() {
        let mut g = vm(2);
        let d = Frame::CpuDist(0);
        assert_eq!(g.mmio_read(d, GICD_CTLR, 1), Err(MmioError::BadWidth));
        assert_eq!(g.mmio_write(d, GICD_SGIR, 2, 1), Err(MmioError::BadWidth));
        assert_eq!(
            g.mmio_read(d, GICD_TYPER + 1, 2),
            Err(MmioError::Misaligned)
        );
        assert_eq!(g.mmio_read(d, 0x040, 8), Ok(0));
        assert_eq!(g.stats().reserved_accesses, 1);
        assert_eq!(
            g.mmio_read(Frame::CpuDist(2), GICD_CTLR, 4),
            Err(MmioError::NoSuchFrame)
        );
        // Every offset and width: no panic.
        for off in (0..FRAME_SIZE).step_by(1) {
            for w in [1, 2, 4, 8] {
                let _ = g.mmio_read(d, off, w);
                let _ = g.mmio_write(d, off, w, u64::MAX);
            }
        }
    }
}
