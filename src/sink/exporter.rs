//! The HTTP side of the metrics sink: `/metrics` (Prometheus text format), `/` (a
//! landing page), and `/healthz`. It runs on a tokio runtime of its own; capture and
//! analysis never do. Live capture and, later, the proxy serve through it.
//!
//! Exposed on a gateway, it must not be the weak point: at most `MAX_CONNECTIONS`
//! connections at once (more are closed at once and counted), a client that does not
//! send its request headers within `HEADER_TIMEOUT` is dropped, and no connection lives
//! longer than `CONNECTION_LIFETIME`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

use super::landing;
use super::metrics::{self, Metrics};
use super::recent::Recent;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Metrics,
    /// Unix seconds of the analysis loop's last turn.
    pub heartbeat: Arc<AtomicU64>,
    /// What is watched, for the landing page (interfaces, or the proxy's listeners).
    pub watching: Arc<Vec<String>>,
    /// `live` or `proxy`.
    pub mode: &'static str,
    pub started: Instant,
    /// The last troubled transfers, fed by the event log.
    pub recent: Recent,
}

/// Accept and serve connections until `stop` is set.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let rejected = state.metrics.http_rejected_counter();
    let app = router(state);
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        let (stream, _) = match accepted {
            Err(_) => continue, // no client: look at `stop` again
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                // Out of descriptors and the like: wait a little rather than spin.
                eprintln!("ftpwatch: accepting an HTTP connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            rejected.inc();
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // hyper's header timeout starts with the first byte; a client that sends
            // nothing at all is dropped here.
            if tokio::time::timeout(HEADER_TIMEOUT, stream.readable())
                .await
                .is_err()
            {
                drop(permit);
                return;
            }
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(permit);
        });
    }
    Ok(())
}

/// The analysis loop turns at least every 200 ms; this much silence means it is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(10);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(exposition))
        .route("/healthz", get(healthz))
        .route("/api/recent", get(api_recent))
        .with_state(state)
}

async fn exposition(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
        .into_response()
}

fn page(s: &AppState) -> landing::Page<'_> {
    landing::Page {
        mode: s.mode,
        watching: &s.watching,
        uptime: s.started.elapsed(),
        now: SystemTime::now(),
        health: landing::health(s.mode, &s.watching, &s.metrics),
        recent: s.recent.snapshot(),
    }
}

async fn landing(State(s): State<AppState>) -> Html<String> {
    Html(landing::render(&page(&s)).into_string())
}

async fn api_recent(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        landing::api(&page(&s)).to_string(),
    )
        .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let beat = s.heartbeat.load(Ordering::Relaxed);
    if now.saturating_sub(beat) <= STUCK_AFTER.as_secs() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "analysis loop stuck\n").into_response()
    }
}
