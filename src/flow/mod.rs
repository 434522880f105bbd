//! The TCP connection table. It keeps state only for FTP control connections (the
//! configured ports) and for data connections the engine announced; any other segment
//! costs two array reads (are either of its ports of interest?) and, at most, one hash
//! lookup. Control streams are reassembled in order; data streams are only counted.
//! Time comes from the packets; every bound that is hit is counted.

mod dedup;
mod expect;
mod key;
mod reassembly;
mod seqcount;

pub use key::FlowKey;
pub use reassembly::{Chunk, Reassembler};
pub use seqcount::SeqCounter;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::decode::Segment;
use crate::ftp::{
    Bound, CloseReason, ConnId, ConnKind, Counters, Eviction, ExpectId, Expectation, Input,
    Release, Side, StreamEvent, Timestamp,
};
use dedup::Dedup;
use expect::Expectations;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub struct Config {
    /// TCP ports that carry FTP control connections.
    pub control_ports: Vec<u16>,
    /// Connections tracked at once.
    pub max_flows: usize,
    /// Out-of-order bytes held per direction of a control connection.
    pub max_buffer: usize,
    /// Out-of-order bytes held by all control connections together.
    pub max_buffered_total: usize,
    /// A control connection with no packet (and no live data connection) this long ends.
    pub control_idle: Duration,
    /// A data connection with no packet this long ends, once no transfer waits on it
    /// (`Output::Release`). One a transfer still waits on is kept however long it is
    /// silent (servers wait 600-3600 s); past this idle time it may be evicted, but only
    /// to make room in a full table.
    pub data_idle: Duration,
    /// A connection that has seen only its handshake.
    pub half_open_idle: Duration,
    /// How long a finished connection is remembered, to absorb its last packets.
    pub closed_linger: Duration,
    /// How long an announced data endpoint waits for its connection.
    pub expectation_ttl: Duration,
    /// The same segment seen again within this is a copy (0 turns the check off).
    pub duplicate_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            control_ports: vec![21],
            max_flows: 262_144,
            max_buffer: 64 * 1024,
            max_buffered_total: 64 << 20,
            control_idle: Duration::from_secs(900),
            data_idle: Duration::from_secs(300),
            half_open_idle: Duration::from_secs(30),
            closed_linger: Duration::from_secs(10),
            expectation_ttl: Duration::from_secs(120),
            duplicate_window: Duration::from_millis(10),
        }
    }
}

#[derive(Debug)]
enum Stream {
    /// Control connection: bytes delivered in order.
    Reassembled(Reassembler),
    /// Data connection: bytes counted from sequence numbers.
    Counted(SeqCounter),
}

#[derive(Debug)]
struct Direction {
    stream: Stream,
    fin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only handshake packets so far.
    HalfOpen,
    Open,
    /// Both FINs or a RST were seen; packets are absorbed until it is forgotten.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Control {
        live_children: u32,
    },
    Data {
        parent: FlowKey,
        /// A transfer waits on it (until the engine releases it): no idle timeout.
        held: bool,
        /// Held and idle past `data_idle`: listed in `idle_held`, evictable when full.
        parked: bool,
    },
}

#[derive(Debug)]
struct Flow {
    conn: ConnId,
    key: FlowKey,
    kind: Kind,
    initiator: SocketAddr,
    /// Index 0: bytes sent by the initiator; 1: by the responder.
    dirs: [Direction; 2],
    last_seen: Timestamp,
    state: State,
    /// Not yet reported to the engine. A control connection is reported once its
    /// handshake is answered or it carries data, so that a flood of unanswered SYNs
    /// costs a table entry, not a session.
    unreported: Option<(ConnKind, bool)>,
    /// When the first packet was seen (reported as the connection's start).
    first_seen: Timestamp,
    /// Due time of this flow's one entry in the timer map.
    timer: Timestamp,
}

impl Flow {
    /// Out-of-order bytes this flow holds.
    fn held(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| match &d.stream {
                Stream::Reassembled(r) => r.buffered(),
                Stream::Counted(_) => 0,
            })
            .sum()
    }

    fn responder(&self) -> SocketAddr {
        self.key.other(self.initiator)
    }

    fn side_of(&self, src: SocketAddr) -> Side {
        if src == self.initiator {
            Side::Initiator
        } else {
            Side::Responder
        }
    }
}

fn idx(side: Side) -> usize {
    match side {
        Side::Initiator => 0,
        Side::Responder => 1,
    }
}

/// Where the table delivers stream events.
pub type Emit<'e> = dyn FnMut(&mut dyn Counters, Input<'_>) + 'e;

pub struct FlowTable {
    cfg: Config,
    flows: Map<FlowKey, Flow>,
    expectations: Expectations,
    /// Per port: how many reasons to look at a segment using it (control port,
    /// announced endpoint, tracked data connection).
    interest: Box<[u32]>,
    timers: BTreeMap<(Timestamp, ConnId), FlowKey>,
    /// Flows in creation order, for evicting the oldest half-open one when the table
    /// is full (entries of flows that moved on are skipped when reached).
    half_open: std::collections::VecDeque<(ConnId, FlowKey)>,
    /// Flows still in their handshake (the live part of `half_open`).
    half_open_count: usize,
    /// Held data connections that went idle past `data_idle`, oldest first: what a full
    /// table may evict once no flow is half-open (entries of flows that moved on are
    /// skipped when reached).
    idle_held: std::collections::VecDeque<(ConnId, FlowKey)>,
    /// Out-of-order bytes held by every flow (bounded by `max_buffered_total`).
    held_total: usize,
    dedup: Dedup,
    next_conn: u64,
    now: Timestamp,
    next_sweep: Timestamp,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl FlowTable {
    pub fn new(cfg: Config) -> Self {
        let dedup = Dedup::new(cfg.duplicate_window);
        let mut interest = vec![0u32; 65_536].into_boxed_slice();
        for p in &cfg.control_ports {
            interest[*p as usize] += 1;
        }
        FlowTable {
            cfg,
            flows: Map::default(),
            expectations: Expectations::default(),
            interest,
            timers: BTreeMap::new(),
            half_open: std::collections::VecDeque::new(),
            half_open_count: 0,
            idle_held: std::collections::VecDeque::new(),
            held_total: 0,
            dedup,
            next_conn: 0,
            now: Timestamp::ZERO,
            next_sweep: Timestamp::ZERO,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn expectations(&self) -> usize {
        self.expectations.len()
    }

    fn is_control_port(&self, port: u16) -> bool {
        self.cfg.control_ports.contains(&port)
    }

    /// The engine announced a data endpoint.
    pub fn expect(&mut self, e: Expectation, counters: &mut dyn Counters) {
        if self.expectations.len() >= self.cfg.max_flows {
            counters.bound_hit(Bound::Expectations);
            return;
        }
        self.interest[e.listener.port() as usize] += 1;
        self.expectations.insert(e);
    }

    pub fn unexpect(&mut self, id: ExpectId) {
        if let Some(port) = self.expectations.remove(id) {
            self.interest[port as usize] -= 1;
        }
    }

    /// No transfer waits on this data connection any more: it times out when idle.
    pub fn release(&mut self, r: Release) {
        let key = FlowKey::new(r.ends.0, r.ends.1);
        let Some(f) = self.flows.get_mut(&key) else {
            return;
        };
        if f.conn != r.conn {
            return;
        }
        if let Kind::Data { held, .. } = &mut f.kind {
            *held = false;
        }
        let due = f.last_seen.saturating_add(self.cfg.data_idle).max(self.now);
        if f.state == State::Open && due < f.timer {
            self.rearm(r.conn, key, due);
        }
    }

    /// One decoded segment at time `ts`.
    pub fn segment(
        &mut self,
        ts: Timestamp,
        seg: &Segment<'_>,
        counters: &mut dyn Counters,
        emit: &mut Emit<'_>,
    ) {
        self.advance(ts, counters, emit);
        if self.interest[seg.src.port() as usize] == 0
            && self.interest[seg.dst.port() as usize] == 0
        {
            return;
        }
        if self.dedup.is_copy(ts, seg) {
            counters.duplicate();
            return;
        }
        let key = FlowKey::new(seg.src, seg.dst);
        let reopened = self
            .flows
            .get(&key)
            .is_some_and(|f| f.state == State::Closed && seg.flags.syn() && !seg.flags.ack());
        if reopened {
            // The same ends open a new connection: the old one is over.
            self.remove(key);
        }
        if let Some(flow) = self.flows.get_mut(&key) {
            let conn = flow.conn;
            let was_half_open = flow.state == State::HalfOpen;
            let held_before = flow.held();
            let room = self.cfg.max_buffered_total.saturating_sub(self.held_total);
            let closed = process(flow, &self.cfg, room, self.now, seg, counters, emit);
            self.held_total = self.held_total - held_before + flow.held();
            if was_half_open && flow.state != State::HalfOpen {
                self.half_open_count -= 1;
            }
            if closed {
                self.linger(conn, key);
            }
            return;
        }
        self.create(key, seg, counters, emit);
    }

    /// A flow just closed: forget it after the linger time.
    fn linger(&mut self, conn: ConnId, key: FlowKey) {
        self.rearm(conn, key, self.now.saturating_add(self.cfg.closed_linger));
    }

    /// Move a flow's one timer entry to `due`.
    fn rearm(&mut self, conn: ConnId, key: FlowKey, due: Timestamp) {
        if let Some(f) = self.flows.get_mut(&key) {
            self.timers.remove(&(f.timer, conn));
            f.timer = due;
            self.timers.insert((due, conn), key);
        }
    }

    fn create(
        &mut self,
        key: FlowKey,
        seg: &Segment<'_>,
        counters: &mut dyn Counters,
        emit: &mut Emit<'_>,
    ) {
        let (syn, ack, data) = (seg.flags.syn(), seg.flags.ack(), seg.wire_len > 0);
        // A connection is picked up from its SYN, its SYN-ACK, or (mid-stream) any
        // segment with data; a stray ACK, FIN or RST creates nothing.
        if !(syn || data) {
            return;
        }
        let (kind_of, initiator, responder): (Option<expect::Match>, SocketAddr, SocketAddr) =
            if self.is_control_port(seg.dst.port()) || self.is_control_port(seg.src.port()) {
                let server_is_dst = if syn {
                    !ack
                } else {
                    self.is_control_port(seg.dst.port())
                };
                let (i, r) = if server_is_dst {
                    (seg.src, seg.dst)
                } else {
                    (seg.dst, seg.src)
                };
                (None, i, r)
            } else if let Some(m) = self.expectations.find(seg.src, seg.dst) {
                let connector = if m.listener == seg.dst {
                    seg.src
                } else {
                    seg.dst
                };
                let listener = m.listener;
                (Some(m), connector, listener)
            } else {
                return;
            };
        if self.flows.len() >= self.cfg.max_flows {
            counters.bound_hit(Bound::Flows);
            if !self.evict_half_open(counters, emit) && !self.evict_idle_held(counters, emit) {
                // Every flow is established and busy: the new one is not followed.
                return;
            }
        }
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let (kind, event_kind) = match &kind_of {
            None => (Kind::Control { live_children: 0 }, ConnKind::Control),
            Some(m) => (
                Kind::Data {
                    parent: m.control,
                    held: true,
                    parked: false,
                },
                ConnKind::Data(m.id),
            ),
        };
        if let Some(m) = kind_of {
            self.unexpect(m.id);
            self.interest[initiator.port() as usize] += 1;
            self.interest[responder.port() as usize] += 1;
            if let Some(Flow {
                kind: Kind::Control { live_children },
                ..
            }) = self.flows.get_mut(&m.control)
            {
                *live_children += 1;
            }
        }
        let stream = || match kind {
            Kind::Control { .. } => Stream::Reassembled(Reassembler::default()),
            Kind::Data { .. } => Stream::Counted(SeqCounter::default()),
        };
        let flow = Flow {
            conn,
            key,
            kind,
            initiator,
            dirs: [
                Direction {
                    stream: stream(),
                    fin: false,
                },
                Direction {
                    stream: stream(),
                    fin: false,
                },
            ],
            last_seen: self.now,
            state: State::HalfOpen,
            unreported: Some((event_kind, syn)),
            first_seen: self.now,
            timer: self.now.saturating_add(self.cfg.half_open_idle),
        };
        counters.flows_active(1);
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
        self.timers.insert((flow.timer, conn), key);
        let flow = self.flows.entry(key).or_insert(flow);
        if matches!(kind, Kind::Data { .. }) {
            // The engine is waiting for this one: report it at once.
            report_open(flow, counters, emit);
        }
        let room = self.cfg.max_buffered_total.saturating_sub(self.held_total);
        let closed = process(flow, &self.cfg, room, self.now, seg, counters, emit);
        self.held_total += flow.held();
        if flow.state != State::HalfOpen {
            self.half_open_count -= 1;
        }
        if closed {
            self.linger(conn, key);
        }
    }

    /// Make room by dropping the oldest flow that has not completed its handshake.
    fn evict_half_open(&mut self, counters: &mut dyn Counters, emit: &mut Emit<'_>) -> bool {
        while let Some((conn, key)) = self.half_open.pop_front() {
            let Some(f) = self.flows.get(&key) else {
                continue;
            };
            if f.conn != conn || f.state != State::HalfOpen {
                continue;
            }
            let reported = f.unreported.is_none();
            self.remove(key);
            counters.flow_evicted(Eviction::TableFull);
            counters.flows_active(-1);
            if reported {
                let event = StreamEvent::Closed(CloseReason::Evicted);
                emit(
                    counters,
                    Input {
                        ts: self.now,
                        conn,
                        event,
                    },
                );
            }
            return true;
        }
        false
    }

    /// Make room by dropping the held data connection idle the longest (past
    /// `data_idle`): a transfer that waits on it loses its end, which is counted.
    fn evict_idle_held(&mut self, counters: &mut dyn Counters, emit: &mut Emit<'_>) -> bool {
        while let Some((conn, key)) = self.idle_held.pop_front() {
            let Some(f) = self.flows.get_mut(&key) else {
                continue;
            };
            let Kind::Data { held, parked, .. } = &mut f.kind else {
                continue;
            };
            if f.conn != conn || !*held || f.state != State::Open {
                continue;
            }
            if f.last_seen.saturating_add(self.cfg.data_idle) > self.now {
                // It moved again since it was listed.
                *parked = false;
                continue;
            }
            self.remove(key);
            counters.flow_evicted(Eviction::PendingTransfer);
            counters.flows_active(-1);
            let event = StreamEvent::Closed(CloseReason::Evicted);
            emit(
                counters,
                Input {
                    ts: self.now,
                    conn,
                    event,
                },
            );
            return true;
        }
        false
    }

    /// List a held data connection that went idle as evictable.
    fn park(&mut self, conn: ConnId, key: FlowKey) {
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

    /// Forget a flow (it has been reported closed, or is being evicted).
    fn remove(&mut self, key: FlowKey) -> Option<Flow> {
        let flow = self.flows.remove(&key)?;
        self.timers.remove(&(flow.timer, flow.conn));
        self.held_total -= flow.held();
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

    /// Let packet time pass: expire idle flows and stale announcements.
    pub fn advance(&mut self, ts: Timestamp, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
        self.now = self.now.max(ts);
        if self.now < self.next_sweep {
            return;
        }
        self.next_sweep = self.now.saturating_add(SWEEP_EVERY);
        for id in self
            .expectations
            .expired(self.now, self.cfg.expectation_ttl)
        {
            self.unexpect(id);
        }
        while let Some((&(due, conn), &key)) = self.timers.first_key_value() {
            if due > self.now {
                break;
            }
            self.timers.pop_first();
            let Some(flow) = self.flows.get(&key) else {
                continue;
            };
            if flow.conn != conn {
                continue;
            }
            let idle = match (flow.state, flow.kind) {
                (State::Closed, _) => self.cfg.closed_linger,
                (State::HalfOpen, _) => self.cfg.half_open_idle,
                (State::Open, Kind::Control { .. }) => self.cfg.control_idle,
                (State::Open, Kind::Data { .. }) => self.cfg.data_idle,
            };
            let busy_children =
                matches!(flow.kind, Kind::Control { live_children } if live_children > 0);
            let held = matches!(flow.kind, Kind::Data { held: true, .. });
            let real_due = flow.last_seen.saturating_add(idle);
            if held && flow.state == State::Open && real_due <= self.now {
                // A transfer waits on it: not idle, only evictable when the table is full.
                self.park(conn, key);
                let next = self.now.saturating_add(idle);
                self.flows.get_mut(&key).expect("looked up above").timer = next;
                self.timers.insert((next, conn), key);
                continue;
            }
            if real_due > self.now || (busy_children && flow.state != State::Closed) {
                let next = real_due.max(self.now.saturating_add(SWEEP_EVERY));
                self.flows.get_mut(&key).expect("looked up above").timer = next;
                self.timers.insert((next, conn), key);
                continue;
            }
            let state = flow.state;
            let reported = flow.unreported.is_none();
            self.remove(key);
            if state != State::Closed {
                counters.flow_evicted(Eviction::TimedOut);
                counters.flows_active(-1);
            }
            if state != State::Closed && reported {
                emit(
                    counters,
                    Input {
                        ts: self.now,
                        conn,
                        event: StreamEvent::Closed(CloseReason::TimedOut),
                    },
                );
            }
        }
    }

    /// The input is over: every open connection is reported closed, oldest first.
    pub fn finish(&mut self, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
        let mut open: Vec<(ConnId, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.state != State::Closed)
            .map(|(k, f)| (f.conn, *k))
            .collect();
        open.sort_by_key(|(c, _)| *c);
        for (conn, key) in open {
            let flow = self.flows.get_mut(&key).expect("listed above");
            counters.flows_active(-1);
            if flow.unreported.is_some() {
                continue;
            }
            for side in [Side::Initiator, Side::Responder] {
                flush(flow, side, self.now, counters, emit);
            }
            let event = StreamEvent::Closed(CloseReason::CaptureEnd);
            emit(
                counters,
                Input {
                    ts: self.now,
                    conn,
                    event,
                },
            );
        }
        // Everything goes at once (removing entries one by one was most of the cost
        // of ending a capture with a full table).
        self.flows = Map::default();
        self.timers.clear();
        self.half_open.clear();
        self.half_open_count = 0;
        self.idle_held.clear();
        self.held_total = 0;
        self.expectations = Expectations::default();
        self.interest.fill(0);
        for p in &self.cfg.control_ports {
            self.interest[*p as usize] += 1;
        }
    }
}

/// Deliver what a control direction still holds (holes become gaps).
fn flush(
    flow: &mut Flow,
    side: Side,
    now: Timestamp,
    counters: &mut dyn Counters,
    emit: &mut Emit<'_>,
) {
    let conn = flow.conn;
    if let Stream::Reassembled(r) = &mut flow.dirs[idx(side)].stream {
        r.flush(&mut |c| deliver(c, conn, side, now, counters, emit));
    }
}

fn deliver(
    c: Chunk<'_>,
    conn: ConnId,
    from: Side,
    ts: Timestamp,
    counters: &mut dyn Counters,
    emit: &mut Emit<'_>,
) {
    let event = match c {
        Chunk::Data(bytes) => StreamEvent::Data { from, bytes },
        Chunk::Gap(len) => {
            counters.gap(len);
            StreamEvent::Gap { from, len }
        }
    };
    emit(counters, Input { ts, conn, event });
}

/// Apply one segment to its flow. Returns true when the flow has just closed.
fn process(
    flow: &mut Flow,
    cfg: &Config,
    shared_room: usize,
    now: Timestamp,
    seg: &Segment<'_>,
    counters: &mut dyn Counters,
    emit: &mut Emit<'_>,
) -> bool {
    flow.last_seen = now;
    if flow.state == State::Closed {
        return false;
    }
    if flow.unreported.is_some() && (seg.wire_len > 0 || (seg.flags.syn() && seg.flags.ack())) {
        report_open(flow, counters, emit);
    }
    let reported = flow.unreported.is_none();
    let from = flow.side_of(seg.src);
    let conn = flow.conn;
    let f = seg.flags;
    if f.syn() {
        match &mut flow.dirs[idx(from)].stream {
            Stream::Reassembled(r) => r.syn(seg.seq),
            Stream::Counted(c) => c.syn(seg.seq),
        }
    }
    if seg.wire_len > 0 {
        flow.state = State::Open;
        // Payload on a SYN starts one past the SYN's sequence number.
        let seq = if f.syn() {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        match &mut flow.dirs[idx(from)].stream {
            Stream::Reassembled(r) => {
                // This direction's cap, and what is left of the table-wide one.
                let cap = cfg.max_buffer.min(r.buffered() + shared_room);
                let report = r.push(seq, seg.payload, seg.wire_len, cap, &mut |c| {
                    deliver(c, conn, from, now, counters, emit)
                });
                if report.buffer_full {
                    counters.bound_hit(Bound::ReassemblyBuffer);
                }
            }
            Stream::Counted(c) => {
                let new = c.push(seq, seg.wire_len);
                emit(
                    counters,
                    Input {
                        ts: now,
                        conn,
                        event: StreamEvent::Progress { from, bytes: new },
                    },
                );
            }
        }
    } else if !f.syn() && !f.rst() && flow.state == State::HalfOpen && f.ack() {
        // The handshake's last ACK: the connection is established.
        flow.state = State::Open;
    }
    if f.ack()
        && let Stream::Reassembled(r) = &mut flow.dirs[idx(from.other())].stream
    {
        r.peer_acked(seg.ack, &mut |c| {
            deliver(c, conn, from.other(), now, counters, emit)
        });
    }
    if f.rst() && !reported {
        // An unanswered connection attempt refused: nothing to tell the engine.
        flow.state = State::Closed;
        counters.flows_active(-1);
        return true;
    }
    if f.rst() {
        flush(flow, from, now, counters, emit);
        flush(flow, from.other(), now, counters, emit);
        emit(
            counters,
            Input {
                ts: now,
                conn,
                event: StreamEvent::Reset { from },
            },
        );
        close(flow, now, counters, emit);
        return true;
    }
    if f.fin() && !flow.dirs[idx(from)].fin && reported {
        flow.dirs[idx(from)].fin = true;
        flush(flow, from, now, counters, emit);
        emit(
            counters,
            Input {
                ts: now,
                conn,
                event: StreamEvent::Fin { from },
            },
        );
        if flow.dirs[0].fin && flow.dirs[1].fin {
            flush(flow, from.other(), now, counters, emit);
            close(flow, now, counters, emit);
            return true;
        }
    }
    false
}

/// Tell the engine about a flow it has not heard of yet.
fn report_open(flow: &mut Flow, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
    if let Some((kind, syn_seen)) = flow.unreported.take() {
        let event = StreamEvent::Opened {
            kind,
            initiator: flow.initiator,
            responder: flow.responder(),
            syn_seen,
        };
        emit(
            counters,
            Input {
                ts: flow.first_seen,
                conn: flow.conn,
                event,
            },
        );
    }
}

fn close(flow: &mut Flow, now: Timestamp, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
    flow.state = State::Closed;
    // Held data is no longer needed; keep only what absorbs stray packets.
    for d in &mut flow.dirs {
        if let Stream::Reassembled(r) = &mut d.stream {
            *r = Reassembler::default();
        }
    }
    counters.flows_active(-1);
    emit(
        counters,
        Input {
            ts: now,
            conn: flow.conn,
            event: StreamEvent::Closed(CloseReason::Finished),
        },
    );
}
