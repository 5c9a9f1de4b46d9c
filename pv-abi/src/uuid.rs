//! The Tandem service UUID and its SMCCC register form.
//!
//! A guest discovers Tandem by issuing the vendor hypervisor service `Call UID` query
//! ([`crate::smccc::VENDOR_HYP_CALL_UID`]) and comparing `w0..w3` with [`TANDEM_UUID_REGS`].
//! SMCCC (DEN0028 §6.2) packs a UUID into four registers as little-endian words of its bytes in
//! RFC 4122 (network) order: `w[i] = u32::from_le_bytes(bytes[4 * i..4 * i + 4])`. This is the
//! packing Linux's `ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_*` constants use.

use core::fmt;

/// A 128-bit UUID stored as its 16 bytes in RFC 4122 order.
///
/// ```
/// use pv_abi::{TANDEM_UUID, Uuid};
///
/// // What a Call UID reply (w0..w3) says, compared with Tandem's.
/// let reply = [0x93877a81, 0xed4ba73d, 0x963c72a6, 0xec10f508];
/// assert_eq!(Uuid::from_regs(reply), TANDEM_UUID);
/// assert_eq!(TANDEM_UUID.to_string(), "817a8793-3da7-4bed-a672-3c9608f510ec");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid([u8; 16]);

impl Uuid {
    /// Wraps 16 bytes in RFC 4122 order (the order the textual form is written in).
    ///
    /// ```
    /// let nil = pv_abi::Uuid::from_bytes([0; 16]);
    /// assert_eq!(nil.to_string(), "00000000-0000-0000-0000-000000000000");
    /// ```
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes in RFC 4122 order.
    ///
    /// ```
    /// assert_eq!(pv_abi::TANDEM_UUID.as_bytes()[..2], [0x81, 0x7a]);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The SMCCC register form: `w0..w3` as a `Call UID` query returns them.
    ///
    /// ```
    /// assert_eq!(pv_abi::TANDEM_UUID.to_regs()[0], 0x9387_7a81); // bytes 81 7a 87 93, little-endian
    /// ```
    pub const fn to_regs(&self) -> [u32; 4] {
        let b = &self.0;
        [
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        ]
    }

    /// Rebuilds a UUID from the `w0..w3` of a `Call UID` reply.
    ///
    /// ```
    /// use pv_abi::{TANDEM_UUID, Uuid};
    ///
    /// assert_eq!(Uuid::from_regs(TANDEM_UUID.to_regs()), TANDEM_UUID);
    /// ```
    pub const fn from_regs(w: [u32; 4]) -> Self {
        let (a, b, c, d) = (
            w[0].to_le_bytes(),
            w[1].to_le_bytes(),
            w[2].to_le_bytes(),
            w[3].to_le_bytes(),
        );
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1],
            d[2], d[3],
        ])
    }
}

impl fmt::Display for Uuid {
    /// Formats the canonical lower-case `8-4-4-4-12` textual form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// The Tandem service UUID, `817a8793-3da7-4bed-a672-3c9608f510ec`.
///
/// ```
/// assert_eq!(pv_abi::TANDEM_UUID.to_string(), "817a8793-3da7-4bed-a672-3c9608f510ec");
/// ```
pub const TANDEM_UUID: Uuid = Uuid::from_bytes([
    0x81, 0x7a, 0x87, 0x93, 0x3d, 0xa7, 0x4b, 0xed, 0xa6, 0x72, 0x3c, 0x96, 0x08, 0xf5, 0x10, 0xec,
]);

/// [`TANDEM_UUID`] in register form: the `w0..w3` a Tandem `Call UID` query returns.
///
/// ```
/// use pv_abi::TANDEM_UUID_REGS;
///
/// // Discovery step 2: is the hypervisor Tandem? (w0..w3 of the Call UID reply)
/// let w = [0x93877a81_u32, 0xed4ba73d, 0x963c72a6, 0xec10f508];
/// assert_eq!(w, TANDEM_UUID_REGS);
/// ```
pub const TANDEM_UUID_REGS: [u32; 4] = TANDEM_UUID.to_regs();

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    /// The textual form of the Tandem UUID, as the ABI specification writes it.
    const TANDEM_UUID_STR: &str = "817a8793-3da7-4bed-a672-3c9608f510ec";

    /// Parses the textual UUID into RFC 4122 byte order (test-only helper).
    fn parse(s: &str) -> [u8; 16] {
        let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
        assert_eq!(hex.len(), 32);
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let pair = core::str::from_utf8(pair).unwrap();
            out[i] = u8::from_str_radix(pair, 16).unwrap();
        }
        out
    }

    /// The register form derived from the textual UUID is the one the ABI documents.
    #[test]
    fn register_packing_matches_spec() {
        let bytes = parse(TANDEM_UUID_STR);
        assert_eq!(TANDEM_UUID.as_bytes(), &bytes);
        let derived: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(derived, TANDEM_UUID_REGS);
        assert_eq!(
            TANDEM_UUID_REGS,
            [0x9387_7a81, 0xed4b_a73d, 0x963c_72a6, 0xec10_f508]
        );
    }

    /// `from_regs` inverts `to_regs`.
    #[test]
    fn register_round_trip() {
        assert_eq!(Uuid::from_regs(TANDEM_UUID_REGS), TANDEM_UUID);
    }

    /// A real UUID never collides with `NOT_SUPPORTED` in `w0`, so discovery is unambiguous.
    #[test]
    fn w0_is_not_not_supported() {
        assert_ne!(TANDEM_UUID_REGS[0], crate::smccc::NOT_SUPPORTED_U32);
    }

    /// `Display` prints the canonical textual form.
    #[test]
    fn display_is_canonical() {
        assert_eq!(TANDEM_UUID.to_string(), TANDEM_UUID_STR);
    }

    /// The packing matches Linux's KVM constants for the KVM UUID (a known-good reference).
    #[test]
    fn packing_matches_linux_kvm_reference() {
        let kvm = Uuid::from_bytes(parse("28b46fb6-2ec5-11e9-a9ca-4b564d003a74"));
        // ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_{0,1,2,3} in include/linux/arm-smccc.h.
        assert_eq!(
            kvm.to_regs(),
            [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d]
        );
    }
}
