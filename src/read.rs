//! `ftpwatch read`: capture files through the pipeline, then a report, JSON lines or
//! the metrics.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::capture::{FileSource, FrameSource, Next};
use crate::cli::ReadArgs;
use crate::pipeline::Pipeline;
use crate::sink::eventlog::LogOptions;
use crate::sink::{Discard, EventLog, EventSink, Metrics, Report};

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

pub fn run(args: &ReadArgs) -> ExitCode {
    let settings = match args.analysis.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ftpwatch: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut pipeline = Pipeline::new(settings, Metrics::new());
    if args.analysis.debug {
        pipeline = pipeline.with_debug(Box::new(io::stderr()));
    }
    let opts = LogOptions {
        redact_user: args.analysis.redact_user,
    };
    let stdout = io::stdout();
    let (whole, write) = if args.json {
        let mut log = EventLog::new(stdout.lock(), opts);
        let whole = analyse(&args.files, &mut pipeline, &mut log);
        (whole, log.take_error().map_or(Ok(()), Err))
    } else if args.metrics {
        let whole = analyse(&args.files, &mut pipeline, &mut Discard);
        (
            whole,
            stdout
                .lock()
                .write_all(pipeline.metrics().render().as_bytes()),
        )
    } else {
        let mut report = Report::default();
        let whole = analyse(&args.files, &mut pipeline, &mut report);
        let text = report.render(pipeline.metrics());
        (whole, stdout.lock().write_all(text.as_bytes()))
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
