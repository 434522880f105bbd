//! The classic pcap format: a 24-byte file header, then 16-byte record headers each
//! followed by the captured bytes. Either byte order; microsecond or nanosecond
//! timestamps, as the magic number says.

use std::io::Read;

use super::bytes::{ByteReader, rd16, rd32};
use super::error::{CaptureError, ErrorKind};
use super::{Frame, FrameTime, LinkType, Next, SkippedRecord};

pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// libpcap's MAXIMUM_SNAPLEN. A longer record means the record framing is broken,
/// whatever snapshot length the file header claims (some writers put 2^32-1 there; a
/// fuzzed header with such a value once made one record ask for gigabytes).
pub const MAX_SNAPLEN: u32 = 262_144;

pub struct PcapReader<R> {
    bytes: ByteReader<R>,
    big_endian: bool,
    nanos: bool,
    link: LinkType,
    /// Bytes of the record handed out last, consumed at the next call.
    pending: usize,
}

impl<R: Read> PcapReader<R> {
    /// Read the file header. `bytes` must be at offset 0.
    pub fn new(mut bytes: ByteReader<R>) -> Result<Self, CaptureError> {
        let h = bytes.require(24, "pcap file header")?;
        let magic_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos) = match magic_le {
            MAGIC_MICROS => (false, false),
            MAGIC_NANOS => (false, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            _ => {
                return Err(CaptureError::new(
                    0,
                    ErrorKind::NotACapture([h[0], h[1], h[2], h[3]]),
                ));
            }
        };
        let (major, minor) = (rd16(big_endian, h, 4), rd16(big_endian, h, 6));
        if major != 2 {
            return Err(CaptureError::new(
                4,
                ErrorKind::UnsupportedVersion { major, minor },
            ));
        }
        // The upper bits of the link-type field carry FCS information (pcap-savefile(5)).
        let link = LinkType((rd32(big_endian, h, 20) & 0xffff) as u16);
        bytes.consume(24);
        Ok(PcapReader {
            bytes,
            big_endian,
            nanos,
            link,
            pending: 0,
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    pub fn next_record(&mut self) -> Result<Next<'_>, CaptureError> {
        self.bytes.consume(std::mem::take(&mut self.pending));
        if self.bytes.at_end()? {
            return Ok(Next::End);
        }
        let start = self.bytes.offset();
        let be = self.big_endian;
        let h = self.bytes.require(16, "pcap record header")?;
        let (secs, frac, caplen, orig_len) = (
            rd32(be, h, 0),
            rd32(be, h, 4),
            rd32(be, h, 8),
            rd32(be, h, 12),
        );
        let limit = MAX_SNAPLEN;
        if caplen > limit {
            return Err(CaptureError::new(
                start + 8,
                ErrorKind::RecordTooLarge {
                    caplen: caplen as u64,
                    limit: limit as u64,
                },
            ));
        }
        let total = 16 + caplen as usize;
        self.bytes.require(total, "pcap packet data")?;
        let nanos = if self.nanos {
            frac as u64
        } else {
            frac as u64 * 1000
        };
        let ts = FrameTime::from_secs_nanos(secs as u64, nanos);
        self.pending = total;
        if caplen == 0 {
            return Ok(Next::Skipped(SkippedRecord::Empty));
        }
        if caplen > orig_len {
            return Ok(Next::Skipped(SkippedRecord::Inconsistent));
        }
        let data = self.bytes.slice(16, total);
        Ok(Next::Frame(Frame {
            ts,
            link: self.link,
            data,
            orig_len,
            elided: 0,
        }))
    }
}
