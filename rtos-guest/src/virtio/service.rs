//! One doorbell round of a back-end: collect the forwarded register accesses and the
//! notified queues, answer and serve them, raise the front-end's interrupt.
//!
//! The channel calls (`VIRTIO_POLL`, `VIRTIO_REPLY`, `VIRTIO_INTERRUPT` on the target) come
//! in through [`Calls`], so the round is host-tested with a fake Tandem.
#![forbid(unsafe_code)]

use super::Device;
use super::mmio::Transport;
use super::pool::Backing;

/// Most accesses answered in one round: the rest wait for the next one, so a front-end that
/// never stops touching registers cannot keep the back-end from its queues.
pub const ACCESSES_PER_ROUND: usize = 64;

/// A forwarded register access of the front-end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// A store (else a load).
    pub write: bool,
    /// Bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Offset in the register window.
    pub offset: u16,
    /// The value of a store.
    pub value: u64,
}

/// What one poll returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll<T> {
    /// Queues notified since the last poll (bit n: queue n).
    pub queues: u32,
    /// One access waiting for a reply, with the token that names it in the reply.
    pub access: Option<(T, Access)>,
}

/// A channel call Tandem refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallFailed;

/// The channel calls of a back-end.
pub trait Calls {
    /// Names an access in its reply.
    type Token: Copy;
    /// `VIRTIO_POLL`.
    fn poll(&mut self) -> Result<Poll<Self::Token>, CallFailed>;
    /// `VIRTIO_REPLY`: `value` is what a load reads.
    fn reply(&mut self, token: Self::Token, value: u64) -> Result<(), CallFailed>;
    /// `VIRTIO_INTERRUPT`.
    fn interrupt(&mut self, bits: u32) -> Result<(), CallFailed>;
}

/// How a round went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Calls Tandem refused.
    pub failed_calls: u64,
    /// Accesses may still be waiting: run another round without waiting for the doorbell.
    pub more: bool,
}

/// Handles what the doorbell announced.
pub fn round<D: Device, B: Backing, C: Calls>(t: &mut Transport<D, B>, calls: &mut C) -> Round {
    let mut r = Round::default();
    let (mut notified, mut interrupt) = (0u32, 0u32);
    let mut answered = 0;
    loop {
        if answered == ACCESSES_PER_ROUND {
            r.more = true;
            break;
        }
        let Ok(poll) = calls.poll() else {
            r.failed_calls += 1;
            break;
        };
        notified |= poll.queues;
        let Some((token, a)) = poll.access else {
            break;
        };
        let read = if a.write {
            interrupt |= t.write(a.offset, a.size, a.value);
            0
        } else {
            t.read(a.offset, a.size)
        };
        if calls.reply(token, read).is_err() {
            r.failed_calls += 1;
        }
        answered += 1;
    }
    if notified != 0 {
        interrupt |= t.serve(notified);
    }
    // A refusal means the front-end is not running; it finds the state when it probes again.
    if interrupt != 0 && calls.interrupt(interrupt).is_err() {
        r.failed_calls += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::virtio::console::{Console, TX};
    use crate::virtio::mmio::fake::pool;
    use crate::virtio::mmio::{reg, status};
    use crate::virtio::queue::fake::new_pool;
    use crate::virtio::{F_ACCESS_PLATFORM, F_VERSION_1, INT_CONFIG_CHANGE, INT_USED_BUFFER};

    /// Tandem as the back-end sees it: queued polls, recorded replies and interrupts.
    #[derive(Default)]
    struct FakeTandem {
        polls: VecDeque<Result<Poll<u32>, CallFailed>>,
        replies: Vec<(u32, u64)>,
        interrupts: Vec<u32>,
        refuse_interrupt: bool,
    }

    impl Calls for FakeTandem {
        type Token = u32;
        fn poll(&mut self) -> Result<Poll<u32>, CallFailed> {
            self.polls.pop_front().unwrap_or(Ok(Poll {
                queues: 0,
                access: None,
            }))
        }
        fn reply(&mut self, token: u32, value: u64) -> Result<(), CallFailed> {
            self.replies.push((token, value));
            Ok(())
        }
        fn interrupt(&mut self, bits: u32) -> Result<(), CallFailed> {
            self.interrupts.push(bits);
            if self.refuse_interrupt {
                Err(CallFailed)
            } else {
                Ok(())
            }
        }
    }

    fn access(token: u32, write: bool, offset: u16, value: u64) -> Result<Poll<u32>, CallFailed> {
        Ok(Poll {
            queues: 0,
            access: Some((
                token,
                Access {
                    write,
                    size: 4,
                    offset,
                    value,
                },
            )),
        })
    }

    struct Fake;
    impl crate::at::Modem for Fake {
        fn stats_line(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
            w.write_str("rtos-stats:")
        }
        fn signal_quality(&self) -> (u8, u8) {
            (20, 99)
        }
        fn platform(&self) -> &'static str {
            "tandem"
        }
    }

    /// Every access is answered, reads with the register's value and writes with 0, until the
    /// poll says none is left.
    #[test]
    fn answers_every_access() {
        let mut t = crate::virtio::mmio::Transport::new(Console::new(Fake), new_pool());
        let mut tandem = FakeTandem::default();
        tandem.polls.extend([
            access(1, false, reg::MAGIC_VALUE, 0),
            access(2, true, reg::STATUS, u64::from(status::ACKNOWLEDGE)),
            access(3, false, reg::STATUS, 0),
            access(4, false, reg::DEVICE_ID, 0),
        ]);
        assert_eq!(round(&mut t, &mut tandem), Round::default());
        assert_eq!(
            tandem.replies,
            [
                (1, 0x7472_6976),
                (2, 0),
                (3, u64::from(status::ACKNOWLEDGE)),
                (4, 3)
            ]
        );
        assert!(tandem.interrupts.is_empty());
    }

    /// Notified queues are served after the accesses; the used-buffer interrupt is raised once.
    #[test]
    fn serves_notified_queues() {
        let mut t = crate::virtio::mmio::Transport::new(Console::new(Fake), new_pool());
        let [mut rx, mut tx] =
            crate::virtio::mmio::fake::probe(&mut t, F_VERSION_1 | F_ACCESS_PLATFORM, 8);
        rx.add(pool(&t), &[], 64, true);
        tx.add(pool(&t), b"AT\r", 3, false);
        let mut tandem = FakeTandem::default();
        tandem.polls.push_back(Ok(Poll {
            queues: 1 << TX,
            access: None,
        }));
        assert_eq!(round(&mut t, &mut tandem), Round::default());
        assert_eq!(tandem.interrupts, [INT_USED_BUFFER]);
        assert_eq!(rx.used(pool(&t)), [(0, 4)]);
    }

    /// A device error found by an access raises the config-change interrupt; a refused
    /// interrupt or poll is counted, not retried.
    #[test]
    fn failures_are_counted() {
        let mut t = crate::virtio::mmio::Transport::new(Console::new(Fake), new_pool());
        let mut tandem = FakeTandem {
            refuse_interrupt: true,
            ..FakeTandem::default()
        };
        // QueueReady on an unconfigured queue: rings at 0, outside the pool.
        tandem.polls.extend([
            access(1, true, reg::QUEUE_NUM, 8),
            access(2, true, reg::QUEUE_READY, 1),
            Err(CallFailed),
        ]);
        let r = round(&mut t, &mut tandem);
        assert_eq!(r.failed_calls, 2);
        assert_eq!(tandem.interrupts, [INT_CONFIG_CHANGE]);
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    }

    /// Linux's path end to end: the device probed through forwarded accesses only, then an
    /// ICMP echo request transmitted and its reply received, with interrupts.
    #[test]
    fn ping_through_forwarded_accesses() {
        use crate::inet::Checksum;
        use crate::virtio::net::{HDR_LEN, Net, TX};
        use crate::virtio::queue::fake::setup;

        const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x77, 0x00, 0x01];
        let mut t = crate::virtio::mmio::Transport::new(Net::new(MAC, [10, 0, 0, 1]), new_pool());
        let mut tandem = FakeTandem::default();
        let mut token = 0;
        let mut access = |tandem: &mut FakeTandem, write: bool, offset: u16, value: u64| {
            token += 1;
            tandem.polls.push_back(access(token, write, offset, value));
        };
        let features = F_VERSION_1 | F_ACCESS_PLATFORM | crate::virtio::net::F_MAC;
        let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        access(&mut tandem, true, reg::STATUS, 0);
        access(&mut tandem, true, reg::DRIVER_FEATURES_SEL, 1);
        access(&mut tandem, true, reg::DRIVER_FEATURES, features >> 32);
        access(&mut tandem, true, reg::DRIVER_FEATURES_SEL, 0);
        access(
            &mut tandem,
            true,
            reg::DRIVER_FEATURES,
            features & 0xFFFF_FFFF,
        );
        access(&mut tandem, true, reg::STATUS, u64::from(ok));
        let drivers = [0u64, 1].map(|q| {
            let d = setup(&new_pool(), q, 8);
            access(&mut tandem, true, reg::QUEUE_SEL, q);
            access(&mut tandem, true, reg::QUEUE_NUM, 8);
            access(
                &mut tandem,
                true,
                reg::QUEUE_DESC_LOW,
                d.q.desc & 0xFFFF_FFFF,
            );
            access(&mut tandem, true, reg::QUEUE_DESC_LOW + 4, d.q.desc >> 32);
            access(
                &mut tandem,
                true,
                reg::QUEUE_DRIVER_LOW,
                d.q.driver & 0xFFFF_FFFF,
            );
            access(
                &mut tandem,
                true,
                reg::QUEUE_DRIVER_LOW + 4,
                d.q.driver >> 32,
            );
            access(
                &mut tandem,
                true,
                reg::QUEUE_DEVICE_LOW,
                d.q.device & 0xFFFF_FFFF,
            );
            access(
                &mut tandem,
                true,
                reg::QUEUE_DEVICE_LOW + 4,
                d.q.device >> 32,
            );
            access(&mut tandem, true, reg::QUEUE_READY, 1);
            d
        });
        access(
            &mut tandem,
            true,
            reg::STATUS,
            u64::from(ok | status::DRIVER_OK),
        );
        access(&mut tandem, false, reg::STATUS, 0);
        assert_eq!(round(&mut t, &mut tandem), Round::default());
        let last = tandem.replies.last().copied();
        assert_eq!(last, Some((token, u64::from(ok | status::DRIVER_OK))));

        let [mut rx, mut tx] = drivers;
        let buf = rx.add(pool(&t), &[], (HDR_LEN + 1514) as u32, true);
        let mut icmp = vec![8, 0, 0, 0, 0, 1, 0, 1, b'h', b'i'];
        let sum = Checksum::default().add(&icmp).finish();
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        let sum = Checksum::default().add(&ip).finish();
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![0u8; HDR_LEN];
        frame.extend(MAC);
        frame.extend([2, 0, 0, 0, 0, 2, 0x08, 0x00]);
        frame.extend(ip);
        frame.extend(icmp);
        tx.add(pool(&t), &frame, frame.len() as u32, false);
        tandem.polls.push_back(Ok(Poll {
            queues: 1 << TX,
            access: None,
        }));
        assert_eq!(round(&mut t, &mut tandem), Round::default());
        assert_eq!(tandem.interrupts, [INT_USED_BUFFER]);
        let used = rx.used(pool(&t));
        assert_eq!(used, [(0, (HDR_LEN + 14 + 30) as u32)]);
        let mut reply = vec![0u8; used[0].1 as usize];
        pool(&t).read(buf, &mut reply).unwrap();
        assert_eq!(reply[HDR_LEN + 14 + 20], 0, "echo reply");
        assert_eq!(&reply[HDR_LEN + 14 + 28..], b"hi");
        assert_eq!(t.device().counters().icmp, 1);
    }

    /// A storm of accesses is cut into rounds of at most ACCESSES_PER_ROUND.
    #[test]
    fn access_storm_is_bounded() {
        let mut t = crate::virtio::mmio::Transport::new(Console::new(Fake), new_pool());
        let mut tandem = FakeTandem::default();
        for i in 0..150 {
            tandem.polls.push_back(access(i, false, reg::VERSION, 0));
        }
        let mut rounds = 0;
        while round(&mut t, &mut tandem).more {
            rounds += 1;
        }
        assert_eq!(rounds, 150 / ACCESSES_PER_ROUND);
        assert_eq!(tandem.replies.len(), 150);
        assert!(tandem.replies.iter().all(|&(_, v)| v == 2));
    }
}
