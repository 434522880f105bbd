//! `ftpwatch proxy`: the operating-system side of the inline proxy (listeners, the
//! event log, signals, the HTTP exporter shared with live mode) around the library's
//! `ftpwatch::proxy`.
//!
//! Threads: the tokio runtime (relays, the HTTP server, signals) and one analysis
//! thread that owns the engine. SIGTERM/SIGINT: stop accepting, let sessions finish for
//! at most `--drain` seconds, close the rest, flush the event log. SIGHUP: reopen it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ftpwatch::ftp::{Engine, Timestamp};
use ftpwatch::pipeline::Settings;
use ftpwatch::proxy::{self, Analysis, Feed, Shared};
use ftpwatch::sink::Metrics;
use ftpwatch::sink::eventlog::LogOptions;
use ftpwatch::sink::exporter;
use ftpwatch::sink::recent::Recent;

use crate::live::EXIT_ENVIRONMENT;
use crate::logfile::LogTarget;

/// Everything `ftpwatch proxy` was asked to do, checked.
#[derive(Debug)]
pub struct ProxyConfig {
    pub proxy: proxy::Config,
    pub ftp_listen: Vec<SocketAddr>,
    pub ftps_listen: Vec<SocketAddr>,
    pub listen: SocketAddr,
    pub events: Option<String>,
    pub drain: Duration,
    pub settings: Settings,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ftpwatch: {msg}");
    ExitCode::from(EXIT_ENVIRONMENT)
}

fn clock() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_nanos(d.as_nanos() as u64)
}

/// Pending connections the kernel queues per listener: a burst of clients (a cron job
/// starting hundreds of sessions) is queued rather than dropped and retried after 1 s.
const BACKLOG: i32 = 1024;

fn listen(at: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(at), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if at.is_ipv6() {
        // [::] takes IPv4 clients too, as the default address promises.
        s.set_only_v6(false)?;
    }
    s.bind(&at.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

fn bind(at: SocketAddr, what: &str) -> Result<std::net::TcpListener, String> {
    let l = listen(at).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied && at.port() < 1024 {
            format!(
                "cannot listen on {at} ({what}): {e}; a port below 1024 needs CAP_NET_BIND_SERVICE"
            )
        } else {
            format!("cannot listen on {at} ({what}): {e}")
        }
    })?;
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {at} ({what}): {e}"))?;
    Ok(l)
}

/// The proxy's TLS in one line, for the landing page and the start-up message; an
/// unverified server certificate is said plainly.
fn tls_summary(t: &proxy::TlsConfig) -> String {
    let client = if t.client_side.is_some() {
        if t.require_tls {
            "clients: TLS required"
        } else {
            "clients: AUTH TLS offered"
        }
    } else {
        "clients: no TLS (no --tls-cert)"
    };
    let server = match (t.upstream, t.upstream_implicit) {
        (proxy::UpstreamTls::Off, _) => "server: TLS off",
        (_, true) => "server: implicit TLS",
        (proxy::UpstreamTls::Auto, _) => "server: TLS when offered",
        (proxy::UpstreamTls::Required, _) => "server: TLS required",
    };
    let verify = if t.upstream != proxy::UpstreamTls::Off && t.upstream_insecure {
        "; server certificates NOT verified (--upstream-insecure)"
    } else {
        ""
    };
    format!("TLS: {client}; {server}{verify}")
}

pub fn run(cfg: ProxyConfig) -> ExitCode {
    let mut ftp = Vec::new();
    for at in &cfg.ftp_listen {
        match bind(*at, "FTP") {
            Ok(l) => ftp.push((l, proxy::Listener::Ftp)),
            Err(e) => return fail(e),
        }
    }
    for at in &cfg.ftps_listen {
        match bind(*at, "implicit FTPS") {
            Ok(l) => ftp.push((l, proxy::Listener::ImplicitFtps)),
            Err(e) => return fail(e),
        }
    }
    let http = match bind(cfg.listen, "HTTP") {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let log = match LogTarget::open(cfg.events.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            let path = cfg.events.as_deref().unwrap_or_default();
            return fail(format_args!("cannot open the event log {path}: {e}"));
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ftpwatch-relay")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };

    let (metrics, proxy_metrics) = Metrics::with_proxy();
    let (feed, rx) = Feed::new(clock);
    let reopen = Arc::new(AtomicBool::new(false));
    let heartbeat = Arc::new(AtomicU64::new(clock().secs()));
    let recent = Recent::default();
    let mut analysis = Analysis::new(
        Engine::new(cfg.settings.engine.clone()),
        metrics.clone(),
        proxy_metrics.clone(),
        log,
        LogOptions::of(&cfg.settings.engine),
    );
    analysis.log_mut().set_recent(recent.clone());
    let (reopen_a, beat_a) = (reopen.clone(), heartbeat.clone());
    let analysis_thread = std::thread::Builder::new()
        .name("ftpwatch-analysis".into())
        .spawn(move || {
            proxy::run_analysis(analysis, rx, clock, |log| {
                beat_a.store(clock().secs(), Ordering::Relaxed);
                if reopen_a.swap(false, Ordering::Relaxed) {
                    match log.get_mut().reopen() {
                        Ok(()) => eprintln!("ftpwatch: event log reopened"),
                        Err(e) => eprintln!("ftpwatch: reopening the event log: {e}"),
                    }
                }
                if let Some(e) = log.take_error() {
                    eprintln!("ftpwatch: writing the event log: {e}");
                }
            })
        })
        .expect("spawning the analysis thread");

    let mut listening: Vec<String> = cfg
        .ftp_listen
        .iter()
        .map(|a| format!("ftp://{a}"))
        .chain(
            cfg.ftps_listen
                .iter()
                .map(|a| format!("ftps://{a} (implicit TLS)")),
        )
        .collect();
    listening.push(tls_summary(&cfg.proxy.tls));
    let target = match &cfg.proxy.upstream {
        proxy::Upstream::Fixed(h) => format!("upstream {h}"),
        proxy::Upstream::Transparent { allow } => {
            let nets: Vec<String> = allow.iter().map(|c| c.to_string()).collect();
            format!("transparent, to {}", nets.join(", "))
        }
    };
    eprintln!(
        "ftpwatch {}: proxying FTP on {} ({target}); metrics on http://{}/metrics",
        env!("CARGO_PKG_VERSION"),
        cfg.ftp_listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.listen
    );
    let drain = cfg.drain;
    let served = rt.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (accept_tx, accept_rx) = tokio::sync::watch::channel(true);
        let shared = Arc::new(Shared::new(cfg.proxy, feed, proxy_metrics, stop_rx));
        for (l, kind) in ftp {
            let l = tokio::net::TcpListener::from_std(l)?;
            tokio::spawn(proxy::accept_loop(
                l,
                kind,
                shared.clone(),
                accept_rx.clone(),
            ));
        }
        let http_stop = Arc::new(AtomicBool::new(false));
        let state = exporter::AppState {
            metrics,
            heartbeat,
            watching: Arc::new(listening),
            mode: "proxy",
            started: Instant::now(),
            recent,
        };
        let http = tokio::net::TcpListener::from_std(http)?;
        let exporter = tokio::spawn(exporter::serve(http, state, http_stop.clone()));
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => reopen.store(true, Ordering::Relaxed),
            }
        }
        // Drain: no new sessions; running ones get `drain` to finish.
        let _ = accept_tx.send(false);
        let until = Instant::now() + drain;
        eprintln!(
            "ftpwatch: stopping; {} session(s) open, waiting up to {}s",
            shared.sessions_open(),
            drain.as_secs()
        );
        while shared.sessions_open() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop_tx.send(true);
        // Let closed sessions report their end before the runtime goes.
        let until = Instant::now() + Duration::from_secs(1);
        while shared.sessions_open() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        http_stop.store(true, Ordering::Relaxed);
        let _ = exporter.await;
        Ok::<(), std::io::Error>(())
    });
    // Every task (and with them every sender of the feed) goes with the runtime; the
    // analysis thread then sees the end of its input, finishes and flushes.
    rt.shutdown_timeout(Duration::from_millis(500));
    crate::live::await_analysis(&analysis_thread, Duration::from_secs(3));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
