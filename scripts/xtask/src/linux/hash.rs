//! A stable content hash for cache keys: FNV-1a, 64 bits.
//!
//! Cache keys must not change between Rust releases, so std's `DefaultHasher`
//! (SipHash with unspecified keys and algorithm) is out. FNV-1a is tiny and
//! fully specified (<http://www.isthe.com/chongo/tech/comp/fnv/>); it is not
//! cryptographic, which is fine for telling our own inputs apart.
//!
//! Variable-length fields go through [`Fnv1a64::field`], which prefixes the
//! length, so that `("ab", "c")` and `("a", "bc")` hash differently.

/// FNV-1a 64-bit hasher.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv1a64 {
    /// A hasher in the initial state.
    pub const fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Feeds raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// Feeds one length-prefixed field (unambiguous in a sequence of fields).
    pub fn field(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        let bytes = bytes.as_ref();
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
        self
    }

    /// The hash of everything fed so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

/// A key as the 16 lower-case hex digits used in cache directory names.
pub fn hex(key: u64) -> String {
    format!("{key:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a64::new();
        h.write(bytes);
        h.finish()
    }

    /// The published FNV-1a 64 test vectors hold.
    #[test]
    fn reference_vectors() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Length prefixes keep field boundaries apart.
    #[test]
    fn fields_are_unambiguous() {
        let mut a = Fnv1a64::new();
        a.field("ab").field("c");
        let mut b = Fnv1a64::new();
        b.field("a").field("bc");
        assert_ne!(a.finish(), b.finish());
    }

    /// Keys print as fixed-width hex.
    #[test]
    fn hex_is_fixed_width() {
        assert_eq!(hex(0xab), "00000000000000ab");
    }
}
