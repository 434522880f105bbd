//! Securing the server leg's control connection, before the client sees anything:
//! read the greeting, ask FEAT (under `--upstream-tls auto`), AUTH TLS, the handshake
//! (certificate verified), then PBSZ 0 and PROT P so every data connection is
//! protected too. None of this exchange is the client's, so none of it is passed on or
//! told to the engine; the greeting is, afterwards, as the client's first reply.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ftp::parse::{ReplyAssembler, ReplyStep};
use crate::proxy::lines::{LineBuf, Piece};
use crate::proxy::rewrite::split_ending;

use super::{Handshake, UpstreamTls, Wire, connect};

pub struct Secured {
    pub wire: Wire,
    /// The server's greeting, to pass on (empty when it was not read here).
    pub greeting: Vec<u8>,
    /// The handshake, when the leg is under TLS.
    pub tls: Option<Handshake>,
    /// The server accepted PROT P: data connections are protected.
    pub prot_private: bool,
}

#[derive(Debug)]
pub enum Failure {
    /// The connection failed, or a reply did not come in time.
    Io(io::Error),
    /// The TLS handshake failed (the certificate did not verify, among others).
    Tls(io::Error),
    /// `--upstream-tls required`, and the server refused AUTH TLS (its reply).
    AuthRefused(String),
}

pub struct Upstream<'a> {
    pub mode: UpstreamTls,
    pub implicit: bool,
    pub config: Option<Arc<ClientConfig>>,
    pub name: ServerName<'static>,
    /// For each reply, and for the handshake.
    pub wait: Duration,
    pub max_line: usize,
    pub on_handshake: &'a (dyn Fn(Result<Handshake, &io::Error>) + Sync),
}

/// One reply of the server: its code, its lines' text, and its raw bytes.
struct Reply {
    code: u16,
    lines: Vec<String>,
    raw: Vec<u8>,
}

/// A reply of the server's to the proxy is at most this long, all its lines together.
const MAX_REPLY: usize = 64 << 10;

/// One whole reply, within `wait` in all (a server trickling lines is not waited for
/// longer) and `MAX_REPLY` bytes.
async fn reply(wire: &mut Wire, buf: &mut LineBuf, wait: Duration) -> Result<Reply, Failure> {
    tokio::time::timeout(wait, reply_unbounded(wire, buf))
        .await
        .map_err(|_| Failure::Io(io::ErrorKind::TimedOut.into()))?
}

async fn reply_unbounded(wire: &mut Wire, buf: &mut LineBuf) -> Result<Reply, Failure> {
    let mut asm = ReplyAssembler::new();
    let mut r = Reply {
        code: 0,
        lines: Vec::new(),
        raw: Vec::new(),
    };
    loop {
        while let Some(piece) = buf.next_piece() {
            let line = match piece {
                Piece::Long(b) => {
                    r.raw.extend_from_slice(&b);
                    continue;
                }
                Piece::Line(l) => l,
            };
            r.raw.extend_from_slice(&line);
            let (body, _) = split_ending(&line);
            r.lines.push(String::from_utf8_lossy(body).into_owned());
            if let ReplyStep::Reply { code, .. } = asm.line(body)
                && !code.is_preliminary()
            {
                r.code = code.get();
                return Ok(r);
            }
        }
        if r.raw.len() > MAX_REPLY {
            return Err(Failure::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "a reply over 64 KiB",
            )));
        }
        match wire.read_buf(buf.for_read()).await {
            Ok(0) => return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

async fn ask(
    wire: &mut Wire,
    buf: &mut LineBuf,
    line: &[u8],
    wait: Duration,
) -> Result<Reply, Failure> {
    let sent = tokio::time::timeout(wait, async {
        wire.write_all(line).await?;
        wire.flush().await
    })
    .await;
    match sent {
        Err(_) => return Err(Failure::Io(io::ErrorKind::TimedOut.into())),
        Ok(Err(e)) => return Err(Failure::Io(e)),
        Ok(Ok(())) => {}
    }
    reply(wire, buf, wait).await
}

/// Does a FEAT reply offer AUTH TLS (` AUTH TLS`, or `AUTH TLS;TLS-C;SSL` and the like)?
pub fn offers_auth_tls(feat: &[String]) -> bool {
    feat.iter().any(|l| {
        let l = l.trim().to_ascii_uppercase();
        l.strip_prefix("AUTH")
            .is_some_and(|rest| rest.starts_with(' ') && rest.contains("TLS"))
    })
}

pub async fn secure(tcp: TcpStream, up: &Upstream<'_>) -> Result<Secured, Failure> {
    let plain = |wire, greeting| Secured {
        wire,
        greeting,
        tls: None,
        prot_private: false,
    };
    let Some(config) = up.config.clone() else {
        return Ok(plain(Wire::Plain(tcp), Vec::new()));
    };
    let mut buf = LineBuf::new(up.max_line);
    let handshake = |tcp| async {
        let r = connect(config.clone(), up.name.clone(), tcp, up.wait).await;
        (up.on_handshake)(r.as_ref().map(|(_, h)| *h));
        r.map_err(Failure::Tls)
    };
    let (mut wire, hs) = if up.implicit {
        let (w, h) = handshake(tcp).await?;
        (w, Some(h))
    } else {
        (Wire::Plain(tcp), None)
    };
    let greeting = reply(&mut wire, &mut buf, up.wait).await?;
    if greeting.code != 220 {
        // Turned away (421 and the like): the client hears it as the server said it.
        return Ok(Secured {
            greeting: greeting.raw,
            tls: hs,
            ..plain(wire, Vec::new())
        });
    }
    let hs = match hs {
        Some(h) => h,
        None => {
            if up.mode == UpstreamTls::Auto {
                let feat = ask(&mut wire, &mut buf, b"FEAT\r\n", up.wait).await?;
                if feat.code != 211 || !offers_auth_tls(&feat.lines) {
                    return Ok(plain(wire, greeting.raw));
                }
            }
            let auth = ask(&mut wire, &mut buf, b"AUTH TLS\r\n", up.wait).await?;
            if auth.code != 234 {
                if up.mode == UpstreamTls::Required {
                    let text = auth.lines.last().cloned().unwrap_or_default();
                    return Err(Failure::AuthRefused(text));
                }
                return Ok(plain(wire, greeting.raw));
            }
            // Bytes after the 234, read in clear, would be taken as the server's words
            // under TLS (the STARTTLS injection of CVE-2011-0411).
            if !buf.pending().is_empty() {
                return Err(Failure::Tls(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes after the server's 234, before the TLS handshake",
                )));
            }
            let Wire::Plain(tcp) = wire else {
                unreachable!("the server leg is in clear until AUTH TLS")
            };
            let (w, h) = handshake(tcp).await?;
            wire = w;
            h
        }
    };
    let pbsz = ask(&mut wire, &mut buf, b"PBSZ 0\r\n", up.wait).await?;
    let prot_private = pbsz.code == 200 && {
        let prot = ask(&mut wire, &mut buf, b"PROT P\r\n", up.wait).await?;
        prot.code == 200
    };
    if !prot_private && up.mode == UpstreamTls::Required {
        // Required means the transfers too: data in clear would not be.
        return Err(Failure::AuthRefused("PBSZ 0 / PROT P refused".into()));
    }
    Ok(Secured {
        wire,
        greeting: greeting.raw,
        tls: Some(hs),
        prot_private,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn feat_lists_of_real_servers_offer_auth_tls() {
        // vsftpd 3.0.3 with ssl_enable, ProFTPD mod_tls, pure-ftpd with TLS.
        let vsftpd = lines(&[
            "211-Features:",
            " AUTH TLS",
            " EPRT",
            " PBSZ",
            " PROT",
            "211 End",
        ]);
        let proftpd = lines(&["211-Features:", " AUTH TLS", " CCC", " PBSZ", "211 End"]);
        let pure = lines(&[
            "211-Extensions supported:",
            " AUTH TLS",
            " PBSZ",
            "211 End.",
        ]);
        let multi = lines(&["211-Features:", " AUTH TLS;TLS-C;SSL;TLS-P", "211 End"]);
        for f in [vsftpd, proftpd, pure, multi] {
            assert!(offers_auth_tls(&f), "{f:?}");
        }
    }

    #[test]
    fn feat_without_auth_tls_does_not() {
        let none = lines(&["211-Features:", " EPSV", " MDTM", " SIZE", "211 End"]);
        let other = lines(&["211-Features:", " AUTH KERBEROS_V4", "211 End"]);
        let glued = lines(&["211-Features:", " AUTHTLS", "211 End"]);
        for f in [none, other, glued] {
            assert!(!offers_auth_tls(&f), "{f:?}");
        }
    }
}
