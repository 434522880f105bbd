//! The report's small charts, as inline SVG: totals by outcome, bars by label, outcomes
//! by command (stacked), and final replies by class over time (stacked columns).

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::ftp::{Outcome, Timestamp};

pub fn color(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "#43a047",
        Outcome::Aborted => "#c62828",
        Outcome::Failed => "#ef6c00",
        Outcome::Incomplete => "#8e24aa",
    }
}

/// The legend and totals by outcome.
pub fn outcomes(by: &BTreeMap<Outcome, u64>) -> Markup {
    html! {
        p.legend { @for o in Outcome::ALL {
            span { i style=(format!("background:{}", color(o))) {} (o.as_str()) " " b { (by.get(&o).copied().unwrap_or(0)) } }
        } }
    }
}

/// Horizontal bars, one per label, longest first.
pub fn bars(counts: &BTreeMap<&'static str, u64>) -> Markup {
    let mut rows: Vec<(&str, u64)> = counts.iter().map(|(k, v)| (*k, *v)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let (w, label, row) = (360.0, 150.0, 18.0);
    let h = row * rows.len() as f64 + 4.0;
    html! {
        @if rows.is_empty() { p { "None." } } @else {
            svg.bars width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" {
                @for (i, (k, n)) in rows.iter().enumerate() {
                    @let y = i as f64 * row;
                    @let bw = (w - label - 50.0) * *n as f64 / max as f64;
                    text x=(label - 6.0) y=(y + 13.0) text-anchor="end" { (k) }
                    rect x=(label) y=(y + 3.0) width=(bw.max(1.0)) height="12" fill="#c62828" { title { (k) ": " (n) } }
                    text x=(label + bw + 4.0) y=(y + 13.0) { (n) }
                }
            }
        }
    }
}

/// A part of a stacked bar: x, width, outcome, count.
type Segment = (f64, f64, Outcome, u64);

/// One stacked bar per command, split by outcome.
pub fn by_command(counts: &BTreeMap<(&'static str, Outcome), u64>) -> Markup {
    let mut cmds: Vec<&str> = counts.keys().map(|(c, _)| *c).collect();
    cmds.dedup();
    let n = |c: &str, o: Outcome| counts.get(&(c, o)).copied().unwrap_or(0);
    let total = |c: &str| -> u64 { Outcome::ALL.iter().map(|o| n(c, *o)).sum() };
    let max = cmds.iter().map(|c| total(c)).max().unwrap_or(1).max(1);
    let (w, label, row) = (360.0, 60.0, 18.0);
    let h = row * cmds.len() as f64 + 4.0;
    // Each command's segments, left to right, and where they end.
    let rows: Vec<(&str, Vec<Segment>, f64)> = cmds
        .iter()
        .map(|c| {
            let mut x = label;
            let segs = Outcome::ALL
                .iter()
                .filter(|o| n(c, **o) > 0)
                .map(|o| {
                    let bw = ((w - label - 50.0) * n(c, *o) as f64 / max as f64).max(1.0);
                    x += bw;
                    (x - bw, bw, *o, n(c, *o))
                })
                .collect();
            (*c, segs, x)
        })
        .collect();
    html! {
        @if rows.is_empty() { p { "None." } } @else {
            svg.bars width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" {
                @for (i, (c, segs, end)) in rows.iter().enumerate() {
                    @let y = i as f64 * row;
                    text x=(label - 6.0) y=(y + 13.0) text-anchor="end" { (c) }
                    @for (x, bw, o, k) in segs {
                        rect x=(x) y=(y + 3.0) width=(bw) height="12" fill=(color(*o)) {
                            title { (c) " " (o.as_str()) ": " (k) } }
                    }
                    text x=(end + 4.0) y=(y + 13.0) { (total(c)) }
                }
            }
        }
    }
}

/// Columns over the capture's time, each split into 2yz, 4yz and 5yz final replies.
pub fn replies_over_time(finals: &[(Timestamp, u8)]) -> Markup {
    const BUCKETS: usize = 40;
    let (Some(t0), Some(t1)) = (
        finals.iter().map(|f| f.0).min(),
        finals.iter().map(|f| f.0).max(),
    ) else {
        return html! { p { "None." } };
    };
    let span = t1.seconds_after(t0).max(1e-3);
    let mut cols = [[0u64; 3]; BUCKETS];
    for (ts, class) in finals {
        let i = ((ts.seconds_after(t0) / span) * (BUCKETS as f64 - 1.0)).round() as usize;
        // A transfer's final reply is 2yz, 4yz or 5yz; anything else is not drawn.
        let k = match class {
            2 => 0,
            4 => 1,
            5 => 2,
            _ => continue,
        };
        cols[i.min(BUCKETS - 1)][k] += 1;
    }
    let max = cols
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, base) = (360.0, 140.0, 120.0);
    let cw = w / BUCKETS as f64;
    let fills = ["#43a047", "#ef6c00", "#c62828"];
    let names = ["2yz", "4yz", "5yz"];
    // Stacked from the base up: (x, y, height, class, count).
    let mut rects = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        let mut y = base;
        for (k, &count) in c.iter().enumerate().filter(|(_, n)| **n > 0) {
            let ch = (base - 10.0) * count as f64 / max as f64;
            y -= ch;
            rects.push((i as f64 * cw, y, ch, k, count));
        }
    }
    html! {
        svg.bars width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" {
            @for (x, y, ch, k, count) in &rects {
                rect x=(x) y=(y) width=(cw - 1.0) height=(ch) fill=(fills[*k]) {
                    title { (names[*k]) ": " (count) } }
            }
            line x1="0" y1=(base) x2=(w) y2=(base) stroke="#999" {}
            text x="0" y=(base + 14.0) { (super::utc(t0)) }
            text x=(w) y=(base + 14.0) text-anchor="end" { (format!("{span:.0} s later")) }
        }
        p.legend { @for k in 0..3 { span { i style=(format!("background:{}", fills[k])) {} (names[k]) } } }
    }
}
