//! `println!` for the guests: whole lines through Tandem's `CONSOLE_WRITE`.
//!
//! Each `println!` formats into a fixed line buffer (no heap) and hands the complete line to
//! Tandem under a spin lock, so the two vCPUs' lines never interleave (Tandem then tags the
//! line with the VM's name). Longer lines are cut at [`LINE_MAX`] bytes and end in `...`.
//! The lock is a `compare_exchange` (LDAXR/STLXR) on Device memory, as the MMU is off: QEMU
//! honours exclusives there; the lock must not be taken in the IRQ handler.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

/// The longest line printed, newline included (Tandem's own line limit is 200 bytes).
pub const LINE_MAX: usize = 190;

static LOCK: AtomicBool = AtomicBool::new(false);

/// A line being formatted.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    cut: bool,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE_MAX - 4 {
                self.cut = true;
                return Ok(());
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints `args` and a newline as one line. Used by [`println!`](crate::println).
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; LINE_MAX],
        len: 0,
        cut: false,
    };
    let _ = line.write_fmt(args);
    if line.cut {
        line.buf[line.len..line.len + 3].copy_from_slice(b"...");
        line.len += 3;
    }
    line.buf[line.len] = b'\n';
    line.len += 1;
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    // The whole line: the writer yields and retries while Tandem's buffer is full (a bare
    // `console_write` may accept only a prefix). An error has nowhere to be reported.
    let _ = pv_abi::guest::console().write_bytes(&line.buf[..line.len]);
    LOCK.store(false, Ordering::Release);
}

/// Prints a formatted line on the VM's console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
