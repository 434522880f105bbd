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

/// A TCP connection between two ends of the capture, opened with a handshake.
fn connection(s: &mut FtpSim, from: &str, to: &str) -> ftpwatch::synth::tcp::Tcp {
    let mut t =
        ftpwatch::synth::tcp::Tcp::new(from.parse().unwrap(), to.parse().unwrap(), 7_000, 9_000);
    t.handshake(&mut s.cap);
    t
}

fn encrypted_data(events: &[ftpwatch::ftp::Event]) -> Vec<ftpwatch::ftp::EncryptedDataRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            ftpwatch::ftp::Event::EncryptedData(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_encrypted_sessions_data_connections_are_inferred_with_their_teardowns() {
    let mut s = FtpSim::default_v4();
    s.connect();
    // Before AUTH TLS: a connection between the hosts is nobody's data connection.
    let mut early = connection(&mut s, "10.0.0.2:40050", "10.0.0.1:50000");
    early.bulk(&mut s.cap, Side::Responder, 5_000, 1448, 20);
    early.close(&mut s.cap, Side::Responder);
    s.cmd("AUTH TLS");
    s.reply("234 Proceed with negotiation.");
    s.ctrl
        .send(&mut s.cap, Side::Initiator, &record(HANDSHAKE, 300));
    s.ctrl
        .send(&mut s.cap, Side::Responder, &record(HANDSHAKE, 900));
    s.ctrl
        .send(&mut s.cap, Side::Responder, &record(APPLICATION_DATA, 60));
    // A download (the client connects to a passive port), reset by the client midway.
    let mut down = connection(&mut s, "10.0.0.2:40100", "10.0.0.1:50001");
    down.bulk(&mut s.cap, Side::Responder, 100_000, 1448, 20);
    down.rst(&mut s.cap, Side::Initiator);
    // An upload in active mode (the server connects), closed by the client.
    let mut up = connection(&mut s, "10.0.0.1:20", "10.0.0.2:40200");
    up.bulk(&mut s.cap, Side::Responder, 30_000, 1448, 20);
    up.close(&mut s.cap, Side::Responder);
    // Not between the session's hosts, or to the control port: not its data.
    let mut other = connection(&mut s, "10.0.0.2:40300", "10.0.0.9:50002");
    other.close(&mut s.cap, Side::Initiator);
    let mut second = connection(&mut s, "10.0.0.2:40400", "10.0.0.1:21");
    second.close(&mut s.cap, Side::Initiator);
    s.ctrl.send(&mut s.cap, Side::Initiator, &record(ALERT, 26));
    s.ctrl.close(&mut s.cap, Side::Initiator);
    // After the session: not its data either.
    let mut late = connection(&mut s, "10.0.0.2:40500", "10.0.0.1:50003");
    late.close(&mut s.cap, Side::Initiator);

    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let d = encrypted_data(&events);
    assert_eq!(d.len(), 2, "{d:#?}");
    let (down, up) = (&d[0].data, &d[1].data);
    assert_eq!(d[0].server.port(), 21, "named by the control connection");
    assert_eq!(
        (down.opened_by, down.bytes_to_client),
        (Role::Client, 100_000)
    );
    assert_eq!(
        down.first_close.map(|c| (c.by, c.how)),
        Some((Role::Client, CloseHow::Rst))
    );
    assert_eq!((up.opened_by, up.bytes_to_server), (Role::Server, 30_000));
    assert_eq!(
        up.first_close.map(|c| (c.by, c.how)),
        Some((Role::Client, CloseHow::Fin))
    );
    assert!(transfers(&events).is_empty(), "no transfer is made up");
    let text = p.metrics().render();
    for (close, n) in [
        ("client_rst", 1),
        ("client_fin", 1),
        ("server_rst", 0),
        ("none", 0),
    ] {
        let series = format!("ftp_tls_data_connections_total{{first_close=\"{close}\"}}");
        assert_eq!(metric(&text, &series), n, "{series}");
    }
}

#[test]
fn after_ccc_data_connections_are_read_from_their_announcements_again() {
    let mut s = FtpSim::default_v4();
    s.connect();
    tls_then_ccc(&mut s);
    let mut d = s.epsv();
    s.retr_ok(&mut d, "a.bin", 10_000);
    // In clear again: a connection nobody announced is nobody's.
    let mut stray = connection(&mut s, "10.0.0.2:40600", "10.0.0.1:50009");
    stray.close(&mut s.cap, Side::Initiator);
    s.quit();
    let (events, _) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert!(encrypted_data(&events).is_empty(), "{events:#?}");
    assert_eq!(transfers(&events)[0].outcome, Outcome::Completed);
}
