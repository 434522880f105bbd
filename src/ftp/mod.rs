//! The FTP engine: sans-IO and deterministic, in the manner of quinn-proto.
//!
//! It is fed stream events (`Input`) with timestamps taken from the packets, and
//! produces `Output`s: events for the sinks, and expectations that tell the
//! connection table which data connections to report. It never opens a socket, reads
//! a file or asks the clock, and it imports no other module of this crate, so the same
//! input always gives the same output: a capture is a reproducible test.

pub mod command;
pub mod counters;
pub mod endpoint;
pub mod engine;
pub mod input;
pub mod line;
pub mod output;
pub mod pending;
pub mod reply;
pub mod sequence;
pub mod session;
pub mod time;
pub mod tls;
pub mod transfer;

pub use command::Verb;
pub use counters::{Anomaly, Bound, Counters, Eviction, NoCounters};
pub use engine::{Config, Engine};
pub use input::{CloseReason, ConnId, ConnKind, ExpectId, Input, Side, StreamEvent};
pub use output::{
    AbortCause, AnomalyRecord, CloseHow, DataClose, DataRecord, EndReason, Event, Expectation,
    Mode, Outcome, Output, Release, Role, SessionRecord, TransferRecord,
};
pub use reply::ReplyCode;
pub use time::Timestamp;
