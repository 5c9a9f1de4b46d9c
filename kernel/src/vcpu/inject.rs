//! Exceptions Tandem injects into a guest: where they land and their syndromes.
#![forbid(unsafe_code)]

/// The offset into VBAR_EL1 of a synchronous exception taken from `pstate`.
pub fn vector_offset(pstate: u64) -> u64 {
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

/// The guest's ELR_EL1 and SPSR_EL1 for taking an exception at `regs`, and
/// `regs` moved to the vector (`vbar` = VBAR_EL1) in EL1h with DAIF masked.
pub fn take_exception(regs: &mut crate::vcpu::regs::GuestRegs, vbar: u64) -> (u64, u64) {
    let saved = (regs.pc, regs.pstate);
    regs.pc = vbar + vector_offset(regs.pstate);
    regs.pstate = crate::vcpu::regs::PSTATE_EL1H_MASKED;
    saved
}

fn from_el0(pstate: u64) -> bool {
    pstate & 0xf == 0
}

const IL: u64 = 1 << 25;
/// Synchronous external abort, not on a table walk.
const FSC_EXTERNAL: u64 = 0x10;

/// ESR_EL1 of a synchronous external data abort (what an access to nothing gets).
pub fn data_abort_esr(pstate: u64, write: bool) -> u64 {
    let ec = if from_el0(pstate) { 0x24 } else { 0x25 };
    (ec << 26) | IL | (u64::from(write) << 6) | FSC_EXTERNAL
}

/// ESR_EL1 of a synchronous external instruction abort.
pub fn instr_abort_esr(pstate: u64) -> u64 {
    let ec = if from_el0(pstate) { 0x20 } else { 0x21 };
    (ec << 26) | IL | FSC_EXTERNAL
}

/// ESR_EL1 of an UNDEFINED instruction.
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

    /// An injected store abort from EL1 is EC 0x25, WnR, external abort.
    #[test]
    fn data_abort() {
        assert_eq!(data_abort_esr(0x3c5, true), 0x9600_0050);
        assert_eq!(data_abort_esr(0x0, false), 0x9200_0010);
    }
}
