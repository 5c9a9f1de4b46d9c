//! virtio-console (device ID 3), device side: the AT command port towards Linux.
//!
//! Features offered: `VERSION_1` and `ACCESS_PLATFORM` only (one port, no `MULTIPORT`, no
//! size, no emergency write), so there are two queues: receiveq 0 (bytes to Linux) and
//! transmitq 1 (bytes from Linux). Bytes from Linux feed an [`at::LineEditor`]; each complete
//! line is answered by [`at::respond`] (CR LF line ends, `OK`/`ERROR` last). The port does
//! not echo (V.250 `ATE0`): Linux's tty echoes for a terminal, and a program talking to the
//! modem reads only answers. Lines without the `AT` prefix are ignored (V.250 §5.2.1), so a
//! tty left with `echo` on cannot make the modem answer its own answers forever. Answers wait in an output buffer until Linux gives receive
//! buffers for them.
#![forbid(unsafe_code)]

use super::pool::{Backing, Pool};
use super::queue::Virtqueue;
use super::{Device, F_ACCESS_PLATFORM, F_VERSION_1, Fault, QUEUES};
use crate::at::{self, Feed, LineEditor, Modem};
use crate::fmt::LineBuf;

/// The virtio device ID of a console.
pub const DEVICE_ID: u32 = 3;
/// Receive queue index (to Linux).
pub const RX: usize = 0;
/// Transmit queue index (from Linux).
pub const TX: usize = 1;
/// Bytes of answers held while Linux has no receive buffer.
pub const OUT_MAX: usize = 2048;

/// Traffic through the port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleCounters {
    /// Bytes received from Linux.
    pub bytes_in: u64,
    /// Bytes sent to Linux.
    pub bytes_out: u64,
    /// Command lines answered.
    pub commands: u64,
    /// Answer bytes dropped because the output buffer was full.
    pub dropped: u64,
}

impl ConsoleCounters {
    /// Writes `rtos-at: ch=… in=… out=… cmds=… dropped=… faults=…` for the port on channel
    /// `channel` (`faults`: the front-end's rule breaks).
    pub fn write_line(
        &self,
        channel: u32,
        faults: u64,
        w: &mut impl core::fmt::Write,
    ) -> core::fmt::Result {
        write!(
            w,
            "rtos-at: ch={channel} in={} out={} cmds={} dropped={} faults={}",
            self.bytes_in, self.bytes_out, self.commands, self.dropped, faults
        )
    }
}

/// A FIFO of output bytes.
struct Output {
    buf: [u8; OUT_MAX],
    start: usize,
    len: usize,
}

impl Output {
    /// Appends what fits of `bytes`; returns how many did not fit.
    fn push(&mut self, bytes: &[u8]) -> usize {
        let mut dropped = 0;
        for &b in bytes {
            if self.len == OUT_MAX {
                dropped += 1;
                continue;
            }
            self.buf[(self.start + self.len) % OUT_MAX] = b;
            self.len += 1;
        }
        dropped
    }

    /// The waiting bytes, as the (up to) two contiguous runs of the ring.
    fn runs(&self) -> [&[u8]; 2] {
        let first = self.len.min(OUT_MAX - self.start);
        [
            &self.buf[self.start..self.start + first],
            &self.buf[..self.len - first],
        ]
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start = (self.start + n) % OUT_MAX;
        self.len -= n;
    }
}

/// A virtio-console whose one port is an AT command interpreter for `modem`.
pub struct Console<M> {
    modem: M,
    editor: LineEditor,
    out: Output,
    counters: ConsoleCounters,
}

impl<M: Modem> Console<M> {
    /// The port, answering with `modem`'s state.
    pub const fn new(modem: M) -> Self {
        Self {
            modem,
            editor: LineEditor::new(),
            out: Output {
                buf: [0; OUT_MAX],
                start: 0,
                len: 0,
            },
            counters: ConsoleCounters {
                bytes_in: 0,
                bytes_out: 0,
                commands: 0,
                dropped: 0,
            },
        }
    }

    /// The traffic counters.
    pub fn counters(&self) -> ConsoleCounters {
        self.counters
    }

    fn input(&mut self, bytes: &[u8]) {
        self.counters.bytes_in += bytes.len() as u64;
        for &b in bytes {
            if self.editor.feed(b) == Feed::Line {
                // Lines without the AT prefix (Linux's tty echoing our answers) get none.
                let prefixed = self.editor.has_at_prefix();
                let cmd = self.editor.take();
                if !prefixed {
                    continue;
                }
                let mut answer = LineBuf::<640>::new();
                let _ = at::respond(cmd, &self.modem, &mut answer);
                self.counters.commands += u64::from(!answer.as_bytes().is_empty());
                self.counters.dropped += self.out.push(answer.as_bytes()) as u64;
            }
        }
    }

    /// Moves waiting output into Linux's receive buffers.
    fn flush<B: Backing>(&mut self, rx: &mut Virtqueue, pool: &Pool<B>) -> Result<(), Fault> {
        for _ in 0..rx.num {
            if self.out.len == 0 {
                break;
            }
            let Some(mut chain) = rx.pop(pool)? else {
                break;
            };
            let written = chain.write_all(pool, &self.out.runs())?;
            self.out.consume(written);
            self.counters.bytes_out += written as u64;
            rx.push(pool, &chain, written as u32)?;
        }
        Ok(())
    }
}

impl<M: Modem> Device for Console<M> {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_ACCESS_PLATFORM
    }

    fn config_byte(&self, _offset: usize) -> u8 {
        // cols, rows, max_nr_ports, emerg_wr: none is valid without their features.
        0
    }

    fn reset(&mut self) {
        self.editor = LineEditor::new();
        self.out.consume(OUT_MAX);
    }

    fn serve<B: Backing>(
        &mut self,
        queues: &mut [Virtqueue; QUEUES],
        pool: &Pool<B>,
        _notified: u32,
    ) -> Result<(), Fault> {
        let [rx, tx] = queues;
        let mut chunk = [0u8; 64];
        for _ in 0..tx.num {
            let Some(mut chain) = tx.pop(pool)? else {
                break;
            };
            chain.read_each(pool, &mut chunk, |bytes| self.input(bytes))?;
            tx.push(pool, &chain, 0)?;
            // Answer as we go, so a long burst of commands cannot overflow the output.
            self.flush(rx, pool)?;
        }
        self.flush(rx, pool)
    }
}

#[cfg(test)]
mod tests {
    use core::fmt::{self, Write};

    use super::*;
    use crate::virtio::INT_USED_BUFFER;
    use crate::virtio::mmio::fake::{pool, probe};
    use crate::virtio::mmio::{Transport, reg};
    use crate::virtio::pool::fake::Ram;
    use crate::virtio::queue::fake::{Driver, new_pool};

    struct Fake;
    impl Modem for Fake {
        fn stats_line(&self, w: &mut dyn Write) -> fmt::Result {
            w.write_str("rtos-stats: periods=1 misses=0")
        }
        fn signal_quality(&self) -> (u8, u8) {
            (31, 99)
        }
        fn platform(&self) -> &'static str {
            "tandem"
        }
    }

    type Port = Transport<Console<Fake>, Ram>;

    fn port() -> (Port, Driver, Driver) {
        let mut t = Transport::new(Console::new(Fake), new_pool());
        assert_eq!(t.read(reg::DEVICE_ID, 4), 3);
        let [rx, tx] = probe(&mut t, F_VERSION_1 | F_ACCESS_PLATFORM, 16);
        (t, rx, tx)
    }

    /// Gives Linux's side `n` receive buffers of `size` bytes; returns their addresses.
    fn give(t: &Port, rx: &mut Driver, n: usize, size: u32) -> Vec<u64> {
        (0..n).map(|_| rx.add(pool(t), &[], size, true)).collect()
    }

    /// What Linux received, in order.
    fn received(t: &Port, rx: &mut Driver, bufs: &mut Vec<u64>) -> String {
        let mut s = String::new();
        for (_, len) in rx.used(pool(t)) {
            let addr = bufs.remove(0);
            let mut b = vec![0u8; len as usize];
            pool(t).read(addr, &mut b).unwrap();
            s.push_str(core::str::from_utf8(&b).unwrap());
        }
        s
    }

    /// `AT+CSQ` and an unknown command are answered on the receive queue, CR LF, no echo.
    #[test]
    fn answers_commands() {
        let (mut t, mut rx, mut tx) = port();
        let mut bufs = give(&t, &mut rx, 4, 64);
        tx.add(pool(&t), b"AT+CSQ\r", 7, false);
        assert_eq!(t.serve(1 << TX), INT_USED_BUFFER);
        assert_eq!(received(&t, &mut rx, &mut bufs), "+CSQ: 31,99\r\nOK\r\n");
        tx.add(pool(&t), b"AT+BOGUS\nAT\n", 12, false);
        t.serve(1 << TX);
        assert_eq!(received(&t, &mut rx, &mut bufs), "ERROR\r\nOK\r\n");
        let c = t.device().counters();
        assert_eq!((c.bytes_in, c.commands), (19, 3));
    }

    /// The statistics line.
    #[test]
    fn report_line() {
        let c = ConsoleCounters {
            bytes_in: 7,
            bytes_out: 17,
            commands: 1,
            dropped: 0,
        };
        let mut line = crate::fmt::LineBuf::<128>::new();
        c.write_line(1, 2, &mut line).unwrap();
        assert_eq!(
            line.as_str(),
            "rtos-at: ch=1 in=7 out=17 cmds=1 dropped=0 faults=2"
        );
    }

    /// Our own answers echoed back by a tty are not commands: no answer, no loop.
    #[test]
    fn echoed_answers_are_ignored() {
        let (mut t, mut rx, mut tx) = port();
        let mut bufs = give(&t, &mut rx, 4, 64);
        tx.add(pool(&t), b"OK\r\nERROR\r\n+CSQ: 31,99\r\n", 24, false);
        t.serve(1 << TX);
        assert_eq!(received(&t, &mut rx, &mut bufs), "");
        assert_eq!(t.device().counters().commands, 0);
    }

    /// A command split over several transmit buffers is one line.
    #[test]
    fn split_command() {
        let (mut t, mut rx, mut tx) = port();
        let mut bufs = give(&t, &mut rx, 2, 64);
        for part in [&b"AT+"[..], b"CG", b"MI\r\n"] {
            tx.add(pool(&t), part, part.len() as u32, false);
        }
        t.serve(1 << TX);
        assert_eq!(received(&t, &mut rx, &mut bufs), "Tandem\r\nOK\r\n");
    }

    /// With no receive buffer the answer waits, and goes out, split over small buffers, when
    /// Linux gives some.
    #[test]
    fn output_waits_for_buffers() {
        let (mut t, mut rx, mut tx) = port();
        tx.add(pool(&t), b"AT+STATS\r", 9, false);
        t.serve(1 << TX);
        assert!(rx.used(pool(&t)).is_empty());
        let mut bufs = give(&t, &mut rx, 8, 8);
        assert_eq!(t.serve(1 << RX), INT_USED_BUFFER);
        assert_eq!(
            received(&t, &mut rx, &mut bufs),
            "rtos-stats: periods=1 misses=0\r\nOK\r\n"
        );
        assert_eq!(t.device().counters().bytes_out, 36);
    }

    /// A long input chain is read whole (in chunks); answers beyond the output buffer are
    /// counted as dropped, never written past it.
    #[test]
    fn flood() {
        let (mut t, mut _rx, mut tx) = port();
        let lots = b"AT\r".repeat(1000);
        tx.add(pool(&t), &lots, lots.len() as u32, false);
        t.serve(1 << TX);
        let c = t.device().counters();
        assert_eq!((c.bytes_in, c.commands), (3000, 1000));
        assert_eq!(c.dropped, 4 * 1000 - OUT_MAX as u64);
        // Reset forgets pending output.
        t.write(reg::STATUS, 4, 0);
        assert_eq!(t.device().out.len, 0);
    }
}
