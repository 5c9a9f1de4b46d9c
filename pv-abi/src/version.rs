//! The ABI version as a value: [`AbiVersion`], and the version this crate implements.
//!
//! Both discovery (`Revision`) and the `VERSION` call report the hypervisor's ABI version as two
//! registers, major and minor. [`AbiVersion`] names them, orders them and prints them as
//! `major.minor`; the compatibility rules are the crate's versioning policy (see the crate
//! documentation, "Versioning").

use crate::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR};

/// An ABI version, `major.minor`.
///
/// Versions order by major, then minor. Two versions are compatible when their majors are
/// equal; within a major, a higher minor only adds calls.
///
/// ```
/// use pv_abi::{ABI_VERSION, AbiVersion};
///
/// let hyp = AbiVersion::new(1, 2);
/// assert_eq!(hyp.to_string(), "1.2");
/// assert!(hyp.supports(ABI_VERSION)); // 1.2 offers everything of 1.0
/// assert!(!AbiVersion::new(1, 0).supports(AbiVersion::new(1, 1)));
/// assert!(!AbiVersion::new(2, 0).supports(ABI_VERSION)); // another major
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbiVersion {
    /// Changes only for incompatible changes; a guest requires an exact match.
    pub major: u32,
    /// Grows with compatible additions.
    pub minor: u32,
}

impl AbiVersion {
    /// The version `major.minor`.
    ///
    /// ```
    /// use pv_abi::AbiVersion;
    ///
    /// let v = AbiVersion::new(1, 0);
    /// assert_eq!((v.major, v.minor), (1, 0));
    /// assert!(AbiVersion::new(1, 1) > v);
    /// ```
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Whether a hypervisor reporting `self` offers everything of `required`: the same major
    /// and at least its minor.
    ///
    /// A guest may still run on a hypervisor with a lower minor than its own, as long as it
    /// does not use the calls that minor lacks; [`Client::discover`](crate::Client::discover)
    /// accepts any minor of the right major for that reason.
    ///
    /// ```
    /// use pv_abi::AbiVersion;
    ///
    /// let hypervisor = AbiVersion::new(1, 0); // from Revision
    /// // A guest that wants a 1.1 call checks first, and falls back otherwise.
    /// let has_1_1_calls = hypervisor.supports(AbiVersion::new(1, 1));
    /// assert!(!has_1_1_calls);
    /// assert!(hypervisor.supports(AbiVersion::new(1, 0)));
    /// ```
    pub const fn supports(self, required: AbiVersion) -> bool {
        self.major == required.major && self.minor >= required.minor
    }
}

impl core::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The ABI version this crate implements:
/// [`ABI_VERSION_MAJOR`]`.`[`ABI_VERSION_MINOR`].
///
/// ```
/// use pv_abi::{ABI_VERSION, ABI_VERSION_MAJOR, ABI_VERSION_MINOR};
///
/// assert_eq!((ABI_VERSION.major, ABI_VERSION.minor), (ABI_VERSION_MAJOR, ABI_VERSION_MINOR));
/// println!("this guest speaks Tandem ABI {ABI_VERSION}");
/// ```
pub const ABI_VERSION: AbiVersion = AbiVersion::new(ABI_VERSION_MAJOR, ABI_VERSION_MINOR);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    /// Display is `major.minor`, ordering is by major then minor.
    #[test]
    fn display_and_order() {
        assert_eq!(ABI_VERSION.to_string(), "1.2");
        assert_eq!(AbiVersion::new(12, 34).to_string(), "12.34");
        assert!(AbiVersion::new(1, 9) < AbiVersion::new(2, 0));
        assert!(AbiVersion::new(1, 0) < AbiVersion::new(1, 1));
    }

    /// `supports` needs the same major and at least the minor.
    #[test]
    fn supports_same_major_higher_minor() {
        let v = AbiVersion::new(1, 1);
        assert!(v.supports(AbiVersion::new(1, 0)));
        assert!(v.supports(v));
        assert!(!v.supports(AbiVersion::new(1, 2)));
        assert!(!v.supports(AbiVersion::new(0, 0)));
        assert!(!AbiVersion::new(2, 5).supports(AbiVersion::new(1, 0)));
    }
}
