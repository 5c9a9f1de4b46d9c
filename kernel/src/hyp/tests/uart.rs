//! A transparent VM's virtual PL011 through the run loop: output joins the
//! tagged console stream, input follows the focus and raises the UART's SPI,
//! Tandem's vendor service is hidden, and a full console holds bytes in the
//! UART instead of stopping anyone.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::Ordering;

use super::{Machine, enable_spi, spec};
use crate::arch::fake::{GuestView, hvc_exit, load32_exit, store_exit};
use crate::vcpu::exit::ExitSnapshot;
use crate::vm::package::VmSpec;
use crate::vm::vpl011::{self, FR_TXFF};

const UART: u64 = 0x0900_0000;
const UART_INTID: u32 = 33;
const CALL_UID: u64 = 0x8600_ff01;
const CONSOLE_WRITE: u64 = 0xC600_0002;
const PSCI_VERSION: u64 = 0x8400_0000;

/// A transparent VM on CPU 0: console = "pl011".
fn uart_vm(name: &str) -> VmSpec {
    VmSpec {
        pl011: Some(UART),
        console_intid: UART_INTID,
        ..spec(name, &[0])
    }
}

/// A guest that stores each byte of `text` to DR (32-bit stores from x2),
/// reading FR before each and again while it shows TXFF, as a polled
/// bare-metal driver does; then loops on FR. Records each FR value it read.
fn polled_writer(
    text: &'static [u8],
    frs: Rc<RefCell<Vec<u64>>>,
) -> impl FnMut(&mut GuestView<'_>) -> ExitSnapshot {
    let next = Cell::new(0usize);
    let read_fr = Cell::new(false);
    move |g| {
        let mut full = false;
        if read_fr.get() {
            let fr = g.regs.get(2);
            frs.borrow_mut().push(fr);
            full = fr & u64::from(FR_TXFF) != 0;
        }
        let i = next.get();
        if !read_fr.get() || full || i >= text.len() {
            read_fr.set(true);
            return load32_exit(UART + vpl011::FR);
        }
        read_fr.set(false);
        next.set(i + 1);
        g.regs.set(2, u64::from(text[i]));
        store_exit(UART + vpl011::DR, 4)
    }
}

/// Output through the UART joins the tagged console stream; each access is
/// one exit counted as `uart`, and no CONSOLE_WRITE is made.
#[test]
fn transparent_vm_prints_through_its_uart() {
    let mut m = Machine::new(1, &[uart_vm("bare")]);
    let frs = Rc::new(RefCell::new(Vec::new()));
    m.hws[0].script(1, polled_writer(b"hello\r\nworld\r\n", frs.clone()));
    m.run(40);
    let out = m.hws[0].console_out.clone();
    // The focused VM's stream reaches the terminal as written, CRs included.
    assert!(
        out.contains("  bare | hello\r\n  bare | world\r\n"),
        "{out:?}"
    );
    let vm = m.vm("bare");
    assert!(
        vm.stats.uart.load(Ordering::Relaxed) >= 28,
        "FR + DR per byte"
    );
    assert_eq!(vm.stats.console_writes.load(Ordering::Relaxed), 0);
    assert_eq!(vm.stats.aborts.load(Ordering::Relaxed), 0);
    assert!(frs.borrow().iter().all(|fr| fr & FR_TXFF as u64 == 0));
}

/// A transparent VM sees no Tandem: the vendor service's Call UID and calls
/// answer NOT_SUPPORTED; PSCI still answers. A paravirtual VM beside it still
/// finds Tandem.
#[test]
fn transparent_vm_sees_no_tandem() {
    let mut m = Machine::new(2, &[uart_vm("bare"), spec("pv", &[1])]);
    let replies = Rc::new(RefCell::new([Vec::new(), Vec::new()]));
    for (cpu, id) in [(0usize, 1u32), (1, 2)] {
        let seen = replies.clone();
        let step = Cell::new(0usize);
        m.hws[cpu].script(id, move |g| {
            let calls = [CALL_UID, CONSOLE_WRITE, PSCI_VERSION];
            let s = step.get();
            if (1..=calls.len()).contains(&s) {
                seen.borrow_mut()[id as usize - 1].push(g.regs.args.x[0]);
            }
            step.set(s + 1);
            g.regs.args.x[..3].copy_from_slice(&[calls[s % calls.len()], 1, u64::from(b'x')]);
            hvc_exit()
        });
    }
    m.run(12);
    let r = replies.borrow();
    assert_eq!(
        r[0][..3],
        [u64::MAX, u64::MAX, 0x1_0001],
        "bare: {:x?}",
        r[0]
    );
    assert_ne!(r[1][0], u64::MAX, "pv: the Tandem UUID");
    assert_eq!(r[1][1], 0, "pv: CONSOLE_WRITE succeeds");
    assert_eq!(m.vm("bare").stats.console_writes.load(Ordering::Relaxed), 0);
}

/// Input for the focused transparent VM waits in its UART and raises its SPI
/// (RX/RT unmasked); reading DR empties it and lowers the line.
#[test]
fn uart_input_follows_the_focus_and_raises_the_spi() {
    let mut m = Machine::new(1, &[uart_vm("bare")]);
    let vm = m.vm("bare");
    enable_spi(vm, UART_INTID);
    let got = Rc::new(RefCell::new(Vec::new()));
    let seen = got.clone();
    let step = Cell::new(0usize);
    m.hws[0].script(1, move |g| {
        let s = step.get();
        step.set(s + 1);
        match s {
            0 => {
                g.regs.set(2, u64::from(vpl011::INT_RX | vpl011::INT_RT));
                store_exit(UART + vpl011::IMSC, 4)
            }
            1 => {
                g.regs.set(2, u64::from(vpl011::LCR_H_FEN));
                store_exit(UART + vpl011::LCR_H, 4)
            }
            _ => {
                if s > 3 {
                    seen.borrow_mut().push(g.regs.get(2));
                }
                load32_exit(UART + vpl011::DR)
            }
        }
    });
    m.run(3);
    assert!(!vm.vgic.lock().irq(0, UART_INTID).unwrap().pending);
    m.hws[0].console_in.extend(b"AT\r");
    super::super::console::input(m.hv, &mut m.hws[0]);
    assert!(
        vm.vgic.lock().irq(0, UART_INTID).unwrap().pending,
        "RT raised the SPI"
    );
    m.run(5);
    assert_eq!(
        &got.borrow()[..4],
        &[u64::from(b'A'), u64::from(b'T'), u64::from(b'\r'), 0]
    );
    assert!(
        !vm.uart.as_ref().unwrap().lock().line(),
        "drained: line low"
    );
}

/// With Tandem's console ring full, the UART holds the guest's byte (TXFF:
/// its FIFOs are off, one byte fills it) and the guest polls, instead of
/// Tandem waiting; when the ring has room again the
/// console's transmit interrupt moves them on, in order.
#[test]
fn full_console_holds_bytes_in_the_uart() {
    let mut m = Machine::new(1, &[uart_vm("bare")]);
    m.hws[0].console_room = 0;
    let frs = Rc::new(RefCell::new(Vec::new()));
    let text: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz\n";
    m.hws[0].script(1, polled_writer(text, frs.clone()));
    m.run(120);
    let vm = m.vm("bare");
    assert!(frs.borrow().iter().any(|fr| fr & FR_TXFF as u64 != 0));
    assert!(vm.uart_backlog.load(Ordering::Relaxed));
    assert!(!m.hws[0].console_out.contains("0123"));
    m.hws[0].console_room = 16384;
    super::super::uart::drain_backlogs(m.hv, &mut m.hws[0]);
    assert!(!vm.uart_backlog.load(Ordering::Relaxed));
    m.run(120);
    let out = m.hws[0].console_out.clone();
    assert!(
        out.contains("  bare | 0123456789abcdefghijklmnopqrstuvwxyz\n"),
        "{out:?}"
    );
}

/// A reset gives the VM a fresh UART (its mask and waiting bytes gone).
#[test]
fn reset_gives_a_fresh_uart() {
    let mut m = Machine::new(1, &[uart_vm("bare")]);
    let vm = m.vm("bare");
    m.hws[0].script(1, |g| {
        g.regs.set(2, 0x7ff);
        store_exit(UART + vpl011::IMSC, 4)
    });
    m.run(3);
    assert_eq!(
        vm.uart
            .as_ref()
            .unwrap()
            .lock()
            .read(vpl011::IMSC, 4, &mut NoIo),
        0x7ff
    );
    vm.reset_devices();
    assert_eq!(
        vm.uart
            .as_ref()
            .unwrap()
            .lock()
            .read(vpl011::IMSC, 4, &mut NoIo),
        0
    );
}

struct NoIo;

impl vpl011::Pl011Io for NoIo {
    fn transmit(&mut self, bytes: &[u8]) -> usize {
        bytes.len()
    }
    fn rx_len(&mut self) -> usize {
        0
    }
    fn receive(&mut self) -> Option<u8> {
        None
    }
}
