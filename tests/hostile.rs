//! Malformed and hostile FTP traffic, each with the exact handling asserted: the
//! session goes on, the damage is counted, memory stays bounded.

mod common;

use common::{analyse_with, anomalies, sessions, transfers};
use ftpwatch::ftp::{Mode, Outcome, Side};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::synth::FtpSim;

fn metric(p: &Pipeline, series: &str) -> u64 {
    common::metric(&p.metrics().render(), series)
}

fn logged_in() -> FtpSim {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    s
}

#[test]
fn a_ten_megabyte_line_without_crlf_is_cut_counted_and_the_session_goes_on() {
    let mut s = logged_in();
    let chunk = [b'A'; 1448];
    for _ in 0..(10 << 20) / 1448 {
        s.ctrl.send(&mut s.cap, Side::Initiator, &chunk);
    }
    s.cmd("");
    s.cmd("NOOP");
    s.reply("500 Unknown command.");
    s.reply("200 NOOP ok.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(
        metric(&p, "ftpwatch_bounds_hit_total{bound=\"line_length\"}"),
        1
    );
    // The cut line is one command (of an unknown verb); NOOP and QUIT come through.
    assert_eq!(metric(&p, "ftp_commands_total{command=\"other\"}"), 1);
    assert_eq!(metric(&p, "ftp_commands_total{command=\"QUIT\"}"), 1);
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "quit");
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn a_multi_line_reply_of_100000_lines_is_one_reply() {
    let mut s = logged_in();
    s.cmd("STAT");
    let mut body = b"213-Status follows:\r\n".to_vec();
    for i in 0..100_000 {
        body.extend_from_slice(format!("-rw-r--r-- 1 ftp ftp {i} Jan 01 file{i}\r\n").as_bytes());
    }
    body.extend_from_slice(b"213 End of status\r\n");
    for chunk in body.chunks(1448) {
        s.ctrl.send(&mut s.cap, Side::Responder, chunk);
    }
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(
        metric(
            &p,
            "ftp_replies_total{class=\"2xx\",code=\"213\",origin=\"server\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &p,
            "ftp_replies_total{class=\"2xx\",code=\"221\",origin=\"server\"}"
        ),
        1
    );
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "quit");
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn ten_thousand_pipelined_commands_without_replies_are_bounded() {
    let mut s = logged_in();
    let mut burst = Vec::new();
    for _ in 0..10_000 {
        burst.extend_from_slice(b"NOOP\r\n");
    }
    for chunk in burst.chunks(1448) {
        s.ctrl.send(&mut s.cap, Side::Initiator, chunk);
    }
    s.ctrl.close(&mut s.cap, Side::Initiator);
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(metric(&p, "ftp_commands_total{command=\"NOOP\"}"), 10_000);
    // 64 wait for a reply; the other 9,936 are counted but not queued.
    assert_eq!(
        metric(&p, "ftpwatch_bounds_hit_total{bound=\"pending_commands\"}"),
        10_000 - 64
    );
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "fin");
}

#[test]
fn pasv_to_port_0_is_unusable_and_nothing_is_expected() {
    let mut s = logged_in();
    s.cmd("PASV");
    s.reply("227 Entering Passive Mode (10,0,0,1,0,0).");
    s.cmd("RETR f");
    s.reply("425 Can't open data connection.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(anomalies(&events), ["unusable_data_endpoint"]);
    let t = &transfers(&events)[0];
    assert_eq!((t.outcome, t.mode), (Outcome::Failed, None));
    assert_eq!(p.flows().expectations(), 0);
}

#[test]
fn pasv_to_the_broadcast_address_is_flagged_and_matched_by_the_control_addresses() {
    let mut s = logged_in();
    let mut d = s.pasv_announcing(Some("255.255.255.255".parse().unwrap()));
    s.retr_ok(&mut d, "f", 2000);
    s.quit();
    let (events, _) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(anomalies(&events), ["unusable_data_endpoint"]);
    let t = &transfers(&events)[0];
    assert_eq!(
        (t.outcome, t.mode, t.nat),
        (Outcome::Completed, Some(Mode::Pasv), true)
    );
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 2000);
}

#[test]
fn eprt_with_an_unknown_address_family_is_a_bad_endpoint() {
    let mut s = logged_in();
    s.cmd("EPRT |3|10.0.0.2|5000|");
    s.reply("522 Network protocol not supported, use (1,2)");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(anomalies(&events), ["bad_data_endpoint"]);
    assert_eq!(p.flows().expectations(), 0);
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "quit");
}

#[test]
fn invalid_utf8_and_nul_bytes_in_commands_are_kept_printable() {
    let mut s = logged_in();
    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd_bytes(b"RETR bad\xff\xfename\x00.txt");
    s.reply("550 No such file.");
    s.cmd_bytes(b"\x00\x01\x02 junk");
    s.reply("500 Unknown command.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!(
        t.argument.as_deref(),
        Some("bad\u{fffd}\u{fffd}name\u{0}.txt")
    );
    assert_eq!(t.outcome, Outcome::Failed);
    assert_eq!(metric(&p, "ftp_commands_total{command=\"other\"}"), 1);
    let line = ftpwatch::sink::eventlog::transfer_json(t).to_string();
    assert!(
        line.contains(r#""argument":"bad\ufffd\ufffdname\u0000.txt""#)
            || line.contains("bad��name\\u0000.txt"),
        "{line}"
    );
}

#[test]
fn reply_codes_000_and_999_are_malformed_not_replies() {
    let mut s = logged_in();
    s.cmd("NOOP");
    s.reply("000 zero");
    s.cmd("NOOP");
    s.reply("999 nine");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(anomalies(&events), ["malformed_reply", "malformed_reply"]);
    // Each answered its NOOP; QUIT still got its 221.
    assert_eq!(
        metric(
            &p,
            "ftp_replies_total{class=\"2xx\",code=\"221\",origin=\"server\"}"
        ),
        1
    );
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "quit");
}
