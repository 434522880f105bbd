//! Offline throughput of the whole pipeline (read → decode → flow → engine → metrics)
//! on one core, over generated captures:
//!   bulk:  ≥ 1 GiB, mostly full-size data segments of many FTP sessions;
//!   small: a flood of small packets (FTP control chatter, small data segments, and
//!          non-FTP traffic that the connection table drops).
//! Run with `cargo bench --bench throughput`. The captures are generated once under
//! target/bench-data/ and reused; each figure is the best of three warm runs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ftpwatch::capture::writer::PcapWriter;
use ftpwatch::capture::{FileSource, FrameSource, Next};
use ftpwatch::decode::{TcpFlags, decode};
use ftpwatch::ftp::Timestamp;
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::{Discard, Metrics};
use ftpwatch::synth::frame::tcp_frame;
use ftpwatch::synth::ftp::DownloadEnd;
use ftpwatch::synth::{FtpSim, Link};

const GIB: u64 = 1 << 30;

fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&d).expect("bench data dir");
    d
}

/// Sessions are built `batch` at a time and their frames interleaved round-robin, so
/// that many connections are live in the table at once, as on a gateway.
fn write_interleaved(
    w: &mut PcapWriter<BufWriter<File>>,
    clock: &mut u64,
    sessions: Vec<Vec<(Timestamp, Vec<u8>)>>,
) -> (u64, u64) {
    let mut iters: Vec<_> = sessions.into_iter().map(|v| v.into_iter()).collect();
    let (mut packets, mut bytes) = (0u64, 0u64);
    loop {
        let mut any = false;
        for it in iters.iter_mut() {
            if let Some((_, f)) = it.next() {
                *clock += 1_000; // 1 µs apart: a monotonic timeline
                w.packet(Timestamp::from_nanos(*clock), &f, f.len() as u32)
                    .expect("write");
                packets += 1;
                bytes += f.len() as u64;
                any = true;
            }
        }
        if !any {
            return (packets, bytes);
        }
    }
}

/// Session `i`: a download of `file_bytes` in `mss`-sized segments; one in ten is
/// reset by the client and answered 426.
fn ftp_session(i: u32, file_bytes: u64, mss: usize) -> Vec<(Timestamp, Vec<u8>)> {
    let mut s = FtpSim::numbered(i);
    s.connect();
    s.login("bench", "bench");
    let end = if i % 10 == 3 {
        DownloadEnd::ClientReset
    } else {
        DownloadEnd::Completed
    };
    s.download("data.bin", file_bytes, mss, end);
    s.quit();
    s.cap.take_frames()
}

fn generate_bulk(path: &Path) {
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let mut w = PcapWriter::new(f, Link::Ethernet.link_type(), 65535, true).expect("header");
    let (mut clock, mut bytes, mut i) = (1_700_000_000_000_000_000u64, 0u64, 0u32);
    while bytes < GIB + GIB / 16 {
        let batch: Vec<_> = (0..64).map(|k| ftp_session(i + k, 2 << 20, 1448)).collect();
        i += 64;
        bytes += write_interleaved(&mut w, &mut clock, batch).1;
    }
    w.into_inner().flush().expect("flush");
}

fn generate_small(path: &Path) {
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let mut w = PcapWriter::new(f, Link::Ethernet.link_type(), 65535, true).expect("header");
    let mut clock = 1_700_000_000_000_000_000u64;
    let mut packets = 0u64;
    let mut i = 0u32;
    while packets < 12_000_000 {
        // FTP sessions with small data segments (interactive listings, tiny files)...
        let batch: Vec<_> = (0..64).map(|k| ftp_session(i + k, 20_000, 100)).collect();
        i += 64;
        packets += write_interleaved(&mut w, &mut clock, batch).0;
        // ...among other traffic: HTTP-like segments the table drops at once.
        for k in 0..20_000u32 {
            let src: SocketAddr =
                format!("172.16.{}.{}:{}", k / 256 % 256, k % 256, 30000 + k % 30000)
                    .parse()
                    .unwrap();
            let dst: SocketAddr = "198.51.100.80:443".parse().unwrap();
            let fr = tcp_frame(
                Link::Ethernet,
                src,
                dst,
                k,
                k,
                TcpFlags::new(TcpFlags::ACK),
                &[],
            );
            clock += 1_000;
            w.packet(Timestamp::from_nanos(clock), &fr, fr.len() as u32)
                .expect("write");
            packets += 1;
        }
    }
    w.into_inner().flush().expect("flush");
}

struct Figures {
    packets: u64,
    bytes: u64,
    secs: f64,
}

/// Best of three warm runs of `f` over the capture.
fn measure(path: &Path, mut f: impl FnMut(&Path) -> (u64, u64)) -> Figures {
    f(path); // warm the page cache
    let mut best: Option<Figures> = None;
    for _ in 0..3 {
        let t = Instant::now();
        let (packets, bytes) = f(path);
        let secs = t.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|b| secs < b.secs) {
            best = Some(Figures {
                packets,
                bytes,
                secs,
            });
        }
    }
    best.expect("three runs")
}

fn read_only(path: &Path) -> (u64, u64) {
    let mut src = FileSource::open(path.to_str().unwrap()).expect("open");
    let (mut p, mut b) = (0, 0);
    while let Next::Frame(fr) = src.next_frame().expect("read") {
        p += 1;
        b += fr.data.len() as u64;
    }
    (p, b)
}

fn read_decode(path: &Path) -> (u64, u64) {
    let mut src = FileSource::open(path.to_str().unwrap()).expect("open");
    let (mut p, mut b) = (0, 0);
    while let Next::Frame(fr) = src.next_frame().expect("read") {
        p += 1;
        b += fr.data.len() as u64;
        std::hint::black_box(decode(&fr).ok());
    }
    (p, b)
}

fn full_pipeline(path: &Path) -> (u64, u64) {
    let mut src = FileSource::open(path.to_str().unwrap()).expect("open");
    let mut pipeline = Pipeline::new(Settings::default(), Metrics::new());
    let (mut p, mut b) = (0, 0);
    while let Next::Frame(fr) = src.next_frame().expect("read") {
        p += 1;
        b += fr.data.len() as u64;
        pipeline.frame(&fr, &mut Discard);
    }
    pipeline.finish(&mut Discard);
    assert!(
        pipeline
            .metrics()
            .render()
            .contains("ftp_transfers_total{command=\"RETR\",outcome=\"completed\"}")
    );
    (p, b)
}

fn report(capture: &str, stage: &str, f: &Figures) {
    println!(
        "{capture:<6} {stage:<14} {:>11} packets {:>7.2} GB  {:>6.2} s  {:>7.2} M packets/s  {:>6.2} GB/s  {:>6.0} ns/packet",
        f.packets,
        f.bytes as f64 / 1e9,
        f.secs,
        f.packets as f64 / f.secs / 1e6,
        f.bytes as f64 / f.secs / 1e9,
        f.secs * 1e9 / f.packets as f64
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would not: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = data_dir();
    let bulk = dir.join("bulk.pcap");
    let small = dir.join("small.pcap");
    if !bulk.exists() {
        eprintln!("generating {} ...", bulk.display());
        generate_bulk(&bulk);
    }
    if !small.exists() {
        eprintln!("generating {} ...", small.display());
        generate_small(&small);
    }
    for (name, path) in [("bulk", &bulk), ("small", &small)] {
        report(name, "read", &measure(path, read_only));
        report(name, "read+decode", &measure(path, read_decode));
        report(name, "full pipeline", &measure(path, full_pipeline));
    }
}
