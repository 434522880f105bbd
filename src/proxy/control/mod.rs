//! One relayed control connection: lines passed through byte for byte, except the
//! data-channel commands the proxy answers with its own endpoints (see `rewrite`) and
//! the security commands it answers itself (see `tls::commands`); a FIN becomes a
//! half-close and a RST a RST on the other side; the engine is told the server-side
//! conversation, in clear whatever each leg's TLS. The refusals the proxy writes itself
//! are listed in `ProxyReply` (each counted, and logged as a `proxy_reply` record).
//!
//! `client` holds what comes from the client (commands, urgent data, AUTH/CCC),
//! `server` what comes from the server (replies) and the proxy's own questions to it,
//! `data_request` the setting up of a data connection.

mod client;
mod data_request;
mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ftp::parse::ReplyAssembler;
use crate::ftp::{ConnId, Side};

use super::Shared;
use super::data::Relaying;
use super::feed::{Note, Stream};
use super::lines::LineBuf;
use super::relay::{Leg, is_reset};
use super::tls::{Handshake, SessionTls, Socket, Wire};
use super::urgent;

/// An error on the client's side of the session (its TLS handshake, a write to it, a
/// protocol violation): the session then ends as the client's doing.
#[derive(Debug)]
struct ClientFault(std::io::Error);

impl std::fmt::Display for ClientFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the client's side: {}", self.0)
    }
}

impl std::error::Error for ClientFault {}

fn client_fault(e: std::io::Error) -> std::io::Error {
    if is_client_fault(&e) {
        return e;
    }
    std::io::Error::new(e.kind(), ClientFault(e))
}

fn is_client_fault(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<ClientFault>())
}

/// How the session ended, for `ftpwatch_proxy_sessions_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Closed,
    ClientReset,
    ServerReset,
    IdleTimeout,
    Shutdown,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::ClientReset => "client_reset",
            End::ServerReset => "server_reset",
            End::IdleTimeout => "idle_timeout",
            End::Shutdown => "shutdown",
        }
    }
}

/// One side of the control connection: its stream halves and its socket.
pub struct Peer {
    pub wire: Wire,
    pub socket: Socket,
    /// The handshake, when the leg is under TLS from the start (implicit FTPS, or the
    /// server leg secured before the session began).
    pub tls: Option<Handshake>,
    pub addr: SocketAddr,
    /// The proxy's own address on this connection.
    pub local: SocketAddr,
}

/// The server leg, as set up before the session: its greeting (read while securing
/// it) and what its data connections are.
pub struct ServerSide {
    pub peer: Peer,
    pub greeting: Vec<u8>,
    /// The server accepted PROT P.
    pub prot_private: bool,
    pub name: ServerName<'static>,
}

struct Session {
    shared: Arc<Shared>,
    conn: ConnId,
    client: SocketAddr,
    server: SocketAddr,
    /// The proxy's address as the client reached it (data listeners go there).
    client_facing: IpAddr,
    server_facing: IpAddr,
    cr: ReadHalf<Wire>,
    cw: WriteHalf<Wire>,
    csock: Socket,
    sr: ReadHalf<Wire>,
    sw: WriteHalf<Wire>,
    ssock: Socket,
    cbuf: LineBuf,
    sbuf: LineBuf,
    replies: ReplyAssembler,
    /// Commands passed on whose final reply has not come yet.
    outstanding: usize,
    /// The client's urgent byte, announced and not yet passed on.
    urgent: Option<u8>,
    /// The client's socket registered once more, for urgent-data readiness (EPOLLPRI)
    /// only: an urgent byte that arrives alone is seen before the read that skips it.
    urgent_signal: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// The data connection being set up for the latest PASV/PORT.
    data: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    /// Data connections of this session being relayed now.
    relaying: Arc<Relaying>,
    last_activity: Instant,
    tls: SessionTls,
    /// The client leg's control connection is under TLS now.
    client_tls: bool,
    /// The server leg's control connection is under TLS.
    server_tls: bool,
    /// The client's TLS security exchange took place (it stands after CCC).
    client_negotiated: bool,
    /// The client's PBSZ was accepted.
    client_pbsz: bool,
    /// The client chose PROT P.
    client_prot: bool,
    /// The server accepted PROT P (from the proxy).
    server_prot: bool,
    server_name: ServerName<'static>,
    /// After CCC: the client's own close_notify may still come, in clear, and is dropped.
    after_ccc: bool,
}

/// Relay one session whose server connection is up, until both sides are closed.
pub async fn run(shared: Arc<Shared>, client: Peer, server: ServerSide, tls: SessionTls) -> End {
    let conn = shared.next_conn();
    let (cr, cw) = tokio::io::split(client.wire);
    let (sr, sw) = tokio::io::split(server.peer.wire);
    let max_line = shared.cfg.max_line;
    let mut s = Session {
        conn,
        client: client.addr,
        server: server.peer.addr,
        client_facing: client.local.ip(),
        server_facing: server.peer.local.ip(),
        cr,
        cw,
        csock: client.socket,
        sr,
        sw,
        ssock: server.peer.socket,
        cbuf: LineBuf::new(max_line),
        sbuf: LineBuf::new(max_line),
        replies: ReplyAssembler::new(),
        outstanding: 0,
        urgent: None,
        urgent_signal: None,
        data: None,
        relaying: Arc::new(Relaying::default()),
        last_activity: Instant::now(),
        tls,
        client_tls: client.tls.is_some(),
        server_tls: server.peer.tls.is_some(),
        client_negotiated: client.tls.is_some(),
        client_pbsz: false,
        client_prot: false,
        server_prot: server.prot_private,
        server_name: server.name,
        after_ccc: false,
        shared,
    };
    s.feed(Stream::Opened {
        initiator: s.client,
        responder: s.server,
    })
    .await;
    for (leg, hs) in [(Leg::Client, client.tls), (Leg::Server, server.peer.tls)] {
        if let Some(h) = hs {
            s.tls_note(leg, Some(h.version)).await;
        }
    }
    let end = match s.greet(server.greeting).await {
        Ok(()) => s.relay().await,
        Err(_) => End::ClientReset,
    };
    // A transfer still relaying when the control connection ends is left to finish
    // (servers do the same); it ends on its own or by its idle limit.
    s.feed(Stream::Closed).await;
    end
}

impl Session {
    async fn feed(&self, ev: Stream) {
        self.shared.feed.send(Note::Stream(self.conn, ev)).await;
    }

    async fn feed_bytes(&self, from: Side, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.feed(Stream::Data { from, bytes }).await;
        }
    }

    async fn tls_note(&self, leg: Leg, version: Option<&'static str>) {
        let note = Note::ControlTls {
            conn: self.conn,
            leg,
            version,
        };
        self.shared.feed.send(note).await;
    }

    /// The server's greeting, when it was read while securing the server leg.
    async fn greet(&mut self, greeting: Vec<u8>) -> std::io::Result<()> {
        if greeting.is_empty() {
            return Ok(());
        }
        self.cw.write_all(&greeting).await?;
        self.cw.flush().await?;
        self.feed_bytes(Side::Responder, greeting).await;
        Ok(())
    }

    async fn relay(&mut self) -> End {
        let (mut client_eof, mut server_eof) = (false, false);
        let mut stop = self.shared.stop.clone();
        let idle = self.shared.cfg.idle_timeout;
        while !(client_eof && server_eof) {
            let deadline = self.last_activity + idle;
            if !self.client_tls && self.urgent_signal.is_none() {
                self.urgent_signal = urgent::signal(&self.csock);
            }
            let watch_urgent = !self.client_tls && !client_eof && self.urgent.is_none();
            tokio::select! {
                _ = urgent::pending(self.urgent_signal.as_ref()), if watch_urgent => {
                    self.urgent_announced();
                }
                r = self.cr.read_buf(self.cbuf.for_read()), if !client_eof => match r {
                    Ok(0) => {
                        client_eof = true;
                        self.eof(Side::Initiator).await;
                    }
                    Ok(n) => {
                        self.last_activity = Instant::now();
                        if let Err(e) = self.client_bytes(n).await {
                            // Whose side failed: the client's (its TLS, a write to it),
                            // or the server's (a write to it).
                            let side = if is_client_fault(&e) { Side::Initiator } else { Side::Responder };
                            return self.reset(side).await;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        client_eof = true;
                        self.unclean(Side::Initiator).await;
                    }
                    Err(e) if is_reset(&e) => return self.reset(Side::Initiator).await,
                    Err(_) => {}
                },
                r = self.sr.read_buf(self.sbuf.for_read()), if !server_eof => match r {
                    Ok(0) => {
                        server_eof = true;
                        self.eof(Side::Responder).await;
                    }
                    Ok(_) => {
                        self.last_activity = Instant::now();
                        if self.server_bytes().await.is_err() {
                            return self.reset(Side::Initiator).await;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        server_eof = true;
                        self.unclean(Side::Responder).await;
                    }
                    Err(e) if is_reset(&e) => return self.reset(Side::Responder).await,
                    Err(_) => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    // A control connection is not idle while its data moves.
                    if self.relaying.active() > 0 {
                        self.last_activity = Instant::now();
                        continue;
                    }
                    return End::IdleTimeout;
                }
                _ = stop.changed() => return End::Shutdown,
            }
        }
        End::Closed
    }

    /// `from` closed its side (FIN, after its close_notify under TLS): close the other
    /// side's the same way (close_notify first, under TLS).
    async fn eof(&mut self, from: Side) {
        self.feed(Stream::Fin { from }).await;
        // Under TLS a close_notify is written first: bounded, as every write.
        let wait = self.shared.cfg.connect_timeout;
        let _ = match from {
            Side::Initiator => tokio::time::timeout(wait, self.sw.shutdown()).await,
            Side::Responder => tokio::time::timeout(wait, self.cw.shutdown()).await,
        };
    }

    /// `from` closed TCP under TLS without a close_notify: counted, and passed on as a
    /// bare FIN.
    async fn unclean(&mut self, from: Side) {
        let leg = match from {
            Side::Initiator => Leg::Client,
            Side::Responder => Leg::Server,
        };
        self.shared
            .metrics
            .tls
            .unclean_shutdown(leg.as_str(), "control");
        self.feed(Stream::Fin { from }).await;
        match from {
            Side::Initiator => self.ssock.shutdown_write(),
            Side::Responder => self.csock.shutdown_write(),
        }
    }

    /// `from` reset its connection: reset the other side too (SO_LINGER 0).
    async fn reset(&mut self, from: Side) -> End {
        self.feed(Stream::Reset { from }).await;
        match from {
            Side::Initiator => self.ssock.reset_on_close(),
            Side::Responder => self.csock.reset_on_close(),
        }
        match from {
            Side::Initiator => End::ClientReset,
            Side::Responder => End::ServerReset,
        }
    }
}
