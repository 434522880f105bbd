//! Packets and where they came from (`ftpwatch_*`): packets and bytes read, packets
//! that gave no TCP segment, corrupt capture-file records, snapshot-length cuts, and
//! each interface's state and kernel drops.
//!
//! The reasons a packet or a record is skipped belong to the decoder (`decode::Skip`)
//! and the capture reader (`capture::SkippedRecord`), which this sink does not import:
//! their labels are named here too, so that every series exists from the start, and a
//! test in `pipeline` keeps the two lists the same.

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGaugeVec, Registry};

use super::Metrics;
use super::family::{counter, counter_vec, counts, float_gauge, gauge_vec, preset};

/// The labels of `decode::Skip`, in its order.
pub const PACKET_SKIP_REASONS: [&str; 6] = [
    "unknown_link_type",
    "not_ip",
    "not_tcp",
    "ip_fragment",
    "truncated_headers",
    "malformed",
];

/// The labels of `capture::SkippedRecord`, in its order.
pub const RECORD_SKIP_REASONS: [&str; 3] = ["empty", "inconsistent_length", "unknown_interface"];

#[derive(Clone)]
pub struct Capture {
    packets: IntCounter,
    bytes: IntCounter,
    skipped: IntCounterVec,
    truncated: IntCounter,
    records_skipped: IntCounterVec,
    kernel_drops: IntCounterVec,
    capture_up: IntGaugeVec,
    interface_errors: IntCounterVec,
    last_packet: Gauge,
}

impl Capture {
    pub fn new(r: &Registry) -> Self {
        let c = Capture {
            packets: counter(
                r,
                "ftpwatch_packets_total",
                "Packets read from the capture.",
            ),
            bytes: counter(
                r,
                "ftpwatch_bytes_total",
                "Bytes of packets read from the capture (as captured).",
            ),
            skipped: counter_vec(
                r,
                "ftpwatch_packets_skipped_total",
                "Packets that gave no TCP segment, by reason.",
                &["reason"],
            ),
            truncated: counter(
                r,
                "ftpwatch_truncated_packets_total",
                "TCP segments whose payload was cut by the capture's snapshot length.",
            ),
            records_skipped: counter_vec(
                r,
                "ftpwatch_capture_records_skipped_total",
                "Capture-file records skipped as corrupt, by reason.",
                &["reason"],
            ),
            kernel_drops: counter_vec(
                r,
                "ftpwatch_kernel_drops_total",
                "Packets the kernel dropped before ftpwatch could read them, by interface.",
                &["interface"],
            ),
            capture_up: gauge_vec(
                r,
                "ftpwatch_capture_up",
                "1 when capture on the interface is running, 0 when it is not.",
                &["interface"],
            ),
            interface_errors: counter_vec(
                r,
                "ftpwatch_capture_errors_total",
                "Capture errors (interface gone, read failures), by interface.",
                &["interface"],
            ),
            last_packet: float_gauge(
                r,
                "ftpwatch_last_packet_timestamp_seconds",
                "Timestamp of the latest packet read.",
            ),
        };
        preset(&c.skipped, PACKET_SKIP_REASONS);
        preset(&c.records_skipped, RECORD_SKIP_REASONS);
        c
    }
}

impl Metrics {
    pub fn packet(&self, captured_bytes: usize, ts_secs: f64) {
        self.capture.packets.inc();
        self.capture.bytes.inc_by(captured_bytes as u64);
        self.capture.last_packet.set(ts_secs);
    }

    pub fn packet_skipped(&self, reason: &'static str) {
        self.capture.skipped.with_label_values(&[reason]).inc();
    }

    pub fn truncated_packet(&self) {
        self.capture.truncated.inc();
    }

    pub fn record_skipped(&self, reason: &'static str) {
        self.capture
            .records_skipped
            .with_label_values(&[reason])
            .inc();
    }

    pub fn kernel_drops(&self, interface: &str, n: u64) {
        self.capture
            .kernel_drops
            .with_label_values(&[interface])
            .inc_by(n);
    }

    /// Also creates the interface's drop and error series (at 0), so that rates and
    /// alerts over them work before the first drop.
    pub fn capture_up(&self, interface: &str, up: bool) {
        let c = &self.capture;
        c.capture_up.with_label_values(&[interface]).set(up as i64);
        c.kernel_drops.with_label_values(&[interface]);
        c.interface_errors.with_label_values(&[interface]);
    }

    pub fn capture_error(&self, interface: &str) {
        self.capture
            .interface_errors
            .with_label_values(&[interface])
            .inc();
    }

    // Read-backs for the text report.
    pub fn packets_total(&self) -> u64 {
        self.capture.packets.get()
    }

    pub fn bytes_total(&self) -> u64 {
        self.capture.bytes.get()
    }

    pub fn skipped_by_reason(&self) -> Vec<(&'static str, u64)> {
        counts(&self.capture.skipped, &PACKET_SKIP_REASONS)
    }

    pub fn records_skipped_by_reason(&self) -> Vec<(&'static str, u64)> {
        counts(&self.capture.records_skipped, &RECORD_SKIP_REASONS)
    }

    pub fn truncated_total(&self) -> u64 {
        self.capture.truncated.get()
    }
}
