//! Channels through the run loop: doorbells, and a virtio front-end's
//! register accesses forwarded to a back-end VM on another CPU.

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use pv_abi::virtio::MmioAccess;

use super::{Machine, YIELD, spec};
use crate::arch::fake::{GuestView, hvc_exit, load32_exit, store32_exit};
use crate::channel::ChannelStats;
use crate::hyp::vm::VmState;
use crate::vcpu::exit::ExitSnapshot;
use crate::vm::package::{ChannelDesc, NAME_LEN};

const WINDOW: u64 = 0x0a00_0000;
const STATUS: u64 = 0x070;
const NOTIFY: u64 = 0xC600_0010;
const POLL: u64 = 0xC600_0011;
const REPLY: u64 = 0xC600_0012;
const INTERRUPT: u64 = 0xC600_0013;
const DENIED: u64 = -4i64 as u64;
const INVALID: u64 = -3i64 as u64;

/// A virtio channel: VM 1 "front" (CPU 0) is served by VM 2 "back" (CPU 1).
fn net() -> ChannelDesc {
    let mut name = [0u8; NAME_LEN];
    name[..3].copy_from_slice(b"net");
    ChannelDesc {
        name,
        vms: [0, 1],
        virtio_device: 1,
        ipa: 0xC000_0000,
        size: 0x10_0000,
        intids: [40, 41],
        window: WINDOW,
    }
}

/// The machine for [`net`]. Time stands still while the front-end's CPU
/// idles, so the back-end always answers in time (the timeout has its own test).
fn machine() -> Machine {
    let mut m = Machine::with_channels(
        2,
        &[spec("front", &[0]), spec("back", &[1])],
        None,
        0,
        &[net()],
    );
    m.hws[0].sleeps_to_timer = false;
    m
}

fn call(g: &mut GuestView<'_>, x: [u64; 4]) -> ExitSnapshot {
    g.regs.args.x[..4].copy_from_slice(&x);
    hvc_exit()
}

/// A back-end that answers every forwarded read of offset `o` with `o | 0x100`,
/// and records what it polled.
/// What a back-end's polls returned: the queue bitmap and the access, if any.
type Polled = Rc<RefCell<alloc::vec::Vec<(u32, Option<MmioAccess>)>>>;

fn echo_back_end(m: &mut Machine, polled: Polled) {
    let mut replying = None;
    m.hws[1].script(2, move |g| {
        if let Some(a) = replying.take() {
            return call(
                g,
                [
                    REPLY,
                    0,
                    MmioAccess::to_word(&a),
                    u64::from(a.offset) | 0x100,
                ],
            );
        }
        if g.regs.args.x[0] == 0 && g.regs.args.x[1..4] != [0, 0, 0] {
            let p = pv_abi::virtio::VirtioPoll::from_regs(
                g.regs.args.x[1],
                g.regs.args.x[2],
                g.regs.args.x[3],
            );
            polled
                .borrow_mut()
                .push((p.queues, p.access.map(|(a, _)| a)));
            replying = p.access.map(|(a, _)| a);
        }
        call(g, [POLL, 0, 0, 0])
    });
}

/// A front-end read of a forwarded register stops its vCPU until the back-end
/// (another VM, on another CPU) polls and answers; the value lands in the
/// load's register and the PC moves past the load.
#[test]
fn a_forwarded_read_waits_for_the_back_end() {
    let mut m = machine();
    let polled = Rc::new(RefCell::new(alloc::vec::Vec::new()));
    echo_back_end(&mut m, polled.clone());
    let got = Rc::new(Cell::new(None));
    let seen = got.clone();
    let mut step = 0;
    m.hws[0].script(1, move |g| {
        step += 1;
        match step {
            1 => load32_exit(WINDOW + STATUS),
            2 => {
                seen.set(Some((g.regs.args.x[2], g.regs.pc)));
                call(g, [YIELD, 0, 0, 0])
            }
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    m.run(2);
    assert_eq!(got.get(), None, "the front-end waits");
    m.run(10);
    let (value, pc) = got.get().expect("the front-end ran again");
    assert_eq!(value, STATUS | 0x100);
    assert_eq!(pc, super::ENTRY + 4);
    let polled = polled.borrow();
    let a = polled
        .iter()
        .find_map(|(_, a)| *a)
        .expect("an access polled");
    assert_eq!(
        (a.vcpu, a.write, a.size, u64::from(a.offset)),
        (0, false, 4, STATUS)
    );
    let ch = &m.hv.channels[0];
    assert_eq!(ChannelStats::get(&ch.stats.forwarded), 1);
}

/// QueueNotify is posted (the front-end does not wait) and reaches the
/// back-end's poll as a queue bit; VIRTIO_INTERRUPT's bits read back from
/// InterruptStatus and clear with InterruptACK.
#[test]
fn notify_status_and_ack_are_answered_by_tandem() {
    let mut m = machine();
    let status = Rc::new(Cell::new(u64::MAX));
    let seen = status.clone();
    let mut step = 0;
    m.hws[0].script(1, move |g| {
        step += 1;
        match step {
            1 => {
                g.regs.args.x[2] = 1; // queue 1
                store32_exit(WINDOW + 0x050)
            }
            2 => call(g, [YIELD, 0, 0, 0]),
            3 => load32_exit(WINDOW + 0x060),
            4 => {
                seen.set(g.regs.args.x[2]);
                g.regs.args.x[2] = 1;
                store32_exit(WINDOW + 0x064)
            }
            5 => load32_exit(WINDOW + 0x060),
            _ => {
                if step == 6 {
                    seen.set(seen.get() << 8 | g.regs.args.x[2]);
                }
                call(g, [YIELD, 0, 0, 0])
            }
        }
    });
    let queues = Rc::new(Cell::new(0));
    let q = queues.clone();
    let mut raised = false;
    m.hws[1].script(2, move |g| {
        if g.regs.args.x[0] == 0 && g.regs.args.x[1] != 0 {
            q.set(g.regs.args.x[1]);
        }
        if q.get() != 0 && !raised {
            raised = true;
            return call(g, [INTERRUPT, 0, 3, 0]);
        }
        call(g, [POLL, 0, 0, 0])
    });
    // The front-end's notify, then the back-end's poll and interrupt, then the reads.
    m.step(0);
    m.step(0);
    for _ in 0..4 {
        m.step(1);
    }
    m.run(8);
    assert_eq!(queues.get(), 0b10);
    assert_eq!(status.get(), 3 << 8 | 2, "3 read, 1 acknowledged, 2 left");
    let ch = &m.hv.channels[0];
    assert_eq!(ChannelStats::get(&ch.stats.queue_notifies), 1);
    assert_eq!(ChannelStats::get(&ch.stats.interrupts), 1);
}

/// Doorbells reach the peer as its channel interrupt; to a stopped peer
/// they are DENIED at once, and a forwarded read of a stopped back-end
/// returns 0 without waiting.
#[test]
fn a_stopped_peer_denies_and_reads_as_zero() {
    let mut m = machine();
    let results = Rc::new(RefCell::new(alloc::vec::Vec::new()));
    let r = results.clone();
    let mut step = 0;
    m.hws[0].script(1, move |g| {
        step += 1;
        if step > 1 {
            // x0 after each call; x2 after the load.
            r.borrow_mut()
                .push(g.regs.args.x[if step == 5 { 2 } else { 0 }]);
        }
        match step {
            1 | 3 => call(g, [NOTIFY, 0, 0, 0]),
            2 => call(g, [YIELD, 0, 0, 0]),
            4 => {
                g.regs.args.x[2] = 0xdead;
                load32_exit(WINDOW + STATUS)
            }
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    m.hws[1].script(2, |g| call(g, [YIELD, 0, 0, 0]));
    // The back-end's guest makes its doorbell edge-triggered, as its device tree says.
    m.vm("back")
        .vgic
        .lock()
        .mmio_write(crate::vgic::Frame::Dist, 0xc08, 4, 2 << ((41 % 16) * 2))
        .unwrap();
    m.step(0);
    m.step(0);
    assert!(
        m.vm("back")
            .vgic
            .lock()
            .irq(0, 41)
            .is_some_and(|i| i.pending),
        "the doorbell is pending in the back-end"
    );
    let back = m.vm("back");
    m.hv.stop(back, format_args!("test"), &mut m.hws[1]);
    m.run(6);
    let results = results.borrow();
    assert_eq!(results[0], 0, "first doorbell delivered");
    assert_eq!(results[2], DENIED, "second doorbell: the peer is stopped");
    assert_eq!(results[3], 0, "the read returned 0 at once");
    assert_eq!(m.vm("back").state(), VmState::Stopped);
}

/// Only a channel's ends may ring it, and only its back-end may poll,
/// reply or interrupt; forged replies are refused.
#[test]
fn channel_calls_check_who_calls() {
    let mut m = Machine::with_channels(
        2,
        &[
            spec("front", &[0]),
            spec("back", &[1]),
            spec("stranger", &[1]),
        ],
        None,
        0,
        &[net()],
    );
    let results = Rc::new(RefCell::new(alloc::vec::Vec::new()));
    let forged = MmioAccess {
        vcpu: 0,
        seq: 1,
        write: false,
        size: 4,
        offset: 0x70,
    }
    .to_word();
    for (vm, cpu) in [(1u32, 0usize), (3, 1)] {
        let r = results.clone();
        let mut step = 0;
        let calls = [
            [POLL, 0, 0, 0],
            [REPLY, 0, forged, 1],
            [INTERRUPT, 0, 1, 0],
            [NOTIFY, 7, 0, 0],
        ];
        m.hws[cpu].script(vm, move |g| {
            if step > 0 && step <= calls.len() {
                r.borrow_mut().push((vm, g.regs.args.x[0]));
            }
            step += 1;
            match calls.get(step - 1) {
                Some(&x) => call(g, x),
                None => call(g, [YIELD, 0, 0, 0]),
            }
        });
    }
    let r = results.clone();
    let mut step = 0;
    m.hws[1].script(2, move |g| {
        step += 1;
        if step == 2 {
            r.borrow_mut().push((2, g.regs.args.x[0]));
        }
        if step > 1 {
            return call(g, [YIELD, 0, 0, 0]);
        }
        call(
            g,
            [
                REPLY,
                0,
                MmioAccess {
                    vcpu: 0,
                    seq: 1,
                    write: false,
                    size: 4,
                    offset: 0x70,
                }
                .to_word(),
                0,
            ],
        )
    });
    m.run(12);
    let results = results.borrow();
    assert_eq!(
        results.iter().find(|r| r.0 == 2).map(|r| r.1),
        Some(INVALID),
        "a reply to nothing"
    );
    for vm in [1, 3] {
        let mine: alloc::vec::Vec<u64> =
            results.iter().filter(|r| r.0 == vm).map(|r| r.1).collect();
        assert_eq!(mine, [INVALID; 4], "VM {vm}");
    }
}

/// A back-end that restarts while a front-end vCPU waits on it releases
/// the vCPU with a zero read.
#[test]
fn a_restarting_back_end_releases_waiting_front_ends() {
    let mut m = machine();
    let got = Rc::new(Cell::new(None));
    let seen = got.clone();
    let mut step = 0;
    m.hws[0].script(1, move |g| {
        step += 1;
        match step {
            1 => {
                g.regs.args.x[2] = 0xdead;
                load32_exit(WINDOW + STATUS)
            }
            2 => {
                seen.set(Some(g.regs.args.x[2]));
                call(g, [YIELD, 0, 0, 0])
            }
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    // A back-end that never answers.
    m.hws[1].script(2, |g| call(g, [YIELD, 0, 0, 0]));
    m.run(4);
    assert_eq!(got.get(), None);
    let back = m.vm("back");
    m.hv.request_reset(back, "test", &mut m.hws[1]);
    m.run(4);
    assert_eq!(got.get(), Some(0));
}

/// A back-end that never answers delays its front-end by the timeout, not
/// forever: the read completes with 0 and is counted; the back-end's late
/// reply is refused.
#[test]
fn an_unanswered_access_times_out() {
    let mut m = machine();
    m.hws[0].sleeps_to_timer = true;
    let got = Rc::new(Cell::new(None));
    let seen = got.clone();
    let mut step = 0;
    m.hws[0].script(1, move |g| {
        step += 1;
        match step {
            1 => {
                g.regs.args.x[2] = 0xdead;
                load32_exit(WINDOW + STATUS)
            }
            2 => {
                seen.set(Some((g.regs.args.x[2], g.now)));
                call(g, [YIELD, 0, 0, 0])
            }
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    // Polls once, then sits on the access until the front-end has given up.
    let front_done = got.clone();
    let late = Rc::new(Cell::new(None));
    let l = late.clone();
    let mut polled = None;
    m.hws[1].script(2, move |g| {
        if g.regs.args.x[0] == 0 && g.regs.args.x[2] != 0 && polled.is_none() {
            polled = Some(g.regs.args.x[2]);
        }
        match (polled, front_done.get()) {
            (Some(word), Some(_)) if l.get().is_none() => {
                l.set(Some(u64::MAX));
                call(g, [REPLY, 0, word, 1])
            }
            (_, _) if l.get() == Some(u64::MAX) => {
                l.set(Some(g.regs.args.x[0]));
                call(g, [YIELD, 0, 0, 0])
            }
            (None, _) => call(g, [POLL, 0, 0, 0]),
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    m.run(8);
    let (value, at) = got.get().expect("the front-end ran again");
    assert_eq!(value, 0);
    let timeout = crate::sched::ns_to_ticks(super::super::channel::ANSWER_TIMEOUT_NS, super::HZ);
    assert!(at >= timeout, "it waited the timeout: {at} < {timeout}");
    let ch = &m.hv.channels[0];
    assert_eq!(ChannelStats::get(&ch.stats.timeouts), 1);
    assert_eq!(late.get(), Some(INVALID), "the late reply is refused");
}

/// STATS answers the channel counters per calling VM: doorbells that rang
/// the peer, doorbells refused (the peer stopped), virtio accesses that went
/// to the back-end, and QueueNotify writes; the back-end's own are apart.
#[test]
fn stats_count_channel_calls_per_vm() {
    const STATS: u64 = 0xC600_0005;
    let mut m = machine();
    echo_back_end(&mut m, Rc::new(RefCell::new(alloc::vec::Vec::new())));
    let seen = Rc::new(RefCell::new(alloc::vec::Vec::new()));
    let s = seen.clone();
    let stopped = Rc::new(Cell::new(false));
    let phase2 = stopped.clone();
    let mut step = 0;
    let mut asked = None;
    m.hws[0].script(1, move |g| {
        // A STATS call's x0 and x1, seen at the next step.
        if let Some(id) = asked.take() {
            s.borrow_mut()
                .push((id, g.regs.args.x[0], g.regs.args.x[1]));
        }
        let stats = |g: &mut GuestView<'_>, asked: &mut Option<u64>, id: u64| {
            *asked = Some(id);
            call(g, [STATS, id, 0, 0])
        };
        step += 1;
        match step {
            1 => call(g, [NOTIFY, 0, 0, 0]),
            2 => load32_exit(WINDOW + STATUS),
            3 | 4 => {
                g.regs.args.x[2] = step - 3; // queues 0 and 1
                store32_exit(WINDOW + 0x050)
            }
            5..=8 => stats(g, &mut asked, step + 1), // ids 6..9
            _ if phase2.get() && step < 100 => {
                step = 99;
                call(g, [NOTIFY, 0, 0, 0])
            }
            100 => stats(g, &mut asked, 7),
            101 => stats(g, &mut asked, 6),
            _ => call(g, [YIELD, 0, 0, 0]),
        }
    });
    m.run(12);
    assert_eq!(
        *seen.borrow(),
        [(6, 0, 1), (7, 0, 0), (8, 0, 1), (9, 0, 2)],
        "(id, x0, x1): 1 doorbell, none denied, 1 forwarded, 2 notifies"
    );
    let back = m.vm("back");
    m.hv.stop(back, format_args!("test"), &mut m.hws[1]);
    stopped.set(true);
    m.run(6);
    assert_eq!(
        seen.borrow()[4..],
        [(7, 0, 1), (6, 0, 1)],
        "the doorbell to the stopped peer is denied and counted so"
    );
    let b = &m.vm("back").stats;
    let n = crate::channel::ChannelStats::get;
    assert_eq!(
        [
            &b.doorbells,
            &b.doorbells_denied,
            &b.virtio_forwarded,
            &b.virtio_notifies
        ]
        .map(n),
        [0; 4],
        "the back-end made none of these"
    );
}
