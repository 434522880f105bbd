//! Which replies can answer which command: RFC 959 §5.4 "Command-Reply Sequences",
//! with the verbs of RFC 2228 (security), 2389 (FEAT/OPTS), 2428 (EPRT/EPSV), 2640
//! (LANG), 3659 (SIZE/MDTM/MLST/MLSD), 4217 (FTPS), 7151 (HOST) and the few extras
//! common servers send (250 to CDUP, 200 to CWD).
//!
//! A command is first `Sent`. A preliminary reply (1yz) moves a transfer to `Started`;
//! from then on only its completion set ends it: 226/250, 425, 426, 451, 551, 552, and
//! 421 (the server closing the whole session). 500-504 and 530 answer a command before
//! any 1yz, never after one, so they cannot end a transfer that has started: they
//! answer a command sent during it (a mangled ABOR, a NOOP). Before a 1yz, any 4yz or
//! 5yz can answer any command (servers use many more error codes than §5.4 lists),
//! except 426, which only a transfer gets.

use super::command::Verb;
use super::reply::ReplyCode;

/// How far a command has got through its reply sequence.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// No reply yet.
    Sent,
    /// A preliminary reply came (a transfer's 125/150, REIN's 120).
    Started,
}

/// What a reply would be to a command at a given stage.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fit {
    /// A 1yz the command expects: it goes on waiting, `Started`.
    Preliminary,
    /// A reply that ends the command.
    Final,
    /// Not a reply this command can get now.
    No,
}

/// Codes that end a transfer after its 1yz (RFC 959 §5.4, STOR/RETR/LIST/APPE...).
const TRANSFER_COMPLETION: &[u16] = &[226, 250, 425, 426, 451, 551, 552, 421];

/// Can `code` answer `verb` at `stage`, and how?
pub fn fit(verb: Verb, stage: Stage, code: ReplyCode) -> Fit {
    let c = code.get();
    if verb.is_transfer() {
        return match (stage, code.class()) {
            // 110 (restart marker) and a repeated 150 (pure-ftpd's statistics line).
            (_, 1) => Fit::Preliminary,
            (Stage::Started, _) if TRANSFER_COMPLETION.contains(&c) => Fit::Final,
            (Stage::Started, _) => Fit::No,
            (Stage::Sent, 4 | 5) => Fit::Final,
            // A server that skips the 1yz (or one the capture lost) still ends it.
            (Stage::Sent, 2) if matches!(c, 226 | 250) => Fit::Final,
            (Stage::Sent, _) => Fit::No,
        };
    }
    match (verb, stage) {
        (Verb::REIN, Stage::Sent) if c == 120 => return Fit::Preliminary,
        (Verb::REIN, Stage::Started) => {
            return if matches!(c, 220 | 421) {
                Fit::Final
            } else {
                Fit::No
            };
        }
        // An unknown verb may have any sequence.
        (Verb::Other, _) if code.is_preliminary() => return Fit::Preliminary,
        _ => {}
    }
    let ok = match code.class() {
        // 426 says a data connection closed: only a transfer gets it (an ABOR's 426 is
        // the aborted transfer's, RFC 959 §4.1.3).
        4 | 5 => c != 426,
        1 => false,
        _ => positive(verb, c),
    };
    if ok { Fit::Final } else { Fit::No }
}

/// The positive (2yz, 3yz, 6yz) replies that end a command that is not a transfer.
fn positive(verb: Verb, c: u16) -> bool {
    use Verb::*;
    match verb {
        USER => matches!(c, 230 | 232 | 331 | 332 | 336),
        PASS => matches!(c, 202 | 230 | 332),
        ACCT => matches!(c, 202 | 230),
        CWD | XCWD | CDUP | XCUP => matches!(c, 200 | 250),
        SMNT => matches!(c, 202 | 250),
        REIN => c == 220,
        QUIT => c == 221,
        PORT | EPRT | TYPE | STRU | MODE | PROT | PBSZ | CCC | LANG | NOOP | CLNT => {
            matches!(c, 200 | 202)
        }
        PASV => c == 227,
        // 200 answers `EPSV ALL`.
        EPSV => matches!(c, 200 | 229),
        ALLO => matches!(c, 200 | 202),
        REST | RNFR => c == 350,
        RNTO | DELE | RMD | XRMD => matches!(c, 200 | 250),
        MLST => c == 250,
        MFMT | MFCT | MFF => c == 213,
        ABOR => matches!(c, 225 | 226),
        MKD | XMKD | PWD | XPWD => c == 257,
        SYST => c == 215,
        STAT => (211..=213).contains(&c),
        HELP => matches!(c, 211 | 214),
        FEAT => c == 211,
        SIZE | MDTM => c == 213,
        AUTH => matches!(c, 234 | 334),
        ADAT => matches!(c, 235 | 335),
        // Protected replies (631-633) answer protected commands.
        MIC | CONF | ENC => c >= 600 || matches!(c, 200 | 235 | 335),
        SITE | OPTS | HOST => (200..300).contains(&c),
        Other => true,
        RETR | STOR | STOU | APPE | LIST | NLST | MLSD => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(verb: Verb, stage: Stage, code: u16) -> Fit {
        fit(verb, stage, ReplyCode::new(code).expect("valid code"))
    }

    #[test]
    fn a_transfer_starts_with_125_or_150_and_ends_with_its_completion_set() {
        for v in Verb::TRANSFERS {
            for c in [110, 125, 150] {
                assert_eq!(f(v, Stage::Sent, c), Fit::Preliminary, "{v} {c}");
                assert_eq!(f(v, Stage::Started, c), Fit::Preliminary, "{v} {c}");
            }
            for c in [226, 250, 425, 426, 451, 551, 552, 421] {
                assert_eq!(f(v, Stage::Started, c), Fit::Final, "{v} {c}");
            }
        }
    }

    #[test]
    fn after_a_1yz_no_command_error_or_other_completion_ends_a_transfer() {
        for v in Verb::TRANSFERS {
            // 500-504 and 530 answer commands before any 1yz (a mangled ABOR's 500).
            for c in [500, 501, 502, 503, 504, 530] {
                assert_eq!(f(v, Stage::Started, c), Fit::No, "{v} {c}");
                assert_eq!(f(v, Stage::Sent, c), Fit::Final, "{v} {c}");
            }
            // A NOOP's 200 (pure-ftpd after a reset download, IIS during one).
            for c in [200, 211, 213, 221, 225, 227, 229, 257, 350] {
                assert_eq!(f(v, Stage::Started, c), Fit::No, "{v} {c}");
            }
        }
    }

    #[test]
    fn before_a_1yz_a_transfer_is_refused_by_any_error_never_by_a_200() {
        assert_eq!(f(Verb::RETR, Stage::Sent, 550), Fit::Final);
        assert_eq!(f(Verb::STOR, Stage::Sent, 553), Fit::Final);
        assert_eq!(f(Verb::LIST, Stage::Sent, 450), Fit::Final);
        assert_eq!(f(Verb::RETR, Stage::Sent, 425), Fit::Final);
        assert_eq!(f(Verb::RETR, Stage::Sent, 226), Fit::Final);
        assert_eq!(f(Verb::RETR, Stage::Sent, 200), Fit::No);
        assert_eq!(f(Verb::RETR, Stage::Sent, 225), Fit::No);
        assert_eq!(f(Verb::NLST, Stage::Sent, 331), Fit::No);
    }

    #[test]
    fn abor_takes_225_226_and_errors_not_426() {
        assert_eq!(f(Verb::ABOR, Stage::Sent, 225), Fit::Final);
        assert_eq!(f(Verb::ABOR, Stage::Sent, 226), Fit::Final);
        assert_eq!(f(Verb::ABOR, Stage::Sent, 500), Fit::Final);
        assert_eq!(f(Verb::ABOR, Stage::Sent, 426), Fit::No);
        assert_eq!(f(Verb::NOOP, Stage::Sent, 426), Fit::No);
        assert_eq!(f(Verb::ABOR, Stage::Sent, 150), Fit::No);
        assert_eq!(f(Verb::ABOR, Stage::Sent, 200), Fit::No);
    }

    #[test]
    fn rfc_959_sequences_of_the_other_commands() {
        use Verb::*;
        let finals: &[(Verb, &[u16])] = &[
            (USER, &[230, 331, 332, 232, 336, 530, 500, 501, 421]),
            (PASS, &[230, 202, 332, 530, 503]),
            (ACCT, &[230, 202]),
            (CWD, &[250, 550]),
            (CDUP, &[200, 250]),
            (SMNT, &[202, 250]),
            (QUIT, &[221, 500]),
            (PORT, &[200, 500, 501]),
            (EPRT, &[200, 522]),
            (PASV, &[227, 502]),
            (EPSV, &[229, 200, 522]),
            (TYPE, &[200, 504]),
            (MODE, &[200]),
            (STRU, &[200]),
            (ALLO, &[200, 202]),
            (REST, &[350, 502]),
            (RNFR, &[350, 450, 550]),
            (RNTO, &[250, 532, 553, 503]),
            (DELE, &[250, 450, 550]),
            (RMD, &[250]),
            (MKD, &[257]),
            (PWD, &[257]),
            (SYST, &[215]),
            (STAT, &[211, 212, 213, 450]),
            (HELP, &[211, 214]),
            (SITE, &[200, 202, 214]),
            (NOOP, &[200, 421]),
            (FEAT, &[211]),
            (OPTS, &[200, 451]),
            (AUTH, &[234, 334, 431, 534]),
            (ADAT, &[235, 335]),
            (PBSZ, &[200]),
            (PROT, &[200, 536]),
            (CCC, &[200, 533]),
            (MIC, &[631, 632, 633, 535]),
            (SIZE, &[213, 550]),
            (MDTM, &[213]),
            (MLST, &[250]),
            (LANG, &[200]),
            (HOST, &[220, 504]),
        ];
        for (v, codes) in finals {
            for c in *codes {
                assert_eq!(f(*v, Stage::Sent, *c), Fit::Final, "{v} {c}");
            }
        }
        let never: &[(Verb, &[u16])] = &[
            (QUIT, &[200, 226]),
            (PASV, &[200, 229]),
            (NOOP, &[150, 226, 227]),
            (STAT, &[226]),
            (SYST, &[200]),
            (USER, &[200, 150]),
            (SIZE, &[226]),
            (CCC, &[226]),
        ];
        for (v, codes) in never {
            for c in *codes {
                assert_eq!(f(*v, Stage::Sent, *c), Fit::No, "{v} {c}");
            }
        }
    }

    #[test]
    fn rein_has_a_preliminary_120() {
        assert_eq!(f(Verb::REIN, Stage::Sent, 120), Fit::Preliminary);
        assert_eq!(f(Verb::REIN, Stage::Sent, 220), Fit::Final);
        assert_eq!(f(Verb::REIN, Stage::Started, 220), Fit::Final);
        assert_eq!(f(Verb::REIN, Stage::Started, 500), Fit::No);
    }

    #[test]
    fn an_unknown_verb_takes_anything() {
        for c in [150, 200, 299, 331, 500, 632] {
            assert_ne!(f(Verb::Other, Stage::Sent, c), Fit::No, "{c}");
        }
    }

    #[test]
    fn every_verb_stage_and_code_has_an_answer_of_the_right_kind() {
        for v in Verb::ALL {
            for stage in [Stage::Sent, Stage::Started] {
                for c in 100..=699u16 {
                    let got = f(*v, stage, c);
                    let prelim = (100..200).contains(&c);
                    let kind_ok = match got {
                        Fit::Preliminary => prelim,
                        Fit::Final => !prelim,
                        Fit::No => true,
                    };
                    assert!(kind_ok, "{v} {stage:?} {c}: {got:?}");
                    if stage == Stage::Started && v.is_transfer() && got == Fit::Final {
                        assert!(TRANSFER_COMPLETION.contains(&c), "{v} ended by {c}");
                    }
                }
            }
        }
    }
}
