//! Byte counting for one direction of a data connection, from sequence numbers alone:
//! the payload is never buffered, retransmissions are not counted twice, and bytes the
//! capture missed (or cut with its snapshot length) still count, because they crossed
//! the wire.

#[derive(Debug, Default, Clone, Copy)]
pub struct SeqCounter {
    /// Sequence number of the first byte counted.
    base: Option<u32>,
    /// Highest stream offset reached, relative to `base`.
    high: u64,
}

impl SeqCounter {
    /// The SYN was seen: data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// Bytes counted so far (the engine sums what `push` returns; tests read this).
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.high
    }

    /// A segment `[seq, seq + wire)`: returns how many new bytes it covers.
    pub fn push(&mut self, seq: u32, wire: u32) -> u64 {
        if wire == 0 {
            return 0;
        }
        let base = *self.base.get_or_insert(seq);
        let mark = base.wrapping_add(self.high as u32);
        // Relative to the high mark, so streams past 4 GiB count on.
        let start = seq.wrapping_sub(mark) as i32 as i64;
        let end = start + wire as i64;
        if end > 0 {
            self.high += end as u64;
            end as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_once_despite_retransmissions() {
        let mut c = SeqCounter::default();
        c.syn(999);
        assert_eq!(c.push(1000, 100), 100);
        assert_eq!(c.push(1000, 100), 0);
        assert_eq!(c.push(1050, 100), 50);
        assert_eq!(c.bytes(), 150);
    }

    #[test]
    fn missing_segments_still_count() {
        let mut c = SeqCounter::default();
        c.syn(0);
        assert_eq!(c.push(1, 10), 10);
        assert_eq!(c.push(21, 10), 20); // [11, 21) never captured
        assert_eq!(c.push(11, 10), 0);
        assert_eq!(c.bytes(), 30);
    }

    #[test]
    fn more_than_four_gibibytes_across_wraps() {
        let mut c = SeqCounter::default();
        c.syn(u32::MAX - 10);
        let mut seq = u32::MAX - 9;
        let chunk = 1 << 20;
        for _ in 0..5 * 1024 {
            c.push(seq, chunk);
            seq = seq.wrapping_add(chunk);
        }
        assert_eq!(c.bytes(), 5 << 30);
    }

    #[test]
    fn mid_stream_starts_at_first_segment() {
        let mut c = SeqCounter::default();
        assert_eq!(c.push(123_456, 1448), 1448);
        assert_eq!(c.bytes(), 1448);
    }
}
