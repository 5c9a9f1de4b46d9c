//! The console switch and Tandem's own monitor.
//!
//! Console input goes to one target at a time: a VM, or Tandem's monitor.
//! `Ctrl-]` moves input to the next target (VMs in order, then Tandem). The
//! monitor reads a line and runs a command on VMs (`help`, `vms`, `reset`,
//! `stop`, `start`). Pure: the caller applies the decisions.
#![forbid(unsafe_code)]

/// The byte that switches console input (Ctrl-]).
pub const SWITCH_KEY: u8 = 0x1d;
/// Longest monitor command line.
pub const LINE_MAX: usize = 64;

/// Where console input goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// VM by index in the VM list.
    Vm(usize),
    /// Tandem's monitor.
    Monitor,
}

impl Focus {
    /// The next target after this one, given `vms` VMs.
    pub fn next(self, vms: usize) -> Focus {
        match self {
            Focus::Vm(i) if i + 1 < vms => Focus::Vm(i + 1),
            Focus::Vm(_) => Focus::Monitor,
            Focus::Monitor if vms > 0 => Focus::Vm(0),
            Focus::Monitor => Focus::Monitor,
        }
    }
}

/// A monitor command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// List commands.
    Help,
    /// List VMs with state and counters.
    Vms,
    /// Restart a VM from its pristine image.
    Reset(&'a str),
    /// Stop a VM.
    Stop(&'a str),
    /// Nothing typed.
    Empty,
    /// Not understood.
    Unknown(&'a str),
}

/// Parses one command line.
pub fn parse(line: &str) -> Command<'_> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (None, _, _) => Command::Empty,
        (Some("help" | "?"), None, _) => Command::Help,
        (Some("vms"), None, _) => Command::Vms,
        (Some("reset"), Some(vm), None) => Command::Reset(vm),
        (Some("stop"), Some(vm), None) => Command::Stop(vm),
        _ => Command::Unknown(line.trim()),
    }
}

/// The monitor's help text.
pub const HELP: &str =
    "commands: vms | reset <vm> | stop <vm> | help   (Ctrl-] switches console input)";

/// What one input byte means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Switch focus to the next target.
    Switch,
    /// Deliver the byte to the focused VM.
    ToVm(u8),
    /// The monitor echoes this byte.
    Echo(u8),
    /// The monitor erased a character.
    Erase,
    /// The monitor has a complete line (see [`LineEditor::line`]).
    Line,
    /// Ignored.
    None,
}

/// The monitor's line editor.
#[derive(Debug)]
pub struct LineEditor {
    buf: [u8; LINE_MAX],
    len: usize,
    done: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
            done: false,
        }
    }
}

impl LineEditor {
    /// Feeds one byte typed while the monitor has the focus.
    pub fn feed(&mut self, b: u8) -> Input {
        if self.done {
            self.len = 0;
            self.done = false;
        }
        match b {
            SWITCH_KEY => Input::Switch,
            b'\r' | b'\n' => {
                self.done = true;
                Input::Line
            }
            0x7f | 0x08 => {
                if self.len > 0 {
                    self.len -= 1;
                    Input::Erase
                } else {
                    Input::None
                }
            }
            0x20..=0x7e if self.len < LINE_MAX => {
                self.buf[self.len] = b;
                self.len += 1;
                Input::Echo(b)
            }
            _ => Input::None,
        }
    }

    /// The completed line.
    pub fn line(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Classifies a byte typed while a VM has the focus.
pub fn vm_input(b: u8) -> Input {
    if b == SWITCH_KEY {
        Input::Switch
    } else {
        Input::ToVm(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Focus cycles through the VMs, then the monitor, then back.
    #[test]
    fn focus_cycles() {
        let f = Focus::Vm(0);
        assert_eq!(f.next(2), Focus::Vm(1));
        assert_eq!(f.next(2).next(2), Focus::Monitor);
        assert_eq!(Focus::Monitor.next(2), Focus::Vm(0));
        assert_eq!(Focus::Monitor.next(0), Focus::Monitor);
    }

    /// Commands parse with their arguments; anything else is unknown.
    #[test]
    fn commands() {
        assert_eq!(parse(" vms "), Command::Vms);
        assert_eq!(parse("reset linux"), Command::Reset("linux"));
        assert_eq!(parse("stop rtos"), Command::Stop("rtos"));
        assert_eq!(parse(""), Command::Empty);
        assert_eq!(parse("reset"), Command::Unknown("reset"));
        assert_eq!(parse("format c:"), Command::Unknown("format c:"));
    }

    /// The editor builds a line, handles backspace, and starts afresh after Enter.
    #[test]
    fn editing() {
        let mut e = LineEditor::default();
        for b in b"vmx" {
            e.feed(*b);
        }
        assert_eq!(e.feed(0x7f), Input::Erase);
        e.feed(b's');
        assert_eq!(e.feed(b'\r'), Input::Line);
        assert_eq!(e.line(), "vms");
        e.feed(b'h');
        assert_eq!(e.line(), "h");
        assert_eq!(e.feed(SWITCH_KEY), Input::Switch);
    }

    /// Ctrl-] switches from a VM; everything else goes to the VM.
    #[test]
    fn vm_bytes() {
        assert_eq!(vm_input(SWITCH_KEY), Input::Switch);
        assert_eq!(vm_input(3), Input::ToVm(3));
    }
}
