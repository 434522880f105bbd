//! Protocol text on its way out. Every text kept for a record or shown in a diagnostic
//! is lossy UTF-8 and capped, and has a PASS argument masked; with redaction, the
//! session's user name is replaced too. One place, so that no output path forgets.

use super::counters::{Bound, Counters};

/// Protocol bytes become stored text here: lossy UTF-8, capped at `max` bytes (counted
/// when cut), and a PASS argument inside masked (a USER line that ran into the next
/// line without its CRLF is, to the server as to us, `USER ali?PASS secret`).
pub fn stored(b: &[u8], max: usize, counters: &mut dyn Counters) -> String {
    let mut s = String::from_utf8_lossy(b).into_owned();
    if cap(&mut s, max) {
        counters.bound_hit(Bound::StoredText);
    }
    mask_password(&mut s);
    s
}

/// A text meant for output, also one formatted from raw lines (an anomaly's detail, a
/// debug trace): a PASS argument in it is masked, and `redacted_user` (the session's
/// user name, when redacting) is replaced. Names shorter than 3 characters are left:
/// they would match everywhere.
pub fn scrub(mut s: String, redacted_user: Option<&str>) -> String {
    mask_password(&mut s);
    match redacted_user {
        Some(u) if u.len() >= 3 && s.contains(u) => s.replace(u, "****"),
        _ => s,
    }
}

/// Mask what follows a `PASS` token in protocol text that is not a parsed command: a
/// malformed reply line, an anomaly's detail. Such text can carry a client's PASS line
/// when the roles of a connection picked up mid-stream were guessed the wrong way
/// round, or when a peer echoes what it received. Matches `pass` in any case followed
/// by a blank, anywhere (also inside `9\0PASS`); everything after it on the line
/// becomes `****`. Ordinary reply texts ("Password required") are left as they are.
pub fn mask_password(s: &mut String) {
    let found = s
        .as_bytes()
        .windows(5)
        .position(|w| w[..4].eq_ignore_ascii_case(b"pass") && (w[4] == b' ' || w[4] == b'\t'));
    if let Some(i) = found {
        s.truncate(i + 5);
        s.push_str("****");
    }
}

/// Cut `s` to at most `max` bytes on a character boundary; true if it was cut.
pub fn cap(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// A line for a diagnostic: control characters escaped, short.
pub fn printable(b: &[u8]) -> String {
    let mut out = String::new();
    for ch in String::from_utf8_lossy(&b[..b.len().min(80)]).chars() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::counters::NoCounters;

    #[test]
    fn pass_in_other_text_is_masked() {
        let mask = |t: &str| {
            let mut s = t.to_string();
            mask_password(&mut s);
            s
        };
        // A client's PASS line seen in the server's direction (found by fuzzing).
        assert_eq!(mask("9\\u{0}PASS hunter2"), "9\\u{0}PASS ****");
        assert_eq!(mask("pass\thunter2 more"), "pass\t****");
        assert_eq!(
            mask("331 Password required for alice"),
            "331 Password required for alice"
        );
        assert_eq!(mask("PASS"), "PASS");
        assert_eq!(mask("Bypass ok"), "Bypass ****");
        assert_eq!(mask("ünïcode pass x"), "ünïcode pass ****");
    }

    #[test]
    fn stored_text_is_capped_on_a_character_boundary_and_masked() {
        assert_eq!(stored("héllo".as_bytes(), 2, &mut NoCounters), "h");
        assert_eq!(
            stored(b"USER a\xffPASS pw", 256, &mut NoCounters),
            "USER a\u{fffd}PASS ****"
        );
    }

    #[test]
    fn scrubbing_replaces_the_user_only_when_asked() {
        let s = || "331 Password required for alice".to_string();
        assert_eq!(scrub(s(), None), "331 Password required for alice");
        assert_eq!(scrub(s(), Some("alice")), "331 Password required for ****");
        assert_eq!(scrub(s(), Some("al")), "331 Password required for alice");
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable(b"230\x00ok\r"), "230\\u{0}ok\\r");
    }
}
