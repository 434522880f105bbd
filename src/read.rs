//! `ftpwatch read`: capture files through the pipeline, then a report, JSON lines or
//! the metrics.

use std::io::{self, Write};
use std::process::ExitCode;

use ftpwatch::capture::{FileSource, FrameSource, Next};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::eventlog::LogOptions;
use ftpwatch::sink::html::HtmlReport;
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
    /// Where to write the HTML report too.
    pub html: Option<std::path::PathBuf>,
}

/// The chosen output's sink, and the HTML report's when asked for.
struct Both<'a> {
    main: &'a mut dyn EventSink,
    html: Option<&'a mut HtmlReport>,
}

impl EventSink for Both<'_> {
    fn event(&mut self, e: &ftpwatch::ftp::Event) {
        self.main.event(e);
        if let Some(h) = self.html.as_deref_mut() {
            h.event(e);
        }
    }
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
    let mut html = cfg.html.as_ref().map(|_| HtmlReport::default());
    let (whole, write) = match cfg.output {
        Output::Json => {
            let mut log = EventLog::new(stdout.lock(), opts);
            let mut both = Both {
                main: &mut log,
                html: html.as_mut(),
            };
            let whole = analyse(&cfg.files, &mut pipeline, &mut both);
            (whole, log.take_error().map_or(Ok(()), Err))
        }
        Output::Metrics => {
            let mut both = Both {
                main: &mut Discard,
                html: html.as_mut(),
            };
            let whole = analyse(&cfg.files, &mut pipeline, &mut both);
            let text = pipeline.metrics().render();
            (whole, stdout.lock().write_all(text.as_bytes()))
        }
        Output::Report => {
            let mut report = Report::default();
            let mut both = Both {
                main: &mut report,
                html: html.as_mut(),
            };
            let whole = analyse(&cfg.files, &mut pipeline, &mut both);
            let text = report.render(pipeline.metrics());
            (whole, stdout.lock().write_all(text.as_bytes()))
        }
    };
    if let (Some(path), Some(h)) = (&cfg.html, &html) {
        let page = h.render(pipeline.metrics(), &cfg.files).into_string();
        if let Err(e) = std::fs::write(path, page) {
            eprintln!("ftpwatch: writing the HTML report {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
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
