//! A fixed-capacity text buffer: build a console line with `write!` and no allocator.
//!
//! Output that does not fit is dropped (and [`LineBuf::truncated`] says so) rather than
//! failing the whole line: a statistics line cut short is still more useful than none.
#![forbid(unsafe_code)]

use core::fmt;

/// A text buffer of at most `N` bytes.
#[derive(Clone)]
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text written so far (always valid UTF-8: truncation happens at char boundaries).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Whether some output did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl<const N: usize> fmt::Write for LineBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    /// Formatted output lands in the buffer.
    #[test]
    fn writes_formatted_text() {
        let mut b = LineBuf::<32>::new();
        write!(b, "x={} y={}", 1, 2.5).unwrap();
        assert_eq!(b.as_str(), "x=1 y=2.5");
        assert!(!b.truncated());
    }

    /// Overflow truncates at a char boundary and is flagged.
    #[test]
    fn overflow_truncates_on_char_boundary() {
        let mut b = LineBuf::<4>::new();
        write!(b, "ab\u{e9}\u{e9}").unwrap();
        assert_eq!(b.as_str(), "ab\u{e9}");
        assert!(b.truncated());
    }
}
