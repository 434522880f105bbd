//! Writes the fuzz seed corpora (fuzz/corpus/<target>/) from the project's own test
//! captures: control-connection payloads of the recorded captures in tests/data for
//! the text parsers, and small captures built with `ftpwatch::synth` (plus cut and
//! re-encoded variants) for the capture reader and the whole pipeline.
//!   cargo run --example fuzz_seeds

use std::collections::BTreeSet;
use std::path::Path;

use ftpwatch::capture::writer::PcapNgWriter;
use ftpwatch::capture::{FileSource, FrameSource, LinkType, Next};
use ftpwatch::decode::decode;
use ftpwatch::ftp::Side;
use ftpwatch::synth::{FtpSim, Link};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A short session over `link` ending as `ending` says; small data so seeds stay small.
fn session(link: Link, v6: bool, ending: u8) -> FtpSim {
    let (c, s) = if v6 {
        ("[2001:db8::2]:40000", "[2001:db8::1]:21")
    } else {
        ("10.0.0.2:40000", "10.0.0.1:21")
    };
    let mut sim = FtpSim::new(link, c.parse().unwrap(), s.parse().unwrap());
    sim.connect();
    sim.login("alice", "fuzz-secret");
    let mut d = match ending % 4 {
        0 if !v6 => sim.pasv(),
        1 => sim.epsv(),
        2 => sim.active(true),
        _ if !v6 => sim.active(false),
        _ => sim.epsv(),
    };
    match ending {
        0..=3 => sim.retr_ok(&mut d, "f.bin", 3000),
        4 => {
            sim.open(&mut d);
            sim.cmd("RETR big.bin");
            sim.reply("150 Opening BINARY mode data connection for big.bin (99999 bytes).");
            d.tcp.bulk(&mut sim.cap, d.server_side(), 2000, 500, 10);
            d.tcp.rst(&mut sim.cap, d.client_side);
            sim.reply("426 Failure writing network stream.");
        }
        _ => {
            sim.open(&mut d);
            sim.cmd("STOR up.bin");
            sim.reply("150 Ok to send data.");
            sim.cmd_bytes(b"\xff\xf4\xff\xf2ABOR");
            d.tcp.rst(&mut sim.cap, d.server_side());
            sim.reply("426 Transfer aborted.");
            sim.reply("226 Abort successful");
        }
    }
    sim.quit();
    sim
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("fuzz/corpus");
    // Captures: synthetic sessions over every link type, both IP versions.
    let links = [
        Link::Ethernet,
        Link::Vlan(5),
        Link::QinQ(1, 2),
        Link::LinuxSll,
        Link::LinuxSll2,
        Link::Null,
        Link::Raw,
    ];
    let mut n = 0;
    for (i, link) in links.iter().enumerate() {
        for v6 in [false, true] {
            let sim = session(*link, v6, (i % 6) as u8);
            let pcap = sim.cap.to_pcap();
            write(
                &corpus.join("pipeline"),
                &format!("session-{n}.pcap"),
                &pcap,
            );
            write(
                &corpus.join("capture_file"),
                &format!("session-{n}.pcap"),
                &pcap,
            );
            n += 1;
        }
    }
    // pcapng, both byte orders, two interfaces, SPB, and cut variants.
    let pcap = session(Link::Ethernet, false, 4).cap.to_pcap();
    for be in [false, true] {
        let mut w = PcapNgWriter::new(Vec::new(), be).unwrap();
        w.interface(LinkType::ETHERNET, 65535, 6).unwrap();
        w.interface(LinkType::LINUX_SLL2, 128, 9).unwrap();
        let mut src = FileSource::new(&pcap[..]).unwrap();
        let mut k = 0u64;
        while let Next::Frame(f) = src.next_frame().unwrap() {
            match k % 3 {
                0 => w
                    .enhanced(0, f.ts.as_nanos() / 1000, f.data, f.orig_len)
                    .unwrap(),
                1 => w
                    .enhanced(
                        1,
                        f.ts.as_nanos(),
                        &Link::LinuxSll2.wrap(&f.data[14..], false),
                        f.orig_len + 6,
                    )
                    .unwrap(),
                _ => w.simple(f.data, f.orig_len).unwrap(),
            }
            k += 1;
        }
        let ng = w.into_inner();
        let name = if be {
            "session-be.pcapng"
        } else {
            "session-le.pcapng"
        };
        write(&corpus.join("pipeline"), name, &ng);
        write(&corpus.join("capture_file"), name, &ng);
        write(
            &corpus.join("capture_file"),
            &format!("cut-{name}"),
            &ng[..ng.len() * 2 / 3],
        );
    }
    write(
        &corpus.join("capture_file"),
        "cut.pcap",
        &pcap[..pcap.len() / 2],
    );
    write(
        &corpus.join("capture_file"),
        "header-only.pcap",
        &pcap[..24],
    );

    // Text parsers: the control-connection payloads of the recorded captures.
    let mut client = BTreeSet::new();
    let mut server = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("tests/data")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut src = FileSource::new(&bytes[..]).unwrap();
        while let Ok(Next::Frame(f)) = src.next_frame() {
            let Ok(seg) = decode(&f) else { continue };
            if seg.payload.is_empty() {
                continue;
            }
            if seg.dst.port() == 21 {
                client.insert(seg.payload.to_vec());
            } else if seg.src.port() == 21 {
                server.insert(seg.payload.to_vec());
            }
        }
    }
    let _ = Side::Initiator;
    for (i, c) in client.iter().enumerate() {
        write(&corpus.join("command"), &format!("client-{i}"), c);
        write(&corpus.join("line_framer"), &format!("client-{i}"), c);
    }
    for (i, s) in server.iter().enumerate() {
        write(&corpus.join("reply"), &format!("server-{i}"), s);
        write(&corpus.join("line_framer"), &format!("server-{i}"), s);
        if s.starts_with(b"227") || s.starts_with(b"229") {
            write(&corpus.join("endpoints"), &format!("server-{i}"), &s[4..]);
        }
    }
    for (i, c) in client.iter().enumerate() {
        if c.starts_with(b"PORT ") || c.starts_with(b"EPRT ") {
            write(&corpus.join("endpoints"), &format!("client-{i}"), &c[5..]);
        }
    }
    println!("seeds written under {}", corpus.display());
}
