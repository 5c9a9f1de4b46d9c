//! Split virtqueues, device side (virtio 1.x §2.7).
//!
//! The driver's three areas, all in the shared pool:
//!
//! ```text
//! descriptor table (16-aligned)  num × { addr: u64, len: u32, flags: u16, next: u16 }
//! driver area (avail, 2-aligned) flags: u16, idx: u16, ring: [u16; num], used_event: u16
//! device area (used, 4-aligned)  flags: u16, idx: u16, ring: [{ id: u32, len: u32 }; num], avail_event: u16
//! ```
//!
//! The device takes chains from the avail ring ([`Virtqueue::pop`]), walks their descriptors
//! ([`Chain::next_segment`]) and returns them on the used ring ([`Virtqueue::push`]). Every
//! value the driver controls is checked when read: the avail index may run at most `num` ahead,
//! ring entries and `next` fields must name a descriptor, every buffer must lie in the pool, a
//! chain may not be longer than the queue (that catches loops) nor put a readable descriptor
//! after a writable one, and `INDIRECT` is refused (not offered). Neither `EVENT_IDX` nor
//! indirect descriptors are offered, so `used_event`/`avail_event` are never used.
#![forbid(unsafe_code)]

use core::sync::atomic::{Ordering, fence};

use super::Fault;
use super::pool::{Backing, Pool};

/// The largest queue offered (`QueueNumMax`).
pub const QUEUE_NUM_MAX: u16 = 64;

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it reads it).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors (not offered, so refused).
pub const DESC_F_INDIRECT: u16 = 4;
/// Avail ring flag: the driver does not want an interrupt for used buffers.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

const DESC_SIZE: u64 = 16;

/// One buffer of a chain: `len` bytes at `addr` (inside the pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The buffer's address (front-end IPA = ours).
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Whether the device writes it.
    pub writable: bool,
}

/// A descriptor chain taken from the avail ring, walked one descriptor at a time.
#[derive(Clone, Copy, Debug)]
pub struct Chain {
    head: u16,
    next: Option<u16>,
    table: u64,
    num: u16,
    walked: u16,
    writable_seen: bool,
}

impl Chain {
    /// The head descriptor index (what goes on the used ring).
    pub fn head(&self) -> u16 {
        self.head
    }

    /// The next buffer of the chain, checked, or `None` after the last.
    pub fn next_segment<B: Backing>(&mut self, pool: &Pool<B>) -> Result<Option<Segment>, Fault> {
        let Some(i) = self.next else {
            return Ok(None);
        };
        self.walked += 1;
        if self.walked > self.num {
            return Err(Fault::BadChain);
        }
        let mut d = [0u8; DESC_SIZE as usize];
        pool.read(self.table + u64::from(i) * DESC_SIZE, &mut d)?;
        let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let len = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
        let flags = u16::from_le_bytes([d[12], d[13]]);
        let next = u16::from_le_bytes([d[14], d[15]]);
        if flags & DESC_F_INDIRECT != 0 {
            return Err(Fault::BadDescriptor);
        }
        pool.check(addr, u64::from(len))?;
        let writable = flags & DESC_F_WRITE != 0;
        if self.writable_seen && !writable {
            return Err(Fault::BadChain);
        }
        self.writable_seen |= writable;
        self.next = if flags & DESC_F_NEXT != 0 {
            if next >= self.num {
                return Err(Fault::BadIndex);
            }
            Some(next)
        } else {
            None
        };
        Ok(Some(Segment {
            addr,
            len,
            writable,
        }))
    }

    /// Walks the whole chain, copying its readable bytes into `buf` (as many as fit; writable
    /// buffers are skipped). Returns how many readable bytes the chain has (more than
    /// `buf.len()` means `buf` holds only the first part).
    pub fn read_all<B: Backing>(&mut self, pool: &Pool<B>, buf: &mut [u8]) -> Result<usize, Fault> {
        let mut total = 0usize;
        while let Some(seg) = self.next_segment(pool)? {
            if seg.writable {
                continue;
            }
            let len = seg.len as usize;
            if total < buf.len() {
                let n = len.min(buf.len() - total);
                pool.read(seg.addr, &mut buf[total..total + n])?;
            }
            total = total.saturating_add(len);
        }
        Ok(total)
    }

    /// Walks the whole chain, passing its readable bytes to `f` in pieces of at most
    /// `chunk.len()` bytes (writable buffers are skipped). Returns how many there were.
    pub fn read_each<B: Backing>(
        &mut self,
        pool: &Pool<B>,
        chunk: &mut [u8],
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, Fault> {
        let mut total = 0usize;
        while let Some(seg) = self.next_segment(pool)? {
            if seg.writable || chunk.is_empty() {
                continue;
            }
            let (mut addr, mut left) = (seg.addr, seg.len as usize);
            while left > 0 {
                let n = left.min(chunk.len());
                pool.read(addr, &mut chunk[..n])?;
                f(&chunk[..n]);
                (addr, left, total) = (addr + n as u64, left - n, total + n);
            }
        }
        Ok(total)
    }

    /// Walks the whole chain, writing the concatenation of `parts` into its writable buffers
    /// (readable ones are skipped). Returns the bytes written (fewer than offered if the
    /// buffers are too small).
    pub fn write_all<B: Backing>(
        &mut self,
        pool: &Pool<B>,
        parts: &[&[u8]],
    ) -> Result<usize, Fault> {
        let (mut part, mut at, mut written) = (0usize, 0usize, 0usize);
        while let Some(seg) = self.next_segment(pool)? {
            if !seg.writable {
                continue;
            }
            let mut room = seg.len as usize;
            let mut addr = seg.addr;
            while room > 0 && part < parts.len() {
                let src = &parts[part][at..];
                let n = src.len().min(room);
                pool.write(addr, &src[..n])?;
                (addr, room, at, written) = (addr + n as u64, room - n, at + n, written + n);
                if at == parts[part].len() {
                    (part, at) = (part + 1, 0);
                }
            }
        }
        Ok(written)
    }
}

/// One virtqueue: the driver's configuration (through the transport's registers) and the
/// device's progress through the rings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Virtqueue {
    /// `QueueNum`: the size the driver chose.
    pub num: u16,
    /// `QueueDesc`: the descriptor table.
    pub desc: u64,
    /// `QueueDriver`: the avail ring.
    pub driver: u64,
    /// `QueueDevice`: the used ring.
    pub device: u64,
    ready: bool,
    next_avail: u16,
    next_used: u16,
    used_unsignalled: bool,
}

impl Virtqueue {
    /// `QueueReady`.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Starts the queue (`QueueReady = 1`) after checking its configuration: a power-of-two
    /// size up to [`QUEUE_NUM_MAX`], aligned areas wholly inside the pool.
    pub fn enable<B: Backing>(&mut self, pool: &Pool<B>) -> Result<(), Fault> {
        let num = u64::from(self.num);
        if !self.num.is_power_of_two() || self.num > QUEUE_NUM_MAX {
            return Err(Fault::BadIndex);
        }
        let areas = [
            (self.desc, DESC_SIZE * num, 16),
            (self.driver, 6 + 2 * num, 2),
            (self.device, 6 + 8 * num, 4),
        ];
        for (addr, len, align) in areas {
            if addr % align != 0 {
                return Err(Fault::OutsidePool);
            }
            pool.check(addr, len)?;
        }
        self.ready = true;
        self.next_avail = 0;
        self.next_used = 0;
        Ok(())
    }

    /// Stops the queue (`QueueReady = 0`), keeping its configuration.
    pub fn disable(&mut self) {
        self.ready = false;
    }

    /// Back to the reset state (`QueueReady = 0` and everything else cleared).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes the next chain the driver made available, if any.
    pub fn pop<B: Backing>(&mut self, pool: &Pool<B>) -> Result<Option<Chain>, Fault> {
        if !self.ready {
            return Ok(None);
        }
        let avail_idx = pool.read_u16(self.driver + 2)?;
        let waiting = avail_idx.wrapping_sub(self.next_avail);
        if waiting == 0 {
            return Ok(None);
        }
        if waiting > self.num {
            return Err(Fault::BadIndex);
        }
        // The ring entry is read after the index that published it.
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.num);
        let head = pool.read_u16(self.driver + 4 + 2 * slot)?;
        if head >= self.num {
            return Err(Fault::BadIndex);
        }
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(Chain {
            head,
            next: Some(head),
            table: self.desc,
            num: self.num,
            walked: 0,
            writable_seen: false,
        }))
    }

    /// Returns a chain on the used ring with `written` bytes written into it.
    pub fn push<B: Backing>(
        &mut self,
        pool: &Pool<B>,
        chain: &Chain,
        written: u32,
    ) -> Result<(), Fault> {
        let slot = u64::from(self.next_used % self.num);
        let entry = self.device + 4 + 8 * slot;
        pool.write_u32(entry, u32::from(chain.head))?;
        pool.write_u32(entry + 4, written)?;
        // The entry is visible before the index that publishes it.
        fence(Ordering::Release);
        self.next_used = self.next_used.wrapping_add(1);
        pool.write_u16(self.device + 2, self.next_used)?;
        self.used_unsignalled = true;
        Ok(())
    }

    /// Whether buffers were used since the last call and the driver wants an interrupt for
    /// them (`VIRTQ_AVAIL_F_NO_INTERRUPT` clear).
    pub fn take_interrupt<B: Backing>(&mut self, pool: &Pool<B>) -> Result<bool, Fault> {
        if !core::mem::take(&mut self.used_unsignalled) {
            return Ok(false);
        }
        // The used index is visible before the driver's flags are read (virtio §2.7.7.2).
        fence(Ordering::SeqCst);
        Ok(pool.read_u16(self.driver)? & AVAIL_F_NO_INTERRUPT == 0)
    }
}

/// A driver's side of one queue in a fake pool, for the tests of this module and the devices.
#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::virtio::pool::fake::{Ram, pool};

    /// Pool base used by the tests.
    pub const BASE: u64 = 0xC000_0000;
    /// Pool size used by the tests.
    pub const SIZE: usize = 0x1_0000;

    /// The driver of one queue: areas at fixed places, buffers allocated upwards.
    pub struct Driver {
        /// The queue as the device sees it (configured and enabled).
        pub q: Virtqueue,
        avail_idx: u16,
        next_desc: u16,
        used_seen: u16,
        heap: u64,
    }

    /// A pool and queue `index`'s driver (queues do not overlap: 0x4000 each).
    pub fn setup(p: &Pool<Ram>, index: u64, num: u16) -> Driver {
        let area = BASE + index * 0x4000;
        let mut q = Virtqueue {
            num,
            desc: area,
            driver: area + 0x400,
            device: area + 0x800,
            ..Virtqueue::default()
        };
        q.enable(p).unwrap();
        Driver {
            q,
            avail_idx: 0,
            next_desc: 0,
            used_seen: 0,
            heap: area + 0x1000,
        }
    }

    /// A fresh pool.
    pub fn new_pool() -> Pool<Ram> {
        pool(BASE, SIZE)
    }

    impl Driver {
        /// Writes descriptor `i`.
        pub fn desc(&self, p: &Pool<Ram>, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let d = self.q.desc + 16 * u64::from(i);
            p.write(d, &addr.to_le_bytes()).unwrap();
            p.write_u32(d + 8, len).unwrap();
            p.write_u16(d + 12, flags).unwrap();
            p.write_u16(d + 14, next).unwrap();
        }

        /// Publishes `head` on the avail ring.
        pub fn publish(&mut self, p: &Pool<Ram>, head: u16) {
            let slot = u64::from(self.avail_idx % self.q.num);
            p.write_u16(self.q.driver + 4 + 2 * slot, head).unwrap();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            p.write_u16(self.q.driver + 2, self.avail_idx).unwrap();
        }

        /// Adds one buffer of `len` bytes (holding `data` if readable) as a one-descriptor
        /// chain; returns its address.
        pub fn add(&mut self, p: &Pool<Ram>, data: &[u8], len: u32, writable: bool) -> u64 {
            let addr = self.heap;
            self.heap += u64::from(len.max(16)).next_multiple_of(16);
            p.write(addr, data).unwrap();
            let i = self.next_desc % self.q.num;
            self.next_desc += 1;
            let flags = if writable { DESC_F_WRITE } else { 0 };
            self.desc(p, i, addr, len, flags, 0);
            self.publish(p, i);
            addr
        }

        /// The used entries `(id, len)` the device added since the last call.
        pub fn used(&mut self, p: &Pool<Ram>) -> Vec<(u32, u32)> {
            let idx = p.read_u16(self.q.device + 2).unwrap();
            let mut out = Vec::new();
            while self.used_seen != idx {
                let e = self.q.device + 4 + 8 * u64::from(self.used_seen % self.q.num);
                out.push((p.read_u32(e).unwrap(), p.read_u32(e + 4).unwrap()));
                self.used_seen = self.used_seen.wrapping_add(1);
            }
            out
        }

        /// Sets the avail ring's flags.
        pub fn avail_flags(&self, p: &Pool<Ram>, flags: u16) {
            p.write_u16(self.q.driver, flags).unwrap();
        }

        /// Sets the avail index directly (hostile drivers).
        pub fn avail_idx(&mut self, p: &Pool<Ram>, idx: u16) {
            self.avail_idx = idx;
            p.write_u16(self.q.driver + 2, idx).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use crate::virtio::pool::fake::Ram;

    fn walk(q: &mut Virtqueue, p: &Pool<Ram>) -> Result<Vec<Segment>, Fault> {
        let mut chain = q.pop(p)?.expect("a chain");
        let mut segs = Vec::new();
        while let Some(s) = chain.next_segment(p)? {
            segs.push(s);
        }
        Ok(segs)
    }

    /// A readable chain is read; the chain goes back on the used ring; the driver gets an
    /// interrupt unless it asked for none.
    #[test]
    fn read_then_use() {
        let p = new_pool();
        let mut d = setup(&p, 0, 8);
        d.add(&p, b"hello", 5, false);
        let mut chain = d.q.pop(&p).unwrap().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(chain.read_all(&p, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        d.q.push(&p, &chain, 0).unwrap();
        assert_eq!(d.used(&p), [(0, 0)]);
        assert_eq!(d.q.take_interrupt(&p), Ok(true));
        assert_eq!(d.q.take_interrupt(&p), Ok(false), "one interrupt per batch");
        assert!(d.q.pop(&p).unwrap().is_none());

        d.avail_flags(&p, AVAIL_F_NO_INTERRUPT);
        d.add(&p, b"x", 1, false);
        let chain = d.q.pop(&p).unwrap().unwrap();
        d.q.push(&p, &chain, 0).unwrap();
        assert_eq!(d.q.take_interrupt(&p), Ok(false));
    }

    /// Parts are written across writable buffers; the count says what fitted.
    #[test]
    fn write_across_buffers() {
        let p = new_pool();
        let mut d = setup(&p, 0, 4);
        let (a, b) = (BASE + 0x2000, BASE + 0x3000);
        d.desc(&p, 2, a, 4, DESC_F_WRITE | DESC_F_NEXT, 3);
        d.desc(&p, 3, b, 8, DESC_F_WRITE, 0);
        d.publish(&p, 2);
        let mut chain = d.q.pop(&p).unwrap().unwrap();
        assert_eq!(chain.write_all(&p, &[b"abc", b"defghijklm"]), Ok(12));
        let mut got = [0u8; 12];
        p.read(a, &mut got[..4]).unwrap();
        p.read(b, &mut got[4..]).unwrap();
        assert_eq!(&got, b"abcdefghijkl");
        d.q.push(&p, &chain, 12).unwrap();
        assert_eq!(d.used(&p), [(2, 12)]);
    }

    /// Each rule a hostile driver can break is a fault, never an access outside the pool
    /// (the fake pool panics on one).
    #[test]
    fn hostile_descriptors() {
        let inside = BASE + 0x2000;
        type Desc = (u64, u32, u16, u16);
        let cases: [(&str, [Desc; 2], Fault); 6] = [
            ("outside", [(BASE - 16, 16, 0, 0); 2], Fault::OutsidePool),
            ("huge", [(inside, u32::MAX, 0, 0); 2], Fault::OutsidePool),
            ("wraps", [(u64::MAX - 4, 16, 0, 0); 2], Fault::OutsidePool),
            (
                "loop",
                [(inside, 4, DESC_F_NEXT, 1), (inside, 4, DESC_F_NEXT, 0)],
                Fault::BadChain,
            ),
            (
                "next out of range",
                [(inside, 4, DESC_F_NEXT, 8), (inside, 4, 0, 0)],
                Fault::BadIndex,
            ),
            (
                "read after write",
                [
                    (inside, 4, DESC_F_WRITE | DESC_F_NEXT, 1),
                    (inside, 4, 0, 0),
                ],
                Fault::BadChain,
            ),
        ];
        for (name, descs, fault) in cases {
            let p = new_pool();
            let mut d = setup(&p, 0, 8);
            for (i, (addr, len, flags, next)) in descs.into_iter().enumerate() {
                d.desc(&p, i as u16, addr, len, flags, next);
            }
            d.publish(&p, 0);
            assert_eq!(walk(&mut d.q, &p), Err(fault), "{name}");
        }
        let p = new_pool();
        let mut d = setup(&p, 0, 8);
        d.desc(&p, 0, BASE + 0x2000, 16, DESC_F_INDIRECT, 0);
        d.publish(&p, 0);
        assert_eq!(walk(&mut d.q, &p), Err(Fault::BadDescriptor), "indirect");
    }

    /// A self-loop of one descriptor stops after `num` descriptors.
    #[test]
    fn self_loop_stops() {
        let p = new_pool();
        let mut d = setup(&p, 0, 4);
        d.desc(&p, 1, BASE + 0x2000, 1, DESC_F_NEXT, 1);
        d.publish(&p, 1);
        let mut chain = d.q.pop(&p).unwrap().unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(chain.read_all(&p, &mut buf), Err(Fault::BadChain));
    }

    /// An avail index more than `num` ahead, or a ring entry naming no descriptor, is a fault.
    #[test]
    fn hostile_avail_ring() {
        let p = new_pool();
        let mut d = setup(&p, 0, 8);
        d.avail_idx(&p, 9);
        assert_eq!(d.q.pop(&p).map(|c| c.is_some()), Err(Fault::BadIndex));
        let p = new_pool();
        let mut d = setup(&p, 0, 8);
        d.publish(&p, 8);
        assert_eq!(d.q.pop(&p).map(|c| c.is_some()), Err(Fault::BadIndex));
        // Exactly `num` waiting is fine, and the index wraps at 2^16.
        let p = new_pool();
        let mut d = setup(&p, 0, 8);
        d.q.next_avail = u16::MAX - 3;
        d.avail_idx(&p, 4);
        for _ in 0..8 {
            assert!(d.q.pop(&p).unwrap().is_some());
        }
        assert!(d.q.pop(&p).unwrap().is_none());
    }

    /// A queue is enabled only with a valid size and aligned areas inside the pool.
    #[test]
    fn enable_checks_configuration() {
        let p = new_pool();
        let good = Virtqueue {
            num: 8,
            desc: BASE,
            driver: BASE + 0x400,
            device: BASE + 0x800,
            ..Virtqueue::default()
        };
        let mut q = good;
        assert_eq!(q.enable(&p), Ok(()));
        assert!(q.ready());
        let bad = [
            Virtqueue { num: 0, ..good },
            Virtqueue { num: 6, ..good },
            Virtqueue {
                num: QUEUE_NUM_MAX * 2,
                ..good
            },
            Virtqueue {
                desc: BASE + 8,
                ..good
            },
            Virtqueue {
                driver: BASE + 1,
                ..good
            },
            Virtqueue {
                device: BASE + 2,
                ..good
            },
            Virtqueue {
                device: BASE + SIZE as u64 - 8,
                ..good
            },
            Virtqueue { desc: 0, ..good },
        ];
        for mut q in bad {
            assert!(q.enable(&p).is_err(), "{q:?}");
            assert!(!q.ready());
        }
    }

    /// Property: whatever the driver writes into its rings and descriptors, popping and
    /// walking never touches memory outside the pool (the fake panics), always terminates,
    /// and every segment handed out lies inside the pool.
    #[test]
    fn random_rings_stay_inside() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let p = new_pool();
            let mut d = setup(&p, 0, 8);
            // Garbage descriptors: addresses near and inside the pool, any flags and next.
            for i in 0..8 {
                let r = rand();
                let addr = match r % 4 {
                    0 => BASE + (r >> 8) % SIZE as u64,
                    1 => BASE.wrapping_sub(r >> 40),
                    2 => r,
                    _ => BASE + SIZE as u64 - (r >> 60),
                };
                let len = (rand() >> (rand() % 64)) as u32;
                d.desc(&p, i, addr, len, (rand() % 8) as u16, (rand() % 12) as u16);
            }
            for s in 0..8 {
                p.write_u16(d.q.driver + 4 + 2 * s, (rand() % 10) as u16)
                    .unwrap();
            }
            d.avail_idx(&p, (rand() % 12) as u16);
            for _ in 0..10 {
                let Ok(Some(mut chain)) = d.q.pop(&p) else {
                    break;
                };
                let mut steps = 0;
                while let Ok(Some(seg)) = chain.next_segment(&p) {
                    assert!(p.check(seg.addr, u64::from(seg.len)).is_ok());
                    steps += 1;
                    assert!(steps <= 8);
                }
                let mut buf = [0u8; 64];
                let _ = chain.read_all(&p, &mut buf);
            }
        }
    }
}
