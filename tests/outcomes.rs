//! Every outcome and every abort cause, over captures built with the project's own code
//! (etherparse's packet builder, `ftpwatch::synth`).

mod common;

use common::{analyse, anomalies, sessions, transfers};
use ftpwatch::ftp::{AbortCause, CloseHow, Mode, Outcome, Role, Side, Verb};
use ftpwatch::synth::FtpSim;
use ftpwatch::synth::ftp::DataSim;

fn logged_in() -> FtpSim {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "s3cret-pw");
    s
}

/// RETR over `d` that moves `bytes` and then stops (the caller ends it).
fn start_retr(s: &mut FtpSim, d: &mut DataSim, bytes: u64) {
    s.open(d);
    s.cmd("RETR big.bin");
    s.reply("150 Opening BINARY mode data connection for big.bin (1048576 bytes).");
    d.tcp.bulk(&mut s.cap, d.server_side(), bytes, 1448, 20);
}

fn only_transfer(s: &FtpSim) -> ftpwatch::ftp::TransferRecord {
    let t = transfers(&analyse(&s.cap.to_pcap()));
    assert_eq!(t.len(), 1, "{t:#?}");
    t.into_iter().next().unwrap()
}

#[test]
fn completed_download_over_pasv() {
    let mut s = logged_in();
    let mut d = s.pasv();
    s.retr_ok(&mut d, "report.csv", 50_000);
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(t.command, Some(Verb::RETR));
    assert_eq!(t.argument.as_deref(), Some("report.csv"));
    assert_eq!(t.mode, Some(Mode::Pasv));
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(t.abort_cause, None);
    assert_eq!(
        t.replies.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [150, 226]
    );
    assert_eq!(t.announced_size, Some(50_000));
    assert!(!t.nat);
    let data = t.data.as_ref().unwrap();
    assert_eq!(data.bytes_to_client, 50_000);
    assert_eq!(data.bytes_to_server, 0);
    assert_eq!(data.opened_by, Role::Client);
    assert_eq!(data.server.port(), 50_001);
    assert_eq!(
        data.first_close.map(|c| (c.by, c.how)),
        Some((Role::Server, CloseHow::Fin))
    );
    // Server FIN, client FIN, client ACK (1 ms each), then the 226 written 1 ms later.
    assert_eq!(t.teardown_to_reply_seconds, Some(0.002));
    let sess = &sessions(&events)[0];
    assert_eq!(sess.user.as_deref(), Some("alice"));
    assert_eq!(sess.end_reason.as_str(), "quit");
    assert_eq!(sess.transfers, 1);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn completed_upload_over_epsv() {
    let mut s = logged_in();
    let mut d = s.epsv();
    s.open(&mut d);
    s.cmd("STOR up.bin");
    s.reply("150 Ok to send data.");
    d.tcp.bulk(&mut s.cap, d.client_side, 20_000, 1448, 20);
    d.tcp.close(&mut s.cap, d.client_side);
    s.reply("226 Transfer complete.");
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(
        (t.command, t.mode, t.outcome),
        (Some(Verb::STOR), Some(Mode::Epsv), Outcome::Completed)
    );
    let data = t.data.unwrap();
    assert_eq!((data.bytes_to_client, data.bytes_to_server), (0, 20_000));
    assert_eq!(data.first_close.map(|c| c.by), Some(Role::Client));
}

#[test]
fn completed_listing_over_port_is_opened_by_the_server() {
    let mut s = logged_in();
    let mut d = s.active(false);
    s.cmd("LIST");
    s.open(&mut d);
    s.reply("150 Here comes the directory listing.");
    d.tcp.send(
        &mut s.cap,
        d.server_side(),
        b"-rw-r--r-- 1 ftp ftp 426 Jan 1 a.txt\r\n",
    );
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("226 Directory send OK.");
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(
        (t.command, t.mode, t.outcome),
        (Some(Verb::LIST), Some(Mode::Port), Outcome::Completed)
    );
    let data = t.data.unwrap();
    assert_eq!(data.opened_by, Role::Server);
    assert_eq!(data.server.port(), 20);
    assert_eq!(data.bytes_to_client, 38);
}

#[test]
fn completed_download_over_eprt_on_ipv6() {
    let mut s = FtpSim::new(
        ftpwatch::synth::Link::Ethernet,
        "[2001:db8::2]:40000".parse().unwrap(),
        "[2001:db8::1]:21".parse().unwrap(),
    );
    s.connect();
    s.login("bob", "pw");
    let mut d = s.active(true);
    s.retr_ok(&mut d, "v6.bin", 4096);
    s.quit();
    let t = only_transfer(&s);
    assert_eq!((t.mode, t.outcome), (Some(Mode::Eprt), Outcome::Completed));
    assert_eq!(t.data.unwrap().bytes_to_client, 4096);
}

#[test]
fn failed_with_550_and_no_data_connection() {
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR missing.txt");
    s.reply("550 Failed to open file.");
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(t.outcome, Outcome::Failed);
    assert_eq!(t.final_code.map(|c| c.get()), Some(550));
    assert_eq!(t.abort_cause, None);
    assert!(t.data.is_none());
}

#[test]
fn failed_with_425_and_451() {
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR a");
    s.reply("425 Failed to establish connection.");
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 10_000);
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("451 Local error in processing.");
    s.quit();
    let t = transfers(&analyse(&s.cap.to_pcap()));
    assert_eq!(
        t.iter()
            .map(|t| (t.outcome, t.final_code.unwrap().get()))
            .collect::<Vec<_>>(),
        [(Outcome::Failed, 425), (Outcome::Failed, 451)]
    );
}

#[test]
fn incomplete_when_the_capture_ends_before_a_final_reply() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 30_000);
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(t.outcome, Outcome::Incomplete);
    assert_eq!(t.final_code, None);
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 30_000);
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "capture_end");
}

/// The 426 cases: a reset or close from either side, then the 426 3 ms later.
fn abort_after_teardown(by: Side, how: CloseHow) -> ftpwatch::ftp::TransferRecord {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 100_000);
    let side = if by == Side::Initiator {
        d.client_side
    } else {
        d.server_side()
    };
    match how {
        CloseHow::Rst => d.tcp.rst(&mut s.cap, side),
        CloseHow::Fin => d.tcp.fin(&mut s.cap, side),
        CloseHow::FinWithoutCloseNotify => unreachable!("a capture cannot see TLS alerts"),
    }
    s.cap.advance_ms(2);
    s.reply("426 Failure writing network stream.");
    s.quit();
    only_transfer(&s)
}

#[test]
fn aborted_client_reset() {
    let t = abort_after_teardown(Side::Initiator, CloseHow::Rst);
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::ClientReset));
    assert_eq!(t.teardown_to_reply_seconds, Some(0.003));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 100_000);
    assert_eq!(t.announced_size, Some(1_048_576));
    assert_eq!(
        t.final_text.as_deref(),
        Some("Failure writing network stream.")
    );
}

#[test]
fn aborted_server_reset() {
    let t = abort_after_teardown(Side::Responder, CloseHow::Rst);
    assert_eq!(t.abort_cause, Some(AbortCause::ServerReset));
}

#[test]
fn aborted_client_closed() {
    let t = abort_after_teardown(Side::Initiator, CloseHow::Fin);
    assert_eq!(t.abort_cause, Some(AbortCause::ClientClosed));
}

#[test]
fn aborted_server_closed() {
    let t = abort_after_teardown(Side::Responder, CloseHow::Fin);
    assert_eq!(t.abort_cause, Some(AbortCause::ServerClosed));
}

#[test]
fn aborted_by_abor_then_226() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 50_000);
    s.cmd_bytes(b"\xff\xf4\xff\xf2ABOR"); // BSD style: Telnet IP and Synch first
    d.tcp.rst(&mut s.cap, d.server_side());
    s.reply("426 Transfer aborted. Data connection closed.");
    s.reply("226 Abort successful");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(t.abort_cause, Some(AbortCause::Abor));
    assert_eq!(
        t.replies.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [150, 426]
    );
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn aborted_with_stalled_data_connection() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 20_000);
    // The data connection stays open and moves nothing; the server gives up.
    s.cap.advance_ms(30_000);
    s.reply("426 Transfer aborted. Data connection closed");
    d.tcp.rst(&mut s.cap, d.server_side());
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(t.abort_cause, Some(AbortCause::Stalled));
    // The 426 waited for the teardown, which came 2 ms after it.
    assert_eq!(t.teardown_to_reply_seconds, Some(-0.002));
    assert_eq!(
        t.data.unwrap().first_close.map(|c| (c.by, c.how)),
        Some((Role::Server, CloseHow::Rst))
    );
}

#[test]
fn aborted_without_a_data_connection() {
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR big.bin");
    s.reply("150 Opening BINARY mode data connection.");
    s.cap.advance_ms(500);
    s.reply("426 Connection closed; transfer aborted.");
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(t.abort_cause, Some(AbortCause::NoDataConnection));
}

#[test]
fn aborted_with_teardown_just_after_the_reply() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 20_000);
    s.reply("426 Transfer aborted.");
    s.cap.advance_ms(300);
    d.tcp.rst(&mut s.cap, d.server_side());
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(t.abort_cause, Some(AbortCause::ServerReset));
    let lag = t.teardown_to_reply_seconds.unwrap();
    assert!((-0.305..=-0.3).contains(&lag), "{lag}");
}

#[test]
fn aborted_unknown_when_the_moving_connection_never_tears_down() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 20_000);
    s.reply("426 Transfer aborted.");
    // Data keeps flowing past the settle window and the capture ends.
    s.cap.advance_ms(100);
    d.tcp
        .bulk(&mut s.cap, d.server_side(), 200_000, 1448, 20_000);
    let t = only_transfer(&s);
    assert_eq!(t.abort_cause, Some(AbortCause::Unknown));
}

#[test]
fn anomalies_125_without_data_and_replies_without_commands() {
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR x");
    s.reply("125 Data connection already open; transfer starting.");
    s.reply("226 Transfer complete.");
    s.reply("426 Connection closed; transfer aborted.");
    s.reply("250 Requested file action okay.");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    assert_eq!(
        anomalies(&events),
        [
            "125_without_data_connection",
            "reply_without_command",
            "426_without_transfer",
            "reply_without_command"
        ]
    );
    assert_eq!(transfers(&events)[0].outcome, Outcome::Completed);
}

#[test]
fn pure_ftpd_style_second_150_without_final_reply() {
    // pure-ftpd answers a reset download with a second 150 and no final reply; the
    // client then quits. RETR must end incomplete and QUIT must still get its 221.
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 40_000);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("150 40.0 kbytes to download");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(t.outcome, Outcome::Incomplete);
    assert_eq!(
        t.replies.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [150, 150]
    );
    assert_eq!(sessions(&events)[0].end_reason.as_str(), "quit");
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn status_answered_during_a_transfer_does_not_end_it() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 10_000);
    s.cmd("STAT");
    s.reply("213 Status: 10000 bytes transferred");
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("226 Transfer complete.");
    s.quit();
    let t = only_transfer(&s);
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(
        t.replies.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [150, 226]
    );
}

#[test]
fn pipelined_commands_and_a_late_greeting() {
    let mut s = FtpSim::default_v4();
    s.ctrl.handshake(&mut s.cap);
    for c in ["USER a", "PASS b", "PASV", "RETR f", "QUIT"] {
        s.cmd(c);
    }
    for r in [
        "220 ready",
        "331 pw",
        "230 ok",
        "227 Entering Passive Mode (10,0,0,1,195,81).",
        "550 no such file",
        "221 bye",
    ] {
        s.reply(r);
    }
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(
        (t.outcome, t.final_code.unwrap().get()),
        (Outcome::Failed, 550)
    );
    assert_eq!(t.mode, Some(Mode::Pasv));
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn auth_tls_stops_parsing() {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.cmd("AUTH TLS");
    s.reply("234 Proceed with negotiation.");
    s.ctrl.send(
        &mut s.cap,
        Side::Initiator,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03RETR x\r\n",
    );
    s.ctrl.send(
        &mut s.cap,
        Side::Responder,
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76426 x\r\n",
    );
    let events = analyse(&s.cap.to_pcap());
    let sess = &sessions(&events)[0];
    assert!(sess.tls);
    assert_eq!(sess.commands, 1);
    assert!(transfers(&events).is_empty());
    assert!(anomalies(&events).is_empty());
}
