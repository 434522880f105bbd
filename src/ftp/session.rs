//! One control connection: who is client and server, the commands waiting for replies,
//! the announced data endpoint, and TLS. Lines come in; records, anomalies and
//! expectations go out through `Ctx`.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::command::{self, Command, Verb};
use super::counters::{Anomaly, Bound, Counters};
use super::endpoint::{self, EndpointError};
use super::engine::{Config, Shared};
use super::input::{ConnId, Side};
use super::line::{Line, LineFramer};
use super::output::{
    AbortCause, AnomalyRecord, EndReason, Event, Expectation, Mode, Outcome, Output, Role,
    SessionRecord, TransferRecord,
};
use super::pending::{self, Pending, PendingKind, Route};
use super::reply::{ReplyAssembler, ReplyCode, ReplyStep};
use super::sequence::{self, Fit, Stage};
use super::time::Timestamp;
use super::tls::{Follow, RecordStream};
use super::transfer::{
    Channel, FinalReply, SessionView, Transfer, attribute_abort, attribute_interruption,
    build_record, outcome_of,
};

/// What the session needs from the engine while it handles a line.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub shared: &'a mut Shared,
    pub counters: &'a mut dyn Counters,
    pub now: Timestamp,
}

/// The line cap while the sessions' partial lines are over their shared budget: still
/// enough for any verb or reply code.
const SHORT_LINE: usize = 512;

/// A transfer with its final reply, waiting for its data connection's teardown.
#[derive(Debug)]
pub struct Settling {
    transfer: Box<Transfer>,
    reply: FinalReply,
    pub deadline: Timestamp,
}

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
    quit: bool,
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
            quit: false,
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
    fn scrub(&self, mut s: String, cx: &Ctx<'_>) -> String {
        command::mask_password(&mut s);
        match &self.user {
            Some(u) if cx.cfg.redact_user && u.len() >= 3 && s.contains(&**u) => {
                s.replace(&**u, "****")
            }
            _ => s,
        }
    }

    /// Protocol text kept for output: lossy UTF-8, capped, scrubbed.
    fn keep(&self, b: &[u8], cx: &mut Ctx<'_>) -> String {
        let s = text_string(b, cx);
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
        cap_string(&mut detail, cx.cfg.max_text);
        cx.shared
            .out
            .push_back(Output::Event(Event::Anomaly(AnomalyRecord {
                session: self.id,
                ts: cx.now,
                kind,
                detail,
            })));
    }

    fn client_line(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        let Some(cmd) = command::parse(line.bytes) else {
            return;
        };
        if line.after_gap && cmd.verb == Verb::Other {
            return; // most likely the tail of a command the capture lost
        }
        cx.counters.command(cmd.verb);
        self.commands = self.commands.saturating_add(1);
        if cmd.verb == Verb::USER {
            self.user = cmd.arg().map(|a| text(a, cx));
        }
        self.trace('>', cmd.to_string(), cx);
        let kind = match cmd.verb {
            Verb::USER => PendingKind::Plain,
            Verb::PORT | Verb::EPRT => {
                self.announce_active(&cmd, cx);
                PendingKind::Plain
            }
            Verb::ABOR => {
                for p in self.pending.iter_mut() {
                    if let PendingKind::Transfer(t) = &mut p.kind {
                        t.abor_at.get_or_insert(cx.now);
                    }
                }
                PendingKind::Plain
            }
            Verb::SIZE => match cmd.arg() {
                Some(a) => PendingKind::Size(text(a, cx)),
                None => PendingKind::Plain,
            },
            Verb::QUIT => {
                self.quit = true;
                PendingKind::Plain
            }
            v if v.is_transfer() => {
                self.transfers = self.transfers.saturating_add(1);
                let arg = cmd.arg().map(|a| self.keep(a, cx).into_boxed_str());
                let mut t = Transfer::new(v, arg, cx.now);
                t.channel = self.channel.take().map(|c| *c);
                if let (Some((path, size)), Some(arg)) = (&self.size_hint, &t.argument)
                    && path == arg
                    && v == Verb::RETR
                {
                    t.announced_size = Some(*size);
                }
                PendingKind::Transfer(Box::new(t))
            }
            _ => PendingKind::Plain,
        };
        if self.pending.len() >= cx.cfg.max_pending {
            // Replies will still be counted; this command just goes untracked.
            cx.counters.bound_hit(Bound::PendingCommands);
            if let PendingKind::Transfer(t) = kind {
                self.drop_channel(t.channel, cx);
            }
            return;
        }
        self.pending.push_back(Pending::new(cmd.verb, kind));
    }

    /// PORT and EPRT: the client will listen; the server connects after the reply.
    fn announce_active(&mut self, cmd: &Command<'_>, cx: &mut Ctx<'_>) {
        let arg = cmd.arg().unwrap_or_default();
        let (mode, parsed) = match cmd.verb {
            Verb::PORT => (Mode::Port, endpoint::parse_port_arg(arg)),
            _ => (Mode::Eprt, endpoint::parse_eprt_arg(arg)),
        };
        match parsed {
            Ok(ep) => self.announce(mode, ep, cx),
            Err(e) => self.bad_endpoint(e, cmd.verb.as_str(), arg, cx),
        }
    }

    fn bad_endpoint(&mut self, e: EndpointError, what: &str, raw: &[u8], cx: &mut Ctx<'_>) {
        let kind = match e {
            EndpointError::BadPort => Anomaly::UnusableDataEndpoint,
            _ => Anomaly::BadDataEndpoint,
        };
        let detail = format!("{what} {}: {e}", String::from_utf8_lossy(raw));
        self.anomaly(kind, detail, cx);
        // The old endpoint is not what the next transfer will use either.
        let old = self.channel.take().map(|c| *c);
        self.drop_channel(old, cx);
    }

    fn announce(&mut self, mode: Mode, announced: SocketAddr, cx: &mut Ctx<'_>) {
        let (listener_ip, connector_ip) = match mode.listener() {
            Role::Server => (self.server.ip(), self.client.ip()),
            Role::Client => (self.client.ip(), self.server.ip()),
        };
        let ip = announced.ip();
        if ip.is_unspecified() || ip.is_multicast() || ip == std::net::Ipv4Addr::BROADCAST {
            // Not an address anyone can connect to: the connection, if any, will go to
            // the control connection's address, which the NAT rule of the match covers.
            self.anomaly(
                Anomaly::UnusableDataEndpoint,
                format!("{} announced {announced}", mode.as_str()),
                cx,
            );
        }
        let id = cx.shared.new_expectation(cx.counters);
        let Some(id) = id else {
            return;
        };
        let ch = Channel {
            expect: id,
            mode,
            announced,
            conn: None,
        };
        // A pipelining client sent its transfer command before this reply arrived.
        let waiting = match mode {
            Mode::Pasv | Mode::Epsv => self.pending.iter_mut().find_map(|p| match &mut p.kind {
                PendingKind::Transfer(t) if t.channel.is_none() => Some(t),
                _ => None,
            }),
            Mode::Port | Mode::Eprt => None,
        };
        match waiting {
            Some(t) => t.channel = Some(ch),
            None => {
                let old = self.channel.replace(Box::new(ch)).map(|c| *c);
                self.drop_channel(old, cx);
            }
        }
        cx.shared.expect(Expectation {
            id,
            control: self.conn,
            control_ends: (self.client, self.server),
            listener: announced,
            listener_control_ip: listener_ip,
            connector_ip,
            created: cx.now,
        });
    }

    fn drop_channel(&mut self, ch: Option<Channel>, cx: &mut Ctx<'_>) {
        if let Some(ch) = ch {
            cx.shared.release_channel(&ch);
        }
    }

    fn server_line(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        self.server_line_inner(line, cx);
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // Idle sessions keep no command queue allocated.
            self.pending = VecDeque::new();
        }
    }

    fn server_line_inner(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        match self.replies.line(line.bytes) {
            ReplyStep::Continues => {}
            ReplyStep::Malformed if line.after_gap => {
                // Most likely the tail of a reply the capture lost, not a reply.
            }
            ReplyStep::Malformed => {
                let detail = format!("reply line: {}", printable(line.bytes));
                self.anomaly(Anomaly::MalformedReply, detail, cx);
                // It may have answered the oldest command not answered so already.
                if let Some(p) = self.pending.iter_mut().find(|p| !p.malformed_answer) {
                    p.malformed_answer = true;
                }
            }
            ReplyStep::Reply {
                code, text, glued, ..
            } => {
                cx.counters.reply(code);
                if cx.cfg.trace {
                    let t = String::from_utf8_lossy(text.unwrap_or(b"(multi-line)"));
                    self.trace('<', format!("{code} {t}"), cx);
                }
                match self.reply_codes.binary_search_by_key(&code, |(c, _)| *c) {
                    Ok(i) => self.reply_codes[i].1 = self.reply_codes[i].1.saturating_add(1),
                    Err(i) => self.reply_codes.insert(i, (code, 1)),
                }
                if glued {
                    let detail = format!("reply line: {}", printable(line.bytes));
                    self.anomaly(Anomaly::ReplyCodeGlued, detail, cx);
                }
                self.reply(code, text, cx);
            }
        }
    }

    fn reply(&mut self, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
        let c = code.get();
        if !self.greeted {
            match c {
                120 => return,
                220 | 421 => {
                    self.greeted = true;
                    return;
                }
                _ => self.greeted = true,
            }
        }
        loop {
            if let Some(held) = self.take_held() {
                self.resolve_held(held, code, cx);
                continue;
            }
            if self.pending.len() >= 2 && self.pending[0].malformed_answer {
                let p = self.pending.pop_front().expect("head exists");
                self.finish_pending(p, None, cx);
                continue;
            }
            let route = pending::route(&self.pending, code, |t| data_open(t, cx.shared));
            match route {
                Route::Head { skipped, fit } => {
                    for _ in 0..skipped {
                        let p = self.pending.pop_front().expect("skipped < len");
                        let detail = format!("{} got no reply before {c}", p.verb);
                        self.anomaly(Anomaly::MissingReply, detail, cx);
                        self.finish_pending(p, None, cx);
                    }
                    self.answer(0, fit, code, text, cx);
                }
                Route::Behind { index, fit } => self.answer(index, fit, code, text, cx),
                Route::Hold => {
                    // An ABOR waits behind this transfer: hold the reply until it is
                    // clear whether the server answers both or only the ABOR.
                    let held = FinalReply {
                        code: Some(code),
                        text: text.map(|t| self.keep(t, cx)),
                        at: cx.now,
                    };
                    if let Some(PendingKind::Transfer(t)) =
                        self.pending.front_mut().map(|p| &mut p.kind)
                    {
                        t.held = Some(held);
                    }
                }
                Route::Nobody => self.unmatched(code, text, cx),
            }
            return;
        }
    }

    /// The reply after a held one decides whose the held one was. Two replies (226
    /// then 225 or 226): the first is the transfer's. A single 2yz that the next
    /// command's reply follows answered the ABOR (pure-ftpd sends no final reply for a
    /// transfer the client reset).
    fn resolve_held(&mut self, held: FinalReply, next: ReplyCode, cx: &mut Ctx<'_>) {
        let abor_takes_next = self
            .pending
            .get(1)
            .is_some_and(|p| sequence::fit(p.verb, p.stage, next) != Fit::No);
        if abor_takes_next {
            let p = self.pending.pop_front().expect("head exists");
            self.finish_pending(p, Some(held), cx);
        } else if let Some(abor) = self.pending.remove(1) {
            let code = held.code.expect("held replies have a code");
            self.apply(abor, code, held.text.as_deref().map(str::as_bytes), cx);
        }
    }

    /// `fit` says what `code` is to the command at `index`.
    fn answer(
        &mut self,
        index: usize,
        fit: Fit,
        code: ReplyCode,
        text: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) {
        if fit != Fit::Preliminary {
            let p = self
                .pending
                .remove(index)
                .expect("routed to a waiting command");
            self.apply(p, code, text, cx);
            return;
        }
        let p = &mut self.pending[index];
        p.stage = Stage::Started;
        let PendingKind::Transfer(t) = &mut p.kind else {
            return;
        };
        t.push_reply(code);
        preliminary(t, code, text);
        if code.get() == 125 && !data_open(t, cx.shared) {
            let detail = format!("125 for {} with no open data connection", t.verb);
            self.anomaly(Anomaly::PreliminaryWithoutDataConnection, detail, cx);
        }
    }

    /// A reply no waiting command can take.
    fn unmatched(&mut self, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
        let c = code.get();
        // A session picked up mid-stream gets replies to commands sent before it.
        let before_capture = self.midstream && self.commands == 0;
        if c == 426 && self.midstream && self.transfers == 0 {
            // The transfer's command was sent before the capture began.
            self.abort_without_command(code, text, cx);
            return;
        }
        if let Some(head) = self.pending.front_mut() {
            let detail = format!("reply {c} fits no command waiting (oldest: {})", head.verb);
            if let PendingKind::Transfer(t) = &mut head.kind {
                t.push_reply(code);
            }
            self.anomaly(Anomaly::ReplyOutOfSequence, detail, cx);
        } else {
            let expected = c == 421 // unsolicited "closing control connection"
                || (c == 220 && self.commands == 0)
                || before_capture;
            if !expected {
                self.anomaly(Anomaly::ReplyWithoutCommand, format!("reply {c}"), cx);
            }
        }
        if c == 426 {
            self.anomaly(Anomaly::AbortWithoutTransfer, "no transfer".into(), cx);
        }
    }

    /// A 426 for a transfer whose command the capture did not see: an aborted transfer
    /// with no command, so that every 426 on the wire shows in the abort accounting.
    fn abort_without_command(&mut self, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
        let record = TransferRecord {
            session: self.id,
            start: self.start,
            end: cx.now,
            client: self.client,
            server: self.server,
            command: None,
            argument: None,
            mode: None,
            replies: vec![code],
            final_code: Some(code),
            final_text: text.map(|t| self.keep(t, cx)),
            outcome: Outcome::Aborted,
            abort_cause: Some(AbortCause::Unknown),
            interruption_cause: None,
            nat: false,
            announced_size: None,
            teardown_to_reply_seconds: None,
            data: None,
        };
        cx.shared
            .out
            .push_back(Output::Event(Event::Transfer(Box::new(record))));
    }

    /// The reply held by the oldest pending transfer, if any.
    fn take_held(&mut self) -> Option<FinalReply> {
        match &mut self.pending.front_mut()?.kind {
            PendingKind::Transfer(t) => t.held.take(),
            _ => None,
        }
    }

    /// The final reply for `p`.
    fn apply(&mut self, p: Pending, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
        let c = code.get();
        match (&p.kind, p.verb, c) {
            (_, Verb::PASV, 227) => match endpoint::parse_pasv_reply(text.unwrap_or_default()) {
                Ok(ep) => self.announce(Mode::Pasv, ep, cx),
                Err(e) => self.bad_endpoint(e, "227", text.unwrap_or_default(), cx),
            },
            (_, Verb::EPSV, 229) => match endpoint::parse_epsv_reply(text.unwrap_or_default()) {
                Ok(port) => self.announce(Mode::Epsv, SocketAddr::new(self.server.ip(), port), cx),
                Err(e) => self.bad_endpoint(e, "229", text.unwrap_or_default(), cx),
            },
            (_, Verb::PORT | Verb::EPRT, 400..) => {
                let ch = self.channel.take().map(|c| *c);
                self.drop_channel(ch, cx);
            }
            (_, Verb::AUTH, 234) => {
                self.tls = true;
                self.encrypted = Some(Box::new([
                    Some(RecordStream::default()),
                    Some(RecordStream::default()),
                ]));
                cx.counters.tls_session();
            }
            (PendingKind::Size(path), Verb::SIZE, 213) => {
                if let Some(size) = text.and_then(endpoint::parse_size_reply) {
                    self.size_hint = Some((path.clone(), size));
                }
            }
            _ => {}
        }
        let reply = FinalReply {
            code: Some(code),
            text: text.map(|t| self.keep(t, cx)),
            at: cx.now,
        };
        self.finish_pending(p, Some(reply), cx);
    }

    /// `p` is done: with its final reply, or with none (`reply` is `None`).
    fn finish_pending(&mut self, p: Pending, reply: Option<FinalReply>, cx: &mut Ctx<'_>) {
        let PendingKind::Transfer(mut t) = p.kind else {
            return;
        };
        let reply = reply.unwrap_or(FinalReply {
            code: None,
            text: None,
            at: cx.now,
        });
        if let Some(code) = reply.code {
            t.push_reply(code);
        }
        if reply.code.is_some() && data_open(&t, cx.shared) {
            // Every final reply waits for the data connection's teardown (at most
            // `abort_settle`): its last bytes and its FIN or RST may still be on the way.
            cx.shared.settling_sessions.push(self.conn);
            self.settling.push(Settling {
                deadline: reply.at.saturating_add(cx.cfg.abort_settle),
                transfer: t,
                reply,
            });
        } else {
            self.emit(*t, reply, cx);
        }
    }

    fn emit(&mut self, t: Transfer, reply: FinalReply, cx: &mut Ctx<'_>) {
        let channel = t.channel.clone();
        let data = t.data_conn().and_then(|id| cx.shared.data.get(&id));
        let outcome = outcome_of(reply.code);
        let stall = cx.cfg.stall_after;
        let abort = (outcome == Outcome::Aborted)
            .then(|| attribute_abort(reply.at, t.abor_at.is_some(), data, stall));
        let interruption = attribute_interruption(outcome, &t, reply.at, data, stall);
        let record = build_record(&self.view(), t, reply, abort, interruption, data);
        cx.shared
            .out
            .push_back(Output::Event(Event::Transfer(Box::new(record))));
        self.drop_channel(channel, cx);
    }

    /// Emit the transfers whose data connection has now closed, and (with `force`, or
    /// past their deadline) all the others.
    pub fn settle(&mut self, force: bool, cx: &mut Ctx<'_>) {
        let mut i = 0;
        while i < self.settling.len() {
            let s = &self.settling[i];
            let data = s
                .transfer
                .data_conn()
                .and_then(|id| cx.shared.data.get(&id));
            let closed = data.is_none_or(|d| d.first_close.is_some() || d.ended);
            if closed || force || cx.now >= s.deadline {
                let s = self.settling.swap_remove(i);
                self.emit(*s.transfer, s.reply, cx);
            } else {
                i += 1;
            }
        }
    }

    /// The data connection `conn` was matched to announcement `expect` of this session.
    pub fn bind_data(&mut self, expect: super::input::ExpectId, conn: ConnId) -> bool {
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
    pub fn listener_role(&self, expect: super::input::ExpectId) -> Option<Role> {
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

/// A preliminary reply to a transfer: it may announce the size.
fn preliminary(t: &mut Transfer, code: ReplyCode, text: Option<&[u8]>) {
    if code.get() == 150
        && let Some(size) = text.and_then(endpoint::parse_announced_size)
    {
        t.announced_size = Some(size);
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

/// Copy protocol text for keeping: lossy UTF-8, capped.
fn text(b: &[u8], cx: &mut Ctx<'_>) -> Box<str> {
    text_string(b, cx).into_boxed_str()
}

/// Protocol bytes become stored text here: lossy UTF-8, capped, and a PASS argument
/// inside masked (a USER line that ran into the next line without its CRLF is, to the
/// server as to us, `USER ali?PASS secret`).
fn text_string(b: &[u8], cx: &mut Ctx<'_>) -> String {
    let mut s = String::from_utf8_lossy(b).into_owned();
    if cap_string(&mut s, cx.cfg.max_text) {
        cx.counters.bound_hit(Bound::StoredText);
    }
    command::mask_password(&mut s);
    s
}

/// Cut `s` to at most `max` bytes on a character boundary; true if it was cut.
fn cap_string(s: &mut String, max: usize) -> bool {
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
fn printable(b: &[u8]) -> String {
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
