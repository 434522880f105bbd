//! Server replies: each goes to the command RFC 959 §5.4 says it answers (see
//! `pending::route`), and what it says takes effect (a data endpoint, TLS, the end of a
//! transfer).

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::{Session, data_open};
use crate::ftp::command::Verb;
use crate::ftp::counters::Anomaly;
use crate::ftp::endpoint;
use crate::ftp::line::Line;
use crate::ftp::output::{AbortCause, Event, Mode, Outcome, Output, TransferRecord};
use crate::ftp::pending::{self, Pending, PendingKind, Route};
use crate::ftp::reply::{ReplyCode, ReplyStep};
use crate::ftp::sequence::{self, Fit, Stage};
use crate::ftp::shared::Ctx;
use crate::ftp::text;
use crate::ftp::transfer::{FinalReply, Transfer};

impl Session {
    pub(super) fn server_line(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        self.server_line_inner(line, cx);
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // Idle sessions keep no command queue allocated.
            self.pending = VecDeque::new();
        }
    }

    pub(super) fn server_line_inner(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        match self.replies.line(line.bytes) {
            ReplyStep::Continues => {}
            ReplyStep::Malformed if line.after_gap => {
                // Most likely the tail of a reply the capture lost, not a reply.
            }
            ReplyStep::Malformed => {
                let detail = format!("reply line: {}", text::printable(line.bytes));
                self.anomaly(Anomaly::MalformedReply, detail, cx);
                // It may have answered the oldest command not answered so already (a
                // transfer that has started ends only with a reply code).
                if let Some(p) = self
                    .pending
                    .iter_mut()
                    .find(|p| !p.malformed_answer && p.stage == Stage::Sent)
                {
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
                    let detail = format!("reply line: {}", text::printable(line.bytes));
                    self.anomaly(Anomaly::ReplyCodeGlued, detail, cx);
                }
                self.reply(code, text, cx);
            }
        }
    }

    pub(super) fn reply(&mut self, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
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
    pub(super) fn resolve_held(&mut self, held: FinalReply, next: ReplyCode, cx: &mut Ctx<'_>) {
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
    pub(super) fn answer(
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
    pub(super) fn unmatched(&mut self, code: ReplyCode, text: Option<&[u8]>, cx: &mut Ctx<'_>) {
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
    /// Its start is the session's first packet, the earliest the capture knows of it;
    /// its cause is `abor` when the client's ABOR is waiting, otherwise `unknown`.
    pub(super) fn abort_without_command(
        &mut self,
        code: ReplyCode,
        text: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) {
        let abor = self.pending.iter().any(|p| p.verb == Verb::ABOR);
        let cause = if abor {
            AbortCause::Abor
        } else {
            AbortCause::Unknown
        };
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
            abort_cause: Some(cause),
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
    pub(super) fn take_held(&mut self) -> Option<FinalReply> {
        match &mut self.pending.front_mut()?.kind {
            PendingKind::Transfer(t) => t.held.take(),
            _ => None,
        }
    }

    /// The final reply for `p`.
    pub(super) fn apply(
        &mut self,
        p: Pending,
        code: ReplyCode,
        text: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) {
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
            (_, Verb::AUTH, 234) if !self.tls => self.went_encrypted(cx),
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
}

/// A preliminary reply to a transfer: it may announce the size.
fn preliminary(t: &mut Transfer, code: ReplyCode, text: Option<&[u8]>) {
    if code.get() == 150
        && let Some(size) = text.and_then(endpoint::parse_announced_size)
    {
        t.announced_size = Some(size);
    }
}
