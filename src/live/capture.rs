//! Capture threads: read frames from one capture handle, stamp them with the clock,
//! and pass them in batches to the analysis thread. An interface that fails is closed,
//! reported (`ftpwatch_capture_up 0`, `ftpwatch_capture_errors_total`) and reopened
//! with backoff; the rest of ftpwatch keeps running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel};
use std::time::{Duration, Instant};

use ftpwatch::capture::live::{LiveCapture, Opener};
use ftpwatch::capture::{Frame, FrameTime, LinkType};
use ftpwatch::decode::decode;
use ftpwatch::sink::Metrics;

/// Frames handed over together; small enough to keep latency in milliseconds. Its
/// buffers go back to the capture thread that filled them (`home`), so that steady
/// capture allocates nothing.
pub struct Batch {
    pub link: LinkType,
    pub frames: Vec<Slot>,
    pub data: Vec<u8>,
    home: Sender<Batch>,
}

/// Where one frame's bytes lie in `Batch::data`, and how many payload bytes were left
/// out (`Frame::elided`).
#[derive(Copy, Clone, Debug)]
pub struct Slot {
    pub ts: FrameTime,
    pub offset: u32,
    pub len: u32,
    pub elided: u32,
}

const BATCH_FRAMES: usize = 256;
/// Frames up to this size are copied whole without a look inside: cheaper than
/// decoding them to find a payload to leave out.
const ELIDE_ABOVE: usize = 256;
const BATCH_BYTES: usize = 512 << 10;
/// A batch is handed over at the latest this long after its first frame.
const BATCH_AGE: Duration = Duration::from_millis(20);
/// The batch's age is checked every this many frames (the clock costs a few percent
/// when read per frame), and whenever no frame came.
const AGE_CHECK_EVERY: usize = 32;
const STATS_EVERY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Batch {
    /// Give the (emptied) buffers back to the thread that filled them.
    pub fn recycle(mut self) {
        self.frames.clear();
        self.data.clear();
        let home = self.home.clone();
        let _ = home.send(self);
    }

    fn push(&mut self, ts: FrameTime, frame: &[u8], elided: usize) {
        let kept = &frame[..frame.len() - elided];
        self.frames.push(Slot {
            ts,
            offset: self.data.len() as u32,
            len: kept.len() as u32,
            elided: elided as u32,
        });
        self.data.extend_from_slice(kept);
    }

    fn full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }
}

pub struct CaptureThread {
    pub interface: String,
    pub member: usize,
    pub opener: Arc<dyn Opener>,
    pub clock: fn() -> FrameTime,
    pub metrics: Metrics,
    pub shutdown: Arc<AtomicBool>,
    pub tx: SyncSender<Batch>,
    /// The FTP control ports: only their segments' payload is ever read.
    pub control_ports: Arc<[u16]>,
}

impl CaptureThread {
    /// Run until shutdown. `first` is the handle opened at startup.
    pub fn run(self, first: Box<dyn LiveCapture>) {
        let mut cap = Some(first);
        let mut backoff = Duration::from_secs(1);
        while !self.shutdown.load(Ordering::Relaxed) {
            let c = match cap.take() {
                Some(c) => c,
                None => match self.opener.open(&self.interface, self.member) {
                    Ok(c) => {
                        eprintln!("ftpwatch: capturing on {} again", self.interface);
                        backoff = Duration::from_secs(1);
                        c
                    }
                    Err(e) => {
                        self.metrics.capture_error(&self.interface);
                        eprintln!("ftpwatch: {e}; retrying in {} s", backoff.as_secs());
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            self.metrics.capture_up(&self.interface, true);
            if let Err(e) = self.pump(c) {
                self.metrics.capture_up(&self.interface, false);
                self.metrics.capture_error(&self.interface);
                eprintln!(
                    "ftpwatch: capture on {} failed: {e}; reopening",
                    self.interface
                );
            }
        }
    }

    /// Sleep up to `d`, waking early for shutdown.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.shutdown.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Read frames until shutdown (Ok) or a capture error (Err).
    fn pump(&self, mut c: Box<dyn LiveCapture>) -> std::io::Result<()> {
        let (home, returned): (Sender<Batch>, Receiver<Batch>) = channel();
        let fresh = |link| {
            returned.try_recv().unwrap_or_else(|_| Batch {
                link,
                frames: Vec::with_capacity(BATCH_FRAMES),
                data: Vec::with_capacity(BATCH_BYTES),
                home: home.clone(),
            })
        };
        let mut batch = fresh(LinkType::ETHERNET);
        let mut batch_started = Instant::now();
        let mut last_stats = Instant::now();
        let result: std::io::Result<()> = loop {
            if self.shutdown.load(Ordering::Relaxed) {
                break Ok(());
            }
            let mut check_age = true;
            match c.next_frame() {
                Ok(Some(f)) => {
                    let link = f.link;
                    if !batch.frames.is_empty() && batch.link != link {
                        // One link type per batch.
                        if self
                            .tx
                            .send(std::mem::replace(&mut batch, fresh(link)))
                            .is_err()
                        {
                            break Ok(());
                        }
                    }
                    if batch.frames.is_empty() {
                        batch.link = link;
                        batch_started = Instant::now();
                    }
                    let ts = f.ts.unwrap_or_else(self.clock);
                    batch.push(ts, f.data, elidable(&self.control_ports, link, ts, f.data));
                    check_age = batch.frames.len().is_multiple_of(AGE_CHECK_EVERY);
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            if !(batch.full() || check_age) {
                continue;
            }
            let now = Instant::now();
            let due = batch.full() || now.duration_since(batch_started) >= BATCH_AGE;
            if !batch.frames.is_empty() && due {
                let link = batch.link;
                if self
                    .tx
                    .send(std::mem::replace(&mut batch, fresh(link)))
                    .is_err()
                {
                    break Ok(()); // the analysis thread is gone: shutting down
                }
            }
            if now.duration_since(last_stats) >= STATS_EVERY {
                last_stats = Instant::now();
                if let Ok(s) = c.take_stats()
                    && s.drops > 0
                {
                    self.metrics.kernel_drops(&self.interface, s.drops);
                }
            }
        };
        if !batch.frames.is_empty() {
            let _ = self.tx.send(batch);
        }
        if let Ok(s) = c.take_stats()
            && s.drops > 0
        {
            self.metrics.kernel_drops(&self.interface, s.drops);
        }
        result
    }
}

/// How many bytes at the end of `data` nobody will read: the TCP payload of a
/// segment off the control ports. Data connections are followed by their sequence
/// numbers and everything else only counted, so bulk transfers cross to the
/// analysis thread as headers only. Undecodable frames are kept whole, for the
/// analysis thread to count.
fn elidable(control_ports: &[u16], link: LinkType, ts: FrameTime, data: &[u8]) -> usize {
    if data.len() <= ELIDE_ABOVE {
        return 0;
    }
    let frame = Frame {
        ts,
        link,
        data,
        orig_len: data.len() as u32,
        elided: 0,
    };
    match decode(&frame) {
        Ok(seg)
            if !seg.payload.is_empty()
                && !control_ports.contains(&seg.src.port())
                && !control_ports.contains(&seg.dst.port()) =>
        {
            // From the payload's first byte to the end of the frame (a link-layer
            // trailer after the IP packet goes too).
            let start = seg.payload.as_ptr() as usize - data.as_ptr() as usize;
            data.len() - start
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftpwatch::decode::TcpFlags;
    use ftpwatch::synth::frame::{Link, tcp_frame};

    fn frame(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let flags = TcpFlags::new(TcpFlags::ACK | TcpFlags::PSH);
        let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
        tcp_frame(Link::Ethernet, src, dst, 1, 1, flags, payload)
    }

    fn elided(f: &[u8]) -> usize {
        elidable(&[21, 2121], LinkType::ETHERNET, FrameTime::ZERO, f)
    }

    #[test]
    fn only_the_payload_of_large_segments_off_the_control_ports_is_left_out() {
        let data = frame("10.0.0.1:20", "10.0.0.2:40000", &[7; 1448]);
        assert_eq!(elided(&data), 1448, "a data segment crosses as its headers");
        for (src, dst) in [
            ("10.0.0.2:40000", "10.0.0.1:21"),
            ("10.0.0.1:2121", "10.0.0.2:5"),
        ] {
            assert_eq!(elided(&frame(src, dst, &[b'x'; 1000])), 0, "{src} > {dst}");
        }
        let small = frame("10.0.0.1:20", "10.0.0.2:40000", &[7; 100]);
        assert_eq!(elided(&small), 0, "small frames are copied without a look");
        let mut junk = data.clone();
        junk[14] = 0x00; // IP version 0: undecodable, kept whole to be counted
        assert_eq!(elided(&junk), 0);
    }

    #[test]
    fn an_elided_frame_analyses_like_the_whole_one() {
        let data = frame("10.0.0.1:20", "10.0.0.2:40000", &[7; 1448]);
        let n = elided(&data);
        let kept = &data[..data.len() - n];
        let f = Frame {
            ts: FrameTime::ZERO,
            link: LinkType::ETHERNET,
            data: kept,
            orig_len: data.len() as u32,
            elided: n as u32,
        };
        let seg = decode(&f).unwrap();
        assert_eq!((seg.payload.len(), seg.wire_len, seg.seq), (0, 1448, 1));
    }
}
