//! The hypervisor console (a PL011) and the `log` backend that writes to it.
//!
//! Lines look like `[    0.012345] cpu1 INFO  message`: virtual time from the
//! generic counter, the logical CPU, the level.

use core::fmt::Write;

use spin::Mutex;

use super::cpu;
use crate::drivers::pl011::Pl011;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

/// Points the console at the PL011 at `base`.
///
/// # Safety
/// `base` must be a PL011 mapped as device memory (or the MMU off) for as
/// long as Tandem runs, and no other code may drive it.
pub unsafe fn init(base: usize) {
    // SAFETY: forwarded from the caller.
    let uart = unsafe { Pl011::new(base) };
    uart.enable();
    *CONSOLE.lock() = Some(uart);
}

/// Writes formatted text to the console, whole, under the console lock.
pub fn write_fmt(args: core::fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Writes even if another CPU died holding the console lock (panics, faults).
pub fn write_fmt_forced(args: core::fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(uart) = guard.as_mut() {
                let _ = uart.write_fmt(args);
            }
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the lock holder is presumed dead; interleaved output beats silence.
    unsafe { CONSOLE.force_unlock() };
    write_fmt(args);
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
    CONSOLE.lock().as_ref().and_then(|u| u.read_byte())
}

/// Lets the UART raise its interrupt when input arrives.
pub fn enable_rx_interrupt() {
    if let Some(u) = CONSOLE.lock().as_ref() {
        u.enable_rx_interrupt();
    }
}
