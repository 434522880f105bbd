//! New connections into the table, and room for them: a control connection is picked
//! up from its SYN, its SYN-ACK or (mid-stream) any segment with data; a data
//! connection when it matches an endpoint the engine announced. A full table gives up
//! its oldest half-open connection first, then a held data connection idle past the
//! data timeout; established connections are never displaced otherwise.

use std::net::SocketAddr;

use super::conn::{Ctx, Direction, Flow, Kind, Room, State, process, report_open};
use super::counters::{Eviction, TableBound};
use super::expect::Match;
use super::{FlowKey, FlowTable};
use crate::decode::Segment;
use crate::ftp::{CloseReason, ConnId, ConnKind};

/// What a first segment makes of a connection: its ends by role, and the announcement
/// it matched (a data connection) or none (a control connection).
struct Admission {
    data: Option<Match>,
    initiator: SocketAddr,
    responder: SocketAddr,
}

impl FlowTable {
    /// The first segment of a connection not in the table.
    pub(super) fn create(&mut self, key: FlowKey, seg: &Segment<'_>, cx: &mut Ctx<'_, '_>) {
        let Some(admission) = self.classify(seg) else {
            return;
        };
        if self.flows.len() >= self.cfg.max_flows {
            cx.counters.bound_hit(TableBound::Flows);
            if !self.evict_half_open(cx) && !self.evict_idle_held(cx) {
                // Every flow is established and busy: the new one is not followed.
                return;
            }
        }
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let Admission {
            data,
            initiator,
            responder,
        } = admission;
        let (kind, reported_as) = match &data {
            None => (Kind::Control { live_children: 0 }, ConnKind::Control),
            Some(m) => {
                let kind = Kind::Data {
                    parent: m.control,
                    held: true,
                    parked: false,
                };
                (kind, ConnKind::Data(m.id))
            }
        };
        if let Some(m) = data {
            self.adopt(m, [initiator, responder]);
        }
        let flow = Flow {
            conn,
            key,
            kind,
            initiator,
            dirs: Direction::pair(kind),
            last_seen: self.now,
            state: State::HalfOpen,
            unreported: Some((reported_as, seg.flags.syn())),
            first_seen: self.now,
            timer: self.now.saturating_add(self.cfg.half_open_idle),
        };
        cx.counters.flows_active(1);
        self.track_half_open(conn, key);
        self.timers.insert((flow.timer, conn), key);
        let room = self.room();
        let flow = self.flows.entry(key).or_insert(flow);
        if matches!(kind, Kind::Data { .. }) {
            // The engine is waiting for this one: report it at once.
            report_open(flow, cx);
        }
        let closed = process(flow, seg, room, cx);
        self.held_total += flow.buffered();
        if flow.state != State::HalfOpen {
            self.half_open_count -= 1;
        }
        if closed {
            self.linger(conn, key);
        }
    }

    /// Is this first segment one to follow, and who opened the connection?
    fn classify(&self, seg: &Segment<'_>) -> Option<Admission> {
        let (syn, ack) = (seg.flags.syn(), seg.flags.ack());
        // A stray ACK, FIN or RST creates nothing.
        if !(syn || seg.wire_len > 0) {
            return None;
        }
        if self.is_control_port(seg.dst.port()) || self.is_control_port(seg.src.port()) {
            let server_is_dst = if syn {
                !ack
            } else {
                self.is_control_port(seg.dst.port())
            };
            let (initiator, responder) = if server_is_dst {
                (seg.src, seg.dst)
            } else {
                (seg.dst, seg.src)
            };
            return Some(Admission {
                data: None,
                initiator,
                responder,
            });
        }
        // An announced endpoint; else, for an encrypted session, a new connection
        // between its hosts (a SYN: a connection picked up mid-stream cannot be dated).
        let m = self.expectations.find(seg.src, seg.dst).or_else(|| {
            (syn && !ack)
                .then(|| self.encrypted.find(seg.src, seg.dst))
                .flatten()
        })?;
        let connector = if m.listener == seg.dst {
            seg.src
        } else {
            seg.dst
        };
        Some(Admission {
            initiator: connector,
            responder: m.listener,
            data: Some(m),
        })
    }

    /// A data connection takes over its announcement: its ports become of interest,
    /// and its control connection waits for it.
    fn adopt(&mut self, m: Match, ends: [SocketAddr; 2]) {
        self.unexpect_announced(m.id);
        for end in ends {
            self.interest[end.port() as usize] += 1;
        }
        if let Some(Flow {
            kind: Kind::Control { live_children },
            ..
        }) = self.flows.get_mut(&m.control)
        {
            *live_children += 1;
        }
    }

    /// How much out-of-order data a segment may add: a direction's cap, and what is
    /// left of the table-wide budget.
    pub(super) fn room(&self) -> Room {
        Room {
            per_direction: self.cfg.max_buffer,
            shared: self.cfg.max_buffered_total.saturating_sub(self.held_total),
        }
    }

    fn track_half_open(&mut self, conn: ConnId, key: FlowKey) {
        self.half_open.push_back((conn, key));
        self.half_open_count += 1;
        if self.half_open.len() > 2 * self.half_open_count + 1024 {
            // Forget entries of flows that completed their handshake or are gone.
            let flows = &self.flows;
            self.half_open.retain(|(c, k)| {
                flows
                    .get(k)
                    .is_some_and(|f| f.conn == *c && f.state == State::HalfOpen)
            });
        }
    }

    /// Make room by dropping the oldest flow that has not completed its handshake.
    fn evict_half_open(&mut self, cx: &mut Ctx<'_, '_>) -> bool {
        while let Some((conn, key)) = self.half_open.pop_front() {
            let Some(f) = self.flows.get(&key) else {
                continue;
            };
            if f.conn != conn || f.state != State::HalfOpen {
                continue;
            }
            let reported = f.unreported.is_none();
            self.evict(key, Eviction::TableFull, cx);
            if reported {
                cx.event(conn, crate::ftp::StreamEvent::Closed(CloseReason::Evicted));
            }
            return true;
        }
        false
    }

    /// Make room by dropping the held data connection idle the longest (past
    /// `data_idle`): a transfer that waits on it loses its end, which is counted.
    fn evict_idle_held(&mut self, cx: &mut Ctx<'_, '_>) -> bool {
        while let Some((conn, key)) = self.idle_held.pop_front() {
            let Some(f) = self.flows.get_mut(&key) else {
                continue;
            };
            let Kind::Data { held, parked, .. } = f.kind else {
                continue;
            };
            // An entry of a flow that moved again since it was listed (a fresh entry
            // stands further back if it went idle again), or that was released.
            if f.conn != conn || !held || !parked || f.state != State::Open {
                continue;
            }
            self.evict(key, Eviction::PendingTransfer, cx);
            cx.event(conn, crate::ftp::StreamEvent::Closed(CloseReason::Evicted));
            return true;
        }
        false
    }

    /// List a held data connection that went idle as evictable.
    pub(super) fn park(&mut self, conn: ConnId, key: FlowKey) {
        if let Some(Flow {
            kind: Kind::Data { parked, .. },
            ..
        }) = self.flows.get_mut(&key)
            && !*parked
        {
            *parked = true;
            self.idle_held.push_back((conn, key));
        }
        if self.idle_held.len() > 2 * self.flows.len() + 1024 {
            // Forget entries of flows that moved on, were released or are gone.
            let flows = &self.flows;
            self.idle_held.retain(|(c, k)| {
                flows.get(k).is_some_and(|f| {
                    f.conn == *c
                        && matches!(
                            f.kind,
                            Kind::Data {
                                held: true,
                                parked: true,
                                ..
                            }
                        )
                })
            });
        }
    }

    /// Drop an open flow before it ended, counted by `why`.
    pub(super) fn evict(&mut self, key: FlowKey, why: Eviction, cx: &mut Ctx<'_, '_>) {
        self.remove(key);
        cx.counters.flow_evicted(why);
        cx.counters.flows_active(-1);
    }

    /// Forget a flow (it has been reported closed, or is being evicted).
    pub(super) fn remove(&mut self, key: FlowKey) -> Option<Flow> {
        let flow = self.flows.remove(&key)?;
        self.timers.remove(&(flow.timer, flow.conn));
        self.held_total -= flow.buffered();
        if flow.state == State::HalfOpen {
            self.half_open_count -= 1;
        }
        if let Kind::Data { parent, .. } = flow.kind {
            self.interest[flow.initiator.port() as usize] -= 1;
            self.interest[key.other(flow.initiator).port() as usize] -= 1;
            if let Some(Flow {
                kind: Kind::Control { live_children },
                ..
            }) = self.flows.get_mut(&parent)
            {
                *live_children = live_children.saturating_sub(1);
            }
        }
        Some(flow)
    }
}
