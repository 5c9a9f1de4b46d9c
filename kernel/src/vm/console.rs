//! A VM's console: output gathered into lines (so VMs' output never
//! interleaves mid-line on the shared UART), and an input queue.
#![forbid(unsafe_code)]

/// Longest output line kept before it is flushed anyway.
pub const LINE_MAX: usize = 200;
/// Input bytes buffered for the guest.
pub const INPUT_MAX: usize = 256;

/// Console state of one VM.
#[derive(Debug)]
pub struct VmConsole {
    line: [u8; LINE_MAX],
    line_len: usize,
    input: [u8; INPUT_MAX],
    in_head: usize,
    in_len: usize,
}

impl Default for VmConsole {
    fn default() -> Self {
        Self {
            line: [0; LINE_MAX],
            line_len: 0,
            input: [0; INPUT_MAX],
            in_head: 0,
            in_len: 0,
        }
    }
}

impl VmConsole {
    /// Takes guest output; `emit` is called with each complete line (without the newline).
    /// Carriage returns are dropped. Returns the bytes accepted (always all of them).
    pub fn write(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) -> usize {
        for &b in bytes {
            match b {
                b'\n' => {
                    emit(&self.line[..self.line_len]);
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => {
                    if self.line_len == LINE_MAX {
                        emit(&self.line[..self.line_len]);
                        self.line_len = 0;
                    }
                    self.line[self.line_len] = b;
                    self.line_len += 1;
                }
            }
        }
        bytes.len()
    }

    /// Output waiting for its newline.
    pub fn partial_line(&self) -> &[u8] {
        &self.line[..self.line_len]
    }

    /// Queues input for the guest; returns how many bytes fit.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let mut n = 0;
        for &b in bytes {
            if self.in_len == INPUT_MAX {
                break;
            }
            self.input[(self.in_head + self.in_len) % INPUT_MAX] = b;
            self.in_len += 1;
            n += 1;
        }
        n
    }

    /// Gives queued input to the guest.
    pub fn read_input(&mut self, out: &mut [u8]) -> usize {
        let n = self.in_len.min(out.len());
        for o in out.iter_mut().take(n) {
            *o = self.input[self.in_head];
            self.in_head = (self.in_head + 1) % INPUT_MAX;
        }
        self.in_len -= n;
        n
    }
}

/// The shared terminal: who has an unfinished line on it.
///
/// The VM with the console focus streams its output unbuffered (a shell
/// prompt must show before its newline); other VMs print whole lines. Any
/// line that interrupts another's unfinished one starts on a fresh line, and
/// every line starts with its owner's tag.
#[derive(Debug, Default)]
pub struct Terminal {
    /// Owner (VM id; 0 is Tandem) of the unfinished line, if any.
    pub open: Option<u32>,
}

impl Terminal {
    /// Streams `bytes` from `owner`, tagging each line it starts.
    pub fn stream(&mut self, owner: u32, tag: &[u8], bytes: &[u8], out: &mut impl FnMut(&[u8])) {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (text, newline) = match piece.split_last() {
                Some((b'\n', rest)) => (rest, true),
                _ => (piece, false),
            };
            // "\r\n" ends a line like "\n" does.
            let text = if newline {
                text.strip_suffix(b"\r").unwrap_or(text)
            } else {
                text
            };
            if text.is_empty() && !newline {
                continue;
            }
            if self.open != Some(owner) {
                self.break_line(out);
                out(tag);
            }
            out(text);
            if newline {
                out(b"\n");
                self.open = None;
            } else {
                self.open = Some(owner);
            }
        }
    }

    /// Prints one whole line from `owner` with its tag.
    pub fn line(&mut self, tag: &[u8], line: &[u8], out: &mut impl FnMut(&[u8])) {
        self.break_line(out);
        out(tag);
        out(line);
        out(b"\n");
    }

    /// Ends an unfinished line so that new output starts on its own line.
    pub fn break_line(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.open.take().is_some() {
            out(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Lines are emitted whole, across writes, without CR.
    #[test]
    fn lines() {
        let mut c = VmConsole::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        c.write(b"hel", |l| got.push(l.to_vec()));
        c.write(b"lo\r\nwor", |l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"hello".to_vec()]);
        assert_eq!(c.partial_line(), b"wor");
    }

    /// An over-long line is split rather than dropped.
    #[test]
    fn long_line() {
        let mut c = VmConsole::default();
        let mut n = 0;
        c.write(&[b'x'; LINE_MAX + 5], |l| n += l.len());
        assert_eq!(n, LINE_MAX);
        assert_eq!(c.partial_line().len(), 5);
    }

    fn run(
        t: &mut Terminal,
        f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8])),
    ) -> std::string::String {
        let mut out = Vec::new();
        f(t, &mut |b: &[u8]| out.extend_from_slice(b));
        std::string::String::from_utf8(out).unwrap()
    }

    /// A prompt without a newline shows at once; the next line of another VM breaks it cleanly.
    #[test]
    fn stream_and_interleave() {
        let mut t = Terminal::default();
        assert_eq!(
            run(&mut t, |t, o| t.stream(
                1,
                b"linux | ",
                b"hello\r\n# ",
                &mut |b| o(b)
            )),
            "linux | hello\nlinux | # "
        );
        assert_eq!(t.open, Some(1));
        assert_eq!(
            run(&mut t, |t, o| t.line(b" rtos | ", b"stats", &mut |b| o(b))),
            "\n rtos | stats\n"
        );
        assert_eq!(
            run(&mut t, |t, o| t.stream(
                1,
                b"linux | ",
                b"ls\n",
                &mut |b| o(b)
            )),
            "linux | ls\n"
        );
        assert_eq!(t.open, None);
    }

    /// Continuing one's own open line adds no tag.
    #[test]
    fn continue_own_line() {
        let mut t = Terminal::default();
        let a = run(&mut t, |t, o| t.stream(2, b"x | ", b"ab", &mut |b| o(b)));
        let b = run(&mut t, |t, o| t.stream(2, b"x | ", b"c\n", &mut |b| o(b)));
        assert_eq!(a + &b, "x | abc\n");
    }

    /// Input is FIFO and bounded.
    #[test]
    fn input() {
        let mut c = VmConsole::default();
        assert_eq!(c.push_input(&[1; INPUT_MAX + 3]), INPUT_MAX);
        let mut buf = [0u8; 16];
        assert_eq!(c.read_input(&mut buf), 16);
        assert_eq!(c.push_input(b"ab"), 2);
        let mut rest = [0u8; 512];
        assert_eq!(c.read_input(&mut rest), INPUT_MAX - 16 + 2);
        assert_eq!(&rest[INPUT_MAX - 16..INPUT_MAX - 14], b"ab");
    }
}
