//! Replies matched to commands by RFC 959 §5.4's command-reply sequences, as real
//! servers send them: a reply that cannot end a transfer never becomes its final reply,
//! and every 426 on the wire shows in the abort accounting.

mod common;

use common::{
    analyse, analyse_with, anomalies, close_of, codes, logged_in, metric, sessions, transfers,
};
use ftpwatch::ftp::{AbortCause, CloseHow, Outcome, Role, Verb};
use ftpwatch::pipeline::Settings;
use ftpwatch::sink::eventlog::transfer_json;
use ftpwatch::synth::FtpSim;
use ftpwatch::synth::ftp::DataSim;

/// RETR over `d`, 150 with the size, and `bytes` of the download.
fn start_retr(s: &mut FtpSim, d: &mut DataSim, bytes: u64) {
    s.open(d);
    s.cmd("RETR big.bin");
    s.reply("150 Opening BINARY mode data connection for big.bin (1048576 bytes).");
    d.tcp.bulk(&mut s.cap, d.server_side(), bytes, 1448, 20);
}

#[test]
fn pure_ftpd_reset_download_then_noop_stays_incomplete() {
    // pure-ftpd sends no final reply after the client resets the download; the NOOP's
    // 200 is the NOOP's, not the RETR's.
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 40_000);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.cap.advance_ms(3000);
    s.cmd("NOOP");
    s.reply("200 Zzz...");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events);
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!(t.command, Some(Verb::RETR));
    assert_eq!(codes(t), [150]);
    assert_eq!(t.final_code, None);
    assert_eq!(t.outcome, Outcome::Incomplete);
    assert_eq!(t.abort_cause, None);
    assert_eq!(t.interruption_cause, Some(AbortCause::ClientReset));
    assert_eq!(close_of(t), Some((Role::Client, CloseHow::Rst)));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 40_000);
    assert_eq!(t.announced_size, Some(1_048_576));
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let text = p.metrics().render();
    assert_eq!(
        metric(
            &text,
            "ftp_transfers_total{command=\"RETR\",outcome=\"completed\"}"
        ),
        0
    );
    assert_eq!(
        metric(
            &text,
            "ftp_transfer_interruptions_total{cause=\"client_reset\",outcome=\"incomplete\"}"
        ),
        1
    );
}

/// A download during which the client sends NOOP: the server answers it (after
/// `before_reply`, if any), then the client resets the data connection and the server
/// aborts the download.
fn noop_during_download(before_reply: Option<&str>) -> Vec<ftpwatch::ftp::Event> {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 20_000);
    s.cmd("NOOP");
    if let Some(line) = before_reply {
        s.reply(line);
    }
    s.reply("200 NOOP command successful.");
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("426 Connection closed; transfer aborted.");
    s.quit();
    analyse(&s.cap.to_pcap())
}

#[test]
fn a_noop_answered_during_a_download_leaves_its_426_to_the_download() {
    // IIS-style: the server answers NOOP during the transfer, then aborts it.
    let events = noop_during_download(None);
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 426]);
    assert_eq!(t.final_code.map(|c| c.get()), Some(426));
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::ClientReset));
    assert_eq!(t.interruption_cause, None);
    assert_eq!(close_of(t), Some((Role::Client, CloseHow::Rst)));
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn a_mangled_abor_answered_500_then_the_real_426() {
    // Python ftplib's urgent ABOR reaches vsftpd mangled: `500 Unknown command.` is the
    // ABOR's; the 426 that follows is the RETR's.
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 30_000);
    s.cmd("ABOR");
    s.reply("500 Unknown command.");
    d.tcp.bulk(&mut s.cap, d.server_side(), 10_000, 1448, 20);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("426 Failure writing network stream.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 426]);
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::Abor));
    assert_eq!(
        t.final_text.as_deref(),
        Some("Failure writing network stream.")
    );
    assert_eq!(close_of(t), Some((Role::Client, CloseHow::Rst)));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_client, 40_000);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let text = p.metrics().render();
    assert_eq!(
        metric(&text, "ftp_transfer_aborts_total{cause=\"abor\"}"),
        1
    );
    assert_eq!(
        metric(&text, "ftp_transfer_failures_total{code=\"426\"}"),
        1
    );
    // The 500 failed no transfer (a series that is not pre-registered stays absent).
    assert_eq!(
        ftpwatch::sink::metrics::sample(&text, "ftp_transfer_failures_total{code=\"500\"}"),
        None
    );
}

#[test]
fn the_next_transfers_150_ends_a_reset_download_that_got_no_reply() {
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 40_000);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("150 40.0 kbytes to download");
    let mut d2 = s.pasv();
    s.retr_ok(&mut d2, "next.bin", 5000);
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = transfers(&events);
    assert_eq!(t.len(), 2);
    assert_eq!(codes(&t[0]), [150, 150]);
    assert_eq!(t[0].outcome, Outcome::Incomplete);
    assert_eq!(t[0].interruption_cause, Some(AbortCause::ClientReset));
    assert_eq!(t[1].argument.as_deref(), Some("next.bin"));
    assert_eq!(codes(&t[1]), [150, 226]);
    assert_eq!(t[1].outcome, Outcome::Completed);
    assert_eq!(t[1].data.as_ref().unwrap().bytes_to_client, 5000);
    assert_eq!(anomalies(&events), ["missing_reply"]);
}

#[test]
fn a_reply_outside_the_completion_set_never_ends_a_started_transfer() {
    // A 550 after the 150 fits no command waiting: it is reported and kept in the
    // record, and the transfer still ends with its own 226.
    let mut s = logged_in();
    let mut d = s.pasv();
    start_retr(&mut s, &mut d, 5000);
    s.reply("550 Something odd.");
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("226 Transfer complete.");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 550, 226]);
    assert_eq!(t.final_code.map(|c| c.get()), Some(226));
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(anomalies(&events), ["reply_out_of_sequence"]);
}

#[test]
fn a_426_in_a_session_picked_up_after_its_command_is_an_aborted_transfer() {
    let mut s = FtpSim::default_v4();
    // No handshake: the capture starts during a transfer.
    s.reply_now("426 Connection closed; transfer aborted.");
    s.cap.advance_ms(5);
    s.cmd("QUIT");
    s.reply("221 Goodbye.");
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = transfers(&events);
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!(t.command, None);
    assert_eq!(codes(t), [426]);
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::Unknown));
    assert_eq!(t.data, None);
    let json = transfer_json(t);
    assert_eq!(json["command"], serde_json::Value::Null);
    assert_eq!(json["abort_cause"], "unknown");
    assert!(sessions(&events)[0].midstream);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    let text = p.metrics().render();
    assert_eq!(
        metric(&text, "ftp_transfer_aborts_total{cause=\"unknown\"}"),
        1
    );
    assert_eq!(
        metric(
            &text,
            "ftp_replies_total{class=\"4xx\",code=\"426\",origin=\"server\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "ftp_transfers_total{command=\"unknown\",outcome=\"aborted\"}"
        ),
        1
    );
}

#[test]
fn a_426_with_no_transfer_in_a_session_seen_whole_is_an_anomaly() {
    let mut s = logged_in();
    s.cmd("NOOP");
    s.reply("426 Connection closed; transfer aborted.");
    s.reply("200 NOOP ok");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert!(transfers(&events).is_empty());
    assert_eq!(
        anomalies(&events),
        ["reply_out_of_sequence", "426_without_transfer"]
    );
    let text = p.metrics().render();
    assert_eq!(
        metric(&text, "ftp_anomalies_total{kind=\"426_without_transfer\"}"),
        1
    );
}

#[test]
fn a_426_after_an_abor_in_a_session_picked_up_mid_transfer_is_an_abort_by_abor() {
    let mut s = FtpSim::default_v4();
    s.reply_now("150 Opening BINARY mode data connection.");
    s.cap.advance_ms(5);
    s.cmd("ABOR");
    s.reply("426 Transfer aborted.");
    s.reply("226 Abort successful.");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = transfers(&events);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].command, t[0].outcome, t[0].abort_cause),
        (None, Outcome::Aborted, Some(AbortCause::Abor))
    );
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

#[test]
fn a_line_without_a_code_during_a_transfer_does_not_end_it() {
    let events = noop_during_download(Some("Keeping the connection alive"));
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 426]);
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::ClientReset));
    assert_eq!(anomalies(&events), ["malformed_reply"]);
}
