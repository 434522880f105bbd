//! The only control lines the proxy changes: the client's PASV/EPSV/PORT/EPRT, which
//! the proxy answers with its own data endpoints, and the server's 227/229/200 replies,
//! which are rewritten to point at them. No I/O here: lines in, lines out, tested below.
//! Commands and endpoints are read by the engine's own parsers (`ftp::parse`).

use std::net::{IpAddr, SocketAddr};

use crate::ftp::Verb;
use crate::ftp::parse::{self, EndpointError};

/// What the client asked for with a data-channel command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRequest {
    /// PASV: the proxy listens, and answers 227 with an IPv4 endpoint.
    Pasv,
    /// EPSV (or `EPSV 1`/`EPSV 2`): the proxy listens, and answers 229 with a port.
    Epsv,
    /// PORT or EPRT: the proxy connects to the client's endpoint.
    Active { to: SocketAddr, extended: bool },
}

impl DataRequest {
    pub fn passive(self) -> bool {
        !matches!(self, DataRequest::Active { .. })
    }
}

/// A client line, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLine {
    /// A data-channel command the proxy handles itself.
    Data(DataRequest),
    /// PORT or EPRT whose argument does not parse: passed on, for the server to refuse.
    BadEndpoint(EndpointError),
    /// `EPSV ALL` and every other command: passed on unchanged.
    Other,
}

/// Read one client line (without its line ending).
pub fn client_line(line: &[u8]) -> ClientLine {
    let Some(cmd) = parse::command(line) else {
        return ClientLine::Other;
    };
    match cmd.verb {
        Verb::PASV => ClientLine::Data(DataRequest::Pasv),
        // EPSV ALL only promises EPSV from now on (RFC 2428 §4): the server answers it.
        Verb::EPSV if cmd.arg().is_some_and(|a| a.eq_ignore_ascii_case(b"ALL")) => {
            ClientLine::Other
        }
        Verb::EPSV => ClientLine::Data(DataRequest::Epsv),
        Verb::PORT | Verb::EPRT => {
            let arg = cmd.arg().unwrap_or_default();
            let extended = cmd.verb == Verb::EPRT;
            let parsed = if extended {
                parse::parse_eprt_arg(arg)
            } else {
                parse::parse_port_arg(arg)
            };
            match parsed {
                Ok(to) => ClientLine::Data(DataRequest::Active { to, extended }),
                Err(e) => ClientLine::BadEndpoint(e),
            }
        }
        _ => ClientLine::Other,
    }
}

/// Why a PORT/EPRT is refused before it reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounce {
    /// The endpoint is not the client's own address (an FTP bounce, RFC 2577 §3).
    ThirdParty,
    /// A privileged port (below 1024), as RFC 2577 §3 advises refusing.
    PrivilegedPort,
}

impl Bounce {
    pub fn as_str(self) -> &'static str {
        match self {
            Bounce::ThirdParty => "bounce_third_party",
            Bounce::PrivilegedPort => "bounce_privileged_port",
        }
    }
}

/// RFC 2577's checks on an active-mode endpoint: the client's own address, port ≥ 1024.
/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
pub fn check_active(to: SocketAddr, client: IpAddr) -> Result<(), Bounce> {
    if to.ip().to_canonical() != client.to_canonical() {
        return Err(Bounce::ThirdParty);
    }
    if to.port() < 1024 {
        return Err(Bounce::PrivilegedPort);
    }
    Ok(())
}

/// What the proxy asks the server for, on its own leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamRequest {
    Epsv,
    Pasv,
    /// PORT (IPv4) or EPRT (`extended`), to the proxy's own endpoint.
    Active {
        at: SocketAddr,
        extended: bool,
    },
}

impl UpstreamRequest {
    /// The command line, with CRLF.
    pub fn line(self) -> Vec<u8> {
        match self {
            UpstreamRequest::Epsv => b"EPSV\r\n".to_vec(),
            UpstreamRequest::Pasv => b"PASV\r\n".to_vec(),
            UpstreamRequest::Active { at, extended } => {
                if extended || at.is_ipv6() {
                    format!("EPRT {}\r\n", eprt_arg(at)).into_bytes()
                } else {
                    format!("PORT {}\r\n", six_numbers(at)).into_bytes()
                }
            }
        }
    }
}

/// Where the server said it listens, from its 227/229 reply's text. A 229 names only a
/// port: the address is the server's own on the control connection (RFC 2428 §3).
/// A 227 naming a private or other address than the control connection's is answered
/// by connecting to the control connection's address instead (`nat`).
pub fn server_endpoint(
    code: u16,
    text: &[u8],
    control_server: IpAddr,
) -> Result<(SocketAddr, bool), EndpointError> {
    if code == 229 {
        let port = parse::parse_epsv_reply(text)?;
        return Ok((SocketAddr::new(control_server, port), false));
    }
    let announced = parse::parse_pasv_reply(text)?;
    if announced.ip().to_canonical() == control_server.to_canonical() {
        Ok((announced, false))
    } else {
        Ok((SocketAddr::new(control_server, announced.port()), true))
    }
}

/// The proxy's answer to the client's data command, in the form the client asked for,
/// pointing at the proxy's endpoint `at` (passive) or acknowledging its PORT/EPRT.
/// It replaces the server's success reply to the proxy's own request.
pub fn client_reply(req: DataRequest, at: SocketAddr) -> Vec<u8> {
    match req {
        DataRequest::Pasv => format!("227 Entering Passive Mode ({}).\r\n", six_numbers(at)),
        DataRequest::Epsv => format!("229 Entering Extended Passive Mode (|||{}|)\r\n", at.port()),
        DataRequest::Active { extended, .. } => {
            let verb = if extended { "EPRT" } else { "PORT" };
            format!("200 {verb} command successful.\r\n")
        }
    }
    .into_bytes()
}

/// `h1,h2,h3,h4,p1,p2` of an IPv4 endpoint (an IPv4-mapped IPv6 one is shown as IPv4).
fn six_numbers(at: SocketAddr) -> String {
    let ip = match at.ip().to_canonical() {
        IpAddr::V4(v4) => v4.octets(),
        // PASV cannot name an IPv6 address; callers answer IPv6 clients with 229.
        IpAddr::V6(_) => [0, 0, 0, 0],
    };
    let p = at.port();
    format!(
        "{},{},{},{},{},{}",
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        p >> 8,
        p & 0xff
    )
}

fn eprt_arg(at: SocketAddr) -> String {
    match at.ip().to_canonical() {
        IpAddr::V4(v4) => format!("|1|{v4}|{}|", at.port()),
        IpAddr::V6(v6) => format!("|2|{v6}|{}|", at.port()),
    }
}

/// A raw line split into its content and line ending (`\r\n`, `\n`, or none).
pub fn split_ending(raw: &[u8]) -> (&[u8], &[u8]) {
    let body_end = match raw {
        [.., b'\r', b'\n'] => raw.len() - 2,
        [.., b'\n'] => raw.len() - 1,
        _ => raw.len(),
    };
    raw.split_at(body_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn data_commands_are_recognised_in_any_case_and_others_pass() {
        assert_eq!(client_line(b"PASV"), ClientLine::Data(DataRequest::Pasv));
        assert_eq!(client_line(b"pasv"), ClientLine::Data(DataRequest::Pasv));
        assert_eq!(client_line(b"EPSV"), ClientLine::Data(DataRequest::Epsv));
        assert_eq!(client_line(b"EPSV 2"), ClientLine::Data(DataRequest::Epsv));
        assert_eq!(client_line(b"EPSV ALL"), ClientLine::Other);
        assert_eq!(client_line(b"epsv all"), ClientLine::Other);
        assert_eq!(
            client_line(b"PORT 10,0,0,2,4,1"),
            ClientLine::Data(DataRequest::Active {
                to: sa("10.0.0.2:1025"),
                extended: false
            })
        );
        assert_eq!(
            client_line(b"EPRT |2|fd77::2|40000|"),
            ClientLine::Data(DataRequest::Active {
                to: sa("[fd77::2]:40000"),
                extended: true
            })
        );
        assert_eq!(
            client_line(b"PORT 10,0,0,256,4,1"),
            ClientLine::BadEndpoint(EndpointError::OctetOutOfRange)
        );
        assert_eq!(
            client_line(b"EPRT |3|x|1|"),
            ClientLine::BadEndpoint(EndpointError::UnknownFamily)
        );
        assert_eq!(
            client_line(b"PORT"),
            ClientLine::BadEndpoint(EndpointError::Syntax)
        );
        assert_eq!(client_line(b"RETR pasv"), ClientLine::Other);
        assert_eq!(client_line(b""), ClientLine::Other);
        assert_eq!(client_line(b"\xff\xf4\xff\xf2ABOR"), ClientLine::Other);
    }

    #[test]
    fn bounce_checks_follow_rfc_2577() {
        let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(check_active(sa("10.0.0.2:40000"), me), Ok(()));
        assert_eq!(
            check_active(sa("10.0.0.3:40000"), me),
            Err(Bounce::ThirdParty)
        );
        assert_eq!(
            check_active(sa("10.0.0.2:25"), me),
            Err(Bounce::PrivilegedPort)
        );
        assert_eq!(check_active(sa("10.0.0.2:1024"), me), Ok(()));
        // The client reached an IPv6 listener with an IPv4 address (mapped).
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped());
        assert_eq!(check_active(sa("10.0.0.2:40000"), mapped), Ok(()));
    }

    #[test]
    fn server_endpoints_from_227_and_229() {
        let srv = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(
            server_endpoint(227, b"Entering Passive Mode (10,77,0,1,195,80).", srv),
            Ok((sa("10.77.0.1:50000"), false))
        );
        // A server behind NAT announcing its private address: connect to the control's.
        assert_eq!(
            server_endpoint(227, b"Entering Passive Mode (192,168,1,5,195,80).", srv),
            Ok((sa("10.77.0.1:50000"), true))
        );
        assert_eq!(
            server_endpoint(229, b"Entering Extended Passive Mode (|||50001|)", srv),
            Ok((sa("10.77.0.1:50001"), false))
        );
        let v6 = IpAddr::V6("fd77::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            server_endpoint(229, b"EPSV ok (!!!50002!)", v6),
            Ok((sa("[fd77::1]:50002"), false))
        );
        assert!(server_endpoint(229, b"no port here", srv).is_err());
        assert!(server_endpoint(227, b"Entering Passive Mode", srv).is_err());
    }

    #[test]
    fn replies_to_the_client_point_at_the_proxy() {
        assert_eq!(
            client_reply(DataRequest::Pasv, sa("192.0.2.7:40001")),
            b"227 Entering Passive Mode (192,0,2,7,156,65).\r\n"
        );
        // A client on an IPv4-mapped address of a dual-stack listener still gets IPv4.
        assert_eq!(
            client_reply(DataRequest::Pasv, sa("[::ffff:192.0.2.7]:40001")),
            b"227 Entering Passive Mode (192,0,2,7,156,65).\r\n"
        );
        assert_eq!(
            client_reply(DataRequest::Epsv, sa("[fd77::5]:40002")),
            b"229 Entering Extended Passive Mode (|||40002|)\r\n"
        );
        let active = DataRequest::Active {
            to: sa("10.0.0.2:40000"),
            extended: true,
        };
        assert_eq!(
            client_reply(active, sa("10.0.0.1:1")),
            b"200 EPRT command successful.\r\n"
        );
    }

    #[test]
    fn upstream_requests_are_well_formed() {
        assert_eq!(UpstreamRequest::Epsv.line(), b"EPSV\r\n");
        assert_eq!(UpstreamRequest::Pasv.line(), b"PASV\r\n");
        let port = UpstreamRequest::Active {
            at: sa("10.77.0.3:40000"),
            extended: false,
        };
        assert_eq!(port.line(), b"PORT 10,77,0,3,156,64\r\n");
        let eprt = UpstreamRequest::Active {
            at: sa("[fd77::3]:40000"),
            extended: false,
        };
        assert_eq!(eprt.line(), b"EPRT |2|fd77::3|40000|\r\n");
        // What the engine's parsers read back is what was written.
        assert_eq!(
            parse::parse_port_arg(b"10,77,0,3,156,64"),
            Ok(sa("10.77.0.3:40000"))
        );
    }

    #[test]
    fn line_endings_are_kept_apart() {
        assert_eq!(split_ending(b"PASV\r\n"), (&b"PASV"[..], &b"\r\n"[..]));
        assert_eq!(split_ending(b"PASV\n"), (&b"PASV"[..], &b"\n"[..]));
        assert_eq!(split_ending(b"PASV"), (&b"PASV"[..], &b""[..]));
    }
}
