//! A capture file played in as if it were an interface: frames come as fast as they
//! can be read, stamped with the time they are read, and then the "interface" stays
//! quiet. Standard input works too, so a test can feed frames when it chooses. Needs
//! no privileges: it is how the live runner is tested without root.
//!
//! The file is read on a thread of its own, so that a pipe with nothing to read never
//! keeps the capture thread from handing over what it already has.

use std::io;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};

use super::{KernelStats, LiveCapture, OpenError, Opener, POLL_INTERVAL, RawFrame};
use crate::capture::{FileSource, FrameSource, LinkType, Next};

pub struct ReplayOpener {
    pub path: String,
}

type Item = Result<(LinkType, Vec<u8>), String>;

impl Opener for ReplayOpener {
    fn open(&self, _interface: &str, _member: usize) -> Result<Box<dyn LiveCapture>, OpenError> {
        let mut source = FileSource::open(&self.path).map_err(|e| OpenError::Io {
            interface: self.path.clone(),
            error: io::Error::other(e.to_string()),
        })?;
        let (tx, rx) = sync_channel::<Item>(1024);
        std::thread::Builder::new()
            .name("ftpwatch-replay".into())
            .spawn(move || {
                loop {
                    let item = match source.next_frame() {
                        Ok(Next::Frame(f)) => Ok((f.link, f.data.to_vec())),
                        Ok(Next::Skipped(_)) => continue,
                        Ok(Next::End) => return,
                        Err(e) => Err(e.to_string()),
                    };
                    let stop = item.is_err();
                    if tx.send(item).is_err() || stop {
                        return;
                    }
                }
            })
            .map_err(|error| OpenError::Io {
                interface: self.path.clone(),
                error,
            })?;
        Ok(Box::new(Replay {
            rx: Some(rx),
            frame: Vec::new(),
        }))
    }
}

struct Replay {
    rx: Option<Receiver<Item>>,
    frame: Vec<u8>,
}

impl LiveCapture for Replay {
    fn next_frame(&mut self) -> io::Result<Option<RawFrame<'_>>> {
        let Some(rx) = &self.rx else {
            std::thread::sleep(POLL_INTERVAL);
            return Ok(None);
        };
        match rx.recv_timeout(POLL_INTERVAL) {
            Ok(Ok((link, data))) => {
                self.frame = data;
                // Stamped on arrival, as an interface would be.
                Ok(Some(RawFrame {
                    link,
                    data: &self.frame,
                    ts: None,
                }))
            }
            Ok(Err(e)) => {
                self.rx = None;
                Err(io::Error::other(e))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                self.rx = None; // the end of the file: a quiet interface from now on
                Ok(None)
            }
        }
    }

    fn take_stats(&mut self) -> io::Result<KernelStats> {
        Ok(KernelStats::default())
    }
}
