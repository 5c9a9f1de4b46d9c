//! GICv3 setup and interrupt acknowledge, for this CPU.
//!
//! The sequence is the same natively and under Tandem (which emulates GICD/GICR and provides
//! the `ICC_*` registers through its virtual CPU interface):
//! 1. once, CPU 0: GICD_CTLR = ARE_NS, then ARE_NS | EnableGrp1 (both encodings, see
//!    [`crate::gic`]);
//! 2. per CPU: find its redistributor by `GICR_TYPER.Affinity`, clear
//!    `GICR_WAKER.ProcessorSleep` and wait for `ChildrenAsleep` to clear, put SGIs/PPIs in
//!    group 1, set priorities, enable the wanted ones;
//! 3. per CPU: `ICC_SRE_EL1.SRE = 1`, `ICC_PMR_EL1 = 0xFF`, `ICC_BPR1_EL1 = 0`,
//!    `ICC_IGRPEN1_EL1 = 1`.

use aarch64_cpu::asm::barrier;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::cpu::{self, icc};
use crate::board::{GICD_BASE, GICR_BASE, GICR_MAX_FRAMES, GICR_STRIDE, PhysAddr};
use crate::gic::{
    GICD_CTLR, GICR_CTLR, GICR_TYPER, GICR_WAKER, GicdRegs, GicrRegs, ICC_IGRPEN1_EL1, ICC_SRE_EL1,
    Mpidr, PMR_ALLOW_ALL, acknowledged, icfgr_edge, irouter, sgi1r,
};

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor frame names this CPU's affinity.
    NoRedistributor,
    /// The redistributor did not wake up.
    WakeTimeout,
}

fn gicd() -> &'static GicdRegs {
    // SAFETY: GICD_BASE is the distributor on QEMU virt and in every Tandem VM (board.rs),
    // identity-mapped as device memory; the registers are only accessed through
    // tock-registers' volatile cells.
    unsafe { &*(GICD_BASE.as_usize() as *const GicdRegs) }
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

/// Enables the distributor with affinity routing and group 1 (CPU 0, once).
pub fn init_distributor() {
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

/// Enables SPI `intid` (32..1020) as an edge-triggered group 1 interrupt of priority `prio`,
/// routed to `target`. Out-of-range INTIDs are ignored.
pub fn enable_spi(intid: u32, prio: u8, target: Mpidr) {
    if !(32..1020).contains(&intid) {
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
    let iar = icc::iar1();
    acknowledged(iar).map(|intid| (intid, iar))
}

/// Ends an interrupt returned by [`ack`].
pub fn eoi(iar: u64) {
    icc::eoir1(iar);
}

/// Sends SGI `intid` to the CPU `target`, after this CPU's earlier stores are visible.
pub fn send_sgi(intid: u32, target: Mpidr) {
    barrier::dsb(barrier::ISH);
    icc::sgi1r(sgi1r(intid, target));
    barrier::isb(barrier::SY);
}
