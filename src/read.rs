//! `ftpwatch read`: capture files through the pipeline, then a report, JSON lines or
//! the metrics.

use std::io::{self, Write};
use std::process::ExitCode;

use ftpwatch::capture::{FileSource, FrameSource, Next};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::eventlog::LogOptions;
use ftpwatch::sink::{Discard, EventLog, EventSink, Metrics, Report};

/// What `ftpwatch read` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The readable summary.
    Report,
    /// One JSON object per line.
    Json,
    /// The Prometheus text exposition.
    Metrics,
}

/// Everything `ftpwatch read` was asked to do, checked.
#[derive(Debug)]
pub struct ReadConfig {
    /// Capture files, read in this order; `-` for standard input.
    pub files: Vec<String>,
    pub output: Output,
    pub settings: Settings,
}

/// Exit status when the input is damaged (what came before the damage is reported).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Feed every file through `pipeline`; damage is reported on stderr, one line per file,
/// and analysis goes on with the next file. Returns whether all input was whole.
pub fn analyse(files: &[String], pipeline: &mut Pipeline, sink: &mut dyn EventSink) -> bool {
    let mut whole = true;
    for path in files {
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ftpwatch: {path}: {e}");
                whole = false;
                continue;
            }
        };
        loop {
            match src.next_frame() {
                Ok(Next::Frame(f)) => pipeline.frame(&f, sink),
                Ok(Next::Skipped(why)) => pipeline.skipped_record(why),
                Ok(Next::End) => break,
                Err(e) => {
                    eprintln!("ftpwatch: {path}: {e}");
                    whole = false;
                    break;
                }
            }
        }
    }
    pipeline.finish(sink);
    whole
}

pub fn run(cfg: ReadConfig) -> ExitCode {
    let opts = LogOptions::of(&cfg.settings.engine);
    let trace = cfg.settings.engine.trace;
    let mut pipeline = Pipeline::new(cfg.settings, Metrics::new());
    if trace {
        pipeline = pipeline.with_debug(Box::new(io::stderr()));
    }
    let stdout = io::stdout();
    let (whole, write) = match cfg.output {
        Output::Json => {
            let mut log = EventLog::new(stdout.lock(), opts);
            let whole = analyse(&cfg.files, &mut pipeline, &mut log);
            (whole, log.take_error().map_or(Ok(()), Err))
        }
        Output::Metrics => {
            let whole = analyse(&cfg.files, &mut pipeline, &mut Discard);
            let text = pipeline.metrics().render();
            (whole, stdout.lock().write_all(text.as_bytes()))
        }
        Output::Report => {
            let mut report = Report::default();
            let whole = analyse(&cfg.files, &mut pipeline, &mut report);
            let text = report.render(pipeline.metrics());
            (whole, stdout.lock().write_all(text.as_bytes()))
        }
    };
    if let Err(e) = write
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("ftpwatch: writing the output: {e}");
        return ExitCode::FAILURE;
    }
    if whole {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    }
}
