//! The same TCP segment seen twice within a few milliseconds is one segment: a gateway
//! captured on two interfaces sees a forwarded packet coming in and going out, and
//! `tcpdump -i any` records both. Later copies are dropped before they reach the
//! connection table (and counted). A genuine retransmission comes after at least a
//! retransmission timeout (200 ms on Linux), far outside the window.
//!
//! The key includes the advertised window: a window update repeats the sequence and
//! acknowledgement numbers of the ACK before it and is not a copy. A burst of RSTs a
//! kernel sends for each segment arriving on a closed socket is byte for byte the
//! same (IP id 0 included) and is counted once, which changes nothing downstream.
//!
//! A fixed table of recent fingerprints: constant memory, one hash per segment of a
//! tracked port; a collision only means a duplicate goes through, which the connection
//! table then treats as a retransmission.

use std::hash::BuildHasher;
use std::time::Duration;

use crate::decode::Segment;
use crate::ftp::Timestamp;

/// Enough for the segments of a 10 ms window at a few hundred thousand packets per
/// second, small enough (64 KiB) to stay in cache.
const SLOTS: usize = 1 << 12;

pub struct Dedup {
    window: Duration,
    slots: Box<[(u64, Timestamp)]>,
    hasher: foldhash::fast::RandomState,
}

impl Dedup {
    pub fn new(window: Duration) -> Self {
        Dedup {
            window,
            slots: vec![(0, Timestamp::ZERO); SLOTS].into_boxed_slice(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// True if `seg` at `ts` is a copy of a segment seen within the window.
    pub fn is_copy(&mut self, ts: Timestamp, seg: &Segment<'_>) -> bool {
        if self.window.is_zero() {
            return false;
        }
        let key = (
            seg.src,
            seg.dst,
            seg.seq,
            seg.ack,
            seg.flags.bits(),
            seg.window,
            seg.wire_len,
        );
        let fp = self.hasher.hash_one(key) | 1; // never 0, the empty slot
        let slot = &mut self.slots[fp as usize & (SLOTS - 1)];
        let close = |a: Timestamp, b: Timestamp| a.since(b).max(b.since(a)) <= self.window;
        if slot.0 == fp && close(ts, slot.1) {
            return true;
        }
        *slot = (fp, ts);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn seg(seq: u32) -> Segment<'static> {
        Segment {
            src: "10.0.0.2:4000".parse().unwrap(),
            dst: "10.0.0.1:21".parse().unwrap(),
            seq,
            ack: 7,
            flags: TcpFlags::new(TcpFlags::ACK | TcpFlags::PSH),
            window: 512,
            payload: b"NOOP\r\n",
            wire_len: 6,
        }
    }

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_nanos(n * 1_000_000)
    }

    #[test]
    fn a_copy_within_the_window_is_dropped_a_retransmission_is_not() {
        let mut d = Dedup::new(Duration::from_millis(10));
        assert!(!d.is_copy(ms(1000), &seg(1)));
        assert!(d.is_copy(ms(1000), &seg(1)), "loopback copy, same instant");
        assert!(d.is_copy(ms(1003), &seg(1)), "forwarded copy, 3 ms later");
        assert!(!d.is_copy(ms(1250), &seg(1)), "retransmission after an RTO");
        assert!(!d.is_copy(ms(1250), &seg(2)), "another segment");
    }

    #[test]
    fn a_window_update_is_not_a_copy_of_the_ack_before_it() {
        let mut d = Dedup::new(Duration::from_millis(10));
        let ack = seg(1);
        let mut update = seg(1);
        update.window = 4096;
        assert!(!d.is_copy(ms(1000), &ack));
        assert!(!d.is_copy(ms(1001), &update));
        assert!(d.is_copy(ms(1001), &update), "and its own copy is one");
    }

    #[test]
    fn a_copy_captured_out_of_order_is_still_a_copy() {
        let mut d = Dedup::new(Duration::from_millis(10));
        assert!(!d.is_copy(ms(1005), &seg(1)));
        assert!(d.is_copy(ms(1001), &seg(1)));
    }

    #[test]
    fn zero_window_disables() {
        let mut d = Dedup::new(Duration::ZERO);
        assert!(!d.is_copy(ms(1), &seg(1)));
        assert!(!d.is_copy(ms(1), &seg(1)));
    }
}
