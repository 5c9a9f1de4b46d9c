//! Virtio devices served to another VM (the device side of virtio 1.x over virtio-mmio).
//!
//! Tandem traps the front-end's accesses to a virtio-mmio register window and forwards them
//! here; the front-end's buffers live in a pool of memory shared with this VM. Everything in
//! these modules is plain Rust, host-tested with a fake pool:
//! - [`pool`]: the shared pool, the only way to touch the front-end's memory; every access is
//!   range-checked.
//! - [`queue`]: split virtqueues, device side (avail ring → descriptor chains → used ring),
//!   checking every index and descriptor.
//! - [`mmio`]: the virtio-mmio register file (version 2) and device status, around a
//!   [`Device`].
//! - [`net`]: virtio-net over [`crate::inet`]; [`console`]: virtio-console carrying AT commands.
//! - [`service`]: one doorbell round (poll, reply, serve, interrupt) over the channel calls.
//!
//! A front-end that breaks the rules (descriptor outside the pool, loop, chain too long, bad
//! ring index) gets `DEVICE_NEEDS_RESET` and a configuration-change interrupt; the device then
//! ignores its queues until the driver resets it.
#![forbid(unsafe_code)]

pub mod console;
pub mod mmio;
pub mod net;
pub mod pool;
pub mod queue;
pub mod service;

use pool::{Backing, Pool};
use queue::Virtqueue;

/// `VIRTIO_F_VERSION_1`: virtio 1.x, little-endian, the modern layout.
pub const F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_ACCESS_PLATFORM`: the driver must use its DMA API (Linux then bounces every
/// buffer through the restricted DMA pool, i.e. the shared pool).
pub const F_ACCESS_PLATFORM: u64 = 1 << 33;

/// `InterruptStatus` bit: the device used a buffer.
pub const INT_USED_BUFFER: u32 = 1 << 0;
/// `InterruptStatus` bit: the configuration (or the device status) changed.
pub const INT_CONFIG_CHANGE: u32 = 1 << 1;

/// Virtqueues per device (both devices here have two: receive 0 and transmit 1).
pub const QUEUES: usize = 2;

/// A broken rule of the virtio spec by the front-end: the device needs a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An address range not wholly inside the shared pool.
    OutsidePool,
    /// A ring index, descriptor index or avail index out of range.
    BadIndex,
    /// A chain longer than the queue (a loop) or with a readable after a writable descriptor.
    BadChain,
    /// A descriptor flag that was not negotiated (`VIRTQ_DESC_F_INDIRECT`).
    BadDescriptor,
}

/// What a device does with its queues. The transport ([`mmio::Transport`]) owns the queues and
/// the device status; the device sees the queues only while it runs (`DRIVER_OK`).
pub trait Device {
    /// The virtio device ID (1 net, 3 console).
    fn device_id(&self) -> u32;
    /// The feature bits offered.
    fn features(&self) -> u64;
    /// Byte `offset` of the device-specific configuration space (0 past its end).
    fn config_byte(&self, offset: usize) -> u8;
    /// Back to the power-on state (the driver wrote 0 to `Status`).
    fn reset(&mut self);
    /// Serves the queues after the driver notified those in `notified` (bit n = queue n).
    /// The transport raises the used-buffer interrupt for queues whose used ring grew.
    fn serve<B: Backing>(
        &mut self,
        queues: &mut [Virtqueue; QUEUES],
        pool: &Pool<B>,
        notified: u32,
    ) -> Result<(), Fault>;
}
