//! FTPS on the control connection (RFC 4217): after `AUTH TLS` nothing is parsed while
//! the connection carries TLS records, and after `CCC` (§6) both sides close TLS and
//! the session is followed again in cleartext, without decrypting anything.

mod common;

use common::{analyse_with, anomalies, close_of, metric, sessions, transfers};
use ftpwatch::ftp::{AbortCause, CloseHow, Mode, Outcome, Role, Side, Verb};
use ftpwatch::pipeline::Settings;
use ftpwatch::synth::FtpSim;

/// A TLS record header (TLS 1.2 record version) and an opaque body of `len` bytes.
fn record(content_type: u8, len: usize) -> Vec<u8> {
    let mut r = vec![content_type, 3, 3, (len >> 8) as u8, len as u8];
    r.extend((0..len).map(|i| (i * 7 + 1) as u8));
    r
}

const HANDSHAKE: u8 = 22;
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;

/// AUTH TLS, 234, a TLS 1.2 handshake, the login, PBSZ, PROT and CCC inside TLS, and
/// the close_notify of each side. Returns the TLS bytes sent.
fn tls_then_ccc(s: &mut FtpSim) -> u64 {
    s.cmd("AUTH TLS");
    s.reply("234 AUTH TLS successful");
    let mut sent = 0u64;
    let mut send = |s: &mut FtpSim, from: Side, r: Vec<u8>| {
        sent += r.len() as u64;
        s.ctrl.send(&mut s.cap, from, &r);
    };
    send(s, Side::Initiator, record(HANDSHAKE, 517));
    // Server hello, certificate and the rest in one segment, split across records.
    let mut flight = record(HANDSHAKE, 93);
    flight.extend(record(HANDSHAKE, 1200));
    flight.extend(record(HANDSHAKE, 4));
    send(s, Side::Responder, flight);
    let mut fin = record(HANDSHAKE, 37);
    fin.extend(record(CHANGE_CIPHER_SPEC, 1));
    fin.extend(record(HANDSHAKE, 40));
    send(s, Side::Initiator, fin);
    let mut fin = record(CHANGE_CIPHER_SPEC, 1);
    fin.extend(record(HANDSHAKE, 40));
    send(s, Side::Responder, fin);
    // USER, PASS, PBSZ, PROT, CCC and their replies: opaque application data.
    for _ in 0..5 {
        send(s, Side::Initiator, record(APPLICATION_DATA, 40));
        send(s, Side::Responder, record(APPLICATION_DATA, 60));
    }
    send(s, Side::Initiator, record(ALERT, 26));
    send(s, Side::Responder, record(ALERT, 26));
    sent
}

#[test]
fn after_ccc_the_session_is_followed_in_cleartext() {
    let mut s = FtpSim::default_v4();
    s.connect();
    let tls_bytes = tls_then_ccc(&mut s);
    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("STOR secret-report.csv");
    s.reply("150 Ok to send data.");
    d.tcp.bulk(&mut s.cap, d.client_side, 30_000, 1448, 20);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("426 Failure reading network stream.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = transfers(&events);
    assert_eq!(t.len(), 1, "{t:#?}");
    let t = &t[0];
    assert_eq!(t.command, Some(Verb::STOR));
    assert_eq!(t.argument.as_deref(), Some("secret-report.csv"));
    assert_eq!(t.mode, Some(Mode::Pasv));
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::ClientReset));
    assert_eq!(close_of(t), Some((Role::Client, CloseHow::Rst)));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_server, 30_000);
    let sess = &sessions(&events)[0];
    assert!(sess.tls);
    assert!(sess.ccc);
    // AUTH, PASV, STOR, QUIT: what TLS carried is not counted.
    assert_eq!(sess.commands, 4);
    assert_eq!(sess.user, None);
    assert_eq!(sess.end_reason.as_str(), "quit");
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let text = p.metrics().render();
    assert_eq!(metric(&text, "ftp_tls_sessions_total"), 1);
    assert_eq!(metric(&text, "ftp_tls_ccc_sessions_total"), 1);
    assert_eq!(
        metric(&text, "ftp_encrypted_control_bytes_total"),
        tls_bytes
    );
    assert_eq!(
        metric(&text, "ftp_transfer_aborts_total{cause=\"client_reset\"}"),
        1
    );
}

#[test]
fn cleartext_that_starts_in_the_segment_with_the_close_notify() {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.cmd("AUTH TLS");
    s.reply("234 Proceed with negotiation.");
    s.ctrl
        .send(&mut s.cap, Side::Initiator, &record(HANDSHAKE, 300));
    s.ctrl
        .send(&mut s.cap, Side::Responder, &record(HANDSHAKE, 900));
    let mut c = record(APPLICATION_DATA, 30);
    c.extend(record(ALERT, 26));
    c.extend(b"EPSV\r\n");
    s.ctrl.send(&mut s.cap, Side::Initiator, &c);
    let mut r = record(APPLICATION_DATA, 50);
    r.extend(record(ALERT, 26));
    r.extend(b"229 Entering Extended Passive Mode (|||50001|)\r\n");
    s.ctrl.send(&mut s.cap, Side::Responder, &r);
    s.cmd("RETR a.bin");
    s.reply("550 No such file.");
    s.quit();
    let (events, _) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!((t.mode, t.outcome), (Some(Mode::Epsv), Outcome::Failed));
    assert_eq!(t.final_code.map(|c| c.get()), Some(550));
    let sess = &sessions(&events)[0];
    assert!(sess.tls && sess.ccc);
    assert_eq!(sess.commands, 4);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn without_ccc_nothing_after_auth_tls_is_parsed() {
    // Record bodies that happen to look like FTP lines are still records.
    let mut s = FtpSim::default_v4();
    s.connect();
    s.cmd("AUTH TLS");
    s.reply("234 Proceed with negotiation.");
    let mut c = vec![APPLICATION_DATA, 3, 3, 0, 14];
    c.extend(b"RETR x.bin\r\n\r\n");
    c.truncate(5 + 14);
    s.ctrl.send(&mut s.cap, Side::Initiator, &c);
    let mut r = vec![APPLICATION_DATA, 3, 3, 0, 9];
    r.extend(b"426 x\r\nab");
    s.ctrl.send(&mut s.cap, Side::Responder, &r);
    s.ctrl.close(&mut s.cap, Side::Initiator);
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert!(transfers(&events).is_empty());
    let sess = &sessions(&events)[0];
    assert!(sess.tls);
    assert!(!sess.ccc);
    assert_eq!(sess.commands, 1);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    assert_eq!(
        metric(&p.metrics().render(), "ftp_tls_ccc_sessions_total"),
        0
    );
}
