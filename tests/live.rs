//! `ftpwatch live` failure modes, signals and HTTP endpoints, without root: frames come
//! from the replay backend (a capture played in as an interface), everything else is
//! the real runner. Capture with AF_PACKET against real servers is tests/e2e/live.sh.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use ftpwatch::capture::writer::PcapWriter;
use ftpwatch::synth::{FtpSim, Link};

const BIN: &str = env!("CARGO_BIN_EXE_ftpwatch");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ftpwatch-live-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("ftpwatch runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of one exposition line, e.g. `ftpwatch_packets_total`.
fn metric(port: u16, series: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics");
    ftpwatch::sink::metrics::sample(&body, series)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until something listens on `port` without connecting to it: a probe
/// connection would hold one of the exporter's connection slots for a moment.
fn wait_listening(port: u16) {
    let needle = format!(":{port:04X} 00000000:0000 0A");
    wait_for("a listening socket", Duration::from_secs(10), || {
        std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&needle))
    });
}

fn wait_http(port: u16) {
    wait_for("the HTTP server", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// pcap records (no file header) of a session; with `quit` it ends cleanly.
fn session_records(client_port: u16, quit: bool) -> (Vec<u8>, usize) {
    let mut s = FtpSim::new(
        Link::Ethernet,
        format!("10.0.0.2:{client_port}").parse().unwrap(),
        "10.0.0.1:21".parse().unwrap(),
    );
    s.connect();
    s.login("alice", "pw");
    let mut d = s.pasv();
    s.retr_ok(&mut d, "f.txt", 3000);
    if quit {
        s.quit();
    } else {
        s.cmd("LIST");
    }
    let frames = s.cap.len();
    (s.cap.to_pcap()[24..].to_vec(), frames)
}

fn pcap_header() -> Vec<u8> {
    PcapWriter::new(Vec::new(), Link::Ethernet.link_type(), 65535, true)
        .unwrap()
        .into_inner()
}

/// Start `ftpwatch live` replaying standard input, feed it a pcap header and
/// `records`, and wait for its HTTP server. The stdin stays open for more.
fn start_fed(port: u16, events: &Path, records: &[u8]) -> (Child, ChildStdin) {
    let mut child = spawn_replay(port, events);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pcap_header()).unwrap();
    stdin.write_all(records).unwrap();
    stdin.flush().unwrap();
    wait_http(port);
    (child, stdin)
}

fn spawn_replay(port: u16, events: &Path) -> Child {
    Command::new(BIN)
        .args([
            "live",
            "--replay",
            "-",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--events", events.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ftpwatch live starts")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < limit,
            "ftpwatch did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn missing_interface_is_one_clear_line() {
    let listen = format!("127.0.0.1:{}", free_port());
    let (code, err) = run(&["live", "-i", "nosuch0", "--listen", &listen]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "ftpwatch: no network interface named \"nosuch0\" (see `ip link` for the interfaces of this host)\n"
    );
}

#[test]
fn missing_capability_names_cap_net_raw() {
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["live", "-i", "lo", "--listen", &listen];
    // As root, drop to nobody with no capabilities; otherwise we already lack them.
    let out = if running_as_root() {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                BIN,
            ])
            .args(args)
            .output()
            .expect("setpriv runs")
    } else {
        Command::new(BIN).args(args).output().unwrap()
    };
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ftpwatch: capturing on lo needs CAP_NET_RAW (to open an AF_PACKET socket); run as root, or grant it with `setcap cap_net_raw,cap_net_admin+ep` on the ftpwatch binary, or AmbientCapabilities= in its systemd unit\n"
    );
}

/// Whether this test process runs as root (from /proc, without unsafe code).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().next() == Some("0"))
}

#[test]
fn listen_address_in_use_is_one_clear_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["live", "--replay", "/dev/null", "--listen", &addr]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("ftpwatch: cannot listen on {addr}: Address already in use (os error 98)\n")
    );
}

#[test]
fn sigterm_flushes_pending_events_and_exits_zero_within_two_seconds() {
    let dir = temp_dir("term");
    let events = dir.join("events.jsonl");
    let port = free_port();
    let (records, frames) = session_records(40000, false);
    let (mut child, stdin) = start_fed(port, &events, &records);
    wait_for("every frame analysed", Duration::from_secs(10), || {
        metric(port, "ftpwatch_packets_total") == Some(frames as f64)
    });
    // The RETR is logged; the session and its LIST are still open.
    let before = std::fs::read_to_string(&events).unwrap();
    assert_eq!(before.lines().count(), 1, "{before}");
    assert_eq!(metric(port, "ftp_sessions_active"), Some(1.0));
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200);
    assert!(body.contains("<a href=\"/metrics\">") && body.contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(http_get(port, "/healthz"), (200, "ok\n".to_string()));

    let t = Instant::now();
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
    assert!(t.elapsed() < Duration::from_secs(2));
    let after = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 3, "{after}");
    assert!(
        lines[1].contains("\"command\":\"LIST\"")
            && lines[1].contains("\"outcome\":\"incomplete\"")
    );
    assert!(
        lines[2].contains("\"type\":\"session\"")
            && lines[2].contains("\"end_reason\":\"capture_end\"")
    );
    let mode = std::fs::metadata(&events).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    drop(stdin);
}

#[test]
fn sighup_reopens_the_event_log_after_it_was_moved_away() {
    let dir = temp_dir("hup");
    let events = dir.join("events.jsonl");
    let rotated = dir.join("events.jsonl.1");
    let port = free_port();
    let (first, _) = session_records(40001, true);
    let (mut child, mut stdin) = start_fed(port, &events, &first);
    wait_for("the first session", Duration::from_secs(10), || {
        std::fs::read_to_string(&events).is_ok_and(|s| s.contains("\"type\":\"session\""))
    });
    std::fs::rename(&events, &rotated).unwrap();
    signal(&child, "-HUP");
    wait_for("the log reopened", Duration::from_secs(5), || {
        events.exists()
    });
    let (second, _) = session_records(40002, true);
    stdin.write_all(&second).unwrap();
    stdin.flush().unwrap();
    wait_for("the second session", Duration::from_secs(10), || {
        std::fs::read_to_string(&events).is_ok_and(|s| s.contains("\"type\":\"session\""))
    });
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&events).unwrap();
    assert!(
        old.contains("10.0.0.2:40001") && !old.contains("10.0.0.2:40002"),
        "{old}"
    );
    assert!(
        new.contains("10.0.0.2:40002") && !new.contains("10.0.0.2:40001"),
        "{new}"
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("ftpwatch: event log reopened"), "{err}");
}

#[test]
fn metrics_endpoint_serves_the_registry() {
    let dir = temp_dir("metrics");
    let port = free_port();
    let (records, frames) = session_records(40003, true);
    let (mut child, _stdin) = start_fed(port, &dir.join("e.jsonl"), &records);
    wait_for("every frame analysed", Duration::from_secs(10), || {
        metric(port, "ftpwatch_packets_total") == Some(frames as f64)
    });
    assert_eq!(
        metric(
            port,
            "ftp_transfers_total{command=\"RETR\",outcome=\"completed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            port,
            "ftp_replies_total{class=\"2xx\",code=\"226\",origin=\"server\"}"
        ),
        Some(1.0)
    );
    // The data segments cross to the analysis thread as headers only (their payload
    // is never read): still every byte counted, and nothing taken for truncation.
    assert_eq!(
        metric(port, "ftp_data_bytes_total{direction=\"download\"}"),
        Some(3000.0)
    );
    assert_eq!(
        metric(port, "ftpwatch_bytes_total"),
        Some((records.len() - 16 * frames) as f64)
    );
    assert_eq!(metric(port, "ftpwatch_truncated_packets_total"), Some(0.0));
    assert_eq!(
        metric(port, "ftpwatch_capture_up{interface=\"replay\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(port, "ftpwatch_build_info{version=\"0.1.0\"}"),
        Some(1.0)
    );
    signal(&child, "-INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
}

#[test]
fn the_exporter_limits_connections_and_drops_silent_clients() {
    let dir = temp_dir("limits");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, pcap_header()).unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "live",
            "--replay",
            empty.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    // 64 clients that connect and say nothing hold every slot...
    let silent: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...so the next one is closed at once, without an answer.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = write!(extra, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    assert_eq!(
        extra.read(&mut buf).unwrap_or(0),
        0,
        "a 65th connection is not served"
    );
    // The silent ones are dropped after the 5 s header timeout, and scrapes work again.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let start = Instant::now();
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
        assert!(start.elapsed() < Duration::from_secs(7));
    }
    assert!(metric(port, "ftpwatch_http_connections_rejected_total").unwrap() >= 1.0);
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
}
