//! Time in the table: every flow has one entry in the timer map, and packet time (or a
//! live tick) moves it on. A connection idle past its kind's timeout ends; one a
//! transfer waits on is listed as evictable instead, and ends only past the much longer
//! `held_data_idle`; a control connection with a live data connection waits for it.

use std::time::Duration;

use super::conn::{Ctx, Kind, State};
use super::counters::Eviction;
use super::{FlowKey, FlowTable};
use crate::ftp::{CloseReason, ConnId, StreamEvent, Timestamp};

/// Timers and stale announcements are looked at once per second of packet time.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl FlowTable {
    /// A flow just closed: forget it after the linger time.
    pub(super) fn linger(&mut self, conn: ConnId, key: FlowKey) {
        self.rearm(conn, key, self.now.saturating_add(self.cfg.closed_linger));
    }

    /// Move a flow's one timer entry to `due`.
    pub(super) fn rearm(&mut self, conn: ConnId, key: FlowKey, due: Timestamp) {
        if let Some(f) = self.flows.get_mut(&key) {
            self.timers.remove(&(f.timer, conn));
            f.timer = due;
            self.timers.insert((due, conn), key);
        }
    }

    /// Let packet time pass: expire idle flows and stale announcements.
    pub(super) fn sweep(&mut self, ts: Timestamp, cx: &mut Ctx<'_, '_>) {
        self.now = self.now.max(ts);
        cx.now = self.now;
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
            match self.flows.get(&key) {
                Some(flow) if flow.conn == conn => self.expire(conn, key, cx),
                _ => {}
            }
        }
    }

    /// A flow's timer is due: end it, or set its next due time.
    fn expire(&mut self, conn: ConnId, key: FlowKey, cx: &mut Ctx<'_, '_>) {
        let flow = &self.flows[&key];
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
        let (state, reported) = (flow.state, flow.unreported.is_none());
        let give_up = flow.last_seen.saturating_add(self.cfg.held_data_idle);
        let next = if held && state == State::Open && real_due <= self.now {
            if give_up <= self.now {
                None
            } else {
                // A transfer waits on it: not idle, only evictable when the table is full.
                self.park(conn, key);
                Some(self.now.saturating_add(idle).min(give_up))
            }
        } else if real_due > self.now || (busy_children && state != State::Closed) {
            Some(real_due.max(self.now.saturating_add(SWEEP_EVERY)))
        } else {
            None
        };
        if let Some(next) = next {
            self.flows.get_mut(&key).expect("looked up above").timer = next;
            self.timers.insert((next, conn), key);
            return;
        }
        if state == State::Closed {
            self.remove(key);
            return;
        }
        self.evict(key, Eviction::TimedOut, cx);
        if reported {
            cx.event(conn, StreamEvent::Closed(CloseReason::TimedOut));
        }
    }
}
