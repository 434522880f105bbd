//! The loopback proxy harness shared by tests/proxy.rs and tests/proxy_tls.rs: a proxy
//! with its analysis thread and event log in memory, on 127.0.0.1.

#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ftpwatch::ftp::{Engine, Timestamp};
use ftpwatch::proxy::{self, Analysis, Config, Feed, Shared, Upstream};
use ftpwatch::sink::Metrics;
use ftpwatch::sink::eventlog::LogOptions;
use ftpwatch::sink::metrics::sample;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn clock() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp::from_nanos(d.as_nanos() as u64)
}

/// A running proxy: its address, its metrics, and (after `stop`) its event log.
pub struct Running {
    pub at: SocketAddr,
    pub metrics: Metrics,
    pub log: Log,
    pub stop: watch::Sender<bool>,
    pub accepting: watch::Sender<bool>,
    pub analysis: std::thread::JoinHandle<()>,
    pub shared: Arc<Shared>,
}

pub async fn start(upstream: SocketAddr, tune: impl FnOnce(&mut Config)) -> Running {
    let mut cfg = Config {
        upstream: Upstream::Fixed(upstream.to_string()),
        connect_timeout: Duration::from_secs(2),
        accept_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    tune(&mut cfg);
    let (metrics, pm) = Metrics::with_proxy();
    let (feed, rx) = Feed::new(clock);
    let log = Log::default();
    let engine_cfg = ftpwatch::ftp::Config {
        abort_settle: Duration::from_millis(300),
        ..Default::default()
    };
    let analysis = Analysis::new(
        Engine::new(engine_cfg),
        metrics.clone(),
        pm.clone(),
        log.clone(),
        LogOptions::default(),
    );
    let analysis = std::thread::spawn(move || proxy::run_analysis(analysis, rx, clock, |_| {}));
    let (stop, stop_rx) = watch::channel(false);
    let (accepting, acc_rx) = watch::channel(true);
    let shared = Arc::new(Shared::new(cfg, feed, pm, stop_rx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(proxy::accept_loop(
        listener,
        proxy::Listener::Ftp,
        shared.clone(),
        acc_rx,
    ));
    Running {
        at,
        metrics,
        log,
        stop,
        accepting,
        analysis,
        shared,
    }
}

impl Running {
    /// Wait (bounded) for `series` to read `want`: the engine counts on its own thread,
    /// a moment after the relay passed the bytes on.
    pub async fn expect(&self, series: &str, want: f64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = sample(&self.metrics.render(), series);
            if got == Some(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} = {got:?}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait for sessions to end, stop, and return the event log's records.
    pub async fn finish(self) -> Vec<Value> {
        for _ in 0..100 {
            if self.shared.sessions_open() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let 426s settle (300 ms here) before the engine finishes.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let _ = self.accepting.send(false);
        let _ = self.stop.send(true);
        drop(self.shared);
        // Tasks still holding the feed are gone once their sockets closed; the
        // analysis thread ends when the last sender does.
        let deadline = std::time::Instant::now() + WAIT;
        while !self.analysis.is_finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(self.analysis.is_finished(), "the analysis thread ended");
        let text = String::from_utf8(self.log.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
