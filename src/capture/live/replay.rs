//! A capture file played in as if it were an interface: frames come as fast as they
//! can be read, stamped with the time they are read, and then the "interface" stays
//! quiet. Standard input works too, so a test can feed frames when it chooses. Needs
//! no privileges: it is how the live runner is tested without root.

use std::io::{self, Read};

use super::{KernelStats, LiveCapture, OpenError, Opener};
use crate::capture::{FileSource, FrameSource, LinkType, Next};

pub struct ReplayOpener {
    pub path: String,
}

impl Opener for ReplayOpener {
    fn open(&self, _interface: &str, _member: usize) -> Result<Box<dyn LiveCapture>, OpenError> {
        let source = FileSource::open(&self.path).map_err(|e| OpenError::Io {
            interface: self.path.clone(),
            error: io::Error::other(e.to_string()),
        })?;
        Ok(Box::new(Replay {
            source: Some(source),
            frame: Vec::new(),
            link: LinkType::ETHERNET,
        }))
    }
}

struct Replay {
    source: Option<FileSource<Box<dyn Read + Send>>>,
    frame: Vec<u8>,
    link: LinkType,
}

impl LiveCapture for Replay {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next_frame(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            let Some(src) = self.source.as_mut() else {
                std::thread::sleep(super::POLL_INTERVAL);
                return Ok(None);
            };
            match src.next_frame() {
                Ok(Next::Frame(f)) => {
                    self.link = f.link;
                    self.frame.clear();
                    self.frame.extend_from_slice(f.data);
                    return Ok(Some(&self.frame));
                }
                Ok(Next::Skipped(_)) => continue,
                Ok(Next::End) => self.source = None,
                Err(e) => {
                    self.source = None;
                    return Err(io::Error::other(e.to_string()));
                }
            }
        }
    }

    fn take_stats(&mut self) -> io::Result<KernelStats> {
        Ok(KernelStats::default())
    }
}
