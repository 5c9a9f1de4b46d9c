//! Console byte packing: how `CONSOLE_WRITE` and `CONSOLE_READ` carry bytes in registers.
//!
//! Byte `i` of a message travels in register `x(first + i / 8)`, bits
//! `[8 * (i % 8) + 7 : 8 * (i % 8)]`: each register holds eight bytes, little-endian, so a
//! little-endian guest can load them with a plain 64-bit read. `CONSOLE_WRITE` uses `x2..x7`
//! ([`CONSOLE_WRITE_MAX`] = 48 bytes), the `CONSOLE_READ` reply uses `x2..x3`
//! ([`CONSOLE_READ_MAX`] = 16 bytes). Bytes past the message length must be zero when sent and
//! are ignored when received.

use crate::{HvcRet, Status};

/// Maximum bytes one `CONSOLE_WRITE` carries (`x2..x7`).
///
/// ```
/// use pv_abi::{CONSOLE_WRITE_MAX, ConsoleChunk};
///
/// assert_eq!(CONSOLE_WRITE_MAX, 48);
/// assert!(ConsoleChunk::new(&[b'x'; CONSOLE_WRITE_MAX + 1]).is_none());
/// ```
pub const CONSOLE_WRITE_MAX: usize = 48;
/// Maximum bytes one `CONSOLE_READ` reply carries (`x2..x3`).
///
/// ```
/// let mut buf = [0u8; pv_abi::CONSOLE_READ_MAX]; // one CONSOLE_READ reply fits
/// assert_eq!(buf.len(), 16);
/// # let _ = &mut buf;
/// ```
pub const CONSOLE_READ_MAX: usize = 16;

/// Registers used by a `CONSOLE_WRITE` payload.
///
/// ```
/// use pv_abi::console::CONSOLE_WRITE_REGS;
///
/// let (regs, _) = pv_abi::pack_bytes(b"hi");
/// assert_eq!(regs.len(), CONSOLE_WRITE_REGS); // x2..x7
/// ```
pub const CONSOLE_WRITE_REGS: usize = CONSOLE_WRITE_MAX / 8;
/// Registers used by a `CONSOLE_READ` reply payload.
///
/// ```
/// assert_eq!(pv_abi::console::CONSOLE_READ_REGS, 2); // x2..x3
/// ```
pub const CONSOLE_READ_REGS: usize = CONSOLE_READ_MAX / 8;

/// Packs up to 48 bytes into six registers (`x2..x7` order) and returns how many were packed.
///
/// Bytes beyond the 48th are left for the next call; unused register bytes are zero.
///
/// ```
/// let (regs, n) = pv_abi::pack_bytes(b"hello");
/// assert_eq!(n, 5);
/// assert_eq!(regs[0], 0x6f_6c_6c_65_68); // 'h' in the lowest byte
/// assert_eq!(regs[1..], [0; 5]);
/// ```
pub fn pack_bytes(bytes: &[u8]) -> ([u64; CONSOLE_WRITE_REGS], usize) {
    let mut regs = [0u64; CONSOLE_WRITE_REGS];
    let n = pack_into(&mut regs, bytes);
    (regs, n)
}

/// Packs as many of `bytes` as fit into `regs` and returns how many were packed.
///
/// ```
/// let mut regs = [0u64; 2];
/// assert_eq!(pv_abi::console::pack_into(&mut regs, b"0123456789abcdefXYZ"), 16);
/// assert_eq!(regs[1] & 0xff, u64::from(b'8'));
/// ```
pub fn pack_into(regs: &mut [u64], bytes: &[u8]) -> usize {
    let n = bytes.len().min(regs.len() * 8);
    regs.fill(0);
    for (i, &b) in bytes[..n].iter().enumerate() {
        regs[i / 8] |= u64::from(b) << (8 * (i % 8));
    }
    n
}

/// Unpacks bytes from registers into `out` and returns how many were written:
/// `min(out.len(), regs.len() * 8)`. Pass `&mut out[..len]` to take exactly `len` bytes.
///
/// ```
/// let (regs, n) = pv_abi::pack_bytes(b"tandem");
/// let mut out = [0u8; 6];
/// assert_eq!(pv_abi::unpack_bytes(&regs, &mut out[..n]), 6);
/// assert_eq!(&out, b"tandem");
/// ```
pub fn unpack_bytes(regs: &[u64], out: &mut [u8]) -> usize {
    let n = out.len().min(regs.len() * 8);
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = (regs[i / 8] >> (8 * (i % 8))) as u8;
    }
    n
}

/// A validated `CONSOLE_WRITE` payload: at most [`CONSOLE_WRITE_MAX`] bytes.
///
/// ```
/// use pv_abi::ConsoleChunk;
///
/// let chunk = ConsoleChunk::new(b"hello\n").unwrap();
/// assert_eq!((chunk.as_bytes(), chunk.len()), (&b"hello\n"[..], 6));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsoleChunk {
    // Invariant: `len <= CONSOLE_WRITE_MAX` and `bytes[len..]` is all zero, so the derived
    // equality compares exactly the payload.
    len: u8,
    bytes: [u8; CONSOLE_WRITE_MAX],
}

impl ConsoleChunk {
    /// An empty payload.
    ///
    /// ```
    /// assert!(pv_abi::ConsoleChunk::EMPTY.is_empty());
    /// ```
    pub const EMPTY: ConsoleChunk = ConsoleChunk {
        len: 0,
        bytes: [0; CONSOLE_WRITE_MAX],
    };

    /// Takes the first (up to) 48 bytes of `bytes`; returns the chunk and how many it took.
    ///
    /// ```
    /// let long = [b'a'; 60];
    /// let (chunk, taken) = pv_abi::ConsoleChunk::take(&long);
    /// assert_eq!((chunk.len(), taken), (48, 48)); // the other 12 go in the next call
    /// ```
    pub fn take(bytes: &[u8]) -> (Self, usize) {
        let n = bytes.len().min(CONSOLE_WRITE_MAX);
        let mut chunk = Self::EMPTY;
        chunk.bytes[..n].copy_from_slice(&bytes[..n]);
        chunk.len = n as u8;
        (chunk, n)
    }

    /// Builds a chunk from exactly `bytes`, or `None` if it is longer than 48 bytes.
    ///
    /// ```
    /// use pv_abi::ConsoleChunk;
    ///
    /// assert_eq!(ConsoleChunk::new(b"ok").map(|c| c.len()), Some(2));
    /// assert_eq!(ConsoleChunk::new(&[0; 49]), None);
    /// ```
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > CONSOLE_WRITE_MAX {
            return None;
        }
        Some(Self::take(bytes).0)
    }

    /// Decodes a payload from a length and the six registers `x2..x7`.
    ///
    /// Fails with [`Status::InvalidParameter`] if `len > 48`; bytes past `len` are ignored.
    ///
    /// ```
    /// use pv_abi::{ConsoleChunk, Status};
    ///
    /// // The hypervisor side of CONSOLE_WRITE: x1 = length, x2..x7 = bytes.
    /// let (regs, n) = pv_abi::pack_bytes(b"guest says hi");
    /// let chunk = ConsoleChunk::from_regs(n as u64, &regs).unwrap();
    /// assert_eq!(chunk.as_bytes(), b"guest says hi");
    /// assert_eq!(ConsoleChunk::from_regs(49, &regs), Err(Status::InvalidParameter));
    /// ```
    pub fn from_regs(len: u64, regs: &[u64; CONSOLE_WRITE_REGS]) -> Result<Self, Status> {
        if len > CONSOLE_WRITE_MAX as u64 {
            return Err(Status::InvalidParameter);
        }
        let mut chunk = Self::EMPTY;
        chunk.len = unpack_bytes(regs, &mut chunk.bytes[..len as usize]) as u8;
        Ok(chunk)
    }

    /// The payload in register form (`x2..x7`), unused bytes zero.
    ///
    /// ```
    /// let chunk = pv_abi::ConsoleChunk::new(b"AB").unwrap();
    /// assert_eq!(chunk.to_regs(), [0x4241, 0, 0, 0, 0, 0]);
    /// ```
    pub fn to_regs(&self) -> [u64; CONSOLE_WRITE_REGS] {
        pack_bytes(self.as_bytes()).0
    }

    /// The payload bytes.
    ///
    /// ```
    /// assert_eq!(pv_abi::ConsoleChunk::new(b"xyz").unwrap().as_bytes(), b"xyz");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Payload length in bytes (0..=48).
    ///
    /// ```
    /// assert_eq!(pv_abi::ConsoleChunk::new(b"four").unwrap().len(), 4);
    /// ```
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the payload is empty.
    ///
    /// ```
    /// assert!(pv_abi::ConsoleChunk::new(b"").unwrap().is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Debug for ConsoleChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ConsoleChunk({:?})", self.as_bytes().escape_ascii())
    }
}

/// Builds the hypervisor's `CONSOLE_READ` reply from pending input: takes up to 16 bytes and
/// returns the reply and how many bytes it consumed.
///
/// ```
/// use pv_abi::console::{parse_read_reply, read_reply};
///
/// // Hypervisor: answer CONSOLE_READ with what is pending (at most 16 bytes per reply).
/// let (ret, used) = read_reply(b"AT+CSQ\r");
/// assert_eq!(used, 7);
/// // Guest: unpack it.
/// let mut out = [0u8; 16];
/// assert_eq!(parse_read_reply(&ret, &mut out), Ok(7));
/// assert_eq!(&out[..7], b"AT+CSQ\r");
/// ```
pub fn read_reply(pending: &[u8]) -> (HvcRet, usize) {
    let mut regs = [0u64; CONSOLE_READ_REGS];
    let n = pack_into(&mut regs, pending);
    (HvcRet::success(n as u64, regs[0], regs[1]), n)
}

/// Parses a `CONSOLE_READ` reply into `out` and returns the byte count (0 = nothing pending).
///
/// A reply longer than `out` or than [`CONSOLE_READ_MAX`] is a protocol violation and is
/// reported as [`Status::NotSupported`] (no bytes are copied); error replies pass through.
///
/// ```
/// use pv_abi::console::{parse_read_reply, read_reply};
/// use pv_abi::{HvcRet, Status};
///
/// let mut out = [0u8; 16];
/// assert_eq!(parse_read_reply(&read_reply(b"").0, &mut out), Ok(0)); // nothing pending
/// assert_eq!(
///     parse_read_reply(&HvcRet::error(Status::NotSupported), &mut out),
///     Err(Status::NotSupported)
/// );
/// ```
pub fn parse_read_reply(ret: &HvcRet, out: &mut [u8]) -> Result<usize, Status> {
    let [len, x2, x3] = ret.into_result()?;
    if len > CONSOLE_READ_MAX as u64 || len > out.len() as u64 {
        return Err(Status::NotSupported);
    }
    Ok(unpack_bytes(&[x2, x3], &mut out[..len as usize]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic, non-repeating test message of `n` bytes.
    fn message(n: usize) -> [u8; CONSOLE_WRITE_MAX] {
        let mut m = [0u8; CONSOLE_WRITE_MAX];
        for (i, b) in m.iter_mut().enumerate().take(n) {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0x81);
        }
        m
    }

    /// Pack then unpack returns the original bytes for every length 0..=48.
    #[test]
    fn pack_unpack_round_trip_every_length() {
        for n in 0..=CONSOLE_WRITE_MAX {
            let msg = message(n);
            let (regs, packed) = pack_bytes(&msg[..n]);
            assert_eq!(packed, n);
            let mut out = [0u8; CONSOLE_WRITE_MAX];
            assert_eq!(unpack_bytes(&regs, &mut out[..n]), n);
            assert_eq!(out[..n], msg[..n], "length {n}");
        }
    }

    /// Packing leaves every byte past the message length zero.
    #[test]
    fn pack_zero_fills_tail() {
        for n in 0..=CONSOLE_WRITE_MAX {
            let (regs, _) = pack_bytes(&[0xff; CONSOLE_WRITE_MAX][..n]);
            let mut all = [0u8; CONSOLE_WRITE_MAX];
            unpack_bytes(&regs, &mut all);
            assert!(all[n..].iter().all(|&b| b == 0), "length {n}");
        }
    }

    /// Byte `i` lands in register `i / 8` at bit `8 * (i % 8)`, as the ABI specifies.
    #[test]
    fn byte_position_matches_spec() {
        for i in 0..CONSOLE_WRITE_MAX {
            let mut msg = [0u8; CONSOLE_WRITE_MAX];
            msg[i] = 0xa5;
            let (regs, _) = pack_bytes(&msg);
            for (r, &v) in regs.iter().enumerate() {
                let want = if r == i / 8 {
                    0xa5u64 << (8 * (i % 8))
                } else {
                    0
                };
                assert_eq!(v, want, "byte {i} register {r}");
            }
        }
    }

    /// More than 48 bytes: exactly 48 are packed.
    #[test]
    fn pack_truncates_to_48() {
        let long = [b'x'; 100];
        assert_eq!(pack_bytes(&long).1, CONSOLE_WRITE_MAX);
        assert_eq!(ConsoleChunk::take(&long).1, CONSOLE_WRITE_MAX);
        assert_eq!(ConsoleChunk::new(&long), None);
    }

    /// A chunk survives `to_regs` then `from_regs` for every length.
    #[test]
    fn chunk_register_round_trip() {
        for n in 0..=CONSOLE_WRITE_MAX {
            let msg = message(n);
            let chunk = ConsoleChunk::new(&msg[..n]).unwrap();
            let back = ConsoleChunk::from_regs(n as u64, &chunk.to_regs()).unwrap();
            assert_eq!(back, chunk);
            assert_eq!(back.as_bytes(), &msg[..n]);
        }
    }

    /// Lengths above 48 are rejected; garbage past the length is ignored.
    #[test]
    fn chunk_from_regs_validates_length() {
        let regs = [u64::MAX; CONSOLE_WRITE_REGS];
        for len in [49, 64, 1 << 32, 1 << 63, u64::MAX] {
            assert_eq!(
                ConsoleChunk::from_regs(len, &regs),
                Err(Status::InvalidParameter)
            );
        }
        let c = ConsoleChunk::from_regs(3, &regs).unwrap();
        assert_eq!(c.as_bytes(), &[0xff; 3]);
        assert_eq!(c, ConsoleChunk::new(&[0xff; 3]).unwrap());
    }

    /// `read_reply` then `parse_read_reply` round-trips every length 0..=16.
    #[test]
    fn read_reply_round_trip() {
        for n in 0..=CONSOLE_READ_MAX {
            let msg = message(n);
            let (ret, used) = read_reply(&msg[..n]);
            assert_eq!(used, n);
            let mut out = [0u8; CONSOLE_READ_MAX];
            assert_eq!(parse_read_reply(&ret, &mut out), Ok(n));
            assert_eq!(out[..n], msg[..n]);
        }
        assert_eq!(read_reply(&[1; 40]).1, CONSOLE_READ_MAX);
    }

    /// Oversized or error replies are reported, never copied out of bounds.
    #[test]
    fn parse_read_reply_rejects_bad_replies() {
        let mut out = [0u8; CONSOLE_READ_MAX];
        let too_long = HvcRet::success(17, u64::MAX, u64::MAX);
        assert_eq!(
            parse_read_reply(&too_long, &mut out),
            Err(Status::NotSupported)
        );
        let (fits, _) = read_reply(&[7; 8]);
        assert_eq!(
            parse_read_reply(&fits, &mut out[..4]),
            Err(Status::NotSupported)
        );
        let err = HvcRet::error(Status::Busy);
        assert_eq!(parse_read_reply(&err, &mut out), Err(Status::Busy));
    }
}
