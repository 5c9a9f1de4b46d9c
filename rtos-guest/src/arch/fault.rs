//! Reports of unexpected exceptions and panics; both end the run.
//!
//! A fault report prints the exception kind, ESR/ELR/FAR and the interrupted SPSR, then powers
//! the machine off with PSCI SYSTEM_OFF so a test run ends promptly (it then lacks its success
//! marker and fails with the report in its log).

use core::fmt::Write;

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable};

use super::console;
use super::cpu;
use super::frame::Frame;
use crate::fmt::LineBuf;

fn stop() -> ! {
    let _ = pv_abi::guest::system_off();
    loop {
        cpu::wfi();
    }
}

/// An exception the RTOS does not expect (a fault, FIQ, SError, or from an unused vector).
pub fn exception(f: &Frame, kind: u64) -> ! {
    let mut line = LineBuf::<256>::new();
    let _ = write!(
        line,
        "\nrtos-guest: FATAL exception kind={kind:#x} on cpu{} esr={:#x} elr={:#x} far={:#x} spsr={:#x}\n",
        cpu::index(),
        ESR_EL1.get(),
        f.elr,
        FAR_EL1.get(),
        f.spsr
    );
    console::write_emergency(line.as_str());
    stop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cpu::irq_save();
    let mut line = LineBuf::<384>::new();
    let _ = write!(line, "\nrtos-guest: PANIC on cpu{}: {info}\n", cpu::index());
    console::write_emergency(line.as_str());
    stop()
}
