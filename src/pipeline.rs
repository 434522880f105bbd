//! One way through: frame → decode → flow → engine → sinks. The same pipeline serves
//! `read` (frames from files) and `live` (frames from the kernel, plus ticks).

use std::io::Write;

use crate::capture::{Frame, SkippedRecord};
use crate::decode::decode;
use crate::flow::{self, FlowTable};
use crate::ftp::{self, Engine, Output, Timestamp};
use crate::sink::{EventSink, Metrics};

#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub flow: flow::Config,
    pub engine: ftp::Config,
}

pub struct Pipeline {
    flows: FlowTable,
    engine: Engine,
    metrics: Metrics,
    /// Where trace lines go (with `Settings::engine.trace`).
    debug: Option<Box<dyn std::io::Write + Send>>,
}

impl Pipeline {
    pub fn new(settings: Settings, metrics: Metrics) -> Self {
        Pipeline {
            flows: FlowTable::new(settings.flow),
            engine: Engine::new(settings.engine),
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
        self.metrics
            .packet(frame.data.len(), frame.ts.epoch_seconds());
        let seg = match decode(frame) {
            Ok(s) => s,
            Err(why) => {
                self.metrics.packet_skipped(why);
                return;
            }
        };
        if seg.truncated() {
            self.metrics.truncated_packet();
        }
        let Pipeline {
            flows,
            engine,
            metrics,
            ..
        } = self;
        flows.segment(frame.ts, &seg, metrics, &mut |c, input| {
            engine.handle(input, c)
        });
        self.drain(sink);
    }

    pub fn skipped_record(&mut self, why: SkippedRecord) {
        self.metrics.record_skipped(why);
    }

    /// Time passes without packets (live mode).
    pub fn tick(&mut self, now: Timestamp, sink: &mut dyn EventSink) {
        let Pipeline {
            flows,
            engine,
            metrics,
            ..
        } = self;
        flows.advance(now, metrics, &mut |c, input| engine.handle(input, c));
        engine.tick(now, metrics);
        self.drain(sink);
    }

    /// The input is over: close every connection and session.
    pub fn finish(&mut self, sink: &mut dyn EventSink) {
        let Pipeline {
            flows,
            engine,
            metrics,
            ..
        } = self;
        flows.finish(metrics, &mut |c, input| engine.handle(input, c));
        engine.finish(metrics);
        self.drain(sink);
    }

    fn drain(&mut self, sink: &mut dyn EventSink) {
        while let Some(out) = self.engine.poll() {
            match out {
                Output::Expect(e) => self.flows.expect(e, &mut self.metrics),
                Output::Unexpect(id) => self.flows.unexpect(id),
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
