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
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `src + i` is inside the pool (checked above), which is inside the channel
            // window (checked by `new`): identity-mapped normal memory that Tandem maps for
            // this VM. Volatile, because the peer VM writes it concurrently.
            *b = unsafe { src.wrapping_add(i).read_volatile() };
        }
    }

    fn store(&self, offset: usize, data: &[u8]) {
        if !self.inside(offset, data.len()) {
            return;
        }
        let dst = (self.base + offset) as *mut u8;
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `load`; the pool is never executable and holds no Rust object of
            // this VM, so writing it cannot break one.
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
