//! Where a session goes: the one upstream server (reverse mode), or the destination
//! the client was on its way to before the gateway's REDIRECT rule sent it to the
//! proxy (transparent mode, SO_ORIGINAL_DST), if `--allow-dest` allows it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub enum Upstream {
    /// `--upstream HOST:PORT`, resolved for each session (DNS may move it).
    Fixed(String),
    /// `--transparent`: the original destination, within these networks.
    Transparent { allow: Vec<Cidr> },
}

impl Upstream {
    /// The host named in `--upstream` (what the server's certificate must name).
    pub fn host(&self) -> Option<&str> {
        match self {
            Upstream::Fixed(hp) => {
                let host = hp.rsplit_once(':').map_or(hp.as_str(), |(h, _)| h);
                Some(host.trim_start_matches('[').trim_end_matches(']'))
            }
            Upstream::Transparent { .. } => None,
        }
    }
}

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `fd00::/8` (a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr {
            net: net.to_canonical(),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

#[derive(Debug)]
pub enum Refusal {
    /// Transparent mode: the connection was not redirected (it was made to the proxy's
    /// own address), so there is nowhere to relay it.
    NoOriginalDestination,
    NotAllowed(SocketAddr),
    Resolve(std::io::Error),
}

/// The server this client's session goes to.
pub async fn destination(up: &Upstream, client: &TcpStream) -> Result<SocketAddr, Refusal> {
    match up {
        Upstream::Fixed(host) => tokio::net::lookup_host(host.as_str())
            .await
            .map_err(Refusal::Resolve)?
            .next()
            .ok_or_else(|| {
                Refusal::Resolve(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} has no address"),
                ))
            }),
        Upstream::Transparent { allow } => {
            let local = client
                .local_addr()
                .map_err(|_| Refusal::NoOriginalDestination)?;
            let sock = socket2::SockRef::from(client);
            let original = if local.is_ipv4() {
                sock.original_dst_v4()
            } else {
                sock.original_dst_v6()
            };
            let dest = original
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or(Refusal::NoOriginalDestination)?;
            // Not redirected: the client connected to the proxy itself.
            if dest == local {
                return Err(Refusal::NoOriginalDestination);
            }
            if allow.iter().any(|c| c.contains(dest.ip())) {
                Ok(dest)
            } else {
                Err(Refusal::NotAllowed(dest))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_and_no_others() {
        let n: Cidr = "10.77.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.77.3.4")));
        assert!(!n.contains(ip("10.78.0.1")));
        assert!(n.contains(ip("::ffff:10.77.0.1")), "IPv4-mapped is IPv4");
        assert!(!n.contains(ip("fd77::1")));
        let v6: Cidr = "fd77::/16".parse().unwrap();
        assert!(v6.contains(ip("fd77::1")));
        assert!(!v6.contains(ip("fd78::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let one: Cidr = "192.0.2.1".parse().unwrap();
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        assert_eq!(one.to_string(), "192.0.2.1/32");
    }

    #[test]
    fn bad_networks_say_what_is_wrong() {
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 32")
        );
        assert!(
            "fd00::/129"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 128")
        );
        assert!(
            "example.com/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an IP")
        );
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }
}
