//! Every metric ftpwatch exports, defined once, with the prometheus crate, one module
//! per concern as node_exporter has a collector per concern: `wire` (what the FTP
//! engine sees: `ftp_*`), `table` (the connection table), `capture` (packets, capture
//! files and interfaces). `read --metrics` prints this registry; `live` serves it.
//!
//! Naming follows Prometheus conventions: `ftp_` for what is seen on the wire,
//! `ftpwatch_` for the monitor's own health, base units, `_total` on counters. Every
//! label takes values from a fixed set (the stages' enums, reply codes 100-699,
//! configured interfaces), never addresses, users or file names. Every series of a
//! fixed set exists from the start (at 0), so that rates and alerts work before the
//! first event.

mod capture;
mod family;
pub use capture::{PACKET_SKIP_REASONS, RECORD_SKIP_REASONS};
mod proxy;
pub use proxy::ProxyMetrics;
mod proxy_tls;
pub use proxy_tls::ProxyTlsMetrics;
mod table;
mod wire;

use prometheus::{Encoder, IntCounter, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::ftp::Event;
use capture::Capture;
use family::{counter, counter_vec};
use table::Table;
use wire::Wire;

/// Cheap to clone: every field is a handle onto the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    wire: Wire,
    table: Table,
    capture: Capture,
    http_rejected: IntCounter,
}

/// The media type of `render`'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new(
                "ftpwatch_build_info",
                "Always 1; labels carry the ftpwatch version.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build)).expect("registered once");
        let bounds = counter_vec(
            &registry,
            "ftpwatch_bounds_hit_total",
            "Times a memory bound was hit, by bound.",
            &["bound"],
        );
        Metrics {
            wire: Wire::new(&registry, bounds.clone()),
            table: Table::new(&registry, bounds),
            capture: Capture::new(&registry),
            http_rejected: counter(
                &registry,
                "ftpwatch_http_connections_rejected_total",
                "HTTP connections closed at once because the exporter already served its maximum.",
            ),
            registry,
        }
    }

    /// The registry with the inline proxy's metrics too (`ftpwatch proxy`).
    pub fn with_proxy() -> (Self, ProxyMetrics) {
        let m = Metrics::new();
        let p = ProxyMetrics::new(&m.registry, m.wire.clone());
        (m, p)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of a valid registry");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// Count what an engine event says.
    pub fn event(&self, e: &Event) {
        self.wire.event(e);
    }

    /// The counter the exporter bumps for each connection it turns away.
    pub fn http_rejected_counter(&self) -> IntCounter {
        self.http_rejected.clone()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The value of one series (exact name and labels, e.g. `ftp_replies_total{class="4xx",code="426"}`)
/// in a text exposition: how tests and benchmarks read back what ftpwatch served.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_reads_exactly_the_named_series() {
        let text = "# HELP x_total X.\nx_total 3\nx_total_other 9\nftp_replies_total{class=\"4xx\",code=\"426\"} 2\n";
        assert_eq!(sample(text, "x_total"), Some(3.0));
        assert_eq!(
            sample(text, "ftp_replies_total{class=\"4xx\",code=\"426\"}"),
            Some(2.0)
        );
        assert_eq!(sample(text, "x"), None);
        assert_eq!(sample(text, "ftp_replies_total"), None);
    }

    #[test]
    fn fixed_label_sets_exist_from_the_start() {
        let text = Metrics::new().render();
        for series in [
            "ftp_transfer_aborts_total{cause=\"stalled\"}",
            "ftp_transfer_interruptions_total{cause=\"client_reset\",outcome=\"incomplete\"}",
            "ftp_transfers_total{command=\"MLSD\",outcome=\"failed\"}",
            "ftpwatch_flows_evicted_total{reason=\"pending_transfer\"}",
            "ftpwatch_bounds_hit_total{bound=\"reassembly_buffer\"}",
            "ftpwatch_bounds_hit_total{bound=\"line_length\"}",
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series}");
        }
    }
}
