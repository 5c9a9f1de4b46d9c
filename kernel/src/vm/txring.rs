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

/// Runs of bytes with one owner that the ring remembers (consecutive writes
/// by the same owner share one).
const RUNS: usize = 256;

/// A FIFO of bytes on their way to the UART, accounted per owner.
pub struct TxRing<const N: usize> {
    buf: [u8; N],
    head: usize,
    len: usize,
    /// Queued bytes per owner.
    queued: [usize; OWNERS],
    /// Owner and length of each run of queued bytes, oldest first.
    runs: [(u8, u16); RUNS],
    run_head: usize,
    run_len: usize,
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
            head: 0,
            len: 0,
            queued: [0; OWNERS],
            runs: [(0, 0); RUNS],
            run_head: 0,
            run_len: 0,
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
        let share = N / self.writers.max(1);
        let reserved: usize = (0..self.writers)
            .filter(|&p| p != owner)
            .map(|p| share.saturating_sub(self.queued[p]))
            .sum();
        (N - self.len).saturating_sub(reserved)
    }

    /// Queues what of `bytes` fits in `owner`'s room; drops and counts the
    /// rest. Returns the bytes queued.
    pub fn push(&mut self, owner: Owner, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room(owner));
        let n = n.min(self.run_space(owner));
        if let Some(d) = self.dropped.get_mut(owner) {
            *d += bytes.len() - n;
        }
        for &b in &bytes[..n] {
            self.buf[(self.head + self.len) % N] = b;
            self.len += 1;
        }
        if n > 0 {
            self.queued[owner] += n;
            self.add_run(owner, n);
        }
        n
    }

    /// How many bytes `owner` can add without running out of run records.
    fn run_space(&self, owner: Owner) -> usize {
        if self.run_len < RUNS {
            return usize::MAX;
        }
        let (o, l) = self.runs[(self.run_head + self.run_len - 1) % RUNS];
        if usize::from(o) == owner {
            usize::from(u16::MAX - l)
        } else {
            0
        }
    }

    fn add_run(&mut self, owner: Owner, mut n: usize) {
        let owner8 = owner as u8;
        if self.run_len > 0 {
            let last = &mut self.runs[(self.run_head + self.run_len - 1) % RUNS];
            if last.0 == owner8 {
                let add = n.min(usize::from(u16::MAX - last.1));
                last.1 += add as u16;
                n -= add;
            }
        }
        while n > 0 && self.run_len < RUNS {
            let add = n.min(usize::from(u16::MAX));
            self.runs[(self.run_head + self.run_len) % RUNS] = (owner8, add as u16);
            self.run_len += 1;
            n -= add;
        }
    }

    /// The oldest queued byte.
    pub fn front(&self) -> Option<u8> {
        (self.len > 0).then(|| self.buf[self.head])
    }

    /// Removes the oldest queued byte (it went to the UART).
    pub fn pop(&mut self) -> Option<u8> {
        let b = self.front()?;
        self.head = (self.head + 1) % N;
        self.len -= 1;
        let run = &mut self.runs[self.run_head];
        self.queued[usize::from(run.0)] -= 1;
        run.1 -= 1;
        if run.1 == 0 {
            self.run_head = (self.run_head + 1) % RUNS;
            self.run_len -= 1;
        }
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

    /// Run records never overflow: once they are used up, only the owner of
    /// the last run can add (to it), and everything queued comes out.
    #[test]
    fn alternating_writers_bounded_by_runs() {
        let mut r = TxRing::<4096>::new();
        r.set_writers(2);
        for i in 0..RUNS {
            assert_eq!(r.push(1 + i % 2, b"x"), 1);
        }
        assert_eq!(r.push(1, b"x"), 0);
        assert_eq!(r.push(2, b"x"), 1);
        assert_eq!(drain(&mut r, 4096).len(), RUNS + 1);
        assert_eq!((r.queued(1), r.queued(2)), (0, 0));
        assert_eq!(r.push(1, b"y"), 1);
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
