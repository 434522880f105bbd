//! The HTML report (`ftpwatch read --html`), checked by its structure: a row per
//! session, a bar per transfer, every transfer that went wrong in the table with its
//! cause, nothing fetched from anywhere; and its bounds at 10,000 sessions. What a real
//! browser makes of it is tests/e2e/html.sh (headless Chromium).

mod common;

use std::path::Path;

use common::{analyse_with, sessions, transfers};
use ftpwatch::ftp::{Event, Outcome};
use ftpwatch::pipeline::{Pipeline, Settings};
use ftpwatch::sink::EventSink;
use ftpwatch::sink::html::{HtmlReport, TABLE_ROWS, TIMELINE_ROWS};
use ftpwatch::synth::FtpSim;
use ftpwatch::synth::ftp::DownloadEnd;

fn render(events: &[Event], p: &Pipeline, name: &str) -> String {
    let mut h = HtmlReport::default();
    for e in events {
        h.event(e);
    }
    h.render(p.metrics(), &[name.to_string()]).into_string()
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// Nothing the page would fetch: no script, no link, no image or font from anywhere.
fn self_contained(html: &str) {
    for bad in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!html.contains(bad), "the page contains {bad:?}");
    }
}

#[test]
fn every_recorded_capture_has_a_row_per_session_a_bar_per_transfer_and_its_troubles_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let (events, p) = analyse_with(&bytes, Settings::default());
        let html = render(&events, &p, &name);
        let (s, t) = (sessions(&events), transfers(&events));
        assert!(s.len() <= TIMELINE_ROWS);
        assert_eq!(
            count(&html, "<g class=\"session\">"),
            s.len(),
            "{name}: rows"
        );
        assert_eq!(count(&html, "<rect class=\"bar\""), t.len(), "{name}: bars");
        for o in Outcome::ALL {
            let n = t.iter().filter(|x| x.outcome == o).count();
            let drawn = count(&html, &format!("data-outcome=\"{}\"", o.as_str()));
            assert_eq!(drawn, n, "{name}: {} bars", o.as_str());
        }
        // The table: one row per transfer that went wrong, with its cause.
        let troubled: Vec<_> = t
            .iter()
            .filter(|x| x.outcome != Outcome::Completed || x.interruption_cause.is_some())
            .collect();
        let table = html
            .split("<h2>Aborted, failed and interrupted transfers</h2>")
            .nth(1)
            .unwrap()
            .split("<h2>Anomalies</h2>")
            .next()
            .unwrap();
        assert_eq!(
            count(table, "<tr>") - usize::from(!troubled.is_empty()),
            troubled.len(),
            "{name}: table rows"
        );
        for x in &troubled {
            if let Some(c) = x.abort_cause.or(x.interruption_cause) {
                assert!(
                    table.contains(&format!("<b>{}</b>", c.as_str())),
                    "{name}: cause {c:?}"
                );
            }
        }
        self_contained(&html);
        assert!(html.contains("<h2>Capture health</h2>"));
    }
}

#[test]
fn ten_thousand_sessions_are_drawn_as_the_troubled_first_within_the_bounds_and_it_says_so() {
    let mut cap = None;
    let mut frames = Vec::new();
    for i in 0..10_500u32 {
        let mut s = FtpSim::numbered(i);
        // One session a second: no two announce the server's same data port at once.
        s.cap.advance(std::time::Duration::from_secs(u64::from(i)));
        s.connect();
        s.login("u", "p");
        // One session in 50 has its download reset by the client.
        let end = if i % 50 == 7 {
            DownloadEnd::ClientReset
        } else {
            DownloadEnd::Completed
        };
        s.download("f.bin", 3_000, 1448, end);
        s.quit();
        frames.extend(s.cap.take_frames());
        cap.get_or_insert(s.cap);
    }
    let mut cap = cap.unwrap();
    for (ts, f) in frames {
        cap.push_at(ts, f);
    }
    let (events, p) = analyse_with(&cap.to_pcap(), Settings::default());
    assert_eq!(sessions(&events).len(), 10_500);
    let html = render(&events, &p, "synthetic");
    assert_eq!(count(&html, "<g class=\"session\">"), TIMELINE_ROWS);
    assert!(
        html.contains("Showing 300 of 10500 sessions"),
        "the page says what it left out"
    );
    assert!(
        html.contains("every session with an aborted, failed or interrupted transfer first (210)")
    );
    // All 210 troubled sessions are among the rows drawn.
    assert_eq!(count(&html, "data-outcome=\"aborted\""), 210);
    assert!(count(&html, "<tr>") < TABLE_ROWS + 100);
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
    self_contained(&html);
}
