//! One tracked connection, and what a segment does to it: the handshake, in-order
//! bytes (reassembled for a control connection, counted for a data connection), FIN and
//! RST, each turned into stream events for the engine.

use std::net::SocketAddr;

use super::counters::{Counters, TableBound};
use super::{Emit, FlowKey, Reassembler, SeqCounter};
use crate::decode::Segment;
use crate::ftp::{CloseReason, ConnId, ConnKind, Input, Side, StreamEvent, Timestamp};

#[derive(Debug)]
pub(super) enum Stream {
    /// Control connection: bytes delivered in order.
    Reassembled(Reassembler),
    /// Data connection: bytes counted from sequence numbers.
    Counted(SeqCounter),
}

#[derive(Debug)]
pub(super) struct Direction {
    pub stream: Stream,
    pub fin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Only handshake packets so far.
    HalfOpen,
    Open,
    /// Both FINs or a RST were seen; packets are absorbed until it is forgotten.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Flow {
    pub conn: ConnId,
    pub key: FlowKey,
    pub kind: Kind,
    pub initiator: SocketAddr,
    /// Index 0: bytes sent by the initiator; 1: by the responder.
    pub dirs: [Direction; 2],
    pub last_seen: Timestamp,
    pub state: State,
    /// Not yet reported to the engine. A control connection is reported once its
    /// handshake is answered or it carries data, so that a flood of unanswered SYNs
    /// costs a table entry, not a session.
    pub unreported: Option<(ConnKind, bool)>,
    /// When the first packet was seen (reported as the connection's start).
    pub first_seen: Timestamp,
    /// Due time of this flow's one entry in the timer map.
    pub timer: Timestamp,
}

impl Direction {
    /// Both directions of a new flow of `kind`.
    pub fn pair(kind: Kind) -> [Direction; 2] {
        let one = || Direction {
            stream: match kind {
                Kind::Control { .. } => Stream::Reassembled(Reassembler::default()),
                Kind::Data { .. } => Stream::Counted(SeqCounter::default()),
            },
            fin: false,
        };
        [one(), one()]
    }
}

impl Flow {
    /// Out-of-order bytes this flow holds.
    pub fn buffered(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| match &d.stream {
                Stream::Reassembled(r) => r.buffered(),
                Stream::Counted(_) => 0,
            })
            .sum()
    }

    pub fn responder(&self) -> SocketAddr {
        self.key.other(self.initiator)
    }

    fn side_of(&self, src: SocketAddr) -> Side {
        if src == self.initiator {
            Side::Initiator
        } else {
            Side::Responder
        }
    }

    fn dir(&mut self, side: Side) -> &mut Direction {
        match side {
            Side::Initiator => &mut self.dirs[0],
            Side::Responder => &mut self.dirs[1],
        }
    }
}

/// Where a segment's consequences go: counts, and stream events stamped `now`.
pub(super) struct Ctx<'a, 'e> {
    pub now: Timestamp,
    pub counters: &'a mut dyn Counters,
    pub emit: &'a mut Emit<'e>,
}

impl Ctx<'_, '_> {
    pub fn event(&mut self, conn: ConnId, event: StreamEvent<'_>) {
        let ts = self.now;
        self.event_at(ts, conn, event);
    }

    fn event_at(&mut self, ts: Timestamp, conn: ConnId, event: StreamEvent<'_>) {
        (self.emit)(Input { ts, conn, event });
    }

    fn closed(&mut self, conn: ConnId, why: CloseReason) {
        self.event(conn, StreamEvent::Closed(why));
    }
}

/// How much out-of-order data a segment may add: this direction's cap, and what is left
/// of the table-wide budget.
pub(super) struct Room {
    pub per_direction: usize,
    pub shared: usize,
}

/// Apply one segment to its flow. Returns true when the flow has just closed.
pub(super) fn process(
    flow: &mut Flow,
    seg: &Segment<'_>,
    room: Room,
    cx: &mut Ctx<'_, '_>,
) -> bool {
    flow.last_seen = cx.now;
    if let Kind::Data { parked, .. } = &mut flow.kind {
        // Moving again: no longer among the idle (it is listed anew when it next is).
        *parked = false;
    }
    if flow.state == State::Closed {
        return false;
    }
    if flow.unreported.is_some() && (seg.wire_len > 0 || (seg.flags.syn() && seg.flags.ack())) {
        report_open(flow, cx);
    }
    let from = flow.side_of(seg.src);
    let f = seg.flags;
    if f.syn() {
        match &mut flow.dir(from).stream {
            Stream::Reassembled(r) => r.syn(seg.seq),
            Stream::Counted(c) => c.syn(seg.seq),
        }
    }
    if seg.wire_len > 0 {
        flow.state = State::Open;
        payload(flow, from, seg, room, cx);
    } else if !f.syn() && !f.rst() && flow.state == State::HalfOpen && f.ack() {
        // The handshake's last ACK: the connection is established.
        flow.state = State::Open;
    }
    let conn = flow.conn;
    if f.ack()
        && let Stream::Reassembled(r) = &mut flow.dir(from.other()).stream
    {
        r.peer_acked(seg.ack, &mut |c| deliver(c, conn, from.other(), cx));
    }
    if f.rst() {
        return reset(flow, from, cx);
    }
    if f.fin() && !flow.dir(from).fin && flow.unreported.is_none() {
        return fin(flow, from, cx);
    }
    false
}

/// A segment's bytes: reassembled and delivered, or counted.
fn payload(flow: &mut Flow, from: Side, seg: &Segment<'_>, room: Room, cx: &mut Ctx<'_, '_>) {
    let conn = flow.conn;
    // Payload on a SYN starts one past the SYN's sequence number.
    let seq = if seg.flags.syn() {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    match &mut flow.dir(from).stream {
        Stream::Reassembled(r) => {
            let cap = room.per_direction.min(r.buffered() + room.shared);
            let report = r.push(seq, seg.payload, seg.wire_len, cap, &mut |c| {
                deliver(c, conn, from, cx)
            });
            if report.buffer_full {
                cx.counters.bound_hit(TableBound::ReassemblyBuffer);
            }
        }
        Stream::Counted(c) => {
            let bytes = c.push(seq, seg.wire_len);
            cx.event(conn, StreamEvent::Progress { from, bytes });
        }
    }
}

fn reset(flow: &mut Flow, from: Side, cx: &mut Ctx<'_, '_>) -> bool {
    if flow.unreported.is_some() {
        // An unanswered connection attempt refused: nothing to tell the engine.
        flow.state = State::Closed;
        cx.counters.flows_active(-1);
        return true;
    }
    flush(flow, from, cx);
    flush(flow, from.other(), cx);
    cx.event(flow.conn, StreamEvent::Reset { from });
    close(flow, cx);
    true
}

fn fin(flow: &mut Flow, from: Side, cx: &mut Ctx<'_, '_>) -> bool {
    flow.dir(from).fin = true;
    flush(flow, from, cx);
    cx.event(flow.conn, StreamEvent::Fin { from });
    if flow.dirs.iter().all(|d| d.fin) {
        flush(flow, from.other(), cx);
        close(flow, cx);
        return true;
    }
    false
}

/// Deliver what a control direction still holds (holes become gaps).
pub(super) fn flush(flow: &mut Flow, side: Side, cx: &mut Ctx<'_, '_>) {
    let conn = flow.conn;
    if let Stream::Reassembled(r) = &mut flow.dir(side).stream {
        r.flush(&mut |c| deliver(c, conn, side, cx));
    }
}

fn deliver(c: super::Chunk<'_>, conn: ConnId, from: Side, cx: &mut Ctx<'_, '_>) {
    let event = match c {
        super::Chunk::Data(bytes) => StreamEvent::Data { from, bytes },
        super::Chunk::Gap(len) => {
            cx.counters.gap(len);
            StreamEvent::Gap { from, len }
        }
    };
    cx.event(conn, event);
}

/// Tell the engine about a flow it has not heard of yet.
pub(super) fn report_open(flow: &mut Flow, cx: &mut Ctx<'_, '_>) {
    if let Some((kind, syn_seen)) = flow.unreported.take() {
        let event = StreamEvent::Opened {
            kind,
            initiator: flow.initiator,
            responder: flow.responder(),
            syn_seen,
        };
        cx.event_at(flow.first_seen, flow.conn, event);
    }
}

fn close(flow: &mut Flow, cx: &mut Ctx<'_, '_>) {
    flow.state = State::Closed;
    // Held data is no longer needed; keep only what absorbs stray packets.
    for d in &mut flow.dirs {
        if let Stream::Reassembled(r) = &mut d.stream {
            *r = Reassembler::default();
        }
    }
    cx.counters.flows_active(-1);
    cx.closed(flow.conn, CloseReason::Finished);
}
