//! Memory and time under hostile or heavy load, measured (not asserted):
//!   - 1,000,000 SYNs to port 21 from distinct sources: resident memory stays within
//!     the budget, evictions are counted by reason, and the time per packet does not
//!     grow as the table fills (reported per 100,000 packets);
//!   - 100,000 concurrent logged-in control sessions, then one open data connection
//!     for each: bytes per idle session and per data connection (from the resident set
//!     size growth, /proc/self/statm).
//!
//! Run with `cargo bench --bench bounds`.

use std::time::Instant;

use ftpwatch::capture::{FileSource, FrameSource, Next};
use ftpwatch::ftp::{Side, Timestamp};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::{Discard, Metrics};
use ftpwatch::synth::frame::flood_syn;
use ftpwatch::synth::{FtpSim, Link};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn metric(text: &str, series: &str) -> u64 {
    ftpwatch::sink::metrics::sample(text, series).unwrap_or(0.0) as u64
}

/// Feed raw frames (already built) with timestamps 1 µs apart.
fn feed(p: &mut Pipeline, frames: impl Iterator<Item = Vec<u8>>, clock: &mut u64) -> u64 {
    let mut n = 0;
    let mut pcap = ftpwatch::capture::writer::PcapWriter::new(
        Vec::new(),
        Link::Ethernet.link_type(),
        65535,
        true,
    )
    .unwrap();
    for f in frames {
        *clock += 1_000;
        pcap.packet(Timestamp::from_nanos(*clock), &f, f.len() as u32)
            .unwrap();
        n += 1;
    }
    let bytes = pcap.into_inner();
    let mut src = FileSource::new(&bytes[..]).unwrap();
    while let Next::Frame(fr) = src.next_frame().unwrap() {
        p.frame(&fr, &mut Discard);
    }
    n
}

fn syn_flood(settings: &Settings) {
    let mut p = Pipeline::new(settings.clone(), Metrics::new());
    let before = rss_bytes();
    let mut clock = 1_700_000_000_000_000_000u64;
    println!(
        "SYN flood: 1,000,000 SYNs to port 21, max_flows {}",
        settings.flow.max_flows
    );
    for chunk in 0..10u32 {
        let frames: Vec<Vec<u8>> = (chunk * 100_000..(chunk + 1) * 100_000)
            .map(flood_syn)
            .collect();
        let t = Instant::now();
        let n = feed(&mut p, frames.into_iter(), &mut clock);
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "  packets {:>7}-{:>7}: {:>5.0} ns/packet (read+decode+flow), table {:>7} flows, RSS +{:>4} MiB",
            chunk * 100_000,
            (chunk + 1) * 100_000,
            ns,
            p.flows().len(),
            (rss_bytes() - before) >> 20
        );
    }
    let text = p.metrics().render();
    println!(
        "  evicted: table_full {}, idle_timeout {}; bound hit: flows {}; sessions created: {}",
        metric(&text, "ftpwatch_flows_evicted_total{reason=\"table_full\"}"),
        metric(
            &text,
            "ftpwatch_flows_evicted_total{reason=\"idle_timeout\"}"
        ),
        metric(&text, "ftpwatch_bounds_hit_total{bound=\"flows\"}"),
        p.engine().sessions()
    );
}

/// 100,000 sessions: handshake, greeting, USER/PASS/230, then silence.
fn idle_sessions(settings: &Settings, n: u32) {
    let mut p = Pipeline::new(settings.clone(), Metrics::new());
    let mut clock = 1_700_000_000_000_000_000u64;
    let mut sims = Vec::new();
    let baseline = rss_bytes();
    for batch in 0..(n / 10_000) {
        let frames: Vec<Vec<u8>> = (batch * 10_000..(batch + 1) * 10_000)
            .flat_map(|i| {
                let mut s = FtpSim::numbered(i);
                s.connect();
                s.login(&format!("user{i}"), "secret");
                let frames: Vec<Vec<u8>> =
                    s.cap.take_frames().into_iter().map(|(_, f)| f).collect();
                sims.push(s);
                frames
            })
            .collect();
        feed(&mut p, frames.into_iter(), &mut clock);
    }
    let sessions_rss = rss_bytes() - baseline;
    assert_eq!(
        p.engine().sessions(),
        n as usize,
        "every session is followed"
    );
    println!(
        "{n} idle logged-in sessions: RSS +{} MiB, {} bytes per session (flow entry + session)",
        sessions_rss >> 20,
        sessions_rss / n as u64
    );
    // One open data connection per session (PASV, connected, nothing moved yet).
    let mid = rss_bytes();
    let frames: Vec<Vec<u8>> = sims
        .iter_mut()
        .flat_map(|s| {
            let mut d = s.pasv();
            s.open(&mut d);
            d.tcp.send(&mut s.cap, Side::Responder, b"x");
            s.cap.take_frames().into_iter().map(|(_, f)| f)
        })
        .collect();
    drop(sims);
    feed(&mut p, frames.into_iter(), &mut clock);
    let data_rss = rss_bytes().saturating_sub(mid);
    println!(
        "  + one open data connection each: {} data connections, RSS +{} MiB, {} bytes per data connection",
        p.engine().data_connections(),
        data_rss >> 20,
        data_rss / n as u64
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let settings = Settings::default();
    syn_flood(&settings);
    idle_sessions(&settings, 100_000);
}
