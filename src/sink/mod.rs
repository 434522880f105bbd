//! Where events go: the metrics registry, the JSON-lines event log, the text report.

pub mod eventlog;
pub mod exporter;
pub mod html;
pub mod landing;
pub mod metrics;
pub mod recent;
pub mod report;

pub use eventlog::EventLog;
pub use metrics::Metrics;
pub use report::Report;

use crate::ftp::Event;

/// A consumer of engine events.
pub trait EventSink {
    fn event(&mut self, e: &Event);
}

/// Discards events (metrics are still counted by the pipeline).
pub struct Discard;

impl EventSink for Discard {
    fn event(&mut self, _: &Event) {}
}

/// Fans one event out to several sinks.
impl<A: EventSink, B: EventSink> EventSink for (A, B) {
    fn event(&mut self, e: &Event) {
        self.0.event(e);
        self.1.event(e);
    }
}
