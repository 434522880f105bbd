//! The TCP connection table. It keeps state only for FTP control connections (the
//! configured ports) and for data connections the engine announced; any other segment
//! costs two array reads (are either of its ports of interest?) and, at most, one hash
//! lookup. Control streams are reassembled in order; data streams are only counted.
//! Time comes from the packets; every bound that is hit is counted.
//!
//! `conn` holds one connection and what a segment does to it, `admit` lets new
//! connections in (and makes room for them), `timers` ends idle ones.

mod admit;
mod conn;
mod counters;
mod dedup;
mod expect;
mod key;
mod reassembly;
mod seqcount;
mod timers;

pub use counters::{Counters, Eviction, TableBound};

use key::FlowKey;
use reassembly::{Chunk, Reassembler};
use seqcount::SeqCounter;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::decode::Segment;
use crate::ftp::{
    CloseReason, ConnId, EncryptedExpectation, ExpectId, Expectation, Input, Map, Release, Side,
    StreamEvent, Timestamp,
};
use conn::{Ctx, Flow, Kind, State, flush, process};
use dedup::Dedup;
use expect::{EncryptedHosts, Expectations};

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
    /// (`Output::Release`). One a transfer still waits on is kept through the silence
    /// (servers wait 600-3600 s); past this idle time it may be evicted, but only to
    /// make room in a full table, or once it is silent past `held_data_idle`.
    pub data_idle: Duration,
    /// A data connection a transfer waits on that is silent this long (and its control
    /// connection with it) ends all the same: no server waits so long, so the peers
    /// are gone (a crash, an outage on the far side of the capture point).
    pub held_data_idle: Duration,
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
            held_data_idle: Duration::from_secs(7200),
            half_open_idle: Duration::from_secs(30),
            closed_linger: Duration::from_secs(10),
            expectation_ttl: Duration::from_secs(120),
            duplicate_window: Duration::from_millis(10),
        }
    }
}

/// Where the table delivers stream events (the engine, in the pipeline).
pub type Emit<'e> = dyn FnMut(Input<'_>) + 'e;

pub struct FlowTable {
    cfg: Config,
    flows: Map<FlowKey, Flow>,
    expectations: Expectations,
    encrypted: EncryptedHosts,
    /// Per port: how many reasons to look at a segment using it (control port,
    /// announced endpoint, tracked data connection).
    interest: Box<[u32]>,
    timers: BTreeMap<(Timestamp, ConnId), FlowKey>,
    /// Flows in creation order, for evicting the oldest half-open one when the table
    /// is full (entries of flows that moved on are skipped when reached).
    half_open: VecDeque<(ConnId, FlowKey)>,
    /// Flows still in their handshake (the live part of `half_open`).
    half_open_count: usize,
    /// Held data connections that went idle past `data_idle`, oldest first: what a full
    /// table may evict once no flow is half-open (entries of flows that moved on are
    /// skipped when reached).
    idle_held: VecDeque<(ConnId, FlowKey)>,
    /// Out-of-order bytes held by every flow (bounded by `max_buffered_total`).
    held_total: usize,
    dedup: Dedup,
    next_conn: u64,
    now: Timestamp,
    next_sweep: Timestamp,
}

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
            encrypted: EncryptedHosts::default(),
            interest,
            timers: BTreeMap::new(),
            half_open: VecDeque::new(),
            half_open_count: 0,
            idle_held: VecDeque::new(),
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

    /// A connection opening (SYN) between the hosts of an encrypted session: checked only
    /// while one exists, and only for SYNs, so the fast path stays two array reads.
    fn may_be_encrypted_data(&self, seg: &Segment<'_>) -> bool {
        !self.encrypted.is_empty()
            && seg.flags.syn()
            && !seg.flags.ack()
            && self.encrypted.find(seg.src, seg.dst).is_some()
    }

    fn is_control_port(&self, port: u16) -> bool {
        self.cfg.control_ports.contains(&port)
    }

    /// The engine announced a data endpoint.
    pub fn expect(&mut self, e: Expectation, counters: &mut dyn Counters) {
        if self.expectations.len() >= self.cfg.max_flows {
            counters.bound_hit(TableBound::Expectations);
            return;
        }
        self.interest[e.listener.port() as usize] += 1;
        self.expectations.insert(e);
    }

    /// An encrypted session: stand by for new connections between its hosts.
    pub fn expect_encrypted(&mut self, e: EncryptedExpectation) {
        self.encrypted.insert(&e);
    }

    pub fn unexpect(&mut self, id: ExpectId) {
        if !self.encrypted.remove(id) {
            self.unexpect_announced(id);
        }
    }

    /// An announced endpoint is used up or withdrawn (an encrypted session's standing
    /// expectation is never used up).
    fn unexpect_announced(&mut self, id: ExpectId) {
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
        let mut cx = Ctx {
            now: self.now,
            counters,
            emit,
        };
        self.sweep(ts, &mut cx);
        if self.interest[seg.src.port() as usize] == 0
            && self.interest[seg.dst.port() as usize] == 0
            && !self.may_be_encrypted_data(seg)
        {
            return;
        }
        if self.dedup.is_copy(ts, seg) {
            cx.counters.duplicate();
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
        let room = self.room();
        let Some(flow) = self.flows.get_mut(&key) else {
            self.create(key, seg, &mut cx);
            return;
        };
        let conn = flow.conn;
        let was_half_open = flow.state == State::HalfOpen;
        let held_before = flow.buffered();
        let closed = process(flow, seg, room, &mut cx);
        self.held_total = self.held_total - held_before + flow.buffered();
        if was_half_open && flow.state != State::HalfOpen {
            self.half_open_count -= 1;
        }
        if closed {
            self.linger(conn, key);
        }
    }

    /// Let packet time pass (live mode's tick): expire idle flows and announcements.
    pub fn advance(&mut self, ts: Timestamp, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
        let mut cx = Ctx {
            now: self.now,
            counters,
            emit,
        };
        self.sweep(ts, &mut cx);
    }

    /// The input is over: every open connection is reported closed, oldest first.
    pub fn finish(&mut self, counters: &mut dyn Counters, emit: &mut Emit<'_>) {
        let mut cx = Ctx {
            now: self.now,
            counters,
            emit,
        };
        let mut open: Vec<(ConnId, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.state != State::Closed)
            .map(|(k, f)| (f.conn, *k))
            .collect();
        open.sort_by_key(|(c, _)| *c);
        for (conn, key) in open {
            let flow = self.flows.get_mut(&key).expect("listed above");
            cx.counters.flows_active(-1);
            if flow.unreported.is_some() {
                continue;
            }
            for side in [Side::Initiator, Side::Responder] {
                flush(flow, side, &mut cx);
            }
            cx.event(conn, StreamEvent::Closed(CloseReason::CaptureEnd));
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
        self.encrypted = EncryptedHosts::default();
        self.interest.fill(0);
        for p in &self.cfg.control_ports {
            self.interest[*p as usize] += 1;
        }
    }
}
