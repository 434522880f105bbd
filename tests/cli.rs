//! The `ftpwatch` binary: exit codes, one-line errors, standard input, several files
//! as one timeline, and golden files for what operators read.

mod common;

use common::{ftpwatch, temp_file};
use ftpwatch::synth::FtpSim;

/// A session with each outcome: completed, aborted by a client reset, aborted by ABOR,
/// failed, and (left hanging at the end) incomplete.
fn showcase() -> FtpSim {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "s3cret-pw");
    let mut d = s.pasv();
    s.retr_ok(&mut d, "report.csv", 12_345);

    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("RETR big.iso");
    s.reply("150 Opening BINARY mode data connection for big.iso (734003200 bytes).");
    d.tcp.bulk(&mut s.cap, d.server_side(), 80_000, 1448, 50);
    d.tcp.rst(&mut s.cap, d.client_side);
    s.cap.advance_ms(1);
    s.reply("426 Failure writing network stream.");

    let mut d = s.epsv();
    s.open(&mut d);
    s.cmd("STOR upload.bin");
    s.reply("150 Ok to send data.");
    d.tcp.bulk(&mut s.cap, d.client_side, 30_000, 1448, 50);
    s.cmd_bytes(b"\xff\xf4\xff\xf2ABOR");
    d.tcp.rst(&mut s.cap, d.server_side());
    s.reply("426 Failure reading network stream.");
    s.reply("225 No transfer to ABOR.");

    let _d = s.pasv();
    s.cmd("RETR nothere.txt");
    s.reply("550 Failed to open file.");

    let mut d = s.pasv();
    s.open(&mut d);
    s.cmd("LIST");
    s.reply("150 Here comes the directory listing.");
    d.tcp.send(
        &mut s.cap,
        d.server_side(),
        b"-rw-r--r-- 1 ftp ftp 12345 Jan 01 report.csv\r\n",
    );
    s
}

#[test]
fn summary_of_a_capture_file() {
    let path = temp_file("showcase.pcap", &showcase().cap.to_pcap());
    let r = ftpwatch(&["read", path.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    insta::assert_snapshot!("showcase_summary", r.stdout);
}

#[test]
fn json_event_log() {
    let path = temp_file("showcase-json.pcap", &showcase().cap.to_pcap());
    let r = ftpwatch(&["read", "--json", path.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in r.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("each line is one JSON object");
    }
    insta::assert_snapshot!("showcase_json", r.stdout);
}

#[test]
fn standard_input_gives_the_same_result_as_the_file() {
    let bytes = showcase().cap.to_pcap();
    let path = temp_file("stdin.pcap", &bytes);
    let from_file = ftpwatch(&["read", "--json", path.to_str().unwrap()], b"");
    let from_stdin = ftpwatch(&["read", "--json", "-"], &bytes);
    assert_eq!(from_stdin.code, 0, "{}", from_stdin.stderr);
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn several_files_are_one_timeline() {
    let s = showcase();
    let whole = s.cap.to_pcap();
    // Split at a record boundary near the middle: header + records up to it, then a
    // new header + the rest.
    let mut cut = 24;
    while cut < whole.len() / 2 {
        let caplen = u32::from_le_bytes(whole[cut + 8..cut + 12].try_into().unwrap()) as usize;
        cut += 16 + caplen;
    }
    let first = temp_file("part1.pcap", &whole[..cut]);
    let mut second_bytes = whole[..24].to_vec();
    second_bytes.extend_from_slice(&whole[cut..]);
    let second = temp_file("part2.pcap", &second_bytes);
    let one = temp_file("whole.pcap", &whole);
    let split = ftpwatch(
        &[
            "read",
            "--json",
            first.to_str().unwrap(),
            second.to_str().unwrap(),
        ],
        b"",
    );
    let joined = ftpwatch(&["read", "--json", one.to_str().unwrap()], b"");
    assert_eq!(split.code, 0, "{}", split.stderr);
    assert_eq!(split.stdout, joined.stdout);
}

#[test]
fn not_a_capture_is_one_line_and_exit_2() {
    let path = temp_file("notes.txt", b"hello, this is text\n");
    let r = ftpwatch(&["read", path.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "ftpwatch: {}: byte 0: not a pcap or pcapng capture (starts with 68 65 6c 6c)\n",
            path.display()
        )
    );
}

#[test]
fn missing_file_is_one_line_and_exit_2() {
    let r = ftpwatch(&["read", "/nonexistent/capture.pcap"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "ftpwatch: /nonexistent/capture.pcap: cannot open: No such file or directory (os error 2)\n"
    );
}

#[test]
fn truncated_capture_reports_what_came_before_and_exits_2() {
    let bytes = showcase().cap.to_pcap();
    let cut = &bytes[..bytes.len() - 10];
    let path = temp_file("cut.pcap", cut);
    let r = ftpwatch(&["read", "--json", path.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with(&format!("ftpwatch: {}: byte ", path.display()))
            && lines[0].contains("truncated pcap packet data"),
        "{}",
        r.stderr
    );
    // Everything before the damage is still there: 4 transfers finished, the LIST
    // incomplete, and the session.
    assert_eq!(r.stdout.matches("\"type\":\"transfer\"").count(), 5);
    assert!(r.stdout.contains("\"end_reason\":\"capture_end\""));
}

#[test]
fn damage_in_one_file_does_not_stop_the_next() {
    let good = temp_file("good.pcap", &showcase().cap.to_pcap());
    let bad = temp_file("bad.pcap", b"\xd4\xc3\xb2\xa1\x02\x00");
    let r = ftpwatch(
        &["read", bad.to_str().unwrap(), good.to_str().unwrap()],
        b"",
    );
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stdout.contains("Aborts (426): 2"), "{}", r.stdout);
}

#[test]
fn no_secret_in_any_output() {
    let path = temp_file("secrets.pcap", &showcase().cap.to_pcap());
    let p = path.to_str().unwrap();
    for args in [
        vec!["read", p],
        vec!["read", "--json", p],
        vec!["read", "--metrics", p],
    ] {
        let r = ftpwatch(&args, b"");
        assert_eq!(r.code, 0);
        assert!(
            !r.stdout.contains("s3cret-pw") && !r.stderr.contains("s3cret-pw"),
            "{args:?}"
        );
    }
    for args in [
        vec!["read", "--redact-user", p],
        vec!["read", "--redact-user", "--json", p],
        vec!["read", "--redact-user", "--metrics", p],
    ] {
        let r = ftpwatch(&args, b"");
        assert_eq!(r.code, 0);
        assert!(!r.stdout.contains("alice"), "{args:?}: {}", r.stdout);
    }
    // Without --redact-user the user is in the session record.
    assert!(
        ftpwatch(&["read", "--json", p], b"")
            .stdout
            .contains("\"user\":\"alice\"")
    );
}

#[test]
fn explain_known_unknown_and_invalid_codes() {
    let r = ftpwatch(&["explain", "426"], b"");
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .starts_with("426 Connection closed; transfer aborted.\n")
    );
    assert!(
        r.stdout
            .contains("class:  4yz transient negative completion")
    );
    let r = ftpwatch(&["explain", "299"], b"");
    assert_eq!(
        (r.code, r.stdout.lines().next()),
        (0, Some("299 is not a standard reply code"))
    );
    let r = ftpwatch(&["explain", "42x"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "ftpwatch: \"42x\" is not a reply code: expected three digits, 100 to 699\n"
    );
}

#[test]
fn json_and_metrics_cannot_be_combined() {
    let r = ftpwatch(&["read", "--json", "--metrics", "x.pcap"], b"");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

/// `ftpwatch proxy` with TLS options it cannot use: one line naming the option and the
/// file, exit 2, before anything listens.
#[test]
fn proxy_tls_options_that_cannot_work_are_refused_in_one_line() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let file = |n: &str| data.join(n).to_str().unwrap().to_string();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftpwatch"))
            .args([
                "proxy",
                "--upstream",
                "127.0.0.1:2",
                "--ftp-listen",
                "127.0.0.1:0",
            ])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &[
                "--tls-cert",
                "/nonexistent/proxy.pem",
                "--tls-key",
                "/nonexistent/proxy.key",
            ],
            &[],
            "--tls-cert /nonexistent/proxy.pem: ",
        ),
        (
            &[
                "--tls-cert",
                &file("ca.pem"),
                "--tls-key",
                &file("server.key"),
            ],
            &[],
            "ca.pem with --tls-key: ",
        ),
        // No CA certificate anywhere (a system without ca-certificates).
        (
            &["--upstream-tls", "required"],
            &[
                ("SSL_CERT_FILE", "/nonexistent"),
                ("SSL_CERT_DIR", "/nonexistent"),
            ],
            "--upstream-tls required: no CA certificates",
        ),
    ];
    for (extra, env, want) in cases {
        let (code, err) = run(extra, env);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("ftpwatch: ") && err.contains(want),
            "{extra:?}: {err}"
        );
    }
}
