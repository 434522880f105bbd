//! Server replies: the reply code, and multi-line replies (RFC 959 §4.2).
//!
//! A reply is a three-digit code and text. A multi-line reply starts with `NNN-` and
//! ends with a line that starts with the same code followed by a space; the lines in
//! between are text, even when they begin with digits (RFC 959 §4.2). Real servers
//! also end a reply with the bare code (`226` alone), repeat `NNN-` on every line
//! (ProFTPD banners), or glue text to the code (`230_no_space`); those are accepted,
//! and the last one is flagged so that it can be counted.

use std::fmt;
use std::num::NonZeroU16;

/// A reply code, 100..=699. The first digit is the class (1 preliminary, 2 completion,
/// 3 intermediate, 4 transient failure, 5 permanent failure, 6 protected reply from
/// RFC 2228); codes outside that range cannot be built.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyCode(NonZeroU16);

impl ReplyCode {
    pub fn new(code: u16) -> Option<ReplyCode> {
        if (100..=699).contains(&code) {
            NonZeroU16::new(code).map(ReplyCode)
        } else {
            None
        }
    }

    /// Three ASCII digits, first one 1-6.
    pub fn from_digits(d: &[u8]) -> Option<ReplyCode> {
        match d {
            [a @ b'1'..=b'6', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                let v = (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16;
                ReplyCode::new(v)
            }
            _ => None,
        }
    }

    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// The first digit, 1..=6.
    pub fn class(self) -> u8 {
        (self.get() / 100) as u8
    }

    pub fn is_preliminary(self) -> bool {
        self.class() == 1
    }

    /// Any reply that ends the command it answers (every class but 1yz).
    pub fn is_final(self) -> bool {
        !self.is_preliminary()
    }

    /// The class as Prometheus labels it: "1xx" .. "6xx".
    pub fn class_label(self) -> &'static str {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"][self.class() as usize - 1]
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// What one line says about itself, before multi-line context is applied.
#[derive(Debug, PartialEq, Eq)]
enum LineShape<'a> {
    /// `NNN text`, `NNN` alone, or `NNNtext` (`glued`).
    Last {
        code: ReplyCode,
        text: &'a [u8],
        glued: bool,
    },
    /// `NNN-text`.
    First { code: ReplyCode, text: &'a [u8] },
    /// No reply code at the start.
    NoCode,
}

fn shape(line: &[u8]) -> LineShape<'_> {
    if line.len() < 3 {
        return LineShape::NoCode;
    }
    let Some(code) = ReplyCode::from_digits(&line[..3]) else {
        return LineShape::NoCode;
    };
    match line.get(3) {
        None => LineShape::Last {
            code,
            text: &[],
            glued: false,
        },
        Some(b' ') => LineShape::Last {
            code,
            text: &line[4..],
            glued: false,
        },
        Some(b'-') => LineShape::First {
            code,
            text: &line[4..],
        },
        // A fourth digit means this is a number, not a reply code.
        Some(b'0'..=b'9') => LineShape::NoCode,
        Some(_) => LineShape::Last {
            code,
            text: &line[3..],
            glued: true,
        },
    }
}

/// What the assembler made of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyStep<'a> {
    /// A reply is complete. `text` is the text of a single-line reply (for a
    /// multi-line one only the code is kept).
    Reply {
        code: ReplyCode,
        text: Option<&'a [u8]>,
        multiline: bool,
        /// The code was followed by neither a space, a hyphen nor the line end.
        glued: bool,
    },
    /// A line inside a multi-line reply.
    Continues,
    /// A line outside any reply that does not start with a reply code.
    Malformed,
}

/// Tracks whether a multi-line reply is open. Holds no text: a reply of any number of
/// lines costs the same few bytes.
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    open: Option<ReplyCode>,
}

impl ReplyAssembler {
    pub const fn new() -> Self {
        ReplyAssembler { open: None }
    }

    #[cfg(test)]
    fn in_multiline(&self) -> bool {
        self.open.is_some()
    }

    /// The stream lost bytes: an open multi-line reply can no longer be followed.
    pub fn gap(&mut self) {
        self.open = None;
    }

    pub fn line<'a>(&mut self, line: &'a [u8]) -> ReplyStep<'a> {
        let s = shape(line);
        if let Some(open) = self.open {
            return match s {
                LineShape::Last { code, glued, .. } if code == open => {
                    self.open = None;
                    ReplyStep::Reply {
                        code,
                        text: None,
                        multiline: true,
                        glued,
                    }
                }
                _ => ReplyStep::Continues,
            };
        }
        match s {
            LineShape::Last { code, text, glued } => ReplyStep::Reply {
                code,
                text: Some(text),
                multiline: false,
                glued,
            },
            LineShape::First { code, .. } => {
                self.open = Some(code);
                ReplyStep::Continues
            }
            LineShape::NoCode => ReplyStep::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: u16) -> ReplyCode {
        ReplyCode::new(c).unwrap()
    }

    fn run(lines: &[&str]) -> Vec<String> {
        let mut a = ReplyAssembler::new();
        lines
            .iter()
            .map(|l| match a.line(l.as_bytes()) {
                ReplyStep::Reply {
                    code,
                    text,
                    multiline,
                    glued,
                } => format!(
                    "{code}{}{}{}",
                    if multiline { " multi" } else { "" },
                    if glued { " glued" } else { "" },
                    text.map(|t| format!(" [{}]", String::from_utf8_lossy(t)))
                        .unwrap_or_default()
                ),
                ReplyStep::Continues => "..".into(),
                ReplyStep::Malformed => "malformed".into(),
            })
            .collect()
    }

    #[test]
    fn code_range_is_enforced() {
        assert!(ReplyCode::new(99).is_none());
        assert!(ReplyCode::new(100).is_some());
        assert!(ReplyCode::new(699).is_some());
        assert!(ReplyCode::new(700).is_none());
        assert!(ReplyCode::from_digits(b"000").is_none());
        assert!(ReplyCode::from_digits(b"999").is_none());
        assert!(ReplyCode::from_digits(b"099").is_none());
        assert!(ReplyCode::from_digits(b"7aa").is_none());
        assert_eq!(ReplyCode::from_digits(b"632"), Some(code(632)));
        assert_eq!(code(426).class_label(), "4xx");
        assert!(code(150).is_preliminary());
        assert!(code(226).is_final());
    }

    #[test]
    fn single_line_forms() {
        assert_eq!(
            run(&["226 Transfer complete.", "226", "200 "]),
            ["226 [Transfer complete.]", "226 []", "200 []"]
        );
    }

    #[test]
    fn code_glued_to_text_is_accepted_and_flagged() {
        assert_eq!(run(&["230_no_space"]), ["230 glued [_no_space]"]);
    }

    #[test]
    fn not_a_code() {
        assert_eq!(
            run(&[
                "99 PASV invalid",
                "SYST not supported",
                "2300 four digits",
                "000 zero",
                "999 nine",
                "",
                "22"
            ]),
            vec!["malformed"; 7]
        );
    }

    #[test]
    fn multiline_with_embedded_code_like_lines() {
        assert_eq!(
            run(&[
                "230-Welcome",
                "220 this is text, not a reply",
                "230-still text",
                "    indented 230 text",
                "230 Login ok",
                "200 next",
            ]),
            ["..", "..", "..", "..", "230 multi", "200 [next]"]
        );
    }

    #[test]
    fn multiline_ended_by_bare_code() {
        assert_eq!(
            run(&["211-Features:", " MDTM", "211"]),
            ["..", "..", "211 multi"]
        );
    }

    #[test]
    fn multiline_where_every_line_repeats_the_code() {
        let mut lines = vec!["220-banner"; 11];
        lines.push("220 ready");
        let got = run(&lines);
        assert_eq!(got.iter().filter(|s| s.starts_with("220")).count(), 1);
        assert_eq!(got.last().unwrap(), "220 multi");
    }

    #[test]
    fn hundred_thousand_line_reply_holds_no_state_but_the_code() {
        let mut a = ReplyAssembler::new();
        assert_eq!(a.line(b"213-status"), ReplyStep::Continues);
        for _ in 0..100_000 {
            assert_eq!(
                a.line(b"-rw-r--r-- 1 ftp ftp 426 file"),
                ReplyStep::Continues
            );
        }
        assert!(matches!(
            a.line(b"213 End"),
            ReplyStep::Reply {
                multiline: true,
                ..
            }
        ));
        assert_eq!(std::mem::size_of::<ReplyAssembler>(), 2);
    }

    #[test]
    fn gap_closes_an_open_multiline() {
        let mut a = ReplyAssembler::new();
        a.line(b"230-Welcome");
        a.gap();
        assert!(!a.in_multiline());
        assert!(matches!(a.line(b"250 ok"), ReplyStep::Reply { .. }));
    }
}
