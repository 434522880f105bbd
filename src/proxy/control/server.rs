//! What comes from the server: replies passed on line by line and followed (to know
//! when the server has answered everything), and the replies to the proxy's own
//! data-channel commands, which go to the engine but not to the client.

use std::io;

use tokio::io::AsyncReadExt;

use crate::ftp::Side;
use crate::ftp::parse::ReplyStep;
use crate::proxy::lines::Piece;
use crate::proxy::own::{ProxyReply, write_own};
use crate::proxy::rewrite::{self, UpstreamRequest};

use super::Session;

/// The final replies that end a transfer (RFC 959 §5.4): the ones held behind the end
/// of the data connection. A NOOP's 200 during a transfer is not held.
const ENDS_TRANSFER: [u16; 7] = [226, 250, 421, 426, 451, 551, 552];

/// How long a final reply waits for the session's data connections to end.
const FINAL_REPLY_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// A reply of the server's to the proxy's own command: its code, the text of its last
/// line, and its raw bytes.
pub(super) type OwnReply = (u16, Vec<u8>, Vec<u8>);

impl Session {
    /// Pass on what the server sent; follow replies to know when the server is idle.
    pub(super) async fn server_bytes(&mut self) -> io::Result<()> {
        while let Some(piece) = self.sbuf.next_piece() {
            let bytes = match piece {
                Piece::Long(bytes) => bytes,
                Piece::Line(line) => {
                    let ends_transfer = self
                        .reply_of(&line)
                        .is_some_and(|c| ENDS_TRANSFER.contains(&c));
                    if ends_transfer && self.relaying.active() > 0 {
                        // RFC 4217's order, kept in clear too: the data connection's end
                        // (close_notify, FIN) reaches the client before the final reply.
                        // The server wrote it after its end of the data connection closed;
                        // the client leg's end may still be on its way. Bounded: a client
                        // that closes only after the reply waits this long once.
                        self.relaying.settled(FINAL_REPLY_HOLD).await;
                    }
                    line
                }
            };
            self.send_client(&bytes).await?;
            self.feed_bytes(Side::Responder, bytes).await;
        }
        Ok(())
    }

    /// Count off the command this line's reply answers, if it completes a final reply
    /// (and give its code).
    fn reply_of(&mut self, line: &[u8]) -> Option<u16> {
        let (body, _) = rewrite::split_ending(line);
        if let ReplyStep::Reply { code, .. } = self.replies.line(body)
            && !code.is_preliminary()
        {
            self.outstanding = self.outstanding.saturating_sub(1);
            return Some(code.get());
        }
        None
    }

    /// Read one whole reply from the server (for the proxy's own request), feeding the
    /// engine its bytes but passing nothing to the client.
    async fn own_reply(&mut self) -> io::Result<Option<OwnReply>> {
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
    pub(super) async fn ask(&mut self, req: UpstreamRequest) -> io::Result<Option<OwnReply>> {
        let line = req.line();
        self.send_server(&line).await?;
        self.feed_bytes(Side::Initiator, line).await;
        self.own_reply().await
    }

    /// Wait until the server has answered every command passed on, passing its replies
    /// through, so that the next reply read is the answer to the proxy's own command
    /// (or the proxy's own answer comes after the server's, in turn).
    pub(super) async fn settle(&mut self) -> io::Result<()> {
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

    pub(super) async fn own(&mut self, reply: ProxyReply) {
        let shared = self.shared.clone();
        write_own(&shared, &mut self.cw, reply, self.client, Some(self.server)).await;
    }
}
