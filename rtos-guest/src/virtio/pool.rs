//! The pool of memory shared with the front-end VM.
//!
//! Addresses in the pool are the front-end's IPAs, which Tandem maps at the same IPA here, so
//! a descriptor's address is used as is once [`Pool::check`] has found it wholly inside the
//! pool. The front-end may change the pool at any time: values are copied out, never borrowed,
//! and each is read once where a decision depends on it.
#![forbid(unsafe_code)]

use super::Fault;

/// Raw access to the pool's bytes by offset. Implementations may assume
/// `offset + len <= size` (checked by [`Pool`]) but must not rely on it for memory safety.
pub trait Backing {
    /// Copies `buf.len()` bytes from `offset`.
    fn load(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset`.
    fn store(&self, offset: usize, data: &[u8]);
}

/// The shared pool: `[base, base + size)` in the front-end's IPA space.
#[derive(Debug)]
pub struct Pool<B> {
    base: u64,
    size: u64,
    backing: B,
}

impl<B: Backing> Pool<B> {
    /// The pool at `base` of `size` bytes, accessed through `backing`.
    pub const fn new(base: u64, size: u64, backing: B) -> Self {
        Self {
            base,
            size,
            backing,
        }
    }

    /// The offset of `[addr, addr + len)` in the pool, if it lies wholly inside.
    pub fn check(&self, addr: u64, len: u64) -> Result<usize, Fault> {
        let off = addr.checked_sub(self.base).ok_or(Fault::OutsidePool)?;
        let end = off.checked_add(len).ok_or(Fault::OutsidePool)?;
        if end > self.size {
            return Err(Fault::OutsidePool);
        }
        usize::try_from(off).map_err(|_| Fault::OutsidePool)
    }

    /// Copies `buf.len()` bytes from `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let off = self.check(addr, buf.len() as u64)?;
        self.backing.load(off, buf);
        Ok(())
    }

    /// Copies `data` to `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let off = self.check(addr, data.len() as u64)?;
        self.backing.store(off, data);
        Ok(())
    }

    /// The little-endian `u16` at `addr`.
    pub fn read_u16(&self, addr: u64) -> Result<u16, Fault> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// The little-endian `u32` at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32, Fault> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The little-endian `u64` at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64, Fault> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u16` at `addr`.
    pub fn write_u16(&self, addr: u64, v: u16) -> Result<(), Fault> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u32` at `addr`.
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), Fault> {
        self.write(addr, &v.to_le_bytes())
    }
}

/// A pool backed by host memory, for the host tests.
#[cfg(test)]
pub mod fake {
    use core::cell::RefCell;

    use super::{Backing, Pool};

    /// Bytes in a `RefCell`; out-of-range accesses panic (they would be bugs in [`Pool`]).
    pub struct Ram(pub RefCell<Vec<u8>>);

    impl Backing for Ram {
        fn load(&self, offset: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[offset..offset + buf.len()]);
        }
        fn store(&self, offset: usize, data: &[u8]) {
            self.0.borrow_mut()[offset..offset + data.len()].copy_from_slice(data);
        }
    }

    /// A zeroed pool of `size` bytes at `base`.
    pub fn pool(base: u64, size: usize) -> Pool<Ram> {
        Pool::new(base, size as u64, Ram(RefCell::new(vec![0; size])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges are inside only if wholly inside; overflowing ranges are outside.
    #[test]
    fn range_checks() {
        let p = fake::pool(0x1000, 0x100);
        assert_eq!(p.check(0x1000, 0x100), Ok(0));
        assert_eq!(p.check(0x10FF, 1), Ok(0xFF));
        assert_eq!(p.check(0x1100, 0), Ok(0x100));
        assert_eq!(p.check(0x10FF, 2), Err(Fault::OutsidePool));
        assert_eq!(p.check(0xFFF, 1), Err(Fault::OutsidePool));
        assert_eq!(p.check(u64::MAX, 2), Err(Fault::OutsidePool));
        assert_eq!(p.check(0x1001, u64::MAX), Err(Fault::OutsidePool));
    }

    /// Values round-trip little-endian.
    #[test]
    fn little_endian() {
        let p = fake::pool(0, 16);
        p.write_u32(4, 0x1122_3344).unwrap();
        assert_eq!(p.read_u16(4), Ok(0x3344));
        assert_eq!(p.read_u32(4), Ok(0x1122_3344));
        assert_eq!(p.read_u64(4), Ok(0x1122_3344));
        assert_eq!(p.read_u64(9), Err(Fault::OutsidePool));
    }
}
