//! One TCP connection of the proxy, in clear or under TLS, read and written the same
//! way; plus a duplicate of its descriptor for what TLS hides from the stream: the
//! socket's urgent data, SO_LINGER (to send a RST), a bare TCP shutdown (to pass on an
//! unclean TLS shutdown as one), and error readiness (a RST that arrives while writes
//! are queued).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

pub enum Wire {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A stand-in while the connection is being upgraded or downgraded: reads end,
    /// writes fail.
    Gone,
}

impl Wire {
    pub fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }
}

/// The socket under a `Wire`, by a duplicated descriptor (socket options and shutdown
/// act on the socket, whichever descriptor names it).
pub struct Socket(OwnedFd);

impl Socket {
    pub fn of(s: &TcpStream) -> io::Result<Socket> {
        s.as_fd().try_clone_to_owned().map(Socket)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.0
    }

    /// Closing the connection will send a RST.
    pub fn reset_on_close(&self) {
        let _ = socket2::SockRef::from(&self.0).set_linger(Some(Duration::ZERO));
    }

    /// A TCP FIN with no TLS close_notify before it: how an unclean TLS shutdown is
    /// passed on faithfully.
    pub fn shutdown_write(&self) {
        let _ = rustix::net::shutdown(&self.0, rustix::net::Shutdown::Write);
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Wire::Gone => Poll::Ready(Ok(())),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection being upgraded")
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Wire::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Wire::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_flush(cx),
            Wire::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Wire::Gone => Poll::Ready(Ok(())),
        }
    }

    /// Under TLS: close_notify, then the TCP FIN (RFC 4217's order).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Wire::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Wire::Gone => Poll::Ready(Ok(())),
        }
    }
}
