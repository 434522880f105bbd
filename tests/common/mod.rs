//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use ftpwatch::capture::{FileSource, FrameSource, Next};
use ftpwatch::ftp::{CloseHow, Event, Role, SessionRecord, TransferRecord};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::{EventSink, Metrics};
use ftpwatch::synth::FtpSim;

#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl EventSink for Collect {
    fn event(&mut self, e: &Event) {
        self.0.push(e.clone());
    }
}

/// Run a capture (pcap or pcapng bytes) through the pipeline; return the events and
/// the pipeline (for its metrics).
pub fn analyse_with(bytes: &[u8], settings: Settings) -> (Vec<Event>, Pipeline) {
    let mut p = Pipeline::new(settings, Metrics::new());
    let mut sink = Collect::default();
    let mut src = FileSource::new(bytes).expect("a capture");
    loop {
        match src.next_frame().expect("whole capture") {
            Next::Frame(f) => p.frame(&f, &mut sink),
            Next::Skipped(r) => p.skipped_record(r),
            Next::End => break,
        }
    }
    p.finish(&mut sink);
    (sink.0, p)
}

pub fn analyse(bytes: &[u8]) -> Vec<Event> {
    analyse_with(bytes, Settings::default()).0
}

pub fn transfers(events: &[Event]) -> Vec<TransferRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer(t) => Some((**t).clone()),
            _ => None,
        })
        .collect()
}

pub fn sessions(events: &[Event]) -> Vec<SessionRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Session(s) => Some((**s).clone()),
            _ => None,
        })
        .collect()
}

pub fn anomalies(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Anomaly(a) => Some(a.kind.as_str()),
            _ => None,
        })
        .collect()
}

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Run the ftpwatch binary with `args`, feeding `stdin`.
pub fn ftpwatch(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftpwatch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ftpwatch runs");
    let mut input = child.stdin.take().expect("piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("ftpwatch finishes");
    writer.join().expect("stdin writer");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Write bytes to a fresh temporary file and return its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ftpwatch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

/// The value of one series (exact name and labels) in a text exposition.
pub fn metric(text: &str, series: &str) -> u64 {
    ftpwatch::sink::metrics::sample(text, series).unwrap_or_else(|| panic!("no series {series}"))
        as u64
}

/// The transfers whose final reply is outside their command's completion set,
/// described for a failure message. The set is written out here as RFC 959 §5.4 gives
/// it, apart from the engine's own table: before a 1yz, 226/250 or any 4yz/5yz; after
/// one, only 226, 250, 425, 426, 451, 551, 552 and 421.
pub fn finals_outside_sequence(events: &[Event]) -> Vec<String> {
    const AFTER_1YZ: [u16; 8] = [226, 250, 425, 426, 451, 551, 552, 421];
    transfers(events)
        .iter()
        .filter_map(|t| {
            let code = t.final_code?;
            let before = &t.replies[..t.replies.len().saturating_sub(1)];
            let c = code.get();
            let ok = if before.iter().any(|r| r.is_preliminary()) {
                AFTER_1YZ.contains(&c)
            } else {
                matches!(c, 226 | 250 | 400..=599)
            };
            (!ok).then(|| format!("{} {:?} ended by {code}", t.command_name(), t.replies))
        })
        .collect()
}

/// A session on the default addresses, logged in (USER, PASS, TYPE I).
pub fn logged_in() -> FtpSim {
    let mut s = FtpSim::default_v4();
    s.connect();
    s.login("alice", "pw");
    s
}

/// Every reply code a transfer got, in order.
pub fn codes(t: &TransferRecord) -> Vec<u16> {
    t.replies.iter().map(|c| c.get()).collect()
}

/// Who tore the transfer's data connection down first, and how.
pub fn close_of(t: &TransferRecord) -> Option<(Role, CloseHow)> {
    t.data
        .as_ref()
        .and_then(|d| d.first_close)
        .map(|c| (c.by, c.how))
}
