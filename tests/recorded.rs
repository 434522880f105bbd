//! Captures recorded from real servers (vsftpd 3.0.3, ProFTPD 1.3.8, pure-ftpd 1.0.50,
//! all from Debian 12) and real clients (curl, lftp, Python ftplib, and
//! tests/lab/clients.py, which resets, aborts and black-holes data connections), by
//! tests/lab/record.sh in network namespaces it creates. Each capture has a .log beside
//! it with what the client saw; the expectations below agree with those logs.
//!
//! What the servers do, as recorded:
//! - a client reset mid-RETR: vsftpd `426 Failure writing network stream.`, ProFTPD
//!   `426 Transfer aborted. Data connection closed`, pure-ftpd no final reply at all
//!   (its RETR stays `incomplete`, interrupted by `client_reset`), not even when the
//!   client sends NOOP next (whose `200` is the NOOP's);
//! - a client reset mid-STOR: vsftpd and ProFTPD 426, pure-ftpd 451 (`failed`,
//!   `client_reset`);
//! - ABOR: 426 then 226 (ProFTPD, pure-ftpd) or 225 (vsftpd); pure-ftpd answers
//!   ftplib's abort() after a reset with a single 226 that belongs to the ABOR;
//! - a black-holed data path: vsftpd `421 Data timeout` (`failed`, `stalled`); ProFTPD
//!   a 426 once the client resets the stalled connection (`stalled`);
//! - pure-ftpd sends 226 before its last data segment is on the wire: the record waits
//!   for the teardown, so byte counts are whole.

mod common;

use std::path::Path;

use ftpwatch::ftp::Event;

const EXPECTED: &[(&str, &[&str])] = &[
    (
        "proftpd-abor",
        &[
            "RETR big.bin PASV [150,426] aborted/abor down=309872 up=0 close=client/rst",
            "session quit transfers=1",
            "RETR big.bin PASV [150,426] aborted/abor down=101360 up=0 close=client/fin",
            "session quit transfers=1",
        ],
    ),
    (
        // curl --ftp-ssl-ccc: AUTH SSL, login inside TLS, CCC, then cleartext again
        // (TLS 1.2 and close_notify from both sides; TLS 1.3 with PROT P and one).
        "proftpd-ccc",
        &[
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "LIST - EPSV [150,226] completed down=193 up=0 close=server/fin",
            "session quit transfers=2",
            "STOR ccc.bin PASV [150,226] completed down=1630 up=49839 close=client/fin",
            "session quit transfers=1",
        ],
    ),
    (
        "proftpd-curl",
        &[
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin EPRT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "STOR curl.bin EPSV [150,226] completed down=0 up=49152 close=client/fin",
            "session quit transfers=1",
            "session quit transfers=0",
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "session fin transfers=0",
        ],
    ),
    (
        "proftpd-ftplib",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "NLST - PASV [150,226] completed down=28 up=0 close=server/fin",
            "STOR upload/ftplib.bin PASV [150,226] completed down=0 up=40000 close=client/fin",
            "MLSD - PASV [150,226] completed down=830 up=0 close=server/fin",
            "RETR big.bin PASV [150,426] aborted/abor down=59008 up=0 close=client/rst",
            "session quit transfers=5",
        ],
    ),
    (
        "proftpd-lftp",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "MLSD - PASV [150,226] completed down=520 up=0 close=server/fin",
            "STOR upload/lftp.bin PASV [150,226] completed down=0 up=49152 close=client/fin",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=4",
        ],
    ),
    (
        "proftpd-reset",
        &[
            "RETR big.bin PASV [150,426] aborted/client_reset down=55024 up=0 close=client/rst",
            "session quit transfers=1",
            "STOR upload/reset.bin PASV [150,426] aborted/client_reset down=0 up=65536 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "proftpd-stall",
        &[
            "RETR big.bin PASV [150,426] aborted/stalled down=55024 up=0 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "pure-ftpd-abor",
        &[
            "RETR big.bin PASV [150,426] aborted/abor down=131072 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR big.bin PASV [150,426] aborted/abor down=262144 up=0 close=server/fin",
            "session quit transfers=1",
        ],
    ),
    (
        "pure-ftpd-curl",
        &[
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin EPRT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "STOR curl.bin EPSV [150,226] completed down=0 up=49152 close=client/fin",
            "session quit transfers=1",
            "session quit transfers=0",
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR big.bin EPSV [150,150] incomplete/client_reset down=75920 up=0 close=client/rst",
            "session fin transfers=1",
        ],
    ),
    (
        "pure-ftpd-ftplib",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "NLST - PASV [150,226] completed down=35 up=0 close=server/fin",
            "STOR upload/ftplib.bin PASV [150,226] completed down=0 up=40000 close=client/fin",
            "MLSD - PASV [150,226] completed down=559 up=0 close=server/fin",
            "RETR big.bin PASV [150,150] incomplete/abor down=48976 up=0 close=client/rst",
            "session quit transfers=5",
        ],
    ),
    (
        "pure-ftpd-lftp",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "MLSD - PASV [150,226] completed down=559 up=0 close=server/fin",
            "STOR upload/lftp.bin PASV [150,226] completed down=0 up=49152 close=client/fin",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=4",
        ],
    ),
    (
        "pure-ftpd-reset",
        &[
            "RETR big.bin PASV [150] incomplete/client_reset down=50680 up=0 close=client/rst",
            "session quit transfers=1",
            "STOR upload/reset.bin PASV [150,451] failed/client_reset down=0 up=65536 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        // No final reply after the reset; the NOOP's `200 Zzz...` is the NOOP's.
        "pure-ftpd-reset-noop",
        &[
            "RETR big.bin PASV [150] incomplete/client_reset down=50680 up=0 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "vsftpd-abor",
        &[
            "RETR big.bin PASV [150,426] aborted/abor down=329072 up=0 close=client/rst",
            "session quit transfers=1",
            "RETR big.bin PASV [150,426] aborted/abor down=305904 up=0 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "vsftpd-curl",
        &[
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR small.bin EPRT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "STOR curl.bin EPSV [150,226] completed down=0 up=49152 close=client/fin",
            "session quit transfers=1",
            "session quit transfers=0",
            "RETR small.bin EPSV [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=1",
            "RETR big.bin EPSV [150,426] aborted/client_reset down=118896 up=0 close=client/rst",
            "session fin transfers=1",
        ],
    ),
    (
        "vsftpd-ftplib",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "NLST - PASV [150,226] completed down=28 up=0 close=server/fin",
            "STOR upload/ftplib.bin PASV [150,226] completed down=0 up=40000 close=client/fin",
            "MLSD - PASV [500] failed down=0 up=0 close=client/fin",
            "RETR big.bin PASV [150,426] aborted/abor down=36384 up=0 close=client/rst",
            "session quit transfers=5",
        ],
    ),
    (
        // async_abor_enable=YES: ftplib's ABOR (only its LF urgent) gets `500 Unknown
        // command.`, which is the ABOR's; the 426 after it is the RETR's.
        "vsftpd-ftplib-abort",
        &[
            "RETR big.bin PASV [150,426] aborted/abor down=107968 up=0 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "vsftpd-lftp",
        &[
            "RETR small.bin PASV [150,226] completed down=65536 up=0 close=server/fin",
            "LIST - PASV [150,226] completed down=196 up=0 close=server/fin",
            "STOR upload/lftp.bin PASV [150,226] completed down=0 up=49152 close=client/fin",
            "RETR small.bin PORT [150,226] completed down=65536 up=0 close=server/fin",
            "session quit transfers=4",
        ],
    ),
    (
        "vsftpd-reset",
        &[
            "RETR big.bin PASV [150,426] aborted/client_reset down=55024 up=0 close=client/rst",
            "session quit transfers=1",
            "STOR upload/reset.bin PASV [150,426] aborted/client_reset down=0 up=65536 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        "vsftpd-stall",
        &[
            "RETR big.bin PASV [150,421] failed/stalled down=55024 up=0 close=client/rst",
            "session quit transfers=1",
        ],
    ),
    (
        // FTPS without CCC: after the 234 nothing is read; the data connections (LIST,
        // RETR, STOR, a RETR the client reset) are inferred, as tshark counts them.
        "vsftpd-tls",
        &[
            "tls-data opened_by=client down=864 up=1213 close=client/fin",
            "tls-data opened_by=client down=66270 up=1213 close=client/fin",
            "tls-data opened_by=client down=646 up=51367 close=client/fin",
            "tls-data opened_by=client down=312336 up=1189 close=client/rst",
            "session fin transfers=0",
        ],
    ),
];

fn describe(e: &Event) -> Option<String> {
    match e {
        Event::Transfer(t) => {
            let d = t.data.as_ref();
            let close = match d.map(|d| d.first_close) {
                Some(Some(c)) => format!("{}/{}", c.by.as_str(), c.how.as_str()),
                Some(None) => "open".into(),
                None => "none".into(),
            };
            let replies: Vec<String> = t.replies.iter().map(|c| c.to_string()).collect();
            Some(format!(
                "{} {} {} [{}] {}{} down={} up={} close={close}",
                t.command_name(),
                t.argument.as_deref().unwrap_or("-"),
                t.mode.map_or("-", |m| m.as_str()),
                replies.join(","),
                t.outcome.as_str(),
                // The abort cause of a 426, or what broke a failed or incomplete one.
                t.abort_cause
                    .or(t.interruption_cause)
                    .map(|c| format!("/{}", c.as_str()))
                    .unwrap_or_default(),
                d.map_or(0, |d| d.bytes_to_client),
                d.map_or(0, |d| d.bytes_to_server),
            ))
        }
        Event::Session(s) => Some(format!(
            "session {} transfers={}",
            s.end_reason.as_str(),
            s.transfers
        )),
        Event::Anomaly(a) => Some(format!("anomaly {} {}", a.kind.as_str(), a.detail)),
        Event::EncryptedData(r) => {
            let d = &r.data;
            let close = d.first_close.map_or("open".into(), |c| {
                format!("{}/{}", c.by.as_str(), c.how.as_str())
            });
            Some(format!(
                "tls-data opened_by={} down={} up={} close={close}",
                d.opened_by.as_str(),
                d.bytes_to_client,
                d.bytes_to_server,
            ))
        }
    }
}

#[test]
fn every_recorded_capture_gives_its_exact_transfers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let bytes = std::fs::read(dir.join(format!("{name}.pcap"))).expect("recorded capture");
        let got: Vec<String> = common::analyse(&bytes)
            .iter()
            .filter_map(describe)
            .collect();
        if got != *expected {
            failures.push(format!("{name}:\n  expected {expected:#?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_final_reply_is_outside_its_commands_completion_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut checked = 0;
    for (name, _) in EXPECTED {
        let bytes = std::fs::read(dir.join(format!("{name}.pcap"))).expect("recorded capture");
        let events = common::analyse(&bytes);
        checked += common::transfers(&events).len();
        let bad = common::finals_outside_sequence(&events);
        assert!(bad.is_empty(), "{name}: {bad:?}");
    }
    assert!(checked > 50, "only {checked} transfers");
}

#[test]
fn every_capture_in_tests_data_is_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/data")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".pcap").map(String::from))
        .collect();
    on_disk.sort();
    let mut checked: Vec<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    checked.sort();
    assert_eq!(on_disk, checked);
}

#[test]
fn the_426_texts_of_each_server_are_kept() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (name, text) in [
        ("vsftpd-reset", "Failure writing network stream."),
        ("proftpd-reset", "Transfer aborted. Data connection closed"),
    ] {
        let bytes = std::fs::read(dir.join(format!("{name}.pcap"))).unwrap();
        let t = common::transfers(&common::analyse(&bytes));
        assert_eq!(t[0].final_text.as_deref(), Some(text), "{name}");
        let lag = t[0].teardown_to_reply_seconds.unwrap();
        assert!(
            (0.0..0.01).contains(&lag),
            "{name}: the 426 follows the reset closely: {lag}"
        );
    }
}
