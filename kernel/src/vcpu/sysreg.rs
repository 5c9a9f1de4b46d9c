//! Trapped system-register accesses: what each one means and what the guest sees.
//!
//! Tandem traps the ID registers (HCR_EL2.TID3) to hide what it does not
//! virtualize (SVE, SME, MTE, pointer authentication, PMU, SPE, trace, AMU,
//! MPAM, WFIT/WFET), the PMU (MDCR_EL2.TPM: UNDEFINED), debug registers (MDCR_EL2.TDA:
//! RAZ/WI), the EL1 physical timer (CNTHCTL_EL2.EL1PCEN = 0: RAZ/WI, guests
//! use the virtual timer), set/way cache maintenance (HCR_EL2.TSW: no-op,
//! guest memory is coherent) and GIC SGI generation (HCR_EL2.IMO).
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
        // Debug and OS lock registers (op0 = 2): RAZ/WI.
        (2, _, _, _, _) => SysRegAction::RazWi,
        // DC ISW/CSW/CISW (set/way): no-op, stage-2 memory is coherent.
        (1, 0, 7, 6 | 10 | 14, 2) => SysRegAction::RazWi,
        // ACTLR_EL1 (HCR_EL2.TACR): RAZ/WI.
        (3, 0, 1, 0, 1) => SysRegAction::RazWi,
        _ => SysRegAction::Undefined,
    }
}

const fn clear(value: u64, lsb: u32, width: u32) -> u64 {
    value & !(((1u64 << width) - 1) << lsb)
}

/// The value a guest reads from ID register (3, 0, 0, crm, op2), given the hardware value.
pub fn sanitize_id(crm: u8, op2: u8, hw: u64) -> u64 {
    match (crm, op2) {
        // ID_AA64PFR0_EL1: SVE[35:32], MPAM[43:40], AMU[47:44].
        (4, 0) => clear(clear(clear(hw, 32, 4), 40, 4), 44, 4),
        // ID_AA64PFR1_EL1: MTE[11:8], MPAM_frac[19:16], SME[27:24], NMI[39:36].
        (4, 1) => clear(clear(clear(clear(hw, 8, 4), 16, 4), 24, 4), 36, 4),
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
}
