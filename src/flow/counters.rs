//! What the connection table counts, through a trait of its own: the metrics sink
//! implements it beside the engine's. Label values are enums, so none is unbounded.

use crate::ftp::{NoCounters, label_enum};

label_enum!(
    /// The table's limits. Hitting one is counted, never fatal.
    TableBound {
        ReassemblyBuffer => "reassembly_buffer",
        Flows => "flows",
        Expectations => "expectations",
    }
);

label_enum!(
    /// Why a connection was dropped from the table before it ended.
    Eviction {
        TimedOut => "idle_timeout",
        TableFull => "table_full",
        // A data connection of a transfer still waiting for its final reply, idle past
        // the data timeout, dropped because the table was full.
        PendingTransfer => "pending_transfer",
    }
);

pub trait Counters {
    /// A connection entered (+1) or left (-1) the table.
    fn flows_active(&mut self, delta: i64);
    fn flow_evicted(&mut self, why: Eviction);
    fn bound_hit(&mut self, bound: TableBound);
    /// A hole in a reassembled stream (bytes the capture missed).
    fn gap(&mut self, bytes: u64);
    /// A copy of a segment already seen (loopback, or two capture interfaces).
    fn duplicate(&mut self);
}

impl Counters for NoCounters {
    fn flows_active(&mut self, _: i64) {}
    fn flow_evicted(&mut self, _: Eviction) {}
    fn bound_hit(&mut self, _: TableBound) {}
    fn gap(&mut self, _: u64) {}
    fn duplicate(&mut self) {}
}
