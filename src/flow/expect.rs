//! Announced data endpoints the engine asked to hear about, indexed by port so that a
//! new connection is checked against the few announcements for its ports only.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::ftp::{EncryptedExpectation, ExpectId, Expectation, Map, Timestamp};

#[derive(Default)]
pub struct Expectations {
    by_id: Map<ExpectId, Expectation>,
    by_port: Map<u16, Vec<ExpectId>>,
    /// Creation order, for expiry (all share one time-to-live).
    order: VecDeque<(Timestamp, ExpectId)>,
}

/// A connection that matched an announcement.
pub struct Match {
    pub id: ExpectId,
    /// The control connection's key in the table.
    pub control: super::FlowKey,
    /// The end of the connection at the announced (listening) endpoint.
    pub listener: SocketAddr,
}

impl Expectations {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn insert(&mut self, e: Expectation) {
        self.order.push_back((e.created, e.id));
        self.by_port
            .entry(e.listener.port())
            .or_default()
            .push(e.id);
        self.by_id.insert(e.id, e);
    }

    /// Forget an announcement; returns its port if it was still there.
    pub fn remove(&mut self, id: ExpectId) -> Option<u16> {
        let e = self.by_id.remove(&id)?;
        let port = e.listener.port();
        if let Some(v) = self.by_port.get_mut(&port) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.by_port.remove(&port);
            }
        }
        Some(port)
    }

    /// Announcements older than `ttl`; the caller removes them.
    pub fn expired(&mut self, now: Timestamp, ttl: Duration) -> Vec<ExpectId> {
        let mut out = Vec::new();
        while let Some(&(created, id)) = self.order.front() {
            if now.since(created) < ttl {
                break;
            }
            self.order.pop_front();
            if self.by_id.contains_key(&id) {
                out.push(id);
            }
        }
        // Drop bookkeeping for announcements removed earlier.
        if self.order.len() > 2 * self.by_id.len() + 64 {
            let live = &self.by_id;
            self.order.retain(|(_, id)| live.contains_key(id));
        }
        out
    }

    /// Does a connection between `src` and `dst` (either may be the listener) match an
    /// announcement? The listener's address must be the announced one, or, for a
    /// listener behind NAT or announcing an address nobody uses, the two addresses must
    /// be those of the control connection.
    pub fn find(&self, src: SocketAddr, dst: SocketAddr) -> Option<Match> {
        for (listener, connector) in [(dst, src), (src, dst)] {
            let Some(ids) = self.by_port.get(&listener.port()) else {
                continue;
            };
            let exact = ids
                .iter()
                .filter_map(|id| self.by_id.get(id))
                .find(|e| e.listener.ip() == listener.ip());
            let nat = || {
                ids.iter().filter_map(|id| self.by_id.get(id)).find(|e| {
                    e.listener_control_ip == listener.ip() && e.connector_ip == connector.ip()
                })
            };
            if let Some(e) = exact.or_else(nat) {
                return Some(Match {
                    id: e.id,
                    control: super::FlowKey::new(e.control_ends.0, e.control_ends.1),
                    listener,
                });
            }
        }
        None
    }
}

/// Encrypted sessions' standing expectations, by their two hosts (in either order):
/// a new connection between them, off the control ports, is taken for a data connection
/// of the session (`EncryptedExpectation`). Never used up; withdrawn by the engine.
#[derive(Default)]
pub struct EncryptedHosts {
    by_pair: Map<(IpAddr, IpAddr), Vec<(ExpectId, super::FlowKey)>>,
    pairs: Map<ExpectId, (IpAddr, IpAddr)>,
}

fn pair(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    let (a, b) = (a.to_canonical(), b.to_canonical());
    if a <= b { (a, b) } else { (b, a) }
}

impl EncryptedHosts {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn insert(&mut self, e: &EncryptedExpectation) {
        let (c, s) = e.control_ends;
        let key = pair(c.ip(), s.ip());
        let control = super::FlowKey::new(c, s);
        self.by_pair.entry(key).or_default().push((e.id, control));
        self.pairs.insert(e.id, key);
    }

    /// Withdraw `id`; false when it was not one of these.
    pub fn remove(&mut self, id: ExpectId) -> bool {
        let Some(key) = self.pairs.remove(&id) else {
            return false;
        };
        if let Some(v) = self.by_pair.get_mut(&key) {
            v.retain(|(x, _)| *x != id);
            if v.is_empty() {
                self.by_pair.remove(&key);
            }
        }
        true
    }

    /// The encrypted session a new connection from `src` to `dst` is taken for (the
    /// latest one between these hosts).
    pub fn find(&self, src: SocketAddr, dst: SocketAddr) -> Option<Match> {
        let (id, control) = *self.by_pair.get(&pair(src.ip(), dst.ip()))?.last()?;
        Some(Match {
            id,
            control,
            listener: dst,
        })
    }
}
