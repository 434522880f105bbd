//! The FTP engine: sans-IO and deterministic, in the manner of quinn-proto.
//!
//! It is fed stream events (`Input`) with timestamps taken from the packets, and
//! produces `Output`s: events for the sinks, and expectations that tell the
//! connection table which data connections to report. It never opens a socket, reads
//! a file or asks the clock, and it imports no other module of this crate, so the same
//! input always gives the same output: a capture is a reproducible test.

// The engine's parts. What a user of the library needs is re-exported below, once;
// the parsers stay reachable inside the crate for the fuzz entry points.
mod cause;
pub(crate) mod command;
mod config;
mod counters;
mod data;
pub(crate) mod endpoint;
mod engine;
mod input;
pub(crate) mod line;
mod output;
mod pending;
pub(crate) mod reply;
mod sequence;
mod session;
mod shared;
mod text;
mod time;
mod tls;
mod transfer;

pub use command::Verb;
pub use config::Config;
pub(crate) use counters::label_enum;
pub use counters::{Anomaly, Bound, Counters, NoCounters};
pub use engine::Engine;
pub use input::{CloseReason, ConnId, ConnKind, ExpectId, Input, Side, StreamEvent};
pub use output::{
    AbortCause, AnomalyRecord, CloseHow, DataClose, DataRecord, EncryptedDataRecord,
    EncryptedExpectation, EndReason, Event, Expectation, Mode, Outcome, Output, Release, Role,
    SessionRecord, TransferRecord,
};
pub use reply::ReplyCode;
pub(crate) use shared::Map;
pub use time::Timestamp;

/// The engine's wire parsers, for the inline proxy: it frames and rewrites the same
/// commands and replies, and must read them exactly as the engine does.
pub mod parse {
    pub use super::command::{Command, parse as command};
    pub use super::endpoint::{
        EndpointError, parse_eprt_arg, parse_epsv_reply, parse_pasv_reply, parse_port_arg,
    };
    pub use super::reply::{ReplyAssembler, ReplyStep};
}
