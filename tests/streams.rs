//! Stream conditions and link layers: out-of-order, retransmitted and lost segments,
//! mid-stream pickup, NAT'd PASV, snapshot-length cuts, every link type, pcapng.

mod common;

use common::{analyse, analyse_with, anomalies, sessions, transfers};
use ftpwatch::capture::writer::{PcapNgWriter, PcapWriter};
use ftpwatch::capture::{FileSource, FrameSource, LinkType, Next};
use ftpwatch::decode::TcpFlags;
use ftpwatch::ftp::{AbortCause, Outcome, Side, Timestamp, TransferRecord};
use ftpwatch::pipeline::Settings;
use ftpwatch::synth::{FtpSim, Link};

const PA: u8 = TcpFlags::PSH | TcpFlags::ACK;

/// A session with one RETR that the client resets mid-way: the reference abort.
fn reset_abort(mut s: FtpSim) -> FtpSim {
    s.connect();
    s.login("alice", "pw");
    let mut d = s.pasv_or_epsv();
    s.open(&mut d);
    s.cmd("RETR big.bin");
    s.reply("150 Opening BINARY mode data connection for big.bin (1048576 bytes).");
    d.tcp.bulk(&mut s.cap, d.server_side(), 65_000, 1448, 20);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("426 Failure writing network stream.");
    s.quit();
    s
}

trait PasvOrEpsv {
    fn pasv_or_epsv(&mut self) -> ftpwatch::synth::ftp::DataSim;
}

impl PasvOrEpsv for FtpSim {
    fn pasv_or_epsv(&mut self) -> ftpwatch::synth::ftp::DataSim {
        if self.ctrl.a.is_ipv6() {
            self.epsv()
        } else {
            self.pasv()
        }
    }
}

fn summary(t: &TransferRecord) -> (Outcome, Option<AbortCause>, u64, Option<f64>) {
    (
        t.outcome,
        t.abort_cause,
        t.data.as_ref().map_or(0, |d| d.bytes_to_client),
        t.teardown_to_reply_seconds,
    )
}

const EXPECTED: (Outcome, Option<AbortCause>, u64, Option<f64>) = (
    Outcome::Aborted,
    Some(AbortCause::ClientReset),
    65_000,
    Some(0.001),
);

#[test]
fn every_link_layer_and_both_ip_versions_give_the_same_abort() {
    for (client, server) in [
        ("10.0.0.2:40000", "10.0.0.1:21"),
        ("[2001:db8::2]:40000", "[2001:db8::1]:21"),
    ] {
        for link in [
            Link::Ethernet,
            Link::Vlan(42),
            Link::QinQ(100, 200),
            Link::LinuxSll,
            Link::LinuxSll2,
            Link::Null,
            Link::Loop,
            Link::Raw,
        ] {
            let s = reset_abort(FtpSim::new(
                link,
                client.parse().unwrap(),
                server.parse().unwrap(),
            ));
            let t = transfers(&analyse(&s.cap.to_pcap()));
            assert_eq!(t.len(), 1, "{link:?} {client}");
            assert_eq!(summary(&t[0]), EXPECTED, "{link:?} {client}");
        }
    }
}

#[test]
fn out_of_order_and_retransmitted_control_segments() {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("RETR f");
    // The 150 arrives in two segments, captured in the wrong order, then both again.
    let seq = s.ctrl.seq_b;
    let a = s.ctrl.frame_at(
        Link::Ethernet,
        Side::Responder,
        seq,
        PA,
        b"150 Opening BINARY mode ",
    );
    let tail: &[u8] = b"data connection for f (100 bytes).\r\n";
    let b = s
        .ctrl
        .frame_at(Link::Ethernet, Side::Responder, seq + 24, PA, tail);
    s.cap.push(b.clone());
    s.cap.push(a.clone());
    s.cap.push(a);
    s.cap.push(b);
    // A partial retransmission of the line's end.
    let c = s.ctrl.frame_at(
        Link::Ethernet,
        Side::Responder,
        seq + 24 + 20,
        PA,
        &tail[20..],
    );
    s.cap.push(c);
    s.ctrl.seq_b += 24 + tail.len() as u32;
    d.tcp.bulk(&mut s.cap, d.server_side(), 100, 1448, 20);
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("226 Transfer complete.");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(t.announced_size, Some(100));
    assert_eq!(
        t.replies.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [150, 226]
    );
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    assert_eq!(sessions(&events)[0].gap_bytes, 0);
}

#[test]
fn a_lost_command_segment_is_a_gap_and_later_lines_still_parse() {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    s.cmd("CWD a");
    s.reply("250 ok");
    let before = s.cap.len();
    s.cmd("CWD b"); // this segment will be missing from the capture
    s.reply("250 ok");
    s.cmd("CWD c");
    s.reply("250 ok");
    s.quit();
    s.cap.drop_frame(before);
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let sess = &sessions(&events)[0];
    assert_eq!(sess.gap_bytes, 7);
    assert_eq!(sess.end_reason.as_str(), "quit");
    let text = p.metrics().render();
    assert!(
        text.contains("ftp_commands_total{command=\"CWD\"} 2"),
        "{text}"
    );
    assert!(text.contains("ftpwatch_reassembly_gaps_total 1"), "{text}");
    assert!(
        text.contains("ftpwatch_reassembly_gap_bytes_total 7"),
        "{text}"
    );
    // The reply to the lost command has no command to go to.
    assert_eq!(anomalies(&events), ["reply_without_command"]);
}

#[test]
fn mid_stream_pickup_without_handshake_or_login() {
    let s = reset_abort(FtpSim::default_v4());
    let mut cap = s.cap;
    // Drop the handshake, greeting and login: 3 + 5 exchanges of data and ACK.
    for _ in 0..(3 + 2 * 7) {
        cap.drop_frame(0);
    }
    let events = analyse(&cap.to_pcap());
    let sess = &sessions(&events)[0];
    assert!(sess.midstream);
    assert_eq!(sess.user, None);
    let t = transfers(&events);
    assert_eq!(summary(&t[0]), EXPECTED);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn nat_pasv_announcing_a_private_address_is_matched_and_flagged() {
    let mut s = FtpSim::new(
        Link::Ethernet,
        "198.51.100.7:40000".parse().unwrap(),
        "203.0.113.5:21".parse().unwrap(),
    );
    s.connect();
    s.login("alice", "pw");
    let mut d = s.pasv_announcing(Some("192.168.1.10".parse().unwrap()));
    s.retr_ok(&mut d, "f", 3000);
    s.quit();
    let t = &transfers(&analyse(&s.cap.to_pcap()))[0];
    assert!(t.nat);
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 3000);
    assert_eq!(
        t.data.as_ref().unwrap().server,
        "203.0.113.5:50001".parse().unwrap()
    );
}

#[test]
fn a_connection_to_an_unannounced_port_is_not_taken_for_the_data_connection() {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    let _announced = s.pasv();
    let mut stray = ftpwatch::synth::Tcp::new(
        "10.0.0.2:41000".parse().unwrap(),
        "10.0.0.1:50999".parse().unwrap(),
        1,
        2,
    );
    stray.handshake(&mut s.cap);
    stray.bulk(&mut s.cap, Side::Responder, 5000, 1448, 20);
    s.cmd("RETR f");
    s.reply("425 Can't open data connection.");
    s.quit();
    let t = &transfers(&analyse(&s.cap.to_pcap()))[0];
    assert_eq!(t.outcome, Outcome::Failed);
    assert!(t.data.is_none());
}

#[test]
fn snaplen_cut_data_packets_still_count_their_bytes() {
    let mut s = reset_abort(FtpSim::default_v4());
    s.cap.snaplen = 128;
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(summary(&transfers(&events)[0]), EXPECTED);
    // 45 full data segments, each cut.
    assert!(p.metrics().truncated_total() >= 45);
}

#[test]
fn pcapng_with_control_and_data_on_different_interfaces_and_link_types() {
    let s = reset_abort(FtpSim::default_v4());
    // Re-encode: control packets (port 21) as Ethernet on interface 0, everything else
    // as Linux SLL2 (what `tcpdump -i any` writes) on interface 1, nanosecond stamps.
    let mut w = PcapNgWriter::new(Vec::new(), false).unwrap();
    w.interface(LinkType::ETHERNET, 65535, 6).unwrap();
    w.interface(LinkType::LINUX_SLL2, 65535, 9).unwrap();
    let pcap = s.cap.to_pcap();
    let mut src = FileSource::new(&pcap[..]).unwrap();
    while let Next::Frame(f) = src.next_frame().unwrap() {
        let ip = &f.data[14..];
        let sport = u16::from_be_bytes([ip[20], ip[21]]);
        let dport = u16::from_be_bytes([ip[22], ip[23]]);
        if sport == 21 || dport == 21 {
            w.enhanced(0, f.ts.as_nanos() / 1000, f.data, f.orig_len)
                .unwrap();
        } else {
            let sll2 = Link::LinuxSll2.wrap(ip, false);
            w.enhanced(1, f.ts.as_nanos(), &sll2, sll2.len() as u32)
                .unwrap();
        }
    }
    let t = transfers(&analyse(&w.into_inner()));
    assert_eq!(summary(&t[0]), EXPECTED);
}

#[test]
fn sequence_numbers_wrapping_inside_a_session() {
    let mut s = FtpSim::default_v4();
    s.ctrl.seq_a = u32::MAX - 30;
    s.ctrl.seq_b = u32::MAX - 5;
    let s = reset_abort(s);
    assert_eq!(summary(&transfers(&analyse(&s.cap.to_pcap()))[0]), EXPECTED);
}

#[test]
fn a_gateway_captured_on_both_interfaces_sees_every_segment_once() {
    // Every frame twice, the copy 40 µs later: a forwarded packet coming in and
    // going out (`tcpdump -i any` on a gateway).
    let mut s = reset_abort(FtpSim::default_v4());
    let frames = s.cap.take_frames();
    let mut w = PcapWriter::new(Vec::new(), Link::Ethernet.link_type(), 65535, true).unwrap();
    let mut once = PcapWriter::new(Vec::new(), Link::Ethernet.link_type(), 65535, true).unwrap();
    let mut both = Vec::new();
    for (ts, f) in &frames {
        once.packet(*ts, f, f.len() as u32).unwrap();
        both.push((*ts, f));
        both.push((Timestamp::from_nanos(ts.as_nanos() + 40_000), f));
    }
    // In the order a capture records them: by time.
    both.sort_by_key(|(ts, _)| *ts);
    for (ts, f) in both {
        w.packet(ts, f, f.len() as u32).unwrap();
    }
    let (events, p) = analyse_with(&w.into_inner(), Settings::default());
    let t = transfers(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(summary(&t[0]), EXPECTED);
    // To the microsecond what the capture without copies gives: a copy of the data
    // connection's last segment or of its RST would move its end and the lag.
    let single = analyse(&once.into_inner());
    assert_eq!(t[0].data, transfers(&single)[0].data);
    assert_eq!(anomalies(&events), Vec::<&str>::new());
    assert_eq!(sessions(&events)[0].commands, sessions(&single)[0].commands);
    assert_eq!(p.metrics().duplicates_total(), frames.len() as u64);
    assert_eq!(p.metrics().packets_total(), 2 * frames.len() as u64);
}
