//! The console: the PL011 natively, the pv-abi console calls on Tandem; and `println!`.
//!
//! The backend is chosen once at boot from [`pv_abi::guest::is_tandem`]. Output is serialised
//! by a spin lock shared by the CPUs (with IRQs left enabled, so printing never delays the
//! timer interrupt) and, for CPU 0's tasks once the scheduler runs, by an RTOS mutex first:
//! a task printing can then be preempted by a more urgent one that also prints without
//! deadlocking on the spin lock (the mutex's priority inheritance finishes the line first).
//! A bare LF is sent as CR LF.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::cpu;
use super::kernel;
use crate::board::PL011_BASE;
use crate::fmt::LineBuf;
use crate::pl011::Pl011;

/// Where console bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The PL011 at [`PL011_BASE`] (native).
    Pl011,
    /// Tandem's `CONSOLE_WRITE`/`CONSOLE_READ` calls.
    Tandem,
}

static BACKEND: AtomicU8 = AtomicU8::new(0);
static SPIN: AtomicBool = AtomicBool::new(false);
/// Raw id of the RTOS console mutex + 1 (0: not created yet).
static MUTEX: AtomicU8 = AtomicU8::new(0);

fn uart() -> Pl011 {
    // SAFETY: PL011_BASE is QEMU virt's PL011, identity-mapped as device memory; only this
    // module drives it, under the console lock (reads come from one polling task).
    unsafe { Pl011::new(PL011_BASE.as_usize()) }
}

/// Selects the backend (and enables the UART natively).
pub fn init(backend: Backend) {
    BACKEND.store(backend as u8, Ordering::Relaxed);
    if backend == Backend::Pl011 {
        uart().init();
    }
}

/// The backend in use.
pub fn backend() -> Backend {
    if BACKEND.load(Ordering::Relaxed) == Backend::Tandem as u8 {
        Backend::Tandem
    } else {
        Backend::Pl011
    }
}

/// Creates the RTOS mutex that serialises CPU 0's printing tasks (after the kernel exists).
pub fn use_task_mutex(m: &kernel::Mutex) {
    MUTEX.store(m.raw() + 1, Ordering::Release);
}

fn write_raw(bytes: &[u8]) {
    match backend() {
        Backend::Pl011 => {
            let u = uart();
            for &b in bytes {
                u.put(b);
            }
        }
        Backend::Tandem => {
            // Every byte: the writer yields and retries while Tandem's buffer is full. An error
            // (Tandem refusing console output) has nowhere to be reported.
            let _ = pv_abi::guest::console().write_bytes(bytes);
        }
    }
}

/// Writes `s` with a bare LF → CR LF, under the spin lock (no task mutex).
fn write_locked(s: &str) {
    while SPIN
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let mut chunk = [0u8; 96];
    let mut n = 0;
    let mut prev = 0u8;
    for &b in s.as_bytes() {
        if n + 2 > chunk.len() {
            write_raw(&chunk[..n]);
            n = 0;
        }
        if b == b'\n' && prev != b'\r' {
            chunk[n] = b'\r';
            n += 1;
        }
        chunk[n] = b;
        n += 1;
        prev = b;
    }
    write_raw(&chunk[..n]);
    SPIN.store(false, Ordering::Release);
}

/// Writes a string to the console.
pub fn write_str(s: &str) {
    let mutex = MUTEX.load(Ordering::Acquire);
    // Block on the task mutex only where blocking is possible: a task on CPU 0 with IRQs on.
    let task = mutex != 0 && cpu::index() == 0 && !cpu::irqs_masked() && kernel::started();
    if task {
        let _guard = kernel::Mutex::from_raw(mutex - 1).lock();
        write_locked(s);
    } else {
        write_locked(s);
    }
}

/// Writes a panic/fault report, even if the console lock is held (it may be held by the
/// code that faulted).
pub fn write_emergency(s: &str) {
    SPIN.store(false, Ordering::Release);
    write_locked(s);
}

/// Reads pending input bytes into `buf` without blocking; returns how many (0: none).
/// `buf` must hold at least 16 bytes (one Tandem `CONSOLE_READ`).
pub fn read(buf: &mut [u8]) -> usize {
    match backend() {
        Backend::Pl011 => {
            let u = uart();
            let mut n = 0;
            while n < buf.len() {
                match u.get() {
                    Some(b) => {
                        buf[n] = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        }
        Backend::Tandem => pv_abi::guest::console_read(buf).unwrap_or(0),
    }
}

/// Formats and prints (used by [`println!`](crate::println)).
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut line = LineBuf::<512>::new();
    let _ = line.write_fmt(args);
    write_str(line.as_str());
}

/// Prints a formatted line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::arch::console::write_str("\n") };
    ($($arg:tt)*) => {
        $crate::arch::console::print_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints formatted text to the console (no line end).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::arch::console::print_fmt(format_args!($($arg)*)) };
}
