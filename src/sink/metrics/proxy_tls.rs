//! The proxy's TLS metrics (`ftpwatch_proxy_tls_*`): handshakes, resumptions, unclean
//! shutdowns and versions, by leg (`client`: the FTP client and the proxy; `server`:
//! the proxy and the FTP server) and channel (`control`, `data`). Every label's values
//! are fixed below.

use prometheus::{IntCounterVec, Registry};

use super::family::counter_vec;

pub const LEGS: [&str; 2] = ["client", "server"];
pub const CHANNELS: [&str; 2] = ["control", "data"];
/// A handshake's result: `ok`, or why it failed.
pub const HANDSHAKE_RESULTS: [&str; 6] = [
    "ok",
    "certificate",
    "alert",
    "protocol",
    "connection",
    "timeout",
];
/// A protected data connection's handshake, against its control connection's session.
pub const RESUMPTION_RESULTS: [&str; 3] = ["resumed", "full", "refused"];
pub const VERSIONS: [&str; 3] = ["TLSv1.2", "TLSv1.3", "other"];

#[derive(Clone)]
pub struct ProxyTlsMetrics {
    handshakes: IntCounterVec,
    resumptions: IntCounterVec,
    unclean: IntCounterVec,
    versions: IntCounterVec,
}

impl ProxyTlsMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let m = ProxyTlsMetrics {
            handshakes: counter_vec(
                r,
                "ftpwatch_proxy_tls_handshakes_total",
                "TLS handshakes of the proxy, by leg, channel and result (ok, or why it failed).",
                &["leg", "channel", "result"],
            ),
            resumptions: counter_vec(
                r,
                "ftpwatch_proxy_tls_data_resumptions_total",
                "Protected data connections by whether their handshake resumed the control connection's TLS session, by leg.",
                &["leg", "result"],
            ),
            unclean: counter_vec(
                r,
                "ftpwatch_proxy_tls_unclean_shutdowns_total",
                "TLS connections whose peer closed TCP without a TLS close_notify first, by leg and channel.",
                &["leg", "channel"],
            ),
            versions: counter_vec(
                r,
                "ftpwatch_proxy_tls_protocol_versions_total",
                "Completed TLS handshakes by negotiated protocol version, by leg.",
                &["leg", "version"],
            ),
        };
        for leg in LEGS {
            for ch in CHANNELS {
                for res in HANDSHAKE_RESULTS {
                    m.handshakes.with_label_values(&[leg, ch, res]);
                }
                m.unclean.with_label_values(&[leg, ch]);
            }
            for res in RESUMPTION_RESULTS {
                m.resumptions.with_label_values(&[leg, res]);
            }
            for v in VERSIONS {
                m.versions.with_label_values(&[leg, v]);
            }
        }
        m
    }

    /// A handshake ended: `Ok(version)`, or the failure's reason.
    pub fn handshake(&self, leg: &str, channel: &str, result: Result<&str, &str>) {
        let label = match result {
            Ok(version) => {
                self.versions.with_label_values(&[leg, version]).inc();
                "ok"
            }
            Err(reason) => reason,
        };
        self.handshakes
            .with_label_values(&[leg, channel, label])
            .inc();
    }

    pub fn resumption(&self, leg: &str, result: &str) {
        self.resumptions.with_label_values(&[leg, result]).inc();
    }

    pub fn unclean_shutdown(&self, leg: &str, channel: &str) {
        self.unclean.with_label_values(&[leg, channel]).inc();
    }
}
