//! AF_PACKET through pnet: ftpwatch opens the socket (big receive buffer, TCP-only
//! kernel filter, drop statistics) and pnet binds it, sets promiscuous mode and
//! fanout, and reads it with a 256 KiB buffer (pnet's default 4 KiB truncates).

use std::io;
use std::os::fd::RawFd;

use pnet::datalink::{self, Channel, DataLinkReceiver, FanoutOption, FanoutType};

use super::afpacket::{Prepared, fanout_group, prepare, promiscuous_error, take_statistics};
use super::{KernelStats, LiveCapture, OpenError, Opener, POLL_INTERVAL, RawFrame};
use crate::capture::LinkType;

#[derive(Debug, Clone)]
pub struct PnetOpener {
    pub promiscuous: bool,
    /// Capture threads per interface; above 1 they share the traffic by PACKET_FANOUT.
    pub threads: usize,
    /// Requested socket receive buffer (bytes).
    pub rcvbuf: usize,
    pub read_buffer: usize,
}

impl Default for PnetOpener {
    fn default() -> Self {
        PnetOpener {
            promiscuous: true,
            threads: 1,
            rcvbuf: 8 << 20,
            read_buffer: 256 << 10,
        }
    }
}

impl Opener for PnetOpener {
    fn open(&self, name: &str, member: usize) -> Result<Box<dyn LiveCapture>, OpenError> {
        let Prepared { iface, link, sock } = prepare(name, self.rcvbuf)?;
        if !sock.rcvbuf_forced && member == 0 {
            eprintln!(
                "ftpwatch: without CAP_NET_ADMIN the receive buffer on {name} is {} KiB (net.core.rmem_max), not {} KiB; bursts may be dropped (counted in ftpwatch_kernel_drops_total)",
                sock.rcvbuf / 1024,
                self.rcvbuf / 1024
            );
        }
        let fd = sock.raw_fd();
        let fanout = (self.threads > 1).then(|| FanoutOption {
            group_id: fanout_group(iface.index),
            fanout_type: FanoutType::HASH,
            defrag: true,
            rollover: false,
        });
        let config = datalink::Config {
            read_buffer_size: self.read_buffer,
            read_timeout: Some(POLL_INTERVAL),
            promiscuous: self.promiscuous,
            socket_fd: Some(sock.into_raw_fd()),
            linux_fanout: fanout,
            ..Default::default()
        };
        // pnet binds, joins the fanout group and sets promiscuous mode; on failure it
        // closes the descriptor itself.
        let rx = match datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => {
                return Err(OpenError::Io {
                    interface: name.to_string(),
                    error: io::Error::other("pnet returned a non-Ethernet channel"),
                });
            }
            // Binding and fanout need no more than the socket did: a permission error
            // is promiscuous mode's.
            Err(error) => return Err(promiscuous_error(name, error)),
        };
        Ok(Box::new(PnetCapture { rx, fd, link }))
    }
}

struct PnetCapture {
    rx: Box<dyn DataLinkReceiver>,
    /// The socket pnet reads; pnet owns and closes it, we only read its statistics.
    fd: RawFd,
    link: LinkType,
}

impl LiveCapture for PnetCapture {
    fn next_frame(&mut self) -> io::Result<Option<RawFrame<'_>>> {
        match self.rx.next() {
            Ok(data) => Ok(Some(RawFrame {
                link: self.link,
                data,
                ts: None,
            })),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            // pnet's wording for POLLERR/POLLHUP without POLLIN on the socket.
            Err(e) if e.to_string() == "Unexpected poll event" => Err(io::Error::other(
                "the socket reported an error: the interface went down or away",
            )),
            Err(e) => Err(e),
        }
    }

    fn take_stats(&mut self) -> io::Result<KernelStats> {
        let (packets, drops) = take_statistics(self.fd)?;
        Ok(KernelStats { packets, drops })
    }
}
