//! GIC setup and interrupt acknowledge, for this CPU, on the generation the device tree
//! names ([`discover`]; a GICv3 at the board's addresses if there is no usable tree).
//!
//! GICv2: CPU 0 enables the distributor's two groups; each CPU puts its SGIs/PPIs in group 0
//! (signalled as IRQs), sets priorities, enables the wanted ones, and turns its GICC on with
//! PMR 0xFF. SGIs go through GICD_SGIR (which Tandem traps); the CPU interface under Tandem
//! is the hardware's virtual one, so acknowledge and EOI do not trap.
//!
//! GICv3: the sequence is the same natively and under Tandem (which emulates GICD/GICR and
//! provides the `ICC_*` registers through its virtual CPU interface):
//! 1. once, CPU 0: GICD_CTLR = ARE_NS, then ARE_NS | EnableGrp1 (both encodings, see
//!    [`crate::gic`]);
//! 2. per CPU: find its redistributor by `GICR_TYPER.Affinity`, clear
//!    `GICR_WAKER.ProcessorSleep` and wait for `ChildrenAsleep` to clear, put SGIs/PPIs in
//!    group 1, set priorities, enable the wanted ones;
//! 3. per CPU: `ICC_SRE_EL1.SRE = 1`, `ICC_PMR_EL1 = 0xFF`, `ICC_BPR1_EL1 = 0`,
//!    `ICC_IGRPEN1_EL1 = 1`.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::cpu::{self, icc};
use crate::board::{GICD_BASE, GICR_BASE, GICR_MAX_FRAMES, GICR_STRIDE, PhysAddr};
use crate::dt::Gic;
use crate::gic::{
    GICD_CTLR, GICR_CTLR, GICR_TYPER, GICR_WAKER, GiccRegs, GicdRegs, GicdV2Regs, GicrRegs,
    ICC_IGRPEN1_EL1, ICC_SRE_EL1, Mpidr, PMR_ALLOW_ALL, acknowledged, acknowledged_v2, icfgr_edge,
    irouter, sgi1r, sgir,
};

/// The GICv2 CPU interface's address, or 0 on a GICv3 (set once by [`discover`]).
static GICC_BASE: AtomicU64 = AtomicU64::new(0);
/// The distributor's address (set once by [`discover`]).
static DIST_BASE: AtomicU64 = AtomicU64::new(GICD_BASE.0);
/// Finds the GIC in the device tree at `dtb` (x0 at entry) and returns it; `None` if there
/// is no usable tree (the board's GICv3 is then used). Call once, on CPU 0, before
/// [`init_distributor`].
pub fn discover(dtb: u64) -> Option<Gic> {
    let gic = super::dtb::gic(dtb)?;
    match gic {
        Gic::V2 { dist, cpu } => {
            DIST_BASE.store(dist, Ordering::Relaxed);
            GICC_BASE.store(cpu, Ordering::Relaxed);
        }
        Gic::V3 { dist, .. } => DIST_BASE.store(dist, Ordering::Relaxed),
    }
    Some(gic)
}

/// The GICv2 frames, if the machine has a GICv2.
fn v2() -> Option<(&'static GicdV2Regs, &'static GiccRegs)> {
    let cpu = GICC_BASE.load(Ordering::Relaxed);
    if cpu == 0 {
        return None;
    }
    let dist = DIST_BASE.load(Ordering::Relaxed);
    // SAFETY: `discover` took both addresses from the device tree's GICv2 node: device
    // frames in the identity-mapped device gigabyte, accessed only through volatile cells.
    let d = unsafe { &*(dist as *const GicdV2Regs) };
    // SAFETY: as for the distributor.
    let c = unsafe { &*(cpu as *const GiccRegs) };
    Some((d, c))
}

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor frame names this CPU's affinity.
    NoRedistributor,
    /// The redistributor did not wake up.
    WakeTimeout,
}

fn gicd() -> &'static GicdRegs {
    // SAFETY: the distributor from the device tree or, without one, GICD_BASE (board.rs),
    // identity-mapped as device memory; the registers are only accessed through
    // tock-registers' volatile cells.
    unsafe { &*(DIST_BASE.load(Ordering::Relaxed) as *const GicdRegs) }
}

fn gicr_at(base: PhysAddr) -> &'static GicrRegs {
    // SAFETY: callers pass a redistributor frame inside the GICR region (board.rs), which is
    // identity-mapped as device memory and accessed only through volatile cells.
    unsafe { &*(base.as_usize() as *const GicrRegs) }
}

/// Finds the redistributor serving `me`.
fn redistributor(me: Mpidr) -> Result<&'static GicrRegs, GicError> {
    for i in 0..GICR_MAX_FRAMES {
        let r = gicr_at(GICR_BASE.offset(i * GICR_STRIDE));
        let typer = r.typer.extract();
        if typer.read(GICR_TYPER::Affinity) as u32 == me.gicr_affinity() {
            return Ok(r);
        }
        if typer.is_set(GICR_TYPER::Last) {
            break;
        }
    }
    Err(GicError::NoRedistributor)
}

fn bounded_wait(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1_000_000 {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// Enables the distributor: GICv2 both groups; GICv3 affinity routing and group 1 (CPU 0,
/// once, after [`discover`]).
pub fn init_distributor() {
    if let Some((d, _)) = v2() {
        d.ctlr.set(0b11);
        return;
    }
    let d = gicd();
    // Affinity routing must be enabled while the groups are disabled.
    d.ctlr.write(GICD_CTLR::ARE_NS::SET);
    bounded_wait(|| !d.ctlr.is_set(GICD_CTLR::RWP));
    d.ctlr
        .write(GICD_CTLR::ARE_NS::SET + GICD_CTLR::ENABLE_G1::SET + GICD_CTLR::ENABLE_G1A::SET);
    bounded_wait(|| !d.ctlr.is_set(GICD_CTLR::RWP));
}

/// Wakes this CPU's redistributor, enables the SGIs/PPIs in `intids` (all < 32) with the
/// given priorities, and turns the CPU interface on.
pub fn init_cpu(intids: &[(u32, u8)]) -> Result<(), GicError> {
    if let Some((d, c)) = v2() {
        d.igroupr[0].set(0);
        let mut enable = 0u32;
        for &(intid, prio) in intids {
            d.ipriorityr[intid as usize].set(prio);
            enable |= 1 << intid;
        }
        d.icenabler[0].set(!enable);
        d.isenabler[0].set(enable);
        c.pmr.set(PMR_ALLOW_ALL as u32);
        c.bpr.set(0);
        c.ctlr.set(1);
        return Ok(());
    }
    let r = redistributor(cpu::mpidr())?;
    r.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
    if !bounded_wait(|| !r.waker.is_set(GICR_WAKER::ChildrenAsleep)) {
        return Err(GicError::WakeTimeout);
    }
    // All SGIs and PPIs in (non-secure) group 1.
    r.igroupr0.set(u32::MAX);
    r.igrpmodr0.set(0);
    let mut enable = 0u32;
    for &(intid, prio) in intids {
        r.ipriorityr[intid as usize].set(prio);
        enable |= 1 << intid;
    }
    r.icenabler0.set(!enable);
    bounded_wait(|| !r.ctlr.is_set(GICR_CTLR::RWP));
    r.isenabler0.set(enable);

    icc::set_sre(
        icc::sre() | (ICC_SRE_EL1::SRE::SET + ICC_SRE_EL1::DFB::SET + ICC_SRE_EL1::DIB::SET).value,
    );
    barrier::isb(barrier::SY);
    icc::set_pmr(PMR_ALLOW_ALL);
    // Group priority uses every bit: no preemption between our interrupts (IRQs stay masked
    // in handlers anyway).
    icc::set_bpr1(0);
    icc::set_igrpen1(ICC_IGRPEN1_EL1::Enable::SET.value);
    barrier::isb(barrier::SY);
    Ok(())
}

/// Enables SPI `intid` (32..1020) as an edge-triggered interrupt of priority `prio` (GICv3:
/// group 1; GICv2: group 0), routed to `target`. Out-of-range INTIDs are ignored.
pub fn enable_spi(intid: u32, prio: u8, target: Mpidr) {
    if !(32..1020).contains(&intid) {
        return;
    }
    if let Some((d, _)) = v2() {
        // Group 0 (as reset), targeted at CPU interface Aff0.
        let n = intid as usize;
        d.ipriorityr[n].set(prio);
        d.icfgr[n / 16].set(icfgr_edge(d.icfgr[n / 16].get(), intid));
        d.itargetsr[n].set(
            1u8.checked_shl(u32::from(target.affinity()[0]))
                .unwrap_or(0),
        );
        d.isenabler[n / 32].set(1 << (intid % 32));
        return;
    }
    let (d, n) = (gicd(), intid as usize);
    let bit = 1u32 << (intid % 32);
    d.igroupr[n / 32].set(d.igroupr[n / 32].get() | bit);
    d.ipriorityr[n].set(prio);
    d.icfgr[n / 16].set(icfgr_edge(d.icfgr[n / 16].get(), intid));
    d.irouter[n].set(irouter(target));
    d.isenabler[n / 32].set(bit);
}

/// Acknowledges the next pending interrupt: `Some((intid, iar))`, or `None` if none.
pub fn ack() -> Option<(u32, u64)> {
    if let Some((_, c)) = v2() {
        let iar = c.iar.get();
        return acknowledged_v2(iar).map(|intid| (intid, u64::from(iar)));
    }
    let iar = icc::iar1();
    acknowledged(iar).map(|intid| (intid, iar))
}

/// Ends an interrupt returned by [`ack`].
pub fn eoi(iar: u64) {
    if let Some((_, c)) = v2() {
        c.eoir.set(iar as u32);
        return;
    }
    icc::eoir1(iar);
}

/// Sends SGI `intid` to the CPU `target`, after this CPU's earlier stores are visible.
/// On a GICv2 the target is CPU interface Aff0 (QEMU virt numbers them so; a Tandem VM too).
pub fn send_sgi(intid: u32, target: Mpidr) {
    barrier::dsb(barrier::ISH);
    if let Some((d, _)) = v2() {
        let aff0 = target.affinity()[0];
        d.sgir
            .set(sgir(intid, 1u8.checked_shl(u32::from(aff0)).unwrap_or(0)));
        return;
    }
    icc::sgi1r(sgi1r(intid, target));
    barrier::isb(barrier::SY);
}
