//! The connection table's health (`ftpwatch_*`): connections tracked and evicted,
//! duplicate segments, reassembly gaps, and its bounds. The table counts through
//! `flow::Counters`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::Metrics;
use super::family::{counter, counter_vec, counts, gauge, preset};
use crate::flow::{Counters, Eviction, TableBound};

/// Every bound label of the engine (`ftp::Bound`) and the table (`TableBound`).
const BOUND_ORDER: [&str; 7] = [
    "line_length",
    "pending_commands",
    "reassembly_buffer",
    "flows",
    "expectations",
    "sessions",
    "stored_text",
];

#[derive(Clone)]
pub struct Table {
    flows_active: IntGauge,
    evicted: IntCounterVec,
    duplicates: IntCounter,
    gaps: IntCounter,
    gap_bytes: IntCounter,
    /// `ftpwatch_bounds_hit_total`, shared with the engine.
    bounds: IntCounterVec,
}

impl Table {
    pub fn new(r: &Registry, bounds: IntCounterVec) -> Self {
        let t = Table {
            flows_active: gauge(r, "ftpwatch_flows_active", "Connections in the table now."),
            evicted: counter_vec(
                r,
                "ftpwatch_flows_evicted_total",
                "Connections dropped from the table before they ended, by reason.",
                &["reason"],
            ),
            duplicates: counter(
                r,
                "ftpwatch_duplicate_packets_total",
                "Segments identical to one seen just before (within the duplicate window), analysed once: copies from capturing a gateway on two interfaces, and bursts of identical RSTs.",
            ),
            gaps: counter(
                r,
                "ftpwatch_reassembly_gaps_total",
                "Holes in reassembled control streams (bytes the capture missed).",
            ),
            gap_bytes: counter(
                r,
                "ftpwatch_reassembly_gap_bytes_total",
                "Bytes missing from reassembled control streams.",
            ),
            bounds,
        };
        preset(&t.evicted, Eviction::ALL.iter().map(|e| e.as_str()));
        preset(&t.bounds, TableBound::ALL.iter().map(|b| b.as_str()));
        t
    }
}

// Read-backs for the text report.
impl Metrics {
    pub fn gaps_total(&self) -> (u64, u64) {
        (self.table.gaps.get(), self.table.gap_bytes.get())
    }

    /// Every bound, in the report's order (the order of the one list they had before
    /// the table and the engine counted their own).
    pub fn bounds_hit(&self) -> Vec<(&'static str, u64)> {
        counts(&self.table.bounds, &BOUND_ORDER)
    }

    pub fn evictions(&self) -> Vec<(&'static str, u64)> {
        let reasons: Vec<&'static str> = Eviction::ALL.iter().map(|e| e.as_str()).collect();
        counts(&self.table.evicted, &reasons)
    }

    pub fn duplicates_total(&self) -> u64 {
        self.table.duplicates.get()
    }
}

impl Counters for Metrics {
    fn flows_active(&mut self, delta: i64) {
        self.table.flows_active.add(delta);
    }

    fn flow_evicted(&mut self, why: Eviction) {
        self.table.evicted.with_label_values(&[why.as_str()]).inc();
    }

    fn bound_hit(&mut self, bound: TableBound) {
        self.table.bounds.with_label_values(&[bound.as_str()]).inc();
    }

    fn gap(&mut self, bytes: u64) {
        self.table.gaps.inc();
        self.table.gap_bytes.inc_by(bytes);
    }

    fn duplicate(&mut self) {
        self.table.duplicates.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::Bound;

    #[test]
    fn the_report_lists_every_bound_once() {
        let mut ours: Vec<&str> = BOUND_ORDER.to_vec();
        let mut theirs: Vec<&str> = Bound::ALL
            .iter()
            .map(|b| b.as_str())
            .chain(TableBound::ALL.iter().map(|b| b.as_str()))
            .collect();
        ours.sort();
        theirs.sort();
        theirs.dedup();
        assert_eq!(ours, theirs);
    }
}
