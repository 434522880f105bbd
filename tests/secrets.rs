//! No secret in any output, and no label that grows with the traffic.
//!
//! Every output (summary, `--json`, `--metrics`, `--debug` logs, live mode's event log
//! and logs) over captures that carry known passwords must not contain them; with
//! `--redact-user` not the user names either. The recorded captures log in as `ftplab`
//! with password `labpass`; the synthetic one as `alice` with `s3cret-pw`.

mod common;

use std::path::{Path, PathBuf};

use common::{analyse_with, ftpwatch, temp_file};
use ftpwatch::pipeline::Settings;
use ftpwatch::synth::{FtpSim, Link};

/// Recorded captures whose login is inside TLS (AUTH SSL then CCC; AUTH TLS for good):
/// no output can show the user or a PASS line, so only the absence of the secrets is
/// checked there.
const LOGIN_ENCRYPTED: &[&str] = &["proftpd-ccc.pcap", "vsftpd-tls.pcap"];

fn login_visible(path: &Path) -> bool {
    !LOGIN_ENCRYPTED.iter().any(|n| path.ends_with(n))
}

fn captures() -> Vec<(PathBuf, &'static str, &'static str)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut v: Vec<(PathBuf, &str, &str)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .map(|p| (p, "ftplab", "labpass"))
        .collect();
    v.sort();
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "s3cret-pw");
    let mut d = s.pasv();
    s.retr_ok(&mut d, "alice-report.csv", 2000);
    s.cmd("CWD /home/alice");
    s.reply("550 /home/alice: No such directory for alice");
    s.quit();
    v.push((
        temp_file("secrets-alice.pcap", &s.cap.to_pcap()),
        "alice",
        "s3cret-pw",
    ));
    // A USER line that runs into the PASS line without its CRLF (one line, to the
    // server as to us), and a client's PASS line in the server's direction (a peer
    // echoing what it got, or roles guessed backwards): a malformed reply whose text
    // is reported as an anomaly.
    let mut s = FtpSim::default_v4();
    s.connect();
    s.cmd_bytes(b"USER bob-the-user\xa5\x9aPASS echoed-pw");
    s.reply("331 Password required");
    s.cmd("PASS echoed-pw");
    s.reply("PASS echoed-pw");
    s.reply("230 Logged in");
    s.quit();
    v.push((
        temp_file("secrets-echo.pcap", &s.cap.to_pcap()),
        "bob-the-user",
        "echoed-pw",
    ));
    v
}

const MODES: [&[&str]; 4] = [&[], &["--json"], &["--metrics"], &["--debug"]];

#[test]
fn passwords_appear_in_no_output() {
    for (path, _, password) in captures() {
        for mode in MODES {
            let mut args = vec!["read"];
            args.extend_from_slice(mode);
            args.push(path.to_str().unwrap());
            let r = ftpwatch(&args, b"");
            assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
            assert!(
                !r.stdout.contains(password),
                "{args:?} printed the password"
            );
            assert!(!r.stderr.contains(password), "{args:?} logged the password");
        }
        // The debug log shows PASS, redacted.
        let r = ftpwatch(&["read", "--debug", path.to_str().unwrap()], b"");
        assert_eq!(
            r.stderr.contains("> PASS ****"),
            login_visible(&path),
            "{}",
            path.display()
        );
    }
}

#[test]
fn user_names_appear_in_no_output_with_redact_user() {
    for (path, user, _) in captures() {
        let mut seen_without = false;
        for mode in MODES {
            let mut args = vec!["read", "--redact-user"];
            args.extend_from_slice(mode);
            args.push(path.to_str().unwrap());
            let r = ftpwatch(&args, b"");
            assert_eq!(r.code, 0);
            assert!(
                !r.stdout.contains(user),
                "{args:?} printed the user: {}",
                r.stdout
            );
            assert!(!r.stderr.contains(user), "{args:?} logged the user");
            let plain: Vec<&str> = args
                .iter()
                .copied()
                .filter(|a| *a != "--redact-user")
                .collect();
            let r = ftpwatch(&plain, b"");
            seen_without |= r.stdout.contains(user) || r.stderr.contains(user);
        }
        // Without the option the user name is reported (so the check above can fail).
        assert_eq!(
            seen_without,
            login_visible(&path),
            "{} shows {user}: {seen_without}",
            path.display()
        );
    }
}

#[test]
fn live_mode_logs_no_password_and_with_redact_user_no_user() {
    let (path, user, password) = captures().pop().unwrap();
    let dir = std::env::temp_dir().join(format!("ftpwatch-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ftpwatch"))
        .args([
            "live",
            "--replay",
            path.to_str().unwrap(),
            "--debug",
            "--redact-user",
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--events",
            events.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&events).is_ok_and(|s| s.contains("\"type\":\"session\"")) {
        assert!(start.elapsed().as_secs() < 10, "no session logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = std::fs::read_to_string(&events).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ftpwatch: debug: session 1 > PASS ****"),
        "{stderr}"
    );
    for text in [&log, &stderr.to_string()] {
        assert!(!text.contains(password) && !text.contains(user), "{text}");
    }
}

#[test]
fn ten_thousand_distinct_clients_and_servers_do_not_grow_the_series() {
    let series = |sessions: u32| {
        let mut cap = ftpwatch::synth::Capture::new(Link::Ethernet);
        for i in 0..sessions {
            let client = format!(
                "10.{}.{}.{}:{}",
                1 + i / 62500,
                i / 250 % 250,
                i % 250 + 1,
                20000 + i % 40000
            );
            let server = format!(
                "172.{}.{}.{}:21",
                16 + i / 62500,
                i / 250 % 250,
                i % 250 + 1
            );
            let mut s = FtpSim::new(
                Link::Ethernet,
                client.parse().unwrap(),
                server.parse().unwrap(),
            );
            s.connect();
            s.login(&format!("user{i}"), "pw");
            let mut d = s.pasv();
            s.retr_ok(&mut d, &format!("file-{i}.bin"), 100);
            s.quit();
            for (_, f) in s.cap.take_frames() {
                cap.push(f);
            }
        }
        let (_, p) = analyse_with(&cap.to_pcap(), Settings::default());
        let text = p.metrics().render();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect();
        lines
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
            .collect::<std::collections::BTreeSet<String>>()
    };
    let few = series(10);
    let many = series(10_000);
    assert_eq!(
        few, many,
        "the set of exported series changed with the number of peers"
    );
}

#[test]
fn the_html_report_shows_no_password_and_no_user_with_redact_user() {
    for (path, user, password) in captures() {
        let out = temp_file("secrets-report.html", b"");
        let args = [
            "read",
            "--redact-user",
            "--html",
            out.to_str().unwrap(),
            path.to_str().unwrap(),
        ];
        let r = ftpwatch(&args, b"");
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(html.contains("<h2>Timeline</h2>"), "a report was written");
        // The page names the capture file it shows; the file's name is the operator's.
        let html = html.replace(path.to_str().unwrap(), "");
        assert!(!html.contains(password), "{}: the password", path.display());
        assert!(!html.contains(user), "{}: the user", path.display());
    }
}
