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
    /// List VMs with state, placement and counters, and their vCPUs.
    Vms,
    /// Restart a VM from its pristine image (`reset` or `restart`).
    Reset(&'a str),
    /// Stop a VM for good (until `start`).
    Stop(&'a str),
    /// Start a stopped VM from its pristine image.
    Start(&'a str),
    /// Pause a running VM: its vCPUs stop running, its memory stays.
    Pause(&'a str),
    /// Resume a paused VM where it stopped.
    Resume(&'a str),
    /// Nothing typed.
    Empty,
    /// Not understood: what to say about it.
    Error(CommandError<'a>),
}

/// Why a command line is not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// No such command.
    Unknown(&'a str),
    /// The command `.0` needs a VM name.
    MissingVm(&'a str),
    /// The command `.0` got words it does not take, from `.1` on.
    TooMany(&'a str, &'a str),
}

impl core::fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unknown(w) => write!(f, "unknown command '{w}'"),
            Self::MissingVm(c) => write!(f, "'{c}' needs a VM name: {c} <vm>"),
            Self::TooMany(c, extra) => write!(f, "'{c}' takes no more than it got: '{extra}'"),
        }
    }
}

/// Parses one command line.
pub fn parse(line: &str) -> Command<'_> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Command::Empty;
    };
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Command::Error(CommandError::TooMany(cmd, extra));
    }
    match (cmd, arg) {
        ("reset" | "restart", Some(vm)) => Command::Reset(vm),
        ("stop", Some(vm)) => Command::Stop(vm),
        ("start", Some(vm)) => Command::Start(vm),
        ("pause", Some(vm)) => Command::Pause(vm),
        ("resume", Some(vm)) => Command::Resume(vm),
        ("reset" | "restart" | "stop" | "start" | "pause" | "resume", None) => {
            Command::Error(CommandError::MissingVm(cmd))
        }
        ("help" | "?", None) => Command::Help,
        ("vms", None) => Command::Vms,
        ("help" | "?" | "vms", Some(extra)) => Command::Error(CommandError::TooMany(cmd, extra)),
        _ => Command::Error(CommandError::Unknown(cmd)),
    }
}

/// The monitor's help text.
pub const HELP: &str = "commands: vms | reset|restart <vm> | stop <vm> | start <vm> | pause <vm> | resume <vm> | help   (Ctrl-] switches console input)";

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

    /// Commands parse with their arguments; mistakes get a specific error.
    #[test]
    fn commands() {
        assert_eq!(parse(" vms "), Command::Vms);
        assert_eq!(parse("reset linux"), Command::Reset("linux"));
        assert_eq!(parse("restart linux"), Command::Reset("linux"));
        assert_eq!(parse("stop rtos"), Command::Stop("rtos"));
        assert_eq!(parse("start rtos"), Command::Start("rtos"));
        assert_eq!(parse("pause linux"), Command::Pause("linux"));
        assert_eq!(parse("resume linux"), Command::Resume("linux"));
        assert_eq!(parse(""), Command::Empty);
        assert_eq!(parse("?"), Command::Help);
    }

    /// Bad input says what is wrong.
    #[test]
    fn command_errors() {
        let err = |line| match parse(line) {
            Command::Error(e) => std::format!("{e}"),
            other => panic!("{line:?} parsed as {other:?}"),
        };
        assert_eq!(err("reset"), "'reset' needs a VM name: reset <vm>");
        assert_eq!(err("pause a b"), "'pause' takes no more than it got: 'b'");
        assert_eq!(err("vms now"), "'vms' takes no more than it got: 'now'");
        assert_eq!(err("format c:"), "unknown command 'format'");
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
