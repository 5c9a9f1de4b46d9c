//! GIC register maps and the CPU-interface register formats the RTOS uses.
//!
//! GICv3: the distributor and redistributors are MMIO (`GicdRegs`, `GicrRegs`); the CPU
//! interface is reached through system registers (`ICC_*_EL1`, accessed in `arch::gic`).
//! Under Tandem the same accesses go to the hypervisor's emulated distributor/redistributor
//! and, for `ICC_*`, to the virtual CPU interface (`ICV_*`) with no trap. Spec: Arm IHI 0069.
//!
//! GICv2 (a GIC-400, QEMU `gic-version=2`): distributor and CPU interface are both MMIO
//! (`GicdV2Regs`, `GiccRegs`). Under Tandem the distributor is emulated and the CPU
//! interface is the hardware's virtual one (GICV), mapped where the guest expects GICC.
//! Spec: Arm IHI 0048B.
#![forbid(unsafe_code)]

use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Distributor control register (GICD_CTLR), as seen by the (non-secure) guest. With a
    /// single security state (QEMU virt without `secure=on`) bit 0 is EnableGrp0 and bit 1
    /// EnableGrp1; seen from non-secure with two states, bit 0 is EnableGrp1NS and bit 1
    /// EnableGrp1A. Setting bits 0, 1 and 4 enables group 1 with affinity routing either way
    /// (what Linux writes).
    pub(crate) GICD_CTLR [
        /// Register write pending: earlier writes have not yet taken effect.
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing enable (ARE_NS in the non-secure view).
        ARE_NS OFFSET(4) NUMBITS(1) [],
        /// EnableGrp1A (two security states) or EnableGrp1 (one).
        ENABLE_G1A OFFSET(1) NUMBITS(1) [],
        /// EnableGrp1NS (two security states) or EnableGrp0 (one).
        ENABLE_G1 OFFSET(0) NUMBITS(1) []
    ],
    /// Redistributor power management (GICR_WAKER).
    pub(crate) GICR_WAKER [
        /// The interface to the connected PE is quiescent.
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        /// The PE is (1) or is not (0) asleep as far as the redistributor is concerned.
        ProcessorSleep OFFSET(1) NUMBITS(1) []
    ],
    /// Redistributor control (GICR_CTLR).
    pub(crate) GICR_CTLR [
        /// Register write pending.
        RWP OFFSET(3) NUMBITS(1) []
    ]
}

register_bitfields! {u64,
    /// Redistributor type (GICR_TYPER).
    pub(crate) GICR_TYPER [
        /// MPIDR affinity of the PE this redistributor serves: Aff3.Aff2.Aff1.Aff0.
        Affinity OFFSET(32) NUMBITS(32) [],
        /// This is the last redistributor in the contiguous region.
        Last OFFSET(4) NUMBITS(1) []
    ],
    /// Generate a group-1 SGI (ICC_SGI1R_EL1).
    pub(crate) ICC_SGI1R_EL1 [
        /// Aff3 of the target cluster.
        Aff3 OFFSET(48) NUMBITS(8) [],
        /// Range selector: TargetList bit n means Aff0 = RS*16 + n.
        RS OFFSET(44) NUMBITS(4) [],
        /// Interrupt routing mode: 1 = every PE but the sender.
        IRM OFFSET(40) NUMBITS(1) [],
        /// Aff2 of the target cluster.
        Aff2 OFFSET(32) NUMBITS(8) [],
        /// The SGI number (0..=15).
        INTID OFFSET(24) NUMBITS(4) [],
        /// Aff1 of the target cluster.
        Aff1 OFFSET(16) NUMBITS(8) [],
        /// One bit per target PE, by Aff0 within the range.
        TargetList OFFSET(0) NUMBITS(16) []
    ],
    /// System register enable (ICC_SRE_EL1).
    pub(crate) ICC_SRE_EL1 [
        /// Disable IRQ bypass.
        DIB OFFSET(2) NUMBITS(1) [],
        /// Disable FIQ bypass.
        DFB OFFSET(1) NUMBITS(1) [],
        /// Use the system-register interface (required: the memory-mapped GICC is not used).
        SRE OFFSET(0) NUMBITS(1) []
    ],
    /// Group 1 interrupt enable (ICC_IGRPEN1_EL1).
    pub(crate) ICC_IGRPEN1_EL1 [
        /// Group 1 interrupts are signalled to this PE.
        Enable OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt acknowledge (ICC_IAR1_EL1).
    pub(crate) ICC_IAR1_EL1 [
        /// The acknowledged interrupt (1020..=1023 are special: nothing pending).
        INTID OFFSET(0) NUMBITS(24) []
    ]
}

register_structs! {
    /// The distributor (GICD), as far as this guest uses it.
    pub(crate) GicdRegs {
        /// Control.
        (0x0000 => pub(crate) ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        /// Type (number of SPIs, security, …).
        (0x0004 => pub(crate) typer: ReadOnly<u32>),
        /// Implementer identification.
        (0x0008 => pub(crate) iidr: ReadOnly<u32>),
        (0x000C => _reserved0),
        /// Interrupt group, one bit per INTID (SPIs from word 1).
        (0x0080 => pub(crate) igroupr: [ReadWrite<u32>; 32]),
        /// Set-enable, one bit per INTID.
        (0x0100 => pub(crate) isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => _reserved1),
        /// Priority, one byte per INTID.
        (0x0400 => pub(crate) ipriorityr: [ReadWrite<u8>; 1024]),
        (0x0800 => _reserved2),
        /// Trigger mode, two bits per INTID (bit 1 of each pair: edge).
        (0x0C00 => pub(crate) icfgr: [ReadWrite<u32>; 64]),
        (0x0D00 => _reserved3),
        /// Routing of SPI n (n ≥ 32) at index n: MPIDR affinity or "any".
        (0x6000 => pub(crate) irouter: [ReadWrite<u64>; 1020]),
        (0x7FE0 => @END),
    }
}

register_structs! {
    /// One CPU's redistributor: the RD_base frame, then the SGI_base frame 64 KiB above.
    pub(crate) GicrRegs {
        /// Control.
        (0x0_0000 => pub(crate) ctlr: ReadWrite<u32, GICR_CTLR::Register>),
        /// Implementer identification.
        (0x0_0004 => pub(crate) iidr: ReadOnly<u32>),
        /// Type: which PE this frame serves, last frame flag.
        (0x0_0008 => pub(crate) typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0_0010 => _reserved0),
        /// Power management.
        (0x0_0014 => pub(crate) waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0_0018 => _reserved1),
        /// SGI/PPI group (bit per INTID 0..=31).
        (0x1_0080 => pub(crate) igroupr0: ReadWrite<u32>),
        (0x1_0084 => _reserved2),
        /// SGI/PPI set-enable.
        (0x1_0100 => pub(crate) isenabler0: ReadWrite<u32>),
        (0x1_0104 => _reserved3),
        /// SGI/PPI clear-enable.
        (0x1_0180 => pub(crate) icenabler0: ReadWrite<u32>),
        (0x1_0184 => _reserved4),
        /// SGI/PPI clear-pending.
        (0x1_0280 => pub(crate) icpendr0: ReadWrite<u32>),
        (0x1_0284 => _reserved5),
        /// SGI/PPI priority, one byte per INTID.
        (0x1_0400 => pub(crate) ipriorityr: [ReadWrite<u8>; 32]),
        (0x1_0420 => _reserved6),
        /// PPI trigger mode (INTIDs 16..=31; 2 bits each, bit 1 = edge).
        (0x1_0C04 => pub(crate) icfgr1: ReadWrite<u32>),
        (0x1_0C08 => _reserved7),
        /// SGI/PPI group modifier (0 with group 1 = non-secure group 1).
        (0x1_0D00 => pub(crate) igrpmodr0: ReadWrite<u32>),
        (0x1_0D04 => _reserved8),
        (0x2_0000 => @END),
    }
}

register_structs! {
    /// The GICv2 distributor, as far as this guest uses it (the SGI/PPI registers are banked
    /// per CPU).
    pub(crate) GicdV2Regs {
        /// Control: bit 0 EnableGrp0 (EnableGrp1 in a non-secure view), bit 1 EnableGrp1.
        (0x000 => pub(crate) ctlr: ReadWrite<u32>),
        /// Type (number of SPIs, CPUs).
        (0x004 => pub(crate) typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        /// Interrupt group, one bit per INTID (0 = group 0, signalled as IRQ).
        (0x080 => pub(crate) igroupr: [ReadWrite<u32>; 32]),
        /// Set-enable, one bit per INTID.
        (0x100 => pub(crate) isenabler: [ReadWrite<u32>; 32]),
        /// Clear-enable, one bit per INTID.
        (0x180 => pub(crate) icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        /// Priority, one byte per INTID.
        (0x400 => pub(crate) ipriorityr: [ReadWrite<u8>; 1020]),
        (0x7FC => _reserved2),
        /// CPU targets, one byte per INTID (bytes 0..32 read this CPU's own mask).
        (0x800 => pub(crate) itargetsr: [ReadWrite<u8>; 1020]),
        (0xBFC => _reserved3),
        /// Trigger mode, two bits per INTID (bit 1 of each pair: edge).
        (0xC00 => pub(crate) icfgr: [ReadWrite<u32>; 64]),
        (0xD00 => _reserved5),
        /// Software-generated interrupts.
        (0xF00 => pub(crate) sgir: ReadWrite<u32>),
        (0xF04 => _reserved4),
        (0x1000 => @END),
    }
}

register_structs! {
    /// The GICv2 CPU interface (GICC; under Tandem, the hardware's GICV).
    pub(crate) GiccRegs {
        /// Control: bit 0 EnableGrp0 (or EnableGrp1 in a non-secure view).
        (0x000 => pub(crate) ctlr: ReadWrite<u32>),
        /// Priority mask.
        (0x004 => pub(crate) pmr: ReadWrite<u32>),
        /// Binary point.
        (0x008 => pub(crate) bpr: ReadWrite<u32>),
        /// Interrupt acknowledge: INTID `[9:0]`, source CPU of an SGI `[12:10]`.
        (0x00C => pub(crate) iar: ReadOnly<u32>),
        /// End of interrupt (write the IAR value back).
        (0x010 => pub(crate) eoir: ReadWrite<u32>),
        (0x014 => _reserved0),
        (0x1000 => @END),
    }
}

/// GICD_SGIR: send SGI `intid` to the CPUs in `targets` (bit n = CPU interface n):
/// TargetListFilter 0 (the list), CPUTargetList `[23:16]`, SGIINTID `[3:0]`.
pub const fn sgir(intid: u32, targets: u8) -> u32 {
    (targets as u32) << 16 | (intid & 0xF)
}

/// The INTID in a GICC_IAR value, or `None` for the special "nothing pending" IDs.
pub fn acknowledged_v2(iar: u32) -> Option<u32> {
    let intid = iar & 0x3FF;
    (!(INTID_SPURIOUS_FIRST..=1023).contains(&intid)).then_some(intid)
}

/// The interrupt priority given to the virtual timer (lower is more urgent).
pub const PRIO_TIMER: u8 = 0x80;
/// The interrupt priority of SGIs and the UART.
pub const PRIO_OTHER: u8 = 0xA0;
/// `ICC_PMR_EL1` value that lets every priority through.
pub const PMR_ALLOW_ALL: u64 = 0xFF;

/// First of the special INTIDs that mean "nothing to acknowledge".
pub const INTID_SPURIOUS_FIRST: u32 = 1020;

/// An affinity value as it appears in `MPIDR_EL1` (Aff3 in 39:32, Aff2..Aff0 in 23:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mpidr(pub u64);

impl Mpidr {
    /// The affinity levels `[aff0, aff1, aff2, aff3]`.
    pub const fn affinity(self) -> [u8; 4] {
        let v = self.0;
        [v as u8, (v >> 8) as u8, (v >> 16) as u8, (v >> 32) as u8]
    }

    /// The affinity packed as in `GICR_TYPER.Affinity` (Aff3.Aff2.Aff1.Aff0, 8 bits each).
    pub const fn gicr_affinity(self) -> u32 {
        let [a0, a1, a2, a3] = self.affinity();
        u32::from_le_bytes([a0, a1, a2, a3])
    }
}

/// The `ICC_SGI1R_EL1` value that sends SGI `intid` to the PE `target`.
pub fn sgi1r(intid: u32, target: Mpidr) -> u64 {
    let [a0, a1, a2, a3] = target.affinity();
    (ICC_SGI1R_EL1::INTID.val(u64::from(intid & 0xF))
        + ICC_SGI1R_EL1::Aff1.val(u64::from(a1))
        + ICC_SGI1R_EL1::Aff2.val(u64::from(a2))
        + ICC_SGI1R_EL1::Aff3.val(u64::from(a3))
        + ICC_SGI1R_EL1::RS.val(u64::from(a0 / 16))
        + ICC_SGI1R_EL1::TargetList.val(1 << (a0 % 16)))
    .value
}

/// The INTID in an `ICC_IAR1_EL1` value, or `None` for the special "nothing pending" IDs.
pub fn acknowledged(iar: u64) -> Option<u32> {
    let intid = ICC_IAR1_EL1::INTID.read(iar) as u32;
    (!(INTID_SPURIOUS_FIRST..=1023).contains(&intid)).then_some(intid)
}

/// `GICD_IROUTER` value that routes an SPI to the PE `target` (IRM = 0).
pub const fn irouter(target: Mpidr) -> u64 {
    target.0 & 0xFF_00FF_FFFF
}

/// `GICD_ICFGR<intid / 16>` with `intid` made edge-triggered.
pub const fn icfgr_edge(icfgr: u32, intid: u32) -> u32 {
    icfgr | 0b10 << ((intid % 16) * 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// The register blocks have the offsets of IHI 0069 §12.
    #[test]
    fn register_offsets_match_spec() {
        assert_eq!(offset_of!(GicdRegs, isenabler), 0x100);
        assert_eq!(offset_of!(GicdRegs, irouter), 0x6000);
        assert_eq!(offset_of!(GicdRegs, icfgr), 0x0C00);
        assert_eq!(offset_of!(GicrRegs, waker), 0x14);
        assert_eq!(offset_of!(GicrRegs, igroupr0), 0x1_0080);
        assert_eq!(offset_of!(GicrRegs, ipriorityr), 0x1_0400);
        assert_eq!(offset_of!(GicrRegs, icfgr1), 0x1_0C04);
        assert_eq!(size_of::<GicrRegs>(), 0x2_0000);
    }

    /// An SPI routed to a PE keeps only the affinity fields; edge is bit 1 of its pair.
    #[test]
    fn spi_routing_and_trigger() {
        assert_eq!(
            irouter(Mpidr(0x8000_0001)),
            1,
            "MPIDR bit 31 (RES1) dropped"
        );
        assert_eq!(irouter(Mpidr(0xAB_0001_0203)), 0xAB_0001_0203);
        assert_eq!(icfgr_edge(0, 37), 0b10 << 10);
        assert_eq!(icfgr_edge(0b01, 32), 0b11);
    }

    /// The GICv2 blocks have the offsets of IHI 0048B §4.1.
    #[test]
    fn v2_register_offsets_match_spec() {
        assert_eq!(offset_of!(GicdV2Regs, ipriorityr), 0x400);
        assert_eq!(offset_of!(GicdV2Regs, itargetsr), 0x800);
        assert_eq!(offset_of!(GicdV2Regs, sgir), 0xF00);
        assert_eq!(offset_of!(GiccRegs, iar), 0x0C);
        assert_eq!(offset_of!(GiccRegs, eoir), 0x10);
    }

    /// GICD_SGIR carries the target list and the SGI number; GICC_IAR's source bits are
    /// not part of the INTID.
    #[test]
    fn v2_sgir_and_iar() {
        assert_eq!(sgir(2, 0b10), 0x0002_0002);
        assert_eq!(acknowledged_v2(1 << 10 | 2), Some(2));
        assert_eq!(acknowledged_v2(1023), None);
    }

    /// SGI 1 to the PE with MPIDR 1 sets TargetList bit 1 and INTID 1.
    #[test]
    fn sgi1r_to_cpu1() {
        assert_eq!(sgi1r(1, Mpidr(1)), 0x0100_0002);
    }

    /// Higher affinity levels and the range selector land in their fields.
    #[test]
    fn sgi1r_affinity_fields() {
        let v = sgi1r(15, Mpidr(0x0000_0003_0002_0111));
        assert_eq!(
            v,
            (3 << 48) | (1 << 44) | (2 << 32) | (15 << 24) | (1 << 16) | 1 << 1
        );
    }

    /// The special INTIDs 1020..=1023 mean nothing was acknowledged.
    #[test]
    fn spurious_intids() {
        assert_eq!(acknowledged(27), Some(27));
        assert_eq!(acknowledged(1023), None);
        assert_eq!(acknowledged(1020), None);
        assert_eq!(acknowledged(1019), Some(1019));
    }

    /// MPIDR affinity packs into GICR_TYPER's layout.
    #[test]
    fn mpidr_to_gicr_affinity() {
        assert_eq!(Mpidr(0x8000_0001).gicr_affinity(), 1);
        assert_eq!(Mpidr(0x0000_0004_0003_0201).gicr_affinity(), 0x0403_0201);
    }
}
