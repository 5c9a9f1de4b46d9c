//! The virtual PL011 of a transparent VM, wired to the shared console: guest
//! accesses to its window (stage-2 faults), input from the console focus, and
//! transmission that waited for room in Tandem's console ring.
//!
//! The register model is `vm::vpl011`; here its [`Pl011Io`] is the VM's
//! share of the console (`console::vm_output`, the same tagged stream and
//! the same per-VM reserve of the ring as CONSOLE_WRITE) and its input queue,
//! and its interrupt output drives the VM's console SPI as a level.
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use super::Hypervisor;
use super::pcpu::Vcpu;
use super::vm::Vm;
use crate::arch::Hw;
use crate::vcpu::exit::{self, MmioAccess};
use crate::vm::vpl011::{Pl011Io, Vpl011};

/// The console as one VM's UART sees it.
struct ConsoleIo<'a, H> {
    hv: &'a Hypervisor,
    vm: &'a Vm,
    hw: &'a mut H,
}

impl<H: Hw> Pl011Io for ConsoleIo<'_, H> {
    fn transmit(&mut self, bytes: &[u8]) -> usize {
        super::console::vm_output(self.hv, self.vm, bytes, self.hw)
    }
    fn rx_len(&mut self) -> usize {
        self.vm.console.lock().input_len()
    }
    fn receive(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        (self.vm.console.lock().read_input(&mut b) == 1).then_some(b[0])
    }
}

/// Whether `ipa` lies in `vm`'s virtual PL011 window.
pub fn claims(vm: &Vm, ipa: u64) -> bool {
    vm.desc
        .pl011()
        .is_some_and(|base| ipa.wrapping_sub(base) < crate::vm::vpl011::WINDOW)
}

/// Runs `f` on `vm`'s UART with the console as its I/O, then passes a change
/// of its interrupt output to the vGIC and notes whether bytes still wait.
fn with_uart<H: Hw, R>(
    hv: &Hypervisor,
    vm: &Vm,
    hw: &mut H,
    f: impl FnOnce(&mut Vpl011, &mut ConsoleIo<'_, H>) -> R,
) -> Option<R> {
    let uart = vm.uart.as_ref()?;
    let mut u = uart.lock();
    let mut io = ConsoleIo { hv, vm, hw };
    let r = f(&mut u, &mut io);
    let backlog = u.tx_pending() > 0;
    vm.uart_backlog.store(backlog, Ordering::Relaxed);
    if backlog {
        hv.uart_backlog.store(true, Ordering::Release);
    }
    // Under the UART's lock, so that two vCPUs' changes reach the vGIC in order.
    if let Some(high) = u.line_change() {
        let kick = vm.vgic.lock().set_level(vm.desc.console_intid, None, high);
        if high {
            vm.stats.virqs.fetch_add(1, Ordering::Relaxed);
        }
        hv.notify(vm, kick, io.hw);
    }
    Some(r)
}

/// Emulates access `a` of vCPU `v` to `vm`'s UART window, and moves the PC on.
///
/// Out of line: inlined into the exit handler, it would cost every other exit
/// registers saved and restored.
#[inline(never)]
pub fn access(hv: &Hypervisor, vm: &Vm, v: &mut Vcpu, hw: &mut impl Hw, a: &MmioAccess) {
    vm.stats.uart.fetch_add(1, Ordering::Relaxed);
    let offset = a.ipa.wrapping_sub(vm.desc.pl011().unwrap_or(0));
    if a.write {
        let value = exit::store_value(v.regs.get(a.reg), a);
        with_uart(hv, vm, hw, |u, io| u.write(offset, a.size, value, io));
    } else if let Some(raw) = with_uart(hv, vm, hw, |u, io| u.read(offset, a.size, io)) {
        v.regs.set(a.reg, exit::load_value(raw, a));
    }
    v.regs.skip(a.len);
}

/// Console input was queued for `vm`: its UART raises RX or RT.
pub fn received(hv: &Hypervisor, vm: &Vm, hw: &mut impl Hw) {
    with_uart(hv, vm, hw, |u, io| u.received(io));
}

/// Tandem's console ring has room again: UARTs whose bytes waited for it
/// move them on (and raise TX). Costs the UART interrupt one flag when no
/// UART waits.
#[inline(always)]
pub fn drain_backlogs(hv: &Hypervisor, hw: &mut impl Hw) {
    if hv.uart_backlog.load(Ordering::Acquire) {
        drain_each(hv, hw);
    }
}

#[cold]
#[inline(never)]
fn drain_each(hv: &Hypervisor, hw: &mut impl Hw) {
    // Cleared first: a UART that still waits afterwards sets it again.
    hv.uart_backlog.store(false, Ordering::Release);
    for vm in &hv.vms {
        if vm.uart_backlog.load(Ordering::Relaxed) && vm.is_running() {
            with_uart(hv, vm, hw, |u, io| u.drain(io));
        }
    }
}

/// A fresh UART for a VM that restarts (its SPI comes back low with the fresh vGIC).
pub fn reset(vm: &Vm) {
    if let Some(uart) = vm.uart.as_ref() {
        *uart.lock() = Vpl011::new();
    }
    vm.uart_backlog.store(false, Ordering::Relaxed);
}
