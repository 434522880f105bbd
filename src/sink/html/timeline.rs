//! The timeline: one row per control session (client → server), each transfer a bar
//! from its command to its final reply, coloured by outcome; a transfer that broke has
//! its cause written after it; the data connection's first FIN or RST is a tick on the
//! bar (a RST taller, in black). Every bar's title gives the transfer's details.

use maud::{Markup, html};

use super::charts::color;
use super::{SessionRow, TIMELINE_ROWS};
use crate::ftp::{CloseHow, Outcome, Timestamp};

const WIDTH: f64 = 1150.0;
const LABEL: f64 = 330.0;
const ROW: f64 = 18.0;
const AXIS: f64 = 24.0;
/// Transfers drawn on one session's row; a session with more says so at its end.
pub const BARS_PER_ROW: usize = 200;

/// Which sessions are drawn: all when they fit; else the troubled ones first, then the
/// earliest others; drawn in order of their start.
fn chosen(sessions: &[SessionRow]) -> Vec<&SessionRow> {
    let mut rows: Vec<&SessionRow> = sessions.iter().collect();
    if rows.len() > TIMELINE_ROWS {
        rows.sort_by_key(|s| (!s.troubled, s.start));
        rows.truncate(TIMELINE_ROWS);
    }
    rows.sort_by_key(|s| (s.start, s.id));
    rows
}

pub fn render(sessions: &[SessionRow], total: u64, bars_dropped: u64) -> Markup {
    let rows = chosen(sessions);
    let (Some(t0), Some(t1)) = (
        rows.iter().map(|s| s.start).min(),
        rows.iter().map(|s| s.end).max(),
    ) else {
        return html! { p { "No sessions." } };
    };
    let span = t1.seconds_after(t0).max(1e-3);
    let plot = WIDTH - LABEL - 140.0;
    let x = |t: Timestamp| LABEL + plot * (t.seconds_after(t0) / span).clamp(0.0, 1.0);
    let height = AXIS + ROW * rows.len() as f64 + 6.0;
    let troubled = sessions.iter().filter(|s| s.troubled).count();
    html! {
        @if (rows.len() as u64) < total {
            p.note { "Showing " (rows.len()) " of " (total) " sessions: "
                @if troubled > 0 { "every session with an aborted, failed or interrupted transfer first (" (troubled) "), then " }
                "the earliest others. The rest are in the counts and charts." }
        }
        @if bars_dropped > 0 {
            p.note { (bars_dropped) " transfers are not drawn (past " (super::MAX_BARS) "); they are counted." }
        }
        svg.timeline width=(WIDTH) height=(height) viewBox=(format!("0 0 {WIDTH} {height}")) role="img" {
            // The time axis.
            @for i in 0..=4 {
                @let f = i as f64 / 4.0;
                @let xi = LABEL + plot * f;
                line x1=(xi) y1=(AXIS - 6.0) x2=(xi) y2=(height) stroke="#eee" {}
                text x=(xi) y=(AXIS - 10.0) text-anchor="middle" {
                    (super::utc(t0.saturating_add(std::time::Duration::from_secs_f64(span * f)))[11..].to_string()) }
            }
            @for (i, s) in rows.iter().enumerate() {
                @let y = AXIS + i as f64 * ROW;
                g.session {
                    @if s.bars.len() > BARS_PER_ROW {
                        text x=(WIDTH - 2.0) y=(y + 12.0) text-anchor="end" {
                            "+" (s.bars.len() - BARS_PER_ROW) " more" }
                    }
                    text x=(LABEL - 8.0) y=(y + 12.0) text-anchor="end" {
                        (s.client) " → " (s.server) @if s.tls { " (TLS)" } }
                    line x1=(x(s.start)) y1=(y + 8.0) x2=(x(s.end)) y2=(y + 8.0) stroke="#bbb" {}
                    @for b in s.bars.iter().take(BARS_PER_ROW) {
                        @let (x0, x1) = (x(b.start), x(b.end));
                        rect.bar x=(x0) y=(y + 3.0) width=((x1 - x0).max(2.0)) height="10"
                            fill=(color(b.outcome)) data-outcome=(b.outcome.as_str()) { title { (b.title) } }
                        @if let Some((at, by, how)) = b.close {
                            @let tall = how == CloseHow::Rst;
                            line.teardown x1=(x(at)) y1=(if tall { y } else { y + 3.0 }) x2=(x(at))
                                y2=(if tall { y + 16.0 } else { y + 13.0 }) stroke=(if tall { "#000" } else { "#555" })
                                stroke-width="2" { title { "data connection: " (by.as_str()) " " (how.as_str()) } }
                        }
                        @if b.outcome != Outcome::Completed || b.cause.is_some() {
                            text.cause x=(x1.max(x0 + 2.0) + 3.0) y=(y + 12.0) fill=(color(b.outcome)) {
                                (b.cause.unwrap_or(b.outcome.as_str())) }
                        }
                    }
                }
            }
        }
    }
}
