//! The replies the proxy writes itself, never a server's: each counted
//! (`ftpwatch_proxy_replies_written_total`, `ftp_replies_total{origin="proxy"}`) and
//! logged as a `proxy_reply` record. A 426, 226 or 225 is always the server's.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;

use super::Shared;
use super::feed::Note;

/// Replies the proxy writes itself, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyReply {
    /// 421: the server could not be reached, or its connection was lost.
    UpstreamUnavailable,
    /// 421: `--max-sessions` sessions are open.
    TooManySessions,
    /// 421: transparent mode, and the destination is not allowed.
    DestinationRefused,
    /// 500: PORT/EPRT to a third address or a privileged port (FTP bounce).
    Bounce,
    /// 425: no data port free in `--data-ports`, or none can be opened.
    NoDataPort,
    /// 425: PASV from a client on IPv6 (a 227 names only IPv4 addresses).
    PasvOnIpv6,
    /// 421: the server leg's TLS failed (certificate not verified, handshake failed,
    /// or AUTH TLS refused under `--upstream-tls required`).
    UpstreamTlsFailed,
    /// 534: AUTH from a client, and the proxy has no certificate to offer.
    TlsNotOffered,
    /// 530: USER or PASS in clear under `--require-tls`.
    TlsRequired,
}

impl ProxyReply {
    pub fn code(self) -> u16 {
        match self {
            ProxyReply::UpstreamUnavailable
            | ProxyReply::TooManySessions
            | ProxyReply::DestinationRefused
            | ProxyReply::UpstreamTlsFailed => 421,
            ProxyReply::TlsNotOffered => 534,
            ProxyReply::TlsRequired => 530,
            ProxyReply::Bounce => 500,
            ProxyReply::NoDataPort | ProxyReply::PasvOnIpv6 => 425,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            ProxyReply::UpstreamUnavailable => "upstream_unavailable",
            ProxyReply::TooManySessions => "max_sessions",
            ProxyReply::DestinationRefused => "destination_refused",
            ProxyReply::Bounce => "bounce",
            ProxyReply::NoDataPort => "no_data_port",
            ProxyReply::PasvOnIpv6 => "pasv_on_ipv6",
            ProxyReply::UpstreamTlsFailed => "upstream_tls_failed",
            ProxyReply::TlsNotOffered => "tls_not_offered",
            ProxyReply::TlsRequired => "tls_required",
        }
    }

    pub fn line(self) -> &'static [u8] {
        match self {
            ProxyReply::UpstreamUnavailable => {
                b"421 Service not available: the FTP server cannot be reached (ftpwatch proxy).\r\n"
            }
            ProxyReply::TooManySessions => {
                b"421 Too many sessions through this proxy; try again later.\r\n"
            }
            ProxyReply::DestinationRefused => {
                b"421 This proxy does not relay to that destination.\r\n"
            }
            ProxyReply::Bounce => {
                b"500 PORT/EPRT refused: only your own address and a port above 1023.\r\n"
            }
            ProxyReply::NoDataPort => b"425 Can't open data connection: no free data port.\r\n",
            ProxyReply::PasvOnIpv6 => b"425 PASV needs IPv4; use EPSV.\r\n",
            ProxyReply::UpstreamTlsFailed => {
                b"421 Service not available: TLS to the FTP server failed (ftpwatch proxy).\r\n"
            }
            ProxyReply::TlsNotOffered => b"534 TLS is not offered by this proxy.\r\n",
            ProxyReply::TlsRequired => b"530 TLS required: send AUTH TLS first.\r\n",
        }
    }
}

/// Write a reply of the proxy's own to the client, count and log it.
pub async fn write_own(
    shared: &Shared,
    w: &mut (impl AsyncWriteExt + Unpin),
    reply: ProxyReply,
    client: SocketAddr,
    server: Option<SocketAddr>,
) {
    write_own_detailed(shared, w, reply, client, server, None).await
}

/// `write_own`, with what went wrong in words for the log (a TLS error's text).
pub async fn write_own_detailed(
    shared: &Shared,
    w: &mut (impl AsyncWriteExt + Unpin),
    reply: ProxyReply,
    client: SocketAddr,
    server: Option<SocketAddr>,
    detail: Option<String>,
) {
    // Counted before it is written: whoever reads the reply finds it counted.
    shared.metrics.reply_written(reply.code());
    let _ = w.write_all(reply.line()).await;
    let _ = w.flush().await;
    shared
        .feed
        .send(Note::ProxyReply {
            client,
            server,
            code: reply.code(),
            reason: reply.reason(),
            detail,
        })
        .await;
}
