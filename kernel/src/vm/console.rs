//! A VM's console: output gathered into lines (so VMs' output never
//! interleaves mid-line on the shared UART), and an input queue.
//!
//! A line gathered here is sanitised ([`Sanitizer`]) on the way in: nothing
//! but the focused VM's interactive stream reaches the terminal with control
//! bytes, so no VM can forge another VM's tag or a Tandem log line, move the
//! cursor or restyle the terminal.
#![forbid(unsafe_code)]

use core::fmt;

/// Longest output line kept before it is flushed anyway.
pub const LINE_MAX: usize = 200;
/// Input bytes buffered for the guest.
pub const INPUT_MAX: usize = 256;

/// Makes guest text safe for the shared terminal (docs/design.md,
/// "Console"). What passes: printable ASCII, tab, and well-formed UTF-8
/// of any character but a C1 control. C0 controls (ESC among them) and DEL
/// become caret notation (ESC is `^[`, DEL `^?`); C1 controls (U+0080 to
/// U+009F, which some terminals obey like ESC sequences) and malformed
/// UTF-8 become `?`. Newlines and carriage returns are the line gatherer's
/// business ([`VmConsole::write`]) and never get here.
///
/// A UTF-8 sequence may span calls (guests write a few bytes at a time):
/// its first bytes wait here until it is complete or proves malformed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sanitizer {
    /// The unfinished UTF-8 sequence.
    seq: [u8; 4],
    /// Its bytes so far.
    len: u8,
    /// Its length when complete.
    need: u8,
}

impl Sanitizer {
    /// Takes byte `b`; gives `out` what may be shown for it (nothing while a
    /// UTF-8 sequence is unfinished; at most 4 bytes at a time).
    pub fn feed(&mut self, b: u8, out: &mut impl FnMut(&[u8])) {
        if self.need > 0 {
            let (lo, hi) = match (self.len, self.seq[0]) {
                // The second byte's range excludes overlong forms, surrogates
                // and code points past U+10FFFF (Unicode, table 3-7).
                (1, 0xe0) => (0xa0, 0xbf),
                (1, 0xed) => (0x80, 0x9f),
                (1, 0xf0) => (0x90, 0xbf),
                (1, 0xf4) => (0x80, 0x8f),
                _ => (0x80, 0xbf),
            };
            if !(lo..=hi).contains(&b) {
                // Malformed: one `?` for the sequence so far, then `b` afresh.
                self.need = 0;
                out(b"?");
                return self.feed(b, out);
            }
            self.seq[usize::from(self.len)] = b;
            self.len += 1;
            if self.len == self.need {
                self.need = 0;
                let n = usize::from(self.len);
                if self.seq[0] == 0xc2 && self.seq[1] < 0xa0 {
                    out(b"?"); // a C1 control
                } else {
                    out(&self.seq[..n]);
                }
            }
            return;
        }
        match b {
            b'\t' | 0x20..=0x7e => out(&[b]),
            0x00..=0x1f => out(&[b'^', b + 0x40]),
            0x7f => out(b"^?"),
            0xc2..=0xf4 => {
                self.seq[0] = b;
                self.len = 1;
                self.need = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
            }
            _ => out(b"?"), // a stray continuation byte, or never valid
        }
    }

    /// Ends the text: an unfinished sequence is shown as `?`.
    pub fn finish(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.need > 0 {
            self.need = 0;
            out(b"?");
        }
    }
}

/// Guest text shown inside one of Tandem's own lines (a crash reason the
/// guest gave): sanitised as [`Sanitizer`] does, with line breaks and tabs
/// as spaces, so it cannot end Tandem's line and start a forged one.
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = Sanitizer::default();
        let mut result = Ok(());
        let mut out = |piece: &[u8]| {
            if result.is_ok() {
                result = f.write_str(core::str::from_utf8(piece).unwrap_or("?"));
            }
        };
        for &b in self.0 {
            match b {
                b'\n' | b'\r' | b'\t' => s.feed(b' ', &mut out),
                _ => s.feed(b, &mut out),
            }
        }
        s.finish(&mut out);
        result
    }
}

/// Console state of one VM.
#[derive(Debug)]
pub struct VmConsole {
    line: [u8; LINE_MAX],
    line_len: usize,
    /// The line's text so far is sanitised; this holds what is still open.
    sanitizer: Sanitizer,
    input: [u8; INPUT_MAX],
    in_head: usize,
    in_len: usize,
}

impl Default for VmConsole {
    fn default() -> Self {
        Self {
            line: [0; LINE_MAX],
            line_len: 0,
            sanitizer: Sanitizer::default(),
            input: [0; INPUT_MAX],
            in_head: 0,
            in_len: 0,
        }
    }
}

impl VmConsole {
    /// Takes guest output; `emit` is called with each complete line (without
    /// the newline), sanitised ([`Sanitizer`]). Carriage returns are dropped.
    /// Returns the bytes accepted (always all of them).
    pub fn write(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) -> usize {
        let Self {
            line,
            line_len,
            sanitizer,
            ..
        } = self;
        // Appends a sanitised piece, flushing a full line first (a line is
        // split between characters, never inside one); `end` ends the line.
        let mut put = |piece: &[u8], end: bool| {
            if end || *line_len + piece.len() > LINE_MAX {
                emit(&line[..*line_len]);
                *line_len = 0;
            }
            line[*line_len..*line_len + piece.len()].copy_from_slice(piece);
            *line_len += piece.len();
        };
        for &b in bytes {
            match b {
                b'\n' => {
                    sanitizer.finish(&mut |p| put(p, false));
                    put(&[], true);
                }
                b'\r' => {}
                _ => sanitizer.feed(b, &mut |p| put(p, false)),
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

    /// Input bytes waiting for the guest.
    pub fn input_len(&self) -> usize {
        self.in_len
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

    fn sanitised(chunks: &[&[u8]]) -> std::string::String {
        let mut c = VmConsole::default();
        let mut got = Vec::new();
        for chunk in chunks {
            c.write(chunk, |l| got.extend_from_slice(l));
        }
        c.write(b"\n", |l| got.extend_from_slice(l));
        std::string::String::from_utf8(got).expect("sanitised lines are UTF-8")
    }

    /// Control bytes become visible text: C0 and DEL in caret notation, C1
    /// controls and malformed UTF-8 as `?`; tabs and well-formed UTF-8 pass.
    #[test]
    fn controls_are_shown_not_obeyed() {
        assert_eq!(
            sanitised(&[b"\x1b[31mred\x1b[0m\x07\x08\x00\x7f\tok"]),
            "^[[31mred^[[0m^G^H^@^?\tok"
        );
        assert_eq!(sanitised(&["é € 😀".as_bytes()]), "é € 😀");
        // C1 CSI raw and as UTF-8; the next printable character survives.
        assert_eq!(sanitised(&[b"a\x9bb\xc2\x9bc\xc2\xa0d"]), "a?b?c\u{a0}d");
        // Overlong, surrogate, past U+10FFFF, never-valid bytes.
        assert_eq!(
            sanitised(&[b"\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xff"]),
            "??|???|????|?"
        );
        // A sequence cut short by another character, or by the line's end.
        assert_eq!(sanitised(&[b"\xe2\x82x\xe2\x82"]), "?x?");
    }

    /// A character split across writes (guests write a few bytes at a time)
    /// is whole; a long line is split between characters, never inside one.
    #[test]
    fn utf8_across_writes_and_splits() {
        assert_eq!(sanitised(&[b"\xe2", b"\x82", b"\xac!"]), "€!");
        let mut c = VmConsole::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut text = vec![b'x'; LINE_MAX - 1];
        text.extend_from_slice("€".as_bytes());
        c.write(&text, |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![vec![b'x'; LINE_MAX - 1]]);
        assert_eq!(c.partial_line(), "€".as_bytes());
    }

    /// Guest text inside a Tandem line cannot break it.
    #[test]
    fn printable() {
        let text = std::format!("{}", Printable(b"oops\n[ 1.0] cpu0 INFO  x\x1b[2J\xff"));
        assert_eq!(text, "oops [ 1.0] cpu0 INFO  x^[[2J?");
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
