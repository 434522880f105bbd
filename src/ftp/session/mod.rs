//! One control connection: who is client and server, the commands waiting for replies,
//! the announced data endpoint, and TLS. Lines come in; records, anomalies and
//! expectations go out through `Ctx`. Commands are handled in `commands`, replies in
//! `replies`, and transfer records in `records`.

mod commands;
mod records;
mod replies;

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::counters::{Anomaly, Bound};
use super::data::Channel;
use super::input::{ConnId, ExpectId, Side};
use super::line::LineFramer;
use super::output::{AnomalyRecord, EndReason, Event, Output, Role, SessionRecord};
use super::pending::{Pending, PendingKind};
use super::reply::{ReplyAssembler, ReplyCode};
use super::shared::{Ctx, Shared};
use super::text;
use super::time::Timestamp;
use super::tls::{Follow, RecordStream};
use super::transfer::{SessionView, Transfer};

pub use records::Settling;

/// The line cap while the sessions' partial lines are over their shared budget: still
/// enough for any verb or reply code.
const SHORT_LINE: usize = 512;

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub conn: ConnId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    start: Timestamp,
    pub last: Timestamp,
    midstream: bool,
    greeted: bool,
    /// AUTH TLS/SSL was accepted (234).
    tls: bool,
    /// The control connection returned to cleartext after TLS (CCC).
    ccc: bool,
    /// While TLS runs: each direction's records (index: `side_index`), `None` once that
    /// direction is cleartext again.
    encrypted: Option<Box<[Option<RecordStream>; 2]>>,
    /// While the control connection is encrypted: the standing expectation that names
    /// its data connections by their hosts (see `EncryptedExpectation`).
    encrypted_expect: Option<ExpectId>,
    quit: bool,
    /// A REST was sent since the last transfer command.
    restart: bool,
    client_lines: LineFramer,
    server_lines: LineFramer,
    replies: ReplyAssembler,
    pending: VecDeque<Pending>,
    /// Announced and not yet taken by a transfer command (boxed: most idle sessions
    /// have none, and the session should stay small).
    channel: Option<Box<Channel>>,
    pub settling: Vec<Settling>,
    user: Option<Box<str>>,
    size_hint: Option<(Box<str>, u64)>,
    commands: u32,
    transfers: u32,
    reply_codes: Vec<(ReplyCode, u32)>,
    gap_bytes: u64,
    /// The first FIN or RST on the control connection.
    first_close: Option<EndReason>,
}

impl Session {
    pub fn new(
        id: u64,
        conn: ConnId,
        (client, server): (SocketAddr, SocketAddr),
        ts: Timestamp,
        syn: bool,
    ) -> Self {
        Session {
            id,
            conn,
            client,
            server,
            start: ts,
            last: ts,
            midstream: !syn,
            greeted: !syn,
            tls: false,
            ccc: false,
            encrypted: None,
            encrypted_expect: None,
            quit: false,
            restart: false,
            client_lines: LineFramer::new(),
            server_lines: LineFramer::new(),
            replies: ReplyAssembler::new(),
            pending: VecDeque::new(),
            channel: None,
            settling: Vec::new(),
            user: None,
            size_hint: None,
            commands: 0,
            transfers: 0,
            reply_codes: Vec::new(),
            gap_bytes: 0,
            first_close: None,
        }
    }

    fn view(&self) -> SessionView {
        SessionView {
            session: self.id,
            client: self.client,
            server: self.server,
        }
    }

    /// AUTH was accepted: from here the control connection is TLS.
    pub(super) fn went_encrypted(&mut self, cx: &mut Ctx<'_>) {
        self.tls = true;
        self.encrypted = Some(Box::new([
            Some(RecordStream::default()),
            Some(RecordStream::default()),
        ]));
        cx.counters.tls_session();
        if self.encrypted_expect.is_none() {
            let id = cx
                .shared
                .expect_encrypted(self.conn, (self.client, self.server));
            self.encrypted_expect = Some(id);
        }
    }

    /// In-order bytes from one side of the control connection.
    pub fn data(&mut self, from: Side, mut bytes: &[u8], cx: &mut Ctx<'_>) {
        let held_before = self.buffered();
        // TLS can start (234) and end (CCC) inside one delivery: alternate until done.
        while !bytes.is_empty() {
            bytes = self.skip_tls(from, bytes, cx);
            if bytes.is_empty() {
                break;
            }
            bytes = self.lines(from, bytes, cx);
        }
        cx.shared.partial_total = cx.shared.partial_total - held_before + self.buffered();
    }

    /// While `from` carries TLS: follow its records; return the cleartext after them.
    fn skip_tls<'b>(&mut self, from: Side, bytes: &'b [u8], cx: &mut Ctx<'_>) -> &'b [u8] {
        let Some(dirs) = self.encrypted.as_deref_mut() else {
            return bytes;
        };
        let Some(records) = &mut dirs[side_index(from)] else {
            return bytes;
        };
        let Follow::Cleartext { at, records } = records.feed(bytes) else {
            cx.counters.encrypted_bytes(bytes.len() as u64);
            return &[];
        };
        cx.counters.encrypted_bytes(at as u64);
        dirs[side_index(from)] = None;
        if dirs.iter().all(Option::is_none) {
            self.encrypted = None;
            // In clear again: its data endpoints can be read.
            if let Some(id) = self.encrypted_expect.take() {
                cx.shared.unexpect_encrypted(id);
            }
        }
        if records > 0 && !self.ccc {
            self.ccc = true;
            cx.counters.ccc_session();
        }
        // Whatever the framer held belongs to the time before TLS.
        *self.framer(from) = LineFramer::new();
        &bytes[at..]
    }

    fn framer(&mut self, from: Side) -> &mut LineFramer {
        match from {
            Side::Initiator => &mut self.client_lines,
            Side::Responder => &mut self.server_lines,
        }
    }

    /// Frame and handle lines; return what follows once TLS starts (after a 234).
    fn lines<'b>(&mut self, from: Side, bytes: &'b [u8], cx: &mut Ctx<'_>) -> &'b [u8] {
        // Take the framer out so that lines can be handled with `self` borrowed.
        let mut framer = std::mem::take(self.framer(from));
        // Partial lines of all sessions share one budget; past it, lines are cut short.
        let max_line = if cx.shared.partial_total > cx.cfg.max_partial_total {
            cx.cfg.max_line.min(SHORT_LINE)
        } else {
            cx.cfg.max_line
        };
        let mut lines = framer.feed(bytes, max_line);
        let mut rest: &[u8] = &[];
        while let Some(line) = lines.next() {
            if line.truncated {
                cx.counters.bound_hit(Bound::LineLength);
            }
            match from {
                Side::Initiator => self.client_line(&line, cx),
                Side::Responder => self.server_line(&line, cx),
            }
            if self.encrypted.is_some() {
                // The rest of this delivery is already the TLS handshake.
                rest = lines.rest();
                break;
            }
        }
        *self.framer(from) = framer;
        rest
    }

    /// Bytes held for unfinished lines.
    pub fn buffered(&self) -> usize {
        self.client_lines.buffered() + self.server_lines.buffered()
    }

    pub fn gap(&mut self, from: Side, len: u64) {
        self.gap_bytes = self.gap_bytes.saturating_add(len);
        if let Some(Some(records)) = self
            .encrypted
            .as_deref_mut()
            .map(|d| &mut d[side_index(from)])
        {
            records.gap();
        }
        match from {
            Side::Initiator => self.client_lines.gap(),
            Side::Responder => {
                self.server_lines.gap();
                self.replies.gap();
            }
        }
    }

    pub fn closing(&mut self, how: EndReason) {
        self.first_close.get_or_insert(how);
    }

    /// Every text meant for output passes here, also those formatted from raw lines
    /// (anomaly details, debug traces): a PASS argument in it is masked, and the
    /// session's user name is replaced when redacting.
    fn scrub(&self, s: String, cx: &Ctx<'_>) -> String {
        text::scrub(s, self.user.as_deref().filter(|_| cx.cfg.redact_user))
    }

    /// Protocol text kept for output: lossy UTF-8, capped, scrubbed.
    fn keep(&self, b: &[u8], cx: &mut Ctx<'_>) -> String {
        let s = text::stored(b, cx.cfg.max_text, cx.counters);
        self.scrub(s, cx)
    }

    fn trace(&self, dir: char, what: String, cx: &mut Ctx<'_>) {
        if cx.cfg.trace {
            let line = format!("session {} {dir} {}", self.id, self.scrub(what, cx));
            cx.shared.out.push_back(Output::Trace(line));
        }
    }

    fn anomaly(&self, kind: Anomaly, detail: String, cx: &mut Ctx<'_>) {
        cx.counters.anomaly(kind);
        let mut detail = self.scrub(detail, cx);
        text::cap(&mut detail, cx.cfg.max_text);
        cx.shared
            .out
            .push_back(Output::Event(Event::Anomaly(AnomalyRecord {
                session: self.id,
                ts: cx.now,
                kind,
                detail,
            })));
    }

    /// The data connection `conn` was matched to announcement `expect` of this session.
    pub fn bind_data(&mut self, expect: ExpectId, conn: ConnId) -> bool {
        let slot = self
            .channel
            .as_deref_mut()
            .into_iter()
            .chain(self.pending.iter_mut().filter_map(|p| match &mut p.kind {
                PendingKind::Transfer(t) => t.channel.as_mut(),
                _ => None,
            }))
            .find(|c| c.expect == expect && c.conn.is_none());
        match slot {
            Some(ch) => {
                ch.conn = Some(conn);
                true
            }
            None => false,
        }
    }

    /// Who listens at the endpoint of announcement `expect`.
    pub fn listener_role(&self, expect: ExpectId) -> Option<Role> {
        self.channel
            .as_deref()
            .into_iter()
            .chain(self.pending.iter().filter_map(|p| match &p.kind {
                PendingKind::Transfer(t) => t.channel.as_ref(),
                _ => None,
            }))
            .find(|c| c.expect == expect)
            .map(|c| c.mode.listener())
    }

    /// The session is over: settle what waits, close what is pending, and report.
    pub fn end(mut self, reason: EndReason, cx: &mut Ctx<'_>) {
        // What is still pending ends when the session was last active, not when the
        // engine noticed (a timeout, or the end of a capture with other sessions).
        let noticed = cx.now;
        cx.now = self.last.max(self.start).min(noticed);
        self.settle(true, cx);
        while let Some(mut p) = self.pending.pop_front() {
            // A reply held for a transfer with an ABOR behind it is the transfer's.
            let held = match &mut p.kind {
                PendingKind::Transfer(t) => t.held.take(),
                _ => None,
            };
            self.finish_pending(p, held, cx);
        }
        self.settle(true, cx);
        let ch = self.channel.take().map(|c| *c);
        self.drop_channel(ch, cx);
        if let Some(id) = self.encrypted_expect.take() {
            cx.shared.unexpect_encrypted(id);
        }
        let end_reason = match reason {
            EndReason::Fin | EndReason::Rst if self.quit => EndReason::Quit,
            EndReason::Fin | EndReason::Rst => self.first_close.unwrap_or(reason),
            other => other,
        };
        let record = SessionRecord {
            session: self.id,
            client: self.client,
            server: self.server,
            start: self.start,
            end: self.last.max(self.start),
            midstream: self.midstream,
            user: if cx.cfg.redact_user {
                None
            } else {
                self.user.map(String::from)
            },
            tls: self.tls,
            ccc: self.ccc,
            commands: self.commands,
            reply_codes: self.reply_codes,
            transfers: self.transfers,
            gap_bytes: self.gap_bytes,
            end_reason,
        };
        cx.shared
            .out
            .push_back(Output::Event(Event::Session(Box::new(record))));
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Initiator => 0,
        Side::Responder => 1,
    }
}

/// The transfer's data connection was seen and has not closed.
fn data_open(t: &Transfer, shared: &Shared) -> bool {
    t.data_conn()
        .and_then(|id| shared.data.get(&id))
        .is_some_and(|d| d.first_close.is_none() && !d.ended)
}
