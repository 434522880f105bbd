//! The exporter's landing page (`/`) and `/api/recent`: what ftpwatch is, how long it
//! has run, what it watches and how healthy that is, the links, then the last aborted,
//! failed or interrupted transfers with cause and age, and the totals by outcome.
//! Rendered on the server (maud escapes every value: file names come from the wire), so
//! it reads with scripting off; a few lines of plain JavaScript refresh the two tables
//! from `/api/recent` every 5 s, writing text only (never HTML).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::metrics::{Metrics, sample};
use super::recent::Snapshot;

/// What the page is about, besides the recent transfers.
pub struct Page<'a> {
    pub mode: &'a str,
    pub watching: &'a [String],
    pub uptime: Duration,
    pub now: SystemTime,
    pub health: Vec<(String, String)>,
    pub recent: Snapshot,
}

/// The figures that say whether what is watched is seen whole (live), or how the
/// proxy's relays stand (proxy).
pub fn health(mode: &str, watching: &[String], metrics: &Metrics) -> Vec<(String, String)> {
    let text = metrics.render();
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let one = |series: &str| sample(&text, series).unwrap_or(0.0);
    let n = |v: f64| format!("{v:.0}");
    let row = |k: &str, v: String| (k.to_string(), v);
    if mode == "proxy" {
        return vec![
            row("sessions open", n(one("ftpwatch_proxy_sessions_active"))),
            row("sessions relayed", n(one("ftpwatch_proxy_sessions_total"))),
            row(
                "data connections open",
                n(one("ftpwatch_proxy_data_connections_active")),
            ),
            row(
                "upstream connection failures",
                n(sum("ftpwatch_proxy_upstream_connect_failures_total")),
            ),
            row(
                "replies written by the proxy",
                n(sum("ftpwatch_proxy_replies_written_total")),
            ),
        ];
    }
    // Each interface: capturing or not, its kernel drops and errors.
    let mut rows: Vec<(String, String)> = watching
        .iter()
        .map(|i| {
            let label = format!("{{interface=\"{i}\"}}");
            let up = one(&format!("ftpwatch_capture_up{label}")) == 1.0;
            let drops = one(&format!("ftpwatch_kernel_drops_total{label}"));
            let errors = one(&format!("ftpwatch_capture_errors_total{label}"));
            let state = if up { "capturing" } else { "NOT capturing" };
            (
                i.clone(),
                format!("{state}, {drops:.0} kernel drops, {errors:.0} errors"),
            )
        })
        .collect();
    let (gaps, gap_bytes) = metrics.gaps_total();
    rows.extend([
        row("packets seen", metrics.packets_total().to_string()),
        row("kernel drops", n(sum("ftpwatch_kernel_drops_total"))),
        row("truncated frames", metrics.truncated_total().to_string()),
        row("packets skipped", n(sum("ftpwatch_packets_skipped_total"))),
        row("reassembly gaps", format!("{gaps} ({gap_bytes} bytes)")),
        row(
            "duplicate segments dropped",
            metrics.duplicates_total().to_string(),
        ),
    ]);
    rows
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `3d 04:05:06`, `04:05:06`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    }
}

/// Seconds since a record's end, as the page shows it.
fn age(now: f64, v: &Value) -> f64 {
    (now - v["end"].as_f64().unwrap_or(now)).max(0.0)
}

fn age_text(secs: f64) -> String {
    match secs as u64 {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// One transfer's cells, in the table's order; the script builds the same.
fn cells(now: f64, v: &Value) -> [String; 7] {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let cause = v["abort_cause"]
        .as_str()
        .or(v["interruption_cause"].as_str())
        .unwrap_or("-");
    let what = match (v["command"].as_str(), v["argument"].as_str()) {
        (Some(c), Some(a)) => format!("{c} {a}"),
        (Some(c), None) => c.to_string(),
        _ => "?".to_string(),
    };
    let bytes = match &v["data"] {
        Value::Null => "-".to_string(),
        d => format!(
            "{} down, {} up",
            d["bytes_to_client"].as_u64().unwrap_or(0),
            d["bytes_to_server"].as_u64().unwrap_or(0)
        ),
    };
    let reply = match (v["final_code"].as_u64(), v["final_text"].as_str()) {
        (Some(c), Some(t)) => format!("{c} {t}"),
        (Some(c), None) => c.to_string(),
        _ => "no final reply".to_string(),
    };
    [
        age_text(age(now, v)),
        format!("{} → {}", s("client"), s("server")),
        what,
        s("outcome"),
        cause.to_string(),
        bytes,
        reply,
    ]
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n{text-align:right}.aborted{color:#b00020}.failed{color:#b35c00}.incomplete{color:#6a1b9a}\
code{background:#f4f4f4;padding:0 .2em}small{color:#666}";

/// Refresh both tables from /api/recent; text only, never HTML.
const SCRIPT: &str = r#"
(function () {
  function cell(tr, text, cls) { var td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); }
  function refresh() {
    fetch('/api/recent').then(function (r) { return r.json(); }).then(function (j) {
      var tb = document.getElementById('recent-body');
      var rows = document.createDocumentFragment();
      j.transfers.forEach(function (t) { var tr = document.createElement('tr'); tr.className = t.outcome;
        t.cells.forEach(function (c, i) { cell(tr, c, i === 3 ? t.outcome : ''); }); rows.appendChild(tr); });
      tb.replaceChildren(rows);
      var tt = document.getElementById('totals-body');
      var trs = document.createDocumentFragment();
      Object.keys(j.totals).forEach(function (k) { var tr = document.createElement('tr'); cell(tr, k, k); cell(tr, String(j.totals[k]), 'n'); trs.appendChild(tr); });
      tt.replaceChildren(trs);
      document.getElementById('uptime').textContent = j.uptime;
      document.getElementById('count').textContent = String(j.transfers.length);
      document.body.setAttribute('data-refreshed', String(j.now));
    }).catch(function () {});
  }
  setInterval(refresh, 5000);
})();
"#;

pub fn render(p: &Page<'_>) -> Markup {
    let now = epoch(p.now);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "ftpwatch " (p.mode) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "ftpwatch " (env!("CARGO_PKG_VERSION")) " " small { "(" (p.mode) ")" } }
                p { "Up " span #uptime { (duration(p.uptime)) } ". "
                    a href="/metrics" { "/metrics" } " (Prometheus) · "
                    a href="/healthz" { "/healthz" } " · "
                    a href="/api/recent" { "/api/recent" } " (JSON)" }
                h2 { @if p.mode == "proxy" { "Listening" } @else { "Watching" } }
                ul { @for w in p.watching { li { (w) } } }
                h2 { @if p.mode == "proxy" { "Relays" } @else { "Capture health" } }
                table #health { tbody { @for (k, v) in &p.health { tr { th { (k) } td.n { (v) } } } } }
                h2 { "Transfers by outcome, since start" }
                table #totals { thead { tr { th { "outcome" } th { "transfers" } } }
                    tbody #totals-body { @for (k, v) in &p.recent.totals { tr { td class=(k) { (k) } td.n { (v) } } } } }
                h2 { "Last " span #count { (p.recent.transfers.len()) } " aborted, failed or interrupted transfers" }
                table #recent {
                    thead { tr { th { "age" } th { "client → server" } th { "transfer" } th { "outcome" }
                        th { "cause" } th { "bytes" } th { "final reply" } } }
                    tbody #recent-body { @for t in &p.recent.transfers {
                        @let c = cells(now, t);
                        tr class=(c[3]) { @for (i, v) in c.iter().enumerate() {
                            @if i == 3 { td class=(v) { (v) } } @else { td { (v) } } } } } }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// `/api/recent`: the same, for scripts.
pub fn api(p: &Page<'_>) -> Value {
    let now = epoch(p.now);
    let transfers: Vec<Value> = p
        .recent
        .transfers
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t["age_seconds"] = json!((age(now, &t) * 1000.0).round() / 1000.0);
            t["cells"] = json!(cells(now, &t));
            t
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": p.mode,
        "now": now,
        "uptime_seconds": p.uptime.as_secs(),
        "uptime": duration(p.uptime),
        "watching": p.watching,
        "health": p.health.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect::<Vec<_>>(),
        "totals": p.recent.totals,
        "transfers": transfers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(transfers: Vec<Value>) -> Page<'static> {
        Page {
            mode: "live",
            watching: &[],
            uptime: Duration::from_secs(93_784),
            now: UNIX_EPOCH + Duration::from_secs(1_000_100),
            health: vec![("packets seen".into(), "7".into())],
            recent: Snapshot {
                totals: [("aborted".to_string(), 1)].into_iter().collect(),
                transfers,
            },
        }
    }

    #[test]
    fn a_file_name_from_the_wire_is_escaped_never_markup() {
        let t = json!({ "type": "transfer", "end": 1_000_000.0, "client": "10.0.0.2:4000",
            "server": "10.0.0.1:21", "command": "RETR", "argument": "<script>alert(1)</script>",
            "outcome": "aborted", "abort_cause": "client_reset", "final_code": 426,
            "final_text": "Failure writing network stream.", "data": null });
        let html = render(&page(vec![t])).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("RETR &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("client_reset"));
        assert!(html.contains("100 s"), "the age: {html}");
        assert!(html.contains("1d 02:03:04"), "the uptime");
    }

    #[test]
    fn the_api_gives_each_transfer_its_age_and_the_cells_the_page_shows() {
        let t = json!({ "type": "transfer", "end": 1_000_040.5, "outcome": "failed",
            "interruption_cause": "stalled", "command": "STOR", "final_code": 451 });
        let v = api(&page(vec![t]));
        assert_eq!(v["transfers"][0]["age_seconds"], 59.5);
        assert_eq!(v["transfers"][0]["cells"][4], "stalled");
        assert_eq!(v["totals"]["aborted"], 1);
        assert_eq!(v["uptime"], "1d 02:03:04");
    }
}
