//! The register file of a vCPU as the world switch saves it.

/// Guest general-purpose state, saved on every exit by `guest.S`.
///
/// The layout is fixed: the assembly uses the offsets below. `x0..x7` are
/// kept as the SMCCC argument block, so a hypercall is dispatched on the
/// saved registers themselves, without a copy.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct GuestRegs {
    /// x0..x7 (the SMCCC arguments).
    pub args: pv_abi::HvcArgs,
    /// x8..x30.
    pub high: [u64; 23],
    /// SP_EL0.
    pub sp_el0: u64,
    /// The guest PC (ELR_EL2).
    pub pc: u64,
    /// The guest PSTATE (SPSR_EL2).
    pub pstate: u64,
}

/// Byte offset of `sp_el0` (used by the assembly).
pub const OFFSET_SP_EL0: usize = 31 * 8;
/// Byte offset of `pc`.
pub const OFFSET_PC: usize = 32 * 8;
/// Byte offset of `pstate`.
pub const OFFSET_PSTATE: usize = 33 * 8;
const _: () = assert!(core::mem::offset_of!(GuestRegs, sp_el0) == OFFSET_SP_EL0);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pc) == OFFSET_PC);
const _: () = assert!(core::mem::offset_of!(GuestRegs, pstate) == OFFSET_PSTATE);
const _: () = assert!(core::mem::size_of::<GuestRegs>() == 272);

/// SPSR value for entering a guest at EL1h with DAIF masked.
pub const PSTATE_EL1H_MASKED: u64 = 0x3c5;
/// PSTATE.nRW (SPSR.M[4]): the vCPU was in AArch32 state (at EL0: HCR_EL2.RW
/// makes EL1 AArch64).
pub const PSR_AARCH32: u64 = 1 << 4;
/// AArch32 PSTATE.T: T32 (Thumb) state.
const PSR_T32: u64 = 1 << 5;
/// AArch32 PSTATE.IT[1:0] (bits 26:25) and IT[7:2] (bits 15:10).
const PSR_IT: u64 = (0b11 << 25) | (0x3f << 10);

impl GuestRegs {
    /// Reads register `n` as an instruction sees it (31 = xzr).
    pub fn get(&self, n: u8) -> u64 {
        let n = usize::from(n);
        match n.checked_sub(8) {
            None => self.args.x[n],
            Some(h) => self.high.get(h).copied().unwrap_or(0),
        }
    }

    /// Writes register `n` (writes to xzr are dropped).
    pub fn set(&mut self, n: u8, value: u64) {
        let n = usize::from(n);
        match n.checked_sub(8) {
            None => self.args.x[n] = value,
            Some(h) => {
                if let Some(r) = self.high.get_mut(h) {
                    *r = value;
                }
            }
        }
    }

    /// Moves the PC past the trapped instruction, `len` bytes long (4, or 2
    /// for a 16-bit T32 one). In AArch32 state the PC wraps at 32 bits and a
    /// T32 IT block moves on by one instruction, as if it had executed.
    #[inline(always)]
    pub fn skip(&mut self, len: u8) {
        if self.pstate & PSR_AARCH32 == 0 {
            self.pc = self.pc.wrapping_add(4);
        } else {
            self.skip_aarch32(len);
        }
    }

    #[cold]
    #[inline(never)]
    fn skip_aarch32(&mut self, len: u8) {
        let len = if len == 2 && self.pstate & PSR_T32 != 0 {
            2
        } else {
            4
        };
        self.pc = self.pc.wrapping_add(len) & 0xffff_ffff;
        self.pstate = it_advance(self.pstate);
    }

    /// Whether a trapped instruction with condition `cond` (ESR.CV/COND, see
    /// [`crate::vcpu::exit::Trapped`]) passes its condition check: always in
    /// AArch64 state; in AArch32 state, against NZCV, with the condition
    /// taken from the IT block when the syndrome has none. One that fails
    /// must be skipped, not executed (Arm ARM: a trapped conditional
    /// instruction may be reported whether or not its condition passed).
    pub fn condition_passed(&self, cond: Option<u8>) -> bool {
        if self.pstate & PSR_AARCH32 == 0 {
            return true;
        }
        let cond = match cond {
            Some(c) => c,
            None => {
                let it = it_state(self.pstate);
                if it & 0xf == 0 {
                    return true; // not in an IT block
                }
                it >> 4
            }
        };
        condition_holds(cond, self.pstate >> 28)
    }

    /// Fresh registers for entry at `pc` in EL1h with `x0`.
    pub fn at_entry(pc: u64, x0: u64) -> Self {
        let mut r = Self {
            pc,
            pstate: PSTATE_EL1H_MASKED,
            ..Default::default()
        };
        r.args.x[0] = x0;
        r
    }
}

/// AArch32 PSTATE.IT as one byte (IT[7:0]).
fn it_state(pstate: u64) -> u8 {
    (((pstate >> 8) & 0xfc) | ((pstate >> 25) & 0b11)) as u8
}

/// `pstate` with its IT block advanced past one instruction (Arm ARM
/// `AArch32.ITAdvance`): the last instruction of a block ends it.
fn it_advance(pstate: u64) -> u64 {
    let it = it_state(pstate);
    if it == 0 {
        return pstate;
    }
    let it = if it & 0b111 == 0 {
        0
    } else {
        (it & 0xe0) | ((it << 1) & 0x1f)
    };
    let it = u64::from(it);
    (pstate & !PSR_IT) | ((it & 0xfc) << 8) | ((it & 0b11) << 25)
}

/// Whether condition `cond` (AArch32 encoding) holds for flags `nzcv`.
fn condition_holds(cond: u8, nzcv: u64) -> bool {
    let (n, z, c, v) = (nzcv & 8 != 0, nzcv & 4 != 0, nzcv & 2 != 0, nzcv & 1 != 0);
    let base = match cond >> 1 {
        0 => z,
        1 => c,
        2 => n,
        3 => v,
        4 => c && !z,
        5 => n == v,
        6 => !z && n == v,
        _ => true, // AL; 0b1111 is unconditional too
    };
    // Odd conditions negate the even one before them, except 0b1111.
    if cond & 1 == 1 && cond != 0xf {
        !base
    } else {
        base
    }
}

/// EL1 system registers, saved only when a physical CPU switches vCPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // named as in the Arm ARM
pub struct El1Regs {
    pub sctlr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub contextidr: u64,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub tpidr_el1: u64,
    pub sp_el1: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub par: u64,
    pub cpacr: u64,
    pub cntkctl: u64,
    pub csselr: u64,
    pub mdscr: u64,
}

impl El1Regs {
    /// Architectural reset-like values for a new vCPU (MMU off, caches off).
    pub fn reset() -> Self {
        Self {
            sctlr: 0x30d0_0800,
            ..Default::default()
        }
    }
}

/// The virtual timer of a vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerRegs {
    /// CNTV_CTL_EL0.
    pub ctl: u64,
    /// CNTV_CVAL_EL0.
    pub cval: u64,
}

impl TimerRegs {
    /// ENABLE set, IMASK clear: the timer will raise its interrupt at `cval`.
    pub fn armed(&self) -> bool {
        self.ctl & 0b11 == 0b01
    }
}

/// The per-vCPU GIC virtual CPU interface state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VgicCpuRegs {
    /// ICH_VMCR_EL2.
    pub vmcr: u64,
    /// ICH_AP0R0_EL2.
    pub ap0r0: u64,
    /// ICH_AP1R0_EL2.
    pub ap1r0: u64,
}

/// The state of a vCPU that stays in the CPU across exits and is switched
/// only when a physical CPU changes vCPU (or a vCPU restarts).
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuContext {
    /// EL1 system registers.
    pub el1: El1Regs,
    /// FP/SIMD registers.
    pub fp: FpRegs,
    /// The virtual timer.
    pub timer: TimerRegs,
    /// The GIC virtual CPU interface (VMCR, active priorities).
    pub gicv: VgicCpuRegs,
}

impl VcpuContext {
    /// The state of a vCPU that was just powered on (architectural reset values).
    pub fn reset() -> Self {
        Self {
            el1: El1Regs::reset(),
            ..Default::default()
        }
    }
}

/// FP/SIMD state: v0..v31, FPCR, FPSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FpRegs {
    /// q0..q31.
    pub q: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AArch32 User mode with T32 `t32`, flags `nzcv` and IT state `it`.
    fn user(t32: bool, nzcv: u64, it: u8) -> u64 {
        let it = u64::from(it);
        0x10 | (u64::from(t32) << 5) | (nzcv << 28) | ((it & 0xfc) << 8) | ((it & 3) << 25)
    }

    /// AArch64 PCs move by 4 and wrap; AArch32 ones by the instruction's
    /// length, at 32 bits.
    #[test]
    fn skip_lengths() {
        let mut r = GuestRegs {
            pc: u64::MAX - 1,
            pstate: 0x3c5,
            ..Default::default()
        };
        r.skip(2);
        assert_eq!(r.pc, 2, "AArch64: 4 bytes, wrapping");
        r.pc = 0xffff_fffe;
        r.pstate = user(true, 0, 0);
        r.skip(2);
        assert_eq!(r.pc, 0, "T32 16-bit, wrapping at 32 bits");
        r.skip(4);
        assert_eq!(r.pc, 4);
        r.pstate = user(false, 0, 0);
        r.skip(2);
        assert_eq!(r.pc, 8, "A32 instructions are 4 bytes");
    }

    /// Skipping an instruction in an IT block advances the block
    /// (`ITTE EQ`: then, then, else) and ends it after the last.
    #[test]
    fn it_block_advances() {
        // ITTE EQ: IT[7:0] = firstcond:mask = 0b0000:0110.
        let mut r = GuestRegs {
            pstate: user(true, 0, 0x06),
            ..Default::default()
        };
        assert!(!r.condition_passed(None), "EQ with Z clear");
        r.skip(2);
        assert_eq!(it_state(r.pstate), 0x0c);
        r.skip(2);
        assert_eq!(it_state(r.pstate), 0x18, "the else: NE");
        assert!(r.condition_passed(None), "NE with Z clear");
        r.skip(2);
        assert_eq!(it_state(r.pstate), 0, "the block is over");
        assert_eq!(r.pstate, user(true, 0, 0));
        assert!(r.condition_passed(None), "outside a block");
    }

    /// Each AArch32 condition against the flags; AArch64 always passes.
    #[test]
    fn conditions() {
        let (n, z, c, v) = (8, 4, 2, 1);
        let cases: [(u8, u64, bool); 16] = [
            (0x0, z, true),      // EQ
            (0x1, z, false),     // NE
            (0x2, c, true),      // CS
            (0x3, c, false),     // CC
            (0x4, n, true),      // MI
            (0x5, 0, true),      // PL
            (0x6, 0, false),     // VS
            (0x7, 0, true),      // VC
            (0x8, c, true),      // HI
            (0x9, c | z, true),  // LS
            (0xa, n | v, true),  // GE
            (0xb, n, true),      // LT
            (0xc, z, false),     // GT
            (0xd, n | v, false), // LE
            (0xe, 0, true),      // AL
            (0xf, 0, true),      // unconditional
        ];
        for (cond, nzcv, want) in cases {
            let r = GuestRegs {
                pstate: user(false, nzcv, 0),
                ..Default::default()
            };
            assert_eq!(
                r.condition_passed(Some(cond)),
                want,
                "cond {cond:#x} flags {nzcv:#x}"
            );
        }
        let a64 = GuestRegs {
            pstate: 0x3c5,
            ..Default::default()
        };
        assert!(a64.condition_passed(Some(0)));
    }
}
