//! A single-producer, single-consumer message ring in a channel's shared memory (ABI 1.2).
//!
//! Tandem only maps a channel's region and rings its doorbells; what the two VMs put in the
//! region is theirs. This module fixes one layout both can use: one ring per direction (a
//! region, or a part of one, each), carrying whole messages. The other side may rewrite any
//! byte at any time, so neither end trusts what it reads: every index and length is checked,
//! and corruption is reported as [`RingError::Corrupt`], never turned into an access outside
//! the ring or a panic.
//!
//! # Layout
//!
//! Offsets from the start of the ring's memory (`region`, `size` bytes, 64-byte aligned in
//! practice: a channel's region is page-aligned). All integers are little-endian.
//!
//! | Offset | Size | Field | Written by | Meaning |
//! |---|---|---|---|---|
//! | `0x00` ([`PROD_OFFSET`]) | 4 | `prod` | producer | bytes ever published, free-running `u32` |
//! | `0x04` | 60 | — | nobody | reserved, zero (keeps `prod` on its own cache line) |
//! | `0x40` ([`CONS_OFFSET`]) | 4 | `cons` | consumer | bytes ever consumed, free-running `u32` |
//! | `0x44` | 60 | — | nobody | reserved, zero |
//! | `0x80` ([`DATA_OFFSET`]) | `capacity` | data | producer | records, at `index % capacity` |
//! | `0x80 + capacity` | rest | — | nobody | unused |
//!
//! `capacity` is the largest power of two `<= size - 128`, at most [`MAX_CAPACITY`]
//! (2 GiB); a ring needs `capacity >=` [`MIN_CAPACITY`] (16). Both ends compute it from the
//! region's size ([`capacity_for`]). A zeroed region is an empty ring (`prod == cons == 0`).
//!
//! **Records.** A message of `len` bytes is a record of [`record_size`]`(len)` bytes: a
//! 4-byte little-endian `len` ([`RECORD_HEADER`]), then the payload, then 0..3 bytes of
//! padding (unspecified) up to a multiple of 4 ([`RECORD_ALIGN`]). Records are
//! all-or-nothing: `prod` moves past a record only once it is whole, and `cons` only once it
//! is consumed. The indices are multiples of 4, so a length word never wraps around the end
//! of the data area; a payload may (it continues at data offset 0). The longest message is
//! `capacity - 4` bytes ([`max_payload`]).
//!
//! **Invariants** a reader checks (anything else is [`RingError::Corrupt`]):
//! `prod - cons <= capacity` (wrapping `u32` arithmetic), both multiples of 4, and a record's
//! length `len` with `record_size(len) <= prod - cons`.
//!
//! # Memory ordering
//!
//! - The producer writes the record (length, payload), then stores `prod` with **release**.
//! - The consumer loads `prod` with **acquire**, then reads the record, then stores `cons`
//!   with **release**.
//! - The producer loads `cons` with **acquire** before it reuses the bytes it frees.
//!
//! On AArch64 these are `ldar`/`stlr` (or a `dmb ish` beside a plain access); a channel's
//! region is normal, inner-shareable, write-back memory in both VMs. Each end keeps its own
//! index privately and only reads the other's: a peer that scribbles over `prod` or `cons`
//! makes the next call report [`RingError::Corrupt`], it does not move this end.
//!
//! After a doorbell, a consumer drains the ring; a producer that finds it full waits for the
//! consumer's doorbell. Which doorbell means what is the two guests' protocol.
//!
//! # Memory access
//!
//! The crate has no `unsafe`, so it reaches the memory through [`RingMemory`]. `[u8]`
//! implements it (for host tests and for tools); a guest implements it over its mapping of
//! the region:
//!
//! ```no_run
//! use core::sync::atomic::{AtomicU32, Ordering};
//! use pv_abi::ring::RingMemory;
//!
//! /// A channel's region as the guest maps it (normal memory).
//! struct Shared {
//!     base: *mut u8,
//!     size: usize,
//! }
//!
//! impl RingMemory for Shared {
//!     fn size(&self) -> usize {
//!         self.size
//!     }
//!     fn load_u32(&self, offset: usize) -> u32 {
//!         // SAFETY: the ring passes 4-aligned offsets with offset + 4 <= size.
//!         let word = unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) };
//!         word.load(Ordering::Acquire)
//!     }
//!     fn store_u32(&mut self, offset: usize, value: u32) {
//!         // SAFETY: as in load_u32.
//!         let word = unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) };
//!         word.store(value, Ordering::Release);
//!     }
//!     fn read(&self, offset: usize, buf: &mut [u8]) {
//!         for (i, b) in buf.iter_mut().enumerate() {
//!             // SAFETY: offset + buf.len() <= size; the peer may write concurrently, so volatile.
//!             *b = unsafe { self.base.add(offset + i).read_volatile() };
//!         }
//!     }
//!     fn write(&mut self, offset: usize, data: &[u8]) {
//!         for (i, &b) in data.iter().enumerate() {
//!             // SAFETY: offset + data.len() <= size.
//!             unsafe { self.base.add(offset + i).write_volatile(b) };
//!         }
//!     }
//! }
//! # let _ = Shared { base: core::ptr::null_mut(), size: 0 };
//! ```
//!
//! # Example
//!
//! ```
//! use pv_abi::ring::{Consumer, Producer};
//!
//! let mut region = [0u8; 128 + 64]; // a zeroed region: an empty ring of 64 bytes
//! let mut tx = Producer::new(&region[..])?;
//! let mut rx = Consumer::new(&region[..])?;
//! tx.send(&mut region[..], b"AT+CSQ")?;
//! let mut buf = [0u8; 32];
//! let n = rx.recv(&mut region[..], &mut buf)?.expect("a message");
//! assert_eq!(&buf[..n], b"AT+CSQ");
//! assert_eq!(rx.recv(&mut region[..], &mut buf)?, None); // empty
//! # Ok::<(), pv_abi::ring::RingError>(())
//! ```

/// Offset of the producer index `prod` (a `u32`, alone on its 64-byte line).
///
/// ```
/// assert_eq!(pv_abi::ring::PROD_OFFSET, 0);
/// ```
pub const PROD_OFFSET: usize = 0x00;
/// Offset of the consumer index `cons` (a `u32`, alone on its 64-byte line).
///
/// ```
/// assert_eq!(pv_abi::ring::CONS_OFFSET, 64);
/// ```
pub const CONS_OFFSET: usize = 0x40;
/// Offset of the data area: the ring's header size.
///
/// ```
/// assert_eq!(pv_abi::ring::DATA_OFFSET, 128);
/// ```
pub const DATA_OFFSET: usize = 0x80;
/// Size of a record's length word.
///
/// ```
/// assert_eq!(pv_abi::ring::RECORD_HEADER, 4);
/// ```
pub const RECORD_HEADER: usize = 4;
/// Records start (and the indices move) at multiples of this.
///
/// ```
/// assert_eq!(pv_abi::ring::RECORD_ALIGN, 4);
/// ```
pub const RECORD_ALIGN: usize = 4;
/// The smallest data area a ring may have, in bytes.
///
/// ```
/// use pv_abi::ring::{MIN_CAPACITY, capacity_for};
///
/// assert_eq!(capacity_for(128 + MIN_CAPACITY as usize), Some(MIN_CAPACITY));
/// ```
pub const MIN_CAPACITY: u32 = 16;
/// The largest data area a ring may have, in bytes: indices are compared as `u32` distances.
///
/// ```
/// assert_eq!(pv_abi::ring::MAX_CAPACITY, 1 << 31);
/// ```
pub const MAX_CAPACITY: u32 = 1 << 31;

/// The data area's size in a ring of `size` bytes: the largest power of two
/// `<= size - 128`, capped at [`MAX_CAPACITY`]; `None` below [`MIN_CAPACITY`].
///
/// ```
/// use pv_abi::ring::capacity_for;
///
/// assert_eq!(capacity_for(4096), Some(2048)); // 4096 - 128 = 3968 -> 2048
/// assert_eq!(capacity_for(128 + 4096), Some(4096));
/// assert_eq!(capacity_for(100), None);
/// ```
pub const fn capacity_for(size: usize) -> Option<u32> {
    if size < DATA_OFFSET + MIN_CAPACITY as usize {
        return None;
    }
    let data = size - DATA_OFFSET;
    if data >= MAX_CAPACITY as usize {
        return Some(MAX_CAPACITY);
    }
    Some(1 << (usize::BITS - 1 - data.leading_zeros()))
}

/// The bytes a message of `len` bytes takes in the ring: length word, payload, padding.
///
/// ```
/// use pv_abi::ring::record_size;
///
/// assert_eq!(record_size(0), 4);
/// assert_eq!(record_size(5), 12); // 4 + 5, padded to 12
/// ```
pub const fn record_size(len: usize) -> usize {
    RECORD_HEADER + len.next_multiple_of(RECORD_ALIGN)
}

/// The longest message a ring of `capacity` bytes carries.
///
/// ```
/// assert_eq!(pv_abi::ring::max_payload(64), 60);
/// ```
pub const fn max_payload(capacity: u32) -> usize {
    capacity as usize - RECORD_HEADER
}

/// Why a ring operation failed.
///
/// ```
/// use pv_abi::ring::{Producer, RingError};
///
/// let mut region = [0u8; 128 + 16];
/// let mut tx = Producer::new(&region[..])?;
/// assert_eq!(tx.send(&mut region[..], &[0; 13]), Err(RingError::TooLong)); // at most 12
/// # Ok::<(), RingError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingError {
    /// The memory is smaller than a ring needs (or than the ring this end was made for).
    RegionTooSmall,
    /// The indices or a record length break the layout's invariants: the peer (or a bug)
    /// wrote the ring inconsistently. Nothing was read or written past the check.
    Corrupt,
    /// Not enough free space for this message now; retry after the consumer's doorbell.
    Full,
    /// The message is longer than the ring can ever hold ([`max_payload`]).
    TooLong,
    /// The next message has `needed` bytes, more than the buffer; it stays in the ring.
    BufferTooSmall {
        /// The message's length.
        needed: usize,
    },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RingError::RegionTooSmall => f.write_str("ring region too small"),
            RingError::Corrupt => f.write_str("ring corrupt"),
            RingError::Full => f.write_str("ring full"),
            RingError::TooLong => f.write_str("message longer than the ring"),
            RingError::BufferTooSmall { needed } => {
                write!(f, "message of {needed} bytes does not fit the buffer")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// The memory a ring lives in. The ring calls it only with offsets inside `0..size()`
/// (`offset + length <= size()`), and `load_u32`/`store_u32` only at [`PROD_OFFSET`] and
/// [`CONS_OFFSET`]. The contents may change under it at any time.
///
/// ```
/// use pv_abi::ring::RingMemory;
///
/// let mut region = [0u8; 256];
/// let mem: &mut [u8] = &mut region;
/// mem.store_u32(64, 8);
/// assert_eq!(mem.load_u32(64), 8);
/// assert_eq!(mem.size(), 256);
/// ```
pub trait RingMemory {
    /// The memory's size in bytes.
    ///
    /// ```
    /// use pv_abi::ring::RingMemory;
    ///
    /// assert_eq!(RingMemory::size(&[0u8; 144][..]), 144);
    /// ```
    fn size(&self) -> usize;
    /// Loads the little-endian `u32` at `offset` (4-aligned) with acquire ordering.
    ///
    /// ```
    /// use pv_abi::ring::RingMemory;
    ///
    /// assert_eq!([1u8, 0, 0, 0][..].load_u32(0), 1);
    /// ```
    fn load_u32(&self, offset: usize) -> u32;
    /// Stores `value` as a little-endian `u32` at `offset` (4-aligned) with release ordering.
    ///
    /// ```
    /// use pv_abi::ring::RingMemory;
    ///
    /// let mut w = [0u8; 4];
    /// w[..].store_u32(0, 0x0102_0304);
    /// assert_eq!(w, [4, 3, 2, 1]);
    /// ```
    fn store_u32(&mut self, offset: usize, value: u32);
    /// Copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// ```
    /// use pv_abi::ring::RingMemory;
    ///
    /// let mut b = [0u8; 2];
    /// [1u8, 2, 3][..].read(1, &mut b);
    /// assert_eq!(b, [2, 3]);
    /// ```
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset`.
    ///
    /// ```
    /// use pv_abi::ring::RingMemory;
    ///
    /// let mut m = [0u8; 3];
    /// m[..].write(1, &[7, 8]);
    /// assert_eq!(m, [0, 7, 8]);
    /// ```
    fn write(&mut self, offset: usize, data: &[u8]);
}

/// A plain byte slice, for host tests and tools (no concurrency: plain accesses suffice).
/// Offsets outside the slice panic, as slice indexing does; the ring never passes one.
impl RingMemory for [u8] {
    fn size(&self) -> usize {
        self.len()
    }
    fn load_u32(&self, offset: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&self[offset..offset + 4]);
        u32::from_le_bytes(w)
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn read(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self[offset..offset + buf.len()]);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// The ring's shape, checked against the memory on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    capacity: u32,
}

impl Geometry {
    fn of<M: RingMemory + ?Sized>(mem: &M) -> Result<Self, RingError> {
        capacity_for(mem.size())
            .map(|capacity| Self { capacity })
            .ok_or(RingError::RegionTooSmall)
    }

    /// The memory still holds this ring (a caller may pass another one).
    fn check<M: RingMemory + ?Sized>(&self, mem: &M) -> Result<(), RingError> {
        if mem.size() < DATA_OFFSET + self.capacity as usize {
            return Err(RingError::RegionTooSmall);
        }
        Ok(())
    }

    /// The bytes between `cons` and `prod`, if the pair is consistent.
    fn used(&self, prod: u32, cons: u32) -> Result<u32, RingError> {
        let used = prod.wrapping_sub(cons);
        if used > self.capacity
            || prod % RECORD_ALIGN as u32 != 0
            || cons % RECORD_ALIGN as u32 != 0
        {
            return Err(RingError::Corrupt);
        }
        Ok(used)
    }

    /// Offset in the memory of ring index `index`.
    fn at(&self, index: u32) -> usize {
        DATA_OFFSET + (index & (self.capacity - 1)) as usize
    }

    /// Reads `buf.len()` (`<= capacity`) bytes starting at ring index `index`, wrapping.
    fn read<M: RingMemory + ?Sized>(&self, mem: &M, index: u32, buf: &mut [u8]) {
        let start = (index & (self.capacity - 1)) as usize;
        let first = buf.len().min(self.capacity as usize - start);
        let (a, b) = buf.split_at_mut(first);
        mem.read(DATA_OFFSET + start, a);
        if !b.is_empty() {
            mem.read(DATA_OFFSET, b);
        }
    }

    /// Writes `data` (`<= capacity` bytes) starting at ring index `index`, wrapping.
    fn write<M: RingMemory + ?Sized>(&self, mem: &mut M, index: u32, data: &[u8]) {
        let start = (index & (self.capacity - 1)) as usize;
        let first = data.len().min(self.capacity as usize - start);
        let (a, b) = data.split_at(first);
        mem.write(DATA_OFFSET + start, a);
        if !b.is_empty() {
            mem.write(DATA_OFFSET, b);
        }
    }
}

/// The producer end: appends messages. It keeps `prod` itself and reads only `cons`.
///
/// ```
/// use pv_abi::ring::{Producer, RingError};
///
/// let mut region = [0u8; 128 + 16];
/// let mut tx = Producer::new(&region[..])?;
/// tx.send(&mut region[..], b"12345678")?; // a 12-byte record
/// assert_eq!(tx.send(&mut region[..], b"x"), Err(RingError::Full)); // needs 8, 4 left
/// # Ok::<(), RingError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer {
    geometry: Geometry,
    prod: u32,
}

impl Producer {
    /// The producer of the ring in `mem`, going on from the `prod` it holds (0 in a zeroed
    /// region).
    ///
    /// ```
    /// use pv_abi::ring::{Producer, RingError};
    ///
    /// let mut region = [0u8; 256];
    /// region[64] = 8; // cons = 8 > prod = 0: more consumed than produced
    /// assert_eq!(Producer::new(&region[..]), Err(RingError::Corrupt));
    /// assert_eq!(Producer::new(&region[..100]), Err(RingError::RegionTooSmall));
    /// ```
    pub fn new<M: RingMemory + ?Sized>(mem: &M) -> Result<Self, RingError> {
        let geometry = Geometry::of(mem)?;
        let prod = mem.load_u32(PROD_OFFSET);
        geometry.used(prod, mem.load_u32(CONS_OFFSET))?;
        Ok(Self { geometry, prod })
    }

    /// The data area's size in bytes.
    ///
    /// ```
    /// use pv_abi::ring::Producer;
    ///
    /// assert_eq!(Producer::new(&[0u8; 4096][..])?.capacity(), 2048);
    /// # Ok::<(), pv_abi::ring::RingError>(())
    /// ```
    pub fn capacity(&self) -> u32 {
        self.geometry.capacity
    }

    /// The bytes free for records now (a message of `len` bytes needs
    /// [`record_size`]`(len)`).
    ///
    /// ```
    /// use pv_abi::ring::Producer;
    ///
    /// let mut region = [0u8; 128 + 64];
    /// let mut tx = Producer::new(&region[..])?;
    /// tx.send(&mut region[..], b"abc")?;
    /// assert_eq!(tx.free(&region[..])?, 64 - 8);
    /// # Ok::<(), pv_abi::ring::RingError>(())
    /// ```
    pub fn free<M: RingMemory + ?Sized>(&self, mem: &M) -> Result<usize, RingError> {
        self.geometry.check(mem)?;
        let used = self.geometry.used(self.prod, mem.load_u32(CONS_OFFSET))?;
        Ok((self.geometry.capacity - used) as usize)
    }

    /// Appends `msg` as one record and publishes it (release); all or nothing.
    ///
    /// ```
    /// use pv_abi::ring::{Consumer, Producer};
    ///
    /// let mut region = [0u8; 128 + 32];
    /// let mut tx = Producer::new(&region[..])?;
    /// tx.send(&mut region[..], b"")?; // empty messages are records too
    /// let mut buf = [0u8; 4];
    /// assert_eq!(Consumer::new(&region[..])?.recv(&mut region[..], &mut buf)?, Some(0));
    /// # Ok::<(), pv_abi::ring::RingError>(())
    /// ```
    pub fn send<M: RingMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        msg: &[u8],
    ) -> Result<(), RingError> {
        let g = self.geometry;
        g.check(mem)?;
        if msg.len() > max_payload(g.capacity) {
            return Err(RingError::TooLong);
        }
        let used = g.used(self.prod, mem.load_u32(CONS_OFFSET))?;
        let record = record_size(msg.len()) as u32;
        if record > g.capacity - used {
            return Err(RingError::Full);
        }
        // 4-aligned index: the length word never wraps.
        mem.write(g.at(self.prod), &(msg.len() as u32).to_le_bytes());
        g.write(mem, self.prod.wrapping_add(RECORD_HEADER as u32), msg);
        self.prod = self.prod.wrapping_add(record);
        mem.store_u32(PROD_OFFSET, self.prod);
        Ok(())
    }
}

/// The consumer end: takes messages in order. It keeps `cons` itself and reads only `prod`.
///
/// ```
/// use pv_abi::ring::{Consumer, RingError};
///
/// let mut region = [0u8; 128 + 16];
/// region[0] = 4; // prod = 4: 4 bytes published, a record with an empty message ...
/// region[128] = 200; // ... if its length word did not say 200 bytes
/// let mut rx = Consumer::new(&region[..])?;
/// assert_eq!(rx.recv(&mut region[..], &mut [0; 256]), Err(RingError::Corrupt));
/// # Ok::<(), RingError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer {
    geometry: Geometry,
    cons: u32,
}

impl Consumer {
    /// The consumer of the ring in `mem`, going on from the `cons` it holds (0 in a zeroed
    /// region).
    ///
    /// ```
    /// use pv_abi::ring::{Consumer, RingError};
    ///
    /// let mut region = [0u8; 256];
    /// region[0] = 2; // prod = 2: not a multiple of 4
    /// assert_eq!(Consumer::new(&region[..]), Err(RingError::Corrupt));
    /// ```
    pub fn new<M: RingMemory + ?Sized>(mem: &M) -> Result<Self, RingError> {
        let geometry = Geometry::of(mem)?;
        let cons = mem.load_u32(CONS_OFFSET);
        geometry.used(mem.load_u32(PROD_OFFSET), cons)?;
        Ok(Self { geometry, cons })
    }

    /// The length of the next message, without taking it; `None` if the ring is empty.
    ///
    /// ```
    /// use pv_abi::ring::{Consumer, Producer};
    ///
    /// let mut region = [0u8; 128 + 64];
    /// let rx = Consumer::new(&region[..])?;
    /// assert_eq!(rx.peek_len(&region[..])?, None);
    /// Producer::new(&region[..])?.send(&mut region[..], b"hello")?;
    /// assert_eq!(rx.peek_len(&region[..])?, Some(5));
    /// # Ok::<(), pv_abi::ring::RingError>(())
    /// ```
    pub fn peek_len<M: RingMemory + ?Sized>(&self, mem: &M) -> Result<Option<usize>, RingError> {
        let g = self.geometry;
        g.check(mem)?;
        let available = g.used(mem.load_u32(PROD_OFFSET), self.cons)?;
        if available == 0 {
            return Ok(None);
        }
        // available is a non-zero multiple of 4: at least a length word.
        let mut word = [0u8; RECORD_HEADER];
        mem.read(g.at(self.cons), &mut word);
        let len = u32::from_le_bytes(word) as usize;
        if len > available as usize - RECORD_HEADER || record_size(len) > available as usize {
            return Err(RingError::Corrupt);
        }
        Ok(Some(len))
    }

    /// Takes the next message into `buf` and frees its record (release): `Some(len)`, or
    /// `None` if the ring is empty. A message longer than `buf` stays in the ring
    /// ([`RingError::BufferTooSmall`]).
    ///
    /// ```
    /// use pv_abi::ring::{Consumer, Producer, RingError};
    ///
    /// let mut region = [0u8; 128 + 64];
    /// Producer::new(&region[..])?.send(&mut region[..], b"hello")?;
    /// let mut rx = Consumer::new(&region[..])?;
    /// let mut small = [0u8; 4];
    /// assert_eq!(rx.recv(&mut region[..], &mut small), Err(RingError::BufferTooSmall { needed: 5 }));
    /// let mut buf = [0u8; 8];
    /// assert_eq!(rx.recv(&mut region[..], &mut buf)?, Some(5));
    /// # Ok::<(), RingError>(())
    /// ```
    pub fn recv<M: RingMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        buf: &mut [u8],
    ) -> Result<Option<usize>, RingError> {
        let Some(len) = self.peek_len(mem)? else {
            return Ok(None);
        };
        let Some(dst) = buf.get_mut(..len) else {
            return Err(RingError::BufferTooSmall { needed: len });
        };
        let g = self.geometry;
        g.read(mem, self.cons.wrapping_add(RECORD_HEADER as u32), dst);
        self.cons = self.cons.wrapping_add(record_size(len) as u32);
        mem.store_u32(CONS_OFFSET, self.cons);
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    /// Deterministic xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Who may touch what: a checked memory for one end.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Role {
        Producer,
        Consumer,
        Any,
    }

    /// Memory that asserts every access lies inside the ring and obeys the layout: index
    /// words only at their offsets, aligned; data only in the data area; each end stores
    /// only its own index; the producer writes data, the consumer never does.
    struct Checked {
        bytes: Vec<u8>,
        capacity: usize,
        role: Role,
    }

    impl Checked {
        fn new(size: usize) -> Self {
            Self {
                bytes: vec![0; size],
                capacity: capacity_for(size).map_or(0, |c| c as usize),
                role: Role::Any,
            }
        }
        fn role(&mut self, role: Role) -> &mut Self {
            self.role = role;
            self
        }
        fn data(&self, offset: usize, len: usize) {
            assert!(
                offset >= DATA_OFFSET && offset + len <= DATA_OFFSET + self.capacity,
                "data access {offset:#x}+{len} outside the data area of {}",
                self.capacity
            );
        }
        fn index(&self, offset: usize) {
            assert!(
                offset == PROD_OFFSET || offset == CONS_OFFSET,
                "index access at {offset:#x}"
            );
        }
    }

    impl RingMemory for Checked {
        fn size(&self) -> usize {
            self.bytes.len()
        }
        fn load_u32(&self, offset: usize) -> u32 {
            self.index(offset);
            self.bytes[..].load_u32(offset)
        }
        fn store_u32(&mut self, offset: usize, value: u32) {
            self.index(offset);
            match self.role {
                Role::Producer => assert_eq!(offset, PROD_OFFSET, "the producer stores cons"),
                Role::Consumer => assert_eq!(offset, CONS_OFFSET, "the consumer stores prod"),
                Role::Any => {}
            }
            self.bytes[..].store_u32(offset, value);
        }
        fn read(&self, offset: usize, buf: &mut [u8]) {
            self.data(offset, buf.len());
            self.bytes[..].read(offset, buf);
        }
        fn write(&mut self, offset: usize, data: &[u8]) {
            self.data(offset, data.len());
            assert_ne!(self.role, Role::Consumer, "the consumer writes data");
            self.bytes[..].write(offset, data);
        }
    }

    /// Ring sizes: small, odd, and ones whose data area is not a power of two.
    fn sizes(rng: &mut Rng) -> usize {
        match rng.below(4) {
            0 => DATA_OFFSET + MIN_CAPACITY as usize,
            1 => DATA_OFFSET + 64,
            _ => DATA_OFFSET + 16 + rng.below(600) as usize,
        }
    }

    /// An index value a hostile peer might write: near the other one, near the ends of the
    /// u32 range, misaligned, or anything.
    fn hostile_index(rng: &mut Rng, near: u32, capacity: u32) -> u32 {
        match rng.below(5) {
            0 => near.wrapping_add(rng.below(u64::from(capacity) + 8) as u32),
            1 => near.wrapping_sub(rng.below(u64::from(capacity) + 8) as u32),
            2 => u32::MAX - rng.below(64) as u32,
            3 => rng.below(64) as u32,
            _ => rng.next() as u32,
        }
    }

    /// capacity_for picks the largest power of two that fits, and refuses tiny regions.
    #[test]
    fn capacity_is_the_largest_power_of_two_that_fits() {
        assert_eq!(capacity_for(0), None);
        assert_eq!(capacity_for(DATA_OFFSET + 15), None);
        assert_eq!(capacity_for(DATA_OFFSET + 16), Some(16));
        assert_eq!(capacity_for(DATA_OFFSET + 31), Some(16));
        assert_eq!(capacity_for(0x1000), Some(0x800));
        assert_eq!(capacity_for(0x10_0000 + DATA_OFFSET), Some(0x10_0000));
        assert_eq!(capacity_for(usize::MAX), Some(MAX_CAPACITY));
        for size in DATA_OFFSET + 16..DATA_OFFSET + 5000 {
            let c = capacity_for(size).unwrap() as usize;
            assert!(c.is_power_of_two() && c <= size - DATA_OFFSET && 2 * c > size - DATA_OFFSET);
        }
    }

    /// An empty ring returns nothing; a full one refuses the next message and takes it once
    /// the consumer freed room.
    #[test]
    fn empty_returns_nothing_and_full_refuses() {
        let mut mem = Checked::new(DATA_OFFSET + 64);
        let mut tx = Producer::new(&mem).unwrap();
        let mut rx = Consumer::new(&mem).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(None));
        // 4 records of 16 bytes fill 64.
        for i in 0..4u8 {
            tx.send(mem.role(Role::Producer), &[i; 12]).unwrap();
        }
        assert_eq!(tx.free(&mem), Ok(0));
        assert_eq!(tx.send(mem.role(Role::Producer), b""), Err(RingError::Full));
        assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(Some(12)));
        assert_eq!(buf[..12], [0; 12]);
        assert_eq!(
            tx.send(mem.role(Role::Producer), &[9; 13]),
            Err(RingError::Full)
        );
        tx.send(mem.role(Role::Producer), &[9; 12]).unwrap();
        for want in [1u8, 2, 3, 9] {
            assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(Some(12)));
            assert_eq!(buf[..12], [want; 12]);
        }
        assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(None));
        assert_eq!(
            tx.send(mem.role(Role::Producer), &[0; 61]),
            Err(RingError::TooLong)
        );
        tx.send(mem.role(Role::Producer), &[7; 60]).unwrap();
        assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(Some(60)));
        assert_eq!(buf[..60], [7; 60]);
    }

    /// The header matches the documented bytes: lengths little-endian at the record's
    /// start, indices at 0 and 64, payload from 128 + 4.
    #[test]
    fn bytes_are_where_the_table_says() {
        let mut region = [0xeeu8; DATA_OFFSET + 32];
        region[..DATA_OFFSET].fill(0);
        let mut tx = Producer::new(&region[..]).unwrap();
        tx.send(&mut region[..], b"abcde").unwrap();
        assert_eq!(region[0..4], [12, 0, 0, 0], "prod");
        assert_eq!(region[64..68], [0, 0, 0, 0], "cons");
        assert_eq!(region[128..132], [5, 0, 0, 0], "length");
        assert_eq!(&region[132..137], b"abcde");
        let mut rx = Consumer::new(&region[..]).unwrap();
        rx.recv(&mut region[..], &mut [0; 8]).unwrap();
        assert_eq!(region[64..68], [12, 0, 0, 0], "cons");
    }

    /// Random messages through many wrap-arounds of the data area and of the u32 indices
    /// arrive whole and in order; the producer reports Full exactly when the record does
    /// not fit, the consumer None exactly when nothing is queued.
    #[test]
    fn round_trips_preserve_content_and_order() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..200 {
            let size = sizes(&mut rng);
            let mut mem = Checked::new(size);
            let capacity = capacity_for(size).unwrap();
            // Start near the end of the u32 range so the indices wrap too.
            let start = (u32::MAX - rng.below(4 * u64::from(capacity)) as u32) & !3;
            mem.bytes[..].store_u32(PROD_OFFSET, start);
            mem.bytes[..].store_u32(CONS_OFFSET, start);
            let mut tx = Producer::new(&mem).unwrap();
            let mut rx = Consumer::new(&mem).unwrap();
            let mut queued: VecDeque<Vec<u8>> = VecDeque::new();
            let mut used = 0usize;
            let mut buf = vec![0u8; capacity as usize];
            let mut serial = 0u8;
            for _ in 0..400 {
                if rng.below(2) == 0 {
                    let len = match rng.below(4) {
                        0 => rng.below(8) as usize,
                        _ => rng.below(u64::from(capacity) / 2) as usize,
                    };
                    serial = serial.wrapping_add(1);
                    let msg: Vec<u8> = (0..len).map(|i| serial ^ (i as u8)).collect();
                    let fits = used + record_size(len) <= capacity as usize;
                    match tx.send(mem.role(Role::Producer), &msg) {
                        Ok(()) => {
                            assert!(fits, "round {round}: accepted past capacity");
                            used += record_size(len);
                            queued.push_back(msg);
                        }
                        Err(RingError::Full) => assert!(!fits, "round {round}: refused with room"),
                        Err(e) => panic!("round {round}: {e}"),
                    }
                    assert_eq!(tx.free(&mem), Ok(capacity as usize - used));
                } else {
                    let got = rx.recv(mem.role(Role::Consumer), &mut buf).unwrap();
                    match queued.pop_front() {
                        Some(want) => {
                            assert_eq!(got, Some(want.len()), "round {round}");
                            assert_eq!(buf[..want.len()], want[..], "round {round}");
                            used -= record_size(want.len());
                        }
                        None => assert_eq!(got, None, "round {round}"),
                    }
                }
            }
        }
    }

    /// Hostile indices, lengths and data never make either end touch memory outside the
    /// ring (the checked memory panics) or panic: every call returns, and a corrupt pair of
    /// indices is reported as Corrupt.
    #[test]
    fn hostile_rings_never_go_out_of_bounds() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let size = sizes(&mut rng);
            let capacity = capacity_for(size).unwrap();
            let mut mem = Checked::new(size);
            for b in &mut mem.bytes[DATA_OFFSET..] {
                *b = rng.next() as u8;
            }
            let cons = rng.next() as u32 & !3;
            let prod = hostile_index(&mut rng, cons, capacity);
            // Plant plausible length words: at the record cons points to, and elsewhere.
            for i in 0..1 + rng.below(3) {
                let at = if i == 0 {
                    (cons & (capacity - 1)) as usize
                } else {
                    (rng.below(u64::from(capacity) / 4) * 4) as usize
                };
                let len = match rng.below(3) {
                    0 => rng.next() as u32,
                    _ => rng.below(u64::from(capacity) + 16) as u32,
                };
                let at = DATA_OFFSET + at;
                mem.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
            // Sometimes misaligned.
            let misaligned = if rng.below(4) == 0 {
                rng.below(4) as u32
            } else {
                0
            };
            mem.bytes[..].store_u32(CONS_OFFSET, cons | misaligned);
            mem.bytes[..].store_u32(PROD_OFFSET, prod);
            let cons = mem.bytes[..].load_u32(CONS_OFFSET);
            let consistent = prod.wrapping_sub(cons) <= capacity && prod % 4 == 0 && cons % 4 == 0;

            let mut buf = vec![0u8; rng.below(u64::from(capacity) + 16) as usize];
            match Consumer::new(&mem) {
                Ok(mut rx) => {
                    assert!(consistent);
                    // Drain what is there; the peer moves prod between calls.
                    for _ in 0..4 {
                        let before = mem.bytes[..].load_u32(CONS_OFFSET);
                        let published = mem.bytes[..].load_u32(PROD_OFFSET).wrapping_sub(before);
                        match rx.recv(mem.role(Role::Consumer), &mut buf) {
                            // Only a whole record of what was published, into the buffer.
                            Ok(Some(n)) => {
                                assert!(n <= buf.len());
                                assert!(record_size(n) <= published as usize);
                            }
                            Ok(None) => assert_eq!(published, 0),
                            Err(_) => {}
                        }
                        let near = mem.bytes[..].load_u32(CONS_OFFSET);
                        let p = hostile_index(&mut rng, near, capacity);
                        mem.bytes[..].store_u32(PROD_OFFSET, p);
                    }
                }
                Err(e) => {
                    assert!(!consistent);
                    assert_eq!(e, RingError::Corrupt);
                }
            }

            mem.bytes[..].store_u32(PROD_OFFSET, prod);
            mem.bytes[..].store_u32(CONS_OFFSET, cons);
            match Producer::new(&mem) {
                Ok(mut tx) => {
                    assert!(consistent);
                    for _ in 0..4 {
                        let len = rng.below(u64::from(capacity) + 8) as usize;
                        match tx.send(mem.role(Role::Producer), &vec![0xa5; len]) {
                            Ok(()) => {}
                            Err(RingError::TooLong) => assert!(len > max_payload(capacity)),
                            Err(_) => {}
                        }
                        let near = mem.bytes[..].load_u32(PROD_OFFSET);
                        let c = hostile_index(&mut rng, near, capacity);
                        mem.bytes[..].store_u32(CONS_OFFSET, c);
                    }
                }
                Err(e) => {
                    assert!(!consistent);
                    assert_eq!(e, RingError::Corrupt);
                }
            }
        }
    }

    /// A length word that claims more than was published, or more than the ring holds, is
    /// Corrupt; one that is fine but longer than the buffer leaves the message queued.
    #[test]
    fn lengths_are_checked_against_the_ring_and_the_buffer() {
        let mut mem = Checked::new(DATA_OFFSET + 64);
        let mut tx = Producer::new(&mem).unwrap();
        tx.send(mem.role(Role::Producer), &[1; 10]).unwrap(); // record of 16
        let mut rx = Consumer::new(&mem).unwrap();
        for bad in [13u32, 60, 64, u32::MAX, 0x8000_0000] {
            mem.bytes[DATA_OFFSET..DATA_OFFSET + 4].copy_from_slice(&bad.to_le_bytes());
            assert_eq!(
                rx.recv(mem.role(Role::Consumer), &mut [0; 128]),
                Err(RingError::Corrupt),
                "{bad}"
            );
        }
        mem.bytes[DATA_OFFSET..DATA_OFFSET + 4].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            rx.recv(mem.role(Role::Consumer), &mut [0; 9]),
            Err(RingError::BufferTooSmall { needed: 10 })
        );
        let mut buf = [0u8; 10];
        assert_eq!(rx.recv(mem.role(Role::Consumer), &mut buf), Ok(Some(10)));
        assert_eq!(buf, [1; 10]);
        // The peer rolls cons back past prod: the producer refuses to trust it.
        mem.bytes[..].store_u32(CONS_OFFSET, 20);
        assert_eq!(
            tx.send(mem.role(Role::Producer), b"x"),
            Err(RingError::Corrupt)
        );
        // A smaller memory than the ring was made for is refused, not indexed.
        let short = Checked::new(DATA_OFFSET + 32);
        assert_eq!(tx.free(&short), Err(RingError::RegionTooSmall));
    }
}
