//! PSCI function IDs and return codes shared by the hypervisor's PSCI emulation and guests.
//!
//! Tandem emulates the Power State Coordination Interface (Arm DEN0022) for its guests over the
//! same `hvc #0` conduit as the Tandem calls; guests describe it in their device tree as
//! `psci { compatible = "arm,psci-1.0"; method = "hvc"; }`. PSCI calls live in the standard
//! secure service range (OEN 4). Return values are signed 32-bit integers in `w0`; the
//! hypervisor writes them sign-extended to 64 bits, as KVM does.
//!
//! Only the functions a Tandem guest uses (and the ones Linux probes at boot) are named here.

use crate::smccc::FunctionId;

/// `PSCI_VERSION` (SMC32): returns the PSCI version, `major << 16 | minor`, in `w0`.
///
/// ```
/// use pv_abi::psci::{self, PSCI_VERSION};
///
/// assert_eq!(PSCI_VERSION.raw(), 0x8400_0000);
/// // Tandem answers with PSCI 1.1 in w0:
/// assert_eq!(psci::result_from_reg(u64::from(psci::VERSION_1_1)), Ok(0x0001_0001));
/// ```
pub const PSCI_VERSION: FunctionId = FunctionId::new(0x8400_0000);
/// `CPU_SUSPEND` (SMC64): `x1` = power state, `x2` = entry point, `x3` = context id.
///
/// ```
/// assert!(pv_abi::psci::CPU_SUSPEND.is_smc64());
/// ```
pub const CPU_SUSPEND: FunctionId = FunctionId::new(0xC400_0001);
/// `CPU_OFF` (SMC32): powers down the calling vCPU; returns only on failure.
///
/// ```
/// use pv_abi::{HvcArgs, psci};
///
/// // CPU_OFF takes no argument: x0 = the ID, the rest zero.
/// let args = HvcArgs::new(psci::CPU_OFF);
/// assert_eq!(args.x, [0x8400_0002, 0, 0, 0, 0, 0, 0, 0]);
/// ```
pub const CPU_OFF: FunctionId = FunctionId::new(0x8400_0002);
/// `CPU_ON` (SMC64): `x1` = target MPIDR, `x2` = entry point (IPA), `x3` = context id, which the
/// target receives in `x0`.
///
/// ```
/// use pv_abi::HvcArgs;
/// use pv_abi::psci::{CPU_ON, EntryPoint, Mpidr};
///
/// // Start vCPU 1 at 0x4008_1000 with x0 = 7 (Client::cpu_on builds exactly this).
/// let args = HvcArgs::new(CPU_ON)
///     .with(1, Mpidr::new(0, 0, 0, 1).to_reg())
///     .with(2, EntryPoint::new(0x4008_1000).addr())
///     .with(3, 7);
/// assert_eq!(args.x[..4], [0xC400_0003, 1, 0x4008_1000, 7]);
/// ```
pub const CPU_ON: FunctionId = FunctionId::new(0xC400_0003);
/// `AFFINITY_INFO` (SMC64): `x1` = target affinity, `x2` = lowest affinity level; returns an
/// [`AffinityState`] value or an error.
///
/// ```
/// assert_eq!(pv_abi::psci::AFFINITY_INFO.number(), 4);
/// ```
pub const AFFINITY_INFO: FunctionId = FunctionId::new(0xC400_0004);
/// `MIGRATE_INFO_TYPE` (SMC32): Linux asks it at boot; Tandem answers
/// [`MIGRATE_INFO_TYPE_NOT_PRESENT`].
///
/// ```
/// assert_eq!(pv_abi::psci::MIGRATE_INFO_TYPE.raw(), 0x8400_0006);
/// ```
pub const MIGRATE_INFO_TYPE: FunctionId = FunctionId::new(0x8400_0006);
/// `SYSTEM_OFF` (SMC32): powers off the calling VM; returns only on failure.
///
/// ```
/// use pv_abi::{HvcArgs, psci};
///
/// // Powers off this VM only: Tandem and the other VMs carry on.
/// assert_eq!(HvcArgs::new(psci::SYSTEM_OFF).x[0], 0x8400_0008);
/// ```
pub const SYSTEM_OFF: FunctionId = FunctionId::new(0x8400_0008);
/// `SYSTEM_RESET` (SMC32): resets the calling VM; returns only on failure.
///
/// ```
/// assert!(!pv_abi::psci::SYSTEM_RESET.is_smc64()); // an SMC32 call, no arguments
/// ```
pub const SYSTEM_RESET: FunctionId = FunctionId::new(0x8400_0009);
/// `PSCI_FEATURES` (SMC32): `w1` = queried function ID; returns its feature flags (0 when
/// implemented with no optional features) or [`Error::NotSupported`].
///
/// ```
/// use pv_abi::psci::{PSCI_FEATURES, SYSTEM_SUSPEND};
///
/// // PSCI_FEATURES(SYSTEM_SUSPEND): x1 = the queried function ID.
/// let query = [PSCI_FEATURES.to_reg(), SYSTEM_SUSPEND.to_reg()];
/// assert_eq!(query, [0x8400_000A, 0xC400_000E]);
/// ```
pub const PSCI_FEATURES: FunctionId = FunctionId::new(0x8400_000A);
/// `SYSTEM_SUSPEND` (SMC64): Linux probes it with [`PSCI_FEATURES`].
///
/// ```
/// assert_eq!(pv_abi::psci::SYSTEM_SUSPEND.raw(), 0xC400_000E);
/// ```
pub const SYSTEM_SUSPEND: FunctionId = FunctionId::new(0xC400_000E);

/// `MIGRATE_INFO_TYPE` result 2: no Trusted OS needs migration (always Tandem's answer).
///
/// ```
/// assert_eq!(pv_abi::psci::MIGRATE_INFO_TYPE_NOT_PRESENT, 2);
/// ```
pub const MIGRATE_INFO_TYPE_NOT_PRESENT: u32 = 2;

/// Encodes a PSCI version number as `PSCI_VERSION` returns it.
///
/// ```
/// assert_eq!(pv_abi::psci::version(1, 1), 0x0001_0001);
/// ```
pub const fn version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// PSCI 1.1, the version Tandem's emulation reports.
///
/// ```
/// use pv_abi::psci;
///
/// assert!(psci::VERSION_1_1 >= psci::version(0, 2)); // what Linux needs for CPU_ON over HVC
/// ```
pub const VERSION_1_1: u32 = version(1, 1);

/// The PSCI success return code.
///
/// ```
/// use pv_abi::psci;
///
/// assert_eq!(psci::result_from_reg(psci::SUCCESS as u64), Ok(0));
/// ```
pub const SUCCESS: i32 = 0;

/// A PSCI error return code (DEN0022 §5.2.2). Success is [`SUCCESS`], not a variant.
///
/// ```
/// use pv_abi::psci::{self, Error};
///
/// // x0 after a CPU_ON of a vCPU that is already running:
/// let x0 = Error::AlreadyOn.to_reg();
/// assert_eq!(psci::result_from_reg(x0), Err(Error::AlreadyOn));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Error {
    /// The function is not implemented.
    NotSupported = -1,
    /// An argument is invalid.
    InvalidParameters = -2,
    /// The caller may not perform the operation.
    Denied = -3,
    /// `CPU_ON`: the target is already on.
    AlreadyOn = -4,
    /// `CPU_ON`: a previous `CPU_ON` for the target is still pending.
    OnPending = -5,
    /// The implementation failed internally.
    InternalFailure = -6,
    /// The target does not exist.
    NotPresent = -7,
    /// The target is disabled.
    Disabled = -8,
    /// The entry point address is invalid.
    InvalidAddress = -9,
}

impl Error {
    /// Every PSCI error, in code order (-1 first).
    ///
    /// ```
    /// use pv_abi::psci::Error;
    ///
    /// assert!(Error::ALL.iter().all(|e| Error::from_raw(e.as_raw()) == Some(*e)));
    /// ```
    pub const ALL: [Error; 9] = [
        Error::NotSupported,
        Error::InvalidParameters,
        Error::Denied,
        Error::AlreadyOn,
        Error::OnPending,
        Error::InternalFailure,
        Error::NotPresent,
        Error::Disabled,
        Error::InvalidAddress,
    ];

    /// Decodes a raw PSCI return code; `None` for success, positive values and unknown codes.
    ///
    /// ```
    /// use pv_abi::psci::Error;
    ///
    /// assert_eq!(Error::from_raw(-9), Some(Error::InvalidAddress));
    /// assert_eq!(Error::from_raw(0), None); // success is not an error
    /// ```
    pub const fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            -1 => Error::NotSupported,
            -2 => Error::InvalidParameters,
            -3 => Error::Denied,
            -4 => Error::AlreadyOn,
            -5 => Error::OnPending,
            -6 => Error::InternalFailure,
            -7 => Error::NotPresent,
            -8 => Error::Disabled,
            -9 => Error::InvalidAddress,
            _ => return None,
        })
    }

    /// The raw (negative) return code.
    ///
    /// ```
    /// assert_eq!(pv_abi::psci::Error::Denied.as_raw(), -3);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self as i32
    }

    /// The code sign-extended to the 64-bit `x0` value a PSCI implementation returns.
    ///
    /// ```
    /// assert_eq!(pv_abi::psci::Error::NotSupported.to_reg(), u64::MAX);
    /// ```
    pub const fn to_reg(self) -> u64 {
        self as i32 as i64 as u64
    }

    /// The name DEN0022 gives the code (`"ALREADY_ON"`); also what `Display` prints.
    ///
    /// ```
    /// use pv_abi::psci::Error;
    ///
    /// assert_eq!(Error::AlreadyOn.name(), "ALREADY_ON");
    /// assert_eq!(Error::InvalidAddress.to_string(), "INVALID_ADDRESS");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Error::NotSupported => "NOT_SUPPORTED",
            Error::InvalidParameters => "INVALID_PARAMETERS",
            Error::Denied => "DENIED",
            Error::AlreadyOn => "ALREADY_ON",
            Error::OnPending => "ON_PENDING",
            Error::InternalFailure => "INTERNAL_FAILURE",
            Error::NotPresent => "NOT_PRESENT",
            Error::Disabled => "DISABLED",
            Error::InvalidAddress => "INVALID_ADDRESS",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for Error {}

/// A target CPU of [`CPU_ON`] and [`AFFINITY_INFO`]: the affinity fields of its `MPIDR_EL1`
/// (Aff3 in bits 39:32, Aff2..Aff0 in bits 23:0), every other bit zero.
///
/// On Tandem, vCPU `n` of a VM has Aff0 = `n` and the other affinity fields zero, so
/// `Mpidr::new(0, 0, 0, n)` names it.
///
/// ```
/// use pv_abi::psci::Mpidr;
///
/// assert_eq!(Mpidr::new(0, 0, 0, 1).to_reg(), 1);
/// // A raw MPIDR_EL1 value keeps only its affinity fields (bit 31 is RES1 in the register).
/// assert_eq!(Mpidr::from_reg(0x8000_0001), Mpidr::new(0, 0, 0, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mpidr(u64);

impl Mpidr {
    /// The affinity bits of `MPIDR_EL1`: Aff3 (39:32) and Aff2..Aff0 (23:0).
    ///
    /// ```
    /// use pv_abi::psci::Mpidr;
    ///
    /// assert_eq!(0x8000_0003 & Mpidr::AFFINITY_MASK, 3); // bit 31 (RES1) dropped
    /// ```
    pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

    /// The CPU with affinity `aff3.aff2.aff1.aff0`.
    ///
    /// ```
    /// assert_eq!(pv_abi::psci::Mpidr::new(1, 2, 3, 4).to_reg(), 0x01_0002_0304);
    /// ```
    pub const fn new(aff3: u8, aff2: u8, aff1: u8, aff0: u8) -> Self {
        Self((aff3 as u64) << 32 | (aff2 as u64) << 16 | (aff1 as u64) << 8 | aff0 as u64)
    }

    /// The affinity fields of a raw `MPIDR_EL1` value; the other bits are dropped.
    ///
    /// ```
    /// use pv_abi::psci::Mpidr;
    ///
    /// // MPIDR_EL1 of vCPU 1 (U = 0, MT = 0, bit 31 RES1).
    /// assert_eq!(Mpidr::from_reg(0x8000_0001), Mpidr::new(0, 0, 0, 1));
    /// ```
    pub const fn from_reg(mpidr_el1: u64) -> Self {
        Self(mpidr_el1 & Self::AFFINITY_MASK)
    }

    /// The value passed in the target register (`x1` of `CPU_ON`).
    ///
    /// ```
    /// assert_eq!(pv_abi::psci::Mpidr::new(0, 0, 0, 2).to_reg(), 2);
    /// ```
    pub const fn to_reg(self) -> u64 {
        self.0
    }
}

/// Where [`CPU_ON`] starts a CPU: the address of its first instruction, which it executes
/// with its MMU off (on Tandem an IPA, the same as the physical address the guest sees).
///
/// ```
/// use pv_abi::psci::EntryPoint;
///
/// assert_eq!(EntryPoint::new(0x4008_0000).addr(), 0x4008_0000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryPoint(u64);

impl EntryPoint {
    /// The entry point at `addr` (an IPA under Tandem).
    ///
    /// ```
    /// let entry = pv_abi::psci::EntryPoint::new(0x4008_0088);
    /// assert_eq!(entry.addr(), 0x4008_0088);
    /// ```
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }

    /// The address (`x2` of `CPU_ON`).
    ///
    /// ```
    /// assert_eq!(pv_abi::psci::EntryPoint::new(0x4100_0000).addr(), 0x4100_0000);
    /// ```
    pub const fn addr(self) -> u64 {
        self.0
    }
}

/// Interprets a PSCI result register: a non-negative `w0` is `Ok` with its value, a negative
/// one is the matching [`Error`]. Unknown negative codes become [`Error::InternalFailure`].
///
/// ```
/// use pv_abi::psci::{AffinityState, Error, result_from_reg};
///
/// assert_eq!(result_from_reg(AffinityState::Off as u64), Ok(1)); // AFFINITY_INFO: off
/// assert_eq!(result_from_reg((-2i64) as u64), Err(Error::InvalidParameters));
/// assert_eq!(result_from_reg((-77i64) as u64), Err(Error::InternalFailure)); // unknown code
/// ```
pub const fn result_from_reg(x0: u64) -> Result<u32, Error> {
    let w0 = x0 as u32 as i32;
    if w0 >= 0 {
        return Ok(w0 as u32);
    }
    match Error::from_raw(w0) {
        Some(e) => Err(e),
        None => Err(Error::InternalFailure),
    }
}

/// `AFFINITY_INFO` results for a target that exists.
///
/// ```
/// use pv_abi::psci::{AffinityState, result_from_reg};
///
/// let x0 = 0; // AFFINITY_INFO's answer
/// assert_eq!(result_from_reg(x0), Ok(AffinityState::On as u32));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AffinityState {
    /// At least one core in the affinity instance is on.
    On = 0,
    /// All cores in the affinity instance are off.
    Off = 1,
    /// A `CPU_ON` is pending for the instance.
    OnPending = 2,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PSCI IDs have the values of DEN0022 and are fast calls in the standard service.
    #[test]
    fn ids_are_standard_service_fast_calls() {
        let ids = [
            (PSCI_VERSION, 0x8400_0000, false),
            (CPU_SUSPEND, 0xC400_0001, true),
            (CPU_OFF, 0x8400_0002, false),
            (CPU_ON, 0xC400_0003, true),
            (AFFINITY_INFO, 0xC400_0004, true),
            (MIGRATE_INFO_TYPE, 0x8400_0006, false),
            (SYSTEM_OFF, 0x8400_0008, false),
            (SYSTEM_RESET, 0x8400_0009, false),
            (PSCI_FEATURES, 0x8400_000A, false),
            (SYSTEM_SUSPEND, 0xC400_000E, true),
        ];
        for (id, raw, smc64) in ids {
            assert_eq!(id.raw(), raw);
            assert!(id.is_fast());
            assert_eq!(id.is_smc64(), smc64);
            assert_eq!(id.oen(), crate::smccc::OEN_STANDARD);
        }
    }

    /// Every PSCI error survives `as_raw` then `from_raw`, and the codes run -1..=-9.
    #[test]
    fn error_raw_round_trip() {
        for (i, e) in Error::ALL.into_iter().enumerate() {
            assert_eq!(e.as_raw(), -(i as i32) - 1);
            assert_eq!(Error::from_raw(e.as_raw()), Some(e));
            assert_eq!(result_from_reg(e.to_reg()), Err(e));
        }
        assert_eq!(Error::from_raw(SUCCESS), None);
        assert_eq!(Error::from_raw(-10), None);
    }

    /// Every error has its DEN0022 name, and `Display` prints it.
    #[test]
    fn error_names() {
        extern crate std;
        use std::string::ToString;
        let names = [
            "NOT_SUPPORTED",
            "INVALID_PARAMETERS",
            "DENIED",
            "ALREADY_ON",
            "ON_PENDING",
            "INTERNAL_FAILURE",
            "NOT_PRESENT",
            "DISABLED",
            "INVALID_ADDRESS",
        ];
        for (e, name) in Error::ALL.into_iter().zip(names) {
            assert_eq!(e.name(), name);
            assert_eq!(e.to_string(), name);
        }
    }

    /// `Mpidr` places the affinity fields and drops every other bit of a raw MPIDR_EL1.
    #[test]
    fn mpidr_affinity_fields() {
        assert_eq!(Mpidr::new(0x12, 0x34, 0x56, 0x78).to_reg(), 0x12_0034_5678);
        assert_eq!(
            Mpidr::from_reg(0xffff_ffff_ffff_ffff).to_reg(),
            Mpidr::AFFINITY_MASK
        );
        // U (bit 30), MT (bit 24) and RES1 bit 31 are not affinity.
        assert_eq!(Mpidr::from_reg(0xc100_0002), Mpidr::new(0, 0, 0, 2));
    }

    /// Result registers: non-negative `w0` is a value, the upper half of `x0` is ignored.
    #[test]
    fn result_from_reg_reads_w0() {
        assert_eq!(result_from_reg(0), Ok(0));
        assert_eq!(result_from_reg(u64::from(VERSION_1_1)), Ok(0x0001_0001));
        assert_eq!(result_from_reg(0xffff_ffff), Err(Error::NotSupported));
        assert_eq!(result_from_reg(0xffff_ffff_0000_0002), Ok(2));
        assert_eq!(result_from_reg(-100i64 as u64), Err(Error::InternalFailure));
    }
}
