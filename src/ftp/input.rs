//! What the engine is fed: stream events from a TCP connection table (or, later, from an
//! inline proxy's own sockets). Nothing here knows about packets.

use std::net::SocketAddr;

use super::time::Timestamp;

/// One TCP connection, numbered by whoever feeds the engine. Never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// An announced data endpoint the engine asked to be told about (see `Expectation`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpectId(pub u64);

/// Which end of a connection sent something.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that opened the connection (the SYN sender): the FTP client on a control
    /// connection, the connecting side on a data connection.
    Initiator,
    /// The end that accepted it: the FTP server on a control connection, the listener
    /// at the announced endpoint on a data connection.
    Responder,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// A connection to a configured FTP control port.
    Control,
    /// A connection that matched an endpoint the engine announced.
    Data(ExpectId),
}

/// Why a connection left the connection table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both ends sent FIN, or one sent RST.
    Finished,
    /// No packet for longer than the idle timeout.
    TimedOut,
    /// Dropped to make room (a bound was hit).
    Evicted,
    /// The capture ended with the connection still open.
    CaptureEnd,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// A new connection. `syn_seen` is false when it was picked up mid-stream, in which
    /// case the sides were inferred (from the control port, or the announced endpoint).
    Opened {
        kind: ConnKind,
        initiator: SocketAddr,
        responder: SocketAddr,
        syn_seen: bool,
    },
    /// In-order bytes of a control connection.
    Data {
        from: Side,
        bytes: &'a [u8],
    },
    /// New bytes on a data connection, counted from sequence numbers (the payload is
    /// not reassembled; retransmissions are not counted twice).
    Progress {
        from: Side,
        bytes: u64,
    },
    /// Bytes that were sent but are missing from the capture.
    Gap {
        from: Side,
        len: u64,
    },
    Fin {
        from: Side,
    },
    Reset {
        from: Side,
    },
    /// A FIN on a TLS connection without a TLS close_notify before it. Only a feed that
    /// terminates the TLS (the proxy) can know; capture mode never sends it.
    FinWithoutCloseNotify {
        from: Side,
    },
    Closed(CloseReason),
}

/// A stream event with its time and connection.
#[derive(Debug)]
pub struct Input<'a> {
    pub ts: Timestamp,
    pub conn: ConnId,
    pub event: StreamEvent<'a>,
}
