//! Exception Syndrome Register (ESR_ELx) decoding.
//!
//! Pure: the arch layer reads ESR_EL2 once into a `u64` and everything here
//! works on that value, so the decoder is tested on the host with raw values
//! from the Arm ARM (D24.2.40 ESR_EL2) and from QEMU logs.

use core::fmt;

use tock_registers::{LocalRegisterCopy, register_bitfields};

register_bitfields! {u64,
    /// Fields common to every syndrome.
    pub ESR [
        /// Exception class.
        EC OFFSET(26) NUMBITS(6) [],
        /// Instruction length: 1 for a 32-bit instruction.
        IL OFFSET(25) NUMBITS(1) [],
        /// Instruction-specific syndrome.
        ISS OFFSET(0) NUMBITS(25) []
    ],
    /// ISS of data aborts (EC 0x24/0x25).
    pub DABT_ISS [
        /// The SAS/SSE/SRT/SF/AR fields are valid.
        ISV OFFSET(24) NUMBITS(1) [],
        /// Access size: 1 << SAS bytes.
        SAS OFFSET(22) NUMBITS(2) [],
        /// The load sign-extends.
        SSE OFFSET(21) NUMBITS(1) [],
        /// Transfer register number (31 = xzr).
        SRT OFFSET(16) NUMBITS(5) [],
        /// The transfer register is 64 bits wide.
        SF OFFSET(15) NUMBITS(1) [],
        /// Acquire/release semantics.
        AR OFFSET(14) NUMBITS(1) [],
        /// FAR is not valid.
        FNV OFFSET(10) NUMBITS(1) [],
        /// External abort.
        EA OFFSET(9) NUMBITS(1) [],
        /// Cache maintenance operation.
        CM OFFSET(8) NUMBITS(1) [],
        /// Fault on a stage-2 walk of a stage-1 table.
        S1PTW OFFSET(7) NUMBITS(1) [],
        /// Write, not read.
        WNR OFFSET(6) NUMBITS(1) [],
        /// Data fault status code.
        DFSC OFFSET(0) NUMBITS(6) []
    ],
    /// ISS of trapped MSR/MRS/system instructions (EC 0x18).
    pub SYSREG_ISS [
        /// Op0 of the instruction.
        OP0 OFFSET(20) NUMBITS(2) [],
        /// Op2.
        OP2 OFFSET(17) NUMBITS(3) [],
        /// Op1.
        OP1 OFFSET(14) NUMBITS(3) [],
        /// CRn.
        CRN OFFSET(10) NUMBITS(4) [],
        /// Transfer register.
        RT OFFSET(5) NUMBITS(5) [],
        /// CRm.
        CRM OFFSET(1) NUMBITS(4) [],
        /// 1 = read (MRS), 0 = write (MSR).
        DIRECTION OFFSET(0) NUMBITS(1) []
    ]
}

/// An exception class (ESR.EC), with the classes Tandem distinguishes named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// Unknown reason (includes UNDEFINED instructions).
    Unknown,
    /// WFI or WFE.
    WfxTrap,
    /// FP/SIMD access trapped by CPTR.
    FpSimdTrap,
    /// Illegal execution state.
    IllegalState,
    /// SVC from AArch64.
    Svc64,
    /// HVC from AArch64.
    Hvc64,
    /// SMC from AArch64.
    Smc64,
    /// MSR/MRS/system instruction trapped.
    SysRegTrap,
    /// SVE access trapped.
    SveTrap,
    /// Pointer authentication failure.
    PacFail,
    /// Instruction abort from a lower EL.
    InstrAbortLower,
    /// Instruction abort at the same EL.
    InstrAbortSame,
    /// PC alignment fault.
    PcAlignment,
    /// Data abort from a lower EL.
    DataAbortLower,
    /// Data abort at the same EL.
    DataAbortSame,
    /// SP alignment fault.
    SpAlignment,
    /// SError interrupt.
    SError,
    /// Breakpoint, step or watchpoint (any EL).
    Debug,
    /// BRK instruction.
    Brk64,
    /// Any other class, by number.
    Other(u8),
}

impl ExceptionClass {
    /// Classifies a raw 6-bit EC value.
    pub fn from_raw(ec: u8) -> Self {
        match ec {
            0x00 => Self::Unknown,
            0x01 => Self::WfxTrap,
            0x07 => Self::FpSimdTrap,
            0x0e => Self::IllegalState,
            0x15 => Self::Svc64,
            0x16 => Self::Hvc64,
            0x17 => Self::Smc64,
            0x18 => Self::SysRegTrap,
            0x19 => Self::SveTrap,
            0x1c => Self::PacFail,
            0x20 => Self::InstrAbortLower,
            0x21 => Self::InstrAbortSame,
            0x22 => Self::PcAlignment,
            0x24 => Self::DataAbortLower,
            0x25 => Self::DataAbortSame,
            0x26 => Self::SpAlignment,
            0x2f => Self::SError,
            0x30..=0x35 => Self::Debug,
            0x3c => Self::Brk64,
            other => Self::Other(other),
        }
    }

    /// A short human-readable name for fault reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown/undefined instruction",
            Self::WfxTrap => "WFI/WFE",
            Self::FpSimdTrap => "FP/SIMD access",
            Self::IllegalState => "illegal execution state",
            Self::Svc64 => "SVC",
            Self::Hvc64 => "HVC",
            Self::Smc64 => "SMC",
            Self::SysRegTrap => "system register access",
            Self::SveTrap => "SVE access",
            Self::PacFail => "pointer authentication failure",
            Self::InstrAbortLower => "instruction abort from lower EL",
            Self::InstrAbortSame => "instruction abort at EL2",
            Self::PcAlignment => "PC alignment fault",
            Self::DataAbortLower => "data abort from lower EL",
            Self::DataAbortSame => "data abort at EL2",
            Self::SpAlignment => "SP alignment fault",
            Self::SError => "SError",
            Self::Debug => "debug exception",
            Self::Brk64 => "BRK",
            Self::Other(_) => "unrecognised exception class",
        }
    }
}

/// Names a data/instruction fault status code (DFSC/IFSC).
pub fn fault_status_name(fsc: u8) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

/// A decoded syndrome: the exception class plus the raw value for field access.
#[derive(Clone, Copy)]
pub struct Syndrome(LocalRegisterCopy<u64, ESR::Register>);

impl Syndrome {
    /// Wraps a raw ESR value.
    pub fn new(raw: u64) -> Self {
        Self(LocalRegisterCopy::new(raw))
    }

    /// The raw register value.
    pub fn raw(self) -> u64 {
        self.0.get()
    }

    /// The exception class.
    pub fn class(self) -> ExceptionClass {
        ExceptionClass::from_raw(self.0.read(ESR::EC) as u8)
    }

    /// The instruction-specific syndrome.
    pub fn iss(self) -> u64 {
        self.0.read(ESR::ISS)
    }

    /// True for a 32-bit instruction (the PC advances by 4 to skip it).
    pub fn is_32bit_instruction(self) -> bool {
        self.0.is_set(ESR::IL)
    }

    /// The data-abort view of the ISS (meaningful for data aborts only).
    pub fn data_abort(self) -> DataAbort {
        DataAbort(LocalRegisterCopy::new(self.iss()))
    }

    /// The trapped system-register view of the ISS (EC 0x18 only).
    pub fn sysreg(self) -> SysRegAccess {
        let iss: LocalRegisterCopy<u64, SYSREG_ISS::Register> = LocalRegisterCopy::new(self.iss());
        SysRegAccess {
            op0: iss.read(SYSREG_ISS::OP0) as u8,
            op1: iss.read(SYSREG_ISS::OP1) as u8,
            crn: iss.read(SYSREG_ISS::CRN) as u8,
            crm: iss.read(SYSREG_ISS::CRM) as u8,
            op2: iss.read(SYSREG_ISS::OP2) as u8,
            rt: iss.read(SYSREG_ISS::RT) as u8,
            is_read: iss.is_set(SYSREG_ISS::DIRECTION),
        }
    }

    /// The 16-bit immediate of HVC/SMC/BRK.
    pub fn imm16(self) -> u16 {
        self.iss() as u16
    }
}

/// A data abort's ISS.
#[derive(Clone, Copy)]
pub struct DataAbort(LocalRegisterCopy<u64, DABT_ISS::Register>);

impl DataAbort {
    /// The instruction details (size, register, sign) are valid.
    pub fn is_valid(self) -> bool {
        self.0.is_set(DABT_ISS::ISV)
    }
    /// Access size in bytes (1, 2, 4 or 8).
    pub fn access_size(self) -> u8 {
        1 << self.0.read(DABT_ISS::SAS)
    }
    /// The load sign-extends its value.
    pub fn sign_extend(self) -> bool {
        self.0.is_set(DABT_ISS::SSE)
    }
    /// The transfer register (31 means xzr).
    pub fn register(self) -> u8 {
        self.0.read(DABT_ISS::SRT) as u8
    }
    /// The transfer register is 64-bit (else 32-bit, zero-extended).
    pub fn is_64bit_register(self) -> bool {
        self.0.is_set(DABT_ISS::SF)
    }
    /// The access is a write.
    pub fn is_write(self) -> bool {
        self.0.is_set(DABT_ISS::WNR)
    }
    /// FAR is not valid.
    pub fn far_not_valid(self) -> bool {
        self.0.is_set(DABT_ISS::FNV)
    }
    /// The fault came from a stage-2 walk of a stage-1 translation table.
    pub fn on_stage1_walk(self) -> bool {
        self.0.is_set(DABT_ISS::S1PTW)
    }
    /// A cache maintenance instruction faulted.
    pub fn is_cache_maintenance(self) -> bool {
        self.0.is_set(DABT_ISS::CM)
    }
    /// External abort.
    pub fn is_external(self) -> bool {
        self.0.is_set(DABT_ISS::EA)
    }
    /// The fault status code.
    pub fn status_code(self) -> u8 {
        self.0.read(DABT_ISS::DFSC) as u8
    }
}

/// A trapped MSR/MRS, by its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// Op0.
    pub op0: u8,
    /// Op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// Op2.
    pub op2: u8,
    /// Transfer register (31 = xzr).
    pub rt: u8,
    /// MRS (read) rather than MSR (write).
    pub is_read: bool,
}

impl SysRegAccess {
    /// The register's encoding as (op0, op1, crn, crm, op2).
    pub fn encoding(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

impl fmt::Display for Syndrome {
    /// Formats the class and the fields that matter for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.class();
        write!(f, "ESR={:#010x} EC={:#04x} ({})", self.raw(), self.0.read(ESR::EC), class.name())?;
        match class {
            ExceptionClass::DataAbortLower | ExceptionClass::DataAbortSame => {
                let d = self.data_abort();
                write!(
                    f,
                    " {} {}, DFSC={:#04x}",
                    if d.is_write() { "write" } else { "read" },
                    fault_status_name(d.status_code()),
                    d.status_code()
                )?;
                if d.is_valid() {
                    write!(f, ", {} bytes via x{}", d.access_size(), d.register())?;
                }
                if d.far_not_valid() {
                    write!(f, ", FAR not valid")?;
                }
                Ok(())
            }
            ExceptionClass::InstrAbortLower | ExceptionClass::InstrAbortSame => {
                let fsc = (self.iss() & 0x3f) as u8;
                write!(f, " {}, IFSC={:#04x}", fault_status_name(fsc), fsc)
            }
            ExceptionClass::Hvc64 | ExceptionClass::Smc64 | ExceptionClass::Brk64 => {
                write!(f, " imm16={:#x}", self.imm16())
            }
            ExceptionClass::SysRegTrap => {
                let s = self.sysreg();
                write!(
                    f,
                    " {} S{}_{}_C{}_C{}_{} x{}",
                    if s.is_read { "mrs" } else { "msr" },
                    s.op0,
                    s.op1,
                    s.crn,
                    s.crm,
                    s.op2,
                    s.rt
                )
            }
            _ => write!(f, " ISS={:#x}", self.iss()),
        }
    }
}

impl fmt::Debug for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    /// HVC #0 from EL1 as QEMU reports it.
    #[test]
    fn hvc_from_qemu() {
        let s = Syndrome::new(0x5a00_0000);
        assert_eq!(s.class(), ExceptionClass::Hvc64);
        assert_eq!(s.imm16(), 0);
        assert!(s.is_32bit_instruction());
    }

    /// A guest `ldr x2, [..]` to an unmapped IPA (QEMU: 0x93c28006).
    #[test]
    fn data_abort_load() {
        let s = Syndrome::new(0x93c2_8006);
        assert_eq!(s.class(), ExceptionClass::DataAbortLower);
        let d = s.data_abort();
        assert!(d.is_valid());
        assert_eq!(d.access_size(), 8);
        assert_eq!(d.register(), 2);
        assert!(d.is_64bit_register());
        assert!(!d.is_write());
        assert!(!d.sign_extend());
        assert_eq!(fault_status_name(d.status_code()), "translation fault");
    }

    /// The same access as a store sets WnR (QEMU: 0x93c28046).
    #[test]
    fn data_abort_store() {
        assert!(Syndrome::new(0x93c2_8046).data_abort().is_write());
    }

    /// A sign-extending halfword load into w5 (ldrsh w5): ISV, SAS=1, SSE, SRT=5, SF=0.
    #[test]
    fn data_abort_signed_halfword() {
        let raw = (0x24u64 << 26) | (1 << 25) | (1 << 24) | (1 << 22) | (1 << 21) | (5 << 16) | 0x07;
        let d = Syndrome::new(raw).data_abort();
        assert_eq!(d.access_size(), 2);
        assert!(d.sign_extend());
        assert_eq!(d.register(), 5);
        assert!(!d.is_64bit_register());
    }

    /// `mrs x3, ID_AA64PFR0_EL1` (S3_0_C0_C4_0) trapped by TID3.
    #[test]
    fn sysreg_read() {
        let iss = (3 << 20) | (0 << 17) | (0 << 14) | (0 << 10) | (3 << 5) | (4 << 1) | 1;
        let s = Syndrome::new((0x18u64 << 26) | (1 << 25) | iss);
        assert_eq!(s.class(), ExceptionClass::SysRegTrap);
        let r = s.sysreg();
        assert_eq!(r.encoding(), (3, 0, 0, 4, 0));
        assert_eq!(r.rt, 3);
        assert!(r.is_read);
    }

    /// Every 6-bit class decodes without panicking and has a name.
    #[test]
    fn every_class_has_a_name() {
        for ec in 0..64u8 {
            let c = ExceptionClass::from_raw(ec);
            assert!(!c.name().is_empty());
        }
    }

    /// The display form names the class and the decoded fields.
    #[test]
    fn display_is_decoded() {
        let text = Syndrome::new(0x9600_0045).to_string();
        assert!(text.contains("data abort at EL2"), "{text}");
        assert!(text.contains("write"), "{text}");
        assert!(text.contains("translation fault"), "{text}");
    }
}
