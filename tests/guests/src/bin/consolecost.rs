//! `consolecost`: the cost of a console byte, through whichever console the guest finds.
//!
//! One binary, three machines (tests/tests/transparent.rs boots each):
//! - on Tandem with the hypercall console (`pv_abi::guest::is_tandem()`): pv-abi
//!   CONSOLE_WRITE, 48 bytes per call as `pv_abi::guest::console()` writes them;
//! - on Tandem as a transparent VM (`console = "pl011"`), where it finds no Tandem: the
//!   PL011 at 0x0900_0000, polled as bare-metal code does (FR until TXFF is clear, then DR),
//!   which is Tandem's virtual PL011;
//! - natively on QEMU, the same PL011 code on QEMU's own PL011 (the baseline).
//!
//! It writes [`LINES`] lines of 64 bytes (63 characters and a newline), times them on the
//! virtual counter with IRQs masked, and prints one line on the same console:
//!
//! ```text
//! console-cost: path=hypercall|pl011 bytes=4096 ns_per_byte=<X.Y> [exits_per_byte=<X.YYY>]
//! ```
//!
//! Under `-icount shift=0,sleep=off` a nanosecond is an instruction, so `ns_per_byte` is
//! the instructions one byte costs from the guest's store to Tandem's console ring (the
//! guest's own loop included: a few instructions). `exits_per_byte` (hypercall path only,
//! from Tandem's EXITS statistic) is printed in thousandths; for the PL011 the system test
//! reads the exits from Tandem's `vms` monitor command. Then the guest idles in `wfi`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "consolecost: a Tandem test guest; it runs only on aarch64-unknown-none (cargo xtask build)"
    );
}

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::Write;

    use test_guests::units::{Deci, deci_ns_per_call};
    use test_guests::{PHYS_UART, rt, timer};

    test_guests::entry!(main);

    /// Lines written and timed.
    const LINES: u64 = 64;
    /// Bytes per line, newline included.
    const LINE: usize = 64;
    /// FR: transmit FIFO full.
    const FR_TXFF: u32 = 1 << 5;
    /// Register offsets.
    const DR: u64 = 0x00;
    const FR: u64 = 0x18;
    const CR: u64 = 0x30;

    fn reg(off: u64) -> *mut u32 {
        (PHYS_UART + off) as *mut u32
    }

    /// One byte to the PL011, polled.
    fn pl011_put(b: u8) {
        // SAFETY: PHYS_UART is the board's PL011 (Tandem's virtual one, or QEMU's), device
        // memory with the MMU off; only this vCPU drives it.
        while unsafe { reg(FR).read_volatile() } & FR_TXFF != 0 {}
        // SAFETY: as above.
        unsafe { reg(DR).write_volatile(u32::from(b)) };
    }

    /// The console this guest found.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Console {
        Hypercall,
        Pl011,
    }

    impl Console {
        fn write(self, bytes: &[u8]) {
            match self {
                Console::Hypercall => {
                    let _ = pv_abi::guest::console().write_bytes(bytes);
                }
                Console::Pl011 => bytes.iter().copied().for_each(pl011_put),
            }
        }
    }

    /// A line formatted on the stack.
    struct Line([u8; 160], usize);

    impl Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.1 < self.0.len() {
                    self.0[self.1] = b;
                    self.1 += 1;
                }
            }
            Ok(())
        }
    }

    fn exits() -> u64 {
        pv_abi::guest::stats(pv_abi::StatId::Exits).unwrap_or(0)
    }

    fn main(_dtb: u64) -> ! {
        let console = if pv_abi::guest::is_tandem() {
            Console::Hypercall
        } else {
            // SAFETY: as in `pl011_put`: UARTEN, TXE, RXE.
            unsafe { reg(CR).write_volatile(0x301) };
            Console::Pl011
        };
        console.write(b"consolecost: writing 4096 bytes\n");
        let mut text = [b'.'; LINE];
        for (i, b) in text.iter_mut().enumerate().take(LINE - 1) {
            *b = b'a' + (i % 26) as u8;
        }
        text[LINE - 1] = b'\n';
        let exits_before = if console == Console::Hypercall {
            exits()
        } else {
            0
        };
        rt::irq_disable();
        let start = timer::now();
        for _ in 0..LINES {
            console.write(&text);
        }
        let ticks = timer::now() - start;
        rt::irq_enable();
        let bytes = LINES * LINE as u64;
        let mut line = Line([0; 160], 0);
        let _ = write!(
            line,
            "console-cost: path={} bytes={bytes} ns_per_byte={}",
            if console == Console::Hypercall {
                "hypercall"
            } else {
                "pl011"
            },
            Deci(deci_ns_per_call(ticks, timer::hz(), bytes))
        );
        if console == Console::Hypercall {
            // The STATS call that reads the count is one more exit: not the bytes'.
            let milli = (exits() - exits_before - 1) * 1000 / bytes;
            let _ = write!(line, " exits_per_byte={}.{:03}", milli / 1000, milli % 1000);
        }
        let _ = line.write_str("\n");
        console.write(&line.0[..line.1]);
        loop {
            aarch64_cpu::asm::wfi();
        }
    }
}
