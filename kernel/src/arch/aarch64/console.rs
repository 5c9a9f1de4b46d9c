//! The hypervisor console (a PL011) and the `log` backend that writes to it.
//!
//! Output goes into a transmit ring under a short lock and the UART is fed
//! from it without waiting: when the UART's FIFO is full, its transmit
//! interrupt (on the CPU that takes the UART interrupt) moves the rest. So no
//! CPU — least of all one running a real-time vCPU — spins on a slow UART.
//! Tandem and each VM have a guaranteed share of the ring ([`TxRing`]);
//! what does not fit is dropped, Tandem's own lines included (a note says
//! how much), so no CPU waits for the UART under the lock that every exit
//! path needs. Only before the UART interrupt is wired up (boot, one CPU)
//! do writers drain the ring themselves.
//!
//! Tandem's own lines look like `[    0.012345] cpu1 INFO  message`: virtual
//! time from the generic counter, the logical CPU, the level.

use core::fmt::Write;

use super::cpu;
use crate::drivers::pl011::Pl011;
use crate::sync::Lock;
use crate::vm::console::Terminal;
use crate::vm::txring::{Owner, TANDEM, TxRing};

/// Bytes of output that can wait for the UART.
const TX_RING: usize = 16384;
/// Bytes fed to the UART at a time, by a writer or by one UART interrupt: a
/// PL011 FIFO's worth. Bounds the time a CPU spends on console output between
/// two looks at its other interrupts (QEMU's UART never fills, so without the
/// bound one interrupt would send the whole ring).
const PUMP: usize = 32;

struct Console {
    uart: Option<Pl011>,
    term: Terminal,
    ring: TxRing<TX_RING>,
    /// The UART interrupt is wired up: transmission continues from it.
    tx_irq: bool,
    /// Its transmit interrupt waits for [`resume_output`].
    paused: bool,
}

static CONSOLE: Lock<Console> = Lock::new(Console {
    uart: None,
    term: Terminal { open: None },
    ring: TxRing::new(),
    tx_irq: false,
    paused: false,
});

impl Console {
    /// Queues what of `owner`'s `bytes` fits (a newline becomes CR LF).
    fn push(&mut self, owner: Owner, bytes: &[u8]) {
        if !bytes.contains(&b'\n') {
            return self.push_raw(owner, bytes);
        }
        for (i, piece) in bytes.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.push_raw(owner, b"\r\n");
            }
            self.push_raw(owner, piece);
        }
    }

    fn push_raw(&mut self, owner: Owner, bytes: &[u8]) {
        let n = self.ring.push(owner, bytes);
        if n < bytes.len() && !self.tx_irq {
            // Boot, before the UART interrupt: nothing else would send it.
            let _ = self.ring.take_dropped(owner);
            self.drain_blocking();
            self.ring.push(owner, &bytes[n..]);
        }
    }

    /// Moves up to `limit` bytes into the UART while its FIFO has room; arranges for the rest.
    fn pump(&mut self, limit: usize) {
        let Some(uart) = self.uart.as_ref() else {
            while self.ring.pop().is_some() {}
            return;
        };
        let mut moved = 0;
        while moved < limit && !uart.tx_full() {
            let Some(b) = self.ring.peek(moved) else {
                break;
            };
            moved += 1;
            uart.write_byte_nowait(b);
        }
        self.ring.consume(moved);
        if self.ring.is_empty() {
            uart.set_tx_interrupt(false);
        } else if self.tx_irq {
            uart.set_tx_interrupt(!self.paused);
        } else {
            self.drain_blocking();
        }
    }

    fn drain_blocking(&mut self) {
        let Some(uart) = self.uart.as_ref() else {
            return;
        };
        while let Some(b) = self.ring.pop() {
            uart.write_byte(b);
        }
    }

    /// Sends everything queued and waits (bounded) until the UART has sent its last bit.
    fn flush(&mut self) {
        self.drain_blocking();
        if let Some(uart) = self.uart.as_ref() {
            // A FIFO of 32 bytes at 9600 baud empties in about 33 ms; this bound is far
            // beyond that on any CPU and only guards against a UART that never goes idle.
            for _ in 0..10_000_000 {
                if !uart.busy() {
                    break;
                }
                core::hint::spin_loop();
            }
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(TANDEM, s.as_bytes());
        Ok(())
    }
}

/// Points the console at the PL011 at `base`.
///
/// # Safety
/// `base` must be a PL011 mapped as device memory (or the MMU off) for as
/// long as Tandem runs, and no other code may drive it.
pub unsafe fn init(base: usize) {
    // SAFETY: forwarded from the caller.
    let uart = unsafe { Pl011::new(base) };
    uart.enable();
    CONSOLE.lock().uart = Some(uart);
}

/// Writes formatted text (Tandem's own), on a line of its own if a VM left one unfinished.
pub fn write_fmt(args: core::fmt::Arguments<'_>) {
    let mut c = CONSOLE.lock();
    let mut term = core::mem::take(&mut c.term);
    term.break_line(&mut |b| c.push(TANDEM, b));
    c.term = term;
    let dropped = c.ring.take_dropped(TANDEM);
    if dropped > 0 {
        let _ = write!(c, "[tandem: {dropped} bytes of its output dropped]\n");
    }
    let _ = c.write_fmt(args);
    c.pump(PUMP);
}

/// Gives `f` the terminal state, a byte sink for `owner` and `owner`'s room
/// in the ring (shared by Tandem and `vms` VMs), then starts transmission.
/// Returns what `f` returns.
pub fn with_terminal<R>(
    owner: Owner,
    vms: usize,
    f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]), usize) -> R,
) -> R {
    let mut c = CONSOLE.lock();
    let mut term = core::mem::take(&mut c.term);
    c.ring.set_writers(vms);
    let room = c.ring.room(owner);
    let r = f(&mut term, &mut |b| c.push(owner, b), room);
    c.term = term;
    c.pump(PUMP);
    r
}

/// Continues transmission (from the UART interrupt) by up to [`PUMP`] bytes.
/// If more waits, the transmit interrupt stays off until [`resume_output`]:
/// the caller paces the rest, so that output never keeps its CPU busy.
pub fn pump() -> bool {
    let mut c = CONSOLE.lock();
    c.pump(PUMP);
    c.paused = !c.ring.is_empty();
    if c.paused
        && let Some(uart) = c.uart.as_ref()
    {
        uart.set_tx_interrupt(false);
    }
    c.paused
}

/// Lets the transmit interrupt continue output that [`pump`] paused.
pub fn resume_output() {
    let mut c = CONSOLE.lock();
    c.paused = false;
    if !c.ring.is_empty()
        && c.tx_irq
        && let Some(uart) = c.uart.as_ref()
    {
        uart.set_tx_interrupt(true);
    }
}

/// Sends all queued output, waits until the UART is idle, then runs `f` with the console
/// still locked, so no CPU can start a line that `f` would cut short. For powering the
/// machine off: without it, SYSTEM_OFF cuts the ring's last lines (the UART interrupt that
/// would have sent them never comes).
///
/// Takes the lock even if a CPU died holding it, as [`write_fmt_forced`] does.
pub fn flush_then<R>(f: impl FnOnce() -> R) -> R {
    for _ in 0..1_000_000 {
        if let Some(mut c) = CONSOLE.try_lock() {
            c.flush();
            return f();
        }
        core::hint::spin_loop();
    }
    // SAFETY: the lock holder is presumed dead; a complete last line beats silence.
    unsafe { CONSOLE.force_unlock() };
    let mut c = CONSOLE.lock();
    c.flush();
    f()
}

/// Writes even if another CPU died holding the console lock (panics, faults).
pub fn write_fmt_forced(args: core::fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut c) = CONSOLE.try_lock() {
            c.drain_blocking();
            // Waits for the UART rather than drop any of it: a last report.
            let tx_irq = core::mem::replace(&mut c.tx_irq, false);
            let _ = c.write_fmt(args);
            c.drain_blocking();
            c.tx_irq = tx_irq;
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the lock holder is presumed dead; interleaved output beats silence.
    unsafe { CONSOLE.force_unlock() };
    let mut c = CONSOLE.lock();
    c.tx_irq = false;
    let _ = c.write_fmt(args);
    c.drain_blocking();
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let ns = cpu::now_ns();
        write_fmt(format_args!(
            "[{:5}.{:06}] cpu{} {:<5} {}\n",
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000,
            cpu::index(),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the console as the `log` backend.
pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if cfg!(debug_assertions) {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

/// Reads one input byte, if the UART has one.
pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().uart.as_ref().and_then(|u| u.read_byte())
}

/// Lets the UART interrupt signal input and transmit space.
pub fn enable_interrupts() {
    let mut c = CONSOLE.lock();
    if let Some(u) = c.uart.as_ref() {
        u.enable_rx_interrupt();
        c.tx_irq = true;
    }
}
