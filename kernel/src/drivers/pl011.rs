//! Arm PrimeCell PL011 UART (DDI 0183), polled: Tandem's console.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Control register.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear.
    IMSC [
        /// Receive timeout interrupt.
        RTIM OFFSET(6) NUMBITS(1) [],
        /// Receive interrupt.
        RXIM OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(missing_docs)]
    /// The PL011 register block.
    pub Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32, IMSC::Register>),
        (0x3c => _reserved3),
        (0x44 => icr: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// A PL011 at a fixed, mapped address.
pub struct Pl011 {
    regs: &'static Registers,
}

// SAFETY: the driver only holds the address of device registers; moving it to
// another CPU is fine, and callers serialise access (the console lock).
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// Creates the driver. The firmware (or QEMU) has already set the baud rate.
    ///
    /// # Safety
    /// `base` must be the physical address of a PL011, mapped as device memory
    /// (or the MMU off), used by no other driver instance at the same time.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` is a mapped PL011 register block.
        Self { regs: unsafe { &*(base as *const Registers) } }
    }

    /// Enables the transmitter and receiver.
    pub fn enable(&self) {
        self.regs.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Enables the receive interrupts (data and timeout).
    pub fn enable_rx_interrupt(&self) {
        self.regs.icr.set(0x7ff);
        self.regs.imsc.write(IMSC::RXIM::SET + IMSC::RTIM::SET);
    }

    /// Sends one byte, waiting for FIFO space.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.set(u32::from(byte));
    }

    /// Receives one byte if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) { None } else { Some(self.regs.dr.get() as u8) }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
