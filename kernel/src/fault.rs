//! Reports for exceptions taken at EL2 that Tandem cannot handle.
//!
//! The arch layer saves the registers into a [`TrapFrame`] and calls the
//! report writer; the format is pure and host-tested.
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

use crate::aarch64::esr::Syndrome;

/// Registers at the moment of an exception, saved by the vector stub.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The stack pointer in use when the exception was taken.
    pub sp: u64,
    /// Exception link register (faulting PC).
    pub elr: u64,
    /// Saved program status.
    pub spsr: u64,
    /// Exception syndrome.
    pub esr: u64,
    /// Fault address.
    pub far: u64,
}

/// Which vector the exception came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorKind {
    /// Synchronous exception.
    Sync,
    /// IRQ.
    Irq,
    /// FIQ.
    Fiq,
    /// SError.
    SError,
}

impl VectorKind {
    /// From the vector stub's index (0..3).
    pub fn from_index(i: u64) -> Self {
        match i & 3 {
            0 => Self::Sync,
            1 => Self::Irq,
            2 => Self::Fiq,
            _ => Self::SError,
        }
    }
}

/// The exception level and stack named by an SPSR.M value.
pub fn spsr_mode_name(spsr: u64) -> &'static str {
    match spsr & 0xf {
        0b0000 => "EL0t",
        0b0100 => "EL1t",
        0b0101 => "EL1h",
        0b1000 => "EL2t",
        0b1001 => "EL2h",
        _ => "?",
    }
}

/// Writes a fault report: what happened, where, and every register.
pub fn write_report(
    out: &mut impl Write,
    cpu: usize,
    kind: VectorKind,
    frame: &TrapFrame,
) -> fmt::Result {
    let syndrome = Syndrome::new(frame.esr);
    writeln!(out, "EL2 FAULT on CPU {cpu}: {kind:?} exception")?;
    writeln!(out, "  {syndrome}")?;
    writeln!(
        out,
        "  ELR={:#018x} FAR={:#018x} SPSR={:#010x} ({}) SP={:#018x}",
        frame.elr,
        frame.far,
        frame.spsr,
        spsr_mode_name(frame.spsr),
        frame.sp
    )?;
    for row in 0..8 {
        write!(out, " ")?;
        for col in 0..4 {
            let i = row * 4 + col;
            if i < 31 {
                write!(out, " x{i:<2}={:#018x}", frame.x[i])?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    /// A translation fault report names the class, fault kind, addresses and registers.
    #[test]
    fn report_names_everything() {
        let mut frame = TrapFrame {
            esr: 0x9600_0045,
            far: 0xdead_0000,
            elr: 0x4008_1234,
            spsr: 0x3c9,
            ..Default::default()
        };
        frame.x[30] = 0x4008_0000;
        let mut s = String::new();
        write_report(&mut s, 2, VectorKind::Sync, &frame).unwrap();
        for needle in [
            "CPU 2",
            "data abort at EL2",
            "translation fault",
            "FAR=0x00000000dead0000",
            "EL2h",
            "x30=0x0000000040080000",
        ] {
            assert!(s.contains(needle), "missing {needle} in:\n{s}");
        }
    }
}
