//! The pcapng format: blocks, each `type, length, body, length`. Section headers fix
//! the byte order; interface description blocks give each interface its link type,
//! snapshot length and timestamp resolution. Packets come in enhanced (EPB), simple
//! (SPB) and the obsolete packet blocks; every other block is skipped.

use std::io::Read;

use super::bytes::{ByteReader, rd16, rd32};
use super::error::{CaptureError, ErrorKind};
use super::{Frame, FrameTime, LinkType, Next, SkippedRecord};

pub const SHB: u32 = 0x0a0d_0d0a;
pub const IDB: u32 = 0x0000_0001;
pub const OPB: u32 = 0x0000_0002;
pub const SPB: u32 = 0x0000_0003;
pub const EPB: u32 = 0x0000_0006;
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

// Every block: type and total length (u32 each), the body, the total length again.
const BLOCK_HEADER: usize = 8;
const BLOCK_TRAILER: usize = 4;
// Offsets in a section header: the byte-order magic (from the block's start), then
// (in the body) the major and minor version.
const SHB_MAGIC: usize = 8;
const SHB_MAJOR: usize = 4;
const SHB_MINOR: usize = 6;
const SHB_BODY_MIN: usize = 8;
// In an interface description block's body.
const IDB_LINK_TYPE: usize = 0;
const IDB_SNAPLEN: usize = 4;
const IDB_OPTIONS: usize = 8;
const OPT_END: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
// In an enhanced packet block's body (the obsolete packet block has a 16-bit interface
// and 16-bit drop count where the EPB has its 32-bit interface).
const EPB_INTERFACE: usize = 0;
const EPB_TS_HIGH: usize = 4;
const EPB_TS_LOW: usize = 8;
const EPB_CAPLEN: usize = 12;
const EPB_ORIG_LEN: usize = 16;
const EPB_DATA: usize = 20;
// In a simple packet block's body.
const SPB_ORIG_LEN: usize = 0;
const SPB_DATA: usize = 4;

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
    last_ts: FrameTime,
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
            last_ts: FrameTime::ZERO,
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
            let block = self.block()?;
            match block.kind {
                SHB => self.section_header(&block)?,
                IDB => self.interface_block(&block)?,
                EPB | OPB => return Ok(self.packet_block(&block)),
                SPB => return Ok(self.simple_packet_block(&block)),
                _ => {}
            }
        }
    }

    /// Read and check the next block's header and length; the whole block is then
    /// buffered (and consumed on the next call).
    fn block(&mut self) -> Result<Block, CaptureError> {
        let start = self.bytes.offset();
        let head = self.bytes.require(BLOCK_HEADER, "pcapng block header")?;
        if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == SHB {
            // The byte order is in the section header itself, after the length.
            let h = self.bytes.require(SHB_MAGIC + 4, "pcapng section header")?;
            let magic = rd32(false, h, SHB_MAGIC);
            self.big_endian = match magic {
                BYTE_ORDER_MAGIC => Some(false),
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => Some(true),
                m => {
                    let at = start + SHB_MAGIC as u64;
                    return Err(CaptureError::new(at, ErrorKind::BadByteOrderMagic(m)));
                }
            };
            self.interfaces.clear();
        } else if self.big_endian.is_none() {
            return Err(CaptureError::new(start, ErrorKind::NoSectionHeader));
        }
        let be = self.be();
        let head = self.bytes.require(BLOCK_HEADER, "pcapng block header")?;
        let kind = rd32(be, head, 0);
        let len = rd32(be, head, 4);
        let len_at = start + 4;
        if len < (BLOCK_HEADER + BLOCK_TRAILER) as u32 || !len.is_multiple_of(4) {
            return Err(CaptureError::new(len_at, ErrorKind::BadBlockLength(len)));
        }
        if len > MAX_BLOCK {
            let (caplen, limit) = (u64::from(len), u64::from(MAX_BLOCK));
            let kind = ErrorKind::RecordTooLarge { caplen, limit };
            return Err(CaptureError::new(len_at, kind));
        }
        let len = len as usize;
        let whole = self.bytes.require(len, "pcapng block")?;
        let trailing = rd32(be, whole, len - BLOCK_TRAILER);
        if trailing as usize != len {
            let at = start + (len - BLOCK_TRAILER) as u64;
            let leading = len as u32;
            let kind = ErrorKind::BlockLengthMismatch { leading, trailing };
            return Err(CaptureError::new(at, kind));
        }
        self.pending = len;
        Ok(Block { start, kind, len })
    }

    /// The current block's body (between its header and its trailing length).
    fn body(&self, block: &Block) -> &[u8] {
        self.bytes.slice(BLOCK_HEADER, block.len - BLOCK_TRAILER)
    }

    fn section_header(&mut self, block: &Block) -> Result<(), CaptureError> {
        let be = self.be();
        let b = self.body(block);
        if b.len() < SHB_BODY_MIN {
            let len = block.len as u32;
            return Err(CaptureError::new(
                block.start,
                ErrorKind::BadBlockLength(len),
            ));
        }
        let (major, minor) = (rd16(be, b, SHB_MAJOR), rd16(be, b, SHB_MINOR));
        if major != 1 {
            let at = block.start + (BLOCK_HEADER + SHB_MAJOR) as u64;
            return Err(CaptureError::new(
                at,
                ErrorKind::UnsupportedVersion { major, minor },
            ));
        }
        Ok(())
    }

    fn interface_block(&mut self, block: &Block) -> Result<(), CaptureError> {
        if block.body_len() < IDB_OPTIONS {
            let len = block.len as u32;
            return Err(CaptureError::new(
                block.start,
                ErrorKind::BadBlockLength(len),
            ));
        }
        let iface = parse_idb(self.be(), self.body(block));
        if self.interfaces.len() < MAX_INTERFACES {
            self.interfaces.push(iface);
        }
        Ok(())
    }

    /// An enhanced (or obsolete) packet block.
    fn packet_block(&mut self, block: &Block) -> Next<'_> {
        if block.body_len() < EPB_DATA {
            return Next::Skipped(SkippedRecord::Inconsistent);
        }
        let be = self.be();
        let b = self.body(block);
        let iface_id = if block.kind == EPB {
            rd32(be, b, EPB_INTERFACE) as usize
        } else {
            rd16(be, b, EPB_INTERFACE) as usize
        };
        let units =
            (u64::from(rd32(be, b, EPB_TS_HIGH)) << 32) | u64::from(rd32(be, b, EPB_TS_LOW));
        let caplen = rd32(be, b, EPB_CAPLEN) as usize;
        let orig_len = rd32(be, b, EPB_ORIG_LEN);
        let Some(iface) = self.interfaces.get(iface_id).copied() else {
            return Next::Skipped(SkippedRecord::UnknownInterface);
        };
        if caplen == 0 {
            return Next::Skipped(SkippedRecord::Empty);
        }
        if caplen > block.body_len() - EPB_DATA || caplen as u64 > u64::from(orig_len) {
            return Next::Skipped(SkippedRecord::Inconsistent);
        }
        let nanos = iface.resolution.to_nanos(units);
        let secs = (nanos / 1_000_000_000).saturating_add_signed(iface.offset_secs);
        let ts = FrameTime::from_secs_nanos(secs, nanos % 1_000_000_000);
        self.last_ts = ts;
        let data = &self.body(block)[EPB_DATA..EPB_DATA + caplen];
        Next::Frame(Frame {
            ts,
            link: iface.link,
            data,
            orig_len,
            elided: 0,
        })
    }

    /// A simple packet block: the first interface's, no timestamp, length implied.
    fn simple_packet_block(&mut self, block: &Block) -> Next<'_> {
        if block.body_len() < SPB_DATA {
            return Next::Skipped(SkippedRecord::Inconsistent);
        }
        let orig_len = rd32(self.be(), self.body(block), SPB_ORIG_LEN);
        let Some(iface) = self.interfaces.first().copied() else {
            return Next::Skipped(SkippedRecord::UnknownInterface);
        };
        let mut caplen = (orig_len as usize).min(block.body_len() - SPB_DATA);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        if caplen == 0 {
            return Next::Skipped(SkippedRecord::Empty);
        }
        let data = &self.body(block)[SPB_DATA..SPB_DATA + caplen];
        Next::Frame(Frame {
            ts: self.last_ts,
            link: iface.link,
            data,
            orig_len,
            elided: 0,
        })
    }
}

/// A block whose header was read: where it starts, its type and total length.
struct Block {
    start: u64,
    kind: u32,
    len: usize,
}

impl Block {
    fn body_len(&self) -> usize {
        self.len - BLOCK_HEADER - BLOCK_TRAILER
    }
}

/// An interface description block's body: link type, snapshot length, and the
/// options ftpwatch reads (timestamp resolution and offset).
fn parse_idb(be: bool, b: &[u8]) -> Interface {
    let mut iface = Interface {
        link: LinkType(rd16(be, b, IDB_LINK_TYPE)),
        snaplen: rd32(be, b, IDB_SNAPLEN),
        resolution: Resolution::Decimal(6),
        offset_secs: 0,
    };
    let mut opts = &b[IDB_OPTIONS..];
    while opts.len() >= 4 {
        let code = rd16(be, opts, 0);
        let olen = rd16(be, opts, 2) as usize;
        let padded = (olen + 3) & !3;
        if opts.len() < 4 + olen {
            break;
        }
        let val = &opts[4..4 + olen];
        match (code, olen) {
            (OPT_END, _) => break,
            (IF_TSRESOL, 1) => iface.resolution = Resolution::from_option(val[0]),
            (IF_TSOFFSET, 8) => {
                let v: [u8; 8] = val.try_into().expect("eight bytes");
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
