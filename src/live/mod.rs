//! `ftpwatch live`: capture on interfaces, analyse with the same pipeline as `read`,
//! serve the metrics over HTTP, write the event log.
//!
//! Threads: one per capture handle (interface × `--threads`), one analysis thread that
//! owns the pipeline, and the main thread, which runs the HTTP server and the signal
//! handlers on a small tokio runtime. Capture never runs on the async runtime.
//!
//! Everything the operating system provides comes in through one struct, `OsInput`
//! (bandwhich's pattern), so that tests can run the whole runner on a replayed capture
//! without root.

mod analysis;
mod capture;

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::logfile::LogTarget;
use ftpwatch::capture::FrameTime;
use ftpwatch::capture::live::pnet_backend::PnetOpener;
use ftpwatch::capture::live::replay::ReplayOpener;
use ftpwatch::capture::live::ring::RingOpener;
use ftpwatch::capture::live::{LiveCapture, Opener};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::eventlog::LogOptions;
use ftpwatch::sink::exporter;
use ftpwatch::sink::recent::Recent;
use ftpwatch::sink::{EventLog, Metrics};

/// Exit status for a problem with the environment (privileges, interface, port).
pub const EXIT_ENVIRONMENT: u8 = 1;
/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(1500);

/// All input from the operating system.
pub struct OsInput {
    pub opener: Arc<dyn Opener>,
    pub clock: fn() -> FrameTime,
    pub listener: TcpListener,
    pub events: LogTarget,
}

/// How frames are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// AF_PACKET through a TPACKET_V3 ring.
    Ring,
    /// AF_PACKET through pnet.
    Pnet,
    /// A capture file (or `-`) played in as if it were an interface.
    Replay(String),
}

/// Everything `ftpwatch live` was asked to do, checked.
#[derive(Debug)]
pub struct LiveConfig {
    pub interfaces: Vec<String>,
    pub source: Source,
    pub promiscuous: bool,
    /// Capture threads per interface (1 to 64).
    pub threads: usize,
    /// The HTTP server's address (/metrics, /, /healthz).
    pub listen: SocketAddr,
    /// The event log's path; `-` for standard output.
    pub events: Option<String>,
    pub settings: Settings,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ftpwatch: {msg}");
    ExitCode::from(EXIT_ENVIRONMENT)
}

/// Open what the operating system provides (listener, event log, capture), then run.
pub fn run(cfg: LiveConfig) -> ExitCode {
    let listener = match TcpListener::bind(cfg.listen) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on {}: {e}", cfg.listen)),
    };
    let events = match LogTarget::open(cfg.events.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            let path = cfg.events.as_deref().unwrap_or_default();
            return fail(format_args!("cannot open the event log {path}: {e}"));
        }
    };
    let (promiscuous, threads) = (cfg.promiscuous, cfg.threads);
    let opener: Arc<dyn Opener> = match &cfg.source {
        Source::Replay(path) => Arc::new(ReplayOpener { path: path.clone() }),
        Source::Ring => Arc::new(RingOpener {
            promiscuous,
            threads,
            ..RingOpener::default()
        }),
        Source::Pnet => Arc::new(PnetOpener {
            promiscuous,
            threads,
            ..PnetOpener::default()
        }),
    };
    let os = OsInput {
        opener,
        clock: FrameTime::now,
        listener,
        events,
    };
    run_with(os, cfg)
}

/// The runner itself, on whatever `os` provides.
fn run_with(os: OsInput, cfg: LiveConfig) -> ExitCode {
    let metrics = Metrics::new();
    // Open every capture before anything starts: a missing interface or privilege is
    // a startup error, with one clear line.
    let mut handles: Vec<(String, usize, Box<dyn LiveCapture>)> = Vec::new();
    for iface in &cfg.interfaces {
        for member in 0..cfg.threads {
            match os.opener.open(iface, member) {
                Ok(c) => handles.push((iface.clone(), member, c)),
                Err(e) => return fail(e),
            }
        }
        metrics.capture_up(iface, true);
    }
    let local: SocketAddr = match os.listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let reopen = Arc::new(AtomicBool::new(false));
    let heartbeat = Arc::new(AtomicU64::new(analysis::unix_secs((os.clock)())));
    let (tx, rx) = std::sync::mpsc::sync_channel(256);
    let control_ports: Arc<[u16]> = cfg.settings.flow.control_ports.clone().into();
    for (interface, member, c) in handles {
        let t = capture::CaptureThread {
            interface,
            member,
            opener: os.opener.clone(),
            clock: os.clock,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            tx: tx.clone(),
            control_ports: control_ports.clone(),
        };
        std::thread::Builder::new()
            .name("ftpwatch-capture".into())
            .spawn(move || t.run(c))
            .expect("spawning a capture thread");
    }
    drop(tx);
    let ports = cfg
        .settings
        .flow
        .control_ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let recent = Recent::default();
    let mut log = EventLog::new(os.events, LogOptions::of(&cfg.settings.engine));
    log.set_recent(recent.clone());
    let trace = cfg.settings.engine.trace;
    let pipeline = Pipeline::new(cfg.settings, metrics.clone());
    let analysis = analysis::Analysis {
        pipeline: if trace {
            pipeline.with_debug(Box::new(std::io::stderr()))
        } else {
            pipeline
        },
        log,
        clock: os.clock,
        shutdown: shutdown.clone(),
        reopen: reopen.clone(),
        heartbeat: heartbeat.clone(),
    };
    let analysis_thread = std::thread::Builder::new()
        .name("ftpwatch-analysis".into())
        .spawn(move || analysis.run(rx))
        .expect("spawning the analysis thread");
    eprintln!(
        "ftpwatch {}: watching {} for FTP on ports {}; metrics on http://{local}/metrics",
        env!("CARGO_PKG_VERSION"),
        cfg.interfaces.join(", "),
        ports,
    );
    let state = exporter::AppState {
        metrics,
        heartbeat,
        watching: Arc::new(cfg.interfaces.clone()),
        mode: "live",
        started: Instant::now(),
        recent,
    };
    let served = serve(os.listener, state, shutdown.clone(), reopen);
    shutdown.store(true, Ordering::Relaxed);
    // The analysis thread flushes what it holds; give it the rest of the budget.
    await_analysis(&analysis_thread, SHUTDOWN_BUDGET);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Wait up to `budget` for the analysis thread to flush and end (live and proxy).
pub fn await_analysis(thread: &std::thread::JoinHandle<()>, budget: Duration) {
    let deadline = Instant::now() + budget;
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !thread.is_finished() {
        eprintln!("ftpwatch: analysis did not finish in time; exiting anyway");
    }
}

/// Serve HTTP until SIGTERM or SIGINT; SIGHUP asks for the event log to be reopened.
fn serve(
    listener: TcpListener,
    state: exporter::AppState,
    shutdown: Arc<AtomicBool>,
    reopen: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop = shutdown.clone();
        let signals = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => reopen.store(true, Ordering::Relaxed),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if stop.load(Ordering::Relaxed) { break; }
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        let served = exporter::serve(listener, state, shutdown).await;
        signals.abort();
        served
    })
}
