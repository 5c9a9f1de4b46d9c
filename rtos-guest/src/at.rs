//! The AT-command interface: a line editor for console bytes and the command interpreter.
//!
//! A handset's modem answers Hayes/3GPP TS 27.007 commands from the application processor.
//! This one knows a handful (`AT`, `ATI`, `AT+CGMI`, `AT+CGMR`, `AT+CSQ`) plus `AT+STATS`, which
//! prints the `rtos-stats:` line. Commands are case-insensitive (V.250 §5.1); a line ends with
//! CR or LF; backspace/DEL edit it; characters are echoed (V.250 `ATE1`, the default).
//! Every command ends with a final result line `OK` or `ERROR`.
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// The longest command line kept; longer lines are answered `ERROR`.
pub const LINE_MAX: usize = 80;

/// What the console should do after a byte was fed to the [`LineEditor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Nothing to show.
    Nothing,
    /// Echo this byte.
    Echo(u8),
    /// Erase the last character on screen (`"\x08 \x08"`).
    Erase,
    /// A complete line is ready: echo a line break and call [`LineEditor::take`].
    Line,
}

/// Collects console bytes into command lines.
#[derive(Clone, Debug)]
pub struct LineEditor {
    buf: [u8; LINE_MAX],
    len: usize,
    overflow: bool,
    last_was_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An empty editor.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
            overflow: false,
            last_was_cr: false,
        }
    }

    /// Feeds one input byte.
    pub fn feed(&mut self, b: u8) -> Feed {
        let was_cr = core::mem::replace(&mut self.last_was_cr, b == b'\r');
        match b {
            // CR LF is one line end, not an empty line after the first.
            b'\n' if was_cr => Feed::Nothing,
            b'\r' | b'\n' => Feed::Line,
            0x08 | 0x7F => {
                if self.len > 0 {
                    self.len -= 1;
                    Feed::Erase
                } else {
                    Feed::Nothing
                }
            }
            0x20..=0x7E => {
                if self.len < LINE_MAX {
                    self.buf[self.len] = b;
                    self.len += 1;
                } else {
                    self.overflow = true;
                }
                Feed::Echo(b)
            }
            _ => Feed::Nothing,
        }
    }

    /// Whether the line collected so far starts with the `AT` prefix (case-insensitive, after
    /// blanks). V.250 §5.2.1: a modem ignores what does not, which is also what keeps a
    /// port whose far end echoes (a tty with `echo` on) from answering its own answers.
    pub fn has_at_prefix(&self) -> bool {
        let line = self.buf[..self.len].trim_ascii_start();
        line.len() >= 2 && line[..2].eq_ignore_ascii_case(b"AT")
    }

    /// Parses the collected line and starts a new one.
    pub fn take(&mut self) -> Command {
        let cmd = if self.overflow {
            Command::Unknown
        } else {
            Command::parse(&self.buf[..self.len])
        };
        self.len = 0;
        self.overflow = false;
        cmd
    }
}

/// A recognised command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// An empty line: no answer at all.
    Empty,
    /// `AT`: attention, answers `OK`.
    At,
    /// `ATI`: identification.
    Info,
    /// `AT+CGMI`: manufacturer.
    Manufacturer,
    /// `AT+CGMR`: revision.
    Revision,
    /// `AT+CSQ`: signal quality (`+CSQ: <rssi>,<ber>`).
    SignalQuality,
    /// `AT+STATS`: the `rtos-stats:` line.
    Stats,
    /// Anything else: `ERROR`.
    Unknown,
}

impl Command {
    /// Recognises a command line (surrounding blanks ignored, case-insensitive).
    pub fn parse(line: &[u8]) -> Command {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Command::Empty;
        }
        let mut upper = [0u8; LINE_MAX];
        let n = line.len().min(LINE_MAX);
        for (u, &b) in upper.iter_mut().zip(&line[..n]) {
            *u = b.to_ascii_uppercase();
        }
        match &upper[..n] {
            b"AT" => Command::At,
            b"ATI" => Command::Info,
            b"AT+CGMI" => Command::Manufacturer,
            b"AT+CGMR" => Command::Revision,
            b"AT+CSQ" => Command::SignalQuality,
            b"AT+STATS" => Command::Stats,
            _ => Command::Unknown,
        }
    }
}

/// What the interpreter needs from the rest of the modem.
pub trait Modem {
    /// Writes the `rtos-stats:` line (no line ending).
    fn stats_line(&self, w: &mut dyn Write) -> fmt::Result;
    /// Signal quality as `(rssi 0..=31 or 99, ber 0..=7 or 99)`.
    fn signal_quality(&self) -> (u8, u8);
    /// Where it runs (`native` or `tandem`).
    fn platform(&self) -> &'static str;
}

/// The firmware revision reported by `AT+CGMR` and `ATI`.
pub const REVISION: &str = concat!("rtos-guest ", env!("CARGO_PKG_VERSION"));

/// Writes the answer to `cmd`, each line ending in CR LF, the last being `OK` or `ERROR`.
pub fn respond(cmd: Command, modem: &dyn Modem, w: &mut dyn Write) -> fmt::Result {
    match cmd {
        Command::Empty => return Ok(()),
        Command::At => {}
        Command::Info => write!(
            w,
            "Tandem RTOS modem ({}, {})\r\n",
            REVISION,
            modem.platform()
        )?,
        Command::Manufacturer => w.write_str("Tandem\r\n")?,
        Command::Revision => write!(w, "{REVISION}\r\n")?,
        Command::SignalQuality => {
            let (rssi, ber) = modem.signal_quality();
            write!(w, "+CSQ: {rssi},{ber}\r\n")?;
        }
        Command::Stats => {
            modem.stats_line(w)?;
            w.write_str("\r\n")?;
        }
        Command::Unknown => return w.write_str("ERROR\r\n"),
    }
    w.write_str("OK\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::LineBuf;

    struct Fake;
    impl Modem for Fake {
        fn stats_line(&self, w: &mut dyn Write) -> fmt::Result {
            w.write_str("rtos-stats: periods=1 misses=0")
        }
        fn signal_quality(&self) -> (u8, u8) {
            (21, 99)
        }
        fn platform(&self) -> &'static str {
            "native"
        }
    }

    fn answer(line: &str) -> LineBuf<256> {
        let mut out = LineBuf::new();
        respond(Command::parse(line.as_bytes()), &Fake, &mut out).unwrap();
        out
    }

    /// The known commands parse, case-insensitively and with blanks around them.
    #[test]
    fn parses_known_commands() {
        let cases = [
            ("AT", Command::At),
            ("ati", Command::Info),
            (" At+CgMi ", Command::Manufacturer),
            ("AT+CGMR", Command::Revision),
            ("AT+CSQ", Command::SignalQuality),
            ("at+stats", Command::Stats),
            ("", Command::Empty),
            ("AT+FOO", Command::Unknown),
            ("ATZ", Command::Unknown),
        ];
        for (line, cmd) in cases {
            assert_eq!(Command::parse(line.as_bytes()), cmd, "{line:?}");
        }
    }

    /// `AT` answers just `OK`; an unknown command just `ERROR`.
    #[test]
    fn final_result_codes() {
        assert_eq!(answer("AT").as_str(), "OK\r\n");
        assert_eq!(answer("AT+NOPE").as_str(), "ERROR\r\n");
        assert_eq!(answer("").as_str(), "");
    }

    /// `AT+STATS` prints the statistics line, then `OK`.
    #[test]
    fn stats_prints_the_line() {
        assert_eq!(
            answer("AT+STATS").as_str(),
            "rtos-stats: periods=1 misses=0\r\nOK\r\n"
        );
    }

    /// `AT+CSQ` reports rssi and ber in the 27.007 format.
    #[test]
    fn csq_format() {
        assert_eq!(answer("AT+CSQ").as_str(), "+CSQ: 21,99\r\nOK\r\n");
    }

    /// Bytes become a line at CR; CR LF counts once; the line is echoed.
    #[test]
    fn editor_collects_a_line() {
        let mut e = LineEditor::new();
        let feeds: [Feed; 2] = [e.feed(b'A'), e.feed(b'T')];
        assert_eq!(feeds, [Feed::Echo(b'A'), Feed::Echo(b'T')]);
        assert_eq!(e.feed(b'\r'), Feed::Line);
        assert_eq!(e.take(), Command::At);
        assert_eq!(e.feed(b'\n'), Feed::Nothing);
        assert_eq!(e.take(), Command::Empty);
    }

    /// Backspace removes the last character.
    #[test]
    fn editor_backspace() {
        let mut e = LineEditor::new();
        for &b in b"ATX" {
            e.feed(b);
        }
        assert_eq!(e.feed(0x7F), Feed::Erase);
        e.feed(b'I');
        e.feed(b'\n');
        assert_eq!(e.take(), Command::Info);
        assert_eq!(e.feed(0x08), Feed::Nothing);
    }

    /// Only lines starting with `AT` have the command prefix.
    #[test]
    fn editor_at_prefix() {
        let mut e = LineEditor::new();
        for (line, prefixed) in [
            ("  at+csq", true),
            ("AT", true),
            ("OK", false),
            ("A", false),
        ] {
            for &b in line.as_bytes() {
                e.feed(b);
            }
            assert_eq!(e.has_at_prefix(), prefixed, "{line:?}");
            e.take();
        }
    }

    /// A line longer than the buffer is an error, not a truncated command.
    #[test]
    fn editor_overflow_is_error() {
        let mut e = LineEditor::new();
        e.feed(b'A');
        e.feed(b'T');
        for _ in 0..LINE_MAX {
            e.feed(b' ');
        }
        e.feed(b'\r');
        assert_eq!(e.take(), Command::Unknown);
    }
}
