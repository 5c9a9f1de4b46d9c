//! ESR_EL1 decoding for the faults the guests expect: pure, host-tested.
//!
//! Only what the tests assert is decoded: the exception class, IL, and for data aborts WnR
//! and the fault status code (Arm ARM D19.2.42, ESR_EL1).

/// Exception class 0x00: unknown reason (UNDEFINED instruction, trapped and injected
/// UNDEFINED system register accesses).
pub const EC_UNKNOWN: u8 = 0x00;
/// Exception class 0x25: data abort taken without a change in exception level.
pub const EC_DATA_ABORT_SAME_EL: u8 = 0x25;
/// Data fault status code 0b010000: synchronous external abort, not on a translation walk.
pub const DFSC_SYNC_EXTERNAL: u8 = 0x10;

/// A decoded ESR_EL1 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syndrome(pub u64);

impl Syndrome {
    /// ESR_EL1.EC, bits \[31:26\].
    pub const fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// ESR_EL1.IL, bit 25: a 32-bit instruction trapped.
    pub const fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// Data aborts: ISS.WnR, bit 6 (the access was a write).
    pub const fn wnr(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Data aborts: ISS.DFSC, bits \[5:0\].
    pub const fn dfsc(self) -> u8 {
        (self.0 & 0x3f) as u8
    }

    /// A synchronous external data abort from EL1 (what Tandem injects for an IPA that is
    /// neither RAM nor emulated), for a write if `write`.
    pub const fn is_external_abort(self, write: bool) -> bool {
        self.ec() == EC_DATA_ABORT_SAME_EL
            && self.dfsc() == DFSC_SYNC_EXTERNAL
            && self.wnr() == write
    }

    /// An UNDEFINED instruction (EC 0x00) of 32 bits.
    pub const fn is_undefined(self) -> bool {
        self.ec() == EC_UNKNOWN && self.il()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The syndromes Tandem injects decode to the fields the tests check.
    #[test]
    fn decodes_injected_syndromes() {
        let cases = [
            // (ESR, EC, IL, WnR, DFSC)
            (0x9600_0050, 0x25, true, true, 0x10), // store to nothing
            (0x9600_0010, 0x25, true, false, 0x10), // load from nothing
            (0x0200_0000, 0x00, true, false, 0x00), // injected UNDEFINED
            (0x9200_0010, 0x24, true, false, 0x10), // from EL0: not "same EL"
        ];
        for (raw, ec, il, wnr, dfsc) in cases {
            let s = Syndrome(raw);
            assert_eq!(
                (s.ec(), s.il(), s.wnr(), s.dfsc()),
                (ec, il, wnr, dfsc),
                "{raw:#x}"
            );
        }
    }

    /// The predicates accept exactly the expected outcome.
    #[test]
    fn predicates() {
        assert!(Syndrome(0x9600_0050).is_external_abort(true));
        assert!(!Syndrome(0x9600_0050).is_external_abort(false));
        assert!(Syndrome(0x9600_0010).is_external_abort(false));
        assert!(!Syndrome(0x9600_0007).is_external_abort(false)); // translation fault, level 3
        assert!(!Syndrome(0x9200_0010).is_external_abort(false));
        assert!(Syndrome(0x0200_0000).is_undefined());
        assert!(!Syndrome(0x5a00_0000).is_undefined()); // HVC64
    }
}
