//! Exceptions Tandem injects into a guest: where they land, the PSTATE they
//! land with, and their syndromes.
#![forbid(unsafe_code)]

use crate::vcpu::regs::{GuestRegs, PSR_AARCH32, PSTATE_EL1H_MASKED};

/// The offset into VBAR_EL1 of a synchronous exception taken from `pstate`.
pub fn vector_offset(pstate: u64) -> u64 {
    if pstate & PSR_AARCH32 != 0 {
        return 0x600; // lower EL, AArch32 (only EL0 can be: HCR_EL2.RW)
    }
    match pstate & 0xf {
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        0b0101 => 0x200, // EL1h: current EL with SP_EL1
        _ => 0x400,      // EL0: lower EL, AArch64
    }
}

/// A synchronous exception Tandem makes a vCPU take at EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct El1Exception {
    /// ESR_EL1 value.
    pub esr: u64,
    /// FAR_EL1 value (if the exception reports an address).
    pub far: Option<u64>,
}

/// SCTLR_EL1.SPAN: 0 = taking an exception to EL1 sets PSTATE.PAN.
const SCTLR_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS: PSTATE.SSBS on taking an exception to EL1.
const SCTLR_DSSBS: u64 = 1 << 44;
/// PSTATE.N, Z, C, V.
const PSR_NZCV: u64 = 0xf << 28;
/// PSTATE.PAN (bit 22 in AArch64 and AArch32 SPSRs alike).
const PSR_PAN: u64 = 1 << 22;
/// PSTATE.DIT: bit 24 in an AArch64 SPSR, bit 21 in an AArch32 one.
const PSR_DIT: u64 = 1 << 24;
const PSR_DIT_AARCH32: u64 = 1 << 21;
/// PSTATE.SSBS in an AArch64 SPSR.
const PSR_SSBS: u64 = 1 << 12;

/// The PSTATE a vCPU in `pstate` takes an exception to AArch64 EL1 with,
/// given its SCTLR_EL1 (Arm ARM, `AArch64.TakeException`): EL1h, D, A, I
/// and F masked; NZCV and DIT kept; PAN set if SCTLR_EL1.SPAN is 0, else
/// kept; SSBS = SCTLR_EL1.DSSBS; UAO, BTYPE, SS and IL cleared. The bits of
/// features Tandem hides from guests (MTE's TCO, NMI's ALLINT) stay 0. On a
/// CPU without PAN or SSBS, SPAN is RES1 and DSSBS RES0, so the result is
/// right there too.
pub fn exception_pstate(pstate: u64, sctlr_el1: u64) -> u64 {
    let mut p = PSTATE_EL1H_MASKED | (pstate & PSR_NZCV);
    let dit = if pstate & PSR_AARCH32 != 0 {
        PSR_DIT_AARCH32
    } else {
        PSR_DIT
    };
    if pstate & dit != 0 {
        p |= PSR_DIT;
    }
    if sctlr_el1 & SCTLR_SPAN == 0 || pstate & PSR_PAN != 0 {
        p |= PSR_PAN;
    }
    if sctlr_el1 & SCTLR_DSSBS != 0 {
        p |= PSR_SSBS;
    }
    p
}

/// The guest's ELR_EL1 and SPSR_EL1 for taking an exception at `regs`, and
/// `regs` moved to the vector (`vbar` = VBAR_EL1) with the PSTATE of
/// [`exception_pstate`] (`sctlr` = SCTLR_EL1).
pub fn take_exception(regs: &mut GuestRegs, vbar: u64, sctlr: u64) -> (u64, u64) {
    let saved = (regs.pc, regs.pstate);
    regs.pc = vbar.wrapping_add(vector_offset(regs.pstate));
    regs.pstate = exception_pstate(regs.pstate, sctlr);
    saved
}

/// Whether an exception from `pstate` comes from EL0 (AArch64 or AArch32).
fn from_el0(pstate: u64) -> bool {
    pstate & PSR_AARCH32 != 0 || pstate & 0xf == 0
}

const IL: u64 = 1 << 25;
/// ISS.FnV: FAR_EL1 does not hold the faulting address.
const FNV: u64 = 1 << 10;
/// Synchronous external abort, not on a table walk.
const FSC_EXTERNAL: u64 = 0x10;

/// ESR_EL1 of a synchronous external data abort (what an access to nothing
/// gets); `far_valid`: FAR_EL1 will hold the faulting virtual address.
pub fn data_abort_esr(pstate: u64, write: bool, far_valid: bool) -> u64 {
    let ec = if from_el0(pstate) { 0x24 } else { 0x25 };
    (ec << 26) | IL | (u64::from(!far_valid) * FNV) | (u64::from(write) << 6) | FSC_EXTERNAL
}

/// ESR_EL1 of a synchronous external instruction abort.
pub fn instr_abort_esr(pstate: u64, far_valid: bool) -> u64 {
    let ec = if from_el0(pstate) { 0x20 } else { 0x21 };
    (ec << 26) | IL | (u64::from(!far_valid) * FNV) | FSC_EXTERNAL
}

/// ESR_EL1 of an UNDEFINED instruction (EC 0x00, whose IL is always 1).
pub fn undefined_esr() -> u64 {
    IL
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exceptions from EL1h land at VBAR + 0x200, from EL0 at + 0x400.
    #[test]
    fn vectors() {
        assert_eq!(vector_offset(0x3c5), 0x200);
        assert_eq!(vector_offset(0x3c4), 0x000);
        assert_eq!(vector_offset(0x0), 0x400);
    }

    /// From AArch32 (EL0), an exception lands at VBAR + 0x600, not 0x400.
    #[test]
    fn aarch32_vector() {
        // User mode, A32 and T32.
        assert_eq!(vector_offset(0x1d0), 0x600);
        assert_eq!(vector_offset(0x1f0), 0x600);
        let mut regs = GuestRegs {
            pc: 0x8000,
            pstate: 0x6000_0030,
            ..Default::default()
        };
        let (elr, spsr) = take_exception(&mut regs, 0x4000_0800, 0);
        assert_eq!((elr, spsr), (0x8000, 0x6000_0030));
        assert_eq!(regs.pc, 0x4000_0e00);
        assert_eq!(regs.pstate & 0x1f, 0b00101, "AArch64 EL1h");
        assert_eq!(data_abort_esr(0x10, false, true) >> 26, 0x24, "from EL0");
    }

    /// An injected store abort from EL1 is EC 0x25, WnR, external abort;
    /// FnV when FAR_EL1 cannot hold the address.
    #[test]
    fn data_abort() {
        assert_eq!(data_abort_esr(0x3c5, true, true), 0x9600_0050);
        assert_eq!(data_abort_esr(0x0, false, true), 0x9200_0010);
        assert_eq!(data_abort_esr(0x0, false, false), 0x9200_0410);
        assert_eq!(instr_abort_esr(0x0, true), 0x8200_0010);
    }

    /// PSTATE on exception entry follows `AArch64.TakeException`: PAN set
    /// unless SCTLR_EL1.SPAN, SSBS from SCTLR_EL1.DSSBS, NZCV and DIT kept,
    /// UAO, SS, IL and BTYPE cleared.
    #[test]
    fn entry_pstate() {
        let span = 1 << 23;
        let dssbs = 1 << 44;
        // EL1h with PAN clear, Z and C set, UAO, SS, IL, BTYPE and SSBS set.
        let from = 0x6000_0005 | (1 << 23) | (1 << 21) | (1 << 20) | (0b11 << 10) | (1 << 12);
        assert_eq!(exception_pstate(from, 0), 0x6040_03c5, "PAN set, SSBS 0");
        assert_eq!(exception_pstate(from, span), 0x6000_03c5, "PAN kept (0)");
        assert_eq!(
            exception_pstate(from | 1 << 22, span),
            0x6040_03c5,
            "PAN kept (1)"
        );
        assert_eq!(
            exception_pstate(from, span | dssbs),
            0x6000_13c5,
            "SSBS = DSSBS"
        );
        assert_eq!(
            exception_pstate(from | 1 << 24, span),
            0x6100_03c5,
            "DIT kept"
        );
        // From AArch32 EL0: DIT is bit 21 there; IT, T and GE are not AArch64 PSTATE.
        let user = 0x8000_0010 | (1 << 21) | (0b11 << 25) | (0x3f << 10) | (1 << 5) | (0xf << 16);
        assert_eq!(exception_pstate(user, span), 0x8100_03c5);
    }
}
