//! Channels at run time: doorbells, the virtio back-end calls, forwarded
//! front-end accesses, and what a VM's stop or restart does to its channels.
//!
//! The state is [`crate::channel`]; this module decides who may do what and
//! moves interrupts and vCPUs.
#![forbid(unsafe_code)]

use log::debug;
use pv_abi::{Call, Status};

use super::Hypervisor;
use super::exits::Outcome;
use super::pcpu::{Awaiting, Vcpu};
use super::vm::{Vm, VmState};
use crate::arch::Hw;
use crate::channel::{Channel, ChannelStats, FrontAccess};
use crate::vcpu::exit::{self, MmioAccess};

/// How long a front-end vCPU waits for its back-end's answer before the
/// access completes without one (a read returns 0): a back-end that does
/// not serve its device delays the front-end, never hangs it.
pub const ANSWER_TIMEOUT_NS: u64 = 100_000_000;

/// The channel `id` if `vm` is one of its ends, and which end.
fn end_of<'a>(hv: &'a Hypervisor, vm: &Vm, id: u32) -> Result<(&'a Channel, usize), Status> {
    let ch = hv
        .channels
        .get(id as usize)
        .ok_or(Status::InvalidParameter)?;
    let end = ch.desc.end_of(vm.index).ok_or(Status::InvalidParameter)?;
    Ok((ch, end))
}

/// The channel `id` if `vm` is its virtio back-end.
fn back_end_of<'a>(hv: &'a Hypervisor, vm: &Vm, id: u32) -> Result<&'a Channel, Status> {
    match end_of(hv, vm, id)? {
        (ch, 1) if ch.port.is_some() => Ok(ch),
        _ => Err(Status::InvalidParameter),
    }
}

/// Serves a channel call of `vm` (arguments checked by the decoder).
pub fn call(hv: &Hypervisor, vm: &Vm, call: Call, hw: &mut impl Hw) -> Result<[u64; 3], Status> {
    match call {
        Call::ChannelNotify(id) => {
            let (ch, end) = end_of(hv, vm, id)?;
            if let Err(e) = ring(hv, ch, 1 - end, hw) {
                ChannelStats::bump(&vm.stats.doorbells_denied);
                return Err(e);
            }
            ChannelStats::bump(&ch.stats.doorbells[end]);
            ChannelStats::bump(&vm.stats.doorbells);
            Ok([0; 3])
        }
        Call::VirtioPoll(id) => {
            let ch = back_end_of(hv, vm, id)?;
            let poll = ch
                .port
                .as_ref()
                .map(|p| p.lock().poll())
                .unwrap_or_default();
            Ok(poll.to_regs())
        }
        Call::VirtioReply {
            channel,
            access,
            value,
        } => {
            let ch = back_end_of(hv, vm, channel)?;
            let port = ch.port.as_ref().ok_or(Status::InvalidParameter)?;
            let vcpu = port
                .lock()
                .reply(access, value)
                .ok_or(Status::InvalidParameter)?;
            let front = &hv.vms[usize::from(ch.desc.vms[0])];
            hv.notify(front, 1 << vcpu, hw);
            Ok([0; 3])
        }
        Call::VirtioInterrupt { channel, bits } => {
            let ch = back_end_of(hv, vm, channel)?;
            if let Some(port) = &ch.port {
                port.lock().raise(bits);
            }
            ring(hv, ch, 0, hw)?;
            ChannelStats::bump(&ch.stats.interrupts);
            Ok([0; 3])
        }
        _ => Err(Status::NotSupported),
    }
}

/// Raises `ch`'s interrupt in its end `end`; DENIED if that VM is not
/// running. A pending interrupt absorbs the ring (the vGIC keeps one
/// pending edge).
fn ring(hv: &Hypervisor, ch: &Channel, end: usize, hw: &mut impl Hw) -> Result<(), Status> {
    let peer = &hv.vms[usize::from(ch.desc.vms[end])];
    if !peer.is_running() {
        ChannelStats::bump(&ch.stats.denied);
        return Err(Status::Denied);
    }
    hv.inject(peer, ch.desc.intids[end], None, hw);
    Ok(())
}

/// A front-end access to a virtio window of `vm`, if `a` is one: Tandem's
/// registers are answered here; anything else is forwarded and the vCPU
/// waits (`Outcome::Block` with `v.awaiting` set). Out of line, so the
/// exit path of every other exit keeps its registers.
#[inline(never)]
pub fn front_access(
    hv: &Hypervisor,
    vm: &Vm,
    v: &mut Vcpu,
    hw: &mut impl Hw,
    a: &MmioAccess,
) -> Option<Outcome> {
    let (index, ch, offset) = hv
        .channels
        .iter()
        .enumerate()
        .find_map(|(i, ch)| Some((i, ch, ch.window_of(vm.index, a.ipa)?)))?;
    let port = ch.port.as_ref()?;
    vm.stats
        .mmio
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let value = if a.write {
        exit::store_value(v.regs.get(a.reg), a)
    } else {
        0
    };
    let back = &hv.vms[usize::from(ch.desc.vms[1])];
    let result = port
        .lock()
        .front_access(v.index, a.write, a.size, offset, value);
    let read = match result {
        FrontAccess::Done(read) => read,
        FrontAccess::Notify => {
            ChannelStats::bump(&ch.stats.queue_notifies);
            ChannelStats::bump(&vm.stats.virtio_notifies);
            // A stopped back-end misses the notification; the front-end goes on.
            let _ = ring(hv, ch, 1, hw);
            0
        }
        FrontAccess::Forward(seq) => {
            ChannelStats::bump(&ch.stats.forwarded);
            ChannelStats::bump(&vm.stats.virtio_forwarded);
            if back_end_gone(back) {
                // Nobody to ask: reads as zero, writes ignored.
                port.lock().cancel(v.index, seq);
                0
            } else {
                hv.inject(back, ch.desc.intids[1], None, hw);
                v.awaiting = Some(Awaiting {
                    channel: index,
                    seq,
                    access: *a,
                    deadline: hw.now()
                        + crate::sched::ns_to_ticks(ANSWER_TIMEOUT_NS, hv.counter_hz),
                });
                return Some(Outcome::Block);
            }
        }
    };
    if !a.write {
        v.regs.set(a.reg, exit::load_value(read, a));
    }
    v.regs.skip(a.len);
    Some(Outcome::Continue)
}

/// Whether `vm` cannot answer forwarded accesses any more (it stopped or
/// restarts). A paused back-end answers when it resumes.
fn back_end_gone(vm: &Vm) -> bool {
    matches!(
        vm.state(),
        VmState::Stopped | VmState::Resetting | VmState::Clearing
    )
}

/// Completes `v`'s forwarded access if its answer came, or with 0 once
/// its deadline passed (`now`): the read's value goes to its register and
/// the PC moves on. Returns whether `v` may run.
pub fn complete(hv: &Hypervisor, v: &mut Vcpu, now: u64) -> bool {
    let Some(w) = v.awaiting else { return true };
    let Some(ch) = hv.channels.get(w.channel) else {
        v.awaiting = None;
        return true;
    };
    let Some(port) = &ch.port else {
        v.awaiting = None;
        return true;
    };
    let mut port = port.lock();
    let answer = match port.take_answer(v.index, w.seq) {
        Some(value) => Some(value),
        None if port.is_outstanding(v.index, w.seq) && now >= w.deadline => {
            port.withdraw(v.index, w.seq);
            ChannelStats::bump(&ch.stats.timeouts);
            debug!(
                "channel '{}': no answer to vCPU {}'s access at {:#x} in time; it reads 0",
                ch.desc.name(),
                v.index,
                w.access.ipa
            );
            Some(0)
        }
        None => None,
    };
    match answer {
        Some(value) => {
            drop(port);
            if !w.access.write {
                v.regs.set(w.access.reg, exit::load_value(value, &w.access));
            }
            v.regs.skip(w.access.len);
            v.awaiting = None;
            true
        }
        None if port.is_outstanding(v.index, w.seq) => false,
        None => {
            // Forgotten (the front-end restarted): the vCPU's new life goes on.
            v.awaiting = None;
            true
        }
    }
}

/// `vm` stops or restarts: as a back-end it answers nothing more (waiting
/// front-end vCPUs get zeros and run on); as a front-end its pending
/// accesses and notifications are forgotten.
pub fn vm_down(hv: &Hypervisor, vm: &Vm, hw: &mut impl Hw) {
    for ch in &hv.channels {
        let Some(port) = &ch.port else { continue };
        match ch.desc.end_of(vm.index) {
            Some(1) => {
                let wake = port.lock().back_end_down();
                if wake != 0 {
                    debug!(
                        "channel '{}': back-end '{}' gone, {wake:#x} front-end vCPUs released",
                        ch.desc.name(),
                        vm.name()
                    );
                    hv.notify(&hv.vms[usize::from(ch.desc.vms[0])], wake, hw);
                }
            }
            Some(_) => port.lock().front_end_reset(),
            None => {}
        }
    }
}
