//! SMC Calling Convention: function-ID fields and the standard IDs Tandem shares with guests.
//!
//! Every Tandem call, PSCI call and discovery query is an SMCCC function ID passed in `w0`
//! (Arm DEN0028, "SMC Calling Convention", §2.5). The 32-bit ID is split into fields:
//!
//! | Bits  | Field            | Meaning                                                 |
//! |-------|------------------|---------------------------------------------------------|
//! | 31    | call type        | 1 = fast call (atomic), 0 = yielding call               |
//! | 30    | calling conv.    | 1 = SMC64/HVC64 (x registers), 0 = SMC32/HVC32 (w regs) |
//! | 29:24 | OEN              | owning entity number (service range)                    |
//! | 23:16 | reserved         | must be zero for fast calls (bit 16 is the v1.3 SVE hint) |
//! | 15:0  | function number  | call within the service                                 |
//!
//! The function ID occupies only `w0`: the upper 32 bits of `x0` are ignored by the callee, as
//! SMCCC specifies and as KVM and Hafnium implement. [`FunctionId::from_reg`] applies that rule.
//!
//! This module also names the SMCCC architecture calls (OEN 0) and the generic queries of the
//! vendor-specific hypervisor service (OEN 6) that guests use to discover Tandem.

use core::fmt;

/// A 32-bit SMCCC function identifier (the value a caller places in `w0`).
///
/// ```
/// use pv_abi::smccc::{FunctionId, OEN_VENDOR_HYP};
///
/// let id = FunctionId::new(0xC600_0001); // Tandem VM_INFO
/// assert!(id.is_fast() && id.is_smc64());
/// assert_eq!((id.oen(), id.number()), (OEN_VENDOR_HYP, 1));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct FunctionId(u32);

impl FunctionId {
    /// Bit 31: set for fast calls, clear for yielding calls.
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert_eq!(0x8600_FF01 & FunctionId::FAST_BIT, FunctionId::FAST_BIT);
    /// ```
    pub const FAST_BIT: u32 = 1 << 31;
    /// Bit 30: set for the SMC64/HVC64 calling convention, clear for SMC32/HVC32.
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert_eq!(0xC400_0003 & FunctionId::SMC64_BIT, FunctionId::SMC64_BIT); // CPU_ON (64)
    /// ```
    pub const SMC64_BIT: u32 = 1 << 30;
    /// Position of the lowest bit of the 6-bit owning entity number (bits 29:24).
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert_eq!((0xC600_0000 >> FunctionId::OEN_SHIFT) & FunctionId::OEN_MASK, 6);
    /// ```
    pub const OEN_SHIFT: u32 = 24;
    /// Mask of the owning entity number after shifting right by [`Self::OEN_SHIFT`].
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert_eq!(FunctionId::OEN_MASK, 0x3f); // six bits
    /// ```
    pub const OEN_MASK: u32 = 0x3f;
    /// Mask of the 16-bit function number (bits 15:0).
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert_eq!(0x8600_FF03 & FunctionId::NUMBER_MASK, 0xFF03);
    /// ```
    pub const NUMBER_MASK: u32 = 0xffff;

    /// Wraps a raw 32-bit function ID.
    ///
    /// ```
    /// assert_eq!(pv_abi::smccc::FunctionId::new(0x8000_0000).raw(), 0x8000_0000);
    /// ```
    pub const fn new(raw: u32) -> Self {
        Self(raw)
    }

    /// Builds a fast-call ID from its fields. `oen` is truncated to 6 bits.
    ///
    /// ```
    /// use pv_abi::smccc::{FunctionId, OEN_VENDOR_HYP};
    ///
    /// assert_eq!(FunctionId::fast(true, OEN_VENDOR_HYP, 5).raw(), 0xC600_0005); // STATS
    /// ```
    pub const fn fast(smc64: bool, oen: u8, number: u16) -> Self {
        let conv = if smc64 { Self::SMC64_BIT } else { 0 };
        Self(
            Self::FAST_BIT
                | conv
                | (((oen as u32) & Self::OEN_MASK) << Self::OEN_SHIFT)
                | number as u32,
        )
    }

    /// Extracts the function ID from a caller's `x0`: only `w0` (the low 32 bits) counts.
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// // Only w0 counts: the upper half of x0 is ignored.
    /// assert_eq!(FunctionId::from_reg(0xdead_beef_C600_0000), FunctionId::new(0xC600_0000));
    /// ```
    pub const fn from_reg(x0: u64) -> Self {
        Self(x0 as u32)
    }

    /// The raw 32-bit value.
    ///
    /// ```
    /// assert_eq!(pv_abi::HypercallId::Yield.fid().raw(), 0xC600_0004);
    /// ```
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The ID zero-extended to a 64-bit register value, ready for `x0`.
    ///
    /// ```
    /// assert_eq!(pv_abi::smccc::SMCCC_VERSION.to_reg(), 0x8000_0000_u64);
    /// ```
    pub const fn to_reg(self) -> u64 {
        self.0 as u64
    }

    /// Whether this is a fast (atomic) call rather than a yielding one.
    ///
    /// ```
    /// use pv_abi::smccc::FunctionId;
    ///
    /// assert!(FunctionId::new(0x8400_0000).is_fast());
    /// assert!(!FunctionId::new(0x0400_0001).is_fast()); // a yielding call
    /// ```
    pub const fn is_fast(self) -> bool {
        self.0 & Self::FAST_BIT != 0
    }

    /// Whether this call uses the SMC64/HVC64 convention (64-bit arguments and results).
    ///
    /// ```
    /// assert!(!pv_abi::smccc::VENDOR_HYP_CALL_UID.is_smc64()); // discovery is SMC32
    /// ```
    pub const fn is_smc64(self) -> bool {
        self.0 & Self::SMC64_BIT != 0
    }

    /// The owning entity number (bits 29:24), for example [`OEN_VENDOR_HYP`].
    ///
    /// ```
    /// use pv_abi::smccc::{OEN_STANDARD, FunctionId};
    ///
    /// assert_eq!(FunctionId::new(0x8400_0008).oen(), OEN_STANDARD); // PSCI SYSTEM_OFF
    /// ```
    pub const fn oen(self) -> u8 {
        ((self.0 >> Self::OEN_SHIFT) & Self::OEN_MASK) as u8
    }

    /// The function number within the service (bits 15:0).
    ///
    /// ```
    /// assert_eq!(pv_abi::smccc::VENDOR_HYP_REVISION.number(), 0xFF03);
    /// ```
    pub const fn number(self) -> u16 {
        (self.0 & Self::NUMBER_MASK) as u16
    }
}

impl fmt::Debug for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionId({:#010x})", self.0)
    }
}

impl fmt::LowerHex for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl From<FunctionId> for u32 {
    fn from(id: FunctionId) -> u32 {
        id.0
    }
}

/// OEN 0: Arm architecture calls (`SMCCC_VERSION`, `SMCCC_ARCH_FEATURES`, workarounds).
///
/// ```
/// assert_eq!(pv_abi::smccc::SMCCC_VERSION.oen(), pv_abi::smccc::OEN_ARCH);
/// ```
pub const OEN_ARCH: u8 = 0;
/// OEN 1: CPU service calls.
///
/// ```
/// assert_eq!(pv_abi::smccc::FunctionId::fast(false, pv_abi::smccc::OEN_CPU, 0).raw(), 0x8100_0000);
/// ```
pub const OEN_CPU: u8 = 1;
/// OEN 2: silicon-partner (SiP) service calls.
///
/// ```
/// assert_eq!(pv_abi::smccc::FunctionId::new(0x8200_0000).oen(), pv_abi::smccc::OEN_SIP);
/// ```
pub const OEN_SIP: u8 = 2;
/// OEN 3: OEM service calls.
///
/// ```
/// assert_eq!(pv_abi::smccc::FunctionId::new(0x8300_0000).oen(), pv_abi::smccc::OEN_OEM);
/// ```
pub const OEN_OEM: u8 = 3;
/// OEN 4: standard secure service calls (PSCI lives here).
///
/// ```
/// assert_eq!(pv_abi::psci::CPU_ON.oen(), pv_abi::smccc::OEN_STANDARD);
/// ```
pub const OEN_STANDARD: u8 = 4;
/// OEN 5: standard hypervisor service calls.
///
/// ```
/// assert_eq!(pv_abi::smccc::FunctionId::new(0x8500_0000).oen(), pv_abi::smccc::OEN_STANDARD_HYP);
/// ```
pub const OEN_STANDARD_HYP: u8 = 5;
/// Arm paravirtualized time (DEN0057), in the standard hypervisor service:
/// `PV_TIME_FEATURES` (`x1` = a PV time function ID; 0 if it is offered).
///
/// ```
/// assert_eq!(pv_abi::smccc::PV_TIME_FEATURES.raw(), 0xC500_0020);
/// ```
pub const PV_TIME_FEATURES: FunctionId = FunctionId::fast(true, OEN_STANDARD_HYP, 0x20);
/// `PV_TIME_ST`: the IPA of the calling vCPU's stolen-time structure (64 bytes:
/// `u32` revision 0, `u32` attributes 0, `u64` stolen time in ns, little-endian).
///
/// ```
/// assert_eq!(pv_abi::smccc::PV_TIME_ST.raw(), 0xC500_0021);
/// ```
pub const PV_TIME_ST: FunctionId = FunctionId::fast(true, OEN_STANDARD_HYP, 0x21);

/// OEN 6: vendor-specific hypervisor service calls (Tandem's range).
///
/// ```
/// use pv_abi::smccc::OEN_VENDOR_HYP;
///
/// assert!(pv_abi::HypercallId::ALL.iter().all(|hc| hc.fid().oen() == OEN_VENDOR_HYP));
/// ```
pub const OEN_VENDOR_HYP: u8 = 6;

/// `SMCCC_VERSION` (SMC32): returns the implemented SMCCC version in `w0`.
///
/// ```
/// use pv_abi::smccc::{SMCCC_VERSION, SMCCC_VERSION_1_1};
///
/// // Linux asks first; Tandem answers 1.1 in w0.
/// assert_eq!((SMCCC_VERSION.raw(), SMCCC_VERSION_1_1), (0x8000_0000, 0x0001_0001));
/// ```
pub const SMCCC_VERSION: FunctionId = FunctionId::new(0x8000_0000);
/// `SMCCC_ARCH_FEATURES` (SMC32): `w1` = queried function ID; `w0` = 0 if implemented, else
/// `NOT_SUPPORTED`.
///
/// ```
/// use pv_abi::HvcArgs;
/// use pv_abi::smccc::{SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1};
///
/// // Is WORKAROUND_1 implemented? (Tandem: no, NOT_SUPPORTED.)
/// let args = HvcArgs::new(SMCCC_ARCH_FEATURES).with(1, SMCCC_ARCH_WORKAROUND_1.to_reg());
/// assert_eq!(args.x[..2], [0x8000_0001, 0x8000_8000]);
/// ```
pub const SMCCC_ARCH_FEATURES: FunctionId = FunctionId::new(0x8000_0001);
/// `SMCCC_ARCH_SOC_ID` (SMC32): SoC identification; Linux probes it with `SMCCC_ARCH_FEATURES`.
///
/// ```
/// assert_eq!(pv_abi::smccc::SMCCC_ARCH_SOC_ID.number(), 2);
/// ```
pub const SMCCC_ARCH_SOC_ID: FunctionId = FunctionId::new(0x8000_0002);
/// `SMCCC_ARCH_WORKAROUND_1` (SMC32): Spectre-v2 (CVE-2017-5715) branch-predictor hardening.
///
/// ```
/// assert_eq!(pv_abi::smccc::SMCCC_ARCH_WORKAROUND_1.raw(), 0x8000_8000);
/// ```
pub const SMCCC_ARCH_WORKAROUND_1: FunctionId = FunctionId::new(0x8000_8000);
/// `SMCCC_ARCH_WORKAROUND_2` (SMC32): Spectre-v4 (CVE-2018-3639) mitigation control.
///
/// ```
/// assert_eq!(pv_abi::smccc::SMCCC_ARCH_WORKAROUND_2.raw(), 0x8000_7fff);
/// ```
pub const SMCCC_ARCH_WORKAROUND_2: FunctionId = FunctionId::new(0x8000_7fff);
/// `SMCCC_ARCH_WORKAROUND_3` (SMC32): Spectre-BHB (CVE-2022-23960) mitigation.
///
/// ```
/// assert_eq!(pv_abi::smccc::SMCCC_ARCH_WORKAROUND_3.raw(), 0x8000_3fff);
/// ```
pub const SMCCC_ARCH_WORKAROUND_3: FunctionId = FunctionId::new(0x8000_3fff);

/// The SMCCC version Tandem implements and reports from [`SMCCC_VERSION`]: v1.1
/// (`major << 16 | minor`).
///
/// ```
/// let v = pv_abi::smccc::SMCCC_VERSION_1_1;
/// assert_eq!((v >> 16, v & 0xffff), (1, 1));
/// ```
pub const SMCCC_VERSION_1_1: u32 = 0x0001_0001;

/// Vendor hypervisor service `Call UID` query (SMC32 fast, OEN 6, function 0xFF01).
///
/// Returns the service UUID in `w0..w3`; see [`crate::Uuid::to_regs`] for the packing. A
/// hypervisor without this service returns [`NOT_SUPPORTED_U32`] in `w0`.
///
/// ```
/// use pv_abi::{HvcRet, TANDEM_UUID, Uuid};
/// use pv_abi::smccc::VENDOR_HYP_CALL_UID;
///
/// assert_eq!(VENDOR_HYP_CALL_UID.raw(), 0x8600_FF01);
/// // Tandem's reply carries its UUID in w0..w3:
/// let reply = HvcRet::call_uid(&TANDEM_UUID);
/// let w = reply.x.map(|x| x as u32);
/// assert_eq!(Uuid::from_regs(w), TANDEM_UUID);
/// ```
pub const VENDOR_HYP_CALL_UID: FunctionId = FunctionId::fast(false, OEN_VENDOR_HYP, 0xff01);
/// Vendor hypervisor service `Revision` query (SMC32 fast, OEN 6, function 0xFF03).
///
/// Returns the service revision: `w0` = major, `w1` = minor (for Tandem, the ABI version).
///
/// ```
/// use pv_abi::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR, HvcRet};
///
/// assert_eq!(pv_abi::smccc::VENDOR_HYP_REVISION.raw(), 0x8600_FF03);
/// let reply = HvcRet::revision(); // w0 = major, w1 = minor
/// assert_eq!((reply.x[0], reply.x[1]), (u64::from(ABI_VERSION_MAJOR), u64::from(ABI_VERSION_MINOR)));
/// ```
pub const VENDOR_HYP_REVISION: FunctionId = FunctionId::fast(false, OEN_VENDOR_HYP, 0xff03);

/// SMCCC `NOT_SUPPORTED` (-1) as a 32-bit register value: what an SMC32 query such as
/// [`VENDOR_HYP_CALL_UID`] returns in `w0` when the service does not exist.
///
/// ```
/// use pv_abi::smccc::NOT_SUPPORTED_U32;
///
/// // A hypervisor without the vendor service: w0 = 0xFFFF_FFFF, so "not Tandem".
/// let w0 = 0xFFFF_FFFF_u32;
/// assert_eq!(w0, NOT_SUPPORTED_U32);
/// ```
pub const NOT_SUPPORTED_U32: u32 = 0xffff_ffff;

#[cfg(test)]
mod tests {
    use super::*;

    /// The field accessors decode the SMCCC specification's example IDs.
    #[test]
    fn field_decode_matches_smccc_examples() {
        // (id, fast, smc64, oen, number)
        let cases: [(u32, bool, bool, u8, u16); 8] = [
            (0x8000_0000, true, false, OEN_ARCH, 0x0000), // SMCCC_VERSION
            (0x8400_0000, true, false, OEN_STANDARD, 0x0000), // PSCI_VERSION
            (0xC400_0003, true, true, OEN_STANDARD, 0x0003), // PSCI CPU_ON (64)
            (0x8600_FF01, true, false, OEN_VENDOR_HYP, 0xFF01), // vendor hyp Call UID
            (0xC600_0005, true, true, OEN_VENDOR_HYP, 0x0005), // Tandem STATS
            (0xBF00_FF01, true, false, 63, 0xFF01),       // Trusted OS Call UID
            (0x0400_0001, false, false, OEN_STANDARD, 0x0001), // a yielding SMC32 call
            (0x4600_1234, false, true, OEN_VENDOR_HYP, 0x1234), // a yielding SMC64 call
        ];
        for (raw, fast, smc64, oen, number) in cases {
            let id = FunctionId::new(raw);
            assert_eq!(id.is_fast(), fast, "{id:?}");
            assert_eq!(id.is_smc64(), smc64, "{id:?}");
            assert_eq!(id.oen(), oen, "{id:?}");
            assert_eq!(id.number(), number, "{id:?}");
        }
    }

    /// `FunctionId::fast` composes the same IDs the accessors decode.
    #[test]
    fn fast_constructor_round_trips_fields() {
        for smc64 in [false, true] {
            for oen in 0..64u8 {
                for number in [0u16, 1, 0x00ff, 0xff01, 0xffff] {
                    let id = FunctionId::fast(smc64, oen, number);
                    assert!(id.is_fast());
                    assert_eq!(id.is_smc64(), smc64);
                    assert_eq!(id.oen(), oen);
                    assert_eq!(id.number(), number);
                    assert_eq!(id.raw() & 0x00ff_0000, 0, "reserved bits must stay zero");
                }
            }
        }
    }

    /// Only `w0` carries the function ID: the upper half of `x0` is ignored.
    #[test]
    fn from_reg_ignores_upper_half() {
        let id = FunctionId::from_reg(0xdead_beef_8600_ff01);
        assert_eq!(id, VENDOR_HYP_CALL_UID);
        assert_eq!(id.to_reg(), 0x8600_ff01);
    }

    /// The discovery IDs have the values the SMCCC vendor hypervisor service defines.
    #[test]
    fn discovery_ids_match_smccc() {
        assert_eq!(VENDOR_HYP_CALL_UID.raw(), 0x8600_FF01);
        assert_eq!(VENDOR_HYP_REVISION.raw(), 0x8600_FF03);
        assert_eq!(NOT_SUPPORTED_U32, -1i32 as u32);
    }
}
