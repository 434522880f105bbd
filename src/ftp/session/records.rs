//! A transfer that is done becomes a record: it waits (at most `abort_settle`) for its
//! data connection's teardown, then gets its cause and goes out.

use super::{Session, data_open};
use crate::ftp::cause::{attribute_abort, attribute_interruption};
use crate::ftp::output::{Event, Outcome, Output};
use crate::ftp::pending::{Pending, PendingKind};
use crate::ftp::shared::Ctx;
use crate::ftp::time::Timestamp;
use crate::ftp::transfer::{FinalReply, Transfer, build_record, outcome_of};

/// A transfer with its final reply, waiting for its data connection's teardown.
#[derive(Debug)]
pub struct Settling {
    transfer: Box<Transfer>,
    reply: FinalReply,
    pub deadline: Timestamp,
}

impl Session {
    /// `p` is done: with its final reply, or with none (`reply` is `None`).
    pub(super) fn finish_pending(
        &mut self,
        p: Pending,
        reply: Option<FinalReply>,
        cx: &mut Ctx<'_>,
    ) {
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

    pub(super) fn emit(&mut self, t: Transfer, reply: FinalReply, cx: &mut Ctx<'_>) {
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
}
