//! Why a vCPU left the guest: the raw snapshot and its pure decoding.
#![forbid(unsafe_code)]

use crate::aarch64::esr::{ExceptionClass, Syndrome, SysRegAccess};

/// Which vector the exit came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitVector {
    /// Synchronous exception (trap).
    Sync,
    /// Physical IRQ.
    Irq,
    /// Physical FIQ.
    Fiq,
    /// SError.
    SError,
}

/// Registers the arch layer reads once at every exit.
#[derive(Clone, Copy, Debug)]
pub struct ExitSnapshot {
    /// The vector.
    pub vector: ExitVector,
    /// ESR_EL2.
    pub esr: u64,
    /// FAR_EL2.
    pub far: u64,
    /// HPFAR_EL2.
    pub hpfar: u64,
}

/// A trapped instruction Tandem completes or skips: what the PC moves by,
/// and the condition an AArch32 one was executed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trapped {
    /// Its length in bytes: 2 for a 16-bit T32 instruction (ESR.IL = 0), else 4.
    pub len: u8,
    /// Its condition (ESR.CV/COND), if the syndrome gives one; see
    /// [`Syndrome::condition`].
    pub cond: Option<u8>,
}

impl Trapped {
    fn of(syn: Syndrome) -> Self {
        Self {
            len: if syn.is_32bit_instruction() { 4 } else { 2 },
            cond: syn.condition(),
        }
    }
}

/// A decoded data abort on guest memory that is not plain RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The faulting intermediate physical address.
    pub ipa: u64,
    /// The faulting virtual address (FAR_EL2), if the syndrome says it is valid.
    pub va: Option<u64>,
    /// The length of the load or store instruction (2 for a 16-bit T32 one).
    pub len: u8,
    /// Store (else load).
    pub write: bool,
    /// Access size in bytes.
    pub size: u8,
    /// Transfer register (31 = xzr).
    pub reg: u8,
    /// Sign-extend the loaded value.
    pub sign_extend: bool,
    /// Destination register is 64-bit.
    pub sixty_four: bool,
}

/// A decoded exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmExit {
    /// A physical interrupt arrived while the guest ran.
    Irq,
    /// HVC with its immediate (the PC is already past it).
    Hvc(u16),
    /// SMC with its immediate (the PC still points at it).
    Smc(u16),
    /// WFI.
    Wfi(Trapped),
    /// WFE, and WFIT/WFET, which Tandem does not offer (ID_AA64ISAR2_EL1.WFxT
    /// reads 0): like WFE they end in a yield, a wake-up the architecture
    /// allows at any time, so they never wait past their timeout.
    Wfe(Trapped),
    /// A load or store the hypervisor can emulate.
    Mmio(MmioAccess),
    /// A data abort without instruction syndrome (cannot be emulated).
    MmioNoSyndrome {
        /// The faulting IPA.
        ipa: u64,
        /// The faulting virtual address, if valid.
        va: Option<u64>,
        /// Store (else load).
        write: bool,
    },
    /// An instruction fetch from an IPA with no mapping.
    InstrAbort {
        /// The faulting IPA.
        ipa: u64,
        /// The faulting virtual address, if valid.
        va: Option<u64>,
    },
    /// A trapped MSR/MRS.
    SysReg(SysRegAccess),
    /// FP/SIMD or SVE access trapped.
    FpTrap,
    /// An AArch64 instruction of a feature Tandem does not offer trapped:
    /// pointer authentication, SME.
    Unoffered,
    /// A trapped AArch32 (EL0) coprocessor or VMRS access: none is offered.
    Aarch32Trap(Trapped),
    /// An SError from the guest.
    SError,
    /// Anything else: the raw exception class.
    Other(u8),
}

/// The IPA of a stage-2 fault: HPFAR gives bits 47:12, FAR the page offset.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) << 12) & 0x000f_ffff_ffff_f000 | (far & 0xfff)
}

/// Decodes a snapshot. Total: any value gives an exit, never a panic.
pub fn decode(s: &ExitSnapshot) -> VmExit {
    match s.vector {
        ExitVector::Irq | ExitVector::Fiq => return VmExit::Irq,
        ExitVector::SError => return VmExit::SError,
        ExitVector::Sync => {}
    }
    let syn = Syndrome::new(s.esr);
    match syn.class() {
        ExceptionClass::Hvc64 => VmExit::Hvc(syn.imm16()),
        ExceptionClass::Smc64 => VmExit::Smc(syn.imm16()),
        ExceptionClass::WfxTrap => {
            // ISS.TI[1:0]: 0 = WFI, 1 = WFE, 2 = WFIT, 3 = WFET.
            if syn.iss() & 0b11 == 0b00 {
                VmExit::Wfi(Trapped::of(syn))
            } else {
                VmExit::Wfe(Trapped::of(syn))
            }
        }
        ExceptionClass::DataAbortLower => {
            let d = syn.data_abort();
            let ipa = fault_ipa(s.hpfar, s.far);
            let va = (!d.far_not_valid()).then_some(s.far);
            if d.is_valid() && !d.is_cache_maintenance() && !d.on_stage1_walk() {
                VmExit::Mmio(MmioAccess {
                    ipa,
                    va,
                    len: if syn.is_32bit_instruction() { 4 } else { 2 },
                    write: d.is_write(),
                    size: d.access_size(),
                    reg: d.register(),
                    sign_extend: d.sign_extend(),
                    sixty_four: d.is_64bit_register(),
                })
            } else {
                VmExit::MmioNoSyndrome {
                    ipa,
                    va,
                    write: d.is_write(),
                }
            }
        }
        ExceptionClass::InstrAbortLower => VmExit::InstrAbort {
            ipa: fault_ipa(s.hpfar, s.far),
            // The instruction-abort ISS has FnV at the same place.
            va: (!syn.data_abort().far_not_valid()).then_some(s.far),
        },
        ExceptionClass::SysRegTrap => VmExit::SysReg(syn.sysreg()),
        ExceptionClass::FpSimdTrap | ExceptionClass::SveTrap => VmExit::FpTrap,
        ExceptionClass::PacTrap | ExceptionClass::SmeTrap => VmExit::Unoffered,
        ExceptionClass::Cp15Trap32
        | ExceptionClass::Cp15Trap64
        | ExceptionClass::Cp14Trap32
        | ExceptionClass::Cp14LdcStc
        | ExceptionClass::Cp14Trap64
        | ExceptionClass::VmrsTrap => VmExit::Aarch32Trap(Trapped::of(syn)),
        ExceptionClass::SError => VmExit::SError,
        _ => VmExit::Other((s.esr >> 26) as u8 & 0x3f),
    }
}

/// The register value a load of `size` bytes produces, per the ISS.
pub fn load_value(raw: u64, access: &MmioAccess) -> u64 {
    let bits = u32::from(access.size) * 8;
    let mut v = if bits >= 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    };
    if access.sign_extend && bits < 64 {
        let shift = 64 - bits;
        v = (((v << shift) as i64) >> shift) as u64;
    }
    if !access.sixty_four {
        v &= 0xffff_ffff;
    }
    v
}

/// The bytes a store writes: the low `size` bytes of the register.
pub fn store_value(reg: u64, access: &MmioAccess) -> u64 {
    let bits = u32::from(access.size) * 8;
    if bits >= 64 {
        reg
    } else {
        reg & ((1u64 << bits) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(esr: u64) -> ExitSnapshot {
        ExitSnapshot {
            vector: ExitVector::Sync,
            esr,
            far: 0x5000_0008,
            hpfar: 0x50_0000,
        }
    }

    /// QEMU's load/store exits decode to MMIO accesses with the IPA rebuilt from HPFAR and FAR.
    #[test]
    fn qemu_load_and_store() {
        let VmExit::Mmio(load) = decode(&sync(0x93c2_8006)) else {
            panic!()
        };
        assert_eq!(
            load,
            MmioAccess {
                ipa: 0x5000_0008,
                va: Some(0x5000_0008),
                len: 4,
                write: false,
                size: 8,
                reg: 2,
                sign_extend: false,
                sixty_four: true
            }
        );
        let VmExit::Mmio(store) = decode(&sync(0x93c2_8046)) else {
            panic!()
        };
        assert!(store.write);
    }

    const A64: Trapped = Trapped {
        len: 4,
        cond: Some(0xe),
    };

    /// HVC, SMC, WFI and WFE are told apart.
    #[test]
    fn traps() {
        assert_eq!(decode(&sync(0x5a00_0000)), VmExit::Hvc(0));
        assert_eq!(decode(&sync(0x5e00_0000)), VmExit::Smc(0));
        // From AArch64: IL, CV and COND = always.
        assert_eq!(decode(&sync(0x07e0_0000)), VmExit::Wfi(A64));
        assert_eq!(decode(&sync(0x07e0_0001)), VmExit::Wfe(A64));
    }

    /// WFIT and WFET (ISS.TI 2 and 3, RV, Rt) are not waits for an
    /// interrupt with no end: they get WFE's yield.
    #[test]
    fn wfit_and_wfet_never_block() {
        let wfit = 0x07e0_0000 | (5 << 5) | (1 << 2) | 0b10;
        assert_eq!(decode(&sync(wfit)), VmExit::Wfe(A64));
        assert_eq!(decode(&sync(wfit | 1)), VmExit::Wfe(A64));
    }

    /// Trapped AArch32 instructions keep their length (a 16-bit T32 `wfi`
    /// or `ldr` has IL = 0) and condition.
    #[test]
    fn aarch32_lengths_and_conditions() {
        // T32 `wfi` (16-bit) in an IT block: CV = 0.
        assert_eq!(
            decode(&sync(0x0400_0000)),
            VmExit::Wfi(Trapped { len: 2, cond: None })
        );
        // A32 `wfine`: CV, COND = NE.
        assert_eq!(
            decode(&sync(0x0600_0000 | (1 << 24) | (1 << 20))),
            VmExit::Wfi(Trapped {
                len: 4,
                cond: Some(1)
            })
        );
        // T32 `ldr r0, [r1]` (16-bit) from the vGIC.
        let esr = (0x24u64 << 26) | (1 << 24) | (2 << 22) | 0x06;
        let VmExit::Mmio(a) = decode(&sync(esr)) else {
            panic!()
        };
        assert_eq!((a.len, a.reg, a.size), (2, 0, 4));
    }

    /// AArch32 coprocessor and VMRS traps, pointer authentication and SME are
    /// told from the exits Tandem cannot serve.
    #[test]
    fn unoffered_instructions() {
        for ec in [0x03u64, 0x04, 0x05, 0x06, 0x08, 0x0c] {
            let esr = (ec << 26) | (1 << 25) | (1 << 24) | (0xe << 20);
            assert_eq!(decode(&sync(esr)), VmExit::Aarch32Trap(A64), "EC {ec:#x}");
        }
        assert_eq!(decode(&sync(0x09 << 26 | 1 << 25)), VmExit::Unoffered);
        assert_eq!(decode(&sync(0x1d << 26 | 1 << 25)), VmExit::Unoffered);
        assert_eq!(decode(&sync(0x3f << 26)), VmExit::Other(0x3f));
    }

    /// The faulting virtual address is FAR_EL2 unless ISS.FnV says it is not valid.
    #[test]
    fn fault_va() {
        let s = ExitSnapshot {
            far: 0xffff_0000_1234_5678,
            ..sync(0x9200_0046)
        };
        assert_eq!(
            decode(&s),
            VmExit::MmioNoSyndrome {
                ipa: 0x5000_0678,
                va: Some(0xffff_0000_1234_5678),
                write: true
            }
        );
        let fnv = ExitSnapshot {
            esr: 0x9200_0046 | 1 << 10,
            ..s
        };
        assert!(matches!(
            decode(&fnv),
            VmExit::MmioNoSyndrome { va: None, .. }
        ));
        let fetch = ExitSnapshot {
            esr: 0x8200_0006,
            ..s
        };
        assert_eq!(
            decode(&fetch),
            VmExit::InstrAbort {
                ipa: 0x5000_0678,
                va: Some(0xffff_0000_1234_5678)
            }
        );
    }

    /// An abort without ISV cannot be emulated and says so.
    #[test]
    fn no_syndrome() {
        let esr = (0x24u64 << 26) | (1 << 25) | (1 << 6) | 0x06;
        assert_eq!(
            decode(&sync(esr)),
            VmExit::MmioNoSyndrome {
                ipa: 0x5000_0008,
                va: Some(0x5000_0008),
                write: true
            }
        );
    }

    /// Sign extension and 32-bit destinations follow the ISS.
    #[test]
    fn load_extension() {
        let a = MmioAccess {
            ipa: 0,
            va: None,
            len: 4,
            write: false,
            size: 1,
            reg: 0,
            sign_extend: true,
            sixty_four: true,
        };
        assert_eq!(load_value(0x80, &a), 0xffff_ffff_ffff_ff80);
        let w = MmioAccess {
            sixty_four: false,
            ..a
        };
        assert_eq!(load_value(0x80, &w), 0xffff_ff80);
        let h = MmioAccess {
            size: 2,
            sign_extend: false,
            ..a
        };
        assert_eq!(load_value(0x1234_5678, &h), 0x5678);
        assert_eq!(
            store_value(0x1234_5678, &MmioAccess { size: 4, ..a }),
            0x1234_5678
        );
    }

    /// Every ESR value decodes without panicking.
    #[test]
    fn total() {
        for ec in 0..64u64 {
            for iss in [0u64, 0x1ff_ffff, 0x00c2_8046] {
                let _ = decode(&sync((ec << 26) | iss));
            }
        }
    }
}
