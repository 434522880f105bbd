//! Hostile traffic within bounds: SYN floods cost table entries, not sessions; a full
//! connection table gives up its oldest half-open flows before anything established.

mod common;

use std::net::SocketAddr;

use common::{analyse_with, sessions, transfers};
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

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series}"))
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
