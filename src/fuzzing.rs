//! Entry points for the fuzz targets (`fuzz/`), shared with the corpus regression
//! test (`tests/fuzz_corpus.rs`), which replays every committed input through them on
//! stable Rust. Each takes arbitrary bytes, must not panic, and asserts the parser's
//! own invariants (bounds, redaction), so that a violation is a crash the fuzzer finds.

use crate::capture::{FileSource, FrameSource, Next};
use crate::ftp::Event;
use crate::ftp::command;
use crate::ftp::endpoint;
use crate::ftp::line::LineFramer;
use crate::ftp::reply::{ReplyAssembler, ReplyStep};
use crate::pipeline::{Pipeline, Settings};
use crate::sink::{EventLog, EventSink, Metrics, Report, eventlog::LogOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Split `data` into deliveries at positions given by its own bytes, so that lines
/// cross delivery boundaries in every way.
fn deliveries(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = (rest[0] as usize % 64 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Line framing: no line longer than the cap, memory held never above it, and the
/// bytes of all untruncated lines plus their endings account for the input.
pub fn line_framer(data: &[u8]) {
    const CAP: usize = 64;
    let mut f = LineFramer::new();
    for (i, chunk) in deliveries(data).enumerate() {
        if i % 7 == 6 {
            f.gap();
        }
        let mut lines = f.feed(chunk, CAP);
        while let Some(line) = lines.next() {
            assert!(line.bytes.len() <= CAP, "line above the cap");
        }
        assert!(f.buffered() <= 1024, "framer holds {} bytes", f.buffered());
    }
}

/// Commands: parse every line; PASS arguments never come out.
pub fn command(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        if let Some(cmd) = command::parse(line) {
            let shown = format!("{cmd} {cmd:?}");
            if cmd.verb == command::Verb::PASS {
                assert!(cmd.arg().is_none());
                assert!(shown.starts_with("PASS ****"), "PASS shown as {shown:?}");
            }
        }
    }
}

/// Replies with multi-line state: codes in range, the assembler's state constant-size.
pub fn reply(data: &[u8]) {
    let mut a = ReplyAssembler::new();
    for line in data.split(|&b| b == b'\n') {
        if line.first() == Some(&0xff) {
            a.gap();
            continue;
        }
        if let ReplyStep::Reply { code, .. } = a.line(line) {
            assert!((100..=699).contains(&code.get()));
        }
    }
}

/// PASV, EPSV, PORT and EPRT parsers, and the size parsers.
pub fn endpoints(data: &[u8]) {
    if let Ok(a) = endpoint::parse_pasv_reply(data) {
        assert_ne!(a.port(), 0);
    }
    if let Ok(p) = endpoint::parse_epsv_reply(data) {
        assert_ne!(p, 0);
    }
    if let Ok(a) = endpoint::parse_port_arg(data) {
        assert_ne!(a.port(), 0);
    }
    if let Ok(a) = endpoint::parse_eprt_arg(data) {
        assert_ne!(a.port(), 0);
    }
    let _ = endpoint::parse_announced_size(data);
    let _ = endpoint::parse_size_reply(data);
}

/// The pcap/pcapng reader: reads to the end or to an error, never panics, and every
/// frame lies within what was read.
pub fn capture_file(data: &[u8]) {
    let Ok(mut src) = FileSource::new(data) else {
        return;
    };
    let mut frames = 0usize;
    loop {
        match src.next_frame() {
            Ok(Next::Frame(f)) => {
                assert!(f.data.len() <= data.len());
                frames += 1;
                assert!(frames <= data.len());
            }
            Ok(Next::Skipped(_)) => {}
            Ok(Next::End) | Err(_) => return,
        }
    }
}

const SECRET: &str = "fuzz-secret";

/// Whether `out` shows `SECRET` as the argument of a PASS: right after `pass` (any
/// case) and blanks, also as escaped in JSON (`\t`) or by the anomaly printer.
/// This is what ftpwatch promises never to print, wherever the PASS line turns up (a
/// USER line run into it, a peer echoing it, roles taken the wrong way round). The
/// secret text alone may rightly appear: `PASS"fuzz-secret` is an unknown verb to
/// every server, `RETR fuzz-secret` a file name, and a capture's bytes can put `PA`
/// in a TCP header right before `SS fuzz-secret` in the payload.
fn shows_password(out: &str) -> bool {
    let low = out.to_ascii_lowercase();
    low.match_indices(SECRET).any(|(i, _)| {
        let mut before = &low[..i];
        let mut blanks = 0;
        loop {
            if let Some(b) = before.strip_suffix([' ', '\t']) {
                before = b;
            } else if let Some(b) = before
                .strip_suffix("\\t")
                .or_else(|| before.strip_suffix("\\u{9}"))
            {
                before = b;
            } else {
                break;
            }
            blanks += 1;
        }
        blanks > 0 && before.ends_with("pass")
    })
}

/// An event sink feeding both the JSON event log and the summary report.
struct AllOutputs {
    log: EventLog<Vec<u8>>,
    report: Report,
}

impl EventSink for AllOutputs {
    fn event(&mut self, e: &Event) {
        self.log.event(e);
        self.report.event(e);
    }
}

/// A `Write` whose bytes stay readable after the pipeline took it for its debug log.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The whole pipeline from raw capture bytes to every output: the event log, the
/// summary, the metrics and the debug trace. None shows a PASS line's argument.
pub fn pipeline(data: &[u8]) {
    let mut settings = Settings::default();
    settings.flow.max_flows = 64;
    settings.engine.max_sessions = 32;
    settings.engine.trace = true;
    let debug = Shared::default();
    let mut p = Pipeline::new(settings, Metrics::new()).with_debug(Box::new(debug.clone()));
    let mut out = AllOutputs {
        log: EventLog::new(Vec::new(), LogOptions::default()),
        report: Report::default(),
    };
    if let Ok(mut src) = FileSource::new(data) {
        while let Ok(next) = src.next_frame() {
            match next {
                Next::Frame(f) => p.frame(&f, &mut out),
                Next::Skipped(r) => p.skipped_record(r),
                Next::End => break,
            }
        }
    }
    p.finish(&mut out);
    let outputs = [
        (
            "event log",
            String::from_utf8_lossy(out.log.get_mut()).into_owned(),
        ),
        ("summary", out.report.render(p.metrics())),
        ("metrics", p.metrics().render()),
        (
            "debug log",
            String::from_utf8_lossy(&debug.0.lock().unwrap()).into_owned(),
        ),
    ];
    for (name, text) in outputs {
        assert!(
            !shows_password(&text),
            "the {name} shows a password: {text}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_what_follows_pass_and_blanks() {
        assert!(shows_password("x PASS fuzz-secret"));
        assert!(shows_password(r#""user":"ali\u{fffd}pass\tfuzz-secret""#));
        assert!(shows_password(r"reply line: 9\u{0}PASS \u{9}FUZZ-SECRET"));
        assert!(!shows_password("PASS ****"));
        assert!(!shows_password(r#"PASS"fuzz-secret"#));
        assert!(!shows_password("PASSfuzz-secret"));
        assert!(!shows_password("SS fuzz-secret"));
        assert!(!shows_password("RETR fuzz-secret"));
        assert!(!shows_password("fuzz-secret"));
    }

    #[test]
    fn entry_points_accept_trivial_inputs() {
        for f in [
            line_framer,
            command,
            reply,
            endpoints,
            capture_file,
            pipeline,
        ] {
            f(b"");
            f(b"\xff\xff\xff\xff");
            f(b"PASS fuzz-secret\r\n226 ok\r\n");
        }
    }
}
