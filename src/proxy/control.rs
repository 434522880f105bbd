//! One relayed control connection: lines passed through byte for byte, except the
//! data-channel commands the proxy answers with its own endpoints (see `rewrite`);
//! a FIN becomes a half-close and a RST a RST on the other side; the engine is told
//! the server-side conversation. The only replies the proxy writes itself are listed
//! in `ProxyReply` (each counted, and logged as a `proxy_reply` record).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ftp::parse::{ReplyAssembler, ReplyStep};
use crate::ftp::{ConnId, Side};

use super::data::{self, ClientLeg, DataJob, ServerLeg};
use super::feed::{Note, Stream};
use super::lines::{LineBuf, Piece};
use super::own::{ProxyReply, write_own};
use super::relay::is_reset;
use super::rewrite::{self, ClientLine, DataRequest, UpstreamRequest};
use super::urgent::{self, Peek};
use super::{Shared, UpstreamMode};

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

struct Session {
    shared: Arc<Shared>,
    conn: ConnId,
    client: SocketAddr,
    server: SocketAddr,
    /// The proxy's address as the client reached it (data listeners go there).
    client_facing: IpAddr,
    server_facing: IpAddr,
    cr: OwnedReadHalf,
    cw: OwnedWriteHalf,
    sr: OwnedReadHalf,
    sw: OwnedWriteHalf,
    cbuf: LineBuf,
    sbuf: LineBuf,
    replies: ReplyAssembler,
    /// Commands passed on whose final reply has not come yet.
    outstanding: usize,
    /// After `234` (AUTH accepted) the stream is TLS: passed on unparsed.
    opaque: bool,
    /// The client's urgent byte, announced and not yet passed on.
    urgent: Option<u8>,
    /// The data connection being set up for the latest PASV/PORT.
    data: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    /// Data connections of this session being relayed now.
    relaying: Arc<AtomicUsize>,
    last_activity: Instant,
}

/// Relay one session whose server connection is up, until both sides are closed.
pub async fn run(shared: Arc<Shared>, client: TcpStream, server: TcpStream) -> End {
    let (Ok(client_addr), Ok(server_addr), Ok(cl), Ok(sl)) = (
        client.peer_addr(),
        server.peer_addr(),
        client.local_addr(),
        server.local_addr(),
    ) else {
        return End::Closed;
    };
    let conn = shared.next_conn();
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let max_line = shared.cfg.max_line;
    let mut s = Session {
        shared,
        conn,
        client: client_addr,
        server: server_addr,
        client_facing: cl.ip(),
        server_facing: sl.ip(),
        cr,
        cw,
        sr,
        sw,
        cbuf: LineBuf::new(max_line),
        sbuf: LineBuf::new(max_line),
        replies: ReplyAssembler::new(),
        outstanding: 0,
        opaque: false,
        urgent: None,
        data: None,
        relaying: Arc::new(AtomicUsize::new(0)),
        last_activity: Instant::now(),
    };
    s.feed(Stream::Opened {
        initiator: client_addr,
        responder: server_addr,
    })
    .await;
    // A transfer still relaying when the control connection ends is left to finish
    // (servers do the same); it ends on its own or by its idle limit.
    let end = s.relay().await;
    s.feed(Stream::Closed).await;
    end
}

impl Session {
    async fn feed(&self, ev: Stream) {
        self.shared.feed.send(Note::Stream(self.conn, ev)).await;
    }

    async fn relay(&mut self) -> End {
        let (mut client_eof, mut server_eof) = (false, false);
        let mut stop = self.shared.stop.clone();
        let idle = self.shared.cfg.idle_timeout;
        while !(client_eof && server_eof) {
            let deadline = self.last_activity + idle;
            tokio::select! {
                r = self.cr.read_buf(self.cbuf.for_read()), if !client_eof => match r {
                    Ok(0) => {
                        client_eof = true;
                        self.feed(Stream::Fin { from: Side::Initiator }).await;
                        let _ = self.sw.shutdown().await;
                    }
                    Ok(n) => {
                        self.last_activity = Instant::now();
                        if self.client_bytes(n).await.is_err() {
                            return self.reset(Side::Responder).await;
                        }
                    }
                    Err(e) if is_reset(&e) => return self.reset(Side::Initiator).await,
                    Err(_) => {}
                },
                r = self.sr.read_buf(self.sbuf.for_read()), if !server_eof => match r {
                    Ok(0) => {
                        server_eof = true;
                        self.feed(Stream::Fin { from: Side::Responder }).await;
                        let _ = self.cw.shutdown().await;
                    }
                    Ok(_) => {
                        self.last_activity = Instant::now();
                        if self.server_bytes().await.is_err() {
                            return self.reset(Side::Initiator).await;
                        }
                    }
                    Err(e) if is_reset(&e) => return self.reset(Side::Responder).await,
                    Err(_) => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    // A control connection is not idle while its data moves.
                    if self.relaying.load(Ordering::Relaxed) > 0 {
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

    /// `from` reset its connection: reset the other side too (SO_LINGER 0).
    async fn reset(&mut self, from: Side) -> End {
        self.feed(Stream::Reset { from }).await;
        let other = match from {
            Side::Initiator => self.sw.as_ref(),
            Side::Responder => self.cw.as_ref(),
        };
        let _ = other.set_zero_linger();
        match from {
            Side::Initiator => End::ClientReset,
            Side::Responder => End::ServerReset,
        }
    }

    /// Pass on what the client sent (`n` bytes just read), line by line; handle
    /// data-channel commands; pass an urgent byte on with its mark (see `urgent`).
    async fn client_bytes(&mut self, n: usize) -> std::io::Result<()> {
        if self.opaque {
            let bytes = self.cbuf.take_all();
            self.sw.write_all(&bytes).await?;
            self.feed_bytes(Side::Initiator, bytes).await;
            return Ok(());
        }
        if let Some((at, byte)) = self.urgent_mark(n) {
            self.client_pieces(at).await?;
            // What precedes the mark goes first, a partial line included (ftplib's
            // `ABOR\r` before its urgent LF), then the urgent byte with its mark.
            let before = self.cbuf.take_before(at);
            self.sw.write_all(&before).await?;
            self.feed_bytes(Side::Initiator, before).await;
            urgent::send(self.sw.as_ref(), byte).await?;
            self.shared.metrics.urgent(true, 1);
            // The engine sees the byte where a capture would: in the stream, at the mark.
            self.feed_bytes(Side::Initiator, vec![byte]).await;
        }
        self.client_pieces(usize::MAX).await
    }

    /// After a read of `n` bytes: whether the urgent mark was passed, and where (an
    /// absolute position in `cbuf`) and with which byte. Reads on (without waiting) while
    /// the mark is announced ahead, so that a mark at the end of what arrived is found
    /// now, not when the client next sends something.
    fn urgent_mark(&mut self, n: usize) -> Option<(usize, u8)> {
        let mut last_start = self.cbuf.end().saturating_sub(n);
        // Bounded: a mark far ahead is found by later reads.
        for _ in 0..4 {
            match urgent::peek(self.cr.as_ref()) {
                Peek::None => {
                    // Passed: the last read started at the mark (reads stop before it).
                    return self.urgent.take().map(|b| (last_start, b));
                }
                Peek::Ahead(b) => {
                    if b.is_some() {
                        self.urgent = b;
                    }
                    let before = self.cbuf.end();
                    match urgent::read_now(self.cr.as_ref(), self.cbuf.for_read_in_place()) {
                        Ok(0) => return None,
                        Ok(_) => last_start = before,
                        Err(_) => {
                            // Nothing more to read: passed only if the hole was skipped.
                            if urgent::peek(self.cr.as_ref()) == Peek::None {
                                return self.urgent.take().map(|b| (before, b));
                            }
                            return None;
                        }
                    }
                }
            }
        }
        None
    }

    /// Frame and pass on the client's whole lines that end before `limit`.
    async fn client_pieces(&mut self, limit: usize) -> std::io::Result<()> {
        while let Some(piece) = self.cbuf.next_piece_before(limit) {
            let line = match piece {
                Piece::Long(bytes) => {
                    self.sw.write_all(&bytes).await?;
                    self.feed_bytes(Side::Initiator, bytes).await;
                    continue;
                }
                Piece::Line(line) => line,
            };
            let (body, _) = rewrite::split_ending(&line);
            match rewrite::client_line(body) {
                ClientLine::Data(req) => self.data_request(req).await?,
                ClientLine::BadEndpoint(_) | ClientLine::Other => {
                    if crate::ftp::parse::command(body).is_some() {
                        self.outstanding += 1;
                    }
                    self.sw.write_all(&line).await?;
                    self.feed_bytes(Side::Initiator, line).await;
                }
            }
        }
        Ok(())
    }

    async fn feed_bytes(&self, from: Side, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.feed(Stream::Data { from, bytes }).await;
        }
    }

    /// Pass on what the server sent; follow replies to know when the server is idle.
    async fn server_bytes(&mut self) -> std::io::Result<()> {
        if self.opaque {
            let bytes = self.sbuf.take_all();
            self.cw.write_all(&bytes).await?;
            self.feed_bytes(Side::Responder, bytes).await;
            return Ok(());
        }
        while let Some(piece) = self.sbuf.next_piece() {
            let (bytes, code) = match piece {
                Piece::Long(bytes) => (bytes, None),
                Piece::Line(line) => {
                    let code = self.reply_of(&line);
                    (line, code)
                }
            };
            self.cw.write_all(&bytes).await?;
            self.feed_bytes(Side::Responder, bytes).await;
            if code == Some(234) {
                // AUTH TLS/SSL accepted: what follows is TLS on both sides.
                self.opaque = true;
                let rest = self.sbuf.take_all();
                self.cw.write_all(&rest).await?;
                self.feed_bytes(Side::Responder, rest).await;
                return Ok(());
            }
        }
        Ok(())
    }

    /// The code of the reply this line completes, if it completes one; counts it off.
    fn reply_of(&mut self, line: &[u8]) -> Option<u16> {
        let (body, _) = rewrite::split_ending(line);
        match self.replies.line(body) {
            ReplyStep::Reply { code, .. } => {
                if !code.is_preliminary() {
                    self.outstanding = self.outstanding.saturating_sub(1);
                }
                Some(code.get())
            }
            _ => None,
        }
    }

    /// Read one whole reply from the server (for the proxy's own request), feeding the
    /// engine its bytes but passing nothing to the client. Returns its code, the text
    /// of its last line and its raw bytes.
    async fn own_reply(&mut self) -> std::io::Result<Option<(u16, Vec<u8>, Vec<u8>)>> {
        let mut raw = Vec::new();
        loop {
            while let Some(piece) = self.sbuf.next_piece() {
                let line = match piece {
                    Piece::Long(b) => {
                        raw.extend_from_slice(&b);
                        continue;
                    }
                    Piece::Line(l) => l,
                };
                raw.extend_from_slice(&line);
                let (body, _) = rewrite::split_ending(&line);
                if let ReplyStep::Reply { code, .. } = self.replies.line(body)
                    && !code.is_preliminary()
                {
                    let text = body.get(4..).unwrap_or_default().to_vec();
                    self.feed_bytes(Side::Responder, raw.clone()).await;
                    return Ok(Some((code.get(), text, raw)));
                }
            }
            // A slow server is waited for as long as a silent session is: giving up
            // earlier would leave its late 229 to reach the client unrewritten.
            let wait = self.shared.cfg.idle_timeout;
            match tokio::time::timeout(wait, self.sr.read_buf(self.sbuf.for_read())).await {
                Ok(Ok(0)) | Err(_) => {
                    self.feed_bytes(Side::Responder, raw.clone()).await;
                    return Ok(None);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Send the proxy's own data-channel command upstream and read its reply.
    async fn ask(
        &mut self,
        req: UpstreamRequest,
    ) -> std::io::Result<Option<(u16, Vec<u8>, Vec<u8>)>> {
        let line = req.line();
        self.sw.write_all(&line).await?;
        self.feed_bytes(Side::Initiator, line).await;
        self.own_reply().await
    }

    /// Wait until the server has answered every command passed on, passing its replies
    /// through, so that the next reply read is the answer to the proxy's own command.
    async fn settle(&mut self) -> std::io::Result<()> {
        let wait = self.shared.cfg.idle_timeout;
        while self.outstanding > 0 {
            match tokio::time::timeout(wait, self.sr.read_buf(self.sbuf.for_read())).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => self.server_bytes().await?,
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    async fn own(&mut self, reply: ProxyReply) {
        let shared = self.shared.clone();
        write_own(&shared, &mut self.cw, reply, self.client, Some(self.server)).await;
    }

    /// PASV, EPSV, PORT or EPRT from the client: set up both legs, answer in the form
    /// the client asked for.
    async fn data_request(&mut self, req: DataRequest) -> std::io::Result<()> {
        let shared = self.shared.clone();
        if let DataRequest::Active { to, .. } = req
            && let Err(why) = rewrite::check_active(to, self.client.ip())
        {
            shared.metrics.data_refused(why.as_str());
            self.own(ProxyReply::Bounce).await;
            return Ok(());
        }
        if req == DataRequest::Pasv && self.client_facing.to_canonical().is_ipv6() {
            self.own(ProxyReply::PasvOnIpv6).await;
            return Ok(());
        }
        self.settle().await?;
        // The client leg's endpoint first: a proxy with no free port says so at once.
        let client_leg = match req {
            DataRequest::Active { to, .. } => ClientLeg::Connect {
                to,
                local_ip: self.client_facing,
            },
            _ => match shared.ports.listen(self.client_facing) {
                Ok(Some(listener)) => ClientLeg::Accept {
                    listener,
                    from: self.client.ip(),
                },
                Ok(None) | Err(_) => {
                    shared.metrics.data_connect_failed("client", "no_port");
                    self.own(ProxyReply::NoDataPort).await;
                    return Ok(());
                }
            },
        };
        let passive_upstream = match shared.cfg.upstream_mode {
            UpstreamMode::Passive => true,
            UpstreamMode::Active => false,
            UpstreamMode::Same => req.passive(),
        };
        let server_leg = if passive_upstream {
            let mut answer = self.ask(UpstreamRequest::Epsv).await?;
            if answer.as_ref().is_some_and(|(code, ..)| *code >= 500) {
                answer = self.ask(UpstreamRequest::Pasv).await?;
            }
            let Some((code, text, raw)) = answer else {
                return Ok(());
            };
            let endpoint = match code {
                227 | 229 => rewrite::server_endpoint(code, &text, self.server.ip()).ok(),
                _ => None,
            };
            let Some((to, _nat)) = endpoint else {
                // The server's own refusal (or a reply that names no endpoint) goes to
                // the client as the server wrote it.
                self.cw.write_all(&raw).await?;
                return Ok(());
            };
            ServerLeg::Connect { to }
        } else {
            let listener = match shared.ports.listen(self.server_facing) {
                Ok(Some(l)) => l,
                Ok(None) | Err(_) => {
                    shared.metrics.data_connect_failed("server", "no_port");
                    self.own(ProxyReply::NoDataPort).await;
                    return Ok(());
                }
            };
            let at = listener.local_addr()?;
            let extended = !at.ip().to_canonical().is_ipv4();
            let answer = self.ask(UpstreamRequest::Active { at, extended }).await?;
            let Some((code, _, raw)) = answer else {
                return Ok(());
            };
            if code != 200 {
                self.cw.write_all(&raw).await?;
                return Ok(());
            }
            ServerLeg::Accept {
                listener,
                from: self.server.ip(),
            }
        };
        let at = match &client_leg {
            ClientLeg::Accept { listener, .. } => listener.local_addr()?,
            ClientLeg::Connect { to, .. } => *to,
        };
        // The server's success, in the form the client asked for, at the proxy's port.
        self.cw.write_all(&rewrite::client_reply(req, at)).await?;
        shared.metrics.reply_rewritten();
        if let Some((old, started)) = self.data.take()
            && !started.load(Ordering::Relaxed)
        {
            // A new PASV/PORT replaces one whose connection never came (as a server
            // closes its old listener); one already relaying goes on.
            old.abort();
        }
        let started = Arc::new(AtomicBool::new(false));
        let job = DataJob {
            control: self.conn,
            client: client_leg,
            server: server_leg,
            started: started.clone(),
            relaying: self.relaying.clone(),
        };
        self.data = Some((tokio::spawn(data::run(job, shared)), started));
        Ok(())
    }
}
