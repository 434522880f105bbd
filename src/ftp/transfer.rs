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

    /// A preliminary reply (125/150) came: the server began the transfer.
    pub fn started(&self) -> bool {
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

/// Why a transfer that ended without a 426 was broken, in the words of abort causes,
/// or `None` when nothing says it was. A `failed` transfer (another 4yz/5yz) that had
/// started (125/150) is attributed as a 426 would be. An `incomplete` one (no final
/// reply: pure-ftpd answers a client's reset download with none) was broken when its
/// client sent ABOR, when its data connection was reset, closed by the side receiving
/// the data, or closed by the sender before the announced size, or when the data
/// connection was left idle for `stall_after` while the session went on.
pub fn attribute_interruption(
    outcome: Outcome,
    t: &Transfer,
    at: Timestamp,
    data: Option<&DataConn>,
    stall_after: Duration,
) -> Option<AbortCause> {
    match outcome {
        Outcome::Failed if t.started() => {
            Some(attribute_abort(at, t.abor_at.is_some(), data, stall_after))
        }
        Outcome::Incomplete if t.abor_at.is_some() => Some(AbortCause::Abor),
        Outcome::Incomplete => {
            let d = data?;
            let Some(close) = d.first_close else {
                let idle = !d.ended && at.since(d.last_progress) >= stall_after;
                return idle.then_some(AbortCause::Stalled);
            };
            let (sender, moved) = if t.verb.is_upload() {
                (Role::Client, d.bytes_to_server)
            } else {
                (Role::Server, d.bytes_to_client)
            };
            let short = t.announced_size.is_some_and(|size| moved < size);
            let early = close.how == CloseHow::Rst || close.by != sender || short;
            early.then(|| {
                if close.at.since(d.last_progress) >= stall_after {
                    AbortCause::Stalled
                } else {
                    AbortCause::from_close(&close)
                }
            })
        }
        _ => None,
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
        (Some(_), Some(close)) => Some(round_micros(reply.at.seconds_after(close.at))),
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

    fn started(verb: Verb, size: Option<u64>) -> Transfer {
        let mut t = Transfer::new(verb, None, ts(0));
        t.push_reply(ReplyCode::new(150).unwrap());
        t.announced_size = size;
        t
    }

    #[test]
    fn interruption_of_an_incomplete_download() {
        let t = started(Verb::RETR, Some(100));
        let at = ts(10_000);
        let inc =
            |d: &DataConn| attribute_interruption(Outcome::Incomplete, &t, at, Some(d), STALL);
        let mut whole = conn();
        whole.progress(ts(9000), Side::Responder, 100);
        whole.close(ts(9001), Side::Responder, CloseHow::Fin);
        assert_eq!(
            inc(&whole),
            None,
            "the sender finished: only the reply is missing"
        );
        let mut short = conn();
        short.progress(ts(9000), Side::Responder, 60);
        short.close(ts(9001), Side::Responder, CloseHow::Fin);
        assert_eq!(inc(&short), Some(AbortCause::ServerClosed));
        let mut reset = conn();
        reset.progress(ts(9000), Side::Responder, 100);
        reset.close(ts(9001), Side::Responder, CloseHow::Rst);
        assert_eq!(inc(&reset), Some(AbortCause::ServerReset));
        let mut receiver = conn();
        receiver.progress(ts(9000), Side::Responder, 100);
        receiver.close(ts(9001), Side::Initiator, CloseHow::Fin);
        assert_eq!(inc(&receiver), Some(AbortCause::ClientClosed));
        let mut late = conn();
        late.progress(ts(1000), Side::Responder, 10);
        late.close(ts(9000), Side::Initiator, CloseHow::Rst);
        assert_eq!(inc(&late), Some(AbortCause::Stalled));
        let mut idle = conn();
        idle.progress(ts(1000), Side::Responder, 10);
        assert_eq!(inc(&idle), Some(AbortCause::Stalled));
        let mut moving = conn();
        moving.progress(ts(9999), Side::Responder, 10);
        assert_eq!(inc(&moving), None);
        idle.ended = true;
        assert_eq!(inc(&idle), None, "left the table: nothing is known");
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, None, STALL),
            None
        );
    }

    #[test]
    fn interruption_of_an_upload_is_judged_by_the_client_as_sender() {
        let t = started(Verb::STOR, None);
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Initiator, CloseHow::Fin);
        let at = ts(1000);
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            None
        );
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Responder, CloseHow::Fin);
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            Some(AbortCause::ServerClosed)
        );
    }

    #[test]
    fn interruption_by_abor_failure_or_none() {
        let mut t = started(Verb::RETR, None);
        let at = ts(1000);
        assert_eq!(
            attribute_interruption(Outcome::Failed, &t, at, None, STALL),
            Some(AbortCause::NoDataConnection)
        );
        let refused = Transfer::new(Verb::RETR, None, ts(0));
        assert_eq!(
            attribute_interruption(Outcome::Failed, &refused, at, None, STALL),
            None,
            "refused before it started"
        );
        for o in [Outcome::Completed, Outcome::Aborted] {
            assert_eq!(attribute_interruption(o, &t, at, None, STALL), None);
        }
        t.abor_at = Some(ts(500));
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, None, STALL),
            Some(AbortCause::Abor)
        );
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
