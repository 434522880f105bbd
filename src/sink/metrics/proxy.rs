//! The inline proxy's own metrics (`ftpwatch_proxy_*`), registered only by
//! `ftpwatch proxy`. Every label takes values from a fixed set: legs, directions,
//! failure reasons, and the few reply codes the proxy writes.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::ProxyTlsMetrics;
use super::family::{counter, counter_vec, gauge, preset};
use super::wire::Wire;
use crate::ftp::ReplyCode;

/// Why a connection attempt failed (upstream, or a data leg).
pub const CONNECT_FAILURES: [&str; 7] = [
    "refused",
    "timeout",
    "unreachable",
    "reset",
    "no_port",
    "tls",
    "other",
];
/// Why a session was turned away before it reached a server.
pub const SESSION_REFUSALS: [&str; 3] = ["max_sessions", "destination_refused", "no_original_dst"];
/// Why a data connection or request was refused.
pub const DATA_REFUSALS: [&str; 3] = ["wrong_peer", "bounce_third_party", "bounce_privileged_port"];
/// How a relayed session ended.
pub const SESSION_ENDS: [&str; 6] = [
    "closed",
    "client_reset",
    "server_reset",
    "idle_timeout",
    "shutdown",
    "upstream_unavailable",
];
/// The replies the proxy writes itself.
pub const OWN_REPLIES: [&str; 5] = ["421", "425", "500", "530", "534"];

#[derive(Clone)]
pub struct ProxyMetrics {
    sessions_active: IntGauge,
    sessions: IntCounter,
    sessions_refused: IntCounterVec,
    sessions_closed: IntCounterVec,
    upstream_failures: IntCounterVec,
    data_failures: IntCounterVec,
    data_refused: IntCounterVec,
    data_active: IntGauge,
    data_bytes: IntCounterVec,
    urgent: IntCounterVec,
    replies_written: IntCounterVec,
    replies_rewritten: IntCounter,
    pub tls: ProxyTlsMetrics,
    wire: Wire,
}

impl ProxyMetrics {
    pub(super) fn new(r: &Registry, wire: Wire) -> Self {
        let m = ProxyMetrics {
            sessions_active: gauge(
                r,
                "ftpwatch_proxy_sessions_active",
                "Control connections being relayed now.",
            ),
            sessions: counter(
                r,
                "ftpwatch_proxy_sessions_total",
                "Control connections relayed to a server.",
            ),
            sessions_refused: counter_vec(
                r,
                "ftpwatch_proxy_sessions_refused_total",
                "Client connections turned away before reaching a server, by reason.",
                &["reason"],
            ),
            sessions_closed: counter_vec(
                r,
                "ftpwatch_proxy_sessions_closed_total",
                "Relayed sessions that ended, by how.",
                &["reason"],
            ),
            upstream_failures: counter_vec(
                r,
                "ftpwatch_proxy_upstream_connect_failures_total",
                "Failed connections to the FTP server's control port, by reason.",
                &["reason"],
            ),
            data_failures: counter_vec(
                r,
                "ftpwatch_proxy_data_connect_failures_total",
                "Data connections that could not be set up, by leg (client or server side) and reason.",
                &["leg", "reason"],
            ),
            data_refused: counter_vec(
                r,
                "ftpwatch_proxy_data_refused_total",
                "Data connections from a peer other than the session's, and PORT/EPRT bounces, refused.",
                &["reason"],
            ),
            data_active: gauge(
                r,
                "ftpwatch_proxy_data_connections_active",
                "Data connections being relayed now.",
            ),
            data_bytes: counter_vec(
                r,
                "ftpwatch_proxy_data_bytes_total",
                "Bytes relayed on data connections, by leg (client or server side) and direction.",
                &["leg", "direction"],
            ),
            urgent: counter_vec(
                r,
                "ftpwatch_proxy_urgent_bytes_total",
                "TCP urgent bytes (Telnet Synch before ABOR) relayed with their urgent mark, by direction.",
                &["direction"],
            ),
            replies_written: counter_vec(
                r,
                "ftpwatch_proxy_replies_written_total",
                "Replies the proxy wrote itself (never a server's), by code.",
                &["code"],
            ),
            replies_rewritten: counter(
                r,
                "ftpwatch_proxy_replies_rewritten_total",
                "Server replies to data-channel commands rewritten to the proxy's own endpoint.",
            ),
            tls: ProxyTlsMetrics::new(r),
            wire,
        };
        preset(&m.sessions_refused, SESSION_REFUSALS);
        preset(&m.sessions_closed, SESSION_ENDS);
        preset(&m.upstream_failures, CONNECT_FAILURES);
        for leg in ["client", "server"] {
            for reason in CONNECT_FAILURES {
                m.data_failures.with_label_values(&[leg, reason]);
            }
            for dir in ["to_client", "to_server"] {
                m.data_bytes.with_label_values(&[leg, dir]);
            }
        }
        preset(&m.data_refused, DATA_REFUSALS);
        preset(&m.urgent, ["to_client", "to_server"]);
        preset(&m.replies_written, OWN_REPLIES);
        m
    }

    pub fn session_opened(&self) {
        self.sessions.inc();
        self.sessions_active.inc();
    }

    pub fn session_closed(&self, reason: &'static str) {
        self.sessions_active.dec();
        self.sessions_closed.with_label_values(&[reason]).inc();
    }

    pub fn session_refused(&self, reason: &'static str) {
        self.sessions_refused.with_label_values(&[reason]).inc();
    }

    pub fn upstream_failed(&self, reason: &'static str) {
        self.upstream_failures.with_label_values(&[reason]).inc();
        self.sessions_closed
            .with_label_values(&["upstream_unavailable"])
            .inc();
    }

    pub fn data_connect_failed(&self, leg: &'static str, reason: &'static str) {
        self.data_failures.with_label_values(&[leg, reason]).inc();
    }

    pub fn data_refused(&self, reason: &'static str) {
        self.data_refused.with_label_values(&[reason]).inc();
    }

    pub fn data_connection(&self, delta: i64) {
        self.data_active.add(delta);
    }

    /// `to_server`: bytes toward the server; on the client leg they were read from the
    /// client, on the server leg written to the server.
    pub fn data_bytes(&self, leg: &'static str, to_server: bool, n: u64) {
        let dir = if to_server { "to_server" } else { "to_client" };
        self.data_bytes.with_label_values(&[leg, dir]).inc_by(n);
    }

    pub fn urgent(&self, to_server: bool, n: u64) {
        let dir = if to_server { "to_server" } else { "to_client" };
        self.urgent.with_label_values(&[dir]).inc_by(n);
    }

    /// A reply of the proxy's own: counted here and in `ftp_replies_total{origin="proxy"}`.
    pub fn reply_written(&self, code: u16) {
        let mut buf = itoa::Buffer::new();
        self.replies_written
            .with_label_values(&[buf.format(code)])
            .inc();
        if let Some(code) = ReplyCode::new(code) {
            self.wire.proxy_reply(code);
        }
    }

    pub fn reply_rewritten(&self) {
        self.replies_rewritten.inc();
    }
}
