//! The channel ring ([`pv_abi::ring`]) with a hostile peer: one producer and
//! one consumer share a region, and between their calls the peer may rewrite
//! any bytes, `prod` and `cons` included, or shrink the region.
//!
//! Checked: no panic; the ring touches the region only as its contract says
//! (inside it, indices only at `PROD_OFFSET`/`CONS_OFFSET`, 4-aligned); while
//! nobody scribbled, every message comes out whole and in order, a send fails
//! only when the ring is full, and `free` and `peek_len` agree with that.

use std::collections::VecDeque;

use pv_abi::ring::{
    CONS_OFFSET, Consumer, PROD_OFFSET, Producer, RingError, RingMemory, max_payload, record_size,
};

use crate::Bytes;

/// A region that asserts the ring keeps to [`RingMemory`]'s contract.
struct Region(Vec<u8>);

impl Region {
    fn within(&self, offset: usize, len: usize) {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.0.len()),
            "access {offset}+{len} outside a {}-byte region",
            self.0.len()
        );
    }
    fn index(&self, offset: usize) {
        assert!(
            offset == PROD_OFFSET || offset == CONS_OFFSET,
            "index access at {offset}"
        );
        self.within(offset, 4);
    }
}

impl RingMemory for Region {
    fn size(&self) -> usize {
        self.0.len()
    }
    fn load_u32(&self, offset: usize) -> u32 {
        self.index(offset);
        self.0[..].load_u32(offset)
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.index(offset);
        self.0[..].store_u32(offset, value);
    }
    fn read(&self, offset: usize, buf: &mut [u8]) {
        self.within(offset, buf.len());
        self.0[..].read(offset, buf);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self.within(offset, data.len());
        self.0[..].write(offset, data);
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let size = 128 + usize::from(b.u16() % 2048);
    let mut region = Region(vec![0; size]);
    let (Ok(mut tx), Ok(mut rx)) = (Producer::new(&region), Consumer::new(&region)) else {
        assert!(size < 128 + 16, "a {size}-byte zeroed region is no ring");
        return;
    };
    let capacity = tx.capacity() as usize;
    // Messages sent and not yet received, and the bytes they take.
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut used = 0usize;
    let mut tampered = false;
    let mut serial = 0u8;
    for _ in 0..256 {
        if b.is_empty() {
            break;
        }
        match b.below(8) {
            0..=2 => {
                let len = match b.below(4) {
                    0 => usize::from(b.u8() % 8),
                    1 => usize::from(b.u8()),
                    2 => max_payload(capacity as u32) - usize::from(b.u8() % 3),
                    _ => usize::from(b.u16()),
                };
                serial = serial.wrapping_add(1);
                let msg: Vec<u8> = (0..len).map(|i| serial ^ i as u8).collect();
                let r = tx.send(&mut region, &msg);
                if tampered {
                    continue;
                }
                let need = record_size(len);
                match r {
                    Ok(()) => {
                        assert!(used + need <= capacity, "sent {len} bytes into a full ring");
                        used += need;
                        queue.push_back(msg);
                    }
                    Err(RingError::Full) => {
                        assert!(len <= max_payload(capacity as u32));
                        assert!(
                            used + need > capacity,
                            "full with {} bytes free",
                            capacity - used
                        );
                    }
                    Err(RingError::TooLong) => assert!(len > max_payload(capacity as u32)),
                    Err(e) => panic!("send of {len} bytes: {e:?} on an intact ring"),
                }
            }
            3..=4 => {
                let mut buf = vec![0u8; usize::from(b.u16() % 4096)];
                let r = rx.recv(&mut region, &mut buf);
                if tampered {
                    continue;
                }
                match (r, queue.front()) {
                    (Ok(None), None) => {}
                    (Ok(Some(n)), Some(front)) => {
                        assert_eq!(&buf[..n], &front[..], "a message came out changed");
                        used -= record_size(n);
                        queue.pop_front();
                    }
                    (Err(RingError::BufferTooSmall { needed }), Some(front)) => {
                        assert_eq!(needed, front.len());
                        assert!(buf.len() < needed);
                    }
                    (r, front) => panic!("recv: {r:?}, expected {:?}", front.map(|m| m.len())),
                }
            }
            5 => {
                let free = tx.free(&region);
                let peek = rx.peek_len(&region);
                if !tampered {
                    assert_eq!(free, Ok(capacity - used));
                    assert_eq!(peek, Ok(queue.front().map(Vec::len)));
                }
            }
            6 => {
                // The peer rewrites bytes, often the indices.
                let len = region.0.len();
                let at = match b.below(3) {
                    0 => PROD_OFFSET,
                    1 => CONS_OFFSET,
                    _ => usize::from(b.u16()) % len.max(1),
                };
                let n = 1 + usize::from(b.u8() % 8);
                let bytes = b.take(n).to_vec();
                let end = (at + bytes.len()).min(len);
                if at < end {
                    region.0[at..end].copy_from_slice(&bytes[..end - at]);
                }
                tampered = true;
            }
            _ => {
                // The peer's mapping shrinks or grows under the ring.
                region.0.resize(usize::from(b.u16() % 2200), 0);
                tampered = true;
            }
        }
    }
}
