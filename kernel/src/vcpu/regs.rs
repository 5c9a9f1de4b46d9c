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
