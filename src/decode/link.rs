//! Link-layer headers that etherparse does not take as a whole frame: Linux cooked
//! captures (SLL, and SLL2, which `tcpdump -i any` writes since 4.99 and etherparse does
//! not know), BSD null/loopback, and raw IP.

use etherparse::EtherType;

use super::Skip;
use crate::capture::LinkType;

pub enum Payload<'a> {
    /// A whole Ethernet frame (802.1Q and QinQ tags are etherparse's to handle).
    Ethernet(&'a [u8]),
    /// The payload of a link header, with its EtherType.
    EtherType(EtherType, &'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
}

const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;

/// Strip the link header that `link` says the frame has.
pub fn link_payload(link: LinkType, data: &[u8]) -> Result<Payload<'_>, Skip> {
    match link {
        LinkType::ETHERNET => Ok(Payload::Ethernet(data)),
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 | LinkType::IPV4 | LinkType::IPV6 => {
            Ok(Payload::Ip(data))
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
                2 | 10 | 24 | 28 | 30 => Ok(Payload::Ip(&data[4..])),
                _ => Err(Skip::NotIp),
            }
        }
        _ => Err(Skip::UnknownLinkType),
    }
}

fn ether_payload(proto: u16, rest: &[u8]) -> Result<Payload<'_>, Skip> {
    // Below 0x0600 the field is not an EtherType (802.3 length, LLC, CAN, ...).
    if proto < 0x0600 {
        return Err(Skip::NotIp);
    }
    Ok(Payload::EtherType(EtherType(proto), rest))
}
