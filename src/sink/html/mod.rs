//! `ftpwatch read --html FILE`: one self-contained page (inline CSS and SVG, no script,
//! no font or image from anywhere) that shows a capture: a timeline of sessions and
//! their transfers, aborts by cause, outcomes by command, final replies by class over
//! time, the table of transfers that went wrong, anomalies and capture health.
//!
//! Bounded for large captures: at most `TIMELINE_ROWS` sessions are drawn (those with a
//! troubled transfer first), `TABLE_ROWS` transfers listed and `MAX_BARS` transfers
//! kept for drawing; the counts and charts cover everything, and the page says what it
//! left out. Built with maud, which escapes every value (file names and reply texts
//! come from the wire).

mod charts;
mod timeline;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::EventSink;
use super::metrics::Metrics;
use super::report::{nonzero, utc};
use crate::ftp::{AnomalyRecord, CloseHow, Event, Outcome, Role, Timestamp, TransferRecord};

/// Sessions drawn on the timeline.
pub const TIMELINE_ROWS: usize = 300;
/// Transfers listed in the table of what went wrong.
pub const TABLE_ROWS: usize = 1000;
/// Transfers kept for drawing (about 200 bytes each).
pub const MAX_BARS: usize = 200_000;
/// Sessions kept (about 100 bytes each).
pub const MAX_SESSIONS: usize = 200_000;
/// Anomalies listed with their details.
const ANOMALY_ROWS: usize = 100;
/// Text kept of a file name or a reply.
const TEXT_CAP: usize = 120;

/// One transfer, as the timeline draws it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub start: Timestamp,
    pub end: Timestamp,
    pub outcome: Outcome,
    pub cause: Option<&'static str>,
    pub title: String,
    /// The data connection's first FIN or RST.
    pub close: Option<(Timestamp, Role, CloseHow)>,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub start: Timestamp,
    pub end: Timestamp,
    pub tls: bool,
    pub troubled: bool,
    pub bars: Vec<Bar>,
}

/// Collects what the page shows, as the events come.
#[derive(Default)]
pub struct HtmlReport {
    /// Transfers by session, until the session's record comes.
    open: BTreeMap<u64, (Vec<Bar>, bool)>,
    sessions: Vec<SessionRow>,
    sessions_total: u64,
    bars_kept: usize,
    bars_dropped: u64,
    troubled: Vec<TransferRecord>,
    troubled_total: u64,
    by_outcome: BTreeMap<Outcome, u64>,
    by_cause: BTreeMap<&'static str, u64>,
    by_command: BTreeMap<(&'static str, Outcome), u64>,
    /// Final replies: (time, class 1-6).
    finals: Vec<(Timestamp, u8)>,
    anomalies: Vec<AnomalyRecord>,
    tls_data: u64,
    tls_data_reset: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

fn cap(s: &str) -> String {
    if s.len() <= TEXT_CAP {
        return s.to_string();
    }
    let mut end = TEXT_CAP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What a transfer broke on: the 426's cause, or what interrupted a failed one.
fn cause(t: &TransferRecord) -> Option<&'static str> {
    t.abort_cause.or(t.interruption_cause).map(|c| c.as_str())
}

fn troubled(t: &TransferRecord) -> bool {
    t.outcome != Outcome::Completed || t.interruption_cause.is_some()
}

fn bytes_moved(t: &TransferRecord) -> u64 {
    t.data
        .as_ref()
        .map_or(0, |d| d.bytes_to_client + d.bytes_to_server)
}

fn describe(t: &TransferRecord) -> String {
    let mut s = format!(
        "{} {}: {}",
        t.command_name(),
        cap(t.argument.as_deref().unwrap_or("")),
        t.outcome.as_str()
    );
    if let Some(c) = cause(t) {
        s += &format!(" ({c})");
    }
    if let Some(code) = t.final_code {
        s += &format!(
            ", {} {}",
            code.get(),
            cap(t.final_text.as_deref().unwrap_or(""))
        );
    }
    s += &format!(", {} bytes", bytes_moved(t));
    if let Some(size) = t.announced_size {
        s += &format!(" of {size}");
    }
    s += &format!(", {} to {} UTC", utc(t.start), utc(t.end));
    if let Some(c) = t.data.as_ref().and_then(|d| d.first_close) {
        s += &format!(
            "; data connection: {} {} at {}",
            c.by.as_str(),
            c.how.as_str(),
            utc(c.at)
        );
    }
    s
}

impl HtmlReport {
    fn seen(&mut self, ts: Timestamp) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }

    fn transfer(&mut self, t: &TransferRecord) {
        self.seen(t.start);
        self.seen(t.end);
        *self.by_outcome.entry(t.outcome).or_default() += 1;
        *self
            .by_command
            .entry((t.command_name(), t.outcome))
            .or_default() += 1;
        if let Some(c) = t.abort_cause {
            *self.by_cause.entry(c.as_str()).or_default() += 1;
        }
        if let Some(code) = t.final_code
            && self.finals.len() < MAX_BARS
        {
            self.finals.push((t.end, (code.get() / 100) as u8));
        }
        let trouble = troubled(t);
        if trouble {
            self.troubled_total += 1;
            if self.troubled.len() < TABLE_ROWS {
                self.troubled.push(t.clone());
            }
        }
        let entry = self.open.entry(t.session).or_default();
        entry.1 |= trouble;
        if self.bars_kept >= MAX_BARS {
            self.bars_dropped += 1;
            return;
        }
        self.bars_kept += 1;
        entry.0.push(Bar {
            start: t.start,
            end: t.end,
            outcome: t.outcome,
            cause: cause(t),
            title: describe(t),
            close: t
                .data
                .as_ref()
                .and_then(|d| d.first_close)
                .map(|c| (c.at, c.by, c.how)),
        });
    }

    pub fn render(&self, metrics: &Metrics, files: &[String]) -> Markup {
        let transfers: u64 = self.by_outcome.values().sum();
        let period = match (self.first, self.last) {
            (Some(f), Some(l)) => format!("{} to {} UTC", utc(f), utc(l)),
            _ => "no transfers".to_string(),
        };
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "ftpwatch report: " (files.join(", ")) }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    h1 { "FTP transfers in " (files.join(", ")) }
                    p.summary {
                        (self.sessions_total) " sessions, " (transfers) " transfers, "
                        (self.troubled_total) " aborted, failed or interrupted; " (period) "."
                        @if self.tls_data > 0 {
                            " Encrypted sessions' data connections (inferred): " (self.tls_data)
                            ", reset " (self.tls_data_reset) "."
                        }
                    }
                    (charts::outcomes(&self.by_outcome))
                    h2 { "Timeline" }
                    (timeline::render(&self.sessions, self.sessions_total, self.bars_dropped))
                    div.charts {
                        div { h2 { "Aborts (426) by cause" } (charts::bars(&self.by_cause)) }
                        div { h2 { "Outcomes by command" } (charts::by_command(&self.by_command)) }
                        div { h2 { "Final replies by class over time" } (charts::replies_over_time(&self.finals)) }
                    }
                    h2 { "Aborted, failed and interrupted transfers" }
                    (self.table())
                    h2 { "Anomalies" }
                    (self.anomalies(metrics))
                    h2 { "Capture health" }
                    (health(metrics))
                    p.foot { "ftpwatch " (env!("CARGO_PKG_VERSION")) ". Times in UTC." }
                }
            }
        }
    }

    fn table(&self) -> Markup {
        html! {
            @if self.troubled.is_empty() {
                p { "None." }
            } @else {
                table.list {
                    thead { tr { th { "end (UTC)" } th { "client → server" } th { "command" } th { "file" }
                        th { "outcome / cause" } th { "bytes" } th { "lag" } th { "server's reply" } } }
                    tbody { @for t in &self.troubled {
                        tr {
                            td { (utc(t.end)) }
                            td { (t.client) " → " (t.server) }
                            td { (t.command_name()) }
                            td { (cap(t.argument.as_deref().unwrap_or("-"))) }
                            td class=(t.outcome.as_str()) { (t.outcome.as_str()) @if let Some(c) = cause(t) { " / " b { (c) } } }
                            td.n { (bytes_moved(t)) @if let Some(s) = t.announced_size { " of " (s) } }
                            td.n { @match t.teardown_to_reply_seconds { Some(l) => { (format!("{l:.3} s")) }, None => { "-" } } }
                            td { @match t.final_code { Some(c) => { (c.get()) " " (cap(t.final_text.as_deref().unwrap_or(""))) }, None => { "no final reply" } } }
                        }
                    } }
                }
                @if self.troubled_total > self.troubled.len() as u64 {
                    p.note { "The first " (self.troubled.len()) " of " (self.troubled_total)
                        " are listed; " (self.troubled_total - self.troubled.len() as u64)
                        " more are in the counts above and in `ftpwatch read --json`." }
                }
            }
        }
    }

    fn anomalies(&self, metrics: &Metrics) -> Markup {
        let counts: Vec<(&'static str, u64)> = metrics
            .anomaly_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        html! {
            @if counts.is_empty() { p { "None." } } @else {
                table.list { tbody { @for (k, n) in &counts { tr { th { (k) } td.n { (n) } } } } }
                @if !self.anomalies.is_empty() {
                    table.list {
                        thead { tr { th { "time (UTC)" } th { "session" } th { "kind" } th { "detail" } } }
                        tbody { @for a in &self.anomalies { tr { td { (utc(a.ts)) } td.n { (a.session) }
                            td { (a.kind.as_str()) } td { (cap(&a.detail)) } } } }
                    }
                }
            }
        }
    }
}

fn health(m: &Metrics) -> Markup {
    let (gaps, gap_bytes) = m.gaps_total();
    let rows = [
        ("packets", m.packets_total().to_string()),
        ("bytes", m.bytes_total().to_string()),
        ("packets skipped", nonzero(m.skipped_by_reason())),
        (
            "capture records skipped",
            nonzero(m.records_skipped_by_reason()),
        ),
        ("truncated packets", m.truncated_total().to_string()),
        ("reassembly gaps", format!("{gaps} ({gap_bytes} bytes)")),
        ("duplicate segments", m.duplicates_total().to_string()),
        ("bounds hit", nonzero(m.bounds_hit())),
        ("connections evicted", nonzero(m.evictions())),
    ];
    html! { table.list { tbody { @for (k, v) in &rows { tr { th { (k) } td { (v) } } } } } }
}

impl EventSink for HtmlReport {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Transfer(t) => self.transfer(t),
            Event::Session(s) => {
                self.seen(s.start);
                self.seen(s.end);
                self.sessions_total += 1;
                let (bars, troubled) = self.open.remove(&s.session).unwrap_or_default();
                if self.sessions.len() < MAX_SESSIONS {
                    self.sessions.push(SessionRow {
                        id: s.session,
                        client: s.client,
                        server: s.server,
                        start: s.start,
                        end: s.end,
                        tls: s.tls,
                        troubled,
                        bars,
                    });
                }
            }
            Event::Anomaly(a) => {
                if self.anomalies.len() < ANOMALY_ROWS {
                    self.anomalies.push(a.clone());
                }
            }
            Event::EncryptedData(r) => {
                self.tls_data += 1;
                let reset = r.data.first_close.is_some_and(|c| c.how == CloseHow::Rst);
                self.tls_data_reset += reset as u64;
            }
        }
    }
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
table.list{border-collapse:collapse;margin:.5em 0}table.list th,table.list td{padding:.2em .5em;border-bottom:1px solid #e0e0e0;text-align:left;vertical-align:top}\
table.list th{background:#f6f6f6}td.n{text-align:right}\
.completed{color:#2e7d32}.aborted{color:#c62828}.failed{color:#e65100}.incomplete{color:#6a1b9a}\
.charts{display:flex;flex-wrap:wrap;gap:2em}.note,.foot{color:#666}svg text{font:11px system-ui,sans-serif}\
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}";
