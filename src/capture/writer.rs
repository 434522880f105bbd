//! Writers for pcap and pcapng, used to build test captures and benchmark inputs with
//! the project's own code.

use std::io::{self, Write};

use super::pcapng::{BYTE_ORDER_MAGIC, EPB, IDB, SHB, SPB};
use super::{FrameTime, LinkType};

/// Classic pcap, little-endian, microsecond or nanosecond timestamps.
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&(link.0 as u32).to_le_bytes())?;
        Ok(PcapWriter { out, nanos })
    }

    /// Write a packet of which `data` was captured and `orig_len` bytes were on the wire.
    pub fn packet(
        &mut self,
        ts: impl Into<FrameTime>,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let nanos = ts.into().as_nanos();
        let (secs, subsec) = (nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32);
        let frac = if self.nanos { subsec } else { subsec / 1000 };
        self.out.write_all(&(secs as u32).to_le_bytes())?;
        self.out.write_all(&frac.to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&orig_len.to_le_bytes())?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// pcapng, little- or big-endian, with interfaces added as needed.
pub struct PcapNgWriter<W: Write> {
    out: W,
    big_endian: bool,
}

impl<W: Write> PcapNgWriter<W> {
    pub fn new(out: W, big_endian: bool) -> io::Result<Self> {
        let mut w = PcapNgWriter { out, big_endian };
        w.section()?;
        Ok(w)
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> io::Result<()> {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let (k, l) = (self.u32(kind), self.u32(len));
        self.out.write_all(&k)?;
        self.out.write_all(&l)?;
        self.out.write_all(body)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&l)
    }

    /// Start a new section (interfaces are forgotten by readers).
    pub fn section(&mut self) -> io::Result<()> {
        let mut b = Vec::new();
        b.extend(self.u32(BYTE_ORDER_MAGIC));
        b.extend(self.u16(1));
        b.extend(self.u16(0));
        b.extend((-1i64).to_le_bytes());
        self.block(SHB, &b)
    }

    /// Describe an interface; `tsresol` is the if_tsresol option byte (6 = µs, 9 = ns).
    pub fn interface(&mut self, link: LinkType, snaplen: u32, tsresol: u8) -> io::Result<()> {
        let mut b = Vec::new();
        b.extend(self.u16(link.0));
        b.extend(self.u16(0));
        b.extend(self.u32(snaplen));
        b.extend(self.u16(9));
        b.extend(self.u16(1));
        b.extend([tsresol, 0, 0, 0]);
        b.extend(self.u16(0));
        b.extend(self.u16(0));
        self.block(IDB, &b)
    }

    /// An enhanced packet block; `units` is the timestamp in the interface's resolution.
    pub fn enhanced(
        &mut self,
        iface: u32,
        units: u64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let mut b = Vec::new();
        b.extend(self.u32(iface));
        b.extend(self.u32((units >> 32) as u32));
        b.extend(self.u32(units as u32));
        b.extend(self.u32(data.len() as u32));
        b.extend(self.u32(orig_len));
        b.extend(data);
        self.block(EPB, &b)
    }

    pub fn simple(&mut self, data: &[u8], orig_len: u32) -> io::Result<()> {
        let mut b = Vec::new();
        b.extend(self.u32(orig_len));
        b.extend(data);
        self.block(SPB, &b)
    }

    /// Any other block (it must be skipped by readers).
    pub fn raw_block(&mut self, kind: u32, body: &[u8]) -> io::Result<()> {
        self.block(kind, body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
