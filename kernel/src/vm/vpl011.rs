//! The virtual PL011: the one device model Tandem keeps, the console UART of
//! a transparent VM (`console = "pl011"` in vms.toml).
//!
//! A guest built for bare hardware (QEMU `virt`'s PL011 at 0x0900_0000, or
//! Linux's `amba-pl011` driver) prints and reads through it unchanged; Tandem
//! traps every access to its 4 KiB window (a stage-2 fault on an unmapped
//! IPA) and calls [`Vpl011::read`] or [`Vpl011::write`]. The model knows
//! nothing of Tandem's console: transmitted bytes and received bytes go
//! through a [`Pl011Io`] the caller provides (the VM's share of the shared
//! console and its input queue), so it runs on the host, register by register.
//!
//! Registers (Arm PrimeCell UART PL011 TRM, DDI 0183, r1p5):
//!
//! | offset | register | model |
//! |---|---|---|
//! | 0x000 | DR | write: a byte into the transmit FIFO; read: the next received byte (no error bits) |
//! | 0x004 | RSR/ECR | reads 0 (no receive errors), writes ignored |
//! | 0x018 | FR | TXFE, RXFF, TXFF, RXFE, BUSY from the FIFOs; no modem lines |
//! | 0x024, 0x028 | IBRD, FBRD | kept (16 and 6 bits); the baud rate means nothing here |
//! | 0x02c | LCR_H | kept (8 bits); FEN selects 32-entry FIFOs, else 1-entry holding registers |
//! | 0x030 | CR | kept (16 bits); reset 0x300. The UART transmits and receives whatever UARTEN, TXE, RXE say, as QEMU's PL011 does |
//! | 0x034 | IFLS | kept (6 bits, reset 0x12): the FIFO levels of the TX and RX interrupts |
//! | 0x038 | IMSC | kept (11 bits) |
//! | 0x03c, 0x040 | RIS, MIS | TX, RX and receive-timeout (RT) status; MIS = RIS & IMSC |
//! | 0x044 | ICR | clears TX, RX, RT |
//! | 0xfe0..0xffc | PeriphID0..3, CellID0..3 | a PL011 r1p5 (0x0034_1011), PrimeCell ID 0xb105_f00d |
//!
//! Everything else (ILPR, DMACR, the test registers, reserved offsets), and
//! any access that is not a naturally aligned 1-, 2- or 4-byte access to a
//! register's lowest bytes, reads as zero and ignores writes; such accesses
//! are counted ([`Vpl011::ignored`]), never fatal.
//!
//! Interrupts follow the TRM's FIFO-level rules. TX is raised when the
//! transmit FIFO drains to its trigger level (IFLS; with FIFOs off, when the
//! holding register empties) after having been above it, and cleared by
//! filling it above the level again or by ICR. RX is raised when received
//! bytes reach the RX trigger level, RT (receive timeout) when bytes wait
//! below it: input arrives in bursts (a line typed, a paste), after which
//! nothing more comes, which is when a PL011's timeout fires. Both clear when
//! the reads take the FIFO below their condition, or by ICR. The interrupt
//! output ([`Vpl011::line`]) is `RIS & IMSC != 0`, a level.
//!
//! The transmit FIFO drains into the console as soon as the console takes
//! bytes, so a guest normally sees it empty. When the console is full
//! ([`Pl011Io::transmit`] takes fewer bytes), the bytes wait here, FR shows
//! TXFF once the FIFO is full (32 bytes, or 1 with FIFOs off), and [`Vpl011::drain`] (the console's transmit
//! interrupt) or the guest's next FR read moves them on.
#![forbid(unsafe_code)]

/// Data register.
pub const DR: u64 = 0x000;
/// Receive status / error clear.
pub const RSR: u64 = 0x004;
/// Flag register.
pub const FR: u64 = 0x018;
/// Integer baud rate divisor.
pub const IBRD: u64 = 0x024;
/// Fractional baud rate divisor.
pub const FBRD: u64 = 0x028;
/// Line control.
pub const LCR_H: u64 = 0x02c;
/// Control.
pub const CR: u64 = 0x030;
/// Interrupt FIFO level select.
pub const IFLS: u64 = 0x034;
/// Interrupt mask set/clear.
pub const IMSC: u64 = 0x038;
/// Raw interrupt status.
pub const RIS: u64 = 0x03c;
/// Masked interrupt status.
pub const MIS: u64 = 0x040;
/// Interrupt clear.
pub const ICR: u64 = 0x044;
/// PeriphID0; PeriphID1..3 and CellID0..3 follow, one word each.
pub const PERIPH_ID0: u64 = 0xfe0;
/// The register window's size.
pub const WINDOW: u64 = 0x1000;

/// FR: a byte waits in the transmitter (the transmit FIFO is not empty).
pub const FR_BUSY: u32 = 1 << 3;
/// FR: the receive FIFO is empty.
pub const FR_RXFE: u32 = 1 << 4;
/// FR: the transmit FIFO is full.
pub const FR_TXFF: u32 = 1 << 5;
/// FR: the receive FIFO is full.
pub const FR_RXFF: u32 = 1 << 6;
/// FR: the transmit FIFO is empty.
pub const FR_TXFE: u32 = 1 << 7;

/// LCR_H: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;

/// Interrupt bit (RIS, MIS, IMSC, ICR): receive.
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit: transmit.
pub const INT_TX: u32 = 1 << 5;
/// Interrupt bit: receive timeout.
pub const INT_RT: u32 = 1 << 6;
/// The IMSC bits a PL011 has (modem, RX, TX, RT, error interrupts).
const IMSC_MASK: u32 = 0x7ff;

/// PeriphID0..3 then CellID0..3, the low byte of each word: part 0x011
/// (PL011), designer 0x41 (Arm), revision 3 (r1p5); PrimeCell 0xb105f00d.
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Entries of each FIFO with LCR_H.FEN set (1 without).
pub const FIFO_DEPTH: usize = 32;

/// Where a VM's UART bytes go and come from.
pub trait Pl011Io {
    /// Offers `bytes` to the console; returns how many it took (a prefix).
    fn transmit(&mut self, bytes: &[u8]) -> usize;
    /// Received bytes waiting for the guest.
    fn rx_len(&mut self) -> usize;
    /// Takes the next received byte.
    fn receive(&mut self) -> Option<u8>;
}

/// One virtual PL011's state.
#[derive(Clone, Debug)]
pub struct Vpl011 {
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    /// Raw interrupt status (TX, RX, RT latches).
    ris: u32,
    /// The transmit FIFO: bytes the console has not taken yet.
    tx: [u8; FIFO_DEPTH],
    tx_len: usize,
    /// The transmit FIFO was above its trigger level since TX was last raised.
    tx_above: bool,
    /// The interrupt output as last reported ([`Vpl011::line_change`]).
    line_reported: bool,
    /// Accesses read as zero or ignored.
    ignored: u64,
}

impl Default for Vpl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Vpl011 {
    /// A PL011 as after reset (CR = 0x300: TXE, RXE; IFLS = 0x12: both at 1/2).
    pub const fn new() -> Self {
        Self {
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0x300,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            tx: [0; FIFO_DEPTH],
            tx_len: 0,
            tx_above: false,
            line_reported: false,
            ignored: 0,
        }
    }

    /// Entries of each FIFO now (LCR_H.FEN).
    fn depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// IFLS's level select (3 bits) as a FIFO level: 1/8, 1/4, 1/2, 3/4, 7/8.
    fn level(select: u32) -> usize {
        FIFO_DEPTH * [1, 2, 4, 6, 7][(select as usize).min(4)] / 8
    }

    /// TX is raised at or below this many bytes in the transmit FIFO.
    fn tx_trigger(&self) -> usize {
        if self.depth() == 1 {
            0
        } else {
            Self::level(self.ifls & 7)
        }
    }

    /// RX is raised at or above this many received bytes.
    fn rx_trigger(&self) -> usize {
        if self.depth() == 1 {
            1
        } else {
            Self::level((self.ifls >> 3) & 7)
        }
    }

    /// The interrupt output: some raw status is unmasked.
    pub fn line(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// The interrupt output if it changed since the last call (the caller
    /// drives the virtual SPI with it).
    pub fn line_change(&mut self) -> Option<bool> {
        let now = self.line();
        (now != self.line_reported).then(|| {
            self.line_reported = now;
            now
        })
    }

    /// Bytes waiting for the console.
    pub fn tx_pending(&self) -> usize {
        self.tx_len
    }

    /// Accesses that read as zero or were ignored (unimplemented registers,
    /// odd widths or offsets).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Moves waiting bytes to the console, as far as it takes them, and
    /// updates TX. Returns whether bytes still wait.
    pub fn drain(&mut self, io: &mut impl Pl011Io) -> bool {
        if self.tx_len > 0 {
            let took = io.transmit(&self.tx[..self.tx_len]).min(self.tx_len);
            self.tx.copy_within(took..self.tx_len, 0);
            self.tx_len -= took;
        }
        self.update_tx();
        self.tx_len > 0
    }

    /// TX follows the transmit FIFO's level through its trigger.
    fn update_tx(&mut self) {
        if self.tx_len > self.tx_trigger() {
            self.tx_above = true;
            self.ris &= !INT_TX;
        } else if self.tx_above {
            self.tx_above = false;
            self.ris |= INT_TX;
        }
    }

    /// Input was queued for the guest: RX or RT rises.
    pub fn received(&mut self, io: &mut impl Pl011Io) {
        let n = io.rx_len();
        if n >= self.rx_trigger() {
            self.ris |= INT_RX;
        }
        if n > 0 {
            self.ris |= INT_RT;
        }
    }

    /// After the guest took bytes: RX clears below its level, RT when empty.
    fn update_rx(&mut self, io: &mut impl Pl011Io) {
        let n = io.rx_len();
        if n < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if n == 0 {
            self.ris &= !INT_RT;
        }
    }

    fn flags(&mut self, io: &mut impl Pl011Io) -> u32 {
        if self.tx_len > 0 {
            self.drain(io);
        }
        let rx = io.rx_len();
        let mut fr = 0;
        if self.tx_len == 0 {
            fr |= FR_TXFE;
        } else {
            fr |= FR_BUSY;
        }
        if self.tx_len >= self.depth() {
            fr |= FR_TXFF;
        }
        if rx == 0 {
            fr |= FR_RXFE;
        }
        if rx >= self.depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    /// The 32-bit register at word offset `reg` (reads with side effects:
    /// DR takes a received byte).
    fn read_reg(&mut self, reg: u64, io: &mut impl Pl011Io) -> Option<u32> {
        Some(match reg {
            DR => {
                let b = io.receive();
                self.update_rx(io);
                b.map_or(0, u32::from)
            }
            RSR => 0,
            FR => self.flags(io),
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            r if (PERIPH_ID0..WINDOW).contains(&r) => {
                u32::from(ID_BYTES[((r - PERIPH_ID0) / 4) as usize])
            }
            _ => return None,
        })
    }

    /// Whether a `width`-byte access at `offset` is one the model serves:
    /// naturally aligned, 1, 2 or 4 bytes, at the low bytes of a register.
    fn served(offset: u64, width: u8) -> bool {
        matches!(width, 1 | 2 | 4) && offset.is_multiple_of(4) && offset < WINDOW
    }

    /// A guest read of `width` bytes at `offset` into the window.
    pub fn read(&mut self, offset: u64, width: u8, io: &mut impl Pl011Io) -> u64 {
        let value = if Self::served(offset, width) {
            self.read_reg(offset, io)
        } else {
            None
        };
        match value {
            Some(v) => u64::from(v) & (u64::MAX >> (64 - 8 * u32::from(width))),
            None => {
                self.ignored += 1;
                0
            }
        }
    }

    /// A guest write of `width` bytes of `value` at `offset` into the window.
    /// A write narrower than the register keeps its upper bits.
    pub fn write(&mut self, offset: u64, width: u8, value: u64, io: &mut impl Pl011Io) {
        if !Self::served(offset, width) {
            self.ignored += 1;
            return;
        }
        let mask = (u64::MAX >> (64 - 8 * u32::from(width))) as u32;
        let merge = |old: u32| (old & !mask) | (value as u32 & mask);
        match offset {
            DR => {
                if self.tx_len < self.depth() {
                    self.tx[self.tx_len] = value as u8;
                    self.tx_len += 1;
                }
                // Above the trigger for the instant the byte is in the FIFO.
                self.update_tx();
                self.drain(io);
            }
            RSR => {}
            IBRD => self.ibrd = merge(self.ibrd) & 0xffff,
            FBRD => self.fbrd = merge(self.fbrd) & 0x3f,
            LCR_H => {
                self.lcr_h = merge(self.lcr_h) & 0xff;
                // Bytes beyond a 1-entry holding register are kept, not lost.
                self.update_tx();
            }
            CR => self.cr = merge(self.cr) & 0xffff,
            IFLS => {
                self.ifls = merge(self.ifls) & 0x3f;
                self.update_tx();
            }
            IMSC => self.imsc = merge(self.imsc) & IMSC_MASK,
            ICR => self.ris &= !(value as u32 & mask),
            _ => self.ignored += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A console that takes up to `room` bytes, and an input queue.
    #[derive(Default)]
    struct Io {
        out: Vec<u8>,
        room: usize,
        input: std::collections::VecDeque<u8>,
    }

    impl Io {
        fn open() -> Self {
            Self {
                room: usize::MAX,
                ..Self::default()
            }
        }
    }

    impl Pl011Io for Io {
        fn transmit(&mut self, bytes: &[u8]) -> usize {
            let n = bytes.len().min(self.room);
            self.out.extend_from_slice(&bytes[..n]);
            self.room -= n;
            n
        }
        fn rx_len(&mut self) -> usize {
            self.input.len()
        }
        fn receive(&mut self) -> Option<u8> {
            self.input.pop_front()
        }
    }

    fn rd(u: &mut Vpl011, io: &mut Io, off: u64) -> u32 {
        u.read(off, 4, io) as u32
    }

    fn wr(u: &mut Vpl011, io: &mut Io, off: u64, v: u32) {
        u.write(off, 4, u64::from(v), io);
    }

    /// Reset values: CR 0x300, IFLS 0x12, the rest 0; FR says both FIFOs empty.
    #[test]
    fn reset_state() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        assert_eq!(rd(&mut u, &mut io, CR), 0x300);
        assert_eq!(rd(&mut u, &mut io, IFLS), 0x12);
        for r in [IBRD, FBRD, LCR_H, IMSC, RIS, MIS, RSR] {
            assert_eq!(rd(&mut u, &mut io, r), 0, "{r:#x}");
        }
        assert_eq!(rd(&mut u, &mut io, FR), FR_TXFE | FR_RXFE);
        assert!(!u.line());
    }

    /// DR writes reach the console byte by byte, from 8-, 16- and 32-bit stores.
    #[test]
    fn dr_write_transmits() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        u.write(DR, 1, u64::from(b'h'), &mut io);
        u.write(DR, 2, 0xff00 | u64::from(b'i'), &mut io);
        u.write(DR, 4, 0xabcd_0000 | u64::from(b'!'), &mut io);
        assert_eq!(io.out, b"hi!");
        assert_eq!(rd(&mut u, &mut io, FR) & (FR_BUSY | FR_TXFF), 0);
    }

    /// DR reads take received bytes in order; FR's RXFE and RXFF follow the queue.
    #[test]
    fn dr_read_receives() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        assert_eq!(rd(&mut u, &mut io, DR), 0, "nothing received");
        io.input.extend(b"AT");
        u.received(&mut io);
        let fr = rd(&mut u, &mut io, FR);
        assert_eq!(fr & FR_RXFE, 0);
        assert_ne!(fr & FR_RXFF, 0, "2 bytes fill a 1-entry holding register");
        assert_eq!(rd(&mut u, &mut io, DR), u32::from(b'A'));
        assert_eq!(rd(&mut u, &mut io, DR), u32::from(b'T'));
        assert_ne!(rd(&mut u, &mut io, FR) & FR_RXFE, 0);
        wr(&mut u, &mut io, LCR_H, LCR_H_FEN);
        io.input.extend(b"xyz");
        assert_eq!(
            rd(&mut u, &mut io, FR) & FR_RXFF,
            0,
            "32-entry FIFO not full"
        );
    }

    /// IBRD, FBRD, LCR_H, CR, IFLS and IMSC keep what is written, to their widths.
    #[test]
    fn control_registers_keep_their_bits() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        for (reg, mask) in [
            (IBRD, 0xffff),
            (FBRD, 0x3f),
            (LCR_H, 0xff),
            (CR, 0xffff),
            (IFLS, 0x3f),
            (IMSC, 0x7ff),
        ] {
            wr(&mut u, &mut io, reg, 0xffff_ffff);
            assert_eq!(rd(&mut u, &mut io, reg), mask, "{reg:#x}");
            wr(&mut u, &mut io, reg, 0x5);
            assert_eq!(rd(&mut u, &mut io, reg), 0x5 & mask, "{reg:#x}");
        }
    }

    /// A 16-bit store (Linux's amba-pl011 accessors) writes the low half; an
    /// 8-bit one keeps the bits above it.
    #[test]
    fn narrow_writes_merge() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        u.write(CR, 2, 0x0301, &mut io);
        assert_eq!(u.read(CR, 2, &mut io), 0x301);
        u.write(CR, 1, 0x00, &mut io);
        assert_eq!(rd(&mut u, &mut io, CR), 0x300);
        assert_eq!(
            u.read(CR, 1, &mut io),
            0x00,
            "a byte read gives the low byte"
        );
    }

    /// PeriphID0..3 and CellID0..3 read as the PL011 r1p5 and PrimeCell IDs,
    /// as Linux's amba bus assembles them.
    #[test]
    fn primecell_ids() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        let word = |u: &mut Vpl011, io: &mut Io, base: u64| {
            (0..4).fold(0u32, |acc, i| acc | rd(u, io, base + 4 * i) << (8 * i))
        };
        assert_eq!(word(&mut u, &mut io, PERIPH_ID0), 0x0034_1011);
        assert_eq!(word(&mut u, &mut io, PERIPH_ID0 + 16), 0xb105_f00d);
        wr(&mut u, &mut io, PERIPH_ID0, 0);
        assert_eq!(rd(&mut u, &mut io, PERIPH_ID0), 0x11, "read-only");
    }

    /// Unimplemented registers, odd offsets and widths read as zero, ignore
    /// writes and are counted; the UART keeps working.
    #[test]
    fn unimplemented_is_raz_wi() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        for off in [0x020, 0x048, 0x080, 0x800, 0xfdc] {
            wr(&mut u, &mut io, off, 0xffff_ffff);
            assert_eq!(rd(&mut u, &mut io, off), 0, "{off:#x}");
        }
        u.write(DR + 1, 1, u64::from(b'x'), &mut io);
        u.write(DR, 8, u64::from(b'y'), &mut io);
        assert_eq!(u.read(CR + 2, 2, &mut io), 0);
        assert_eq!(u.read(WINDOW, 4, &mut io), 0);
        assert!(io.out.is_empty(), "no byte from an odd access");
        assert_eq!(u.ignored(), 14);
        wr(&mut u, &mut io, DR, u32::from(b'z'));
        assert_eq!(io.out, b"z");
    }

    /// A full console holds bytes in the FIFO: BUSY, then TXFF at 32 (further
    /// bytes are lost, as on hardware); drain moves them on in order.
    #[test]
    fn full_console_backs_up_the_fifo() {
        let (mut u, mut io) = (Vpl011::new(), Io::default());
        wr(&mut u, &mut io, LCR_H, LCR_H_FEN);
        for i in 0..40u8 {
            wr(&mut u, &mut io, DR, u32::from(b'a' + i % 26));
        }
        assert_eq!(u.tx_pending(), 32);
        let fr = rd(&mut u, &mut io, FR);
        assert_eq!(fr & (FR_TXFF | FR_BUSY | FR_TXFE), FR_TXFF | FR_BUSY);
        io.room = 10;
        assert!(u.drain(&mut io), "22 bytes still wait");
        io.room = usize::MAX;
        assert_eq!(
            rd(&mut u, &mut io, FR) & FR_TXFE,
            FR_TXFE,
            "an FR read drains"
        );
        assert_eq!(io.out.len(), 32);
        assert_eq!(&io.out[..3], b"abc");
    }

    /// TX rises when the FIFO drains through its trigger level after having
    /// been above it, not before; ICR clears it; filling above clears it.
    #[test]
    fn tx_interrupt_follows_the_fifo_level() {
        let (mut u, mut io) = (Vpl011::new(), Io::default());
        wr(&mut u, &mut io, LCR_H, LCR_H_FEN);
        wr(&mut u, &mut io, IMSC, INT_TX);
        for _ in 0..20 {
            wr(&mut u, &mut io, DR, u32::from(b'.'));
        }
        assert_eq!(rd(&mut u, &mut io, RIS) & INT_TX, 0, "20 > 16 waiting");
        io.room = 3;
        u.drain(&mut io);
        assert_eq!(rd(&mut u, &mut io, RIS) & INT_TX, 0, "17 still above 1/2");
        io.room = 1;
        u.drain(&mut io);
        assert_eq!(rd(&mut u, &mut io, MIS), INT_TX, "16: at the trigger");
        assert_eq!(u.line_change(), Some(true));
        wr(&mut u, &mut io, ICR, INT_TX);
        assert_eq!(rd(&mut u, &mut io, RIS), 0);
        assert_eq!(u.line_change(), Some(false));
        assert_eq!(u.line_change(), None);
        io.room = usize::MAX;
        u.drain(&mut io);
        assert_eq!(rd(&mut u, &mut io, RIS), 0, "no new crossing");
    }

    /// Without FIFOs, every byte the console takes empties the holding
    /// register: TX rises after each write.
    #[test]
    fn tx_interrupt_without_fifo() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        assert_eq!(rd(&mut u, &mut io, RIS), 0, "nothing sent yet");
        wr(&mut u, &mut io, DR, u32::from(b'a'));
        assert_eq!(rd(&mut u, &mut io, RIS), INT_TX);
        wr(&mut u, &mut io, ICR, 0x7ff);
        wr(&mut u, &mut io, DR, u32::from(b'b'));
        assert_eq!(rd(&mut u, &mut io, RIS), INT_TX);
    }

    /// Input below the RX level raises RT; at the level, RX too; reads clear
    /// RX below the level and RT when empty; ICR clears both.
    #[test]
    fn rx_and_timeout_interrupts() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        wr(&mut u, &mut io, LCR_H, LCR_H_FEN);
        wr(&mut u, &mut io, IMSC, INT_RX | INT_RT);
        io.input.extend(b"AT\r");
        u.received(&mut io);
        assert_eq!(rd(&mut u, &mut io, MIS), INT_RT, "3 < 16");
        assert!(u.line());
        io.input.extend([b'x'; 13]);
        u.received(&mut io);
        assert_eq!(rd(&mut u, &mut io, MIS), INT_RT | INT_RX);
        rd(&mut u, &mut io, DR);
        assert_eq!(rd(&mut u, &mut io, MIS), INT_RT, "15 < 16");
        while rd(&mut u, &mut io, FR) & FR_RXFE == 0 {
            rd(&mut u, &mut io, DR);
        }
        assert_eq!(rd(&mut u, &mut io, RIS), 0);
        io.input.push_back(b'y');
        u.received(&mut io);
        wr(&mut u, &mut io, ICR, INT_RT);
        assert_eq!(rd(&mut u, &mut io, RIS), 0);
        assert!(!u.line());
    }

    /// Masked status raises no line; unmasking a raised status does.
    #[test]
    fn mask_gates_the_line() {
        let (mut u, mut io) = (Vpl011::new(), Io::open());
        io.input.push_back(b'a');
        u.received(&mut io);
        assert_eq!(rd(&mut u, &mut io, RIS), INT_RX | INT_RT);
        assert_eq!(rd(&mut u, &mut io, MIS), 0);
        assert_eq!(u.line_change(), None);
        wr(&mut u, &mut io, IMSC, INT_RX);
        assert_eq!(u.line_change(), Some(true));
    }
}
