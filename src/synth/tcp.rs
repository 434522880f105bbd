//! A capture being built, and TCP connections whose segments go into it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use super::frame::{Link, tcp_frame};
use crate::capture::writer::PcapWriter;
use crate::decode::TcpFlags;
use crate::ftp::{Side, Timestamp};

/// Frames with timestamps, in capture order.
pub struct Capture {
    pub link: Link,
    pub now: Timestamp,
    /// The snapshot length to apply when writing (0: none).
    pub snaplen: usize,
    frames: Vec<(Timestamp, Vec<u8>)>,
}

impl Capture {
    pub fn new(link: Link) -> Self {
        Capture {
            link,
            now: Timestamp::from_secs_nanos(1_700_000_000, 0),
            snaplen: 0,
            frames: Vec::new(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    pub fn push(&mut self, frame: Vec<u8>) {
        self.frames.push((self.now, frame));
    }

    /// A frame taken from another capture, at its own time (merging sessions).
    pub fn push_at(&mut self, ts: Timestamp, frame: Vec<u8>) {
        self.frames.push((ts, frame));
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Remove the frame at `index` (to simulate a packet the capture missed).
    pub fn drop_frame(&mut self, index: usize) -> Vec<u8> {
        self.frames.remove(index).1
    }

    /// Swap two frames' places (keeping the timestamps in order).
    pub fn swap(&mut self, a: usize, b: usize) {
        let fa = std::mem::take(&mut self.frames[a].1);
        let fb = std::mem::replace(&mut self.frames[b].1, fa);
        self.frames[a].1 = fb;
    }

    pub fn write_pcap<W: Write>(&self, out: W) -> io::Result<W> {
        let snap = if self.snaplen == 0 {
            262_144
        } else {
            self.snaplen
        };
        let mut w = PcapWriter::new(out, self.link.link_type(), snap as u32, true)?;
        for (ts, f) in &self.frames {
            let cap = &f[..f.len().min(snap)];
            w.packet(*ts, cap, f.len() as u32)?;
        }
        Ok(w.into_inner())
    }

    pub fn to_pcap(&self) -> Vec<u8> {
        self.write_pcap(Vec::new())
            .expect("writing to a Vec cannot fail")
    }

    /// Hand over the frames built so far (for writers that stream large captures).
    pub fn take_frames(&mut self) -> Vec<(Timestamp, Vec<u8>)> {
        std::mem::take(&mut self.frames)
    }
}

/// One TCP connection: `a` opened it, `b` accepted it.
#[derive(Clone, Debug)]
pub struct Tcp {
    pub a: SocketAddr,
    pub b: SocketAddr,
    /// Next sequence number each side will send.
    pub seq_a: u32,
    pub seq_b: u32,
}

impl Tcp {
    pub fn new(a: SocketAddr, b: SocketAddr, isn_a: u32, isn_b: u32) -> Self {
        Tcp {
            a,
            b,
            seq_a: isn_a,
            seq_b: isn_b,
        }
    }

    fn ends(&self, from: Side) -> (SocketAddr, SocketAddr, u32, u32) {
        match from {
            Side::Initiator => (self.a, self.b, self.seq_a, self.seq_b),
            Side::Responder => (self.b, self.a, self.seq_b, self.seq_a),
        }
    }

    fn advance(&mut self, from: Side, n: u32) {
        match from {
            Side::Initiator => self.seq_a = self.seq_a.wrapping_add(n),
            Side::Responder => self.seq_b = self.seq_b.wrapping_add(n),
        }
    }

    /// A frame from `from` with explicit sequence offset, not advancing anything.
    pub fn frame_at(&self, link: Link, from: Side, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst, _, ack) = self.ends(from);
        tcp_frame(link, src, dst, seq, ack, TcpFlags::new(flags), payload)
    }

    pub fn handshake(&mut self, cap: &mut Capture) {
        self.syn(cap);
        self.syn_ack(cap);
        self.ack(cap, Side::Initiator);
    }

    pub fn syn(&mut self, cap: &mut Capture) {
        let f = tcp_frame(
            cap.link,
            self.a,
            self.b,
            self.seq_a,
            0,
            TcpFlags::new(TcpFlags::SYN),
            &[],
        );
        cap.push(f);
        self.seq_a = self.seq_a.wrapping_add(1);
        cap.advance_ms(1);
    }

    pub fn syn_ack(&mut self, cap: &mut Capture) {
        let flags = TcpFlags::new(TcpFlags::SYN | TcpFlags::ACK);
        let f = tcp_frame(cap.link, self.b, self.a, self.seq_b, self.seq_a, flags, &[]);
        cap.push(f);
        self.seq_b = self.seq_b.wrapping_add(1);
        cap.advance_ms(1);
    }

    pub fn ack(&mut self, cap: &mut Capture, from: Side) {
        let (src, dst, seq, ack) = self.ends(from);
        cap.push(tcp_frame(
            cap.link,
            src,
            dst,
            seq,
            ack,
            TcpFlags::new(TcpFlags::ACK),
            &[],
        ));
    }

    /// One data segment (PSH|ACK), and the peer's ACK of it.
    pub fn send(&mut self, cap: &mut Capture, from: Side, payload: &[u8]) {
        let (src, dst, seq, ack) = self.ends(from);
        let flags = TcpFlags::new(TcpFlags::PSH | TcpFlags::ACK);
        cap.push(tcp_frame(cap.link, src, dst, seq, ack, flags, payload));
        self.advance(from, payload.len() as u32);
        cap.advance_ms(1);
        self.ack(cap, from.other());
    }

    /// `total` bytes in `mss`-sized segments, one ACK every two segments, `gap_us`
    /// microseconds between segments. The content is a repeating pattern.
    pub fn bulk(&mut self, cap: &mut Capture, from: Side, total: u64, mss: usize, gap_us: u64) {
        let chunk: Vec<u8> = (0..mss).map(|i| (i % 251) as u8).collect();
        let mut left = total;
        let mut n = 0u64;
        while left > 0 {
            let k = left.min(mss as u64) as usize;
            let (src, dst, seq, ack) = self.ends(from);
            let flags = TcpFlags::new(TcpFlags::ACK);
            cap.push(tcp_frame(cap.link, src, dst, seq, ack, flags, &chunk[..k]));
            self.advance(from, k as u32);
            left -= k as u64;
            n += 1;
            if n.is_multiple_of(2) || left == 0 {
                self.ack(cap, from.other());
            }
            cap.advance(Duration::from_micros(gap_us));
        }
    }

    pub fn fin(&mut self, cap: &mut Capture, from: Side) {
        let (src, dst, seq, ack) = self.ends(from);
        let flags = TcpFlags::new(TcpFlags::FIN | TcpFlags::ACK);
        cap.push(tcp_frame(cap.link, src, dst, seq, ack, flags, &[]));
        self.advance(from, 1);
        cap.advance_ms(1);
    }

    pub fn rst(&mut self, cap: &mut Capture, from: Side) {
        let (src, dst, seq, ack) = self.ends(from);
        let flags = TcpFlags::new(TcpFlags::RST | TcpFlags::ACK);
        cap.push(tcp_frame(cap.link, src, dst, seq, ack, flags, &[]));
        cap.advance_ms(1);
    }

    /// FIN from `first`, FIN from the other side, final ACK.
    pub fn close(&mut self, cap: &mut Capture, first: Side) {
        self.fin(cap, first);
        self.fin(cap, first.other());
        self.ack(cap, first);
    }
}
