//! The pcapng format: blocks, each `type, length, body, length`. Section headers fix
//! the byte order; interface description blocks give each interface its link type,
//! snapshot length and timestamp resolution. Packets come in enhanced (EPB), simple
//! (SPB) and the obsolete packet blocks; every other block is skipped.

use std::io::Read;

use super::bytes::{ByteReader, rd16, rd32};
use super::error::{CaptureError, ErrorKind};
use super::{Frame, LinkType, Next, SkippedRecord};
use crate::ftp::Timestamp;

pub const SHB: u32 = 0x0a0d_0d0a;
pub const IDB: u32 = 0x0000_0001;
pub const OPB: u32 = 0x0000_0002;
pub const SPB: u32 = 0x0000_0003;
pub const EPB: u32 = 0x0000_0006;
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Largest block accepted. Packets are at most 256 KiB; name-resolution and custom
/// blocks can be bigger, but a length beyond this is a broken file, not a block.
pub const MAX_BLOCK: u32 = 16 << 20;

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// Timestamp units per second: 10^exp or 2^exp.
    resolution: Resolution,
    offset_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn from_option(v: u8) -> Resolution {
        if v & 0x80 == 0 {
            Resolution::Decimal(v)
        } else {
            Resolution::Binary(v & 0x7f)
        }
    }

    fn to_nanos(self, units: u64) -> u64 {
        let n = match self {
            Resolution::Decimal(e) if e <= 9 => (units as u128) * 10u128.pow(9 - e as u32),
            Resolution::Decimal(e) => (units as u128) / 10u128.pow((e as u32 - 9).min(38)),
            Resolution::Binary(e) => ((units as u128) * 1_000_000_000) >> e.min(127),
        };
        u64::try_from(n).unwrap_or(u64::MAX)
    }
}

pub struct PcapNgReader<R> {
    bytes: ByteReader<R>,
    /// None until the first section header.
    big_endian: Option<bool>,
    interfaces: Vec<Interface>,
    /// SPBs carry no timestamp: they get the last one seen.
    last_ts: Timestamp,
    pending: usize,
}

/// Interfaces kept per section; more is a broken or hostile file.
const MAX_INTERFACES: usize = 4096;

impl<R: Read> PcapNgReader<R> {
    pub fn new(bytes: ByteReader<R>) -> Self {
        PcapNgReader {
            bytes,
            big_endian: None,
            interfaces: Vec::new(),
            last_ts: Timestamp::ZERO,
            pending: 0,
        }
    }

    fn be(&self) -> bool {
        self.big_endian == Some(true)
    }

    pub fn next_record(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            self.bytes.consume(std::mem::take(&mut self.pending));
            if self.bytes.at_end()? {
                return Ok(Next::End);
            }
            let start = self.bytes.offset();
            let head = self.bytes.require(8, "pcapng block header")?;
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if raw_type == SHB {
                // The byte order is in the section header itself, after the length.
                let h = self.bytes.require(12, "pcapng section header")?;
                let magic = [h[8], h[9], h[10], h[11]];
                self.big_endian = match u32::from_le_bytes(magic) {
                    BYTE_ORDER_MAGIC => Some(false),
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => Some(true),
                    m => {
                        return Err(CaptureError::new(
                            start + 8,
                            ErrorKind::BadByteOrderMagic(m),
                        ));
                    }
                };
                self.interfaces.clear();
            } else if self.big_endian.is_none() {
                return Err(CaptureError::new(start, ErrorKind::NoSectionHeader));
            }
            let be = self.be();
            let head = self.bytes.require(8, "pcapng block header")?;
            let block_type = rd32(be, head, 0);
            let len = rd32(be, head, 4);
            if len < 12 || !len.is_multiple_of(4) {
                return Err(CaptureError::new(start + 4, ErrorKind::BadBlockLength(len)));
            }
            if len > MAX_BLOCK {
                return Err(CaptureError::new(
                    start + 4,
                    ErrorKind::RecordTooLarge {
                        caplen: len as u64,
                        limit: MAX_BLOCK as u64,
                    },
                ));
            }
            let len = len as usize;
            let block = self.bytes.require(len, "pcapng block")?;
            let trailing = rd32(be, block, len - 4);
            if trailing as usize != len {
                return Err(CaptureError::new(
                    start + len as u64 - 4,
                    ErrorKind::BlockLengthMismatch {
                        leading: len as u32,
                        trailing,
                    },
                ));
            }
            self.pending = len;
            let body_len = len - 12;
            match block_type {
                SHB => {
                    let b = self.bytes.slice(8, len - 4);
                    if b.len() < 8 {
                        return Err(CaptureError::new(
                            start,
                            ErrorKind::BadBlockLength(len as u32),
                        ));
                    }
                    let (major, minor) = (rd16(be, b, 4), rd16(be, b, 6));
                    if major != 1 {
                        return Err(CaptureError::new(
                            start + 12,
                            ErrorKind::UnsupportedVersion { major, minor },
                        ));
                    }
                }
                IDB => {
                    if body_len < 8 {
                        return Err(CaptureError::new(
                            start,
                            ErrorKind::BadBlockLength(len as u32),
                        ));
                    }
                    let iface = self.parse_idb(8, len - 4);
                    if self.interfaces.len() < MAX_INTERFACES {
                        self.interfaces.push(iface);
                    }
                }
                EPB | OPB => {
                    if body_len < 20 {
                        return Ok(Next::Skipped(SkippedRecord::Inconsistent));
                    }
                    let b = self.bytes.slice(8, len - 4);
                    let iface_id = if block_type == EPB {
                        rd32(be, b, 0) as usize
                    } else {
                        rd16(be, b, 0) as usize
                    };
                    let units = ((rd32(be, b, 4) as u64) << 32) | rd32(be, b, 8) as u64;
                    let caplen = rd32(be, b, 12) as usize;
                    let orig_len = rd32(be, b, 16);
                    let Some(iface) = self.interfaces.get(iface_id).copied() else {
                        return Ok(Next::Skipped(SkippedRecord::UnknownInterface));
                    };
                    if caplen == 0 {
                        return Ok(Next::Skipped(SkippedRecord::Empty));
                    }
                    if caplen > body_len - 20 || caplen as u64 > orig_len as u64 {
                        return Ok(Next::Skipped(SkippedRecord::Inconsistent));
                    }
                    let nanos = iface.resolution.to_nanos(units);
                    let secs = nanos / 1_000_000_000;
                    let secs = secs.saturating_add_signed(iface.offset_secs);
                    let ts = Timestamp::from_secs_nanos(secs, nanos % 1_000_000_000);
                    self.last_ts = ts;
                    let data = self.bytes.slice(28, 28 + caplen);
                    return Ok(Next::Frame(Frame {
                        ts,
                        link: iface.link,
                        data,
                        orig_len,
                        elided: 0,
                    }));
                }
                SPB => {
                    if body_len < 4 {
                        return Ok(Next::Skipped(SkippedRecord::Inconsistent));
                    }
                    let b = self.bytes.slice(8, len - 4);
                    let orig_len = rd32(be, b, 0);
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Ok(Next::Skipped(SkippedRecord::UnknownInterface));
                    };
                    let mut caplen = (orig_len as usize).min(body_len - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    if caplen == 0 {
                        return Ok(Next::Skipped(SkippedRecord::Empty));
                    }
                    let data = self.bytes.slice(12, 12 + caplen);
                    return Ok(Next::Frame(Frame {
                        ts: self.last_ts,
                        link: iface.link,
                        data,
                        orig_len,
                        elided: 0,
                    }));
                }
                _ => {}
            }
        }
    }

    /// Interface description block body `[from, to)` of the current block.
    fn parse_idb(&self, from: usize, to: usize) -> Interface {
        let be = self.be();
        let b = self.bytes.slice(from, to);
        let mut iface = Interface {
            link: LinkType(rd16(be, b, 0)),
            snaplen: rd32(be, b, 4),
            resolution: Resolution::Decimal(6),
            offset_secs: 0,
        };
        let mut opts = &b[8..];
        while opts.len() >= 4 {
            let code = rd16(be, opts, 0);
            let olen = rd16(be, opts, 2) as usize;
            let padded = (olen + 3) & !3;
            if opts.len() < 4 + olen {
                break;
            }
            let val = &opts[4..4 + olen];
            match (code, olen) {
                (0, _) => break,
                (9, 1) => iface.resolution = Resolution::from_option(val[0]),
                (14, 8) => {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(val);
                    iface.offset_secs = if be {
                        i64::from_be_bytes(v)
                    } else {
                        i64::from_le_bytes(v)
                    };
                }
                _ => {}
            }
            if opts.len() < 4 + padded {
                break;
            }
            opts = &opts[4 + padded..];
        }
        iface
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(Resolution::Decimal(6).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(Resolution::Decimal(9).to_nanos(7), 7);
        assert_eq!(Resolution::Decimal(12).to_nanos(7_000), 7);
        assert_eq!(Resolution::Binary(10).to_nanos(1024), 1_000_000_000);
        assert_eq!(Resolution::from_option(0x8a), Resolution::Binary(10));
        assert_eq!(Resolution::Decimal(0).to_nanos(u64::MAX), u64::MAX);
    }
}
