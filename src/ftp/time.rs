//! Time as the engine sees it: a value carried in from packets (or, in live mode, from a
//! periodic tick). The engine never asks a clock; this type is all it knows of time.

use std::fmt;
use std::time::Duration;

/// A point in time, in nanoseconds since the Unix epoch (UTC).
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Whole seconds plus a sub-second part in nanoseconds (values ≥ 1e9 are carried).
    pub const fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// Seconds since the epoch as a float, rounded to microseconds: the JSON schema's unit.
    pub fn epoch_seconds(self) -> f64 {
        let micros = self.0.saturating_add(500) / 1_000;
        micros as f64 / 1e6
    }

    /// `self - earlier`, or zero when `earlier` is later (packet clocks can step back).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Signed difference `self - other` in seconds.
    pub fn seconds_after(self, other: Timestamp) -> f64 {
        (self.0 as i128 - other.0 as i128) as f64 / 1e9
    }

    /// `seconds_after`, rounded to microseconds: the event log's precision.
    pub fn micros_after(self, other: Timestamp) -> f64 {
        (self.seconds_after(other) * 1e6).round() / 1e6
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(add))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_and_rounds() {
        let t = Timestamp::from_secs_nanos(10, 1_500_000_000);
        assert_eq!(t.secs(), 11);
        assert_eq!(t.subsec_nanos(), 500_000_000);
        assert_eq!(Timestamp::from_nanos(1_000_000_499).epoch_seconds(), 1.0);
        assert_eq!(
            Timestamp::from_nanos(1_000_000_500).epoch_seconds(),
            1.000001
        );
    }

    #[test]
    fn the_far_future_does_not_overflow() {
        // Found by the pipeline fuzz target (a pcapng timestamp near 2^64 ns).
        assert!(Timestamp::from_nanos(u64::MAX).epoch_seconds() > 1.8e10);
        assert_eq!(Timestamp::from_secs_nanos(u64::MAX, 5).as_nanos(), u64::MAX);
    }

    #[test]
    fn differences_never_underflow() {
        let a = Timestamp::from_secs_nanos(5, 0);
        let b = Timestamp::from_secs_nanos(7, 250_000_000);
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(b.since(a), Duration::from_millis(2250));
        assert_eq!(a.seconds_after(b), -2.25);
    }
}
