//! The commands of a session waiting for replies, and which of them a reply goes to.
//!
//! Replies come in command order (RFC 959), and `sequence` says which replies each
//! command can get. Real servers need a few repairs on top, each decided here:
//! - a server that answers a command sent during a transfer (STAT, NOOP, a mangled
//!   ABOR's 500) before the transfer's own final reply: the transfer keeps waiting;
//! - a server that skipped a reply: the commands before the one that can take the
//!   reply got none;
//! - a server that moved on to the next transfer without a final reply for one whose
//!   data connection is gone (pure-ftpd after a reset download);
//! - an ABOR behind a transfer, where a 226 may be either's: it is held until the next
//!   reply tells.

use std::collections::VecDeque;

use super::command::Verb;
use super::reply::ReplyCode;
use super::sequence::{Fit, Stage, fit};
use super::transfer::Transfer;

/// A command waiting for its final reply.
#[derive(Debug)]
pub struct Pending {
    pub verb: Verb,
    pub stage: Stage,
    pub kind: PendingKind,
    /// A line without a reply code arrived while this was the oldest command: it may
    /// have been the answer.
    pub malformed_answer: bool,
}

#[derive(Debug)]
pub enum PendingKind {
    Plain,
    Transfer(Box<Transfer>),
    /// SIZE of this path (to pair the 213 with a later RETR).
    Size(Box<str>),
}

impl Pending {
    pub fn new(verb: Verb, kind: PendingKind) -> Self {
        Pending {
            verb,
            stage: Stage::Sent,
            kind,
            malformed_answer: false,
        }
    }

    pub fn transfer(&self) -> Option<&Transfer> {
        match &self.kind {
            PendingKind::Transfer(t) => Some(t),
            _ => None,
        }
    }

    fn fits(&self, code: ReplyCode) -> Fit {
        fit(self.verb, self.stage, code)
    }

    /// A transfer past its 1yz: the server is busy with it.
    fn started_transfer(&self) -> Option<&Transfer> {
        self.transfer().filter(|_| self.stage == Stage::Started)
    }
}

/// Where a reply goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// The first `skipped` commands got no reply; the one after them takes this one.
    Head { skipped: usize, fit: Fit },
    /// The command at `index` takes it; the transfer at the head keeps waiting.
    Behind { index: usize, fit: Fit },
    /// A 2yz that the transfer at the head and the ABOR behind it could both take.
    Hold,
    /// No waiting command can take it.
    Nobody,
}

/// Where `code` goes in `queue`. `data_open` tells whether a transfer's data connection
/// was seen and has not closed.
pub fn route(
    queue: &VecDeque<Pending>,
    code: ReplyCode,
    data_open: impl Fn(&Transfer) -> bool,
) -> Route {
    let Some(head) = queue.front() else {
        return Route::Nobody;
    };
    let later = || {
        (1..queue.len()).find_map(|k| match queue[k].fits(code) {
            Fit::No => None,
            f => Some((k, f)),
        })
    };
    let head_fit = head.fits(code);
    let busy = head.started_transfer();
    // A server runs one transfer at a time: a 1yz that a later transfer can take,
    // while the head's data connection is gone, starts the later one.
    let moved_on = head_fit == Fit::Preliminary
        && busy.is_some_and(|t| !data_open(t))
        && queue
            .iter()
            .skip(1)
            .any(|p| p.verb.is_transfer() && p.fits(code) == Fit::Preliminary);
    if head_fit != Fit::No && !moved_on {
        let abor_behind = queue
            .get(1)
            .is_some_and(|p| p.verb == Verb::ABOR && p.fits(code) == Fit::Final);
        if head_fit == Fit::Final && code.class() == 2 && abor_behind && head.transfer().is_some() {
            return Route::Hold;
        }
        return Route::Head {
            skipped: 0,
            fit: head_fit,
        };
    }
    match later() {
        Some((index, fit)) if busy.is_some() && !moved_on => Route::Behind { index, fit },
        Some((skipped, fit)) => Route::Head { skipped, fit },
        // Servers answer plain commands with codes §5.4 does not list: the oldest
        // command takes it, unless it is a reply only a transfer (or its ABOR) gets.
        None if head.transfer().is_none()
            && !code.is_preliminary()
            && !matches!(code.get(), 225 | 226 | 426) =>
        {
            Route::Head {
                skipped: 0,
                fit: Fit::Final,
            }
        }
        None => Route::Nobody,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::time::Timestamp;

    fn code(c: u16) -> ReplyCode {
        ReplyCode::new(c).expect("valid code")
    }

    fn queue(cmds: &[(Verb, Stage)]) -> VecDeque<Pending> {
        cmds.iter()
            .map(|&(verb, stage)| {
                let kind = if verb.is_transfer() {
                    PendingKind::Transfer(Box::new(Transfer::new(verb, None, Timestamp::ZERO)))
                } else {
                    PendingKind::Plain
                };
                Pending {
                    verb,
                    stage,
                    kind,
                    malformed_answer: false,
                }
            })
            .collect()
    }

    fn open(q: &[(Verb, Stage)], c: u16) -> Route {
        route(&queue(q), code(c), |_| true)
    }

    fn closed(q: &[(Verb, Stage)], c: u16) -> Route {
        route(&queue(q), code(c), |_| false)
    }

    use Stage::{Sent, Started};
    use Verb::*;

    const HEAD_FINAL: Route = Route::Head {
        skipped: 0,
        fit: Fit::Final,
    };

    #[test]
    fn in_order_replies_go_to_the_oldest_command() {
        assert_eq!(open(&[(USER, Sent), (PASS, Sent)], 331), HEAD_FINAL);
        assert_eq!(
            open(&[(RETR, Sent)], 150),
            Route::Head {
                skipped: 0,
                fit: Fit::Preliminary
            }
        );
        assert_eq!(open(&[(RETR, Started)], 226), HEAD_FINAL);
    }

    #[test]
    fn a_noop_answered_during_a_transfer_leaves_the_transfer_waiting() {
        // pure-ftpd after a reset download (data closed), IIS during one (data open).
        for r in [
            open(&[(RETR, Started), (NOOP, Sent)], 200),
            closed(&[(RETR, Started), (NOOP, Sent)], 200),
        ] {
            assert_eq!(
                r,
                Route::Behind {
                    index: 1,
                    fit: Fit::Final
                }
            );
        }
        // ... and the 426 after it is the transfer's.
        assert_eq!(open(&[(RETR, Started)], 426), HEAD_FINAL);
    }

    #[test]
    fn a_mangled_abors_500_goes_to_the_abor_not_the_transfer() {
        assert_eq!(
            open(&[(RETR, Started), (ABOR, Sent)], 500),
            Route::Behind {
                index: 1,
                fit: Fit::Final
            }
        );
        assert_eq!(open(&[(RETR, Started), (ABOR, Sent)], 426), HEAD_FINAL);
    }

    #[test]
    fn a_226_with_an_abor_behind_is_held() {
        assert_eq!(open(&[(RETR, Started), (ABOR, Sent)], 226), Route::Hold);
        assert_eq!(
            open(&[(RETR, Started), (ABOR, Sent)], 225),
            Route::Behind {
                index: 1,
                fit: Fit::Final
            }
        );
    }

    #[test]
    fn a_skipped_reply_is_repaired_before_a_transfer_starts() {
        assert_eq!(
            open(&[(TYPE, Sent), (PASV, Sent)], 227),
            Route::Head {
                skipped: 1,
                fit: Fit::Final
            }
        );
        assert_eq!(
            open(&[(RETR, Sent), (NOOP, Sent)], 200),
            Route::Head {
                skipped: 1,
                fit: Fit::Final
            }
        );
    }

    #[test]
    fn the_next_transfers_150_ends_a_transfer_whose_data_connection_is_gone() {
        let q = [(RETR, Started), (PASV, Sent), (RETR, Sent)];
        assert_eq!(
            closed(&q, 150),
            Route::Head {
                skipped: 2,
                fit: Fit::Preliminary
            }
        );
        // With its data connection still open, a second 150 is the transfer's own.
        assert_eq!(
            open(&q, 150),
            Route::Head {
                skipped: 0,
                fit: Fit::Preliminary
            }
        );
        assert_eq!(
            closed(&[(RETR, Started)], 150),
            Route::Head {
                skipped: 0,
                fit: Fit::Preliminary
            }
        );
    }

    #[test]
    fn replies_that_fit_nothing() {
        assert_eq!(open(&[], 200), Route::Nobody);
        // After a 1yz a transfer ends only with its completion set.
        assert_eq!(open(&[(RETR, Started)], 200), Route::Nobody);
        assert_eq!(open(&[(STOR, Started)], 550), Route::Nobody);
        assert_eq!(open(&[(RETR, Sent)], 200), Route::Nobody);
        // 426 belongs to transfers only, 225 and 226 to transfers and ABOR (a 226 of
        // a transfer sent before a capture began).
        assert_eq!(open(&[(NOOP, Sent)], 426), Route::Nobody);
        assert_eq!(open(&[(NOOP, Sent)], 226), Route::Nobody);
        assert_eq!(open(&[(NOOP, Sent)], 225), Route::Nobody);
        // A plain command takes a code its table lacks.
        assert_eq!(open(&[(PWD, Sent)], 250), HEAD_FINAL);
    }
}
