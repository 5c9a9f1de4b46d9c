//! Trapped system-register accesses: what each one means and what the guest sees.
//!
//! Tandem traps the ID registers (HCR_EL2.TID3) to hide what it does not
//! virtualize (SVE, SME, MTE, pointer authentication, PMU, SPE, trace, AMU,
//! MPAM, WFIT/WFET), the PMU (MDCR_EL2.TPM: UNDEFINED), debug registers (MDCR_EL2.TDA:
//! RAZ/WI), the EL1 physical timer (CNTHCTL_EL2.EL1PCEN = 0: RAZ/WI, guests
//! use the virtual timer), set/way cache maintenance (HCR_EL2.TSW: no-op,
//! guest memory is coherent) and GIC SGI generation (HCR_EL2.IMO). What the
//! ID registers hide but the hardware would let a guest use is trapped and
//! UNDEFINED ([`FeatureTraps`]): trace (CPTR_EL2.TTA, MDCR_EL2.TTRF), the
//! activity monitors (CPTR_EL2.TAM), RAS error records (HCR_EL2.TERR) and
//! LORegions (HCR_EL2.TLOR).
#![forbid(unsafe_code)]

use crate::aarch64::esr::SysRegAccess;

/// What to do with a trapped access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysRegAction {
    /// A read of an ID register: the arch layer reads the hardware value and
    /// returns it through [`sanitize_id`].
    IdRead {
        /// CRm of the encoding (op0 = 3, op1 = 0, CRn = 0).
        crm: u8,
        /// op2 of the encoding.
        op2: u8,
    },
    /// ICC_SGI1R_EL1 written: send SGIs.
    Sgi1r,
    /// Reads as zero, writes ignored.
    RazWi,
    /// Not available to guests: inject an UNDEFINED exception.
    Undefined,
}

/// Classifies a trapped MSR/MRS (or system instruction).
pub fn classify(a: &SysRegAccess) -> SysRegAction {
    match (a.op0, a.op1, a.crn, a.crm, a.op2) {
        // ID space: op0=3, op1=0, CRn=0, CRm=1..7.
        (3, 0, 0, 1..=7, _) if a.is_read => SysRegAction::IdRead {
            crm: a.crm,
            op2: a.op2,
        },
        (3, 0, 0, 1..=7, _) => SysRegAction::Undefined,
        // ICC_SGI1R_EL1.
        (3, 0, 12, 11, 5) if !a.is_read => SysRegAction::Sgi1r,
        // ICC_ASGI1R_EL1, ICC_SGI0R_EL1: group 0 / alternate SGIs are not offered.
        (3, 0, 12, 11, 6 | 7) => SysRegAction::RazWi,
        // CNTP_TVAL/CTL/CVAL_EL0: the EL1 physical timer is not offered.
        (3, 3, 14, 2, 0..=2) => SysRegAction::RazWi,
        // PMU: PMCR..PMCEID (CRn 9, CRm 12-14), PMEVCNTR/PMEVTYPER (CRn 14, CRm 8-15), PMINTEN*.
        (3, 3, 9, 12..=14, _) | (3, 3, 14, 8..=15, _) | (3, 0, 9, 14, _) => SysRegAction::Undefined,
        // Trace unit registers (op0 = 2, op1 = 1; CPTR_EL2.TTA) and TRFCR_EL1
        // (MDCR_EL2.TTRF): trace is hidden.
        (2, 1, _, _, _) | (3, 0, 1, 2, 1) => SysRegAction::Undefined,
        // Activity monitors (CPTR_EL2.TAM): AMCR_EL0..AMEVTYPER1<n>_EL0 (CRn 13, CRm 2-15).
        (3, 3, 13, 2..=15, _) => SysRegAction::Undefined,
        // RAS error records (HCR_EL2.TERR): ERRIDR/ERRSELR_EL1 (CRm 3), ERX*_EL1 (CRm 4, 5).
        (3, 0, 5, 3..=5, _) => SysRegAction::Undefined,
        // LORegions (HCR_EL2.TLOR): LORSA/LOREA/LORN/LORC/LORID_EL1.
        (3, 0, 10, 4, 0..=3 | 7) => SysRegAction::Undefined,
        // Debug and OS lock registers (op0 = 2): RAZ/WI.
        (2, _, _, _, _) => SysRegAction::RazWi,
        // DC ISW/CSW/CISW (set/way): no-op, stage-2 memory is coherent.
        (1, 0, 7, 6 | 10 | 14, 2) => SysRegAction::RazWi,
        // ACTLR_EL1 (HCR_EL2.TACR): RAZ/WI.
        (3, 0, 1, 0, 1) => SysRegAction::RazWi,
        _ => SysRegAction::Undefined,
    }
}

/// HCR_EL2.TERR: traps the RAS error record registers (FEAT_RAS).
pub const HCR_TERR: u64 = 1 << 36;
/// HCR_EL2.TLOR: traps the LORegion registers (FEAT_LOR).
pub const HCR_TLOR: u64 = 1 << 35;
/// MDCR_EL2.TTRF: traps TRFCR_EL1 (FEAT_TRF).
pub const MDCR_TTRF: u64 = 1 << 19;
/// CPTR_EL2.TTA (HCR_EL2.E2H = 0): traps the trace unit's system registers.
pub const CPTR_TTA: u64 = 1 << 20;
/// CPTR_EL2.TAM (HCR_EL2.E2H = 0): traps the activity monitor registers (FEAT_AMUv1).
pub const CPTR_TAM: u64 = 1 << 30;

/// The trap bits for features the ID registers hide, each set only where
/// the CPU has the feature (elsewhere the Arm ARM makes the bit RES0, and the
/// registers are UNDEFINED at EL1 anyway).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureTraps {
    /// Bits to add to HCR_EL2.
    pub hcr: u64,
    /// Bits to add to MDCR_EL2.
    pub mdcr: u64,
    /// Bits to add to CPTR_EL2.
    pub cptr: u64,
}

/// The 4-bit ID field at `lsb` is non-zero (the feature is there).
const fn has(id: u64, lsb: u32) -> bool {
    (id >> lsb) & 0xf != 0
}

impl FeatureTraps {
    /// The traps for a CPU with these (hardware, unsanitised) ID registers.
    pub fn for_cpu(pfr0: u64, dfr0: u64, mmfr1: u64) -> Self {
        let mut t = Self::default();
        // ID_AA64PFR0_EL1.RAS[31:28], AMU[47:44].
        if has(pfr0, 28) {
            t.hcr |= HCR_TERR;
        }
        if has(pfr0, 44) {
            t.cptr |= CPTR_TAM;
        }
        // ID_AA64MMFR1_EL1.LO[19:16].
        if has(mmfr1, 16) {
            t.hcr |= HCR_TLOR;
        }
        // ID_AA64DFR0_EL1.TraceVer[7:4] (system-register trace unit), TraceFilt[43:40].
        if has(dfr0, 4) {
            t.cptr |= CPTR_TTA;
        }
        if has(dfr0, 40) {
            t.mdcr |= MDCR_TTRF;
        }
        t
    }
}

/// Whether Tandem must invalidate the branch predictor when one VM follows another on a
/// CPU (Spectre-v2, CVE-2017-5715), given ID_AA64PFR0_EL1 and the firmware's answer to
/// `SMCCC_ARCH_FEATURES(SMCCC_ARCH_WORKAROUND_1)` (`None`: firmware without SMCCC 1.1).
///
/// With CSV2 (ID_AA64PFR0_EL1[59:56]) the hardware keeps contexts apart. Otherwise only
/// firmware can do it on the CPUs Tandem runs on: Cortex-A72's BPIALL invalidates nothing
/// unless EL3 enabled it, so Tandem calls SMCCC_ARCH_WORKAROUND_1, as KVM does, where the
/// firmware says the CPU is affected (0); 1 means unaffected, -1 no mitigation offered.
pub fn needs_bp_hardening(pfr0: u64, workaround_1: Option<i64>) -> bool {
    !has(pfr0, 56) && workaround_1 == Some(0)
}

const fn clear(value: u64, lsb: u32, width: u32) -> u64 {
    value & !(((1u64 << width) - 1) << lsb)
}

/// The value a guest reads from ID register (3, 0, 0, crm, op2), given the hardware value.
pub fn sanitize_id(crm: u8, op2: u8, hw: u64) -> u64 {
    match (crm, op2) {
        // ID_AA64PFR0_EL1: RAS[31:28], SVE[35:32], MPAM[43:40], AMU[47:44].
        (4, 0) => clear(clear(clear(clear(hw, 28, 4), 32, 4), 40, 4), 44, 4),
        // ID_AA64PFR1_EL1: MTE[11:8], RAS_frac[15:12], MPAM_frac[19:16], SME[27:24],
        // NMI[39:36].
        (4, 1) => {
            let mut v = hw;
            for lsb in [8, 12, 16, 24, 36] {
                v = clear(v, lsb, 4);
            }
            v
        }
        // ID_AA64MMFR1_EL1: LO[19:16] (LORegions).
        (7, 1) => clear(hw, 16, 4),
        // ID_AA64ZFR0_EL1 (SVE), ID_AA64SMFR0_EL1 (SME).
        (4, 4) | (4, 5) => 0,
        // ID_AA64DFR0_EL1: TraceVer[7:4], PMUVer[11:8], PMSVer[35:32], TraceFilt[43:40],
        // MTPMU[51:48], BRBE[55:52].
        (5, 0) => {
            let mut v = hw;
            for lsb in [4, 8, 32, 40, 48, 52] {
                v = clear(v, lsb, 4);
            }
            v
        }
        // ID_AA64ISAR1_EL1: APA[7:4], API[11:8], GPA[27:24], GPI[31:28] (pointer auth).
        (6, 1) => clear(clear(clear(clear(hw, 4, 4), 8, 4), 24, 4), 28, 4),
        // ID_AA64ISAR2_EL1: WFxT[3:0] (WFIT/WFET: Tandem gives them WFE's yield, see
        // `vcpu::exit::VmExit::Wfe`), GPA3[11:8], APA3[15:12].
        (6, 2) => clear(clear(clear(hw, 0, 4), 8, 4), 12, 4),
        _ => hw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8, is_read: bool) -> SysRegAccess {
        SysRegAccess {
            op0,
            op1,
            crn,
            crm,
            op2,
            rt: 0,
            is_read,
        }
    }

    /// ICC_SGI1R_EL1 writes become SGIs.
    #[test]
    fn sgi1r() {
        assert_eq!(
            classify(&access(3, 0, 12, 11, 5, false)),
            SysRegAction::Sgi1r
        );
    }

    /// ID reads are passed to sanitising; ID writes are undefined.
    #[test]
    fn id_registers() {
        assert_eq!(
            classify(&access(3, 0, 0, 4, 0, true)),
            SysRegAction::IdRead { crm: 4, op2: 0 }
        );
        assert_eq!(
            classify(&access(3, 0, 0, 4, 0, false)),
            SysRegAction::Undefined
        );
    }

    /// `-cpu max`'s ID_AA64PFR0 loses SVE and AMU but keeps the GIC field.
    #[test]
    fn hide_sve() {
        let max_pfr0 = 0x1301_0011_2111_0222u64;
        let v = sanitize_id(4, 0, max_pfr0);
        assert_eq!((v >> 32) & 0xf, 0, "SVE");
        assert_eq!((v >> 44) & 0xf, 0, "AMU");
        assert_eq!((v >> 24) & 0xf, (max_pfr0 >> 24) & 0xf, "GIC");
    }

    /// FEAT_WFxT reads as absent: a trapped WFIT never waits past its
    /// timeout, but no guest should count on more. ISAR2's other fields (but
    /// pointer authentication's) pass unchanged.
    #[test]
    fn hide_wfxt() {
        let isar2 = 0x0000_0000_0011_0012u64; // WFxT = 2, RPRES = 1, MOPS = 1, BC = 1
        assert_eq!(sanitize_id(6, 2, isar2), 0x0000_0000_0011_0010);
    }

    /// The PMU version reads as absent, so Linux never touches PMU registers.
    #[test]
    fn hide_pmu() {
        assert_eq!((sanitize_id(5, 0, 0x0000_0000_1000_6606) >> 8) & 0xf, 0);
    }

    /// PMU accesses are undefined; debug and physical-timer accesses are RAZ/WI.
    #[test]
    fn traps() {
        assert_eq!(
            classify(&access(3, 3, 9, 12, 0, true)),
            SysRegAction::Undefined,
            "PMCR_EL0"
        );
        assert_eq!(
            classify(&access(2, 0, 0, 2, 2, false)),
            SysRegAction::RazWi,
            "MDSCR_EL1"
        );
        assert_eq!(
            classify(&access(3, 3, 14, 2, 1, false)),
            SysRegAction::RazWi,
            "CNTP_CTL_EL0"
        );
        assert_eq!(
            classify(&access(3, 4, 12, 9, 5, true)),
            SysRegAction::Undefined,
            "unknown"
        );
    }

    /// Finding 8: trace, trace filter, activity monitor, RAS error record
    /// and LORegion registers, which the ID registers hide, are UNDEFINED,
    /// reads and writes alike (trace used to be RAZ/WI, as debug registers).
    #[test]
    fn hidden_features_undefined() {
        for (name, op0, op1, crn, crm, op2) in [
            ("TRCPRGCTLR", 2, 1, 0, 1, 0),
            ("TRCIDR0", 2, 1, 0, 8, 7),
            ("TRFCR_EL1", 3, 0, 1, 2, 1),
            ("AMCR_EL0", 3, 3, 13, 2, 0),
            ("AMEVCNTR00_EL0", 3, 3, 13, 4, 0),
            ("ERRIDR_EL1", 3, 0, 5, 3, 0),
            ("ERXSTATUS_EL1", 3, 0, 5, 4, 2),
            ("ERXMISC0_EL1", 3, 0, 5, 5, 0),
            ("LORC_EL1", 3, 0, 10, 4, 3),
            ("LORID_EL1", 3, 0, 10, 4, 7),
        ] {
            for is_read in [true, false] {
                assert_eq!(
                    classify(&access(op0, op1, crn, crm, op2, is_read)),
                    SysRegAction::Undefined,
                    "{name} read={is_read}"
                );
            }
        }
    }

    /// Each trap is set only where the CPU has the feature: none on a
    /// Cortex-A72, all on a CPU with RAS, AMU, LOR, system-register trace and TRF.
    #[test]
    fn feature_traps_follow_the_cpu() {
        // Cortex-A72 (r0p3): ID_AA64PFR0, ID_AA64DFR0, ID_AA64MMFR1.
        assert_eq!(
            FeatureTraps::for_cpu(0x2222, 0x1030_5106, 0),
            FeatureTraps::default()
        );
        let pfr0 = (1 << 28) | (1 << 44) | 0x2222;
        let dfr0 = (1 << 40) | (1 << 4) | 0x1030_5106;
        let mmfr1 = 1 << 16;
        assert_eq!(
            FeatureTraps::for_cpu(pfr0, dfr0, mmfr1),
            FeatureTraps {
                hcr: HCR_TERR | HCR_TLOR,
                mdcr: MDCR_TTRF,
                cptr: CPTR_TTA | CPTR_TAM,
            }
        );
    }

    /// Branch-predictor hardening only where firmware says the CPU is affected and
    /// CSV2 does not say the hardware keeps contexts apart.
    #[test]
    fn bp_hardening() {
        let a72 = 0x2222;
        assert!(needs_bp_hardening(a72, Some(0)));
        assert!(!needs_bp_hardening(a72, Some(1)), "unaffected");
        assert!(!needs_bp_hardening(a72, Some(-1)), "no firmware mitigation");
        assert!(
            !needs_bp_hardening(a72, None),
            "SMCCC 1.0 firmware (QEMU's PSCI)"
        );
        assert!(!needs_bp_hardening(a72 | (1 << 56), Some(0)), "CSV2");
    }

    /// RAS and LORegions read as absent, as do the features they trap.
    #[test]
    fn hide_ras_and_lor() {
        assert_eq!((sanitize_id(4, 0, 0x1000_2222) >> 28) & 0xf, 0, "RAS");
        assert_eq!(sanitize_id(4, 1, 0x1000), 0, "RAS_frac");
        assert_eq!(sanitize_id(7, 1, 0x0011_0000), 0x0010_0000, "LO");
    }
}
