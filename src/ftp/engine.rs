//! The engine: routes stream events to sessions and data connections, keeps time from
//! the events themselves, and queues what comes out. Same input, same output.

use std::collections::hash_map::Entry;

use super::config::Config;
use super::counters::{Bound, Counters};
use super::data::{DataConn, EncryptedOwner};
use super::input::{CloseReason, ConnId, ConnKind, ExpectId, Input, Side, StreamEvent};
use super::output::{CloseHow, EncryptedDataRecord, EndReason, Event, Output, Release, Role};
use super::session::Session;
use super::shared::{Ctx, Map, Shared};
use super::time::Timestamp;

pub struct Engine {
    cfg: Config,
    now: Timestamp,
    /// Boxed: a table's spare capacity then costs a pointer per slot, not a session.
    sessions: Map<ConnId, Box<Session>>,
    shared: Shared,
    next_session: u64,
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        let shared = Shared::new(cfg.max_expectations);
        Engine {
            cfg,
            now: Timestamp::ZERO,
            sessions: Map::default(),
            shared,
            next_session: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub fn data_connections(&self) -> usize {
        self.shared.data.len()
    }

    /// The next output, if any. Call until `None` after each `handle`/`tick`/`finish`.
    pub fn poll(&mut self) -> Option<Output> {
        self.shared.out.pop_front()
    }

    pub fn handle(&mut self, input: Input<'_>, counters: &mut dyn Counters) {
        self.now = self.now.max(input.ts);
        let conn = input.conn;
        match input.event {
            StreamEvent::Opened {
                kind: ConnKind::Control,
                initiator,
                responder,
                syn_seen,
            } => {
                if self.sessions.len() >= self.cfg.max_sessions {
                    counters.bound_hit(Bound::Sessions);
                    return;
                }
                self.next_session += 1;
                // The connection's first packet, which may precede the report.
                let s = Session::new(
                    self.next_session,
                    conn,
                    (initiator, responder),
                    input.ts.min(self.now),
                    syn_seen,
                );
                self.sessions.insert(conn, Box::new(s));
                counters.sessions_active(1);
            }
            StreamEvent::Opened {
                kind: ConnKind::Data(expect),
                initiator,
                responder,
                syn_seen,
            } => self.open_data(conn, expect, (initiator, responder), syn_seen, counters),
            StreamEvent::Data { from, bytes } => {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.last = self.now;
                    let mut cx = Ctx {
                        cfg: &self.cfg,
                        shared: &mut self.shared,
                        counters,
                        now: self.now,
                    };
                    s.data(from, bytes, &mut cx);
                }
            }
            StreamEvent::Progress { from, bytes } => {
                if let Some(d) = self.shared.data.get_mut(&conn) {
                    d.progress(self.now, from, bytes);
                    counters.data_bytes(d.role_of(from) == Role::Server, bytes);
                    if let Some(s) = self.sessions.get_mut(&d.session) {
                        s.last = self.now;
                    }
                }
            }
            StreamEvent::Gap { from, len } => {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    let before = s.buffered();
                    s.gap(from, len);
                    self.shared.partial_total -= before - s.buffered();
                }
            }
            StreamEvent::Fin { from } => self.teardown(conn, from, CloseHow::Fin, counters),
            StreamEvent::Reset { from } => self.teardown(conn, from, CloseHow::Rst, counters),
            StreamEvent::FinWithoutCloseNotify { from } => {
                self.teardown(conn, from, CloseHow::FinWithoutCloseNotify, counters)
            }
            StreamEvent::Closed(reason) => self.closed(conn, reason, counters),
        }
        self.settle_due(counters);
    }

    /// Time passes without packets (live mode): settle 426s whose wait is over.
    pub fn tick(&mut self, now: Timestamp, counters: &mut dyn Counters) {
        self.now = self.now.max(now);
        self.settle_due(counters);
    }

    /// The input is over: every session ends as it stands.
    pub fn finish(&mut self, counters: &mut dyn Counters) {
        let mut conns: Vec<ConnId> = self.sessions.keys().copied().collect();
        conns.sort();
        for c in conns {
            self.end_session(c, EndReason::CaptureEnd, counters);
        }
        for (_, d) in self.shared.data.drain() {
            if !d.ended {
                counters.data_connections_active(-1);
            }
        }
    }

    fn open_data(
        &mut self,
        conn: ConnId,
        expect: ExpectId,
        (initiator, responder): (std::net::SocketAddr, std::net::SocketAddr),
        syn_seen: bool,
        counters: &mut dyn Counters,
    ) {
        if let Some(&control) = self.shared.encrypted.get(&expect) {
            self.open_encrypted(conn, control, (initiator, responder), syn_seen, counters);
            return;
        }
        let session = self.shared.take_expectation(expect).and_then(|control| {
            let s = self.sessions.get_mut(&control)?;
            s.bind_data(expect, conn).then_some((control, s))
        });
        let Some((control, s)) = session else {
            // Nothing waits on it: the table need not keep it through a silence.
            let ends = (initiator, responder);
            self.shared
                .out
                .push_back(Output::Release(Release { conn, ends }));
            return;
        };
        // The responder is the listener at the announced endpoint.
        let listener_is_server = s.listener_role(expect) == Some(Role::Server);
        let (client, server, opened_by) = if listener_is_server {
            (initiator, responder, Role::Client)
        } else {
            (responder, initiator, Role::Server)
        };
        let d = DataConn::opened(control, (client, server), opened_by, syn_seen, self.now);
        self.shared.data.insert(conn, d);
        s.last = self.now;
        counters.data_connections_active(1);
    }

    /// A new connection between an encrypted session's hosts: taken for one of its data
    /// connections, followed to its end, and reported then.
    fn open_encrypted(
        &mut self,
        conn: ConnId,
        control: ConnId,
        (initiator, responder): (std::net::SocketAddr, std::net::SocketAddr),
        syn_seen: bool,
        counters: &mut dyn Counters,
    ) {
        // No transfer will claim it: the table keeps it only while it moves (its idle
        // limit, not a held transfer's).
        let ends = (initiator, responder);
        self.shared
            .out
            .push_back(Output::Release(Release { conn, ends }));
        let Some(s) = self.sessions.get_mut(&control) else {
            return;
        };
        // Roles by host: the end on the FTP client's host is the client's.
        let client_opened = initiator.ip() == s.client.ip();
        let (client, server, opened_by) = if client_opened {
            (initiator, responder, Role::Client)
        } else {
            (responder, initiator, Role::Server)
        };
        s.last = self.now;
        let owner = EncryptedOwner {
            session: s.id,
            client: s.client,
            server: s.server,
        };
        let mut d = DataConn::opened(control, (client, server), opened_by, syn_seen, self.now);
        d.encrypted = Some(Box::new(owner));
        self.shared.data.insert(conn, d);
        counters.data_connections_active(1);
    }

    fn teardown(&mut self, conn: ConnId, from: Side, how: CloseHow, counters: &mut dyn Counters) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.closing(match how {
                CloseHow::Fin | CloseHow::FinWithoutCloseNotify => EndReason::Fin,
                CloseHow::Rst => EndReason::Rst,
            });
            return;
        }
        if let Some(d) = self.shared.data.get_mut(&conn) {
            d.close(self.now, from, how);
            let session = d.session;
            self.settle_session(session, false, counters);
        }
    }

    fn closed(&mut self, conn: ConnId, reason: CloseReason, counters: &mut dyn Counters) {
        if self.sessions.contains_key(&conn) {
            let why = match reason {
                // Fin/Rst already recorded which came first.
                CloseReason::Finished => EndReason::Fin,
                CloseReason::TimedOut => EndReason::Timeout,
                CloseReason::Evicted => EndReason::Evicted,
                CloseReason::CaptureEnd => EndReason::CaptureEnd,
            };
            self.end_session(conn, why, counters);
            return;
        }
        if let Entry::Occupied(mut e) = self.shared.data.entry(conn) {
            counters.data_connections_active(-1);
            let session = e.get().session;
            if let Some(owner) = e.get().encrypted.as_deref().copied() {
                let d = e.remove();
                let record = EncryptedDataRecord {
                    session: owner.session,
                    client: owner.client,
                    server: owner.server,
                    data: d.record(),
                };
                self.shared
                    .out
                    .push_back(Output::Event(Event::EncryptedData(Box::new(record))));
                return;
            }
            if e.get().released {
                e.remove();
            } else {
                e.get_mut().ended = true;
            }
            self.settle_session(session, false, counters);
        }
    }

    fn end_session(&mut self, conn: ConnId, why: EndReason, counters: &mut dyn Counters) {
        let Some(s) = self.sessions.remove(&conn) else {
            return;
        };
        self.shared.partial_total -= s.buffered();
        counters.sessions_active(-1);
        let mut cx = Ctx {
            cfg: &self.cfg,
            shared: &mut self.shared,
            counters,
            now: self.now,
        };
        s.end(why, &mut cx);
        // Data connections of this session that nothing refers to any more.
        let orphans: Vec<ConnId> = self
            .shared
            .data
            .iter()
            .filter(|(_, d)| d.session == conn && d.released)
            .map(|(id, _)| *id)
            .collect();
        for id in orphans {
            if let Some(d) = self.shared.data.remove(&id)
                && !d.ended
            {
                counters.data_connections_active(-1);
            }
        }
        self.shared.settling_sessions.retain(|c| *c != conn);
    }

    fn settle_session(&mut self, conn: ConnId, force: bool, counters: &mut dyn Counters) {
        if let Some(s) = self.sessions.get_mut(&conn)
            && !s.settling.is_empty()
        {
            let mut cx = Ctx {
                cfg: &self.cfg,
                shared: &mut self.shared,
                counters,
                now: self.now,
            };
            s.settle(force, &mut cx);
        }
    }

    fn settle_due(&mut self, counters: &mut dyn Counters) {
        if self.shared.settling_sessions.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.shared.settling_sessions);
        let mut keep = Vec::new();
        for conn in list {
            self.settle_session(conn, false, counters);
            if self
                .sessions
                .get(&conn)
                .is_some_and(|s| !s.settling.is_empty())
                && !keep.contains(&conn)
            {
                keep.push(conn);
            }
        }
        self.shared.settling_sessions.extend(keep);
    }
}
