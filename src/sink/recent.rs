//! The last aborted, failed and interrupted transfers, for the landing page and
//! `/api/recent`: a ring of at most `RECENT` event-log records (as written, so a
//! redacted user stays redacted and a password was never there), and the totals of
//! every transfer by outcome since the start.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Records kept.
pub const RECENT: usize = 50;

#[derive(Debug, Default)]
struct Inner {
    ring: VecDeque<Value>,
    totals: BTreeMap<String, u64>,
}

/// A handle shared by the thread that writes the event log and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<Inner>>);

/// What the landing page shows of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Newest first.
    pub transfers: Vec<Value>,
    pub totals: BTreeMap<String, u64>,
}

impl Recent {
    /// Look at one event-log record: transfers are counted by outcome, and kept when
    /// they did not complete or something broke them.
    pub fn observe(&self, v: &Value) {
        if v["type"] != "transfer" {
            return;
        }
        let outcome = v["outcome"].as_str().unwrap_or("unknown");
        let troubled = outcome != "completed" || !v["interruption_cause"].is_null();
        // A poisoned lock only means a panic elsewhere; the data is still whole.
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *inner.totals.entry(outcome.to_string()).or_default() += 1;
        if troubled {
            if inner.ring.len() == RECENT {
                inner.ring.pop_front();
            }
            inner.ring.push_back(v.clone());
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            transfers: inner.ring.iter().rev().cloned().collect(),
            totals: inner.totals.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transfer(n: u64, outcome: &str) -> Value {
        json!({ "type": "transfer", "session": n, "outcome": outcome, "interruption_cause": null })
    }

    #[test]
    fn keeps_the_last_fifty_troubled_transfers_newest_first_and_counts_all() {
        let r = Recent::default();
        for n in 0..120 {
            r.observe(&transfer(
                n,
                if n % 2 == 0 { "aborted" } else { "completed" },
            ));
        }
        r.observe(&json!({ "type": "session", "outcome": "aborted" }));
        let s = r.snapshot();
        assert_eq!(s.transfers.len(), RECENT);
        assert_eq!(s.transfers[0]["session"], 118);
        assert_eq!(s.transfers[RECENT - 1]["session"], 20);
        assert_eq!(s.totals["aborted"], 60);
        assert_eq!(s.totals["completed"], 60);
        assert_eq!(s.totals.len(), 2, "a session record is not a transfer");
    }

    #[test]
    fn a_completed_transfer_with_an_interruption_cause_is_kept() {
        let r = Recent::default();
        let mut t = transfer(1, "completed");
        t["interruption_cause"] = json!("client_reset");
        r.observe(&t);
        r.observe(&transfer(2, "completed"));
        assert_eq!(r.snapshot().transfers, vec![t]);
    }
}
