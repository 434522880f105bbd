//! A refillable read buffer that knows the absolute offset of every byte, so that
//! errors can say where they are. Memory stays at the buffer size whatever the input
//! size; the buffer grows only for a single record larger than it.

use std::io::{self, Read};

use super::error::{CaptureError, ErrorKind};

const DEFAULT_CAPACITY: usize = 1 << 20;

pub struct ByteReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Absolute offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> ByteReader<R> {
    pub fn new(inner: R) -> Self {
        ByteReader {
            inner,
            buf: vec![0; DEFAULT_CAPACITY],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Absolute offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Make at least `n` bytes available. Returns how many are available, which is
    /// less than `n` only at the end of the input.
    pub fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        while self.end - self.start < n && !self.eof {
            if self.start + n > self.buf.len() {
                // Move what is left to the front, and grow only if one record needs it.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if n > self.buf.len() {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.offset + (self.end - self.start) as u64;
                    return Err(CaptureError::new(at, ErrorKind::Io(e)));
                }
            }
        }
        Ok(self.end - self.start)
    }

    /// `fill(n)` or a `Truncated` error naming `what`.
    pub fn require(&mut self, n: usize, what: &'static str) -> Result<&[u8], CaptureError> {
        let got = self.fill(n)?;
        if got < n {
            return Err(CaptureError::new(
                self.offset,
                ErrorKind::Truncated {
                    what,
                    needed: n,
                    got,
                },
            ));
        }
        Ok(&self.buf[self.start..self.start + n])
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes `[from, to)` of what is available (valid until the next `fill`).
    pub fn slice(&self, from: usize, to: usize) -> &[u8] {
        &self.buf[self.start + from..self.start + to]
    }

    /// True when nothing is left.
    pub fn at_end(&mut self) -> Result<bool, CaptureError> {
        Ok(self.fill(1)? == 0)
    }
}

/// Read a u16 at `i` in the given byte order.
pub fn rd16(big_endian: bool, b: &[u8], i: usize) -> u16 {
    let v = [b[i], b[i + 1]];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

/// Read a u32 at `i` in the given byte order.
pub fn rd32(big_endian: bool, b: &[u8], i: usize) -> u32 {
    let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call, the worst case for refilling.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn offsets_survive_refills_and_growth() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3 * DEFAULT_CAPACITY).collect();
        let mut r = ByteReader::new(Trickle(&data));
        r.require(10, "x").unwrap();
        r.consume(10);
        assert_eq!(r.offset(), 10);
        let big = 2 * DEFAULT_CAPACITY;
        let got = r.require(big, "x").unwrap();
        assert_eq!(got[0], 10);
        assert_eq!(got[big - 1], ((10 + big - 1) % 256) as u8);
        r.consume(big);
        assert_eq!(r.offset(), 10 + big as u64);
    }

    #[test]
    fn truncation_reports_where_and_how_much() {
        let mut r = ByteReader::new(&b"abcdef"[..]);
        r.require(4, "x").unwrap();
        r.consume(4);
        let e = r.require(16, "packet data").unwrap_err();
        assert_eq!(e.offset, 4);
        assert_eq!(
            e.to_string(),
            "byte 4: truncated packet data: needs 16 bytes, only 2 left in the input"
        );
    }
}
