//! Relaying a data connection when a leg is under TLS: bytes are decrypted on one leg
//! and encrypted on the other, so this copies through a buffer (no splice). The ends
//! are passed on as faithfully as in clear: a close_notify and FIN become a
//! close_notify and FIN (RFC 4217's order), a FIN without close_notify becomes a bare
//! FIN (counted as an unclean shutdown, and told to the engine as one), a RST a RST.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use std::time::Duration;

use crate::ftp::CloseHow;
use crate::proxy::relay::{Activity, DirEnd, Leg, LegEvent, Limits, Reporter, Tally, is_reset};

use super::{Socket, Wire};

/// One leg: its stream, and its socket for what the stream cannot do.
pub struct TlsLeg {
    pub wire: Wire,
    pub socket: Socket,
}

/// Records are at most 16 KiB of plaintext; a read never returns more than a few.
const CHUNK: usize = 64 << 10;

/// How a read from a leg ended, short of bytes.
enum Stop {
    /// close_notify (or a FIN in clear).
    Clean,
    /// A FIN with no close_notify before it.
    Unclean,
    Reset,
    DstReset,
    Idle,
}

struct Dir<'a> {
    from: Leg,
    src: ReadHalf<Wire>,
    src_errors: Option<TcpStream>,
    dst: WriteHalf<Wire>,
    dst_socket: &'a Socket,
}

/// Resolves when the socket reports an error (a RST arrived), whatever is queued.
async fn reset_arrives(s: &Option<TcpStream>) {
    let Some(s) = s else {
        return std::future::pending().await;
    };
    loop {
        match s.ready(Interest::ERROR).await {
            Ok(r) if r.is_error() => return,
            Ok(_) => {}
            Err(_) => return std::future::pending().await,
        }
    }
}

async fn stop(
    why: Stop,
    d: &mut Dir<'_>,
    tally: &mut Tally,
    report: &Reporter<'_>,
    idle: Duration,
) -> DirEnd {
    match why {
        Stop::Clean => {
            // close_notify must be written: a peer that never reads is not waited for
            // past the idle limit.
            let _ = tokio::time::timeout(idle, d.dst.shutdown()).await;
        }
        Stop::Unclean => d.dst_socket.shutdown_write(),
        _ => {}
    }
    tally.flush(d.from, report).await;
    let closed = |how| LegEvent::PeerClosed(how);
    match why {
        Stop::Clean => {
            report.send(d.from, closed(CloseHow::Fin)).await;
            DirEnd::Eof
        }
        Stop::Unclean => {
            report
                .send(d.from, closed(CloseHow::FinWithoutCloseNotify))
                .await;
            DirEnd::Eof
        }
        Stop::Reset => {
            report.send(d.from, closed(CloseHow::Rst)).await;
            DirEnd::SrcReset
        }
        Stop::DstReset => {
            report.send(d.from.other(), closed(CloseHow::Rst)).await;
            DirEnd::DstReset
        }
        Stop::Idle => DirEnd::Idle,
    }
}

async fn pump(mut d: Dir<'_>, lim: Limits, activity: &Activity, report: &Reporter<'_>) -> DirEnd {
    let idle = lim.idle;
    let mut buf = vec![0u8; lim.buffer.min(CHUNK)];
    let mut tally = Tally::new();
    loop {
        let n = match tokio::time::timeout(idle, d.src.read(&mut buf)).await {
            Err(_) if activity.quiet_for() < idle => continue,
            Err(_) => return stop(Stop::Idle, &mut d, &mut tally, report, idle).await,
            Ok(Ok(0)) => return stop(Stop::Clean, &mut d, &mut tally, report, idle).await,
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return stop(Stop::Unclean, &mut d, &mut tally, report, idle).await;
            }
            Ok(Err(e)) if is_reset(&e) => {
                return stop(Stop::Reset, &mut d, &mut tally, report, idle).await;
            }
            Ok(Err(_)) => continue,
        };
        activity.touch();
        tally.read += n as u64;
        let wrote = tokio::select! {
            biased;
            r = tokio::time::timeout(idle, async {
                d.dst.write_all(&buf[..n]).await?;
                d.dst.flush().await
            }) => match r {
                Ok(r) => r,
                // A peer that reads nothing for the idle limit: as idle.
                Err(_) => return stop(Stop::Idle, &mut d, &mut tally, report, idle).await,
            },
            _ = reset_arrives(&d.src_errors) => {
                return stop(Stop::Reset, &mut d, &mut tally, report, idle).await;
            }
        };
        if wrote.is_err() {
            return stop(Stop::DstReset, &mut d, &mut tally, report, idle).await;
        }
        tally.wrote(n, d.from, report).await;
    }
}

/// A second registration of the leg's socket (a duplicated descriptor), only ever
/// asked for error readiness: the stream itself is inside the TLS session.
fn errors_of(s: &Socket) -> Option<TcpStream> {
    let fd = s.fd().try_clone().ok()?;
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true).ok()?;
    TcpStream::from_std(std).ok()
}

/// Relay between the legs until both directions are done or one leg is reset; an
/// unclean TLS shutdown is reported through `report` like any close.
pub async fn relay(client: TlsLeg, server: TlsLeg, lim: Limits, report: &Reporter<'_>) {
    let activity = Activity::new();
    let (cs, ss) = (client.socket, server.socket);
    let (cr, cw) = tokio::io::split(client.wire);
    let (sr, sw) = tokio::io::split(server.wire);
    let up = pump(
        Dir {
            from: Leg::Client,
            src: cr,
            src_errors: errors_of(&cs),
            dst: sw,
            dst_socket: &ss,
        },
        lim,
        &activity,
        report,
    );
    let down = pump(
        Dir {
            from: Leg::Server,
            src: sr,
            src_errors: errors_of(&ss),
            dst: cw,
            dst_socket: &cs,
        },
        lim,
        &activity,
        report,
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let (from, end) = tokio::select! {
            e = &mut up, if !up_done => { up_done = true; (Leg::Client, e) }
            e = &mut down, if !down_done => { down_done = true; (Leg::Server, e) }
        };
        let reset = match end {
            DirEnd::Eof => continue,
            DirEnd::SrcReset => from.other(),
            DirEnd::DstReset => from,
            DirEnd::Idle => {
                for (leg, s) in [(Leg::Client, &cs), (Leg::Server, &ss)] {
                    s.reset_on_close();
                    report.send(leg, LegEvent::ProxyReset).await;
                }
                return;
            }
        };
        match reset {
            Leg::Client => cs.reset_on_close(),
            Leg::Server => ss.reset_on_close(),
        }
        return;
    }
}
