//! The vGIC as a Tandem VM sees it. GICv3: distributor and redistributor offsets, and the
//! CPU interface's ICC_* system registers (hardware-virtualised, no trap except
//! ICC_SGI1R_EL1). GICv2 (on a GICv2 machine, [`version`]): the distributor (4 KiB, SGI/PPI
//! registers banked, SGIs through GICD_SGIR) and the CPU interface at [`GICC_BASE`], which
//! is the hardware's virtual CPU interface (no trap). The helpers below drive either.
//!
//! Layout (IPA): GICD at [`GICD_BASE`] (64 KiB); vCPU n's redistributor at
//! [`GICR_BASE`]` + n * `[`GICR_STRIDE`] — RD_base, then SGI_base at + [`SGI_FRAME`].
//! Offsets and fields are from the GICv3 architecture specification (IHI 0069, §12.8–12.11).
//! MMIO goes through [`Mmio`] with an explicit access width, because the width semantics
//! (byte writes to IPRIORITYR, doubleword reads of GICR_TYPER) are what the probe tests.
//! Each access is one plain `ldr`/`str`/`ldrb`/`strb` without base writeback, written in
//! `asm!` so the compiler cannot pick a form without an instruction syndrome (writeback,
//! pairs), which Tandem cannot emulate and answers by stopping the VM.

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

/// The emulated distributor's IPA.
pub const GICD_BASE: u64 = 0x0800_0000;
/// vCPU 0's redistributor (RD_base) IPA.
pub const GICR_BASE: u64 = 0x080A_0000;
/// Distance between consecutive vCPUs' redistributors (RD_base + SGI_base frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Offset of the SGI_base frame from RD_base.
pub const SGI_FRAME: u64 = 0x1_0000;
/// The GICv2 CPU interface's IPA (the hardware GICV behind it).
pub const GICC_BASE: u64 = 0x0801_0000;
/// INTIDs from here up (1020..=1023) are special: nothing to handle.
pub const INTID_SPURIOUS_FIRST: u32 = 1020;

/// Distributor registers (offsets from GICD_BASE) and fields.
pub mod gicd {
    /// GICD_CTLR: control.
    pub const CTLR: usize = 0x0000;
    /// GICD_CTLR.EnableGrp1 (EnableGrp1A in the Non-secure view), bit 1.
    pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
    /// GICD_CTLR.ARE (ARE_NS in the Non-secure view), bit 4: affinity routing enabled.
    pub const CTLR_ARE: u32 = 1 << 4;
    /// GICD_TYPER: ITLinesNumber \[4:0\], IDbits \[23:19\].
    pub const TYPER: usize = 0x0004;
    /// GICD_IGROUPR<n>: group of INTIDs 32n..32n+32 (1 = group 1).
    pub const IGROUPR: usize = 0x0080;
    /// GICD_ISENABLER<n>: write 1 to enable.
    pub const ISENABLER: usize = 0x0100;
    /// GICD_IPRIORITYR<n>: one priority byte per INTID.
    pub const IPRIORITYR: usize = 0x0400;
    /// GICD_ICFGR<n>: two bits per INTID, bit 1 of each = edge-triggered.
    pub const ICFGR: usize = 0x0C00;
    /// GICD_ISPENDR<n>: write 1 to make pending.
    pub const ISPENDR: usize = 0x0200;
    /// GICD_PIDR2: ArchRev \[7:4\] (3 for GICv3).
    pub const PIDR2: usize = 0xFFE8;
}

/// GICv2 distributor registers (offsets from GICD_BASE) and fields.
pub mod gicd2 {
    /// GICD_ISENABLER0 (banked): SGIs and PPIs.
    pub const ISENABLER0: usize = 0x0100;
    /// GICD_ISPENDR0 (banked).
    pub const ISPENDR0: usize = 0x0200;
    /// GICD_ITARGETSR<n>: one CPU-mask byte per INTID (bytes 0..32 read the own mask).
    pub const ITARGETSR: usize = 0x0800;
    /// GICD_SGIR: TargetListFilter \[25:24\], CPUTargetList \[23:16\], SGIINTID \[3:0\].
    pub const SGIR: usize = 0x0F00;
    /// GICD_SPENDSGIR<n>: one byte per SGI, a bit per source CPU.
    pub const SPENDSGIR: usize = 0x0F20;
    /// GICD_PIDR2: ArchRev \[7:4\] (2 for GICv2); RAZ in a GICv3 distributor.
    pub const PIDR2: usize = 0x0FE8;
}

/// GICv2 CPU interface registers (offsets from GICC_BASE).
pub mod gicc {
    /// GICC_CTLR: bit 0 EnableGrp0.
    pub const CTLR: usize = 0x0000;
    /// GICC_PMR: priority mask.
    pub const PMR: usize = 0x0004;
    /// GICC_BPR: binary point.
    pub const BPR: usize = 0x0008;
    /// GICC_IAR: INTID \[9:0\], source CPU of an SGI \[12:10\].
    pub const IAR: usize = 0x000C;
    /// GICC_EOIR: write the IAR value back.
    pub const EOIR: usize = 0x0010;
}

/// The VM's GIC version (2 or 3), from the distributor's GICv2 PIDR2 (RAZ on a GICv3).
pub fn version() -> u8 {
    static VERSION: AtomicU8 = AtomicU8::new(0);
    let v = VERSION.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    let v = if (distributor().read32(gicd2::PIDR2) >> 4) & 0xf == 2 {
        2
    } else {
        3
    };
    VERSION.store(v, Ordering::Relaxed);
    v
}

/// Enables the distributor: GICv3 affinity routing and group 1; GICv2 both groups.
pub fn distributor_on() {
    let d = distributor();
    if version() == 2 {
        d.write32(gicd::CTLR, 0b11);
    } else {
        d.write32(gicd::CTLR, gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1);
    }
}

/// The GICv2 CPU interface.
pub fn cpu_interface() -> Mmio {
    // SAFETY: GICC_BASE is the VM's CPU interface (the hardware GICV, mapped by Tandem) on a
    // GICv2 machine; callers check `version() == 2` first.
    unsafe { Mmio::new(GICC_BASE) }
}

/// Redistributor registers (RD_base frame) and fields.
pub mod gicr {
    /// GICR_TYPER (64-bit): Affinity_Value \[63:32\], Processor_Number \[23:8\], Last \[4\].
    pub const TYPER: usize = 0x0008;
    /// GICR_TYPER.Last: the last redistributor of the series.
    pub const TYPER_LAST: u64 = 1 << 4;
    /// GICR_WAKER: ProcessorSleep \[1\], ChildrenAsleep \[2\].
    pub const WAKER: usize = 0x0014;
    /// GICR_WAKER.ProcessorSleep.
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    /// GICR_WAKER.ChildrenAsleep.
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
}

/// SGI_base frame registers (SGIs and PPIs of one vCPU).
pub mod sgi {
    /// GICR_IGROUPR0: group of INTIDs 0..32 (1 = group 1).
    pub const IGROUPR0: usize = 0x0080;
    /// GICR_ISENABLER0: write 1 to enable INTIDs 0..32.
    pub const ISENABLER0: usize = 0x0100;
    /// GICR_IPRIORITYR<n>: one priority byte per INTID 0..32.
    pub const IPRIORITYR: usize = 0x0400;
}

/// One GIC register frame, accessed with explicit widths.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: u64,
}

impl Mmio {
    /// A frame at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be a GIC frame of this VM (emulated by Tandem, so every access is either
    /// emulated or answered with an external abort) that no Rust object lives in.
    pub const unsafe fn new(base: u64) -> Self {
        Self { base }
    }

    fn at(&self, offset: usize) -> u64 {
        self.base + offset as u64
    }

    /// Reads the 32-bit register at `offset`.
    pub fn read32(&self, offset: usize) -> u32 {
        let value: u32;
        // SAFETY: an aligned access within the frame `new`'s caller vouched for.
        unsafe {
            asm!("ldr {v:w}, [{a}]", a = in(reg) self.at(offset), v = lateout(reg) value, options(nostack, preserves_flags))
        };
        value
    }

    /// Writes the 32-bit register at `offset`.
    pub fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read32`.
        unsafe {
            asm!("str {v:w}, [{a}]", a = in(reg) self.at(offset), v = in(reg) value, options(nostack, preserves_flags))
        };
    }

    /// Reads the 64-bit register at `offset` with one doubleword access.
    pub fn read64(&self, offset: usize) -> u64 {
        let value: u64;
        // SAFETY: as in `read32`.
        unsafe {
            asm!("ldr {v}, [{a}]", a = in(reg) self.at(offset), v = lateout(reg) value, options(nostack, preserves_flags))
        };
        value
    }

    /// Reads the byte at `offset`.
    pub fn read8(&self, offset: usize) -> u8 {
        let value: u32;
        // SAFETY: as in `read32`.
        unsafe {
            asm!("ldrb {v:w}, [{a}]", a = in(reg) self.at(offset), v = lateout(reg) value, options(nostack, preserves_flags))
        };
        value as u8
    }

    /// Writes the byte at `offset`.
    pub fn write8(&self, offset: usize, value: u8) {
        // SAFETY: as in `read32`.
        unsafe {
            asm!("strb {v:w}, [{a}]", a = in(reg) self.at(offset), v = in(reg) u32::from(value), options(nostack, preserves_flags))
        };
    }
}

/// The distributor.
pub fn distributor() -> Mmio {
    // SAFETY: GICD_BASE is the VM's emulated distributor.
    unsafe { Mmio::new(GICD_BASE) }
}

/// vCPU `cpu`'s redistributor RD_base frame.
pub fn redistributor(cpu: usize) -> Mmio {
    // SAFETY: vCPU `cpu`'s emulated redistributor (callers pass vCPUs the VM has).
    unsafe { Mmio::new(GICR_BASE + cpu as u64 * GICR_STRIDE) }
}

/// vCPU `cpu`'s redistributor SGI_base frame.
pub fn sgi_frame(cpu: usize) -> Mmio {
    // SAFETY: as in `redistributor`.
    unsafe { Mmio::new(GICR_BASE + cpu as u64 * GICR_STRIDE + SGI_FRAME) }
}

/// The GICR_WAKER wake sequence for vCPU `cpu`: clear ProcessorSleep, then wait for
/// ChildrenAsleep to clear. Returns `(WAKER before, WAKER after)`; `after` has
/// ChildrenAsleep clear on success.
pub fn wake(cpu: usize) -> (u32, u32) {
    if version() == 2 {
        // GICv2 has no redistributor: nothing sleeps.
        return (0, 0);
    }
    let rd = redistributor(cpu);
    let before = rd.read32(gicr::WAKER);
    rd.write32(gicr::WAKER, before & !gicr::WAKER_PROCESSOR_SLEEP);
    let mut after = rd.read32(gicr::WAKER);
    for _ in 0..1000 {
        if after & gicr::WAKER_CHILDREN_ASLEEP == 0 {
            break;
        }
        after = rd.read32(gicr::WAKER);
    }
    (before, after)
}

/// Makes SGI/PPI `intid` of vCPU `cpu` group 1 (GICv2: group 0) with `priority`, and
/// enables it. On a GICv2 the registers are banked: `cpu` must be the calling vCPU.
pub fn enable_private(cpu: usize, intid: u32, priority: u8) {
    if version() == 2 {
        let d = distributor();
        let bit = 1u32 << intid;
        d.write32(gicd::IGROUPR, d.read32(gicd::IGROUPR) & !bit);
        d.write8(gicd::IPRIORITYR + intid as usize, priority);
        d.write32(gicd::ISENABLER, bit);
        return;
    }
    let s = sgi_frame(cpu);
    let bit = 1u32 << intid;
    s.write32(sgi::IGROUPR0, s.read32(sgi::IGROUPR0) | bit);
    s.write8(sgi::IPRIORITYR + intid as usize, priority);
    s.write32(sgi::ISENABLER0, bit);
}

/// Turns this vCPU's CPU interface on for group 1: system-register access (ICC_SRE_EL1.SRE),
/// priority mask 0xff (let everything through), no preemption grouping, group 1 enabled.
pub fn cpu_interface_on() {
    if version() == 2 {
        // GICv2: PMR 0xff, BPR 0, EnableGrp0 (group 0 is signalled as IRQ).
        let c = cpu_interface();
        c.write32(gicc::PMR, 0xff);
        c.write32(gicc::BPR, 0);
        c.write32(gicc::CTLR, 1);
        return;
    }
    // SAFETY: ICC_SRE_EL1 = SRE (bit 0) | DFB | DIB: system-register interface, which a
    // GICv3 vCPU has anyway (the bit is RAO under Tandem).
    unsafe {
        core::arch::asm!("msr icc_sre_el1, {}", "isb", in(reg) 0b111u64, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: PMR 0xff: no priority masking; only changes which interrupts are signalled.
    unsafe {
        core::arch::asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: BPR1 0: every priority bit is group priority.
    unsafe {
        core::arch::asm!("msr icc_bpr1_el1, {}", in(reg) 0u64, options(nomem, nostack, preserves_flags))
    };
    // SAFETY: IGRPEN1 = 1: signal group 1 interrupts; handlers are installed.
    unsafe {
        core::arch::asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) 1u64, options(nomem, nostack, preserves_flags))
    };
}

/// Acknowledges the highest-priority pending interrupt: the raw ICC_IAR1_EL1 or GICC_IAR
/// value (give it to [`eoi`]; [`intid`] extracts the INTID).
pub fn ack() -> u32 {
    if version() == 2 {
        return cpu_interface().read32(gicc::IAR);
    }
    let intid: u64;
    // SAFETY: reading IAR1 acknowledges an interrupt; only the IRQ handler calls this.
    unsafe {
        core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nomem, nostack, preserves_flags))
    };
    intid as u32
}

/// The INTID of an [`ack`] value (GICv2: without the SGI source bits).
pub fn intid(iar: u32) -> u32 {
    if version() == 2 { iar & 0x3ff } else { iar }
}

/// The source vCPU of an SGI in an [`ack`] value (GICv2 only; 0 on a GICv3).
pub fn sgi_source(iar: u32) -> u32 {
    if version() == 2 { (iar >> 10) & 7 } else { 0 }
}

/// Ends (priority drop and deactivate, EOImode 0) the interrupt [`ack`] returned `intid`
/// for (ICC_EOIR1_EL1 or GICC_EOIR).
pub fn eoi(intid: u32) {
    if version() == 2 {
        cpu_interface().write32(gicc::EOIR, intid);
        return;
    }
    // SAFETY: ends the interrupt this handler acknowledged.
    unsafe {
        core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack, preserves_flags))
    };
}

/// Sends SGI `intid` to the vCPUs in `targets` (bit n = Aff0 n) of affinity cluster 0 with
/// ICC_SGI1R_EL1 or, on a GICv2, GICD_SGIR (which Tandem traps and emulates).
pub fn send_sgi(intid: u32, targets: u16) {
    if version() == 2 {
        // SAFETY: a barrier: earlier stores are visible before the SGI.
        unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
        distributor().write32(
            gicd2::SGIR,
            (u32::from(targets as u8)) << 16 | (intid & 0xf),
        );
        return;
    }
    // ICC_SGI1R_EL1: INTID [27:24], Aff1 [23:16] = 0, IRM [40] = 0, TargetList [15:0].
    let value = (u64::from(intid & 0xf) << 24) | u64::from(targets);
    // SAFETY: generates an SGI; the ISB makes it happen before what follows.
    unsafe {
        core::arch::asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nomem, nostack, preserves_flags))
    };
}
