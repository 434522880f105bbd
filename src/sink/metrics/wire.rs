//! What the FTP engine sees on the wire (`ftp_*`): commands, replies, transfers by
//! outcome and cause, sessions, data bytes, TLS, anomalies. The engine counts through
//! `ftp::Counters`; finished records are counted by `Wire::event`.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};

use super::Metrics;
use super::family::{counter, counter_vec, counts, gauge, histogram, histogram_vec, preset};
use crate::ftp::{
    AbortCause, Anomaly, Bound, CloseHow, Counters, EndReason, Event, Outcome, ReplyCode, Role,
    Verb,
};

/// Reply codes whose series exist from the start, so that rates and alerts work
/// before the first one is seen.
const PRESET_CODES: &[u16] = &[
    125, 150, 200, 220, 221, 226, 227, 229, 230, 250, 331, 421, 425, 426, 450, 451, 500, 530, 550,
    552,
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

/// Final codes of failed and aborted transfers whose series exist from the start.
const PRESET_FAILURES: [&str; 6] = ["421", "425", "426", "451", "550", "552"];

const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];
const LAG_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

#[derive(Clone)]
pub struct Wire {
    replies: IntCounterVec,
    commands: IntCounterVec,
    transfers: IntCounterVec,
    aborts: IntCounterVec,
    tls_data: IntCounterVec,
    interruptions: IntCounterVec,
    failures: IntCounterVec,
    /// The two children of `ftp_data_bytes_total`, resolved once: bumped per packet.
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
    /// `ftpwatch_bounds_hit_total`, shared with the connection table.
    bounds: IntCounterVec,
}

impl Wire {
    pub fn new(r: &Registry, bounds: IntCounterVec) -> Self {
        let data_bytes = counter_vec(
            r,
            "ftp_data_bytes_total",
            "Bytes carried by FTP data connections (download = server to client).",
            &["direction"],
        );
        let w = Wire {
            replies: counter_vec(
                r,
                "ftp_replies_total",
                "FTP replies, by reply code and class (multi-line replies count once), and by origin: server (as seen from the server's end), or proxy (written by `ftpwatch proxy` itself).",
                &["class", "code", "origin"],
            ),
            commands: counter_vec(
                r,
                "ftp_commands_total",
                "FTP commands seen, by verb (unknown verbs as \"other\").",
                &["command"],
            ),
            transfers: counter_vec(
                r,
                "ftp_transfers_total",
                "Transfers finished, by command and outcome (completed, aborted = 426, failed = other 4xx/5xx, incomplete = no final reply).",
                &["command", "outcome"],
            ),
            aborts: counter_vec(
                r,
                "ftp_transfer_aborts_total",
                "Transfers aborted with 426, by cause taken from the data connection's teardown.",
                &["cause"],
            ),
            tls_data: counter_vec(
                r,
                "ftp_tls_data_connections_total",
                "Data connections of encrypted (AUTH TLS) sessions, inferred from their hosts and time, by their first teardown (who and how; none: it ended unseen).",
                &["first_close"],
            ),
            interruptions: counter_vec(
                r,
                "ftp_transfer_interruptions_total",
                "Transfers broken without a 426: failed after they started, or incomplete (no final reply) with their data connection reset, closed early or stalled, or after an ABOR; by outcome and cause.",
                &["outcome", "cause"],
            ),
            failures: counter_vec(
                r,
                "ftp_transfer_failures_total",
                "Transfers aborted or failed, by final reply code.",
                &["code"],
            ),
            download_bytes: data_bytes.with_label_values(&["download"]),
            upload_bytes: data_bytes.with_label_values(&["upload"]),
            transfer_duration: histogram_vec(
                r,
                "ftp_transfer_duration_seconds",
                "Time from a transfer command to its final reply, by outcome.",
                &["outcome"],
                DURATION_BUCKETS,
            ),
            teardown_lag: histogram(
                r,
                "ftp_abort_teardown_lag_seconds",
                "For 426 replies: time from the data connection's first FIN or RST to the 426 (0 when the teardown came after the reply).",
                LAG_BUCKETS,
            ),
            sessions: counter_vec(
                r,
                "ftp_sessions_total",
                "Control sessions ended, by how they ended.",
                &["end_reason"],
            ),
            sessions_active: gauge(
                r,
                "ftp_sessions_active",
                "Control sessions being followed now.",
            ),
            data_conns_active: gauge(
                r,
                "ftp_data_connections_active",
                "Data connections open now.",
            ),
            tls_sessions: counter(
                r,
                "ftp_tls_sessions_total",
                "Sessions that switched to TLS (AUTH TLS/SSL answered 234); their commands are not visible while it lasts.",
            ),
            ccc_sessions: counter(
                r,
                "ftp_tls_ccc_sessions_total",
                "TLS sessions whose control connection returned to cleartext (CCC, RFC 4217); their commands are parsed again from there.",
            ),
            encrypted_bytes: counter(
                r,
                "ftp_encrypted_control_bytes_total",
                "Control-connection bytes not parsed because the session is encrypted.",
            ),
            anomalies: counter_vec(
                r,
                "ftp_anomalies_total",
                "Protocol anomalies, by kind.",
                &["kind"],
            ),
            bounds,
        };
        w.preset();
        w
    }

    fn preset(&self) {
        for c in PRESET_CODES {
            let code = ReplyCode::new(*c).expect("preset codes are valid");
            self.replies
                .with_label_values(&[code.class_label(), &c.to_string(), "server"]);
        }
        preset(
            &self.commands,
            Verb::TRANSFERS
                .iter()
                .chain(&PRESET_VERBS)
                .map(|v| v.as_str()),
        );
        for v in Verb::TRANSFERS {
            for o in Outcome::ALL {
                self.transfers.with_label_values(&[v.as_str(), o.as_str()]);
            }
        }
        preset(&self.aborts, AbortCause::ALL.map(AbortCause::as_str));
        for o in [Outcome::Failed, Outcome::Incomplete] {
            for c in AbortCause::ALL {
                self.interruptions
                    .with_label_values(&[o.as_str(), c.as_str()]);
            }
        }
        preset(&self.failures, PRESET_FAILURES);
        for o in Outcome::ALL {
            self.transfer_duration.with_label_values(&[o.as_str()]);
        }
        preset(&self.sessions, EndReason::ALL.map(EndReason::as_str));
        preset(&self.anomalies, Anomaly::ALL.iter().map(|a| a.as_str()));
        preset(&self.tls_data, TLS_DATA_CLOSES);
        preset(&self.bounds, Bound::ALL.iter().map(|b| b.as_str()));
    }

    /// Count what a finished record says.
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
            Event::EncryptedData(r) => {
                let label = r
                    .data
                    .first_close
                    .map_or("none", |c| tls_data_close(c.by, c.how));
                self.tls_data.with_label_values(&[label]).inc();
            }
        }
    }
}

/// `ftp_tls_data_connections_total`'s label values.
pub const TLS_DATA_CLOSES: [&str; 5] = [
    "client_fin",
    "client_rst",
    "server_fin",
    "server_rst",
    "none",
];

fn tls_data_close(by: Role, how: CloseHow) -> &'static str {
    match (by, how) {
        (Role::Client, CloseHow::Rst) => "client_rst",
        (Role::Server, CloseHow::Rst) => "server_rst",
        (Role::Client, _) => "client_fin",
        (Role::Server, _) => "server_fin",
    }
}

impl Wire {
    /// A reply the inline proxy wrote itself (never one of the server's).
    pub fn proxy_reply(&self, code: ReplyCode) {
        let mut buf = itoa::Buffer::new();
        self.replies
            .with_label_values(&[code.class_label(), buf.format(code.get()), "proxy"])
            .inc();
    }
}

// Read-backs for the text report.
impl Metrics {
    pub fn anomaly_counts(&self) -> Vec<(&'static str, u64)> {
        let kinds: Vec<&'static str> = Anomaly::ALL.iter().map(|a| a.as_str()).collect();
        counts(&self.wire.anomalies, &kinds)
    }

    pub fn tls_sessions_total(&self) -> u64 {
        self.wire.tls_sessions.get()
    }
}

impl Counters for Metrics {
    fn command(&mut self, verb: Verb) {
        self.wire.commands.with_label_values(&[verb.as_str()]).inc();
    }

    fn reply(&mut self, code: ReplyCode) {
        let mut buf = itoa::Buffer::new();
        self.wire
            .replies
            .with_label_values(&[code.class_label(), buf.format(code.get()), "server"])
            .inc();
    }

    fn anomaly(&mut self, kind: Anomaly) {
        self.wire
            .anomalies
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    fn bound_hit(&mut self, bound: Bound) {
        self.wire.bounds.with_label_values(&[bound.as_str()]).inc();
    }

    fn sessions_active(&mut self, delta: i64) {
        self.wire.sessions_active.add(delta);
    }

    fn tls_session(&mut self) {
        self.wire.tls_sessions.inc();
    }

    fn ccc_session(&mut self) {
        self.wire.ccc_sessions.inc();
    }

    fn data_connections_active(&mut self, delta: i64) {
        self.wire.data_conns_active.add(delta);
    }

    fn data_bytes(&mut self, to_client: bool, bytes: u64) {
        if to_client {
            self.wire.download_bytes.inc_by(bytes);
        } else {
            self.wire.upload_bytes.inc_by(bytes);
        }
    }

    fn encrypted_bytes(&mut self, bytes: u64) {
        self.wire.encrypted_bytes.inc_by(bytes);
    }
}
