//! Inter-VM channels and forwarded virtio-mmio devices (ABI 1.2).
//!
//! A *channel* joins two VMs: a region of shared memory mapped at the same IPA in both, and an
//! interrupt in each that the other side raises with `CHANNEL_NOTIFY`. Channels are declared in
//! `vms.toml` and described in both guests' device trees (`compatible = "tandem,channel"`).
//!
//! A *virtio channel* also carries a virtio-mmio device: the first VM (the front-end) sees a
//! standard `virtio,mmio` register window whose DMA is restricted to the shared region; the
//! second VM (the back-end, `compatible = "tandem,virtio-backend"`) serves it. Tandem holds no
//! device model. It answers three registers itself and forwards every other access:
//!
//! | Register | Offset | Tandem |
//! |---|---|---|
//! | `QueueNotify` | `0x050` | write: sets bit `value` (< 32) of the queue bitmap, rings the back-end, resumes the front-end at once (as KVM's ioeventfd) |
//! | `InterruptStatus` | `0x060` | read: the bits the back-end set with `VIRTIO_INTERRUPT` |
//! | `InterruptACK` | `0x064` | write: clears those bits |
//! | anything else | `0x000..0x200` | forwarded: the front-end vCPU stops on the access until the back-end answers with `VIRTIO_REPLY` |
//!
//! The back-end learns of work through its channel interrupt and collects it with
//! `VIRTIO_POLL`: the queues notified since the last poll, and one forwarded access at a time
//! as an [`MmioAccess`] word. A forwarded access is returned by exactly one poll and stays
//! outstanding until replied to; at most one is outstanding per front-end vCPU. If the
//! back-end VM is not running, reads of forwarded registers return 0 and writes are ignored.
//!
//! ```
//! use pv_abi::virtio::MmioAccess;
//!
//! let a = MmioAccess { vcpu: 1, seq: 7, write: false, size: 4, offset: 0x070 };
//! assert_eq!(MmioAccess::from_word(a.to_word()), Some(a));
//! assert_eq!(MmioAccess::from_word(0), None); // "no access waiting"
//! ```

/// Size of a forwarded virtio-mmio register window.
///
/// ```
/// assert_eq!(pv_abi::virtio::WINDOW_SIZE, 0x200); // virtio-mmio's registers and config space
/// ```
pub const WINDOW_SIZE: u64 = 0x200;
/// `QueueNotify`: answered by Tandem (posted).
///
/// ```
/// assert_eq!(pv_abi::virtio::QUEUE_NOTIFY, 0x050);
/// ```
pub const QUEUE_NOTIFY: u16 = 0x050;
/// `InterruptStatus`: answered by Tandem.
///
/// ```
/// assert_eq!(pv_abi::virtio::INTERRUPT_STATUS, 0x060);
/// ```
pub const INTERRUPT_STATUS: u16 = 0x060;
/// `InterruptACK`: answered by Tandem.
///
/// ```
/// assert_eq!(pv_abi::virtio::INTERRUPT_ACK, 0x064);
/// ```
pub const INTERRUPT_ACK: u16 = 0x064;
/// `InterruptStatus` bit: the device used a buffer.
///
/// ```
/// assert_eq!(pv_abi::virtio::INTERRUPT_USED_BUFFER, 1);
/// ```
pub const INTERRUPT_USED_BUFFER: u32 = 1 << 0;
/// `InterruptStatus` bit: the configuration changed.
///
/// ```
/// assert_eq!(pv_abi::virtio::INTERRUPT_CONFIG_CHANGE, 2);
/// ```
pub const INTERRUPT_CONFIG_CHANGE: u32 = 1 << 1;
/// Every bit `VIRTIO_INTERRUPT` accepts.
///
/// ```
/// assert_eq!(pv_abi::virtio::INTERRUPT_BITS, 3);
/// ```
pub const INTERRUPT_BITS: u32 = INTERRUPT_USED_BUFFER | INTERRUPT_CONFIG_CHANGE;
/// Device-tree compatible of a plain channel's node.
///
/// ```
/// assert_eq!(pv_abi::virtio::DT_CHANNEL, "tandem,channel");
/// ```
pub const DT_CHANNEL: &str = "tandem,channel";
/// Device-tree compatible of a virtio back-end's channel node.
///
/// ```
/// assert_eq!(pv_abi::virtio::DT_VIRTIO_BACKEND, "tandem,virtio-backend");
/// ```
pub const DT_VIRTIO_BACKEND: &str = "tandem,virtio-backend";

/// One forwarded register access, as `VIRTIO_POLL` returns it in `x2` and `VIRTIO_REPLY`
/// takes it back.
///
/// Word layout (bit 63 set marks a valid access, so 0 means none):
///
/// | Bits | Field |
/// |---|---|
/// | 63 | 1 |
/// | 62 | `write` |
/// | 59..56 | `size` in bytes (1, 2, 4 or 8) |
/// | 55..48 | `vcpu`: the front-end vCPU stopped on the access |
/// | 47..16 | `seq`: Tandem's sequence number of the access |
/// | 15..0 | `offset` in the window |
///
/// ```
/// use pv_abi::virtio::MmioAccess;
///
/// let notify_read = MmioAccess { vcpu: 0, seq: 1, write: false, size: 4, offset: 0x070 };
/// assert_eq!(notify_read.to_word(), 0x8400_0000_0001_0070);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioAccess {
    /// The front-end vCPU that made the access.
    pub vcpu: u8,
    /// Sequence number: tells this access from an earlier one of the same vCPU.
    pub seq: u32,
    /// A store (else a load).
    pub write: bool,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Offset in the register window.
    pub offset: u16,
}

const VALID: u64 = 1 << 63;
const WRITE: u64 = 1 << 62;

impl MmioAccess {
    /// The register form.
    ///
    /// ```
    /// use pv_abi::virtio::MmioAccess;
    ///
    /// let w = MmioAccess { vcpu: 1, seq: 2, write: true, size: 1, offset: 0x100 }.to_word();
    /// assert_eq!(w >> 62, 0b11); // valid, write
    /// ```
    pub const fn to_word(&self) -> u64 {
        VALID
            | if self.write { WRITE } else { 0 }
            | (self.size as u64 & 0xf) << 56
            | (self.vcpu as u64) << 48
            | (self.seq as u64) << 16
            | self.offset as u64
    }

    /// Parses a register word; `None` for 0 (no access) or a malformed word.
    ///
    /// ```
    /// use pv_abi::virtio::MmioAccess;
    ///
    /// assert_eq!(MmioAccess::from_word(0), None);
    /// assert_eq!(MmioAccess::from_word(1 << 63 | 3 << 56), None); // size 3
    /// ```
    pub const fn from_word(word: u64) -> Option<Self> {
        if word & VALID == 0 || word & (3 << 60) != 0 {
            return None;
        }
        let size = ((word >> 56) & 0xf) as u8;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        Some(Self {
            vcpu: (word >> 48) as u8,
            seq: (word >> 16) as u32,
            write: word & WRITE != 0,
            size,
            offset: word as u16,
        })
    }
}

/// What `VIRTIO_POLL` returned.
///
/// ```
/// use pv_abi::virtio::VirtioPoll;
///
/// let idle = VirtioPoll::from_regs(0, 0, 0);
/// assert_eq!((idle.queues, idle.access), (0, None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VirtioPoll {
    /// Queues notified since the last poll (bit n: queue n).
    pub queues: u32,
    /// A forwarded access waiting for `VIRTIO_REPLY`, with the value of a write.
    pub access: Option<(MmioAccess, u64)>,
}

impl VirtioPoll {
    /// Parses the reply registers `x1..x3`.
    ///
    /// ```
    /// use pv_abi::virtio::VirtioPoll;
    ///
    /// assert_eq!(VirtioPoll::from_regs(0b11, 0, 0).queues, 0b11);
    /// ```
    pub const fn from_regs(x1: u64, x2: u64, x3: u64) -> Self {
        Self {
            queues: x1 as u32,
            access: match MmioAccess::from_word(x2) {
                Some(a) => Some((a, x3)),
                None => None,
            },
        }
    }

    /// The reply registers `x1..x3`.
    ///
    /// ```
    /// use pv_abi::virtio::VirtioPoll;
    ///
    /// assert_eq!(VirtioPoll { queues: 1, access: None }.to_regs(), [1, 0, 0]);
    /// ```
    pub const fn to_regs(&self) -> [u64; 3] {
        match self.access {
            Some((a, value)) => [self.queues as u64, a.to_word(), value],
            None => [self.queues as u64, 0, 0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_words_round_trip() {
        for write in [false, true] {
            for size in [1, 2, 4, 8] {
                for (vcpu, seq, offset) in [(0, 0, 0), (7, u32::MAX, 0x1ff), (255, 1, 0xffff)] {
                    let a = MmioAccess {
                        vcpu,
                        seq,
                        write,
                        size,
                        offset,
                    };
                    assert_eq!(MmioAccess::from_word(a.to_word()), Some(a));
                }
            }
        }
    }

    #[test]
    fn malformed_words_are_refused() {
        assert_eq!(MmioAccess::from_word(0), None);
        assert_eq!(MmioAccess::from_word(0x7fff_ffff_ffff_ffff), None);
        // Sizes 0, 3, 5..7, 9..15.
        for size in [0u64, 3, 5, 6, 7, 9, 15] {
            assert_eq!(MmioAccess::from_word(VALID | size << 56), None, "{size}");
        }
        // Reserved bits 61..60.
        assert_eq!(MmioAccess::from_word(VALID | 4 << 56 | 1 << 60), None);
    }

    #[test]
    fn poll_replies_round_trip() {
        let p = VirtioPoll {
            queues: 0b101,
            access: Some((
                MmioAccess {
                    vcpu: 1,
                    seq: 9,
                    write: true,
                    size: 4,
                    offset: 0x70,
                },
                0xf,
            )),
        };
        let [x1, x2, x3] = p.to_regs();
        assert_eq!(VirtioPoll::from_regs(x1, x2, x3), p);
        let idle = VirtioPoll::default();
        assert_eq!(idle.to_regs(), [0, 0, 0]);
    }
}
