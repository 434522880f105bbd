//! TCP urgent data on the control connection: the Telnet Synch a client sends with
//! ABOR (RFC 959 §4.1.3; BSD ftp sends IAC as urgent, Python's ftplib the LF of
//! `ABOR\r\n`). The proxy passes the urgent byte on with its urgent mark, at its place
//! in the stream.
//!
//! How the place is found without SIOCATMARK (which would need `unsafe`): Linux stops a
//! read at the urgent mark when bytes precede it, and with SO_OOBINLINE off the urgent
//! byte is taken out of the stream (`recv(MSG_OOB)`), leaving a one-byte hole that a
//! read starting at the mark skips. A `MSG_OOB | MSG_PEEK` after each read tells whether
//! the mark is still ahead (the byte is there to peek) or was just passed: then the
//! read that passed it started exactly at it, since a read never crosses it otherwise.

use std::io;

use rustix::net::{RecvFlags, SendFlags};
use std::os::fd::{AsFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What a peek at the socket's urgent data says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// No urgent data, or the mark was passed.
    None,
    /// Urgent data is announced ahead; the byte, if it has arrived.
    Ahead(Option<u8>),
}

pub fn peek(s: impl AsFd) -> Peek {
    let mut b = [0u8; 1];
    match rustix::net::recv(s, &mut b[..], RecvFlags::OOB | RecvFlags::PEEK) {
        Ok((_, 1)) => Peek::Ahead(Some(b[0])),
        // The urgent pointer arrived before the byte it points at.
        Err(rustix::io::Errno::AGAIN) => Peek::Ahead(None),
        // EINVAL: nothing urgent (or already passed).
        _ => Peek::None,
    }
}

/// Read what is there now, appending to `buf` (at most `READ_CHUNK` bytes), without
/// waiting. Straight to the socket: tokio takes a short read as "drained" and would
/// answer from its readiness cache without reading, but the read that stopped at the
/// mark was short only because of the mark.
pub fn read_now(s: impl AsFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let at = buf.len();
    buf.resize(at + super::lines::READ_CHUNK, 0);
    let got = rustix::net::recv(s, &mut buf[at..], RecvFlags::DONTWAIT);
    let n = got.as_ref().map_or(0, |(_, n)| *n);
    buf.truncate(at + n);
    got.map(|_| n).map_err(io::Error::from)
}

/// Send `b` as urgent data (MSG_OOB): the peer sees the urgent mark after it. Through
/// the socket's own descriptor, not the stream (a TLS stream cannot carry urgent data,
/// and the server leg's stream may be one); the bytes before it were written already.
pub async fn send(s: impl AsFd, b: u8) -> io::Result<()> {
    // A full send buffer is waited out in short steps, for at most about a second: an
    // ABOR that cannot be sent by then has a dead peer.
    for _ in 0..1000 {
        match rustix::net::send(&s, &[b], SendFlags::OOB | SendFlags::DONTWAIT) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::ErrorKind::TimedOut.into())
}

/// A second registration of a control connection's socket (a duplicated descriptor)
/// for urgent-data readiness only (EPOLLPRI, which tokio's TcpStream never asks epoll
/// for); `None` if it cannot be had (then urgent data is found only by the peek after
/// each read).
///
/// `AsyncFd::with_interest` is deprecated because it is unsound for an inner type
/// whose descriptor can be closed or changed while registered. Here the inner type is
/// an `OwnedFd` the `AsyncFd` owns: it stays open and the same until the `AsyncFd` is
/// dropped, which deregisters it first: the one case that is sound, and no `unsafe`.
#[allow(deprecated)]
pub fn signal(s: &crate::proxy::tls::Socket) -> Option<AsyncFd<OwnedFd>> {
    let fd = s.fd().try_clone().ok()?;
    AsyncFd::with_interest(fd, Interest::PRIORITY).ok()
}

/// Resolves when urgent data is pending (EPOLLPRI); never without a registration.
pub async fn pending(s: Option<&AsyncFd<OwnedFd>>) {
    let Some(s) = s else {
        return std::future::pending().await;
    };
    if let Ok(mut guard) = s.ready(Interest::PRIORITY).await {
        // Looked at by the caller now; the next segment announces it again if it is
        // still pending (edge-triggered).
        guard.clear_ready();
    }
}
