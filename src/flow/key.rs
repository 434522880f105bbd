//! The connection table's key: the two ends of a TCP connection, in a fixed order so
//! that both directions find the same entry. Compact (38 bytes, plain bytes to hash)
//! because there is one per tracked connection, in the table and in its timer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct End {
    ip: [u8; 16],
    port: u16,
    v6: bool,
}

impl End {
    fn of(a: SocketAddr) -> Self {
        match a.ip() {
            IpAddr::V4(v4) => {
                let mut ip = [0u8; 16];
                ip[..4].copy_from_slice(&v4.octets());
                End {
                    ip,
                    port: a.port(),
                    v6: false,
                }
            }
            IpAddr::V6(v6) => End {
                ip: v6.octets(),
                port: a.port(),
                v6: true,
            },
        }
    }

    fn addr(&self) -> SocketAddr {
        let ip = if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.ip[0], self.ip[1], self.ip[2], self.ip[3],
            ))
        };
        SocketAddr::new(ip, self.port)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: End,
    hi: End,
}

impl FlowKey {
    pub fn new(a: SocketAddr, b: SocketAddr) -> Self {
        let (a, b) = (End::of(a), End::of(b));
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }

    /// The end of the connection that is not `end`.
    pub fn other(&self, end: SocketAddr) -> SocketAddr {
        if End::of(end) == self.lo {
            self.hi.addr()
        } else {
            self.lo.addr()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_give_one_key() {
        let a: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:21".parse().unwrap();
        assert_eq!(FlowKey::new(a, b), FlowKey::new(b, a));
        let c: SocketAddr = "10.0.0.1:22".parse().unwrap();
        assert_ne!(FlowKey::new(a, b), FlowKey::new(a, c));
        assert_eq!(FlowKey::new(a, b).other(a), b);
        assert_eq!(FlowKey::new(a, b).other(b), a);
    }

    #[test]
    fn v4_and_v4_mapped_v6_stay_distinct() {
        let v4: SocketAddr = "10.0.0.1:21".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:21".parse().unwrap();
        let peer: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let peer6: SocketAddr = "[::ffff:10.0.0.2]:1".parse().unwrap();
        assert_ne!(FlowKey::new(v4, peer), FlowKey::new(mapped, peer6));
        assert_eq!(FlowKey::new(mapped, peer6).other(peer6), mapped);
    }

    #[test]
    fn it_is_small() {
        assert!(std::mem::size_of::<FlowKey>() <= 40);
    }
}
