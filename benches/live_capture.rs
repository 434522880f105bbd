//! Live capture, side by side with tcpdump: `tcpreplay --topspeed` offers a capture
//! on one end of a veth pair between two network namespaces this benchmark creates;
//! ftpwatch (release build, AF_PACKET) and then tcpdump capture on the other end.
//! Reported per tool: packets offered and their rate, packets captured, kernel drops,
//! and the process CPU time (user + system, from /proc/PID/stat) spent from just
//! before the replay until the capture has caught up, per offered packet. Startup
//! (ftpwatch maps and touches its 64 MiB ring) is left out for both tools alike.
//!
//! Needs root, tcpreplay and tcpdump (Debian packages). Run:
//!   cargo build --release && cargo bench --bench live_capture
//! Traffic never leaves the two namespaces; each replay is bounded in packets.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ftpwatch::capture::writer::PcapWriter;
use ftpwatch::decode::TcpFlags;
use ftpwatch::ftp::Timestamp;
use ftpwatch::synth::frame::{flood_syn, tcp_frame};
use ftpwatch::synth::ftp::DownloadEnd;
use ftpwatch::synth::{FtpSim, Link};

const NS_TX: &str = "fwbench-tx";
const NS_RX: &str = "fwbench-rx";
const PORT: u16 = 10499;

fn sh(cmd: &[&str]) {
    let st = Command::new(cmd[0])
        .args(&cmd[1..])
        .status()
        .expect("command runs");
    assert!(st.success(), "{cmd:?} failed");
}

fn setup() {
    teardown();
    sh(&["ip", "netns", "add", NS_TX]);
    sh(&["ip", "netns", "add", NS_RX]);
    sh(&[
        "ip", "link", "add", "fwbt0", "netns", NS_TX, "type", "veth", "peer", "name", "fwbr0",
        "netns", NS_RX,
    ]);
    for (ns, dev) in [(NS_TX, "fwbt0"), (NS_RX, "fwbr0")] {
        sh(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        sh(&["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
        let _ = Command::new("ip")
            .args([
                "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
            ])
            .output();
    }
}

fn teardown() {
    for ns in [NS_TX, NS_RX] {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
}

fn write_frames(path: &Path, frames: impl Iterator<Item = Vec<u8>>) -> u64 {
    let f = BufWriter::new(File::create(path).expect("create"));
    let mut w = PcapWriter::new(f, Link::Ethernet.link_type(), 65535, false).expect("header");
    let mut n = 0u64;
    for (i, fr) in frames.enumerate() {
        w.packet(
            Timestamp::from_nanos(1_700_000_000_000_000_000 + i as u64 * 1000),
            &fr,
            fr.len() as u32,
        )
        .expect("write");
        n += 1;
    }
    w.into_inner().flush().expect("flush");
    n
}

/// Real-looking FTP: sessions downloading 1 MiB each in full-size segments.
fn bulk_frames() -> impl Iterator<Item = Vec<u8>> {
    (0..120u32).flat_map(|i| {
        let mut s = FtpSim::numbered(i);
        s.connect();
        s.login("bench", "bench");
        s.download("data.bin", 1 << 20, 1448, DownloadEnd::Completed);
        s.quit();
        s.cap.take_frames().into_iter().map(|(_, f)| f)
    })
}

/// Small packets: FTP sessions moving their data in 100-byte segments, among ACKs of
/// other (non-FTP) connections that the table drops at once.
fn small_frames() -> impl Iterator<Item = Vec<u8>> {
    (0..100u32).flat_map(|i| {
        let mut s = FtpSim::numbered(i);
        s.connect();
        s.login("bench", "bench");
        s.download("data.bin", 200_000, 100, DownloadEnd::Completed);
        s.quit();
        let ftp = s.cap.take_frames().into_iter().map(|(_, f)| f);
        let other = (0..1500u32).map(move |k| {
            let src: SocketAddr = format!("172.16.{}.{}:{}", i, k % 250 + 1, 40000 + k)
                .parse()
                .unwrap();
            tcp_frame(
                Link::Ethernet,
                src,
                "198.51.100.80:443".parse().unwrap(),
                k,
                k,
                TcpFlags::new(TcpFlags::ACK),
                &[],
            )
        });
        ftp.chain(other)
    })
}

/// A flood of 54-byte-payload-free SYNs to port 21 from distinct sources.
fn syn_frames() -> impl Iterator<Item = Vec<u8>> {
    (0..400_000u32).map(flood_syn)
}

/// Process CPU seconds (user + system) from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process alive");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

struct Run {
    tool: &'static str,
    offered: u64,
    rate_pps: f64,
    captured: u64,
    drops: u64,
    cpu: f64,
}

/// Play `pcap` `loops` times as fast as possible; returns the packets/s achieved.
fn replay(pcap: &Path, loops: u32) -> f64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS_TX,
            "tcpreplay",
            "--topspeed",
            "--preload-pcap",
            "-i",
            "fwbt0",
        ])
        .arg(format!("--loop={loops}"))
        .arg(pcap)
        .output()
        .expect("tcpreplay runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // "Rated: 123456.7 Bps, 1.23 Mbps, 456789.12 pps"
    text.lines()
        .find(|l| l.contains("Rated:"))
        .and_then(|l| l.split(',').find(|p| p.contains("pps")))
        .and_then(|p| p.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn metric(body: &str, series: &str) -> u64 {
    ftpwatch::sink::metrics::sample(body, series).unwrap_or(0.0) as u64
}

fn http_metrics() -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS_RX,
            "curl",
            "-sf",
            &format!("http://127.0.0.1:{PORT}/metrics"),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_ftpwatch(bin: &Path, backend: &'static str, pcap: &Path, packets: u64, loops: u32) -> Run {
    let offered = packets * u64::from(loops);
    let mut child = Command::new("ip")
        .args(["netns", "exec", NS_RX])
        .arg(bin)
        .args([
            "live",
            "-i",
            "fwbr0",
            "--backend",
            backend,
            "--listen",
            &format!("127.0.0.1:{PORT}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("ftpwatch starts");
    wait_ready(|| http_metrics().contains("ftpwatch_capture_up"));
    let before = cpu_seconds(child.id());
    let rate = replay(pcap, loops);
    settle(|| metric(&http_metrics(), "ftpwatch_packets_total"));
    let body = http_metrics();
    let cpu = cpu_seconds(child.id()) - before;
    stop(&mut child);
    Run {
        tool: if backend == "ring" {
            "ftpwatch (ring)"
        } else {
            "ftpwatch (pnet)"
        },
        offered,
        rate_pps: rate,
        captured: metric(&body, "ftpwatch_packets_total"),
        drops: metric(&body, "ftpwatch_kernel_drops_total{interface=\"fwbr0\"}"),
        cpu,
    }
}

fn run_tcpdump(pcap: &Path, packets: u64, loops: u32) -> Run {
    let offered = packets * u64::from(loops);
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS_RX,
            "tcpdump",
            "-i",
            "fwbr0",
            "-B",
            "8192",
            "-s",
            "262144",
            "-w",
            "/dev/null",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump starts");
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_seconds(child.id());
    let rate = replay(pcap, loops);
    std::thread::sleep(Duration::from_secs(1));
    let cpu = cpu_seconds(child.id()) - before;
    stop(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let count = |what: &str| {
        err.lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Run {
        tool: "tcpdump",
        offered,
        rate_pps: rate,
        captured: count("packets captured"),
        drops: count("dropped by kernel"),
        cpu,
    }
}

/// Scrapes under load while capture runs: wrk on /metrics (32 connections, 10 s)
/// while tcpreplay plays `pcap` `loops` times. Capture keeping up = no kernel drops and
/// every packet counted.
fn scrape_load(bin: &Path, pcap: &Path, offered: u64, loops: u32) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", NS_RX])
        .arg(bin)
        .args([
            "live",
            "-i",
            "fwbr0",
            "--listen",
            &format!("127.0.0.1:{PORT}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("ftpwatch starts");
    wait_ready(|| http_metrics().contains("ftpwatch_capture_up"));
    let replay = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS_TX,
            "tcpreplay",
            "--topspeed",
            "--preload-pcap",
            "--loop",
        ])
        .arg(loops.to_string())
        .args(["-i", "fwbt0"])
        .arg(pcap)
        .stdout(Stdio::piped())
        .spawn()
        .expect("tcpreplay runs");
    let wrk = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS_RX,
            "wrk",
            "-t2",
            "-c32",
            "-d10s",
            "--latency",
        ])
        .arg(format!("http://127.0.0.1:{PORT}/metrics"))
        .output()
        .expect("wrk runs");
    let replayed = replay.wait_with_output().expect("tcpreplay ends");
    settle(|| metric(&http_metrics(), "ftpwatch_packets_total"));
    let body = http_metrics();
    stop(&mut child);
    let text = String::from_utf8_lossy(&wrk.stdout);
    let field = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
            .unwrap_or_else(|| "?".into())
    };
    let rate = String::from_utf8_lossy(&replayed.stdout)
        .lines()
        .find(|l| l.contains("Rated:"))
        .and_then(|l| {
            l.split(',')
                .find(|p| p.contains("pps"))
                .map(|p| p.trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "scrape load: wrk {} requests/s (latency p50 {}, p99 {}), {} errors; capture: {} of {} packets ({rate}), kernel drops {}",
        field("Requests/sec:"),
        field("50%"),
        field("99%"),
        text.lines()
            .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .unwrap_or("no"),
        metric(&body, "ftpwatch_packets_total"),
        offered * loops as u64,
        metric(&body, "ftpwatch_kernel_drops_total{interface=\"fwbr0\"}"),
    );
}

fn wait_ready(mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "capture did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until a counter stops moving (at most 10 s).
fn settle(mut read: impl FnMut() -> u64) {
    let start = Instant::now();
    let mut last = u64::MAX;
    loop {
        let now = read();
        if now == last || start.elapsed() > Duration::from_secs(10) {
            return;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("live_capture: needs root (network namespaces, AF_PACKET); not run");
        return;
    }
    let bin: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/ftpwatch");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let bulk = dir.join("live-bulk.pcap");
    let small = dir.join("live-small.pcap");
    let syn = dir.join("live-syn.pcap");
    let captures = [
        ("ftp-bulk", write_frames(&bulk, bulk_frames()), bulk),
        ("ftp-small", write_frames(&small, small_frames()), small),
        ("syn-flood", write_frames(&syn, syn_frames()), syn),
    ];
    setup();
    println!(
        "{:<10} {:<16} {:>9} {:>11} {:>9} {:>7} {:>10}",
        "capture", "tool", "offered", "offered/s", "captured", "drops", "CPU/packet"
    );
    for (name, packets, path) in &captures {
        let (name, packets, path) = (*name, *packets, path.as_path());
        // CPU time is read in 10 ms ticks: play the FTP captures several times so that
        // a tick is a few percent of the total. (The SYN flood once: played again its
        // SYNs would find their connections already in the table.)
        let loops = if name == "syn-flood" { 1 } else { 4 };
        for _ in 0..2 {
            for r in [
                run_ftpwatch(&bin, "ring", path, packets, loops),
                run_ftpwatch(&bin, "pnet", path, packets, loops),
                run_tcpdump(path, packets, loops),
            ] {
                println!(
                    "{name:<10} {:<16} {:>9} {:>11.0} {:>9} {:>7} {:>8.0} ns",
                    r.tool,
                    r.offered,
                    r.rate_pps,
                    r.captured,
                    r.drops,
                    r.cpu * 1e9 / r.offered as f64
                );
            }
        }
    }
    let (_, small_offered, small_path) = &captures[1];
    scrape_load(&bin, small_path, *small_offered, 3);
    teardown();
}
