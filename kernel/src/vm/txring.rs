//! The shared console's transmit ring, with a guaranteed share per writer.
//!
//! Every writer ([`Owner`]: Tandem itself or a VM) is guaranteed
//! `capacity / writers` bytes of the ring: space another writer has not
//! used of its share stays reserved for it, and only the rest is shared
//! first come, first served. So a VM flooding its console fills at most
//! its share plus the unreserved rest, and every other writer still finds
//! room for its own share.
//!
//! Bytes that do not fit are dropped (and counted), never waited for: the
//! ring is filled under the console lock that every CPU's exit path takes,
//! and the UART empties it from its interrupt.
#![forbid(unsafe_code)]

use super::package::MAX_VMS;

/// A writer to the console: 0 is Tandem, `n` is the VM with id `n`.
pub type Owner = usize;

/// Tandem's own output.
pub const TANDEM: Owner = 0;

/// Writers the ring keeps count of: Tandem and every VM.
pub const OWNERS: usize = MAX_VMS + 1;

/// A FIFO of bytes on their way to the UART, accounted per owner.
pub struct TxRing<const N: usize> {
    buf: [u8; N],
    /// The owner of each byte in `buf`.
    owner: [u8; N],
    head: usize,
    len: usize,
    /// Queued bytes per owner.
    queued: [usize; OWNERS],
    /// Writers that share the ring (Tandem and the VMs): each is guaranteed `N / writers`.
    writers: usize,
    /// Bytes dropped per owner since [`TxRing::take_dropped`] last asked.
    dropped: [usize; OWNERS],
}

impl<const N: usize> TxRing<N> {
    /// An empty ring shared by Tandem alone (see [`TxRing::set_writers`]).
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            owner: [0; N],
            head: 0,
            len: 0,
            queued: [0; OWNERS],
            writers: 1,
            dropped: [0; OWNERS],
        }
    }

    /// Shares the ring among Tandem and `vms` VMs (ids 1..=`vms`).
    pub fn set_writers(&mut self, vms: usize) {
        self.writers = vms.min(MAX_VMS) + 1;
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes queued by `owner`.
    pub fn queued(&self, owner: Owner) -> usize {
        self.queued.get(owner).copied().unwrap_or(0)
    }

    /// Bytes `owner` may queue now: the free space less what the other
    /// writers have not yet used of their shares. Never less than what
    /// `owner` has not used of its own share.
    pub fn room(&self, owner: Owner) -> usize {
        if owner >= self.writers {
            return 0;
        }
        let share = N / self.writers;
        let mut reserved = 0;
        for (p, &q) in self.queued[..self.writers].iter().enumerate() {
            if p != owner {
                reserved += share.saturating_sub(q);
            }
        }
        (N - self.len).saturating_sub(reserved)
    }

    /// Queues what of `bytes` fits in `owner`'s room; drops and counts the
    /// rest. Returns the bytes queued.
    pub fn push(&mut self, owner: Owner, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room(owner));
        if n < bytes.len() {
            if let Some(d) = self.dropped.get_mut(owner) {
                *d += bytes.len() - n;
            }
            if n == 0 {
                return 0;
            }
        }
        for &b in &bytes[..n] {
            let at = (self.head + self.len) % N;
            self.buf[at] = b;
            self.owner[at] = owner as u8;
            self.len += 1;
        }
        self.queued[owner] += n;
        n
    }

    /// The queued byte `i` places from the oldest.
    pub fn peek(&self, i: usize) -> Option<u8> {
        (i < self.len).then(|| self.buf[(self.head + i) % N])
    }

    /// Removes the oldest `n` queued bytes (they went to the UART).
    pub fn consume(&mut self, n: usize) {
        for _ in 0..n.min(self.len) {
            self.queued[usize::from(self.owner[self.head])] -= 1;
            self.head = (self.head + 1) % N;
            self.len -= 1;
        }
    }

    /// Removes and returns the oldest queued byte.
    pub fn pop(&mut self) -> Option<u8> {
        let b = self.peek(0)?;
        self.consume(1);
        Some(b)
    }

    /// Bytes of `owner`'s dropped since the last call, and resets the count.
    pub fn take_dropped(&mut self, owner: Owner) -> usize {
        self.dropped
            .get_mut(owner)
            .map_or(0, |d| core::mem::take(d))
    }
}

impl<const N: usize> Default for TxRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<const N: usize>(r: &mut TxRing<N>, n: usize) -> Vec<u8> {
        (0..n).map_while(|_| r.pop()).collect()
    }

    /// A flooding writer leaves every other writer its share.
    #[test]
    fn flood_leaves_others_their_share() {
        let mut r = TxRing::<1024>::new();
        r.set_writers(3);
        let flood = [b'f'; 4096];
        while r.push(1, &flood) > 0 {}
        for quiet in [TANDEM, 2, 3] {
            assert_eq!(r.room(quiet), 256, "owner {quiet}");
            assert_eq!(r.push(quiet, &[b'q'; 100]), 100);
        }
        assert_eq!(r.room(1), 0);
        assert_eq!(r.len(), 256 + 300);
    }

    /// An idle ring is all one writer's, less the others' shares.
    #[test]
    fn unreserved_space_is_shared() {
        let mut r = TxRing::<1000>::new();
        r.set_writers(1);
        assert_eq!(r.room(1), 500);
        assert_eq!(r.push(1, &[0; 600]), 500);
        assert_eq!(r.take_dropped(1), 100);
        assert_eq!(r.take_dropped(1), 0);
        assert_eq!(r.room(TANDEM), 500);
    }

    /// Consuming many bytes at once crosses runs and owners.
    #[test]
    fn consume_across_runs() {
        let mut r = TxRing::<64>::new();
        r.set_writers(2);
        r.push(1, b"aaaa");
        r.push(2, b"bb");
        r.push(TANDEM, b"ccc");
        assert_eq!(r.peek(5), Some(b'b'));
        r.consume(5);
        assert_eq!((r.queued(1), r.queued(2), r.queued(TANDEM)), (0, 1, 3));
        assert_eq!(r.pop(), Some(b'b'));
        r.consume(99);
        assert_eq!((r.len(), r.queued(TANDEM), r.pop()), (0, 0, None));
        assert_eq!(r.room(1), 64 - 2 * 21);
    }

    /// Bytes come out in order, and each owner's count falls as its bytes go.
    #[test]
    fn fifo_and_accounting() {
        let mut r = TxRing::<64>::new();
        r.set_writers(2);
        r.push(1, b"aa");
        r.push(2, b"bbb");
        r.push(1, b"c");
        assert_eq!(drain(&mut r, 3), b"aab");
        assert_eq!((r.queued(1), r.queued(2)), (1, 2));
        assert_eq!(drain(&mut r, 9), b"bbc");
        assert_eq!((r.queued(1), r.queued(2), r.len()), (0, 0, 0));
    }

    /// Writers alternating byte by byte each get their share.
    #[test]
    fn alternating_writers() {
        let mut r = TxRing::<3000>::new();
        r.set_writers(2);
        let mut n = [0; 3];
        for i in 0..6000 {
            n[1 + i % 2] += r.push(1 + i % 2, b"x");
        }
        assert_eq!(n, [0, 1000, 1000], "Tandem's 1000 stay reserved");
        assert_eq!(drain(&mut r, 3000).len(), 2000);
        assert_eq!((r.queued(1), r.queued(2)), (0, 0));
    }

    /// The reservations follow a change in the number of writers, and the
    /// bytes queued under the old shares.
    #[test]
    fn writers_change() {
        let mut r = TxRing::<900>::new();
        r.push(TANDEM, &[0; 400]);
        r.set_writers(2);
        assert_eq!(
            r.room(1),
            200,
            "free 500 less the shares of 2 and Tandem (used up)"
        );
        assert_eq!(r.room(TANDEM), 0, "over its share: the rest is reserved");
        r.set_writers(0);
        assert_eq!(r.room(TANDEM), 500);
        assert_eq!(drain(&mut r, 900).len(), 400);
        r.set_writers(2);
        assert_eq!(r.room(2), 300);
    }

    /// An owner beyond the writers gets nothing.
    #[test]
    fn unknown_owner_gets_nothing() {
        let mut r = TxRing::<64>::new();
        r.set_writers(1);
        assert_eq!(r.room(5), 0);
        assert_eq!(r.room(OWNERS), 0);
    }
}
