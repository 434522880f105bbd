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
mod exporter;
pub mod logfile;

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::capture::FrameTime;
use crate::capture::live::pnet_backend::PnetOpener;
use crate::capture::live::replay::ReplayOpener;
use crate::capture::live::ring::RingOpener;
use crate::capture::live::{LiveCapture, Opener};
use crate::cli::{Backend, LiveArgs};
use crate::pipeline::{Pipeline, Settings};
use crate::sink::eventlog::LogOptions;
use crate::sink::{EventLog, Metrics};
use logfile::LogTarget;

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

pub struct LiveConfig {
    pub interfaces: Vec<String>,
    pub debug: bool,
    pub threads: usize,
    pub settings: Settings,
    pub log: LogOptions,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ftpwatch: {msg}");
    ExitCode::from(EXIT_ENVIRONMENT)
}

pub fn run(args: &LiveArgs) -> ExitCode {
    let settings = match args.analysis.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ftpwatch: {e}");
            return ExitCode::from(2);
        }
    };
    if args.threads == 0 || args.threads > 64 {
        eprintln!("ftpwatch: --threads must be 1 to 64");
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => return fail(format_args!("cannot listen on {}: {e}", args.listen)),
    };
    let events = match LogTarget::open(args.events.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            let path = args.events.as_deref().unwrap_or_default();
            return fail(format_args!("cannot open the event log {path}: {e}"));
        }
    };
    let opener: Arc<dyn Opener> = match (&args.replay, args.backend) {
        (Some(path), _) => Arc::new(ReplayOpener { path: path.clone() }),
        (None, Backend::Ring) => Arc::new(RingOpener {
            promiscuous: !args.no_promisc,
            threads: args.threads,
            ..RingOpener::default()
        }),
        (None, Backend::Pnet) => Arc::new(PnetOpener {
            promiscuous: !args.no_promisc,
            threads: args.threads,
            ..PnetOpener::default()
        }),
    };
    let os = OsInput {
        opener,
        clock: FrameTime::now,
        listener,
        events,
    };
    let interfaces = if args.replay.is_some() {
        vec!["replay".to_string()]
    } else {
        args.interfaces.clone()
    };
    let cfg = LiveConfig {
        interfaces,
        debug: args.analysis.debug,
        threads: if args.replay.is_some() {
            1
        } else {
            args.threads
        },
        settings,
        log: LogOptions {
            redact_user: args.analysis.redact_user,
        },
    };
    run_with(os, cfg)
}

/// The runner itself, on whatever `os` provides.
pub fn run_with(os: OsInput, cfg: LiveConfig) -> ExitCode {
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
    let heartbeat = Arc::new(AtomicU64::new((os.clock)().secs()));
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
    let registry = metrics.registry().clone();
    let http_rejected = metrics.http_rejected_counter();
    let ports = cfg
        .settings
        .flow
        .control_ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let analysis = analysis::Analysis {
        pipeline: if cfg.debug {
            Pipeline::new(cfg.settings, metrics).with_debug(Box::new(std::io::stderr()))
        } else {
            Pipeline::new(cfg.settings, metrics)
        },
        log: EventLog::new(os.events, cfg.log),
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
        registry,
        heartbeat,
        interfaces: Arc::new(cfg.interfaces.clone()),
        rejected: http_rejected,
    };
    let served = serve(os.listener, state, shutdown.clone(), reopen);
    shutdown.store(true, Ordering::Relaxed);
    // The analysis thread flushes what it holds; give it the rest of the budget.
    let deadline = Instant::now() + SHUTDOWN_BUDGET;
    while !analysis_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !analysis_thread.is_finished() {
        eprintln!("ftpwatch: analysis did not finish in time; exiting anyway");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
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
