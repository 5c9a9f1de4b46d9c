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
