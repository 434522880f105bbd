//! AF_PACKET with a TPACKET_V3 receive ring: the kernel writes frames into blocks of
//! memory shared with ftpwatch and hands each block over when it is full or after
//! `RETIRE_MS`; ftpwatch reads the block's frames in place and hands it back. No
//! system call per packet (tcpdump reads the same way, through libpcap), so capture
//! costs what analysis costs. Frames carry the kernel's receive timestamp.
//!
//! Every `unsafe` block here is a libc call on the socket this module owns, or an
//! access to the ring mapping, whose layout is the kernel's documented ABI
//! (<linux/if_packet.h>, Documentation/networking/packet_mmap.rst). Offsets read from
//! the ring are checked against the block size before any slice is made.

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{Ordering, fence};

use super::afpacket::{
    PacketSocket, Prepared, fanout_group, prepare, promiscuous_error, setsockopt, take_statistics,
};
use super::{KernelStats, LiveCapture, OpenError, Opener, POLL_INTERVAL, RawFrame};
use crate::capture::{FrameTime, LinkType};

use libc::{TP_STATUS_KERNEL, TP_STATUS_USER, tpacket_block_desc, tpacket_hdr_v1, tpacket3_hdr};

// Offsets inside a block descriptor (its header is the union's `bh1`, at its start).
const BLOCK_HDR: usize = mem::offset_of!(tpacket_block_desc, hdr);
const BLOCK_STATUS: usize = BLOCK_HDR + mem::offset_of!(tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS: usize = BLOCK_HDR + mem::offset_of!(tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_PKT: usize = BLOCK_HDR + mem::offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
// Offsets inside a packet header.
const PKT_NEXT: usize = mem::offset_of!(tpacket3_hdr, tp_next_offset);
const PKT_SEC: usize = mem::offset_of!(tpacket3_hdr, tp_sec);
const PKT_NSEC: usize = mem::offset_of!(tpacket3_hdr, tp_nsec);
const PKT_SNAPLEN: usize = mem::offset_of!(tpacket3_hdr, tp_snaplen);
const PKT_MAC: usize = mem::offset_of!(tpacket3_hdr, tp_mac);
const PKT_HDR_LEN: usize = mem::size_of::<tpacket3_hdr>();

/// A block is handed to ftpwatch after this long even when not full (latency bound).
const RETIRE_MS: u32 = 20;

#[derive(Debug, Clone)]
pub struct RingOpener {
    pub promiscuous: bool,
    pub threads: usize,
    /// Bytes per block (a power of two, a multiple of the page size).
    pub block_size: usize,
    /// Blocks per ring (per capture thread).
    pub blocks: usize,
}

impl Default for RingOpener {
    fn default() -> Self {
        RingOpener {
            promiscuous: true,
            threads: 1,
            block_size: 1 << 20,
            blocks: 64,
        }
    }
}

fn set<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    setsockopt(fd, libc::SOL_PACKET, name, value)
}

impl Opener for RingOpener {
    fn open(&self, name: &str, member: usize) -> Result<Box<dyn LiveCapture>, OpenError> {
        let Prepared { iface, link, sock } = prepare(name, 1 << 20)?;
        let io_err = |error: io::Error| OpenError::Io {
            interface: name.to_string(),
            error,
        };
        let fd = sock.raw_fd();
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set(fd, libc::PACKET_VERSION, &version).map_err(io_err)?;
        let req = libc::tpacket_req3 {
            tp_block_size: self.block_size as u32,
            tp_block_nr: self.blocks as u32,
            tp_frame_size: 2048,
            tp_frame_nr: (self.block_size * self.blocks / 2048) as u32,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set(fd, libc::PACKET_RX_RING, &req).map_err(io_err)?;
        let map_len = self.block_size * self.blocks;
        // SAFETY: maps the ring the kernel just allocated for `fd`; the result is
        // checked, and the mapping is owned (and unmapped) by the returned `Ring`.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io_err(io::Error::last_os_error()));
        }
        let ring = Ring {
            sock,
            map: map.cast(),
            map_len,
            block_size: self.block_size,
            blocks: self.blocks,
            block: 0,
            cursor: None,
            link,
        };
        // SAFETY: `addr` is a zeroed sockaddr_ll on the stack, filled in below, and
        // its size is passed with it.
        let rc = unsafe {
            let mut addr: libc::sockaddr_ll = mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            addr.sll_ifindex = iface.index as i32;
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        if self.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: iface.index as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            set(fd, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|error| promiscuous_error(name, error))?;
        }
        if self.threads > 1 {
            let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
            let arg: u32 = u32::from(fanout_group(iface.index)) | (mode << 16);
            set(fd, libc::PACKET_FANOUT, &arg).map_err(io_err)?;
        }
        let _ = member;
        Ok(Box::new(ring))
    }
}

/// Where reading stands inside the block ftpwatch currently holds.
struct Cursor {
    remaining: u32,
    offset: usize,
}

pub struct Ring {
    sock: PacketSocket,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    blocks: usize,
    /// The block to read next (or being read, with `cursor`).
    block: usize,
    cursor: Option<Cursor>,
    link: LinkType,
}

// SAFETY: the mapping is owned by this struct and only touched through `&mut self`,
// so moving the struct to another thread moves the only access to it.
unsafe impl Send for Ring {}

impl Ring {
    fn block_base(&self, b: usize) -> *mut u8 {
        debug_assert!(b < self.blocks);
        // SAFETY: b < blocks, so the offset is inside the mapping.
        unsafe { self.map.add(b * self.block_size) }
    }

    fn read_u32(&self, block: usize, offset: usize) -> u32 {
        assert!(offset + 4 <= self.block_size);
        // SAFETY: in bounds (checked above); the kernel's ring is at least 4-aligned
        // at these offsets, and read_unaligned makes alignment moot anyway.
        unsafe { ptr::read_unaligned(self.block_base(block).add(offset).cast::<u32>()) }
    }

    fn status(&self, block: usize) -> u32 {
        // SAFETY: the status word is inside the block; volatile because the kernel
        // writes it concurrently.
        let s =
            unsafe { ptr::read_volatile(self.block_base(block).add(BLOCK_STATUS).cast::<u32>()) };
        fence(Ordering::Acquire);
        s
    }

    fn release(&mut self, block: usize) {
        fence(Ordering::Release);
        // SAFETY: the status word is inside the block; writing TP_STATUS_KERNEL hands
        // the block back, after which nothing of it is read until it is ours again.
        unsafe {
            ptr::write_volatile(
                self.block_base(block).add(BLOCK_STATUS).cast::<u32>(),
                TP_STATUS_KERNEL,
            )
        };
    }

    fn wait_for_block(&self) -> io::Result<bool> {
        if self.status(self.block) & TP_STATUS_USER != 0 {
            return Ok(true);
        }
        let mut pfd = libc::pollfd {
            fd: self.sock.raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack, valid for the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, POLL_INTERVAL.as_millis() as libc::c_int) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0
            && self.status(self.block) & TP_STATUS_USER == 0
        {
            return Err(io::Error::other(
                "the socket reported an error: the interface went down or away",
            ));
        }
        Ok(self.status(self.block) & TP_STATUS_USER != 0)
    }
}

impl LiveCapture for Ring {
    fn next_frame(&mut self) -> io::Result<Option<RawFrame<'_>>> {
        loop {
            if let Some(c) = &self.cursor {
                if c.remaining == 0 {
                    let b = self.block;
                    self.cursor = None;
                    self.release(b);
                    self.block = (b + 1) % self.blocks;
                    continue;
                }
                let (b, off) = (self.block, c.offset);
                if off + PKT_HDR_LEN > self.block_size {
                    return Err(io::Error::other(
                        "TPACKET_V3 frame header outside its block",
                    ));
                }
                let next = self.read_u32(b, off + PKT_NEXT) as usize;
                let sec = self.read_u32(b, off + PKT_SEC) as u64;
                let nsec = self.read_u32(b, off + PKT_NSEC) as u64;
                let snaplen = self.read_u32(b, off + PKT_SNAPLEN) as usize;
                let mac = (self.read_u32(b, off + PKT_MAC) & 0xffff) as usize;
                let start = off + mac;
                if start + snaplen > self.block_size {
                    return Err(io::Error::other("TPACKET_V3 frame outside its block"));
                }
                let c = self.cursor.as_mut().expect("checked above");
                c.remaining -= 1;
                c.offset = off + next;
                if c.remaining > 0 && next == 0 {
                    return Err(io::Error::other(
                        "TPACKET_V3 block ends before its frame count",
                    ));
                }
                // SAFETY: [start, start + snaplen) lies inside block `b` (checked above),
                // which stays ours (status USER) until the cursor moves past it, and the
                // returned slice borrows `self` mutably, so no later call can release it
                // while the slice lives.
                let data =
                    unsafe { std::slice::from_raw_parts(self.block_base(b).add(start), snaplen) };
                return Ok(Some(RawFrame {
                    link: self.link,
                    data,
                    ts: Some(FrameTime::from_secs_nanos(sec, nsec)),
                }));
            }
            if !self.wait_for_block()? {
                return Ok(None);
            }
            let b = self.block;
            let num = self.read_u32(b, BLOCK_NUM_PKTS);
            let first = self.read_u32(b, BLOCK_FIRST_PKT) as usize;
            self.cursor = Some(Cursor {
                remaining: num,
                offset: first,
            });
        }
    }

    fn take_stats(&mut self) -> io::Result<KernelStats> {
        let (packets, drops) = take_statistics(self.sock.raw_fd())?;
        Ok(KernelStats { packets, drops })
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; no slice into it can
        // outlive `self`. The socket closes when `sock` drops.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}
