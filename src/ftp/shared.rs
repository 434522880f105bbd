//! What the engine and its sessions share: the data connections, the live
//! announcements, the output queue, and the context a session handles a line in.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use super::config::Config;
use super::counters::{Bound, Counters};
use super::data::{Channel, DataConn};
use super::input::{ConnId, ExpectId};
use std::net::SocketAddr;

use super::output::{EncryptedExpectation, Expectation, Output, Release};
use super::time::Timestamp;

/// The hash map of the engine and the connection table: foldhash, keyed per process.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// State the sessions share: data connections, live announcements and the output queue.
#[derive(Debug, Default)]
pub struct Shared {
    pub data: Map<ConnId, DataConn>,
    /// Live announcements → the control connection that made them.
    expects: Map<ExpectId, ConnId>,
    /// Encrypted sessions' standing expectations → their control connection. Not used
    /// up by a connection: every new one between the hosts is the session's.
    pub encrypted: Map<ExpectId, ConnId>,
    next_expect: u64,
    max_expectations: usize,
    pub settling_sessions: Vec<ConnId>,
    pub out: VecDeque<Output>,
    /// Bytes of unfinished lines held by all sessions.
    pub partial_total: usize,
}

impl Shared {
    pub fn new(max_expectations: usize) -> Self {
        Shared {
            max_expectations,
            ..Shared::default()
        }
    }

    /// The control connection that announced `id`; the announcement is used up.
    pub fn take_expectation(&mut self, id: ExpectId) -> Option<ConnId> {
        self.expects.remove(&id)
    }

    pub fn new_expectation(&mut self, counters: &mut dyn Counters) -> Option<ExpectId> {
        if self.expects.len() >= self.max_expectations {
            counters.bound_hit(Bound::Expectations);
            return None;
        }
        self.next_expect += 1;
        Some(ExpectId(self.next_expect))
    }

    pub fn expect(&mut self, e: Expectation) {
        self.expects.insert(e.id, e.control);
        self.out.push_back(Output::Expect(e));
    }

    /// A session went encrypted: stand by for its data connections. (Not bounded by
    /// `max_expectations`: one per session at most, and sessions are bounded.)
    pub fn expect_encrypted(
        &mut self,
        control: ConnId,
        control_ends: (SocketAddr, SocketAddr),
    ) -> ExpectId {
        self.next_expect += 1;
        let id = ExpectId(self.next_expect);
        self.encrypted.insert(id, control);
        self.out
            .push_back(Output::ExpectEncrypted(EncryptedExpectation {
                id,
                control,
                control_ends,
            }));
        id
    }

    pub fn unexpect_encrypted(&mut self, id: ExpectId) {
        if self.encrypted.remove(&id).is_some() {
            self.out.push_back(Output::Unexpect(id));
        }
    }

    /// Nothing refers to this channel any more.
    pub fn release_channel(&mut self, ch: &Channel) {
        if self.expects.remove(&ch.expect).is_some() {
            self.out.push_back(Output::Unexpect(ch.expect));
        }
        if let Some(id) = ch.conn
            && let Entry::Occupied(mut e) = self.data.entry(id)
        {
            let d = e.get_mut();
            if d.ended {
                e.remove();
            } else if !d.released {
                d.released = true;
                self.out.push_back(Output::Release(Release {
                    conn: id,
                    ends: (d.client, d.server),
                }));
            }
        }
    }
}

/// What the session needs from the engine while it handles a line.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub shared: &'a mut Shared,
    pub counters: &'a mut dyn Counters,
    pub now: Timestamp,
}
