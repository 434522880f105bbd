//! One way through: frame → decode → flow → engine → sinks. The same pipeline serves
//! `read` (frames from files) and `live` (frames from the kernel, plus ticks).

use std::io::Write;

use crate::capture::{Frame, FrameTime, SkippedRecord};
use crate::decode::decode;
use crate::flow::{self, Emit, FlowTable};
use crate::ftp::{self, Engine, Output, Timestamp};
use crate::sink::{EventSink, Metrics};

#[derive(Debug, Clone)]
pub struct Settings {
    pub flow: flow::Config,
    pub engine: ftp::Config,
}

/// What one tracked connection costs (table entry, timer, key; measured at about
/// 900 bytes for an idle control connection with its session, see benches/bounds.rs),
/// rounded up.
pub const FLOW_BYTES: usize = 1024;
/// What one session costs in the engine, rounded up.
pub const SESSION_BYTES: usize = 1024;
/// The default analysis budget: fits a gateway with 262,144 connections tracked.
pub const DEFAULT_MEMORY: usize = 512 << 20;

impl Settings {
    /// Caps derived from a memory budget for the analysis state: half for the
    /// connection table, a quarter for sessions, an eighth for out-of-order bytes, a
    /// sixteenth for unfinished lines. Each cap that is hit is counted
    /// (`ftpwatch_bounds_hit_total`), and a full table evicts half-open connections first.
    pub fn with_memory_budget(budget: usize) -> Self {
        let mut s = Settings {
            flow: flow::Config::default(),
            engine: ftp::Config::default(),
        };
        s.flow.max_flows = (budget / 2 / FLOW_BYTES).max(64);
        s.flow.max_buffered_total = budget / 8;
        s.engine.max_sessions = (budget / 4 / SESSION_BYTES).max(32);
        s.engine.max_expectations = (s.flow.max_flows / 4).max(16);
        s.engine.max_partial_total = budget / 16;
        s
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::with_memory_budget(DEFAULT_MEMORY)
    }
}

/// A frame's time, as the engine counts it: converted here, once.
impl From<FrameTime> for Timestamp {
    fn from(t: FrameTime) -> Timestamp {
        Timestamp::from_nanos(t.as_nanos())
    }
}

impl From<Timestamp> for FrameTime {
    fn from(t: Timestamp) -> FrameTime {
        FrameTime::from_nanos(t.as_nanos())
    }
}

pub struct Pipeline {
    flows: FlowTable,
    engine: Engine,
    /// Two handles onto one registry: the table counts through `metrics` while the
    /// engine, called from inside the table, counts through `engine_metrics`.
    metrics: Metrics,
    engine_metrics: Metrics,
    /// Where trace lines go (with `Settings::engine.trace`).
    debug: Option<Box<dyn std::io::Write + Send>>,
}

impl Pipeline {
    pub fn new(settings: Settings, metrics: Metrics) -> Self {
        Pipeline {
            flows: FlowTable::new(settings.flow),
            engine: Engine::new(settings.engine),
            engine_metrics: metrics.clone(),
            metrics,
            debug: None,
        }
    }

    /// Send trace lines (commands and replies as parsed) to `out`.
    pub fn with_debug(mut self, out: Box<dyn std::io::Write + Send>) -> Self {
        self.debug = Some(out);
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn frame(&mut self, frame: &Frame<'_>, sink: &mut dyn EventSink) {
        let ts = Timestamp::from(frame.ts);
        self.metrics
            .packet(frame.data.len() + frame.elided as usize, ts.epoch_seconds());
        let seg = match decode(frame) {
            Ok(s) => s,
            Err(why) => {
                self.metrics.packet_skipped(why.as_str());
                return;
            }
        };
        if (seg.payload.len() as u64 + u64::from(frame.elided)) < u64::from(seg.wire_len) {
            self.metrics.truncated_packet();
        }
        self.with_table(|flows, counters, emit| flows.segment(ts, &seg, counters, emit));
        self.drain(sink);
    }

    pub fn skipped_record(&mut self, why: SkippedRecord) {
        self.metrics.record_skipped(why.as_str());
    }

    /// Time passes without packets (live mode).
    pub fn tick(&mut self, now: FrameTime, sink: &mut dyn EventSink) {
        let now = Timestamp::from(now);
        self.with_table(|flows, counters, emit| flows.advance(now, counters, emit));
        self.engine.tick(now, &mut self.engine_metrics);
        self.drain(sink);
    }

    /// The input is over: close every connection and session.
    pub fn finish(&mut self, sink: &mut dyn EventSink) {
        self.with_table(|flows, counters, emit| flows.finish(counters, emit));
        self.engine.finish(&mut self.engine_metrics);
        self.drain(sink);
    }

    /// Run `f` on the connection table, its stream events going to the engine.
    fn with_table(&mut self, f: impl FnOnce(&mut FlowTable, &mut Metrics, &mut Emit<'_>)) {
        let Pipeline {
            flows,
            engine,
            metrics,
            engine_metrics,
            ..
        } = self;
        f(flows, metrics, &mut |input| {
            engine.handle(input, engine_metrics)
        });
    }

    fn drain(&mut self, sink: &mut dyn EventSink) {
        while let Some(out) = self.engine.poll() {
            match out {
                Output::Expect(e) => self.flows.expect(e, &mut self.metrics),
                Output::ExpectEncrypted(e) => self.flows.expect_encrypted(e),
                Output::Unexpect(id) => self.flows.unexpect(id),
                Output::Release(r) => self.flows.release(r),
                Output::Event(e) => {
                    self.metrics.event(&e);
                    sink.event(&e);
                }
                Output::Trace(line) => {
                    if let Some(out) = self.debug.as_mut() {
                        let _ = writeln!(out, "ftpwatch: debug: {line}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::SkippedRecord;
    use crate::decode::Skip;
    use crate::sink::metrics::{PACKET_SKIP_REASONS, RECORD_SKIP_REASONS};

    #[test]
    fn the_metrics_name_every_skip_reason_of_the_decoder_and_the_reader() {
        assert_eq!(Skip::ALL.map(Skip::as_str), PACKET_SKIP_REASONS);
        assert_eq!(
            SkippedRecord::ALL.map(SkippedRecord::as_str),
            RECORD_SKIP_REASONS
        );
    }
}
