//! Frames to TCP segment views. etherparse does the parsing, laxly, so a packet cut by
//! the snapshot length still yields its headers; the link layer is chosen from the
//! capture's link type. Nothing here allocates. Headers are sliced one layer at a time
//! (Ethernet, VLAN tags, IP, TCP) rather than through `LaxSlicedPacket`, whose large
//! by-value result cost more than all the parsing on the packet path.

mod link;
mod segment;

use link::link_payload;
pub use segment::{Segment, TcpFlags};

use std::net::{IpAddr, SocketAddr};

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::{LaxIpSlice, TcpSlice, ip_number};

use crate::capture::Frame;

/// Why a frame gave no TCP segment. Each reason is counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A link type this build does not decode.
    UnknownLinkType,
    /// The link layer carries something other than IP (ARP, LLC, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IP fragment: ftpwatch does not reassemble IP, and FTP's TCP rarely fragments.
    Fragment,
    /// The capture cut the packet inside its headers.
    Truncated,
    /// Header fields that contradict each other or the packet.
    Malformed,
}

impl Skip {
    pub const ALL: [Skip; 6] = [
        Skip::UnknownLinkType,
        Skip::NotIp,
        Skip::NotTcp,
        Skip::Fragment,
        Skip::Truncated,
        Skip::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::UnknownLinkType => "unknown_link_type",
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::Fragment => "ip_fragment",
            Skip::Truncated => "truncated_headers",
            Skip::Malformed => "malformed",
        }
    }
}

/// Decode one frame to a TCP segment.
pub fn decode<'a>(frame: &Frame<'a>) -> Result<Segment<'a>, Skip> {
    let ip = link_payload(frame.link, frame.data)?;
    let (ip, ext_err) = match LaxIpSlice::from_slice(ip) {
        Ok(x) => x,
        Err(LaxHeaderSliceError::Len(_)) => return Err(Skip::Truncated),
        Err(LaxHeaderSliceError::Content(_)) => return Err(Skip::Malformed),
    };
    let (src_ip, dst_ip, ip_payload, declared) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let auth_len = v4.extensions().auth.as_ref().map_or(0, |a| a.slice().len());
            let hdr_len = h.slice().len() + auth_len;
            let declared = (h.total_len() as usize).checked_sub(hdr_len);
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                declared,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let len = h.payload_length() as usize;
            // Zero is a jumbogram or a length the sender never filled in: use the bytes.
            let declared = (len != 0)
                .then(|| len.checked_sub(v6.extensions().slice().len()))
                .flatten();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                declared,
            )
        }
    };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    if ip_payload.ip_number != ip_number::TCP {
        // An extension header chain that could not be walked ends somewhere else.
        return Err(if ext_err.is_some() {
            Skip::Malformed
        } else {
            Skip::NotTcp
        });
    }
    let tcp = match TcpSlice::from_slice(ip_payload.payload) {
        Ok(t) => t,
        Err(etherparse::err::tcp::HeaderSliceError::Len(_)) => return Err(Skip::Truncated),
        Err(etherparse::err::tcp::HeaderSliceError::Content(_)) => return Err(Skip::Malformed),
    };
    let payload = tcp.payload();
    let header_len = tcp.header_slice().len();
    let wire_len = if ip_payload.incomplete {
        // Cut by the snapshot length: the IP header still says how much was sent.
        match declared {
            Some(d) if d >= header_len + payload.len() => d - header_len,
            _ => return Err(Skip::Malformed),
        }
    } else {
        payload.len()
    };
    Ok(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags::from_slice(&tcp),
        window: tcp.window_size(),
        payload,
        wire_len: u32::try_from(wire_len).map_err(|_| Skip::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameTime;
    use crate::capture::LinkType;
    use crate::synth::frame::{Link, tcp_frame, tcp_ip};

    fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
        Frame {
            ts: FrameTime::ZERO,
            link,
            data,
            orig_len: data.len() as u32,
            elided: 0,
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const PA: TcpFlags = TcpFlags::new(TcpFlags::PSH | TcpFlags::ACK);

    #[test]
    fn every_link_layer_gives_the_same_segment() {
        for (src, dst) in [
            (sa("10.0.0.2:40000"), sa("10.0.0.1:21")),
            (sa("[2001:db8::2]:40000"), sa("[2001:db8::1]:21")),
        ] {
            for link in [
                Link::Ethernet,
                Link::Vlan(100),
                Link::QinQ(10, 20),
                Link::LinuxSll,
                Link::LinuxSll2,
                Link::Null,
                Link::Loop,
                Link::Raw,
            ] {
                let f = tcp_frame(link, src, dst, 1000, 2000, PA, b"USER x\r\n");
                let s = decode(&frame(link.link_type(), &f))
                    .unwrap_or_else(|e| panic!("{link:?} {src}: {e:?}"));
                assert_eq!(
                    (s.src, s.dst, s.seq, s.ack),
                    (src, dst, 1000, 2000),
                    "{link:?}"
                );
                assert_eq!(s.payload, b"USER x\r\n");
                assert_eq!(s.wire_len, 8);
                assert!(s.flags.ack() && !s.flags.syn());
            }
        }
    }

    #[test]
    fn raw_ip_link_types_12_14_228_229() {
        let v4 = tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, PA, b"x");
        let v6 = tcp_ip(sa("[::1]:1"), sa("[::2]:21"), 1, 1, PA, b"x");
        for lt in [LinkType::RAW_12, LinkType::RAW_14, LinkType::IPV4] {
            assert!(decode(&frame(lt, &v4)).is_ok());
        }
        assert!(decode(&frame(LinkType::IPV6, &v6)).is_ok());
    }

    #[test]
    fn null_link_in_big_endian_host_order() {
        let ip = tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, PA, b"x");
        let mut f = 2u32.to_be_bytes().to_vec();
        f.extend(&ip);
        assert!(decode(&frame(LinkType::NULL, &f)).is_ok());
        let mut f = 99u32.to_le_bytes().to_vec();
        f.extend(&ip);
        assert_eq!(decode(&frame(LinkType::NULL, &f)), Err(Skip::NotIp));
    }

    #[test]
    fn snaplen_cut_payload_keeps_its_wire_length() {
        let f = tcp_frame(
            Link::Ethernet,
            sa("10.0.0.1:20"),
            sa("10.0.0.2:4000"),
            5,
            6,
            PA,
            &[7u8; 1000],
        );
        let cut = &f[..200];
        let s = decode(&frame(LinkType::ETHERNET, cut)).unwrap();
        assert_eq!(s.wire_len, 1000);
        assert_eq!(s.payload.len(), 200 - 14 - 20 - 20);
        assert!(s.truncated());
        // Cut inside the TCP header.
        assert_eq!(
            decode(&frame(LinkType::ETHERNET, &f[..14 + 20 + 10])),
            Err(Skip::Truncated)
        );
        // Cut inside the link header.
        assert_eq!(
            decode(&frame(LinkType::ETHERNET, &f[..10])),
            Err(Skip::Truncated)
        );
        let sll = tcp_frame(
            Link::LinuxSll2,
            sa("10.0.0.1:20"),
            sa("10.0.0.2:4000"),
            5,
            6,
            PA,
            b"",
        );
        assert_eq!(
            decode(&frame(LinkType::LINUX_SLL2, &sll[..12])),
            Err(Skip::Truncated)
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = tcp_frame(
            Link::Ethernet,
            sa("10.0.0.1:21"),
            sa("10.0.0.2:4000"),
            5,
            6,
            PA,
            b"",
        );
        f.resize(60, 0);
        assert_eq!(decode(&frame(LinkType::ETHERNET, &f)).unwrap().payload, b"");
    }

    #[test]
    fn non_tcp_arp_and_unknown_links_are_reasons() {
        let mut udp = Vec::new();
        etherparse::PacketBuilder::ethernet2([0; 6], [1; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(53, 53)
            .write(&mut udp, b"dns")
            .unwrap();
        assert_eq!(decode(&frame(LinkType::ETHERNET, &udp)), Err(Skip::NotTcp));
        let mut arp = vec![0xff; 12];
        arp.extend([0x08, 0x06]);
        arp.extend([0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend([0u8; 20]);
        assert_eq!(decode(&frame(LinkType::ETHERNET, &arp)), Err(Skip::NotIp));
        assert_eq!(
            decode(&frame(LinkType(147), &udp)),
            Err(Skip::UnknownLinkType)
        );
        let mut sll_llc = vec![0u8; 14];
        sll_llc.extend(4u16.to_be_bytes());
        sll_llc.extend([0u8; 20]);
        assert_eq!(
            decode(&frame(LinkType::LINUX_SLL, &sll_llc)),
            Err(Skip::NotIp)
        );
    }

    #[test]
    fn fragments_are_skipped() {
        let mut ip = tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, PA, b"hello");
        ip[6] = 0x20; // more fragments
        assert_eq!(decode(&frame(LinkType::RAW, &ip)), Err(Skip::Fragment));
        ip[6] = 0x00;
        ip[7] = 0x10; // offset 128: a later fragment
        assert_eq!(decode(&frame(LinkType::RAW, &ip)), Err(Skip::Fragment));
    }

    #[test]
    fn ipv4_header_fields_out_of_range() {
        let ip = tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, PA, b"hello");
        let mut bad = ip.clone();
        bad[0] = 0x44; // IHL 4: shorter than the minimum header
        assert_eq!(decode(&frame(LinkType::RAW, &bad)), Err(Skip::Malformed));
        let mut bad = ip.clone();
        bad[0] = 0x4f; // IHL 15: 60-byte header, past the TCP header start
        assert_eq!(decode(&frame(LinkType::RAW, &bad)), Err(Skip::Truncated));
        // Total length larger than the packet: read as cut by the snapshot length.
        let mut long = ip.clone();
        long[2..4].copy_from_slice(&1000u16.to_be_bytes());
        let s = decode(&frame(LinkType::RAW, &long)).unwrap();
        assert_eq!((s.payload, s.wire_len), (&b"hello"[..], 960));
        // Total length smaller than the headers: etherparse falls back to the bytes.
        let mut short = ip.clone();
        short[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            decode(&frame(LinkType::RAW, &short)).unwrap().payload,
            b"hello"
        );
    }

    #[test]
    fn tcp_data_offset_past_the_packet() {
        let mut ip = tcp_ip(sa("1.1.1.1:1"), sa("2.2.2.2:21"), 1, 1, PA, b"");
        ip[20 + 12] = 0xf0; // data offset 15 words = 60 bytes, packet has 20
        assert_eq!(decode(&frame(LinkType::RAW, &ip)), Err(Skip::Truncated));
        ip[20 + 12] = 0x10; // data offset 4 words: below the minimum
        assert_eq!(decode(&frame(LinkType::RAW, &ip)), Err(Skip::Malformed));
    }

    /// IPv6 with a hop-by-hop and a destination-options header before TCP.
    fn ipv6_with_extensions(first_next: u8, ext: &[u8]) -> Vec<u8> {
        let plain = tcp_ip(
            sa("[2001:db8::2]:40000"),
            sa("[2001:db8::1]:21"),
            9,
            9,
            PA,
            b"NOOP\r\n",
        );
        let mut p = plain[..40].to_vec();
        p[6] = first_next;
        let len = (plain.len() - 40 + ext.len()) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p.extend(ext);
        p.extend(&plain[40..]);
        p
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        // Hop-by-hop (0) -> destination options (60) -> TCP (6), 8 bytes each.
        let ext = [60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
        let p = ipv6_with_extensions(0, &ext);
        let s = decode(&frame(LinkType::RAW, &p)).unwrap();
        assert_eq!(s.payload, b"NOOP\r\n");
        assert_eq!(s.dst, sa("[2001:db8::1]:21"));
    }

    #[test]
    fn ipv6_extension_header_loop_is_malformed_not_a_hang() {
        // Destination options pointing at destination options, over and over.
        let mut ext = Vec::new();
        for _ in 0..64 {
            ext.extend([60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let p = ipv6_with_extensions(60, &ext);
        assert_eq!(decode(&frame(LinkType::RAW, &p)), Err(Skip::Malformed));
    }

    #[test]
    fn segment_prints_like_tcpdump() {
        let f = tcp_frame(
            Link::Raw,
            sa("10.0.0.2:40000"),
            sa("10.0.0.1:21"),
            1,
            2,
            TcpFlags::new(TcpFlags::SYN),
            b"",
        );
        let s = decode(&frame(LinkType::RAW, &f)).unwrap();
        assert_eq!(
            format!("{s:?}"),
            "10.0.0.2:40000 > 10.0.0.1:21 [S] seq 1 ack 0 len 0"
        );
    }
}
