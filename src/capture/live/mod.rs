//! Live capture: a small trait, so that the analysis never knows which backend feeds
//! it. `ring` is AF_PACKET with a TPACKET_V3 ring (the default: no system call per
//! packet); `pnet_backend` is AF_PACKET through pnet (our own socket, handed over with
//! pnet's `socket_fd` option; one poll and one recvfrom per packet); `replay` plays a
//! capture file in as if it were an interface, for tests and demos without privileges.

pub mod afpacket;
pub mod pnet_backend;
pub mod replay;
pub mod ring;

use std::fmt;
use std::io;
use std::time::Duration;

/// How long a backend waits for a frame before returning `Ok(None)`, so that its
/// thread can notice a shutdown.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

use super::LinkType;

/// Packets received and dropped by the kernel since the last call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelStats {
    pub packets: u64,
    pub drops: u64,
}

/// A frame as a backend hands it over.
pub struct RawFrame<'a> {
    pub link: LinkType,
    pub data: &'a [u8],
    /// The kernel's receive time, when the backend has it.
    pub ts: Option<super::FrameTime>,
}

/// One capture handle on one interface.
pub trait LiveCapture: Send {
    /// Wait up to `POLL_INTERVAL` for the next frame; `Ok(None)` when none came.
    fn next_frame(&mut self) -> io::Result<Option<RawFrame<'_>>>;
    /// Kernel counters since the last call.
    fn take_stats(&mut self) -> io::Result<KernelStats>;
}

#[derive(Debug)]
pub enum OpenError {
    NoSuchInterface(String),
    /// The operation needs a capability the process does not have.
    Permission {
        interface: String,
        capability: &'static str,
        what: &'static str,
    },
    UnsupportedLink {
        interface: String,
        arphrd: u32,
    },
    Io {
        interface: String,
        error: io::Error,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NoSuchInterface(i) => write!(
                f,
                "no network interface named {i:?} (see `ip link` for the interfaces of this host)"
            ),
            OpenError::Permission {
                interface,
                capability,
                what,
            } => write!(
                f,
                "capturing on {interface} needs {capability} ({what}); run as root, or grant it with `setcap cap_net_raw,cap_net_admin+ep` on the ftpwatch binary, or AmbientCapabilities= in its systemd unit"
            ),
            OpenError::UnsupportedLink { interface, arphrd } => write!(
                f,
                "interface {interface} has hardware type {arphrd}, which ftpwatch does not decode (Ethernet, loopback and raw-IP interfaces are supported)"
            ),
            OpenError::Io { interface, error } => write!(f, "capturing on {interface}: {error}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Opens captures by interface name; reopened after an interface comes back.
pub trait Opener: Send + Sync {
    /// `member` numbers the capture threads sharing one interface (PACKET_FANOUT).
    fn open(&self, interface: &str, member: usize) -> Result<Box<dyn LiveCapture>, OpenError>;
}
