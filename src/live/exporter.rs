//! The HTTP side: `/metrics` (Prometheus text format), `/` (a landing page), and
//! `/healthz`. It runs on a tokio runtime of its own; capture and analysis never do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Unix seconds of the analysis loop's last turn.
    pub heartbeat: Arc<AtomicU64>,
    pub interfaces: Arc<Vec<String>>,
}

/// The analysis loop turns at least every 200 ms; this much silence means it is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(10);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&s.registry.gather(), &mut buf) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            buf,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn landing(State(s): State<AppState>) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>ftpwatch</title></head><body>\
         <h1>ftpwatch {}</h1>\
         <p>Watching FTP on: {}</p>\
         <ul><li><a href=\"/metrics\">/metrics</a> (Prometheus)</li>\
         <li><a href=\"/healthz\">/healthz</a></li></ul>\
         </body></html>\n",
        env!("CARGO_PKG_VERSION"),
        s.interfaces.join(", ")
    ))
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
