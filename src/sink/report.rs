//! The readable summary of `ftpwatch read`: sessions, transfers by outcome, one line
//! per abort, failures, anomalies, and the capture's health.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::EventSink;
use super::metrics::Metrics;
use crate::ftp::{CloseHow, Event, Outcome, Timestamp, TransferRecord};

/// Abort and failure lines kept for the report; beyond this only counts grow.
const MAX_LINES: usize = 1000;

#[derive(Default)]
pub struct Report {
    sessions: u64,
    tls_sessions: u64,
    /// Data connections of encrypted sessions (inferred), and those reset.
    tls_data: u64,
    tls_data_reset: u64,
    by_outcome: BTreeMap<Outcome, u64>,
    by_command: BTreeMap<(&'static str, Outcome), u64>,
    aborts: Vec<TransferRecord>,
    failures: Vec<TransferRecord>,
    dropped_lines: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

impl EventSink for Report {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Session(s) => {
                self.sessions += 1;
                self.tls_sessions += s.tls as u64;
                self.first = Some(self.first.map_or(s.start, |f| f.min(s.start)));
                self.last = Some(self.last.map_or(s.end, |l| l.max(s.end)));
            }
            Event::Transfer(t) => {
                *self.by_outcome.entry(t.outcome).or_default() += 1;
                *self
                    .by_command
                    .entry((t.command_name(), t.outcome))
                    .or_default() += 1;
                let list = match t.outcome {
                    Outcome::Aborted => &mut self.aborts,
                    Outcome::Failed | Outcome::Incomplete => &mut self.failures,
                    Outcome::Completed => return,
                };
                if list.len() < MAX_LINES {
                    list.push((**t).clone());
                } else {
                    self.dropped_lines += 1;
                }
            }
            Event::Anomaly(_) => {}
            Event::EncryptedData(r) => {
                self.tls_data += 1;
                let reset = r.data.first_close.is_some_and(|c| c.how == CloseHow::Rst);
                self.tls_data_reset += reset as u64;
            }
        }
    }
}

/// Counts by name as `a 3, b 1`, the zeros left out; `none` when all are zero.
pub fn nonzero(v: Vec<(&'static str, u64)>) -> String {
    let parts: Vec<String> = v
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// `2023-11-14 22:13:20.123` (UTC).
pub fn utc(ts: Timestamp) -> String {
    let secs = ts.secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ts.subsec_nanos() / 1_000_000
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn transfer_line(t: &TransferRecord) -> String {
    let what = match &t.argument {
        Some(a) => format!("{} {a}", t.command_name()),
        None => t.command_name().to_string(),
    };
    let bytes = t
        .data
        .as_ref()
        .map_or(0, |d| d.bytes_to_client + d.bytes_to_server);
    let size = match t.announced_size {
        Some(s) => format!("{bytes}/{s} B"),
        None => format!("{bytes} B"),
    };
    let lag = t.teardown_to_reply_seconds.map_or("-".to_string(), |l| {
        if l.abs() < 1.0 {
            format!("{:.1}ms", l * 1e3)
        } else {
            format!("{l:.3}s")
        }
    });
    let reply = match (t.final_code, &t.final_text) {
        (Some(c), Some(text)) => format!("{c} {text}"),
        (Some(c), None) => c.to_string(),
        (None, _) => "no final reply".to_string(),
    };
    format!(
        "  {}  {} -> {}  {:<28} {:<18} {:>20}  lag {:>7}  \"{}\"",
        utc(t.end),
        t.client,
        t.server,
        what,
        match (t.abort_cause, t.interruption_cause) {
            (Some(abort), _) => abort.as_str().to_string(),
            (None, Some(cause)) => format!("{}/{}", t.outcome.as_str(), cause.as_str()),
            (None, None) => t.outcome.as_str().to_string(),
        },
        size,
        lag,
        reply
    )
}

impl Report {
    /// Render the summary; `metrics` supplies the capture-health figures.
    pub fn render(&self, metrics: &Metrics) -> String {
        let mut o = String::new();
        let transfers: u64 = self.by_outcome.values().sum();
        let _ = writeln!(
            o,
            "packets {} ({}), sessions {} ({} TLS), transfers {}",
            metrics.packets_total(),
            human_bytes(metrics.bytes_total()),
            self.sessions,
            self.tls_sessions,
            transfers
        );
        if let (Some(f), Some(l)) = (self.first, self.last) {
            let _ = writeln!(o, "from {} to {} UTC", utc(f), utc(l));
        }
        if self.tls_data > 0 {
            let _ = writeln!(
                o,
                "encrypted sessions' data connections (inferred) {}, reset {}",
                self.tls_data, self.tls_data_reset
            );
        }
        let _ = writeln!(o, "\nTransfers by outcome");
        for out in Outcome::ALL {
            let n = self.by_outcome.get(&out).copied().unwrap_or(0);
            let _ = writeln!(o, "  {:<11} {n:>8}", out.as_str());
        }
        if !self.by_command.is_empty() {
            let _ = writeln!(o, "\nTransfers by command");
            let mut cmds: Vec<&str> = self.by_command.keys().map(|(c, _)| *c).collect();
            cmds.dedup();
            for c in cmds {
                let counts: Vec<String> = Outcome::ALL
                    .iter()
                    .map(|out| {
                        let n = self.by_command.get(&(c, *out)).copied().unwrap_or(0);
                        format!("{} {n}", out.as_str())
                    })
                    .collect();
                let _ = writeln!(o, "  {c:<5} {}", counts.join(", "));
            }
        }
        let _ = writeln!(
            o,
            "\nAborts (426): {}",
            self.by_outcome.get(&Outcome::Aborted).copied().unwrap_or(0)
        );
        for t in &self.aborts {
            let _ = writeln!(o, "{}", transfer_line(t));
        }
        let failed = self.by_outcome.get(&Outcome::Failed).copied().unwrap_or(0)
            + self
                .by_outcome
                .get(&Outcome::Incomplete)
                .copied()
                .unwrap_or(0);
        let _ = writeln!(o, "\nFailed or incomplete: {failed}");
        for t in &self.failures {
            let _ = writeln!(o, "{}", transfer_line(t));
        }
        if self.dropped_lines > 0 {
            let _ = writeln!(o, "  ({} more not listed; see --json)", self.dropped_lines);
        }
        let _ = writeln!(o, "\nAnomalies: {}", nonzero(metrics.anomaly_counts()));
        let (gaps, gap_bytes) = metrics.gaps_total();
        let _ = writeln!(o, "\nCapture health");
        let _ = writeln!(
            o,
            "  packets skipped: {}",
            nonzero(metrics.skipped_by_reason())
        );
        let _ = writeln!(
            o,
            "  corrupt records skipped: {}",
            nonzero(metrics.records_skipped_by_reason())
        );
        let _ = writeln!(
            o,
            "  truncated by snapshot length: {}",
            metrics.truncated_total()
        );
        let _ = writeln!(
            o,
            "  duplicate copies dropped: {}",
            metrics.duplicates_total()
        );
        let _ = writeln!(o, "  reassembly gaps: {gaps} ({gap_bytes} bytes missing)");
        let _ = writeln!(o, "  bounds hit: {}", nonzero(metrics.bounds_hit()));
        let _ = writeln!(o, "  flows evicted: {}", nonzero(metrics.evictions()));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(Timestamp::ZERO), "1970-01-01 00:00:00.000");
        assert_eq!(
            utc(Timestamp::from_secs_nanos(1_700_000_000, 123_456_789)),
            "2023-11-14 22:13:20.123"
        );
        assert_eq!(
            utc(Timestamp::from_secs_nanos(951_782_400, 0)),
            "2000-02-29 00:00:00.000"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(44 << 20), "44.0 MiB");
    }
}
