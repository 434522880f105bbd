//! Capture threads: read frames from one capture handle, stamp them with the clock,
//! and pass them in batches to the analysis thread. An interface that fails is closed,
//! reported (`ftpwatch_capture_up 0`, `ftpwatch_capture_errors_total`) and reopened
//! with backoff; the rest of ftpwatch keeps running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel};
use std::time::{Duration, Instant};

use crate::capture::LinkType;
use crate::capture::live::{LiveCapture, Opener};
use crate::ftp::Timestamp;
use crate::sink::Metrics;

/// Frames handed over together; small enough to keep latency in milliseconds. Its
/// buffers go back to the capture thread that filled them (`home`), so that steady
/// capture allocates nothing.
pub struct Batch {
    pub link: LinkType,
    pub frames: Vec<(Timestamp, u32, u32)>,
    pub data: Vec<u8>,
    home: Sender<Batch>,
}

const BATCH_FRAMES: usize = 256;
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

    fn push(&mut self, ts: Timestamp, frame: &[u8]) {
        self.frames
            .push((ts, self.data.len() as u32, frame.len() as u32));
        self.data.extend_from_slice(frame);
    }

    fn full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }
}

pub struct CaptureThread {
    pub interface: String,
    pub member: usize,
    pub opener: Arc<dyn Opener>,
    pub clock: fn() -> Timestamp,
    pub metrics: Metrics,
    pub shutdown: Arc<AtomicBool>,
    pub tx: SyncSender<Batch>,
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
                    batch.push(ts, f.data);
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
