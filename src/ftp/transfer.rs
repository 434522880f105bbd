//! One transfer, from its command through 125/150 to the final reply, and the record
//! it becomes.

use std::net::SocketAddr;

use super::command::Verb;
use super::data::{Channel, DataConn};
use super::input::ConnId;
use super::output::{AbortCause, Outcome, Role, TransferRecord};
use super::reply::ReplyCode;
use super::time::Timestamp;

/// Reply codes kept per transfer; a transfer with more (a misbehaving server) keeps the
/// first ones and the final one.
pub const MAX_REPLIES: usize = 8;

/// A transfer command waiting for its final reply. Exists only with its command.
#[derive(Debug)]
pub struct Transfer {
    pub verb: Verb,
    pub argument: Option<Box<str>>,
    pub start: Timestamp,
    pub channel: Option<Channel>,
    pub replies: Vec<ReplyCode>,
    pub announced_size: Option<u64>,
    /// The client sent ABOR while this transfer was in progress.
    pub abor_at: Option<Timestamp>,
    /// A REST came before it: it moves only the rest of the file.
    pub restarted: bool,
    /// A final reply that may be this transfer's or the ABOR's behind it.
    pub held: Option<FinalReply>,
}

impl Transfer {
    pub fn new(verb: Verb, argument: Option<Box<str>>, start: Timestamp) -> Self {
        debug_assert!(verb.is_transfer());
        Transfer {
            verb,
            argument,
            start,
            channel: None,
            replies: Vec::new(),
            announced_size: None,
            abor_at: None,
            restarted: false,
            held: None,
        }
    }

    pub fn push_reply(&mut self, code: ReplyCode) {
        if self.replies.len() < MAX_REPLIES {
            self.replies.push(code);
        } else if let Some(last) = self.replies.last_mut() {
            *last = code;
        }
    }

    pub fn data_conn(&self) -> Option<ConnId> {
        self.channel.as_ref().and_then(|c| c.conn)
    }

    /// A preliminary reply (125/150) came: the server began the transfer.
    pub fn started(&self) -> bool {
        self.replies.iter().any(|c| c.is_preliminary())
    }
}

/// The parts of a final reply a record needs.
#[derive(Debug, Clone)]
pub struct FinalReply {
    pub code: Option<ReplyCode>,
    pub text: Option<String>,
    pub at: Timestamp,
}

pub fn outcome_of(code: Option<ReplyCode>) -> Outcome {
    match code.map(|c| (c.class(), c.get())) {
        None => Outcome::Incomplete,
        Some((_, 426)) => Outcome::Aborted,
        Some((2, _)) => Outcome::Completed,
        Some((1, _)) => Outcome::Incomplete,
        Some(_) => Outcome::Failed,
    }
}

/// Everything about the session a transfer record repeats.
pub struct SessionView {
    pub session: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

pub fn build_record(
    s: &SessionView,
    t: Transfer,
    reply: FinalReply,
    abort_cause: Option<AbortCause>,
    interruption_cause: Option<AbortCause>,
    data: Option<&DataConn>,
) -> TransferRecord {
    let outcome = outcome_of(reply.code);
    let nat = match (&t.channel, data) {
        (Some(ch), Some(d)) => {
            let listener_end = match ch.mode.listener() {
                Role::Server => d.server,
                Role::Client => d.client,
            };
            listener_end.ip() != ch.announced.ip()
        }
        _ => false,
    };
    let teardown_to_reply_seconds = match (reply.code, data.and_then(|d| d.first_close)) {
        (Some(_), Some(close)) => Some(reply.at.micros_after(close.at)),
        _ => None,
    };
    TransferRecord {
        session: s.session,
        start: t.start,
        end: reply.at,
        client: s.client,
        server: s.server,
        command: Some(t.verb),
        argument: t.argument.map(String::from),
        mode: t.channel.as_ref().map(|c| c.mode),
        replies: t.replies,
        final_code: reply.code,
        final_text: reply.text,
        outcome,
        abort_cause: abort_cause.filter(|_| outcome == Outcome::Aborted),
        interruption_cause,
        nat,
        announced_size: t.announced_size,
        teardown_to_reply_seconds,
        data: data.map(DataConn::record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn outcomes() {
        let c = |v| ReplyCode::new(v);
        assert_eq!(outcome_of(c(226)), Outcome::Completed);
        assert_eq!(outcome_of(c(250)), Outcome::Completed);
        assert_eq!(outcome_of(c(426)), Outcome::Aborted);
        assert_eq!(outcome_of(c(451)), Outcome::Failed);
        assert_eq!(outcome_of(c(550)), Outcome::Failed);
        assert_eq!(outcome_of(c(425)), Outcome::Failed);
        assert_eq!(outcome_of(None), Outcome::Incomplete);
    }

    #[test]
    fn replies_are_capped_keeping_the_last() {
        let mut t = Transfer::new(Verb::RETR, None, ts(0));
        for _ in 0..20 {
            t.push_reply(ReplyCode::new(150).unwrap());
        }
        t.push_reply(ReplyCode::new(226).unwrap());
        assert_eq!(t.replies.len(), MAX_REPLIES);
        assert_eq!(t.replies.last().unwrap().get(), 226);
    }
}
