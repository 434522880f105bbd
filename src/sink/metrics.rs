//! Every metric ftpwatch exports, defined once, with the prometheus crate. `read
//! --metrics` prints this registry; `live` serves it on /metrics.
//!
//! Naming follows Prometheus conventions: `ftp_` for what is seen on the wire,
//! `ftpwatch_` for the monitor's own health, base units, `_total` on counters. Every
//! label takes values from a fixed set (enums, reply codes 100-699, configured
//! interfaces), never addresses, users or file names.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::capture::SkippedRecord;
use crate::decode::Skip;
use crate::ftp::{
    AbortCause, Anomaly, Bound, Counters, EndReason, Event, Eviction, Outcome, ReplyCode, Verb,
};

/// Reply codes whose series exist from the start, so that rates and alerts work
/// before the first one is seen.
const PRESET_CODES: &[u16] = &[
    125, 150, 200, 220, 221, 226, 227, 229, 230, 250, 331, 421, 425, 426, 450, 451, 500, 530, 550,
    552,
];

const TRANSFER_VERBS: [Verb; 7] = [
    Verb::RETR,
    Verb::STOR,
    Verb::STOU,
    Verb::APPE,
    Verb::LIST,
    Verb::NLST,
    Verb::MLSD,
];

/// Command series that exist from the start (beside the transfer verbs).
const PRESET_VERBS: [Verb; 10] = [
    Verb::USER,
    Verb::PASS,
    Verb::QUIT,
    Verb::PASV,
    Verb::EPSV,
    Verb::PORT,
    Verb::EPRT,
    Verb::ABOR,
    Verb::AUTH,
    Verb::Other,
];

const END_REASONS: [EndReason; 6] = [
    EndReason::Quit,
    EndReason::Fin,
    EndReason::Rst,
    EndReason::Timeout,
    EndReason::Evicted,
    EndReason::CaptureEnd,
];

/// Cheap to clone: every field is a handle onto the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    // What is seen on the wire.
    replies: IntCounterVec,
    commands: IntCounterVec,
    transfers: IntCounterVec,
    aborts: IntCounterVec,
    interruptions: IntCounterVec,
    failures: IntCounterVec,
    data_bytes: IntCounterVec,
    /// Children of `data_bytes` resolved once: they are bumped per data packet.
    download_bytes: IntCounter,
    upload_bytes: IntCounter,
    transfer_duration: HistogramVec,
    teardown_lag: Histogram,
    sessions: IntCounterVec,
    sessions_active: IntGauge,
    data_conns_active: IntGauge,
    tls_sessions: IntCounter,
    ccc_sessions: IntCounter,
    encrypted_bytes: IntCounter,
    anomalies: IntCounterVec,
    // The monitor's own health.
    packets: IntCounter,
    bytes: IntCounter,
    skipped: IntCounterVec,
    truncated: IntCounter,
    records_skipped: IntCounterVec,
    gaps: IntCounter,
    gap_bytes: IntCounter,
    bounds: IntCounterVec,
    evicted: IntCounterVec,
    flows_active: IntGauge,
    duplicates: IntCounter,
    kernel_drops: IntCounterVec,
    capture_up: IntGaugeVec,
    interface_errors: IntCounterVec,
    http_rejected: IntCounter,
    last_packet: Gauge,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let m = Metrics {
            replies: counter_vec(
                &r,
                "ftp_replies_total",
                "FTP replies seen, by reply code and class (multi-line replies count once).",
                &["class", "code"],
            ),
            commands: counter_vec(
                &r,
                "ftp_commands_total",
                "FTP commands seen, by verb (unknown verbs as \"other\").",
                &["command"],
            ),
            transfers: counter_vec(
                &r,
                "ftp_transfers_total",
                "Transfers finished, by command and outcome (completed, aborted = 426, failed = other 4xx/5xx, incomplete = no final reply).",
                &["command", "outcome"],
            ),
            aborts: counter_vec(
                &r,
                "ftp_transfer_aborts_total",
                "Transfers aborted with 426, by cause taken from the data connection's teardown.",
                &["cause"],
            ),
            interruptions: counter_vec(
                &r,
                "ftp_transfer_interruptions_total",
                "Transfers broken without a 426: failed after they started, or incomplete (no final reply) with their data connection reset, closed early or stalled, or after an ABOR; by outcome and cause.",
                &["outcome", "cause"],
            ),
            failures: counter_vec(
                &r,
                "ftp_transfer_failures_total",
                "Transfers aborted or failed, by final reply code.",
                &["code"],
            ),
            data_bytes: counter_vec(
                &r,
                "ftp_data_bytes_total",
                "Bytes carried by FTP data connections (download = server to client).",
                &["direction"],
            ),
            download_bytes: IntCounter::new("unregistered", "placeholder").expect("valid"),
            upload_bytes: IntCounter::new("unregistered", "placeholder").expect("valid"),
            transfer_duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "ftp_transfer_duration_seconds",
                        "Time from a transfer command to its final reply, by outcome.",
                    )
                    .buckets(vec![
                        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
                    ]),
                    &["outcome"],
                )
                .expect("valid metric");
                r.register(Box::new(h.clone())).expect("registered once");
                h
            },
            teardown_lag: {
                let h = Histogram::with_opts(
                    HistogramOpts::new("ftp_abort_teardown_lag_seconds", "For 426 replies: time from the data connection's first FIN or RST to the 426 (0 when the teardown came after the reply).")
                        .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]),
                ).expect("valid metric");
                r.register(Box::new(h.clone())).expect("registered once");
                h
            },
            sessions: counter_vec(
                &r,
                "ftp_sessions_total",
                "Control sessions ended, by how they ended.",
                &["end_reason"],
            ),
            sessions_active: gauge(
                &r,
                "ftp_sessions_active",
                "Control sessions being followed now.",
            ),
            data_conns_active: gauge(
                &r,
                "ftp_data_connections_active",
                "Data connections open now.",
            ),
            tls_sessions: counter(
                &r,
                "ftp_tls_sessions_total",
                "Sessions that switched to TLS (AUTH TLS/SSL answered 234); their commands are not visible while it lasts.",
            ),
            ccc_sessions: counter(
                &r,
                "ftp_tls_ccc_sessions_total",
                "TLS sessions whose control connection returned to cleartext (CCC, RFC 4217); their commands are parsed again from there.",
            ),
            encrypted_bytes: counter(
                &r,
                "ftp_encrypted_control_bytes_total",
                "Control-connection bytes not parsed because the session is encrypted.",
            ),
            anomalies: counter_vec(
                &r,
                "ftp_anomalies_total",
                "Protocol anomalies, by kind.",
                &["kind"],
            ),
            packets: counter(
                &r,
                "ftpwatch_packets_total",
                "Packets read from the capture.",
            ),
            bytes: counter(
                &r,
                "ftpwatch_bytes_total",
                "Bytes of packets read from the capture (as captured).",
            ),
            skipped: counter_vec(
                &r,
                "ftpwatch_packets_skipped_total",
                "Packets that gave no TCP segment, by reason.",
                &["reason"],
            ),
            truncated: counter(
                &r,
                "ftpwatch_truncated_packets_total",
                "TCP segments whose payload was cut by the capture's snapshot length.",
            ),
            records_skipped: counter_vec(
                &r,
                "ftpwatch_capture_records_skipped_total",
                "Capture-file records skipped as corrupt, by reason.",
                &["reason"],
            ),
            gaps: counter(
                &r,
                "ftpwatch_reassembly_gaps_total",
                "Holes in reassembled control streams (bytes the capture missed).",
            ),
            gap_bytes: counter(
                &r,
                "ftpwatch_reassembly_gap_bytes_total",
                "Bytes missing from reassembled control streams.",
            ),
            bounds: counter_vec(
                &r,
                "ftpwatch_bounds_hit_total",
                "Times a memory bound was hit, by bound.",
                &["bound"],
            ),
            evicted: counter_vec(
                &r,
                "ftpwatch_flows_evicted_total",
                "Connections dropped from the table before they ended, by reason.",
                &["reason"],
            ),
            flows_active: gauge(&r, "ftpwatch_flows_active", "Connections in the table now."),
            duplicates: counter(
                &r,
                "ftpwatch_duplicate_packets_total",
                "Segments identical to one seen within 10 ms, analysed once: copies from capturing a gateway on two interfaces, and bursts of identical RSTs.",
            ),
            kernel_drops: counter_vec(
                &r,
                "ftpwatch_kernel_drops_total",
                "Packets the kernel dropped before ftpwatch could read them, by interface.",
                &["interface"],
            ),
            capture_up: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "ftpwatch_capture_up",
                        "1 when capture on the interface is running, 0 when it is not.",
                    ),
                    &["interface"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            interface_errors: counter_vec(
                &r,
                "ftpwatch_capture_errors_total",
                "Capture errors (interface gone, read failures), by interface.",
                &["interface"],
            ),
            http_rejected: counter(
                &r,
                "ftpwatch_http_connections_rejected_total",
                "HTTP connections closed at once because the exporter already served its maximum.",
            ),
            last_packet: {
                let g = Gauge::new(
                    "ftpwatch_last_packet_timestamp_seconds",
                    "Timestamp of the latest packet read.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            registry: r,
        };
        let mut m = m;
        m.download_bytes = m.data_bytes.with_label_values(&["download"]);
        m.upload_bytes = m.data_bytes.with_label_values(&["upload"]);
        let build = IntGaugeVec::new(
            Opts::new(
                "ftpwatch_build_info",
                "Always 1; labels carry the ftpwatch version.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m.registry
            .register(Box::new(build))
            .expect("registered once");
        m.preset();
        m
    }

    /// Create the zero-valued series of every bounded label set.
    fn preset(&self) {
        for c in PRESET_CODES {
            let code = ReplyCode::new(*c).expect("preset codes are valid");
            self.replies
                .with_label_values(&[code.class_label(), &c.to_string()]);
        }
        for v in TRANSFER_VERBS.iter().chain(&PRESET_VERBS) {
            self.commands.with_label_values(&[v.as_str()]);
        }
        for v in TRANSFER_VERBS {
            for o in Outcome::ALL {
                self.transfers.with_label_values(&[v.as_str(), o.as_str()]);
            }
        }
        for c in AbortCause::ALL {
            self.aborts.with_label_values(&[c.as_str()]);
            for o in [Outcome::Failed, Outcome::Incomplete] {
                self.interruptions
                    .with_label_values(&[o.as_str(), c.as_str()]);
            }
        }
        for code in ["421", "425", "426", "451", "550", "552"] {
            self.failures.with_label_values(&[code]);
        }
        for d in ["download", "upload"] {
            self.data_bytes.with_label_values(&[d]);
        }
        for o in Outcome::ALL {
            self.transfer_duration.with_label_values(&[o.as_str()]);
        }
        for e in END_REASONS {
            self.sessions.with_label_values(&[e.as_str()]);
        }
        for a in Anomaly::ALL {
            self.anomalies.with_label_values(&[a.as_str()]);
        }
        for s in Skip::ALL {
            self.skipped.with_label_values(&[s.as_str()]);
        }
        for s in SkippedRecord::ALL {
            self.records_skipped.with_label_values(&[s.as_str()]);
        }
        for b in Bound::ALL {
            self.bounds.with_label_values(&[b.as_str()]);
        }
        for e in Eviction::ALL {
            self.evicted.with_label_values(&[e.as_str()]);
        }
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

    pub fn packet(&self, captured_bytes: usize, ts_secs: f64) {
        self.packets.inc();
        self.bytes.inc_by(captured_bytes as u64);
        self.last_packet.set(ts_secs);
    }

    pub fn packet_skipped(&self, why: Skip) {
        self.skipped.with_label_values(&[why.as_str()]).inc();
    }

    pub fn truncated_packet(&self) {
        self.truncated.inc();
    }

    pub fn record_skipped(&self, why: SkippedRecord) {
        self.records_skipped
            .with_label_values(&[why.as_str()])
            .inc();
    }

    pub fn kernel_drops(&self, interface: &str, n: u64) {
        self.kernel_drops.with_label_values(&[interface]).inc_by(n);
    }

    /// Also creates the interface's drop and error series (at 0), so that rates and
    /// alerts over them work before the first drop.
    pub fn capture_up(&self, interface: &str, up: bool) {
        self.capture_up
            .with_label_values(&[interface])
            .set(up as i64);
        self.kernel_drops.with_label_values(&[interface]);
        self.interface_errors.with_label_values(&[interface]);
    }

    /// The counter the exporter bumps for each connection it turns away.
    pub fn http_rejected_counter(&self) -> IntCounter {
        self.http_rejected.clone()
    }

    pub fn capture_error(&self, interface: &str) {
        self.interface_errors.with_label_values(&[interface]).inc();
    }

    /// Count what an engine event says.
    pub fn event(&self, e: &Event) {
        match e {
            Event::Transfer(t) => {
                self.transfers
                    .with_label_values(&[t.command_name(), t.outcome.as_str()])
                    .inc();
                let secs = t.end.seconds_after(t.start).max(0.0);
                self.transfer_duration
                    .with_label_values(&[t.outcome.as_str()])
                    .observe(secs);
                if matches!(t.outcome, Outcome::Aborted | Outcome::Failed)
                    && let Some(code) = t.final_code
                {
                    self.failures
                        .with_label_values(&[&code.get().to_string()])
                        .inc();
                }
                if let Some(cause) = t.interruption_cause {
                    self.interruptions
                        .with_label_values(&[t.outcome.as_str(), cause.as_str()])
                        .inc();
                }
                if let Some(cause) = t.abort_cause {
                    self.aborts.with_label_values(&[cause.as_str()]).inc();
                    if let Some(lag) = t.teardown_to_reply_seconds {
                        self.teardown_lag.observe(lag.max(0.0));
                    }
                }
            }
            Event::Session(s) => {
                self.sessions
                    .with_label_values(&[s.end_reason.as_str()])
                    .inc();
            }
            Event::Anomaly(_) => {} // counted when it happens, through `Counters`
        }
    }

    // Read-backs for the text report.
    pub fn packets_total(&self) -> u64 {
        self.packets.get()
    }

    pub fn bytes_total(&self) -> u64 {
        self.bytes.get()
    }

    pub fn skipped_by_reason(&self) -> Vec<(&'static str, u64)> {
        Skip::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    self.skipped.with_label_values(&[s.as_str()]).get(),
                )
            })
            .collect()
    }

    pub fn records_skipped_by_reason(&self) -> Vec<(&'static str, u64)> {
        SkippedRecord::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    self.records_skipped.with_label_values(&[s.as_str()]).get(),
                )
            })
            .collect()
    }

    pub fn truncated_total(&self) -> u64 {
        self.truncated.get()
    }

    pub fn gaps_total(&self) -> (u64, u64) {
        (self.gaps.get(), self.gap_bytes.get())
    }

    pub fn bounds_hit(&self) -> Vec<(&'static str, u64)> {
        Bound::ALL
            .iter()
            .map(|b| {
                (
                    b.as_str(),
                    self.bounds.with_label_values(&[b.as_str()]).get(),
                )
            })
            .collect()
    }

    pub fn evictions(&self) -> Vec<(&'static str, u64)> {
        Eviction::ALL
            .iter()
            .map(|e| {
                (
                    e.as_str(),
                    self.evicted.with_label_values(&[e.as_str()]).get(),
                )
            })
            .collect()
    }

    pub fn anomaly_counts(&self) -> Vec<(&'static str, u64)> {
        Anomaly::ALL
            .iter()
            .map(|a| {
                (
                    a.as_str(),
                    self.anomalies.with_label_values(&[a.as_str()]).get(),
                )
            })
            .collect()
    }

    pub fn duplicates_total(&self) -> u64 {
        self.duplicates.get()
    }

    pub fn tls_sessions_total(&self) -> u64 {
        self.tls_sessions.get()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters for Metrics {
    fn command(&mut self, verb: Verb) {
        self.commands.with_label_values(&[verb.as_str()]).inc();
    }

    fn reply(&mut self, code: ReplyCode) {
        let mut buf = itoa::Buffer::new();
        self.replies
            .with_label_values(&[code.class_label(), buf.format(code.get())])
            .inc();
    }

    fn anomaly(&mut self, kind: Anomaly) {
        self.anomalies.with_label_values(&[kind.as_str()]).inc();
    }

    fn bound_hit(&mut self, bound: Bound) {
        self.bounds.with_label_values(&[bound.as_str()]).inc();
    }

    fn sessions_active(&mut self, delta: i64) {
        self.sessions_active.add(delta);
    }

    fn tls_session(&mut self) {
        self.tls_sessions.inc();
    }

    fn ccc_session(&mut self) {
        self.ccc_sessions.inc();
    }

    fn data_connections_active(&mut self, delta: i64) {
        self.data_conns_active.add(delta);
    }

    fn data_bytes(&mut self, to_client: bool, bytes: u64) {
        if to_client {
            self.download_bytes.inc_by(bytes);
        } else {
            self.upload_bytes.inc_by(bytes);
        }
    }

    fn encrypted_bytes(&mut self, bytes: u64) {
        self.encrypted_bytes.inc_by(bytes);
    }

    fn gap(&mut self, bytes: u64) {
        self.gaps.inc();
        self.gap_bytes.inc_by(bytes);
    }

    fn flows_active(&mut self, delta: i64) {
        self.flows_active.add(delta);
    }

    fn flow_evicted(&mut self, why: Eviction) {
        self.evicted.with_label_values(&[why.as_str()]).inc();
    }

    fn duplicate(&mut self) {
        self.duplicates.inc();
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
}
