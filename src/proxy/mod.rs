//! `ftpwatch proxy`: an inline FTP proxy that relays the control connection and every
//! data connection faithfully, and feeds the same sans-IO engine as capture mode from
//! its own sockets (not through capture, decode or the connection table), so every
//! transfer gets the outcome, cause and metrics capture mode gives, known first-hand.
//!
//! Tasks on tokio: one per listener (accept), one per session (`control`), one per data
//! connection (`data`, which relays with `relay`). The engine runs on its own thread
//! (`feed`), fed notes over a bounded channel. `rewrite` is the sans-IO part of the
//! control channel: which lines the proxy changes, and how.

mod control;
mod data;
mod feed;
mod lines;
mod own;
mod relay;
mod rewrite;
mod target;
pub mod tls;
mod urgent;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::ftp::ConnId;
use crate::sink::metrics::ProxyMetrics;

pub use feed::{Analysis, Feed, Msg, run as run_analysis};
pub use own::ProxyReply;
pub use relay::Leg;
pub use target::{Cidr, Upstream};
pub use tls::{TlsConfig, TlsOptions, UpstreamTls};

use control::{Peer, ServerSide};
use tls::{Socket, Wire};

/// Which data connection the proxy opens toward the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMode {
    /// EPSV, or PASV if the server refuses EPSV: the proxy connects (default; works
    /// through the server's firewall as any client would).
    Passive,
    /// PORT/EPRT: the server connects to the proxy.
    Active,
    /// As the client asked.
    Same,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: Upstream,
    pub upstream_mode: UpstreamMode,
    /// Ports for the proxy's data listeners; `None`: ephemeral ports.
    pub data_ports: Option<(u16, u16)>,
    pub max_sessions: usize,
    /// Connecting to the server or to a client's PORT endpoint.
    pub connect_timeout: Duration,
    /// Waiting for a peer to connect to a data listener.
    pub accept_timeout: Duration,
    /// A session with nothing moving on its control or data connections, or a data
    /// connection with nothing moving, is closed after this long.
    pub idle_timeout: Duration,
    /// The engine's line cap; longer lines are passed on unparsed.
    pub max_line: usize,
    /// Bytes held per data direction (the splice pipe, or the copy buffer).
    pub data_buffer: usize,
    pub tls: tls::TlsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            upstream: Upstream::Transparent { allow: Vec::new() },
            upstream_mode: UpstreamMode::Passive,
            data_ports: None,
            max_sessions: 1024,
            connect_timeout: Duration::from_secs(10),
            accept_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(900),
            max_line: 8192,
            data_buffer: relay::DATA_BUFFER,
            tls: tls::TlsConfig::default(),
        }
    }
}

/// What every task of the proxy shares.
pub struct Shared {
    pub cfg: Config,
    pub feed: Feed,
    pub metrics: ProxyMetrics,
    ports: data::PortPool,
    next_conn: AtomicU64,
    sessions: Arc<Semaphore>,
    /// Set at the end of the drain: sessions still open are closed.
    stop: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(
        cfg: Config,
        feed: Feed,
        metrics: ProxyMetrics,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Shared {
            ports: data::PortPool::new(cfg.data_ports),
            sessions: Arc::new(Semaphore::new(cfg.max_sessions)),
            cfg,
            feed,
            metrics,
            next_conn: AtomicU64::new(1),
            stop,
        }
    }

    fn next_conn(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Sessions open now.
    pub fn sessions_open(&self) -> usize {
        self.cfg.max_sessions - self.sessions.available_permits()
    }
}

/// A connection error as a bounded label.
pub fn failure_reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "reset",
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
        _ => match e.raw_os_error() {
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => "unreachable",
            _ => "other",
        },
    }
}

/// How a listener's clients start: in clear (port 21), or under TLS from the first
/// byte (implicit FTPS, port 990).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Ftp,
    ImplicitFtps,
}

/// Accept sessions on `listener` until `accepting` turns false.
pub async fn accept_loop(
    listener: TcpListener,
    kind: Listener,
    shared: Arc<Shared>,
    mut accepting: watch::Receiver<bool>,
) {
    loop {
        let (client, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    eprintln!("ftpwatch: accepting an FTP client: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = accepting.changed() => {
                if !*accepting.borrow() { return; }
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move { session(client, kind, shared).await });
    }
}

fn peer(tcp: TcpStream, tls: Option<tls::Handshake>) -> io::Result<(Peer, TcpStream)> {
    let p = Peer {
        socket: Socket::of(&tcp)?,
        addr: tcp.peer_addr()?,
        local: tcp.local_addr()?,
        tls,
        wire: Wire::Gone,
    };
    Ok((p, tcp))
}

async fn session(client: TcpStream, kind: Listener, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let destination = target::destination(&shared.cfg.upstream, &client).await;
    let Ok((mut client_peer, client)) = peer(client, None) else {
        return;
    };
    // The session's place first: `--max-sessions` bounds TLS handshakes too.
    let permit = shared.sessions.clone().try_acquire_owned().ok();
    if permit.is_none() && kind == Listener::ImplicitFtps {
        // Its 421 would need a handshake first: it is closed, and counted.
        shared.metrics.session_refused("max_sessions");
        client_peer.socket.reset_on_close();
        return;
    }
    // Implicit FTPS: TLS before anything, the proxy's own refusals included.
    let mut client = match (kind, shared.cfg.tls.client_side.clone()) {
        (Listener::ImplicitFtps, Some(cfg)) => {
            let m = &shared.metrics.tls;
            match tls::accept(cfg, client, shared.cfg.connect_timeout).await {
                Ok((wire, h)) => {
                    m.handshake("client", "control", Ok(h.version));
                    client_peer.tls = Some(h);
                    wire
                }
                Err(e) => {
                    m.handshake("client", "control", Err(tls::failure_reason(&e)));
                    return;
                }
            }
        }
        _ => Wire::Plain(client),
    };
    let c = (&mut client, &client_peer);
    let Some(permit) = permit else {
        shared.metrics.session_refused("max_sessions");
        refuse(&shared, c, ProxyReply::TooManySessions, None).await;
        return;
    };
    let dest = match destination {
        Ok(d) => d,
        Err(target::Refusal::NotAllowed(dest)) => {
            shared.metrics.session_refused("destination_refused");
            refuse(&shared, c, ProxyReply::DestinationRefused, Some(dest)).await;
            return;
        }
        Err(target::Refusal::NoOriginalDestination) => {
            shared.metrics.session_refused("no_original_dst");
            refuse(&shared, c, ProxyReply::DestinationRefused, None).await;
            return;
        }
        Err(target::Refusal::Resolve(e)) => {
            eprintln!("ftpwatch: resolving the upstream server: {e}");
            shared.metrics.upstream_failed("other");
            refuse(&shared, c, ProxyReply::UpstreamUnavailable, None).await;
            return;
        }
    };
    let connected =
        tokio::time::timeout(shared.cfg.connect_timeout, TcpStream::connect(dest)).await;
    let server = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.metrics.upstream_failed(failure_reason(&e));
            refuse(&shared, c, ProxyReply::UpstreamUnavailable, Some(dest)).await;
            return;
        }
        Err(_) => {
            shared.metrics.upstream_failed("timeout");
            refuse(&shared, c, ProxyReply::UpstreamUnavailable, Some(dest)).await;
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let Ok((server_peer, server)) = peer(server, None) else {
        return;
    };
    // One TLS configuration per session, for its control and data connections alike:
    // a data connection resumes the TLS session of this session's control connection.
    let session_tls = shared.cfg.tls.for_session();
    let up = session_tls.upstream.clone();
    let Some(server_side) = secure_upstream(&shared, server, server_peer, dest, c, up).await else {
        return;
    };
    shared.metrics.session_opened();
    client_peer.wire = client;
    let end = control::run(shared.clone(), client_peer, server_side, session_tls).await;
    shared.metrics.session_closed(end.as_str());
    drop(permit);
}

/// The server leg's TLS, as `--upstream-tls` says; a failure is answered with a 421
/// that says so, counted and logged with its reason.
async fn secure_upstream(
    shared: &Shared,
    server: TcpStream,
    mut server_peer: Peer,
    dest: SocketAddr,
    (client, client_peer): (&mut Wire, &Peer),
    config: Option<Arc<rustls::ClientConfig>>,
) -> Option<ServerSide> {
    let t = &shared.cfg.tls;
    let name = tls::server_name(shared.cfg.upstream.host(), dest.ip());
    let m = &shared.metrics.tls;
    let on_handshake = |r: Result<tls::Handshake, &io::Error>| match r {
        Ok(h) => m.handshake("server", "control", Ok(h.version)),
        Err(e) => m.handshake("server", "control", Err(tls::failure_reason(e))),
    };
    let up = tls::upstream::Upstream {
        mode: t.upstream,
        implicit: t.upstream_implicit,
        config,
        name: name.clone(),
        wait: shared.cfg.connect_timeout,
        max_line: shared.cfg.max_line,
        on_handshake: &on_handshake,
    };
    let (reply, detail) = match tls::upstream::secure(server, &up).await {
        Ok(s) => {
            server_peer.tls = s.tls;
            server_peer.wire = s.wire;
            return Some(ServerSide {
                peer: server_peer,
                greeting: s.greeting,
                prot_private: s.prot_private,
                name,
            });
        }
        Err(tls::upstream::Failure::Io(e)) => {
            shared.metrics.upstream_failed(failure_reason(&e));
            (ProxyReply::UpstreamUnavailable, None)
        }
        Err(tls::upstream::Failure::Tls(e)) => {
            shared.metrics.upstream_failed("tls");
            (
                ProxyReply::UpstreamTlsFailed,
                Some(format!("TLS handshake: {e}")),
            )
        }
        Err(tls::upstream::Failure::AuthRefused(text)) => {
            shared.metrics.upstream_failed("tls");
            (
                ProxyReply::UpstreamTlsFailed,
                Some(format!("AUTH TLS refused: {text}")),
            )
        }
    };
    if let Some(d) = &detail {
        eprintln!("ftpwatch: upstream {dest}: {d}");
    }
    let addr = client_peer.addr;
    let wait = shared.cfg.connect_timeout;
    let _ = tokio::time::timeout(
        wait,
        own::write_own_detailed(shared, client, reply, addr, Some(dest), detail),
    )
    .await;
    let _ = tokio::io::AsyncWriteExt::shutdown(client).await;
    None
}

/// Answer a client the proxy cannot serve with one of its own replies, then close.
async fn refuse(
    shared: &Shared,
    (client, peer): (&mut Wire, &Peer),
    reply: ProxyReply,
    server: Option<SocketAddr>,
) {
    let wait = shared.cfg.connect_timeout;
    let _ = tokio::time::timeout(
        wait,
        own::write_own(shared, client, reply, peer.addr, server),
    )
    .await;
    let _ = tokio::io::AsyncWriteExt::shutdown(client).await;
}
