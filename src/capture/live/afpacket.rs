//! The AF_PACKET socket ftpwatch opens itself before handing it to pnet: pnet's own
//! defaults lose data silently (a 4096-byte read buffer truncates frames, the default
//! socket buffer overflows in bursts, and it reads no drop counters). Here the socket
//! gets a large receive buffer and a kernel filter that passes only TCP, and its
//! PACKET_STATISTICS are read into ftpwatch's drop counter.
//!
//! With `ring.rs`, this is where the crate's `unsafe` lives (nothing outside the capture
//! layer has any): every block here is a plain libc call on a file descriptor this
//! module owns, with pointers to locals that outlive the call.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use pnet::datalink::{self, NetworkInterface};

use super::OpenError;
use crate::capture::LinkType;

/// How the frames on the interface start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    Ethernet,
    /// No link header: IPv4 or IPv6 from the first byte (tun, ipip, gre).
    RawIp,
}

/// An unbound AF_PACKET socket that receives nothing until it is bound (protocol 0),
/// so no packet of another interface slips in before the bind.
pub struct PacketSocket {
    fd: OwnedFd,
    /// The receive buffer the kernel granted, in bytes.
    pub rcvbuf: usize,
    /// Whether SO_RCVBUFFORCE was allowed (CAP_NET_ADMIN), or the buffer is capped by
    /// net.core.rmem_max.
    pub rcvbuf_forced: bool,
}

impl PacketSocket {
    pub fn open(framing: Framing, drop_outgoing: bool, rcvbuf: usize) -> io::Result<Self> {
        // SAFETY: socket(2) takes no pointers; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size = rcvbuf.min(i32::MAX as usize) as libc::c_int;
        let rcvbuf_forced = setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size,
        )
        .is_ok();
        if !rcvbuf_forced {
            setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
        }
        let granted = getsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize;
        let mut program = tcp_filter(framing, drop_outgoing);
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: `prog` points at `program`, which lives until after the call; the
        // kernel copies the program during the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            rcvbuf: granted,
            rcvbuf_forced,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Give the descriptor away (to pnet, which closes it when its channel drops).
    pub fn into_raw_fd(self) -> RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self.fd)
    }
}

/// ARPHRD_* of an interface, from sysfs.
fn hardware_type(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn framing_of(arphrd: u32) -> Option<(Framing, LinkType)> {
    use libc::{
        ARPHRD_ETHER, ARPHRD_IPGRE, ARPHRD_LOOPBACK, ARPHRD_NONE, ARPHRD_PPP, ARPHRD_SIT,
        ARPHRD_TUNNEL, ARPHRD_TUNNEL6,
    };
    match u16::try_from(arphrd).ok()? {
        // Loopback carries a zeroed Ethernet header.
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Some((Framing::Ethernet, LinkType::ETHERNET)),
        // tun, PPP, and IP tunnels: IP from the first byte.
        ARPHRD_NONE | ARPHRD_PPP | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_SIT | ARPHRD_IPGRE => {
            Some((Framing::RawIp, LinkType::RAW))
        }
        _ => None,
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// An error of an operation that needs `capability`: the capability's name when it was
/// refused for want of it.
fn needs(capability: &'static str, what: &'static str) -> impl Fn(&str, io::Error) -> OpenError {
    move |interface, error| {
        let interface = interface.to_string();
        if is_permission(&error) {
            OpenError::Permission {
                interface,
                capability,
                what,
            }
        } else {
            OpenError::Io { interface, error }
        }
    }
}

/// Promiscuous mode was refused: the one error both backends map the same way.
pub fn promiscuous_error(interface: &str, error: io::Error) -> OpenError {
    needs(
        "CAP_NET_ADMIN",
        "for promiscuous mode; or run with --no-promisc",
    )(interface, error)
}

/// The PACKET_FANOUT group of an interface's capture threads. Groups are per network
/// namespace: mixing in our pid and the interface keeps two ftpwatch processes (or two
/// interfaces) out of each other's group.
pub fn fanout_group(ifindex: u32) -> u16 {
    ((std::process::id() as u16) ^ (ifindex as u16)).wrapping_mul(31)
}

/// What both AF_PACKET backends start from: the interface, its link type, and our
/// filtered socket, not yet bound.
pub struct Prepared {
    pub iface: NetworkInterface,
    pub link: LinkType,
    pub sock: PacketSocket,
}

/// Find the interface and open the socket for it. On loopback every packet is
/// received twice, as outgoing and as incoming: the filter keeps the incoming copy.
pub fn prepare(name: &str, rcvbuf: usize) -> Result<Prepared, OpenError> {
    let iface = datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| OpenError::NoSuchInterface(name.to_string()))?;
    let arphrd = hardware_type(name).unwrap_or(1);
    let (framing, link) = framing_of(arphrd).ok_or(OpenError::UnsupportedLink {
        interface: name.to_string(),
        arphrd,
    })?;
    let loopback = arphrd == u32::from(libc::ARPHRD_LOOPBACK);
    let sock = PacketSocket::open(framing, loopback, rcvbuf)
        .map_err(|e| needs("CAP_NET_RAW", "to open an AF_PACKET socket")(name, e))?;
    Ok(Prepared { iface, link, sock })
}

/// Packets received and dropped by the kernel since the last call (reading resets the
/// kernel's counters).
pub fn take_statistics(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are locals valid for the call; the kernel writes at most
    // `len` bytes into `st`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((u64::from(st.tp_packets), u64::from(st.tp_drops)))
}

/// setsockopt(2) with any plain value.
pub fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live reference for the duration of the call and its size is
    // passed with it; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are locals valid for the call; the kernel writes one c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

// Classic BPF instructions (<linux/filter.h>).
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Accept everything up to this many bytes (the whole frame).
const SNAP: u32 = 262_144;
/// The ancillary "packet type" load.
const AD_PKTTYPE: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;

/// A classic BPF program with symbolic jump targets, resolved by `finish`.
struct Asm {
    code: Vec<(u16, u32, Option<&'static str>, Option<&'static str>)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn new() -> Self {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self, name: &'static str) {
        self.labels.push((name, self.code.len()));
    }
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, k, None, None));
    }
    /// Jump to `target` when A == k, else fall through.
    fn jeq(&mut self, k: u32, target: &'static str) {
        self.code.push((JEQ_K, k, Some(target), None));
    }
    fn finish(self) -> Vec<libc::sock_filter> {
        let find = |name: &str| {
            self.labels
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, at)| *at)
                .expect("label defined")
        };
        self.code
            .iter()
            .enumerate()
            .map(|(i, &(code, k, jt, jf))| {
                let off = |t: Option<&str>| {
                    t.map_or(0, |t| {
                        let d = find(t) - (i + 1);
                        u8::try_from(d).expect("forward jump within 255")
                    })
                };
                libc::sock_filter {
                    code,
                    jt: off(jt),
                    jf: off(jf),
                    k,
                }
            })
            .collect()
    }
}

/// IPv6 next-header values that are TCP, or extension headers that may lead to it
/// (hop-by-hop, routing, fragment, destination options): the decoder walks those.
const V6_MAYBE_TCP: [u32; 5] = [6, 0, 43, 44, 60];

/// A kernel filter that passes TCP over IPv4 and IPv6, on Ethernet with or without one
/// VLAN tag, or on raw-IP links. With `drop_outgoing`, a packet's outgoing copy is
/// dropped (on loopback every packet is also received as incoming).
pub fn tcp_filter(framing: Framing, drop_outgoing: bool) -> Vec<libc::sock_filter> {
    let mut a = Asm::new();
    if drop_outgoing {
        a.op(LD_W_ABS, AD_PKTTYPE);
        a.jeq(u32::from(libc::PACKET_OUTGOING), "drop");
    }
    match framing {
        Framing::Ethernet => {
            a.op(LD_H_ABS, 12);
            a.jeq(0x8100, "tagged");
            a.jeq(0x0800, "v4");
            a.jeq(0x86dd, "v6");
            a.op(RET_K, 0);
            a.label("tagged");
            a.op(LD_H_ABS, 16);
            a.jeq(0x0800, "v4t");
            a.jeq(0x86dd, "v6t");
            a.op(RET_K, 0);
            for (label, proto_at, v6) in [
                ("v4", 14 + 9, false),
                ("v6", 14 + 6, true),
                ("v4t", 18 + 9, false),
                ("v6t", 18 + 6, true),
            ] {
                a.label(label);
                a.op(LD_B_ABS, proto_at);
                if v6 {
                    for nh in V6_MAYBE_TCP {
                        a.jeq(nh, "accept");
                    }
                } else {
                    a.jeq(6, "accept");
                }
                a.op(RET_K, 0);
            }
        }
        Framing::RawIp => {
            a.op(LD_B_ABS, 0);
            a.op(ALU_AND_K, 0xf0);
            a.jeq(0x40, "v4");
            a.jeq(0x60, "v6");
            a.op(RET_K, 0);
            a.label("v4");
            a.op(LD_B_ABS, 9);
            a.jeq(6, "accept");
            a.op(RET_K, 0);
            a.label("v6");
            a.op(LD_B_ABS, 6);
            for nh in V6_MAYBE_TCP {
                a.jeq(nh, "accept");
            }
            a.op(RET_K, 0);
        }
    }
    a.label("accept");
    a.op(RET_K, SNAP);
    a.label("drop");
    a.op(RET_K, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use crate::synth::frame::{Link, tcp_frame, tcp_ip};

    /// Run a classic BPF program over a packet: the accepted length (0 = dropped).
    /// Implements just the opcodes `tcp_filter` emits.
    fn run(prog: &[libc::sock_filter], pkt: &[u8], pkttype: u32) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0;
        let load = |at: usize, n: usize| -> Option<u32> {
            let b = pkt.get(at..at + n)?;
            Some(b.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32))
        };
        loop {
            let i = &prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS if i.k == AD_PKTTYPE => a = pkttype,
                LD_W_ABS => match load(i.k as usize, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(i.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(i.k as usize, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                ALU_AND_K => a &= i.k,
                JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                RET_K => return i.k,
                other => panic!("opcode {other:#x} not emitted by tcp_filter"),
            }
        }
    }

    fn sa(s: &str) -> std::net::SocketAddr {
        s.parse().unwrap()
    }

    const ACK: TcpFlags = TcpFlags::new(TcpFlags::ACK);

    #[test]
    fn ethernet_filter_passes_tcp_only() {
        let prog = tcp_filter(Framing::Ethernet, false);
        for link in [Link::Ethernet, Link::Vlan(7)] {
            for (s, d) in [("10.0.0.1:1", "10.0.0.2:21"), ("[::1]:1", "[::2]:21")] {
                let f = tcp_frame(link, sa(s), sa(d), 1, 1, ACK, b"x");
                assert_eq!(run(&prog, &f, 0), SNAP, "{link:?} {s}");
            }
        }
        let mut udp = Vec::new();
        etherparse::PacketBuilder::ethernet2([0; 6], [1; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"dns")
            .unwrap();
        assert_eq!(run(&prog, &udp, 0), 0);
        let mut arp = vec![0xff; 12];
        arp.extend([0x08, 0x06, 0, 1]);
        assert_eq!(run(&prog, &arp, 0), 0);
        assert_eq!(
            run(&prog, &[0u8; 5], 0),
            0,
            "short frames are dropped, not read past"
        );
    }

    #[test]
    fn ipv6_extension_headers_are_passed_to_the_decoder() {
        let prog = tcp_filter(Framing::Ethernet, false);
        let mut f = tcp_frame(
            Link::Ethernet,
            sa("[::1]:1"),
            sa("[::2]:21"),
            1,
            1,
            ACK,
            b"",
        );
        f[14 + 6] = 0; // hop-by-hop first
        assert_eq!(run(&prog, &f, 0), SNAP);
        f[14 + 6] = 17; // UDP
        assert_eq!(run(&prog, &f, 0), 0);
    }

    #[test]
    fn outgoing_copies_are_dropped_when_asked() {
        let f = tcp_frame(
            Link::Ethernet,
            sa("10.0.0.1:1"),
            sa("10.0.0.2:21"),
            1,
            1,
            ACK,
            b"",
        );
        let prog = tcp_filter(Framing::Ethernet, true);
        assert_eq!(run(&prog, &f, 0), SNAP); // PACKET_HOST
        assert_eq!(run(&prog, &f, libc::PACKET_OUTGOING.into()), 0);
        assert_eq!(
            run(
                &tcp_filter(Framing::Ethernet, false),
                &f,
                libc::PACKET_OUTGOING.into()
            ),
            SNAP
        );
    }

    #[test]
    fn raw_ip_filter() {
        let prog = tcp_filter(Framing::RawIp, false);
        assert_eq!(
            run(
                &prog,
                &tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, ACK, b""),
                0
            ),
            SNAP
        );
        assert_eq!(
            run(
                &prog,
                &tcp_ip(sa("[::1]:1"), sa("[::2]:21"), 1, 1, ACK, b""),
                0
            ),
            SNAP
        );
        assert_eq!(run(&prog, &[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17], 0), 0);
    }
}
