//! Relaying one data connection between its two legs, faithfully: bytes unchanged, a
//! FIN on one leg becomes a `shutdown(Write)` on the other (a half-close stays a
//! half-close), and a reset becomes a reset (SO_LINGER 0), so the proxy never turns a
//! clean close into an abort or hides one. Each direction holds one bounded buffer.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

use crate::ftp::{CloseHow, ConnId};

use super::feed::{Feed, Note};

/// The per-direction buffer of a data connection by default (`--data-buffer`).
pub const DATA_BUFFER: usize = 64 << 10;

/// What bounds one relayed data connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Both directions silent this long: both legs are reset.
    pub idle: Duration,
    /// Bytes held per direction: the copy buffer, or the splice pipe's capacity.
    pub buffer: usize,
}

/// One of the two legs of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Between the FTP client and the proxy.
    Client,
    /// Between the proxy and the FTP server.
    Server,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Client => "client",
            Leg::Server => "server",
        }
    }

    pub fn other(self) -> Leg {
        match self {
            Leg::Client => Leg::Server,
            Leg::Server => Leg::Client,
        }
    }
}

/// What happened on a leg, as the relay saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// `n` bytes read from this leg's peer (and passed to the other leg).
    Read(u64),
    /// `n` bytes written to this leg's peer.
    Written(u64),
    /// This leg's peer closed (FIN) or reset (RST) it. The relay at once does the same
    /// to the other leg (shutdown(Write), or RST), so that is not reported separately.
    PeerClosed(CloseHow),
    /// The proxy reset this leg on its own (both directions idle past the limit).
    ProxyReset,
}

/// Where a relay reports its legs' events: the feed, for one data connection.
pub struct Reporter<'a> {
    pub feed: &'a Feed,
    pub conn: ConnId,
}

impl Reporter<'_> {
    pub(super) async fn send(&self, leg: Leg, ev: LegEvent) {
        self.feed.send(Note::Leg(self.conn, leg, ev)).await;
    }
}

/// How one direction ended.
pub(super) enum DirEnd {
    /// The source sent FIN; the destination was shut down for writing.
    Eof,
    /// The source reset its leg.
    SrcReset,
    /// Writing to the destination failed: its peer reset (or is gone).
    DstReset,
    /// Nothing moved either way for the idle limit.
    Idle,
}

pub(super) fn is_reset(e: &io::Error) -> bool {
    // A read error on an established socket is a reset in practice (ECONNRESET,
    // ETIMEDOUT after retransmissions, EPIPE); all of them end the leg abruptly.
    !matches!(e.kind(), io::ErrorKind::Interrupted)
}

/// When either direction last moved bytes, in milliseconds since `base`: the relay is
/// idle only when both are.
pub(super) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub(super) fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// Bytes moved but not yet reported: reported every `REPORT_BYTES` or `REPORT_EVERY`,
/// and before any close, so the analysis thread is woken per megabyte, not per read.
pub(super) struct Tally {
    pub(super) read: u64,
    written: u64,
    since: Instant,
}

const REPORT_BYTES: u64 = 1 << 20;
const REPORT_EVERY: Duration = Duration::from_millis(100);

impl Tally {
    pub(super) fn new() -> Tally {
        Tally {
            read: 0,
            written: 0,
            since: Instant::now(),
        }
    }

    pub(super) async fn flush(&mut self, from: Leg, report: &Reporter<'_>) {
        if self.read > 0 {
            report.send(from, LegEvent::Read(self.read)).await;
        }
        if self.written > 0 {
            report
                .send(from.other(), LegEvent::Written(self.written))
                .await;
        }
        self.read = 0;
        self.written = 0;
        self.since = Instant::now();
    }

    /// `n` bytes passed on: reported when enough have gathered.
    pub(super) async fn wrote(&mut self, n: usize, from: Leg, report: &Reporter<'_>) {
        self.written += n as u64;
        if self.read >= REPORT_BYTES || self.since.elapsed() >= REPORT_EVERY {
            self.flush(from, report).await;
        }
    }
}

/// What a read from a direction's source came to, short of bytes.
enum Stop {
    Eof,
    Reset,
    /// Writing to the destination failed: its peer reset.
    DstReset,
    Idle,
}

/// End a direction as `stop` says: a FIN is passed on as shutdown(Write); every end
/// first reports the bytes not yet reported, then the peer's close.
async fn stop(
    why: Stop,
    from: Leg,
    dst: &mut WriteHalf<'_>,
    tally: &mut Tally,
    report: &Reporter<'_>,
) -> DirEnd {
    if matches!(why, Stop::Eof) {
        let _ = dst.shutdown().await;
    }
    tally.flush(from, report).await;
    match why {
        Stop::Eof => {
            report.send(from, LegEvent::PeerClosed(CloseHow::Fin)).await;
            DirEnd::Eof
        }
        Stop::Reset => {
            report.send(from, LegEvent::PeerClosed(CloseHow::Rst)).await;
            DirEnd::SrcReset
        }
        Stop::DstReset => {
            report
                .send(from.other(), LegEvent::PeerClosed(CloseHow::Rst))
                .await;
            DirEnd::DstReset
        }
        Stop::Idle => DirEnd::Idle,
    }
}

async fn pump(
    from: Leg,
    src: &mut ReadHalf<'_>,
    dst: &mut WriteHalf<'_>,
    lim: Limits,
    activity: &Activity,
    report: &Reporter<'_>,
) -> DirEnd {
    let idle = lim.idle;
    let mut buf = vec![0u8; lim.buffer];
    let mut tally = Tally::new();
    loop {
        let n = match tokio::time::timeout(idle, src.read(&mut buf)).await {
            // The other direction may be busy (a download's client side is silent).
            Err(_) if activity.quiet_for() < idle => continue,
            Err(_) => return stop(Stop::Idle, from, dst, &mut tally, report).await,
            Ok(Ok(0)) => return stop(Stop::Eof, from, dst, &mut tally, report).await,
            Ok(Ok(n)) => n,
            Ok(Err(e)) if is_reset(&e) => {
                return stop(Stop::Reset, from, dst, &mut tally, report).await;
            }
            Ok(Err(_)) => continue,
        };
        activity.touch();
        tally.read += n as u64;
        // While the destination is slow, a reset of the source must not wait behind the
        // bytes queued ahead of it: the peer's RST is passed on when it arrives, and
        // what was still queued is dropped, as it would be without the proxy.
        let wrote = tokio::select! {
            biased;
            r = dst.write_all(&buf[..n]) => r,
            _ = reset_arrives(src.as_ref()) => {
                return stop(Stop::Reset, from, dst, &mut tally, report).await;
            }
        };
        if wrote.is_err() {
            return stop(Stop::DstReset, from, dst, &mut tally, report).await;
        }
        tally.wrote(n, from, report).await;
    }
}

/// A pipe between the legs for splice(2): bytes go from one socket to the other inside
/// the kernel, never copied to the proxy. Its capacity is the direction's buffer.
struct Pipe {
    r: std::os::fd::OwnedFd,
    w: std::os::fd::OwnedFd,
    size: usize,
}

impl Pipe {
    fn new(size: usize) -> io::Result<Pipe> {
        use rustix::pipe::{PipeFlags, fcntl_setpipe_size, pipe_with};
        let (r, w) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // The kernel rounds up to whole pages; what it grants is the buffer.
        let size = fcntl_setpipe_size(&w, size)?;
        Ok(Pipe { r, w, size })
    }
}

/// splice(2) flags: move pages rather than copy where the kernel can; never block (the
/// sockets' readiness comes from tokio).
fn splice_flags() -> rustix::pipe::SpliceFlags {
    rustix::pipe::SpliceFlags::MOVE | rustix::pipe::SpliceFlags::NONBLOCK
}

/// `pump` with splice(2): the same ends, the same reports, no copy through user space.
async fn pump_spliced(
    from: Leg,
    src: &mut ReadHalf<'_>,
    dst: &mut WriteHalf<'_>,
    pipe: Pipe,
    idle: Duration,
    activity: &Activity,
    report: &Reporter<'_>,
) -> DirEnd {
    let chunk = pipe.size;
    let mut tally = Tally::new();
    let (s, d) = (src.as_ref(), dst.as_ref());
    // One timer for the whole relay, pushed back only when it fires and the other
    // direction was busy: no timer work per read.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        // Socket to pipe.
        let got = tokio::select! {
            r = async {
                loop {
                    s.readable().await?;
                    match s.try_io(Interest::READABLE, || {
                        rustix::pipe::splice(s, None, &pipe.w, None, chunk, splice_flags())
                            .map_err(io::Error::from)
                    }) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        other => return other,
                    }
                }
            } => Some(r),
            _ = &mut idle_timer => None,
        };
        let n = match got {
            None if activity.quiet_for() < idle => {
                let next = tokio::time::Instant::now() + idle - activity.quiet_for();
                idle_timer.as_mut().reset(next);
                continue;
            }
            None => return stop(Stop::Idle, from, dst, &mut tally, report).await,
            Some(Ok(0)) => return stop(Stop::Eof, from, dst, &mut tally, report).await,
            Some(Ok(n)) => n,
            Some(Err(_)) => return stop(Stop::Reset, from, dst, &mut tally, report).await,
        };
        activity.touch();
        tally.read += n as u64;
        // Pipe to socket, all of it; a reset of the source meanwhile is passed on at once.
        let mut left = n;
        while left > 0 {
            let moved = tokio::select! {
                biased;
                r = async {
                    loop {
                        d.writable().await?;
                        match d.try_io(Interest::WRITABLE, || {
                            rustix::pipe::splice(&pipe.r, None, d, None, left, splice_flags())
                                .map_err(io::Error::from)
                        }) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            other => return other,
                        }
                    }
                } => r,
                _ = reset_arrives(s) => {
                    return stop(Stop::Reset, from, dst, &mut tally, report).await;
                }
            };
            match moved {
                Ok(m) if m > 0 => left -= m,
                _ => return stop(Stop::DstReset, from, dst, &mut tally, report).await,
            }
        }
        tally.wrote(n, from, report).await;
    }
}

/// Resolves when the socket reports an error (a RST arrived), whatever is queued.
async fn reset_arrives(s: &TcpStream) {
    loop {
        match s.ready(Interest::ERROR).await {
            Ok(r) if r.is_error() => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Relay between the client leg and the server leg until both directions are done or
/// one leg is reset. `idle`: a direction with nothing to read for this long ends the
/// relay (both legs reset). Returns when both sockets are closed.
pub async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    lim: Limits,
    report: &Reporter<'_>,
) {
    // Which leg, if any, the proxy must reset because its other leg was reset.
    let mut reset: Option<Leg> = None;
    let activity = Activity::new();
    {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        // splice(2) where two pipes can be had (descriptors), copying otherwise.
        let idle = lim.idle;
        let (mut up, mut down) = match (Pipe::new(lim.buffer), Pipe::new(lim.buffer)) {
            (Ok(p1), Ok(p2)) => (
                Box::pin(pump_spliced(
                    Leg::Client,
                    &mut cr,
                    &mut sw,
                    p1,
                    idle,
                    &activity,
                    report,
                ))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = DirEnd> + Send + '_>>,
                Box::pin(pump_spliced(
                    Leg::Server,
                    &mut sr,
                    &mut cw,
                    p2,
                    idle,
                    &activity,
                    report,
                ))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = DirEnd> + Send + '_>>,
            ),
            _ => (
                Box::pin(pump(Leg::Client, &mut cr, &mut sw, lim, &activity, report))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = DirEnd> + Send + '_>>,
                Box::pin(pump(Leg::Server, &mut sr, &mut cw, lim, &activity, report))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = DirEnd> + Send + '_>>,
            ),
        };
        let (mut up_done, mut down_done) = (false, false);
        while !(up_done && down_done) {
            let (dir_from, end) = tokio::select! {
                e = &mut up, if !up_done => { up_done = true; (Leg::Client, e) }
                e = &mut down, if !down_done => { down_done = true; (Leg::Server, e) }
            };
            match end {
                DirEnd::Eof => {}
                DirEnd::SrcReset => {
                    reset = Some(dir_from.other());
                    break;
                }
                DirEnd::DstReset => {
                    reset = Some(dir_from);
                    break;
                }
                DirEnd::Idle => {
                    // Both legs: neither side gets a clean end it did not ask for.
                    drop(up);
                    drop(down);
                    for (leg, s) in [(Leg::Client, &client), (Leg::Server, &server)] {
                        let _ = s.set_zero_linger();
                        report.send(leg, LegEvent::ProxyReset).await;
                    }
                    return;
                }
            }
        }
    }
    if let Some(leg) = reset {
        let s = match leg {
            Leg::Client => &client,
            Leg::Server => &server,
        };
        // SO_LINGER 0: closing sends RST, as the other leg's peer did.
        let _ = s.set_zero_linger();
    }
    // Dropping both streams closes them: with linger 0 the reset leg gets its RST;
    // the others have sent their FIN already.
}
