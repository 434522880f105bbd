//! Entry points for the fuzz targets (`fuzz/`), shared with the corpus regression
//! test (`tests/fuzz_corpus.rs`), which replays every committed input through them on
//! stable Rust. Each takes arbitrary bytes, must not panic, and asserts the parser's
//! own invariants (bounds, redaction), so that a violation is a crash the fuzzer finds.

use crate::capture::{FileSource, FrameSource, Next};
use crate::ftp::command;
use crate::ftp::endpoint;
use crate::ftp::line::LineFramer;
use crate::ftp::reply::{ReplyAssembler, ReplyStep};
use crate::pipeline::{Pipeline, Settings};
use crate::sink::{EventLog, Metrics, eventlog::LogOptions};

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
            let _ = cmd.verb.may_answer(426);
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

const SECRET: &[u8] = b"fuzz-secret";

/// Whether the input carries `SECRET` only ever as a password: at least once, and each
/// time right after `PASS` and blanks (any case). Otherwise the same text is also, say,
/// a file name or part of an unknown verb, and may rightly be shown as that.
fn secret_only_as_password(data: &[u8]) -> bool {
    let mut seen = false;
    for (i, w) in data.windows(SECRET.len()).enumerate() {
        if w != SECRET {
            continue;
        }
        seen = true;
        let before = &data[..i];
        let verb_end = before
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |p| p + 1);
        let blanks = before.len() - verb_end;
        if blanks == 0
            || verb_end < 4
            || !before[verb_end - 4..verb_end].eq_ignore_ascii_case(b"pass")
        {
            return false;
        }
    }
    seen
}

/// The whole pipeline from raw capture bytes to events and every output. When the
/// input sends `fuzz-secret` only as a password (`PASS fuzz-secret`), it appears in no
/// output; in the server's direction too, where it is masked as protocol text.
pub fn pipeline(data: &[u8]) {
    let mut settings = Settings::default();
    settings.flow.max_flows = 64;
    settings.engine.max_sessions = 32;
    let mut p = Pipeline::new(settings, Metrics::new());
    let mut log = EventLog::new(Vec::new(), LogOptions::default());
    if let Ok(mut src) = FileSource::new(data) {
        while let Ok(next) = src.next_frame() {
            match next {
                Next::Frame(f) => p.frame(&f, &mut log),
                Next::Skipped(r) => p.skipped_record(r),
                Next::End => break,
            }
        }
    }
    p.finish(&mut log);
    let metrics = p.metrics().render();
    if secret_only_as_password(data) {
        let json = String::from_utf8_lossy(log.get_mut());
        assert!(
            !json.contains("fuzz-secret"),
            "a password reached the event log"
        );
        assert!(
            !metrics.contains("fuzz-secret"),
            "a password reached the metrics"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_checked_only_where_it_is_a_password() {
        assert!(secret_only_as_password(b"x\xff\xf4PASS  fuzz-secret\r\n"));
        assert!(secret_only_as_password(
            b"pass\tfuzz-secret pass fuzz-secret"
        ));
        assert!(!secret_only_as_password(b"no secret here"));
        assert!(!secret_only_as_password(
            b"PASS fuzz-secret RETR fuzz-secret"
        ));
        assert!(!secret_only_as_password(b"PASS\"fuzz-secret"));
        assert!(!secret_only_as_password(b"PASSfuzz-secret"));
        assert!(!secret_only_as_password(b"fuzz-secret"));
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
