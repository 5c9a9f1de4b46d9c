//! Tandem status codes: the signed value a Tandem call returns in `x0`.
//!
//! The codes follow the SMCCC convention (DEN0028 §7.1): 0 is success, negative values are
//! errors, and `NOT_SUPPORTED` (-1), `NOT_REQUIRED` (-2) and `INVALID_PARAMETER` (-3) have
//! their SMCCC meanings. Tandem adds `DENIED` (-4) and `BUSY` (-5). New codes may only be added
//! by a minor ABI version and only for calls introduced in that version, so a guest never sees
//! a code it does not know from a call it knows.

/// A Tandem call status, returned as a signed 64-bit value in `x0`.
///
/// ```
/// use pv_abi::Status;
///
/// // x0 of a Tandem call, as a guest reads it.
/// let x0: u64 = (-3i64) as u64;
/// assert_eq!(Status::from_reg(x0), Some(Status::InvalidParameter));
/// assert_eq!(Status::InvalidParameter.to_string(), "INVALID_PARAMETER");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Status {
    /// The call succeeded; results follow in `x1..x3`.
    Success = 0,
    /// The function ID is not implemented (also the answer to any unknown ID).
    NotSupported = -1,
    /// The call is implemented but has nothing to do on this system.
    NotRequired = -2,
    /// An argument is out of range (for example a console length above 48 or an unknown stat).
    InvalidParameter = -3,
    /// The caller is not allowed to perform the operation.
    Denied = -4,
    /// A resource is temporarily unavailable; retry later.
    Busy = -5,
}

impl Status {
    /// Every status, in code order (0 first).
    ///
    /// ```
    /// let codes: Vec<i64> = pv_abi::Status::ALL.iter().map(|s| s.as_raw()).collect();
    /// assert_eq!(codes, [0, -1, -2, -3, -4, -5]);
    /// ```
    pub const ALL: [Status; 6] = [
        Status::Success,
        Status::NotSupported,
        Status::NotRequired,
        Status::InvalidParameter,
        Status::Denied,
        Status::Busy,
    ];

    /// Decodes a raw status; `None` for values this ABI version does not define.
    ///
    /// ```
    /// use pv_abi::Status;
    ///
    /// assert_eq!(Status::from_raw(-5), Some(Status::Busy));
    /// assert_eq!(Status::from_raw(-42), None);
    /// ```
    pub const fn from_raw(raw: i64) -> Option<Self> {
        Some(match raw {
            0 => Status::Success,
            -1 => Status::NotSupported,
            -2 => Status::NotRequired,
            -3 => Status::InvalidParameter,
            -4 => Status::Denied,
            -5 => Status::Busy,
            _ => return None,
        })
    }

    /// The raw signed value.
    ///
    /// ```
    /// assert_eq!(pv_abi::Status::Denied.as_raw(), -4);
    /// ```
    pub const fn as_raw(self) -> i64 {
        self as i64
    }

    /// Decodes an `x0` result register (two's complement); `None` for unknown values.
    ///
    /// ```
    /// use pv_abi::Status;
    ///
    /// assert_eq!(Status::from_reg(u64::MAX), Some(Status::NotSupported)); // -1
    /// assert_eq!(Status::from_reg(0), Some(Status::Success));
    /// ```
    pub const fn from_reg(x0: u64) -> Option<Self> {
        Self::from_raw(x0 as i64)
    }

    /// The status as an `x0` register value (two's complement).
    ///
    /// ```
    /// assert_eq!(pv_abi::Status::NotSupported.to_reg(), 0xFFFF_FFFF_FFFF_FFFF);
    /// ```
    pub const fn to_reg(self) -> u64 {
        self as i64 as u64
    }

    /// The upper-case name used in specifications and the C header (`"INVALID_PARAMETER"`).
    ///
    /// ```
    /// assert_eq!(pv_abi::Status::NotRequired.name(), "NOT_REQUIRED"); // TANDEM_ST_NOT_REQUIRED in C
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::NotSupported => "NOT_SUPPORTED",
            Status::NotRequired => "NOT_REQUIRED",
            Status::InvalidParameter => "INVALID_PARAMETER",
            Status::Denied => "DENIED",
            Status::Busy => "BUSY",
        }
    }

    /// `Ok(())` for [`Status::Success`], `Err(self)` otherwise.
    ///
    /// ```
    /// use pv_abi::Status;
    ///
    /// assert_eq!(Status::Success.into_result(), Ok(()));
    /// assert_eq!(Status::Busy.into_result(), Err(Status::Busy));
    /// ```
    pub const fn into_result(self) -> Result<(), Status> {
        match self {
            Status::Success => Ok(()),
            e => Err(e),
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status survives `as_raw` then `from_raw`, and `to_reg` then `from_reg`.
    #[test]
    fn raw_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_raw(s.as_raw()), Some(s));
            assert_eq!(Status::from_reg(s.to_reg()), Some(s));
        }
    }

    /// The codes have the values the ABI fixes.
    #[test]
    fn values_are_fixed() {
        let expect = [0, -1, -2, -3, -4, -5];
        for (s, v) in Status::ALL.into_iter().zip(expect) {
            assert_eq!(s.as_raw(), v, "{s}");
        }
        assert_eq!(Status::NotSupported.to_reg(), u64::MAX);
    }

    /// Values outside the table decode to `None`, including the 32-bit form of -1.
    #[test]
    fn unknown_raw_is_none() {
        for raw in [1, 2, -6, i64::MIN, i64::MAX, 0xffff_ffff] {
            assert_eq!(Status::from_raw(raw), None, "{raw}");
        }
    }

    /// `into_result` is `Ok` exactly for success.
    #[test]
    fn into_result_only_ok_on_success() {
        for s in Status::ALL {
            assert_eq!(s.into_result().is_ok(), s == Status::Success);
        }
    }
}
