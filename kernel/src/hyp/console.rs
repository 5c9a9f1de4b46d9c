//! The shared console: VM output tagged per VM, input routed to the focused
//! VM or to Tandem's monitor, and the monitor's commands.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use super::Hypervisor;
use super::vm::{Vm, VmState};
use crate::arch::Hw;
use crate::monitor::{self, Command, Focus, Input, LineEditor};

/// Whether VM `id` has the console focus (its output is streamed, not line-buffered).
pub fn has_focus(hv: &Hypervisor, id: u32) -> bool {
    match hv.console.lock().focus {
        Focus::Vm(i) => hv.vms.get(i).is_some_and(|vm| vm.id == id),
        Focus::Monitor => false,
    }
}

fn focus_name(hv: &Hypervisor, f: Focus) -> &str {
    match f {
        Focus::Vm(i) => hv.vms.get(i).map_or("?", |vm| vm.name()),
        Focus::Monitor => "the Tandem monitor",
    }
}

/// Says where console input goes (at boot).
pub fn announce(hv: &Hypervisor) {
    let focus = hv.console.lock().focus;
    log::info!(
        "console input goes to {}; Ctrl-] switches between VMs and the Tandem monitor",
        focus_name(hv, focus)
    );
}

/// Takes guest console output: streamed if `vm` has the console focus, else
/// by whole lines. It only ever copies into Tandem's transmit ring (never
/// waits for the UART); when the ring is nearly full it accepts fewer bytes
/// and the guest retries the rest. Each VM has a guaranteed share of the
/// ring ([`TxRing`](crate::vm::txring::TxRing)), so one VM's flood of output
/// never leaves another VM's console writes without room.
pub fn vm_output(hv: &Hypervisor, vm: &Vm, bytes: &[u8], hw: &mut impl Hw) -> usize {
    let tag = vm.tag(hv.color);
    let focused = has_focus(hv, vm.id);
    hw.with_terminal(vm.id as usize, hv.vms.len(), |term, out, room| {
        // Room for the bytes, CR before each newline, and the line's tag.
        let take = bytes.len().min(room.saturating_sub(TAG_MAX) / 2);
        let bytes = &bytes[..take];
        if focused {
            term.stream(vm.id, tag, bytes, &mut |b| out(b));
            take
        } else {
            vm.console
                .lock()
                .write(bytes, |line| term.line(tag, line, &mut |b| out(b)))
        }
    })
}

/// The line tag of VM `id` named `name`, e.g. ` linux | `, coloured per VM
/// on a terminal; `buf` holds it, the length returns.
pub fn make_tag(id: u32, name: &[u8], color: bool, buf: &mut [u8; TAG_MAX]) -> usize {
    let on: &[u8] = [b"\x1b[36m", b"\x1b[33m", b"\x1b[35m", b"\x1b[32m"][(id as usize - 1) % 4];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    if color {
        put(on);
    }
    for _ in name.len()..6 {
        put(b" ");
    }
    put(name);
    put(b" |");
    if color {
        put(b"\x1b[0m");
    }
    put(b" ");
    n
}

/// Longest line tag.
pub const TAG_MAX: usize = 40;

/// Routes UART input: to the focused VM, to the monitor, or switches focus.
pub fn input(hv: &Hypervisor, hw: &mut impl Hw) {
    let mut to_vm = [0u8; 64];
    let mut to_vm_len = 0;
    let mut sw = hv.console.lock();
    let mut target = sw.focus;
    for _ in 0..256 {
        let Some(b) = hw.read_byte() else { break };
        let input = match sw.focus {
            Focus::Vm(_) => monitor::vm_input(b),
            Focus::Monitor => sw.editor.get_or_insert_with(LineEditor::default).feed(b),
        };
        match input {
            Input::Switch => {
                deliver(hv, target, &to_vm[..to_vm_len], hw);
                to_vm_len = 0;
                sw.focus = sw.focus.next(hv.vms.len());
                target = sw.focus;
                hw.print(format_args!(
                    "\n[tandem] console input: {} (Ctrl-] switches)\n",
                    focus_name(hv, sw.focus)
                ));
                if sw.focus == Focus::Monitor {
                    hw.print(format_args!("tandem> "));
                }
            }
            Input::ToVm(b) => {
                if to_vm_len == to_vm.len() {
                    deliver(hv, target, &to_vm, hw);
                    to_vm_len = 0;
                }
                to_vm[to_vm_len] = b;
                to_vm_len += 1;
            }
            Input::Echo(b) => hw.print(format_args!("{}", b as char)),
            Input::Erase => hw.print(format_args!("\x08 \x08")),
            Input::Line => {
                hw.print(format_args!("\n"));
                let mut line = [0u8; monitor::LINE_MAX];
                let text = sw.editor.as_ref().map_or("", |e| e.line());
                let n = text.len();
                line[..n].copy_from_slice(text.as_bytes());
                drop(sw);
                run_command(hv, core::str::from_utf8(&line[..n]).unwrap_or(""), hw);
                hw.print(format_args!("tandem> "));
                sw = hv.console.lock();
            }
            Input::None => {}
        }
    }
    drop(sw);
    deliver(hv, target, &to_vm[..to_vm_len], hw);
}

fn deliver(hv: &Hypervisor, target: Focus, bytes: &[u8], hw: &mut impl Hw) {
    let Focus::Vm(i) = target else { return };
    let Some(vm) = hv.vms.get(i) else { return };
    if bytes.is_empty() || !vm.is_running() {
        return;
    }
    let accepted = vm.console.lock().push_input(bytes);
    if accepted == 0 {
        return;
    }
    if vm.transparent() {
        super::uart::received(hv, vm, hw);
    } else if vm.desc.console_intid != 0 {
        hv.inject(vm, vm.desc.console_intid, None, hw);
    }
}

/// Runs one monitor command line.
pub fn run_command(hv: &Hypervisor, line: &str, hw: &mut impl Hw) {
    let cmd = match monitor::parse(line) {
        Command::Help => return hw.print(format_args!("{}\n", monitor::HELP)),
        Command::Vms => return list_vms(hv, hw),
        Command::Empty => return,
        Command::Error(e) => return hw.print(format_args!("{e}; {}\n", monitor::HELP)),
        cmd => cmd,
    };
    let name = vm_name(&cmd);
    let Some(vm) = hv.vm_by_name(name) else {
        let mut names = [""; 8];
        for (slot, vm) in names.iter_mut().zip(&hv.vms) {
            *slot = vm.name();
        }
        return hw.print(format_args!(
            "no VM named '{name}' (VMs: {})\n",
            Names(&names[..hv.vms.len().min(8)])
        ));
    };
    let result = match cmd {
        Command::Reset(_) => {
            hv.request_reset(vm, super::MONITOR_RESET, hw);
            Ok(())
        }
        Command::Stop(_) => {
            hv.stop(vm, format_args!("monitor command"), hw);
            Ok(())
        }
        Command::Start(_) => hv.start(vm, hw),
        Command::Pause(_) => hv.pause(vm, hw),
        Command::Resume(_) => hv.resume(vm, hw),
        _ => Ok(()),
    };
    if let Err(why) = result {
        hw.print(format_args!("VM '{name}' unchanged: {why}\n"));
    }
}

/// The VM a VM command names.
fn vm_name<'a>(cmd: &Command<'a>) -> &'a str {
    match *cmd {
        Command::Reset(n)
        | Command::Stop(n)
        | Command::Start(n)
        | Command::Pause(n)
        | Command::Resume(n) => n,
        _ => "",
    }
}

/// Names joined with ", ".
struct Names<'a>(&'a [&'a str]);

impl core::fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

/// `vms`: each VM's state, placement and counters, then its vCPUs.
fn list_vms(hv: &Hypervisor, hw: &mut impl Hw) {
    let now = hw.now();
    if let Some((used, total)) = hw.heap_usage() {
        hw.print(format_args!(
            "  tandem heap: {used} of {total} bytes in use\n"
        ));
    }
    let us = |ticks: u64| crate::sched::ticks_to_ns(ticks, hv.counter_hz) / 1000;
    for vm in &hv.vms {
        let s = &vm.stats;
        let n = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let state = match vm.state() {
            VmState::Running => "running",
            VmState::Resetting | VmState::Clearing => "resetting",
            VmState::Paused => "paused",
            VmState::Stopped => "stopped",
        };
        hw.print(format_args!(
            "  {} {:<12} {:<9} {} vCPU(s) {:>5} MiB  prio {}  exits={} (hvc={} irq={} wfi={} mmio={} uart={} sysreg={} aborts={}) console_writes={} virqs={} resets={} crashes={}\n",
            vm.id,
            vm.name(),
            state,
            vm.vcpus.len(),
            vm.desc.ram_size >> 20,
            vm.desc.priority,
            n(&s.exits),
            n(&s.hypercalls),
            n(&s.irq_exits),
            n(&s.wfi),
            n(&s.mmio),
            n(&s.uart),
            n(&s.sysreg),
            n(&s.aborts),
            n(&s.console_writes),
            n(&s.virqs),
            n(&s.resets),
            n(&s.crashes),
        ));
        for (i, v) in vm.vcpus.iter().enumerate() {
            let since = v.running_since.load(Ordering::Relaxed);
            let cpu = n(&v.cpu_ticks)
                + if since != 0 {
                    now.saturating_sub(since)
                } else {
                    0
                };
            let power = match v.power() {
                crate::hypercall::PowerState::On if since != 0 => "running",
                crate::hypercall::PowerState::On => "on",
                crate::hypercall::PowerState::OnPending => "starting",
                crate::hypercall::PowerState::Off => "off",
            };
            hw.print(format_args!(
                "      vcpu{i} pCPU {} {:<8} cpu {}.{:03} ms\n",
                v.pcpu,
                power,
                us(cpu) / 1000,
                us(cpu) % 1000
            ));
        }
    }
    for (id, ch) in hv.channels.iter().enumerate() {
        let s = &ch.stats;
        let n = crate::channel::ChannelStats::get;
        let [a, b] = ch.desc.vms.map(|v| hv.vms[usize::from(v)].name());
        let virtio = VirtioCounters(ch);
        hw.print(format_args!(
            "  channel {id} {:<12} {a} <-> {b}  {} KiB  doorbells {a}={} {b}={} denied={}{virtio}\n",
            ch.desc.name(),
            ch.desc.size >> 10,
            n(&s.doorbells[0]),
            n(&s.doorbells[1]),
            n(&s.denied),
        ));
    }
}

/// A virtio channel's counters for the monitor (nothing for a plain channel).
struct VirtioCounters<'a>(&'a crate::channel::Channel);

impl core::fmt::Display for VirtioCounters<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (d, s) = (&self.0.desc, &self.0.stats);
        if !d.is_virtio() {
            return Ok(());
        }
        let n = crate::channel::ChannelStats::get;
        write!(
            f,
            "  virtio device {}: forwarded={} notifies={} interrupts={} timeouts={}",
            d.virtio_device,
            n(&s.forwarded),
            n(&s.queue_notifies),
            n(&s.interrupts),
            n(&s.timeouts)
        )
    }
}
