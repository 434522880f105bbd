//! Client commands: what each one starts (a transfer, an announced data endpoint, an
//! ABOR, TLS) and the queue of commands waiting for replies.

use std::net::SocketAddr;

use super::Session;
use crate::ftp::command::{self, Command, Verb};
use crate::ftp::counters::{Anomaly, Bound};
use crate::ftp::data::Channel;
use crate::ftp::endpoint::{self, EndpointError};
use crate::ftp::line::Line;
use crate::ftp::output::{Expectation, Mode, Role};
use crate::ftp::pending::{Pending, PendingKind};
use crate::ftp::shared::Ctx;
use crate::ftp::transfer::Transfer;

impl Session {
    pub(super) fn client_line(&mut self, line: &Line<'_>, cx: &mut Ctx<'_>) {
        let Some(cmd) = command::parse(line.bytes) else {
            return;
        };
        if line.after_gap && cmd.verb == Verb::Other {
            return; // most likely the tail of a command the capture lost
        }
        cx.counters.command(cmd.verb);
        self.commands = self.commands.saturating_add(1);
        if cmd.verb == Verb::USER {
            self.user = cmd.arg().map(|a| stored(a, cx));
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
                Some(a) => PendingKind::Size(stored(a, cx)),
                None => PendingKind::Plain,
            },
            Verb::QUIT => {
                self.quit = true;
                PendingKind::Plain
            }
            Verb::REST => {
                self.restart = true;
                PendingKind::Plain
            }
            v if v.is_transfer() => {
                self.transfers = self.transfers.saturating_add(1);
                let arg = cmd.arg().map(|a| self.keep(a, cx).into_boxed_str());
                let mut t = Transfer::new(v, arg, cx.now);
                t.channel = self.channel.take().map(|c| *c);
                t.restarted = std::mem::take(&mut self.restart);
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
    pub(super) fn announce_active(&mut self, cmd: &Command<'_>, cx: &mut Ctx<'_>) {
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

    pub(super) fn bad_endpoint(
        &mut self,
        e: EndpointError,
        what: &str,
        raw: &[u8],
        cx: &mut Ctx<'_>,
    ) {
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

    pub(super) fn announce(&mut self, mode: Mode, announced: SocketAddr, cx: &mut Ctx<'_>) {
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

    pub(super) fn drop_channel(&mut self, ch: Option<Channel>, cx: &mut Ctx<'_>) {
        if let Some(ch) = ch {
            cx.shared.release_channel(&ch);
        }
    }
}

/// An argument kept as it is (a user name, a SIZE path): lossy UTF-8, capped, masked.
fn stored(b: &[u8], cx: &mut Ctx<'_>) -> Box<str> {
    crate::ftp::text::stored(b, cx.cfg.max_text, cx.counters).into_boxed_str()
}
