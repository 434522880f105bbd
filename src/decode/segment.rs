//! A TCP segment, borrowed from its frame.

use std::fmt;
use std::net::SocketAddr;

use etherparse::TcpSlice;

#[derive(Copy, Clone, PartialEq, Eq, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;

    pub const fn new(bits: u8) -> Self {
        TcpFlags(bits)
    }

    pub fn from_slice(t: &TcpSlice<'_>) -> Self {
        let mut b = 0;
        for (on, bit) in [
            (t.fin(), Self::FIN),
            (t.syn(), Self::SYN),
            (t.rst(), Self::RST),
            (t.psh(), Self::PSH),
            (t.ack(), Self::ACK),
            (t.urg(), Self::URG),
        ] {
            if on {
                b |= bit;
            }
        }
        TcpFlags(b)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::ACK, '.'),
            (Self::URG, 'U'),
        ];
        for (bit, c) in names {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The parts of a TCP segment the connection table needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The advertised window (raw, unscaled): window updates differ only in this.
    pub window: u16,
    /// The captured payload bytes.
    pub payload: &'a [u8],
    /// The payload length on the wire; more than `payload.len()` when the capture's
    /// snapshot length cut the packet.
    pub wire_len: u32,
}

impl Segment<'_> {
    pub fn truncated(&self) -> bool {
        (self.payload.len() as u32) < self.wire_len
    }
}

/// tcpdump-like one-liner: `10.0.0.2:40000 > 10.0.0.1:21 [S.] seq 1 ack 2 len 10`.
impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {} [{:?}] seq {} ack {} len {}",
            self.src, self.dst, self.flags, self.seq, self.ack, self.wire_len
        )?;
        if self.truncated() {
            write!(f, " (captured {})", self.payload.len())?;
        }
        Ok(())
    }
}
