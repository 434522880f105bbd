//! In-order delivery of one direction of a control connection.
//!
//! Sequence numbers are compared relative to the next expected byte with wrapping
//! arithmetic, so streams that cross 2^32 work. Retransmitted and overlapping bytes are
//! delivered once. A segment ahead of the next expected byte waits in a small buffer
//! (bounded in bytes) until the hole before it fills. The hole is declared a gap (bytes
//! the capture missed) when the receiver has acknowledged past it (it got the bytes,
//! we did not, so no retransmission will come), when the buffer is full, or when the
//! stream ends.

/// What in-order delivery produces, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    Gap(u64),
}

#[derive(Debug)]
struct Held {
    seq: u32,
    /// Bytes on the wire (the captured `bytes` may be fewer).
    wire: u32,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Reassembler {
    next: Option<u32>,
    held: Vec<Held>,
    held_bytes: usize,
    /// Highest acknowledgement the peer sent for this direction.
    peer_ack: Option<u32>,
}

/// Signed distance from `base` to `seq` in sequence space.
fn rel(seq: u32, base: u32) -> i64 {
    seq.wrapping_sub(base) as i32 as i64
}

/// The result of a push: whether the buffer bound was hit.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    pub buffer_full: bool,
}

impl Reassembler {
    /// The SYN was seen: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.next.is_none() {
            self.next = Some(isn.wrapping_add(1));
        }
    }

    pub fn buffered(&self) -> usize {
        self.held_bytes
    }

    /// Bytes `[seq, seq + wire)` of which `captured` were captured.
    pub fn push(
        &mut self,
        seq: u32,
        captured: &[u8],
        wire: u32,
        max_buffer: usize,
        out: &mut dyn FnMut(Chunk<'_>),
    ) -> PushReport {
        let mut report = PushReport::default();
        if wire == 0 {
            return report;
        }
        let next = *self.next.get_or_insert(seq);
        let r = rel(seq, next);
        if r <= 0 {
            self.deliver(seq, captured, wire, out);
            self.drain(out);
            return report;
        }
        if self.held_bytes + captured.len() > max_buffer {
            // No room to wait for the hole: give it up as a gap.
            report.buffer_full = true;
            self.flush(out);
            let next = self.next.expect("set above");
            let r = rel(seq, next);
            if r > 0 {
                out(Chunk::Gap(r as u64));
                self.next = Some(seq);
            }
            self.deliver(seq, captured, wire, out);
            self.drain(out);
            return report;
        }
        self.held_bytes += captured.len();
        self.held.push(Held {
            seq,
            wire,
            bytes: captured.to_vec(),
        });
        self.resolve_with_ack(out);
        report
    }

    /// The peer acknowledged up to `ack` (exclusive) in this direction.
    pub fn peer_acked(&mut self, ack: u32, out: &mut dyn FnMut(Chunk<'_>)) {
        let newer = self.peer_ack.is_none_or(|old| rel(ack, old) > 0);
        if newer {
            self.peer_ack = Some(ack);
        }
        self.resolve_with_ack(out);
    }

    /// Holes before held data that the peer has acknowledged past are gaps.
    fn resolve_with_ack(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        loop {
            let (Some(ack), Some(next)) = (self.peer_ack, self.next) else {
                return;
            };
            let Some(first) = self.earliest() else {
                return;
            };
            let start = self.held[first].seq;
            // Held data starts beyond the hole, and the peer acknowledged up to its start.
            if rel(start, next) <= 0 || rel(ack, start) < 0 {
                return;
            }
            out(Chunk::Gap(rel(start, next) as u64));
            self.next = Some(start);
            self.drain(out);
        }
    }

    /// The stream ends: whatever is held is delivered, holes as gaps.
    pub fn flush(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(first) = self.earliest() {
            let next = self.next.expect("held data implies a position");
            let start = self.held[first].seq;
            let r = rel(start, next);
            if r > 0 {
                out(Chunk::Gap(r as u64));
                self.next = Some(start);
            }
            self.drain(out);
        }
    }

    fn earliest(&self) -> Option<usize> {
        let next = self.next?;
        (0..self.held.len()).min_by_key(|&i| rel(self.held[i].seq, next))
    }

    /// Deliver a segment that starts at or before `next`, trimming what was already
    /// delivered.
    fn deliver(&mut self, seq: u32, captured: &[u8], wire: u32, out: &mut dyn FnMut(Chunk<'_>)) {
        let next = self.next.expect("set before deliver");
        let skip = (-rel(seq, next)) as u64;
        if skip >= wire as u64 {
            return; // all of it was delivered before: a retransmission
        }
        let fresh_wire = wire as u64 - skip;
        if (skip as usize) < captured.len() {
            out(Chunk::Data(&captured[skip as usize..]));
        }
        let fresh_captured = (captured.len() as u64).saturating_sub(skip);
        if fresh_captured < fresh_wire {
            // Cut by the snapshot length.
            out(Chunk::Gap(fresh_wire - fresh_captured));
        }
        self.next = Some(next.wrapping_add(fresh_wire as u32));
    }

    /// Deliver held segments that are now in order.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        loop {
            let next = self.next.expect("set");
            let Some(i) = (0..self.held.len()).find(|&i| rel(self.held[i].seq, next) <= 0) else {
                return;
            };
            let h = self.held.swap_remove(i);
            self.held_bytes -= h.bytes.len();
            self.deliver(h.seq, &h.bytes, h.wire, out);
            if self.held.is_empty() {
                self.held = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum C {
        D(String),
        G(u64),
    }

    fn run(r: &mut Reassembler, steps: &[(u32, &str)], max: usize) -> Vec<C> {
        let mut got = Vec::new();
        for (seq, s) in steps {
            r.push(*seq, s.as_bytes(), s.len() as u32, max, &mut |c| {
                got.push(match c {
                    Chunk::Data(d) => C::D(String::from_utf8_lossy(d).into()),
                    Chunk::Gap(n) => C::G(n),
                })
            });
        }
        got
    }

    fn d(s: &str) -> C {
        C::D(s.into())
    }

    #[test]
    fn in_order_after_syn() {
        let mut r = Reassembler::default();
        r.syn(99);
        assert_eq!(
            run(&mut r, &[(100, "ab"), (102, "cd")], 100),
            [d("ab"), d("cd")]
        );
    }

    #[test]
    fn mid_stream_pickup_starts_at_first_segment() {
        let mut r = Reassembler::default();
        assert_eq!(
            run(&mut r, &[(5000, "xy"), (5002, "z")], 100),
            [d("xy"), d("z")]
        );
    }

    #[test]
    fn out_of_order_waits_then_delivers_in_order() {
        let mut r = Reassembler::default();
        r.syn(0);
        let got = run(&mut r, &[(1, "ab"), (5, "ef"), (3, "cd"), (7, "g")], 100);
        assert_eq!(got, [d("ab"), d("cd"), d("ef"), d("g")]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn retransmissions_and_overlaps_are_delivered_once() {
        let mut r = Reassembler::default();
        r.syn(0);
        let got = run(
            &mut r,
            &[(1, "abcd"), (1, "abcd"), (3, "cdef"), (2, "b"), (7, "g")],
            100,
        );
        assert_eq!(got, [d("abcd"), d("ef"), d("g")]);
    }

    #[test]
    fn overlapping_held_segments() {
        let mut r = Reassembler::default();
        r.syn(0);
        let got = run(&mut r, &[(5, "efgh"), (3, "cdef"), (1, "ab")], 100);
        assert_eq!(got, [d("ab"), d("cdef"), d("gh")]);
    }

    #[test]
    fn sequence_wrap_around() {
        let mut r = Reassembler::default();
        r.syn(u32::MAX - 2);
        let got = run(&mut r, &[(u32::MAX - 1, "ab"), (0, "cd"), (2, "e")], 100);
        assert_eq!(got, [d("ab"), d("cd"), d("e")]);
        // Out of order across the wrap.
        let mut r = Reassembler::default();
        r.syn(u32::MAX - 2);
        let got = run(&mut r, &[(0, "cd"), (u32::MAX - 1, "ab")], 100);
        assert_eq!(got, [d("ab"), d("cd")]);
    }

    #[test]
    fn full_buffer_gives_up_the_hole_as_a_gap() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut got = run(&mut r, &[(1, "ab"), (10, "xxxx")], 6);
        let report = r.push(14, b"yyyy", 4, 6, &mut |c| {
            got.push(match c {
                Chunk::Data(x) => d(std::str::from_utf8(x).unwrap()),
                Chunk::Gap(n) => C::G(n),
            })
        });
        assert!(report.buffer_full);
        assert_eq!(got, [d("ab"), C::G(7), d("xxxx"), d("yyyy")]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn ack_past_a_hole_declares_the_gap() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut got = run(&mut r, &[(1, "ab"), (6, "fg")], 100);
        // The peer acknowledged only up to 3: the hole may still be retransmitted.
        r.peer_acked(3, &mut |_| panic!("no gap yet"));
        r.peer_acked(8, &mut |c| {
            got.push(match c {
                Chunk::Data(x) => d(std::str::from_utf8(x).unwrap()),
                Chunk::Gap(n) => C::G(n),
            })
        });
        assert_eq!(got, [d("ab"), C::G(3), d("fg")]);
    }

    #[test]
    fn ack_before_data_in_capture_order_is_not_a_gap() {
        // The ACK was captured before the data it acknowledges (capture reordering).
        let mut r = Reassembler::default();
        r.syn(0);
        r.peer_acked(5, &mut |_| panic!("nothing held, nothing to declare"));
        assert_eq!(run(&mut r, &[(1, "abcd")], 100), [d("abcd")]);
    }

    #[test]
    fn flush_delivers_held_data_after_gaps() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut got = run(&mut r, &[(3, "cd"), (8, "h")], 100);
        r.flush(&mut |c| {
            got.push(match c {
                Chunk::Data(x) => d(std::str::from_utf8(x).unwrap()),
                Chunk::Gap(n) => C::G(n),
            })
        });
        assert_eq!(got, [C::G(2), d("cd"), C::G(3), d("h")]);
    }

    #[test]
    fn snaplen_cut_segment_delivers_what_was_captured_then_a_gap() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut got = Vec::new();
        r.push(1, b"226 Tr", 20, 100, &mut |c| got.push(format!("{c:?}")));
        r.push(21, b"ok", 2, 100, &mut |c| got.push(format!("{c:?}")));
        assert_eq!(
            got,
            [
                "Data([50, 50, 54, 32, 84, 114])",
                "Gap(14)",
                "Data([111, 107])"
            ]
        );
    }
}
