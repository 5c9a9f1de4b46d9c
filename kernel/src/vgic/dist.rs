//! GICv3 register-map emulation: GICD, GICR RD_base and GICR SGI_base.
//!
//! Decoding is two steps: `classify` maps a frame and offset to a `Reg`
//! (which register, which INTIDs, which access sizes it accepts); the read and
//! write paths then apply byte-lane semantics on the register's natural size
//! and call the layout-free state in `super::state`. A GICv2 distributor
//! decoder would reuse the same state calls with its own `classify`.
//!
//! Choices where the spec leaves room (Arm IHI 0069, GICD/GICR register descriptions):
//! - GICD_CTLR.DS = 1 (single security state), ARE RAO/WI, so the GICD copies
//!   of SGI/PPI registers (IGROUPR0, ISENABLER0, IPRIORITYR0..7, ICFGR0/1, …)
//!   are RAZ/WI, ITARGETSR/SGIR/CPENDSGIR/SPENDSGIR are RAZ/WI, and
//!   IGRPMODR/NSACR are RAZ/WI (DS = 1).
//! - No LPIs, no MBIS (GICD_SETSPI_* reserved), no extended SPI/PPI ranges.
//! - GICR_CTLR, GICR_STATUSR, GICD_STATUSR and GICR_SYNCR read 0 (never busy).
//! - Access sizes: 32-bit everywhere, plus byte for IPRIORITYR and the
//!   byte-wide RAZ/WI registers (ITARGETSR, CPENDSGIR, SPENDSGIR), plus
//!   64-bit (or either 32-bit half) for IROUTER and GICR_TYPER. Reserved
//!   offsets accept any size and are RAZ/WI, counted in
//!   [`super::VgicStats::reserved_accesses`].

use super::state::{BitOp, BitReg, MAX_VCPUS, PRIVATE_INTIDS};
use super::{Frame, MmioError, Vgic};

/// GICD_CTLR: control.
pub const GICD_CTLR: u64 = 0x0000;
/// GICD_TYPER: implemented features.
pub const GICD_TYPER: u64 = 0x0004;
/// GICD_IIDR: implementer identification.
pub const GICD_IIDR: u64 = 0x0008;
/// GICD_TYPER2: more features (all zero here).
pub const GICD_TYPER2: u64 = 0x000c;
/// GICD_STATUSR: error reporting (RAZ/WI).
pub const GICD_STATUSR: u64 = 0x0010;
/// `GICD_IGROUPR<n>`: group, one bit per INTID.
pub const GICD_IGROUPR: u64 = 0x0080;
/// `GICD_ISENABLER<n>`: set-enable.
pub const GICD_ISENABLER: u64 = 0x0100;
/// `GICD_ICENABLER<n>`: clear-enable.
pub const GICD_ICENABLER: u64 = 0x0180;
/// `GICD_ISPENDR<n>`: set-pending.
pub const GICD_ISPENDR: u64 = 0x0200;
/// `GICD_ICPENDR<n>`: clear-pending.
pub const GICD_ICPENDR: u64 = 0x0280;
/// `GICD_ISACTIVER<n>`: set-active.
pub const GICD_ISACTIVER: u64 = 0x0300;
/// `GICD_ICACTIVER<n>`: clear-active.
pub const GICD_ICACTIVER: u64 = 0x0380;
/// `GICD_IPRIORITYR<n>`: one priority byte per INTID.
pub const GICD_IPRIORITYR: u64 = 0x0400;
/// `GICD_ITARGETSR<n>`: legacy targets (RAZ/WI with ARE).
pub const GICD_ITARGETSR: u64 = 0x0800;
/// `GICD_ICFGR<n>`: two configuration bits per INTID (bit 1: edge).
pub const GICD_ICFGR: u64 = 0x0c00;
/// `GICD_IGRPMODR<n>`: group modifier (RAZ/WI with DS = 1).
pub const GICD_IGRPMODR: u64 = 0x0d00;
/// `GICD_NSACR<n>`: non-secure access control (RAZ/WI with DS = 1).
pub const GICD_NSACR: u64 = 0x0e00;
/// GICD_SGIR: legacy SGI generation (WI with ARE).
pub const GICD_SGIR: u64 = 0x0f00;
/// `GICD_CPENDSGIR<n>`: legacy SGI clear-pending (RAZ/WI with ARE).
pub const GICD_CPENDSGIR: u64 = 0x0f10;
/// `GICD_SPENDSGIR<n>`: legacy SGI set-pending (RAZ/WI with ARE).
pub const GICD_SPENDSGIR: u64 = 0x0f20;
/// `GICD_IROUTER<n>`: SPI routing, 64 bits per INTID at `GICD_IROUTER + 8n`.
pub const GICD_IROUTER: u64 = 0x6000;
/// First identification register (PIDR4); the ID block runs to the frame end.
pub const ID_REGS: u64 = 0xffd0;
/// GICD_PIDR2 / GICR_PIDR2: ArchRev in bits `[7:4]`.
pub const PIDR2: u64 = 0xffe8;

/// GICR_CTLR (RD_base).
pub const GICR_CTLR: u64 = 0x0000;
/// GICR_IIDR (RD_base).
pub const GICR_IIDR: u64 = 0x0004;
/// GICR_TYPER (RD_base, 64-bit).
pub const GICR_TYPER: u64 = 0x0008;
/// GICR_STATUSR (RD_base).
pub const GICR_STATUSR: u64 = 0x0010;
/// GICR_WAKER (RD_base).
pub const GICR_WAKER: u64 = 0x0014;
/// GICR_SYNCR (RD_base; LPI-related, reads "not busy").
pub const GICR_SYNCR: u64 = 0x00c0;
/// Offset of the SGI_base frame inside a redistributor.
pub const SGI_BASE: u64 = 0x1_0000;
/// GICR_IGROUPR0 (SGI_base).
pub const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
/// GICR_ISENABLER0 (SGI_base).
pub const GICR_ISENABLER0: u64 = SGI_BASE + 0x0100;
/// GICR_ICENABLER0 (SGI_base).
pub const GICR_ICENABLER0: u64 = SGI_BASE + 0x0180;
/// GICR_ISPENDR0 (SGI_base).
pub const GICR_ISPENDR0: u64 = SGI_BASE + 0x0200;
/// GICR_ICPENDR0 (SGI_base).
pub const GICR_ICPENDR0: u64 = SGI_BASE + 0x0280;
/// GICR_ISACTIVER0 (SGI_base).
pub const GICR_ISACTIVER0: u64 = SGI_BASE + 0x0300;
/// GICR_ICACTIVER0 (SGI_base).
pub const GICR_ICACTIVER0: u64 = SGI_BASE + 0x0380;
/// GICR_IPRIORITYR0..7 (SGI_base).
pub const GICR_IPRIORITYR: u64 = SGI_BASE + 0x0400;
/// GICR_ICFGR0 (SGI_base): SGIs, read-only edge.
pub const GICR_ICFGR0: u64 = SGI_BASE + 0x0c00;
/// GICR_ICFGR1 (SGI_base): PPIs.
pub const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;
/// GICR_IGRPMODR0 (SGI_base; RAZ/WI with DS = 1).
pub const GICR_IGRPMODR0: u64 = SGI_BASE + 0x0d00;
/// GICR_NSACR (SGI_base; RAZ/WI with DS = 1).
pub const GICR_NSACR: u64 = SGI_BASE + 0x0e00;

/// GICD_CTLR.EnableGrp0.
pub const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR.EnableGrp1 (EnableGrp1NS/Grp1A in the DS = 0 views; Linux sets both bits 0 and 1).
pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE (RAO/WI).
pub const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.DS (RAO/WI).
pub const CTLR_DS: u32 = 1 << 6;
/// GICD_IROUTER.Interrupt_Routing_Mode: 1-of-N.
pub const IROUTER_IRM: u64 = 1 << 31;
/// Implemented GICD_IROUTER bits: Aff3 `[39:32]`, IRM `[31]`, Aff2..Aff0 `[23:0]`.
pub const IROUTER_MASK: u64 = 0xff_80ff_ffff;
/// GICR_WAKER.ProcessorSleep.
pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_TYPER.Last: the highest redistributor of the region.
pub const GICR_TYPER_LAST: u64 = 1 << 4;

/// GICD_IIDR/GICR_IIDR: ProductID 'T' (0x54) `[31:24]`, Variant/Revision 0,
/// Implementer 0: matches none of the silicon errata keyed on IIDR.
const IIDR: u32 = 0x5400_0000;
/// GICD_TYPER.IDbits: INTIDs have 10 bits (IDbits + 1), no LPIs.
const TYPER_IDBITS: u32 = 9 << 19;
/// GICD_TYPER.A3V: Aff3 is supported in IROUTER and SGI1R.
const TYPER_A3V: u32 = 1 << 24;
/// GICD_TYPER.RSS: SGI1R.RS is honoured (Aff0 0..255 targetable).
const TYPER_RSS: u32 = 1 << 26;

/// Identification registers at 0xffd0..0x10000 (PIDR4..7, PIDR0..3, CIDR0..3).
fn id_reg(off: u64) -> u32 {
    match off {
        0xffd0 => 0x04,
        PIDR2 => 0x3b, // ArchRev 3 (GICv3), JEP106 used, Arm's JEP106 id [6:4].
        0xffe4 => 0xb0,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0,
    }
}

/// A register the decoder recognised, with what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    /// GICD_CTLR.
    DistCtlr,
    /// GICD_TYPER.
    DistTyper,
    /// GICD_IIDR / GICR_IIDR.
    Iidr,
    /// A one-bit-per-INTID register for INTIDs `first..first + 32` of bank `cpu`.
    Bits {
        reg: BitReg,
        op: BitOp,
        cpu: usize,
        first: u32,
    },
    /// IPRIORITYR word holding INTIDs `first..first + 4`.
    Priority { cpu: usize, first: u32 },
    /// ICFGR word holding INTIDs `first..first + 16`.
    Config { cpu: usize, first: u32 },
    /// `GICD_IROUTER<intid>`.
    Irouter { intid: u32 },
    /// GICR_TYPER of `cpu`.
    RedistTyper { cpu: usize },
    /// GICR_WAKER of `cpu`.
    Waker { cpu: usize },
    /// An identification register with this value.
    Id(u32),
    /// Defined, but RAZ/WI in this configuration; `bytes`: byte-accessible.
    RazWi { bytes: bool },
    /// Not a register: RAZ/WI, counted.
    Reserved,
}

impl Reg {
    /// The register's natural size in bytes.
    fn size(self) -> u8 {
        match self {
            Reg::Irouter { .. } | Reg::RedistTyper { .. } => 8,
            Reg::Reserved => 8,
            _ => 4,
        }
    }

    /// Whether an access of `width` bytes is allowed.
    fn allows(self, width: u8) -> bool {
        match self {
            Reg::Priority { .. } | Reg::RazWi { bytes: true } => matches!(width, 1 | 4),
            Reg::Irouter { .. } | Reg::RedistTyper { .. } => matches!(width, 4 | 8),
            Reg::Reserved => true,
            _ => width == 4,
        }
    }
}

/// One bit-per-INTID register family: offset of the block, what it holds, how writes apply.
const BIT_BLOCKS: [(u64, BitReg, BitOp); 7] = [
    (GICD_IGROUPR, BitReg::Group, BitOp::Assign),
    (GICD_ISENABLER, BitReg::Enable, BitOp::Set),
    (GICD_ICENABLER, BitReg::Enable, BitOp::Clear),
    (GICD_ISPENDR, BitReg::Pending, BitOp::Set),
    (GICD_ICPENDR, BitReg::Pending, BitOp::Clear),
    (GICD_ISACTIVER, BitReg::Active, BitOp::Set),
    (GICD_ICACTIVER, BitReg::Active, BitOp::Clear),
];

/// Decode `off` in `frame` (the frame index is already validated).
fn classify(frame: Frame, off: u64) -> Reg {
    match frame {
        Frame::Dist => classify_dist(off),
        Frame::Redist(cpu) if off < SGI_BASE => classify_rd(cpu, off),
        Frame::Redist(cpu) => classify_sgi(cpu, off - SGI_BASE),
        Frame::CpuDist(_) => Reg::Reserved,
    }
}

fn classify_dist(off: u64) -> Reg {
    // Every block covers INTIDs from 0; the first word/bytes (SGIs and
    // PPIs) belong to the redistributors while ARE = 1.
    let word = off & !3;
    match off {
        GICD_CTLR => Reg::DistCtlr,
        GICD_TYPER => Reg::DistTyper,
        GICD_IIDR => Reg::Iidr,
        GICD_TYPER2 | GICD_STATUSR => Reg::RazWi { bytes: false },
        GICD_IGROUPR..GICD_IPRIORITYR => {
            let (base, reg, op) = BIT_BLOCKS[((off - GICD_IGROUPR) / 0x80) as usize];
            let first = ((word - base) * 8) as u32;
            if first < PRIVATE_INTIDS {
                Reg::RazWi { bytes: false }
            } else {
                Reg::Bits {
                    reg,
                    op,
                    cpu: 0,
                    first,
                }
            }
        }
        GICD_IPRIORITYR..GICD_ITARGETSR => {
            let first = (word - GICD_IPRIORITYR) as u32;
            if first < PRIVATE_INTIDS {
                Reg::RazWi { bytes: true }
            } else {
                Reg::Priority { cpu: 0, first }
            }
        }
        GICD_ITARGETSR..GICD_ICFGR => Reg::RazWi { bytes: true },
        GICD_ICFGR..GICD_IGRPMODR => {
            let first = ((word - GICD_ICFGR) * 4) as u32;
            if first < PRIVATE_INTIDS {
                Reg::RazWi { bytes: false }
            } else {
                Reg::Config { cpu: 0, first }
            }
        }
        0x0d00..0x0d80 | 0x0e00..0x0f00 | GICD_SGIR => Reg::RazWi { bytes: false },
        GICD_CPENDSGIR..0x0f30 => Reg::RazWi { bytes: true },
        0x6100..0x7fe0 => Reg::Irouter {
            intid: ((off - GICD_IROUTER) / 8) as u32,
        },
        ID_REGS..0x1_0000 => Reg::Id(id_reg(word)),
        _ => Reg::Reserved,
    }
}

fn classify_rd(cpu: usize, off: u64) -> Reg {
    match off {
        GICR_CTLR | GICR_STATUSR | GICR_SYNCR => Reg::RazWi { bytes: false },
        GICR_IIDR => Reg::Iidr,
        GICR_TYPER..0x0010 => Reg::RedistTyper { cpu },
        GICR_WAKER => Reg::Waker { cpu },
        ID_REGS..0x1_0000 => Reg::Id(id_reg(off & !3)),
        _ => Reg::Reserved,
    }
}

/// `off` is relative to SGI_base.
fn classify_sgi(cpu: usize, off: u64) -> Reg {
    let full = off + SGI_BASE;
    match full {
        GICR_IGROUPR0 | GICR_ISENABLER0 | GICR_ICENABLER0 | GICR_ISPENDR0 | GICR_ICPENDR0
        | GICR_ISACTIVER0 | GICR_ICACTIVER0 => {
            let (_, reg, op) = BIT_BLOCKS[((off - GICD_IGROUPR) / 0x80) as usize];
            Reg::Bits {
                reg,
                op,
                cpu,
                first: 0,
            }
        }
        GICR_IPRIORITYR..0x1_0420 => Reg::Priority {
            cpu,
            first: (full - GICR_IPRIORITYR) as u32 & !3,
        },
        GICR_ICFGR0 => Reg::Config { cpu, first: 0 },
        GICR_ICFGR1 => Reg::Config { cpu, first: 16 },
        GICR_IGRPMODR0 | GICR_NSACR => Reg::RazWi { bytes: false },
        _ => Reg::Reserved,
    }
}

impl Vgic {
    /// A validated read (width 1/2/4/8, aligned, frame exists).
    pub(super) fn v3_read(&mut self, frame: Frame, off: u64, width: u8) -> Result<u64, MmioError> {
        let reg = classify(frame, off);
        if !reg.allows(width) {
            return Err(MmioError::BadWidth);
        }
        if reg == Reg::Reserved {
            self.note_reserved();
            return Ok(0);
        }
        let size = u64::from(reg.size());
        let shift = 8 * (off & (size - 1));
        Ok((self.read_reg(reg) >> shift) & super::width_mask(width))
    }

    /// A validated write of `value` (already masked to `width`).
    pub(super) fn v3_write(
        &mut self,
        frame: Frame,
        off: u64,
        width: u8,
        value: u64,
    ) -> Result<u32, MmioError> {
        let reg = classify(frame, off);
        if !reg.allows(width) {
            return Err(MmioError::BadWidth);
        }
        let lane = off & (u64::from(reg.size()) - 1);
        let kick = match reg {
            Reg::DistCtlr => {
                let before = (self.table.enable_grp0, self.table.enable_grp1);
                self.table.enable_grp0 = value as u32 & CTLR_ENABLE_GRP0 != 0;
                self.table.enable_grp1 = value as u32 & CTLR_ENABLE_GRP1 != 0;
                if before == (self.table.enable_grp0, self.table.enable_grp1) {
                    0
                } else {
                    self.kick_all()
                }
            }
            Reg::Bits {
                reg,
                op,
                cpu,
                first,
            } => self.table.write_bits(reg, op, cpu, first, value as u32),
            Reg::Priority { cpu, first } => (0..u32::from(width))
                .map(|i| {
                    let byte = (value >> (8 * i)) as u8;
                    self.table.set_priority(cpu, first + lane as u32 + i, byte)
                })
                .fold(0, |m, k| m | k),
            Reg::Config { cpu, first } => (0..16)
                .map(|i| {
                    self.table
                        .set_config(cpu, first + i, (value as u32 >> (2 * i)) & 3)
                })
                .fold(0, |m, k| m | k),
            Reg::Irouter { intid } => self.write_irouter(intid, lane, width, value),
            Reg::Waker { cpu } => {
                if let Some(r) = self.redist.get_mut(cpu) {
                    r.sleep = value as u32 & WAKER_PROCESSOR_SLEEP != 0;
                }
                0
            }
            Reg::Reserved => {
                self.note_reserved();
                0
            }
            Reg::DistTyper
            | Reg::Iidr
            | Reg::RedistTyper { .. }
            | Reg::Id(_)
            | Reg::RazWi { .. } => 0,
        };
        Ok(kick)
    }

    pub(super) fn note_reserved(&mut self) {
        self.stats.reserved_accesses = self.stats.reserved_accesses.wrapping_add(1);
    }

    /// The whole register (natural size).
    fn read_reg(&self, reg: Reg) -> u64 {
        let t = &self.table;
        let value = match reg {
            Reg::DistCtlr => {
                let grp0 = if t.enable_grp0 { CTLR_ENABLE_GRP0 } else { 0 };
                let grp1 = if t.enable_grp1 { CTLR_ENABLE_GRP1 } else { 0 };
                grp0 | grp1 | CTLR_ARE | CTLR_DS
            }
            Reg::DistTyper => {
                let it_lines = t.intid_limit() / 32 - 1;
                let cpus = (self.vcpus().min(MAX_VCPUS) as u32 - 1) << 5;
                it_lines | cpus | TYPER_IDBITS | TYPER_A3V | TYPER_RSS
            }
            Reg::Iidr => IIDR,
            Reg::Bits {
                reg, cpu, first, ..
            } => t.read_bits(reg, cpu, first),
            Reg::Priority { cpu, first } => (0..4).fold(0, |w, i| {
                w | u32::from(t.priority(cpu, first + i)) << (8 * i)
            }),
            Reg::Config { cpu, first } => {
                (0..16).fold(0, |w, i| w | t.config(cpu, first + i) << (2 * i))
            }
            Reg::Irouter { intid } => {
                return self
                    .irouter
                    .get((intid - PRIVATE_INTIDS) as usize)
                    .filter(|_| intid < t.intid_limit())
                    .copied()
                    .unwrap_or(0);
            }
            Reg::RedistTyper { cpu } => {
                let m = self.mpidr[cpu];
                let affinity = (m >> 32 & 0xff) << 24 | (m & 0xff_ffff);
                let last = if cpu + 1 == self.vcpus() {
                    GICR_TYPER_LAST
                } else {
                    0
                };
                return affinity << 32 | (cpu as u64) << 8 | last;
            }
            Reg::Waker { cpu } => {
                let sleep = self.redist.get(cpu).is_some_and(|r| r.sleep);
                if sleep {
                    WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
                } else {
                    0
                }
            }
            Reg::Id(v) => v,
            Reg::RazWi { .. } | Reg::Reserved => 0,
        };
        u64::from(value)
    }

    /// Write bytes `lane..lane + width` of `IROUTER<intid>` and re-route.
    fn write_irouter(&mut self, intid: u32, lane: u64, width: u8, value: u64) -> u32 {
        if intid >= self.table.intid_limit() {
            return 0;
        }
        let Some(&old) = self.irouter.get((intid - PRIVATE_INTIDS) as usize) else {
            return 0;
        };
        let shift = 8 * lane;
        let mask = super::width_mask(width) << shift;
        let new = ((old & !mask) | (value << shift)) & IROUTER_MASK;
        self.irouter[(intid - PRIVATE_INTIDS) as usize] = new;
        let route = self.route_mask(new);
        self.table.set_targets(intid, route)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lr::{Backing, IchLr, ListReg, LrFormat, LrState};
    use super::super::{MAX_LRS, VgicLayout};
    use super::*;

    const SPIS: u32 = 64;

    fn vm(n: usize) -> Vgic {
        let mpidrs: [u64; MAX_VCPUS] = core::array::from_fn(|i| 0x8000_0000 | (i as u64) << 8);
        Vgic::try_new(&mpidrs[..n], SPIS, VgicLayout::QEMU_VIRT).unwrap()
    }

    fn rd(g: &mut Vgic, f: Frame, off: u64, w: u8) -> u64 {
        g.mmio_read(f, off, w).unwrap()
    }

    fn wr(g: &mut Vgic, f: Frame, off: u64, w: u8, v: u64) {
        g.mmio_write(f, off, w, v).unwrap();
    }

    /// Linux 6.12 irq-gic-v3 probe + gic_dist_init + gic_cpu_init + PPI enable leaves the expected state.
    #[test]
    fn linux_init_sequence() {
        let mut g = vm(2);
        let d = Frame::Dist;
        // Probe.
        assert_eq!(rd(&mut g, d, PIDR2, 4) & 0xf0, 0x30);
        let typer = rd(&mut g, d, GICD_TYPER, 4);
        assert_eq!(
            (typer & 0x1f) + 1,
            u64::from(SPIS + 32) / 32,
            "ITLinesNumber"
        );
        assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
        assert_eq!(typer & (1 << 17 | 1 << 16), 0, "no LPIs, no MBIS");
        assert_eq!(rd(&mut g, d, GICD_TYPER2, 4), 0);
        // gic_dist_init.
        wr(&mut g, d, GICD_CTLR, 4, 0);
        assert_eq!(rd(&mut g, d, GICD_CTLR, 4) >> 31, 0, "RWP clear");
        for i in (32..96).step_by(32) {
            wr(&mut g, d, GICD_IGROUPR + i / 8, 4, 0xffff_ffff);
        }
        for i in (32..96).step_by(16) {
            wr(&mut g, d, GICD_ICFGR + i / 4, 4, 0);
        }
        for i in (32..96).step_by(4) {
            wr(&mut g, d, GICD_IPRIORITYR + i, 4, 0xc0c0_c0c0);
        }
        for i in (32..96).step_by(32) {
            wr(&mut g, d, GICD_ICACTIVER + i / 8, 4, 0xffff_ffff);
            wr(&mut g, d, GICD_ICENABLER + i / 8, 4, 0xffff_ffff);
        }
        wr(&mut g, d, GICD_CTLR, 4, 0b11 | u64::from(CTLR_ARE));
        assert_eq!(
            rd(&mut g, d, GICD_CTLR, 4),
            0b11 | u64::from(CTLR_ARE | CTLR_DS)
        );
        for i in 32..96 {
            wr(&mut g, d, GICD_IROUTER + i * 8, 8, 0x100); // vCPU 1 boots Linux here.
        }
        // gic_cpu_init on each CPU.
        for cpu in 0..2 {
            let r = Frame::Redist(cpu);
            assert_eq!(rd(&mut g, r, PIDR2, 4) & 0xf0, 0x30);
            let typer = rd(&mut g, r, GICR_TYPER, 8);
            assert_eq!(typer >> 32, (cpu as u64) << 8, "Affinity_Value");
            assert_eq!((typer >> 8) & 0xffff, cpu as u64, "Processor_Number");
            assert_eq!(typer & GICR_TYPER_LAST != 0, cpu == 1, "Last");
            let waker = rd(&mut g, r, GICR_WAKER, 4);
            wr(
                &mut g,
                r,
                GICR_WAKER,
                4,
                waker & !u64::from(WAKER_PROCESSOR_SLEEP),
            );
            assert_eq!(
                rd(&mut g, r, GICR_WAKER, 4) & u64::from(WAKER_CHILDREN_ASLEEP),
                0
            );
            wr(&mut g, r, GICR_IGROUPR0, 4, 0xffff_ffff);
            wr(&mut g, r, GICR_ICACTIVER0, 4, 0xffff_ffff);
            wr(&mut g, r, GICR_ICENABLER0, 4, 0xffff_ffff);
            for i in (0..32).step_by(4) {
                wr(&mut g, r, GICR_IPRIORITYR + i, 4, 0xc0c0_c0c0);
            }
            assert_eq!(rd(&mut g, r, GICR_CTLR, 4) & 1 << 3, 0, "RWP clear");
            // Timer PPI 27: level (already), enabled; IPI SGIs 0..7 enabled.
            let cfg = rd(&mut g, r, GICR_ICFGR1, 4);
            wr(&mut g, r, GICR_ICFGR1, 4, cfg & !(0b11 << 22));
            wr(&mut g, r, GICR_ISENABLER0, 4, 1 << 27 | 0xff);
        }
        // A device SPI (e.g. the UART, INTID 33) enabled.
        wr(&mut g, d, GICD_ISENABLER + 4, 4, 1 << 1);

        for cpu in 0..2 {
            for intid in 0..32 {
                let s = g.irq(cpu, intid).unwrap();
                assert!(s.group1);
                assert_eq!(s.priority, 0xc0);
                assert!(!s.active && !s.pending);
                assert_eq!(s.enabled, intid == 27 || intid < 8, "INTID {intid}");
                assert_eq!(s.edge, intid < 16);
            }
        }
        for intid in 32..96 {
            let s = g.irq(0, intid).unwrap();
            assert!(s.group1 && !s.edge && !s.active);
            assert_eq!(s.priority, 0xc0);
            assert_eq!(s.enabled, intid == 33);
            assert_eq!(s.targets, 0b10);
        }
        assert_eq!(rd(&mut g, d, GICD_ISENABLER + 4, 4), 0b10);
        assert_eq!(
            rd(&mut g, Frame::Redist(1), GICR_ISENABLER0, 4),
            1 << 27 | 0xff
        );
        assert_eq!(g.stats().reserved_accesses, 0);
        // And the timer then reaches vCPU 0.
        assert_eq!(g.set_level(27, Some(0), true), 1);
        let mut lrs = [0; 4];
        g.flush(0, &mut lrs);
        let lr = IchLr::decode(lrs[0]);
        assert_eq!((lr.vintid, lr.priority, lr.group1), (27, 0xc0, true));
    }

    /// A byte write to IPRIORITYR changes exactly one INTID's priority.
    #[test]
    fn ipriorityr_byte_write() {
        let mut g = vm(1);
        let word = GICD_IPRIORITYR + 40;
        wr(&mut g, Frame::Dist, word, 4, 0x1020_3040);
        wr(&mut g, Frame::Dist, word + 2, 1, 0xff);
        assert_eq!(
            rd(&mut g, Frame::Dist, word, 4),
            0x10f8_3040,
            "low 3 bits are RAZ/WI"
        );
        assert_eq!(rd(&mut g, Frame::Dist, word + 3, 1), 0x10);
        assert_eq!(g.irq(0, 42).unwrap().priority, 0xf8);
        let r = Frame::Redist(0);
        wr(&mut g, r, GICR_IPRIORITYR + 27, 1, 0xa0);
        assert_eq!(rd(&mut g, r, GICR_IPRIORITYR + 24, 4), 0xa0 << 24);
    }

    /// IROUTER takes 64-bit writes and 32-bit halves, keeping only implemented bits.
    #[test]
    fn irouter_widths() {
        let mut g = vm(2);
        let off = GICD_IROUTER + 8 * 40;
        wr(&mut g, Frame::Dist, off, 8, 0xffff_ffff_ffff_ffff);
        assert_eq!(rd(&mut g, Frame::Dist, off, 8), IROUTER_MASK);
        wr(&mut g, Frame::Dist, off, 4, 0x100);
        wr(&mut g, Frame::Dist, off + 4, 4, 0);
        assert_eq!(rd(&mut g, Frame::Dist, off, 8), 0x100);
        assert_eq!(rd(&mut g, Frame::Dist, off + 4, 4), 0);
        assert_eq!(g.irq(0, 40).unwrap().targets, 0b10);
        wr(&mut g, Frame::Dist, off + 4, 4, 0x7);
        assert_eq!(rd(&mut g, Frame::Dist, off, 8), 0x7_0000_0100);
        assert_eq!(g.irq(0, 40).unwrap().targets, 0, "Aff3 7 matches nobody");
        // IROUTER of SGIs/PPIs and beyond the SPI count: reserved / RAZ/WI.
        wr(&mut g, Frame::Dist, GICD_IROUTER + 8 * 5, 8, 0x100);
        assert_eq!(rd(&mut g, Frame::Dist, GICD_IROUTER + 8 * 5, 8), 0);
        wr(&mut g, Frame::Dist, GICD_IROUTER + 8 * 200, 8, 0x100);
        assert_eq!(rd(&mut g, Frame::Dist, GICD_IROUTER + 8 * 200, 8), 0);
    }

    /// GICR_TYPER reads as one doubleword or two words.
    #[test]
    fn gicr_typer_halves() {
        let mut g = vm(3);
        let r = Frame::Redist(2);
        let full = rd(&mut g, r, GICR_TYPER, 8);
        assert_eq!(rd(&mut g, r, GICR_TYPER, 4), full & 0xffff_ffff);
        assert_eq!(rd(&mut g, r, GICR_TYPER + 4, 4), full >> 32);
        assert_eq!(full >> 32, 0x200);
        assert_ne!(full & GICR_TYPER_LAST, 0);
        wr(&mut g, r, GICR_TYPER, 8, 0);
        assert_eq!(rd(&mut g, r, GICR_TYPER, 8), full, "read-only");
    }

    /// Unsupported sizes and misaligned accesses fail; nothing changes.
    #[test]
    fn bad_width_cases() {
        let mut g = vm(1);
        let d = Frame::Dist;
        assert_eq!(
            g.mmio_write(d, GICD_IPRIORITYR + 32, 2, 0xffff),
            Err(MmioError::BadWidth)
        );
        assert_eq!(
            g.mmio_read(d, GICD_IPRIORITYR + 32, 8),
            Err(MmioError::BadWidth)
        );
        assert_eq!(
            g.mmio_write(d, GICD_ISENABLER + 8, 8, u64::MAX),
            Err(MmioError::BadWidth)
        );
        assert_eq!(
            g.mmio_write(d, GICD_ISENABLER + 4, 1, 1),
            Err(MmioError::BadWidth)
        );
        assert_eq!(g.mmio_read(d, GICD_CTLR, 2), Err(MmioError::BadWidth));
        assert_eq!(
            g.mmio_write(d, GICD_IROUTER + 8 * 40, 2, 1),
            Err(MmioError::BadWidth)
        );
        assert_eq!(
            g.mmio_read(Frame::Redist(0), GICR_TYPER, 1),
            Err(MmioError::BadWidth)
        );
        assert_eq!(g.mmio_read(d, GICD_CTLR, 3), Err(MmioError::BadWidth));
        assert_eq!(g.mmio_read(d, GICD_CTLR, 16), Err(MmioError::BadWidth));
        assert_eq!(g.mmio_read(d, GICD_TYPER, 8), Err(MmioError::Misaligned));
        assert_eq!(
            g.mmio_read(d, GICD_IROUTER + 8 * 40 + 2, 4),
            Err(MmioError::Misaligned)
        );
        assert_eq!(
            g.mmio_read(Frame::Redist(1), GICR_WAKER, 4),
            Err(MmioError::NoSuchFrame)
        );
        assert!((32..96).all(|i| g.irq(0, i).is_some_and(|s| !s.enabled && s.priority == 0)));
    }

    /// Set/clear registers act on every written bit, and only those.
    #[test]
    fn set_clear_all_bits() {
        let mut g = vm(1);
        let d = Frame::Dist;
        wr(&mut g, d, GICD_ISENABLER + 4, 4, 0xffff_ffff);
        wr(&mut g, d, GICD_ICENABLER + 4, 4, 0x8000_0001);
        assert_eq!(rd(&mut g, d, GICD_ISENABLER + 4, 4), 0x7fff_fffe);
        assert_eq!(rd(&mut g, d, GICD_ICENABLER + 4, 4), 0x7fff_fffe);
        wr(&mut g, d, GICD_ISPENDR + 8, 4, 0xa5a5_a5a5);
        wr(&mut g, d, GICD_ICPENDR + 8, 4, 0x0000_00ff);
        assert_eq!(rd(&mut g, d, GICD_ICPENDR + 8, 4), 0xa5a5_a500);
        wr(&mut g, d, GICD_ISACTIVER + 4, 4, 0xffff_0000);
        wr(&mut g, d, GICD_ICACTIVER + 4, 4, 0x0f0f_0000);
        assert_eq!(rd(&mut g, d, GICD_ISACTIVER + 4, 4), 0xf0f0_0000);
        wr(&mut g, d, GICD_IGROUPR + 4, 4, 0x1234_5678);
        assert_eq!(rd(&mut g, d, GICD_IGROUPR + 4, 4), 0x1234_5678);
        // Beyond the implemented SPIs: RAZ/WI.
        wr(&mut g, d, GICD_ISENABLER + 12, 4, 0xffff_ffff);
        assert_eq!(rd(&mut g, d, GICD_ISENABLER + 12, 4), 0);
    }

    /// With ARE, the GICD copies of SGI/PPI registers are RAZ/WI.
    #[test]
    fn dist_private_copies_raz_wi() {
        let mut g = vm(1);
        let d = Frame::Dist;
        for off in [
            GICD_IGROUPR,
            GICD_ISENABLER,
            GICD_ISPENDR,
            GICD_ISACTIVER,
            GICD_ICFGR,
            GICD_ICFGR + 4,
        ] {
            wr(&mut g, d, off, 4, 0xffff_ffff);
            assert_eq!(rd(&mut g, d, off, 4), 0, "{off:#x}");
        }
        wr(&mut g, d, GICD_IPRIORITYR + 27, 1, 0x80);
        assert_eq!(rd(&mut g, d, GICD_IPRIORITYR + 24, 4), 0);
        wr(&mut g, d, GICD_ITARGETSR + 40, 1, 0xff);
        assert_eq!(rd(&mut g, d, GICD_ITARGETSR + 40, 1), 0);
        let s = g.irq(0, 27).unwrap();
        assert!(!s.enabled && !s.pending && s.priority == 0 && s.group1);
        assert_eq!(
            g.stats().reserved_accesses,
            0,
            "defined registers are not counted"
        );
    }

    /// ICFGR: SGIs read-only edge, PPIs and SPIs programmable; bit 0 of each field RES0.
    #[test]
    fn icfgr_semantics() {
        let mut g = vm(1);
        let r = Frame::Redist(0);
        wr(&mut g, r, GICR_ICFGR0, 4, 0);
        assert_eq!(rd(&mut g, r, GICR_ICFGR0, 4), 0xaaaa_aaaa);
        wr(&mut g, r, GICR_ICFGR1, 4, 0xffff_ffff);
        assert_eq!(rd(&mut g, r, GICR_ICFGR1, 4), 0xaaaa_aaaa);
        wr(&mut g, Frame::Dist, GICD_ICFGR + 8, 4, 0b10 << 6);
        assert!(g.irq(0, 35).unwrap().edge);
        assert!(!g.irq(0, 34).unwrap().edge);
    }

    /// GICR_WAKER: ProcessorSleep is writable and ChildrenAsleep follows it.
    #[test]
    fn waker_follows_sleep() {
        let mut g = vm(1);
        let r = Frame::Redist(0);
        assert_eq!(rd(&mut g, r, GICR_WAKER, 4), 0b110, "asleep at reset");
        wr(&mut g, r, GICR_WAKER, 4, 0);
        assert_eq!(rd(&mut g, r, GICR_WAKER, 4), 0);
        wr(&mut g, r, GICR_WAKER, 4, 0b10);
        assert_eq!(rd(&mut g, r, GICR_WAKER, 4), 0b110);
    }

    /// Reserved offsets are RAZ/WI at any size and counted.
    #[test]
    fn reserved_counted() {
        let mut g = vm(1);
        for (f, off, w) in [
            (Frame::Dist, 0x20, 4),
            (Frame::Dist, 0x8000, 8),
            (Frame::Redist(0), 0x70, 8),
            (Frame::Redist(0), 0x1_0084, 2),
        ] {
            assert_eq!(g.mmio_read(f, off, w), Ok(0));
            assert_eq!(g.mmio_write(f, off, w, u64::MAX), Ok(0));
        }
        assert_eq!(g.stats().reserved_accesses, 8);
    }

    /// Identification registers: GICv3 ArchRev and the CoreSight component ID.
    #[test]
    fn id_registers() {
        let mut g = vm(1);
        for f in [Frame::Dist, Frame::Redist(0)] {
            assert_eq!(rd(&mut g, f, PIDR2, 4), 0x3b);
            assert_eq!(rd(&mut g, f, 0xfff0, 4), 0x0d);
            assert_eq!(rd(&mut g, f, 0xfffc, 4), 0xb1);
        }
    }

    /// Deterministic xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// No LR set holds an INTID twice, no SPI sits in two vCPUs' LRs, and the model agrees.
    fn check_lrs(g: &Vgic, live: &[Option<[u64; MAX_LRS]>]) {
        let mut spi_seen = [false; 1024];
        for (v, lrs) in live.iter().enumerate() {
            let Some(lrs) = lrs else { continue };
            let mut private_seen = [false; 32];
            for lr in lrs
                .iter()
                .map(|&r| IchLr::decode(r))
                .filter(|l| l.state != LrState::Invalid)
            {
                let seen = if lr.vintid < 32 {
                    &mut private_seen[lr.vintid as usize]
                } else {
                    &mut spi_seen[lr.vintid as usize]
                };
                assert!(!*seen, "INTID {} twice", lr.vintid);
                *seen = true;
                assert_eq!(g.irq(v, lr.vintid).unwrap().in_lr, Some(v));
            }
        }
    }

    /// Random frames, offsets, widths, values, injections and LR traffic never
    /// panic or break LR invariants; the candidate sets always equal a full
    /// scan, and flush/has_deliverable agree with the full-scan reference.
    #[test]
    fn hammer() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut g = vm(4);
        let mut live: [Option<[u64; MAX_LRS]>; 4] = [None; 4];
        let mut placed = 0;
        wr(&mut g, Frame::Dist, GICD_CTLR, 4, 3);
        for n in 1..3 {
            wr(&mut g, Frame::Dist, GICD_ISENABLER + 4 * n, 4, 0xffff_ffff);
        }
        for v in 0..4 {
            wr(&mut g, Frame::Redist(v), GICR_ISENABLER0, 4, 0xffff_ffff);
        }
        let widths = [0u8, 1, 2, 3, 4, 5, 8, 16, 255];
        let hot = [
            0u64, 4, 8, 0xc, 0x10, 0x14, 0x80, 0x100, 0x200, 0x380, 0x400, 0x41c, 0x800, 0xc00,
            0xc04, 0xd00, 0xf00, 0x6100, 0x7fd8, 0xffe8,
        ];
        for _ in 0..50_000 {
            let frame = match rng.below(6) {
                0 | 1 => Frame::Dist,
                n => Frame::Redist(n as usize - 2 + rng.below(2) as usize * 2),
            };
            let off = match rng.below(3) {
                0 => rng.below(0x2_2000),
                1 => {
                    hot[rng.below(hot.len() as u64) as usize]
                        + rng.below(2) * SGI_BASE
                        + rng.below(8)
                }
                _ => rng.next(),
            };
            let width = widths[rng.below(widths.len() as u64) as usize];
            let value = rng.next();
            let vcpu = rng.below(5) as usize;
            match rng.below(10) {
                0..=2 => {
                    let _ = g.mmio_read(frame, off, width);
                }
                3..=5 => {
                    let kick = g.mmio_write(frame, off, width, value).unwrap_or(0);
                    assert_eq!(kick >> 4, 0);
                }
                6 => {
                    let intid = rng.below(1100) as u32;
                    let v = if rng.below(4) == 0 { None } else { Some(vcpu) };
                    let kick = if value & 1 == 0 {
                        g.inject(intid, v)
                    } else {
                        g.set_level(intid, v, value & 2 != 0)
                    };
                    assert_eq!(kick >> 4, 0);
                }
                7 => {
                    assert_eq!(g.sgi1r_write(vcpu, value) >> 4, 0);
                }
                8 if vcpu < 4 => {
                    let mut lrs = [0; MAX_LRS];
                    let n = rng.below(MAX_LRS as u64 + 1) as usize;
                    // The candidate sets fill exactly what the full scan would.
                    let mut reference = g.clone();
                    let mut expect = [0; MAX_LRS];
                    let more = reference.flush_by_scan(vcpu, &mut expect[..n]);
                    assert_eq!(g.flush(vcpu, &mut lrs[..n]), more);
                    assert_eq!(lrs, expect);
                    placed += lrs.iter().filter(|&&r| r != 0).count();
                    live[vcpu] = Some(lrs);
                    check_lrs(&g, &live);
                }
                _ if vcpu < 4 => {
                    // The guest changes LR states arbitrarily (sometimes garbage).
                    let mut lrs = live[vcpu].take().unwrap_or([0; MAX_LRS]);
                    for lr in lrs.iter_mut() {
                        *lr = if rng.below(8) == 0 {
                            rng.next()
                        } else {
                            let state = [
                                LrState::Invalid,
                                LrState::Pending,
                                LrState::Active,
                                LrState::PendingActive,
                            ][rng.below(4) as usize];
                            IchLr::encode(&ListReg {
                                state,
                                ..IchLr::decode(*lr)
                            })
                        };
                    }
                    g.sync(vcpu, &lrs[..rng.below(MAX_LRS as u64 + 1) as usize]);
                }
                _ => {
                    let _ = g.has_deliverable(vcpu);
                    g.sync(vcpu, &[]);
                }
            }
            g.table.assert_queued_consistent();
            for v in 0..5 {
                assert_eq!(g.has_deliverable(v), g.has_deliverable_by_scan(v));
            }
        }
        assert!(
            placed > 1000,
            "the hammer must exercise the LR path ({placed})"
        );
        // Drain: everything settles back into the model.
        for v in 0..4 {
            g.sync(v, &[]);
            assert!(g.irq(v, 27).is_some_and(|s| s.in_lr.is_none()));
        }
    }

    /// Like [`hammer`], but every operation is a valid state change (mostly
    /// implemented INTIDs, the state-changing registers, level toggles, LR
    /// traffic), so the candidate sets meet every kind of transition: after
    /// each one they must equal a full scan, and flush/has_deliverable the
    /// full-scan reference.
    #[test]
    fn hammer_candidate_sets() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut g = vm(4);
        let mut live: [Option<[u64; MAX_LRS]>; 4] = [None; 4];
        let mut placed = 0;
        let bit_regs = [
            GICD_IGROUPR,
            GICD_ISENABLER,
            GICD_ICENABLER,
            GICD_ISPENDR,
            GICD_ICPENDR,
            GICD_ISACTIVER,
            GICD_ICACTIVER,
        ];
        for _ in 0..50_000 {
            let v = rng.below(4) as usize;
            let intid = if rng.below(16) == 0 {
                rng.below(1100) as u32
            } else {
                rng.below(u64::from(32 + SPIS)) as u32
            };
            // Sparse bit patterns, so set/clear words touch a few INTIDs.
            let sparse = (rng.next() & rng.next() & rng.next()) as u32;
            match rng.below(16) {
                0 | 1 if intid >= 32 && rng.below(2) == 0 => {
                    // A passthrough SPI: at most one assertion per physical activation.
                    if !g.irq(0, intid).is_some_and(|s| s.hw_active) {
                        g.inject_hw(intid, intid);
                    }
                    if rng.below(4) == 0 {
                        g.take_released(|p| assert!((32..32 + SPIS).contains(&p)));
                    }
                }
                0 | 1 => {
                    g.inject(intid, Some(v).filter(|_| intid < 32));
                }
                2..=4 => {
                    g.set_level(intid, Some(v), rng.below(2) == 0);
                }
                5 => {
                    g.sgi1r_write(v, rng.below(16) << 24 | rng.below(2) << 40 | rng.below(16));
                }
                6 | 7 => {
                    let block = bit_regs[rng.below(7) as usize];
                    if rng.below(2) == 0 {
                        wr(&mut g, Frame::Redist(v), block + SGI_BASE, 4, sparse.into());
                    } else {
                        let word = 4 * (1 + rng.below(u64::from(SPIS / 32)));
                        wr(&mut g, Frame::Dist, block + word, 4, sparse.into());
                    }
                }
                8 => {
                    let field = rng.below(4) << (2 * rng.below(16));
                    if rng.below(2) == 0 {
                        wr(&mut g, Frame::Redist(v), GICR_ICFGR1, 4, field);
                    } else {
                        let word = 4 * (2 + rng.below(u64::from(SPIS / 16)));
                        wr(&mut g, Frame::Dist, GICD_ICFGR + word, 4, field);
                    }
                }
                9 => {
                    let prio = rng.below(256);
                    if intid < 32 {
                        wr(
                            &mut g,
                            Frame::Redist(v),
                            GICR_IPRIORITYR + u64::from(intid),
                            1,
                            prio,
                        );
                    } else if intid < 32 + SPIS {
                        wr(
                            &mut g,
                            Frame::Dist,
                            GICD_IPRIORITYR + u64::from(intid),
                            1,
                            prio,
                        );
                    }
                }
                10 if (32..32 + SPIS).contains(&intid) => {
                    let route = match rng.below(3) {
                        0 => IROUTER_IRM,
                        _ => rng.below(5) << 8,
                    };
                    wr(
                        &mut g,
                        Frame::Dist,
                        GICD_IROUTER + 8 * u64::from(intid),
                        8,
                        route,
                    );
                }
                11 if rng.below(8) == 0 => {
                    wr(&mut g, Frame::Dist, GICD_CTLR, 4, rng.below(4));
                }
                12 | 13 => {
                    let mut lrs = [0; MAX_LRS];
                    let n = rng.below(5) as usize;
                    let mut reference = g.clone();
                    let mut expect = [0; MAX_LRS];
                    let more = reference.flush_by_scan(v, &mut expect[..n]);
                    assert_eq!(g.flush(v, &mut lrs[..n]), more);
                    assert_eq!(lrs, expect);
                    for lr in lrs.iter().map(|&r| IchLr::decode(r)) {
                        if matches!(lr.backing, Backing::Hardware { .. }) {
                            assert_ne!(lr.state, LrState::PendingActive, "{lr:?}");
                        }
                    }
                    placed += lrs.iter().filter(|&&r| r != 0).count();
                    live[v] = Some(lrs);
                    check_lrs(&g, &live);
                }
                _ => {
                    let mut lrs = live[v].take().unwrap_or([0; MAX_LRS]);
                    for lr in lrs.iter_mut().filter(|lr| **lr != 0) {
                        let state = [
                            LrState::Invalid,
                            LrState::Pending,
                            LrState::Active,
                            LrState::PendingActive,
                        ][rng.below(4) as usize];
                        *lr = IchLr::encode(&ListReg {
                            state,
                            ..IchLr::decode(*lr)
                        });
                    }
                    g.sync(v, &lrs);
                }
            }
            g.table.assert_queued_consistent();
            for v in 0..4 {
                assert_eq!(g.has_deliverable(v), g.has_deliverable_by_scan(v));
            }
        }
        assert!(placed > 5000, "the LR path must be exercised ({placed})");
    }
}
