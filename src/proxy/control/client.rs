//! What comes from the client: commands passed on line by line, the data-channel and
//! security commands the proxy answers itself, the urgent byte of an ABOR, and the
//! client leg's TLS going up (AUTH TLS) or down (CCC).

use std::io;

use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsStream;

use crate::ftp::Side;
use crate::proxy::lines::Piece;
use crate::proxy::relay::Leg;
use crate::proxy::rewrite::{self, ClientLine};
use crate::proxy::tls::commands::{self, ClientLeg, Security};
use crate::proxy::tls::{self, Wire};
use crate::proxy::urgent::{self, Peek};

use super::{Session, client_fault};

impl Session {
    /// Write to the client and flush (a TLS leg holds records until flushed). A failure
    /// is the client's side's (see `client_fault`).
    pub(super) async fn send_client(&mut self, bytes: &[u8]) -> io::Result<()> {
        async {
            self.cw.write_all(bytes).await?;
            self.cw.flush().await
        }
        .await
        .map_err(client_fault)
    }

    pub(super) async fn send_server(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sw.write_all(bytes).await?;
        self.sw.flush().await
    }

    /// Pass on what the client sent (`n` bytes just read), line by line; handle
    /// data-channel and security commands; pass an urgent byte on with its mark (see
    /// `urgent`; only a connection in clear has one).
    pub(super) async fn client_bytes(&mut self, n: usize) -> io::Result<()> {
        if self.after_ccc && !self.drop_close_notify() {
            return Ok(()); // The record is not whole yet.
        }
        if !self.client_tls
            && let Some((at, byte)) = self.urgent_mark(n)
        {
            self.client_pieces(at).await?;
            // What precedes the mark goes first, a partial line included (ftplib's
            // `ABOR\r` before its urgent LF), then the urgent byte with its mark.
            let before = self.cbuf.take_before(at);
            self.send_server(&before).await?;
            self.feed_bytes(Side::Initiator, before).await;
            if self.server_tls {
                // TLS has no urgent data: the byte goes in the stream.
                self.send_server(&[byte]).await?;
            } else {
                urgent::send(self.ssock.fd(), byte).await?;
            }
            self.shared.metrics.urgent(true, 1);
            // The engine sees the byte where a capture would: in the stream, at the mark.
            self.feed_bytes(Side::Initiator, vec![byte]).await;
        }
        self.client_pieces(usize::MAX).await
    }

    /// After CCC a client may answer the proxy's close_notify with its own: one TLS
    /// record (an alert, content type 21, in TLS 1.2; application data, 23, in TLS 1.3)
    /// in what is otherwise clear text. It is not a command: it is dropped, once whole.
    /// Returns false while it is not whole yet (the bytes stay held).
    fn drop_close_notify(&mut self) -> bool {
        let held = self.cbuf.pending();
        let Some(&first) = held.first() else {
            return true;
        };
        if first != 21 && first != 23 {
            // Clear text: no record came.
            self.after_ccc = false;
            return true;
        }
        if held.len() < 5 {
            return false;
        }
        let len = 5 + usize::from(u16::from_be_bytes([held[3], held[4]]));
        if held[1] != 3 || len > 5 + 18_432 {
            self.after_ccc = false;
            return true;
        }
        if held.len() < len {
            return false;
        }
        self.cbuf.skip(len);
        self.after_ccc = false;
        true
    }

    /// The client's socket says urgent data is pending: note the byte now, while the mark
    /// is still ahead. (Alone in its segment, the byte does not make the socket readable;
    /// the read that the next bytes allow starts at the mark and skips it, after which
    /// nothing would tell it was there.)
    pub(super) fn urgent_announced(&mut self) {
        if let Peek::Ahead(Some(b)) = urgent::peek(self.csock.fd()) {
            self.urgent = Some(b);
        }
    }

    /// After a read of `n` bytes: whether the urgent mark was passed, and where (an
    /// absolute position in `cbuf`) and with which byte. Reads on (without waiting) while
    /// the mark is announced ahead, so that a mark at the end of what arrived is found
    /// now, not when the client next sends something.
    fn urgent_mark(&mut self, n: usize) -> Option<(usize, u8)> {
        let mut last_start = self.cbuf.end().saturating_sub(n);
        // Bounded: a mark far ahead is found by later reads.
        for _ in 0..4 {
            match urgent::peek(self.csock.fd()) {
                Peek::None => {
                    // Passed: the last read started at the mark (reads stop before it).
                    return self.urgent.take().map(|b| (last_start, b));
                }
                Peek::Ahead(b) => {
                    if b.is_some() {
                        self.urgent = b;
                    }
                    let before = self.cbuf.end();
                    match urgent::read_now(self.csock.fd(), self.cbuf.for_read_in_place()) {
                        Ok(0) => return None,
                        Ok(_) => last_start = before,
                        Err(_) => {
                            // Nothing more to read: passed only if the hole was skipped.
                            if urgent::peek(self.csock.fd()) == Peek::None {
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
    async fn client_pieces(&mut self, limit: usize) -> io::Result<()> {
        while let Some(piece) = self.cbuf.next_piece_before(limit) {
            let line = match piece {
                Piece::Long(bytes) => {
                    self.send_server(&bytes).await?;
                    self.feed_bytes(Side::Initiator, bytes).await;
                    continue;
                }
                Piece::Line(line) => line,
            };
            let (body, _) = rewrite::split_ending(&line);
            let leg = ClientLeg {
                tls: self.client_tls,
                negotiated: self.client_negotiated,
                pbsz: self.client_pbsz,
                can_tls: self.tls.client_side.is_some(),
                require_tls: self.shared.cfg.tls.require_tls,
            };
            match commands::security(body, leg) {
                Security::Pass => {}
                answer => {
                    // Answered in turn: after the server's replies to what came before.
                    self.settle().await?;
                    self.secure(answer).await?;
                    continue;
                }
            }
            match rewrite::client_line(body) {
                ClientLine::Data(req) => self.data_request(req).await?,
                ClientLine::BadEndpoint(_) | ClientLine::Other => {
                    if crate::ftp::parse::command(body).is_some() {
                        self.outstanding += 1;
                    }
                    self.send_server(&line).await?;
                    self.feed_bytes(Side::Initiator, line).await;
                }
            }
        }
        Ok(())
    }

    /// A security command's answer, and what follows it.
    async fn secure(&mut self, answer: Security) -> io::Result<()> {
        match answer {
            Security::Pass => Ok(()),
            Security::Reply(r) => self.send_client(r).await,
            Security::Refuse(reply) => {
                self.own(reply).await;
                Ok(())
            }
            Security::Pbsz => {
                self.client_pbsz = true;
                self.send_client(commands::PBSZ_OK).await
            }
            Security::Prot(private) => {
                self.client_prot = private;
                self.send_client(commands::PROT_OK).await
            }
            Security::StartTls => {
                // Anything after AUTH TLS read in clear would be taken as sent under TLS
                // (the STARTTLS injection of CVE-2011-0411): a client waits for the 234,
                // so such bytes are someone else's. The session ends.
                if !self.cbuf.pending().is_empty() {
                    self.shared
                        .metrics
                        .tls
                        .handshake("client", "control", Err("protocol"));
                    return Err(client_fault(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bytes after AUTH TLS before its reply",
                    )));
                }
                self.send_client(commands::AUTH_OK).await?;
                self.start_client_tls().await.map_err(client_fault)
            }
            Security::Ccc => {
                self.send_client(commands::CCC_OK).await?;
                self.end_client_tls().await
            }
        }
    }

    /// The client's stream, taken out of the session to be upgraded or downgraded.
    fn take_client(&mut self) -> Wire {
        let (gone_r, gone_w) = tokio::io::split(Wire::Gone);
        let r = std::mem::replace(&mut self.cr, gone_r);
        let w = std::mem::replace(&mut self.cw, gone_w);
        r.unsplit(w)
    }

    fn put_client(&mut self, wire: Wire) {
        (self.cr, self.cw) = tokio::io::split(wire);
    }

    /// AUTH TLS was answered 234: the TLS handshake, the proxy as server.
    async fn start_client_tls(&mut self) -> io::Result<()> {
        let Some(cfg) = self.tls.client_side.clone() else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        let Wire::Plain(tcp) = self.take_client() else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let m = &self.shared.metrics.tls;
        match tls::accept(cfg, tcp, self.shared.cfg.connect_timeout).await {
            Ok((wire, h)) => {
                m.handshake("client", "control", Ok(h.version));
                self.put_client(wire);
                self.client_tls = true;
                self.client_negotiated = true;
                self.tls_note(Leg::Client, Some(h.version)).await;
                Ok(())
            }
            Err(e) => {
                m.handshake("client", "control", Err(tls::failure_reason(&e)));
                Err(e)
            }
        }
    }

    /// CCC was answered 200: the proxy's close_notify, and the connection is in clear
    /// again (RFC 4217 §6). The data connections stay as PROT said.
    async fn end_client_tls(&mut self) -> io::Result<()> {
        let Wire::Tls(stream) = self.take_client() else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let TlsStream::Server(stream) = *stream else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let (mut tcp, mut conn) = stream.into_inner();
        conn.send_close_notify();
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out)?;
        }
        tcp.write_all(&out).await?;
        self.put_client(Wire::Plain(tcp));
        self.client_tls = false;
        self.after_ccc = true;
        self.tls_note(Leg::Client, None).await;
        Ok(())
    }
}
