//! Client commands: the verb (case-insensitive, RFC 959 §5.3) and its argument.
//!
//! Unknown verbs are kept as `Verb::Other` and never stop the session. A BSD-style ABOR
//! arrives behind the Telnet "interrupt process" and "synch" bytes (IAC IP IAC DM,
//! RFC 959 §4.1.3); those are skipped so that the ABOR is seen.
//! The argument of PASS is never exposed: `Command::arg` returns nothing for it and the
//! `Display` form prints `PASS ****`.

use std::fmt;

macro_rules! verbs {
    ($($v:ident),* $(,)?) => {
        /// A command verb. `Other` is any verb outside this list.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Verb { $($v,)* Other }

        impl Verb {
            /// Every verb, for metric pre-registration and documentation.
            pub const ALL: &'static [Verb] = &[$(Verb::$v,)* Verb::Other];

            /// Upper-case name; `other` for unknown verbs (a bounded metric label).
            pub fn as_str(self) -> &'static str {
                match self { $(Verb::$v => stringify!($v),)* Verb::Other => "other" }
            }

            fn from_upper(v: &[u8]) -> Verb {
                $(if v == stringify!($v).as_bytes() { return Verb::$v; })*
                Verb::Other
            }
        }
    };
}

// RFC 959, 2228 (security), 2389 (FEAT/OPTS), 2428 (EPRT/EPSV), 2640 (LANG), 3659
// (SIZE/MDTM/MLST/MLSD), 7151 (HOST), and the X* variants from RFC 775 still sent.
verbs!(
    USER, PASS, ACCT, CWD, CDUP, SMNT, REIN, QUIT, PORT, PASV, TYPE, STRU, MODE, RETR, STOR, STOU,
    APPE, ALLO, REST, RNFR, RNTO, ABOR, DELE, RMD, MKD, PWD, LIST, NLST, SITE, SYST, STAT, HELP,
    NOOP, FEAT, OPTS, AUTH, ADAT, PROT, PBSZ, CCC, MIC, CONF, ENC, EPRT, EPSV, LANG, SIZE, MDTM,
    MLSD, MLST, HOST, XCUP, XCWD, XMKD, XPWD, XRMD, CLNT, MFMT, MFCT, MFF,
);

impl Verb {
    /// The commands that move a file or a listing over a data connection.
    pub const TRANSFERS: [Verb; 7] = [
        Verb::RETR,
        Verb::STOR,
        Verb::STOU,
        Verb::APPE,
        Verb::LIST,
        Verb::NLST,
        Verb::MLSD,
    ];

    /// One of `TRANSFERS`.
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            Verb::RETR
                | Verb::STOR
                | Verb::STOU
                | Verb::APPE
                | Verb::LIST
                | Verb::NLST
                | Verb::MLSD
        )
    }

    /// Data flows from the client to the server.
    pub fn is_upload(self) -> bool {
        matches!(self, Verb::STOR | Verb::STOU | Verb::APPE)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest verb we try to recognise; anything longer is `Other` (RFC verbs are 3-4).
const MAX_VERB: usize = 4;

/// A parsed command line. Borrowed from the line; the engine copies what it keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: Verb,
    /// The verb as sent (after Telnet bytes), for diagnostics.
    pub raw_verb: &'a [u8],
    arg: &'a [u8],
    /// Telnet IAC bytes preceded the verb (a BSD-style ABOR).
    pub telnet_prefix: bool,
}

impl<'a> Command<'a> {
    /// The argument (leading and trailing blanks trimmed), never PASS's.
    pub fn arg(&self) -> Option<&'a [u8]> {
        if self.verb == Verb::PASS || self.arg.is_empty() {
            None
        } else {
            Some(self.arg)
        }
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verb {
            Verb::Other => write!(f, "{}", String::from_utf8_lossy(self.raw_verb))?,
            v => write!(f, "{v}")?,
        }
        if self.verb == Verb::PASS {
            f.write_str(" ****")
        } else if let Some(a) = self.arg() {
            write!(f, " {}", String::from_utf8_lossy(a))
        } else {
            Ok(())
        }
    }
}

const IAC: u8 = 0xff;
const DM: u8 = 0xf2;

/// Parse one command line (without its line ending). Returns `None` for a line with no
/// verb at all (empty, blanks, or only Telnet bytes), which is not a command.
///
/// The line stops at a CR: a CR inside a line is a line ending the peer mangled (a
/// client ending lines with a bare CR sends `USER alice\rPASS secret` as one line),
/// and what follows it is another command, never part of this one's argument.
pub fn parse(line: &[u8]) -> Option<Command<'_>> {
    let line = match line.iter().position(|&b| b == b'\r') {
        Some(cr) => &line[..cr],
        None => line,
    };
    let mut rest = line;
    let mut telnet_prefix = false;
    loop {
        match rest {
            [IAC, _, tail @ ..] => {
                telnet_prefix = true;
                rest = tail;
            }
            // The Synch's data mark can arrive without its IAC (sent as urgent data).
            [DM, tail @ ..] => {
                telnet_prefix = true;
                rest = tail;
            }
            [b' ' | b'\t', tail @ ..] => rest = tail,
            _ => break,
        }
    }
    if rest.is_empty() {
        return None;
    }
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let raw_verb = &rest[..end];
    let arg = trim(rest.get(end + 1..).unwrap_or(&[]));
    let verb = if raw_verb.len() <= MAX_VERB {
        let mut up = [0u8; MAX_VERB];
        for (u, b) in up.iter_mut().zip(raw_verb) {
            *u = b.to_ascii_uppercase();
        }
        Verb::from_upper(&up[..raw_verb.len()])
    } else {
        Verb::Other
    };
    Some(Command {
        verb,
        raw_verb,
        arg,
        telnet_prefix,
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse(b"retr a.txt").unwrap().verb, Verb::RETR);
        assert_eq!(parse(b"Epsv").unwrap().verb, Verb::EPSV);
        assert_eq!(
            parse(b"RETR  spaced name.txt ").unwrap().arg(),
            Some(&b"spaced name.txt"[..])
        );
    }

    #[test]
    fn unknown_and_over_long_verbs_are_other() {
        let c = parse(b"XYZZY now").unwrap();
        assert_eq!(c.verb, Verb::Other);
        assert_eq!(c.to_string(), "XYZZY now");
        let long = format!("SYST{}", "T".repeat(128));
        assert_eq!(parse(long.as_bytes()).unwrap().verb, Verb::Other);
        assert_eq!(parse(b"RETRX").unwrap().verb, Verb::Other);
    }

    #[test]
    fn pass_argument_is_never_exposed() {
        let c = parse(b"PASS hunter2").unwrap();
        assert_eq!(c.verb, Verb::PASS);
        assert_eq!(c.arg(), None);
        assert_eq!(c.to_string(), "PASS ****");
        assert_eq!(format!("{c:?}"), "PASS ****");
        assert!(!format!("{c} {c:?}").contains("hunter2"));
        assert_eq!(parse(b"pass hunter2").unwrap().arg(), None);
    }

    #[test]
    fn a_bare_cr_ends_the_argument_so_a_merged_pass_never_shows() {
        // Found by the pipeline fuzz target.
        let c = parse(b"USER alice\xff\rPASS fuzz-secret").unwrap();
        assert_eq!(c.verb, Verb::USER);
        assert_eq!(c.arg(), Some(&b"alice\xff"[..]));
        assert!(!c.to_string().contains("fuzz-secret"));
        assert_eq!(parse(b"CWD \rPASS x").unwrap().arg(), None);
        let glued = parse(b"USER\rPASS x").unwrap();
        assert_eq!((glued.verb, glued.arg()), (Verb::USER, None));
    }

    #[test]
    fn telnet_interrupt_before_abor_is_skipped() {
        let c = parse(b"\xff\xf4\xff\xf2ABOR").unwrap();
        assert_eq!(c.verb, Verb::ABOR);
        assert!(c.telnet_prefix);
        let c = parse(b"\xff\xf4\xf2ABOR").unwrap();
        assert_eq!(c.verb, Verb::ABOR);
        assert!(!parse(b"ABOR").unwrap().telnet_prefix);
    }

    #[test]
    fn not_commands() {
        assert!(parse(b"").is_none());
        assert!(parse(b"   ").is_none());
        assert!(parse(b"\xff\xf4").is_none());
    }

    #[test]
    fn binary_and_invalid_utf8_are_other_and_print_safely() {
        let c = parse(b"\x00\xc3\x28 \xfe").unwrap();
        assert_eq!(c.verb, Verb::Other);
        assert!(c.to_string().contains('\u{fffd}'));
    }

    #[test]
    fn the_transfer_verbs_are_the_ones_listed() {
        for v in Verb::ALL {
            assert_eq!(v.is_transfer(), Verb::TRANSFERS.contains(v), "{v}");
        }
    }

    #[test]
    fn every_verb_round_trips_through_its_name() {
        for v in Verb::ALL {
            if *v != Verb::Other {
                assert_eq!(parse(v.as_str().as_bytes()).unwrap().verb, *v);
            }
        }
    }
}
