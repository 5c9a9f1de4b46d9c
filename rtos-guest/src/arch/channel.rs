//! Inter-VM channels, raw side: the shared pool's bytes and the doorbell interrupt.
//!
//! - [`SharedPool`] gives [`crate::virtio::pool::Pool`] the bytes of a pool that lies in the
//!   channel window ([`crate::board::CHANNEL_WINDOW_BASE`], identity-mapped as normal,
//!   execute-never memory). The peer writes the pool concurrently, so every access is volatile
//!   and copies bytes; nothing keeps a reference into it.
//! - A [`Doorbell`] is a channel's SPI: its handler posts a binary semaphore the serving task
//!   waits on, so the task runs only when the peer rang.

use super::cpu::IrqLock;
use super::kernel::Semaphore;
use crate::board::{CHANNEL_WINDOW_BASE, CHANNEL_WINDOW_END};
use crate::sched::Error;
use crate::virtio::pool::Backing;

/// A shared pool's bytes, at their identity-mapped address.
#[derive(Debug)]
pub struct SharedPool {
    base: usize,
    size: usize,
}

impl SharedPool {
    /// The pool `[base, base + size)`, if it lies wholly inside the channel window.
    pub fn new(base: u64, size: u64) -> Option<Self> {
        let end = base.checked_add(size)?;
        if base < CHANNEL_WINDOW_BASE.0 || end > CHANNEL_WINDOW_END.0 {
            return None;
        }
        Some(Self {
            base: usize::try_from(base).ok()?,
            size: usize::try_from(size).ok()?,
        })
    }

    /// Whether `[offset, offset + len)` is inside the pool.
    fn inside(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }
}

impl Backing for SharedPool {
    fn load(&self, offset: usize, buf: &mut [u8]) {
        if !self.inside(offset, buf.len()) {
            return;
        }
        let src = (self.base + offset) as *const u8;
        // Bytes up to 8-byte alignment of the pool address, then whole words, then bytes.
        let head = src.align_offset(8).min(buf.len());
        let words = (buf.len() - head) / 8;
        for (i, b) in buf[..head].iter_mut().enumerate() {
            // SAFETY: `src + i` is inside the pool (checked above), which is inside the channel
            // window (checked by `new`): identity-mapped normal memory that Tandem maps for
            // this VM. Volatile, because the peer VM writes it concurrently.
            *b = unsafe { src.wrapping_add(i).read_volatile() };
        }
        for w in 0..words {
            let at = head + 8 * w;
            let p = src.wrapping_add(at) as *const u64;
            // SAFETY: as above, and `p` is 8-aligned with its 8 bytes inside the pool.
            let v = unsafe { p.read_volatile() };
            buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        }
        for (i, b) in buf.iter_mut().enumerate().skip(head + 8 * words) {
            // SAFETY: as for the head bytes.
            *b = unsafe { src.wrapping_add(i).read_volatile() };
        }
    }

    fn store(&self, offset: usize, data: &[u8]) {
        if !self.inside(offset, data.len()) {
            return;
        }
        let dst = (self.base + offset) as *mut u8;
        let head = dst.align_offset(8).min(data.len());
        let words = (data.len() - head) / 8;
        for (i, &b) in data[..head].iter().enumerate() {
            // SAFETY: as in `load`; the pool is never executable and holds no Rust object of
            // this VM, so writing it cannot break one.
            unsafe { dst.wrapping_add(i).write_volatile(b) };
        }
        for w in 0..words {
            let at = head + 8 * w;
            let mut v = [0u8; 8];
            v.copy_from_slice(&data[at..at + 8]);
            let p = dst.wrapping_add(at) as *mut u64;
            // SAFETY: as above, and `p` is 8-aligned with its 8 bytes inside the pool.
            unsafe { p.write_volatile(u64::from_ne_bytes(v)) };
        }
        for (i, &b) in data.iter().enumerate().skip(head + 8 * words) {
            // SAFETY: as for the head bytes.
            unsafe { dst.wrapping_add(i).write_volatile(b) };
        }
    }
}

/// Most doorbells (one per back-end).
const MAX_DOORBELLS: usize = 4;

static DOORBELLS: IrqLock<[Option<(u32, Semaphore)>; MAX_DOORBELLS]> =
    IrqLock::new([None; MAX_DOORBELLS]);

/// A channel interrupt that wakes the task serving the channel.
#[derive(Clone, Copy, Debug)]
pub struct Doorbell(Semaphore);

impl Doorbell {
    /// Registers INTID `intid` as a doorbell (its SPI is enabled by the caller).
    pub fn new(intid: u32) -> Result<Self, Error> {
        let sem = Semaphore::new(0, 1)?;
        DOORBELLS.with(|d| {
            let slot = d.iter_mut().find(|s| s.is_none()).ok_or(Error::NoSlot)?;
            *slot = Some((intid, sem));
            Ok(Self(sem))
        })
    }

    /// Waits until the doorbell rang since the last wait (returns at once if it did).
    pub fn wait(&self) {
        self.0.wait();
    }
}

/// The interrupt handler's part: rings the doorbell registered for `intid`. Returns whether
/// there was one.
pub fn on_irq(intid: u32) -> bool {
    let sem = DOORBELLS.with(|d| {
        d.iter()
            .flatten()
            .find(|(i, _)| *i == intid)
            .map(|&(_, s)| s)
    });
    match sem {
        Some(s) => {
            // Full: already rung and not yet waited for; the rings coalesce.
            let _ = s.post();
            true
        }
        None => false,
    }
}
