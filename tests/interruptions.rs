//! Transfers broken without a 426, and long silences on data connections: a data
//! connection a transfer still waits on is kept however long it is silent, every final
//! reply waits for its data connection's teardown, and a failed or incomplete transfer
//! gets the cause that broke it (`interruption_cause`).

mod common;

use std::time::Duration;

use common::{analyse, analyse_with, anomalies, close_of, codes, logged_in, metric, transfers};
use ftpwatch::ftp::{AbortCause, CloseHow, Outcome, Role};
use ftpwatch::pipeline::Settings;
use ftpwatch::synth::ftp::DataSim;
use ftpwatch::synth::{FtpSim, Tcp};

/// STOR over EPSV with `bytes` uploaded, the data connection left open.
fn start_stor(s: &mut FtpSim, bytes: u64) -> DataSim {
    let mut d = s.epsv();
    s.open(&mut d);
    s.cmd("STOR frozen.bin");
    s.reply("150 Ok to send data.");
    d.tcp.bulk(&mut s.cap, d.client_side, bytes, 1448, 20);
    d
}

#[test]
fn an_upload_frozen_for_an_hour_then_426_and_reset_is_stalled() {
    let mut s = logged_in();
    let mut d = start_stor(&mut s, 20_000);
    // An hour without a packet on either connection (servers wait up to 3600 s).
    s.cap.advance(Duration::from_secs(3600));
    // The 426, and the server's RST 0.4 ms after it.
    s.reply_now("426 Failure reading network stream.");
    s.cap.advance(Duration::from_micros(400));
    d.tcp.rst(&mut s.cap, d.server_side());
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 426]);
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::Stalled));
    assert_eq!(close_of(t), Some((Role::Server, CloseHow::Rst)));
    assert_eq!(t.teardown_to_reply_seconds, Some(-0.0004));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_server, 20_000);
    let text = p.metrics().render();
    for reason in ["idle_timeout", "table_full", "pending_transfer"] {
        let series = format!("ftpwatch_flows_evicted_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), 0, "{reason}");
    }
}

#[test]
fn a_download_silent_for_seven_minutes_then_sent_whole() {
    // A tape recall: the data connection opens, nothing for 7 minutes, then the file.
    let mut s = logged_in();
    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("RETR archive/tape.bin");
    s.reply("150 Opening BINARY mode data connection for archive/tape.bin (500000 bytes).");
    s.cap.advance(Duration::from_secs(420));
    d.tcp.bulk(&mut s.cap, d.server_side(), 500_000, 1448, 20);
    d.tcp.close(&mut s.cap, d.server_side());
    s.reply("226 Transfer complete.");
    s.quit();
    let events = analyse(&s.cap.to_pcap());
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 226]);
    assert_eq!(t.outcome, Outcome::Completed);
    assert_eq!(t.interruption_cause, None);
    let data = t.data.as_ref().unwrap();
    assert_eq!(data.bytes_to_client, 500_000);
    assert_eq!(close_of(t), Some((Role::Server, CloseHow::Fin)));
    assert!(data.last_packet.seconds_after(data.first_packet) > 420.0);
    assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
}

/// A connection to the control port from `10.9.0.i`, handshake complete.
fn established(s: &mut FtpSim, i: u8) {
    let mut c = Tcp::new(
        format!("10.9.0.{i}:30000").parse().unwrap(),
        "10.0.0.1:21".parse().unwrap(),
        100,
        200,
    );
    c.handshake(&mut s.cap);
}

#[test]
fn a_full_table_evicts_an_idle_held_data_connection_and_counts_it() {
    let mut settings = Settings::default();
    settings.flow.max_flows = 4;
    let mut s = logged_in();
    let _d = start_stor(&mut s, 10_000);
    // Control and data connection: 2 flows. Idle past the data timeout...
    s.cap.advance(Duration::from_secs(400));
    // ...then two connections fill the table, and a third needs the room.
    for i in 1..=3 {
        established(&mut s, i);
    }
    s.reply("426 Failure reading network stream.");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), settings);
    let text = p.metrics().render();
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"pending_transfer\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"idle_timeout\"}"
        ),
        0
    );
    assert_eq!(
        metric(&text, "ftpwatch_bounds_hit_total{bound=\"flows\"}"),
        1
    );
    // The transfer lost its data connection's end: its 426 cannot be explained.
    let t = &transfers(&events)[0];
    assert_eq!(t.outcome, Outcome::Aborted);
    assert_eq!(t.abort_cause, Some(AbortCause::Unknown));
    assert_eq!(t.data.as_ref().unwrap().bytes_to_server, 10_000);
}

#[test]
fn a_transfer_silent_past_any_server_timeout_ends_with_its_session() {
    // Client and server vanish mid-upload (a crash, an outage beyond the capture
    // point): after two hours of silence the data connection is let go, and with it
    // the control connection and the session.
    let mut s = logged_in();
    let _d = start_stor(&mut s, 10_000);
    s.cap.advance(Duration::from_secs(7300));
    established(&mut s, 1);
    s.cap.advance(Duration::from_secs(2));
    established(&mut s, 2);
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!(t.outcome, Outcome::Incomplete);
    assert_eq!(t.data.as_ref().unwrap().bytes_to_server, 10_000);
    let sessions = common::sessions(&events);
    assert_eq!(sessions[0].end_reason.as_str(), "timeout");
    let text = p.metrics().render();
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"idle_timeout\"}"
        ),
        2,
        "the data connection, then the control connection"
    );
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"pending_transfer\"}"
        ),
        0
    );
}

#[test]
fn a_released_data_connection_times_out_as_before() {
    // After its 226 nothing waits on a data connection left open: it times out.
    let mut s = logged_in();
    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("RETR a.bin");
    s.reply("150 Opening BINARY mode data connection for a.bin (1000 bytes).");
    d.tcp.bulk(&mut s.cap, d.server_side(), 1000, 1448, 20);
    s.reply("226 Transfer complete.");
    // The record waits up to 2 s for the teardown; the next packets settle it.
    s.cap.advance(Duration::from_secs(3));
    s.cmd("NOOP");
    s.reply("200 ok");
    s.cap.advance(Duration::from_secs(400));
    s.cmd("NOOP");
    s.reply("200 ok");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    assert_eq!(transfers(&events)[0].outcome, Outcome::Completed);
    let text = p.metrics().render();
    assert_eq!(
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"idle_timeout\"}"
        ),
        1
    );
}

#[test]
fn incomplete_transfers_are_interrupted_only_when_something_broke_them() {
    struct Case {
        name: &'static str,
        /// Ends the download that moved 3000 of 5000 announced bytes.
        end: fn(&mut FtpSim, &mut DataSim),
        cause: Option<AbortCause>,
    }
    let cases = [
        Case {
            name: "sender finished, the capture ended before the 226",
            end: |s, d| {
                d.tcp.bulk(&mut s.cap, d.server_side(), 2000, 1448, 20);
                d.tcp.close(&mut s.cap, d.server_side());
            },
            cause: None,
        },
        Case {
            name: "server closed before the announced size",
            end: |s, d| d.tcp.close(&mut s.cap, d.server_side()),
            cause: Some(AbortCause::ServerClosed),
        },
        Case {
            name: "client closed a download",
            end: |s, d| d.tcp.close(&mut s.cap, d.client_side),
            cause: Some(AbortCause::ClientClosed),
        },
        Case {
            name: "server reset",
            end: |s, d| d.tcp.rst(&mut s.cap, d.server_side()),
            cause: Some(AbortCause::ServerReset),
        },
        Case {
            name: "left idle while the session went on",
            end: |s, _| {
                s.cap.advance(Duration::from_secs(30));
                s.cmd("NOOP");
                s.reply("200 ok");
            },
            cause: Some(AbortCause::Stalled),
        },
        Case {
            name: "still moving when the capture ended",
            end: |_, _| {},
            cause: None,
        },
    ];
    for c in cases {
        let mut s = logged_in();
        let mut d = s.pasv();
        s.open(&mut d);
        s.cmd("RETR part.bin");
        s.reply("150 Opening BINARY mode data connection for part.bin (5000 bytes).");
        d.tcp.bulk(&mut s.cap, d.server_side(), 3000, 1448, 20);
        (c.end)(&mut s, &mut d);
        let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
        let t = &transfers(&events)[0];
        assert_eq!(t.outcome, Outcome::Incomplete, "{}", c.name);
        assert_eq!(t.final_code, None, "{}", c.name);
        assert_eq!(t.interruption_cause, c.cause, "{}", c.name);
        let text = p.metrics().render();
        if let Some(cause) = c.cause {
            let series = format!(
                "ftp_transfer_interruptions_total{{cause=\"{}\",outcome=\"incomplete\"}}",
                cause.as_str()
            );
            assert_eq!(metric(&text, &series), 1, "{}", c.name);
        }
    }
}

#[test]
fn failed_transfers_are_interrupted_only_once_started() {
    // Refused before any 1yz: not an interruption.
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR missing.bin");
    s.reply("550 No such file.");
    s.quit();
    let t = &transfers(&analyse(&s.cap.to_pcap()))[0];
    assert_eq!((t.outcome, t.interruption_cause), (Outcome::Failed, None));

    // 150, then no data connection, then 425.
    let mut s = logged_in();
    let _d = s.pasv();
    s.cmd("RETR a.bin");
    s.reply("150 Opening data connection.");
    s.cap.advance_ms(500);
    s.reply("425 Can't open data connection.");
    s.quit();
    let t = &transfers(&analyse(&s.cap.to_pcap()))[0];
    assert_eq!(t.outcome, Outcome::Failed);
    assert_eq!(t.abort_cause, None);
    assert_eq!(t.interruption_cause, Some(AbortCause::NoDataConnection));

    // An upload reset by the client, answered 451 (pure-ftpd).
    let mut s = logged_in();
    let mut d = start_stor(&mut s, 30_000);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.reply("451 Error during read from data connection");
    s.quit();
    let (events, p) = analyse_with(&s.cap.to_pcap(), Settings::default());
    let t = &transfers(&events)[0];
    assert_eq!(codes(t), [150, 451]);
    assert_eq!(t.outcome, Outcome::Failed);
    assert_eq!(t.interruption_cause, Some(AbortCause::ClientReset));
    let text = p.metrics().render();
    assert_eq!(
        metric(
            &text,
            "ftp_transfer_interruptions_total{cause=\"client_reset\",outcome=\"failed\"}"
        ),
        1
    );
    assert_eq!(
        metric(&text, "ftp_transfer_aborts_total{cause=\"client_reset\"}"),
        0
    );
}
