//! Line framing for one direction of a control connection.
//!
//! FTP lines end in CRLF (RFC 959 §4.1); real peers also send a bare LF, so LF ends a
//! line and one CR before it is dropped. Bytes are framed in place where a whole line
//! sits inside one delivery; only a line split across deliveries is copied, into a
//! buffer capped at `max_line` bytes. A longer line keeps its first `max_line` bytes
//! (enough to see the verb or reply code) and is reported as truncated.
//! After a gap in the stream the partial line before it is dropped, and the bytes after
//! it are framed as the start of a line: FTP peers write whole lines, so a lost segment
//! almost always ends at a line boundary. The first line after a gap is flagged, since
//! it may still be the tail of a lost line, so that its reader can drop it quietly if it
//! does not parse.
//! A partial line of binary junk (a non-FTP service on the port) does not swallow a
//! reply that starts a later delivery: it is handed out as a line of its own first.

/// One framed line, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than the cap; `bytes` holds its first `max_line` bytes.
    pub truncated: bool,
    /// The first line after a gap: it may be the tail of a line the capture lost.
    pub after_gap: bool,
}

#[derive(Debug)]
pub struct LineFramer {
    /// The start of a line that has not ended yet (never more than `max_line` bytes).
    partial: Vec<u8>,
    /// Bytes of the current line beyond the cap that were dropped.
    overflow: bool,
    /// The next line is the first after a gap.
    after_gap: bool,
    /// The buffered line was handed out by the last `next` and must be cleared.
    handed_out: bool,
}

impl LineFramer {
    pub const fn new() -> Self {
        LineFramer {
            partial: Vec::new(),
            overflow: false,
            after_gap: false,
            handed_out: false,
        }
    }

    /// The stream lost bytes: whatever line was in progress is gone.
    pub fn gap(&mut self) {
        self.partial = Vec::new();
        self.overflow = false;
        self.handed_out = false;
        self.after_gap = true;
    }

    /// Bytes held for an unfinished line (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.partial.capacity()
    }

    /// Frame `data`; call `next` on the result until it returns `None`.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8], max_line: usize) -> Lines<'f, 'd> {
        Lines {
            framer: self,
            data,
            max_line,
            at_start: true,
        }
    }
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new()
    }
}

/// A lending iterator over the lines completed by one delivery of bytes.
pub struct Lines<'f, 'd> {
    framer: &'f mut LineFramer,
    data: &'d [u8],
    max_line: usize,
    /// No line has been handed out from this delivery yet.
    at_start: bool,
}

impl<'d> Lines<'_, 'd> {
    /// The bytes of the delivery not framed yet (what follows the last line handed out).
    pub fn rest(&self) -> &'d [u8] {
        self.data
    }

    #[allow(clippy::should_implement_trait)] // lends from the framer: not an Iterator
    pub fn next(&mut self) -> Option<Line<'_>> {
        let f = &mut *self.framer;
        if f.handed_out {
            f.partial.clear();
            f.overflow = false;
            f.handed_out = false;
            if f.partial.capacity() > 512 {
                // A long line passed through: give back its memory, idle sessions stay small.
                f.partial = Vec::new();
            }
        }
        if std::mem::take(&mut self.at_start)
            && !f.partial.is_empty()
            && starts_like_reply(self.data)
            && f.partial.contains(&0)
        {
            // The spare byte kept for a CR is not part of a line that ends here.
            if f.partial.len() > self.max_line {
                f.partial.truncate(self.max_line);
                f.overflow = true;
            }
            f.handed_out = true;
            let after_gap = std::mem::take(&mut f.after_gap);
            return Some(Line {
                bytes: &f.partial,
                truncated: f.overflow,
                after_gap,
            });
        }
        if self.data.is_empty() {
            return None;
        }
        let Some(lf) = memchr_lf(self.data) else {
            // Keep one byte beyond the cap: it may be the CR of the line ending.
            let room = (self.max_line + 1).saturating_sub(f.partial.len());
            let take = room.min(self.data.len());
            f.partial.extend_from_slice(&self.data[..take]);
            if take < self.data.len() {
                f.overflow = true;
            }
            self.data = &[];
            return None;
        };
        let (head, rest) = self.data.split_at(lf);
        self.data = &rest[1..];
        if f.partial.is_empty() && !f.overflow {
            // The whole line is in this delivery: hand it out without copying.
            let line = strip_cr(head);
            let truncated = line.len() > self.max_line;
            let bytes = if truncated {
                &line[..self.max_line]
            } else {
                line
            };
            let after_gap = std::mem::take(&mut f.after_gap);
            return Some(Line {
                bytes,
                truncated,
                after_gap,
            });
        }
        let room = (self.max_line + 1).saturating_sub(f.partial.len());
        if head.len() > room {
            f.overflow = true;
        }
        f.partial.extend_from_slice(&head[..head.len().min(room)]);
        if !f.overflow && f.partial.last() == Some(&b'\r') {
            f.partial.pop();
        }
        if f.partial.len() > self.max_line {
            f.partial.truncate(self.max_line);
            f.overflow = true;
        }
        f.handed_out = true;
        let after_gap = std::mem::take(&mut f.after_gap);
        Some(Line {
            bytes: &f.partial,
            truncated: f.overflow,
            after_gap,
        })
    }
}

/// `NNN ` or `NNN-`: how a reply (or a reply's first line) starts.
fn starts_like_reply(d: &[u8]) -> bool {
    d.len() >= 4 && d[..3].iter().all(u8::is_ascii_digit) && matches!(d[3], b' ' | b'-')
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn memchr_lf(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(f: &mut LineFramer, chunks: &[&[u8]], max: usize) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for c in chunks {
            let mut lines = f.feed(c, max);
            while let Some(l) = lines.next() {
                out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.truncated));
            }
        }
        out
    }

    fn plain(v: &[&str]) -> Vec<(String, bool)> {
        v.iter().map(|s| (s.to_string(), false)).collect()
    }

    #[test]
    fn crlf_and_bare_lf_both_end_lines() {
        let mut f = LineFramer::new();
        let got = collect(&mut f, &[b"USER a\r\nPASS b\nQUIT\r\n"], 64);
        assert_eq!(got, plain(&["USER a", "PASS b", "QUIT"]));
    }

    #[test]
    fn line_split_across_deliveries_and_cr_split_from_lf() {
        let mut f = LineFramer::new();
        let got = collect(&mut f, &[b"22", b"0 hello\r", b"\n230 ok\r\n"], 64);
        assert_eq!(got, plain(&["220 hello", "230 ok"]));
    }

    #[test]
    fn unfinished_line_is_held_not_emitted() {
        let mut f = LineFramer::new();
        assert!(collect(&mut f, &[b"RETR fi"], 64).is_empty());
        assert_eq!(collect(&mut f, &[b"le\r\n"], 64), plain(&["RETR file"]));
    }

    #[test]
    fn over_long_line_in_one_delivery_is_cut_at_cap() {
        let mut f = LineFramer::new();
        let got = collect(&mut f, &[b"ABCDEFGHIJ\r\nOK\r\n"], 4);
        assert_eq!(
            got,
            vec![("ABCD".to_string(), true), ("OK".to_string(), false)]
        );
    }

    #[test]
    fn over_long_line_across_deliveries_keeps_memory_at_cap() {
        let mut f = LineFramer::new();
        let chunk = vec![b'x'; 1000];
        for _ in 0..100 {
            assert!(collect(&mut f, &[&chunk], 16).is_empty());
            assert!(f.partial.len() <= 17);
        }
        let got = collect(&mut f, &[b"yy\r\nNEXT\r\n"], 16);
        assert_eq!(got[0], ("x".repeat(16), true));
        assert_eq!(got[1], ("NEXT".to_string(), false));
    }

    #[test]
    fn cap_exactly_reached_is_not_truncation() {
        let mut f = LineFramer::new();
        let got = collect(&mut f, &[b"AB", b"CD\r\n"], 4);
        assert_eq!(got, plain(&["ABCD"]));
        let got = collect(&mut f, &[b"ABCD", b"\r", b"\n"], 4);
        assert_eq!(got, plain(&["ABCD"]));
        let got = collect(&mut f, &[b"ABCDE", b"\r\n"], 4);
        assert_eq!(got, vec![("ABCD".to_string(), true)]);
    }

    #[test]
    fn gap_drops_the_partial_line_and_flags_the_next() {
        let mut f = LineFramer::new();
        assert!(collect(&mut f, &[b"150 Open"], 64).is_empty());
        f.gap();
        let mut lines = f.feed(b"ing data\r\n226 done\r\n", 64);
        assert_eq!(
            lines.next(),
            Some(Line {
                bytes: b"ing data",
                truncated: false,
                after_gap: true
            })
        );
        assert_eq!(
            lines.next(),
            Some(Line {
                bytes: b"226 done",
                truncated: false,
                after_gap: false
            })
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn a_line_lost_whole_costs_nothing_after_it() {
        let mut f = LineFramer::new();
        assert_eq!(collect(&mut f, &[b"CWD a\r\n"], 64), plain(&["CWD a"]));
        f.gap(); // "CWD b\r\n" was not captured
        assert_eq!(collect(&mut f, &[b"CWD c\r\n"], 64), plain(&["CWD c"]));
    }

    #[test]
    fn junk_handed_out_before_a_reply_respects_the_cap() {
        // Found by the line_framer fuzz target: the junk line was one byte over the cap.
        let mut f = LineFramer::new();
        let mut junk = vec![b'x'; 10];
        junk.push(0);
        junk.extend(vec![b'y'; 20]);
        let got = collect(&mut f, &[&junk, b"220 ok\r\n"], 16);
        assert_eq!(got[0].0.len(), 16);
        assert!(got[0].1, "cut lines are flagged");
        assert_eq!(got[1], ("220 ok".to_string(), false));
    }

    #[test]
    fn binary_junk_does_not_swallow_a_following_reply() {
        let mut f = LineFramer::new();
        let got = collect(
            &mut f,
            &[b"SSH-2.0-x\r\n\x00\x00\x00D\x08junk", b"530 Sorry\r\n"],
            64,
        );
        assert_eq!(got, plain(&["SSH-2.0-x", "\0\0\0D\u{8}junk", "530 Sorry"]));
        // Text (no NUL) split before a code-like start stays one line.
        let got = collect(&mut f, &[b"213-size is ", b"426 bytes\r\n"], 64);
        assert_eq!(got, plain(&["213-size is 426 bytes"]));
    }

    #[test]
    fn empty_lines_are_lines() {
        let mut f = LineFramer::new();
        assert_eq!(collect(&mut f, &[b"\r\n\n"], 8), plain(&["", ""]));
    }
}
