//! Data-connection endpoints announced on the control connection:
//! `227` (PASV reply), `229` (EPSV reply, RFC 2428), and the PORT and EPRT arguments.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointError {
    /// Fewer than six numbers, or text where numbers should be.
    Syntax,
    /// A number outside 0..=255.
    OctetOutOfRange,
    /// EPRT address family other than 1 (IPv4) or 2 (IPv6).
    UnknownFamily,
    /// The address does not parse for its family.
    BadAddress,
    /// Port 0 or a port number above 65535.
    BadPort,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointError::Syntax => "malformed endpoint",
            EndpointError::OctetOutOfRange => "number above 255",
            EndpointError::UnknownFamily => "unknown address family",
            EndpointError::BadAddress => "bad address",
            EndpointError::BadPort => "bad port",
        })
    }
}

/// Six comma-separated decimal numbers h1,h2,h3,h4,p1,p2 (RFC 959 PORT and 227).
fn six_numbers(s: &[u8]) -> Result<SocketAddr, EndpointError> {
    let mut n = [0u16; 6];
    let mut i = 0;
    let mut digits = 0;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                if digits == 3 {
                    return Err(EndpointError::OctetOutOfRange);
                }
                n[i] = n[i] * 10 + (b - b'0') as u16;
                digits += 1;
            }
            b',' if digits > 0 && i < 5 => {
                i += 1;
                digits = 0;
            }
            b' ' if digits == 0 => {}
            _ => return Err(EndpointError::Syntax),
        }
    }
    if i != 5 || digits == 0 {
        return Err(EndpointError::Syntax);
    }
    if n.iter().any(|&v| v > 255) {
        return Err(EndpointError::OctetOutOfRange);
    }
    let ip = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    let port = n[4] * 256 + n[5];
    if port == 0 {
        return Err(EndpointError::BadPort);
    }
    Ok(SocketAddr::new(IpAddr::V4(ip), port))
}

/// The endpoint of a `227` reply's text. RFC 959 puts it in parentheses, but RFC 1123
/// §4.1.2.6 tells clients to scan for the first digit because servers vary, so both
/// `Entering Passive Mode (h1,h2,h3,h4,p1,p2).` and `=h1,h2,...` forms are accepted.
pub fn parse_pasv_reply(text: &[u8]) -> Result<SocketAddr, EndpointError> {
    let start = text
        .iter()
        .position(u8::is_ascii_digit)
        .ok_or(EndpointError::Syntax)?;
    let rest = &text[start..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b',' || *b == b' '))
        .unwrap_or(rest.len());
    six_numbers(trim_end(&rest[..end]))
}

/// The port of a `229` reply: `(<d><d><d>port<d>)` where `<d>` is one printable ASCII
/// delimiter, normally `|` (RFC 2428 §3).
pub fn parse_epsv_reply(text: &[u8]) -> Result<u16, EndpointError> {
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or(EndpointError::Syntax)?;
    let inner = &text[open + 1..];
    let close = inner
        .iter()
        .position(|&b| b == b')')
        .ok_or(EndpointError::Syntax)?;
    let inner = &inner[..close];
    let (&d, _) = inner.split_first().ok_or(EndpointError::Syntax)?;
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return Err(EndpointError::Syntax);
    }
    match inner {
        [a, b, c, port @ .., e] if [*a, *b, *c, *e] == [d; 4] => parse_port(port),
        _ => Err(EndpointError::Syntax),
    }
}

/// The argument of PORT: `h1,h2,h3,h4,p1,p2`.
pub fn parse_port_arg(arg: &[u8]) -> Result<SocketAddr, EndpointError> {
    six_numbers(arg)
}

/// The argument of EPRT: `<d>af<d>address<d>port<d>`, af 1 = IPv4, 2 = IPv6 (RFC 2428 §2).
pub fn parse_eprt_arg(arg: &[u8]) -> Result<SocketAddr, EndpointError> {
    let (&d, rest) = arg.split_first().ok_or(EndpointError::Syntax)?;
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return Err(EndpointError::Syntax);
    }
    let mut parts = rest.split(|&b| b == d);
    let (Some(af), Some(addr), Some(port), Some(empty), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(EndpointError::Syntax);
    };
    if !empty.is_empty() {
        return Err(EndpointError::Syntax);
    }
    let addr = std::str::from_utf8(addr).map_err(|_| EndpointError::BadAddress)?;
    let ip = match af {
        b"1" => IpAddr::V4(
            addr.parse::<Ipv4Addr>()
                .map_err(|_| EndpointError::BadAddress)?,
        ),
        b"2" => IpAddr::V6(
            addr.parse::<Ipv6Addr>()
                .map_err(|_| EndpointError::BadAddress)?,
        ),
        _ => return Err(EndpointError::UnknownFamily),
    };
    Ok(SocketAddr::new(ip, parse_port(port)?))
}

fn parse_port(p: &[u8]) -> Result<u16, EndpointError> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return Err(EndpointError::BadPort);
    }
    let v: u32 = p.iter().fold(0, |a, &b| a * 10 + (b - b'0') as u32);
    match u16::try_from(v) {
        Ok(0) | Err(_) => Err(EndpointError::BadPort),
        Ok(port) => Ok(port),
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |e| e + 1);
    &b[..end]
}

/// The size a server announces in a 150 reply: `(N bytes)` in any case (vsftpd and
/// ProFTPD `bytes`, Serv-U `Bytes`), or `(N octets)`, e.g.
/// `150 Opening BINARY mode data connection for big.bin (1048576 bytes).`
pub fn parse_announced_size(text: &[u8]) -> Option<u64> {
    let mut rest = text;
    while let Some(open) = rest.iter().position(|&b| b == b'(') {
        rest = &rest[open + 1..];
        let close = rest.iter().position(|&b| b == b')')?;
        let inner = &rest[..close];
        if let Some(space) = inner.iter().position(|&b| b == b' ')
            && let unit = trim_start(&inner[space..])
            && (unit.eq_ignore_ascii_case(b"bytes") || unit.eq_ignore_ascii_case(b"octets"))
            && let Some(n) = parse_u64(&inner[..space])
        {
            return Some(n);
        }
    }
    None
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    &b[start..]
}

/// A 213 reply to SIZE (RFC 3659 §4): `213 1048576`.
pub fn parse_size_reply(text: &[u8]) -> Option<u64> {
    parse_u64(trim_end(trim_start(text)))
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u64, |a, &b| a * 10 + (b - b'0') as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pasv_with_and_without_parentheses() {
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode (192,168,1,2,195,80)."),
            Ok(sa("192.168.1.2:50000"))
        );
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode 10,0,0,1,4,1"),
            Ok(sa("10.0.0.1:1025"))
        );
        assert_eq!(parse_pasv_reply(b"=10,0,0,1,4,1"), Ok(sa("10.0.0.1:1025")));
        assert_eq!(
            parse_pasv_reply(b"Entering Passive Mode (10, 0, 0, 1, 4, 1)"),
            Ok(sa("10.0.0.1:1025"))
        );
    }

    #[test]
    fn pasv_rejects_octets_above_255_and_short_lists() {
        assert_eq!(
            parse_pasv_reply(b"(192,168,1,256,4,1)"),
            Err(EndpointError::OctetOutOfRange)
        );
        assert_eq!(
            parse_pasv_reply(b"(1,2,3,4,5,1000)"),
            Err(EndpointError::OctetOutOfRange)
        );
        assert_eq!(parse_pasv_reply(b"(1,2,3,4,5)"), Err(EndpointError::Syntax));
        assert_eq!(
            parse_pasv_reply(b"Fake response PASV"),
            Err(EndpointError::Syntax)
        );
        assert_eq!(
            parse_pasv_reply(b"(1,2,,3,4,5,6)"),
            Err(EndpointError::Syntax)
        );
    }

    #[test]
    fn pasv_port_zero_is_unusable_broadcast_parses() {
        assert_eq!(
            parse_pasv_reply(b"(10,0,0,1,0,0)"),
            Err(EndpointError::BadPort)
        );
        assert_eq!(
            parse_pasv_reply(b"(255,255,255,255,4,1)"),
            Ok(sa("255.255.255.255:1025"))
        );
    }

    #[test]
    fn epsv_with_odd_delimiters() {
        assert_eq!(
            parse_epsv_reply(b"Entering Extended Passive Mode (|||6446|)"),
            Ok(6446)
        );
        assert_eq!(
            parse_epsv_reply(b"Entering Extended Passive Mode (!!!6446!)"),
            Ok(6446)
        );
        assert_eq!(parse_epsv_reply(b"ok (###65535#)."), Ok(65535));
        assert_eq!(
            parse_epsv_reply(b"(|||65536|)"),
            Err(EndpointError::BadPort)
        );
        assert_eq!(parse_epsv_reply(b"(|||0|)"), Err(EndpointError::BadPort));
        assert_eq!(parse_epsv_reply(b"(||6446|)"), Err(EndpointError::Syntax));
        assert_eq!(parse_epsv_reply(b"(|!|6446|)"), Err(EndpointError::Syntax));
        assert_eq!(parse_epsv_reply(b"(1116441)"), Err(EndpointError::Syntax));
        assert_eq!(parse_epsv_reply(b"|||6446|"), Err(EndpointError::Syntax));
        assert_eq!(parse_epsv_reply(b"(|||6446|"), Err(EndpointError::Syntax));
    }

    #[test]
    fn port_argument() {
        assert_eq!(parse_port_arg(b"10,0,0,2,156,64"), Ok(sa("10.0.0.2:40000")));
        assert_eq!(parse_port_arg(b"114,115"), Err(EndpointError::Syntax));
        assert_eq!(parse_port_arg(b"1,2,3,4,5,6,7"), Err(EndpointError::Syntax));
        assert_eq!(parse_port_arg(b"1,2,3,4,5,a"), Err(EndpointError::Syntax));
        assert_eq!(parse_port_arg(b"1,2,3,4,0,0"), Err(EndpointError::BadPort));
        assert_eq!(
            parse_port_arg(b"1000,2,3,4,5,6"),
            Err(EndpointError::OctetOutOfRange)
        );
    }

    #[test]
    fn eprt_ipv4_and_ipv6() {
        assert_eq!(
            parse_eprt_arg(b"|1|132.235.1.2|6275|"),
            Ok(sa("132.235.1.2:6275"))
        );
        assert_eq!(
            parse_eprt_arg(b"|2|1080::8:800:200C:417A|5282|"),
            Ok(sa("[1080::8:800:200c:417a]:5282"))
        );
        assert_eq!(parse_eprt_arg(b"!2!::1!21!"), Ok(sa("[::1]:21")));
    }

    #[test]
    fn eprt_errors() {
        assert_eq!(
            parse_eprt_arg(b"|3|1.2.3.4|21|"),
            Err(EndpointError::UnknownFamily)
        );
        assert_eq!(
            parse_eprt_arg(b"|1|::1|21|"),
            Err(EndpointError::BadAddress)
        );
        assert_eq!(
            parse_eprt_arg(b"|2|1.2.3.4|21|"),
            Err(EndpointError::BadAddress)
        );
        assert_eq!(
            parse_eprt_arg(b"|1|1.2.3.4|0|"),
            Err(EndpointError::BadPort)
        );
        assert_eq!(parse_eprt_arg(b"|1|1.2.3.4|21"), Err(EndpointError::Syntax));
        assert_eq!(
            parse_eprt_arg(b"|1|1.2.3.4|21|x"),
            Err(EndpointError::Syntax)
        );
        assert_eq!(parse_eprt_arg(b""), Err(EndpointError::Syntax));
        assert_eq!(
            parse_eprt_arg(b"|1|\xff|21|"),
            Err(EndpointError::BadAddress)
        );
    }

    #[test]
    fn announced_size_in_bytes() {
        assert_eq!(
            parse_announced_size(b"Opening BINARY mode data connection for a.bin (1048576 bytes)."),
            Some(1_048_576)
        );
    }

    #[test]
    fn announced_size_in_capitalised_bytes() {
        assert_eq!(
            parse_announced_size(b"Opening BINARY mode data connection for /a.bin (4096 Bytes)"),
            Some(4096)
        );
        assert_eq!(parse_announced_size(b"Opening (77 BYTES)"), Some(77));
    }

    #[test]
    fn announced_size_in_octets() {
        assert_eq!(
            parse_announced_size(b"Ouverture de la connexion pour x.bin (123456 octets)."),
            Some(123_456)
        );
        assert_eq!(parse_announced_size(b"Opening (9 Octets)"), Some(9));
    }

    #[test]
    fn announced_size_after_other_parentheses() {
        assert_eq!(
            parse_announced_size(b"Opening data connection for report (v2).csv (512 bytes)"),
            Some(512)
        );
    }

    #[test]
    fn no_announced_size() {
        assert_eq!(
            parse_announced_size(b"Here comes the directory listing."),
            None
        );
        assert_eq!(parse_announced_size(b"Opening (x bytes)"), None);
        assert_eq!(parse_announced_size(b"Opening (12 kbytes)"), None);
        assert_eq!(parse_announced_size(b"Opening (12 bytes"), None);
        assert_eq!(parse_announced_size(b"(99999999999999999999 bytes)"), None);
    }

    #[test]
    fn size_reply_213() {
        assert_eq!(parse_size_reply(b"4096"), Some(4096));
        assert_eq!(parse_size_reply(b" 4096 "), Some(4096));
        assert_eq!(parse_size_reply(b"99999999999999999999"), None);
        assert_eq!(parse_size_reply(b"4096 bytes"), None);
    }
}
