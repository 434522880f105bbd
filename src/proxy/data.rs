//! Data connections: the proxy's listening ports, each leg's setup (accept from the
//! one allowed peer, or connect), and the relay between the legs once both are up.
//! The client leg comes up first, so the server sees a data connection only when the
//! client made one, as it would without the proxy.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::ftp::ConnId;

use super::feed::{Note, Stream};
use super::relay::{self, Reporter};
use super::tls::{self, Socket, Wire, relay::TlsLeg};
use super::{Shared, failure_reason};

/// The ports the proxy listens on for data connections (`--data-ports`), handed out
/// in turn. Without a range the kernel picks an ephemeral port.
#[derive(Debug)]
pub struct PortPool {
    range: Option<(u16, u16)>,
    next: AtomicU32,
}

impl PortPool {
    pub fn new(range: Option<(u16, u16)>) -> Self {
        PortPool {
            range,
            next: AtomicU32::new(0),
        }
    }

    /// A listener on `ip` at the next free port of the range; `None` when every port
    /// is taken (counted and answered with 425 by the caller).
    pub fn listen(&self, ip: IpAddr) -> io::Result<Option<TcpListener>> {
        let Some((lo, hi)) = self.range else {
            return bind(SocketAddr::new(ip, 0)).map(Some);
        };
        let size = u32::from(hi - lo) + 1;
        for _ in 0..size {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % size;
            let port = lo + i as u16;
            match bind(SocketAddr::new(ip, port)) {
                Ok(l) => return Ok(Some(l)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

fn bind(at: SocketAddr) -> io::Result<TcpListener> {
    let s = if at.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A port of the range in TIME_WAIT from an earlier transfer is free to listen on.
    s.set_reuseaddr(true)?;
    s.bind(at)?;
    s.listen(8)
}

/// How the client leg comes up.
#[derive(Debug)]
pub enum ClientLeg {
    /// The client connects to the proxy (PASV/EPSV); only from its control address.
    Accept { listener: TcpListener, from: IpAddr },
    /// The proxy connects to the client (PORT/EPRT), from the address the client reached.
    Connect { to: SocketAddr, local_ip: IpAddr },
}

/// How the server leg comes up.
#[derive(Debug)]
pub enum ServerLeg {
    /// The server listens (the proxy sent EPSV/PASV).
    Connect { to: SocketAddr },
    /// The server connects to the proxy (the proxy sent PORT/EPRT).
    Accept { listener: TcpListener, from: IpAddr },
}

pub struct DataJob {
    pub control: ConnId,
    pub client: ClientLeg,
    pub server: ServerLeg,
    /// Set once the client leg is up: from then on the job is not replaced.
    pub started: Arc<AtomicBool>,
    /// The session's data connections being relayed.
    pub relaying: Arc<Relaying>,
    pub tls: DataTls,
}

/// A session's data connections being relayed now, and a wake-up when one ends.
#[derive(Debug, Default)]
pub struct Relaying {
    count: AtomicUsize,
    ended: tokio::sync::Notify,
}

impl Relaying {
    pub fn active(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// A data connection is under way (from its client leg's coming up) until the
    /// returned guard is dropped, whichever way the task ends.
    fn enter(self: &Arc<Self>) -> Active {
        self.count.fetch_add(1, Ordering::Relaxed);
        Active(self.clone())
    }

    /// Wait until none is being relayed, for at most `bound`.
    pub async fn settled(&self, bound: Duration) {
        let _ = tokio::time::timeout(bound, async {
            loop {
                let ended = self.ended.notified();
                tokio::pin!(ended);
                // Registered before the count is read: an end in between still wakes.
                ended.as_mut().enable();
                if self.active() == 0 {
                    return;
                }
                ended.await;
            }
        })
        .await;
    }
}

/// One data connection counted in `Relaying`, for as long as it lives.
struct Active(Arc<Relaying>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
        self.0.ended.notify_waiters();
    }
}

/// Which legs of a data connection are protected (PROT P), and how.
#[derive(Clone, Default)]
pub struct DataTls {
    /// The client chose PROT P: the proxy is TLS server on the client leg.
    pub client: Option<Arc<rustls::ServerConfig>>,
    /// The server accepted PROT P: the proxy is TLS client on the server leg, resuming
    /// the control connection's session.
    pub server: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
    /// `--require-tls-reuse`.
    pub require_reuse: bool,
}

impl DataTls {
    fn any(&self) -> bool {
        self.client.is_some() || self.server.is_some()
    }
}

#[derive(Debug)]
pub enum SetupError {
    Timeout,
    Io(io::Error),
}

impl SetupError {
    pub fn reason(&self) -> &'static str {
        match self {
            SetupError::Timeout => "timeout",
            SetupError::Io(e) => failure_reason(e),
        }
    }
}

/// Accept the first connection from `from` within `wait`; others are reset and counted.
async fn accept_from(
    listener: &TcpListener,
    from: IpAddr,
    wait: Duration,
    shared: &Shared,
) -> Result<TcpStream, SetupError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (s, peer) = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| SetupError::Timeout)?
            .map_err(SetupError::Io)?;
        if peer.ip().to_canonical() == from.to_canonical() {
            return Ok(s);
        }
        shared.metrics.data_refused("wrong_peer");
        let _ = s.set_zero_linger();
    }
}

async fn connect(
    to: SocketAddr,
    local_ip: Option<IpAddr>,
    wait: Duration,
) -> Result<TcpStream, SetupError> {
    let sock = if to.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(SetupError::Io)?;
    if let Some(ip) = local_ip.filter(|ip| ip.is_ipv4() == to.is_ipv4()) {
        sock.bind(SocketAddr::new(ip, 0)).map_err(SetupError::Io)?;
    }
    match tokio::time::timeout(wait, sock.connect(to)).await {
        Err(_) => Err(SetupError::Timeout),
        Ok(r) => r.map_err(SetupError::Io),
    }
}

/// Bring both legs up, report the connection to the engine, relay until it is over.
pub async fn run(job: DataJob, shared: Arc<Shared>) {
    let cfg = &shared.cfg;
    let client = match job.client {
        ClientLeg::Accept { listener, from } => {
            accept_from(&listener, from, cfg.accept_timeout, &shared).await
        }
        ClientLeg::Connect { to, local_ip } => {
            connect(to, Some(local_ip), cfg.connect_timeout).await
        }
    };
    let client = match client {
        Ok(s) => {
            job.started.store(true, Ordering::Relaxed);
            s
        }
        Err(e) => {
            shared.metrics.data_connect_failed("client", e.reason());
            return;
        }
    };
    // Under way from here: the session holds a final reply behind it (see `Relaying`).
    let _active = job.relaying.enter();
    let (server, server_listened) = match job.server {
        ServerLeg::Connect { to } => (connect(to, None, cfg.connect_timeout).await, true),
        ServerLeg::Accept { listener, from } => (
            accept_from(&listener, from, cfg.accept_timeout, &shared).await,
            false,
        ),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            shared.metrics.data_connect_failed("server", e.reason());
            // The client's connection cannot be served: reset it, as a refused
            // connection would have been.
            let _ = client.set_zero_linger();
            return;
        }
    };
    let ends = |s: &TcpStream| Some((s.local_addr().ok()?, s.peer_addr().ok()?));
    let (Some(client_leg), Some(server_leg)) = (ends(&client), ends(&server)) else {
        return;
    };
    // The engine's ends: who connected on the server leg, to whom; the FTP client
    // stands in for the proxy on the server leg when the server listened.
    let (initiator, responder) = if server_listened {
        (client_leg.1, server_leg.1)
    } else {
        (server_leg.1, server_leg.0)
    };
    let conn = shared.next_conn();
    shared
        .feed
        .send(Note::DataOpened {
            control: job.control,
            conn,
            initiator,
            responder,
            client_leg,
            server_leg,
        })
        .await;
    shared.metrics.data_connection(1);
    let report = Reporter {
        feed: &shared.feed,
        conn,
    };
    let lim = relay::Limits {
        idle: cfg.idle_timeout,
        buffer: cfg.data_buffer,
    };
    if job.tls.any() {
        if let Some((c, s)) = secure(client, server, &job.tls, &shared, conn).await {
            tls::relay::relay(c, s, lim, &report).await;
        }
    } else {
        relay::relay(client, server, lim, &report).await;
    }
    shared.metrics.data_connection(-1);
    shared.feed.send(Note::Stream(conn, Stream::Closed)).await;
}

/// The TLS handshakes of a protected data connection, both legs at once: clients
/// start theirs only after the server's 150, which comes once the server leg is up.
/// A leg that fails is counted, and both legs are then reset.
async fn secure(
    client: TcpStream,
    server: TcpStream,
    tls: &DataTls,
    shared: &Shared,
    conn: ConnId,
) -> Option<(TlsLeg, TlsLeg)> {
    let (Ok(cs), Ok(ss)) = (Socket::of(&client), Socket::of(&server)) else {
        return None;
    };
    let wait = shared.cfg.accept_timeout;
    let m = &shared.metrics.tls;
    let client_side = async {
        match &tls.client {
            None => Ok((Wire::Plain(client), None)),
            Some(cfg) => tls::accept(cfg.clone(), client, wait)
                .await
                .map(|(w, h)| (w, Some(h))),
        }
    };
    let server_side = async {
        match &tls.server {
            None => Ok((Wire::Plain(server), None)),
            Some((cfg, name)) => tls::connect(cfg.clone(), name.clone(), server, wait)
                .await
                .map(|(w, h)| (w, Some(h))),
        }
    };
    let (c, s) = tokio::join!(client_side, server_side);
    let mut ok = true;
    for (leg, r) in [("client", &c), ("server", &s)] {
        match r {
            Ok((_, Some(h))) => {
                m.handshake(leg, "data", Ok(h.version));
                let refused = leg == "client" && tls.require_reuse && !h.resumed;
                m.resumption(
                    leg,
                    match (h.resumed, refused) {
                        (true, _) => "resumed",
                        (false, true) => "refused",
                        (false, false) => "full",
                    },
                );
            }
            Ok((_, None)) => {}
            Err(e) => {
                m.handshake(leg, "data", Err(tls::failure_reason(e)));
                ok = false;
            }
        }
    }
    let (Ok((cw, ch)), Ok((sw, sh))) = (c, s) else {
        cs.reset_on_close();
        ss.reset_on_close();
        return None;
    };
    if tls.require_reuse && ch.is_some_and(|h| !h.resumed) {
        // As vsftpd's require_ssl_reuse would: not this session's client.
        ok = false;
    }
    if !ok {
        cs.reset_on_close();
        ss.reset_on_close();
        return None;
    }
    shared
        .feed
        .send(Note::DataTls {
            conn,
            client: ch.map(|h| h.version),
            server: sh.map(|h| h.version),
        })
        .await;
    Some((
        TlsLeg {
            wire: cw,
            socket: cs,
        },
        TlsLeg {
            wire: sw,
            socket: ss,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pool_hands_out_each_port_of_its_range_once_then_none() {
        let pool = PortPool::new(Some((47310, 47312)));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<TcpListener> = (0..3)
            .map(|_| pool.listen(ip).unwrap().expect("a free port"))
            .collect();
        let mut ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        ports.sort();
        assert_eq!(ports, vec![47310, 47311, 47312]);
        assert!(pool.listen(ip).unwrap().is_none(), "the range is exhausted");
        drop(held);
        assert!(pool.listen(ip).unwrap().is_some(), "freed ports come back");
    }
}
