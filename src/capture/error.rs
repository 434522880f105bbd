//! Capture-level damage: the file cannot be read past this point.

use std::fmt;

#[derive(Debug)]
pub enum ErrorKind {
    /// The file could not be opened.
    Open(std::io::Error),
    Io(std::io::Error),
    Empty,
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    NotACapture([u8; 4]),
    /// The file ends inside a header or record: `needed` bytes were due, `got` remained.
    Truncated {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// A packet's captured length is beyond any sane snapshot length.
    RecordTooLarge {
        caplen: u64,
        limit: u64,
    },
    UnsupportedVersion {
        major: u16,
        minor: u16,
    },
    /// A pcapng block length that is too small or not a multiple of four.
    BadBlockLength(u32),
    /// The trailing copy of a pcapng block length differs from the leading one.
    BlockLengthMismatch {
        leading: u32,
        trailing: u32,
    },
    /// A pcapng section header with an unknown byte-order magic.
    BadByteOrderMagic(u32),
    /// A pcapng block before any section header.
    NoSectionHeader,
}

#[derive(Debug)]
pub struct CaptureError {
    /// Byte offset in the input where the problem starts.
    pub offset: u64,
    pub kind: ErrorKind,
}

impl CaptureError {
    pub fn new(offset: u64, kind: ErrorKind) -> Self {
        CaptureError { offset, kind }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Open(e) = &self.kind {
            return write!(f, "cannot open: {e}");
        }
        write!(f, "byte {}: ", self.offset)?;
        match &self.kind {
            ErrorKind::Open(_) => Ok(()),
            ErrorKind::Io(e) => write!(f, "read error: {e}"),
            ErrorKind::Empty => write!(f, "empty input, not a capture"),
            ErrorKind::NotACapture(m) => write!(
                f,
                "not a pcap or pcapng capture (starts with {:02x} {:02x} {:02x} {:02x})",
                m[0], m[1], m[2], m[3]
            ),
            ErrorKind::Truncated { what, needed, got } => write!(
                f,
                "truncated {what}: needs {needed} bytes, only {got} left in the input"
            ),
            ErrorKind::RecordTooLarge { caplen, limit } => write!(
                f,
                "packet length {caplen} exceeds the largest snapshot length ({limit}); the capture is corrupt"
            ),
            ErrorKind::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported format version {major}.{minor}")
            }
            ErrorKind::BadBlockLength(l) => write!(f, "invalid pcapng block length {l}"),
            ErrorKind::BlockLengthMismatch { leading, trailing } => write!(
                f,
                "pcapng block length {leading} does not match its trailing copy {trailing}"
            ),
            ErrorKind::BadByteOrderMagic(m) => {
                write!(
                    f,
                    "pcapng section header with unknown byte-order magic {m:#010x}"
                )
            }
            ErrorKind::NoSectionHeader => write!(f, "pcapng block before any section header"),
        }
    }
}

impl std::error::Error for CaptureError {}
