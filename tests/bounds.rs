//! Hostile traffic within bounds: SYN floods cost table entries, not sessions; a full
//! connection table gives up its oldest half-open flows before anything established.

mod common;

use std::net::SocketAddr;

use common::{analyse_with, metric, sessions, transfers};
use ftpwatch::decode::TcpFlags;
use ftpwatch::ftp::{Outcome, Side};
use ftpwatch::pipeline::Settings;
use ftpwatch::synth::frame::tcp_frame;
use ftpwatch::synth::{FtpSim, Link};

fn syn_from(i: u32) -> Vec<u8> {
    let src: SocketAddr = format!("172.16.{}.{}:{}", i / 250, i % 250 + 1, 20000 + i % 40000)
        .parse()
        .unwrap();
    tcp_frame(
        Link::Ethernet,
        src,
        "10.0.0.1:21".parse().unwrap(),
        i,
        0,
        TcpFlags::new(TcpFlags::SYN),
        &[],
    )
}

#[test]
fn unanswered_syns_cost_no_sessions() {
    let mut s = FtpSim::default_v4();
    for i in 0..1000 {
        s.cap.push(syn_from(i));
    }
    s.connect();
    s.login("alice", "pw");
    let mut d = s.pasv();
    s.retr_ok(&mut d, "f", 5000);
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(sessions(&events).len(), 1);
    assert_eq!(transfers(&events)[0].outcome, Outcome::Completed);
    let text = p.metrics().render();
    assert_eq!(metric(&text, "ftp_sessions_total{end_reason=\"quit\"}"), 1);
    // The half-open flows were still in the table at the end of the capture (they time
    // out after 30 s), and did not end as sessions.
    assert_eq!(
        metric(&text, "ftp_sessions_total{end_reason=\"capture_end\"}"),
        0
    );
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"idle_timeout\"}"
        ),
        0
    );
}

#[test]
fn a_full_table_evicts_the_oldest_half_open_flows_first() {
    let mut settings = Settings::default();
    settings.flow.max_flows = 10;
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    // The table fills with SYNs while the session is established...
    for i in 0..100 {
        s.cap.push(syn_from(i));
    }
    // ...and the session still gets its data connection and completes its transfer.
    let mut d = s.pasv();
    s.retr_ok(&mut d, "f", 5000);
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), settings);
    let t = transfers(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].outcome, Outcome::Completed);
    assert_eq!(t[0].data.as_ref().unwrap().bytes_to_client, 5000);
    let text = p.metrics().render();
    // 9 SYNs fit beside the session; each later SYN, and the data connection, evicted
    // the oldest half-open flow.
    assert_eq!(
        metric(&text, "ftpwatch_flows_evicted_total{reason=\"table_full\"}"),
        92
    );
    assert_eq!(
        metric(&text, "ftpwatch_bounds_hit_total{bound=\"flows\"}"),
        92
    );
}

#[test]
fn a_table_full_of_established_sessions_refuses_new_flows_and_counts_them() {
    let mut settings = Settings::default();
    settings.flow.max_flows = 2;
    let mut sims: Vec<FtpSim> = (0..3)
        .map(|i| {
            let mut s = FtpSim::new(
                Link::Ethernet,
                format!("10.0.0.{}:4000{i}", i + 2).parse().unwrap(),
                "10.0.0.1:21".parse().unwrap(),
            );
            s.connect();
            s.login("u", "p");
            s
        })
        .collect();
    // Interleave the three sessions in one capture: third one has no room.
    let mut all = Vec::new();
    for s in sims.iter_mut() {
        s.ctrl.send(&mut s.cap, Side::Initiator, b"NOOP\r\n");
        all.extend(s.cap.take_frames());
    }
    let mut cap = ftpwatch::synth::Capture::new(Link::Ethernet);
    for (_, f) in all {
        cap.push(f);
    }
    let (events, p) = analyse_with(&cap.to_pcap(), settings);
    assert_eq!(sessions(&events).len(), 2);
    let text = p.metrics().render();
    assert!(metric(&text, "ftpwatch_bounds_hit_total{bound=\"flows\"}") >= 1);
    assert_eq!(
        metric(&text, "ftpwatch_flows_evicted_total{reason=\"table_full\"}"),
        0
    );
}

#[test]
fn the_memory_budget_sets_every_cap() {
    let s = Settings::with_memory_budget(64 << 20);
    assert_eq!(s.flow.max_flows, 32 * 1024);
    assert_eq!(s.engine.max_sessions, 16 * 1024);
    assert_eq!(s.flow.max_buffered_total, 8 << 20);
    assert_eq!(s.engine.max_partial_total, 4 << 20);
    assert_eq!(Settings::default().flow.max_flows, 262_144);
}

/// A session whose server reply is held behind a hole: `held` bytes wait for it.
fn held_behind_a_hole(client_port: u16, held: usize) -> Vec<(ftpwatch::ftp::Timestamp, Vec<u8>)> {
    let mut s = FtpSim::new(
        Link::Ethernet,
        format!("10.0.0.2:{client_port}").parse().unwrap(),
        "10.0.0.1:21".parse().unwrap(),
    );
    s.connect();
    let seq = s.ctrl.seq_b;
    // 10 bytes never captured, then `held` bytes (no ACK from the client yet).
    let late = s.ctrl.frame_at(
        Link::Ethernet,
        Side::Responder,
        seq + 10,
        TcpFlags::ACK | TcpFlags::PSH,
        &vec![b'x'; held],
    );
    s.cap.push(late);
    s.cap.take_frames()
}

#[test]
fn out_of_order_bytes_share_one_budget() {
    let mut settings = Settings::default();
    settings.flow.max_buffered_total = 4000;
    let mut cap = ftpwatch::synth::Capture::new(Link::Ethernet);
    for port in [40001, 40002] {
        for (_, f) in held_behind_a_hole(port, 3000) {
            cap.push(f);
        }
    }
    let (_, p) = analyse_with(&cap.to_pcap(), settings);
    let text = p.metrics().render();
    // The first session's 3000 bytes fit; the second's do not: its hole is given up.
    assert_eq!(
        metric(
            &text,
            "ftpwatch_bounds_hit_total{bound=\"reassembly_buffer\"}"
        ),
        1
    );
    assert_eq!(
        metric(&text, "ftpwatch_reassembly_gap_bytes_total"),
        10 + 10
    );
}

/// Four sessions each send a 2000-byte command in two halves, interleaved, so that
/// all four hold half a line at once.
fn interleaved_long_commands() -> Vec<u8> {
    let mut sims: Vec<FtpSim> = (0..4u16)
        .map(|i| {
            let mut s = FtpSim::new(
                Link::Ethernet,
                format!("10.0.0.2:{}", 41000 + i).parse().unwrap(),
                "10.0.0.1:21".parse().unwrap(),
            );
            s.connect();
            s
        })
        .collect();
    let mut cap = ftpwatch::synth::Capture::new(Link::Ethernet);
    for half in [&[b'A'; 1000][..], &[b'B'; 1000][..]] {
        for s in sims.iter_mut() {
            s.ctrl.send(&mut s.cap, Side::Initiator, half);
            for (_, f) in s.cap.take_frames() {
                cap.push(f);
            }
        }
    }
    for s in sims.iter_mut() {
        s.ctrl.send(&mut s.cap, Side::Initiator, b"\r\n");
        for (_, f) in s.cap.take_frames() {
            cap.push(f);
        }
    }
    cap.to_pcap()
}

#[test]
fn unfinished_lines_share_one_budget() {
    let pcap = interleaved_long_commands();
    let cut = |budget: usize| {
        let mut settings = Settings::default();
        settings.engine.max_partial_total = budget;
        let (_, p) = analyse_with(&pcap, settings);
        metric(
            &p.metrics().render(),
            "ftpwatch_bounds_hit_total{bound=\"line_length\"}",
        )
    };
    // Within the default budget the 2000-byte lines are whole; over a 2000-byte shared
    // budget, lines are cut at 512 bytes and counted.
    assert_eq!(cut(Settings::default().engine.max_partial_total), 0);
    assert!(cut(2000) >= 1);
}
