//! Frames built with etherparse's packet builder, wrapped in any link layer ftpwatch
//! decodes. For tests and benchmarks.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use crate::capture::LinkType;
use crate::decode::TcpFlags;

/// The link layer to wrap IP packets in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// 802.1Q with this VLAN id.
    Vlan(u16),
    /// QinQ: an 802.1ad outer tag and an 802.1Q inner tag.
    QinQ(u16, u16),
    LinuxSll,
    LinuxSll2,
    /// BSD null/loopback, family in little-endian host order.
    Null,
    /// OpenBSD loopback, family in network order.
    Loop,
    Raw,
}

impl Link {
    pub fn link_type(self) -> LinkType {
        match self {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => LinkType::ETHERNET,
            Link::LinuxSll => LinkType::LINUX_SLL,
            Link::LinuxSll2 => LinkType::LINUX_SLL2,
            Link::Null => LinkType::NULL,
            Link::Loop => LinkType::LOOP,
            Link::Raw => LinkType::RAW,
        }
    }

    /// Wrap an IP packet.
    pub fn wrap(self, ip: &[u8], v6: bool) -> Vec<u8> {
        let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
        let mut f = Vec::with_capacity(ip.len() + 24);
        match self {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => {
                f.extend([0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02]);
                match self {
                    Link::Vlan(id) => {
                        f.extend(0x8100u16.to_be_bytes());
                        f.extend(id.to_be_bytes());
                    }
                    Link::QinQ(outer, inner) => {
                        f.extend(0x88a8u16.to_be_bytes());
                        f.extend(outer.to_be_bytes());
                        f.extend(0x8100u16.to_be_bytes());
                        f.extend(inner.to_be_bytes());
                    }
                    _ => {}
                }
                f.extend(ethertype.to_be_bytes());
            }
            Link::LinuxSll => {
                f.extend(0u16.to_be_bytes()); // packet type: to us
                f.extend(1u16.to_be_bytes()); // ARPHRD_ETHER
                f.extend(6u16.to_be_bytes());
                f.extend([0x02, 0, 0, 0, 0, 0x01, 0, 0]);
                f.extend(ethertype.to_be_bytes());
            }
            Link::LinuxSll2 => {
                f.extend(ethertype.to_be_bytes());
                f.extend(0u16.to_be_bytes());
                f.extend(2u32.to_be_bytes()); // interface index
                f.extend(1u16.to_be_bytes()); // ARPHRD_ETHER
                f.push(0); // packet type
                f.push(6);
                f.extend([0x02, 0, 0, 0, 0, 0x01, 0, 0]);
            }
            Link::Null => f.extend((if v6 { 30u32 } else { 2 }).to_le_bytes()),
            Link::Loop => f.extend((if v6 { 24u32 } else { 2 }).to_be_bytes()),
            Link::Raw => {}
        }
        f.extend_from_slice(ip);
        f
    }
}

/// An IPv4 or IPv6 packet carrying one TCP segment.
pub fn tcp_ip(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    let b = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("synth: mixed address families {src} {dst}"),
    };
    let mut t = b.tcp(src.port(), dst.port(), seq, 65535);
    let bits = flags.bits();
    if bits & TcpFlags::SYN != 0 {
        t = t.syn();
    }
    if bits & TcpFlags::FIN != 0 {
        t = t.fin();
    }
    if bits & TcpFlags::RST != 0 {
        t = t.rst();
    }
    if bits & TcpFlags::PSH != 0 {
        t = t.psh();
    }
    if bits & TcpFlags::ACK != 0 {
        t = t.ack(ack);
    }
    let mut out = Vec::with_capacity(t.size(payload.len()));
    t.write(&mut out, payload)
        .expect("writing to a Vec cannot fail");
    out
}

/// A whole frame: `link` around a TCP segment.
pub fn tcp_frame(
    link: Link,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    link.wrap(&tcp_ip(src, dst, seq, ack, flags, payload), src.is_ipv6())
}

/// The `i`-th SYN of a flood to 192.0.2.21:21, each from a source address of its own
/// (for the first 16 million), for the benchmarks of the connection table's bounds.
pub fn flood_syn(i: u32) -> Vec<u8> {
    let src = SocketAddr::from((
        [
            10,
            (1 + i / 65536 % 250) as u8,
            (i / 256 % 256) as u8,
            (i % 256) as u8,
        ],
        (1024 + i % 60000) as u16,
    ));
    tcp_frame(
        Link::Ethernet,
        src,
        SocketAddr::from(([192, 0, 2, 21], 21)),
        i,
        0,
        TcpFlags::new(TcpFlags::SYN),
        &[],
    )
}
