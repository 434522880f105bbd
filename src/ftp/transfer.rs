//! One transfer, from its command through 125/150 to the final reply, and the data
//! connection it used. The abort cause of a 426 is decided here.

use std::net::SocketAddr;
use std::time::Duration;

use super::command::Verb;
use super::input::{ConnId, ExpectId, Side};
use super::output::{
    AbortCause, CloseHow, DataClose, DataRecord, Mode, Outcome, Role, TransferRecord,
};
use super::reply::ReplyCode;
use super::time::Timestamp;

/// Reply codes kept per transfer; a transfer with more (a misbehaving server) keeps the
/// first ones and the final one.
pub const MAX_REPLIES: usize = 8;

/// An announced data endpoint, and the connection that used it once one did.
#[derive(Debug, Clone)]
pub struct Channel {
    pub expect: ExpectId,
    pub mode: Mode,
    pub announced: SocketAddr,
    pub conn: Option<ConnId>,
}

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

    pub fn in_progress(&self) -> bool {
        self.replies.iter().any(|c| c.is_preliminary())
    }
}

/// A data connection's observed life.
#[derive(Debug)]
pub struct DataConn {
    pub session: ConnId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub opened_by: Role,
    pub syn_seen: bool,
    pub first_packet: Timestamp,
    pub last_packet: Timestamp,
    /// When the byte count last grew (retransmissions do not count).
    pub last_progress: Timestamp,
    pub bytes_to_client: u64,
    pub bytes_to_server: u64,
    pub first_close: Option<DataClose>,
    /// The connection left the connection table.
    pub ended: bool,
    /// No transfer or announcement refers to it any more.
    pub released: bool,
}

impl DataConn {
    pub fn role_of(&self, side: Side) -> Role {
        match side {
            Side::Initiator => self.opened_by,
            Side::Responder => self.opened_by.other(),
        }
    }

    pub fn progress(&mut self, ts: Timestamp, from: Side, bytes: u64) {
        self.last_packet = self.last_packet.max(ts);
        if bytes > 0 {
            self.last_progress = self.last_progress.max(ts);
            match self.role_of(from) {
                Role::Server => self.bytes_to_client += bytes,
                Role::Client => self.bytes_to_server += bytes,
            }
        }
    }

    /// Record a FIN or RST; only the first one is the teardown.
    pub fn close(&mut self, ts: Timestamp, from: Side, how: CloseHow) {
        self.last_packet = self.last_packet.max(ts);
        if self.first_close.is_none() {
            self.first_close = Some(DataClose {
                by: self.role_of(from),
                how,
                at: ts,
            });
        }
    }

    pub fn record(&self) -> DataRecord {
        DataRecord {
            client: self.client,
            server: self.server,
            opened_by: self.opened_by,
            syn_seen: self.syn_seen,
            bytes_to_client: self.bytes_to_client,
            bytes_to_server: self.bytes_to_server,
            first_close: self.first_close,
            first_packet: self.first_packet,
            last_packet: self.last_packet,
        }
    }
}

/// Should the record of a transfer that got its final reply at `now` wait for its data
/// connection's teardown? Yes while the connection is open and was moving: its last
/// bytes and its FIN or RST are still to come (pure-ftpd sends 226 before the last
/// data segment has crossed). An idle open connection is not waited for.
pub fn await_teardown(now: Timestamp, data: Option<&DataConn>, stall_after: Duration) -> bool {
    data.is_some_and(|d| {
        d.first_close.is_none() && !d.ended && now.since(d.last_progress) < stall_after
    })
}

/// Attribute a 426 received at `reply_at`, from what is known of the data connection
/// now. `abor` is set when the client sent ABOR during the transfer.
///
/// A teardown that followed `stall_after` without progress is `stalled`: the client
/// (or server) only gave up on a connection that had stopped moving, which points at
/// the network, not at a user's cancel.
pub fn attribute_abort(
    reply_at: Timestamp,
    abor: bool,
    data: Option<&DataConn>,
    stall_after: Duration,
) -> AbortCause {
    if abor {
        return AbortCause::Abor;
    }
    let Some(d) = data else {
        return AbortCause::NoDataConnection;
    };
    let idle_until = match &d.first_close {
        Some(close) => close.at,
        None if d.ended => return AbortCause::Unknown,
        None => reply_at,
    };
    if idle_until.since(d.last_progress) >= stall_after {
        return AbortCause::Stalled;
    }
    match &d.first_close {
        Some(close) => AbortCause::from_close(close),
        // Waited for a teardown that did not come while the connection kept moving.
        None => AbortCause::Unknown,
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
    cause: Option<AbortCause>,
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
        (Some(_), Some(close)) => Some(round_micros(reply.at.seconds_after(close.at))),
        _ => None,
    };
    TransferRecord {
        session: s.session,
        start: t.start,
        end: reply.at,
        client: s.client,
        server: s.server,
        command: t.verb,
        argument: t.argument.map(String::from),
        mode: t.channel.as_ref().map(|c| c.mode),
        replies: t.replies,
        final_code: reply.code,
        final_text: reply.text,
        outcome,
        abort_cause: if outcome == Outcome::Aborted {
            cause
        } else {
            None
        },
        nat,
        announced_size: t.announced_size,
        teardown_to_reply_seconds,
        data: data.map(DataConn::record),
    }
}

fn round_micros(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    fn conn() -> DataConn {
        DataConn {
            session: ConnId(1),
            client: "10.0.0.2:40000".parse().unwrap(),
            server: "10.0.0.1:50000".parse().unwrap(),
            opened_by: Role::Client,
            syn_seen: true,
            first_packet: ts(0),
            last_packet: ts(0),
            last_progress: ts(0),
            bytes_to_client: 0,
            bytes_to_server: 0,
            first_close: None,
            ended: false,
            released: false,
        }
    }

    const STALL: Duration = Duration::from_secs(5);

    #[test]
    fn bytes_are_attributed_by_role_not_by_side() {
        let mut d = conn();
        d.progress(ts(1), Side::Responder, 1000);
        d.progress(ts(2), Side::Initiator, 10);
        assert_eq!((d.bytes_to_client, d.bytes_to_server), (1000, 10));
        let mut active = conn();
        active.opened_by = Role::Server;
        active.progress(ts(1), Side::Initiator, 1000);
        assert_eq!(active.bytes_to_client, 1000);
    }

    #[test]
    fn only_the_first_teardown_counts() {
        let mut d = conn();
        d.close(ts(5), Side::Initiator, CloseHow::Rst);
        d.close(ts(6), Side::Responder, CloseHow::Fin);
        assert_eq!(
            d.first_close,
            Some(DataClose {
                by: Role::Client,
                how: CloseHow::Rst,
                at: ts(5)
            })
        );
    }

    #[test]
    fn attribution_order() {
        let mut d = conn();
        d.progress(ts(4), Side::Responder, 10);
        d.close(ts(5), Side::Responder, CloseHow::Fin);
        // ABOR wins over the teardown it caused.
        assert_eq!(
            attribute_abort(ts(6), true, Some(&d), STALL),
            AbortCause::Abor
        );
        assert_eq!(
            attribute_abort(ts(6), false, Some(&d), STALL),
            AbortCause::ServerClosed
        );
        assert_eq!(
            attribute_abort(ts(6), false, None, STALL),
            AbortCause::NoDataConnection
        );
        let mut open = conn();
        open.progress(ts(100), Side::Responder, 10);
        // Open and moving when the 426 came, no teardown after waiting.
        assert_eq!(
            attribute_abort(ts(200), false, Some(&open), STALL),
            AbortCause::Unknown
        );
        assert_eq!(
            attribute_abort(ts(5100), false, Some(&open), STALL),
            AbortCause::Stalled
        );
        open.ended = true;
        assert_eq!(
            attribute_abort(ts(200), false, Some(&open), STALL),
            AbortCause::Unknown
        );
    }

    #[test]
    fn a_reset_after_a_long_stall_is_a_stall() {
        let mut d = conn();
        d.progress(ts(1000), Side::Responder, 10);
        d.close(ts(30_000), Side::Initiator, CloseHow::Rst);
        assert_eq!(
            attribute_abort(ts(30_001), false, Some(&d), STALL),
            AbortCause::Stalled
        );
        let mut quick = conn();
        quick.progress(ts(1000), Side::Responder, 10);
        quick.close(ts(1001), Side::Initiator, CloseHow::Rst);
        assert_eq!(
            attribute_abort(ts(1002), false, Some(&quick), STALL),
            AbortCause::ClientReset
        );
    }

    #[test]
    fn waiting_for_teardown_only_while_open_and_moving() {
        let mut d = conn();
        d.progress(ts(100), Side::Responder, 10);
        assert!(await_teardown(ts(200), Some(&d), STALL));
        assert!(!await_teardown(ts(5100), Some(&d), STALL));
        assert!(!await_teardown(ts(200), None, STALL));
        d.close(ts(150), Side::Responder, CloseHow::Fin);
        assert!(!await_teardown(ts(200), Some(&d), STALL));
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
