//! Scripted FTP sessions: a control connection and the data connections its commands
//! announce, with server behaviour chosen by the script.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::frame::Link;
use super::tcp::{Capture, Tcp};
use crate::decode::TcpFlags;
use crate::ftp::Side;

/// An FTP session being written into a capture.
pub struct FtpSim {
    pub cap: Capture,
    pub ctrl: Tcp,
    next_port: u16,
}

/// How `FtpSim::download` ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DownloadEnd {
    /// The server closes the data connection and sends 226.
    Completed,
    /// The client resets the data connection; the server sends 426.
    ClientReset,
}

/// A data connection of a session (use `FtpSim::cap` with its methods).
pub struct DataSim {
    pub tcp: Tcp,
    /// Which `Tcp` side is the FTP client.
    pub client_side: Side,
}

impl DataSim {
    pub fn server_side(&self) -> Side {
        self.client_side.other()
    }
}

impl FtpSim {
    pub fn new(link: Link, client: SocketAddr, server: SocketAddr) -> Self {
        FtpSim {
            cap: Capture::new(link),
            ctrl: Tcp::new(client, server, 1_000_000, 5_000_000),
            next_port: 50_000,
        }
    }

    /// Client `i` of many (benchmarks, load): an address and port of its own in 10/8
    /// (distinct for `i` below 13 million), talking to the server 192.0.2.21:21.
    pub fn numbered(i: u32) -> Self {
        let octet = |v: u32| (v % 256) as u8;
        let ip = Ipv4Addr::new(10, 1 + (i / 65_536 % 200) as u8, octet(i / 256), octet(i));
        let client = SocketAddr::new(IpAddr::V4(ip), 20_000 + (i % 40_000) as u16);
        let server = "192.0.2.21:21".parse().expect("literal");
        Self::new(Link::Ethernet, client, server)
    }

    /// IPv4 defaults: client 10.0.0.2:40000, server 10.0.0.1:21, Ethernet.
    pub fn default_v4() -> Self {
        Self::new(
            Link::Ethernet,
            "10.0.0.2:40000".parse().expect("literal"),
            "10.0.0.1:21".parse().expect("literal"),
        )
    }

    pub fn client_ip(&self) -> IpAddr {
        self.ctrl.a.ip()
    }

    pub fn server_ip(&self) -> IpAddr {
        self.ctrl.b.ip()
    }

    /// Handshake and greeting.
    pub fn connect(&mut self) {
        self.ctrl.handshake(&mut self.cap);
        self.reply("220 ftpwatch synthetic server ready");
    }

    pub fn cmd(&mut self, line: &str) {
        self.cmd_bytes(line.as_bytes());
    }

    /// A command line given as raw bytes (Telnet IAC sequences, invalid UTF-8).
    pub fn cmd_bytes(&mut self, line: &[u8]) {
        let mut b = line.to_vec();
        b.extend_from_slice(b"\r\n");
        self.ctrl.send(&mut self.cap, Side::Initiator, &b);
        self.cap.advance_ms(1);
    }

    pub fn reply(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.ctrl.send(&mut self.cap, Side::Responder, &b);
        self.cap.advance_ms(1);
    }

    /// A reply sent at the current capture time, with no ACK or pause after it (for
    /// what must follow within microseconds, or a capture that starts with it).
    pub fn reply_now(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        let flags = TcpFlags::PSH | TcpFlags::ACK;
        let seq = self.ctrl.seq_b;
        let f = self
            .ctrl
            .frame_at(self.cap.link, Side::Responder, seq, flags, &b);
        self.cap.push(f);
        self.ctrl.seq_b = seq.wrapping_add(b.len() as u32);
    }

    /// USER, PASS (with `password`), TYPE I.
    pub fn login(&mut self, user: &str, password: &str) {
        self.cmd(&format!("USER {user}"));
        self.reply("331 Please specify the password.");
        self.cmd(&format!("PASS {password}"));
        self.reply("230 Login successful.");
        self.cmd("TYPE I");
        self.reply("200 Switching to Binary mode.");
    }

    fn fresh_port(&mut self) -> u16 {
        self.next_port += 1;
        self.next_port
    }

    /// PASV; the server announces `announce` (default: its own address) and the
    /// client connects to the server's real address.
    pub fn pasv_announcing(&mut self, announce: Option<IpAddr>) -> DataSim {
        let port = self.fresh_port();
        let ip = announce.unwrap_or(self.server_ip());
        let IpAddr::V4(v4) = ip else {
            panic!("PASV needs IPv4");
        };
        let o = v4.octets();
        self.cmd("PASV");
        self.reply(&format!(
            "227 Entering Passive Mode ({},{},{},{},{},{}).",
            o[0],
            o[1],
            o[2],
            o[3],
            port >> 8,
            port & 0xff
        ));
        let client = SocketAddr::new(self.client_ip(), self.fresh_port());
        let server = SocketAddr::new(self.server_ip(), port);
        DataSim {
            tcp: Tcp::new(client, server, 7_000_000, 9_000_000),
            client_side: Side::Initiator,
        }
    }

    pub fn pasv(&mut self) -> DataSim {
        self.pasv_announcing(None)
    }

    pub fn epsv(&mut self) -> DataSim {
        let port = self.fresh_port();
        self.cmd("EPSV");
        self.reply(&format!("229 Entering Extended Passive Mode (|||{port}|)"));
        let client = SocketAddr::new(self.client_ip(), self.fresh_port());
        let server = SocketAddr::new(self.server_ip(), port);
        DataSim {
            tcp: Tcp::new(client, server, 7_000_000, 9_000_000),
            client_side: Side::Initiator,
        }
    }

    /// PORT (IPv4) or EPRT; the server connects from port 20.
    pub fn active(&mut self, eprt: bool) -> DataSim {
        let port = self.fresh_port();
        let listen = SocketAddr::new(self.client_ip(), port);
        if eprt {
            let af = if listen.is_ipv6() { 2 } else { 1 };
            self.cmd(&format!("EPRT |{af}|{}|{port}|", listen.ip()));
        } else {
            let IpAddr::V4(v4) = listen.ip() else {
                panic!("PORT needs IPv4");
            };
            let o = v4.octets();
            self.cmd(&format!(
                "PORT {},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                port >> 8,
                port & 0xff
            ));
        }
        self.reply("200 PORT command successful. Consider using PASV.");
        let server = SocketAddr::new(self.server_ip(), 20);
        DataSim {
            tcp: Tcp::new(server, listen, 3_000_000, 4_000_000),
            client_side: Side::Responder,
        }
    }

    pub fn open(&mut self, d: &mut DataSim) {
        d.tcp.handshake(&mut self.cap);
    }

    /// A complete download of `bytes` over `d`: RETR, 150, data, server FIN, 226.
    pub fn retr_ok(&mut self, d: &mut DataSim, file: &str, bytes: u64) {
        if d.client_side == Side::Initiator {
            self.open(d);
        }
        self.cmd(&format!("RETR {file}"));
        if d.client_side == Side::Responder {
            self.open(d);
        }
        self.reply(&format!(
            "150 Opening BINARY mode data connection for {file} ({bytes} bytes)."
        ));
        d.tcp.bulk(&mut self.cap, d.server_side(), bytes, 1448, 20);
        d.tcp.close(&mut self.cap, d.server_side());
        self.reply("226 Transfer complete.");
    }

    /// RETR of `file` over a fresh PASV data connection: `bytes` in `mss`-sized
    /// segments 10 µs apart, then `end`.
    pub fn download(&mut self, file: &str, bytes: u64, mss: usize, end: DownloadEnd) {
        let mut d = self.pasv();
        self.open(&mut d);
        self.cmd(&format!("RETR {file}"));
        self.reply(&format!(
            "150 Opening BINARY mode data connection for {file}."
        ));
        d.tcp.bulk(&mut self.cap, d.server_side(), bytes, mss, 10);
        match end {
            DownloadEnd::Completed => {
                d.tcp.close(&mut self.cap, d.server_side());
                self.reply("226 Transfer complete.");
            }
            DownloadEnd::ClientReset => {
                d.tcp.rst(&mut self.cap, d.client_side);
                self.reply("426 Failure writing network stream.");
            }
        }
    }

    pub fn quit(&mut self) {
        self.cmd("QUIT");
        self.reply("221 Goodbye.");
        self.ctrl.close(&mut self.cap, Side::Responder);
    }
}
