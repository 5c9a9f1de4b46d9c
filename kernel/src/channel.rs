//! Inter-VM channels: what Tandem keeps for each one.
//!
//! A channel joins two VMs with a shared region (mapped at the same IPA in
//! both stage 2s, normal memory, never executable) and a doorbell interrupt
//! in each. A virtio channel also carries a virtio-mmio device: VM a (the
//! front-end) accesses a register window that traps; Tandem answers
//! `QueueNotify`, `InterruptStatus` and `InterruptACK` itself and forwards
//! every other access to VM b (the back-end) through a [`Port`]. Tandem holds
//! no device model: the port only queues accesses and carries bits.
//!
//! Everything here is plain data, host-tested; `hyp::channel` wires it to
//! VMs, interrupts and vCPUs.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use pv_abi::virtio::{INTERRUPT_ACK, INTERRUPT_STATUS, MmioAccess, QUEUE_NOTIFY, VirtioPoll};

use crate::sync::Lock;
use crate::vm::package::{ChannelDesc, MAX_VCPUS};

/// Counters of one channel (monitor `vms`, `STATS`).
#[derive(Default)]
pub struct ChannelStats {
    /// `CHANNEL_NOTIFY` calls made by each end that reached the peer.
    pub doorbells: [AtomicU64; 2],
    /// Calls refused because the peer was not running.
    pub denied: AtomicU64,
    /// Front-end register accesses forwarded to the back-end.
    pub forwarded: AtomicU64,
    /// Front-end `QueueNotify` writes.
    pub queue_notifies: AtomicU64,
    /// `VIRTIO_INTERRUPT` calls that reached the front-end.
    pub interrupts: AtomicU64,
    /// Forwarded accesses the back-end did not answer in time.
    pub timeouts: AtomicU64,
}

impl ChannelStats {
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Counts one event.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// One channel at run time.
pub struct Channel {
    /// As the package describes it, with `vms` as indices into the
    /// hypervisor's VM list.
    pub desc: ChannelDesc,
    /// Physical address of the shared region.
    pub pa: u64,
    /// Counters.
    pub stats: ChannelStats,
    /// The forwarded device's state (virtio channels only).
    pub port: Option<Lock<Port>>,
}

impl Channel {
    /// A channel whose shared region is at physical `pa`.
    pub fn new(desc: ChannelDesc, pa: u64) -> Self {
        Self {
            port: desc.is_virtio().then(|| Lock::new(Port::new())),
            desc,
            pa,
            stats: ChannelStats::default(),
        }
    }

    /// Whether `ipa` falls in the virtio window VM `vm` (an index) sees.
    pub fn window_of(&self, vm: usize, ipa: u64) -> Option<u16> {
        let d = &self.desc;
        let off = ipa.checked_sub(d.window)?;
        (d.is_virtio() && usize::from(d.vms[0]) == vm && off < pv_abi::virtio::WINDOW_SIZE)
            .then_some(off as u16)
    }
}

/// A forwarded access's slot: one per front-end vCPU, which is stopped
/// while its access is outstanding, so a slot never holds two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Idle,
    /// Waiting for `VIRTIO_POLL`.
    Posted {
        access: MmioAccess,
        value: u64,
    },
    /// Polled; waiting for `VIRTIO_REPLY`.
    Delivered {
        access: MmioAccess,
    },
    /// Answered; waiting for the front-end vCPU to take the value.
    Answered {
        seq: u32,
        value: u64,
    },
}

/// What a front-end register access comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontAccess {
    /// Answered by Tandem: the value a read returns (0 for a write).
    Done(u64),
    /// `QueueNotify`: the back-end must be rung; the front-end goes on.
    Notify,
    /// Forwarded with sequence number `seq`: the back-end must be rung,
    /// and the vCPU waits for the answer.
    Forward(u32),
}

/// Tandem's half of a forwarded virtio-mmio device.
#[derive(Debug)]
pub struct Port {
    /// Queues notified since the back-end's last poll.
    queues: u32,
    /// `InterruptStatus`.
    status: u32,
    /// The next access's sequence number.
    next_seq: u32,
    slots: [Slot; MAX_VCPUS],
}

impl Default for Port {
    fn default() -> Self {
        Self::new()
    }
}

impl Port {
    /// A port with nothing pending.
    pub const fn new() -> Self {
        Self {
            queues: 0,
            status: 0,
            next_seq: 1,
            slots: [Slot::Idle; MAX_VCPUS],
        }
    }

    /// Front-end vCPU `vcpu` accesses `offset` of the window (`size`
    /// bytes; `value` is a write's data).
    pub fn front_access(
        &mut self,
        vcpu: usize,
        write: bool,
        size: u8,
        offset: u16,
        value: u64,
    ) -> FrontAccess {
        match (offset, write) {
            (QUEUE_NOTIFY, true) => {
                // A queue index past the bitmap is a driver bug: dropped.
                if value < 32 {
                    self.queues |= 1 << value;
                }
                return FrontAccess::Notify;
            }
            (INTERRUPT_STATUS, false) => return FrontAccess::Done(u64::from(self.status)),
            (INTERRUPT_ACK, true) => {
                self.status &= !(value as u32);
                return FrontAccess::Done(0);
            }
            _ => {}
        }
        let Some(slot) = self.slots.get_mut(vcpu) else {
            return FrontAccess::Done(0);
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let access = MmioAccess {
            vcpu: vcpu as u8,
            seq,
            write,
            size,
            offset,
        };
        *slot = Slot::Posted {
            access,
            value: if write { value } else { 0 },
        };
        FrontAccess::Forward(seq)
    }

    /// `VIRTIO_POLL`: the queues notified since the last poll, and the
    /// first posted access (now delivered).
    pub fn poll(&mut self) -> VirtioPoll {
        let queues = core::mem::take(&mut self.queues);
        let access = self.slots.iter_mut().find_map(|s| match *s {
            Slot::Posted { access, value } => {
                *s = Slot::Delivered { access };
                Some((access, value))
            }
            _ => None,
        });
        VirtioPoll { queues, access }
    }

    /// `VIRTIO_REPLY`: answers `access` with `value`; returns the vCPU to
    /// wake, or `None` if that access is not outstanding.
    pub fn reply(&mut self, access: MmioAccess, value: u64) -> Option<usize> {
        let vcpu = usize::from(access.vcpu);
        let slot = self.slots.get_mut(vcpu)?;
        match *slot {
            Slot::Delivered { access: a } if a == access => {
                *slot = Slot::Answered {
                    seq: a.seq,
                    value: if a.write { 0 } else { value },
                };
                Some(vcpu)
            }
            _ => None,
        }
    }

    /// The answer to vCPU `vcpu`'s access `seq`, if it has come; the slot
    /// is free again afterwards.
    pub fn take_answer(&mut self, vcpu: usize, seq: u32) -> Option<u64> {
        let slot = self.slots.get_mut(vcpu)?;
        match *slot {
            Slot::Answered { seq: s, value } if s == seq => {
                *slot = Slot::Idle;
                Some(value)
            }
            _ => None,
        }
    }

    /// Whether vCPU `vcpu`'s access `seq` is still outstanding (posted,
    /// delivered or answered but not taken).
    pub fn is_outstanding(&self, vcpu: usize, seq: u32) -> bool {
        match self.slots.get(vcpu) {
            Some(Slot::Posted { access, .. } | Slot::Delivered { access }) => access.seq == seq,
            Some(Slot::Answered { seq: s, .. }) => *s == seq,
            _ => false,
        }
    }

    /// Withdraws vCPU `vcpu`'s access `seq` before anyone saw it (the
    /// back-end was gone).
    pub fn cancel(&mut self, vcpu: usize, seq: u32) {
        if let Some(s @ Slot::Posted { .. }) = self.slots.get_mut(vcpu)
            && self.next_seq.wrapping_sub(1) == seq
        {
            *s = Slot::Idle;
        }
    }

    /// Gives up on vCPU `vcpu`'s access `seq` (posted or delivered): a
    /// later reply to it is refused.
    pub fn withdraw(&mut self, vcpu: usize, seq: u32) {
        if let Some(s) = self.slots.get_mut(vcpu)
            && matches!(*s, Slot::Posted { access, .. } | Slot::Delivered { access } if access.seq == seq)
        {
            *s = Slot::Idle;
        }
    }

    /// Sets `InterruptStatus` bits (`VIRTIO_INTERRUPT`).
    pub fn raise(&mut self, bits: u32) {
        self.status |= bits;
    }

    /// The back-end is gone (stopped or restarting): every outstanding
    /// access is answered (a read returns 0) and pending notifications are
    /// dropped. Returns the vCPUs to wake.
    pub fn back_end_down(&mut self) -> u32 {
        self.queues = 0;
        let mut wake = 0;
        for (i, s) in self.slots.iter_mut().enumerate() {
            let seq = match *s {
                Slot::Posted { access, .. } | Slot::Delivered { access } => access.seq,
                _ => continue,
            };
            *s = Slot::Answered { seq, value: 0 };
            wake |= 1 << i;
        }
        wake
    }

    /// The front-end restarts: nothing of its old life stays pending.
    pub fn front_end_reset(&mut self) {
        self.queues = 0;
        self.status = 0;
        self.slots = [Slot::Idle; MAX_VCPUS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: u16 = 0x070;

    #[test]
    fn tandem_answers_notify_status_and_ack() {
        let mut p = Port::new();
        assert_eq!(
            p.front_access(0, true, 4, QUEUE_NOTIFY, 1),
            FrontAccess::Notify
        );
        assert_eq!(
            p.front_access(1, true, 4, QUEUE_NOTIFY, 0),
            FrontAccess::Notify
        );
        // Out of the bitmap: dropped, still no waiting.
        assert_eq!(
            p.front_access(0, true, 4, QUEUE_NOTIFY, 99),
            FrontAccess::Notify
        );
        p.raise(3);
        assert_eq!(
            p.front_access(0, false, 4, INTERRUPT_STATUS, 0),
            FrontAccess::Done(3)
        );
        assert_eq!(
            p.front_access(0, true, 4, INTERRUPT_ACK, 1),
            FrontAccess::Done(0)
        );
        assert_eq!(
            p.front_access(0, false, 4, INTERRUPT_STATUS, 0),
            FrontAccess::Done(2)
        );
        let poll = p.poll();
        assert_eq!((poll.queues, poll.access), (0b11, None));
        assert_eq!(p.poll().queues, 0, "fetch and clear");
    }

    #[test]
    fn a_forwarded_read_goes_through_poll_and_reply() {
        let mut p = Port::new();
        let FrontAccess::Forward(seq) = p.front_access(1, false, 4, STATUS, 0) else {
            panic!("not forwarded");
        };
        assert!(p.is_outstanding(1, seq));
        assert_eq!(p.take_answer(1, seq), None, "no answer yet");
        let poll = p.poll();
        let (access, value) = poll.access.expect("an access");
        assert_eq!(
            (
                access.vcpu,
                access.seq,
                access.write,
                access.size,
                access.offset,
                value
            ),
            (1, seq, false, 4, STATUS, 0)
        );
        assert_eq!(p.poll().access, None, "each access is polled once");
        assert_eq!(p.reply(access, 0xf), Some(1));
        assert_eq!(p.reply(access, 0xf), None, "answered once");
        assert_eq!(p.take_answer(1, seq), Some(0xf));
        assert!(!p.is_outstanding(1, seq));
        assert_eq!(p.take_answer(1, seq), None);
    }

    #[test]
    fn writes_carry_their_value_and_answer_zero() {
        let mut p = Port::new();
        let FrontAccess::Forward(seq) = p.front_access(0, true, 4, STATUS, 0xf) else {
            panic!("not forwarded");
        };
        let (access, value) = p.poll().access.unwrap();
        assert!(access.write);
        assert_eq!(value, 0xf);
        p.reply(access, 0xdead).unwrap();
        assert_eq!(p.take_answer(0, seq), Some(0));
    }

    #[test]
    fn forged_or_stale_replies_are_refused() {
        let mut p = Port::new();
        let FrontAccess::Forward(seq) = p.front_access(0, false, 4, STATUS, 0) else {
            panic!("not forwarded");
        };
        let real = MmioAccess {
            vcpu: 0,
            seq,
            write: false,
            size: 4,
            offset: STATUS,
        };
        assert_eq!(p.reply(real, 1), None, "not polled yet");
        p.poll();
        for forged in [
            MmioAccess {
                seq: seq + 1,
                ..real
            },
            MmioAccess { vcpu: 1, ..real },
            MmioAccess { vcpu: 200, ..real },
            MmioAccess { offset: 0, ..real },
            MmioAccess {
                write: true,
                ..real
            },
        ] {
            assert_eq!(p.reply(forged, 1), None, "{forged:?}");
        }
        assert_eq!(p.reply(real, 1), Some(0));
    }

    #[test]
    fn accesses_of_several_vcpus_are_polled_in_turn() {
        let mut p = Port::new();
        let seqs: [u32; 3] =
            core::array::from_fn(|v| match p.front_access(v, false, 4, STATUS, 0) {
                FrontAccess::Forward(s) => s,
                other => panic!("{other:?}"),
            });
        let mut seen = [false; 3];
        while let Some((a, _)) = p.poll().access {
            assert_eq!(seqs[usize::from(a.vcpu)], a.seq);
            seen[usize::from(a.vcpu)] = true;
            p.reply(a, u64::from(a.vcpu)).unwrap();
        }
        assert_eq!(seen, [true; 3]);
        for (v, &s) in seqs.iter().enumerate() {
            assert_eq!(p.take_answer(v, s), Some(v as u64));
        }
    }

    #[test]
    fn a_lost_back_end_answers_zero_and_a_reset_front_end_forgets() {
        let mut p = Port::new();
        let FrontAccess::Forward(a) = p.front_access(0, false, 4, STATUS, 0) else {
            panic!()
        };
        let FrontAccess::Forward(b) = p.front_access(2, false, 4, STATUS, 0) else {
            panic!()
        };
        p.poll();
        p.front_access(0, true, 4, QUEUE_NOTIFY, 0);
        assert_eq!(p.back_end_down(), 0b101);
        assert_eq!(p.take_answer(0, a), Some(0));
        assert_eq!(p.take_answer(2, b), Some(0));
        assert_eq!(p.poll(), VirtioPoll::default());

        let FrontAccess::Forward(c) = p.front_access(1, false, 4, STATUS, 0) else {
            panic!()
        };
        p.raise(1);
        let (access, _) = p.poll().access.unwrap();
        p.front_end_reset();
        assert!(!p.is_outstanding(1, c));
        assert_eq!(
            p.reply(access, 5),
            None,
            "a reply to the old life is refused"
        );
        assert_eq!(
            p.front_access(0, false, 4, INTERRUPT_STATUS, 0),
            FrontAccess::Done(0)
        );
    }

    #[test]
    fn windows_belong_to_the_front_end() {
        let mut desc = ChannelDesc {
            vms: [1, 0],
            virtio_device: 1,
            ipa: 0xC000_0000,
            size: 0x1000,
            intids: [95, 95],
            window: 0x0a00_0200,
            ..ChannelDesc::default()
        };
        let c = Channel::new(desc, 0x8000_0000);
        assert!(c.port.is_some());
        assert_eq!(c.window_of(1, 0x0a00_0200), Some(0));
        assert_eq!(c.window_of(1, 0x0a00_03ff), Some(0x1ff));
        assert_eq!(c.window_of(1, 0x0a00_0400), None);
        assert_eq!(c.window_of(1, 0x0a00_01ff), None);
        assert_eq!(c.window_of(0, 0x0a00_0200), None, "not the back-end's");
        desc.virtio_device = 0;
        let plain = Channel::new(desc, 0);
        assert!(plain.port.is_none());
        assert_eq!(plain.window_of(1, 0x0a00_0200), None);
    }
}
