//! A frame's time, as its source tells it: nanoseconds since the Unix epoch (UTC), from
//! a capture file's record or the kernel's receive stamp. The pipeline turns it into the
//! engine's own time once; nothing in this layer knows the engine's types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameTime(u64);

impl FrameTime {
    pub const ZERO: FrameTime = FrameTime(0);

    pub const fn from_nanos(nanos: u64) -> Self {
        FrameTime(nanos)
    }

    /// Whole seconds plus a sub-second part in nanoseconds (saturating: a corrupt
    /// record's far-future stamp does not wrap).
    pub const fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        FrameTime(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// The operating system's clock (for frames whose backend gives no stamp).
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        FrameTime::from_secs_nanos(d.as_secs(), u64::from(d.subsec_nanos()))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_nanoseconds() {
        let t = FrameTime::from_secs_nanos(1_700_000_000, 1_250_000_000);
        assert_eq!(t.as_nanos(), 1_700_000_001_250_000_000);
        assert_eq!(FrameTime::from_secs_nanos(u64::MAX, 1).as_nanos(), u64::MAX);
        assert!(FrameTime::now().as_nanos() > 1_700_000_000_000_000_000);
    }
}
