//! Link-layer headers that etherparse does not take as a whole frame: Linux cooked
//! captures (SLL, and SLL2, which `tcpdump -i any` writes since 4.99 and etherparse does
//! not know), BSD null/loopback, and raw IP.

use etherparse::{EtherType, Ethernet2HeaderSlice, SingleVlanHeaderSlice};

use super::Skip;
use crate::capture::LinkType;

/// An IPv4 or IPv6 packet, once the link layer is stripped.
pub type IpPacket<'a> = &'a [u8];

/// VLAN tags followed before giving up (802.1Q, 802.1ad and the old 0x9100 QinQ).
const MAX_VLAN_TAGS: usize = 3;

const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;

/// Strip the link header that `link` says the frame has.
pub fn link_payload(link: LinkType, data: &[u8]) -> Result<IpPacket<'_>, Skip> {
    match link {
        LinkType::ETHERNET => {
            let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| Skip::Truncated)?;
            let mut ether_type = eth.ether_type();
            let mut rest = &data[eth.slice().len()..];
            for _ in 0..MAX_VLAN_TAGS {
                if !matches!(ether_type.0, 0x8100 | 0x88a8 | 0x9100) {
                    break;
                }
                let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| Skip::Truncated)?;
                ether_type = tag.ether_type();
                rest = &rest[tag.slice().len()..];
            }
            ether_payload(ether_type.0, rest)
        }
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 | LinkType::IPV4 | LinkType::IPV6 => {
            Ok(data)
        }
        LinkType::LINUX_SLL => {
            let h = data.get(..SLL_LEN).ok_or(Skip::Truncated)?;
            ether_payload(u16::from_be_bytes([h[14], h[15]]), &data[SLL_LEN..])
        }
        LinkType::LINUX_SLL2 => {
            let h = data.get(..SLL2_LEN).ok_or(Skip::Truncated)?;
            ether_payload(u16::from_be_bytes([h[0], h[1]]), &data[SLL2_LEN..])
        }
        LinkType::NULL | LinkType::LOOP => {
            let h = data.get(..4).ok_or(Skip::Truncated)?;
            let raw = [h[0], h[1], h[2], h[3]];
            // LOOP is in network byte order; NULL in the capturing host's order, which
            // the file does not record, so either order is accepted.
            let family = if link == LinkType::LOOP {
                u32::from_be_bytes(raw)
            } else {
                let le = u32::from_le_bytes(raw);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 on Linux (10), the BSDs (24, 28, 30).
                2 | 10 | 24 | 28 | 30 => Ok(&data[4..]),
                _ => Err(Skip::NotIp),
            }
        }
        _ => Err(Skip::UnknownLinkType),
    }
}

fn ether_payload(proto: u16, rest: &[u8]) -> Result<IpPacket<'_>, Skip> {
    match EtherType(proto) {
        EtherType::IPV4 | EtherType::IPV6 => Ok(rest),
        // ARP, LLC, MPLS, and below 0x0600 not an EtherType at all (802.3 length).
        _ => Err(Skip::NotIp),
    }
}
