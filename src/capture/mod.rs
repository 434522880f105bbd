//! Sources of frames: capture files (pcap, pcapng) and, in live mode, the kernel.
//! Only this layer knows about files, sockets or the operating system's clock.

mod bytes;
mod error;
mod file;
pub mod live;
mod pcap;
mod pcapng;
mod time;
/// pcap and pcapng writers, for captures built by tests, benchmarks and the lab.
pub mod writer;

pub use error::{CaptureError, ErrorKind};
pub use file::FileSource;
pub use time::FrameTime;

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry. The
/// decoder is chosen from this, never guessed from the bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// DLT_RAW as OpenBSD (14) and most other systems (12) number it in files.
    pub const RAW_12: LinkType = LinkType(12);
    pub const RAW_14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: FrameTime,
    pub link: LinkType,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
    /// The length on the wire.
    pub orig_len: u32,
    /// TCP payload bytes captured but left out of `data` because nothing reads them
    /// (live capture keeps only the headers of segments off the control ports).
    /// Unlike a snapshot-length cut, this is neither lost nor counted as truncation.
    pub elided: u32,
}

/// A record the source skipped without losing its place in the capture.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SkippedRecord {
    /// A packet record with no bytes.
    Empty,
    /// Captured length above the original length, or a packet that overruns its block.
    Inconsistent,
    /// An enhanced packet block naming an interface that was never described.
    UnknownInterface,
}

impl SkippedRecord {
    pub const ALL: [SkippedRecord; 3] = [
        SkippedRecord::Empty,
        SkippedRecord::Inconsistent,
        SkippedRecord::UnknownInterface,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkippedRecord::Empty => "empty",
            SkippedRecord::Inconsistent => "inconsistent_length",
            SkippedRecord::UnknownInterface => "unknown_interface",
        }
    }
}

/// What a source yields.
#[derive(Debug)]
pub enum Next<'a> {
    Frame(Frame<'a>),
    Skipped(SkippedRecord),
    End,
}

/// Anything that yields frames. A source that cannot go on returns `Err`; what it
/// yielded before stands.
pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Next<'_>, CaptureError>;
}
