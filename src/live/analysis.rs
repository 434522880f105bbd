//! The analysis thread: the one pipeline, fed by every capture thread, ticked by the
//! clock so that idle sessions time out, and flushed on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::capture::Batch;
use crate::logfile::LogTarget;
use ftpwatch::capture::{Frame, FrameTime};
use ftpwatch::ftp::Timestamp;
use ftpwatch::pipeline::Pipeline;
use ftpwatch::sink::EventLog;

const TICK: Duration = Duration::from_secs(1);

pub struct Analysis {
    pub pipeline: Pipeline,
    pub log: EventLog<LogTarget>,
    pub clock: fn() -> FrameTime,
    pub shutdown: Arc<AtomicBool>,
    pub reopen: Arc<AtomicBool>,
    pub heartbeat: Arc<AtomicU64>,
}

impl Analysis {
    fn batch(&mut self, b: Batch) {
        for f in &b.frames {
            let data = &b.data[f.offset as usize..(f.offset + f.len) as usize];
            let frame = Frame {
                ts: f.ts,
                link: b.link,
                data,
                orig_len: f.len + f.elided,
                elided: f.elided,
            };
            self.pipeline.frame(&frame, &mut self.log);
        }
        b.recycle();
    }

    pub fn run(mut self, rx: Receiver<Batch>) {
        let mut last_tick = (self.clock)();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(b) => self.batch(b),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = (self.clock)();
            let since = Timestamp::from(now).since(last_tick.into());
            if since >= TICK {
                self.pipeline.tick(now, &mut self.log);
                last_tick = now;
                self.heartbeat.store(unix_secs(now), Ordering::Relaxed);
            }
            if self.reopen.swap(false, Ordering::Relaxed) {
                match self.log.get_mut().reopen() {
                    Ok(()) => eprintln!("ftpwatch: event log reopened"),
                    Err(e) => eprintln!("ftpwatch: reopening the event log: {e}"),
                }
            }
            if let Some(e) = self.log.take_error() {
                eprintln!("ftpwatch: writing the event log: {e}");
            }
            if self.shutdown.load(Ordering::Relaxed) {
                // What the capture threads already handed over is analysed too.
                while let Ok(b) = rx.try_recv() {
                    self.batch(b);
                }
                break;
            }
        }
        self.pipeline.finish(&mut self.log);
        if let Some(e) = self.log.take_error() {
            eprintln!("ftpwatch: writing the event log: {e}");
        }
    }
}

/// Whole seconds since the epoch: the heartbeat `/healthz` reads.
pub fn unix_secs(t: FrameTime) -> u64 {
    Timestamp::from(t).secs()
}
