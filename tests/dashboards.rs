//! The Grafana dashboard (`dashboards/ftpwatch.json`) and the Prometheus rules
//! (`dashboards/alerts.yml`) against ftpwatch's real metric names: renaming a metric in
//! `src/sink/metrics.rs` without updating them fails here. Also the dashboard's
//! structure (ids, layout, data source, descriptions, variables).
//!
//! The PromQL itself is parsed by promtool in `dashboards/check.sh`, and the alerts are
//! unit-tested by `dashboards/tests/alerts_test.yml`.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use serde_json::Value;

/// The data source every panel and target must use: the dashboard's `datasource` variable.
const DATASOURCE_UID: &str = "${datasource}";
/// Every selector of every panel filters on both variables.
const JOB_MATCHER: &str = r#"job=~"$job""#;
const INSTANCE_MATCHER: &str = r#"instance=~"$instance""#;
/// The dashboard's rows, top to bottom.
const ROWS: [&str; 4] = ["Aborts", "Transfers", "Protocol", "Capture health"];

// ---------------------------------------------------------------- inputs

fn repo_file(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&repo_file("dashboards/ftpwatch.json"))
        .expect("dashboards/ftpwatch.json is not valid JSON")
}

fn alerts_yml() -> String {
    repo_file("dashboards/alerts.yml")
}

/// ftpwatch's exposition with a series in every family. The per-interface families
/// (capture up, kernel drops, capture errors) have no series until live capture starts
/// on an interface, and the text format leaves out a family without series.
fn exposition() -> String {
    let metrics = ftpwatch::sink::Metrics::new();
    metrics.capture_up("eth0", true);
    metrics.render()
}

/// `(name, type)` of every family, from the `# TYPE name type` lines.
fn families(exposition: &str) -> Vec<(String, String)> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let mut words = rest.split_whitespace();
            let name = words.next().expect("a # TYPE line names its family");
            let kind = words.next().expect("a # TYPE line gives the family's type");
            (name.to_string(), kind.to_string())
        })
        .collect()
}

/// The names of the series ftpwatch exports, as PromQL sees them: a histogram `X` is
/// `X_bucket`, `X_sum` and `X_count`.
fn exported_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (family, kind) in families(&exposition()) {
        match kind.as_str() {
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{family}{suffix}"));
                }
            }
            "summary" => {
                for suffix in ["", "_sum", "_count"] {
                    names.insert(format!("{family}{suffix}"));
                }
            }
            _ => {
                names.insert(family);
            }
        }
    }
    names
}

/// Series names and family names: what prose (descriptions, runbooks) may mention.
fn exported_names() -> BTreeSet<String> {
    let mut names = exported_series();
    names.extend(
        families(&exposition())
            .into_iter()
            .map(|(family, _)| family),
    );
    names
}

// ---------------------------------------------------------------- the dashboard's JSON

fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for panel in panels.as_array().into_iter().flatten() {
        out.push(panel);
        // Panels inside a collapsed row.
        collect_panels(&panel["panels"], out);
    }
}

/// Every panel, rows and panels nested in rows included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    collect_panels(&dashboard["panels"], &mut out);
    out
}

fn panel_label(panel: &Value) -> String {
    format!(
        "panel {} {:?}",
        panel["id"],
        panel["title"].as_str().unwrap_or("(no title)")
    )
}

fn targets(panel: &Value) -> Vec<&Value> {
    panel["targets"].as_array().into_iter().flatten().collect()
}

/// `(where, expr)` of every panel target.
fn target_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        for target in targets(panel) {
            let place = format!("{} target {}", panel_label(panel), target["refId"]);
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{place} has no expr"));
            out.push((place, expr.to_string()));
        }
    }
    out
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("the dashboard has templating.list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("the dashboard has no variable {name:?}"))
}

/// A query variable's query: a string, or `{"query": "..."}` in newer Grafana.
fn variable_query(variable: &Value) -> &str {
    variable["query"]
        .as_str()
        .or_else(|| variable["query"]["query"].as_str())
        .unwrap_or_else(|| panic!("variable {} has no query", variable["name"]))
}

/// `(where, expr)` of every PromQL expression: panel targets and variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = target_exprs(dashboard);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] == "query" {
            out.push((
                format!("variable {}", v["name"]),
                variable_query(v).to_string(),
            ));
        }
    }
    out
}

/// Every string in a JSON document (descriptions, titles, expressions...).
fn json_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s.as_str()),
        Value::Array(items) => {
            for item in items {
                json_strings(item, out);
            }
        }
        Value::Object(map) => {
            for item in map.values() {
                json_strings(item, out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- alerts.yml, line by line

struct Rules {
    /// Names defined by `record:`.
    records: Vec<String>,
    /// `(where, expr)` of every rule.
    exprs: Vec<(String, String)>,
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        inner.replace("\\\"", "\"")
    } else {
        value.to_string()
    }
}

/// Reads `record:` and `expr:` keys. An `expr` is either on its line (plain or quoted)
/// or a block scalar (`|`, `>`...): the following lines indented deeper than the key.
fn parse_rules(text: &str) -> Rules {
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    let mut exprs = Vec::new();
    let mut rule = String::from("(before the first rule)");
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let key = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
        let key_indent = line.len() - key.len();
        if let Some(value) = key.strip_prefix("record:") {
            let name = unquote(value);
            rule = format!("record {name}");
            records.push(name);
        } else if let Some(value) = key.strip_prefix("alert:") {
            rule = format!("alert {}", unquote(value));
        } else if let Some(value) = key.strip_prefix("expr:") {
            let value = value.trim();
            if value.starts_with('|') || value.starts_with('>') {
                let mut body = Vec::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let next_trimmed = next.trim_start();
                    let next_indent = next.len() - next_trimmed.len();
                    if !next_trimmed.is_empty() && next_indent <= key_indent {
                        break;
                    }
                    body.push(next_trimmed);
                    i += 1;
                }
                exprs.push((rule.clone(), body.join("\n")));
            } else {
                exprs.push((rule.clone(), unquote(value)));
            }
        }
        i += 1;
    }
    Rules { records, exprs }
}

// ---------------------------------------------------------------- a small PromQL tokenizer

/// A name in an expression (metric, recorded series, function, keyword, label name in
/// `by (...)`) and, when `{...}` follows it, the text of its label matchers.
#[derive(Debug)]
struct Name {
    name: String,
    matchers: Option<String>,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index just after the string literal that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// The index just after the `close` that ends the group opening at `start`, skipping
/// string literals (label values, regexes) inside.
fn skip_group(chars: &[char], start: usize, close: char) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == close => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The names of an expression, outside label matchers (`{...}`), string literals and
/// ranges (`[5m]`, `[1h:1m]`). Numbers and durations (`0.5`, `30m`) are skipped.
fn names(expr: &str) -> Vec<Name> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '}');
        } else if c == '[' {
            i = skip_group(&chars, i, ']');
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let mut matchers = None;
            if j < chars.len() && chars[j] == '{' {
                let end = skip_group(&chars, j, '}');
                let inner_end = end.saturating_sub(1).max(j + 1);
                matchers = Some(chars[j + 1..inner_end].iter().collect());
                i = end;
            }
            out.push(Name { name, matchers });
        } else {
            i += 1;
        }
    }
    out
}

/// An ftpwatch metric: `ftp_...` or `ftpwatch_...`, not a recorded series.
fn is_metric(name: &str) -> bool {
    !name.contains(':') && (name.starts_with("ftp_") || name.starts_with("ftpwatch_"))
}

/// A recording rule's name (level:metric:operations).
fn is_recorded(name: &str) -> bool {
    name.contains(':')
}

fn metric_names(expr: &str) -> Vec<String> {
    names(expr)
        .into_iter()
        .map(|n| n.name)
        .filter(|n| is_metric(n))
        .collect()
}

fn recorded_names(expr: &str) -> Vec<String> {
    names(expr)
        .into_iter()
        .map(|n| n.name)
        .filter(|n| is_recorded(n))
        .collect()
}

/// Words of free text that look like metric or recorded names (`:` at the end of a word,
/// as in "record:" or a title "ftpwatch: ...", is punctuation).
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !is_name_char(c))
        .map(|w| w.trim_end_matches(':'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn format_list(items: &BTreeSet<String>) -> String {
    items
        .iter()
        .map(|s| format!("  {s}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- tests

#[test]
fn tokenizer_skips_matchers_strings_and_ranges() {
    let expr = r#"histogram_quantile(0.9, sum by (le) (rate(ftp_abort_teardown_lag_seconds_bucket{job=~"$job", code="ftp_not_a_metric"}[$__rate_interval:1m])))
        / on (job) group_left () ftpwatch:ftp_426_replies:rate5m{job=~"a}b"} offset 30m"#;
    let found: Vec<String> = names(expr).into_iter().map(|n| n.name).collect();
    assert_eq!(
        found,
        [
            "histogram_quantile",
            "sum",
            "by",
            "le",
            "rate",
            "ftp_abort_teardown_lag_seconds_bucket",
            "on",
            "job",
            "group_left",
            "ftpwatch:ftp_426_replies:rate5m",
            "offset",
        ]
    );
    assert_eq!(
        metric_names(expr),
        ["ftp_abort_teardown_lag_seconds_bucket"]
    );
    assert_eq!(recorded_names(expr), ["ftpwatch:ftp_426_replies:rate5m"]);
    let with_matchers: Vec<Option<String>> = names(expr)
        .into_iter()
        .filter(|n| is_metric(&n.name) || is_recorded(&n.name))
        .map(|n| n.matchers)
        .collect();
    assert_eq!(
        with_matchers,
        [
            Some(r#"job=~"$job", code="ftp_not_a_metric""#.to_string()),
            Some(r#"job=~"a}b""#.to_string()),
        ]
    );
}

#[test]
fn exposition_lists_every_family() {
    let exported = exported_series();
    for name in [
        "ftp_replies_total",
        "ftp_transfers_total",
        "ftp_transfer_aborts_total",
        "ftp_abort_teardown_lag_seconds_bucket",
        "ftp_transfer_duration_seconds_count",
        "ftpwatch_kernel_drops_total",
        "ftpwatch_capture_up",
        "ftpwatch_capture_errors_total",
        "ftpwatch_build_info",
    ] {
        assert!(
            exported.contains(name),
            "{name} is missing from ftpwatch's exposition, which has:\n{}",
            format_list(&exported)
        );
    }
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let exported = exported_series();
    let mut used = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for (place, expr) in dashboard_exprs(&dashboard()) {
        for name in metric_names(&expr) {
            if !exported.contains(&name) {
                unknown.insert(format!("{name} (in {place})"));
            }
            used.insert(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "dashboards/ftpwatch.json queries metrics ftpwatch does not export:\n{}\nftpwatch exports:\n{}",
        format_list(&unknown),
        format_list(&exported)
    );
    assert!(
        used.len() >= 20,
        "only {} metric names found in the dashboard's queries (a tokenizer bug?): {used:?}",
        used.len()
    );
}

#[test]
fn rules_use_only_exported_metrics() {
    let exported = exported_series();
    let rules = parse_rules(&alerts_yml());
    let mut used = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for (place, expr) in &rules.exprs {
        for name in metric_names(expr) {
            if !exported.contains(&name) {
                unknown.insert(format!("{name} (in {place})"));
            }
            used.insert(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "dashboards/alerts.yml uses metrics ftpwatch does not export:\n{}\nftpwatch exports:\n{}",
        format_list(&unknown),
        format_list(&exported)
    );
    for name in [
        "ftp_replies_total",
        "ftp_transfers_total",
        "ftp_transfer_aborts_total",
        "ftpwatch_kernel_drops_total",
        "ftpwatch_capture_up",
    ] {
        assert!(
            used.contains(name),
            "no rule of dashboards/alerts.yml uses {name} (a parsing bug?); used: {used:?}"
        );
    }
}

#[test]
fn recorded_series_used_are_defined_in_alerts_yml() {
    let rules = parse_rules(&alerts_yml());
    let defined: BTreeSet<String> = rules.records.iter().cloned().collect();
    assert!(
        defined.len() >= 4,
        "only {} recording rules found in dashboards/alerts.yml: {defined:?}",
        defined.len()
    );
    let mut undefined = BTreeSet::new();
    let mut used_by_dashboard = 0;
    for (place, expr) in dashboard_exprs(&dashboard()) {
        for name in recorded_names(&expr) {
            used_by_dashboard += 1;
            if !defined.contains(&name) {
                undefined.insert(format!("{name} (dashboard, {place})"));
            }
        }
    }
    for (place, expr) in &rules.exprs {
        for name in recorded_names(expr) {
            if !defined.contains(&name) {
                undefined.insert(format!("{name} (alerts.yml, {place})"));
            }
        }
    }
    assert!(
        undefined.is_empty(),
        "recorded series used but not defined by a `record:` in dashboards/alerts.yml:\n{}\ndefined:\n{}",
        format_list(&undefined),
        format_list(&defined)
    );
    assert!(
        used_by_dashboard > 0,
        "the dashboard uses no recorded series (expected the rules shared with the alerts)"
    );
}

/// Descriptions, annotations and runbooks name metrics too: they must be real.
#[test]
fn names_in_text_are_real() {
    let exported = exported_names();
    let defined: BTreeSet<String> = parse_rules(&alerts_yml()).records.into_iter().collect();
    let dashboard = dashboard();
    let mut dashboard_text = Vec::new();
    json_strings(&dashboard, &mut dashboard_text);
    let alerts = alerts_yml();
    let sources = [
        ("dashboards/ftpwatch.json", dashboard_text.join("\n")),
        ("dashboards/alerts.yml", alerts),
    ];
    let mut unknown = BTreeSet::new();
    for (file, text) in &sources {
        for word in words(text) {
            if is_recorded(word) && word.starts_with("ftpwatch:") {
                if !defined.contains(word) {
                    unknown.insert(format!("{word} (recorded series, in {file})"));
                }
            } else if is_metric(word) && !exported.contains(word) {
                unknown.insert(format!("{word} (in {file})"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names in the dashboard or the rules that are neither exported by ftpwatch nor recorded in alerts.yml:\n{}",
        format_list(&unknown)
    );
}

#[test]
fn every_selector_filters_on_job_and_instance() {
    let mut unfiltered = BTreeSet::new();
    for (place, expr) in target_exprs(&dashboard()) {
        for n in names(&expr) {
            if !(is_metric(&n.name) || is_recorded(&n.name) || n.name == "up") {
                continue;
            }
            let matchers: Vec<&str> = n
                .matchers
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            if !matchers.contains(&JOB_MATCHER) || !matchers.contains(&INSTANCE_MATCHER) {
                unfiltered.insert(format!("{} in {place}", n.name));
            }
        }
    }
    assert!(
        unfiltered.is_empty(),
        "selectors without {JOB_MATCHER} and {INSTANCE_MATCHER}:\n{}",
        format_list(&unfiltered)
    );
}

#[test]
fn panel_ids_are_unique() {
    let dashboard = dashboard();
    let mut seen = HashSet::new();
    for panel in all_panels(&dashboard) {
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{} has no numeric id", panel_label(panel)));
        assert!(
            seen.insert(id),
            "panel id {id} is used twice (again by {})",
            panel_label(panel)
        );
    }
}

#[derive(Debug)]
struct Rect {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

impl Rect {
    fn of(panel: &Value) -> Rect {
        let pos = &panel["gridPos"];
        let get = |key: &str| {
            pos[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{} has no gridPos.{key}: {pos}", panel_label(panel)))
        };
        Rect {
            x: get("x"),
            y: get("y"),
            w: get("w"),
            h: get("h"),
        }
    }

    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// The dashboard's panels are flat (rows are not collapsed), so all of them share one
/// grid.
#[test]
fn panels_fit_the_grid_without_overlapping() {
    let dashboard = dashboard();
    let placed: Vec<(String, Rect)> = all_panels(&dashboard)
        .into_iter()
        .map(|p| (panel_label(p), Rect::of(p)))
        .collect();
    for (label, r) in &placed {
        assert!(r.w > 0 && r.h > 0, "{label} has an empty gridPos: {r:?}");
        assert!(
            r.x + r.w <= 24,
            "{label} is wider than the 24-column grid: {r:?}"
        );
    }
    for (i, (a_label, a)) in placed.iter().enumerate() {
        for (b_label, b) in &placed[i + 1..] {
            assert!(!a.overlaps(b), "{a_label} {a:?} overlaps {b_label} {b:?}");
        }
    }
}

#[test]
fn panels_and_targets_use_the_datasource_variable() {
    let dashboard = dashboard();
    let is_variable = |ds: &Value| ds["type"] == "prometheus" && ds["uid"] == DATASOURCE_UID;
    let mut checked = 0;
    for panel in all_panels(&dashboard) {
        let targets = targets(panel);
        if targets.is_empty() {
            continue;
        }
        assert!(
            is_variable(&panel["datasource"]),
            "{} has datasource {}, expected {{\"type\": \"prometheus\", \"uid\": \"{DATASOURCE_UID}\"}}",
            panel_label(panel),
            panel["datasource"]
        );
        for target in targets {
            assert!(
                is_variable(&target["datasource"]),
                "{} target {} has datasource {}, expected {{\"type\": \"prometheus\", \"uid\": \"{DATASOURCE_UID}\"}}",
                panel_label(panel),
                target["refId"],
                target["datasource"]
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the dashboard has no targets");
}

#[test]
fn every_panel_has_a_description() {
    let dashboard = dashboard();
    for panel in all_panels(&dashboard) {
        let description = panel["description"].as_str().unwrap_or("");
        assert!(
            !description.trim().is_empty(),
            "{} has no description (tell the operator what it shows and how to read it)",
            panel_label(panel)
        );
    }
}

#[test]
fn rows_come_in_order() {
    let dashboard = dashboard();
    let mut rows: Vec<(u64, &str)> = all_panels(&dashboard)
        .into_iter()
        .filter(|p| p["type"] == "row")
        .map(|p| (Rect::of(p).y, p["title"].as_str().unwrap_or("(no title)")))
        .collect();
    rows.sort();
    let titles: Vec<&str> = rows.iter().map(|(_, title)| *title).collect();
    assert_eq!(titles, ROWS, "the dashboard's rows, top to bottom");
}

#[test]
fn variables_select_datasource_job_and_instance() {
    let dashboard = dashboard();

    let datasource = variable(&dashboard, "datasource");
    assert_eq!(
        datasource["type"], "datasource",
        "variable datasource: {datasource}"
    );
    assert_eq!(
        datasource["query"], "prometheus",
        "variable datasource: {datasource}"
    );

    for (name, query) in [
        ("job", "label_values(ftpwatch_build_info, job)"),
        (
            "instance",
            r#"label_values(ftpwatch_build_info{job=~"$job"}, instance)"#,
        ),
    ] {
        let v = variable(&dashboard, name);
        assert_eq!(v["type"], "query", "variable {name}: {v}");
        assert_eq!(variable_query(v), query, "variable {name}'s query");
        assert!(
            v["multi"].as_bool() == Some(true),
            "variable {name} must be multi-select: {v}"
        );
        assert!(
            v["includeAll"].as_bool() == Some(true),
            "variable {name} must offer All: {v}"
        );
        assert_eq!(
            v["datasource"]["uid"], DATASOURCE_UID,
            "variable {name} must query the datasource variable: {v}"
        );
    }
}
