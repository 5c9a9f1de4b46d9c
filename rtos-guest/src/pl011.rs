//! The PL011 UART (native console): register map and a polled driver.
//!
//! Used only when the guest does not run on Tandem (there the console is the pv-abi call).
//! QEMU's PL011 needs no baud setup; [`Pl011::init`] only enables the UART, transmitter and
//! receiver. Spec: Arm PrimeCell UART (PL011) TRM, DDI 0183.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Data register.
    pub(crate) DR [
        /// The received or transmitted byte.
        DATA OFFSET(0) NUMBITS(8) []
    ],
    /// Flag register.
    pub(crate) FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) []
    ],
    /// Control register.
    pub(crate) CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    /// PL011 registers.
    pub(crate) Pl011Regs {
        /// Data.
        (0x00 => pub(crate) dr: ReadWrite<u32, DR::Register>),
        (0x04 => _reserved0),
        /// Flags.
        (0x18 => pub(crate) fr: ReadOnly<u32, FR::Register>),
        (0x1C => _reserved1),
        /// Control.
        (0x30 => pub(crate) cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x1000 => @END),
    }
}

/// A polled PL011.
pub struct Pl011 {
    regs: &'static Pl011Regs,
}

impl Pl011 {
    /// The UART whose registers are at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the address (mapped as device memory) of a PL011's 4 KiB register block
    /// that nothing else accesses concurrently in a conflicting way, valid for `'static`.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` is a valid, 'static PL011 register block.
        let regs = unsafe { &*(base as *const Pl011Regs) };
        Self { regs }
    }

    /// Enables the UART with transmitter and receiver.
    pub fn init(&self) {
        self.regs
            .cr
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put(&self, b: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.write(DR::DATA.val(u32::from(b)));
    }

    /// A received byte, if one is waiting.
    pub fn get(&self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs.dr.read(DR::DATA) as u8)
        }
    }
}
